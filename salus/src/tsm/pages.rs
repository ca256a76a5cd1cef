//! Adding pages to a TVM: measured (before finalize), zero (after) and
//! shared host pages.
//!
//! Every add is all or nothing: the GPA range is checked unmapped and the
//! TVM's table pool checked to hold every table the mapping needs before
//! anything changes, so mapping cannot fail half way (a half-mapped,
//! rolled-back range would leave translations a running vCPU may have
//! cached to pages handed out again).
//!
//! Work that grows with the page count (copying, hashing, zeroing) runs
//! outside the TSM lock, on pages already assigned to the TVM and not yet
//! mapped: nobody else can reach them, and the TVM is marked busy so it
//! cannot be destroyed meanwhile (docs/security.md, "Work under locks").

use super::tvm::Tvm;
use super::{CoveResult, FAILED, INVALID_ADDRESS, INVALID_PARAM, TSM};
use crate::arch::phys;
use crate::{hart, memory};
use cove_abi::{CoveError, PageType};
use hyp_addr::{GuestPhysAddr, GuestRange, HostPhysAddr, HostRange, PageSize, PAGE_SIZE};
use page_tables::Perms;
use page_tracking::{TvmId, TvmPageKind};

/// Pages copied per TSM lock hold (the source is host memory: the lock
/// keeps it from being converted while it is read).
const COPY_CHUNK: u64 = 16 * PAGE_SIZE;
/// Bytes zeroed between two looks at the fence mailbox.
const ZERO_CHUNK: u64 = 2 << 20;

fn page_size(page_type: u64) -> Result<PageSize, CoveError> {
    match PageType::from_u64(page_type).ok_or(INVALID_PARAM)? {
        PageType::Page4K => Ok(PageSize::Size4K),
        PageType::Page2M => Ok(PageSize::Size2M),
        PageType::Page1G => Ok(PageSize::Size1G),
        PageType::Page512G => Err(INVALID_PARAM),
    }
}

/// A checked add: `n` leaves of `size` from `range` at `region`.
#[derive(Clone, Copy)]
struct Add {
    size: PageSize,
    n: u64,
    range: HostRange,
    region: GuestRange,
}

/// Checks shared by the add_* calls: page type, count, alignment, a GPA
/// range fully inside `allowed` and unmapped. Whether the pool has the
/// tables is checked once the pages are known to be usable (`has_tables`),
/// so page errors come first.
fn check_add(
    tvm: &mut Tvm,
    base: u64,
    page_type: u64,
    n: u64,
    gpa: u64,
    allowed: impl Fn(&Tvm, &GuestRange) -> bool,
) -> Result<Add, CoveError> {
    let size = page_size(page_type)?;
    let len = n
        .checked_mul(size.bytes())
        .filter(|l| *l != 0)
        .ok_or(INVALID_PARAM)?;
    // Never more than all of RAM: also bounds the per-page work below, so
    // a huge count cannot keep the TSM busy.
    if len > memory::page_map().lock().ram().len {
        return Err(INVALID_PARAM);
    }
    if !base.is_multiple_of(size.bytes()) {
        return Err(INVALID_ADDRESS);
    }
    let range = HostRange::new(HostPhysAddr::new(base), len).ok_or(INVALID_PARAM)?;
    let region = GuestRange::new(GuestPhysAddr::new(gpa), len).ok_or(INVALID_ADDRESS)?;
    // Invalidated pages stay invalid until validated or removed: nothing
    // else may be mapped there meanwhile (two records for one GPA).
    let invalidated = tvm
        .invalidated
        .iter()
        .any(|r| r.len != 0 && r.region().overlaps(&region));
    if !gpa.is_multiple_of(size.bytes()) || !allowed(tvm, &region) || invalidated {
        return Err(INVALID_ADDRESS);
    }
    match check_mappable(tvm, region, size) {
        Ok(()) | Err(CoveError::OutOfPtPages) => {}
        Err(e) => return Err(e),
    }
    Ok(Add {
        size,
        n,
        range,
        region,
    })
}

/// `region` is unmapped and the pool holds the tables mapping it with
/// leaves of `size` needs.
pub fn check_mappable(tvm: &mut Tvm, region: GuestRange, size: PageSize) -> Result<(), CoveError> {
    let need = {
        let (gstage, mem) = tvm.tables();
        gstage.tables_needed(&mem, region.start, region.len, size)
    };
    match need {
        Ok(n) if n <= tvm.pool.free() => Ok(()),
        Ok(_) => Err(CoveError::OutOfPtPages),
        Err(_) => Err(INVALID_ADDRESS),
    }
}

/// Maps what `check_mappable` accepted under the same lock hold; cannot
/// fail half way (an error here is a Salus bug, reported as FAILED).
pub fn map_checked(
    tvm: &mut Tvm,
    gpa: u64,
    hpa: u64,
    size: PageSize,
    n: u64,
    perms: Perms,
) -> Result<(), CoveError> {
    let (gstage, mut mem) = tvm.tables();
    for i in 0..n {
        let off = i * size.bytes();
        gstage
            .map(
                &mut mem,
                GuestPhysAddr::new(gpa + off),
                HostPhysAddr::new(hpa + off),
                size,
                perms,
            )
            .map_err(|_| FAILED)?;
    }
    Ok(())
}

/// Every page of `range` is the host's (else INVALID_ADDRESS).
fn check_shareable_pages(range: HostRange) -> Result<(), CoveError> {
    if memory::host_owns(range.start.bits(), range.len) {
        Ok(())
    } else {
        Err(INVALID_ADDRESS)
    }
}

/// Gives back pages assigned in this call that were never mapped and never
/// held TVM data (a copy of host data at most): back to Converted.
fn give_back_unused(id: TvmId, range: HostRange) {
    let mut map = memory::page_map().lock();
    if map.release_from_tvm(range, id).is_ok() {
        let _ = map.scrub_complete(range);
    }
}

/// Takes the destination pages of `add` for the TVM, then checks the pool
/// has the tables to map them (page errors first); on error nothing changed.
fn assign_data(tvm: &mut Tvm, add: &Add) -> Result<(), CoveError> {
    memory::page_map()
        .lock()
        .assign_to_tvm(add.range, tvm.id, TvmPageKind::Data)
        .map_err(|_| INVALID_ADDRESS)?;
    check_mappable(tvm, add.region, add.size).inspect_err(|_| {
        give_back_unused(tvm.id, add.range);
    })
}

/// Ends a call's work outside the lock on TVM `id` (busy was raised).
fn finish_busy(tvm: &mut Tvm) {
    tvm.busy = tvm.busy.saturating_sub(1);
}

/// COVH add_tvm_measured_pages.
pub fn add_measured_pages(
    id: u64,
    src: u64,
    dest: u64,
    page_type: u64,
    n: u64,
    gpa: u64,
) -> CoveResult {
    let me = crate::arch::entry::hart_id();
    let (add, tid, mut m) = {
        let mut tsm = TSM.lock();
        let tvm = tsm.tvms.get(id)?;
        tvm.check_measurable()?;
        let add = check_add(tvm, dest, page_type, n, gpa, |t, r| {
            t.confidential.covers(r)
        })?;
        if !src.is_multiple_of(PAGE_SIZE) || !memory::host_owns(src, add.range.len) {
            return Err(INVALID_ADDRESS);
        }
        assign_data(tvm, &add)?;
        tvm.measuring = true;
        tvm.busy += 1;
        (add, tvm.id, tvm.measurement)
    };
    // Copy what the TVM will see, then measure the copy: the host can no
    // longer change the destination.
    let len = add.range.len;
    let mut err = None;
    let mut off = 0;
    while off < len {
        let chunk = COPY_CHUNK.min(len - off);
        {
            let _tsm = TSM.lock();
            if !memory::host_owns(src + off, chunk) {
                err = Some(INVALID_ADDRESS);
                break;
            }
            phys::copy_phys(
                HostPhysAddr::new(dest + off),
                HostPhysAddr::new(src + off),
                chunk,
            );
        }
        let mut p = 0;
        while p < chunk {
            // SAFETY: the page is this TVM's (assigned above), mapped for
            // nobody, and the TVM is busy: nothing writes it meanwhile.
            let page = unsafe { phys::page(HostPhysAddr::new(dest + off + p)) };
            m.extend_page(gpa + off + p, page);
            p += PAGE_SIZE;
        }
        hart::serve_fences(me);
        off += chunk;
    }
    let mut tsm = TSM.lock();
    // Busy: the TVM cannot have been destroyed meanwhile.
    let tvm = tsm.tvms.get(id).map_err(|_| FAILED)?;
    tvm.measuring = false;
    finish_busy(tvm);
    // Another call may have mapped the GPAs or used tables meanwhile.
    let r = match err {
        Some(e) => Err(e),
        None => check_mappable(tvm, add.region, add.size),
    };
    if let Err(e) = r {
        give_back_unused(tid, add.range);
        return Err(e);
    }
    map_checked(tvm, gpa, dest, add.size, add.n, Perms::RWX)?;
    tvm.measurement = m;
    Ok(0)
}

/// COVH add_tvm_zero_pages (after finalize: demand-zero faults).
pub fn add_zero_pages(id: u64, base: u64, page_type: u64, n: u64, gpa: u64) -> CoveResult {
    let me = crate::arch::entry::hart_id();
    let (add, tid) = {
        let mut tsm = TSM.lock();
        let tvm = tsm.tvms.get(id)?;
        if !tvm.runnable {
            return Err(INVALID_PARAM);
        }
        let add = check_add(tvm, base, page_type, n, gpa, |t, r| {
            t.confidential.covers(r) && !t.shareable.overlaps(r)
        })?;
        assign_data(tvm, &add)?;
        tvm.busy += 1;
        (add, tvm.id)
    };
    let mut off = 0;
    while off < add.range.len {
        let chunk = ZERO_CHUNK.min(add.range.len - off);
        phys::zero(HostPhysAddr::new(base + off), chunk);
        hart::serve_fences(me);
        off += chunk;
    }
    let mut tsm = TSM.lock();
    let tvm = tsm.tvms.get(id).map_err(|_| FAILED)?;
    finish_busy(tvm);
    if let Err(e) = check_mappable(tvm, add.region, add.size) {
        give_back_unused(tid, add.range);
        return Err(e);
    }
    map_checked(tvm, gpa, base, add.size, add.n, Perms::RWX)?;
    Ok(0)
}

/// COVH add_tvm_shared_pages: host pages into a range the TVM declared
/// shareable; they stay mapped for the host too.
pub fn add_shared_pages(id: u64, base: u64, page_type: u64, n: u64, gpa: u64) -> CoveResult {
    let mut tsm = TSM.lock();
    let tvm = tsm.tvms.get(id)?;
    let add = check_add(tvm, base, page_type, n, gpa, |t, r| t.shareable.covers(r))?;
    check_shareable_pages(add.range)?;
    check_mappable(tvm, add.region, add.size)?;
    memory::page_map()
        .lock()
        .share_with_tvm(add.range, tvm.id)
        .map_err(|_| INVALID_ADDRESS)?;
    map_checked(tvm, gpa, base, add.size, add.n, Perms::RW)?;
    Ok(0)
}
