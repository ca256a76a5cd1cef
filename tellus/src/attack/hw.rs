//! Attacks through state the hardware keeps for the guest.

use core::arch::asm;

use cove_abi::{CovhFunction, EID_COVH};
use sbi_abi::SbiRet;

use crate::harness::{run_one, T};
use crate::platform::Platform;
use crate::tee::ctx::{convert, reclaim_check, tiny_pages, tiny_tvm, Arena, Ctx};
use crate::tee::*;

macro_rules! check {
    ($t:expr, $cond:expr, $($arg:tt)*) => {
        $t.check($cond, format_args!($($arg)*))
    };
}

pub fn run(p: &Platform, cx: &mut Ctx) {
    crate::trap::set_fetch_fault_fixup(fetch_fault_fixup);
    run_one("attack_hw_vstart", p, |t, p| test_vstart(t, p, cx));
    run_one("attack_hw_vstart_tvm", p, |t, p| test_vstart_tvm(t, p, cx));
    run_one("attack_hw_mmio_insn", p, test_mmio_insn);
    run_one("attack_hw_hlvx_fault", p, |t, p| test_hlvx_fault(t, p, cx));
    run_one("attack_hw_reset_while_running", p, |t, p| {
        test_reset_while_running(t, p, cx)
    });
}

/// A finalized TVM that exits on every run (`EXIT_LOOP_CODE`: a forwarded
/// ecall): every run is one entry and one exit, cheap and deterministic.
struct Faulter {
    id: u64,
    base: u64,
    need: u64,
    mark: Mark,
}

fn faulter(t: &mut T, p: &Platform, cx: &mut Ctx) -> Option<Faulter> {
    let w = crate::tee::exit_loop_words();
    let mut code = [0u8; 16];
    code[..8].copy_from_slice(&w[0].to_le_bytes());
    code[8..].copy_from_slice(&w[1].to_le_bytes());
    tvm_with_code(t, p, cx, &code)
}

/// A finalized one-vCPU TVM whose code page (GPA 0x8000_0000, its entry
/// point) starts with `code`.
fn tvm_with_code(t: &mut T, p: &Platform, cx: &mut Ctx, code: &[u8]) -> Option<Faulter> {
    let mark = cx.pool.mark();
    let need = tiny_pages(&cx.info) + 4;
    let base = cx.pool.alloc(need * PAGE, SIZE_2M)?;
    let params = cx.pool.alloc(PAGE, PAGE)?;
    let src = cx.pool.alloc(PAGE, PAGE)?;
    for (i, b) in code.iter().enumerate().take(PAGE as usize) {
        // SAFETY: `src` is a pool page tellus owns.
        unsafe { core::ptr::write_volatile((src + i as u64) as *mut u8, *b) };
    }
    if !convert(t, p, cx, base, need) {
        cx.pool.reset(mark);
        return None;
    }
    let mut ar = Arena::new(base, need);
    let f = Faulter {
        id: 0,
        base,
        need,
        mark,
    };
    let Some(tv) = tiny_tvm(t, cx, &mut ar, params) else {
        drop_faulter(t, cx, f);
        return None;
    };
    let f = Faulter { id: tv.id, ..f };
    let g = 0x8000_0000;
    let dest = ar.take(1, PAGE);
    let ok = add_measured_pages(f.id, src, dest, 0, 1, g).error == OK
        && finalize_tvm(f.id, g, 0, 0).error == OK
        && nacl_setup_here(boot_slot(p), false) == OK;
    check!(t, ok, "could not build and finalize the faulting TVM");
    if !ok {
        drop_faulter(t, cx, f);
        return None;
    }
    Some(f)
}

fn drop_faulter(t: &mut T, cx: &mut Ctx, f: Faulter) {
    if f.id != 0 {
        let r = destroy_tvm(f.id);
        check!(t, r.error == OK, "destroy_tvm: error {}", r.error);
    }
    reclaim_check(t, f.base, f.need);
    cx.pool.reset(f.mark);
}

// The TVM for attack_hw_vstart_tvm: it fills v0 with 0, 1, 2, ... and
// exits (forwarded ecall); on its next run it adds 1 to each element,
// sets vstart = 5 (as a vector instruction that faulted at element 5
// would leave it) and exits again; on its third run it counts the
// elements of v0 that are not 1, 2, 3, ... and reports the count in a0 of
// a third ecall (a6 = 1).
core::arch::global_asm!(
    r#"
    .section .text
    .balign 4
    .global tellus_tvm_vcheck
tellus_tvm_vcheck:
    .option push
    .option arch, +v
    li t0, 0x600
    csrs sstatus, t0
    li t0, 16
    vsetvli t1, t0, e8, m1, ta, ma
    vid.v v0
    li a7, {eid}
    li a6, 0
    li a0, 0
    ecall
    li t0, 16
    vsetvli t1, t0, e8, m1, ta, ma
    vadd.vi v0, v0, 1
    li t0, 5
    csrw vstart, t0
    li a7, {eid}
    li a6, 0
    li a0, 0
    ecall
    csrr a2, vstart
    csrw vstart, zero
    li t0, 16
    vsetvli t1, t0, e8, m1, ta, ma
    vid.v v1
    vadd.vi v1, v1, 1
    vmsne.vv v2, v0, v1
    vcpop.m a0, v2
    li a7, {eid}
    li a6, 1
    ecall
1:  j 1b
    .option pop
    .global tellus_tvm_vcheck_end
tellus_tvm_vcheck_end:
"#,
    eid = const crate::tee::proto::EID_GVM,
);

extern "C" {
    fn tellus_tvm_vcheck();
    fn tellus_tvm_vcheck_end();
}

/// Finding 6, the TVM's side: a TVM that exits with `vstart` != 0 (a
/// vector instruction faulted mid-way) must get its whole v0 back, and
/// `vstart` too; the host also leaves `vstart` at 5 across that run.
fn test_vstart_tvm(t: &mut T, p: &Platform, cx: &mut Ctx) {
    let vlenb = if p.has_v {
        crate::arch::read_vlenb()
    } else {
        0
    };
    if !(16..=256).contains(&vlenb) {
        t.note(format_args!("skipped: no V (or VLEN not in 128..=2048)"));
        return;
    }
    let (start, end) = (
        tellus_tvm_vcheck as *const () as u64,
        tellus_tvm_vcheck_end as *const () as u64,
    );
    let mut code = [0u8; 256];
    let n = ((end - start) as usize).min(code.len());
    for (i, b) in code.iter_mut().enumerate().take(n) {
        // SAFETY: tellus's own text (paging off).
        *b = unsafe { core::ptr::read_volatile((start + i as u64) as *const u8) };
    }
    let Some(f) = tvm_with_code(t, p, cx, &code[..n]) else {
        return;
    };
    let slot = boot_slot(p);
    let ecall_exit = |t: &mut T, what: &str, x: (i64, u64)| -> bool {
        let (err, scause) = x;
        check!(
            t,
            err == OK && scause == 10,
            "{what}: error {err} scause {scause:#x} (want an ecall exit)"
        )
    };
    // 1: the TVM sets up v0 and exits.
    let x = run_vcpu(f.id, 0);
    if ecall_exit(t, "run 1", (x.error, x.scause)) {
        nacl_set_gpr(slot, cove_abi::nacl::gpr::A0, 0);
        nacl_set_gpr(slot, cove_abi::nacl::gpr::A1, 0);
        // 2: the host's registers and vstart = 5 across the call.
        let (err, sc) = run_leaving_vstart(f.id, 5);
        if ecall_exit(t, "run 2", (err, sc)) {
            nacl_set_gpr(slot, cove_abi::nacl::gpr::A0, 0);
            nacl_set_gpr(slot, cove_abi::nacl::gpr::A1, 0);
            // 3: no vector instruction of the host since run 2 returned.
            let x = run_vcpu(f.id, 0);
            if ecall_exit(t, "run 3", (x.error, x.scause)) {
                let a6 = nacl_gpr(slot, cove_abi::nacl::gpr::A0 + 6);
                let bad = nacl_gpr(slot, cove_abi::nacl::gpr::A0);
                let vs = nacl_gpr(slot, cove_abi::nacl::gpr::A0 + 2);
                check!(t, a6 == 1, "run 3: the TVM made ecall a6 = {a6}, want 1");
                check!(
                    t,
                    bad == 0,
                    "{bad} of the TVM's 16 v0 elements changed across an exit with vstart 5"
                );
                check!(t, vs == 5, "the TVM's vstart came back as {vs}, want 5");
            }
        }
    }
    // Salus gave the host back its vstart (5); later tests expect 0.
    // SAFETY: V is present; only the vstart CSR changes.
    unsafe {
        asm!(
            ".option push",
            ".option arch, +v",
            "csrw vstart, zero",
            ".option pop",
            options(nostack)
        )
    };
    drop_faulter(t, cx, f);
}

/// run_tvm_vcpu with `vstart` set just before it, and no vector access
/// after it (the host's vector state stays as Salus restored it).
/// Returns the error and `scause`.
fn run_leaving_vstart(id: u64, vstart: u64) -> (i64, u64) {
    let error: i64;
    let scause: u64;
    let sstatus: u64;
    // SAFETY: V is present (the caller checked); an ecall that returns like
    // any other; interrupts are off meanwhile.
    unsafe {
        asm!(
            "csrrci {ss}, sstatus, 2",
            ".option push",
            ".option arch, +v",
            "csrw vstart, {vs}",
            ".option pop",
            "ecall",
            "csrr {sc}, scause",
            vs = in(reg) vstart,
            sc = out(reg) scause,
            ss = out(reg) sstatus,
            inlateout("a0") id => error,
            inlateout("a1") 0u64 => _,
            in("a6") CovhFunction::RunTvmVcpu.fid(),
            in("a7") EID_COVH,
            options(nostack),
        );
    }
    if sstatus & 2 != 0 {
        crate::arch::interrupts_enable();
    }
    (error, scause)
}

/// The host's vector registers and `vstart` around one run_tvm_vcpu.
struct VecRun {
    v_in: [u64; REGCHECK_VBYTES / 8],
    v_out: [u64; REGCHECK_VBYTES / 8],
}

/// Loads v0..v31 from `vr.v_in`, sets `vstart` to `vstart`, calls
/// run_tvm_vcpu, then reads `vstart` and stores v0..v31 to `vr.v_out`
/// (with `vstart` zeroed first so the store itself skips nothing). Returns
/// the call's result, the `vstart` seen after it and `scause` (the exit).
fn run_with_vstart(id: u64, vr: &mut VecRun, vstart: u64) -> (SbiRet, u64, u64) {
    let error: i64;
    let value: u64;
    let vstart_out: u64;
    let scause: u64;
    let sstatus: u64;
    // SAFETY: V is present (the caller checked); the whole-register moves
    // touch only `vr`'s buffers (32 * vlenb bytes, vlenb <= 256 checked by
    // the caller); the ecall returns like any other (a0/a1 change);
    // interrupts are off meanwhile. Rust never keeps values in v registers.
    unsafe {
        asm!(
            "csrrci {ss}, sstatus, 2",
            ".option push",
            ".option arch, +v",
            "csrw vstart, zero",
            ".option pop",
            vregs_load!(),
            ".option push",
            ".option arch, +v",
            "csrw vstart, {vs}",
            ".option pop",
            "ecall",
            "csrr {sc}, scause",
            ".option push",
            ".option arch, +v",
            "csrr {vso}, vstart",
            "csrw vstart, zero",
            ".option pop",
            vregs_store!(),
            vin = in(reg) vr.v_in.as_ptr(),
            vout = in(reg) vr.v_out.as_mut_ptr(),
            vs = in(reg) vstart,
            vso = out(reg) vstart_out,
            sc = out(reg) scause,
            ss = out(reg) sstatus,
            t = out(reg) _,
            q = out(reg) _,
            inlateout("a0") id => error,
            inlateout("a1") 0u64 => value,
            in("a6") CovhFunction::RunTvmVcpu.fid(),
            in("a7") EID_COVH,
            options(nostack),
        );
    }
    if sstatus & 2 != 0 {
        crate::arch::interrupts_enable();
    }
    (SbiRet { error, value }, vstart_out, scause)
}

/// Finding 6: the whole-register moves Salus uses to switch vector state
/// honour `vstart`. A host that leaves `vstart` non-zero across
/// run_tvm_vcpu made Salus skip the first elements of its save (the host
/// got stale bytes back) and of the TVM's restore (the TVM ran with the
/// host's bytes in v0). The host's registers and `vstart` must come back
/// exactly.
fn test_vstart(t: &mut T, p: &Platform, cx: &mut Ctx) {
    let vlenb = if p.has_v {
        crate::arch::read_vlenb()
    } else {
        0
    };
    if vlenb == 0 || vlenb > 256 {
        t.note(format_args!("skipped: no V (or VLEN > 2048)"));
        return;
    }
    let Some(f) = faulter(t, p, cx) else {
        return;
    };
    let words = (32 * vlenb / 8) as usize;
    let mut vr = VecRun {
        v_in: [0; REGCHECK_VBYTES / 8],
        v_out: [0; REGCHECK_VBYTES / 8],
    };
    // vstart is WARL up to VLMAX-1 of e8/m8; small values always stick.
    for (round, vstart) in [(1u64, 0u64), (2, 24), (3, 5), (4, 24)] {
        // A fresh pattern each round, so stale saved bytes never match.
        let mut x = round.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        for w in vr.v_in[..words].iter_mut() {
            x = x.rotate_left(13) ^ 0xd1b5_4a32_d192_ed03;
            *w = x;
        }
        let (r, vs_out, _) = run_with_vstart(f.id, &mut vr, vstart);
        if !check!(
            t,
            r.error == OK,
            "round {round}: run_tvm_vcpu error {}",
            r.error
        ) {
            break;
        }
        check!(
            t,
            vs_out == vstart,
            "round {round}: vstart {vs_out} after the run, want {vstart}"
        );
        if let Some(i) = (0..words).find(|&i| vr.v_out[i] != vr.v_in[i]) {
            check!(
                t,
                false,
                "round {round} (vstart {vstart}): host vector byte {} changed across run_tvm_vcpu: {:#x}, want {:#x}",
                i * 8,
                vr.v_out[i],
                vr.v_in[i]
            );
            break;
        }
    }
    drop_faulter(t, cx, f);
}

/// Finding 10, the working path: the emulated UART's scratch register
/// through byte stores and loads with different registers. With
/// `salus.no_htinst` Salus reads each instruction with HLVX.
fn test_mmio_insn(t: &mut T, p: &Platform) {
    if p.uart == 0 {
        t.note(format_args!("skipped: no ns16550a"));
        return;
    }
    let scr = p.uart + 7;
    for v in [0x5au64, 0xa5, 0x3c, 0] {
        let (r1, r2): (u64, u64);
        // SAFETY: the emulated UART's scratch register: Salus emulates
        // these accesses, no memory is touched.
        unsafe {
            asm!(
                "sb {v}, 0({a})",
                "lbu {r1}, 0({a})",
                "lb t3, 0({a})",
                "mv {r2}, t3",
                a = in(reg) scr,
                v = in(reg) v,
                r1 = out(reg) r1,
                r2 = out(reg) r2,
                out("t3") _,
                options(nostack),
            )
        };
        check!(
            t,
            r1 == v && r2 == v as u8 as i8 as i64 as u64,
            "UART scratch: wrote {v:#x}, read {r1:#x} / {r2:#x}"
        );
    }
    if p.no_htinst {
        t.note(format_args!("instructions read with HLVX"));
    }
}

// ---- HLVX fault: the host's code page gone by the time Salus reads it ----

// The routine copied into the test's code page: with a1 != 0 it loads the
// UART's LSR (a0 = UART base); with a1 == 0 it only returns.
core::arch::global_asm!(
    r#"
    .section .text
    .balign 4
    .global tellus_mmio_probe
tellus_mmio_probe:
    beqz a1, 1f
    lbu a0, 5(a0)
1:  ret
    .global tellus_mmio_probe_end
tellus_mmio_probe_end:
"#
);

extern "C" {
    fn tellus_mmio_probe();
    fn tellus_mmio_probe_end();
}

/// VS-stage VA of the code page (Sv39 root index 128).
const PROBE_VA: u64 = 0x20_0000_0000;

use core::sync::atomic::{AtomicU64, Ordering::*};

/// The leaf PTE the trap hook puts back, its value, and what it saw.
static FIX_PTE: AtomicU64 = AtomicU64::new(0);
static FIX_VAL: AtomicU64 = AtomicU64::new(0);
static FETCH_FAULTS: AtomicU64 = AtomicU64::new(0);
static FETCH_FAULT_AT: AtomicU64 = AtomicU64::new(0);

/// Called by the trap handler for an instruction page fault: if it is on
/// the test's code page, restore its PTE (sfence.vma) and retry.
fn fetch_fault_fixup(stval: u64) -> bool {
    let pte = FIX_PTE.load(Acquire);
    if pte == 0 || !(PROBE_VA..PROBE_VA + PAGE).contains(&stval) {
        return false;
    }
    wr(pte, FIX_VAL.load(Relaxed));
    // SAFETY: a TLB flush of tellus's own translation.
    unsafe { asm!("sfence.vma", options(nostack)) };
    FETCH_FAULTS.fetch_add(1, Relaxed);
    FETCH_FAULT_AT.store(stval, Relaxed);
    true
}

fn call_probe(uart: u64, load: bool) -> u64 {
    let r: u64;
    // SAFETY: calls the copy of tellus_mmio_probe at PROBE_VA, which only
    // touches a0/a1 (and the UART's LSR, which Salus emulates).
    unsafe {
        asm!(
            "jalr ra, 0({f})",
            f = in(reg) PROBE_VA,
            inout("a0") uart => r,
            in("a1") load as u64,
            out("ra") _,
            options(nostack),
        )
    };
    r
}

/// Finding 10, the failing path. tellus runs with Sv39 (identity
/// gigapages plus one code page at PROBE_VA), executes that page once so
/// the hart caches its translation, then clears its PTE without a fence
/// and calls the MMIO load in it. The fetch uses the stale TLB entry, the
/// load traps to Salus, and with `salus.no_htinst` Salus's HLVX walks the
/// VS-stage table, finds no page and faults. Salus must survive, leave
/// the host's pc alone, and the host then takes its own fetch fault on the
/// load (its hook restores the PTE) and completes the load.
fn test_hlvx_fault(t: &mut T, p: &Platform, cx: &mut Ctx) {
    if p.uart == 0 {
        t.note(format_args!("skipped: no ns16550a"));
        return;
    }
    let mark = cx.pool.mark();
    let Some(tables) = cx.pool.alloc(4 * PAGE, PAGE) else {
        check!(t, false, "pool exhausted");
        return;
    };
    let (root, l1, l0, code) = (tables, tables + PAGE, tables + 2 * PAGE, tables + 3 * PAGE);
    const V: u64 = 1;
    const R: u64 = 2;
    const W: u64 = 4;
    const X: u64 = 8;
    const A: u64 = 64;
    const D: u64 = 128;
    let pte = |pa: u64, flags: u64| (pa >> 12) << 10 | flags;
    for i in 0..8u64 {
        wr(root + i * 8, pte(i << 30, V | R | W | X | A | D));
    }
    wr(root + 128 * 8, pte(l1, V));
    wr(l1, pte(l0, V));
    let leaf = pte(code, V | X | A);
    wr(l0, leaf);
    let (start, end) = (
        tellus_mmio_probe as *const () as u64,
        tellus_mmio_probe_end as *const () as u64,
    );
    let mut off = 0;
    while off < end - start {
        // SAFETY: reads tellus's own text (paging is off here).
        let b = unsafe { core::ptr::read_volatile((start + off) as *const u8) };
        // SAFETY: `code` is a pool page tellus owns.
        unsafe { core::ptr::write_volatile((code + off) as *mut u8, b) };
        off += 1;
    }
    let after_load = {
        // The load is the instruction after the first branch.
        let first = rd(code) as u16;
        4 - if first & 3 != 3 { 2 } else { 0 }
    };
    let lbu_va = PROBE_VA + after_load;
    let rounds = 8;
    let mut ok_reads = 0;
    let mut at_load = 0;
    let uart = p.uart;
    crate::arch::interrupts_disable();
    // SAFETY: Sv39 with identity gigapages over everything tellus touches;
    // only this hart, undone below before anything else runs.
    unsafe {
        asm!(
            "fence.i",
            "csrw satp, {s}",
            "sfence.vma",
            s = in(reg) (8u64 << 60) | (root >> 12),
            options(nostack),
        )
    };
    for _ in 0..rounds {
        FETCH_FAULTS.store(0, Relaxed);
        FETCH_FAULT_AT.store(0, Relaxed);
        // Warm: the page's translation is now cached.
        call_probe(uart, false);
        // Gone from the table, but no fence: the hart may keep using it.
        FIX_VAL.store(leaf, Relaxed);
        FIX_PTE.store(l0, Release);
        wr(l0, 0);
        let lsr = call_probe(uart, true);
        FIX_PTE.store(0, Release);
        if lsr & 0x20 != 0 {
            ok_reads += 1;
        }
        if FETCH_FAULT_AT.load(Relaxed) == lbu_va {
            at_load += 1;
        }
    }
    // SAFETY: back to Bare, as tellus runs everywhere else.
    unsafe { asm!("csrw satp, zero", "sfence.vma", options(nostack)) };
    crate::arch::interrupts_enable();
    check!(
        t,
        ok_reads == rounds,
        "only {ok_reads} of {rounds} UART loads read an LSR with THRE set"
    );
    if p.no_htinst {
        // Each round: Salus's HLVX faulted, Salus fenced and returned to
        // the load, which then took the host's own fetch fault.
        check!(
            t,
            at_load == rounds,
            "host fetch faults on the load in {at_load} of {rounds} rounds (want all: the HLVX read should have failed each time)"
        );
        t.note(format_args!("{at_load} HLVX faults survived"));
    }
    cx.pool.reset(mark);
}

// ---- the firmware's reserved memory ------------------------------------------

/// Finding 11 (bootarg `fw-resv=ADDR`; xtests gives QEMU a device tree
/// whose /reserved-memory has a child at ADDR without `no-map`, in the
/// middle of what would be host RAM). The host's tree must list it, the
/// host must not be able to touch it, and it must not be convertible.
pub fn fw_reserved_scenario(p: &Platform, addr: u64) {
    run_one("attack_hw_fw_reserved", p, |t, p| {
        check!(
            t,
            p.reserved
                .as_slice()
                .iter()
                .any(|r| r.start <= addr && addr < r.end),
            "{addr:#x} is not in the host's /reserved-memory"
        );
        for a in [addr, addr + PAGE] {
            check!(
                t,
                try_read(a).is_err(),
                "the host can read {a:#x}, reserved by the firmware"
            );
        }
        if crate::tee::ctx::setup(p).is_some() {
            let r = convert_pages(addr, 1);
            check!(
                t,
                r.error == ERR_INVALID_ADDRESS,
                "convert_pages({addr:#x}): error {} (want {ERR_INVALID_ADDRESS})",
                r.error
            );
            if r.error == OK {
                // Undo on a broken Salus so the run ends cleanly.
                let _ = reclaim_pages(addr, 1);
            }
        }
    });
}

// ---- reset while a TVM vCPU runs elsewhere -----------------------------------

/// (TVM id, slot) for `spin_on_secondary`.
static SPIN_ID: AtomicU64 = AtomicU64::new(0);
static SPIN_SLOT: AtomicU64 = AtomicU64::new(0);
static SPIN_EXIT: AtomicU64 = AtomicU64::new(0);
/// How long (time ticks) the secondary keeps trying.
static SPIN_LIMIT: AtomicU64 = AtomicU64::new(0);
static SPIN_STOP: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);

fn spin_on_secondary(_: u64) -> i64 {
    let e = nacl_setup_here(SPIN_SLOT.load(Acquire) as usize, false);
    if e != OK {
        return e;
    }
    // Interrupt exits (the wake-up IPI may arrive late) and Busy (the boot
    // hart's probe holds it) run it again, until the boot hart says stop.
    let t0 = crate::arch::read_time();
    let limit = SPIN_LIMIT.load(Acquire);
    while crate::arch::read_time().wrapping_sub(t0) < limit {
        let x = run_vcpu(SPIN_ID.load(Acquire), 0);
        SPIN_EXIT.store(x.scause, Release);
        if SPIN_STOP.load(Acquire) {
            return x.error;
        }
        let again = x.error == cove_abi::error::SBI_ERR_BUSY
            || (x.error == OK && x.scause & crate::arch::SCAUSE_INTERRUPT != 0);
        if !again {
            return x.error;
        }
        take_interrupts();
    }
    ERR_FAILED
}

/// Finding 16, the refusal: while a TVM vCPU runs on another hart, a
/// system reset (here: shutdown) is refused with SBI_ERR_FAILED and
/// changes nothing; the TSM keeps working. A Salus that let it through
/// would end the run here.
fn test_reset_while_running(t: &mut T, p: &Platform, cx: &mut Ctx) {
    if cx.secondaries() == 0 {
        t.note(format_args!("skipped: needs a second hart"));
        return;
    }
    // A TVM that spins (`j .`) until a host interrupt preempts it.
    let Some(f) = tvm_with_code(t, p, cx, &0x0000_006fu32.to_le_bytes()) else {
        return;
    };
    let s = cx.slots()[1];
    SPIN_ID.store(f.id, Release);
    SPIN_SLOT.store(s as u64, Release);
    SPIN_EXIT.store(0, Release);
    SPIN_STOP.store(false, Release);
    SPIN_LIMIT.store(p.ms(10_000), Release);
    let slot = &crate::harts::SLOTS[s];
    slot.call_fn
        .store(spin_on_secondary as *const () as u64, Relaxed);
    slot.call_arg.store(0, Relaxed);
    let seq = crate::harts::post(slot, p.harts[s], crate::harts::CMD_CALL);
    // The vCPU is claimed once run_tvm_vcpu is in; it then spins.
    // Probes leave the secondary room to claim it between them.
    let claimed = crate::harts::wait_for(p.ms(5000), || {
        crate::harts::wait_for(p.ms(20), || false);
        run_vcpu_busy_probe(p, f.id)
    });
    if check!(t, claimed, "the secondary never started running the TVM") {
        let r = crate::sbi::system_reset(
            sbi_abi::srst::RESET_TYPE_SHUTDOWN,
            sbi_abi::srst::RESET_REASON_NO_REASON,
        );
        check!(
            t,
            r.error == ERR_FAILED,
            "system_reset while a TVM vCPU runs: error {} (want {ERR_FAILED})",
            r.error
        );
        // Nothing changed: COVH still answers.
        let mut buf = Info([0; 64]);
        check!(
            t,
            probe(&mut buf).is_some(),
            "the TSM stopped answering after the refused reset"
        );
    }
    // An IPI preempts the TVM; the secondary comes back.
    SPIN_STOP.store(true, Release);
    let _ = crate::sbi::send_ipi(1, p.harts[s]);
    let back = crate::harts::wait_ack(slot, seq, p.ms(5000));
    check!(
        t,
        back.is_some(),
        "the secondary did not come back from the TVM"
    );
    drop_faulter(t, cx, f);
}

/// True when run_tvm_vcpu says the vCPU is claimed by another hart
/// (Busy, returned before anything runs). If it is not, the call runs it
/// here: a host timer 5 ms out preempts the spinning TVM.
fn run_vcpu_busy_probe(p: &Platform, id: u64) -> bool {
    crate::arch::sie_set(crate::arch::STIP);
    let _ = crate::sbi::set_timer(crate::arch::read_time() + p.ms(5));
    let x = run_vcpu(id, 0);
    let _ = crate::sbi::set_timer(u64::MAX);
    crate::arch::sie_clear(crate::arch::STIP);
    take_interrupts();
    x.error == cove_abi::error::SBI_ERR_BUSY
}

// ---- reboot: TVM memory across a warm reset ---------------------------------

const MARKER_MAGIC: u64 = 0x7265_626f_6f74_3136; // "reboot16"
const SECRET_PAGES: u64 = 4;

/// The page that carries what the first boot learned to the second: the
/// last page of host RAM (tellus's pool allocates from the bottom).
fn marker(p: &Platform) -> u64 {
    p.ram_end() - PAGE
}

/// The secret's rule: each word follows from the previous one. The seed
/// comes from `time`, so the words exist in no image and are recognised
/// by the relation, not by value; zeroed memory never satisfies it.
fn next_word(x: u64) -> u64 {
    x.rotate_left(7) ^ 0x9e37_79b9_7f4a_7c15
}

/// Words of the page at `a` that follow the secret's rule from the word
/// before them.
fn secret_hits(a: u64) -> u64 {
    let mut hits = 0;
    let mut prev = rd(a);
    let mut off = 8;
    while off < PAGE {
        let w = rd(a + off);
        if w == next_word(prev) {
            hits += 1;
        }
        prev = w;
        off += 8;
    }
    hits
}

/// Finding 16 (run with bootarg `attack-reboot`, QEMU keeps RAM across a
/// warm reset). First boot: a TVM gets a secret in measured pages, their
/// addresses go to the marker page, and the host asks for a warm reboot
/// (type and reason with junk above bit 31: uint32 in the spec). Second
/// boot: the host reads the recorded pages, and the whole range the TVM
/// was built from, looking for the secret.
pub fn reboot_scenario(p: &Platform) {
    let m = marker(p);
    if rd(m) == MARKER_MAGIC {
        run_one("attack_hw_reboot_scrub", p, |t, _| reboot_check(t, m));
        return;
    }
    let Some(mut cx) = crate::tee::ctx::setup(p) else {
        run_one("attack_hw_reboot_scrub", p, |t, _| {
            check!(t, false, "COVH not available");
        });
        return;
    };
    let mut ok = false;
    run_one("attack_hw_reboot_plant", p, |t, p| {
        ok = reboot_plant(t, p, &mut cx, m);
    });
    if !ok {
        return;
    }
    const JUNK: u64 = 0xdead_beef << 32;
    let r = crate::sbi::call(
        crate::sbi::EID_SRST,
        0,
        [
            JUNK | sbi_abi::srst::RESET_TYPE_WARM_REBOOT as u64,
            JUNK | sbi_abi::srst::RESET_REASON_NO_REASON as u64,
            0,
            0,
            0,
            0,
        ],
    );
    wr(m, 0);
    run_one("attack_hw_reboot_scrub", p, |t, _| {
        check!(t, false, "warm reboot refused: error {}", r.error);
    });
}

fn reboot_plant(t: &mut T, p: &Platform, cx: &mut Ctx, m: u64) -> bool {
    check!(t, host_page_ok(m), "marker page {m:#x} is not host memory");
    // A TVM whose measured pages hold the secret (its "image").
    let need = tiny_pages(&cx.info) + SECRET_PAGES + 4;
    let (Some(base), Some(params), Some(src)) = (
        cx.pool.alloc(need * PAGE, SIZE_2M),
        cx.pool.alloc(PAGE, PAGE),
        cx.pool.alloc(SECRET_PAGES * PAGE, PAGE),
    ) else {
        check!(t, false, "pool exhausted");
        return false;
    };
    let mut x = crate::arch::read_time().wrapping_mul(0x2545_f491_4f6c_dd1d) | 1;
    let mut off = 0;
    while off < SECRET_PAGES * PAGE {
        wr(src + off, x);
        x = next_word(x);
        off += 8;
    }
    if !convert(t, p, cx, base, need) {
        return false;
    }
    let mut ar = Arena::new(base, need);
    let Some(tv) = tiny_tvm(t, cx, &mut ar, params) else {
        return false;
    };
    let dest = ar.take(SECRET_PAGES, PAGE);
    let g = 0x8000_0000;
    let ok = add_measured_pages(tv.id, src, dest, 0, SECRET_PAGES, g).error == OK
        && finalize_tvm(tv.id, g, 0, 0).error == OK;
    if !check!(t, ok, "could not build the TVM holding the secret") {
        return false;
    }
    // Only the TVM has the secret now.
    zero(src, SECRET_PAGES * PAGE);
    check!(
        t,
        try_read(dest).is_err(),
        "the TVM's page {dest:#x} is readable by the host"
    );
    wr(m + 8, base);
    wr(m + 16, need);
    wr(m + 24, dest);
    wr(m, MARKER_MAGIC);
    t.note(format_args!(
        "TVM {} holds a secret at {dest:#x} (+{SECRET_PAGES} pages); warm reboot",
        tv.id
    ));
    t.fails == 0
}

fn reboot_check(t: &mut T, m: u64) {
    let (base, need, dest) = (rd(m + 8), rd(m + 16), rd(m + 24));
    wr(m, 0);
    let mut found = 0;
    let mut first = None;
    for pg in 0..need.min(4096) {
        let a = base + pg * PAGE;
        if try_read(a).is_err() {
            check!(
                t,
                false,
                "page {a:#x} of the old TVM is not host memory now"
            );
            return;
        }
        // A page of random words matches by chance about never; a few
        // hits allow for coincidences in other data.
        if secret_hits(a) > 64 {
            found += 1;
            first.get_or_insert(a);
        }
    }
    check!(
        t,
        found == 0,
        "the old TVM's secret survived the reboot in {found} page(s), first at {:#x} (planted at {dest:#x})",
        first.unwrap_or(0)
    );
    t.note(format_args!("scanned {need} pages from {base:#x}"));
}
