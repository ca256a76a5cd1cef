//! Salus's memory: where it lives, the pool it allocates from, and the page
//! map that records the owner of every page of RAM.
//!
//! Layout (identity, GPA == HPA for the host): the firmware keeps RAM below
//! Salus's load address; Salus keeps its image plus a pool right after it,
//! rounded up to 2 MiB so the host's stage-2 can use 2 MiB/1 GiB leaves for
//! everything else. The pool holds the heap, the page map and page-table
//! pages; its size grows linearly with RAM only through the page map
//! (4 bytes per 4 KiB page).

use crate::arch::phys;
use crate::sync::Mutex;
use hyp_addr::{HostPhysAddr, HostRange, PageSize, PAGE_SIZE};
use page_tables::PageTableMemory;
use page_tracking::{Entry, PageMap, PageState};
use spin::Once;

/// Heap for Salus's own allocations (device trees, bookkeeping).
pub const HEAP_SIZE: u64 = 2 << 20;
/// Frames for page tables Salus builds for itself (the host's stage-2, the
/// IOMMU's tables): 1 MiB plus one 4 KiB table per 2 MiB of RAM, so that
/// converting pages anywhere can always split the host's huge leaves.
pub fn pt_pool_size(ram_len: u64) -> u64 {
    (1 << 20) + (ram_len >> 21) * PAGE_SIZE
}

#[derive(Clone, Copy, Debug)]
pub struct Layout {
    pub ram: HostRange,
    pub firmware: HostRange,
    pub salus: HostRange,
    pub heap: HostRange,
    pub page_map: HostRange,
    pub pt_pool: HostRange,
}

impl Layout {
    /// Computes the layout, or explains why RAM cannot hold it.
    pub fn compute(
        ram: HostRange,
        image_start: u64,
        image_end: u64,
    ) -> Result<Layout, &'static str> {
        let img_start = HostPhysAddr::new(image_start);
        if !ram.contains(img_start) || !img_start.is_aligned(PageSize::Size2M) {
            return Err("Salus is not loaded at a 2 MiB aligned address inside RAM");
        }
        let firmware =
            HostRange::new(ram.start, image_start - ram.start.bits()).ok_or("bad RAM range")?;
        let img_end = HostPhysAddr::new(image_end)
            .checked_align_up(PageSize::Size4K)
            .ok_or("bad image")?;
        let heap = HostRange::new(img_end, HEAP_SIZE).ok_or("overflow")?;
        let pm_bytes = (page_tracking::required_entries(ram.len) as u64
            * core::mem::size_of::<Entry>() as u64)
            .next_multiple_of(PAGE_SIZE);
        let page_map = HostRange::new(heap.end(), pm_bytes).ok_or("overflow")?;
        // The page-table pool starts 16 KiB aligned (stage-2 roots are 16 KiB).
        let pt_start = page_map.end().bits().next_multiple_of(16 * 1024);
        let pt_pool =
            HostRange::new(HostPhysAddr::new(pt_start), pt_pool_size(ram.len)).ok_or("overflow")?;
        let salus_end = pt_pool
            .end()
            .checked_align_up(PageSize::Size2M)
            .ok_or("overflow")?;
        let salus = HostRange::new(img_start, salus_end.bits() - image_start).ok_or("overflow")?;
        if !ram.contains_range(salus.start, salus.len) || salus.end() == ram.end() {
            return Err("RAM too small for Salus and a host");
        }
        Ok(Layout {
            ram,
            firmware,
            salus,
            heap,
            page_map,
            pt_pool,
        })
    }

    /// Host RAM: everything after Salus.
    pub fn host_ram(&self) -> HostRange {
        HostRange::new(
            self.salus.end(),
            self.ram.end().bits() - self.salus.end().bits(),
        )
        .unwrap()
    }
}

/// Frame allocator over the page-table pool: bump allocation with a free
/// list of 4 KiB frames threaded through the freed frames themselves.
pub struct FramePool {
    next: u64,
    end: u64,
    free_head: u64,
}

impl FramePool {
    const fn empty() -> Self {
        FramePool {
            next: 0,
            end: 0,
            free_head: 0,
        }
    }

    fn alloc(&mut self, bytes: u64) -> Option<HostPhysAddr> {
        if bytes == PAGE_SIZE && self.free_head != 0 {
            let pa = HostPhysAddr::new(self.free_head);
            self.free_head = phys::read_u64(pa);
            phys::zero(pa, PAGE_SIZE);
            return Some(pa);
        }
        let start = self.next.next_multiple_of(bytes);
        let end = start.checked_add(bytes)?;
        if end > self.end {
            return None;
        }
        // Frames skipped for alignment go to the free list.
        let mut skip = self.next;
        while skip < start {
            self.free(HostPhysAddr::new(skip), PAGE_SIZE);
            skip += PAGE_SIZE;
        }
        self.next = end;
        phys::zero(HostPhysAddr::new(start), bytes);
        Some(HostPhysAddr::new(start))
    }

    fn free(&mut self, pa: HostPhysAddr, bytes: u64) {
        let mut p = pa.bits();
        while p < pa.bits() + bytes {
            phys::write_u64(HostPhysAddr::new(p), self.free_head);
            self.free_head = p;
            p += PAGE_SIZE;
        }
    }
}

static FRAMES: Mutex<FramePool> = Mutex::new(FramePool::empty());
static PAGE_MAP: Once<Mutex<PageMap<'static>>> = Once::new();
static LAYOUT: Once<Layout> = Once::new();

/// Page-table memory backed by Salus's frame pool.
pub struct HypTableMemory;

impl PageTableMemory for HypTableMemory {
    fn alloc_table(&mut self, bytes: u64) -> Option<HostPhysAddr> {
        FRAMES.lock().alloc(bytes)
    }
    fn free_table(&mut self, table: HostPhysAddr, bytes: u64) {
        FRAMES.lock().free(table, bytes)
    }
    fn read_pte(&self, entry_addr: HostPhysAddr) -> u64 {
        phys::read_u64(entry_addr)
    }
    fn write_pte(&mut self, entry_addr: HostPhysAddr, value: u64) {
        phys::write_u64(entry_addr, value)
    }
}

/// Sets up the pool, the heap and the page map. Boot hart only, once.
pub fn init(layout: Layout) {
    LAYOUT.call_once(|| layout);
    {
        let mut f = FRAMES.lock();
        f.next = layout.pt_pool.start.bits();
        f.end = layout.pt_pool.end().bits();
    }
    crate::heap::init(layout.heap);
    let entries = page_tracking::required_entries(layout.ram.len);
    // SAFETY: the page-map range is Salus-reserved (inside `layout.salus`),
    // handed out only here, 4 KiB aligned, and `Entry` is a plain u32.
    let storage: &'static mut [Entry] =
        unsafe { phys::claim_slice(layout.page_map.start, entries) };
    let mut map =
        PageMap::new(storage, layout.ram, PageState::Host).expect("page map sized by Layout");
    map.set_range(layout.firmware, PageState::Firmware)
        .expect("firmware inside RAM");
    map.set_range(layout.salus, PageState::Hypervisor)
        .expect("salus inside RAM");
    PAGE_MAP.call_once(|| Mutex::new(map));
}

/// Marks the firmware's reserved ranges (their parts in RAM) as Firmware.
/// Boot only, after `init`, before the host exists.
pub fn reserve_firmware(ranges: &[HostRange]) {
    let ram = LAYOUT.get().expect("memory::init ran").ram;
    let mut map = page_map().lock();
    for r in ranges {
        let start = r.start.bits().max(ram.start.bits());
        let end = r.end().bits().min(ram.end().bits());
        if let Some(part) = HostRange::new(HostPhysAddr::new(start), end.saturating_sub(start))
            .filter(|p| p.len != 0)
        {
            map.set_range(part, PageState::Firmware)
                .expect("clipped to RAM");
        }
    }
}

pub fn page_map() -> &'static Mutex<PageMap<'static>> {
    PAGE_MAP.get().expect("memory::init ran")
}

/// True if every page of `[addr, addr + len)` belongs to the host.
pub fn host_owns(addr: u64, len: u64) -> bool {
    let Some(end) = addr.checked_add(len) else {
        return false;
    };
    if len == 0 {
        return true;
    }
    let map = page_map().lock();
    let mut page = addr & !(PAGE_SIZE - 1);
    while page < end {
        if map.state(HostPhysAddr::new(page)) != Ok(PageState::Host) {
            return false;
        }
        page += PAGE_SIZE;
    }
    true
}
