//! Negative tests of convert / reclaim / fences and of create_tvm.

use crate::harness::T;
use crate::platform::Platform;
use crate::tee::ctx::*;
use crate::tee::*;

// ---- 4. negative: convert / reclaim / fences ------------------------------

pub fn test_neg_convert(t: &mut T, p: &Platform, cx: &mut Ctx) {
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

pub fn test_neg_create(t: &mut T, p: &Platform, cx: &mut Ctx) {
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
