//! Device drivers Salus keeps for itself. MMIO is the only unsafe here.

pub mod ecam;
pub mod iommu;
pub mod test_finisher;
pub mod uart;
