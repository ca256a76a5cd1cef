//! COVI benchmarks (bench mode), run with `tvm_imsic_ipi_roundtrip`'s TVM
//! (guestvm's two vCPUs bound to guest file 2 of the boot hart and of a
//! secondary):
//! - `covi_inject`: instructions per `inject_tvm_cpu` into the bound vCPU 0
//!   (it allowed every id), on the boot hart;
//! - `covi_rebind`: instructions of moving vCPU 0 to file 3 of the
//!   secondary: `rebind_begin` there + `rebind_clone` here + `rebind_end`
//!   there, each counted on the hart that runs it (the `tvm_fence` between
//!   them is not in it: it is the host's fence, reported as
//!   `covi_rebind_fence`).

use cove_abi::covh::cap;
use cove_abi::covi::CoviFunction as F;
use cove_abi::TsmInfo;

use super::*;
use crate::arch;
use crate::platform::{Platform, MAX_HARTS};

pub fn available(p: &Platform, info: &TsmInfo) -> bool {
    info.tsm_capabilities & (1 << cap::AIA) != 0 && p.imsic != 0
}

/// Files 2 of `boot` and `sec` (the vCPUs' own) and 3 of `sec` (the
/// rebind's target), converted and fenced.
pub fn convert_files(
    p: &Platform,
    live: &[bool; MAX_HARTS],
    boot: usize,
    sec: usize,
) -> Option<[u64; 3]> {
    let files = [
        guest_file_addr(p, boot, 2),
        guest_file_addr(p, sec, 2),
        guest_file_addr(p, sec, 3),
    ];
    for (k, f) in files.iter().enumerate() {
        if covi_call(F::ConvertAiaImsic, *f, 0, 0) != OK {
            reclaim_files(p, &files[..k]);
            return None;
        }
    }
    if fence_all(p, live).is_err() {
        reclaim_files(p, &files);
        return None;
    }
    Some(files)
}

pub fn reclaim_files(_p: &Platform, files: &[u64]) {
    for f in files {
        let e = covi_call(F::ReclaimTvmAiaImsic, *f, 0, 0);
        if e != OK {
            println!("bench: note: reclaim guest file {f:#x}: error {e}");
        }
    }
}

/// init_tvm_aia and each vCPU's IMSIC address (guestvm's layout), before
/// finalize.
pub fn init_aia(id: u64, params_page: u64, vcpus: u64) -> bool {
    write_aia_params(
        params_page,
        &covi_params(proto::IMSIC_GPA, proto::IMSIC_HART_BITS),
    );
    covi_call(F::InitTvmAia, id, params_page, 32) == OK
        && (0..vcpus)
            .all(|v| covi_call(F::SetTvmAiaCpuImsicAddr, id, v, proto::IMSIC_GPA + v * PAGE) == OK)
}

/// vCPU 0 to file 2 of `boot`, vCPU 1 to file 2 of `sec`.
pub fn bind_both(p: &Platform, id: u64, boot: usize, sec: usize) -> bool {
    covi_on(p, boot, F::BindAiaImsic, [id, 0, 1 << 2]) == OK
        && covi_on(p, sec, F::BindAiaImsic, [id, 1, 1 << 2]) == OK
}

/// The instructions one COVI call takes on this hart, and its error.
fn counted(f: F, a: [u64; 3]) -> (u64, i64) {
    let i0 = arch::read_instret();
    let e = covi_call(f, a[0], a[1], a[2]);
    (arch::read_instret() - i0, e)
}

fn counted_call(arg: u64) -> i64 {
    // SAFETY: `arg` points at the caller's request, alive until the ack.
    let req = unsafe { &mut *(arg as *mut (F, [u64; 3], u64)) };
    let (n, e) = counted(req.0, req.1);
    req.2 = n;
    e
}

/// `counted` on hart slot `slot` (here if it is the boot hart's).
fn counted_on(p: &Platform, slot: usize, f: F, a: [u64; 3]) -> (u64, i64) {
    if slot == boot_slot(p) {
        return counted(f, a);
    }
    let mut req = (f, a, 0u64);
    let e = crate::harts::call(p, slot, counted_call, (&raw mut req) as u64, p.ms(2000));
    (req.2, e.unwrap_or(ERR_FAILED))
}

/// `covi_inject` and `covi_rebind` on the TVM guestvm left behind (both
/// vCPUs stopped, still bound, vCPU 0 allowing every id).
pub fn inject_and_rebind(p: &Platform, id: u64, sec: usize) {
    const N: u64 = 64;
    let mut total = 0;
    for k in 0..N {
        // Ids 1..=63 in turn: each is a new pending bit.
        let (n, e) = counted(F::InjectTvmCpu, [id, 0, 1 + k % 63]);
        if e != OK {
            println!("bench: note: covi_inject: error {e}");
            return;
        }
        total += n;
    }
    println!("bench: covi_inject {} instructions", total / N);

    let (b, e1) = counted_on(p, sec, F::RebindAiaImsicBegin, [id, 0, 1 << 3]);
    let i0 = arch::read_instret();
    let e2 = tvm_fence(id).error;
    let fence = arch::read_instret() - i0;
    let (c, e3) = counted(F::RebindAiaImsicClone, [id, 0, 0]);
    let (en, e4) = counted_on(p, sec, F::RebindAiaImsicEnd, [id, 0, 0]);
    if [e1, e2, e3, e4] != [OK; 4] {
        println!("bench: note: covi_rebind: errors begin {e1}, fence {e2}, clone {e3}, end {e4}");
        return;
    }
    println!("bench: covi_rebind {} instructions", b + c + en);
    println!("bench: covi_rebind_fence {fence} instructions");
}
