//! The RISC-V IOMMU's register page and the memory its tables live in, as
//! the `riscv-iommu` crate's `IommuRegs` / `DmaMemory` (the driver logic is
//! in that crate).

use crate::arch::phys;
use crate::memory::HypTableMemory;
use hyp_addr::{HostPhysAddr, PAGE_SIZE};
use page_tables::PageTableMemory;
use riscv_iommu::{DmaMemory, IommuRegs};

/// The IOMMU's 4 KiB register page (its BAR 0, which Salus programs and
/// keeps out of the host's stage-2).
pub struct MmioRegs {
    base: usize,
}

impl MmioRegs {
    /// # Safety
    /// `base` must be the register page of a RISC-V IOMMU that only Salus
    /// accesses.
    pub unsafe fn new(base: u64) -> Self {
        MmioRegs {
            base: base as usize,
        }
    }
}

/// Orders Salus's earlier memory writes (queue entries, directory
/// entries) before a register write, and register reads before later
/// memory reads (completion words).
#[inline(always)]
fn io_fence() {
    // SAFETY: a fence has no effect besides ordering.
    unsafe { core::arch::asm!("fence iorw, iorw", options(nostack)) }
}

impl IommuRegs for MmioRegs {
    fn read32(&mut self, offset: usize) -> u32 {
        // SAFETY: `new`'s contract; offsets come from the crate's register
        // map and stay inside the page.
        let v = unsafe { core::ptr::read_volatile((self.base + offset) as *const u32) };
        io_fence();
        v
    }
    fn read64(&mut self, offset: usize) -> u64 {
        // SAFETY: as for read32.
        let v = unsafe { core::ptr::read_volatile((self.base + offset) as *const u64) };
        io_fence();
        v
    }
    fn write32(&mut self, offset: usize, value: u32) {
        io_fence();
        // SAFETY: as for read32.
        unsafe { core::ptr::write_volatile((self.base + offset) as *mut u32, value) }
    }
    fn write64(&mut self, offset: usize, value: u64) {
        io_fence();
        // SAFETY: as for read32.
        unsafe { core::ptr::write_volatile((self.base + offset) as *mut u64, value) }
    }
}

/// IOMMU tables and queues come from Salus's page-table pool: Salus-owned
/// RAM the host's stage-2 never maps.
pub struct PoolDma;

impl DmaMemory for PoolDma {
    fn alloc_zeroed_page(&mut self) -> Option<HostPhysAddr> {
        HypTableMemory.alloc_table(PAGE_SIZE)
    }
    fn read_u64(&mut self, addr: HostPhysAddr) -> u64 {
        phys::read_u64(addr)
    }
    fn write_u64(&mut self, addr: HostPhysAddr, value: u64) {
        phys::write_u64(addr, value)
    }
}
