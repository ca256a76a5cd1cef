//! What the TSM needs from the host side, and nothing more. The host
//! implements this (host::vcpu); the TSM never imports the host's vCPU
//! loop, its stage-2 table or its devices: dependencies go host -> tsm only.

use crate::arch::fpvec::{FpState, VecCsrs};
use crate::timer::Sources;
use hyp_addr::HostRange;

/// Where the host's FP and vector state wait while a TVM runs on its hart,
/// and whether the copies are current (see tsm::run).
pub struct HostFpVec<'a> {
    pub fp: &'a mut FpState,
    pub vec: &'a mut VecCsrs,
    pub vec_area: &'a mut alloc::vec::Vec<u8>,
    pub fp_saved: &'a mut bool,
    pub vec_saved: &'a mut bool,
}

/// The host vCPU on the calling hart, and the host's memory.
pub trait HostSide {
    fn hartid(&self) -> usize;
    /// The NACL shared memory the host registered on this hart.
    fn nacl_shmem(&self) -> Option<u64>;
    fn saved_fpvec(&mut self) -> HostFpVec<'_>;
    /// An interrupt (S-level cause) for the host arrived while a TVM ran.
    fn take_interrupt(&mut self, code: u64);
    /// The host's timer deadlines among `fired` expired while a TVM ran.
    fn take_timer(&mut self, fired: Sources);
    /// Salus's own housekeeping deadline expired while a TVM ran.
    fn housekeeping(&mut self);
    /// `salus.check`: the housekeeping deadline is still armed.
    fn check_housekeeping(&self);
    /// Takes `range` out of the host's stage-2 (conversion); on error
    /// nothing changed.
    fn unmap_pages(&self, range: HostRange) -> Result<(), ()>;
    /// Gives `range` back to the host's stage-2 (reclaim).
    fn map_pages(&self, range: HostRange) -> Result<(), ()>;
    /// Devices must drop cached translations of the host's stage-2
    /// (IOMMU); an error means they may still reach removed pages.
    fn fence_devices(&self) -> Result<(), ()>;
}
