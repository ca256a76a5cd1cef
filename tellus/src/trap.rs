//! The Rust half of the trap vector: counts interrupts, skips expected
//! access faults, and ends the run on anything else.
//!
//! This code (like all of tellus's Rust) uses no FP or vector registers, so
//! the interrupted context's F/V state survives the handler untouched.

use core::sync::atomic::Ordering::*;

use crate::arch::{self, TrapFrame};
use crate::harts::{self, HartSlot};

/// A test's handler for instruction page faults it sets up on purpose
/// (registered by the test, so the trap handler imports no test module):
/// true if it fixed the fault and the instruction should be retried.
static FETCH_FAULT_FIXUP: spin::Once<fn(u64) -> bool> = spin::Once::new();

pub fn set_fetch_fault_fixup(f: fn(u64) -> bool) {
    FETCH_FAULT_FIXUP.call_once(|| f);
}

fn fetch_fault_fixup(stval: u64) -> bool {
    FETCH_FAULT_FIXUP.get().is_some_and(|f| f(stval))
}

/// Arms the current hart to survive one synchronous exception.
pub fn expect_fault() -> &'static HartSlot {
    let slot = harts::current();
    slot.fault_taken.store(false, Relaxed);
    slot.fault_cause.store(0, Relaxed);
    slot.fault_tval.store(0, Relaxed);
    slot.expect_fault.store(true, Release);
    slot
}

/// Disarms; returns `Some((scause, stval))` if a fault was taken.
pub fn fault_result(slot: &HartSlot) -> Option<(u64, u64)> {
    slot.expect_fault.store(false, Release);
    if slot.fault_taken.load(Acquire) {
        Some((
            slot.fault_cause.load(Relaxed),
            slot.fault_tval.load(Relaxed),
        ))
    } else {
        None
    }
}

#[no_mangle]
extern "C" fn tellus_trap(frame: &mut TrapFrame) {
    let slot = harts::current();
    if slot.in_trap.swap(true, Relaxed) {
        crate::fatal(format_args!(
            "nested trap scause={:#x} sepc={:#x} stval={:#x}",
            frame.scause, frame.sepc, frame.stval
        ));
    }
    let cause = frame.scause;
    if cause & arch::SCAUSE_INTERRUPT != 0 {
        match cause & !arch::SCAUSE_INTERRUPT {
            arch::IRQ_S_SOFT => {
                arch::sip_clear(arch::SSIP);
                slot.ipi_count.fetch_add(1, Release);
            }
            arch::IRQ_S_TIMER => {
                // STIP stays set until the timer is re-armed: mask it here
                // and let the test re-enable it.
                slot.timer_time.store(arch::read_time(), Relaxed);
                arch::sie_clear(arch::STIP);
                slot.timer_count.fetch_add(1, Release);
            }
            _ => crate::fatal(format_args!(
                "unexpected interrupt scause={:#x} sepc={:#x}",
                cause, frame.sepc
            )),
        }
    } else if cause == 12 && fetch_fault_fixup(frame.stval) {
        // An instruction page fault a test set up: retried.
    } else if slot.expect_fault.swap(false, AcqRel) {
        slot.fault_cause.store(cause, Relaxed);
        slot.fault_tval.store(frame.stval, Relaxed);
        slot.fault_epc.store(frame.sepc, Relaxed);
        slot.fault_taken.store(true, Release);
        // SAFETY: sepc is the address of the faulting instruction, which
        // (paging off) is readable tellus text.
        frame.sepc += unsafe { arch::insn_len(frame.sepc) };
    } else {
        crate::fatal(format_args!(
            "unexpected exception scause={:#x} sepc={:#x} stval={:#x}",
            cause, frame.sepc, frame.stval
        ));
    }
    slot.in_trap.store(false, Relaxed);
}
