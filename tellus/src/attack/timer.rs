//! Findings 13 and 18: Salus's own timer deadlines (the IOMMU fault drain
//! on the boot hart) fire while a TVM runs there; they must be served and
//! the TVM resumed, not turned into timer exits for the host, and must
//! stay armed after the run. With `salus.check` Salus itself verifies the
//! drain is armed after every TVM run (xtests run this with an IOMMU).

use super::csrs::{csrr, run_past_interrupts, with_code_tvm, ECALL, SPIN, T0};
use crate::harness::{run_one, T};
use crate::platform::Platform;
use crate::tee::ctx::Ctx;
use crate::tee::*;
use cove_abi::covh::exception::VIRTUAL_SUPERVISOR_ENV_CALL;

const T1: u32 = 6;
const T2: u32 = 7;
const TIME: u32 = 0xc01;

/// How long the TVM spins (timer ticks): more than two IOMMU drain periods
/// (50 ms at QEMU virt's 10 MHz).
const SPIN_TICKS: u32 = 0x10_0000;

fn test_drain_in_tvm(t: &mut T, p: &Platform, cx: &mut Ctx) {
    if p.bench {
        t.note(format_args!("skipped in bench mode"));
        return;
    }
    // csrr t0, time; lui t1, SPIN_TICKS; add t1, t0, t1;
    // 1: csrr t2, time; bltu t2, t1, 1b; ecall; j .
    let code = [
        csrr(T0, TIME),
        (SPIN_TICKS & 0xffff_f000) | (T1 << 7) | 0x37,
        (T1 << 20) | (T0 << 15) | (T1 << 7) | 0x33,
        csrr(T2, TIME),
        // bltu t2, t1, -4
        0xfe63_eee3,
        ECALL,
        SPIN,
    ];
    // The host's own timer stays off: any timer exit would be Salus's.
    let _ = crate::sbi::set_timer(u64::MAX);
    let start = crate::arch::read_time();
    with_code_tvm(t, p, cx, &code, |t, id, _slot| {
        let (x, irqs, timers) = run_past_interrupts(id);
        let ticks = crate::arch::read_time() - start;
        t.check(
            x.error == OK && x.scause == VIRTUAL_SUPERVISOR_ENV_CALL,
            format_args!(
                "error {} scause {:#x} (want the TVM's ecall)",
                x.error, x.scause
            ),
        );
        t.check(
            timers == 0,
            format_args!("{timers} timer exit(s) while the host's timer was off"),
        );
        t.check(
            ticks >= SPIN_TICKS as u64,
            format_args!("the TVM ran only {ticks} ticks"),
        );
        t.note(format_args!("{ticks} ticks, {irqs} host interrupt exit(s)"));
    });
}

pub fn run(p: &Platform, cx: &mut Ctx) {
    run_one("attack_timer_drain_in_tvm", p, |t, p| {
        test_drain_in_tvm(t, p, cx)
    });
}
