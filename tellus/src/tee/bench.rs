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
//!   ecall (guestvm loops on a no-op host call);
//! - `tvm_sbi_ipi_roundtrip`: mean vCPU 0 -> vCPU 1 -> vCPU 0 SBI IPI round
//!   trip inside guestvm, both vCPUs running at once on two harts, all of
//!   it served by the TSM: guestvm times it with the `time` CSR, which
//!   under `-icount shift=0` counts one ns per instruction retired on any
//!   hart (QEMU runs the harts in turn), so the figure is the instructions
//!   both harts spend per round trip;
//! - `tvm_imsic_ipi_roundtrip`: the same through the vCPUs' IMSIC guest
//!   files (COVI: a store to the other's IMSIC page, `wfi`, `stopei`), and
//!   then `covi_inject` / `covi_rebind` (`bench_covi`).

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
    ipi_roundtrip(p, &live, &mut pool, &info, false);
    if super::bench_covi::available(p, &info) {
        ipi_roundtrip(p, &live, &mut pool, &info, true);
    } else {
        println!("bench: note: no COVI (AIA capability): tvm_imsic_ipi_roundtrip, covi_inject, covi_rebind not run");
    }
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

/// How `guest_tvm` builds guestvm: its entry_arg, vCPUs, and whether the
/// TVM gets AIA (COVI, guestvm's IMSIC layout).
#[derive(Clone, Copy)]
struct GuestOpts {
    arg: u64,
    vcpus: u64,
    aia: bool,
}

fn guest_tvm(
    p: &Platform,
    live: &[bool; MAX_HARTS],
    pool: &mut Pool,
    info: &TsmInfo,
    image_pages: u64,
    o: GuestOpts,
) -> Option<(u64, Arena, u64, TvmHost)> {
    let GuestOpts { arg, vcpus, aia } = o;
    let src = take(pool, image_pages, PAGE)?;
    // SAFETY: `src` has room for the image (image_pages >= its size).
    unsafe { core::ptr::copy_nonoverlapping(GUESTVM.as_ptr(), src as *mut u8, GUESTVM.len()) };
    let params = take(pool, 1, PAGE)?;
    let aia_params = take(pool, 1, PAGE)?;
    let shared = take(pool, 4, PAGE)?;
    let need = 8
        + info.tvm_state_pages
        + vcpus * info.tvm_vcpu_state_pages
        + PT_PAGES
        + image_pages
        + 64
        + 16;
    let mut ar = converted(p, live, pool, need)?;
    let pd = ar.take(4, 4 * PAGE);
    let st = ar.take(info.tvm_state_pages, PAGE);
    let vs = ar.take(vcpus * info.tvm_vcpu_state_pages, PAGE);
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
        && (0..vcpus)
            .all(|v| create_vcpu(id, v, vs + v * info.tvm_vcpu_state_pages * PAGE).error == OK)
        && (!aia || super::bench_covi::init_aia(id, aia_params, vcpus))
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
    match guest_tvm(
        p,
        live,
        pool,
        info,
        pages,
        GuestOpts {
            arg: proto::ARG_FIRST_EXIT,
            vcpus: 1,
            aia: false,
        },
    ) {
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
    let Some((id, ar, _, mut host)) = guest_tvm(
        p,
        live,
        pool,
        info,
        pages,
        GuestOpts {
            arg,
            vcpus: 1,
            aia: false,
        },
    ) else {
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

/// What the boot hart hands the secondary that runs vCPU 1 in
/// `ipi_roundtrip`; the boot hart reads it back only after the ack.
#[repr(C)]
struct IpiRun {
    id: u64,
    slot: usize,
    /// Set by the boot hart to end the runs at the next interrupt exit.
    cancel: core::sync::atomic::AtomicBool,
    /// Runs of vCPU 1 (each ended by an exit).
    runs: u64,
    /// The exit that ended the last run and its a0..a7.
    last: Exit,
    args: [u64; 8],
}

/// Runs vCPU 1 on this secondary until it stops itself (its HSM hart_stop
/// exit) or any other non-interrupt exit (a host interrupt only preempts
/// it: the command loop takes it and the vCPU runs again).
fn run_ipi_vcpu1(arg: u64) -> i64 {
    let req = arg as *mut IpiRun;
    // SAFETY: the boot hart keeps the `IpiRun` alive and reads its plain
    // fields only after we ack; `cancel` is atomic.
    let (id, slot) = unsafe { ((*req).id, (*req).slot) };
    let e = nacl_setup_here(slot, false);
    if e != OK {
        return e;
    }
    let mut runs = 0;
    let x = loop {
        let x = run_vcpu(id, 1);
        runs += 1;
        // SAFETY: as above.
        let cancel = unsafe { (*req).cancel.load(core::sync::atomic::Ordering::Acquire) };
        if x.error == OK && x.scause & arch::SCAUSE_INTERRUPT != 0 && !cancel && runs < 1000 {
            // run_vcpu re-enabled interrupts: the host interrupt is taken.
            continue;
        }
        break x;
    };
    // SAFETY: as above.
    unsafe {
        (*req).runs = runs;
        (*req).last = x;
        (*req).args = nacl_ecall_args(slot);
    }
    OK
}

/// `tvm_sbi_ipi_roundtrip` (see the module comment). vCPU 0 runs on the
/// boot hart, vCPU 1 on the first live secondary from the moment vCPU 0
/// starts it (HSM) until it stops itself; neither exits to tellus while
/// they ping-pong.
fn ipi_roundtrip(
    p: &Platform,
    live: &[bool; MAX_HARTS],
    pool: &mut Pool,
    info: &TsmInfo,
    imsic: bool,
) {
    let name = if imsic {
        "tvm_imsic_ipi_roundtrip"
    } else {
        "tvm_sbi_ipi_roundtrip"
    };
    const ITERS: u64 = 1000;
    let boot = boot_slot(p);
    let Some(sec) = (0..p.nharts).find(|&i| i != boot && live[i]) else {
        println!("bench: note: {name}: needs a second live hart");
        return;
    };
    if info.tvm_max_vcpus < 2 {
        println!("bench: note: {name}: the TSM allows one vCPU per TVM");
        return;
    }
    let mark = pool.mark();
    let pages = (GUESTVM.len() as u64).div_ceil(PAGE);
    let mut arg = proto::ARG_BENCH_IPI | proto::ARG_HAS_VCPU1 | (ITERS << proto::ARG_ITERS_SHIFT);
    // IMSIC: each vCPU bound to guest file 2 of the hart that runs it.
    let files = if imsic {
        arg |= proto::ARG_COVI;
        match super::bench_covi::convert_files(p, live, boot, sec) {
            Some(f) => Some(f),
            None => {
                println!("bench: note: {name}: converting the guest files failed");
                return;
            }
        }
    } else {
        None
    };
    let reclaim = |files: Option<[u64; 3]>| {
        if let Some(f) = files {
            super::bench_covi::reclaim_files(p, &f);
        }
    };
    let Some((id, ar, _, mut host)) = guest_tvm(
        p,
        live,
        pool,
        info,
        pages,
        GuestOpts {
            arg,
            vcpus: 2,
            aia: imsic,
        },
    ) else {
        println!("bench: note: {name}: building the TVM failed");
        reclaim(files);
        pool.reset(mark);
        return;
    };
    if imsic && !super::bench_covi::bind_both(p, id, boot, sec) {
        println!("bench: note: {name}: binding the vCPUs failed");
        release(id, &ar);
        reclaim(files);
        pool.reset(mark);
        return;
    }
    let mut req = IpiRun {
        id,
        slot: sec,
        cancel: core::sync::atomic::AtomicBool::new(false),
        runs: 0,
        last: Exit::default(),
        args: [0; 8],
    };
    let reqp = &raw mut req;
    let mut inflight: Option<u64> = None;
    // (ticks, round trips, failed calls) from guestvm.
    let mut result: Option<(u64, u64, u64)> = None;
    // vCPU 0's exits from vCPU 1's start to the result (only the start's
    // and host interrupts are expected).
    let mut exits_in_loop = 0u64;
    // A far deadline only ends a run of vCPU 0 if the ping-pong hangs.
    let guard_ticks = p.ms(500);
    let mut note: Option<crate::console::Msg> = None;
    for _ in 0..10_000 {
        arch::interrupts_disable();
        arch::sie_set(arch::STIP);
        let _ = crate::sbi::set_timer(arch::read_time() + guard_ticks);
        let x = run_vcpu(id, 0);
        take_interrupts();
        if inflight.is_some() && result.is_none() {
            exits_in_loop += 1;
        }
        if x.error == OK
            && x.scause == 10
            && nacl_gpr(boot, cove_abi::nacl::gpr::A7) == proto::EID_GVM
            && nacl_gpr(boot, cove_abi::nacl::gpr::A6) == proto::FID_BENCH_RESULT
        {
            let a = nacl_ecall_args(boot);
            result = Some((a[0], a[1], a[2]));
            nacl_set_gpr(boot, cove_abi::nacl::gpr::A0, 0);
            nacl_set_gpr(boot, cove_abi::nacl::gpr::A1, 0);
            continue;
        }
        if let Some(seq) = inflight {
            if result.is_none()
                && crate::harts::SLOTS[sec]
                    .ack_seq
                    .load(core::sync::atomic::Ordering::Acquire)
                    >= seq
            {
                // SAFETY: the secondary acked: it no longer touches `req`.
                let (last, a7, a6) = unsafe { ((*reqp).last, (*reqp).args[7], (*reqp).args[6]) };
                if !(last.error == OK && last.scause == 10 && a7 == 0x0048_534D && a6 == 1) {
                    note = Some(crate::msg!(
                        "vCPU 1 left its loop: error {} scause {:#x} a7 {a7:#x}",
                        last.error,
                        last.scause
                    ));
                    break;
                }
            }
        }
        match host.handle(boot, &x) {
            Ok(()) => {}
            Err(Stop::Shutdown(_)) => break,
            Err(Stop::Error(m)) => {
                note = Some(m);
                break;
            }
        }
        if let Some(v) = host.start_vcpu.take() {
            if v != 1 || inflight.is_some() {
                note = Some(crate::msg!("guestvm started vCPU {v} again"));
                break;
            }
            inflight = Some(crate::harts::call_async(p, sec, run_ipi_vcpu1, reqp as u64));
        }
    }
    arch::sie_clear(arch::STIP);
    let _ = crate::sbi::set_timer(u64::MAX);
    if let Some(seq) = inflight {
        if crate::harts::wait_ack(&crate::harts::SLOTS[sec], seq, p.ms(100)).is_none() {
            // Still in the TVM (vCPU 0 gave up): an IPI to its hart ends
            // the run, and `cancel` the loop.
            req.cancel
                .store(true, core::sync::atomic::Ordering::Release);
            let _ = crate::sbi::send_ipi(1, p.harts[sec]);
            if crate::harts::wait_ack(&crate::harts::SLOTS[sec], seq, p.ms(2000)).is_none() {
                println!("bench: note: {name}: vCPU 1 does not come back");
            }
        }
    }
    if let Some(m) = note {
        println!("bench: note: {name}: {m}");
    }
    match result {
        Some((ticks, n, 0)) if n > 0 && p.timebase > 0 => {
            // ns per round trip (= instructions under -icount shift=0).
            let ns = ticks as u128 * 1_000_000_000 / p.timebase as u128 / n as u128;
            println!("bench: {name} {ns} instructions");
            // SAFETY: the secondary acked (or never ran): `req` is ours.
            let runs = unsafe { (*reqp).runs };
            if exits_in_loop > 1 || runs > 1 {
                println!(
                    "bench: note: {name}: exits during the loop: vCPU 0 {}, vCPU 1 {}",
                    exits_in_loop.saturating_sub(1),
                    runs.saturating_sub(1)
                );
            }
        }
        Some((_, n, bad)) => {
            println!("bench: note: {name}: guestvm reported {n} round trips, {bad} failed calls")
        }
        None => println!("bench: note: {name}: no result from guestvm"),
    }
    if imsic {
        super::bench_covi::inject_and_rebind(p, id, sec);
    }
    release(id, &ar);
    reclaim(files);
    pool.reset(mark);
}
