//! TEE tests: TSM info, convert/fence/reclaim, the guestvm lifecycle (run
//! on every hart in turn), negative tests of every COVH call, and the page
//! census. Run by `crate::suite` after the SBI tests, only when COVH probes
//! as present.

use core::fmt::Write;
use core::sync::atomic::Ordering::Acquire;

use cove_abi::TsmInfo;

use super::ctx::*;
use super::*;
use crate::console::Msg;
use crate::harness::{run_one, T};
use crate::platform::Platform;
use crate::{arch, harts, sbi};

/// The TEE tests before the attack group (`tee_census` comes last of all).
pub fn run(p: &Platform, cx: &mut Ctx) {
    run_one("tee_tsm_info", p, |t, p| test_tsm_info(t, p, cx));
    run_one("tee_convert_fence", p, |t, p| test_convert_fence(t, p, cx));
    run_one("tee_guestvm", p, |t, p| test_guestvm(t, p, cx));
    run_one("tee_negative_convert_reclaim", p, |t, p| {
        test_neg_convert(t, p, cx)
    });
    run_one("tee_negative_create", p, |t, p| test_neg_create(t, p, cx));
    run_one("tee_negative_tvm_calls", p, |t, p| test_neg_tvm(t, p, cx));
}

// ---- 1. get_tsm_info ------------------------------------------------------------

fn test_tsm_info(t: &mut T, p: &Platform, cx: &mut Ctx) {
    let buf = cx.pool.alloc(PAGE, PAGE).unwrap();
    let r = get_tsm_info(buf, 48);
    check!(
        t,
        r.error == OK && r.value == 48,
        "get_tsm_info: error {} value {} (want 0, 48)",
        r.error,
        r.value
    );
    let mut bytes = [0u8; 48];
    for (k, b) in bytes.iter_mut().enumerate() {
        // SAFETY: reading back our own buffer.
        *b = unsafe { core::ptr::read_volatile((buf + k as u64) as *const u8) };
    }
    let info = TsmInfo::from_bytes(&bytes).unwrap();
    check!(
        t,
        info.tsm_state == 2,
        "tsm_state {} (want READY 2)",
        info.tsm_state
    );
    check!(
        t,
        info.tsm_impl_id == 1,
        "tsm_impl_id {} (want 1)",
        info.tsm_impl_id
    );
    check!(
        t,
        info.tsm_version == 0x0001_0000,
        "tsm_version {:#x}",
        info.tsm_version
    );
    check!(
        t,
        info.tsm_capabilities == 1 << 5,
        "capabilities {:#x} (want only bit 5)",
        info.tsm_capabilities
    );
    check!(t, info._padding == 0, "padding {:#x}", info._padding);
    check!(
        t,
        info.tvm_max_vcpus >= 1,
        "tvm_max_vcpus {}",
        info.tvm_max_vcpus
    );
    check!(
        t,
        info.tvm_state_pages >= 1 && info.tvm_state_pages < 64,
        "tvm_state_pages {}",
        info.tvm_state_pages
    );
    check!(
        t,
        info.tvm_vcpu_state_pages >= 1 && info.tvm_vcpu_state_pages < 64,
        "tvm_vcpu_state_pages {}",
        info.tvm_vcpu_state_pages
    );
    // Bigger buffers are fine, 4-byte alignment is enough (spec).
    let r = get_tsm_info(buf + 0x100, 4096);
    check!(
        t,
        r.error == OK && r.value == 48,
        "get_tsm_info(len 4096): error {} value {}",
        r.error,
        r.value
    );
    let r = get_tsm_info(buf + 0x204, 48);
    check!(
        t,
        r.error == OK && r.value == 48,
        "get_tsm_info(4-aligned): error {} value {}",
        r.error,
        r.value
    );
    // Errors, and nothing written on error.
    wr(buf + 0x400, 0xdead);
    check_err!(
        t,
        get_tsm_info(buf + 0x400, 47),
        ERR_INVALID_PARAM,
        "get_tsm_info(len 47)"
    );
    check_err!(
        t,
        get_tsm_info(buf + 0x400, 0),
        ERR_INVALID_PARAM,
        "get_tsm_info(len 0)"
    );
    check!(t, rd(buf + 0x400) == 0xdead, "get_tsm_info wrote on error");
    check_err!(
        t,
        get_tsm_info(buf + 0x402, 48),
        ERR_INVALID_ADDRESS,
        "get_tsm_info(2-aligned)"
    );
    if let Some(f) = p.forbidden() {
        check_err!(
            t,
            get_tsm_info(f.start, 48),
            ERR_INVALID_ADDRESS,
            "get_tsm_info(reserved {:#x})",
            f.start
        );
    }
    check_err!(
        t,
        get_tsm_info(p.ram_end(), 48),
        ERR_INVALID_ADDRESS,
        "get_tsm_info(beyond RAM)"
    );
    check_err!(
        t,
        get_tsm_info(p.ram_end() - 8, 48),
        ERR_INVALID_ADDRESS,
        "get_tsm_info(straddling RAM end)"
    );
    check_err!(
        t,
        get_tsm_info(u64::MAX - 7, 48),
        ERR_INVALID_ADDRESS,
        "get_tsm_info(wrapping)"
    );
    // Unknown COVH FIDs and reserved a6 bits.
    check_err!(t, covh_raw(20, [0; 6]), ERR_NOT_SUPPORTED, "COVH fid 20");
    check_err!(
        t,
        covh_raw(1 << 16, [buf, 48, 0, 0, 0, 0]),
        ERR_NOT_SUPPORTED,
        "COVH get_tsm_info with a6 bit 16"
    );
    check_err!(
        t,
        covh_raw(1 << 26, [buf, 48, 0, 0, 0, 0]),
        ERR_NOT_SUPPORTED,
        "COVH get_tsm_info with SDID 1"
    );
    t.note(format_args!(
        "state pages {}, vcpu state pages {}, max vcpus {}",
        info.tvm_state_pages, info.tvm_vcpu_state_pages, info.tvm_max_vcpus
    ));
}

// ---- 2. convert / fence / reclaim -------------------------------------------

fn test_convert_fence(t: &mut T, p: &Platform, cx: &mut Ctx) {
    let n = 16;
    let base = cx.pool.alloc(n * PAGE, PAGE).unwrap();
    for k in 0..n {
        wr(base + k * PAGE, 0x1111 * (k + 1));
    }
    if !check_err!(
        t,
        convert_pages(base, n),
        OK,
        "convert_pages({base:#x}, {n})"
    ) {
        return;
    }
    CENSUS.lock().add(base, n);
    // Converting pages are gone from the host at once.
    for k in [0, n / 2, n - 1] {
        let a = base + k * PAGE;
        match try_read(a) {
            Ok(v) => {
                check!(
                    t,
                    false,
                    "read of converting page {a:#x} did not fault (read {v:#x})"
                );
            }
            Err(c) => {
                check!(
                    t,
                    c == arch::EXC_LOAD_ACCESS,
                    "read of converting page {a:#x}: scause {c} (want 5)"
                );
            }
        }
    }
    check_err!(
        t,
        convert_pages(base, n),
        ERR_INVALID_ADDRESS,
        "second convert_pages of the same range"
    );
    check_err!(
        t,
        convert_pages(base + 4 * PAGE, 1),
        ERR_INVALID_ADDRESS,
        "convert_pages of a converting page"
    );
    check_err!(
        t,
        reclaim_pages(base, n),
        ERR_INVALID_ADDRESS,
        "reclaim_pages of converting pages"
    );
    let r = global_fence();
    check_err!(t, r, OK, "global_fence");
    if cx.secondaries() > 0 {
        check_err!(
            t,
            global_fence(),
            ERR_ALREADY_STARTED,
            "global_fence while a fence is in flight"
        );
        // Still converting until every other hart fenced.
        check_err!(
            t,
            reclaim_pages(base, n),
            ERR_INVALID_ADDRESS,
            "reclaim_pages before the local fences"
        );
        if let Err((what, e)) = local_fences(p, &cx.live) {
            check!(t, false, "{what}: error {e}");
        }
    }
    check_err!(t, local_fence(), OK, "local_fence on the boot hart");
    // Converted pages stay inaccessible.
    match try_read(base) {
        Ok(v) => {
            check!(
                t,
                false,
                "read of converted page {base:#x} did not fault (read {v:#x})"
            );
        }
        Err(c) => {
            check!(
                t,
                c == arch::EXC_LOAD_ACCESS,
                "read of converted page: scause {c}"
            );
        }
    }
    // A fence with nothing pending completes too.
    match fence_all(p, &cx.live) {
        Ok(()) => {}
        Err((what, e)) => {
            check!(t, false, "empty fence: {what}: error {e}");
        }
    }
    // Partial reclaim, then the rest; pages come back zeroed.
    reclaim_check(t, base, 4);
    check_err!(
        t,
        reclaim_pages(base, 4),
        ERR_INVALID_ADDRESS,
        "reclaim of host pages"
    );
    reclaim_check(t, base + 4 * PAGE, n - 4);
    t.note(format_args!("{} other hart(s) fenced", cx.secondaries()));
}

// ---- 3. guestvm ---------------------------------------------------------------

fn test_guestvm(t: &mut T, p: &Platform, cx: &mut Ctx) {
    let mark = cx.pool.mark();
    let info = cx.info;
    let img_pages = (GUESTVM.len() as u64).div_ceil(PAGE);
    if !check!(
        t,
        img_pages > 0 && img_pages * PAGE <= proto::IMAGE_MAX / 2,
        "guestvm image of {} bytes does not fit",
        GUESTVM.len()
    ) {
        return;
    }
    // Host buffers: image copy, 2 MiB pattern, shared pages, params.
    let src_img = cx.pool.alloc(img_pages * PAGE, PAGE).unwrap();
    // SAFETY: src_img has img_pages pages of host memory we own.
    unsafe { core::ptr::copy_nonoverlapping(GUESTVM.as_ptr(), src_img as *mut u8, GUESTVM.len()) };
    let src_2m = cx.pool.alloc(SIZE_2M, SIZE_2M).unwrap();
    for i in 0..SIZE_2M / 8 {
        wr(src_2m + 8 * i, proto::pattern(proto::MEASURED_2M_SEED, i));
    }
    let params = cx.pool.alloc(PAGE, PAGE).unwrap();
    let shared_host = cx.pool.alloc(4 * PAGE, PAGE).unwrap();

    // The confidential arena: [0,2M) measured 2M, [2M,4M) 2M zero page,
    // then the 4 KiB pieces.
    let small =
        8 + info.tvm_state_pages + 2 * info.tvm_vcpu_state_pages + PT_PAGES + 16 + 64 + img_pages;
    let arena_pages = 1024 + small.div_ceil(512) * 512;
    let Some(arena_base) = cx.pool.alloc(arena_pages * PAGE, SIZE_2M) else {
        check!(t, false, "no room for a {arena_pages}-page arena");
        return;
    };
    if !convert(t, p, cx, arena_base, arena_pages) {
        return;
    }
    let mut ar = Arena::new(arena_base, arena_pages);
    let dest_2m = ar.take(512, SIZE_2M);
    let zero_2m = ar.take(512, SIZE_2M);
    let pagedir = ar.take(4, 4 * PAGE);
    let state = ar.take(info.tvm_state_pages, PAGE);
    let vcpu0 = ar.take(info.tvm_vcpu_state_pages, PAGE);
    let vcpu1 = ar.take(info.tvm_vcpu_state_pages, PAGE);
    let pt = ar.take(PT_PAGES, PAGE);
    let dest_img = ar.take(img_pages, PAGE);
    let mut host = TvmHost::new(0);
    for k in 0..16 {
        host.spare_pt[k] = ar.take(1, PAGE);
    }
    host.spare_pt_n = 16;
    for k in 0..64 {
        host.zero_pages[k] = ar.take(1, PAGE);
    }
    host.zero_n = 64;
    host.zero_2m = Some(zero_2m);
    for k in 0..4 {
        host.host_pages[k] = shared_host + k as u64 * PAGE;
    }

    let r = create(params, pagedir, state);
    if !check_err!(t, r, OK, "create_tvm") {
        reclaim_check(t, arena_base, arena_pages);
        cx.pool.reset(mark);
        return;
    }
    let id = r.value;
    host.id = id;
    check!(t, id >= 1, "tvm id {id}");
    check_err!(
        t,
        add_memory_region(id, proto::REGION_GPA, proto::REGION_LEN),
        OK,
        "add_tvm_memory_region"
    );
    check_err!(
        t,
        add_pt_pages(id, pt, PT_PAGES),
        OK,
        "add_tvm_page_table_pages({PT_PAGES})"
    );
    check_err!(
        t,
        add_measured_pages(id, src_img, dest_img, 0, img_pages, proto::IMAGE_GPA),
        OK,
        "add_tvm_measured_pages(image, {img_pages} pages)"
    );
    let has_2m = check_err!(
        t,
        add_measured_pages(id, src_2m, dest_2m, 1, 1, proto::MEASURED_2M_GPA),
        OK,
        "add_tvm_measured_pages(2 MiB page)"
    );
    check_err!(t, create_vcpu(id, 0, vcpu0), OK, "create_tvm_vcpu(0)");
    let mut arg = 0;
    if info.tvm_max_vcpus > 1 && check_err!(t, create_vcpu(id, 1, vcpu1), OK, "create_tvm_vcpu(1)")
    {
        arg |= proto::ARG_HAS_VCPU1;
    }
    if p.has_v {
        arg |= proto::ARG_HAS_V;
    }
    if has_2m {
        arg |= proto::ARG_HAS_2M;
    }
    if !check_err!(
        t,
        finalize_tvm(id, proto::IMAGE_GPA, arg, 0),
        OK,
        "finalize_tvm"
    ) {
        check_err!(t, destroy_tvm(id), OK, "destroy_tvm");
        reclaim_check(t, arena_base, arena_pages);
        cx.pool.reset(mark);
        return;
    }
    // The source pages are still the host's.
    check!(
        t,
        host_page_ok(src_img + PAGE * (img_pages - 1)),
        "measured-page source not host memory any more"
    );

    // A host timer that expires while the guest runs must preempt it
    // (an exit with the interrupt bit set), not wait for the guest.
    let slot = crate::harts::current();
    let timers = slot.timer_count.load(Acquire);
    arch::sie_set(arch::STIP);
    let _ = sbi::set_timer(arch::read_time() + p.ms(2));
    let i0 = arch::read_instret();
    host.regcheck = true;
    let stop = host.run(p, 0, cx.slots(), 200_000);
    let instret = arch::read_instret() - i0;
    take_interrupts();
    arch::sie_clear(arch::STIP);
    let _ = sbi::set_timer(u64::MAX);
    check!(
        t,
        slot.timer_count.load(Acquire) != timers,
        "the host timer armed during the run never fired"
    );
    check!(
        t,
        host.interrupts >= 1,
        "no interrupt exit: the host timer did not preempt the TVM"
    );
    check!(
        t,
        host.regcheck_done,
        "no run checked the host's FP/vector registers"
    );
    if let Some((what, i, got, want)) = host.regcheck_fail {
        check!(
            t,
            false,
            "host {what} {i} changed across run_tvm_vcpu: {got:#x}, want {want:#x}"
        );
    }
    match stop {
        Stop::Shutdown(reason) => {
            check!(
                t,
                reason == 0,
                "guestvm shut down with reason {reason} (failures inside)"
            );
        }
        Stop::Error(m) => {
            check!(t, false, "guestvm run: {m}");
        }
    }
    check!(
        t,
        host.guest_passed >= 8,
        "only {} guestvm test(s) passed",
        host.guest_passed
    );
    check!(
        t,
        host.guest_failed == 0,
        "{} guestvm test(s) failed",
        host.guest_failed
    );
    let harts_used = cx
        .slots()
        .iter()
        .filter(|&&s| host.hart_runs[s] > 0)
        .count();
    check!(
        t,
        harts_used == cx.nslots,
        "vCPU ran on {harts_used} of {} harts",
        cx.nslots
    );
    // The shared host pages are the host's while shared.
    for k in 0..host.shared_n {
        let (g, h) = host.shared_maps[k];
        check!(
            t,
            try_read(h).is_ok(),
            "shared page {h:#x} (gpa {g:#x}) not readable by the host"
        );
    }

    // After the run: no more measured pages, vCPUs or regions.
    check_err!(
        t,
        add_measured_pages(
            id,
            src_img,
            ar.take(1, PAGE),
            0,
            1,
            proto::REGION_GPA + 0x1f_0000
        ),
        ERR_INVALID_PARAM,
        "add_tvm_measured_pages after finalize"
    );

    check_err!(t, destroy_tvm(id), OK, "destroy_tvm");
    check_err!(
        t,
        run_vcpu(id, 0).into_ret(),
        ERR_INVALID_PARAM,
        "run_tvm_vcpu of the destroyed TVM"
    );
    check_err!(t, destroy_tvm(id), ERR_INVALID_PARAM, "second destroy_tvm");
    // Shared pages came back to the host untouched by destroy.
    for k in 0..host.host_pages_used {
        let h = host.host_pages[k];
        check!(
            t,
            host_page_ok(h),
            "shared host page {h:#x} not host memory after destroy"
        );
    }
    reclaim_check(t, arena_base, arena_pages);
    cx.pool.reset(mark);
    t.note(format_args!(
        "{} guest tests, {} exits ({} interrupts, {} zero faults), {} hart(s), {} instructions",
        host.guest_passed + host.guest_failed,
        host.exits,
        host.interrupts,
        host.zero_faults,
        harts_used,
        instret
    ));
}

// ---- 4. negative: convert / reclaim / fences ------------------------------

fn test_neg_convert(t: &mut T, p: &Platform, cx: &mut Ctx) {
    let mark = cx.pool.mark();
    let base = cx.pool.alloc(8 * PAGE, PAGE).unwrap();
    let end = p.ram_end();
    check_err!(
        t,
        convert_pages(base + 8, 1),
        ERR_INVALID_ADDRESS,
        "convert_pages(unaligned)"
    );
    check_err!(
        t,
        convert_pages(base + 0x800, 1),
        ERR_INVALID_ADDRESS,
        "convert_pages(half-page aligned)"
    );
    check_err!(
        t,
        convert_pages(base, 0),
        ERR_INVALID_PARAM,
        "convert_pages(n = 0)"
    );
    check_err!(
        t,
        convert_pages(base, u64::MAX / PAGE),
        ERR_INVALID_PARAM,
        "convert_pages(n overflowing)"
    );
    check_err!(
        t,
        convert_pages(base, 1u64 << 52),
        ERR_INVALID_PARAM,
        "convert_pages(n = 2^52, wraps)"
    );
    // The last host page of RAM, if the host owns one there.
    let mut last = None;
    crate::platform::for_each_free(p, &crate::platform::exclusions(p), |_, e| {
        if e == end {
            last = Some(e - PAGE);
        }
    });
    match last {
        Some(l) => {
            check_err!(
                t,
                convert_pages(l, 2),
                ERR_INVALID_PARAM,
                "convert_pages(last host page + 1, past the end of RAM)"
            );
            check!(
                t,
                host_page_ok(l),
                "last host page {l:#x} lost after a failed convert"
            );
        }
        None => t.note(format_args!(
            "RAM does not end in a free host page: past-the-end case skipped"
        )),
    }
    check_err!(
        t,
        convert_pages(end, 1),
        ERR_INVALID_ADDRESS,
        "convert_pages(beyond RAM)"
    );
    check_err!(
        t,
        convert_pages(0x1000, 1),
        ERR_INVALID_ADDRESS,
        "convert_pages(0x1000, not RAM)"
    );
    check_err!(
        t,
        convert_pages(!(PAGE - 1), 1),
        ERR_INVALID_PARAM,
        "convert_pages(top page: base + 4K wraps)"
    );
    check_err!(
        t,
        convert_pages((!(PAGE - 1)) - PAGE, 1),
        ERR_INVALID_ADDRESS,
        "convert_pages(page below the top)"
    );
    if let Some(f) = p.forbidden() {
        let a = f.start & !(PAGE - 1);
        check_err!(
            t,
            convert_pages(a, 1),
            ERR_INVALID_ADDRESS,
            "convert_pages(reserved {a:#x})"
        );
    }
    // A range mixing host pages and a converted page: nothing changes.
    let one = convert(t, p, cx, base + 4 * PAGE, 1);
    check!(t, one, "convert one page");
    check_err!(
        t,
        convert_pages(base, 8),
        ERR_INVALID_ADDRESS,
        "convert_pages over a converted page"
    );
    for k in [0u64, 3, 5, 7] {
        check!(
            t,
            host_page_ok(base + k * PAGE),
            "page {k} changed by a failed convert"
        );
    }
    check_err!(
        t,
        reclaim_pages(base + 3 * PAGE, 2),
        ERR_INVALID_ADDRESS,
        "reclaim_pages(host + converted)"
    );
    check_err!(
        t,
        reclaim_pages(base + 4 * PAGE, 0),
        ERR_INVALID_PARAM,
        "reclaim_pages(n = 0)"
    );
    check_err!(
        t,
        reclaim_pages(base + 4 * PAGE + 8, 1),
        ERR_INVALID_ADDRESS,
        "reclaim_pages(unaligned)"
    );
    check_err!(
        t,
        reclaim_pages(end, 1),
        ERR_INVALID_ADDRESS,
        "reclaim_pages(beyond RAM)"
    );
    // The converted page is still intact and reclaimable.
    reclaim_check(t, base + 4 * PAGE, 1);
    // Converting everything again works (the failed calls changed nothing).
    if convert(t, p, cx, base, 8) {
        reclaim_check(t, base, 8);
    }
    cx.pool.reset(mark);
}

// ---- 5. negative: create_tvm ------------------------------------------------

fn test_neg_create(t: &mut T, p: &Platform, cx: &mut Ctx) {
    let mark = cx.pool.mark();
    let info = cx.info;
    let need = tiny_pages(&info) + 16;
    let base = cx.pool.alloc(need * PAGE, 4 * PAGE).unwrap();
    let params = cx.pool.alloc(PAGE, PAGE).unwrap();
    let host_page = cx.pool.alloc(4 * PAGE, 4 * PAGE).unwrap();
    if !convert(t, p, cx, base, need) {
        return;
    }
    let mut ar = Arena::new(base, need);
    let pagedir = ar.take(4, 4 * PAGE);
    let state = ar.take(info.tvm_state_pages, PAGE);
    write_params(params, pagedir, state);
    check_err!(
        t,
        create_tvm(params, 15),
        ERR_INVALID_PARAM,
        "create_tvm(len 15)"
    );
    check_err!(
        t,
        create_tvm(params, 0),
        ERR_INVALID_PARAM,
        "create_tvm(len 0)"
    );
    check_err!(
        t,
        create_tvm(params + 3, 16),
        ERR_INVALID_ADDRESS,
        "create_tvm(params unaligned)"
    );
    check_err!(
        t,
        create_tvm(p.ram_end(), 16),
        ERR_INVALID_ADDRESS,
        "create_tvm(params beyond RAM)"
    );
    check_err!(
        t,
        create_tvm(base, 16),
        ERR_INVALID_ADDRESS,
        "create_tvm(params in converted memory)"
    );
    if let Some(f) = p.forbidden() {
        check_err!(
            t,
            create_tvm(f.start, 16),
            ERR_INVALID_ADDRESS,
            "create_tvm(params in reserved memory)"
        );
    }
    check_err!(
        t,
        create(params, pagedir + PAGE, state),
        ERR_INVALID_ADDRESS,
        "create_tvm(page directory not 16 KiB aligned)"
    );
    check_err!(
        t,
        create(params, host_page, state),
        ERR_INVALID_ADDRESS,
        "create_tvm(page directory in host memory)"
    );
    check_err!(
        t,
        create(params, pagedir, host_page),
        ERR_INVALID_ADDRESS,
        "create_tvm(state in host memory)"
    );
    check_err!(
        t,
        create(params, pagedir, state + 8),
        ERR_INVALID_ADDRESS,
        "create_tvm(state unaligned)"
    );
    check_err!(
        t,
        create(params, pagedir, pagedir),
        ERR_INVALID_ADDRESS,
        "create_tvm(state overlapping the page directory)"
    );
    check_err!(
        t,
        create(params, !0x3fff, state),
        ERR_INVALID_ADDRESS,
        "create_tvm(page directory at the top)"
    );
    // Nothing was taken: a valid create with the same pages works.
    let r = create(params, pagedir, state);
    if check_err!(t, r, OK, "create_tvm after the failed ones") {
        let id = r.value;
        // The pages now belong to the TVM: a second TVM cannot use them.
        check_err!(
            t,
            create(params, pagedir, state),
            ERR_INVALID_ADDRESS,
            "create_tvm with pages of a live TVM"
        );
        check_err!(
            t,
            reclaim_pages(pagedir, 1),
            ERR_INVALID_ADDRESS,
            "reclaim_pages(TVM page directory)"
        );
        check_err!(
            t,
            reclaim_pages(state, 1),
            ERR_INVALID_ADDRESS,
            "reclaim_pages(TVM state page)"
        );
        check!(
            t,
            try_read(pagedir).is_err(),
            "host can read the TVM page directory"
        );
        check_err!(t, destroy_tvm(id), OK, "destroy_tvm");
    }
    for bad in [0u64, 0xffff, u64::MAX] {
        check_err!(
            t,
            destroy_tvm(bad),
            ERR_INVALID_PARAM,
            "destroy_tvm({bad:#x})"
        );
    }
    reclaim_check(t, base, need);
    cx.pool.reset(mark);
}

// ---- 6. negative: per-TVM calls ---------------------------------------------

fn test_neg_tvm(t: &mut T, p: &Platform, cx: &mut Ctx) {
    let mark = cx.pool.mark();
    let info = cx.info;
    let need = tiny_pages(&info) + 64 + info.tvm_vcpu_state_pages * 2 + 8;
    let base = cx.pool.alloc(need * PAGE, SIZE_2M).unwrap();
    let params = cx.pool.alloc(PAGE, PAGE).unwrap();
    let src = cx.pool.alloc(4 * PAGE, PAGE).unwrap();
    // A guest whose first instruction faults: `ld a0, 0(zero); j .-4`.
    wr(src, 0xffdf_f06f_0000_3503);
    let spare_host = cx.pool.alloc(4 * PAGE, PAGE).unwrap();
    if !convert(t, p, cx, base, need) {
        return;
    }
    let mut ar = Arena::new(base, need);
    let Some(tv) = tiny_tvm(t, cx, &mut ar, params) else {
        reclaim_check(t, base, need);
        cx.pool.reset(mark);
        return;
    };
    let id = tv.id;
    let g = 0x8000_0000u64;
    let page = |ar: &mut Arena| ar.take(1, PAGE);

    // Invalid ids everywhere.
    for bad in [0u64, id + 1000, u64::MAX] {
        check_err!(
            t,
            add_memory_region(bad, 0x9000_0000, PAGE),
            ERR_INVALID_PARAM,
            "add_tvm_memory_region(id {bad:#x})"
        );
        check_err!(
            t,
            add_pt_pages(bad, tv.pt, 1),
            ERR_INVALID_PARAM,
            "add_tvm_page_table_pages(id {bad:#x})"
        );
        check_err!(
            t,
            create_vcpu(bad, 1, tv.vcpu_state),
            ERR_INVALID_PARAM,
            "create_tvm_vcpu(id {bad:#x})"
        );
        check_err!(
            t,
            finalize_tvm(bad, g, 0, 0),
            ERR_INVALID_PARAM,
            "finalize_tvm(id {bad:#x})"
        );
        check_err!(
            t,
            run_vcpu(bad, 0).into_ret(),
            ERR_INVALID_PARAM,
            "run_tvm_vcpu(id {bad:#x})"
        );
        check_err!(
            t,
            add_measured_pages(bad, src, tv.pt, 0, 1, g),
            ERR_INVALID_PARAM,
            "add_tvm_measured_pages(id {bad:#x})"
        );
    }

    // Memory regions.
    check_err!(
        t,
        add_memory_region(id, g + 8, PAGE),
        ERR_INVALID_ADDRESS,
        "add_tvm_memory_region(unaligned gpa)"
    );
    check_err!(
        t,
        add_memory_region(id, 0x9000_0000, 100),
        ERR_INVALID_PARAM,
        "add_tvm_memory_region(unaligned len)"
    );
    check_err!(
        t,
        add_memory_region(id, 0x9000_0000, 0),
        ERR_INVALID_PARAM,
        "add_tvm_memory_region(len 0)"
    );
    check_err!(
        t,
        add_memory_region(id, g + PAGE, PAGE),
        ERR_INVALID_ADDRESS,
        "add_tvm_memory_region(overlapping)"
    );
    // gpa + len wraps: the spec does not say which argument is "invalid".
    let r = add_memory_region(id, !(PAGE - 1), 2 * PAGE);
    check!(
        t,
        r.error == ERR_INVALID_ADDRESS || r.error == ERR_INVALID_PARAM,
        "add_tvm_memory_region(wrapping): error {} (want -5 or -3)",
        r.error
    );

    // Page-table pages.
    let host_pg = spare_host;
    check_err!(
        t,
        add_pt_pages(id, host_pg, 1),
        ERR_INVALID_ADDRESS,
        "add_tvm_page_table_pages(host page)"
    );
    check_err!(
        t,
        add_pt_pages(id, tv.pt, 1),
        ERR_INVALID_ADDRESS,
        "add_tvm_page_table_pages(already donated)"
    );
    check_err!(
        t,
        add_pt_pages(id, page(&mut ar) + 8, 1),
        ERR_INVALID_ADDRESS,
        "add_tvm_page_table_pages(unaligned)"
    );
    check_err!(
        t,
        add_pt_pages(id, page(&mut ar), 0),
        ERR_INVALID_PARAM,
        "add_tvm_page_table_pages(n 0)"
    );

    // Measured pages.
    let d = page(&mut ar);
    check_err!(
        t,
        add_measured_pages(id, src, d, 0, 1, g + 8),
        ERR_INVALID_ADDRESS,
        "measured(unaligned gpa)"
    );
    check_err!(
        t,
        add_measured_pages(id, src, d, 0, 1, 0x9000_0000),
        ERR_INVALID_ADDRESS,
        "measured(gpa outside every region)"
    );
    check_err!(
        t,
        add_measured_pages(id, src, d, 0, 1, g + SIZE_2M - PAGE + PAGE),
        ERR_INVALID_ADDRESS,
        "measured(gpa at the region end)"
    );
    check_err!(
        t,
        add_measured_pages(id, src, d, 0, 2, g + SIZE_2M - PAGE),
        ERR_INVALID_ADDRESS,
        "measured(running past the region)"
    );
    check_err!(
        t,
        add_measured_pages(id, src, host_pg, 0, 1, g),
        ERR_INVALID_ADDRESS,
        "measured(dest host page)"
    );
    check_err!(
        t,
        add_measured_pages(id, d, d, 0, 1, g),
        ERR_INVALID_ADDRESS,
        "measured(src converted)"
    );
    check_err!(
        t,
        add_measured_pages(id, p.ram_end(), d, 0, 1, g),
        ERR_INVALID_ADDRESS,
        "measured(src beyond RAM)"
    );
    check_err!(
        t,
        add_measured_pages(id, src, d, 4, 1, g),
        ERR_INVALID_PARAM,
        "measured(page type 4)"
    );
    check_err!(
        t,
        add_measured_pages(id, src, d, 0, 0, g),
        ERR_INVALID_PARAM,
        "measured(n 0)"
    );
    check_err!(
        t,
        add_measured_pages(id, src, d, 1, 1, g),
        ERR_INVALID_ADDRESS,
        "measured(2M page, 4K-aligned dest)"
    );
    check_err!(
        t,
        add_measured_pages(id, src, tv.pt, 0, 1, g),
        ERR_INVALID_ADDRESS,
        "measured(dest is a PT page)"
    );
    // Zero and shared pages before finalize.
    check_err!(
        t,
        add_zero_pages(id, d, 0, 1, g + PAGE),
        ERR_INVALID_PARAM,
        "add_tvm_zero_pages before finalize"
    );
    // The failed calls took nothing: d still works.
    check_err!(
        t,
        add_measured_pages(id, src, d, 0, 1, g),
        OK,
        "add_tvm_measured_pages(valid)"
    );
    check_err!(
        t,
        add_measured_pages(id, src, page(&mut ar), 0, 1, g),
        ERR_INVALID_ADDRESS,
        "measured(gpa already mapped)"
    );
    check_err!(
        t,
        reclaim_pages(d, 1),
        ERR_INVALID_ADDRESS,
        "reclaim_pages of a TVM-owned page"
    );
    check!(t, try_read(d).is_err(), "host can read a TVM page");

    // A converting page is not usable.
    let late = cx.pool.alloc(PAGE, PAGE).unwrap();
    if check_err!(t, convert_pages(late, 1), OK, "convert_pages(late)") {
        CENSUS.lock().add(late, 1);
        check_err!(
            t,
            add_pt_pages(id, late, 1),
            ERR_INVALID_ADDRESS,
            "add_tvm_page_table_pages(converting page)"
        );
        check_err!(
            t,
            add_measured_pages(id, src, late, 0, 1, g + PAGE),
            ERR_INVALID_ADDRESS,
            "measured(converting dest)"
        );
        if let Err((w, e)) = fence_all(p, &cx.live) {
            check!(t, false, "{w}: error {e}");
        }
        check_err!(
            t,
            add_pt_pages(id, late, 1),
            OK,
            "add_tvm_page_table_pages(after the fence)"
        );
    }

    // vCPUs.
    let vs = ar.take(info.tvm_vcpu_state_pages, PAGE);
    check_err!(
        t,
        create_vcpu(id, 0, vs),
        ERR_INVALID_PARAM,
        "create_tvm_vcpu(duplicate id 0)"
    );
    check_err!(
        t,
        create_vcpu(id, info.tvm_max_vcpus, vs),
        ERR_INVALID_PARAM,
        "create_tvm_vcpu(id = max)"
    );
    check_err!(
        t,
        create_vcpu(id, u64::MAX, vs),
        ERR_INVALID_PARAM,
        "create_tvm_vcpu(id !0)"
    );
    check_err!(
        t,
        create_vcpu(id, 1, host_pg),
        ERR_INVALID_ADDRESS,
        "create_tvm_vcpu(host state page)"
    );
    check_err!(
        t,
        create_vcpu(id, 1, vs + 8),
        ERR_INVALID_ADDRESS,
        "create_tvm_vcpu(unaligned state)"
    );
    check_err!(
        t,
        create_vcpu(id, 1, tv.vcpu_state),
        ERR_INVALID_ADDRESS,
        "create_tvm_vcpu(state of vCPU 0)"
    );

    // Run before finalize; finalize errors.
    check_err!(
        t,
        run_vcpu(id, 0).into_ret(),
        ERR_INVALID_PARAM,
        "run_tvm_vcpu before finalize"
    );
    check_err!(
        t,
        finalize_tvm(id, g, 0, spare_host + 32),
        ERR_INVALID_PARAM,
        "finalize_tvm(identity not 64-byte aligned)"
    );
    check_err!(
        t,
        finalize_tvm(id, g, 0, p.ram_end()),
        ERR_INVALID_PARAM,
        "finalize_tvm(identity beyond RAM)"
    );
    check_err!(
        t,
        finalize_tvm(id, g, 0, spare_host + 64),
        OK,
        "finalize_tvm"
    );
    check_err!(
        t,
        finalize_tvm(id, g, 0, 0),
        ERR_INVALID_PARAM,
        "second finalize_tvm"
    );

    // After finalize.
    check_err!(
        t,
        add_measured_pages(id, src, page(&mut ar), 0, 1, g + 2 * PAGE),
        ERR_INVALID_PARAM,
        "add_tvm_measured_pages after finalize"
    );
    check_err!(
        t,
        create_vcpu(id, 1, vs),
        ERR_INVALID_PARAM,
        "create_tvm_vcpu after finalize"
    );
    check_err!(
        t,
        add_memory_region(id, 0x9000_0000, PAGE),
        ERR_INVALID_PARAM,
        "add_tvm_memory_region after finalize"
    );
    let z = page(&mut ar);
    check_err!(
        t,
        add_zero_pages(id, z, 0, 1, g + 8),
        ERR_INVALID_ADDRESS,
        "zero(unaligned gpa)"
    );
    check_err!(
        t,
        add_zero_pages(id, z, 0, 1, 0x9000_0000),
        ERR_INVALID_ADDRESS,
        "zero(gpa outside every region)"
    );
    check_err!(
        t,
        add_zero_pages(id, z, 0, 1, g),
        ERR_INVALID_ADDRESS,
        "zero(gpa already mapped)"
    );
    check_err!(
        t,
        add_zero_pages(id, host_pg, 0, 1, g + 3 * PAGE),
        ERR_INVALID_ADDRESS,
        "zero(host page)"
    );
    check_err!(
        t,
        add_zero_pages(id, z, 7, 1, g + 3 * PAGE),
        ERR_INVALID_PARAM,
        "zero(page type 7)"
    );
    check_err!(
        t,
        add_zero_pages(id, z, 0, 0, g + 3 * PAGE),
        ERR_INVALID_PARAM,
        "zero(n 0)"
    );
    check_err!(
        t,
        add_zero_pages(id, z, 0, 1, g + 3 * PAGE),
        OK,
        "add_tvm_zero_pages(valid)"
    );
    check_err!(
        t,
        add_shared_pages(id, spare_host + PAGE, 0, 1, g + 4 * PAGE),
        ERR_INVALID_ADDRESS,
        "add_tvm_shared_pages(gpa not shareable)"
    );
    check_err!(
        t,
        run_vcpu(id, 7.min(info.tvm_max_vcpus)).into_ret(),
        ERR_INVALID_PARAM,
        "run_tvm_vcpu(vcpu never created)"
    );

    // NACL: running without shared memory on this hart.
    let boot = boot_slot(p);
    let r = nacl_set_shmem(u64::MAX, u64::MAX, 0);
    if r.error == OK {
        nacl_forget(boot);
        check_err!(
            t,
            run_vcpu(id, 0).into_ret(),
            ERR_NO_SHMEM,
            "run_tvm_vcpu without NACL shared memory"
        );
    } else {
        t.note(format_args!("NACL disable not supported ({})", r.error));
    }
    check_err!(
        t,
        nacl_set_shmem(nacl_addr(boot) + 8, 0, 0),
        ERR_INVALID_PARAM,
        "nacl set_shmem(unaligned)"
    );
    check_err!(
        t,
        nacl_set_shmem(nacl_addr(boot), 1, 0),
        ERR_INVALID_ADDRESS,
        "nacl set_shmem(phys_hi 1)"
    );
    check_err!(
        t,
        nacl_set_shmem(base, 0, 0),
        ERR_INVALID_ADDRESS,
        "nacl set_shmem(converted memory)"
    );
    check_err!(
        t,
        nacl_set_shmem(nacl_addr(boot), 0, 1),
        ERR_INVALID_PARAM,
        "nacl set_shmem(flags 1)"
    );
    let e = nacl_setup_here(boot, true);
    check!(t, e == OK, "nacl set_shmem: error {e}");

    // A host timer that is pending but masked in sie is not the host's
    // business right now: a TSM that exits for it on every run livelocks a
    // host that keeps it masked.
    arch::sie_clear(arch::STIP);
    let _ = sbi::set_timer(0);
    harts::wait_for(p.ms(10), || arch::read_sip() & arch::STIP != 0);
    let x = run_vcpu(id, 0);
    check!(
        t,
        !(x.error == OK && x.scause & arch::SCAUSE_INTERRUPT != 0 && x.scause & 0xff == 5),
        "run_tvm_vcpu exits at once (scause {:#x}) for a host timer interrupt the host masked in sie",
        x.scause
    );
    let _ = sbi::set_timer(u64::MAX);
    // One run: a guest load page fault at GPA 0 (outside every region).
    let mut x = run_vcpu(id, 0);
    let mut n = 0;
    while x.error == OK && x.scause & arch::SCAUSE_INTERRUPT != 0 && n < 1000 {
        take_interrupts();
        x = run_vcpu(id, 0);
        n += 1;
    }
    let htval = nacl_csr(boot, cove_abi::nacl::csr::HTVAL);
    check!(
        t,
        x.error == OK && x.scause == 21 && cove_abi::covh::fault_gpa(htval, x.stval) == 0,
        "first run: error {} value {} scause {:#x} stval {:#x} htval {:#x} (want a load guest page fault at 0)",
        x.error, x.value, x.scause, x.stval, htval
    );

    // TVM fences / invalidate / validate / remove.
    check_err!(
        t,
        tvm_invalidate(id, g, PAGE),
        OK,
        "tvm_invalidate_pages(measured page)"
    );
    check_err!(
        t,
        tvm_invalidate(id, g, PAGE),
        ERR_INVALID_ADDRESS,
        "tvm_invalidate_pages twice"
    );
    check_err!(
        t,
        tvm_invalidate(id, g + 5 * PAGE, PAGE),
        ERR_INVALID_ADDRESS,
        "tvm_invalidate_pages(unmapped gpa)"
    );
    check_err!(
        t,
        tvm_invalidate(id, g + 8, PAGE),
        ERR_INVALID_ADDRESS,
        "tvm_invalidate_pages(unaligned)"
    );
    check_err!(
        t,
        tvm_invalidate(id, g, 0),
        ERR_INVALID_PARAM,
        "tvm_invalidate_pages(len 0)"
    );
    check_err!(
        t,
        tvm_invalidate(0, g, PAGE),
        ERR_INVALID_PARAM,
        "tvm_invalidate_pages(id 0)"
    );
    check_err!(
        t,
        tvm_remove(id, g + 3 * PAGE, PAGE),
        ERR_INVALID_ADDRESS,
        "tvm_remove_pages(not invalidated)"
    );
    check_err!(
        t,
        tvm_validate(id, g + 3 * PAGE, PAGE),
        ERR_INVALID_ADDRESS,
        "tvm_validate_pages(not invalidated)"
    );
    check_err!(t, tvm_validate(id, g, PAGE), OK, "tvm_validate_pages");
    check_err!(
        t,
        tvm_invalidate(id, g + 3 * PAGE, PAGE),
        OK,
        "tvm_invalidate_pages(zero page)"
    );
    check_err!(t, tvm_fence(id), OK, "tvm_fence");
    check_err!(t, tvm_fence(0), ERR_INVALID_PARAM, "tvm_fence(id 0)");
    check_err!(
        t,
        tvm_remove(id, g + 3 * PAGE, PAGE),
        OK,
        "tvm_remove_pages"
    );
    check_err!(
        t,
        tvm_remove(id, g + 3 * PAGE, PAGE),
        ERR_INVALID_ADDRESS,
        "tvm_remove_pages twice"
    );
    // The removed page is UNASSIGNED: it can be reclaimed right away.
    reclaim_check(t, z, 1);

    // Destroy: everything goes back.
    check_err!(t, destroy_tvm(id), OK, "destroy_tvm");
    check_err!(
        t,
        run_vcpu(id, 0).into_ret(),
        ERR_INVALID_PARAM,
        "run_tvm_vcpu(destroyed)"
    );
    check_err!(
        t,
        add_pt_pages(id, page(&mut ar), 1),
        ERR_INVALID_PARAM,
        "add_tvm_page_table_pages(destroyed)"
    );
    check_err!(
        t,
        finalize_tvm(id, g, 0, 0),
        ERR_INVALID_PARAM,
        "finalize_tvm(destroyed)"
    );
    // Everything but `z` (already reclaimed) reclaims in two calls.
    let zi = (z - base) / PAGE;
    reclaim_check(t, base, zi);
    reclaim_check(t, z + PAGE, need - zi - 1);
    reclaim_check(t, late, 1);
    check!(t, host_page_ok(src), "measured source page lost");
    cx.pool.reset(mark);
}

// ---- 7. census -----------------------------------------------------------------

pub fn test_census(t: &mut T, _p: &Platform) {
    let c = CENSUS.lock();
    check!(
        t,
        !c.lost,
        "more than {} converted ranges: census incomplete",
        c.ranges.len()
    );
    let mut pages = 0u64;
    let mut bad = 0u64;
    let mut first = None;
    for &(base, n) in &c.ranges[..c.n] {
        for k in 0..n {
            let a = base + k * PAGE;
            pages += 1;
            if !host_page_ok(a) || !host_page_ok(a + PAGE - 8) {
                bad += 1;
                first.get_or_insert(a);
            }
        }
    }
    if let Some(f) = first {
        check!(
            t,
            false,
            "{bad} of {pages} converted page(s) not host memory again, first {f:#x}"
        );
    }
    let mut m = Msg::new();
    let _ = write!(m, "{pages} page(s) in {} range(s) back with the host", c.n);
    t.note(format_args!("{m}"));
}
