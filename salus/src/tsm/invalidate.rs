//! Taking pages out of a TVM's address space: tvm_fence, invalidate,
//! validate, remove, and the TVM's own unshare.
//!
//! Fences work by epochs (see `Tvm::epoch`): what is unmapped or freed in
//! an epoch is reusable only after a fence started in a later epoch has
//! completed on every hart. The remote fence runs with no lock held.

use super::release::scrub_released;
use super::tvm::{Invalidated, PhysPool, Tvm, MAX_INVALIDATED};
use super::{CoveResult, FAILED, INVALID_ADDRESS, INVALID_PARAM, TSM};
use crate::{arch, hart, memory};
use cove_abi::CoveError;
use hyp_addr::{GuestPhysAddr, GuestRange, HostPhysAddr, HostRange, PageSize, PAGE_SIZE};
use page_tables::Perms;
use page_tracking::PageState;

/// COVH tvm_fence: every hart drops this TVM's translations, so the
/// invalidation sequence completes before the call returns.
pub fn tvm_fence(me: usize, id: u64) -> CoveResult {
    let started = {
        let mut tsm = TSM.lock();
        let tvm = tsm.tvms.get(id)?;
        let e = tvm.epoch;
        tvm.epoch += 1;
        e
    };
    // No lock held: other harts' calls go on and they ack our IPI.
    hart::remote_fence(me, hart::all_harts());
    arch::hfence_gvma_all();
    let mut tsm = TSM.lock();
    if let Ok(tvm) = tsm.tvms.get(id) {
        fence_completed(tvm, started);
    }
    Ok(0)
}

/// A fence started in epoch `started` has completed on every hart.
pub fn fence_completed(tvm: &mut Tvm, started: u64) {
    tvm.fenced_epoch = tvm.fenced_epoch.max(started + 1);
    tvm.pool.release_fenced(&mut PhysPool, tvm.fenced_epoch);
}

/// A 4 KiB-aligned, non-empty guest range (the COVH/COVG argument rules).
pub fn gpa_range(gpa: u64, len: u64) -> Result<GuestRange, CoveError> {
    if len == 0 || !len.is_multiple_of(PAGE_SIZE) {
        return Err(INVALID_PARAM);
    }
    if !gpa.is_multiple_of(PAGE_SIZE) {
        return Err(INVALID_ADDRESS);
    }
    GuestRange::new(GuestPhysAddr::new(gpa), len).ok_or(INVALID_PARAM)
}

/// Tables `unmap_range` of `region` needs to split leaves straddling its
/// ends (an upper bound when both ends fall in one leaf). `only_shared`:
/// count only leaves of host pages shared with the TVM.
fn split_cost(tvm: &mut Tvm, region: GuestRange, only_shared: bool) -> u64 {
    let id = tvm.id;
    let (gstage, mem) = tvm.tables();
    let map = memory::page_map().lock();
    [region.start, region.end()]
        .into_iter()
        .map(|g| match gstage.translate(&mem, g) {
            Some(t) if !only_shared || map.state(t.hpa) == Ok(PageState::Shared(id)) => {
                gstage.split_tables_needed(&mem, g)
            }
            _ => 0,
        })
        .sum()
}

/// COVH tvm_invalidate_pages: unmaps a fully mapped range, remembering
/// where each piece was so it can be validated or removed.
pub fn invalidate_pages(id: u64, gpa: u64, len: u64) -> CoveResult {
    let range = gpa_range(gpa, len)?;
    let mut tsm = TSM.lock();
    let tvm = tsm.tvms.get(id)?;
    let free = tvm.invalidated.iter().filter(|r| r.len == 0).count();
    let tvm_id = tvm.id;
    // Collect contiguous runs first (one leaf at a time); nothing changes
    // until all checks pass.
    let mut runs = [Invalidated::default(); MAX_INVALIDATED];
    let mut n: usize = 0;
    {
        let epoch = tvm.epoch;
        let (gstage, mem) = tvm.tables();
        let map = memory::page_map().lock();
        let mut g = range.start.bits();
        while g < range.end().bits() {
            let t = gstage
                .translate(&mem, GuestPhysAddr::new(g))
                .ok_or(INVALID_ADDRESS)?;
            let leaf_end = (g & !(t.size.bytes() - 1)).saturating_add(t.size.bytes());
            let step = leaf_end.min(range.end().bits()) - g;
            // Only the TVM's own data pages and host pages shared with it
            // (never an IMSIC guest file COVI mapped: the TSM's business).
            let shared = match map.state(t.hpa) {
                Ok(PageState::Shared(o)) if o == tvm_id => true,
                Ok(PageState::Tvm(o, page_tracking::TvmPageKind::Data)) if o == tvm_id => false,
                _ => return Err(INVALID_ADDRESS),
            };
            match n.checked_sub(1).and_then(|i| runs.get_mut(i)) {
                Some(r)
                    if r.gpa + r.len == g
                        && r.hpa + r.len == t.hpa.bits()
                        && r.shared == shared =>
                {
                    r.len += step
                }
                _ => {
                    let slot = runs
                        .get_mut(n)
                        .filter(|_| n < free)
                        .ok_or(CoveError::OutOfMemory)?;
                    *slot = Invalidated {
                        gpa: g,
                        hpa: t.hpa.bits(),
                        len: step,
                        shared,
                        epoch,
                    };
                    n += 1;
                }
            }
            g += step;
        }
    }
    if split_cost(tvm, range, false) > tvm.pool.free() {
        return Err(CoveError::OutOfPtPages);
    }
    let (gstage, mut mem) = tvm.tables();
    gstage
        .unmap_range(&mut mem, range.start, range.len)
        .map_err(|_| FAILED)?;
    let mut it = runs.iter().take(n);
    for slot in tvm.invalidated.iter_mut().filter(|r| r.len == 0) {
        match it.next() {
            Some(r) => *slot = *r,
            None => break,
        }
    }
    Ok(0)
}

/// The invalidated pieces covering a range, taken out of the table.
struct Pieces {
    list: [Invalidated; MAX_INVALIDATED],
    n: usize,
}

impl Pieces {
    fn iter(&self) -> impl Iterator<Item = &Invalidated> {
        self.list.iter().take(self.n)
    }
}

/// The invalidated records cut by a range: the pieces inside it, and the
/// table as it would be without them. Changes nothing.
struct Cut {
    pieces: Pieces,
    covered: u64,
    rest: [Invalidated; MAX_INVALIDATED],
}

/// Cuts the records overlapping `range` (only shared ones if
/// `only_shared`); a record cut in the middle needs a free slot
/// (OUT_OF_MEMORY).
fn cut_records(tvm: &Tvm, range: GuestRange, only_shared: bool) -> Result<Cut, CoveError> {
    let mut cut = Cut {
        pieces: Pieces {
            list: [Invalidated::default(); MAX_INVALIDATED],
            n: 0,
        },
        covered: 0,
        rest: [Invalidated::default(); MAX_INVALIDATED],
    };
    let mut n = 0;
    for r in tvm.invalidated.iter().filter(|r| r.len != 0) {
        let selected = r.region().overlaps(&range) && (r.shared || !only_shared);
        if selected {
            // Records never overlap (adds refuse invalidated GPAs); if they
            // did, covering would be counted twice: refuse.
            if cut.pieces.iter().any(|p| p.region().overlaps(&r.region())) {
                return Err(INVALID_ADDRESS);
            }
            let s = r.gpa.max(range.start.bits());
            let e = r.region().end().bits().min(range.end().bits());
            cut.covered += e - s;
            // At most one piece per record: the list cannot overflow.
            if let Some(slot) = cut.pieces.list.get_mut(cut.pieces.n) {
                *slot = Invalidated {
                    gpa: s,
                    hpa: r.hpa + (s - r.gpa),
                    len: e - s,
                    ..*r
                };
                cut.pieces.n += 1;
            }
        }
        let whole = [r.region(), GuestRange::default()];
        let keep = if selected {
            r.region().minus(&range)
        } else {
            whole
        };
        for p in keep.iter().filter(|p| !p.is_empty()) {
            let slot = cut.rest.get_mut(n).ok_or(CoveError::OutOfMemory)?;
            *slot = Invalidated {
                gpa: p.start.bits(),
                hpa: r.hpa + (p.start.bits() - r.gpa),
                len: p.len,
                ..*r
            };
            n += 1;
        }
    }
    Ok(cut)
}

/// Takes the invalidated pieces covering `range` out of the table; fails
/// (changing nothing) unless they cover it completely and, if
/// `need_fenced`, were all fenced.
fn take_invalidated(
    tvm: &mut Tvm,
    range: GuestRange,
    need_fenced: bool,
) -> Result<Pieces, CoveError> {
    let cut = cut_records(tvm, range, false)?;
    if cut.covered != range.len {
        return Err(INVALID_ADDRESS);
    }
    if need_fenced && cut.pieces.iter().any(|p| !tvm.fenced(p.epoch)) {
        return Err(INVALID_ADDRESS);
    }
    tvm.invalidated = cut.rest;
    Ok(cut.pieces)
}

/// COVH tvm_validate_pages: maps invalidated pages back where they were,
/// all or nothing. A shared page goes back only where the TVM still allows
/// sharing: after an unshare that GPA is confidential-only.
pub fn validate_pages(id: u64, gpa: u64, len: u64) -> CoveResult {
    let range = gpa_range(gpa, len)?;
    let mut tsm = TSM.lock();
    let tvm = tsm.tvms.get(id)?;
    let saved = tvm.invalidated;
    let pieces = take_invalidated(tvm, range, false)?;
    let mut need = 0u64;
    let mut err = None;
    for p in pieces.iter() {
        if p.shared && !tvm.shareable.covers(&p.region()) {
            err = Some(INVALID_ADDRESS);
            break;
        }
        let (gstage, mem) = tvm.tables();
        match gstage.tables_needed(&mem, GuestPhysAddr::new(p.gpa), p.len, PageSize::Size4K) {
            Ok(k) => need += k,
            Err(_) => {
                err = Some(INVALID_ADDRESS);
                break;
            }
        }
    }
    if err.is_none() && need > tvm.pool.free() {
        // Pieces are counted apart: a table two of them share counts twice.
        err = Some(CoveError::OutOfPtPages);
    }
    if let Some(e) = err {
        tvm.invalidated = saved;
        return Err(e);
    }
    for p in pieces.iter() {
        let perms = if p.shared { Perms::RW } else { Perms::RWX };
        super::pages::map_checked(
            tvm,
            p.gpa,
            p.hpa,
            PageSize::Size4K,
            p.len / PAGE_SIZE,
            perms,
        )?;
    }
    Ok(0)
}

/// COVH tvm_remove_pages: invalidated and fenced pages leave the TVM.
/// Private pages are scrubbed outside the lock before anyone can use them.
pub fn remove_pages(me: usize, id: u64, gpa: u64, len: u64) -> CoveResult {
    let range = gpa_range(gpa, len)?;
    let pieces = {
        let mut tsm = TSM.lock();
        let tvm = tsm.tvms.get(id)?;
        let tid = tvm.id;
        let pieces = take_invalidated(tvm, range, true)?;
        let mut map = memory::page_map().lock();
        let mut detached = 0;
        for p in pieces.iter() {
            let r = HostRange::new(HostPhysAddr::new(p.hpa), p.len).ok_or(FAILED)?;
            if p.shared {
                map.unshare_from_tvm(r, tid).map_err(|_| FAILED)?;
            } else {
                map.release_from_tvm(r, tid).map_err(|_| FAILED)?;
                detached += r.len / PAGE_SIZE;
            }
        }
        drop(map);
        tsm.detached += detached;
        pieces
    };
    for p in pieces.iter().filter(|p| !p.shared) {
        if let Some(r) = HostRange::new(HostPhysAddr::new(p.hpa), p.len) {
            scrub_released(me, r);
        }
    }
    Ok(0)
}

/// COVG unshare: unmaps the host pages the TVM has in `region` (mapped or
/// invalidated) and gives them back to the host, all or nothing
/// (OUT_OF_PTPAGES when splitting a shared huge leaf needs tables the pool
/// lacks, OUT_OF_MEMORY when cutting an invalidated record needs a slot).
/// The caller fences every hart before the TVM runs again.
pub fn drop_shared(tvm: &mut Tvm, region: GuestRange) -> Result<(), CoveError> {
    if split_cost(tvm, region, true) > tvm.pool.free() {
        return Err(CoveError::OutOfPtPages);
    }
    // Shared pages the host invalidated in the region can never be
    // validated there again: their records go and the pages go back to the
    // host (the caller fences every hart before the TVM runs again).
    let cut = cut_records(tvm, region, true)?;
    let id = tvm.id;
    tvm.invalidated = cut.rest;
    {
        let mut map = memory::page_map().lock();
        for p in cut.pieces.iter() {
            if let Some(r) = HostRange::new(HostPhysAddr::new(p.hpa), p.len) {
                let _ = map.unshare_from_tvm(r, id);
            }
        }
    }
    let (gstage, mut mem) = tvm.tables();
    let mut map = memory::page_map().lock();
    let mut g = region.start.bits();
    let end = region.end().bits();
    while g < end {
        // Skip whole unmapped stretches: the range may be huge.
        if let Some(span) = gstage.unmapped_span(&mem, GuestPhysAddr::new(g)) {
            g = g.saturating_add(span);
            continue;
        }
        let Some(t) = gstage.translate(&mem, GuestPhysAddr::new(g)) else {
            g += PAGE_SIZE;
            continue;
        };
        let leaf_end = (g & !(t.size.bytes() - 1)).saturating_add(t.size.bytes());
        let piece = leaf_end.min(end) - g;
        if map.state(t.hpa) == Ok(PageState::Shared(id)) {
            gstage
                .unmap_range(&mut mem, GuestPhysAddr::new(g), piece)
                .map_err(|_| FAILED)?;
            if let Some(r) = HostRange::new(t.hpa, piece) {
                let _ = map.unshare_from_tvm(r, id);
            }
        }
        g += piece;
    }
    Ok(())
}
