//! `tee_guestvm`: the guestvm lifecycle, run on every hart in turn.

use core::sync::atomic::Ordering::Acquire;

use crate::harness::T;
use crate::platform::Platform;
use crate::tee::ctx::*;
use crate::tee::*;
use crate::{arch, sbi};

// ---- 3. guestvm ---------------------------------------------------------------

pub fn test_guestvm(t: &mut T, p: &Platform, cx: &mut Ctx) {
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
    for (has, bit) in [
        (p.has_zawrs, proto::ARG_HAS_ZAWRS),
        (p.has_zicboz, proto::ARG_HAS_ZICBOZ),
        (p.has_sstc, proto::ARG_HAS_SSTC),
    ] {
        if has {
            arg |= bit;
        }
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
