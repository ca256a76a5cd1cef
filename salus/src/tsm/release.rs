//! Pages leaving the TVMs: destroy_tvm, and scrubbing released pages.
//!
//! Scrubbing is the one job that grows with a TVM's size, so it runs with
//! no lock held, on pages the page map already holds as `Released` (no
//! call accepts a page in that state, so nobody else can reach them); the
//! locks are taken only for bounded bookkeeping steps. `Tsm::detached`
//! counts the pages in flight so the invariant check can account for them.

use super::{CoveResult, INVALID_PARAM, TSM};
use crate::arch::phys;
use crate::{arch, hart, memory};
use cove_abi::CoveError;
use hyp_addr::{HostPhysAddr, HostRange, PAGE_SIZE};
use page_tracking::{ReleaseStep, TvmId};

/// Page-map entries looked at per lock hold while releasing a TVM.
const STEP_SCAN: usize = 8192;
/// Pages released (then scrubbed) per step.
const STEP_PAGES: usize = 512;
/// Bytes scrubbed between two looks at the fence mailbox.
const SCRUB_CHUNK: u64 = 2 << 20;

/// COVH destroy_tvm: every page back to the confidential pool (scrubbed),
/// shared pages back to the host.
pub fn destroy_tvm(me: usize, id: u64) -> CoveResult {
    let (slot, tid) = {
        let mut tsm = TSM.lock();
        let tvm = tsm.tvms.get(id)?;
        if tvm.busy > 0 || tvm.vcpu_states().any(|v| v.is_running()) {
            return Err(CoveError::Busy);
        }
        let tid = tvm.id;
        // From here no call finds the TVM: nothing can run or change it.
        let slot = tsm.tvms.begin_destroy(id).ok_or(INVALID_PARAM)?;
        super::covi::tvm_destroyed(&mut tsm.files, id);
        (slot, tid)
    };
    // No hart may keep translations of this VMID (reused later) or of the
    // TVM's pages (handed out again once scrubbed). No lock held.
    hart::remote_fence(me, hart::all_harts());
    arch::hfence_gvma_all();
    release_all(me, tid);
    TSM.lock().tvms.end_destroy(slot);
    Ok(0)
}

/// Releases every page of the dead TVM `id` in bounded steps.
fn release_all(me: usize, id: TvmId) {
    let mut cursor = 0;
    loop {
        let step = {
            let mut tsm = TSM.lock();
            let step =
                memory::page_map()
                    .lock()
                    .release_tvm_step(id, &mut cursor, STEP_SCAN, STEP_PAGES);
            if let ReleaseStep::Released(r) = step {
                tsm.detached += r.len / PAGE_SIZE;
            }
            step
        };
        match step {
            ReleaseStep::Done => return,
            ReleaseStep::Released(r) => scrub_released(me, r),
            ReleaseStep::Scanned | ReleaseStep::Unshared(_) => {}
        }
        hart::serve_fences(me);
    }
}

/// Scrubs `range` (pages this hart moved to `Released` and counted in
/// `detached`) with no lock held, then returns it to the free
/// confidential pool.
pub fn scrub_released(me: usize, range: HostRange) {
    let mut off = 0;
    while off < range.len {
        let chunk = SCRUB_CHUNK.min(range.len - off);
        phys::scrub(HostPhysAddr::new(range.start.bits() + off), chunk);
        hart::serve_fences(me);
        off += chunk;
    }
    let mut tsm = TSM.lock();
    // Only this hart changes Released pages it released: cannot fail.
    let _ = memory::page_map().lock().scrub_complete(range);
    tsm.detached = tsm.detached.saturating_sub(range.len / PAGE_SIZE);
}
