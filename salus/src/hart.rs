//! State one hart shares with the others: its host vCPU's HSM state and the
//! mailbox through which other harts ask it for IPIs, fences and starts.
//!
//! Everything here is atomics: a hart posts a request and sends the target
//! a supervisor software interrupt (through the firmware's IPI); the target
//! serves its mailbox on that trap or when it leaves WFI.

use crate::arch::csr::{self, bits, num};
use crate::arch::entry::MAX_HARTS;
use crate::arch::sbi_call;
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

/// Does the fences other harts asked `hartid` for and acknowledges them.
/// Touches nothing but TLBs and the mailbox's atomics, so it is safe at any
/// point of Salus, with any guest's CSRs loaded.
pub fn serve_fences(hartid: usize) {
    let me = shared(hartid);
    let req = me.fence_req.load(Ordering::Acquire);
    if req == me.fence_done.load(Ordering::Relaxed) {
        return;
    }
    crate::arch::hfence_vvma_all();
    crate::arch::hfence_gvma_all();
    crate::arch::fence_i();
    // SeqCst pairs with the waiter's register-then-check (remote_fence):
    // either it sees this `fence_done`, or this swap sees its bit.
    me.fence_done.store(req, Ordering::SeqCst);
    crate::stats::event(hartid, crate::stats::MAILBOX_FENCE);
    let waiters = me.fence_waiters.swap(0, Ordering::SeqCst);
    if waiters != 0 {
        let _ = sbi_call::send_ipi(waiters, 0);
    }
}

/// For a hart spinning on a lock: serve fence requests if an IPI is
/// pending. SSIP stays pending so owed virtual IPIs are delivered by the
/// normal path later.
pub fn serve_fences_while_waiting() {
    if csr::read!(num::SIP) & (1 << bits::IRQ_S_SOFT) != 0 {
        serve_fences(crate::arch::entry::hart_id());
    }
}

/// Bit mask of every hart Salus runs on.
pub fn all_harts() -> u64 {
    let n = crate::platform::get().nharts;
    if n >= 64 {
        u64::MAX
    } else {
        (1 << n) - 1
    }
}

/// Fences the VS- and G-stage TLBs and instruction caches on every hart in
/// `targets` and returns once all of them have done it.
///
/// Never call this holding a lock another hart may wait for: Salus's locks
/// serve fences while they spin (sync::Mutex), but the rule keeps waits
/// short and simple (docs/security.md).
pub fn remote_fence(me: usize, targets: u64) {
    let mut waits = [0u64; MAX_HARTS];
    let mut phys_mask = 0u64;
    let mut t = targets;
    while t != 0 {
        let h = t.trailing_zeros() as usize;
        t &= t - 1;
        if h == me {
            // The caller fences its own G-stage if it needs to.
            crate::arch::hfence_vvma_all();
            crate::arch::fence_i();
        } else if h < MAX_HARTS && shared(h).online.load(Ordering::Acquire) {
            shared(h).fence_waiters.fetch_or(1 << me, Ordering::AcqRel);
            waits[h] = shared(h).fence_req.fetch_add(1, Ordering::AcqRel) + 1;
            phys_mask |= 1 << h;
        }
    }
    if phys_mask == 0 {
        return;
    }
    let since = crate::stats::now();
    let _ = sbi_call::send_ipi(phys_mask, 0);
    // Sleep until every target has fenced; each one IPIs us back when done.
    // SSIP is cleared before the re-check, so an ack that lands between the
    // check and the wfi still wakes us. We register as a waiter again before
    // every check: a target serving an older request may have used up our
    // registration (its ack does not cover our request). Owed virtual IPIs
    // are left to the normal path (this may run with a TVM's CSRs loaded):
    // SSIP is raised again on the way out if one is owed.
    loop {
        csr::clear!(num::SIP, 1 << bits::IRQ_S_SOFT);
        serve_fences(me);
        let mut pending = false;
        let mut t = phys_mask;
        while t != 0 {
            let h = t.trailing_zeros() as usize;
            t &= t - 1;
            let target = shared(h);
            if target.fence_done.load(Ordering::SeqCst) < waits[h] {
                target.fence_waiters.fetch_or(1 << me, Ordering::SeqCst);
                pending |= target.fence_done.load(Ordering::SeqCst) < waits[h];
            }
        }
        if !pending {
            break;
        }
        crate::arch::wfi();
    }
    crate::stats::wait_done(crate::stats::REMOTE_FENCE, since);
    if shared(me).vssip.load(Ordering::Acquire) {
        csr::set!(num::SIP, 1 << bits::IRQ_S_SOFT);
    }
}
