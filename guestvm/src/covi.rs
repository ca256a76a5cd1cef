//! COVI tests (entry_arg `ARG_COVI`): guestvm's vCPU 0 is bound to an IMSIC
//! guest file and reaches it as its own S-level interrupt file: through
//! `siselect`/`sireg` and `stopei`, and through its IMSIC page at
//! `IMSIC_GPA`. Interrupts are polled with `stopei` (interrupts stay
//! disabled), so no handler is needed.

use core::sync::atomic::{AtomicU64, Ordering};

use super::*;

const SISELECT: u16 = 0x150;
const EIDELIVERY: u64 = 0x70;
const EITHRESHOLD: u64 = 0x72;
const EIE0: u64 = 0xC0;

/// What vCPU 1 found in its file when it ran: the id `stopei` gave.
static VCPU1_SAW: AtomicU64 = AtomicU64::new(0);
/// `opaque` of hart_start for vCPU 1's COVI check.
pub const SECONDARY_COVI: u64 = 0xc0f1_c0f1;

fn iwrite(sel: u64, v: u64) {
    // SAFETY: the AIA indirect CSRs of the vCPU's own interrupt file.
    unsafe {
        asm!("csrw {s}, {0}", in(reg) sel, s = const SISELECT);
        asm!("csrw 0x151, {0}", in(reg) v);
    }
}

fn iread(sel: u64) -> u64 {
    let v: u64;
    // SAFETY: as for `iwrite`.
    unsafe {
        asm!("csrw {s}, {0}", in(reg) sel, s = const SISELECT);
        asm!("csrr {0}, 0x151", out(reg) v);
    }
    v
}

/// The top pending-and-enabled id (0: none), claimed (`stopei` written).
fn claim() -> u64 {
    let v: u64;
    // SAFETY: csrrw on stopei reads the top interrupt and claims it.
    unsafe { asm!("csrrw {0}, 0x15C, zero", out(reg) v) };
    v >> 16
}

/// Turns the file on: delivery, threshold 0, ids 1..63 enabled.
fn enable_file() -> TestResult {
    iwrite(EIDELIVERY, 1);
    iwrite(EITHRESHOLD, 0);
    iwrite(EIE0, !1);
    let d = iread(EIDELIVERY);
    ensure!(d == 1, "eidelivery reads {d:#x} after writing 1");
    let e = iread(EIE0);
    ensure!(e == !1, "eie0 reads {e:#x}");
    ensure!(claim() == 0, "an interrupt pending before any was sent");
    Ok(())
}

/// A u32 store to an IMSIC page's `seteipnum_le`.
fn send(page: u64, id: u64) {
    // SAFETY: the IMSIC page of a vCPU of this TVM (mapped to its file, or
    // emulated by the TSM while none is).
    unsafe { core::ptr::write_volatile(page as *mut u32, id as u32) }
}

fn test_file() -> TestResult {
    enable_file()
}

fn test_self_ipi() -> TestResult {
    send(IMSIC_GPA, COVI_SELF_ID);
    let got = claim();
    ensure!(
        got == COVI_SELF_ID,
        "stopei gave {got} after sending {COVI_SELF_ID} to myself"
    );
    ensure!(claim() == 0, "still pending after the claim");
    Ok(())
}

fn inject(id: u64) -> i64 {
    gvm(FID_COVI_INJECT, id).value as i64
}

fn test_inject() -> TestResult {
    // Denied by default (the spec: vCPUs start with everything denied).
    let e = inject(COVI_ALLOWED_ID);
    ensure!(e == ERR_INVALID_PARAM, "inject before allow: error {e}");
    let r = covg(COVG_ALLOW_EXT, COVI_ALLOWED_ID, 0);
    ensure!(
        r.error == 0,
        "allow_external_interrupt({COVI_ALLOWED_ID}): {}",
        r.error
    );
    let e = inject(COVI_ALLOWED_ID);
    ensure!(e == 0, "inject of an allowed id: error {e}");
    let got = claim();
    ensure!(
        got == COVI_ALLOWED_ID,
        "stopei gave {got} after the injection"
    );
    let e = inject(COVI_DENIED_ID);
    ensure!(e == ERR_INVALID_PARAM, "inject of a denied id: error {e}");
    let got = claim();
    ensure!(got == 0, "a denied injection arrived ({got})");
    // Deny again: the host can no longer inject it.
    let r = covg(COVG_DENY_EXT, COVI_ALLOWED_ID, 0);
    ensure!(r.error == 0, "deny_external_interrupt: {}", r.error);
    let e = inject(COVI_ALLOWED_ID);
    ensure!(e == ERR_INVALID_PARAM, "inject after deny: error {e}");
    ensure!(claim() == 0, "an interrupt arrived after deny");
    Ok(())
}

fn test_allow_errors() -> TestResult {
    for bad in [0, 4096, 1 << 40] {
        let r = covg(COVG_ALLOW_EXT, bad, 0);
        ensure!(
            r.error == ERR_INVALID_PARAM,
            "allow({bad}): error {}",
            r.error
        );
        let r = covg(COVG_DENY_EXT, bad, 0);
        ensure!(
            r.error == ERR_INVALID_PARAM,
            "deny({bad}): error {}",
            r.error
        );
    }
    // All, then none.
    let r = covg(COVG_ALLOW_EXT, u64::MAX, 0);
    ensure!(r.error == 0, "allow(all): error {}", r.error);
    let e = inject(COVI_DENIED_ID);
    ensure!(e == 0, "inject after allow(all): error {e}");
    let got = claim();
    ensure!(got == COVI_DENIED_ID, "stopei gave {got} after allow(all)");
    let r = covg(COVG_DENY_EXT, u64::MAX, 0);
    ensure!(r.error == 0, "deny(all): error {}", r.error);
    let e = inject(COVI_DENIED_ID);
    ensure!(e == ERR_INVALID_PARAM, "inject after deny(all): error {e}");
    Ok(())
}

/// vCPU 1 is unbound: a send to its IMSIC page is kept by the TSM and is in
/// its file once the host binds it and it runs.
fn test_unbound_vcpu() -> TestResult {
    send(IMSIC_GPA + 0x1000, COVI_VCPU1_ID);
    let b = gvm(FID_COVI_BIND_VCPU1, 0).value as i64;
    ensure!(b == 0, "the host could not bind vCPU 1: error {b}");
    let entry = guestvm_secondary as *const () as u64;
    let r = ecall(EID_HSM, 0, [1, entry, SECONDARY_COVI, 0, 0, 0]);
    ensure!(r.error == 0, "hart_start(1) error {}", r.error);
    // The host ran vCPU 1 to its hart_stop before resuming us.
    let saw = VCPU1_SAW.load(Ordering::Acquire);
    ensure!(
        saw == COVI_VCPU1_ID,
        "vCPU 1 found {saw} in its file, want {COVI_VCPU1_ID}"
    );
    ensure!(
        claim() == 0,
        "vCPU 1's interrupt showed up in vCPU 0's file"
    );
    Ok(())
}

/// vCPU 1 is bound and stopped: an interrupt for it wakes the host (the
/// Salus extension), which says so.
fn test_wake() -> TestResult {
    send(IMSIC_GPA + 0x1000, COVI_WAKE_ID);
    let r = gvm(FID_COVI_WAKE_CHECK, 0);
    ensure!(r.error == 0, "wake check not served: error {}", r.error);
    ensure!(
        r.value == 0,
        "the host was not woken: take_wake {:#x}, its file gave id {}",
        r.value >> 32,
        r.value & 0xffff_ffff
    );
    Ok(())
}

/// The host moves this running vCPU to another hart's file and injects
/// one interrupt before the old file is cloned and one after: both are in
/// the new file, and the IMSIC page leads there.
fn test_rebind() -> TestResult {
    // Allowed whether or not the host can move us (with one hart it says
    // NOT_SUPPORTED): the host checks the per-vCPU policy after the run.
    for id in [COVI_ALLOWED_ID, COVI_DENIED_ID] {
        let r = covg(COVG_ALLOW_EXT, id, 0);
        ensure!(r.error == 0, "allow({id}): error {}", r.error);
    }
    let r = gvm(FID_COVI_REBIND, 0);
    if r.error == ERR_NOT_SUPPORTED {
        println!("guestvm: one hart: the rebind is not tested");
        return Ok(());
    }
    ensure!(r.error == 0, "rebind not served: error {}", r.error);
    ensure!(
        r.value == 0,
        "the host's rebind failed: error {}",
        r.value as i64
    );
    let (a, b) = (claim(), claim());
    ensure!(
        a == COVI_ALLOWED_ID && b == COVI_DENIED_ID,
        "after the move the file gave {a} and {b}, want {COVI_ALLOWED_ID} and {COVI_DENIED_ID}"
    );
    ensure!(claim() == 0, "more pending after the move");
    send(IMSIC_GPA, COVI_SELF_ID);
    let got = claim();
    ensure!(got == COVI_SELF_ID, "a self IPI after the move gave {got}");
    // Both ids stay allowed for this vCPU (not vCPU 1): the host checks
    // that the policy is per vCPU after the run.
    Ok(())
}

// ---- the IMSIC ping-pong of the `tvm_imsic_ipi_roundtrip` bench ----------

/// The id the bench's vCPUs send each other.
const BENCH_ID: u64 = 3;

/// This vCPU's file delivers; sie.SEIE lets `wfi` return on an interrupt
/// (sstatus.SIE stays clear: none is taken).
pub fn bench_setup() {
    iwrite(EIDELIVERY, 1);
    iwrite(EITHRESHOLD, 0);
    iwrite(EIE0, 1 << BENCH_ID);
    // SAFETY: a CSR write with no memory effects.
    unsafe { asm!("csrs sie, {0}", in(reg) 1u64 << 9) };
}

pub fn bench_send(vcpu: u64) {
    send(IMSIC_GPA + vcpu * 0x1000, BENCH_ID);
}

/// Waits in `wfi` for the other vCPU's send and claims it.
pub fn bench_wait() {
    while claim() == 0 {
        // SAFETY: wfi has no memory effects.
        unsafe { asm!("wfi") };
    }
}

/// vCPU 1's side of `test_unbound_vcpu`.
pub fn secondary() {
    iwrite(EIDELIVERY, 1);
    iwrite(EITHRESHOLD, 0);
    iwrite(EIE0, !1);
    VCPU1_SAW.store(claim(), Ordering::Release);
}

pub fn run(t: &mut Tally, arg: u64) {
    run_test(t, "covi_file", test_file);
    run_test(t, "covi_self_ipi", test_self_ipi);
    run_test(t, "covi_inject", test_inject);
    run_test(t, "covi_allow_errors", test_allow_errors);
    if arg & ARG_HAS_VCPU1 != 0 {
        run_test(t, "covi_unbound_vcpu", test_unbound_vcpu);
        run_test(t, "covi_wake", test_wake);
    }
    run_test(t, "covi_rebind", test_rebind);
}
