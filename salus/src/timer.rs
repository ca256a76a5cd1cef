//! One owner for each hart's HS-level timer. The host's emulated timer (no
//! Sstc), the host's deadline while a TVM runs (Sstc), the IOMMU fault
//! drain and later U-mode tasks all need it; they go through here instead
//! of writing `stimecmp` (or the firmware's timer) themselves, so none can
//! silently disarm another. The policy lives in the `timer-mux` crate.
//!
//! Each hart's multiplexer is only touched by that hart, with interrupts
//! off, so its lock is never contended.

use crate::arch::csr::{self, bits, num};
use crate::arch::entry::MAX_HARTS;
use crate::platform;
use spin::Mutex;
use timer_mux::Mux;
pub use timer_mux::{Source, Sources, NEVER};

static MUX: [Mutex<Mux>; MAX_HARTS] = [const { Mutex::new(Mux::new()) }; MAX_HARTS];

fn program(deadline: u64) {
    if platform::get().has_sstc {
        csr::write!(num::STIMECMP, deadline);
    } else {
        crate::arch::sbi_call::set_timer(deadline);
    }
}

fn with<R>(hartid: usize, f: impl FnOnce(&mut Mux) -> R) -> R {
    let mut m = MUX[hartid]
        .try_lock()
        .expect("a hart's timer multiplexer is used only by that hart");
    f(&mut m)
}

/// Arms `s` on `hartid` (the calling hart) for `deadline` (in `time`
/// ticks); the hardware gets the earliest armed deadline.
pub fn set(hartid: usize, s: Source, deadline: u64) {
    if let Some(d) = with(hartid, |m| m.set(s, deadline)) {
        program(d);
    }
}

/// Disarms `s` on the calling hart.
pub fn cancel(hartid: usize, s: Source) {
    if let Some(d) = with(hartid, |m| m.cancel(s)) {
        program(d);
    }
}

/// On the S-timer interrupt: the sources whose deadline passed (now
/// disarmed); the hardware is re-programmed with the next deadline.
pub fn expired(hartid: usize) -> Sources {
    let now = crate::arch::time();
    let (fired, next) = with(hartid, |m| m.expired(now));
    program(next);
    fired
}

/// The deadline of `s` on `hartid`, and what the hardware was given.
pub fn deadline(hartid: usize, s: Source) -> (u64, u64) {
    with(hartid, |m| (m.deadline(s), m.programmed()))
}

/// Writes `vstimecmp` (Sstc) with `deadline`, then makes sure a deadline
/// still in the future leaves no VS timer interrupt pending. Sstc ties
/// VSTIP to `time + htimedelta >= vstimecmp` (htimedelta is 0 here), so a
/// later deadline must clear it. QEMU (10.0) clears its VSTIP before it
/// takes the lock under which the expiry of the previous deadline sets it,
/// so that expiry can re-raise VSTIP just as the new value lands: the
/// host (or TVM) then takes its timer interrupt before its deadline. The
/// read of `hip` waits for such an expiry to finish; one more write then
/// clears what it left. Bounded: `hvip.VSTIP`, which no write here
/// clears, is never set with Sstc.
pub fn write_vstimecmp(deadline: u64) {
    csr::write!(num::VSTIMECMP, deadline);
    settle_vstimecmp(deadline);
}

/// What [`write_vstimecmp`] does after the write, for a `vstimecmp` just
/// given `deadline` by other means (a swap).
pub fn settle_vstimecmp(deadline: u64) {
    for _ in 0..4 {
        if csr::read!(num::HIP) & (1 << bits::IRQ_VS_TIMER) == 0 || crate::arch::time() >= deadline
        {
            return;
        }
        csr::write!(num::VSTIMECMP, deadline);
    }
}
