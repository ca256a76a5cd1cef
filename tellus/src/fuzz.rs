//! Randomized COVH sequences (`fuzz` in bootargs, `seed=N`, `iters=N`).
//!
//! A pool of host pages is driven through random convert / fence /
//! reclaim / create / add / finalize / run / destroy calls, valid ones and
//! ones with exactly one defect (whose error code the contract fixes) or
//! garbage (any error will do). A shadow model tracks every pool page's
//! owner; after each step a few pool pages are probed: host pages must be
//! readable and writable, every other page must fault. At the end every
//! TVM is destroyed and every page reclaimed, and the whole pool must be
//! host memory again. Salus panicking ends QEMU with `salus: fatal`, which
//! the harness catches.
//!
//! Prints `tellus: fuzz seed N: K calls, E errors as expected`.

use sbi_abi::SbiRet;

use crate::platform::Platform;
use crate::tee::tests::{write_params, Ctx, CENSUS};
use crate::tee::*;
use crate::tests::T;

const POOL_PAGES: usize = 192;
const MAX_TVMS: usize = 4;
const REGION: u64 = 0x8000_0000;
const REGION_PAGES: u64 = 64;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Pg {
    Host,
    Converting,
    Unassigned,
    /// TSM-owned for TVM slot i (state, page directory, vCPU, PT pages).
    Tsm(u8),
    /// Mapped into TVM slot i.
    Tvm(u8),
}

#[derive(Clone, Copy)]
struct Tvm {
    id: u64,
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
enum Want {
    Ok,
    Err(i64),
    AnyErr,
    /// Success, or OUT_OF_PTPAGES with nothing changed.
    OkOrPt,
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }
    fn chance(&mut self, pct: u64) -> bool {
        self.below(100) < pct
    }
}

struct Fuzz<'a> {
    p: &'a Platform,
    live: [bool; crate::platform::MAX_HARTS],
    base: u64,
    pg: [Pg; POOL_PAGES],
    tvms: [Option<Tvm>; MAX_TVMS],
    dead: [u64; 8],
    ndead: usize,
    params: u64,
    src: u64,
    rng: Rng,
    calls: u64,
    errors_expected: u64,
    mismatches: u64,
    seen_ids: u64,
}

impl Fuzz<'_> {
    fn addr(&self, i: usize) -> u64 {
        self.base + i as u64 * PAGE
    }

    fn all(&self, i: usize, n: usize, st: Pg) -> bool {
        i + n <= POOL_PAGES && self.pg[i..i + n].iter().all(|&s| s == st)
    }

    fn set(&mut self, i: usize, n: usize, st: Pg) {
        for s in &mut self.pg[i..i + n] {
            *s = st;
        }
    }

    /// Finds `n` consecutive pages in state `st`, `align` pages aligned.
    fn find(&mut self, n: usize, st: Pg, align: usize) -> Option<usize> {
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

    fn expect(&mut self, t: &mut T, what: &str, r: SbiRet, want: Want) -> bool {
        self.calls += 1;
        let ok = match want {
            Want::Ok => r.error == OK,
            Want::Err(e) => r.error == e,
            Want::AnyErr => r.error != OK,
            Want::OkOrPt => r.error == OK || r.error == ERR_OUT_OF_PTPAGES,
        };
        if ok && r.error != OK {
            self.errors_expected += 1;
        }
        if !ok {
            self.mismatches += 1;
            if self.mismatches <= 8 {
                t.check(
                    false,
                    format_args!(
                        "call {}: {what}: error {} (want {:?})",
                        self.calls, r.error, want
                    ),
                );
            }
        }
        ok && r.error == OK
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
            _ => 0x10_0000 + self.rng.below(1000),
        }
    }

    // ---- operations ----

    fn op_convert(&mut self, t: &mut T) {
        let n = 1 + self.rng.below(8) as usize;
        let i = self.rng.below((POOL_PAGES - n) as u64) as usize;
        let a = self.addr(i);
        match self.rng.below(10) {
            0 => {
                let r = convert_pages(a + 8 * (1 + self.rng.below(511)), n as u64);
                self.expect(
                    t,
                    "convert_pages(unaligned)",
                    r,
                    Want::Err(ERR_INVALID_ADDRESS),
                );
            }
            1 => {
                let r = convert_pages(a, 0);
                self.expect(t, "convert_pages(n 0)", r, Want::Err(ERR_INVALID_PARAM));
            }
            2 => {
                let huge = [
                    u64::MAX,
                    u64::MAX / PAGE,
                    1 << 52,
                    (u64::MAX - a) / PAGE + 1,
                ];
                let r = convert_pages(a, huge[self.rng.below(4) as usize]);
                self.expect(t, "convert_pages(overflowing n)", r, Want::AnyErr);
            }
            _ => {
                let want = if self.all(i, n, Pg::Host) {
                    Want::Ok
                } else {
                    Want::Err(ERR_INVALID_ADDRESS)
                };
                if self.expect(t, "convert_pages", convert_pages(a, n as u64), want) {
                    self.set(i, n, Pg::Converting);
                }
            }
        }
    }

    fn op_fence(&mut self, t: &mut T) {
        let r = global_fence();
        if !self.expect(t, "global_fence", r, Want::Ok) {
            return;
        }
        if self.live.iter().any(|&l| l) {
            if self.rng.chance(30) {
                let r = global_fence();
                self.expect(
                    t,
                    "global_fence in flight",
                    r,
                    Want::Err(ERR_ALREADY_STARTED),
                );
            }
            self.calls += self.live.iter().filter(|&&l| l).count() as u64;
            if let Err((w, e)) = local_fences(self.p, &self.live) {
                self.mismatches += 1;
                t.check(false, format_args!("{w}: error {e}"));
                return;
            }
        }
        for s in self.pg.iter_mut() {
            if *s == Pg::Converting {
                *s = Pg::Unassigned;
            }
        }
    }

    fn op_reclaim(&mut self, t: &mut T) {
        let n = 1 + self.rng.below(8) as usize;
        let i = self.rng.below((POOL_PAGES - n) as u64) as usize;
        let a = self.addr(i);
        if self.rng.chance(10) {
            let r = reclaim_pages(a, 0);
            self.expect(t, "reclaim_pages(n 0)", r, Want::Err(ERR_INVALID_PARAM));
            return;
        }
        let want = if self.all(i, n, Pg::Unassigned) {
            Want::Ok
        } else {
            Want::Err(ERR_INVALID_ADDRESS)
        };
        if self.expect(t, "reclaim_pages", reclaim_pages(a, n as u64), want) {
            self.set(i, n, Pg::Host);
            for k in 0..n {
                let pa = self.addr(i + k);
                if rd(pa) != 0 || rd(pa + PAGE - 8) != 0 {
                    self.mismatches += 1;
                    t.check(false, format_args!("reclaimed page {pa:#x} not zero"));
                }
            }
        }
    }

    fn op_create(&mut self, t: &mut T, info: &cove_abi::TsmInfo) {
        let Some(slot) = self.tvms.iter().position(|t| t.is_none()) else {
            return;
        };
        let sp = info.tvm_state_pages.max(1) as usize;
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
            self.expect(t, "create_tvm(defect)", r, Want::AnyErr);
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
        if !self.expect(t, "create_tvm", r, Want::Ok) {
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
        self.expect(t, "add_tvm_memory_region", r, Want::Ok);
    }

    fn op_add_pt(&mut self, t: &mut T) {
        let Some(s) = self.tvm_slot() else { return };
        let id = self.tvms[s].unwrap().id;
        if self.rng.chance(15) {
            let bad = self.bad_id();
            let r = add_pt_pages(bad, self.base, 1);
            self.expect(
                t,
                "add_tvm_page_table_pages(bad id)",
                r,
                Want::Err(ERR_INVALID_PARAM),
            );
            return;
        }
        let n = 1 + self.rng.below(3) as usize;
        let i = self.rng.below((POOL_PAGES - n) as u64) as usize;
        let want = if self.all(i, n, Pg::Unassigned) {
            Want::Ok
        } else {
            Want::Err(ERR_INVALID_ADDRESS)
        };
        if self.expect(
            t,
            "add_tvm_page_table_pages",
            add_pt_pages(id, self.addr(i), n as u64),
            want,
        ) {
            self.set(i, n, Pg::Tsm(s as u8));
            self.tvms[s].as_mut().unwrap().pt += n as u64;
        }
    }

    fn op_map(&mut self, t: &mut T, zero: bool) {
        let Some(s) = self.tvm_slot() else { return };
        let tv = self.tvms[s].unwrap();
        let gp = self.rng.below(REGION_PAGES + 2);
        let gpa = REGION + gp * PAGE;
        let i = self.rng.below(POOL_PAGES as u64) as usize;
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
        if self.expect(t, what, r, want) {
            self.pg[i] = Pg::Tvm(s as u8);
            self.tvms[s].as_mut().unwrap().mapped |= 1 << gp;
        }
    }

    fn op_vcpu(&mut self, t: &mut T, info: &cove_abi::TsmInfo) {
        let Some(s) = self.tvm_slot() else { return };
        let tv = self.tvms[s].unwrap();
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
            t,
            "create_tvm_vcpu",
            create_vcpu(tv.id, vid, self.addr(i)),
            want,
        ) {
            self.set(i, vp, Pg::Tsm(s as u8));
            self.tvms[s].as_mut().unwrap().vcpus |= 1 << vid;
        }
    }

    fn op_finalize(&mut self, t: &mut T) {
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
        if self.expect(t, "finalize_tvm", finalize_tvm(tv.id, REGION, 0, 0), want) {
            self.tvms[s].as_mut().unwrap().finalized = true;
        }
    }

    fn op_run(&mut self, t: &mut T) {
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
            self.calls += 1;
        }
        if self.expect(t, "run_tvm_vcpu", x.into_ret(), want) && x.value != 0 {
            self.tvms[s].as_mut().unwrap().stuck = true;
        }
    }

    fn op_destroy(&mut self, t: &mut T) {
        let Some(s) = self.tvm_slot() else { return };
        let tv = self.tvms[s].unwrap();
        if self.expect(t, "destroy_tvm", destroy_tvm(tv.id), Want::Ok) {
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

    fn op_bad_id(&mut self, t: &mut T) {
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
            t,
            "call with an invalid TVM id",
            r,
            Want::Err(ERR_INVALID_PARAM),
        );
    }

    /// Probes a few pool pages against the model.
    fn probe(&mut self, t: &mut T) {
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
                self.mismatches += 1;
                if self.mismatches <= 8 {
                    t.check(
                        false,
                        format_args!(
                            "after call {}: page {:#x} ({:?}) {}",
                            self.calls,
                            self.addr(i),
                            self.pg[i],
                            if host {
                                "not accessible"
                            } else {
                                "readable by the host"
                            }
                        ),
                    );
                }
            }
        }
    }
}

pub fn test_fuzz(t: &mut T, p: &Platform, cx: &mut Ctx) {
    let mark = cx.pool.mark();
    let base = cx.pool.alloc(POOL_PAGES as u64 * PAGE, 16 * PAGE).unwrap();
    let params = cx.pool.alloc(PAGE, PAGE).unwrap();
    let src = cx.pool.alloc(PAGE, PAGE).unwrap();
    // `ld a0, 0(zero); j .-4`: the guest faults at once.
    wr(src, 0xffdf_f06f_0000_3503);
    let info = cx.info;
    let mut f = Fuzz {
        p,
        live: cx.live,
        base,
        pg: [Pg::Host; POOL_PAGES],
        tvms: [None; MAX_TVMS],
        dead: [0; 8],
        ndead: 0,
        params,
        src,
        rng: Rng(p.seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1),
        calls: 0,
        errors_expected: 0,
        mismatches: 0,
        seen_ids: 0,
    };
    CENSUS.lock().add(base, POOL_PAGES as u64);
    let _ = nacl_setup_here(boot_slot(p), true);
    let iters = p.fuzz_iters;
    let mut step = 0;
    while f.calls < iters && step < iters * 4 {
        step += 1;
        match f.rng.below(100) {
            0..=17 => f.op_convert(t),
            18..=27 => f.op_fence(t),
            28..=37 => f.op_reclaim(t),
            38..=45 => f.op_create(t, &info),
            46..=53 => f.op_add_pt(t),
            54..=65 => f.op_map(t, false),
            66..=71 => f.op_map(t, true),
            72..=78 => f.op_vcpu(t, &info),
            79..=83 => f.op_finalize(t),
            84..=87 => f.op_run(t),
            88..=92 => f.op_destroy(t),
            _ => f.op_bad_id(t),
        }
        f.probe(t);
        if f.mismatches > 50 {
            break;
        }
    }
    // Tear down: destroy, fence, reclaim everything; the pool is the host's.
    for s in 0..MAX_TVMS {
        if let Some(tv) = f.tvms[s] {
            if f.expect(t, "destroy_tvm (teardown)", destroy_tvm(tv.id), Want::Ok) {
                for pg in f.pg.iter_mut() {
                    if *pg == Pg::Tsm(s as u8) || *pg == Pg::Tvm(s as u8) {
                        *pg = Pg::Unassigned;
                    }
                }
            }
            f.tvms[s] = None;
        }
    }
    if f.pg.contains(&Pg::Converting) {
        f.op_fence(t);
    }
    for i in 0..POOL_PAGES {
        if f.pg[i] == Pg::Unassigned {
            let r = reclaim_pages(f.addr(i), 1);
            if f.expect(t, "reclaim_pages (teardown)", r, Want::Ok) {
                f.pg[i] = Pg::Host;
            }
        }
    }
    let mut lost = 0;
    for i in 0..POOL_PAGES {
        if !host_page_ok(f.addr(i)) {
            lost += 1;
        }
    }
    t.check(
        lost == 0,
        format_args!("{lost} pool page(s) not host memory after teardown"),
    );
    t.check(
        f.mismatches == 0,
        format_args!("{} call(s) did not behave as expected", f.mismatches),
    );
    println!(
        "tellus: fuzz seed {}: {} calls, {} errors as expected, {} TVMs created, {} mismatches",
        p.seed, f.calls, f.errors_expected, f.seen_ids, f.mismatches
    );
    t.note(format_args!("seed {}, {} calls", p.seed, f.calls));
    cx.pool.reset(mark);
}
