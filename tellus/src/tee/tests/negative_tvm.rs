//! Negative tests of every per-TVM COVH call.

use crate::harness::T;
use crate::platform::Platform;
use crate::tee::ctx::*;
use crate::tee::*;
use crate::{arch, harts, sbi};

// ---- 6. negative: per-TVM calls ---------------------------------------------

/// Where the negative-test guest's load faults.
const FAULT_GPA: u64 = 0x8010_0000;

pub fn test_neg_tvm(t: &mut T, p: &Platform, cx: &mut Ctx) {
    let mark = cx.pool.mark();
    let info = cx.info;
    let need = tiny_pages(&info) + 64 + info.tvm_vcpu_state_pages * 2 + 8;
    let base = cx.pool.alloc(need * PAGE, SIZE_2M).unwrap();
    let params = cx.pool.alloc(PAGE, PAGE).unwrap();
    let src = cx.pool.alloc(4 * PAGE, PAGE).unwrap();
    // A guest whose load faults to the host: an unmapped GPA inside its
    // region (a GPA outside every region would fault back into the TVM):
    // `li a0, 1; slli a0, a0, 31; lui t0, 0x100; add a0, a0, t0;
    //  1: ld a0, 0(a0); j 1b`.
    wr(src, 0x01f5_1513_0010_0513);
    wr(src + 8, 0x0055_0533_0010_02b7);
    wr(src + 16, 0xffdf_f06f_0005_3503);
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
    // One run: a guest load page fault at FAULT_GPA (in the region, unmapped).
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
        x.error == OK && x.scause == 21 && cove_abi::covh::fault_gpa(htval, x.stval) == FAULT_GPA,
        "first run: error {} value {} scause {:#x} stval {:#x} htval {:#x} (want a load guest page fault at {FAULT_GPA:#x})",
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
