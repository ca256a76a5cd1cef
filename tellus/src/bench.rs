//! Bench mode (`bench` in /chosen/bootargs): instruction counts of the boot
//! and of a few SBI round trips, read with `rdinstret` (counts every
//! instruction the hart retires, in all modes).

use core::hint::black_box;

use crate::harts::{self, SLOTS};
use crate::platform::Platform;
use crate::{arch, sbi};

const N: usize = 1000;
const N_RFENCE: usize = 100;

/// Per-iteration instret deltas of `f` (only the call is inside the window).
fn deltas<const M: usize>(mut f: impl FnMut()) -> [u64; M] {
    let mut d = [0u64; M];
    for x in d.iter_mut() {
        let a = arch::read_instret();
        f();
        let b = arch::read_instret();
        *x = b.wrapping_sub(a);
    }
    d
}

fn median<const M: usize>(mut d: [u64; M]) -> u64 {
    d.sort_unstable();
    d[M / 2]
}

fn average(d: &[u64]) -> u64 {
    d.iter().sum::<u64>() / d.len() as u64
}

/// Starts every secondary hart and waits for it to idle in its loop.
fn start_secondaries(p: &Platform) {
    for (i, &h) in p.hart_ids().iter().enumerate() {
        if h == p.boot_hartid {
            continue;
        }
        let slot = &SLOTS[i];
        let before = slot.boot_count.load(core::sync::atomic::Ordering::Acquire);
        let r = harts::start(p, i);
        let up = r.error == 0
            && harts::wait_for(p.ms(1000), || {
                slot.boot_count.load(core::sync::atomic::Ordering::Acquire) != before
            });
        if !up {
            println!("bench: warning: hart {h} did not start (error {})", r.error);
        }
    }
}

pub fn run(p: &Platform, boot_instret: u64) {
    start_secondaries(p);
    println!("bench: boot_to_host_2g {boot_instret} instructions");

    // Cost of the measurement itself (two back-to-back instret reads).
    let empty = median(deltas::<N>(|| black_box(())));

    let null = median(deltas::<N>(|| {
        black_box(sbi::probe(black_box(sbi::EID_BASE)));
    }));
    println!(
        "bench: sbi_null_roundtrip {} instructions",
        null.saturating_sub(empty)
    );

    let far = arch::read_time().wrapping_add(p.timebase * 3600);
    let d = deltas::<N>(|| {
        black_box(sbi::set_timer(black_box(far)));
    });
    let _ = sbi::set_timer(u64::MAX);
    println!(
        "bench: sbi_set_timer {} instructions",
        average(&d).saturating_sub(empty)
    );

    // With SSIE clear the IPI only sets sip.SSIP; it is cleared afterwards.
    arch::interrupts_disable();
    arch::sie_clear(arch::SSIP);
    let me = p.boot_hartid;
    let (mask, base) = if me < 64 { (1 << me, 0) } else { (1, me) };
    let mut d = [0u64; N];
    for x in d.iter_mut() {
        let a = arch::read_instret();
        black_box(sbi::send_ipi(black_box(mask), black_box(base)));
        let b = arch::read_instret();
        arch::sip_clear(arch::SSIP);
        *x = b.wrapping_sub(a);
    }
    println!(
        "bench: sbi_ipi_self {} instructions",
        average(&d).saturating_sub(empty)
    );

    let d = deltas::<N_RFENCE>(|| {
        black_box(sbi::remote_fence_i(0, black_box(u64::MAX)));
    });
    println!(
        "bench: sbi_rfence_all {} instructions",
        average(&d).saturating_sub(empty)
    );

    crate::tee::bench::run(p);
}
