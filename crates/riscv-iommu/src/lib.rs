//! RISC-V IOMMU (riscv-non-isa/riscv-iommu, version 1.0) data structures,
//! register encodings and the hardware-independent part of the driver.
//!
//! Everything that touches hardware goes through two small traits the
//! hypervisor implements: [`IommuRegs`] (the 4 KiB MMIO register page) and
//! [`DmaMemory`] (page allocation and physical memory access for the device
//! directory, the queues and completion words). The driver logic in
//! [`driver`] is therefore exercised on the host against a simulated IOMMU.
//!
//! Module map:
//! * [`regs`]: register offsets, `capabilities`, `fctl`, `ddtp`, queue CSRs,
//!   `ipsr`, `icvec`, `msi_cfg_tbl`.
//! * [`ddt`]: device-directory layout (device-id split, non-leaf entries) and
//!   the device context (`tc`, `iohgatp`, `ta`, `fsc`, `msiptp`, MSI mask and
//!   pattern).
//! * [`msi`]: MSI page-table entries and the address match / extract logic.
//! * [`command`]: 16-byte command-queue commands.
//! * [`fault`]: 32-byte fault-queue records and cause names.
//! * [`queue`]: queue base encodings and head/tail arithmetic.
//! * [`driver`]: probe / init / attach / detach / invalidate / drain faults.
//!
//! Only little-endian data structures (`fctl.BE == 0`) and RV64 address
//! translation schemes (`fctl.GXL == 0`, `DC.tc.SXL == 0`) are produced.
#![no_std]
#![forbid(unsafe_code)]

pub mod command;
pub mod ddt;
pub mod driver;
pub mod fault;
pub mod msi;
pub mod queue;
pub mod regs;

pub use command::Command;
pub use ddt::{DcFormat, DeviceContext, GStageMode, Iohgatp};
pub use driver::{AttachConfig, DmaMemory, Error, InitConfig, Iommu, IommuRegs, MsiRedirect};
pub use fault::{FaultCause, FaultRecord, TransactionType};
pub use msi::MsiPte;
pub use regs::{Capabilities, IommuMode};

/// Mask of `width` low bits.
pub(crate) const fn mask(width: u32) -> u64 {
    if width >= 64 {
        u64::MAX
    } else {
        (1u64 << width) - 1
    }
}

/// Extracts `width` bits starting at `shift`.
pub(crate) const fn get(v: u64, shift: u32, width: u32) -> u64 {
    (v >> shift) & mask(width)
}

/// Places the low `width` bits of `field` at `shift`.
pub(crate) const fn put(field: u64, shift: u32, width: u32) -> u64 {
    (field & mask(width)) << shift
}

/// Single bit test.
pub(crate) const fn bit(v: u64, n: u32) -> bool {
    v & (1 << n) != 0
}

/// Single bit as a value.
pub(crate) const fn flag(b: bool, n: u32) -> u64 {
    (b as u64) << n
}

/// Width of the PPN fields of every IOMMU register and data structure.
pub const PPN_BITS: u32 = 44;
