//! Finding 12: S-level CSRs that VS-mode reaches directly (no VS copy:
//! `senvcfg`, `scounteren`, `sstateen0`) and `siselect` (VS: `vsiselect`)
//! must not cross between the host and a TVM in either direction.
//!
//! Also the helper both attack tests use: a TVM made of a few instructions.

use crate::arch::{self, SCAUSE_INTERRUPT};
use crate::harness::{run_one, T};
use crate::platform::Platform;
use crate::tee::ctx::{convert, reclaim_check, tiny_pages, tiny_tvm, Arena, Ctx};
use crate::tee::*;
use cove_abi::covh::exception::VIRTUAL_SUPERVISOR_ENV_CALL;
use cove_abi::nacl;

/// Where the code TVM's code lives (and starts).
pub const CODE_GPA: u64 = 0x8000_0000;

pub const A0: u32 = 10;
pub const T0: u32 = 5;

pub fn csrr(rd: u32, csr: u32) -> u32 {
    (csr << 20) | (2 << 12) | (rd << 7) | 0x73
}
pub fn csrw(csr: u32, rs: u32) -> u32 {
    (csr << 20) | (rs << 15) | (1 << 12) | 0x73
}
/// `addi rd, zero, imm` (imm < 2048).
pub fn li(rd: u32, imm: u32) -> u32 {
    (imm << 20) | (rd << 7) | 0x13
}
pub const ECALL: u32 = 0x73;
pub const SPIN: u32 = 0x6f; // j .
/// `lui a7, 0x08000`: a7 = 0x0800_0000, an experimental-range EID, so the
/// code's ecalls are forwarded to the host (every other EID the TSM
/// answers itself).
const A7_FORWARDED: u32 = 0x0800_08b7;

/// Builds a TVM whose measured page at [`CODE_GPA`] holds `lui a7` (see
/// [`A7_FORWARDED`]) and then `code`, runs
/// `f(t, id, nacl slot)` on the boot hart, then destroys it and gives every
/// page back.
pub fn with_code_tvm(
    t: &mut T,
    p: &Platform,
    cx: &mut Ctx,
    code: &[u32],
    f: impl FnOnce(&mut T, u64, usize),
) {
    let mark = cx.pool.mark();
    let need = tiny_pages(&cx.info) + 2;
    let base = cx.pool.alloc(need * PAGE, SIZE_2M).unwrap();
    let params = cx.pool.alloc(PAGE, PAGE).unwrap();
    let src = cx.pool.alloc(PAGE, PAGE).unwrap();
    zero(src, PAGE);
    let word = |i: usize| {
        if i == 0 {
            A7_FORWARDED as u64
        } else {
            code.get(i - 1).copied().unwrap_or(0) as u64
        }
    };
    for i in 0..code.len().div_ceil(2) + 1 {
        wr(src + 8 * i as u64, (word(2 * i + 1) << 32) | word(2 * i));
    }
    if !convert(t, p, cx, base, need) {
        cx.pool.reset(mark);
        return;
    }
    let mut ar = Arena::new(base, need);
    if let Some(tv) = tiny_tvm(t, cx, &mut ar, params) {
        let r = add_measured_pages(tv.id, src, ar.take(1, PAGE), 0, 1, CODE_GPA);
        let ok = t.check(
            r.error == OK,
            format_args!("add_tvm_measured_pages: {}", r.error),
        );
        let r = finalize_tvm(tv.id, CODE_GPA, 0, 0);
        let ok = ok && t.check(r.error == OK, format_args!("finalize_tvm: {}", r.error));
        let slot = boot_slot(p);
        let r = nacl_setup_here(slot, false);
        if ok && t.check(r == OK, format_args!("nacl set_shmem: {r}")) {
            f(t, tv.id, slot);
        }
        let r = destroy_tvm(tv.id);
        t.check(r.error == OK, format_args!("destroy_tvm: {}", r.error));
    }
    reclaim_check(t, base, need);
    cx.pool.reset(mark);
}

/// Runs vCPU 0 until an exit that is not a host interrupt; also returns
/// how many host interrupts (and of those, timer interrupts) came first.
pub fn run_past_interrupts(id: u64) -> (Exit, u32, u32) {
    let (mut n, mut timers) = (0, 0);
    loop {
        let x = run_vcpu(id, 0);
        if x.error != OK || x.scause & SCAUSE_INTERRUPT == 0 || n >= 100 {
            return (x, n, timers);
        }
        n += 1;
        if x.scause == SCAUSE_INTERRUPT | 5 {
            timers += 1;
        }
        take_interrupts();
    }
}

const SENVCFG: u32 = 0x10a;
const SCOUNTEREN: u32 = 0x106;
const SISELECT: u32 = 0x150;
const SSTATEEN0: u32 = 0x10c;

/// Which of the four the machine has (siselect: Ssaia, sstateen0:
/// Smstateen), in the order of `CSRS`.
const CSRS: [u32; 4] = [SENVCFG, SCOUNTEREN, SISELECT, SSTATEEN0];
const NAMES: [&str; 4] = ["senvcfg", "scounteren", "siselect", "sstateen0"];

fn swap_all(have: [bool; 4], v: [u64; 4]) -> [u64; 4] {
    let mut old = [0; 4];
    old[0] = arch::swap_senvcfg(v[0]);
    old[1] = arch::swap_scounteren(v[1]);
    if have[2] {
        old[2] = arch::swap_siselect(v[2]);
    }
    if have[3] {
        old[3] = arch::swap_sstateen0(v[3]);
    }
    old
}

/// Sets `v` and returns what stuck (WARL fields).
fn set_all(have: [bool; 4], v: [u64; 4]) -> [u64; 4] {
    swap_all(have, v);
    let stuck = swap_all(have, v);
    swap_all(have, stuck);
    stuck
}

/// `a0..a3` of the ecall exit.
fn reported(slot: usize) -> [u64; 4] {
    core::array::from_fn(|i| nacl_gpr(slot, nacl::gpr::A0 + i))
}

fn test_vs_csrs(t: &mut T, p: &Platform, cx: &mut Ctx) {
    // The host DT hides Smstateen (an M-level name): probe sstateen0.
    let have = [true, true, p.has_ssaia, has_sstateen0()];
    // The TVM: read the four (a0..a3) and report; write its own values and
    // report what stuck; read them again and report; spin.
    let tvm_vals: [u32; 4] = [0x81, 0x2, 0x30, 0x1];
    let mut code = alloc_code();
    let mut n = 0;
    let mut push = |w: u32| {
        code[n] = w;
        n += 1;
    };
    let read_all = |push: &mut dyn FnMut(u32)| {
        for (i, csr) in CSRS.iter().enumerate() {
            let rd = A0 + i as u32;
            push(if have[i] { csrr(rd, *csr) } else { li(rd, 0) });
        }
    };
    read_all(&mut push);
    push(ECALL);
    for (i, csr) in CSRS.iter().enumerate() {
        if have[i] {
            push(li(T0, tvm_vals[i]));
            push(csrw(*csr, T0));
        }
    }
    read_all(&mut push);
    push(ECALL);
    read_all(&mut push);
    push(ECALL);
    push(SPIN);

    let saved = swap_all(have, [0; 4]);
    let host = set_all(have, [0x41, 0x5, 0x70, 0x1]);
    with_code_tvm(t, p, cx, &code[..n], |t, id, slot| {
        let ecall = |t: &mut T, x: &Exit, what: &str| {
            t.check(
                x.error == OK && x.scause == VIRTUAL_SUPERVISOR_ENV_CALL,
                format_args!(
                    "{what}: error {} scause {:#x} (want an ecall exit)",
                    x.error, x.scause
                ),
            )
        };
        let (x, _, _) = run_past_interrupts(id);
        if !ecall(t, &x, "first run") {
            return;
        }
        let first = reported(slot);
        for i in 0..4 {
            t.check(
                first[i] == 0,
                format_args!(
                    "the TVM's {} at its first run is {:#x}, not its reset 0 (the host's is {:#x})",
                    NAMES[i], first[i], host[i]
                ),
            );
        }
        let after = swap_all(have, host);
        for i in 0..4 {
            t.check(
                after[i] == host[i],
                format_args!(
                    "the host's {} is {:#x} after a TVM run, not its {:#x}",
                    NAMES[i], after[i], host[i]
                ),
            );
        }
        let (x, _, _) = run_past_interrupts(id);
        if !ecall(t, &x, "second run") {
            return;
        }
        let tvm = reported(slot);
        let after = swap_all(have, host);
        for i in 0..4 {
            t.check(
                after[i] == host[i],
                format_args!(
                    "the host's {} is {:#x} after the TVM wrote {:#x}, not its {:#x}",
                    NAMES[i], after[i], tvm[i], host[i]
                ),
            );
        }
        // The host changes its values; the TVM must still see its own.
        set_all(have, [0; 4]);
        let (x, _, _) = run_past_interrupts(id);
        if !ecall(t, &x, "third run") {
            return;
        }
        let again = reported(slot);
        for i in 0..4 {
            t.check(
                again[i] == tvm[i],
                format_args!(
                    "the TVM's {} is {:#x} at its next run, not the {:#x} it wrote",
                    NAMES[i], again[i], tvm[i]
                ),
            );
        }
        t.note(format_args!(
            "host {:x?}, TVM {:x?}, siselect {}, sstateen0 {}",
            host, tvm, have[2], have[3]
        ));
    });
    swap_all(have, saved);
}

fn has_sstateen0() -> bool {
    let slot = crate::trap::expect_fault();
    let _ = arch::read_sstateen0();
    crate::trap::fault_result(slot).is_none()
}

fn alloc_code() -> [u32; 64] {
    [0; 64]
}

pub fn run(p: &Platform, cx: &mut Ctx) {
    run_one("attack_vs_csrs", p, |t, p| test_vs_csrs(t, p, cx));
}
