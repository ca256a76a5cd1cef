//! FP / vector register preservation, memory (all free RAM usable, Salus's
//! memory faulting) and argument checks of SRST and 32-bit parameters.

use core::sync::atomic::Ordering::*;

use super::common::*;
use crate::arch::{self, TortureCtx};
use crate::harness::T;
use crate::harts::{self};
use crate::platform::{exclusions, for_each_free, Platform, PAGE};
use crate::sbi::{self, *};
use crate::trap;

// ---- 10. FP and vector register preservation --------------------------------

pub fn torture_ctx(p: &Platform) -> TortureCtx {
    let slot = harts::current();
    TortureCtx {
        counter: &slot.timer_count as *const _ as u64,
        counter_before: slot.timer_count.load(Acquire),
        delay_ticks: p.ms(1),
        timeout_ticks: p.ms(100),
        ..Default::default()
    }
}

pub fn test_fpu(t: &mut T, p: &Platform) {
    let mut fill = [0u64; 32];
    for (i, f) in fill.iter_mut().enumerate() {
        *f = 0x3ff0_0000_0000_0000
            ^ ((i as u64) << 40)
            ^ (0x0123_4567_89ab_cdef_u64.rotate_left(i as u32));
    }
    let mut dump = [0u64; 32];
    let mut ctx = torture_ctx(p);
    arch::sie_set(arch::STIP);
    arch::interrupts_enable();
    arch::fp_torture(&mut ctx, &fill, &mut dump);
    arch::interrupts_disable();
    let _ = sbi::set_timer(u64::MAX);
    check!(t, ctx.sbi_errors == 0, "an SBI call in the probe failed");
    check!(t, ctx.fired == 1, "no timer interrupt during the probe");
    for i in 0..32 {
        if !check!(
            t,
            dump[i] == fill[i],
            "f{i} = {:#x}, want {:#x}",
            dump[i],
            fill[i]
        ) {
            break;
        }
    }
    check!(
        t,
        ctx.ctl_after == ctx.ctl_before,
        "fcsr {:#x} -> {:#x}",
        ctx.ctl_before,
        ctx.ctl_after
    );
}

pub const VBUF_WORDS: usize = 32 * 256 / 8; // VLEN up to 2048 bits

pub fn test_vector(t: &mut T, p: &Platform) {
    let vlenb = arch::read_vlenb();
    if !check!(
        t,
        vlenb != 0 && vlenb <= 256,
        "vlenb {vlenb} outside what tellus supports"
    ) {
        return;
    }
    let mut fill = [0u64; VBUF_WORDS];
    for (k, f) in fill.iter_mut().enumerate() {
        *f = 0xa5a5_0000_0000_0000 ^ (k as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
    let mut dump = [0u64; VBUF_WORDS];
    let mut ctx = torture_ctx(p);
    arch::sie_set(arch::STIP);
    arch::interrupts_enable();
    arch::vec_torture(&mut ctx, &fill, &mut dump);
    arch::interrupts_disable();
    let _ = sbi::set_timer(u64::MAX);
    check!(t, ctx.sbi_errors == 0, "an SBI call in the probe failed");
    check!(t, ctx.fired == 1, "no timer interrupt during the probe");
    let words = (32 * vlenb / 8) as usize;
    let per_reg = (vlenb / 8) as usize;
    if let Some(k) = (0..words).find(|&k| dump[k] != fill[k]) {
        check!(
            t,
            false,
            "v{} word {} = {:#x}, want {:#x}",
            k / per_reg,
            k % per_reg,
            dump[k],
            fill[k]
        );
    }
    check!(
        t,
        ctx.ctl_before == 3 && ctx.ctl_after == 3,
        "vl {} -> {} (want 3)",
        ctx.ctl_before,
        ctx.ctl_after
    );
    check!(
        t,
        ctx.ctl2_before >> 63 == 0 && ctx.ctl2_after == ctx.ctl2_before,
        "vtype {:#x} -> {:#x}",
        ctx.ctl2_before,
        ctx.ctl2_after
    );
    t.note(format_args!("VLEN {}", vlenb * 8));
}

// ---- 11. memory ------------------------------------------------------------

pub fn test_memory(t: &mut T, p: &Platform) {
    let excl = exclusions(p);
    let t0 = arch::read_time();
    let mut pages = 0u64;
    for_each_free(p, &excl, |s, e| {
        let mut a = s;
        while a < e {
            // SAFETY: `a` is a page of host RAM outside tellus's image and
            // stacks, the FDT and every reserved range: no one else uses it.
            unsafe {
                core::ptr::write_volatile(a as *mut u64, a);
                core::ptr::write_volatile((a + PAGE - 8) as *mut u64, !a);
            }
            a += PAGE;
            pages += 1;
        }
    });
    let t_write = arch::read_time() - t0;
    let mut bad = 0u64;
    let mut first_bad = None;
    for_each_free(p, &excl, |s, e| {
        let mut a = s;
        while a < e {
            // SAFETY: as above; these pages were written in the first pass.
            let (x, y) = unsafe {
                (
                    core::ptr::read_volatile(a as *const u64),
                    core::ptr::read_volatile((a + PAGE - 8) as *const u64),
                )
            };
            if x != a || y != !a {
                bad += 1;
                if first_bad.is_none() {
                    first_bad = Some((a, x, y));
                }
            }
            a += PAGE;
        }
    });
    let ms = (arch::read_time() - t0) * 1000 / p.timebase;
    check!(t, pages > 0, "no free RAM pages found");
    if let Some((a, x, y)) = first_bad {
        check!(
            t,
            false,
            "{bad} bad page(s), first at {a:#x}: read {x:#x}/{y:#x}"
        );
    }
    t.note(format_args!(
        "{} pages ({} MiB) in {} ms, write pass {} ms",
        pages,
        (pages * PAGE) >> 20,
        ms,
        t_write * 1000 / p.timebase
    ));
}

// ---- 12. Salus memory must fault --------------------------------------------

pub fn test_salus_fault(t: &mut T, p: &Platform) {
    let ranges = if p.no_map.is_empty() {
        p.reserved
    } else {
        p.no_map
    };
    if !check!(
        t,
        !ranges.is_empty(),
        "no /reserved-memory range in the device tree"
    ) {
        return;
    }
    let mut stval_note = false;
    for r in ranges.as_slice() {
        for addr in [r.start, (r.start + r.size() / 2) & !7] {
            let s = trap::expect_fault();
            // SAFETY: expected-fault handling is armed.
            let v = unsafe { arch::probe_load(addr) };
            let Some((cause, tval)) = trap::fault_result(s) else {
                check!(t, false, "load from {addr:#x} did not fault (read {v:#x})");
                continue;
            };
            check!(
                t,
                cause == arch::EXC_LOAD_ACCESS,
                "load from {addr:#x}: scause {cause:#x} (want 5)"
            );
            stval_note |= tval != addr;
            // Only store where the load faulted, so a broken protection
            // cannot make tellus corrupt the firmware.
            let s = trap::expect_fault();
            // SAFETY: armed; the address is reserved memory that just
            // refused a load.
            unsafe { arch::probe_store(addr, 0x5a5a_5a5a_5a5a_5a5a) };
            match trap::fault_result(s) {
                None => {
                    check!(t, false, "store to {addr:#x} did not fault");
                }
                Some((cause, tval)) => {
                    check!(
                        t,
                        cause == arch::EXC_STORE_ACCESS,
                        "store to {addr:#x}: scause {cause:#x} (want 7)"
                    );
                    stval_note |= tval != addr;
                }
            }
        }
    }
    if stval_note {
        t.note(format_args!("stval did not always equal the address"));
    } else {
        t.note(format_args!(
            "{} range(s), stval exact",
            ranges.as_slice().len()
        ));
    }
}

// ---- 13. SRST argument checks -----------------------------------------------

pub fn test_srst_invalid(t: &mut T, _p: &Platform) {
    check_err!(
        t,
        sbi::system_reset(0x1234, 0),
        ERR_INVALID_PARAM,
        "system_reset(type 0x1234)"
    );
    check_err!(
        t,
        sbi::system_reset(sbi_abi::srst::RESET_TYPE_SHUTDOWN, 0x1234),
        ERR_INVALID_PARAM,
        "system_reset(shutdown, reason 0x1234)"
    );
}

/// SRST's type/reason and HSM's suspend_type are uint32: on RV64 bits
/// 63..32 of the register are ignored, not rejected.
pub fn test_uint32_upper_bits(t: &mut T, p: &Platform) {
    const JUNK: u64 = 0xdead_beef << 32;
    // A vendor-specific reset type (0xF000_0000): not supported, whatever
    // is above bit 31. Rejecting the junk would say "invalid parameter".
    check_err!(
        t,
        sbi::call(EID_SRST, 0, [JUNK | 0xF000_0000, 0, 0, 0, 0, 0]),
        ERR_NOT_SUPPORTED,
        "system_reset(type 0xdeadbeef_f0000000)"
    );
    // Default retentive suspend (type 0) with junk above: suspends and
    // returns 0 (woken by a timer, as in hsm_stop_suspend).
    arch::interrupts_disable();
    arch::sie_set(arch::STIP);
    let _ = sbi::set_timer(arch::read_time() + p.ms(2));
    let r = sbi::call(
        EID_HSM,
        sbi_abi::hsm::HART_SUSPEND as u64,
        [JUNK, 0, 0, 0, 0, 0],
    );
    arch::interrupts_enable();
    let _ = sbi::set_timer(u64::MAX);
    if r.error != ERR_NOT_SUPPORTED {
        check_err!(t, r, OK, "hart_suspend(type 0xdeadbeef_00000000)");
    }
}

/// The host's /chosen/bootargs is what it was given: with no bootargs
/// (no tellus option in them) Salus adds nothing, such as a Linux console
/// (the Makefile's Linux targets pass their own).
pub fn test_host_bootargs(t: &mut T, p: &Platform) {
    match &p.unasked_bootargs {
        Some(a) => {
            check!(
                t,
                a.as_str().trim().is_empty(),
                "/chosen/bootargs is {:?} though tellus was given none",
                a.as_str()
            );
        }
        None => t.note(format_args!("empty, absent or given")),
    }
}
