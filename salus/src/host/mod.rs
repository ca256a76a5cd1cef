//! The host VM: an identity-mapped (GPA == HPA) VM with one vCPU per hart,
//! its stage-2 table, its device tree and the SBI services it gets.

// Nothing the host passes may make Salus panic: no unwrap, expect, panic
// or unchecked indexing here (the few exceptions say why).
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

pub mod cmdline;
pub mod mmio;
pub mod pci;
pub mod sbi;
pub mod uart16550;
pub mod vcpu;

use crate::sync::Mutex;
use page_tables::GStageTable;

/// The host's stage-2 table, built at boot. Page conversion (the TSM)
/// removes pages from it and reclaim puts them back.
/// Lock order: TSM state, then this, then the page map.
pub static GSTAGE: Mutex<Option<GStageTable>> = Mutex::new(None);

/// The host's stage-2 lost mappings: devices behind the IOMMU must not keep
/// using cached translations either (IOTINVAL.GVMA + IOFENCE.C; a no-op
/// without an IOMMU). Fails when the IOMMU did not confirm it.
pub fn gstage_changed() -> Result<(), riscv_iommu::Error> {
    pci::host_gstage_changed()
}
