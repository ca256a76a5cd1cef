//! TEE benchmarks (bench mode), in retired instructions (`rdinstret`
//! counts every mode):
//! - `convert_fence_per_page`: convert_pages + global/local fences,
//!   amortised over 1 GiB (or the largest power of two that works, printed
//!   as `convert_fence_span`);
//! - `measured_page_instructions` / `sha384_4k_instructions` /
//!   `measured_page_overhead_pct`: add_tvm_measured_pages per 4 KiB page vs
//!   a plain SHA-384 of 4 KiB in tellus with the same backend the TSM
//!   picks (Zknh when the hart has Zknh and Zbb);
//! - `tvm_create_1m`: create_tvm .. finalize + run until the first exit of
//!   guestvm padded to a 1 MiB measured image (it shuts down at once);
//! - `tvm_ecall_roundtrip`: median run_tvm_vcpu round trip for a forwarded
//!   ecall (guestvm loops on a no-op host call).

use core::hint::black_box;

use cove_abi::TsmInfo;
use measurement::Backend;

use super::ctx::{create, Arena, PT_PAGES};
use super::*;
use crate::arch;
use crate::platform::{Platform, MAX_HARTS};

fn take(pool: &mut Pool, pages: u64, align: u64) -> Option<u64> {
    pool.alloc(pages * PAGE, align)
}

pub fn run(p: &Platform) {
    let mut buf = Info([0; 64]);
    let Some(info) = probe(&mut buf) else {
        println!("tellus: COVH not available: TEE benchmarks not run");
        return;
    };
    let live = live_secondaries(p);
    let mut pool = Pool::new(p);
    let _ = nacl_setup_here(boot_slot(p), true);
    convert_fence(p, &live, &mut pool);
    measured_page(p, &live, &mut pool, &info);
    create_1m(p, &live, &mut pool, &info);
    ecall_roundtrip(p, &live, &mut pool, &info);
}

fn convert_fence(p: &Platform, live: &[bool; MAX_HARTS], pool: &mut Pool) {
    let mut span: u64 = 1 << 30;
    while span >= 16 << 20 {
        let mark = pool.mark();
        // Chunks from as many free ranges as needed.
        let mut chunks = [(0u64, 0u64); 16];
        let mut nc = 0;
        let mut left = span;
        while left > 0 && nc < chunks.len() {
            let mut sz = left;
            let got = loop {
                if let Some(a) = pool.alloc_raw(sz, SIZE_2M) {
                    break Some(a);
                }
                sz /= 2;
                if sz < SIZE_2M {
                    break None;
                }
            };
            let Some(a) = got else { break };
            chunks[nc] = (a, sz / PAGE);
            nc += 1;
            left -= sz;
        }
        if left != 0 {
            pool.reset(mark);
            span /= 2;
            continue;
        }
        let t0 = arch::read_instret();
        let mut done = 0;
        let mut err = OK;
        for &(a, n) in &chunks[..nc] {
            let r = convert_pages(a, n);
            if r.error != OK {
                err = r.error;
                break;
            }
            done += 1;
        }
        let fence = fence_all(p, live);
        let t1 = arch::read_instret();
        for &(a, n) in &chunks[..done] {
            let _ = reclaim_pages(a, n);
        }
        pool.reset(mark);
        if err == OK && fence.is_ok() {
            let pages = span / PAGE;
            println!(
                "bench: convert_fence_per_page {} instructions",
                (t1 - t0) / pages
            );
            println!("bench: convert_fence_span {} MiB", span >> 20);
            return;
        }
        println!(
            "bench: note: converting {} MiB failed (convert error {err}, fence {:?}); trying half",
            span >> 20,
            fence.err()
        );
        span /= 2;
    }
    println!("bench: note: convert_fence_per_page not measured");
}

/// Converts `pages` pages and returns an arena over them.
fn converted(p: &Platform, live: &[bool; MAX_HARTS], pool: &mut Pool, pages: u64) -> Option<Arena> {
    let base = take(pool, pages, SIZE_2M)?;
    if convert_pages(base, pages).error != OK || fence_all(p, live).is_err() {
        return None;
    }
    Some(Arena::new(base, pages))
}

fn release(id: u64, ar: &Arena) {
    let _ = destroy_tvm(id);
    let _ = reclaim_pages(ar.base, ar.pages);
}

fn measured_page(p: &Platform, live: &[bool; MAX_HARTS], pool: &mut Pool, info: &TsmInfo) {
    const N: u64 = 64;
    let mark = pool.mark();
    let Some(src) = take(pool, N, PAGE) else {
        return;
    };
    for i in 0..N * PAGE / 8 {
        wr(src + 8 * i, proto::pattern(3, i));
    }
    let params = take(pool, 1, PAGE).unwrap();
    let need = 8 + info.tvm_state_pages + info.tvm_vcpu_state_pages + PT_PAGES + N;
    let Some(mut ar) = converted(p, live, pool, need) else {
        println!("bench: note: measured_page: conversion failed");
        pool.reset(mark);
        return;
    };
    let pd = ar.take(4, 4 * PAGE);
    let st = ar.take(info.tvm_state_pages, PAGE);
    let pt = ar.take(PT_PAGES, PAGE);
    let dest = ar.take(N, PAGE);
    let r = create(params, pd, st);
    if r.error != OK {
        println!("bench: note: measured_page: create_tvm error {}", r.error);
        let _ = reclaim_pages(ar.base, ar.pages);
        pool.reset(mark);
        return;
    }
    let id = r.value;
    let _ = add_memory_region(id, 0x8000_0000, SIZE_2M);
    let _ = add_pt_pages(id, pt, PT_PAGES);
    // One page first (maps the page-table levels), then N-1 in one call.
    let _ = add_measured_pages(id, src, dest, 0, 1, 0x8000_0000);
    let t0 = arch::read_instret();
    let r = add_measured_pages(id, src + PAGE, dest + PAGE, 0, N - 1, 0x8000_1000);
    let t1 = arch::read_instret();
    if r.error != OK {
        println!("bench: note: add_tvm_measured_pages error {}", r.error);
        release(id, &ar);
        pool.reset(mark);
        return;
    }
    let per_page = (t1 - t0) / (N - 1);

    let backend = Backend::select(p.has_zknh);
    // SAFETY: `src` holds N pages of host memory we own.
    let page: &[u8] = unsafe { core::slice::from_raw_parts(src as *const u8, PAGE as usize) };
    let mut best = u64::MAX;
    for _ in 0..5 {
        let a = arch::read_instret();
        black_box(measurement::sha384(backend, black_box(page)));
        let b = arch::read_instret();
        best = best.min(b - a);
    }
    println!("bench: measured_page_instructions {per_page} instructions");
    println!(
        "bench: sha384_4k_instructions {best} instructions ({})",
        if backend == Backend::Zknh {
            "zknh"
        } else {
            "portable"
        }
    );
    let pct = (per_page as f64 - best as f64) * 100.0 / best as f64;
    println!("bench: measured_page_overhead_pct {:.2} %", pct);
    release(id, &ar);
    pool.reset(mark);
}

fn guest_tvm(
    p: &Platform,
    live: &[bool; MAX_HARTS],
    pool: &mut Pool,
    info: &TsmInfo,
    image_pages: u64,
    arg: u64,
) -> Option<(u64, Arena, u64, TvmHost)> {
    let src = take(pool, image_pages, PAGE)?;
    // SAFETY: `src` has room for the image (image_pages >= its size).
    unsafe { core::ptr::copy_nonoverlapping(GUESTVM.as_ptr(), src as *mut u8, GUESTVM.len()) };
    let params = take(pool, 1, PAGE)?;
    let shared = take(pool, 4, PAGE)?;
    let need =
        8 + info.tvm_state_pages + info.tvm_vcpu_state_pages + PT_PAGES + image_pages + 64 + 16;
    let mut ar = converted(p, live, pool, need)?;
    let pd = ar.take(4, 4 * PAGE);
    let st = ar.take(info.tvm_state_pages, PAGE);
    let vs = ar.take(info.tvm_vcpu_state_pages, PAGE);
    let pt = ar.take(PT_PAGES, PAGE);
    let dest = ar.take(image_pages, PAGE);
    let mut host = TvmHost::new(0);
    host.echo = false;
    for k in 0..64 {
        host.zero_pages[k] = ar.take(1, PAGE);
    }
    host.zero_n = 64;
    for k in 0..16 {
        host.spare_pt[k] = ar.take(1, PAGE);
    }
    host.spare_pt_n = 16;
    for k in 0..4 {
        host.host_pages[k] = shared + k as u64 * PAGE;
    }
    let t0 = arch::read_instret();
    let r = create(params, pd, st);
    if r.error != OK {
        let _ = reclaim_pages(ar.base, ar.pages);
        return None;
    }
    let id = r.value;
    host.id = id;
    let ok = add_memory_region(id, proto::REGION_GPA, proto::REGION_LEN).error == OK
        && add_pt_pages(id, pt, PT_PAGES).error == OK
        && add_measured_pages(id, src, dest, 0, image_pages, proto::IMAGE_GPA).error == OK
        && create_vcpu(id, 0, vs).error == OK
        && finalize_tvm(id, proto::IMAGE_GPA, arg, 0).error == OK;
    if !ok {
        release(id, &ar);
        return None;
    }
    Some((id, ar, t0, host))
}

fn create_1m(p: &Platform, live: &[bool; MAX_HARTS], pool: &mut Pool, info: &TsmInfo) {
    let mark = pool.mark();
    let pages = (1 << 20) / PAGE;
    let boot = boot_slot(p);
    match guest_tvm(p, live, pool, info, pages, proto::ARG_FIRST_EXIT) {
        Some((id, ar, t0, _host)) => {
            let mut x = run_vcpu(id, 0);
            while x.error == OK && x.scause & arch::SCAUSE_INTERRUPT != 0 {
                take_interrupts();
                x = run_vcpu(id, 0);
            }
            let t1 = arch::read_instret();
            let a7 = nacl_gpr(boot, cove_abi::nacl::gpr::A7);
            if x.error == OK && x.scause == 10 && a7 == 0x5352_5354 {
                println!("bench: tvm_create_1m {} instructions", t1 - t0);
            } else {
                println!(
                    "bench: note: tvm_create_1m: first exit error {} scause {:#x} a7 {a7:#x}",
                    x.error, x.scause
                );
            }
            release(id, &ar);
        }
        None => println!("bench: note: tvm_create_1m: building the TVM failed"),
    }
    pool.reset(mark);
}

fn ecall_roundtrip(p: &Platform, live: &[bool; MAX_HARTS], pool: &mut Pool, info: &TsmInfo) {
    const ITERS: u64 = 1000;
    let mark = pool.mark();
    let boot = boot_slot(p);
    let pages = (GUESTVM.len() as u64).div_ceil(PAGE);
    let arg = proto::ARG_BENCH_ECALL | (ITERS << proto::ARG_ITERS_SHIFT);
    let Some((id, ar, _, mut host)) = guest_tvm(p, live, pool, info, pages, arg) else {
        println!("bench: note: tvm_ecall_roundtrip: building the TVM failed");
        pool.reset(mark);
        return;
    };
    let mut d = [0u64; ITERS as usize];
    let mut nd = 0;
    let mut guard = 0;
    loop {
        guard += 1;
        if guard > 100_000 {
            println!("bench: note: tvm_ecall_roundtrip: no shutdown");
            break;
        }
        let a = arch::read_instret();
        let x = run_vcpu(id, 0);
        let b = arch::read_instret();
        if x.error == OK
            && x.scause == 10
            && nacl_gpr(boot, cove_abi::nacl::gpr::A7) == proto::EID_GVM
            && nd < d.len()
        {
            // Only the NOP exits count; the first one follows the guest's
            // start-up, so it is dropped by taking the median.
            d[nd] = b - a;
            nd += 1;
            nacl_set_gpr(boot, cove_abi::nacl::gpr::A0, 0);
            nacl_set_gpr(boot, cove_abi::nacl::gpr::A1, 0);
            continue;
        }
        if x.error == OK && x.scause & arch::SCAUSE_INTERRUPT != 0 {
            take_interrupts();
        }
        match host.handle(boot, &x) {
            Ok(()) => {}
            Err(Stop::Shutdown(_)) => break,
            Err(Stop::Error(m)) => {
                println!("bench: note: tvm_ecall_roundtrip: {m}");
                break;
            }
        }
    }
    if nd > 0 {
        let d = &mut d[..nd];
        d.sort_unstable();
        println!("bench: tvm_ecall_roundtrip {} instructions", d[nd / 2]);
    }
    release(id, &ar);
    pool.reset(mark);
}
