//! The TSM: Salus's implementation of the CoVE host interface (COVH), the
//! NACL shared memory it uses, and the guest interface (COVG) for TVMs.
//!
//! Ownership rules enforced here:
//! - a page leaves the host (page map `Host` -> `ConvertPending`) and its
//!   host stage-2 mapping in the same step; it becomes usable for TVMs
//!   (`Converted`) only after every hart running the host has fenced;
//! - every TVM page is `Tvm(id, kind)` in the page map, owned by one TVM;
//!   TVM state lives in pages the host donated and can no longer touch;
//! - pages leave a TVM scrubbed, and reclaimed pages are zeroed before the
//!   host sees them again.
//!
//! Locking: one TSM lock serialises COVH calls (a running vCPU holds none);
//! lock order is TSM, then the host stage-2 (`host::GSTAGE`), then the page
//! map.

// Nothing the host or a TVM passes may make the TSM panic: no unwrap,
// expect, panic or unchecked indexing here (the few exceptions say why).
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

pub mod attest;
pub mod convert;
pub mod covg;
pub mod covi;
pub mod host_side;
pub mod invalidate;
pub mod pages;
pub mod region;
pub mod release;
pub mod reset;
pub mod run;
pub mod tvm;
pub mod tvm_sbi;
pub mod vcpu;

use crate::sync::Mutex;
use cove_abi::{CoveError, CovhFunction, TsmInfo};
use host_side::HostSide;
use hyp_addr::{HostPhysAddr, HostRange, PAGE_SIZE};
use sbi_abi::SbiError;

pub type CoveResult = Result<u64, CoveError>;

pub const INVALID_PARAM: CoveError = CoveError::Sbi(SbiError::InvalidParam);
pub const INVALID_ADDRESS: CoveError = CoveError::Sbi(SbiError::InvalidAddress);
pub const FAILED: CoveError = CoveError::Sbi(SbiError::Failed);

/// The TSM's own state, all in Salus memory and small: the conversion
/// bookkeeping and one slot per live TVM pointing at its donated state.
pub struct Tsm {
    pub conv: convert::Conversions,
    pub tvms: tvm::Registry,
    /// COVI: every IMSIC guest file and who owns it.
    pub files: imsic_files::Files,
    /// Pages a call moved to Released or Reclaiming and is scrubbing
    /// outside the lock (release.rs).
    pub detached: u64,
}

pub static TSM: Mutex<Tsm> = Mutex::new(Tsm {
    conv: convert::Conversions::new(),
    tvms: tvm::Registry::new(),
    files: imsic_files::Files::new(),
    detached: 0,
});

/// `[base, base + n * 4 KiB)` as a host range: `base` must be 4 KiB aligned
/// (INVALID_ADDRESS), `n` non-zero and the range must not wrap
/// (INVALID_PARAM).
pub fn page_range(base: u64, n: u64) -> Result<HostRange, CoveError> {
    if !base.is_multiple_of(PAGE_SIZE) {
        return Err(INVALID_ADDRESS);
    }
    let len = n.checked_mul(PAGE_SIZE).ok_or(INVALID_PARAM)?;
    if n == 0 {
        return Err(INVALID_PARAM);
    }
    HostRange::new(HostPhysAddr::new(base), len).ok_or(INVALID_PARAM)
}

pub fn tsm_info() -> TsmInfo {
    TsmInfo {
        tsm_state: cove_abi::TsmState::Ready as u32,
        tsm_impl_id: cove_abi::covh::impl_id::SALUS,
        tsm_version: cove_abi::covh::SALUS_TSM_VERSION,
        _padding: 0,
        tsm_capabilities: 1 << cove_abi::covh::cap::MEMORY_ALLOCATION | covi::capability(),
        tvm_state_pages: tvm::state_pages(),
        tvm_max_vcpus: tvm::MAX_VCPUS as u64,
        tvm_vcpu_state_pages: vcpu::state_pages(),
    }
}

fn get_tsm_info(addr: u64, len: u64) -> CoveResult {
    if len < TsmInfo::SIZE as u64 {
        return Err(INVALID_PARAM);
    }
    if !addr.is_multiple_of(4) || !crate::memory::host_owns(addr, TsmInfo::SIZE as u64) {
        return Err(INVALID_ADDRESS);
    }
    crate::arch::phys::copy_to(HostPhysAddr::new(addr), &tsm_info().to_bytes());
    Ok(TsmInfo::SIZE as u64)
}

/// COVH dispatch for the host vCPU on this hart.
pub fn handle_covh(host: &mut impl HostSide, a6: u64, a: [u64; 6]) -> CoveResult {
    let fid = cove_abi::fid::CoveFid::decode_local(a6)
        .map_err(|_| CoveError::Sbi(SbiError::NotSupported))?;
    let Some(f) = CovhFunction::from_fid(fid as u64) else {
        return Err(CoveError::Sbi(SbiError::NotSupported));
    };
    // After a reset scrub every call fails.
    if reset::resetting() {
        return Err(FAILED);
    }
    let me = host.hartid();
    let r = match f {
        CovhFunction::GetTsmInfo => get_tsm_info(a[0], a[1]),
        CovhFunction::ConvertPages => convert::convert_pages(host, a[0], a[1]),
        CovhFunction::ReclaimPages => convert::reclaim_pages(host, a[0], a[1]),
        CovhFunction::GlobalFence => convert::global_fence(host, me),
        CovhFunction::LocalFence => convert::local_fence(me),
        CovhFunction::CreateTvm => tvm::create_tvm(a[0], a[1]),
        CovhFunction::FinalizeTvm => tvm::finalize_tvm(a[0], a[1], a[2], a[3]),
        // Single-step creation is not offered: capability bit 0 is clear.
        CovhFunction::PromoteToTvm => Err(CoveError::Sbi(SbiError::NotSupported)),
        CovhFunction::DestroyTvm => release::destroy_tvm(me, a[0]),
        CovhFunction::AddTvmMemoryRegion => tvm::add_memory_region(a[0], a[1], a[2]),
        CovhFunction::AddTvmPageTablePages => tvm::add_page_table_pages(a[0], a[1], a[2]),
        CovhFunction::AddTvmMeasuredPages => {
            pages::add_measured_pages(a[0], a[1], a[2], a[3], a[4], a[5])
        }
        CovhFunction::AddTvmZeroPages => pages::add_zero_pages(a[0], a[1], a[2], a[3], a[4]),
        CovhFunction::AddTvmSharedPages => pages::add_shared_pages(a[0], a[1], a[2], a[3], a[4]),
        CovhFunction::CreateTvmVcpu => tvm::create_vcpu(a[0], a[1], a[2]),
        // Running changes no page ownership: skip the census check.
        CovhFunction::RunTvmVcpu => return run::run_tvm_vcpu(host, a[0], a[1]),
        CovhFunction::TvmFence => invalidate::tvm_fence(me, a[0]),
        CovhFunction::TvmInvalidatePages => invalidate::invalidate_pages(a[0], a[1], a[2]),
        CovhFunction::TvmValidatePages => invalidate::validate_pages(a[0], a[1], a[2]),
        CovhFunction::TvmRemovePages => invalidate::remove_pages(me, a[0], a[1], a[2]),
    };
    check_invariants();
    r
}

/// Salus's own bookkeeping must balance after every call; a failure here is
/// a Salus bug, never something the host can cause.
fn check_invariants() {
    // No guard pages (paging is off): catch a stack overflow here, after
    // the deepest paths, before it corrupts another hart's stack for long.
    let me = crate::arch::entry::hart_id();
    assert!(
        crate::arch::entry::stack_canary_intact(me),
        "hart {me}: stack overflow"
    );
    if DEEP_CHECKS.load(core::sync::atomic::Ordering::Relaxed) {
        deep_check();
        return;
    }
    let census = crate::memory::page_map().lock().census();
    assert!(census.is_balanced(), "page census out of balance");
}

static DEEP_CHECKS: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);

/// `salus.check`: cross-check the page map against the TSM after each call.
pub fn enable_deep_checks() {
    DEEP_CHECKS.store(true, core::sync::atomic::Ordering::Relaxed);
}

/// Whether `salus.check` is on.
pub fn deep_checks() -> bool {
    DEEP_CHECKS.load(core::sync::atomic::Ordering::Relaxed)
}

/// Every page owned by or shared with a TVM belongs to a live TVM (or one
/// whose pages are being released); pages waiting for a fence are exactly
/// those the TSM has queued; Released/Reclaiming pages are exactly those
/// calls are scrubbing right now; the census balances and matches a
/// recount. Costs a scan of the page map.
// A check mode: its asserts stop Salus on its own bookkeeping errors, and
// the census arrays are indexed by StateKind::index() (< COUNT).
#[allow(clippy::indexing_slicing)]
fn deep_check() {
    use page_tracking::{PageState, StateKind};
    let tsm = TSM.lock();
    let map = crate::memory::page_map().lock();
    let census = map.census();
    assert!(census.is_balanced(), "page census out of balance");
    let mut recount = [0u64; StateKind::COUNT];
    let mut converting = 0;
    for (range, state) in map.runs() {
        let pages = range.len / PAGE_SIZE;
        recount[state.kind().index()] += pages;
        if let Some(id) = state.tvm() {
            assert!(
                tsm.tvms.owns_pages(id),
                "{:?} pages at {:#x} belong to no live TVM",
                state,
                range.start.bits()
            );
        }
        if state == PageState::ConvertPending {
            converting += pages;
        }
    }
    assert_eq!(
        census.count(StateKind::Released) + census.count(StateKind::Reclaiming),
        tsm.detached,
        "Released/Reclaiming pages no call is scrubbing"
    );
    for kind in StateKind::ALL {
        assert_eq!(
            recount[kind.index()],
            census.count(kind),
            "census of {:?} is stale",
            kind
        );
    }
    assert_eq!(
        converting,
        tsm.conv.queued_pages(),
        "converting pages not queued for a fence"
    );
}

/// A host hart stopped running host code: it can no longer hold stale
/// host translations it will use (it fences when it starts again).
pub fn hart_parked(hartid: usize) {
    convert::hart_fenced(hartid);
}
