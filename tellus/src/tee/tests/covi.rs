//! `tee_covi`: the CoVE interrupt extension (COVI) from the host's side,
//! every function with its errors, and guestvm in COVI mode: its vCPU 0
//! bound to guest file 2 of the boot hart, vCPU 1 bound to file 3 when
//! guestvm asks (after sending it an interrupt while it was unbound).
//! Then unbind, rebind to another hart (begin there, clone here, end
//! there), destroy, and the files go back to the host.

use cove_abi::covh::cap;
use cove_abi::covi::{CoviFunction as F, TvmAiaParams};

use crate::harness::T;
use crate::platform::Platform;
use crate::tee::ctx::*;
use crate::tee::*;

fn aia_params() -> TvmAiaParams {
    covi_params(proto::IMSIC_GPA, proto::IMSIC_HART_BITS)
}

/// A guestvm TVM built up to its vCPUs (AIA and finalize are the
/// caller's), with the pages its host needs.
struct CoviGuest {
    id: u64,
    host: TvmHost,
    arena: u64,
    arena_pages: u64,
    mark: Mark,
    /// A host page for `tvm_aia_params`, and a confidential one (for the
    /// "params in confidential memory" check).
    aia: u64,
    dest_img: u64,
    /// vCPU 1 was created too.
    two: bool,
}

impl CoviGuest {
    fn build(t: &mut T, p: &Platform, cx: &mut Ctx, vcpus: u64) -> Option<CoviGuest> {
        let info = cx.info;
        let mark = cx.pool.mark();
        let img_pages = (GUESTVM.len() as u64).div_ceil(PAGE);
        let src_img = cx.pool.alloc(img_pages * PAGE, PAGE).unwrap();
        // SAFETY: src_img has img_pages pages of host memory we own.
        unsafe {
            core::ptr::copy_nonoverlapping(GUESTVM.as_ptr(), src_img as *mut u8, GUESTVM.len())
        };
        let params = cx.pool.alloc(PAGE, PAGE).unwrap();
        let aia = cx.pool.alloc(PAGE, PAGE).unwrap();
        let shared_host = cx.pool.alloc(4 * PAGE, PAGE).unwrap();
        let small = 8
            + info.tvm_state_pages
            + 2 * info.tvm_vcpu_state_pages
            + PT_PAGES
            + 16
            + 64
            + img_pages;
        let arena_pages = small.div_ceil(512) * 512;
        let Some(arena) = cx.pool.alloc(arena_pages * PAGE, SIZE_2M) else {
            check!(t, false, "no room for a {arena_pages}-page arena");
            return None;
        };
        // The conversion fence also completes the files' conversion.
        if !convert(t, p, cx, arena, arena_pages) {
            return None;
        }
        let mut ar = Arena::new(arena, arena_pages);
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
        for k in 0..4 {
            host.host_pages[k] = shared_host + k as u64 * PAGE;
        }
        let r = create(params, pagedir, state);
        if !check_err!(t, r, OK, "create_tvm") {
            reclaim_check(t, arena, arena_pages);
            cx.pool.reset(mark);
            return None;
        }
        let id = r.value;
        host.id = id;
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
            "add_tvm_page_table_pages"
        );
        check_err!(
            t,
            add_measured_pages(id, src_img, dest_img, 0, img_pages, proto::IMAGE_GPA),
            OK,
            "add_tvm_measured_pages(image)"
        );
        check_err!(t, create_vcpu(id, 0, vcpu0), OK, "create_tvm_vcpu(0)");
        let two = vcpus > 1
            && info.tvm_max_vcpus > 1
            && check_err!(t, create_vcpu(id, 1, vcpu1), OK, "create_tvm_vcpu(1)");
        Some(CoviGuest {
            id,
            host,
            arena,
            arena_pages,
            mark,
            aia,
            dest_img,
            two,
        })
    }

    /// Destroyed already: its pages back to the host.
    fn reclaim(self, t: &mut T, cx: &mut Ctx) {
        reclaim_check(t, self.arena, self.arena_pages);
        cx.pool.reset(self.mark);
    }
}

/// A new TVM's vCPU 0 bound to `file` (file 3 of hart slot `s`), which a
/// destroyed TVM left with an interrupt pending: guestvm's covi_file finds
/// nothing pending in it, and its other COVI tests pass there.
fn second_owner(t: &mut T, p: &Platform, cx: &mut Ctx, s: usize, file: u64) {
    check!(
        t,
        covi_call(F::ConvertAiaImsic, file, 0, 0) == OK,
        "convert {file:#x} again"
    );
    if let Err((what, e)) = fence_all(p, &cx.live) {
        check!(t, false, "{what}: {e}");
    }
    let Some(mut g) = CoviGuest::build(t, p, cx, 1) else {
        return;
    };
    let id = g.id;
    write_aia_params(g.aia, &aia_params());
    let ok = check!(
        t,
        covi_call(F::InitTvmAia, id, g.aia, 32) == OK,
        "second owner: init_tvm_aia"
    ) && check!(
        t,
        covi_call(F::SetTvmAiaCpuImsicAddr, id, 0, proto::IMSIC_GPA) == OK,
        "second owner: set_cpu_imsic_addr"
    ) && check!(
        t,
        covi_on(p, s, F::BindAiaImsic, [id, 0, 1 << 3]) == OK,
        "second owner: bind to the file left dirty"
    ) && check_err!(
        t,
        finalize_tvm(id, proto::IMAGE_GPA, proto::ARG_COVI, 0),
        OK,
        "second owner: finalize_tvm"
    );
    if ok {
        g.host.pin = Some(s);
        match g.host.run(p, 0, &[s], 100_000) {
            Stop::Shutdown(r) => {
                check!(t, r == 0, "second owner: guestvm shut down with reason {r}")
            }
            Stop::Error(m) => check!(t, false, "second owner: guestvm run: {m}"),
        };
        check!(
            t,
            g.host.guest_passed >= 6 && g.host.guest_failed == 0,
            "second owner: {} passed, {} failed",
            g.host.guest_passed,
            g.host.guest_failed
        );
    }
    check_err!(t, destroy_tvm(id), OK, "second owner: destroy_tvm");
    check!(
        t,
        covi_call(F::ReclaimTvmAiaImsic, file, 0, 0) == OK,
        "second owner: reclaim {file:#x}"
    );
    g.reclaim(t, cx);
}

pub fn test_covi(t: &mut T, p: &Platform, cx: &mut Ctx) {
    let info = cx.info;
    if info.tsm_capabilities & (1 << cap::AIA) == 0 || p.imsic == 0 {
        check_err!(
            t,
            covi(F::ConvertAiaImsic, [0; 6]),
            ERR_NOT_SUPPORTED,
            "COVI without the AIA capability"
        );
        t.note(format_args!(
            "no AIA capability (no IMSIC guest files): COVI not offered"
        ));
        return;
    }
    let boot = boot_slot(p);
    let (f2, f3) = (guest_file_addr(p, boot, 2), guest_file_addr(p, boot, 3));
    for (addr, what) in [
        (guest_file_addr(p, boot, 1), "the host's own file"),
        (guest_file_addr(p, boot, 0), "an S-level file"),
        (f2 + 4, "an unaligned address"),
        (cx.pool.alloc(PAGE, PAGE).unwrap(), "host RAM"),
    ] {
        check_err!(
            t,
            covi(F::ConvertAiaImsic, [addr, 0, 0, 0, 0, 0]),
            ERR_INVALID_ADDRESS,
            "convert {what}"
        );
    }
    check_err!(
        t,
        covi(F::ReclaimTvmAiaImsic, [f2, 0, 0, 0, 0, 0]),
        ERR_INVALID_ADDRESS,
        "reclaim a file never converted"
    );
    check!(
        t,
        covi_call(F::ConvertAiaImsic, f2, 0, 0) == OK,
        "convert file 2"
    );
    check!(
        t,
        covi_call(F::ConvertAiaImsic, f2, 0, 0) == ERR_INVALID_ADDRESS,
        "convert file 2 twice"
    );
    check!(
        t,
        covi_call(F::ConvertAiaImsic, f3, 0, 0) == OK,
        "convert file 3"
    );
    check!(
        t,
        covi_call(F::ConvertAiaImsic, 0, 0, 0) == ERR_INVALID_ADDRESS,
        "convert address 0"
    );
    check!(
        t,
        covi_call(F::InjectTvmCpu, 999, 0, 1) == ERR_INVALID_PARAM,
        "inject into no TVM"
    );

    let Some(mut g) = CoviGuest::build(t, p, cx, 2) else {
        return;
    };
    let (id, aia, dest_img, two) = (g.id, g.aia, g.dest_img, g.two);
    // init_tvm_aia and its errors.
    let good = aia_params();
    check!(
        t,
        covi_call(F::SetTvmAiaCpuImsicAddr, id, 0, proto::IMSIC_GPA) == ERR_INVALID_PARAM,
        "set_cpu_imsic_addr before init_tvm_aia"
    );
    check!(
        t,
        covi_call(F::BindAiaImsic, id, 0, 1 << 2) == ERR_INVALID_PARAM,
        "bind before init_tvm_aia"
    );
    for (bad, what) in [
        (
            TvmAiaParams {
                group_index_shift: 23,
                ..good
            },
            "group_index_shift 23",
        ),
        (
            TvmAiaParams {
                guests_per_hart: 1,
                guest_index_bits: 1,
                ..good
            },
            "nested guest files",
        ),
        (
            TvmAiaParams {
                imsic_base_addr: proto::IMSIC_GPA + 8,
                ..good
            },
            "an unaligned base",
        ),
    ] {
        write_aia_params(aia, &bad);
        check!(
            t,
            covi_call(F::InitTvmAia, id, aia, 32) == ERR_INVALID_PARAM,
            "init_tvm_aia with {what}"
        );
    }
    write_aia_params(aia, &good);
    check!(
        t,
        covi_call(F::InitTvmAia, id, aia, 31) == ERR_INVALID_PARAM,
        "init_tvm_aia, 31 bytes"
    );
    check!(
        t,
        covi_call(F::InitTvmAia, id, aia + 4, 32) == ERR_INVALID_ADDRESS,
        "init_tvm_aia, unaligned"
    );
    check!(
        t,
        covi_call(F::InitTvmAia, id, dest_img, 32) == ERR_INVALID_ADDRESS,
        "init_tvm_aia, confidential params"
    );
    check!(
        t,
        covi_call(F::InitTvmAia, 999, aia, 32) == ERR_INVALID_PARAM,
        "init_tvm_aia, no such TVM"
    );
    check!(
        t,
        covi_call(F::InitTvmAia, id, aia, 32) == OK,
        "init_tvm_aia"
    );
    check!(
        t,
        covi_call(F::InitTvmAia, id, aia, 32) == ERR_INVALID_PARAM,
        "init_tvm_aia twice"
    );

    // Per-vCPU IMSIC addresses.
    let g0 = proto::IMSIC_GPA;
    let g1 = proto::IMSIC_GPA + PAGE;
    for (v, gpa, want, what) in [
        (
            0,
            g0 + 2 * PAGE,
            ERR_INVALID_ADDRESS,
            "hart index 2 with 1 hart bit",
        ),
        (0, g0 + 8, ERR_INVALID_ADDRESS, "an unaligned GPA"),
        (
            0,
            proto::REGION_GPA,
            ERR_INVALID_ADDRESS,
            "a GPA outside the layout",
        ),
        (7, g0, ERR_INVALID_PARAM, "no such vCPU"),
        (0, g0, OK, "vCPU 0"),
    ] {
        check!(
            t,
            covi_call(F::SetTvmAiaCpuImsicAddr, id, v, gpa) == want,
            "set_cpu_imsic_addr({v}, {gpa:#x}): {what}"
        );
    }
    if two {
        check!(
            t,
            covi_call(F::SetTvmAiaCpuImsicAddr, id, 1, g0) == ERR_INVALID_ADDRESS,
            "two vCPUs at one IMSIC GPA"
        );
        // finalize refuses a vCPU without its IMSIC address.
        check!(
            t,
            finalize_tvm(id, proto::IMAGE_GPA, 0, 0).error == ERR_INVALID_PARAM,
            "finalize with vCPU 1's IMSIC unset"
        );
        check!(
            t,
            covi_call(F::SetTvmAiaCpuImsicAddr, id, 1, g1) == OK,
            "set_cpu_imsic_addr(1)"
        );
    }

    // Bind vCPU 0 to file 2 of this hart.
    for (v, mask, what) in [
        (0, 0, "an empty mask"),
        (0, 1, "bit 0"),
        (0, 1 << 1, "the host's own file"),
        (0, (1 << 2) | (1 << 3), "two files"),
        (0, 1 << 9, "a file the hart does not have"),
        (7, 1 << 2, "no such vCPU"),
    ] {
        check!(
            t,
            covi_call(F::BindAiaImsic, id, v, mask) == ERR_INVALID_PARAM,
            "bind with {what}"
        );
    }
    check!(
        t,
        covi_call(F::BindAiaImsic, id, 0, 1 << 2) == OK,
        "bind vCPU 0 to file 2"
    );
    // A bound vCPU's file page is the TSM's business: the host can neither
    // move the vCPU's IMSIC address under the mapping, nor lay memory over
    // it, nor take the mapping with invalidate (and validate it back after
    // the file went to someone else).
    check!(
        t,
        covi_call(F::SetTvmAiaCpuImsicAddr, id, 0, g0) == ERR_INVALID_PARAM,
        "set_cpu_imsic_addr of a bound vCPU"
    );
    check_err!(
        t,
        add_memory_region(id, g0, PAGE),
        ERR_INVALID_ADDRESS,
        "add_tvm_memory_region over a vCPU's IMSIC page"
    );
    check_err!(
        t,
        add_memory_region(id, g1, PAGE),
        ERR_INVALID_ADDRESS,
        "add_tvm_memory_region over vCPU 1's (unbound) IMSIC page"
    );
    check_err!(
        t,
        tvm_invalidate(id, g0, PAGE),
        ERR_INVALID_ADDRESS,
        "tvm_invalidate_pages of a bound vCPU's IMSIC page"
    );
    check!(
        t,
        covi_call(F::BindAiaImsic, id, 0, 1 << 3) == ERR_INVALID_PARAM,
        "bind a bound vCPU"
    );
    check!(
        t,
        covi_call(F::ReclaimTvmAiaImsic, f2, 0, 0) == ERR_INVALID_PARAM,
        "reclaim a bound file"
    );
    check!(
        t,
        covi_call(F::InjectTvmCpu, id, 0, 5) == ERR_INVALID_PARAM,
        "inject an id the vCPU never allowed"
    );
    check!(
        t,
        covi_call(F::UnbindAiaImsicEnd, id, 0, 0) == ERR_INVALID_PARAM,
        "unbind_end without begin"
    );
    let mut arg = proto::ARG_COVI;
    if two {
        arg |= proto::ARG_HAS_VCPU1;
        g.host.covi_vcpu1_mask = 1 << 3;
    }
    if !check_err!(
        t,
        finalize_tvm(id, proto::IMAGE_GPA, arg, 0),
        OK,
        "finalize_tvm"
    ) {
        check_err!(t, destroy_tvm(id), OK, "destroy_tvm");
        g.reclaim(t, cx);
        return;
    }
    check!(
        t,
        covi_call(F::SetTvmAiaCpuImsicAddr, id, 0, g0) == ERR_INVALID_PARAM,
        "set_cpu_imsic_addr after finalize"
    );
    // A bound vCPU runs only on its file's hart.
    let other = cx.slots().iter().copied().find(|&s| s != boot);
    if let Some(s) = other {
        match run_on(p, s, id, 0) {
            Ok(x) => check!(
                t,
                x.error == ERR_INVALID_PARAM,
                "vCPU 0 ran on hart slot {s}, away from its file: error {}",
                x.error
            ),
            Err((what, e)) => check!(t, false, "{what}: {e}"),
        };
    }
    // The wake-up extension: Salus sends COVI_HOST_WAKE_MSI to our own
    // file when vCPU 1 (bound, stopped) gets an interrupt (covi_wake).
    use cove_abi::covi::wake;
    let wake_call = |fid, a0| crate::sbi::call(wake::EID_SALUS_COVI_WAKE, fid, [a0, 0, 0, 0, 0, 0]);
    check!(
        t,
        crate::sbi::probe(wake::EID_SALUS_COVI_WAKE).value != 0,
        "the wake extension does not probe"
    );
    check_err!(
        t,
        wake_call(wake::FID_SET_WAKE_MSI, 4096),
        ERR_INVALID_PARAM,
        "set_wake_msi(4096)"
    );
    check_err!(
        t,
        wake_call(wake::FID_SET_WAKE_MSI, proto::COVI_HOST_WAKE_MSI),
        OK,
        "set_wake_msi"
    );
    check_err!(t, wake_call(7, 0), ERR_NOT_SUPPORTED, "wake FID 7");
    crate::arch::imsic_write(0x70, 1);
    crate::arch::imsic_write(0x72, 0);
    crate::arch::imsic_write(0xC0, 1 << proto::COVI_HOST_WAKE_MSI);
    // guestvm's covi_rebind moves the running vCPU 0 to file 2 of another
    // hart; vCPU 1 later moves to its file 3.
    let sec_files = other.map(|s| (s, guest_file_addr(p, s, 2), guest_file_addr(p, s, 3)));
    if let Some((s, fs2, fs3)) = sec_files {
        for f in [fs2, fs3] {
            check!(
                t,
                covi_call(F::ConvertAiaImsic, f, 0, 0) == OK,
                "convert {f:#x} of slot {s}"
            );
        }
        if let Err((what, e)) = fence_all(p, &cx.live) {
            check!(t, false, "{what}: {e}");
        }
        g.host.covi_rebind_to = Some((s, 1 << 2));
    }
    g.host.echo = true;
    match g.host.run(p, 0, &[boot], 100_000) {
        Stop::Shutdown(r) => check!(t, r == 0, "guestvm (COVI) shut down with reason {r}"),
        Stop::Error(m) => check!(t, false, "guestvm (COVI) run: {m}"),
    };
    check_err!(
        t,
        wake_call(wake::FID_SET_WAKE_MSI, 0),
        OK,
        "set_wake_msi(0)"
    );
    crate::arch::imsic_write(0xC0, 0);
    crate::arch::imsic_write(0x70, 0);
    check!(
        t,
        crate::arch::imsic_claim() == 0,
        "an interrupt left in tellus's own file"
    );
    let want = if two { 8 } else { 6 };
    // The allow set is per vCPU: vCPU 0 allowed COVI_ALLOWED_ID (covi_rebind
    // leaves it so), vCPU 1 never allowed anything.
    check!(
        t,
        covi_call(F::InjectTvmCpu, id, 0, proto::COVI_ALLOWED_ID) == OK,
        "inject an id vCPU 0 allowed"
    );
    if two {
        check!(
            t,
            covi_call(F::InjectTvmCpu, id, 1, proto::COVI_ALLOWED_ID) == ERR_INVALID_PARAM,
            "inject into vCPU 1 an id only vCPU 0 allowed"
        );
    }
    check!(
        t,
        g.host.guest_passed >= want && g.host.guest_failed == 0,
        "guestvm COVI tests: {} passed, {} failed",
        g.host.guest_passed,
        g.host.guest_failed
    );

    // Unbind vCPU 0 (where covi_rebind left it): the mapping goes at
    // begin, the state at end (after a TVM fence), both on its hart.
    let v0 = g.host.pin.unwrap_or(boot);
    check!(
        t,
        sec_files.is_none() || v0 != boot,
        "covi_rebind did not move vCPU 0"
    );
    if v0 != boot {
        check!(
            t,
            covi_call(F::UnbindAiaImsicBegin, id, 0, 0) == ERR_INVALID_PARAM,
            "unbind_begin away from the bound hart"
        );
    }
    check!(
        t,
        covi_on(p, v0, F::UnbindAiaImsicBegin, [id, 0, 0]) == OK,
        "unbind_begin"
    );
    check!(
        t,
        covi_on(p, v0, F::UnbindAiaImsicBegin, [id, 0, 0]) == ERR_INVALID_PARAM,
        "unbind_begin twice"
    );
    check!(
        t,
        covi_on(p, v0, F::UnbindAiaImsicEnd, [id, 0, 0]) == ERR_INVALID_PARAM,
        "unbind_end before the TVM fence"
    );
    check_err!(t, tvm_fence(id), OK, "tvm_fence");
    check!(
        t,
        covi_on(p, v0, F::UnbindAiaImsicEnd, [id, 0, 0]) == OK,
        "unbind_end"
    );
    check!(
        t,
        run_vcpu(id, 0).error == ERR_INVALID_PARAM,
        "run of an unbound vCPU of an AIA TVM"
    );

    // Rebind vCPU 1 (bound to file 3 here) to file 3 of the other hart.
    if let Some((s, fs2, fs)) = sec_files.filter(|_| two) {
        check!(
            t,
            covi_on(p, s, F::RebindAiaImsicBegin, [id, 1, 1 << 9]) == ERR_INVALID_PARAM,
            "rebind_begin to a file the hart does not have"
        );
        check!(
            t,
            covi_on(p, s, F::RebindAiaImsicBegin, [id, 1, 1 << 3]) == OK,
            "rebind_begin on slot {s}"
        );
        check!(
            t,
            covi_call(F::RebindAiaImsicClone, id, 1, 0) == ERR_INVALID_PARAM,
            "rebind_clone before the TVM fence"
        );
        check_err!(t, tvm_fence(id), OK, "tvm_fence");
        check!(
            t,
            covi_on(p, s, F::RebindAiaImsicClone, [id, 1, 0]) == ERR_INVALID_PARAM,
            "rebind_clone on the new hart"
        );
        check!(
            t,
            covi_on(p, s, F::RebindAiaImsicEnd, [id, 1, 0]) == ERR_INVALID_PARAM,
            "rebind_end before the clone"
        );
        check!(
            t,
            covi_call(F::RebindAiaImsicClone, id, 1, 0) == OK,
            "rebind_clone on the old hart"
        );
        check!(
            t,
            covi_call(F::RebindAiaImsicEnd, id, 1, 0) == ERR_INVALID_PARAM,
            "rebind_end on the old hart"
        );
        check!(
            t,
            covi_on(p, s, F::RebindAiaImsicEnd, [id, 1, 0]) == OK,
            "rebind_end on slot {s}"
        );
        // File 3 here is free again; slot s's file 2 is vCPU 1's.
        check!(
            t,
            covi_on(p, s, F::ReclaimTvmAiaImsic, [fs, 0, 0]) == ERR_INVALID_PARAM,
            "reclaim the rebound file"
        );
        check!(
            t,
            covi_call(F::ReclaimTvmAiaImsic, f3, 0, 0) == OK,
            "reclaim the file vCPU 1 left"
        );
        check!(
            t,
            covi_call(F::ConvertAiaImsic, f3, 0, 0) == OK,
            "convert it again"
        );
        check_err!(t, destroy_tvm(id), OK, "destroy_tvm");
        for f in [fs, fs2] {
            check!(
                t,
                covi_call(F::ReclaimTvmAiaImsic, f, 0, 0) == OK,
                "reclaim slot {s}'s file {f:#x} after destroy"
            );
        }
        // vCPU 1 died with an interrupt pending (covi_wake's) in `fs`: the
        // next owner must find the file empty.
        second_owner(t, p, cx, s, fs);
    } else {
        check_err!(t, destroy_tvm(id), OK, "destroy_tvm");
        if let Some((_, fs2, fs3)) = sec_files {
            for f in [fs2, fs3] {
                check!(
                    t,
                    covi_call(F::ReclaimTvmAiaImsic, f, 0, 0) == OK,
                    "reclaim {f:#x}"
                );
            }
        }
    }
    check!(
        t,
        covi_call(F::InjectTvmCpu, id, 0, 5) == ERR_INVALID_PARAM,
        "inject into a destroyed TVM"
    );
    for f in [f2, f3] {
        check!(
            t,
            covi_call(F::ReclaimTvmAiaImsic, f, 0, 0) == OK,
            "reclaim {f:#x}"
        );
        check!(
            t,
            covi_call(F::ReclaimTvmAiaImsic, f, 0, 0) == ERR_INVALID_ADDRESS,
            "reclaim {f:#x} twice"
        );
    }
    let (passed, failed, exits) = (g.host.guest_passed, g.host.guest_failed, g.host.exits);
    g.reclaim(t, cx);
    t.note(format_args!(
        "{} guest tests, {} exits",
        passed + failed,
        exits
    ));
}
