//! Linux system calls: the `/dev/salus-tsm` ioctls, anonymous pages for
//! shared memory, and `getauxval`. The only module with `unsafe` code.
#![deny(unsafe_op_in_unsafe_fn)]

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::ptr::NonNull;

use crate::abi;
use crate::tsm::{Exit, HostPage, Page, PageSize, Tsm, TsmError, TsmResult, PAGE};

/// An open `/dev/salus-tsm`.
pub struct Device {
    file: File,
}

impl Device {
    pub fn open(path: &str) -> io::Result<Device> {
        let file = OpenOptions::new().read(true).write(true).open(path)?;
        Ok(Device { file })
    }

    /// One ioctl with `arg` as its argument struct; EINTR is retried
    /// unless `retry_eintr` is false.
    fn ioctl<T>(
        &self,
        op: &'static str,
        req: u32,
        arg: &mut T,
        retry_eintr: bool,
    ) -> TsmResult<()> {
        loop {
            // SAFETY: `req` is one of the header's ioctl numbers whose size
            // field is `size_of::<T>()` (abi.rs checks every pairing against
            // the header), and `arg` is a valid, exclusively borrowed `T`
            // for the whole call: the driver reads/writes exactly that many
            // bytes through the pointer.
            let r = unsafe {
                libc::ioctl(
                    self.file.as_raw_fd(),
                    req as _,
                    arg as *mut T as *mut libc::c_void,
                )
            };
            if r >= 0 {
                return Ok(());
            }
            let e = io::Error::last_os_error().raw_os_error().unwrap_or(0);
            if e == libc::EINTR && retry_eintr {
                continue;
            }
            return Err(self.explain(TsmError::new(op, e)));
        }
    }
}

impl Tsm for Device {
    type Page = MmapPage;

    fn get_info(&self) -> TsmResult<abi::Info> {
        let mut i = abi::Info::default();
        self.ioctl("GET_INFO", abi::GET_INFO, &mut i, true)?;
        Ok(i)
    }

    fn create_tvm(&self) -> TsmResult<u64> {
        let mut c = abi::Create::default();
        self.ioctl("CREATE_TVM", abi::CREATE_TVM, &mut c, true)?;
        Ok(c.tvm_id)
    }

    fn add_region(&self, gpa: u64, len: u64) -> TsmResult<()> {
        let mut r = abi::Region { gpa, len };
        self.ioctl("ADD_REGION", abi::ADD_REGION, &mut r, true)
    }

    fn add_measured(&self, gpa: u64, pages: &[Page], size: PageSize) -> TsmResult<()> {
        let mut m = abi::Measured {
            gpa,
            uaddr: pages.as_ptr() as u64,
            len: (pages.len() * PAGE) as u64,
            page_type: size.page_type(),
            reserved: 0,
        };
        self.ioctl("ADD_MEASURED", abi::ADD_MEASURED, &mut m, true)
    }

    fn add_zero(&self, gpa: u64, len: u64, size: PageSize) -> TsmResult<()> {
        let mut z = abi::Zero {
            gpa,
            len,
            page_type: size.page_type(),
            reserved: 0,
        };
        self.ioctl("ADD_ZERO", abi::ADD_ZERO, &mut z, true)
    }

    fn add_shared(&self, gpa: u64, page: &MmapPage) -> TsmResult<()> {
        let mut s = abi::Shared {
            gpa,
            uaddr: page.uaddr(),
            len: PAGE as u64,
        };
        self.ioctl("ADD_SHARED", abi::ADD_SHARED, &mut s, true)
    }

    fn remove_shared(&self, gpa: u64, len: u64) -> TsmResult<()> {
        let mut s = abi::Shared { gpa, uaddr: 0, len };
        self.ioctl("REMOVE_SHARED", abi::REMOVE_SHARED, &mut s, true)
    }

    fn create_vcpu(&self, id: u64) -> TsmResult<()> {
        let mut v = abi::Vcpu { vcpu_id: id };
        self.ioctl("CREATE_VCPU", abi::CREATE_VCPU, &mut v, true)
    }

    fn finalize(&self, entry: u64, arg: u64) -> TsmResult<()> {
        let mut f = abi::Finalize {
            entry_sepc: entry,
            entry_arg: arg,
        };
        self.ioctl("FINALIZE", abi::FINALIZE, &mut f, true)
    }

    fn run_vcpu(&self, vcpu: u64, a0: u64, a1: u64, nop_eid: u64) -> TsmResult<Exit> {
        let mut r = abi::Run {
            vcpu_id: vcpu,
            a0,
            a1,
            nop_eid,
            ..Default::default()
        };
        self.ioctl("RUN_VCPU", abi::RUN_VCPU, &mut r, false)?;
        let console = if crate::exit::is_console_write(r.scause, &r.a) {
            r.console[..(r.a[0] as usize).min(abi::CONSOLE_MAX)].to_vec()
        } else {
            Vec::new()
        };
        Ok(Exit {
            scause: r.scause,
            stval: r.stval,
            htval: r.htval,
            htinst: r.htinst,
            gpa: r.gpa,
            a: r.a,
            resumable: r.resumable != 0,
            console,
        })
    }

    fn last_error(&self) -> TsmResult<(i64, u64)> {
        let mut e = abi::Error::default();
        // Not through `ioctl`: its failure must not ask LAST_ERROR again.
        // SAFETY: as in `Device::ioctl`: LAST_ERROR's size is that of
        // `abi::Error`, borrowed exclusively for the call.
        let r = unsafe {
            libc::ioctl(
                self.file.as_raw_fd(),
                abi::LAST_ERROR as _,
                &mut e as *mut abi::Error as *mut libc::c_void,
            )
        };
        if r < 0 {
            let errno = io::Error::last_os_error().raw_os_error().unwrap_or(0);
            return Err(TsmError::new("LAST_ERROR", errno));
        }
        Ok((e.sbi_error, e.fid))
    }

    fn new_host_page(&self) -> io::Result<MmapPage> {
        MmapPage::new()
    }
}

/// One anonymous, private, zero-filled 4 KiB mapping. The driver pins it
/// while a TVM maps it, and the TVM writes it concurrently with us: it is
/// only ever accessed through volatile copies, never through references.
pub struct MmapPage {
    ptr: NonNull<u8>,
}

// SAFETY: the mapping is owned by this value alone and only accessed by
// volatile reads/writes of bytes (the TVM writes it concurrently anyway;
// no Rust reference to it ever exists), so moving or sharing the handle
// between threads is sound.
unsafe impl Send for MmapPage {}
// SAFETY: see `Send`.
unsafe impl Sync for MmapPage {}

impl MmapPage {
    pub fn new() -> io::Result<MmapPage> {
        // SAFETY: a fresh anonymous private mapping, no address hint, no
        // file: nothing existing is affected.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                PAGE,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let ptr = NonNull::new(p as *mut u8).ok_or_else(|| io::Error::other("mmap gave NULL"))?;
        // Touch it so the page exists before the driver pins it.
        let page = MmapPage { ptr };
        page.write(0, &[0]);
        Ok(page)
    }
}

impl HostPage for MmapPage {
    fn uaddr(&self) -> u64 {
        self.ptr.as_ptr() as u64
    }

    fn read(&self, off: usize, buf: &mut [u8]) {
        assert!(off <= PAGE && buf.len() <= PAGE - off, "read past the page");
        for (k, b) in buf.iter_mut().enumerate() {
            // SAFETY: off + k < PAGE (asserted): inside our live mapping.
            *b = unsafe { self.ptr.as_ptr().add(off + k).read_volatile() };
        }
    }

    fn write(&self, off: usize, data: &[u8]) {
        assert!(
            off <= PAGE && data.len() <= PAGE - off,
            "write past the page"
        );
        for (k, b) in data.iter().enumerate() {
            // SAFETY: off + k < PAGE (asserted): inside our live, writable
            // mapping.
            unsafe { self.ptr.as_ptr().add(off + k).write_volatile(*b) };
        }
    }
}

impl Drop for MmapPage {
    fn drop(&mut self) {
        // SAFETY: our own mapping of PAGE bytes, unmapped once. A page the
        // driver still pins stays alive in the kernel; we just lose it.
        unsafe { libc::munmap(self.ptr.as_ptr() as *mut libc::c_void, PAGE) };
    }
}

/// `getauxval(AT_HWCAP)`: the single-letter extensions of every hart
/// (bit `letter - 'a'`) the kernel supports.
pub fn hwcap() -> u64 {
    // SAFETY: getauxval only reads the process's auxiliary vector.
    unsafe { libc::getauxval(libc::AT_HWCAP) as u64 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mmap_page_roundtrip() {
        let p = MmapPage::new().unwrap();
        assert_eq!(p.uaddr() % PAGE as u64, 0);
        assert_eq!(p.read_u64(4088), 0);
        p.write_u64(4088, 0x1122_3344_5566_7788);
        assert_eq!(p.read_u64(4088), 0x1122_3344_5566_7788);
        let mut b = [0; 2];
        p.read(4094, &mut b);
        assert_eq!(b, [0x22, 0x11]);
    }

    #[test]
    fn opening_a_missing_device_fails() {
        assert!(Device::open("/nonexistent/salus-tsm").is_err());
    }
}
