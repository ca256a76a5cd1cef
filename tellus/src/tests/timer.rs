//! Timer deadlines under stress: every live hart at once programs many
//! short random deadlines and checks that no timer interrupt is ever seen
//! before its deadline (SBI TIME: the interrupt is for "after"
//! stime_value), and that set_timer with a future deadline clears a
//! pending one.

use core::sync::atomic::{AtomicU64, Ordering::*};

use crate::arch;
use crate::harness::T;
use crate::harts::{self, SLOTS};
use crate::platform::{Platform, MAX_HARTS};
use crate::sbi;

use super::common::*;

/// Deadlines per hart, and their range in ticks after `now`.
const ROUNDS: u64 = 200;
const MIN_TICKS: u64 = 1_000;
const MAX_TICKS: u64 = 200_000;
/// How late an interrupt may be before it counts as missing (QEMU's
/// threads share a loaded machine; lateness is not what is tested here).
const SLACK_MS: u64 = 1_000;

/// Per slot: failures by kind, and the worst earliness seen.
struct Stats {
    early: AtomicU64,
    worst_early: AtomicU64,
    stale: AtomicU64,
    missing: AtomicU64,
    /// The mode of the first failure + 1 (0: none).
    first_mode: AtomicU64,
    seed: AtomicU64,
}

#[allow(clippy::declare_interior_mutable_const)]
const STATS_INIT: Stats = Stats {
    early: AtomicU64::new(0),
    worst_early: AtomicU64::new(0),
    stale: AtomicU64::new(0),
    missing: AtomicU64::new(0),
    first_mode: AtomicU64::new(0),
    seed: AtomicU64::new(0),
};
static STATS: [Stats; MAX_HARTS] = [STATS_INIT; MAX_HARTS];
/// Timebase ticks per millisecond (the secondaries have no `Platform`).
static TICKS_PER_MS: AtomicU64 = AtomicU64::new(10_000);

fn next(x: &mut u64) -> u64 {
    // xorshift64*
    *x ^= *x >> 12;
    *x ^= *x << 25;
    *x ^= *x >> 27;
    x.wrapping_mul(0x2545_f491_4f6c_dd1d)
}

fn fail(s: &Stats, mode: u64) {
    let _ = s.first_mode.compare_exchange(0, mode + 1, Relaxed, Relaxed);
}

fn early(s: &Stats, mode: u64, deadline: u64, at: u64) {
    s.early.fetch_add(1, Relaxed);
    s.worst_early.fetch_max(deadline - at, Relaxed);
    fail(s, mode);
}

/// Unmasks the timer interrupt and waits for it; checks when it came.
fn take(s: &Stats, mode: u64, deadline: u64) {
    let slot = harts::current();
    let before = slot.timer_count.load(Acquire);
    arch::sie_set(arch::STIP);
    arch::interrupts_enable();
    let ms = TICKS_PER_MS.load(Relaxed);
    let wait = deadline.saturating_sub(arch::read_time()) + SLACK_MS * ms;
    let taken = || slot.timer_count.load(Acquire) != before;
    // A second, short wait: a hart descheduled past the first one's end
    // gets to take what is pending before it counts as missing.
    let fired = harts::wait_for(wait, taken) || harts::wait_for(10 * ms, taken);
    arch::interrupts_disable();
    arch::sie_clear(arch::STIP);
    if !fired {
        s.missing.fetch_add(1, Relaxed);
        fail(s, mode);
        return;
    }
    let at = slot.timer_time.load(Relaxed);
    if at < deadline {
        early(s, mode, deadline, at);
    }
}

/// Polls sip.STIP with the interrupt masked until it is set (or well past
/// `deadline`); a STIP seen before `deadline` is an early interrupt.
fn poll_masked(s: &Stats, mode: u64, deadline: u64) {
    let ms = TICKS_PER_MS.load(Relaxed);
    loop {
        let pending = arch::read_sip() & arch::STIP != 0;
        // Read after sip: if STIP was pending, it was already at `now`.
        let now = arch::read_time();
        if pending {
            if now < deadline {
                early(s, mode, deadline, now);
            }
            return;
        }
        if now > deadline + SLACK_MS * ms {
            if harts::wait_for(10 * ms, || arch::read_sip() & arch::STIP != 0) {
                continue;
            }
            s.missing.fetch_add(1, Relaxed);
            fail(s, mode);
            return;
        }
    }
}

/// Waits (masked) until `time` reaches `until`.
fn spin_until(until: u64) {
    while arch::read_time() < until {
        core::hint::spin_loop();
    }
}

/// One hart's share: `arg` is its slot index. Returns the failures.
fn stress(arg: u64) -> i64 {
    let s = &STATS[arg as usize];
    let mut x = s.seed.load(Relaxed) | 1;
    arch::interrupts_disable();
    arch::sie_clear(arch::STIP);
    for _ in 0..ROUNDS {
        let r = next(&mut x);
        let mode = r % 5;
        let d = MIN_TICKS + (r >> 8) % (MAX_TICKS - MIN_TICKS);
        let now = arch::read_time();
        let deadline = now + d;
        match mode {
            // Enabled while waiting.
            0 => {
                let _ = sbi::set_timer(deadline);
                take(s, mode, deadline);
            }
            // Masked: polled until pending, then taken.
            1 => {
                let _ = sbi::set_timer(deadline);
                poll_masked(s, mode, deadline);
                take(s, mode, deadline);
            }
            // Masked for part of the wait, then enabled.
            2 => {
                let _ = sbi::set_timer(deadline);
                spin_until(now + (r >> 40) % d);
                take(s, mode, deadline);
            }
            // Pending (a past deadline), then a later one: set_timer must
            // clear the pending interrupt.
            3 => {
                let _ = sbi::set_timer(now.saturating_sub(1));
                poll_masked(s, mode, now.saturating_sub(1));
                let deadline = arch::read_time() + d;
                let _ = sbi::set_timer(deadline);
                let pending = arch::read_sip() & arch::STIP != 0;
                if pending && arch::read_time() < deadline {
                    s.stale.fetch_add(1, Relaxed);
                    fail(s, mode);
                }
                take(s, mode, deadline);
            }
            // An earlier deadline replaced by a later one before it passed.
            _ => {
                let _ = sbi::set_timer(now + MIN_TICKS / 2);
                let _ = sbi::set_timer(deadline);
                let pending = arch::read_sip() & arch::STIP != 0;
                if pending && arch::read_time() < deadline {
                    s.stale.fetch_add(1, Relaxed);
                    fail(s, mode);
                }
                take(s, mode, deadline);
            }
        }
    }
    let _ = sbi::set_timer(u64::MAX);
    (s.early.load(Relaxed) + s.stale.load(Relaxed) + s.missing.load(Relaxed)) as i64
}

pub fn test_timer_stress(t: &mut T, p: &Platform) {
    TICKS_PER_MS.store(p.ms(1), Relaxed);
    let seed = arch::read_time();
    let me = p.slot_of(p.boot_hartid).unwrap_or(0);
    let mut harts_used = 0;
    for (i, s) in STATS.iter().enumerate() {
        for a in [
            &s.early,
            &s.worst_early,
            &s.stale,
            &s.missing,
            &s.first_mode,
        ] {
            a.store(0, Relaxed);
        }
        s.seed.store(
            seed ^ (i as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15),
            Relaxed,
        );
    }
    let mut seqs = [0u64; MAX_HARTS];
    for (i, _) in alive(p) {
        seqs[i] = harts::call_async(p, i, stress, i as u64);
    }
    stress(me as u64);
    harts_used += 1;
    for (i, h) in alive(p) {
        let r = harts::wait_ack(&SLOTS[i], seqs[i], p.ms(60_000));
        check!(t, r.is_some(), "hart {h}: no result within 60 s");
        harts_used += 1;
    }
    for (i, &h) in p.hart_ids().iter().enumerate() {
        let s = &STATS[i];
        let (early, stale, missing) = (
            s.early.load(Relaxed),
            s.stale.load(Relaxed),
            s.missing.load(Relaxed),
        );
        check!(
            t,
            early + stale + missing == 0,
            "hart {h}: {early} early (worst {} ticks), {stale} pending after a later set_timer, {missing} missing; first in mode {} (seed {:#x})",
            s.worst_early.load(Relaxed),
            s.first_mode.load(Relaxed).wrapping_sub(1),
            s.seed.load(Relaxed)
        );
    }
    t.note(format_args!(
        "{harts_used} hart(s) x {ROUNDS} deadlines of {MIN_TICKS}..{MAX_TICKS} ticks"
    ));
}
