//! The SBI tests (run first by `crate::suite`). Checks are strict (they encode
//! what the SBI v2.0 spec and Salus's contract require); a failed check does
//! not stop the test unless later steps depend on it.

use core::sync::atomic::{AtomicBool, Ordering::*};

use sbi_abi::{hsm::hart_state, rfnc, SbiRet, SALUS_IMPL_ID};

use crate::arch::{self, TortureCtx};
use crate::console::Msg;
use crate::harness::{run_one, T};
use crate::harts::{self, SLOTS};
use crate::platform::{exclusions, for_each_free, Platform, MAX_HARTS, PAGE};
use crate::sbi::{self, *};
use crate::trap;

const OK: i64 = 0;
const ERR_NOT_SUPPORTED: i64 = -2;
const ERR_INVALID_PARAM: i64 = -3;
const ERR_INVALID_ADDRESS: i64 = -5;
const ERR_ALREADY_AVAILABLE: i64 = -6;

const STARTED: u64 = hart_state::STARTED as u64;
const STOPPED: u64 = hart_state::STOPPED as u64;

/// An id no SBI implementation defines.
const UNKNOWN_EID: u64 = 0x0A00_0000;
const UNKNOWN_FID: u64 = 0x777;

/// Secondary harts that are started and serving commands.
static ALIVE: [AtomicBool; MAX_HARTS] = [const { AtomicBool::new(false) }; MAX_HARTS];

pub fn run(p: &Platform) {
    run_one("base", p, test_base);
    run_one("unknown_ids", p, test_unknown);
    run_one("dbcn", p, test_dbcn);
    run_one("time", p, test_time);
    run_one("ipi_self", p, test_ipi_self);
    run_one("hsm_start", p, test_hsm_start);
    run_one("ipi_all", p, test_ipi_all);
    run_one("rfence", p, test_rfence);
    run_one("hsm_stop_suspend", p, test_hsm_stop_suspend);
    run_one("fpu_regs", p, test_fpu);
    if p.has_v {
        run_one("vector_regs", p, test_vector);
    } else {
        println!("tellus: no V extension in riscv,isa: vector test not run");
    }
    run_one("memory", p, test_memory);
    run_one("salus_memory_fault", p, test_salus_fault);
    run_one("dbcn_oob", p, test_dbcn_oob);
    run_one("srst_invalid", p, test_srst_invalid);
    run_one("uint32_upper_bits", p, test_uint32_upper_bits);
}

/// A deliberate failure (bootargs `fail-selftest`): proves that one failed
/// test makes the whole run, and QEMU's exit status, fail.
pub fn test_fail_selftest(t: &mut T, _p: &Platform) {
    check!(
        t,
        false,
        "deliberate failure requested by bootargs fail-selftest"
    );
}

fn me(p: &Platform) -> u64 {
    p.boot_hartid
}

/// (mask, base) selecting just `hartid`, in the `1 << id, 0` form when
/// possible.
fn mask_of(hartid: u64) -> (u64, u64) {
    if hartid < 64 {
        (1 << hartid, 0)
    } else {
        (1, hartid)
    }
}

/// (mask, base) for one hart past the last one.
fn bad_mask(p: &Platform) -> (u64, u64) {
    (1, p.max_hartid() + 1)
}

/// Indices of secondaries (every FDT hart but the boot hart).
fn secondaries(p: &Platform) -> impl Iterator<Item = (usize, u64)> + '_ {
    let boot = p.boot_hartid;
    p.hart_ids()
        .iter()
        .copied()
        .enumerate()
        .filter(move |&(_, h)| h != boot)
}

fn alive(p: &Platform) -> impl Iterator<Item = (usize, u64)> + '_ {
    secondaries(p).filter(|&(i, _)| ALIVE[i].load(Acquire))
}

// ---- 1. base ---------------------------------------------------------------

fn test_base(t: &mut T, _p: &Platform) {
    let v = sbi::spec_version();
    check!(
        t,
        v.error == OK && v.value >= sbi_abi::SPEC_VERSION,
        "spec version: error {} value {:#x} (want >= 0x2000000)",
        v.error,
        v.value
    );
    let id = sbi::impl_id();
    check!(
        t,
        id.error == OK && id.value == SALUS_IMPL_ID,
        "impl id: error {} value {:#x} (want {:#x} \"SALU\")",
        id.error,
        id.value,
        SALUS_IMPL_ID
    );
    let ver = sbi::impl_version();
    check!(
        t,
        ver.error == OK && ver.value != 0,
        "impl version: error {} value {:#x}",
        ver.error,
        ver.value
    );
    for (name, eid) in [
        ("BASE", EID_BASE),
        ("TIME", EID_TIME),
        ("sPI", EID_SPI),
        ("RFNC", EID_RFNC),
        ("HSM", EID_HSM),
        ("SRST", EID_SRST),
        ("DBCN", EID_DBCN),
    ] {
        let r = sbi::probe(eid);
        check!(
            t,
            r.error == OK && r.value != 0,
            "probe {name}: error {} value {}",
            r.error,
            r.value
        );
    }
    for (name, eid) in [("0x0A000000", UNKNOWN_EID), ("PMU", EID_PMU)] {
        let r = sbi::probe(eid);
        check!(
            t,
            r.error == OK && r.value == 0,
            "probe {name}: error {} value {} (want 0)",
            r.error,
            r.value
        );
    }
    check_err!(t, sbi::mvendorid(), OK, "mvendorid");
    check_err!(t, sbi::marchid(), OK, "marchid");
    check_err!(t, sbi::mimpid(), OK, "mimpid");

    let b = id.value.to_be_bytes();
    let name: &[u8] = &b[4..];
    let name = if name.iter().all(|c| c.is_ascii_graphic()) {
        core::str::from_utf8(name).unwrap_or("?")
    } else {
        "?"
    };
    t.note(format_args!(
        "impl id {:#x} \"{}\", impl version {:#x}, spec {}.{}",
        id.value,
        name,
        ver.value,
        (v.value >> 24) & 0x7f,
        v.value & 0xff_ffff
    ));
}

// ---- 2. unknown extension / function ids -----------------------------------

fn test_unknown(t: &mut T, _p: &Platform) {
    for eid in [UNKNOWN_EID, 0x1234_5678] {
        let r = sbi::call(eid, 0, [0; 6]);
        check!(
            t,
            r.error == ERR_NOT_SUPPORTED,
            "eid {eid:#x} fid 0: error {} (want -2)",
            r.error
        );
    }
    for (name, eid) in [
        ("BASE", EID_BASE),
        ("TIME", EID_TIME),
        ("sPI", EID_SPI),
        ("RFNC", EID_RFNC),
        ("HSM", EID_HSM),
        ("SRST", EID_SRST),
        ("DBCN", EID_DBCN),
    ] {
        let r = sbi::call(eid, UNKNOWN_FID, [0; 6]);
        check!(
            t,
            r.error == ERR_NOT_SUPPORTED,
            "{name} fid {UNKNOWN_FID:#x}: error {} (want -2)",
            r.error
        );
    }
}

// ---- 3. debug console ------------------------------------------------------

fn test_dbcn(t: &mut T, p: &Platform) {
    let m = b"dbcn: console_write ok\n";
    let r = sbi::console_write(m);
    check!(
        t,
        r.error == OK && r.value == m.len() as u64,
        "console_write: error {} value {} (want 0, {})",
        r.error,
        r.value,
        m.len()
    );
    for &b in b"dbcn: write_byte ok\n" {
        if !check_err!(t, sbi::console_write_byte(b), OK, "console_write_byte") {
            break;
        }
    }
    let mut buf = [0u8; 16];
    let t0 = arch::read_time();
    let r = sbi::console_read(&mut buf);
    let dt = arch::read_time() - t0;
    check!(
        t,
        r.error == OK && r.value <= buf.len() as u64,
        "console_read: error {} value {}",
        r.error,
        r.value
    );
    check!(t, dt < p.ms(100), "console_read blocked for {dt} ticks");

    match p.forbidden() {
        Some(f) => {
            check_err!(
                t,
                sbi::console_write_raw(16, f.start, 0),
                ERR_INVALID_PARAM,
                format_args!("console_write from reserved {:#x}", f.start)
            );
        }
        None => {
            check!(t, false, "no /reserved-memory range in the device tree");
        }
    }
    check_err!(
        t,
        sbi::console_write_raw(4, m.as_ptr() as u64, 1),
        ERR_INVALID_PARAM,
        "console_write with base_addr_hi = 1"
    );
    for &c in b"legacy: putchar ok\n" {
        let e = sbi::legacy_putchar(c);
        if !check!(t, e == 0, "legacy console_putchar returned {e}") {
            break;
        }
    }
}

/// Buffers an SBI that fails to validate them would read out of bounds
/// (crashing OpenSBI v1.5 in M mode, for one). Run late so that a broken
/// SBI costs only the summary; `skip_oob_dbcn` in bootargs turns the test
/// into a FAIL without making the calls.
fn test_dbcn_oob(t: &mut T, p: &Platform) {
    if p.skip_oob_dbcn {
        check!(t, false, "skipped (bootargs skip_oob_dbcn)");
        return;
    }
    check_err!(
        t,
        sbi::console_write_raw(16, u64::MAX - 7, 0),
        ERR_INVALID_PARAM,
        "console_write with wrapping buffer"
    );
    let end = p.ram_end();
    check_err!(
        t,
        sbi::console_write_raw(16, end, 0),
        ERR_INVALID_PARAM,
        format_args!("console_write beyond RAM at {end:#x}")
    );
}

// ---- 4. timer --------------------------------------------------------------

/// Arms the timer with `arm(deadline)` (which returns a failure message if
/// it could not) and waits for the interrupt.
fn timer_round(t: &mut T, p: &Platform, what: &str, arm: impl FnOnce(u64) -> Option<Msg>) {
    let slot = harts::current();
    let before = slot.timer_count.load(Acquire);
    arch::sie_set(arch::STIP);
    arch::interrupts_enable();
    let deadline = arch::read_time() + p.ms(1);
    if let Some(m) = arm(deadline) {
        arch::interrupts_disable();
        arch::sie_clear(arch::STIP);
        check!(t, false, "{what}: {m}");
        return;
    }
    let fired = harts::wait_for(p.ms(100), || slot.timer_count.load(Acquire) != before);
    arch::interrupts_disable();
    if !check!(t, fired, "{what}: no timer interrupt within 100 ms") {
        arch::sie_clear(arch::STIP);
        return;
    }
    let at = slot.timer_time.load(Relaxed);
    check!(
        t,
        at >= deadline,
        "{what}: interrupt {} ticks before the deadline",
        deadline - at
    );
    check!(
        t,
        at.saturating_sub(deadline) <= p.ms(50),
        "{what}: interrupt {} ticks late (> 50 ms)",
        at.saturating_sub(deadline)
    );
}

fn test_time(t: &mut T, p: &Platform) {
    timer_round(t, p, "set_timer", |d| {
        let r = sbi::set_timer(d);
        (r.error != OK).then(|| msg!("error {}", r.error))
    });
    check_err!(t, sbi::set_timer(u64::MAX), OK, "set_timer(max)");
    check!(
        t,
        arch::read_sip() & arch::STIP == 0,
        "sip.STIP still set after set_timer(u64::MAX)"
    );

    if p.has_sstc {
        let mut trapped = false;
        timer_round(t, p, "stimecmp", |d| {
            let s = trap::expect_fault();
            arch::write_stimecmp(d);
            let f = trap::fault_result(s);
            trapped = f.is_some();
            f.map(|(cause, _)| msg!("write trapped (scause {cause:#x}): henvcfg.STCE off?"))
        });
        if !trapped {
            let s = trap::expect_fault();
            arch::write_stimecmp(u64::MAX);
            let _ = trap::fault_result(s);
            check!(
                t,
                arch::read_sip() & arch::STIP == 0,
                "sip.STIP still set after stimecmp = u64::MAX"
            );
        }
        let _ = sbi::set_timer(u64::MAX);
        t.note(format_args!("sbi set_timer + sstc stimecmp"));
    } else {
        t.note(format_args!("sbi set_timer; no sstc"));
    }
}

// ---- 5. IPI to self --------------------------------------------------------

fn test_ipi_self(t: &mut T, p: &Platform) {
    let slot = harts::current();
    let (mask, base) = mask_of(me(p));
    arch::sie_set(arch::SSIP);
    arch::interrupts_enable();
    let before = slot.ipi_count.load(Acquire);
    check_err!(t, sbi::send_ipi(mask, base), OK, "send_ipi(self)");
    let got = harts::wait_for(p.ms(100), || slot.ipi_count.load(Acquire) != before);
    check!(t, got, "no software interrupt within 100 ms");
    check!(
        t,
        arch::read_sip() & arch::SSIP == 0,
        "sip.SSIP still set after csrc"
    );

    // Invalid masks, with the interrupt masked so nothing is taken.
    arch::interrupts_disable();
    arch::sie_clear(arch::SSIP);
    let (bm, bb) = bad_mask(p);
    check_err!(
        t,
        sbi::send_ipi(bm, bb),
        ERR_INVALID_PARAM,
        format_args!("send_ipi(mask 1, base {bb})")
    );
    let bad = p.max_hartid() + 1;
    if bad < 64 && me(p) < 64 {
        check_err!(
            t,
            sbi::send_ipi((1 << me(p)) | (1 << bad), 0),
            ERR_INVALID_PARAM,
            format_args!("send_ipi selecting missing hart {bad}")
        );
    }
    arch::sip_clear(arch::SSIP);

    // All harts (base = -1) includes this one.
    arch::sie_set(arch::SSIP);
    arch::interrupts_enable();
    let before = slot.ipi_count.load(Acquire);
    check_err!(t, sbi::send_ipi(0, u64::MAX), OK, "send_ipi(all)");
    let got = harts::wait_for(p.ms(100), || slot.ipi_count.load(Acquire) != before);
    check!(t, got, "send_ipi(all): no software interrupt on this hart");
}

// ---- 6. HSM start ----------------------------------------------------------

fn wait_status(p: &Platform, hartid: u64, want: u64) -> SbiRet {
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
fn start_and_check(t: &mut T, p: &Platform, i: usize, h: u64) -> bool {
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

fn test_hsm_start(t: &mut T, p: &Platform) {
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

fn test_ipi_all(t: &mut T, p: &Platform) {
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

fn test_rfence(t: &mut T, p: &Platform) {
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

fn test_hsm_stop_suspend(t: &mut T, p: &Platform) {
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

// ---- 10. FP and vector register preservation --------------------------------

fn torture_ctx(p: &Platform) -> TortureCtx {
    let slot = harts::current();
    TortureCtx {
        counter: &slot.timer_count as *const _ as u64,
        counter_before: slot.timer_count.load(Acquire),
        delay_ticks: p.ms(1),
        timeout_ticks: p.ms(100),
        ..Default::default()
    }
}

fn test_fpu(t: &mut T, p: &Platform) {
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

const VBUF_WORDS: usize = 32 * 256 / 8; // VLEN up to 2048 bits

fn test_vector(t: &mut T, p: &Platform) {
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

fn test_memory(t: &mut T, p: &Platform) {
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

fn test_salus_fault(t: &mut T, p: &Platform) {
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

fn test_srst_invalid(t: &mut T, _p: &Platform) {
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
fn test_uint32_upper_bits(t: &mut T, p: &Platform) {
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
