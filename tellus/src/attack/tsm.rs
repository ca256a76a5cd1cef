//! Attacks on the TSM's locking, ownership and fencing (hardening review,
//! issue 8). Each test is the attacker's call sequence with the exact
//! result the contract requires; see `attack/mod.rs`.
//!
//! - `attack_tsm_validate_unshared` (finding 3a): a shared page the host
//!   invalidated must not come back at a GPA the TVM has since unshared;
//! - `attack_tsm_unshare_split` (3b): a COVG unshare that cannot split a
//!   shared 2 MiB leaf must not report success while the host page stays
//!   mapped;
//! - `attack_tsm_zero_rollback` (4): pages an add_tvm_zero_pages mapped
//!   and then rolled back must not reach the host before a TVM fence;
//! - `attack_tsm_long_measured` (17): a big add_tvm_measured_pages must not
//!   keep every other hart out of the TSM for its whole duration;
//! - `attack_tsm_deadlock` (1, run last, 3+ harts): tvm_fence / destroy
//!   on one hart while others make COVH calls must not deadlock;
//! - `attack_tsm_heap_destroy` (9, run last): destroying a 544 MiB TVM must
//!   not exhaust Salus's heap.

use core::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering::*};

use super::agent::{self, Agent, Serve, Spec, CODE_GPA, OP_FILL, OP_HAMMER, OP_LOAD, OP_STORE};
use crate::arch;
use crate::console::Msg;
use crate::harness::{run_one, T};
use crate::harts::{self, SLOTS};
use crate::platform::Platform;
use crate::tee::ctx::{convert, create, reclaim_check, Arena, Ctx};
use crate::tee::*;

macro_rules! check {
    ($t:expr, $cond:expr, $($arg:tt)*) => {
        $t.check($cond, format_args!($($arg)*))
    };
}

macro_rules! check_err {
    ($t:expr, $ret:expr, $want:expr, $($arg:tt)*) => {{
        let r: sbi_abi::SbiRet = $ret;
        let want: i64 = $want;
        $t.check(
            r.error == want,
            format_args!("{}: error {} (want {})", format_args!($($arg)*), r.error, want),
        )
    }};
}

pub fn run(p: &Platform, cx: &mut Ctx) {
    run_one("attack_tsm_validate_unshared", p, |t, p| {
        test_validate_unshared(t, p, cx)
    });
    run_one("attack_tsm_unshare_split", p, |t, p| {
        test_unshare_split(t, p, cx)
    });
    run_one("attack_tsm_zero_rollback", p, |t, p| {
        test_zero_rollback(t, p, cx)
    });
    run_one("attack_tsm_long_measured", p, |t, p| {
        test_long_measured(t, p, cx)
    });
    run_one("attack_tsm_add_over_invalidated", p, |t, p| {
        test_add_over_invalidated(t, p, cx)
    });
}

/// The host invalidates a zero page and adds another page at the same GPA
/// (it is unmapped now). Invalidated pages stay invalid until validated or
/// removed: the add must fail with INVALID_ADDRESS. Allowed, it left two
/// records for one GPA; a validate over both then mapped one, failed on
/// the other with FAILED and stranded that page (all-or-nothing broken).
fn test_add_over_invalidated(t: &mut T, p: &Platform, cx: &mut Ctx) {
    let Some(mut e) = Env::new(t, p, cx, agent_pages(cx, 8, 8)) else {
        return;
    };
    let spec = Spec {
        region: (CODE_GPA, 4 << 20),
        pt_pages: 8,
        spare: 8,
    };
    let mut ag = match Agent::build(cx, &mut e.ar, e.params, e.src, &spec) {
        Ok(a) => a,
        Err(m) => {
            check!(t, false, "{m}");
            return;
        }
    };
    let id = ag.id;
    let g = CODE_GPA + 0x20_0000;
    let (Some(z1), Some(z2)) = (ag.take_spare(), ag.take_spare()) else {
        check!(t, false, "no spare pages");
        e.done(t, cx, &[id]);
        return;
    };
    let r = ag.with_pt(|| add_zero_pages(id, z1, 0, 1, g));
    if check_err!(t, r, OK, "add_tvm_zero_pages({z1:#x} -> {g:#x})")
        && check_err!(
            t,
            tvm_invalidate(id, g, PAGE),
            OK,
            "tvm_invalidate_pages({g:#x})"
        )
    {
        let r = ag.with_pt(|| add_zero_pages(id, z2, 0, 1, g));
        check_err!(
            t,
            r,
            ERR_INVALID_ADDRESS,
            "add_tvm_zero_pages({z2:#x}) over invalidated GPA {g:#x}"
        );
        // The invalidated page comes back whole.
        check_err!(
            t,
            tvm_validate(id, g, PAGE),
            OK,
            "tvm_validate_pages({g:#x})"
        );
    }
    e.done(t, cx, &[id]);
}

/// Tests that, on a TSM with the finding, hang Salus or kill it: run after
/// every other attack test.
pub fn run_last(p: &Platform, cx: &mut Ctx) {
    run_one("attack_tsm_deadlock", p, |t, p| test_deadlock(t, p, cx));
    run_one("attack_tsm_heap_destroy", p, |t, p| {
        test_heap_destroy(t, p, cx)
    });
}

// ---- helpers ------------------------------------------------------------------

/// A converted arena plus two host pages (create params, agent code copy),
/// given back by `done`.
struct Env {
    mark: Mark,
    base: u64,
    pages: u64,
    ar: Arena,
    params: u64,
    src: u64,
}

impl Env {
    fn new(t: &mut T, p: &Platform, cx: &mut Ctx, pages: u64) -> Option<Env> {
        let mark = cx.pool.mark();
        let params = cx.pool.alloc(PAGE, PAGE)?;
        let src = cx.pool.alloc(PAGE, PAGE)?;
        let Some(base) = cx.pool.alloc(pages * PAGE, PAGE) else {
            check!(t, false, "no room for a {pages}-page arena");
            cx.pool.reset(mark);
            return None;
        };
        if !convert(t, p, cx, base, pages) {
            cx.pool.reset(mark);
            return None;
        }
        Some(Env {
            mark,
            base,
            pages,
            ar: Arena::new(base, pages),
            params,
            src,
        })
    }

    /// Destroys `ids` (non-zero ones) and reclaims the arena.
    fn done(self, t: &mut T, cx: &mut Ctx, ids: &[u64]) {
        for &id in ids.iter().filter(|&&id| id != 0) {
            check_err!(t, destroy_tvm(id), OK, "destroy_tvm({id:#x}) at cleanup");
        }
        reclaim_check(t, self.base, self.pages);
        cx.pool.reset(self.mark);
    }
}

/// Pages an agent TVM needs from an arena, plus `extra`.
fn agent_pages(cx: &Ctx, pt: u64, spare: u64) -> u64 {
    8 + cx.info.tvm_state_pages.max(1) + cx.info.tvm_vcpu_state_pages.max(1) + pt + spare
}

/// Runs `f(arg)` on the live secondary `slot` without waiting; returns the
/// sequence number for `harts::wait_ack`.
pub fn spawn(p: &Platform, slot: usize, f: fn(u64) -> i64, arg: u64) -> u64 {
    let s = &SLOTS[slot];
    s.call_fn.store(f as usize as u64, Relaxed);
    s.call_arg.store(arg, Relaxed);
    harts::post(s, p.harts[slot], harts::CMD_CALL)
}

fn host_word(i: u64) -> u64 {
    0x686f_7374_0000_0000 | i
}

const TVM_SECRET: u64 = 0x7365_6372_6574_2121;

/// Fills a host page with `host_word(i)`.
fn fill_host(h: u64) {
    for i in 0..PAGE / 8 {
        wr(h + 8 * i, host_word(i));
    }
}

/// Words of a host page that differ from `fill_host`'s pattern.
fn host_changed(h: u64) -> u64 {
    (0..PAGE / 8)
        .filter(|&i| rd(h + 8 * i) != host_word(i))
        .count() as u64
}

// ---- 3a. validate at a GPA that is no longer shareable ---------------------------

fn test_validate_unshared(t: &mut T, p: &Platform, cx: &mut Ctx) {
    let Some(mut e) = Env::new(t, p, cx, agent_pages(cx, 8, 8)) else {
        return;
    };
    let h = cx.pool.alloc(PAGE, PAGE).unwrap();
    let spec = Spec {
        region: (CODE_GPA, 4 << 20),
        pt_pages: 8,
        spare: 8,
    };
    let mut ag = match Agent::build(cx, &mut e.ar, e.params, e.src, &spec) {
        Ok(a) => a,
        Err(m) => {
            check!(t, false, "{m}");
            return;
        }
    };
    if let Err(m) = script_validate_unshared(t, p, &mut ag, h) {
        check!(t, false, "agent: {m}");
    }
    let id = ag.id;
    e.done(t, cx, &[id]);
    check!(
        t,
        host_page_ok(h),
        "host page {h:#x} not host memory after destroy"
    );
}

fn script_validate_unshared(t: &mut T, p: &Platform, ag: &mut Agent, h: u64) -> Result<(), Msg> {
    let id = ag.id;
    ag.start(p)?;
    let s = CODE_GPA + 0x10_0000;
    let e = ag.covg(p, agent::COVG_SHARE, s, PAGE)?;
    if !check!(t, e == OK, "TVM share_memory_region({s:#x}, 4K): error {e}") {
        return Ok(());
    }
    if !check_err!(
        t,
        add_shared_pages(id, h, 0, 1, s),
        OK,
        "add_tvm_shared_pages({h:#x} -> {s:#x})"
    ) {
        return Ok(());
    }
    ag.cmd_nofault(p, OP_STORE, [s, 0x5ee5, 0])?;
    if !check!(
        t,
        rd(h) == 0x5ee5,
        "sanity: the TVM's store did not reach the shared page"
    ) {
        return Ok(());
    }
    fill_host(h);
    if !check_err!(
        t,
        tvm_invalidate(id, s, PAGE),
        OK,
        "tvm_invalidate_pages({s:#x})"
    ) {
        return Ok(());
    }
    let e = ag.covg(p, agent::COVG_UNSHARE, s, PAGE)?;
    check!(
        t,
        e == OK,
        "TVM unshare_memory_region({s:#x}, 4K): error {e}"
    );
    // The attack: bring the host page back at a GPA that is confidential
    // only now.
    check_err!(
        t,
        tvm_validate(id, s, PAGE),
        ERR_INVALID_ADDRESS,
        "tvm_validate_pages({s:#x}) after the TVM unshared it"
    );
    // The TVM writes a secret there: it must land in confidential memory
    // (a demand-zero page the host adds on the fault), never in `h`.
    let mut served = 0;
    let r = ag.cmd(p, OP_FILL, [s, TVM_SECRET, PAGE], &mut |a, _, g| {
        if g & !(PAGE - 1) == s {
            served += 1;
            a.serve_zero(g)
        } else {
            Serve::Stop(crate::msg!("fault at {g:#x}"))
        }
    })?;
    check!(t, r.0 == OK, "TVM fill of {s:#x}: {}", r.0);
    let (_, v) = ag.cmd_nofault(p, OP_LOAD, [s + PAGE - 8, 0, 0])?;
    check!(t, v == TVM_SECRET, "TVM reads back {v:#x} at {s:#x}");
    let changed = host_changed(h);
    check!(
        t,
        changed == 0,
        "{changed} word(s) of host page {h:#x} changed: TVM writes to its confidential-only GPA {s:#x} reached it (word 0 {:#x})",
        rd(h)
    );
    t.note(format_args!("{served} demand-zero fault(s) served"));
    Ok(())
}

// ---- 3b. unshare that cannot split a shared 2 MiB leaf -------------------------

fn test_unshare_split(t: &mut T, p: &Platform, cx: &mut Ctx) {
    let Some(mut e) = Env::new(t, p, cx, agent_pages(cx, 0, 16)) else {
        return;
    };
    let Some(h2) = cx.pool.alloc(SIZE_2M, SIZE_2M) else {
        check!(t, false, "no 2 MiB host block");
        e.done(t, cx, &[]);
        return;
    };
    let spec = Spec {
        region: (CODE_GPA, 4 << 20),
        pt_pages: 0,
        spare: 16,
    };
    let mut ag = match Agent::build(cx, &mut e.ar, e.params, e.src, &spec) {
        Ok(a) => a,
        Err(m) => {
            check!(t, false, "{m}");
            e.done(t, cx, &[]);
            return;
        }
    };
    if let Err(m) = script_unshare_split(t, p, &mut ag, h2) {
        check!(t, false, "agent: {m}");
    }
    let id = ag.id;
    e.done(t, cx, &[id]);
    check!(
        t,
        host_page_ok(h2) && host_page_ok(h2 + PAGE),
        "2 MiB host block {h2:#x} not host memory after destroy"
    );
}

fn script_unshare_split(t: &mut T, p: &Platform, ag: &mut Agent, h2: u64) -> Result<(), Msg> {
    let id = ag.id;
    ag.start(p)?;
    let s2 = CODE_GPA + SIZE_2M;
    let e = ag.covg(p, agent::COVG_SHARE, s2, SIZE_2M)?;
    if !check!(
        t,
        e == OK,
        "TVM share_memory_region({s2:#x}, 2M): error {e}"
    ) {
        return Ok(());
    }
    // The pool holds exactly what the mappings so far needed.
    let r = ag.with_pt(|| add_shared_pages(id, h2, 1, 1, s2));
    if !check_err!(t, r, OK, "add_tvm_shared_pages(2M {h2:#x} -> {s2:#x})") {
        return Ok(());
    }
    let piece = s2 + PAGE;
    let hp = h2 + PAGE;
    ag.cmd_nofault(p, OP_STORE, [piece, 0x5ee5, 0])?;
    if !check!(
        t,
        rd(hp) == 0x5ee5,
        "sanity: the TVM's store did not reach the shared 2 MiB page"
    ) {
        return Ok(());
    }
    let donated = ag.pt_donated;
    // The attack: unshare 4 KiB of the 2 MiB leaf; splitting it needs a
    // page-table page the pool does not have.
    let e = ag.covg(p, agent::COVG_UNSHARE, piece, PAGE)?;
    let mut served = 0;
    ag.cmd(p, OP_STORE, [piece, TVM_SECRET, 0], &mut |a, _, g| {
        if g & !(PAGE - 1) == piece {
            served += 1;
            a.serve_zero(g)
        } else {
            Serve::Stop(crate::msg!("fault at {g:#x}"))
        }
    })?;
    let reached = rd(hp) == TVM_SECRET;
    match e {
        OK => {
            check!(
                t,
                !reached,
                "unshare({piece:#x}, 4K) of a shared 2M leaf, PT pool empty ({donated} donated): TVM told success, its next write still reached host page {hp:#x}"
            );
        }
        ERR_OUT_OF_PTPAGES => {
            check!(
                t,
                reached,
                "unshare failed with OUT_OF_PTPAGES but the shared mapping changed"
            );
            let e2 = ag.covg(p, agent::COVG_SHARE, piece, PAGE)?;
            check!(
                t,
                e2 == ERR_INVALID_PARAM,
                "after the failed unshare {piece:#x} must still be shareable: share again gives {e2} (want -3)"
            );
        }
        _ => {
            check!(
                t,
                false,
                "TVM unshare_memory_region({piece:#x}, 4K): error {e} (want 0 with the host page unmapped, or {ERR_OUT_OF_PTPAGES} with nothing changed)"
            );
        }
    }
    t.note(format_args!(
        "unshare returned {e}, {served} zero fault(s), {} PT page(s)",
        ag.pt_donated
    ));
    Ok(())
}

// ---- 4. add_zero_pages rollback without a TVM fence -----------------------------

/// Shared with the secondary that runs the hammering agent.
struct Hammer {
    id: u64,
    slot: usize,
    stop: AtomicBool,
    /// Set by the boot hart: call local_fence (completes a global_fence).
    fence: AtomicBool,
    runs: AtomicU64,
    error: AtomicI64,
}

/// Keeps running the agent (in OP_HAMMER) until `stop`; every exit (a
/// guest page fault while the GPA is unmapped, an interrupt) re-runs it.
fn hammer_loop(arg: u64) -> i64 {
    // SAFETY: `arg` is a `Hammer` the boot hart keeps alive until we ack.
    let h = unsafe { &*(arg as *const Hammer) };
    let e = nacl_setup_here(h.slot, false);
    if e != OK {
        return e;
    }
    while !h.stop.load(Acquire) {
        if h.fence.load(Acquire) {
            let _ = local_fence();
            h.fence.store(false, Release);
        }
        let x = run_vcpu(h.id, 0);
        h.runs.fetch_add(1, Release);
        if x.error != OK {
            h.error.store(x.error, Relaxed);
            return x.error;
        }
    }
    OK
}

fn test_zero_rollback(t: &mut T, p: &Platform, cx: &mut Ctx) {
    if cx.secondaries() == 0 {
        t.note(format_args!("skipped: needs a second hart"));
        return;
    }
    let Some(mut e) = Env::new(t, p, cx, agent_pages(cx, 0, 16) + 8) else {
        return;
    };
    let spec = Spec {
        region: (CODE_GPA, 4 << 20),
        pt_pages: 0,
        spare: 16,
    };
    let mut ag = match Agent::build(cx, &mut e.ar, e.params, e.src, &spec) {
        Ok(a) => a,
        Err(m) => {
            check!(t, false, "{m}");
            e.done(t, cx, &[]);
            return;
        }
    };
    let id = ag.id;
    // Two pages: one in the leaf table the code page already uses, one in
    // the next 2 MiB, whose table the (empty) pool cannot provide.
    let z = e.ar.take(ZR_PAGES, PAGE);
    let g = CODE_GPA + SIZE_2M - PAGE;
    let b = cx.slots()[1];
    // A TVM that stores its secret at `g` again and again (each store
    // faults while `g` is unmapped; once it has a translation it loops
    // without exiting).
    let res = ag
        .start(p)
        .and_then(|_| agent_hammer_setup(&mut ag, p, g, 64));
    if let Err(m) = res {
        check!(t, false, "agent: {m}");
        e.done(t, cx, &[id]);
        return;
    }
    let hm = Hammer {
        id,
        slot: b,
        stop: AtomicBool::new(false),
        fence: AtomicBool::new(false),
        runs: AtomicU64::new(0),
        error: AtomicI64::new(0),
    };
    let seq = spawn(p, b, hammer_loop, (&raw const hm) as u64);
    harts::wait_for(p.ms(2000), || hm.runs.load(Relaxed) > 2);
    let mut stalls = 0u64;
    let mut leaked = 0u64;
    let mut k = 0;
    let mut bad = 0;
    let t0 = arch::read_time();
    while k < ZR_TRIES && leaked == 0 && arch::read_time() - t0 < p.ms(ZR_TIME_MS) {
        k += 1;
        let r = add_zero_pages(id, z, 0, ZR_PAGES, g);
        if r.error != ERR_OUT_OF_PTPAGES {
            bad += 1;
            if bad == 1 {
                check!(t, false, "add_tvm_zero_pages({ZR_PAGES} pages over a missing table): error {} (want {ERR_OUT_OF_PTPAGES})", r.error);
            }
            if r.error == OK {
                break;
            }
            continue;
        }
        // The TVM keeps faulting on `g` unless it kept a translation of
        // the mapping the failed call rolled back.
        // (A surviving translation stays: checking every few tries is enough.)
        if k % ZR_CHECK_EVERY != 0 {
            continue;
        }
        let before = hm.runs.load(Acquire);
        if harts::wait_for(p.ms(ZR_STALL_MS), || hm.runs.load(Acquire) != before) {
            continue;
        }
        stalls += 1;
        // It stopped exiting. No tvm_fence: the pages must not be the
        // host's yet (or were never mapped, and the TVM cannot reach them).
        if reclaim_pages(z, ZR_PAGES).error != OK {
            continue;
        }
        for pg in 0..ZR_PAGES {
            fill_host(z + pg * PAGE);
        }
        let changed = || -> u64 { (0..ZR_PAGES).map(|pg| host_changed(z + pg * PAGE)).sum() };
        if harts::wait_for(p.ms(300), || changed() != 0) {
            leaked = changed();
            break;
        }
        // A slow host, not a leak: convert the pages again (the TVM's hart
        // fences once an interrupt brings it out of the TVM).
        if !check_err!(
            t,
            convert_pages(z, ZR_PAGES),
            OK,
            "convert_pages({z:#x}) again"
        ) {
            break;
        }
        let _ = global_fence();
        hm.fence.store(true, Release);
        for _ in 0..200 {
            let _ = crate::sbi::send_ipi(1, p.harts[b]);
            if harts::wait_for(p.ms(10), || !hm.fence.load(Acquire)) {
                break;
            }
        }
        for &s in &cx.slots()[2..] {
            let _ = harts::call(p, s, call_local_fence, 0, p.ms(2000));
        }
    }
    hm.stop.store(true, Release);
    // A TVM that no longer exits is stopped by an interrupt on its hart.
    let mut back = None;
    for _ in 0..50 {
        let _ = crate::sbi::send_ipi(1, p.harts[b]);
        back = harts::wait_ack(&SLOTS[b], seq, p.ms(100));
        if back.is_some() {
            break;
        }
    }
    check!(
        t,
        back == Some(OK),
        "hammering hart: {:?} (error {})",
        back,
        hm.error.load(Relaxed)
    );
    check!(
        t,
        leaked == 0,
        "try {k}: add_zero_pages failed ({ERR_OUT_OF_PTPAGES}), no tvm_fence, pages reclaimed: the TVM still wrote {leaked} word(s) of them (stale translation)"
    );
    check_err!(t, tvm_fence(id), OK, "tvm_fence");
    if leaked != 0 {
        // `z` is the host's already.
        check_err!(t, destroy_tvm(id), OK, "destroy_tvm");
        reclaim_check(t, e.base, (z - e.base) / PAGE);
        let after = z + ZR_PAGES * PAGE;
        reclaim_check(t, after, e.pages - (after - e.base) / PAGE);
        cx.pool.reset(e.mark);
        return;
    }
    t.note(format_args!(
        "{k} tries, {} TVM exits, {stalls} stall(s)",
        hm.runs.load(Relaxed)
    ));
    e.done(t, cx, &[id]);
}

fn call_local_fence(_: u64) -> i64 {
    local_fence().error
}

const ZR_PAGES: u64 = 2;
const ZR_TRIES: u64 = 20_000;
const ZR_CHECK_EVERY: u64 = 8;
const ZR_STALL_MS: u64 = 20;
/// Bound on the whole attack (ms of the time CSR).
const ZR_TIME_MS: u64 = 3_000;

/// Puts the agent into OP_HAMMER on `gpa` with a delay of `delay` loops.
/// Its next exit is the fault on `gpa` (or a host interrupt).
fn agent_hammer_setup(ag: &mut Agent, p: &Platform, gpa: u64, delay: u64) -> Result<(), Msg> {
    // cmd() would wait for a report that never comes: stop at the first
    // fault instead.
    match ag.cmd(p, OP_HAMMER, [gpa, TVM_SECRET, delay], &mut |_, _, g| {
        Serve::Stop(crate::msg!("hammering {g:#x}"))
    }) {
        Err(m) if m.as_str().starts_with("hammering") => Ok(()),
        Err(m) => Err(m),
        Ok(_) => Err(crate::msg!("agent reported from OP_HAMMER")),
    }
}

// ---- 17. long work under the TSM lock ---------------------------------------------

struct LongReq {
    id: u64,
    src: u64,
    dest: u64,
    n: u64,
    gpa: u64,
    state: AtomicU64,
    error: AtomicI64,
}

fn long_measured(arg: u64) -> i64 {
    // SAFETY: `arg` is a `LongReq` the boot hart keeps alive until we ack.
    let r = unsafe { &*(arg as *const LongReq) };
    r.state.store(1, Release);
    let x = add_measured_pages(r.id, r.src, r.dest, 0, r.n, r.gpa);
    r.state.store(2, Release);
    r.error.store(x.error, Relaxed);
    x.error
}

const LONG_PAGES: u64 = 2048;
const LONG_MIN_CALLS: u64 = 20;

fn test_long_measured(t: &mut T, p: &Platform, cx: &mut Ctx) {
    if cx.secondaries() == 0 {
        t.note(format_args!("skipped: needs a second hart"));
        return;
    }
    let mark = cx.pool.mark();
    let Some(src) = cx.pool.alloc_raw(LONG_PAGES * PAGE, PAGE) else {
        check!(t, false, "no room for {LONG_PAGES} source pages");
        return;
    };
    let Some(mut e) = Env::new(t, p, cx, LONG_PAGES + 8 + cx.info.tvm_state_pages + 16) else {
        cx.pool.reset(mark);
        return;
    };
    let pagedir = e.ar.take(4, 4 * PAGE);
    let state = e.ar.take(cx.info.tvm_state_pages.max(1), PAGE);
    let pt = e.ar.take(16, PAGE);
    let dest = e.ar.take(LONG_PAGES, PAGE);
    let r = create(e.params, pagedir, state);
    if !check_err!(t, r, OK, "create_tvm") {
        e.done(t, cx, &[]);
        cx.pool.reset(mark);
        return;
    }
    let id = r.value;
    check_err!(
        t,
        add_memory_region(id, CODE_GPA, 16 << 20),
        OK,
        "add_tvm_memory_region"
    );
    check_err!(t, add_pt_pages(id, pt, 16), OK, "add_tvm_page_table_pages");
    let req = LongReq {
        id,
        src,
        dest,
        n: LONG_PAGES,
        gpa: CODE_GPA,
        state: AtomicU64::new(0),
        error: AtomicI64::new(0),
    };
    let a = cx.slots()[1];
    let boot = boot_slot(p);
    let seq = spawn(p, a, long_measured, (&raw const req) as u64);
    harts::wait_for(p.ms(2000), || req.state.load(Acquire) != 0);
    // Cheap calls that take the TSM lock and wait for no other hart.
    let mut during = 0u64;
    let mut total = 0u64;
    let t0 = arch::read_time();
    while req.state.load(Acquire) == 1 && arch::read_time() - t0 < p.ms(120_000) {
        let r = if total.is_multiple_of(2) {
            local_fence()
        } else {
            nacl_set_shmem(nacl_addr(boot), 0, 0)
        };
        total += 1;
        if !check_err!(t, r, OK, "cheap call {total} during add_tvm_measured_pages") {
            break;
        }
        if req.state.load(Acquire) == 1 {
            during += 1;
        }
    }
    let done = harts::wait_ack(&SLOTS[a], seq, p.ms(120_000));
    check!(
        t,
        done == Some(OK),
        "add_tvm_measured_pages({LONG_PAGES} pages) on hart slot {a}: {:?}",
        done
    );
    let ticks = arch::read_time() - t0;
    check!(
        t,
        during >= LONG_MIN_CALLS,
        "{during} TSM call(s) done on another hart during add_measured_pages({LONG_PAGES} pages, {} ms), want >= {LONG_MIN_CALLS}: lock held throughout",
        ticks / p.ms(1).max(1)
    );
    t.note(format_args!(
        "{during} call(s) completed during the {LONG_PAGES}-page add ({} ms)",
        ticks / p.ms(1).max(1)
    ));
    e.done(t, cx, &[id]);
    cx.pool.reset(mark);
}

// ---- 1. deadlock: remote fences under the TSM lock -------------------------------

struct Dead {
    id: u64,
    /// Host params page, TVM page directory (4 pages) and state pages for
    /// the create / destroy cycles.
    params: u64,
    pagedir: u64,
    state: u64,
    iters: u64,
    done: [AtomicU64; 3],
    error: [AtomicI64; 3],
    slots: [usize; 3],
}

/// Hart A: tvm_fence, and every 4th time a create_tvm / destroy_tvm cycle.
fn dead_a(arg: u64) -> i64 {
    // SAFETY: `arg` is a `Dead` the boot hart keeps alive (forever if we
    // never come back).
    let d = unsafe { &*(arg as *const Dead) };
    for i in 0..d.iters {
        let r = tvm_fence(d.id);
        if r.error != OK {
            d.error[0].store(r.error, Relaxed);
            return r.error;
        }
        if i % 4 == 0 {
            let r = create(d.params, d.pagedir, d.state);
            if r.error != OK {
                d.error[0].store(r.error, Relaxed);
                return r.error;
            }
            let r = destroy_tvm(r.value);
            if r.error != OK {
                d.error[0].store(r.error, Relaxed);
                return r.error;
            }
        }
        d.done[0].fetch_add(1, Release);
    }
    OK
}

/// Hart B: run_tvm_vcpu of the agent (each run ends at its next ecall).
fn dead_b(arg: u64) -> i64 {
    // SAFETY: as in dead_a.
    let d = unsafe { &*(arg as *const Dead) };
    let e = nacl_setup_here(d.slots[1], false);
    if e != OK {
        d.error[1].store(e, Relaxed);
        return e;
    }
    for _ in 0..d.iters {
        let x = run_vcpu(d.id, 0);
        if x.error != OK {
            d.error[1].store(x.error, Relaxed);
            return x.error;
        }
        d.done[1].fetch_add(1, Release);
    }
    OK
}

/// Hart C: local_fence and NACL set_shmem.
fn dead_c(arg: u64) -> i64 {
    // SAFETY: as in dead_a.
    let d = unsafe { &*(arg as *const Dead) };
    for i in 0..d.iters {
        let r = if i % 2 == 0 {
            local_fence()
        } else {
            nacl_set_shmem(nacl_addr(d.slots[2]), 0, 0)
        };
        if r.error != OK {
            d.error[2].store(r.error, Relaxed);
            return r.error;
        }
        d.done[2].fetch_add(1, Release);
    }
    nacl_forget(d.slots[2]);
    OK
}

const DEAD_ITERS: u64 = 60;
/// No progress for this long (ms of the time CSR) counts as a hang.
const DEAD_STALL_MS: u64 = 5000;

fn test_deadlock(t: &mut T, p: &Platform, cx: &mut Ctx) {
    if cx.secondaries() < 2 {
        t.note(format_args!(
            "skipped: needs 3 harts (2 to collide, 1 to watch); {} live",
            cx.nslots
        ));
        return;
    }
    let Some(mut e) = Env::new(
        t,
        p,
        cx,
        agent_pages(cx, 8, 0) + 8 + cx.info.tvm_state_pages,
    ) else {
        return;
    };
    let spec = Spec {
        region: (CODE_GPA, 4 << 20),
        pt_pages: 8,
        spare: 0,
    };
    let mut ag = match Agent::build(cx, &mut e.ar, e.params, e.src, &spec) {
        Ok(a) => a,
        Err(m) => {
            check!(t, false, "{m}");
            e.done(t, cx, &[]);
            return;
        }
    };
    if let Err(m) = ag.start(p) {
        check!(t, false, "agent: {m}");
        e.done(t, cx, &[ag.id]);
        return;
    }
    let pagedir = e.ar.take(4, 4 * PAGE);
    let state = e.ar.take(cx.info.tvm_state_pages.max(1), PAGE);
    let ns = cx.slots();
    let slots = [ns[1], ns[2], if ns.len() > 3 { ns[3] } else { usize::MAX }];
    let d = Dead {
        id: ag.id,
        params: e.params,
        pagedir,
        state,
        iters: DEAD_ITERS,
        done: [const { AtomicU64::new(0) }; 3],
        error: [const { AtomicI64::new(0) }; 3],
        slots,
    };
    let arg = (&raw const d) as u64;
    let fs: [fn(u64) -> i64; 3] = [dead_a, dead_b, dead_c];
    let mut seqs = [0u64; 3];
    let n = if slots[2] == usize::MAX { 2 } else { 3 };
    for k in 0..n {
        seqs[k] = spawn(p, slots[k], fs[k], arg);
    }
    let total = |d: &Dead| -> u64 { (0..3).map(|k| d.done[k].load(Acquire)).sum() };
    let target = n as u64 * DEAD_ITERS;
    let t0 = arch::read_time();
    loop {
        let before = total(&d);
        let errs = (0..3).any(|k| d.error[k].load(Relaxed) != 0);
        if before >= target || errs {
            break;
        }
        let moved = harts::wait_for(p.ms(DEAD_STALL_MS), || total(&d) != before);
        if !moved {
            // Both harts are stuck inside Salus; so is any TSM call this
            // hart would make. Report and end the run.
            crate::fatal(format_args!(
                "hang: no progress for {DEAD_STALL_MS} ms: tvm_fence/destroy loop {}/{DEAD_ITERS}, run_tvm_vcpu loop {}/{DEAD_ITERS}, local_fence/set_shmem loop {}/{} (remote_fence under the TSM lock while another hart spins on it)",
                d.done[0].load(Relaxed),
                d.done[1].load(Relaxed),
                d.done[2].load(Relaxed),
                if n == 3 { DEAD_ITERS } else { 0 }
            ));
        }
    }
    for k in 0..n {
        let r = harts::wait_ack(&SLOTS[slots[k]], seqs[k], p.ms(10_000));
        check!(
            t,
            r == Some(OK),
            "loop {k} on slot {}: {:?} (error {})",
            slots[k],
            r,
            d.error[k].load(Relaxed)
        );
    }
    let ms = (arch::read_time() - t0) / p.ms(1).max(1);
    t.note(format_args!(
        "{} calls on {} harts in {ms} ms, no hang",
        total(&d) + d.done[0].load(Relaxed) / 4 * 2,
        n
    ));
    e.done(t, cx, &[ag.id]);
}

// ---- 9. destroy of a big TVM and Salus's heap ------------------------------------

/// 2 MiB zero pages: 544 MiB, more than 2^17 released 4 KiB pages (a Vec
/// of them outgrows a 2 MiB heap).
const HEAP_2M: u64 = 272;

fn test_heap_destroy(t: &mut T, p: &Platform, cx: &mut Ctx) {
    let mark = cx.pool.mark();
    let total = (HEAP_2M + 1) * SIZE_2M;
    let (Some(params), Some(src)) = (cx.pool.alloc(PAGE, PAGE), cx.pool.alloc(PAGE, PAGE)) else {
        check!(t, false, "no host pages");
        return;
    };
    let Some(base) = cx.pool.alloc_raw(total, SIZE_2M) else {
        t.note(format_args!("skipped: no {} MiB of free RAM", total >> 20));
        cx.pool.reset(mark);
        return;
    };
    let pages = total / PAGE;
    if !convert(t, p, cx, base, pages) {
        cx.pool.reset(mark);
        return;
    }
    let mut ar = Arena::new(base, 512);
    let spec = Spec {
        region: (CODE_GPA, 1 << 30),
        pt_pages: 16,
        spare: 0,
    };
    let res = (|| -> Result<u64, Msg> {
        let mut ag = Agent::build(cx, &mut ar, params, src, &spec)?;
        let id = ag.id;
        let r = add_zero_pages(id, base + SIZE_2M, 1, HEAP_2M, CODE_GPA + SIZE_2M);
        if r.error != OK {
            return Err(crate::msg!(
                "add_tvm_zero_pages({HEAP_2M} x 2M): error {}",
                r.error
            ));
        }
        ag.start(p)?;
        let last = CODE_GPA + SIZE_2M + HEAP_2M * SIZE_2M - 8;
        ag.cmd_nofault(p, OP_STORE, [last, TVM_SECRET, 0])?;
        let (_, v) = ag.cmd_nofault(p, OP_LOAD, [last, 0, 0])?;
        if v != TVM_SECRET {
            return Err(crate::msg!("TVM read back {v:#x} at {last:#x}"));
        }
        Ok(id)
    })();
    let id = match res {
        Ok(id) => id,
        Err(m) => {
            check!(t, false, "{m}");
            cx.pool.reset(mark);
            return;
        }
    };
    // The attack: destroy it. Salus must not run out of heap.
    let t0 = arch::read_time();
    if !check_err!(
        t,
        destroy_tvm(id),
        OK,
        "destroy_tvm of a {} MiB TVM",
        total >> 20
    ) {
        return;
    }
    let ms = (arch::read_time() - t0) / p.ms(1).max(1);
    if check_err!(
        t,
        reclaim_pages(base, pages),
        OK,
        "reclaim_pages({base:#x}, {pages})"
    ) {
        let nonzero = (0..pages)
            .filter(|&k| rd(base + k * PAGE) != 0 || rd(base + k * PAGE + PAGE - 8) != 0)
            .count();
        check!(t, nonzero == 0, "{nonzero} reclaimed page(s) not zeroed");
    }
    t.note(format_args!("{} MiB TVM destroyed in {ms} ms", total >> 20));
    cx.pool.reset(mark);
}
