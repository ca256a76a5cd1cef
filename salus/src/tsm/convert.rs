//! Page conversion (host -> confidential), the global/local fence protocol
//! that completes it, and reclaim (confidential -> host).

use super::{page_range, CoveResult, FAILED, INVALID_ADDRESS, TSM};
use crate::arch::{self, phys};
use crate::hart::{self, HsmState};
use crate::memory::{self, HypTableMemory};
use alloc::vec::Vec;
use cove_abi::CoveError;
use hyp_addr::{HostRange, PAGE_SIZE};
use page_tables::Perms;
use sbi_abi::SbiError;

/// Ranges converted but not yet covered by a completed fence are bounded so
/// a hostile host cannot grow Salus's heap without limit.
const MAX_PENDING: usize = 1024;

struct Fence {
    /// Harts that must still call local_fence.
    waiting: u64,
    batch: Vec<HostRange>,
}

pub struct Conversions {
    /// Converted since the last global_fence started.
    pending: Vec<HostRange>,
    in_flight: Option<Fence>,
}

impl Conversions {
    pub const fn new() -> Self {
        Conversions {
            pending: Vec::new(),
            in_flight: None,
        }
    }

    /// Pages converted and not yet released by a completed fence.
    pub fn queued_pages(&self) -> u64 {
        let batch = self.in_flight.as_ref().map_or(&[][..], |f| &f.batch[..]);
        self.pending
            .iter()
            .chain(batch)
            .map(|r| r.len / PAGE_SIZE)
            .sum()
    }
}

/// COVH convert_pages: Host -> ConvertPending, and out of the host's
/// stage-2 at once, so the host loses access before anything else happens.
pub fn convert_pages(base: u64, n: u64) -> CoveResult {
    let range = page_range(base, n)?;
    let mut tsm = TSM.lock();
    // The hosts's NACL shared memory stays the host's while registered.
    for h in 0..crate::platform::get().nharts {
        let shmem = hart::shared(h)
            .nacl_shmem
            .load(core::sync::atomic::Ordering::Acquire);
        let nacl = HostRange::new(
            hyp_addr::HostPhysAddr::new(shmem),
            cove_abi::nacl::SHMEM_SIZE as u64,
        );
        if shmem != 0 && nacl.is_some_and(|n| n.overlaps(&range)) {
            return Err(INVALID_ADDRESS);
        }
    }
    if tsm.conv.pending.len() >= MAX_PENDING {
        return Err(CoveError::OutOfMemory);
    }
    let mut gstage = crate::host::GSTAGE.lock();
    let gstage = gstage.as_mut().ok_or(FAILED)?;
    let mut map = memory::page_map().lock();
    if map.state(range.start) != Ok(page_tracking::PageState::Host) {
        return Err(INVALID_ADDRESS);
    }
    if !map.ram().contains_range(range.start, range.len) {
        // A valid start with a count that runs past the end of RAM.
        return Err(super::INVALID_PARAM);
    }
    map.convert_begin(range).map_err(|_| INVALID_ADDRESS)?;
    if gstage
        .unmap_range(&mut HypTableMemory, range.start.identity(), range.len)
        .is_err()
    {
        // Host-owned pages are always mapped, so this is only an exhausted
        // table pool while splitting: undo and report it.
        // Marked just above under the same lock: cannot fail.
        let _ = map.transition(
            range,
            page_tracking::PageState::ConvertPending,
            page_tracking::PageState::Host,
        );
        return Err(CoveError::OutOfMemory);
    }
    drop(map);
    // Merge with the previous range when contiguous (the common case).
    match tsm.conv.pending.last_mut() {
        Some(last) if last.end() == range.start => last.len += range.len,
        _ => tsm.conv.pending.push(range),
    }
    Ok(0)
}

/// Harts whose host vCPU may hold translations: started or suspended.
fn running_harts() -> u64 {
    let mut mask = 0;
    for h in 0..crate::platform::get().nharts {
        if matches!(
            hart::shared(h).hsm(),
            HsmState::Started | HsmState::Suspended | HsmState::StopPending
        ) {
            mask |= 1 << h;
        }
    }
    mask
}

fn complete(batch: &[HostRange]) {
    let mut map = memory::page_map().lock();
    for r in batch {
        // Queued ranges are ConvertPending until completed here, once.
        let _ = map.convert_complete(*r);
    }
}

/// COVH global_fence: starts the shootdown for everything converted so far.
pub fn global_fence(me: usize) -> CoveResult {
    let mut tsm = TSM.lock();
    if tsm.conv.in_flight.is_some() {
        return Err(CoveError::Sbi(SbiError::AlreadyStarted));
    }
    arch::hfence_gvma_all();
    // Fail closed: devices may still reach the pages, which stay pending.
    crate::host::gstage_changed().map_err(|_| FAILED)?;
    let batch = core::mem::take(&mut tsm.conv.pending);
    let waiting = running_harts() & !(1 << me);
    if waiting == 0 {
        complete(&batch);
    } else {
        tsm.conv.in_flight = Some(Fence { waiting, batch });
    }
    Ok(0)
}

/// Hart `me` has no stale host translations any more.
pub fn hart_fenced(me: usize) {
    let mut tsm = TSM.lock();
    let done = match tsm.conv.in_flight.as_mut() {
        Some(f) => {
            f.waiting &= !(1 << me);
            f.waiting == 0
        }
        None => false,
    };
    if done {
        if let Some(f) = tsm.conv.in_flight.take() {
            complete(&f.batch);
        }
    }
}

/// COVH local_fence.
pub fn local_fence(me: usize) -> CoveResult {
    arch::hfence_gvma_all();
    hart_fenced(me);
    Ok(0)
}

/// COVH reclaim_pages: Converted -> Host, zeroed, mapped for the host
/// again. The zeroing runs with no lock held, on pages the page map holds
/// as Reclaiming (no other call accepts them).
pub fn reclaim_pages(base: u64, n: u64) -> CoveResult {
    let range = page_range(base, n)?;
    {
        let mut tsm = TSM.lock();
        memory::page_map()
            .lock()
            .reclaim_begin(range)
            .map_err(|_| INVALID_ADDRESS)?;
        tsm.detached += n;
    }
    let me = crate::arch::entry::hart_id();
    let mut off = 0;
    while off < range.len {
        let chunk = (2u64 << 20).min(range.len - off);
        phys::scrub(hyp_addr::HostPhysAddr::new(range.start.bits() + off), chunk);
        hart::serve_fences(me);
        off += chunk;
    }
    let mut tsm = TSM.lock();
    tsm.detached -= n;
    let mut gstage = crate::host::GSTAGE.lock();
    let mut map = memory::page_map().lock();
    let mapped = gstage.as_mut().is_some_and(|g| {
        g.map_range(
            &mut HypTableMemory,
            range.start.identity(),
            range.start,
            range.len,
            Perms::RWX,
        )
        .is_ok()
    });
    let to = if mapped {
        page_tracking::PageState::Host
    } else {
        // Out of table frames: the pages stay confidential (and zeroed).
        page_tracking::PageState::Converted
    };
    map.transition(range, page_tracking::PageState::Reclaiming, to)
        .map_err(|_| FAILED)?;
    if mapped {
        Ok(0)
    } else {
        Err(CoveError::OutOfMemory)
    }
}
