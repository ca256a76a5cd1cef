//! Running the finalized TVM: one thread per vCPU, each serving its own
//! exits (console, shutdown, HSM, COVG notifications, demand-zero, shared
//! and MMIO faults) against state shared by all vCPUs.
#![forbid(unsafe_code)]

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use sbi_abi::{dbcn, hsm, srst};

use crate::abi::{errno, SIZE_2M, SIZE_4K};
use crate::args::Profile;
use crate::console::LineBuf;
use crate::exit::{self, Access, Kind, Mmio};
use crate::guestvm::{self, ERR_NOT_SUPPORTED, OK};
use crate::linux_tvm;
use crate::memory::{Memory, Range, Target};
use crate::protocol as proto;
use crate::tsm::{Exit, PageSize, Tsm};

const EID_DBCN: u64 = dbcn::EID_DBCN as u64;
const EID_SRST: u64 = srst::EID_SRST as u64;
const EID_HSM: u64 = hsm::EID_HSM as u64;

/// Consecutive exits of one vCPU that changed nothing before the VMM gives
/// up on the TVM.
pub const NO_PROGRESS_LIMIT: u64 = 10_000;

pub struct Config {
    pub profile: Profile,
    pub vcpus: u64,
    pub max_exits: Option<u64>,
    pub verbose: bool,
    /// A vCPU that starts another with HSM waits until that one stops
    /// (guestvm's secondary-vCPU test relies on it), at most this long.
    pub hsm_sync: Option<Duration>,
    /// Forwarded ecalls the driver answers itself (0: none; the bench).
    pub nop_eid: u64,
}

/// How the TVM ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum End {
    /// SBI SRST system_reset(type, reason).
    Shutdown { kind: u64, reason: u64 },
    /// The VMM could not go on; why.
    Failed(String),
}

/// Counters for the summary line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub exits: u64,
    pub ecalls: u64,
    pub zero_faults: u64,
    pub zero_pages_2m: u64,
    pub shared_faults: u64,
    pub unshared_pages: u64,
    pub mmio: u64,
    pub lines: u64,
    pub passed: u64,
    pub failed: u64,
}

/// What the vCPU does after an exit.
enum Step {
    /// Run again, handing (a0, a1) to the TSM; `false`: nothing changed.
    Resume(u64, u64, bool),
    /// The vCPU called hart_stop: wait for the next hart_start.
    Stopped,
    End(End),
}

fn resume(e: i64, v: u64) -> Step {
    Step::Resume(e as u64, v, true)
}

fn fail(msg: String) -> Step {
    Step::End(End::Failed(msg))
}

/// HSM bookkeeping: vCPU `i` should run while `starts[i] > stops[i]`.
struct Sched {
    starts: Vec<u64>,
    stops: Vec<u64>,
    end: Option<End>,
}

struct Console {
    lines: LineBuf,
    out: Box<dyn Write + Send>,
    /// Bytes go out as they come (a shell's prompt has no newline), not
    /// line by line.
    raw: bool,
}

/// The Linux TVM's UART and where its input comes from.
struct Uart {
    regs: uart16550::Uart16550,
    input: Option<Receiver<u8>>,
}

pub struct Vm<T: Tsm> {
    tsm: T,
    cfg: Config,
    mem: Mutex<Memory<T::Page>>,
    dev: Mutex<guestvm::Device>,
    uart: Mutex<Uart>,
    console: Mutex<Console>,
    /// When the TVM first printed (the launch bench).
    pub first_line: std::sync::OnceLock<std::time::Instant>,
    sched: Mutex<Sched>,
    cv: Condvar,
    ended: AtomicBool,
    exits: AtomicU64,
    ecalls: AtomicU64,
    zero_faults: AtomicU64,
    zero_2m: AtomicU64,
    shared_faults: AtomicU64,
    unshared: AtomicU64,
    mmio: AtomicU64,
}

fn lock<X>(m: &Mutex<X>) -> MutexGuard<'_, X> {
    // A panicking vCPU thread aborts the process (panic = "abort" in
    // release); in tests, carry on with the data as it is.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn describe(x: &Exit) -> String {
    format!(
        "scause {:#x} stval {:#x} htval {:#x} htinst {:#x} gpa {:#x}",
        x.scause, x.stval, x.htval, x.htinst, x.gpa
    )
}

impl<T: Tsm> Vm<T> {
    /// `input`: the bytes the Linux TVM's UART receives.
    pub fn new(
        tsm: T,
        cfg: Config,
        mem: Memory<T::Page>,
        out: Box<dyn Write + Send>,
        input: Option<Receiver<u8>>,
    ) -> Arc<Self> {
        let n = cfg.vcpus as usize;
        let uart = Uart {
            regs: uart16550::Uart16550::new(),
            input,
        };
        let raw = cfg.profile == Profile::LinuxTvm;
        let mut starts = vec![0; n];
        starts[0] = 1; // the boot vCPU runs from finalize
        Arc::new(Vm {
            tsm,
            cfg,
            mem: Mutex::new(mem),
            dev: Mutex::new(guestvm::Device::default()),
            uart: Mutex::new(uart),
            first_line: std::sync::OnceLock::new(),
            console: Mutex::new(Console {
                lines: LineBuf::default(),
                out,
                raw,
            }),
            sched: Mutex::new(Sched {
                starts,
                stops: vec![0; n],
                end: None,
            }),
            cv: Condvar::new(),
            ended: AtomicBool::new(false),
            exits: AtomicU64::new(0),
            ecalls: AtomicU64::new(0),
            zero_faults: AtomicU64::new(0),
            zero_2m: AtomicU64::new(0),
            shared_faults: AtomicU64::new(0),
            unshared: AtomicU64::new(0),
            mmio: AtomicU64::new(0),
        })
    }

    /// Runs every vCPU on its own thread until the TVM shuts down or the
    /// VMM gives up. vCPU threads still inside the run ioctl are left
    /// behind (the process exits after this).
    pub fn run(self: &Arc<Self>) -> End {
        for id in 0..self.cfg.vcpus {
            let vm = Arc::clone(self);
            let spawned = std::thread::Builder::new()
                .name(format!("vcpu{id}"))
                .spawn(move || vm.vcpu_loop(id));
            if let Err(e) = spawned {
                self.end(End::Failed(format!(
                    "cannot start the vCPU {id} thread: {e}"
                )));
            }
        }
        let mut s = lock(&self.sched);
        while s.end.is_none() {
            s = self.cv.wait(s).unwrap_or_else(|e| e.into_inner());
        }
        let end = s.end.clone().unwrap();
        drop(s);
        let mut c = lock(&self.console);
        if let Some(l) = c.lines.flush() {
            if !c.raw {
                let _ = writeln!(c.out, "{l}");
            }
        }
        let _ = c.out.flush();
        end
    }

    pub fn stats(&self) -> Stats {
        let c = lock(&self.console);
        Stats {
            exits: self.exits.load(Relaxed),
            ecalls: self.ecalls.load(Relaxed),
            zero_faults: self.zero_faults.load(Relaxed),
            zero_pages_2m: self.zero_2m.load(Relaxed),
            shared_faults: self.shared_faults.load(Relaxed),
            unshared_pages: self.unshared.load(Relaxed),
            mmio: self.mmio.load(Relaxed),
            lines: c.lines.lines,
            passed: c.lines.passed,
            failed: c.lines.failed,
        }
    }

    fn end(&self, e: End) {
        let mut s = lock(&self.sched);
        if s.end.is_none() {
            s.end = Some(e);
        }
        self.ended.store(true, Relaxed);
        self.cv.notify_all();
    }

    fn note(&self, msg: &str) {
        eprintln!("salus-vmm: {msg}");
    }

    fn vcpu_loop(&self, id: u64) {
        let i = id as usize;
        loop {
            {
                let mut s = lock(&self.sched);
                while s.end.is_none() && s.starts[i] <= s.stops[i] {
                    s = self.cv.wait(s).unwrap_or_else(|e| e.into_inner());
                }
                if s.end.is_some() {
                    return;
                }
            }
            let (mut a0, mut a1) = (0, 0);
            let mut idle = 0;
            loop {
                if self.ended.load(Relaxed) {
                    return;
                }
                let x = match self.tsm.run_vcpu(id, a0, a1, self.cfg.nop_eid) {
                    Ok(x) => x,
                    Err(e) if e.is(errno::EINTR) => continue,
                    Err(e) => {
                        let e = self.tsm.explain(e);
                        return self.end(End::Failed(format!("vCPU {id}: {e}")));
                    }
                };
                let n = self.exits.fetch_add(1, Relaxed) + 1;
                match self.handle(id, &x) {
                    Step::Resume(r0, r1, progress) => {
                        (a0, a1) = (r0, r1);
                        idle = if progress { 0 } else { idle + 1 };
                        if idle > NO_PROGRESS_LIMIT {
                            return self.end(End::Failed(format!(
                                "vCPU {id}: {NO_PROGRESS_LIMIT} exits in a row without progress (last: {})",
                                describe(&x)
                            )));
                        }
                    }
                    Step::Stopped => {
                        let mut s = lock(&self.sched);
                        s.stops[i] += 1;
                        self.cv.notify_all();
                        break;
                    }
                    Step::End(e) => return self.end(e),
                }
                if let Some(max) = self.cfg.max_exits.filter(|&m| n >= m) {
                    return self.end(End::Failed(format!("no shutdown after {max} exits")));
                }
            }
        }
    }

    fn handle(&self, id: u64, x: &Exit) -> Step {
        match exit::classify(x) {
            Kind::Ecall { eid, fid, a } => {
                self.ecalls.fetch_add(1, Relaxed);
                self.ecall(id, eid, fid, &a, &x.console)
            }
            Kind::Fault {
                access,
                gpa,
                htinst,
                store_value,
            } => self.fault(id, access, gpa, htinst, store_value),
            // The driver serves interrupts itself; one that gets here
            // changes nothing.
            Kind::Interrupt(_) => Step::Resume(0, 0, false),
            Kind::NotResumable => fail(format!(
                "vCPU {id} cannot run again (Salus: not resumable): {}",
                describe(x)
            )),
            Kind::Unexpected => fail(format!(
                "vCPU {id}: exit the VMM cannot serve: {}",
                describe(x)
            )),
        }
    }

    fn ecall(&self, id: u64, eid: u64, fid: u64, a: &[u64; 8], console: &[u8]) -> Step {
        match (eid, fid as usize) {
            // Salus serves DBCN (the TVM has its answer already) and hands
            // over the bytes: the VMM never reads TVM memory for them.
            (EID_DBCN, dbcn::CONSOLE_WRITE) => {
                self.console_bytes(console);
                resume(OK, console.len() as u64)
            }
            (EID_DBCN, dbcn::CONSOLE_WRITE_BYTE) => {
                self.console_bytes(&[a[0] as u8]);
                resume(OK, 0)
            }
            (EID_SRST, srst::SYSTEM_RESET) => Step::End(End::Shutdown {
                kind: a[0],
                reason: a[1],
            }),
            // HSM notifications: the TSM changed the vCPU's state and
            // answered the guest already (our answer is ignored).
            (EID_HSM, hsm::HART_START) => self.hart_started(id, a[0]),
            (EID_HSM, hsm::HART_STOP) => Step::Stopped,
            (cove_abi::EID_COVG, _) => self.covg(fid, Range::new(a[0], a[1])),
            (proto::EID_GVM, _) if self.cfg.profile == Profile::Guestvm => {
                let mem = lock(&self.mem);
                let (e, v) = lock(&self.dev).ecall(fid, a, &mem);
                resume(e, v)
            }
            _ => {
                if self.cfg.verbose {
                    self.note(&format!(
                        "vCPU {id}: SBI call eid {eid:#x} fid {fid} not supported"
                    ));
                }
                resume(ERR_NOT_SUPPORTED, 0)
            }
        }
    }

    fn console_bytes(&self, b: &[u8]) {
        let _ = self.first_line.set(std::time::Instant::now());
        let mut c = lock(&self.console);
        let lines = c.lines.push(b);
        if c.raw {
            let _ = c.out.write_all(b);
            let _ = c.out.flush();
            return;
        }
        for line in lines {
            let _ = writeln!(c.out, "{line}");
            let _ = c.out.flush();
        }
    }

    fn hart_started(&self, id: u64, target: u64) -> Step {
        let t = target as usize;
        let mut s = lock(&self.sched);
        if t >= s.starts.len() {
            return fail(format!(
                "vCPU {id} started vCPU {target}, which the VMM never created"
            ));
        }
        s.starts[t] += 1;
        let want = s.starts[t];
        self.cv.notify_all();
        if let Some(limit) = self.cfg.hsm_sync {
            let (s, timeout) = self
                .cv
                .wait_timeout_while(s, limit, |s| s.stops[t] < want && s.end.is_none())
                .unwrap_or_else(|e| e.into_inner());
            if timeout.timed_out() && s.stops[t] < want {
                return fail(format!(
                    "vCPU {target}, started by vCPU {id}, did not stop within {limit:?}"
                ));
            }
        }
        resume(OK, 0)
    }

    /// COVG notifications (the TSM accepted the call and answered it).
    fn covg(&self, fid: u64, r: Range) -> Step {
        use cove_abi::CovgFunction as F;
        let mut mem = lock(&self.mem);
        match F::from_fid(fid) {
            Some(F::AddMmioRegion) => mem.add_mmio(r),
            Some(F::RemoveMmioRegion) => mem.remove_mmio(r),
            Some(F::ShareMemoryRegion) => {
                if let Err(e) = mem.share(r) {
                    return fail(format!("the TSM accepted a {e}"));
                }
                let n = mem.private_pages_in(r);
                if n != 0 {
                    self.note(&format!(
                        "the TVM shared [{:#x}, {:#x}) over {n} confidential page(s): they stay private",
                        r.gpa,
                        r.end()
                    ));
                }
            }
            Some(F::UnshareMemoryRegion) => {
                for g in mem.unshare(r) {
                    if let Err(e) = self.tsm.remove_shared(g, SIZE_4K) {
                        let e = self.tsm.explain(e);
                        return fail(format!("unshare: remove the shared page at {g:#x}: {e}"));
                    }
                    self.unshared.fetch_add(1, Relaxed);
                }
            }
            _ => {}
        }
        resume(OK, 0)
    }

    fn fault(&self, id: u64, access: Access, gpa: u64, htinst: u64, store_value: u64) -> Step {
        let mut mem = lock(&self.mem);
        let what = match access {
            Access::Fetch => "fetch",
            Access::Load => "load",
            Access::Store => "store",
        };
        match mem.target(gpa) {
            Target::Mmio => match exit::decode_mmio(access, htinst) {
                Ok(m) => self.mmio(id, gpa, m, store_value),
                Err(e) => fail(format!("vCPU {id}: MMIO {what} at {gpa:#x}: {e}")),
            },
            Target::NewShared => {
                let page_gpa = gpa & !(SIZE_4K - 1);
                let page = match self.tsm.new_host_page() {
                    Ok(p) => p,
                    Err(e) => return fail(format!("a host page for shared {page_gpa:#x}: {e}")),
                };
                if let Err(e) = self.tsm.add_shared(page_gpa, &page) {
                    let e = self.tsm.explain(e);
                    return fail(format!("vCPU {id}: shared page at {page_gpa:#x}: {e}"));
                }
                mem.add_shared(page_gpa, page);
                self.shared_faults.fetch_add(1, Relaxed);
                resume(OK, 0)
            }
            Target::Zero => {
                if let Some(b) = mem.take_2m_block(gpa) {
                    match self.tsm.add_zero(b, SIZE_2M, PageSize::Size2M) {
                        Ok(()) => {
                            mem.zero_added(b, true);
                            self.zero_faults.fetch_add(1, Relaxed);
                            self.zero_2m.fetch_add(1, Relaxed);
                            return resume(OK, 0);
                        }
                        Err(e) if self.cfg.verbose => self.note(&format!(
                            "no 2 MiB zero page at {b:#x} ({}): 4 KiB pages instead",
                            self.tsm.explain(e)
                        )),
                        Err(_) => {}
                    }
                }
                let page = gpa & !(SIZE_4K - 1);
                if let Err(e) = self.tsm.add_zero(page, SIZE_4K, PageSize::Size4K) {
                    let e = self.tsm.explain(e);
                    return fail(format!("vCPU {id}: zero page at {page:#x}: {e}"));
                }
                mem.zero_added(page, false);
                self.zero_faults.fetch_add(1, Relaxed);
                resume(OK, 0)
            }
            Target::Mapped => Step::Resume(0, 0, false),
            Target::Measured => fail(format!(
                "vCPU {id}: guest page fault ({what}) at {gpa:#x}, on a measured page"
            )),
            Target::Outside => fail(format!(
                "vCPU {id}: guest page fault ({what}) at {gpa:#x}, outside the TVM's memory and MMIO regions"
            )),
        }
    }

    fn mmio(&self, id: u64, gpa: u64, m: Mmio, store_value: u64) -> Step {
        let dir = if m.store { "store" } else { "load" };
        match self.cfg.profile {
            Profile::Guestvm => {
                if let Some(off) = guestvm::Device::offset(gpa) {
                    return self.guestvm_device(id, off, m, store_value);
                }
            }
            Profile::LinuxTvm => {
                if let Some(off) = linux_tvm::uart_offset(gpa) {
                    return self.uart(off, m, store_value);
                }
            }
            Profile::Generic => {}
        }
        fail(format!(
            "vCPU {id}: MMIO {dir} of {} byte(s) at {gpa:#x}: no device there",
            m.width
        ))
    }

    fn guestvm_device(&self, id: u64, off: u64, m: Mmio, store_value: u64) -> Step {
        self.mmio.fetch_add(1, Relaxed);
        let mut dev = lock(&self.dev);
        if m.store {
            if let Err(e) = dev.store(off, m.width, store_value) {
                self.note(&format!("vCPU {id}: {e}"));
            }
            resume(OK, 0)
        } else {
            resume(m.load_result(dev.load(off)) as i64, 0)
        }
    }

    /// The 16550's registers are bytes: a wider access reaches the one at
    /// its address (the low byte of a store; a load reads zeros above it).
    fn uart(&self, off: u64, m: Mmio, store_value: u64) -> Step {
        self.mmio.fetch_add(1, Relaxed);
        let mut u = lock(&self.uart);
        if m.store {
            let out = u.regs.write(off, store_value as u8);
            drop(u);
            if let Some(b) = out {
                self.console_bytes(&[b]);
            }
            resume(OK, 0)
        } else {
            let Uart { regs, input } = &mut *u;
            let v = regs.read(off, &mut || input.as_ref().and_then(|r| r.try_recv().ok()));
            resume(m.load_result(u64::from(v)) as i64, 0)
        }
    }
}
