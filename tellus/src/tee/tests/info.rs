//! `tee_tsm_info` (get_tsm_info and its argument checks) and
//! `tee_convert_fence` (convert / fence / reclaim).

use cove_abi::TsmInfo;

use crate::arch;
use crate::harness::T;
use crate::platform::Platform;
use crate::tee::ctx::*;
use crate::tee::*;

// ---- 1. get_tsm_info ------------------------------------------------------------

pub fn test_tsm_info(t: &mut T, p: &Platform, cx: &mut Ctx) {
    // Discovery as the spec orders it: SUPD first, then COVH.
    let r = crate::sbi::probe(cove_abi::EID_SUPD);
    check!(
        t,
        r.error == OK && r.value == 1,
        "probe(SUPD): error {} value {}",
        r.error,
        r.value
    );
    let r = supd_active_domains();
    check!(
        t,
        r.error == OK && r.value == cove_abi::supd::HOST_DOMAIN_ONLY,
        "SUPD get_active_domains: error {} value {:#x} (want 0, 0x1)",
        r.error,
        r.value
    );
    let r = crate::sbi::call(cove_abi::EID_SUPD, 1, [0; 6]);
    check!(
        t,
        r.error == ERR_NOT_SUPPORTED,
        "SUPD FID 1: error {} (want NOT_SUPPORTED)",
        r.error
    );
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
    // Dynamic memory (bit 5), and AIA (bit 3) exactly when COVI probes
    // as present (an IMSIC with guest files for TVMs).
    let covi = crate::sbi::probe(cove_abi::EID_COVI).value != 0;
    let want = 1 << 5 | if covi { 1 << 3 } else { 0 };
    check!(
        t,
        info.tsm_capabilities == want,
        "capabilities {:#x} (want {want:#x}: COVI probes as {covi})",
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

pub fn test_convert_fence(t: &mut T, p: &Platform, cx: &mut Ctx) {
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
