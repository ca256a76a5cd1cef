//! TVMs: the control structure in donated state pages, the registry of live
//! TVMs, creation, finalize, memory regions, the page-table pool and vCPUs.
//! Adding pages is in `pages.rs`, invalidation and fences in
//! `invalidate.rs`, destruction in `destroy.rs`.

use super::region::RegionSet;
use super::vcpu::{self, VcpuState};
use super::{page_range, CoveResult, FAILED, INVALID_ADDRESS, INVALID_PARAM, TSM};
use crate::arch::phys;
use crate::memory;
use cove_abi::{CoveError, TvmCreateParams};
use hyp_addr::{GuestPhysAddr, GuestRange, HostPhysAddr, PAGE_SIZE};
use measurement::{Backend, Measurement};
use page_tables::pool::{PoolMemory, TablePool};
use page_tables::{GStageMode, GStageTable, PageTableMemory};
use page_tracking::{TvmId, TvmPageKind};

pub const MAX_TVMS: usize = 64;
pub const MAX_VCPUS: usize = 8;
pub const MAX_REGIONS: usize = 16;
pub const MAX_INVALIDATED: usize = 32;

/// One run of invalidated (unmapped) TVM pages, kept until validated or
/// removed.
#[derive(Clone, Copy, Debug, Default)]
pub struct Invalidated {
    pub gpa: u64,
    pub hpa: u64,
    pub len: u64,
    pub shared: bool,
    /// The TVM's fence epoch when the pages were unmapped.
    pub epoch: u64,
}

impl Invalidated {
    pub fn region(&self) -> GuestRange {
        GuestRange {
            start: GuestPhysAddr::new(self.gpa),
            len: self.len,
        }
    }
}

/// Word access to pool pages for the page-tables crate's pool.
pub struct PhysPool;

impl PoolMemory for PhysPool {
    fn read_u64(&self, pa: HostPhysAddr) -> u64 {
        phys::read_u64(pa)
    }
    fn write_u64(&mut self, pa: HostPhysAddr, value: u64) {
        phys::write_u64(pa, value)
    }
    fn zero_page(&mut self, pa: HostPhysAddr) {
        phys::zero(pa, PAGE_SIZE)
    }
}

/// `PageTableMemory` over a TVM's pool (the root is its page directory).
/// Tables freed here wait in quarantine until a fence of a later epoch.
pub struct TvmTableMemory<'a> {
    pool: &'a mut TablePool,
    root: Option<HostPhysAddr>,
    epoch: u64,
}

impl PageTableMemory for TvmTableMemory<'_> {
    fn alloc_table(&mut self, bytes: u64) -> Option<HostPhysAddr> {
        if bytes != PAGE_SIZE {
            let root = self.root.take()?;
            phys::zero(root, bytes);
            return Some(root);
        }
        self.pool.alloc(&mut PhysPool)
    }
    fn free_table(&mut self, table: HostPhysAddr, bytes: u64) {
        if bytes == PAGE_SIZE {
            self.pool.retire(&mut PhysPool, table, self.epoch);
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
    pub pool: TablePool,
    /// Fence epochs: everything unmapped or freed in an epoch below
    /// `fenced_epoch` is gone from every hart's TLB. `tvm_fence` starts
    /// epoch `epoch + 1` and, once every hart has fenced, raises
    /// `fenced_epoch` past the epoch it started in.
    pub epoch: u64,
    pub fenced_epoch: u64,
    /// Register 0: measured pages, then entry and argument at finalize.
    pub measurement: Measurement,
    /// Register 1: the configuration, computed at finalize.
    pub config: Measurement,
    /// Registers 2..: extended by the TVM (COVG extend_measurement).
    pub runtime: super::attest::RuntimeRegisters,
    /// An add_measured call is copying and hashing outside the TSM lock:
    /// other measured adds and finalize wait (BUSY).
    pub measuring: bool,
    /// Calls working on this TVM's pages outside the TSM lock; destroy
    /// waits for them (BUSY).
    pub busy: u32,
    pub identity: Option<[u8; 64]>,
    pub confidential: RegionSet,
    pub shareable: RegionSet,
    pub mmio: RegionSet,
    pub vcpus: [u64; MAX_VCPUS],
    pub invalidated: [Invalidated; MAX_INVALIDATED],
    /// COVI: the TVM's virtual IMSIC layout (init_tvm_aia), if any.
    pub aia: Option<cove_abi::covi::TvmAiaParams>,
}

impl Tvm {
    pub fn tables(&mut self) -> (&mut GStageTable, TvmTableMemory<'_>) {
        (
            &mut self.gstage,
            TvmTableMemory {
                pool: &mut self.pool,
                root: None,
                epoch: self.epoch,
            },
        )
    }

    pub fn hgatp(&self) -> u64 {
        self.gstage.hgatp(self.vmid)
    }

    /// The vCPU state of `vcpu_id`, if created.
    pub fn vcpu(&self, vcpu_id: u64) -> Option<&'static VcpuState> {
        let a = *self.vcpus.get(usize::try_from(vcpu_id).ok()?)?;
        // SAFETY: placed by create_vcpu in this TVM's state pages, which
        // stay the TVM's until it is destroyed; only shared references are
        // ever made to a VcpuState (its mutable part sits behind a claim).
        (a != 0).then(|| unsafe { phys::object_ref::<VcpuState>(HostPhysAddr::new(a)) })
    }

    pub fn vcpu_states(&self) -> impl Iterator<Item = &'static VcpuState> + '_ {
        (0..MAX_VCPUS as u64).filter_map(|i| self.vcpu(i))
    }

    /// The initial measurement may still change: not finalized
    /// (INVALID_PARAM) and no measured add in progress (BUSY).
    pub fn check_measurable(&self) -> Result<(), CoveError> {
        if self.runnable {
            return Err(INVALID_PARAM);
        }
        if self.measuring {
            return Err(CoveError::Busy);
        }
        Ok(())
    }

    /// True if the pieces unmapped in `epoch` are gone from every TLB.
    pub fn fenced(&self, epoch: u64) -> bool {
        epoch < self.fenced_epoch
    }
}

/// Pages a TVM's state needs.
pub fn state_pages() -> u64 {
    (core::mem::size_of::<Tvm>() as u64).div_ceil(PAGE_SIZE)
}

#[derive(Clone, Copy)]
enum Slot {
    Free,
    Live {
        id: TvmId,
        state: HostPhysAddr,
    },
    /// Destroyed; its pages are still being scrubbed (destroy.rs). The slot
    /// (and its VMID) is reused only after that.
    Dying {
        id: TvmId,
    },
}

pub struct Registry {
    slots: [Slot; MAX_TVMS],
    next_gen: u32,
}

impl Registry {
    pub const fn new() -> Self {
        Registry {
            slots: [Slot::Free; MAX_TVMS],
            next_gen: 1,
        }
    }

    /// TVM ids are `generation << 6 | slot`, so a lookup is one index and
    /// a stale id (its slot reused) never matches the new TVM.
    fn find(&self, id: u64) -> Option<(usize, HostPhysAddr)> {
        let slot = (id % MAX_TVMS as u64) as usize;
        match self.slots.get(slot)? {
            Slot::Live { id: live, state } if live.raw() as u64 == id => Some((slot, *state)),
            _ => None,
        }
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

    /// True if a vCPU of any live TVM is claimed by some hart.
    pub fn any_vcpu_running(&mut self) -> bool {
        (0..MAX_TVMS).any(|i| match self.slots.get(i).copied() {
            Some(Slot::Live { id, .. }) => self
                .get(id.raw() as u64)
                .is_ok_and(|t| t.vcpu_states().any(|v| v.is_running())),
            _ => false,
        })
    }

    /// True if `id` is live or its pages are still being released.
    pub fn owns_pages(&self, id: TvmId) -> bool {
        self.slots.iter().any(|s| match s {
            Slot::Live { id: l, .. } | Slot::Dying { id: l } => *l == id,
            Slot::Free => false,
        })
    }

    /// The live TVM with id `id` (INVALID_PARAM if none). The borrow of the
    /// registry (the TSM lock) is the only path to it.
    pub fn get(&mut self, id: u64) -> Result<&mut Tvm, CoveError> {
        let (_, pa) = self.find(id).ok_or(INVALID_PARAM)?;
        // SAFETY: the slot points at a Tvm placed by create_tvm in pages the
        // page map holds as Tvm(id, State); the TSM lock (held by our
        // caller through `&mut self`) is the only path to it, and the
        // returned borrow cannot outlive it.
        Ok(unsafe { phys::object_at::<Tvm>(pa) })
    }

    /// Marks the live TVM `id` destroyed; its pages are released next.
    pub fn begin_destroy(&mut self, id: u64) -> Option<usize> {
        let (slot, _) = self.find(id)?;
        let s = self.slots.get_mut(slot)?;
        let Slot::Live { id: tid, .. } = *s else {
            return None;
        };
        *s = Slot::Dying { id: tid };
        Some(slot)
    }

    /// The slot's pages are all released: it can hold a new TVM.
    pub fn end_destroy(&mut self, slot: usize) {
        if let Some(s) = self.slots.get_mut(slot) {
            *s = Slot::Free;
        }
    }
}

/// COVH create_tvm.
pub fn create_tvm(params_addr: u64, len: u64) -> CoveResult {
    if len < TvmCreateParams::SIZE as u64 {
        return Err(INVALID_PARAM);
    }
    if !params_addr.is_multiple_of(8)
        || !memory::host_owns(params_addr, TvmCreateParams::SIZE as u64)
    {
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
    let (slot, _) = reg
        .slots
        .iter()
        .enumerate()
        .find(|(_, s)| matches!(s, Slot::Free))
        .ok_or(CoveError::OutOfMemory)?;
    let id = reg.next_id(slot).ok_or(CoveError::OutOfMemory)?;
    {
        let mut map = memory::page_map().lock();
        map.assign_to_tvm(pgdir, id, TvmPageKind::PageTable)
            .map_err(|_| INVALID_ADDRESS)?;
        if map.assign_to_tvm(state, id, TvmPageKind::State).is_err() {
            // Assigned just above and never used: straight back.
            let _ = map.release_from_tvm(pgdir, id);
            let _ = map.scrub_complete(pgdir);
            return Err(INVALID_ADDRESS);
        }
    }
    phys::zero(state.start, state.len);
    let mode = if crate::platform::get().host_hgatp >> 60 == GStageMode::Sv48x4.hgatp_mode() {
        GStageMode::Sv48x4
    } else {
        GStageMode::Sv39x4
    };
    let mut pool = TablePool::new();
    let gstage = GStageTable::new(
        &mut TvmTableMemory {
            pool: &mut pool,
            root: Some(pgdir.start),
            epoch: 0,
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
        epoch: 0,
        fenced_epoch: 0,
        measurement: Measurement::new(backend),
        config: Measurement::new(backend),
        runtime: [Measurement::new(backend); cove_abi::measurement::RUNTIME_REGISTERS as usize],
        measuring: false,
        busy: 0,
        identity: None,
        confidential: RegionSet::default(),
        shareable: RegionSet::default(),
        mmio: RegionSet::default(),
        vcpus: [0; MAX_VCPUS],
        invalidated: [Invalidated::default(); MAX_INVALIDATED],
        aia: None,
    };
    // SAFETY: `state` was just assigned to this TVM as its state pages
    // (Converted -> Tvm(id, State)), zeroed, and is large enough
    // (state_pages() covers size_of::<Tvm>()); nothing else refers to it.
    unsafe { phys::place(state.start, tvm) };
    if let Some(s) = reg.slots.get_mut(slot) {
        *s = Slot::Live {
            id,
            state: state.start,
        };
    }
    Ok(id.raw() as u64)
}

/// COVH finalize_tvm.
pub fn finalize_tvm(id: u64, entry_sepc: u64, entry_arg: u64, identity_addr: u64) -> CoveResult {
    let mut tsm = TSM.lock();
    let tvm = tsm.tvms.get(id)?;
    tvm.check_measurable()?;
    if !super::covi::ready_to_finalize(tvm) {
        return Err(INVALID_PARAM);
    }
    if identity_addr != 0 {
        if !identity_addr.is_multiple_of(64) || !memory::host_owns(identity_addr, 64) {
            return Err(INVALID_PARAM);
        }
        let mut ident = [0u8; 64];
        phys::copy_from(HostPhysAddr::new(identity_addr), &mut ident);
        tvm.identity = Some(ident);
    }
    tvm.measurement.extend_finalize(entry_sepc, entry_arg);
    let vcpus = (0..MAX_VCPUS as u64)
        .filter(|&k| tvm.vcpu(k).is_some())
        .count() as u64;
    let mut regions = [(0u64, 0u64); MAX_REGIONS];
    let mut n = 0;
    for (slot, r) in regions.iter_mut().zip(tvm.confidential.iter()) {
        *slot = (r.start.bits(), r.len);
        n += 1;
    }
    let regions = regions.get_mut(..n).unwrap_or_default();
    regions.sort_unstable();
    let aia = tvm.aia;
    let mut imsics = [(0u64, 0u64); MAX_VCPUS];
    let mut ni = 0;
    for k in 0..MAX_VCPUS as u64 {
        if let (Some(v), Some(slot)) = (tvm.vcpu(k), imsics.get_mut(ni)) {
            *slot = (k, v.covi.lock().imsic_gpa);
            ni += 1;
        }
    }
    let imsics = imsics.get(..ni).unwrap_or_default();
    tvm.config.extend_config(
        regions.iter().copied(),
        vcpus,
        aia.as_ref().map(|p| (p, imsics)),
    );
    if let Some(v) = tvm.vcpu(0) {
        // Nothing can run a vCPU of a TVM that is not runnable yet.
        v.boot(entry_sepc, entry_arg);
    }
    tvm.runnable = true;
    Ok(0)
}

/// COVH add_tvm_memory_region.
pub fn add_memory_region(id: u64, gpa: u64, len: u64) -> CoveResult {
    let mut tsm = TSM.lock();
    let tvm = tsm.tvms.get(id)?;
    if tvm.runnable {
        return Err(INVALID_PARAM);
    }
    if len == 0 || !len.is_multiple_of(PAGE_SIZE) {
        return Err(INVALID_PARAM);
    }
    let region = GuestRange::new(GuestPhysAddr::new(gpa), len).ok_or(INVALID_PARAM)?;
    if !gpa.is_multiple_of(PAGE_SIZE) || region.end().bits() > tvm.gstage.mode().gpa_limit() {
        return Err(INVALID_ADDRESS);
    }
    if tvm.confidential.overlaps(&region) || super::covi::overlaps_imsic(tvm, &region) {
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
    // Never used as tables yet: free at once.
    let mut p = range.start.bits();
    while p < range.end().bits() {
        tvm.pool.donate(&mut PhysPool, HostPhysAddr::new(p));
        p += PAGE_SIZE;
    }
    Ok(0)
}

/// COVH create_tvm_vcpu.
pub fn create_vcpu(id: u64, vcpu_id: u64, state_addr: u64) -> CoveResult {
    let mut tsm = TSM.lock();
    let tvm = tsm.tvms.get(id)?;
    let slot = usize::try_from(vcpu_id).map_err(|_| INVALID_PARAM)?;
    if tvm.runnable || tvm.vcpus.get(slot) != Some(&0) {
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
    if let Some(v) = tvm.vcpus.get_mut(slot) {
        *v = range.start.bits();
    }
    Ok(0)
}
