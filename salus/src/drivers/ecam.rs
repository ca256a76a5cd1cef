//! PCIe configuration space through the ECAM window (`pci-host-ecam-generic`).

use pci::{Bdf, ConfigAccess};

/// The ECAM window of one host bridge: bus `first_bus` starts at `base`.
pub struct Ecam {
    base: u64,
    len: u64,
    first_bus: u8,
}

impl Ecam {
    /// # Safety
    /// `[base, base + len)` must be the ECAM window named by the device
    /// tree's PCI host bridge. Salus may read and write it (the host either
    /// does not have it yet, or has it mapped but only touches functions
    /// other than the ones Salus keeps).
    pub unsafe fn new(base: u64, len: u64, first_bus: u8) -> Self {
        Ecam {
            base,
            len,
            first_bus,
        }
    }

    fn addr(&self, bdf: Bdf, offset: u16) -> Option<u64> {
        let bus = bdf.bus().checked_sub(self.first_bus)?;
        let rel =
            Bdf::new(bus, bdf.device(), bdf.function())?.ecam_offset() + (offset as u64 & 0xffc);
        (rel + 4 <= self.len).then_some(self.base + rel)
    }
}

impl ConfigAccess for Ecam {
    fn read32(&mut self, bdf: Bdf, offset: u16) -> u32 {
        match self.addr(bdf, offset) {
            // SAFETY: inside the ECAM window (`new`'s contract), aligned.
            Some(a) => unsafe { core::ptr::read_volatile(a as *const u32) },
            None => u32::MAX,
        }
    }

    fn write32(&mut self, bdf: Bdf, offset: u16, value: u32) {
        if let Some(a) = self.addr(bdf, offset) {
            // SAFETY: as for read32.
            unsafe { core::ptr::write_volatile(a as *mut u32, value) }
        }
    }
}
