//! Randomized COVH/COVG/NACL sequences from every hart at once (`fuzz` in
//! bootargs, `seed=N`, `iters=N` calls in all; `fuzz-harts=1` for the
//! single-hart deterministic mode; `fuzz-nofence` leaves out tvm_fence and
//! destroy_tvm while harts race).
//!
//! Each hart drives its own pool of pages and its own TVMs with an exact
//! model (`model.rs`), and all of them hit a few shared TVMs (`shared.rs`)
//! where a result only has to be one a race allows. After each step a few
//! of the hart's pool pages are probed against its model. A watchdog on
//! whichever hart is free fails the run when a hart completes no call for
//! a long window of `time` ticks. At the end everything is torn down from
//! the boot hart and every page must be host memory again. Salus's own
//! cross-checks (`salus.check`) end QEMU with `salus: fatal` on a mismatch.
//!
//! Prints per-hart counts and `tellus: fuzz seed S: K calls on H harts
//! (k0/k1/...), E errors as expected, T TVMs created, M mismatches, R
//! calls/s`.

mod model;
mod shared;

use core::mem::MaybeUninit;
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::*};

use crate::arch;
use crate::harness::T;
use crate::harts;
use crate::platform::{Platform, MAX_HARTS};
use crate::tee::ctx::{convert, Ctx, CENSUS};
use crate::tee::*;
use model::{Model, Op, Pg, Want, OP_NAMES, POOL_PAGES};

pub const ERR_BUSY: i64 = cove_abi::error::SBI_ERR_BUSY;

/// A hart that completes no call for this long is stuck. Generous: in CI
/// four harts share two host cores, and `salus.check` scans the page map
/// after every call.
const WATCHDOG_MS: u64 = 10_000;

/// Calls completed per hart (what the watchdog watches).
pub static CALLS: [AtomicU64; MAX_HARTS] = [const { AtomicU64::new(0) }; MAX_HARTS];
/// The operation each hart is in (an `Op`).
pub static LAST_OP: [AtomicU64; MAX_HARTS] = [const { AtomicU64::new(0) }; MAX_HARTS];
/// local_fence calls completed per hart (see `Model::resolve`).
pub static LOCAL_FENCES: [AtomicU64; MAX_HARTS] = [const { AtomicU64::new(0) }; MAX_HARTS];
static DONE: [AtomicBool; MAX_HARTS] = [const { AtomicBool::new(true) }; MAX_HARTS];
static STOP: AtomicBool = AtomicBool::new(false);
/// The guest code page of the shared TVMs (host memory, read only).
pub static GSRC: AtomicU64 = AtomicU64::new(0);

/// What every hart's model needs to know about the run.
#[derive(Clone, Copy)]
pub struct Cfg {
    pub info: cove_abi::TsmInfo,
    pub live: [bool; MAX_HARTS],
    pub workers: [bool; MAX_HARTS],
    /// One worker: fences are exact (secondaries fence on command).
    pub solo: bool,
    pub nofence: bool,
    /// Calls each worker makes.
    pub quota: u64,
    pub window: u64,
}

static mut MODELS: [MaybeUninit<Model>; MAX_HARTS] = [const { MaybeUninit::uninit() }; MAX_HARTS];

// ---- watchdog -----------------------------------------------------------------

struct Wd {
    seen: [u64; MAX_HARTS],
    since: [u64; MAX_HARTS],
    workers: [bool; MAX_HARTS],
    window: u64,
}

static WD: spin::Mutex<Wd> = spin::Mutex::new(Wd {
    seen: [0; MAX_HARTS],
    since: [0; MAX_HARTS],
    workers: [false; MAX_HARTS],
    window: u64::MAX,
});
/// Slot of the stuck hart + 1 (0: none), and for how long.
static STUCK: AtomicUsize = AtomicUsize::new(0);
static STUCK_TICKS: AtomicU64 = AtomicU64::new(0);

/// Any free hart runs this between its own calls: a worker whose call
/// count has not moved for the window (and is not done) is stuck.
fn watchdog() {
    let Some(mut wd) = WD.try_lock() else { return };
    let now = arch::read_time();
    for h in 0..MAX_HARTS {
        if !wd.workers[h] {
            continue;
        }
        let c = CALLS[h].load(Acquire);
        if c != wd.seen[h] || DONE[h].load(Acquire) {
            wd.seen[h] = c;
            wd.since[h] = now;
            continue;
        }
        let idle = now.wrapping_sub(wd.since[h]);
        if idle > wd.window && STUCK.load(Acquire) == 0 {
            STUCK_TICKS.store(idle, Release);
            STUCK.store(h + 1, Release);
            STOP.store(true, Release);
            let op = LAST_OP[h].load(Relaxed) as usize;
            println!(
                "tellus: fuzz watchdog: no progress / hang: hart {h} completed no call for {idle} ticks (at {c} calls, last call {}); calls per hart {}",
                OP_NAMES.get(op).unwrap_or(&"?"),
                PerHart(&wd.workers, |h| CALLS[h].load(Relaxed)),
            );
        }
    }
}

/// `a/b/c` over the workers.
struct PerHart<'a, F: Fn(usize) -> u64>(&'a [bool; MAX_HARTS], F);

impl<F: Fn(usize) -> u64> core::fmt::Display for PerHart<'_, F> {
    fn fmt(&self, f: &mut core::fmt::Formatter) -> core::fmt::Result {
        let mut first = true;
        for h in (0..MAX_HARTS).filter(|&h| self.0[h]) {
            if !first {
                f.write_str("/")?;
            }
            first = false;
            write!(f, "{}", (self.1)(h))?;
        }
        Ok(())
    }
}

// ---- workers ------------------------------------------------------------------

fn worker(arg: u64) -> i64 {
    // SAFETY: `arg` is this hart's entry of MODELS, initialised by the boot
    // hart before the call and not touched by anyone else until DONE.
    let m = unsafe { &mut *(arg as *mut Model) };
    run_worker(m);
    OK
}

fn run_worker(m: &mut Model) {
    if nacl_setup_here(m.hart, true) != OK {
        let h = m.hart;
        m.mismatch(format_args!("nacl set_shmem on hart {h} failed"));
    }
    let quota = m.cfg.quota;
    let mut step = 0u64;
    while m.calls < quota && step < quota * 4 && !STOP.load(Acquire) {
        step += 1;
        // Lent pages come back in the single-hart mode too.
        m.resolve();
        m.step();
        if step.is_multiple_of(8) {
            watchdog();
        }
        if m.mismatches > 50 {
            break;
        }
    }
    if m.cfg.solo {
        DONE[m.hart].store(true, Release);
        return;
    }
    m.local_fence_counted();
    DONE[m.hart].store(true, Release);
    // Others' fences wait for our local_fence: keep fencing now and then,
    // and keep watching, until every worker is done.
    let workers = m.cfg.workers;
    while !STOP.load(Acquire) && !(0..MAX_HARTS).all(|h| !workers[h] || DONE[h].load(Acquire)) {
        harts::wait_for(m.p.ms(2), || false);
        m.local_fence_counted();
        watchdog();
    }
}

fn models() -> *mut Model {
    (&raw mut MODELS) as *mut Model
}

// ---- the test -------------------------------------------------------------------

pub fn test_fuzz(t: &mut T, p: &Platform, cx: &mut Ctx) {
    // SAFETY: the Platform lives in tellus's static `PLATFORM` for the
    // whole run; only the borrow's lifetime is widened.
    let p: &'static Platform = unsafe { &*(p as *const Platform) };
    let mark = cx.pool.mark();
    let boot = boot_slot(p);
    let mut workers = [false; MAX_HARTS];
    workers[boot] = true;
    let solo = p.fuzz_harts == 1 || cx.secondaries() == 0;
    if !solo {
        for &s in cx.slots() {
            workers[s] = true;
        }
    }
    let nworkers = workers.iter().filter(|&&w| w).count() as u64;
    let cfg = Cfg {
        info: cx.info,
        live: cx.live,
        workers,
        solo,
        nofence: p.fuzz_nofence,
        quota: p.fuzz_iters.div_ceil(nworkers),
        window: p.ms(WATCHDOG_MS),
    };

    // Pages: one pool + params page per worker, the shared TVMs' blocks,
    // and the two code pages every TVM is measured from.
    let src = cx.pool.alloc(PAGE, PAGE).unwrap();
    // The private TVMs exit on every run.
    for (k, w) in crate::tee::exit_loop_words().iter().enumerate() {
        wr(src + 8 * k as u64, *w);
    }
    let gsrc = cx.pool.alloc(PAGE, PAGE).unwrap();
    for (k, w) in shared::GUEST.chunks(2).enumerate() {
        wr(gsrc + 8 * k as u64, w[0] as u64 | (w[1] as u64) << 32);
    }
    GSRC.store(gsrc, Release);
    STOP.store(false, Release);
    STUCK.store(0, Release);
    for h in 0..MAX_HARTS {
        CALLS[h].store(0, Release);
        LOCAL_FENCES[h].store(0, Release);
        DONE[h].store(!workers[h], Release);
    }
    for h in (0..MAX_HARTS).filter(|&h| workers[h]) {
        let base = cx.pool.alloc(POOL_PAGES as u64 * PAGE, 16 * PAGE).unwrap();
        let params = cx.pool.alloc(PAGE, PAGE).unwrap();
        CENSUS.lock().add(base, POOL_PAGES as u64);
        // SAFETY: no worker runs yet; each entry is written once here.
        unsafe {
            models()
                .add(h)
                .write(Model::new(h, cfg, p, base, params, src))
        };
    }
    // SAFETY: as above; the boot hart's own entry.
    let bm = unsafe { &mut *models().add(boot) };
    let bp = shared::block_pages(&cx.info);
    let mut blocks = [0u64; shared::NSHARED];
    for (s, b) in blocks.iter_mut().enumerate() {
        *b = cx.pool.alloc(bp * PAGE, 16 * PAGE).unwrap();
        if !convert(t, p, cx, *b, bp) {
            return;
        }
        *shared::SLOTS[s].lock() = shared::Slot {
            id: 0,
            gen: 0,
            block: *b,
        };
        if !bm.build_shared(s, gsrc) {
            t.check(false, format_args!("building shared TVM {s} failed"));
            return;
        }
    }

    // Race.
    {
        let mut wd = WD.lock();
        let now = arch::read_time();
        wd.workers = workers;
        wd.window = cfg.window;
        wd.seen = [0; MAX_HARTS];
        wd.since = [now; MAX_HARTS];
    }
    let start_calls: u64 = (0..MAX_HARTS).map(|h| CALLS[h].load(Acquire)).sum();
    let t0 = arch::read_time();
    let mut seqs = [0u64; MAX_HARTS];
    for h in (0..MAX_HARTS).filter(|&h| workers[h] && h != boot) {
        seqs[h] = harts::call_async(p, h, worker, models().wrapping_add(h) as u64);
    }
    run_worker(bm);
    for h in (0..MAX_HARTS).filter(|&h| workers[h] && h != boot) {
        while harts::wait_ack(&harts::SLOTS[h], seqs[h], p.ms(100)).is_none() {
            watchdog();
            if STUCK.load(Acquire) != 0 {
                break;
            }
        }
    }
    let ticks = arch::read_time().wrapping_sub(t0).max(1);
    let per_hart = |h: usize| CALLS[h].load(Acquire);
    let race_calls: u64 = (0..MAX_HARTS).map(per_hart).sum::<u64>() - start_calls;
    let rate = race_calls * p.timebase / ticks;
    println!(
        "tellus: fuzz race: {race_calls} calls in {ticks} ticks ({} ms at {} Hz) on {nworkers} hart(s){}",
        ticks * 1000 / p.timebase,
        p.timebase,
        if cfg.nofence { ", no tvm_fence/destroy_tvm" } else { "" }
    );
    if let Some(h) = STUCK.load(Acquire).checked_sub(1) {
        // The stuck hart may hold Salus's locks: tearing down could hang.
        let op = LAST_OP[h].load(Relaxed) as usize;
        crate::fatal(format_args!(
            "fuzz watchdog: no progress / hang: hart {h} completed no call for {} ticks (last call {}), calls per hart {}",
            STUCK_TICKS.load(Acquire),
            OP_NAMES.get(op).unwrap_or(&"?"),
            PerHart(&workers, per_hart),
        ));
    }

    // Tear down from the boot hart: finish any fence in flight, destroy
    // every TVM, complete every conversion, reclaim every page.
    bm.op(Op::Teardown);
    let mut teardown_ok = local_fences(p, &cx.live).is_ok();
    bm.local_fence_counted();
    for s in 0..shared::NSHARED {
        let id = shared::SLOTS[s].lock().id;
        if id != 0 && bm.expect("destroy_tvm (shared, teardown)", destroy_tvm(id), Want::Ok) {
            let mut sl = shared::SLOTS[s].lock();
            sl.id = 0;
            sl.gen += 1;
        }
    }
    for h in (0..MAX_HARTS).filter(|&h| workers[h]) {
        // SAFETY: every worker is done; the boot hart alone uses them now.
        let m = unsafe { &mut *models().add(h) };
        m.resolve();
        for s in 0..model::MAX_TVMS {
            if m.tvms[s].is_some() {
                m.destroy_slot(s, "destroy_tvm (teardown)");
                m.tvms[s] = None;
            }
        }
    }
    teardown_ok &= fence_all(p, &cx.live).is_ok();
    t.check(teardown_ok, format_args!("fences at teardown failed"));
    let mut lost = 0;
    for h in (0..MAX_HARTS).filter(|&h| workers[h]) {
        // SAFETY: as above.
        let m = unsafe { &mut *models().add(h) };
        for i in 0..POOL_PAGES {
            if matches!(m.pg[i], Pg::Converting | Pg::Fencing | Pg::Unassigned) {
                let r = reclaim_pages(m.addr(i), 1);
                if m.expect("reclaim_pages (teardown)", r, Want::Ok) {
                    m.pg[i] = Pg::Host;
                }
            }
        }
        for i in 0..POOL_PAGES {
            if !host_page_ok(m.addr(i)) {
                lost += 1;
                if lost <= 4 {
                    println!(
                        "tellus: fuzz hart {h}: page {:#x} ({:?}) not host memory after teardown",
                        m.addr(i),
                        m.pg[i]
                    );
                }
            }
        }
    }
    for &b in blocks.iter() {
        let r = reclaim_pages(b, bp);
        bm.expect("reclaim_pages (shared block, teardown)", r, Want::Ok);
        lost += (0..bp).filter(|k| !host_page_ok(b + k * PAGE)).count();
    }
    t.check(
        lost == 0,
        format_args!("{lost} pool page(s) not host memory after teardown"),
    );

    // Report.
    let (mut calls, mut errs, mut tvms, mut mism, mut sh) = (0, 0, 0, 0, 0);
    for h in (0..MAX_HARTS).filter(|&h| workers[h]) {
        // SAFETY: as above.
        let m = unsafe { &*models().add(h) };
        println!(
            "tellus: fuzz hart {h}: {} calls ({} on shared TVMs), {} errors as expected, {} TVMs created, {} mismatches, {} local fences",
            m.calls,
            m.shared_calls,
            m.errors_expected,
            m.seen_ids,
            m.mismatches,
            LOCAL_FENCES[h].load(Acquire)
        );
        calls += m.calls;
        errs += m.errors_expected;
        tvms += m.seen_ids;
        mism += m.mismatches;
        sh += m.shared_calls;
        t.check(m.calls > 0, format_args!("hart {h} made no progress"));
    }
    t.check(
        mism == 0,
        format_args!("{mism} call(s) did not behave as expected"),
    );
    println!(
        "tellus: fuzz seed {}: {calls} calls on {nworkers} harts ({}), {errs} errors as expected, {tvms} TVMs created, {mism} mismatches, {rate} calls/s",
        p.seed,
        PerHart(&workers, per_hart),
    );
    t.note(format_args!(
        "seed {}, {calls} calls on {nworkers} harts, {sh} on shared TVMs",
        p.seed
    ));
    cx.pool.reset(mark);
}
