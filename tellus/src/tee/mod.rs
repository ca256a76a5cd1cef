//! tellus as a CoVE host: COVH/NACL wrappers, a page pool carved from free
//! RAM, hart helpers (local fences and TVM runs on secondaries), and the
//! host side of a TVM run (forwarded ecalls, demand-zero / shared / MMIO
//! faults) that drives guestvm.
//!
//! The tests live in `tests.rs` (lifecycle, guestvm, negative tests) and
//! `bench.rs`; the randomized mode in `crate::fuzz`.
// `Stop` carries a fixed-size message: tellus has no allocator.
#![allow(clippy::result_large_err)]

pub mod bench;
pub mod ctx;
pub mod tests;

#[path = "../../../guestvm/src/protocol.rs"]
pub mod proto;

use core::arch::asm;
use core::sync::atomic::{AtomicBool, Ordering::*};

use cove_abi::nacl;
use cove_abi::{CovhFunction, TsmInfo, EID_COVG, EID_COVH, EID_NACL};
use sbi_abi::{hsm::hart_state, SbiRet};

use crate::arch::{self, ecall};
use crate::harts::{self, SLOTS};
use crate::platform::{Platform, Range, MAX_HARTS};
use crate::{sbi, trap};

pub const PAGE: u64 = 4096;
pub const SIZE_2M: u64 = 2 << 20;

pub const OK: i64 = 0;
pub const ERR_FAILED: i64 = -1;
pub const ERR_NOT_SUPPORTED: i64 = -2;
pub const ERR_INVALID_PARAM: i64 = -3;
pub const ERR_INVALID_ADDRESS: i64 = -5;
pub const ERR_ALREADY_STARTED: i64 = -7;
pub const ERR_NO_SHMEM: i64 = -9;
pub const ERR_OUT_OF_PTPAGES: i64 = cove_abi::error::SBI_ERR_OUT_OF_PTPAGES;

/// The guestvm image tellus loads (see build.rs).
pub static GUESTVM: &[u8] = include_bytes!(env!("TELLUS_GUESTVM_BIN"));

// ---- COVH / NACL calls ------------------------------------------------------

/// A COVH call. Every argument that is an address names memory tellus owns
/// or memory the TSM must refuse (host RAM it gives away or does not own,
/// which tellus does not use afterwards until it is reclaimed).
pub fn covh(f: CovhFunction, args: [u64; 6]) -> SbiRet {
    // SAFETY: see above; the TSM writes only into buffers tellus passes for
    // that purpose (tsm_info) and never runs host code.
    unsafe { ecall(EID_COVH, f.fid(), args) }
}

/// A raw COVH call by FID (for invalid-FID tests).
pub fn covh_raw(fid: u64, args: [u64; 6]) -> SbiRet {
    // SAFETY: as for `covh`.
    unsafe { ecall(EID_COVH, fid, args) }
}

pub fn get_tsm_info(addr: u64, len: u64) -> SbiRet {
    covh(CovhFunction::GetTsmInfo, [addr, len, 0, 0, 0, 0])
}
pub fn convert_pages(base: u64, n: u64) -> SbiRet {
    covh(CovhFunction::ConvertPages, [base, n, 0, 0, 0, 0])
}
pub fn reclaim_pages(base: u64, n: u64) -> SbiRet {
    covh(CovhFunction::ReclaimPages, [base, n, 0, 0, 0, 0])
}
pub fn global_fence() -> SbiRet {
    covh(CovhFunction::GlobalFence, [0; 6])
}
pub fn local_fence() -> SbiRet {
    covh(CovhFunction::LocalFence, [0; 6])
}
pub fn create_tvm(params: u64, len: u64) -> SbiRet {
    covh(CovhFunction::CreateTvm, [params, len, 0, 0, 0, 0])
}
pub fn finalize_tvm(id: u64, sepc: u64, arg: u64, identity: u64) -> SbiRet {
    covh(CovhFunction::FinalizeTvm, [id, sepc, arg, identity, 0, 0])
}
pub fn destroy_tvm(id: u64) -> SbiRet {
    covh(CovhFunction::DestroyTvm, [id, 0, 0, 0, 0, 0])
}
pub fn add_memory_region(id: u64, gpa: u64, len: u64) -> SbiRet {
    covh(CovhFunction::AddTvmMemoryRegion, [id, gpa, len, 0, 0, 0])
}
pub fn add_pt_pages(id: u64, base: u64, n: u64) -> SbiRet {
    covh(CovhFunction::AddTvmPageTablePages, [id, base, n, 0, 0, 0])
}
pub fn add_measured_pages(id: u64, src: u64, dest: u64, ty: u64, n: u64, gpa: u64) -> SbiRet {
    covh(
        CovhFunction::AddTvmMeasuredPages,
        [id, src, dest, ty, n, gpa],
    )
}
pub fn add_zero_pages(id: u64, base: u64, ty: u64, n: u64, gpa: u64) -> SbiRet {
    covh(CovhFunction::AddTvmZeroPages, [id, base, ty, n, gpa, 0])
}
pub fn add_shared_pages(id: u64, base: u64, ty: u64, n: u64, gpa: u64) -> SbiRet {
    covh(CovhFunction::AddTvmSharedPages, [id, base, ty, n, gpa, 0])
}
pub fn create_vcpu(id: u64, vcpu: u64, state: u64) -> SbiRet {
    covh(CovhFunction::CreateTvmVcpu, [id, vcpu, state, 0, 0, 0])
}
pub fn tvm_fence(id: u64) -> SbiRet {
    covh(CovhFunction::TvmFence, [id, 0, 0, 0, 0, 0])
}
pub fn tvm_invalidate(id: u64, gpa: u64, len: u64) -> SbiRet {
    covh(CovhFunction::TvmInvalidatePages, [id, gpa, len, 0, 0, 0])
}
pub fn tvm_validate(id: u64, gpa: u64, len: u64) -> SbiRet {
    covh(CovhFunction::TvmValidatePages, [id, gpa, len, 0, 0, 0])
}
pub fn tvm_remove(id: u64, gpa: u64, len: u64) -> SbiRet {
    covh(CovhFunction::TvmRemovePages, [id, gpa, len, 0, 0, 0])
}

pub fn nacl_set_shmem(lo: u64, hi: u64, flags: u64) -> SbiRet {
    // SAFETY: the TSM uses the buffer as NACL shared memory; tellus passes
    // its own per-hart 12 KiB buffer (or a value the TSM must refuse).
    unsafe { ecall(EID_NACL, 1, [lo, hi, flags, 0, 0, 0]) }
}

/// Result of `run_tvm_vcpu` plus the exit cause from the host's CSRs.
#[derive(Clone, Copy, Debug, Default)]
pub struct Exit {
    pub error: i64,
    pub value: u64,
    pub scause: u64,
    pub stval: u64,
}

/// `run_tvm_vcpu`, reading `scause`/`stval` right after the ecall with
/// interrupts masked so no trap can overwrite them. Restores SIE.
pub fn run_vcpu(id: u64, vcpu: u64) -> Exit {
    let error: i64;
    let value: u64;
    let scause: u64;
    let stval: u64;
    let sstatus: u64;
    // SAFETY: run_tvm_vcpu returns like any ecall (only a0/a1 change); the
    // TSM writes the NACL area tellus registered on this hart.
    unsafe {
        asm!(
            "csrrci {ss}, sstatus, 2",
            "ecall",
            "csrr {sc}, scause",
            "csrr {tv}, stval",
            ss = out(reg) sstatus,
            sc = out(reg) scause,
            tv = out(reg) stval,
            inlateout("a0") id => error,
            inlateout("a1") vcpu => value,
            in("a6") CovhFunction::RunTvmVcpu.fid(),
            in("a7") EID_COVH,
            options(nostack),
        );
    }
    if sstatus & 2 != 0 {
        arch::interrupts_enable();
    }
    Exit {
        error,
        value,
        scause,
        stval,
    }
}

/// COVH present and the TSM READY? Returns the info.
pub fn probe(info_buf: &mut Info) -> Option<TsmInfo> {
    let r = sbi::probe(EID_COVH);
    if r.error != OK || r.value == 0 {
        return None;
    }
    let r = get_tsm_info(info_buf.0.as_mut_ptr() as u64, 48);
    if r.error != OK {
        return None;
    }
    let info = TsmInfo::from_bytes(&info_buf.0)?;
    (info.state() == Some(cove_abi::TsmState::Ready)).then_some(info)
}

#[repr(C, align(64))]
pub struct Info(pub [u8; 64]);

// ---- NACL shared memory, one per hart ---------------------------------------

#[repr(C, align(4096))]
struct NaclArea([u8; nacl::SHMEM_SIZE]);

static mut NACL: [NaclArea; MAX_HARTS] = [const { NaclArea([0; nacl::SHMEM_SIZE]) }; MAX_HARTS];
static NACL_SET: [AtomicBool; MAX_HARTS] = [const { AtomicBool::new(false) }; MAX_HARTS];

pub fn nacl_addr(slot: usize) -> u64 {
    // SAFETY: only the address is taken.
    unsafe { (&raw mut NACL[slot]) as u64 }
}

pub fn nacl_gpr(slot: usize, reg: usize) -> u64 {
    let a = nacl_addr(slot) + nacl::gpr_offset(reg).unwrap() as u64;
    // SAFETY: inside tellus's own NACL area.
    unsafe { core::ptr::read_volatile(a as *const u64) }
}

pub fn nacl_set_gpr(slot: usize, reg: usize, v: u64) {
    let a = nacl_addr(slot) + nacl::gpr_offset(reg).unwrap() as u64;
    // SAFETY: inside tellus's own NACL area.
    unsafe { core::ptr::write_volatile(a as *mut u64, v) }
}

pub fn nacl_csr(slot: usize, csr: u16) -> u64 {
    let a = nacl_addr(slot) + nacl::csr_offset(csr).unwrap() as u64;
    // SAFETY: inside tellus's own NACL area.
    unsafe { core::ptr::read_volatile(a as *const u64) }
}

/// Registers this hart's NACL area (once per hart, or again with `force`).
pub fn nacl_setup_here(slot: usize, force: bool) -> i64 {
    if NACL_SET[slot].load(Acquire) && !force {
        return OK;
    }
    let r = nacl_set_shmem(nacl_addr(slot), 0, 0);
    if r.error == OK {
        NACL_SET[slot].store(true, Release);
    }
    r.error
}

/// Forgets every registration (after a hart was stopped and restarted).
pub fn nacl_forget(slot: usize) {
    NACL_SET[slot].store(false, Release);
}

// ---- harts ------------------------------------------------------------------

pub fn boot_slot(p: &Platform) -> usize {
    p.slot_of(p.boot_hartid).unwrap_or(0)
}

/// Makes sure every secondary is started and serving commands (starting
/// stopped ones). Returns a mask of the serving ones.
pub fn live_secondaries(p: &Platform) -> [bool; MAX_HARTS] {
    let mut live = [false; MAX_HARTS];
    for (i, &h) in p.hart_ids().iter().enumerate() {
        if h == p.boot_hartid {
            continue;
        }
        let st = sbi::hart_get_status(h);
        if st.error == OK && st.value == hart_state::STOPPED as u64 {
            let slot = &SLOTS[i];
            let before = slot.boot_count.load(Acquire);
            if harts::start(p, i).error == OK {
                harts::wait_for(p.ms(500), || slot.boot_count.load(Acquire) != before);
            }
            nacl_forget(i);
        }
        let seq = harts::post(&SLOTS[i], h, harts::CMD_PING);
        live[i] = harts::wait_ack(&SLOTS[i], seq, p.ms(500)) == Some(0);
    }
    live
}

fn call_local_fence(_: u64) -> i64 {
    local_fence().error
}

/// global_fence, then local_fence on every other live hart. Returns the
/// first error (global's, else a local one) or OK.
pub fn fence_all(p: &Platform, live: &[bool; MAX_HARTS]) -> Result<(), (&'static str, i64)> {
    let r = global_fence();
    if r.error != OK {
        return Err(("global_fence", r.error));
    }
    local_fences(p, live)
}

pub fn local_fences(p: &Platform, live: &[bool; MAX_HARTS]) -> Result<(), (&'static str, i64)> {
    for (i, &l) in live.iter().enumerate().take(p.nharts) {
        if l {
            match harts::call(p, i, call_local_fence, 0, p.ms(2000)) {
                Some(OK) => {}
                Some(e) => return Err(("local_fence", e)),
                None => return Err(("local_fence (hart did not answer)", ERR_FAILED)),
            }
        }
    }
    Ok(())
}

/// Shared between the boot hart and a secondary running a vCPU.
#[repr(C)]
struct RunReq {
    id: u64,
    vcpu: u64,
    slot: usize,
    nacl_error: i64,
    exit: Exit,
}

fn run_on_secondary(arg: u64) -> i64 {
    // SAFETY: `arg` is a `RunReq` the boot hart keeps alive until we ack.
    let req = unsafe { &mut *(arg as *mut RunReq) };
    req.nacl_error = nacl_setup_here(req.slot, false);
    if req.nacl_error != OK {
        return req.nacl_error;
    }
    req.exit = run_vcpu(req.id, req.vcpu);
    // Any host interrupt that preempted the TVM is taken here (the command
    // loop runs with interrupts enabled).
    OK
}

/// Largest vector register file tellus checks (32 registers of VLEN 2048).
pub const REGCHECK_VBYTES: usize = 32 * 256;

/// Buffers for [`run_vcpu_regcheck`].
pub struct RegCheck {
    pub f_in: [u64; 32],
    pub f_out: [u64; 32],
    pub v_in: [u64; REGCHECK_VBYTES / 8],
    pub v_out: [u64; REGCHECK_VBYTES / 8],
}

/// run_tvm_vcpu with the host's FP (and, with `has_v`, vector) registers
/// loaded from `rc.*_in` just before the ecall and stored to `rc.*_out`
/// right after it, with no Rust code in between: whatever the TVM did with
/// its own registers, the host's must come back unchanged.
pub fn run_vcpu_regcheck(id: u64, vcpu: u64, has_v: bool, rc: &mut RegCheck) -> Exit {
    let error: i64;
    let value: u64;
    let scause: u64;
    let stval: u64;
    let sstatus: u64;
    // SAFETY: the loads/stores touch only `rc`'s buffers (the vector ones
    // hold 32 * vlenb bytes for vlenb <= 256, checked by the caller); the
    // ecall returns like any other (a0/a1 change); interrupts are off.
    unsafe {
        asm!(
            "csrrci {ss}, sstatus, 2",
            "fld f0, 0({fin})",
            "fld f1, 8({fin})",
            "fld f2, 16({fin})",
            "fld f3, 24({fin})",
            "fld f4, 32({fin})",
            "fld f5, 40({fin})",
            "fld f6, 48({fin})",
            "fld f7, 56({fin})",
            "fld f8, 64({fin})",
            "fld f9, 72({fin})",
            "fld f10, 80({fin})",
            "fld f11, 88({fin})",
            "fld f12, 96({fin})",
            "fld f13, 104({fin})",
            "fld f14, 112({fin})",
            "fld f15, 120({fin})",
            "fld f16, 128({fin})",
            "fld f17, 136({fin})",
            "fld f18, 144({fin})",
            "fld f19, 152({fin})",
            "fld f20, 160({fin})",
            "fld f21, 168({fin})",
            "fld f22, 176({fin})",
            "fld f23, 184({fin})",
            "fld f24, 192({fin})",
            "fld f25, 200({fin})",
            "fld f26, 208({fin})",
            "fld f27, 216({fin})",
            "fld f28, 224({fin})",
            "fld f29, 232({fin})",
            "fld f30, 240({fin})",
            "fld f31, 248({fin})",
            "beqz {hv}, 1f",
            ".option push",
            ".option arch, +v",
            "csrr {t}, vlenb",
            "slli {t}, {t}, 3",
            "mv {q}, {vin}",
            "vl8re8.v v0, ({q})",
            "add {q}, {q}, {t}",
            "vl8re8.v v8, ({q})",
            "add {q}, {q}, {t}",
            "vl8re8.v v16, ({q})",
            "add {q}, {q}, {t}",
            "vl8re8.v v24, ({q})",
            ".option pop",
            "1:",
            "ecall",
            "csrr {sc}, scause",
            "csrr {tv}, stval",
            "fsd f0, 0({fout})",
            "fsd f1, 8({fout})",
            "fsd f2, 16({fout})",
            "fsd f3, 24({fout})",
            "fsd f4, 32({fout})",
            "fsd f5, 40({fout})",
            "fsd f6, 48({fout})",
            "fsd f7, 56({fout})",
            "fsd f8, 64({fout})",
            "fsd f9, 72({fout})",
            "fsd f10, 80({fout})",
            "fsd f11, 88({fout})",
            "fsd f12, 96({fout})",
            "fsd f13, 104({fout})",
            "fsd f14, 112({fout})",
            "fsd f15, 120({fout})",
            "fsd f16, 128({fout})",
            "fsd f17, 136({fout})",
            "fsd f18, 144({fout})",
            "fsd f19, 152({fout})",
            "fsd f20, 160({fout})",
            "fsd f21, 168({fout})",
            "fsd f22, 176({fout})",
            "fsd f23, 184({fout})",
            "fsd f24, 192({fout})",
            "fsd f25, 200({fout})",
            "fsd f26, 208({fout})",
            "fsd f27, 216({fout})",
            "fsd f28, 224({fout})",
            "fsd f29, 232({fout})",
            "fsd f30, 240({fout})",
            "fsd f31, 248({fout})",
            "beqz {hv}, 2f",
            ".option push",
            ".option arch, +v",
            "csrr {t}, vlenb",
            "slli {t}, {t}, 3",
            "mv {q}, {vout}",
            "vs8r.v v0, ({q})",
            "add {q}, {q}, {t}",
            "vs8r.v v8, ({q})",
            "add {q}, {q}, {t}",
            "vs8r.v v16, ({q})",
            "add {q}, {q}, {t}",
            "vs8r.v v24, ({q})",
            ".option pop",
            "2:",
            fin = in(reg) rc.f_in.as_ptr(),
            fout = in(reg) rc.f_out.as_mut_ptr(),
            vin = in(reg) rc.v_in.as_ptr(),
            vout = in(reg) rc.v_out.as_mut_ptr(),
            hv = in(reg) has_v as u64,
            ss = out(reg) sstatus,
            out("f0") _,
            out("f1") _,
            out("f2") _,
            out("f3") _,
            out("f4") _,
            out("f5") _,
            out("f6") _,
            out("f7") _,
            out("f8") _,
            out("f9") _,
            out("f10") _,
            out("f11") _,
            out("f12") _,
            out("f13") _,
            out("f14") _,
            out("f15") _,
            out("f16") _,
            out("f17") _,
            out("f18") _,
            out("f19") _,
            out("f20") _,
            out("f21") _,
            out("f22") _,
            out("f23") _,
            out("f24") _,
            out("f25") _,
            out("f26") _,
            out("f27") _,
            out("f28") _,
            out("f29") _,
            out("f30") _,
            out("f31") _,
            t = out(reg) _,
            q = out(reg) _,
            sc = out(reg) scause,
            tv = out(reg) stval,
            inlateout("a0") id => error,
            inlateout("a1") vcpu => value,
            in("a6") CovhFunction::RunTvmVcpu.fid(),
            in("a7") EID_COVH,
            options(nostack),
        );
    }
    if sstatus & 2 != 0 {
        arch::interrupts_enable();
    }
    Exit {
        error,
        value,
        scause,
        stval,
    }
}

/// Runs the vCPU once on hart `slot` (the boot hart or a live secondary).
pub fn run_on(p: &Platform, slot: usize, id: u64, vcpu: u64) -> Result<Exit, (&'static str, i64)> {
    if slot == boot_slot(p) {
        let e = nacl_setup_here(slot, false);
        if e != OK {
            return Err(("nacl set_shmem", e));
        }
        let x = run_vcpu(id, vcpu);
        return Ok(x);
    }
    let mut req = RunReq {
        id,
        vcpu,
        slot,
        nacl_error: 0,
        exit: Exit::default(),
    };
    let r = harts::call(
        p,
        slot,
        run_on_secondary,
        (&raw mut req) as u64,
        p.ms(20_000),
    );
    match r {
        Some(OK) => Ok(req.exit),
        Some(_) => Err(("nacl set_shmem on a secondary", req.nacl_error)),
        None => Err(("secondary did not come back from run_tvm_vcpu", ERR_FAILED)),
    }
}

/// Lets the boot hart take a pending host interrupt that preempted a TVM;
/// a timer that fired is re-armed far away (as any OS would), so it stops
/// pending.
pub fn take_interrupts() {
    arch::sie_set(arch::SSIP);
    arch::interrupts_enable();
    for _ in 0..16 {
        core::hint::spin_loop();
    }
    arch::interrupts_disable();
    if arch::read_sip() & arch::STIP != 0 {
        let _ = sbi::set_timer(u64::MAX);
    }
}

// ---- host memory ------------------------------------------------------------

/// Host RAM tellus may use for TEE tests: the free ranges (RAM minus
/// tellus, the FDT and every reserved range), bump-allocated. `mark` and
/// `reset` let a test give back what it took.
pub struct Pool {
    ranges: [Range; 16],
    cursor: [u64; 16],
    n: usize,
}

pub type Mark = [u64; 16];

impl Pool {
    pub fn new(p: &Platform) -> Pool {
        let mut pool = Pool {
            ranges: [Range::default(); 16],
            cursor: [0; 16],
            n: 0,
        };
        let excl = crate::platform::exclusions(p);
        crate::platform::for_each_free(p, &excl, |s, e| {
            if pool.n < 16 && e > s {
                pool.ranges[pool.n] = Range { start: s, end: e };
                pool.cursor[pool.n] = s;
                pool.n += 1;
            }
        });
        pool
    }

    /// `size` bytes aligned to `align` (both multiples of 4 KiB), zeroed.
    pub fn alloc(&mut self, size: u64, align: u64) -> Option<u64> {
        for i in 0..self.n {
            let a = self.cursor[i].checked_add(align - 1)? & !(align - 1);
            if a.checked_add(size)? <= self.ranges[i].end {
                self.cursor[i] = a + size;
                zero(a, size);
                return Some(a);
            }
        }
        None
    }

    /// Like `alloc` without zeroing (for huge benchmark ranges).
    pub fn alloc_raw(&mut self, size: u64, align: u64) -> Option<u64> {
        for i in 0..self.n {
            let a = self.cursor[i].checked_add(align - 1)? & !(align - 1);
            if a.checked_add(size)? <= self.ranges[i].end {
                self.cursor[i] = a + size;
                return Some(a);
            }
        }
        None
    }

    pub fn mark(&self) -> Mark {
        self.cursor
    }

    pub fn reset(&mut self, m: Mark) {
        self.cursor = m;
    }
}

pub fn zero(addr: u64, size: u64) {
    let mut a = addr;
    while a < addr + size {
        // SAFETY: host memory handed out by the pool.
        unsafe { core::ptr::write_volatile(a as *mut u64, 0) };
        a += 8;
    }
}

pub fn rd(addr: u64) -> u64 {
    // SAFETY: callers pass host memory tellus owns.
    unsafe { core::ptr::read_volatile(addr as *const u64) }
}

pub fn wr(addr: u64, v: u64) {
    // SAFETY: callers pass host memory tellus owns.
    unsafe { core::ptr::write_volatile(addr as *mut u64, v) }
}

/// Loads from `addr` with the expected-fault handling armed: `Ok(value)` if
/// it did not fault, `Err(scause)` if it did.
pub fn try_read(addr: u64) -> Result<u64, u64> {
    let s = trap::expect_fault();
    // SAFETY: armed; a fault resumes after the load.
    let v = unsafe { arch::probe_load(addr) };
    match trap::fault_result(s) {
        None => Ok(v),
        Some((cause, _)) => Err(cause),
    }
}

/// Stores to `addr` only if a load works (so a broken protection cannot
/// make tellus write memory it gave away), then reads back.
pub fn host_page_ok(addr: u64) -> bool {
    if try_read(addr).is_err() {
        return false;
    }
    let s = trap::expect_fault();
    // SAFETY: armed; `addr` is a page tellus owns again (the load worked).
    unsafe { arch::probe_store(addr, !addr) };
    if trap::fault_result(s).is_some() {
        return false;
    }
    try_read(addr) == Ok(!addr)
}

// ---- TVM host ---------------------------------------------------------------

/// What the host knows about one TVM while running it.
pub struct TvmHost {
    pub id: u64,
    /// Converted 4 KiB pages for demand-zero faults.
    pub zero_pages: [u64; 64],
    pub zero_n: usize,
    /// A converted 2 MiB-aligned 2 MiB block for the 2 MiB zero range.
    pub zero_2m: Option<u64>,
    pub zero_2m_used: bool,
    /// Converted pages for OUT_OF_PTPAGES retries.
    pub spare_pt: [u64; 16],
    pub spare_pt_n: usize,
    /// Host pages for shared mappings (console, exchange).
    pub host_pages: [u64; 4],
    pub host_pages_used: usize,
    /// (gpa, host page) of shared pages added.
    pub shared_maps: [(u64, u64); 4],
    pub shared_n: usize,
    /// The exchange page the guest unshared (the host keeps watching it).
    pub old_exchange_page: Option<u64>,
    /// Declared by the guest through COVG.
    pub shared_regions: [(u64, u64); 4],
    pub mmio: Option<(u64, u64)>,
    pub mmio_good: u64,
    pub mmio_bad: u64,
    /// Guest console line buffer.
    line: [u8; 200],
    line_len: usize,
    pub guest_passed: u32,
    pub guest_failed: u32,
    pub guest_lines: u32,
    /// SRST reason when the guest shut down.
    pub shutdown: Option<u64>,
    pub exits: u64,
    pub interrupts: u64,
    pub zero_faults: u64,
    /// Shared pages the TSM had already unmapped when the guest unshared.
    pub unshared_by_tsm: u64,
    pub hart_runs: [u64; MAX_HARTS],
    /// Echo guest output and count its PASS/FAIL lines into tellus's totals.
    pub echo: bool,
    /// A vCPU the guest started with SBI HSM (the TSM told us): run it.
    pub start_vcpu: Option<u64>,
    /// The vCPU we are running for the guest called hart_stop.
    pub vcpu_stopped: bool,
    /// Exits of secondary vCPUs run this way.
    pub secondary_exits: u64,
    /// Check, on the next run on the boot hart, that the host's FP and
    /// vector registers survive it.
    pub regcheck: bool,
    pub regcheck_done: bool,
    /// First register that came back changed: (name, index, got, want).
    pub regcheck_fail: Option<(&'static str, usize, u64, u64)>,
}

static REGCHECK: spin::Mutex<RegCheck> = spin::Mutex::new(RegCheck {
    f_in: [0; 32],
    f_out: [0; 32],
    v_in: [0; REGCHECK_VBYTES / 8],
    v_out: [0; REGCHECK_VBYTES / 8],
});

/// Why a run stopped.
pub enum Stop {
    /// The guest shut down (SRST) with this reason.
    Shutdown(u64),
    /// Something went wrong; a short description.
    Error(crate::console::Msg),
}

macro_rules! stop {
    ($($arg:tt)*) => { Stop::Error(crate::msg!($($arg)*)) };
}

impl TvmHost {
    pub fn new(id: u64) -> TvmHost {
        TvmHost {
            id,
            zero_pages: [0; 64],
            zero_n: 0,
            zero_2m: None,
            zero_2m_used: false,
            spare_pt: [0; 16],
            spare_pt_n: 0,
            host_pages: [0; 4],
            host_pages_used: 0,
            shared_maps: [(0, 0); 4],
            shared_n: 0,
            old_exchange_page: None,
            shared_regions: [(0, 0); 4],
            mmio: None,
            mmio_good: 0,
            mmio_bad: 0,
            line: [0; 200],
            line_len: 0,
            guest_passed: 0,
            guest_failed: 0,
            guest_lines: 0,
            shutdown: None,
            exits: 0,
            interrupts: 0,
            zero_faults: 0,
            unshared_by_tsm: 0,
            hart_runs: [0; MAX_HARTS],
            echo: true,
            start_vcpu: None,
            vcpu_stopped: false,
            secondary_exits: 0,
            regcheck: false,
            regcheck_done: false,
            regcheck_fail: None,
        }
    }

    fn host_page_for(&self, gpa: u64) -> Option<u64> {
        let page = gpa & !(PAGE - 1);
        self.shared_maps[..self.shared_n]
            .iter()
            .find(|&&(g, _)| g == page)
            .map(|&(_, h)| h + (gpa - page))
    }

    fn in_shared_region(&self, gpa: u64) -> bool {
        self.shared_regions
            .iter()
            .any(|&(g, l)| l != 0 && gpa >= g && gpa < g + l)
    }

    fn guest_byte(&mut self, b: u8) {
        if b == b'\n' || self.line_len == self.line.len() {
            let line = core::str::from_utf8(&self.line[..self.line_len])
                .unwrap_or("guestvm: <non-utf8 line>");
            self.guest_lines += 1;
            if line.starts_with("PASS: ") {
                self.guest_passed += 1;
            } else if line.starts_with("FAIL: ") {
                self.guest_failed += 1;
            }
            if self.echo {
                println!("{}", line);
                if line.starts_with("PASS: ") {
                    crate::PASSED.fetch_add(1, Relaxed);
                } else if line.starts_with("FAIL: ") {
                    crate::FAILED.fetch_add(1, Relaxed);
                }
            }
            self.line_len = 0;
            if b == b'\n' {
                return;
            }
        }
        self.line[self.line_len] = b;
        self.line_len += 1;
    }

    /// Handles a forwarded ecall; returns the (error, value) to hand back,
    /// or a stop.
    fn ecall(&mut self, a: &[u64; 8]) -> Result<(i64, u64), Stop> {
        let (eid, fid) = (a[7], a[6]);
        match eid {
            0x4442_434E => match fid {
                // DBCN console_write(len, lo, hi)
                0 => {
                    let (len, lo, hi) = (a[0], a[1], a[2]);
                    if hi != 0 || len > PAGE {
                        return Ok((ERR_INVALID_PARAM, 0));
                    }
                    let Some(h) = self.host_page_for(lo) else {
                        return Ok((ERR_INVALID_PARAM, 0));
                    };
                    if self.host_page_for(lo + len.saturating_sub(1)).is_none()
                        || (lo & (PAGE - 1)) + len > PAGE
                    {
                        return Ok((ERR_INVALID_PARAM, 0));
                    }
                    for k in 0..len {
                        // SAFETY: inside the host page backing the console.
                        let b = unsafe { core::ptr::read_volatile((h + k) as *const u8) };
                        self.guest_byte(b);
                    }
                    Ok((OK, len))
                }
                2 => {
                    self.guest_byte(a[0] as u8);
                    Ok((OK, 0))
                }
                _ => Ok((ERR_NOT_SUPPORTED, 0)),
            },
            0x5352_5354 => Err(Stop::Shutdown(a[1])),
            // HSM from the guest: the TSM already changed the vCPU's state
            // and tells us so we schedule it (its answer to the guest is
            // final; ours is ignored).
            0x0048_534D => {
                match fid {
                    0 => self.start_vcpu = Some(a[0]),
                    1 => self.vcpu_stopped = true,
                    _ => {}
                }
                Ok((OK, 0))
            }
            EID_COVG => {
                let (gpa, len) = (a[0], a[1]);
                let aligned = gpa % PAGE == 0 && len % PAGE == 0 && len != 0;
                let in_region = gpa >= proto::REGION_GPA
                    && gpa
                        .checked_add(len)
                        .is_some_and(|e| e <= proto::REGION_GPA + proto::REGION_LEN);
                match fid {
                    0 if aligned => self.mmio = Some((gpa, len)),
                    1 if aligned => self.mmio = None,
                    2 if aligned && in_region => {
                        if let Some(s) = self.shared_regions.iter_mut().find(|s| s.1 == 0) {
                            *s = (gpa, len);
                        }
                    }
                    3 if aligned && in_region => self.unshare(gpa, len)?,
                    _ => {}
                }
                Ok((OK, 0))
            }
            proto::EID_GVM => match fid {
                proto::FID_NOP => Ok((OK, 0)),
                proto::FID_SHARED_CHECK => {
                    let Some(h) = self.host_page_for(proto::SHARED_GPA) else {
                        return Ok((ERR_FAILED, 0));
                    };
                    let seed = a[0];
                    let mut bad = 0;
                    for i in 0..proto::HALF_WORDS {
                        if rd(h + 8 * i) != proto::pattern(seed, i) {
                            bad += 1;
                        }
                        wr(h + 8 * (proto::HALF_WORDS + i), proto::pattern(!seed, i));
                    }
                    Ok((OK, bad))
                }
                proto::FID_UNSHARED_CHECK => {
                    let Some(h) = self.old_exchange_page else {
                        return Ok((ERR_FAILED, 0));
                    };
                    let seed = a[0];
                    let seen = (0..proto::HALF_WORDS)
                        .filter(|&i| rd(h + 8 * i) == proto::pattern(seed, i))
                        .count();
                    Ok((OK, seen as u64))
                }
                proto::FID_MMIO_STORES => Ok((
                    if self.mmio_bad == 0 { OK } else { ERR_FAILED },
                    self.mmio_good,
                )),
                _ => Ok((ERR_NOT_SUPPORTED, 0)),
            },
            _ => Ok((ERR_NOT_SUPPORTED, 0)),
        }
    }

    /// The guest unshared `[gpa, gpa+len)`: invalidate, fence and remove the
    /// shared pages there (spec: the vCPU is blocked until then).
    fn unshare(&mut self, gpa: u64, len: u64) -> Result<(), Stop> {
        for s in self.shared_regions.iter_mut() {
            if s.0 == gpa && s.1 == len {
                *s = (0, 0);
            }
        }
        let mut k = 0;
        while k < self.shared_n {
            let (g, h) = self.shared_maps[k];
            if g >= gpa && g < gpa + len {
                // Spec: invalidate, fence, remove. A TSM may also unmap the
                // shared page itself at unshare (Salus does): then the page
                // is no longer mapped (INVALID_ADDRESS) and must already be
                // plain host memory again.
                let r = tvm_invalidate(self.id, g, PAGE);
                if r.error == ERR_INVALID_ADDRESS && host_page_ok(h) {
                    self.unshared_by_tsm += 1;
                } else {
                    if r.error != OK {
                        return Err(stop!(
                            "unshare: tvm_invalidate_pages({g:#x}): error {}",
                            r.error
                        ));
                    }
                    let r = tvm_fence(self.id);
                    if r.error != OK {
                        return Err(stop!("unshare: tvm_fence: error {}", r.error));
                    }
                    let r = tvm_remove(self.id, g, PAGE);
                    if r.error != OK {
                        return Err(stop!(
                            "unshare: tvm_remove_pages({g:#x}): error {}",
                            r.error
                        ));
                    }
                }
                if g == proto::SHARED_GPA {
                    self.old_exchange_page = Some(h);
                }
                self.shared_maps[k] = self.shared_maps[self.shared_n - 1];
                self.shared_n -= 1;
            } else {
                k += 1;
            }
        }
        Ok(())
    }

    fn add_with_pt_retry(&mut self, mut f: impl FnMut() -> SbiRet) -> SbiRet {
        let mut r = f();
        while r.error == ERR_OUT_OF_PTPAGES && self.spare_pt_n > 0 {
            self.spare_pt_n -= 1;
            let pt = self.spare_pt[self.spare_pt_n];
            let a = add_pt_pages(self.id, pt, 1);
            if a.error != OK {
                return a;
            }
            r = f();
        }
        r
    }

    fn page_fault(&mut self, slot: usize, cause: u64, gpa: u64) -> Result<(), Stop> {
        let id = self.id;
        if let Some((mg, ml)) = self.mmio {
            if gpa >= mg && gpa < mg + ml && cause != 20 {
                let htinst = nacl_csr(slot, nacl::csr::HTINST);
                if htinst == 0 {
                    return Err(stop!("MMIO fault at {gpa:#x} with htinst 0"));
                }
                let width = 1u64 << ((htinst >> 12) & 3);
                let off = gpa - mg;
                if cause == 21 {
                    let raw = proto::truncate(proto::mmio_load_value(off), width);
                    let unsigned = (htinst >> 14) & 1 == 1;
                    let v = if unsigned {
                        raw
                    } else {
                        proto::sign_extend(raw, width)
                    };
                    self.set_result_gpr(nacl::gpr::A0, v);
                } else {
                    let v = nacl_gpr(slot, nacl::gpr::A0);
                    if proto::truncate(v, width)
                        == proto::truncate(proto::mmio_store_value(off), width)
                    {
                        self.mmio_good += 1;
                    } else {
                        self.mmio_bad += 1;
                        println!(
                            "tellus: MMIO store at +{off:#x} width {width}: {v:#x} (htinst {htinst:#x})"
                        );
                    }
                }
                return Ok(());
            }
        }
        let page = gpa & !(PAGE - 1);
        if self.in_shared_region(gpa) && self.host_page_for(gpa).is_none() {
            if self.host_pages_used == self.host_pages.len()
                || self.shared_n == self.shared_maps.len()
            {
                return Err(stop!("out of host pages for shared faults"));
            }
            let h = self.host_pages[self.host_pages_used];
            self.host_pages_used += 1;
            let r = self.add_with_pt_retry(|| add_shared_pages(id, h, 0, 1, page));
            if r.error != OK {
                return Err(stop!(
                    "add_tvm_shared_pages({h:#x} -> {page:#x}): error {}",
                    r.error
                ));
            }
            self.shared_maps[self.shared_n] = (page, h);
            self.shared_n += 1;
            return Ok(());
        }
        if (proto::REGION_GPA..proto::REGION_GPA + proto::REGION_LEN).contains(&gpa) {
            self.zero_faults += 1;
            if (proto::ZERO_2M_GPA..proto::ZERO_2M_GPA + SIZE_2M).contains(&gpa) {
                let Some(b) = self.zero_2m.filter(|_| !self.zero_2m_used) else {
                    return Err(stop!("second fault in the 2 MiB zero range at {gpa:#x}"));
                };
                self.zero_2m_used = true;
                let r = self.add_with_pt_retry(|| add_zero_pages(id, b, 1, 1, proto::ZERO_2M_GPA));
                if r.error != OK {
                    return Err(stop!("add_tvm_zero_pages(2M {b:#x}): error {}", r.error));
                }
                return Ok(());
            }
            if self.zero_n == 0 {
                return Err(stop!("out of zero pages at fault {gpa:#x}"));
            }
            self.zero_n -= 1;
            let z = self.zero_pages[self.zero_n];
            let r = self.add_with_pt_retry(|| add_zero_pages(id, z, 0, 1, page));
            if r.error != OK {
                return Err(stop!(
                    "add_tvm_zero_pages({z:#x} -> {page:#x}): error {}",
                    r.error
                ));
            }
            return Ok(());
        }
        Err(stop!(
            "guest page fault (scause {cause}) at unexpected GPA {gpa:#x}"
        ))
    }

    /// Results are written into every hart's NACL area: the next run may be
    /// on any hart.
    fn set_result_gpr(&self, reg: usize, v: u64) {
        for s in 0..MAX_HARTS {
            nacl_set_gpr(s, reg, v);
        }
    }

    /// Handles one exit taken on hart `slot`. `Ok(())` = run again.
    pub fn handle(&mut self, slot: usize, x: &Exit) -> Result<(), Stop> {
        self.exits += 1;
        if x.error != OK {
            return Err(stop!("run_tvm_vcpu: error {}", x.error));
        }
        if x.scause & arch::SCAUSE_INTERRUPT != 0 {
            self.interrupts += 1;
            if self.interrupts > 1_000_000 {
                return Err(stop!("more than 1000000 interrupt exits"));
            }
            return Ok(());
        }
        if x.value != 0 {
            return Err(stop!(
                "not resumable: scause {:#x} stval {:#x} htval {:#x}",
                x.scause,
                x.stval,
                nacl_csr(slot, nacl::csr::HTVAL)
            ));
        }
        match x.scause {
            10 => {
                let mut a = [0u64; 8];
                for (k, v) in a.iter_mut().enumerate() {
                    *v = nacl_gpr(slot, nacl::gpr::A0 + k);
                }
                let (e, v) = self.ecall(&a)?;
                self.set_result_gpr(nacl::gpr::A0, e as u64);
                self.set_result_gpr(nacl::gpr::A1, v);
                Ok(())
            }
            20 | 21 | 23 => {
                let htval = nacl_csr(slot, nacl::csr::HTVAL);
                let gpa = cove_abi::covh::fault_gpa(htval, x.stval);
                self.page_fault(slot, x.scause, gpa)
            }
            c => Err(stop!(
                "unexpected exit scause {c:#x} stval {:#x} htval {:#x} htinst {:#x}",
                x.stval,
                nacl_csr(slot, nacl::csr::HTVAL),
                nacl_csr(slot, nacl::csr::HTINST)
            )),
        }
    }

    /// One run on the boot hart with the host's FP/vector registers set to
    /// a host pattern across the ecall; records the first one that changed.
    fn run_checking_regs(&mut self, p: &Platform, slot: usize, vcpu: u64) -> Result<Exit, i64> {
        let e = nacl_setup_here(slot, false);
        if e != OK {
            return Err(e);
        }
        let mut rc = REGCHECK.lock();
        for (i, f) in rc.f_in.iter_mut().enumerate() {
            *f = 0x686f_7374_0000_0000 | i as u64; // "host"
        }
        let vwords = if p.has_v {
            (32 * arch::read_vlenb() as usize / 8).min(REGCHECK_VBYTES / 8)
        } else {
            0
        };
        for (k, v) in rc.v_in.iter_mut().enumerate() {
            *v = 0x686f_7374_7600_0000 ^ (k as u64).wrapping_mul(0x9e37_79b9);
        }
        let x = run_vcpu_regcheck(self.id, vcpu, vwords != 0, &mut rc);
        self.regcheck_done = true;
        if let Some(i) = (0..32).find(|&i| rc.f_out[i] != rc.f_in[i]) {
            self.regcheck_fail = Some(("f", i, rc.f_out[i], rc.f_in[i]));
        } else if let Some(k) = (0..vwords).find(|&k| rc.v_out[k] != rc.v_in[k]) {
            self.regcheck_fail = Some(("v word", k, rc.v_out[k], rc.v_in[k]));
        }
        Ok(x)
    }

    /// Runs vCPU `vcpu` until it shuts down or something fails, rotating
    /// over the harts in `slots` on every exit.
    pub fn run(&mut self, p: &Platform, vcpu: u64, slots: &[usize], max_exits: u64) -> Stop {
        let boot = boot_slot(p);
        let mut k = 0;
        loop {
            let slot = slots[k % slots.len()];
            k += 1;
            let x = if self.regcheck && slot == boot {
                self.regcheck = false;
                match self.run_checking_regs(p, slot, vcpu) {
                    Ok(x) => x,
                    Err(e) => return stop!("nacl set_shmem: error {e}"),
                }
            } else {
                match run_on(p, slot, self.id, vcpu) {
                    Ok(x) => x,
                    Err((what, e)) => return stop!("{what}: error {e}"),
                }
            };
            self.hart_runs[slot] += 1;
            if slot == boot && x.scause & arch::SCAUSE_INTERRUPT != 0 {
                take_interrupts();
            }
            match self.handle(slot, &x) {
                Ok(()) => {}
                Err(Stop::Shutdown(r)) => {
                    self.shutdown = Some(r);
                    // Flush a partial line.
                    if self.line_len != 0 {
                        self.guest_byte(b'\n');
                    }
                    return Stop::Shutdown(r);
                }
                Err(s) => return s,
            }
            if let Some(v2) = self.start_vcpu.take() {
                // Run the started vCPU to its hart_stop on the next hart in
                // the rotation, before the guest's vCPU resumes.
                self.vcpu_stopped = false;
                let mut n = 0;
                while !self.vcpu_stopped {
                    let slot = slots[k % slots.len()];
                    k += 1;
                    let x = match run_on(p, slot, self.id, v2) {
                        Ok(x) => x,
                        Err((what, e)) => return stop!("vCPU {v2}: {what}: error {e}"),
                    };
                    self.hart_runs[slot] += 1;
                    self.secondary_exits += 1;
                    if slot == boot && x.scause & arch::SCAUSE_INTERRUPT != 0 {
                        take_interrupts();
                    }
                    if let Err(s) = self.handle(slot, &x) {
                        return s;
                    }
                    n += 1;
                    if n > 10_000 {
                        return stop!("vCPU {v2} never stopped");
                    }
                }
            }
            if self.exits >= max_exits {
                return stop!("no shutdown after {max_exits} exits");
            }
        }
    }
}
