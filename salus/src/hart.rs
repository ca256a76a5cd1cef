//! State one hart shares with the others: its host vCPU's HSM state and the
//! mailbox through which other harts ask it for IPIs, fences and starts.
//!
//! Everything here is atomics: a hart posts a request and sends the target
//! a supervisor software interrupt (through the firmware's IPI); the target
//! serves its mailbox on that trap or when it leaves WFI.

use crate::arch::entry::MAX_HARTS;
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};

/// HSM states of a host vCPU (SBI spec numbering).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum HsmState {
    Started = 0,
    Stopped = 1,
    StartPending = 2,
    StopPending = 3,
    Suspended = 4,
}

impl HsmState {
    fn from_u8(v: u8) -> HsmState {
        match v {
            0 => HsmState::Started,
            2 => HsmState::StartPending,
            3 => HsmState::StopPending,
            4 => HsmState::Suspended,
            _ => HsmState::Stopped,
        }
    }
}

pub struct HartShared {
    /// The physical hart exists and runs Salus.
    pub online: AtomicBool,
    hsm: AtomicU8,
    pub start_addr: AtomicU64,
    pub start_opaque: AtomicU64,
    /// A virtual supervisor software interrupt is owed to the host vCPU.
    pub vssip: AtomicBool,
    /// Remote-fence generations: requested by others, completed by the hart.
    pub fence_req: AtomicU64,
    pub fence_done: AtomicU64,
    /// Harts waiting for this one's fence: IPI'd when it completes.
    pub fence_waiters: AtomicU64,
    /// The host's NACL shared memory on this hart (0: none). Written and
    /// checked under the TSM lock so it can never be converted.
    pub nacl_shmem: AtomicU64,
}

impl HartShared {
    const fn new() -> Self {
        HartShared {
            online: AtomicBool::new(false),
            hsm: AtomicU8::new(HsmState::Stopped as u8),
            start_addr: AtomicU64::new(0),
            start_opaque: AtomicU64::new(0),
            vssip: AtomicBool::new(false),
            fence_req: AtomicU64::new(0),
            fence_done: AtomicU64::new(0),
            fence_waiters: AtomicU64::new(0),
            nacl_shmem: AtomicU64::new(0),
        }
    }

    pub fn hsm(&self) -> HsmState {
        HsmState::from_u8(self.hsm.load(Ordering::Acquire))
    }

    pub fn set_hsm(&self, s: HsmState) {
        self.hsm.store(s as u8, Ordering::Release);
    }

    /// Atomically moves `from` -> `to`; false if the state was not `from`.
    pub fn hsm_transition(&self, from: HsmState, to: HsmState) -> bool {
        self.hsm
            .compare_exchange(from as u8, to as u8, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }
}

#[allow(clippy::declare_interior_mutable_const)]
const INIT: HartShared = HartShared::new();
static HARTS: [HartShared; MAX_HARTS] = [INIT; MAX_HARTS];

/// Shared state of hart `id` (`id < MAX_HARTS`, checked by callers).
pub fn shared(id: usize) -> &'static HartShared {
    &HARTS[id]
}
