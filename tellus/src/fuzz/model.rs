//! One hart's fuzzer: its private pages and TVMs with an exact model of
//! what every call must return (as the single-hart fuzzer always had), plus
//! the few places where other harts make the answer uncertain:
//!
//! - conversion completes when *some* hart's global_fence batch has been
//!   fenced by every hart, so a page this hart converted is `Converting`
//!   (maybe done) until its own global_fence succeeds and every other hart
//!   has called local_fence since (`Fencing`, then `Unassigned`); a call
//!   on uncertain pages may return OK or INVALID_ADDRESS and teaches the
//!   model which;
//! - pages lent to a shared TVM come back when that TVM is destroyed by
//!   whichever hart wins the race (`Lent`, resolved by the slot generation).

use core::sync::atomic::Ordering::*;

use sbi_abi::SbiRet;

use super::{shared, Cfg, CALLS, LAST_OP, LOCAL_FENCES};
use crate::platform::{Platform, MAX_HARTS};
use crate::tee::ctx::write_params;
use crate::tee::*;

pub const POOL_PAGES: usize = 192;
pub const MAX_TVMS: usize = 4;
pub const REGION: u64 = 0x8000_0000;
pub const REGION_PAGES: u64 = 64;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Pg {
    Host,
    /// Converted; the fence that completes it may or may not be done.
    Converting,
    /// Converted before a global_fence of ours that returned OK: done once
    /// every other hart has called local_fence since.
    Fencing,
    Unassigned,
    /// TSM-owned for TVM slot i (state, page directory, vCPU, PT pages).
    Tsm(u8),
    /// Mapped into TVM slot i.
    Tvm(u8),
    /// Given to shared TVM slot s in its generation g.
    Lent(u8, u32),
    /// Taken by a call that should have failed: never touched again.
    Lost,
}

#[derive(Clone, Copy)]
pub struct Tvm {
    pub id: u64,
    finalized: bool,
    vcpus: u64,
    /// Pages of REGION that are mapped.
    mapped: u64,
    /// PT pages donated beyond the initial ones.
    pt: u64,
    /// vCPU 0 exited as not resumable.
    stuck: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Want {
    Ok,
    Err(i64),
    AnyErr,
    /// Success, or OUT_OF_PTPAGES with nothing changed.
    OkOrPt,
    /// Any of these codes (a race decides which).
    OneOf(&'static [i64]),
}

/// The operations, for the watchdog's "last call" report.
#[derive(Clone, Copy)]
#[repr(u64)]
pub enum Op {
    Convert,
    Fence,
    Reclaim,
    Create,
    AddPt,
    Map,
    Vcpu,
    Finalize,
    Run,
    Destroy,
    TvmFence,
    BadId,
    Nacl,
    SharedRun,
    SharedFence,
    SharedDestroy,
    SharedNeg,
    SharedLend,
    Teardown,
}

pub const OP_NAMES: &[&str] = &[
    "convert_pages",
    "global/local_fence",
    "reclaim_pages",
    "create_tvm",
    "add_tvm_page_table_pages",
    "add_tvm_measured/zero_pages",
    "create_tvm_vcpu",
    "finalize_tvm",
    "run_tvm_vcpu",
    "destroy_tvm",
    "tvm_fence",
    "call with an invalid TVM id",
    "nacl set_shmem",
    "run_tvm_vcpu (shared)",
    "tvm_fence (shared)",
    "destroy_tvm (shared)",
    "add/finalize on a shared TVM",
    "lend pages to a shared TVM",
    "teardown",
];

pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        // xorshift64*
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }
    pub fn chance(&mut self, pct: u64) -> bool {
        self.below(100) < pct
    }
}

pub struct Model {
    pub hart: usize,
    pub cfg: Cfg,
    pub p: &'static Platform,
    pub base: u64,
    pub pg: [Pg; POOL_PAGES],
    pub tvms: [Option<Tvm>; MAX_TVMS],
    dead: [u64; 8],
    ndead: usize,
    pub params: u64,
    /// Code of the private TVMs: faults at once (not resumable).
    src: u64,
    pub rng: Rng,
    pub calls: u64,
    pub errors_expected: u64,
    pub mismatches: u64,
    pub seen_ids: u64,
    pub shared_calls: u64,
    /// LOCAL_FENCES when our last successful global_fence returned.
    fence_snap: Option<[u64; MAX_HARTS]>,
}

impl Model {
    pub fn new(
        hart: usize,
        cfg: Cfg,
        p: &'static Platform,
        base: u64,
        params: u64,
        src: u64,
    ) -> Model {
        Model {
            hart,
            cfg,
            p,
            base,
            pg: [Pg::Host; POOL_PAGES],
            tvms: [None; MAX_TVMS],
            dead: [0; 8],
            ndead: 0,
            params,
            src,
            // Per-hart stream: same seed and hart give the same sequence.
            rng: Rng((p.seed ^ (hart as u64).wrapping_mul(0xd1b5_4a32_d192_ed03))
                .wrapping_mul(0x9e37_79b9_7f4a_7c15)
                | 1),
            calls: 0,
            errors_expected: 0,
            mismatches: 0,
            seen_ids: 0,
            shared_calls: 0,
            fence_snap: None,
        }
    }

    pub fn addr(&self, i: usize) -> u64 {
        self.base + i as u64 * PAGE
    }

    fn all(&self, i: usize, n: usize, st: Pg) -> bool {
        i + n <= POOL_PAGES && self.pg[i..i + n].iter().all(|&s| s == st)
    }

    pub fn set(&mut self, i: usize, n: usize, st: Pg) {
        for s in &mut self.pg[i..i + n] {
            *s = st;
        }
    }

    /// Finds `n` consecutive pages in state `st`, `align` pages aligned.
    pub fn find(&mut self, n: usize, st: Pg, align: usize) -> Option<usize> {
        let starts = POOL_PAGES / align;
        let off = self.rng.below(starts as u64) as usize;
        for k in 0..starts {
            let i = ((off + k) % starts) * align;
            if self.all(i, n, st) {
                return Some(i);
            }
        }
        None
    }

    /// What a call needing `[i, i+n)` to be converted pages may return.
    fn converted_want(&self, i: usize, n: usize) -> Want {
        let r = &self.pg[i..i + n];
        if r.iter().all(|&s| s == Pg::Unassigned) {
            Want::Ok
        } else if r.iter().all(|&s| {
            // Lent: the shared TVM may already be destroyed by another
            // hart that has not published its new generation yet.
            matches!(
                s,
                Pg::Unassigned | Pg::Converting | Pg::Fencing | Pg::Lent(..)
            )
        }) {
            Want::OneOf(&[OK, ERR_INVALID_ADDRESS])
        } else {
            Want::Err(ERR_INVALID_ADDRESS)
        }
    }

    pub fn op(&self, op: Op) {
        LAST_OP[self.hart].store(op as u64, Relaxed);
    }

    pub fn expect(&mut self, what: &str, r: SbiRet, want: Want) -> bool {
        self.calls += 1;
        CALLS[self.hart].store(self.calls, Release);
        let ok = match want {
            Want::Ok => r.error == OK,
            Want::Err(e) => r.error == e,
            Want::AnyErr => r.error != OK,
            Want::OkOrPt => r.error == OK || r.error == ERR_OUT_OF_PTPAGES,
            Want::OneOf(codes) => codes.contains(&r.error),
        };
        if ok && r.error != OK {
            self.errors_expected += 1;
        }
        if !ok {
            let n = self.calls;
            self.mismatch(format_args!(
                "call {n}: {what}: error {} (want {:?})",
                r.error, want
            ));
        }
        ok && r.error == OK
    }

    pub fn mismatch(&mut self, args: core::fmt::Arguments) {
        self.mismatches += 1;
        if self.mismatches <= 8 {
            println!("tellus: fuzz hart {}: MISMATCH {}", self.hart, args);
        }
    }

    pub fn count(&mut self, n: u64) {
        self.calls += n;
        CALLS[self.hart].store(self.calls, Release);
    }

    fn tvm_slot(&mut self) -> Option<usize> {
        let n = self.tvms.iter().filter(|t| t.is_some()).count();
        if n == 0 {
            return None;
        }
        let k = self.rng.below(n as u64) as usize;
        self.tvms
            .iter()
            .enumerate()
            .filter(|(_, t)| t.is_some())
            .nth(k)
            .map(|(i, _)| i)
    }

    fn bad_id(&mut self) -> u64 {
        match self.rng.below(4) {
            0 => 0,
            1 => u64::MAX,
            2 if self.ndead > 0 => self.dead[self.rng.below(self.ndead as u64) as usize],
            // Salus ids fit in 32 bits: these never name a live TVM.
            _ => (1 << 40) + self.rng.below(1000),
        }
    }

    /// Settles what other harts' progress decided: our fence batch is done
    /// once every other worker has called local_fence twice since (the
    /// first may have started before our global_fence), and lent pages are
    /// back once their shared TVM's generation moved on.
    pub fn resolve(&mut self) {
        if let Some(snap) = self.fence_snap {
            let done = (0..MAX_HARTS).all(|h| {
                h == self.hart
                    || !self.cfg.workers[h]
                    || LOCAL_FENCES[h].load(Acquire) >= snap[h] + 2
            });
            if done {
                self.settle_fencing();
                self.fence_snap = None;
            }
        }
        let gens = shared::generations();
        for s in self.pg.iter_mut() {
            if let Pg::Lent(slot, g) = *s {
                if gens[slot as usize] > g {
                    *s = Pg::Unassigned;
                }
            }
        }
    }

    fn settle_fencing(&mut self) {
        for s in self.pg.iter_mut() {
            if *s == Pg::Fencing {
                *s = Pg::Unassigned;
            }
        }
    }

    // ---- operations ----

    pub fn op_convert(&mut self) {
        self.op(Op::Convert);
        let n = 1 + self.rng.below(8) as usize;
        let i = self.rng.below((POOL_PAGES - n) as u64) as usize;
        let a = self.addr(i);
        match self.rng.below(10) {
            0 => {
                let r = convert_pages(a + 8 * (1 + self.rng.below(511)), n as u64);
                self.expect(
                    "convert_pages(unaligned)",
                    r,
                    Want::Err(ERR_INVALID_ADDRESS),
                );
            }
            1 => {
                let r = convert_pages(a, 0);
                self.expect("convert_pages(n 0)", r, Want::Err(ERR_INVALID_PARAM));
            }
            2 => {
                let huge = [
                    u64::MAX,
                    u64::MAX / PAGE,
                    1 << 52,
                    (u64::MAX - a) / PAGE + 1,
                ];
                let r = convert_pages(a, huge[self.rng.below(4) as usize]);
                self.expect("convert_pages(overflowing n)", r, Want::AnyErr);
            }
            _ => {
                let want = if self.all(i, n, Pg::Host) {
                    Want::Ok
                } else {
                    Want::Err(ERR_INVALID_ADDRESS)
                };
                if self.expect("convert_pages", convert_pages(a, n as u64), want) {
                    self.set(i, n, Pg::Converting);
                }
            }
        }
    }

    pub fn local_fence_counted(&mut self) {
        let r = local_fence();
        if self.expect("local_fence", r, Want::Ok) {
            LOCAL_FENCES[self.hart].fetch_add(1, AcqRel);
        }
    }

    pub fn op_fence(&mut self) {
        self.op(Op::Fence);
        if self.cfg.solo {
            return self.fence_solo();
        }
        // Another hart's fence may be in flight; ours starts only if not.
        let r = global_fence();
        if self.expect("global_fence", r, Want::OneOf(&[OK, ERR_ALREADY_STARTED])) {
            // No fence was in flight, so every earlier batch (our previous
            // one included) is complete; what we converted since is ours.
            self.settle_fencing();
            for s in self.pg.iter_mut() {
                if *s == Pg::Converting {
                    *s = Pg::Fencing;
                }
            }
            let mut snap = [0; MAX_HARTS];
            for (h, s) in snap.iter_mut().enumerate() {
                *s = LOCAL_FENCES[h].load(Acquire);
            }
            self.fence_snap = Some(snap);
        }
        self.local_fence_counted();
    }

    /// The single-hart fence: exact, secondaries fence on our command.
    fn fence_solo(&mut self) {
        let r = global_fence();
        if !self.expect("global_fence", r, Want::Ok) {
            return;
        }
        let live = self.cfg.live;
        if live.iter().any(|&l| l) {
            if self.rng.chance(30) {
                let r = global_fence();
                self.expect("global_fence in flight", r, Want::Err(ERR_ALREADY_STARTED));
            }
            self.count(live.iter().filter(|&&l| l).count() as u64);
            if let Err((w, e)) = local_fences(self.p, &live) {
                self.mismatch(format_args!("{w}: error {e}"));
                return;
            }
        }
        for s in self.pg.iter_mut() {
            if matches!(*s, Pg::Converting | Pg::Fencing) {
                *s = Pg::Unassigned;
            }
        }
    }

    pub fn op_reclaim(&mut self) {
        self.op(Op::Reclaim);
        let n = 1 + self.rng.below(8) as usize;
        let i = self.rng.below((POOL_PAGES - n) as u64) as usize;
        let a = self.addr(i);
        if self.rng.chance(10) {
            let r = reclaim_pages(a, 0);
            self.expect("reclaim_pages(n 0)", r, Want::Err(ERR_INVALID_PARAM));
            return;
        }
        let want = self.converted_want(i, n);
        if self.expect("reclaim_pages", reclaim_pages(a, n as u64), want) {
            self.set(i, n, Pg::Host);
            for k in 0..n {
                let pa = self.addr(i + k);
                if rd(pa) != 0 || rd(pa + PAGE - 8) != 0 {
                    self.mismatch(format_args!("reclaimed page {pa:#x} not zero"));
                }
            }
        }
    }

    pub fn op_create(&mut self) {
        self.op(Op::Create);
        let Some(slot) = self.tvms.iter().position(|t| t.is_none()) else {
            return;
        };
        let sp = self.cfg.info.tvm_state_pages.max(1) as usize;
        if self.rng.chance(15) {
            // One defect.
            let r = match self.rng.below(3) {
                0 => create_tvm(self.params, self.rng.below(16)),
                1 => create_tvm(self.params + 1 + self.rng.below(7), 16),
                _ => {
                    let pd = self
                        .find(4, Pg::Host, 4)
                        .map(|i| self.addr(i))
                        .unwrap_or(self.params);
                    let st = self
                        .find(sp, Pg::Unassigned, 1)
                        .map(|i| self.addr(i))
                        .unwrap_or(self.params);
                    write_params(self.params, pd, st);
                    create_tvm(self.params, 16)
                }
            };
            self.expect("create_tvm(defect)", r, Want::AnyErr);
            return;
        }
        let Some(pd) = self.find(4, Pg::Unassigned, 4) else {
            return;
        };
        self.set(pd, 4, Pg::Tsm(slot as u8));
        let st = self.find(sp, Pg::Unassigned, 1);
        self.set(pd, 4, Pg::Unassigned);
        let Some(st) = st else {
            return;
        };
        write_params(self.params, self.addr(pd), self.addr(st));
        let r = create_tvm(self.params, 16);
        if !self.expect("create_tvm", r, Want::Ok) {
            return;
        }
        self.set(pd, 4, Pg::Tsm(slot as u8));
        self.set(st, sp, Pg::Tsm(slot as u8));
        self.seen_ids += 1;
        let id = r.value;
        self.tvms[slot] = Some(Tvm {
            id,
            finalized: false,
            vcpus: 0,
            mapped: 0,
            pt: 0,
            stuck: false,
        });
        let r = add_memory_region(id, REGION, REGION_PAGES * PAGE);
        self.expect("add_tvm_memory_region", r, Want::Ok);
    }

    pub fn op_add_pt(&mut self) {
        self.op(Op::AddPt);
        let Some(s) = self.tvm_slot() else { return };
        let id = self.tvms[s].unwrap().id;
        if self.rng.chance(15) {
            let bad = self.bad_id();
            let r = add_pt_pages(bad, self.base, 1);
            self.expect(
                "add_tvm_page_table_pages(bad id)",
                r,
                Want::Err(ERR_INVALID_PARAM),
            );
            return;
        }
        let n = 1 + self.rng.below(3) as usize;
        let i = self.rng.below((POOL_PAGES - n) as u64) as usize;
        let want = self.converted_want(i, n);
        if self.expect(
            "add_tvm_page_table_pages",
            add_pt_pages(id, self.addr(i), n as u64),
            want,
        ) {
            self.set(i, n, Pg::Tsm(s as u8));
            self.tvms[s].as_mut().unwrap().pt += n as u64;
        }
    }

    pub fn op_map(&mut self, zero: bool) {
        self.op(Op::Map);
        let Some(s) = self.tvm_slot() else { return };
        let tv = self.tvms[s].unwrap();
        let gp = self.rng.below(REGION_PAGES + 2);
        let gpa = REGION + gp * PAGE;
        let i = self.rng.below(POOL_PAGES as u64) as usize;
        if matches!(self.pg[i], Pg::Converting | Pg::Fencing | Pg::Lent(..)) {
            return; // uncertain page: the defect count would be too
        }
        let dest = self.addr(i);
        let mut defects = 0;
        let mut want = Want::OkOrPt;
        if zero != tv.finalized {
            defects += 1;
            want = Want::Err(ERR_INVALID_PARAM);
        }
        if self.pg[i] != Pg::Unassigned {
            defects += 1;
            want = Want::Err(ERR_INVALID_ADDRESS);
        }
        if gp >= REGION_PAGES || tv.mapped & (1 << gp) != 0 {
            defects += 1;
            want = Want::Err(ERR_INVALID_ADDRESS);
        }
        if defects > 1 || (zero && !tv.finalized) {
            // Several defects, or zero pages before finalize (no fixed code).
            want = Want::AnyErr;
        }
        let r = if zero {
            add_zero_pages(tv.id, dest, 0, 1, gpa)
        } else {
            add_measured_pages(tv.id, self.src, dest, 0, 1, gpa)
        };
        let what = if zero {
            "add_tvm_zero_pages"
        } else {
            "add_tvm_measured_pages"
        };
        if self.expect(what, r, want) {
            self.pg[i] = Pg::Tvm(s as u8);
            self.tvms[s].as_mut().unwrap().mapped |= 1 << gp;
        }
    }

    pub fn op_vcpu(&mut self) {
        self.op(Op::Vcpu);
        let Some(s) = self.tvm_slot() else { return };
        let tv = self.tvms[s].unwrap();
        let info = self.cfg.info;
        let vp = info.tvm_vcpu_state_pages.max(1) as usize;
        let vid = self.rng.below(info.tvm_max_vcpus.min(63) + 1);
        let Some(i) = self.find(vp, Pg::Unassigned, 1) else {
            return;
        };
        let mut want = Want::Ok;
        let bad_id = vid >= info.tvm_max_vcpus || tv.vcpus & (1 << vid) != 0;
        if tv.finalized || bad_id {
            want = Want::Err(ERR_INVALID_PARAM);
        }
        if self.expect(
            "create_tvm_vcpu",
            create_vcpu(tv.id, vid, self.addr(i)),
            want,
        ) {
            self.set(i, vp, Pg::Tsm(s as u8));
            self.tvms[s].as_mut().unwrap().vcpus |= 1 << vid;
        }
    }

    pub fn op_finalize(&mut self) {
        self.op(Op::Finalize);
        let Some(s) = self.tvm_slot() else { return };
        let tv = self.tvms[s].unwrap();
        if tv.vcpus & 1 == 0 && !tv.finalized {
            return; // no boot vCPU: the contract does not say what happens
        }
        let want = if tv.finalized {
            Want::Err(ERR_INVALID_PARAM)
        } else {
            Want::Ok
        };
        if self.expect("finalize_tvm", finalize_tvm(tv.id, REGION, 0, 0), want) {
            self.tvms[s].as_mut().unwrap().finalized = true;
        }
    }

    pub fn op_run(&mut self) {
        self.op(Op::Run);
        let Some(s) = self.tvm_slot() else { return };
        let tv = self.tvms[s].unwrap();
        let want = if tv.stuck {
            Want::AnyErr
        } else if tv.finalized && tv.vcpus & 1 != 0 {
            Want::Ok
        } else {
            Want::Err(ERR_INVALID_PARAM)
        };
        let mut x = run_vcpu(tv.id, 0);
        let mut n = 0;
        while x.error == OK && x.scause & crate::arch::SCAUSE_INTERRUPT != 0 && n < 100 {
            take_interrupts();
            x = run_vcpu(tv.id, 0);
            n += 1;
            self.count(1);
        }
        if self.expect("run_tvm_vcpu", x.into_ret(), want) && x.value != 0 {
            self.tvms[s].as_mut().unwrap().stuck = true;
        }
    }

    pub fn op_tvm_fence(&mut self) {
        self.op(Op::TvmFence);
        let Some(s) = self.tvm_slot() else { return };
        let id = self.tvms[s].unwrap().id;
        self.expect("tvm_fence", tvm_fence(id), Want::Ok);
    }

    /// Destroys private TVM slot `s`; its pages become converted.
    pub fn destroy_slot(&mut self, s: usize, what: &str) {
        let tv = self.tvms[s].unwrap();
        if self.expect(what, destroy_tvm(tv.id), Want::Ok) {
            for pg in self.pg.iter_mut() {
                if *pg == Pg::Tsm(s as u8) || *pg == Pg::Tvm(s as u8) {
                    *pg = Pg::Unassigned;
                }
            }
            self.tvms[s] = None;
            if self.ndead < self.dead.len() {
                self.dead[self.ndead] = tv.id;
                self.ndead += 1;
            } else {
                self.dead[self.rng.below(8) as usize] = tv.id;
            }
        }
    }

    pub fn op_destroy(&mut self) {
        self.op(Op::Destroy);
        let Some(s) = self.tvm_slot() else { return };
        self.destroy_slot(s, "destroy_tvm");
    }

    pub fn op_bad_id(&mut self) {
        self.op(Op::BadId);
        let id = self.bad_id();
        let r = match self.rng.below(6) {
            0 => destroy_tvm(id),
            1 => finalize_tvm(id, REGION, 0, 0),
            2 => run_vcpu(id, 0).into_ret(),
            3 => add_memory_region(id, REGION, PAGE),
            4 => create_vcpu(id, 0, self.base),
            _ => tvm_fence(id),
        };
        self.expect(
            "call with an invalid TVM id",
            r,
            Want::Err(ERR_INVALID_PARAM),
        );
    }

    /// NACL set_shmem with a bad area, then our own area again (which the
    /// runs on this hart need).
    pub fn op_nacl(&mut self) {
        self.op(Op::Nacl);
        let own = nacl_addr(self.hart);
        match self.rng.below(3) {
            0 => {
                let r = nacl_set_shmem(own + 8 * (1 + self.rng.below(511)), 0, 0);
                self.expect("nacl set_shmem(unaligned)", r, Want::AnyErr);
            }
            1 => {
                // A pool page the host does not own right now.
                let i = self.rng.below(POOL_PAGES as u64) as usize;
                if self.pg[i] == Pg::Host {
                    return;
                }
                let r = nacl_set_shmem(self.addr(i), 0, 0);
                self.expect("nacl set_shmem(not host memory)", r, Want::AnyErr);
            }
            _ => {}
        }
        let r = nacl_set_shmem(own, 0, 0);
        self.expect("nacl set_shmem", r, Want::Ok);
    }

    /// Probes a few pool pages against the model.
    pub fn probe(&mut self) {
        for _ in 0..3 {
            let i = self.rng.below(POOL_PAGES as u64) as usize;
            let a = self.addr(i) + 8 * self.rng.below(512);
            let host = self.pg[i] == Pg::Host;
            let ok = if host {
                host_page_ok(a)
            } else {
                try_read(a).is_err()
            };
            if !ok {
                let (st, n, pa) = (self.pg[i], self.calls, self.addr(i));
                self.mismatch(format_args!(
                    "after call {n}: page {pa:#x} ({st:?}) {}",
                    if host {
                        "not accessible"
                    } else {
                        "readable by the host"
                    }
                ));
            }
        }
    }

    /// One random step (private or shared).
    pub fn step(&mut self) {
        let fence = !self.cfg.nofence;
        match self.rng.below(100) {
            0..=15 => self.op_convert(),
            16..=24 => self.op_fence(),
            25..=33 => self.op_reclaim(),
            34..=40 => self.op_create(),
            41..=46 => self.op_add_pt(),
            47..=55 => self.op_map(false),
            56..=60 => self.op_map(true),
            61..=66 => self.op_vcpu(),
            67..=70 => self.op_finalize(),
            71..=73 => self.op_run(),
            74..=77 if fence => self.op_destroy(),
            78 if fence => self.op_tvm_fence(),
            79..=81 => self.op_bad_id(),
            82 => self.op_nacl(),
            83..=89 => self.sh_run(),
            90..=91 if fence => self.sh_fence(),
            92..=93 if fence => self.sh_destroy(),
            94..=95 => self.sh_neg(),
            96..=99 => self.sh_lend(),
            _ => self.op_convert(),
        }
        self.probe();
    }
}
