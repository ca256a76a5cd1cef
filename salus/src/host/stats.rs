//! Trap statistics for benchmarks: with `salus.bench` on the command line
//! Salus counts every trap from the host by cause and prints the counts
//! when the host shuts the machine down (`salus: traps: ...` lines).
//! Off by default: then counting costs one relaxed load per trap.

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

static ENABLED: AtomicBool = AtomicBool::new(false);
/// Exceptions 0..32, then interrupts 0..32.
static COUNTS: [AtomicU64; 64] = [const { AtomicU64::new(0) }; 64];

const INTERRUPT: u64 = 1 << 63;

pub fn enable() {
    ENABLED.store(true, Ordering::Relaxed);
}

/// Counts one trap with cause `scause`.
#[inline(always)]
pub fn count(scause: u64) {
    if !ENABLED.load(Ordering::Relaxed) {
        return;
    }
    let code = (scause & 31) as usize;
    let i = if scause & INTERRUPT != 0 {
        32 + code
    } else {
        code
    };
    if let Some(c) = COUNTS.get(i) {
        c.fetch_add(1, Ordering::Relaxed);
    }
}

fn name(i: usize) -> &'static str {
    match i {
        2 => "illegal-instruction",
        10 => "ecall-vs",
        20 => "fetch-guest-page-fault",
        21 => "load-guest-page-fault",
        22 => "virtual-instruction",
        23 => "store-guest-page-fault",
        33 => "s-software-irq",
        37 => "s-timer-irq",
        41 => "s-external-irq",
        i if i < 32 => "exception",
        _ => "interrupt",
    }
}

/// The host is shutting the machine down: write out the host's buffered
/// console output and, in bench mode, the trap counts.
pub fn report() {
    super::uart16550::flush();
    if !ENABLED.load(Ordering::Relaxed) {
        return;
    }
    let total: u64 = COUNTS.iter().map(|c| c.load(Ordering::Relaxed)).sum();
    crate::info!("traps: total {}", total);
    for (i, c) in COUNTS.iter().enumerate() {
        let n = c.load(Ordering::Relaxed);
        if n != 0 {
            let (kind, code) = if i < 32 {
                ("exception", i)
            } else {
                ("interrupt", i - 32)
            };
            crate::info!("traps: {} {} {} {}", kind, code, name(i), n);
        }
    }
}
