//! HSM start / stop / suspend, IPIs to every hart and remote fences.

use core::sync::atomic::Ordering::*;

use sbi_abi::{rfnc, SbiRet};

use super::common::*;
use crate::arch::{self};
use crate::harness::T;
use crate::harts::{self, SLOTS};
use crate::platform::{Platform, MAX_HARTS};
use crate::sbi::{self, *};

// ---- 6. HSM start ----------------------------------------------------------

pub fn wait_status(p: &Platform, hartid: u64, want: u64) -> SbiRet {
    let mut last = SbiRet {
        error: 0,
        value: u64::MAX,
    };
    harts::wait_for(p.ms(500), || {
        last = sbi::hart_get_status(hartid);
        last.error == OK && last.value == want
    });
    last
}

/// Starts secondary `i` and waits for it to report in.
pub fn start_and_check(t: &mut T, p: &Platform, i: usize, h: u64) -> bool {
    let slot = &SLOTS[i];
    let before = slot.boot_count.load(Acquire);
    slot.reported_hartid.store(u64::MAX, Relaxed);
    slot.reported_opaque.store(0, Relaxed);
    if !check_err!(t, harts::start(p, i), OK, format_args!("hart_start({h})")) {
        return false;
    }
    let up = harts::wait_for(p.ms(500), || slot.boot_count.load(Acquire) != before);
    if !check!(t, up, "hart {h} did not report in within 500 ms") {
        return false;
    }
    let rh = slot.reported_hartid.load(Relaxed);
    let ro = slot.reported_opaque.load(Relaxed);
    check!(t, rh == h, "hart {h} reported a0 = {rh}");
    check!(
        t,
        ro == slot.opaque(),
        "hart {h} reported opaque {ro:#x} (want {:#x})",
        slot.opaque()
    );
    let st = wait_status(p, h, STARTED);
    check!(
        t,
        st.error == OK && st.value == STARTED,
        "hart {h} status after start: error {} value {}",
        st.error,
        st.value
    );
    let seq = harts::post(slot, h, harts::CMD_PING);
    let ack = harts::wait_ack(slot, seq, p.ms(500));
    check!(t, ack == Some(0), "hart {h} does not answer a ping");
    ack == Some(0)
}

pub fn test_hsm_start(t: &mut T, p: &Platform) {
    let entry = arch::secondary_entry_addr();
    let mut tried_bad_addr = false;
    for (i, h) in secondaries(p) {
        let st = sbi::hart_get_status(h);
        check!(
            t,
            st.error == OK && st.value == STOPPED,
            "hart {h} initial status: error {} value {} (want STOPPED)",
            st.error,
            st.value
        );
        if !tried_bad_addr {
            tried_bad_addr = true;
            if let Some(f) = p.forbidden() {
                // SAFETY: the address is in reserved memory, which the SBI
                // must refuse as a start address.
                let r = unsafe { sbi::hart_start(h, f.start, SLOTS[i].opaque()) };
                check_err!(
                    t,
                    r,
                    ERR_INVALID_ADDRESS,
                    format_args!("hart_start({h}) at reserved {:#x}", f.start)
                );
                let st = wait_status(p, h, STOPPED);
                check!(
                    t,
                    st.value == STOPPED,
                    "hart {h} not STOPPED after refused start (status {})",
                    st.value
                );
            } else {
                check!(t, false, "no /reserved-memory range in the device tree");
            }
        }
        if start_and_check(t, p, i, h) {
            ALIVE[i].store(true, Release);
        }
    }

    // Already started: every live secondary and the boot hart itself.
    let me_idx = p.slot_of(me(p)).unwrap_or(0);
    for (i, h) in alive(p).chain(core::iter::once((me_idx, me(p)))) {
        // SAFETY: entry point and slot are valid, should the SBI wrongly
        // (re)start the hart.
        let r = unsafe { sbi::hart_start(h, entry, SLOTS[i].opaque()) };
        check_err!(
            t,
            r,
            ERR_ALREADY_AVAILABLE,
            format_args!("hart_start of running hart {h}")
        );
    }
    // SAFETY: hart 1000 does not exist; nothing can start.
    let r = unsafe { sbi::hart_start(1000, entry, 0) };
    check_err!(t, r, ERR_INVALID_PARAM, "hart_start(1000)");
    check_err!(
        t,
        sbi::hart_get_status(1000),
        ERR_INVALID_PARAM,
        "hart_get_status(1000)"
    );
    let n = alive(p).count();
    t.note(format_args!("{n} secondary hart(s) started"));
}

// ---- 7. IPI to all ---------------------------------------------------------

pub fn test_ipi_all(t: &mut T, p: &Platform) {
    let me_slot = harts::current();
    arch::sie_set(arch::SSIP);
    arch::interrupts_enable();
    for (i, h) in alive(p) {
        let s = &SLOTS[i];
        let before = s.ipi_count.load(Acquire);
        let (m, b) = mask_of(h);
        check_err!(t, sbi::send_ipi(m, b), OK, format_args!("send_ipi({h})"));
        let got = harts::wait_for(p.ms(200), || s.ipi_count.load(Acquire) != before);
        check!(t, got, "hart {h} took no software interrupt within 200 ms");
    }

    let mut before = [0u64; MAX_HARTS];
    for (i, _) in alive(p) {
        before[i] = SLOTS[i].ipi_count.load(Acquire);
    }
    let my_before = me_slot.ipi_count.load(Acquire);
    check_err!(t, sbi::send_ipi(0, u64::MAX), OK, "send_ipi(all)");
    for (i, h) in alive(p) {
        let s = &SLOTS[i];
        let got = harts::wait_for(p.ms(200), || s.ipi_count.load(Acquire) != before[i]);
        check!(t, got, "send_ipi(all): hart {h} took no interrupt");
    }
    let got = harts::wait_for(p.ms(200), || me_slot.ipi_count.load(Acquire) != my_before);
    check!(t, got, "send_ipi(all): boot hart took no interrupt");

    // One multi-bit mask with base 0 covering every live hart.
    if p.max_hartid() < 64 {
        let mut mask = 0u64;
        for (i, h) in alive(p) {
            mask |= 1 << h;
            before[i] = SLOTS[i].ipi_count.load(Acquire);
        }
        if mask != 0 {
            check_err!(
                t,
                sbi::send_ipi(mask, 0),
                OK,
                format_args!("send_ipi({mask:#x}, 0)")
            );
            for (i, h) in alive(p) {
                let s = &SLOTS[i];
                let got = harts::wait_for(p.ms(200), || s.ipi_count.load(Acquire) != before[i]);
                check!(t, got, "send_ipi({mask:#x}, 0): hart {h} took no interrupt");
            }
        }
    }
    let n = alive(p).count();
    t.note(format_args!("{} hart(s)", n + 1));
}

// ---- 8. remote fences ------------------------------------------------------

pub fn test_rfence(t: &mut T, p: &Platform) {
    let all = (0u64, u64::MAX);
    check_err!(
        t,
        sbi::remote_fence_i(all.0, all.1),
        OK,
        "remote_fence_i(all)"
    );
    check_err!(
        t,
        sbi::remote_sfence_vma(all.0, all.1, 0, u64::MAX),
        OK,
        "remote_sfence_vma(all, 0, max)"
    );
    check_err!(
        t,
        sbi::remote_sfence_vma(all.0, all.1, 0, 0),
        OK,
        "remote_sfence_vma(all, 0, 0)"
    );
    check_err!(
        t,
        sbi::remote_sfence_vma(all.0, all.1, 0x1000, 0x2000),
        OK,
        "remote_sfence_vma(all, 0x1000, 0x2000)"
    );
    check_err!(
        t,
        sbi::remote_sfence_vma_asid(all.0, all.1, 0, u64::MAX, 0),
        OK,
        "remote_sfence_vma_asid(all, asid 0)"
    );
    check_err!(
        t,
        sbi::remote_sfence_vma_asid(all.0, all.1, 0, u64::MAX, 1),
        OK,
        "remote_sfence_vma_asid(all, asid 1)"
    );
    for (_, h) in alive(p).chain(core::iter::once((0, me(p)))) {
        let (m, b) = mask_of(h);
        check_err!(
            t,
            sbi::remote_fence_i(m, b),
            OK,
            format_args!("remote_fence_i(hart {h})")
        );
        check_err!(
            t,
            sbi::remote_sfence_vma(m, b, 0, u64::MAX),
            OK,
            format_args!("remote_sfence_vma(hart {h})")
        );
    }

    let (bm, bb) = bad_mask(p);
    check_err!(
        t,
        sbi::remote_fence_i(bm, bb),
        ERR_INVALID_PARAM,
        "remote_fence_i(bad mask)"
    );
    check_err!(
        t,
        sbi::remote_sfence_vma(bm, bb, 0, u64::MAX),
        ERR_INVALID_PARAM,
        "remote_sfence_vma(bad mask)"
    );
    check_err!(
        t,
        sbi::remote_sfence_vma_asid(bm, bb, 0, u64::MAX, 0),
        ERR_INVALID_PARAM,
        "remote_sfence_vma_asid(bad mask)"
    );

    // The hypervisor fences need the H extension on the targets.
    for (name, fid) in [
        ("hfence_gvma_vmid", rfnc::REMOTE_HFENCE_GVMA_VMID),
        ("hfence_gvma", rfnc::REMOTE_HFENCE_GVMA),
        ("hfence_vvma_asid", rfnc::REMOTE_HFENCE_VVMA_ASID),
        ("hfence_vvma", rfnc::REMOTE_HFENCE_VVMA),
    ] {
        let r = sbi::call(EID_RFNC, fid as u64, [all.0, all.1, 0, u64::MAX, 0, 0]);
        check_err!(
            t,
            r,
            ERR_NOT_SUPPORTED,
            format_args!("remote_{name} (fid {fid})")
        );
    }
}

// ---- 9. HSM stop / restart / suspend ----------------------------------------

pub fn test_hsm_stop_suspend(t: &mut T, p: &Platform) {
    for (i, h) in alive(p) {
        let slot = &SLOTS[i];
        let seq = harts::post(slot, h, harts::CMD_STOP);
        let st = wait_status(p, h, STOPPED);
        if !check!(
            t,
            st.error == OK && st.value == STOPPED,
            "hart {h} not STOPPED after hart_stop: error {} value {} (hart_stop {:?})",
            st.error,
            st.value,
            harts::wait_ack(slot, seq, 0)
        ) {
            continue;
        }
        ALIVE[i].store(false, Release);
        if start_and_check(t, p, i, h) {
            ALIVE[i].store(true, Release);
        }
    }

    // Default retentive suspend, woken by a timer. Interrupts stay globally
    // off across the call (the timer is enabled in sie, which is what wakes
    // a suspended hart): with them on, a deadline that passes before the
    // suspend call would be taken first and nothing would wake the hart.
    let slot = harts::current();
    let before = slot.timer_count.load(Acquire);
    arch::interrupts_disable();
    arch::sie_set(arch::STIP);
    check_err!(
        t,
        sbi::set_timer(arch::read_time() + p.ms(2)),
        OK,
        "set_timer"
    );
    let r = sbi::hart_suspend_retentive(0).unwrap_or(SbiRet {
        error: -1,
        value: 0,
    });
    arch::interrupts_enable();
    if r.error == ERR_NOT_SUPPORTED {
        t.note(format_args!("hart_suspend: not supported"));
    } else if check_err!(t, r, OK, "hart_suspend(retentive)") {
        let woke = harts::wait_for(p.ms(100), || slot.timer_count.load(Acquire) != before);
        check!(t, woke, "no timer interrupt after hart_suspend returned");
        t.note(format_args!("hart_suspend retentive ok"));
    }
    let _ = sbi::set_timer(u64::MAX);

    // Invalid types. A timer is armed in case the SBI wrongly suspends.
    for ty in [0x0000_1234u32, 0x1234_5678] {
        arch::sie_set(arch::STIP);
        let _ = sbi::set_timer(arch::read_time() + p.ms(5));
        let r = sbi::hart_suspend_retentive(ty).unwrap_or(SbiRet {
            error: -1,
            value: 0,
        });
        check_err!(
            t,
            r,
            ERR_INVALID_PARAM,
            format_args!("hart_suspend(type {ty:#x})")
        );
        let _ = sbi::set_timer(u64::MAX);
    }
}
