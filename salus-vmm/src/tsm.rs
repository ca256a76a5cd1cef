//! The operations of `/dev/salus-tsm` as a trait, so the VMM's logic runs
//! against the real device (`sys::Device`) or a scripted fake in tests.
#![forbid(unsafe_code)]

use std::fmt;

use crate::abi::{self, errno};

pub const PAGE: usize = 4096;

/// One 4 KiB page of user memory, page-aligned (the source of measured
/// pages: the driver copies from it).
#[repr(C, align(4096))]
#[derive(Clone, Copy)]
pub struct Page(pub [u8; PAGE]);

impl Page {
    pub const ZERO: Page = Page([0; PAGE]);
}

/// Pages of a measured add.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PageSize {
    Size4K,
    Size2M,
}

impl PageSize {
    pub const fn bytes(self) -> u64 {
        match self {
            PageSize::Size4K => abi::SIZE_4K,
            PageSize::Size2M => abi::SIZE_2M,
        }
    }
    pub const fn page_type(self) -> u32 {
        match self {
            PageSize::Size4K => abi::PAGE_4K,
            PageSize::Size2M => abi::PAGE_2M,
        }
    }
}

/// What the run ioctl reported (`struct salus_tsm_run`'s out fields).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Exit {
    pub scause: u64,
    pub stval: u64,
    pub htval: u64,
    pub htinst: u64,
    pub gpa: u64,
    pub a: [u64; 8],
    pub resumable: bool,
    /// The bytes of a DBCN console_write exit (Salus copied them out of
    /// the TVM; `a[0]` of them), empty for every other exit.
    pub console: Vec<u8>,
}

/// A failed ioctl: which one, its errno, and for EIO what
/// `SALUS_TSM_LAST_ERROR` said (SBI error, COVH fid).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TsmError {
    pub op: &'static str,
    pub errno: i32,
    pub sbi: Option<(i64, u64)>,
}

impl TsmError {
    pub fn new(op: &'static str, errno: i32) -> TsmError {
        TsmError {
            op,
            errno,
            sbi: None,
        }
    }
    pub fn is(&self, e: i32) -> bool {
        self.errno == e
    }
}

pub fn errno_name(e: i32) -> &'static str {
    match e {
        errno::EPERM => "EPERM",
        errno::ENOENT => "ENOENT",
        errno::EINTR => "EINTR",
        errno::EIO => "EIO",
        errno::E2BIG => "E2BIG",
        errno::ENOMEM => "ENOMEM",
        errno::EACCES => "EACCES",
        errno::EFAULT => "EFAULT",
        errno::EBUSY => "EBUSY",
        errno::EEXIST => "EEXIST",
        errno::EINVAL => "EINVAL",
        errno::ENOTTY => "ENOTTY",
        errno::ENOSPC => "ENOSPC",
        _ => "errno",
    }
}

impl fmt::Display for TsmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "SALUS_TSM_{}: {} ({})",
            self.op,
            errno_name(self.errno),
            self.errno
        )?;
        if let Some((e, fid)) = self.sbi {
            write!(f, ", Salus answered SBI error {e} to COVH fid {fid}")?;
        }
        Ok(())
    }
}

pub type TsmResult<T> = Result<T, TsmError>;

/// A 4 KiB page of user memory the VMM shares with a TVM (pinned by the
/// driver while mapped). The TVM writes it concurrently: every access is a
/// copy, never a reference.
pub trait HostPage: Send + Sync {
    fn uaddr(&self) -> u64;
    fn read(&self, off: usize, buf: &mut [u8]);
    fn write(&self, off: usize, data: &[u8]);

    fn read_u64(&self, off: usize) -> u64 {
        let mut b = [0; 8];
        self.read(off, &mut b);
        u64::from_le_bytes(b)
    }
    fn write_u64(&self, off: usize, v: u64) {
        self.write(off, &v.to_le_bytes());
    }
}

/// The ioctls of `/dev/salus-tsm` on one open file (one TVM), plus the
/// user memory for shared pages. Methods may be called from several
/// threads at once (one vCPU per thread).
pub trait Tsm: Send + Sync + 'static {
    type Page: HostPage + 'static;

    fn get_info(&self) -> TsmResult<abi::Info>;
    fn create_tvm(&self) -> TsmResult<u64>;
    fn add_region(&self, gpa: u64, len: u64) -> TsmResult<()>;
    /// Measured pages at `gpa` copied from `pages` (whole pages of `size`;
    /// at most `abi::MAX_CALL_BYTES`).
    fn add_measured(&self, gpa: u64, pages: &[Page], size: PageSize) -> TsmResult<()>;
    fn add_zero(&self, gpa: u64, len: u64, size: PageSize) -> TsmResult<()>;
    fn add_shared(&self, gpa: u64, page: &Self::Page) -> TsmResult<()>;
    fn remove_shared(&self, gpa: u64, len: u64) -> TsmResult<()>;
    fn create_vcpu(&self, id: u64) -> TsmResult<()>;
    fn finalize(&self, entry: u64, arg: u64) -> TsmResult<()>;
    /// Runs `vcpu` with `(a0, a1)` as the answer to its previous exit.
    /// `EINTR` is returned to the caller (who checks whether to stop).
    /// `nop_eid` (0: none): forwarded ecalls with that a7 the driver
    /// answers (0, 0) itself (the in-kernel bench).
    fn run_vcpu(&self, vcpu: u64, a0: u64, a1: u64, nop_eid: u64) -> TsmResult<Exit>;
    fn last_error(&self) -> TsmResult<(i64, u64)>;
    /// A fresh zeroed, page-aligned, writable page of user memory.
    fn new_host_page(&self) -> std::io::Result<Self::Page>;

    /// `e` with `LAST_ERROR` attached when it is an EIO (Salus refused).
    fn explain(&self, mut e: TsmError) -> TsmError {
        if e.errno == errno::EIO {
            e.sbi = self.last_error().ok();
        }
        e
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_is_aligned() {
        assert_eq!(core::mem::align_of::<Page>(), PAGE);
        assert_eq!(core::mem::size_of::<Page>(), PAGE);
        let v = vec![Page::ZERO; 3];
        assert_eq!(v.as_ptr() as usize % PAGE, 0);
    }

    #[test]
    fn error_text() {
        let mut e = TsmError::new("ADD_ZERO", errno::EIO);
        e.sbi = Some((-1000, 7));
        assert_eq!(
            e.to_string(),
            "SALUS_TSM_ADD_ZERO: EIO (5), Salus answered SBI error -1000 to COVH fid 7"
        );
        assert!(TsmError::new("RUN_VCPU", errno::EINTR).is(errno::EINTR));
    }
}
