//! A scripted fake of `/dev/salus-tsm` for tests: each vCPU has a script
//! of steps; a step plays the guest (it may read and write the shared
//! pages the VMM gave the TVM) and returns the next exit. Every ioctl is
//! logged, the measurement is recomputed from what the ioctls received,
//! and the (a0, a1) handed to each run is recorded.
#![forbid(unsafe_code)]

use std::collections::{BTreeMap, VecDeque};
use std::io::{self, Write};
use std::sync::{Arc, Mutex};

use measurement::{Backend, Measurement};

use crate::abi::{self, errno};
use crate::memory::tests::VecPage;
use crate::tsm::{Exit, HostPage, Page, PageSize, Tsm, TsmError, TsmResult, PAGE};

impl<P: HostPage + ?Sized> HostPage for Arc<P> {
    fn uaddr(&self) -> u64 {
        (**self).uaddr()
    }
    fn read(&self, off: usize, buf: &mut [u8]) {
        (**self).read(off, buf)
    }
    fn write(&self, off: usize, data: &[u8]) {
        (**self).write(off, data)
    }
}

pub struct World {
    next_uaddr: u64,
    /// What the TVM sees at each shared GPA.
    pub shared: BTreeMap<u64, Arc<VecPage>>,
    pub log: Vec<String>,
    pub measurement: Measurement,
    /// (vCPU, a0, a1) of every run call.
    pub answers: Vec<(u64, u64, u64)>,
    pub finalized: Option<(u64, u64)>,
    pub flags: BTreeMap<String, u64>,
    /// Error the next ADD_MEASURED / ADD_ZERO of a 2 MiB page gets.
    pub fail_2m_measured: Option<i32>,
    pub fail_2m_zero: Option<i32>,
    /// Runs that return EINTR first.
    pub eintr: u32,
}

impl World {
    pub fn page(&self, gpa: u64) -> Option<Arc<VecPage>> {
        self.shared.get(&(gpa & !0xfff)).cloned()
    }
}

pub type Step = Box<dyn FnOnce(&mut World) -> Exit + Send>;

pub struct Fake {
    pub world: Arc<Mutex<World>>,
    scripts: Vec<Mutex<VecDeque<Step>>>,
    pub max_vcpus: u64,
}

impl Fake {
    pub fn new(scripts: Vec<Vec<Step>>) -> Fake {
        Fake {
            world: Arc::new(Mutex::new(World {
                next_uaddr: 0x7f00_0000_0000,
                shared: BTreeMap::new(),
                log: Vec::new(),
                measurement: Measurement::new(Backend::Portable),
                answers: Vec::new(),
                finalized: None,
                flags: BTreeMap::new(),
                fail_2m_measured: None,
                fail_2m_zero: None,
                eintr: 0,
            })),
            scripts: scripts.into_iter().map(|s| Mutex::new(s.into())).collect(),
            max_vcpus: 4,
        }
    }

    fn w(&self) -> std::sync::MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn log(&self, s: String) {
        self.w().log.push(s);
    }
}

fn size_name(s: PageSize) -> &'static str {
    match s {
        PageSize::Size4K => "4K",
        PageSize::Size2M => "2M",
    }
}

impl Tsm for Fake {
    type Page = Arc<VecPage>;

    fn get_info(&self) -> TsmResult<abi::Info> {
        Ok(abi::Info {
            abi_version: abi::ABI_VERSION,
            tsm_state: 2,
            tvm_max_vcpus: self.max_vcpus,
            ..Default::default()
        })
    }
    fn create_tvm(&self) -> TsmResult<u64> {
        self.log("CREATE_TVM".into());
        Ok(65)
    }
    fn add_region(&self, gpa: u64, len: u64) -> TsmResult<()> {
        self.log(format!("ADD_REGION {gpa:#x} {len:#x}"));
        Ok(())
    }
    fn add_measured(&self, gpa: u64, pages: &[Page], size: PageSize) -> TsmResult<()> {
        let mut w = self.w();
        if size == PageSize::Size2M {
            if let Some(e) = w.fail_2m_measured.take() {
                return Err(TsmError::new("ADD_MEASURED", e));
            }
        }
        if pages.len() * PAGE > abi::MAX_CALL_BYTES as usize
            || !(pages.as_ptr() as usize).is_multiple_of(PAGE)
        {
            return Err(TsmError::new("ADD_MEASURED", errno::EINVAL));
        }
        for (i, p) in pages.iter().enumerate() {
            w.measurement.extend_page(gpa + (i * PAGE) as u64, &p.0);
        }
        w.log.push(format!(
            "ADD_MEASURED {gpa:#x} {} {}",
            pages.len(),
            size_name(size)
        ));
        Ok(())
    }
    fn add_zero(&self, gpa: u64, len: u64, size: PageSize) -> TsmResult<()> {
        let mut w = self.w();
        if size == PageSize::Size2M {
            if let Some(e) = w.fail_2m_zero.take() {
                return Err(TsmError::new("ADD_ZERO", e));
            }
        }
        w.log
            .push(format!("ADD_ZERO {gpa:#x} {len:#x} {}", size_name(size)));
        Ok(())
    }
    fn add_shared(&self, gpa: u64, page: &Arc<VecPage>) -> TsmResult<()> {
        let mut w = self.w();
        w.shared.insert(gpa, Arc::clone(page));
        w.log.push(format!("ADD_SHARED {gpa:#x}"));
        Ok(())
    }
    fn remove_shared(&self, gpa: u64, len: u64) -> TsmResult<()> {
        let mut w = self.w();
        w.shared.remove(&gpa);
        w.log.push(format!("REMOVE_SHARED {gpa:#x} {len:#x}"));
        Ok(())
    }
    fn create_vcpu(&self, id: u64) -> TsmResult<()> {
        self.log(format!("CREATE_VCPU {id}"));
        Ok(())
    }
    fn finalize(&self, entry: u64, arg: u64) -> TsmResult<()> {
        let mut w = self.w();
        w.measurement.extend_finalize(entry, arg);
        w.finalized = Some((entry, arg));
        w.log.push(format!("FINALIZE {entry:#x} {arg:#x}"));
        Ok(())
    }
    fn run_vcpu(&self, vcpu: u64, a0: u64, a1: u64, _nop_eid: u64) -> TsmResult<Exit> {
        let mut w = self.w();
        w.answers.push((vcpu, a0, a1));
        if w.eintr > 0 {
            w.eintr -= 1;
            return Err(TsmError::new("RUN_VCPU", errno::EINTR));
        }
        let step = self
            .scripts
            .get(vcpu as usize)
            .and_then(|s| s.lock().unwrap().pop_front());
        match step {
            Some(f) => Ok(f(&mut w)),
            None => Err(TsmError::new("RUN_VCPU", errno::EINVAL)),
        }
    }
    fn last_error(&self) -> TsmResult<(i64, u64)> {
        Ok((-1000, 12))
    }
    fn new_host_page(&self) -> io::Result<Arc<VecPage>> {
        let mut w = self.w();
        w.next_uaddr += PAGE as u64;
        Ok(Arc::new(VecPage::new(w.next_uaddr)))
    }
}

/// A `Write` whose bytes the test reads back.
#[derive(Clone, Default)]
pub struct Capture(pub Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Capture {
    pub fn lines(&self) -> Vec<String> {
        String::from_utf8_lossy(&self.0.lock().unwrap())
            .lines()
            .map(String::from)
            .collect()
    }
}

// ---- exits a guest makes -------------------------------------------------

pub fn ecall(eid: u64, fid: u64, args: &[u64]) -> Exit {
    let mut a = [0; 8];
    a[..args.len()].copy_from_slice(args);
    a[6] = fid;
    a[7] = eid;
    Exit {
        scause: 10,
        a,
        resumable: true,
        ..Default::default()
    }
}

pub fn fault(cause: u64, gpa: u64) -> Exit {
    Exit {
        scause: cause,
        gpa,
        htval: gpa >> 2,
        stval: gpa & 3,
        resumable: true,
        ..Default::default()
    }
}

/// An MMIO exit: `htinst` the transformed load (funct3) or store.
pub fn mmio(store: bool, funct3: u64, gpa: u64, value: u64) -> Exit {
    let htinst = if store {
        (10 << 20) | (15 << 15) | (funct3 << 12) | 0x23
    } else {
        (funct3 << 12) | (15 << 15) | (10 << 7) | 0x03
    };
    let mut x = fault(if store { 23 } else { 21 }, gpa);
    x.htinst = htinst;
    x.a[0] = value;
    x
}

pub fn step(x: Exit) -> Step {
    Box::new(move |_| x)
}

pub fn step_with(f: impl FnOnce(&mut World) -> Exit + Send + 'static) -> Step {
    Box::new(f)
}

#[cfg(test)]
#[path = "fake_tests.rs"]
mod tests;
