//! Page conversion (host -> confidential), the global/local fence protocol
//! that completes it, and reclaim (confidential -> host).

use super::host_side::HostSide;
use super::{page_range, CoveResult, FAILED, INVALID_ADDRESS, TSM};
use crate::arch::{self, phys};
use crate::hart::{self, HsmState};
use crate::memory;
use cove_abi::CoveError;
use hyp_addr::{HostRange, PAGE_SIZE};
use sbi_abi::SbiError;

/// Ranges converted but not yet covered by a completed fence are bounded so
/// a hostile host cannot grow Salus's memory: a fixed list, no heap.
const MAX_PENDING: usize = 1024;

/// A fixed-capacity list of host ranges.
pub struct RangeList {
    ranges: [HostRange; MAX_PENDING],
    len: usize,
}

impl RangeList {
    const fn new() -> Self {
        RangeList {
            ranges: [HostRange {
                start: hyp_addr::HostPhysAddr::new(0),
                len: 0,
            }; MAX_PENDING],
            len: 0,
        }
    }
    fn iter(&self) -> impl Iterator<Item = &HostRange> {
        self.ranges.iter().take(self.len)
    }
    fn is_full(&self) -> bool {
        self.len >= MAX_PENDING
    }
    /// Appends `r`, merged with the last range when contiguous (the common
    /// case); false when full.
    fn push(&mut self, r: HostRange) -> bool {
        if let Some(last) = self.len.checked_sub(1).and_then(|i| self.ranges.get_mut(i)) {
            if last.end() == r.start {
                last.len += r.len;
                return true;
            }
        }
        match self.ranges.get_mut(self.len) {
            Some(slot) => {
                *slot = r;
                self.len += 1;
                true
            }
            None => false,
        }
    }
}

/// The conversion bookkeeping. Two fixed lists that trade roles (never
/// moved: each is 16 KiB, too big for a hart's stack): one collects new
/// conversions, the other holds the batch of the fence in flight.
pub struct Conversions {
    lists: [RangeList; 2],
    /// Which list collects new conversions (the second one if true).
    pending: bool,
    /// Harts that must still call local_fence for the batch; None when no
    /// fence is in flight (the batch list is then empty).
    waiting: Option<u64>,
    /// Global fences started and completed so far: what is converted while
    /// `started` is r waits for round r (COVI guest files use this).
    started: u64,
    completed: u64,
}

impl Conversions {
    pub const fn new() -> Self {
        Conversions {
            lists: [RangeList::new(), RangeList::new()],
            pending: false,
            waiting: None,
            started: 0,
            completed: 0,
        }
    }

    fn pending(&mut self) -> &mut RangeList {
        let [a, b] = &mut self.lists;
        if self.pending {
            b
        } else {
            a
        }
    }

    fn batch(&mut self) -> &mut RangeList {
        let [a, b] = &mut self.lists;
        if self.pending {
            a
        } else {
            b
        }
    }

    /// Pages converted and not yet released by a completed fence.
    pub fn queued_pages(&self) -> u64 {
        self.lists
            .iter()
            .flat_map(|l| l.iter())
            .map(|r| r.len / PAGE_SIZE)
            .sum()
    }

    /// The fence round that completes what is converted now.
    pub fn next_round(&self) -> u64 {
        self.started
    }

    /// Rounds completed: round r is done once this is above r.
    pub fn rounds_completed(&self) -> u64 {
        self.completed
    }

    /// The batch's fence has completed on every hart.
    fn complete_batch(&mut self) {
        self.waiting = None;
        self.completed = self.started;
        let batch = self.batch();
        complete(batch);
        batch.len = 0;
    }
}

/// COVH convert_pages: Host -> ConvertPending, and out of the host's
/// stage-2 at once, so the host loses access before anything else happens.
pub fn convert_pages(host: &impl HostSide, base: u64, n: u64) -> CoveResult {
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
    if tsm.conv.pending().is_full() {
        return Err(CoveError::OutOfMemory);
    }
    {
        let mut map = memory::page_map().lock();
        if map.state(range.start) != Ok(page_tracking::PageState::Host) {
            return Err(INVALID_ADDRESS);
        }
        if !map.ram().contains_range(range.start, range.len) {
            // A valid start with a count that runs past the end of RAM.
            return Err(super::INVALID_PARAM);
        }
        map.convert_begin(range).map_err(|_| INVALID_ADDRESS)?;
    }
    // ConvertPending pages are usable by no one, and the TSM lock keeps
    // other conversions out until the host's stage-2 has lost them too.
    if host.unmap_pages(range).is_err() {
        // Host-owned pages are always mapped, so this is only an exhausted
        // table pool while splitting: undo and report it. Marked just above
        // under the TSM lock: cannot fail.
        let _ = memory::page_map().lock().transition(
            range,
            page_tracking::PageState::ConvertPending,
            page_tracking::PageState::Host,
        );
        return Err(CoveError::OutOfMemory);
    }
    // Not full (checked above): the push cannot fail.
    let _ = tsm.conv.pending().push(range);
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

fn complete(batch: &RangeList) {
    let mut map = memory::page_map().lock();
    for r in batch.iter() {
        // Queued ranges are ConvertPending until completed here, once.
        let _ = map.convert_complete(*r);
    }
}

/// COVH global_fence: starts the shootdown for everything converted so far.
pub fn global_fence(host: &impl HostSide, me: usize) -> CoveResult {
    let mut tsm = TSM.lock();
    if tsm.conv.waiting.is_some() {
        return Err(CoveError::Sbi(SbiError::AlreadyStarted));
    }
    arch::hfence_gvma_all();
    // Fail closed: devices may still reach the pages, which stay pending.
    host.fence_devices().map_err(|_| FAILED)?;
    // The pending list becomes the batch; the other one (empty: no fence
    // in flight) collects what comes next.
    tsm.conv.pending = !tsm.conv.pending;
    tsm.conv.started += 1;
    let waiting = running_harts() & !(1 << me);
    tsm.conv.waiting = Some(waiting);
    if waiting == 0 {
        tsm.conv.complete_batch();
    }
    Ok(0)
}

/// Hart `me` has no stale host translations any more.
pub fn hart_fenced(me: usize) {
    let mut tsm = TSM.lock();
    if let Some(w) = tsm.conv.waiting.as_mut() {
        *w &= !(1 << me);
        if *w == 0 {
            tsm.conv.complete_batch();
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
pub fn reclaim_pages(host: &impl HostSide, base: u64, n: u64) -> CoveResult {
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
    let mapped = host.map_pages(range).is_ok();
    let mut map = memory::page_map().lock();
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
