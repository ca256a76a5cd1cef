//! TVMs: creation from donated pages, memory regions, the page-table pool,
//! measured / zero / shared pages, vCPUs, finalize, invalidation and
//! destruction. A TVM's control structure lives in its donated state pages.

use super::vcpu::{self, VcpuState};
use super::{page_range, CoveResult, FAILED, INVALID_ADDRESS, INVALID_PARAM, TSM};
use crate::arch::phys;
use crate::memory;
use cove_abi::{CoveError, PageType, TvmCreateParams};
use hyp_addr::{GuestPhysAddr, HostPhysAddr, HostRange, PageSize, PAGE_SIZE};
use measurement::{Backend, Measurement};
use page_tables::{GStageMode, GStageTable, PageTableMemory, Perms};
use page_tracking::{PageState, TvmId, TvmPageKind};
use sbi_abi::SbiError;

pub const MAX_TVMS: usize = 64;
pub const MAX_VCPUS: usize = 8;
pub const MAX_REGIONS: usize = 16;
pub const MAX_INVALIDATED: usize = 32;

/// A guest-physical range `[start, start + len)`; `len == 0` is empty.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Region {
    pub start: u64,
    pub len: u64,
}

impl Region {
    pub fn new(start: u64, len: u64) -> Option<Region> {
        start.checked_add(len)?;
        Some(Region { start, len })
    }
    pub fn end(&self) -> u64 {
        self.start + self.len
    }
    pub fn contains(&self, gpa: u64) -> bool {
        gpa >= self.start && gpa < self.end()
    }
    pub fn covers(&self, other: &Region) -> bool {
        other.start >= self.start && other.end() <= self.end()
    }
    pub fn overlaps(&self, other: &Region) -> bool {
        self.start < other.end() && other.start < self.end()
    }
}

/// A small fixed set of disjoint regions.
#[derive(Clone, Copy, Debug, Default)]
pub struct RegionSet {
    regions: [Region; MAX_REGIONS],
}

impl RegionSet {
    pub fn iter(&self) -> impl Iterator<Item = &Region> {
        self.regions.iter().filter(|r| r.len != 0)
    }
    pub fn find(&self, gpa: u64) -> Option<Region> {
        self.iter().find(|r| r.contains(gpa)).copied()
    }
    pub fn covers(&self, r: &Region) -> bool {
        self.iter().any(|x| x.covers(r))
    }
    pub fn overlaps(&self, r: &Region) -> bool {
        self.iter().any(|x| x.overlaps(r))
    }
    /// Adds `r` (must not overlap); false when full.
    pub fn insert(&mut self, r: Region) -> bool {
        match self.regions.iter_mut().find(|x| x.len == 0) {
            Some(slot) => {
                *slot = r;
                true
            }
            None => false,
        }
    }
    /// Removes `r` from the set, splitting regions it cuts; false (and no
    /// change) when the split would need more slots than are free.
    pub fn remove(&mut self, r: &Region) -> bool {
        let mut next = RegionSet::default();
        let mut n = 0;
        for x in self.iter() {
            let pieces = [
                Region {
                    start: x.start,
                    len: r.start.saturating_sub(x.start).min(x.len),
                },
                Region {
                    start: r.end().max(x.start),
                    len: x.end().saturating_sub(r.end().max(x.start)),
                },
            ];
            for p in pieces.iter().filter(|p| p.len != 0) {
                if n == MAX_REGIONS {
                    return false;
                }
                next.regions[n] = *p;
                n += 1;
            }
        }
        *self = next;
        true
    }
}

/// One run of invalidated (unmapped) TVM pages, kept until validated or
/// removed.
#[derive(Clone, Copy, Debug, Default)]
pub struct Invalidated {
    pub gpa: u64,
    pub hpa: u64,
    pub len: u64,
    pub shared: bool,
    /// A tvm_fence completed since the pages were invalidated.
    pub fenced: bool,
}

/// The donated page-table pool: a free list threaded through the pages.
#[derive(Clone, Copy, Debug, Default)]
pub struct PtPool {
    head: u64,
    pub free: u64,
}

/// `PageTableMemory` over a TVM's pool (the root is its page directory).
pub struct TvmTableMemory<'a> {
    pool: &'a mut PtPool,
    root: Option<HostPhysAddr>,
}

impl PageTableMemory for TvmTableMemory<'_> {
    fn alloc_table(&mut self, bytes: u64) -> Option<HostPhysAddr> {
        if bytes != PAGE_SIZE {
            let root = self.root.take()?;
            phys::zero(root, bytes);
            return Some(root);
        }
        if self.pool.head == 0 {
            return None;
        }
        let pa = HostPhysAddr::new(self.pool.head);
        self.pool.head = phys::read_u64(pa);
        self.pool.free -= 1;
        phys::zero(pa, PAGE_SIZE);
        Some(pa)
    }
    fn free_table(&mut self, table: HostPhysAddr, bytes: u64) {
        if bytes == PAGE_SIZE {
            phys::write_u64(table, self.pool.head);
            self.pool.head = table.bits();
            self.pool.free += 1;
        }
    }
    fn read_pte(&self, entry_addr: HostPhysAddr) -> u64 {
        phys::read_u64(entry_addr)
    }
    fn write_pte(&mut self, entry_addr: HostPhysAddr, value: u64) {
        phys::write_u64(entry_addr, value)
    }
}

/// A TVM's control structure, placed in its donated state pages.
pub struct Tvm {
    pub id: TvmId,
    pub vmid: u16,
    pub runnable: bool,
    pub gstage: GStageTable,
    pub pool: PtPool,
    pub measurement: Measurement,
    pub identity: Option<[u8; 64]>,
    pub confidential: RegionSet,
    pub shareable: RegionSet,
    pub mmio: RegionSet,
    pub vcpus: [u64; MAX_VCPUS],
    pub invalidated: [Invalidated; MAX_INVALIDATED],
    pub ext_interrupts_allowed: bool,
}

impl Tvm {
    pub fn tables(&mut self) -> (&mut GStageTable, TvmTableMemory<'_>) {
        (
            &mut self.gstage,
            TvmTableMemory {
                pool: &mut self.pool,
                root: None,
            },
        )
    }

    pub fn hgatp(&self) -> u64 {
        self.gstage.hgatp(self.vmid)
    }

    /// The vCPU state page of `vcpu_id`, if created.
    pub fn vcpu(&self, vcpu_id: u64) -> Option<HostPhysAddr> {
        let a = *self.vcpus.get(vcpu_id as usize)?;
        (a != 0).then(|| HostPhysAddr::new(a))
    }
}

/// Pages a TVM's state needs.
pub fn state_pages() -> u64 {
    (core::mem::size_of::<Tvm>() as u64).div_ceil(PAGE_SIZE)
}

#[derive(Clone, Copy)]
struct Slot {
    id: TvmId,
    state: HostPhysAddr,
}

pub struct Registry {
    slots: [Option<Slot>; MAX_TVMS],
    next_gen: u32,
}

impl Registry {
    pub const fn new() -> Self {
        Registry {
            slots: [None; MAX_TVMS],
            next_gen: 1,
        }
    }

    /// TVM ids are `generation << 6 | slot`, so a lookup is one index and
    /// a stale id (its slot reused) never matches the new TVM.
    fn find(&self, id: u64) -> Option<(usize, HostPhysAddr)> {
        let slot = (id % MAX_TVMS as u64) as usize;
        self.slots[slot]
            .filter(|s| s.id.raw() as u64 == id)
            .map(|s| (slot, s.state))
    }

    /// A fresh id for `slot`.
    fn next_id(&mut self, slot: usize) -> Option<TvmId> {
        let id = TvmId::new((self.next_gen << 6) | slot as u32)?;
        self.next_gen = if self.next_gen >= TvmId::MAX >> 6 {
            1
        } else {
            self.next_gen + 1
        };
        Some(id)
    }

    /// True if a live TVM has this id.
    pub fn is_live(&self, id: TvmId) -> bool {
        self.find(id.raw() as u64).is_some()
    }

    /// The TVM with id `id` (INVALID_PARAM if none).
    pub fn get(&mut self, id: u64) -> Result<&'static mut Tvm, CoveError> {
        let (_, pa) = self.find(id).ok_or(INVALID_PARAM)?;
        // SAFETY: the slot points at a Tvm placed by create_tvm in pages the
        // page map holds as Tvm(id, State); the TSM lock (held by our
        // caller through `&mut self`) is the only path to it.
        Ok(unsafe { phys::object_at::<Tvm>(pa) })
    }
}

/// COVH create_tvm.
pub fn create_tvm(params_addr: u64, len: u64) -> CoveResult {
    if len < TvmCreateParams::SIZE as u64 {
        return Err(INVALID_PARAM);
    }
    if params_addr % 8 != 0 || !memory::host_owns(params_addr, TvmCreateParams::SIZE as u64) {
        return Err(INVALID_ADDRESS);
    }
    let mut raw = [0u8; TvmCreateParams::SIZE];
    phys::copy_from(HostPhysAddr::new(params_addr), &mut raw);
    let params = TvmCreateParams::from_bytes(&raw).ok_or(INVALID_PARAM)?;
    let pgdir_addr = params.tvm_page_directory_addr;
    if pgdir_addr % cove_abi::covh::TVM_PAGE_DIRECTORY_SIZE != 0 {
        return Err(INVALID_ADDRESS);
    }
    let pgdir = page_range(pgdir_addr, 4).map_err(|_| INVALID_ADDRESS)?;
    let state = page_range(params.tvm_state_addr, state_pages()).map_err(|_| INVALID_ADDRESS)?;
    if pgdir.overlaps(&state) {
        return Err(INVALID_ADDRESS);
    }

    let mut tsm = TSM.lock();
    let reg = &mut tsm.tvms;
    let slot = reg
        .slots
        .iter()
        .position(|s| s.is_none())
        .ok_or(CoveError::OutOfMemory)?;
    let id = reg.next_id(slot).ok_or(CoveError::OutOfMemory)?;
    {
        let mut map = memory::page_map().lock();
        map.assign_to_tvm(pgdir, id, TvmPageKind::PageTable)
            .map_err(|_| INVALID_ADDRESS)?;
        if map.assign_to_tvm(state, id, TvmPageKind::State).is_err() {
            map.release_from_tvm(pgdir, id).expect("assigned above");
            map.scrub_complete(pgdir).expect("released above");
            return Err(INVALID_ADDRESS);
        }
    }
    phys::zero(state.start, state.len);
    let mode = if crate::platform::get().host_hgatp >> 60 == GStageMode::Sv48x4.hgatp_mode() {
        GStageMode::Sv48x4
    } else {
        GStageMode::Sv39x4
    };
    let mut pool = PtPool::default();
    let gstage = GStageTable::new(
        &mut TvmTableMemory {
            pool: &mut pool,
            root: Some(pgdir.start),
        },
        mode,
    )
    .map_err(|_| FAILED)?;
    let backend = Backend::select(crate::platform::get().has_zknh);
    let tvm = Tvm {
        id,
        vmid: hw_policy::vmid_for(slot, crate::platform::get().vmid_bits, MAX_TVMS).0,
        runnable: false,
        gstage,
        pool,
        measurement: Measurement::new(backend),
        identity: None,
        confidential: RegionSet::default(),
        shareable: RegionSet::default(),
        mmio: RegionSet::default(),
        vcpus: [0; MAX_VCPUS],
        invalidated: [Invalidated::default(); MAX_INVALIDATED],
        ext_interrupts_allowed: false,
    };
    // SAFETY: `state` was just assigned to this TVM as its state pages
    // (Converted -> Tvm(id, State)), zeroed, and is large enough
    // (state_pages() covers size_of::<Tvm>()); nothing else refers to it.
    unsafe { phys::place(state.start, tvm) };
    reg.slots[slot] = Some(Slot {
        id,
        state: state.start,
    });
    Ok(id.raw() as u64)
}

/// COVH finalize_tvm.
pub fn finalize_tvm(id: u64, entry_sepc: u64, entry_arg: u64, identity_addr: u64) -> CoveResult {
    let mut tsm = TSM.lock();
    let tvm = tsm.tvms.get(id)?;
    if tvm.runnable {
        return Err(INVALID_PARAM);
    }
    if identity_addr != 0 {
        if identity_addr % 64 != 0 || !memory::host_owns(identity_addr, 64) {
            return Err(INVALID_PARAM);
        }
        let mut ident = [0u8; 64];
        phys::copy_from(HostPhysAddr::new(identity_addr), &mut ident);
        tvm.identity = Some(ident);
    }
    tvm.measurement.extend_finalize(entry_sepc, entry_arg);
    if let Some(pa) = tvm.vcpu(0) {
        // SAFETY: vCPU state placed by create_vcpu; TSM lock held; no vCPU of
        // a TVM that is not yet runnable can be running.
        let v = unsafe { phys::object_at::<VcpuState>(pa) };
        v.boot(entry_sepc, entry_arg);
    }
    tvm.runnable = true;
    Ok(0)
}

/// COVH destroy_tvm: every page back to the confidential pool (scrubbed),
/// shared pages back to the host.
pub fn destroy_tvm(me: usize, id: u64) -> CoveResult {
    let mut tsm = TSM.lock();
    let (slot, _) = tsm.tvms.find(id).ok_or(INVALID_PARAM)?;
    let tvm = tsm.tvms.get(id)?;
    for pa in tvm.vcpus.iter().filter(|a| **a != 0) {
        // SAFETY: as in finalize_tvm; only the atomic flag is read.
        let v = unsafe { phys::object_at::<VcpuState>(HostPhysAddr::new(*pa)) };
        if v.is_running() {
            return Err(CoveError::Busy);
        }
    }
    let tid = tvm.id;
    tsm.tvms.slots[slot] = None;
    // No hart may keep translations of this VMID: it is reused later.
    crate::host::sbi::remote_fence(me, all_harts());
    crate::arch::hfence_gvma_all();
    release_pages(tid);
    Ok(0)
}

fn all_harts() -> u64 {
    let n = crate::platform::get().nharts;
    if n >= 64 {
        u64::MAX
    } else {
        (1 << n) - 1
    }
}

/// Returns every page of `id` to its pool: TVM pages scrubbed to Converted,
/// shared pages to the host.
fn release_pages(id: TvmId) {
    let mut map = memory::page_map().lock();
    map.release_tvm(id);
    let released: alloc::vec::Vec<HostPhysAddr> = map.pages_in_state(PageState::Released).collect();
    for pa in released {
        phys::scrub(pa, PAGE_SIZE);
        let r = HostRange::new(pa, PAGE_SIZE).unwrap();
        map.scrub_complete(r).expect("released just above");
    }
}

/// COVH add_tvm_memory_region.
pub fn add_memory_region(id: u64, gpa: u64, len: u64) -> CoveResult {
    let mut tsm = TSM.lock();
    let tvm = tsm.tvms.get(id)?;
    if tvm.runnable {
        return Err(INVALID_PARAM);
    }
    if len == 0 || len % PAGE_SIZE != 0 {
        return Err(INVALID_PARAM);
    }
    let region = Region::new(gpa, len).ok_or(INVALID_PARAM)?;
    if gpa % PAGE_SIZE != 0 || region.end() > tvm.gstage.mode().gpa_limit() {
        return Err(INVALID_ADDRESS);
    }
    if tvm.confidential.overlaps(&region) {
        return Err(INVALID_ADDRESS);
    }
    if !tvm.confidential.insert(region) {
        return Err(CoveError::OutOfMemory);
    }
    Ok(0)
}

/// COVH add_tvm_page_table_pages.
pub fn add_page_table_pages(id: u64, base: u64, n: u64) -> CoveResult {
    let range = page_range(base, n).map_err(|e| {
        if e == INVALID_PARAM {
            INVALID_PARAM
        } else {
            INVALID_ADDRESS
        }
    })?;
    let mut tsm = TSM.lock();
    let tvm = tsm.tvms.get(id)?;
    memory::page_map()
        .lock()
        .assign_to_tvm(range, tvm.id, TvmPageKind::PageTable)
        .map_err(|_| INVALID_ADDRESS)?;
    let mut mem = TvmTableMemory {
        pool: &mut tvm.pool,
        root: None,
    };
    let mut p = range.start.bits();
    while p < range.end().bits() {
        mem.free_table(HostPhysAddr::new(p), PAGE_SIZE);
        p += PAGE_SIZE;
    }
    Ok(0)
}

fn page_size(page_type: u64) -> Result<PageSize, CoveError> {
    match PageType::from_u64(page_type).ok_or(INVALID_PARAM)? {
        PageType::Page4K => Ok(PageSize::Size4K),
        PageType::Page2M => Ok(PageSize::Size2M),
        PageType::Page1G => Ok(PageSize::Size1G),
        PageType::Page512G => Err(INVALID_PARAM),
    }
}

/// Checks shared by the add_* calls: page type, count, alignment, and a
/// GPA range that is fully inside `allowed` and not mapped yet.
fn check_add(
    tvm: &mut Tvm,
    base: u64,
    page_type: u64,
    n: u64,
    gpa: u64,
    allowed: impl Fn(&Tvm, &Region) -> bool,
) -> Result<(PageSize, HostRange, Region), CoveError> {
    let size = page_size(page_type)?;
    let len = n
        .checked_mul(size.bytes())
        .filter(|l| *l != 0)
        .ok_or(INVALID_PARAM)?;
    // Never more than all of RAM: also bounds the per-page checks below, so
    // a huge count cannot keep the TSM busy.
    if len > memory::page_map().lock().ram().len {
        return Err(INVALID_PARAM);
    }
    if base % size.bytes() != 0 {
        return Err(INVALID_ADDRESS);
    }
    let range = HostRange::new(HostPhysAddr::new(base), len).ok_or(INVALID_PARAM)?;
    let region = Region::new(gpa, len).ok_or(INVALID_ADDRESS)?;
    if gpa % size.bytes() != 0 || !allowed(tvm, &region) {
        return Err(INVALID_ADDRESS);
    }
    let (gstage, mem) = tvm.tables();
    let mut g = gpa;
    while g < region.end() {
        if gstage.translate(&mem, GuestPhysAddr::new(g)).is_some() {
            return Err(INVALID_ADDRESS);
        }
        g += PAGE_SIZE;
    }
    Ok((size, range, region))
}

/// Maps `n` leaves of `size` from `hpa` at `gpa`; on failure unmaps what it
/// mapped and reports OUT_OF_PTPAGES.
fn map_leaves(
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
        if let Err(e) = gstage.map(
            &mut mem,
            GuestPhysAddr::new(gpa + off),
            HostPhysAddr::new(hpa + off),
            size,
            perms,
        ) {
            if i > 0 {
                gstage
                    .unmap_range(&mut mem, GuestPhysAddr::new(gpa), off)
                    .expect("mapped just above");
            }
            return Err(match e {
                page_tables::Error::OutOfTables => CoveError::OutOfPtPages,
                _ => INVALID_ADDRESS,
            });
        }
    }
    Ok(())
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
    let mut tsm = TSM.lock();
    let tvm = tsm.tvms.get(id)?;
    if tvm.runnable {
        return Err(INVALID_PARAM);
    }
    let (size, range, _) = check_add(tvm, dest, page_type, n, gpa, |t, r| {
        t.confidential.covers(r)
    })?;
    if src % PAGE_SIZE != 0 || !memory::host_owns(src, range.len) {
        return Err(INVALID_ADDRESS);
    }
    memory::page_map()
        .lock()
        .assign_to_tvm(range, tvm.id, TvmPageKind::Data)
        .map_err(|_| INVALID_ADDRESS)?;
    let saved = tvm.measurement.clone();
    // Copy first, then measure what the TVM will see (the host cannot
    // change the destination any more).
    phys::copy_phys(HostPhysAddr::new(dest), HostPhysAddr::new(src), range.len);
    let mut off = 0;
    while off < range.len {
        // SAFETY: the page was just assigned to this TVM (Tvm(id, Data))
        // and is not mapped for anyone yet; the TSM lock is held.
        let page = unsafe { phys::page(HostPhysAddr::new(dest + off)) };
        tvm.measurement.extend_page(gpa + off, page);
        off += PAGE_SIZE;
    }
    if let Err(e) = map_leaves(tvm, gpa, dest, size, n, Perms::RWX) {
        tvm.measurement = saved;
        unassign(tvm.id, range);
        return Err(e);
    }
    Ok(0)
}

/// Undoes an assignment made in this call: scrub and back to Converted.
fn unassign(id: TvmId, range: HostRange) {
    let mut map = memory::page_map().lock();
    map.release_from_tvm(range, id)
        .expect("assigned in this call");
    phys::scrub(range.start, range.len);
    map.scrub_complete(range).expect("released just above");
}

/// COVH add_tvm_zero_pages (after finalize: demand-zero faults).
pub fn add_zero_pages(id: u64, base: u64, page_type: u64, n: u64, gpa: u64) -> CoveResult {
    let mut tsm = TSM.lock();
    let tvm = tsm.tvms.get(id)?;
    if !tvm.runnable {
        return Err(INVALID_PARAM);
    }
    let (size, range, _) = check_add(tvm, base, page_type, n, gpa, |t, r| {
        t.confidential.covers(r) && !t.shareable.overlaps(r)
    })?;
    memory::page_map()
        .lock()
        .assign_to_tvm(range, tvm.id, TvmPageKind::Data)
        .map_err(|_| INVALID_ADDRESS)?;
    phys::zero(range.start, range.len);
    if let Err(e) = map_leaves(tvm, gpa, base, size, n, Perms::RWX) {
        unassign(tvm.id, range);
        return Err(e);
    }
    Ok(0)
}

/// COVH add_tvm_shared_pages: host pages into a range the TVM declared
/// shareable; they stay mapped for the host too.
pub fn add_shared_pages(id: u64, base: u64, page_type: u64, n: u64, gpa: u64) -> CoveResult {
    let mut tsm = TSM.lock();
    let tvm = tsm.tvms.get(id)?;
    let (size, range, _) = check_add(tvm, base, page_type, n, gpa, |t, r| t.shareable.covers(r))?;
    memory::page_map()
        .lock()
        .share_with_tvm(range, tvm.id)
        .map_err(|_| INVALID_ADDRESS)?;
    if let Err(e) = map_leaves(tvm, gpa, base, size, n, Perms::RW) {
        memory::page_map()
            .lock()
            .unshare_from_tvm(range, tvm.id)
            .expect("shared above");
        return Err(e);
    }
    Ok(0)
}

/// COVH create_tvm_vcpu.
pub fn create_vcpu(id: u64, vcpu_id: u64, state_addr: u64) -> CoveResult {
    let mut tsm = TSM.lock();
    let tvm = tsm.tvms.get(id)?;
    if tvm.runnable || vcpu_id >= MAX_VCPUS as u64 || tvm.vcpus[vcpu_id as usize] != 0 {
        return Err(INVALID_PARAM);
    }
    let range = page_range(state_addr, vcpu::state_pages()).map_err(|_| INVALID_ADDRESS)?;
    memory::page_map()
        .lock()
        .assign_to_tvm(range, tvm.id, TvmPageKind::State)
        .map_err(|_| INVALID_ADDRESS)?;
    phys::zero(range.start, range.len);
    // SAFETY: `range` was just assigned to this TVM as vCPU state pages,
    // zeroed, and is vcpu::state_pages() long, enough for VcpuState and its
    // vector area; nothing else refers to it.
    unsafe { phys::place(range.start, VcpuState::new(tvm.id, vcpu_id)) };
    tvm.vcpus[vcpu_id as usize] = range.start.bits();
    Ok(0)
}

/// COVH tvm_fence: every hart drops this TVM's translations now, so the
/// invalidation sequence completes before the call returns.
pub fn tvm_fence(me: usize, id: u64) -> CoveResult {
    let mut tsm = TSM.lock();
    let tvm = tsm.tvms.get(id)?;
    crate::host::sbi::remote_fence(me, all_harts());
    crate::arch::hfence_gvma_all();
    tvm.invalidated
        .iter_mut()
        .filter(|r| r.len != 0)
        .for_each(|r| r.fenced = true);
    Ok(0)
}

fn gpa_range(gpa: u64, len: u64) -> Result<Region, CoveError> {
    if len == 0 || len % PAGE_SIZE != 0 {
        return Err(INVALID_PARAM);
    }
    if gpa % PAGE_SIZE != 0 {
        return Err(INVALID_ADDRESS);
    }
    Region::new(gpa, len).ok_or(INVALID_PARAM)
}

/// COVH tvm_invalidate_pages: unmaps a fully mapped range, remembering
/// where each piece was so it can be validated or removed.
pub fn invalidate_pages(id: u64, gpa: u64, len: u64) -> CoveResult {
    let range = gpa_range(gpa, len)?;
    let mut tsm = TSM.lock();
    let tvm = tsm.tvms.get(id)?;
    // Collect contiguous runs first; nothing changes until all checks pass.
    let mut runs: alloc::vec::Vec<Invalidated> = alloc::vec::Vec::new();
    {
        let (gstage, mem) = tvm.tables();
        let map = memory::page_map().lock();
        let mut g = range.start;
        while g < range.end() {
            let t = gstage
                .translate(&mem, GuestPhysAddr::new(g))
                .ok_or(INVALID_ADDRESS)?;
            let shared = matches!(map.state(t.hpa), Ok(PageState::Shared(_)));
            let step = PAGE_SIZE;
            match runs.last_mut() {
                Some(r)
                    if r.gpa + r.len == g
                        && r.hpa + r.len == t.hpa.bits()
                        && r.shared == shared =>
                {
                    r.len += step
                }
                _ => runs.push(Invalidated {
                    gpa: g,
                    hpa: t.hpa.bits(),
                    len: step,
                    shared,
                    fenced: false,
                }),
            }
            g += step;
        }
    }
    let free = tvm.invalidated.iter().filter(|r| r.len == 0).count();
    if runs.len() > free {
        return Err(CoveError::OutOfMemory);
    }
    let (gstage, mut mem) = tvm.tables();
    gstage
        .unmap_range(&mut mem, GuestPhysAddr::new(range.start), range.len)
        .map_err(|_| CoveError::OutOfPtPages)?;
    let mut it = runs.into_iter();
    for slot in tvm.invalidated.iter_mut().filter(|r| r.len == 0) {
        match it.next() {
            Some(r) => *slot = r,
            None => break,
        }
    }
    Ok(0)
}

/// Takes the invalidated pieces covering `range` out of the table; fails
/// (changing nothing) unless they cover it completely and, if
/// `need_fenced`, were all fenced.
fn take_invalidated(
    tvm: &mut Tvm,
    range: Region,
    need_fenced: bool,
) -> Result<alloc::vec::Vec<Invalidated>, CoveError> {
    let mut covered = 0;
    let mut pieces = alloc::vec::Vec::new();
    for r in tvm.invalidated.iter().filter(|r| r.len != 0) {
        let rr = Region {
            start: r.gpa,
            len: r.len,
        };
        if rr.overlaps(&range) {
            if need_fenced && !r.fenced {
                return Err(INVALID_ADDRESS);
            }
            let s = rr.start.max(range.start);
            let e = rr.end().min(range.end());
            covered += e - s;
            pieces.push(Invalidated {
                gpa: s,
                hpa: r.hpa + (s - r.gpa),
                len: e - s,
                ..*r
            });
        }
    }
    if covered != range.len {
        return Err(INVALID_ADDRESS);
    }
    // Trim the records; a record cut in the middle needs a free slot.
    let mut next = [Invalidated::default(); MAX_INVALIDATED];
    let mut n = 0;
    for r in tvm.invalidated.iter().filter(|r| r.len != 0) {
        let rr = Region {
            start: r.gpa,
            len: r.len,
        };
        let left = Region {
            start: rr.start,
            len: range.start.saturating_sub(rr.start).min(rr.len),
        };
        let rs = range.end().max(rr.start);
        let right = Region {
            start: rs,
            len: rr.end().saturating_sub(rs),
        };
        for p in [left, right].iter().filter(|p| p.len != 0) {
            if n == MAX_INVALIDATED {
                return Err(CoveError::OutOfMemory);
            }
            next[n] = Invalidated {
                gpa: p.start,
                hpa: r.hpa + (p.start - r.gpa),
                len: p.len,
                ..*r
            };
            n += 1;
        }
    }
    tvm.invalidated = next;
    Ok(pieces)
}

/// COVH tvm_validate_pages: maps invalidated pages back where they were.
pub fn validate_pages(id: u64, gpa: u64, len: u64) -> CoveResult {
    let range = gpa_range(gpa, len)?;
    let mut tsm = TSM.lock();
    let tvm = tsm.tvms.get(id)?;
    let saved = tvm.invalidated;
    let pieces = take_invalidated(tvm, range, false)?;
    for p in &pieces {
        let perms = if p.shared { Perms::RW } else { Perms::RWX };
        if let Err(e) = map_leaves(
            tvm,
            p.gpa,
            p.hpa,
            PageSize::Size4K,
            p.len / PAGE_SIZE,
            perms,
        ) {
            // Roll back the pieces mapped so far.
            let (gstage, mut mem) = tvm.tables();
            for q in pieces.iter().take_while(|q| q.gpa != p.gpa) {
                let _ = gstage.unmap_range(&mut mem, GuestPhysAddr::new(q.gpa), q.len);
            }
            tvm.invalidated = saved;
            return Err(e);
        }
    }
    Ok(0)
}

/// COVH tvm_remove_pages: invalidated and fenced pages leave the TVM.
pub fn remove_pages(_me: usize, id: u64, gpa: u64, len: u64) -> CoveResult {
    let range = gpa_range(gpa, len)?;
    let mut tsm = TSM.lock();
    let tvm = tsm.tvms.get(id)?;
    let pieces = take_invalidated(tvm, range, true)?;
    let mut map = memory::page_map().lock();
    for p in pieces {
        let r = HostRange::new(HostPhysAddr::new(p.hpa), p.len).ok_or(FAILED)?;
        if p.shared {
            map.unshare_from_tvm(r, tvm.id).map_err(|_| FAILED)?;
        } else {
            map.release_from_tvm(r, tvm.id).map_err(|_| FAILED)?;
            phys::scrub(r.start, r.len);
            map.scrub_complete(r).map_err(|_| FAILED)?;
        }
    }
    Ok(0)
}

/// Unmaps the shared pages a TVM has in `region` right away (COVG unshare):
/// from then on the host's pages no longer receive the TVM's writes.
pub fn drop_shared(tvm: &mut Tvm, region: Region) {
    let mut g = region.start;
    let (gstage, mut mem) = (
        &mut tvm.gstage,
        TvmTableMemory {
            pool: &mut tvm.pool,
            root: None,
        },
    );
    let mut map = memory::page_map().lock();
    while g < region.end() {
        // Skip whole unmapped stretches: the range may be huge.
        if let Some(span) = gstage.unmapped_span(&mem, GuestPhysAddr::new(g)) {
            g = g.saturating_add(span);
            continue;
        }
        if let Some(t) = gstage.translate(&mem, GuestPhysAddr::new(g)) {
            if matches!(map.state(t.hpa), Ok(PageState::Shared(_)))
                && gstage.unmap_4k(&mut mem, GuestPhysAddr::new(g)).is_ok()
            {
                let r = HostRange::new(t.hpa.align_down(PageSize::Size4K), PAGE_SIZE).unwrap();
                let _ = map.unshare_from_tvm(r, tvm.id);
            }
        }
        g += PAGE_SIZE;
    }
    let _ = SbiError::Failed;
}
