//! A TVM vCPU's state, kept in the pages the host donated for it: GPRs,
//! VS-level CSRs, FP and vector registers, and the exit awaiting completion.

use crate::arch::entry::{reg, GuestRegs};
use crate::arch::fpvec::{FpState, VecCsrs};
use core::sync::atomic::{AtomicBool, Ordering};
use hyp_addr::PAGE_SIZE;
use page_tracking::TvmId;

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
}

#[repr(C)]
pub struct VcpuState {
    running: AtomicBool,
    pub tvm: TvmId,
    pub vcpu_id: u64,
    /// May be run: the boot vCPU after finalize, others once started.
    pub started: bool,
    pub pending: Pending,
    pub regs: GuestRegs,
    pub csrs: VsCsrs,
    pub fp: FpState,
    pub vec: VecCsrs,
}

/// Offset of the vector register area inside the state pages.
pub const VEC_AREA_OFFSET: u64 = (core::mem::size_of::<VcpuState>() as u64).next_multiple_of(64);

/// Pages the host must donate per vCPU.
pub fn state_pages() -> u64 {
    (VEC_AREA_OFFSET + 32 * crate::platform::get().vlenb).div_ceil(PAGE_SIZE)
}

impl VcpuState {
    pub fn new(tvm: TvmId, vcpu_id: u64) -> Self {
        VcpuState {
            running: AtomicBool::new(false),
            tvm,
            vcpu_id,
            started: false,
            pending: Pending::None,
            regs: GuestRegs::new(),
            csrs: VsCsrs {
                vstimecmp: u64::MAX,
                spp: 1,
                ..VsCsrs::default()
            },
            fp: FpState::default(),
            vec: VecCsrs::default(),
        }
    }

    /// Architectural reset at `entry` with a0 = vCPU id, a1 = `arg`.
    pub fn boot(&mut self, entry: u64, arg: u64) {
        self.regs = GuestRegs::new();
        self.regs.sepc = entry;
        self.regs.gprs[reg::A0] = self.vcpu_id;
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
        self.started = true;
    }

    /// Claims the vCPU for this hart; false if it runs elsewhere.
    pub fn try_claim(&self) -> bool {
        let ok = self
            .running
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_ok();
        if ok {
            RUNNING_VCPUS.fetch_add(1, Ordering::AcqRel);
        }
        ok
    }

    pub fn release(&self) {
        if self.running.swap(false, Ordering::AcqRel) {
            RUNNING_VCPUS.fetch_sub(1, Ordering::AcqRel);
        }
    }

    pub fn is_running(&self) -> bool {
        self.running.load(Ordering::Acquire)
    }
}

/// vCPUs claimed by some hart (running or about to), for the reset path.
static RUNNING_VCPUS: core::sync::atomic::AtomicUsize = core::sync::atomic::AtomicUsize::new(0);

pub fn running_vcpus() -> usize {
    RUNNING_VCPUS.load(Ordering::Acquire)
}
