//! Device drivers Salus keeps for itself. MMIO is the only unsafe here.

pub mod test_finisher;
pub mod uart;
