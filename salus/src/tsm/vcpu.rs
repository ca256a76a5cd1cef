//! A TVM vCPU's state, kept in the pages the host donated for it: GPRs,
//! VS-level CSRs, FP and vector registers, and the exit awaiting completion.

use crate::arch::entry::{reg, GuestRegs};
use crate::arch::fpvec::{FpState, VecCsrs};
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use hyp_addr::PAGE_SIZE;
use page_tracking::TvmId;
use spin::{Mutex, MutexGuard};

/// What the host must finish before the vCPU resumes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pending {
    None,
    /// A forwarded ECALL: a0/a1 come back from the NACL scratch.
    Ecall,
    /// A COVG call already handled by the TSM: nothing comes back.
    Notify,
    /// An MMIO load into `rd`; the value comes back in NACL a0.
    MmioLoad {
        rd: u8,
        len: u8,
    },
    /// An MMIO store; nothing comes back.
    MmioStore {
        len: u8,
    },
}

/// VS-level CSRs that belong to the vCPU.
#[repr(C)]
#[derive(Clone, Debug, Default)]
pub struct VsCsrs {
    pub vsstatus: u64,
    pub vsie: u64,
    pub vstvec: u64,
    pub vsscratch: u64,
    pub vsepc: u64,
    pub vscause: u64,
    pub vstval: u64,
    pub vsatp: u64,
    pub vstimecmp: u64,
    pub hvip: u64,
    /// sstatus.SPP at the last exit (VS or VU).
    pub spp: u64,
    /// S-level CSRs VS-mode reaches directly (no VS copy): they are the
    /// TVM's while it runs (see tsm::run::swap_vs).
    pub senvcfg: u64,
    pub scounteren: u64,
    pub sstateen0: u64,
    /// The TVM's `siselect` (Ssaia).
    pub vsiselect: u64,
}

/// What only the hart running the vCPU touches: registers, CSRs, FP and
/// vector state, the exit awaiting completion.
#[repr(C)]
pub struct VcpuPrivate {
    pub pending: Pending,
    pub regs: GuestRegs,
    pub csrs: VsCsrs,
    pub fp: FpState,
    pub vec: VecCsrs,
}

/// A TVM vCPU, placed in its donated state pages. Other harts only ever see
/// it through `&VcpuState`: `started` is atomic, and the private part is
/// reachable only through a claim (at most one hart at a time), so no hart
/// ever holds a `&mut` another hart can alias.
#[repr(C)]
pub struct VcpuState {
    pub tvm: TvmId,
    pub vcpu_id: u64,
    /// May be run: the boot vCPU after finalize, others once started.
    started: AtomicBool,
    /// An SBI IPI from a vCPU of the same TVM is owed (its VSSIP).
    ipi_pending: AtomicBool,
    /// 1 + the hart running it, 0 when none (where to kick it).
    running_on: AtomicUsize,
    private: Mutex<VcpuPrivate>,
    /// COVI state (its IMSIC page, binding, software file, allowed ids):
    /// touched only under the TSM lock.
    pub covi: Mutex<super::covi::VcpuCovi>,
}

/// The claim on a vCPU: held while it runs on one hart.
pub type VcpuClaim = MutexGuard<'static, VcpuPrivate>;

/// Offset of the vector register area inside the state pages.
pub const VEC_AREA_OFFSET: u64 = (core::mem::size_of::<VcpuState>() as u64).next_multiple_of(64);

/// Pages the host must donate per vCPU.
pub fn state_pages() -> u64 {
    (VEC_AREA_OFFSET + 32 * crate::platform::get().vlenb).div_ceil(PAGE_SIZE)
}

impl VcpuPrivate {
    /// Architectural reset at `entry` with a0 = `vcpu_id`, a1 = `arg`.
    fn boot(&mut self, vcpu_id: u64, entry: u64, arg: u64) {
        self.regs = GuestRegs::new();
        self.regs.sepc = entry;
        self.regs.gprs[reg::A0] = vcpu_id;
        self.regs.gprs[reg::A1] = arg;
        let p = crate::platform::get();
        use crate::arch::csr::bits;
        self.csrs = VsCsrs {
            vsstatus: bits::SSTATUS_FS_INITIAL
                | if p.has_vector {
                    bits::SSTATUS_VS_INITIAL
                } else {
                    0
                },
            vstimecmp: u64::MAX,
            spp: 1,
            ..VsCsrs::default()
        };
        // A valid vtype for the restore (vill set, vl 0).
        self.vec = VecCsrs {
            vtype: 1 << 63,
            ..VecCsrs::default()
        };
        self.pending = Pending::None;
    }
}

impl VcpuState {
    pub fn new(tvm: TvmId, vcpu_id: u64) -> Self {
        VcpuState {
            tvm,
            vcpu_id,
            started: AtomicBool::new(false),
            ipi_pending: AtomicBool::new(false),
            running_on: AtomicUsize::new(0),
            private: Mutex::new(VcpuPrivate {
                pending: Pending::None,
                regs: GuestRegs::new(),
                csrs: VsCsrs {
                    vstimecmp: u64::MAX,
                    spp: 1,
                    ..VsCsrs::default()
                },
                fp: FpState::default(),
                vec: VecCsrs::default(),
            }),
            covi: Mutex::new(super::covi::VcpuCovi::new()),
        }
    }

    pub fn started(&self) -> bool {
        self.started.load(Ordering::Acquire)
    }

    /// hart_stop from the vCPU itself (it holds its own claim).
    pub fn stop(&self) {
        self.started.store(false, Ordering::Release);
    }

    /// Resets a stopped vCPU to start at `entry`; false if it is started or
    /// still claimed by a hart (being switched out: not stopped yet).
    pub fn boot(&'static self, entry: u64, arg: u64) -> bool {
        if self.started() {
            return false;
        }
        let Some(mut p) = self.private.try_lock() else {
            return false;
        };
        p.boot(self.vcpu_id, entry, arg);
        // A started hart begins with no IPI owed.
        self.ipi_pending.store(false, Ordering::SeqCst);
        self.started.store(true, Ordering::Release);
        true
    }

    /// Claims the vCPU for this hart; None if it runs elsewhere.
    pub fn try_claim(&'static self) -> Option<VcpuClaim> {
        self.private.try_lock()
    }

    pub fn is_running(&self) -> bool {
        self.private.is_locked()
    }

    /// The holder of the claim runs it on `hart` (None: stopped running).
    /// SeqCst pairs with `post_ipi`: either the poster sees the hart and
    /// kicks it, or the hart sees the IPI in `take_ipi` after this.
    pub fn set_running_on(&self, hart: Option<usize>) {
        self.running_on
            .store(hart.map_or(0, |h| h + 1), Ordering::SeqCst);
    }

    /// Owes the vCPU an IPI; returns the hart to kick if it runs now.
    pub fn post_ipi(&self) -> Option<usize> {
        self.ipi_pending.store(true, Ordering::SeqCst);
        self.running_on.load(Ordering::SeqCst).checked_sub(1)
    }

    /// Takes an owed IPI (the caller raises the vCPU's VSSIP).
    pub fn take_ipi(&self) -> bool {
        self.ipi_pending.load(Ordering::SeqCst) && self.ipi_pending.swap(false, Ordering::SeqCst)
    }
}
