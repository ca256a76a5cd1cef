//! COVG: calls a TVM makes to the TSM (MMIO regions, sharing, interrupts).
//! The TSM enforces them and the host is then told (a Notify exit).

use super::invalidate::{drop_shared, gpa_range};
use super::vcpu::VcpuState;
use super::{CoveResult, INVALID_ADDRESS, INVALID_PARAM, TSM};
use cove_abi::{CoveError, CovgFunction};
use sbi_abi::SbiError;

/// A COVG call from the TVM vCPU `v` running on this hart.
pub fn handle(v: &VcpuState, a6: u64, a: [u64; 6]) -> CoveResult {
    let fid = cove_abi::fid::CoveFid::decode_local(a6)
        .map_err(|_| CoveError::Sbi(SbiError::NotSupported))?;
    let f = CovgFunction::from_fid(fid as u64).ok_or(CoveError::Sbi(SbiError::NotSupported))?;
    let (r, fence) = handle_locked(v, f, a);
    if fence {
        // The unshared GPAs must be gone from every hart (other vCPUs of
        // this TVM may run elsewhere) before this vCPU runs again: the TVM
        // may rely on the region being private once the call returns. No
        // lock held while waiting.
        let me = crate::arch::entry::hart_id();
        crate::hart::remote_fence(me, crate::hart::all_harts());
        crate::arch::hfence_gvma_all();
    }
    r
}

/// The call under the TSM lock; true if the caller must fence all harts.
fn handle_locked(v: &VcpuState, f: CovgFunction, a: [u64; 6]) -> (CoveResult, bool) {
    let mut fence = false;
    let r = (|| {
        let mut tsm = TSM.lock();
        let tvm = tsm
            .tvms
            .get(v.tvm.raw() as u64)
            .map_err(|_| CoveError::Sbi(SbiError::Failed))?;
        match f {
            CovgFunction::AddMmioRegion => {
                let r = gpa_range(a[0], a[1])?;
                if r.end().bits() > tvm.gstage.mode().gpa_limit()
                    || tvm.confidential.overlaps(&r)
                    || tvm.mmio.overlaps(&r)
                {
                    return Err(INVALID_ADDRESS);
                }
                if !tvm.mmio.insert(r) {
                    return Err(CoveError::OutOfMemory);
                }
                Ok(0)
            }
            CovgFunction::RemoveMmioRegion => {
                let r = gpa_range(a[0], a[1])?;
                if !tvm.mmio.remove(&r) {
                    return Err(CoveError::OutOfMemory);
                }
                Ok(0)
            }
            CovgFunction::ShareMemoryRegion => {
                let r = gpa_range(a[0], a[1])?;
                if !tvm.confidential.covers(&r) || tvm.shareable.overlaps(&r) {
                    return Err(INVALID_PARAM);
                }
                if !tvm.shareable.insert(r) {
                    return Err(CoveError::OutOfMemory);
                }
                Ok(0)
            }
            CovgFunction::UnshareMemoryRegion => {
                let r = gpa_range(a[0], a[1])?;
                if !tvm.shareable.covers(&r) {
                    return Err(INVALID_PARAM);
                }
                // All or nothing: the region stays shareable and mapped unless
                // every shared page in it could be unmapped.
                let saved = tvm.shareable;
                if !tvm.shareable.remove(&r) {
                    return Err(CoveError::OutOfMemory);
                }
                if let Err(e) = drop_shared(tvm, r) {
                    tvm.shareable = saved;
                    return Err(e);
                }
                // Stronger than the spec's host-driven sequence: the host's pages
                // stop receiving the TVM's writes before the call returns.
                fence = true;
                Ok(0)
            }
            CovgFunction::GetAttcaps => super::attest::get_attcaps(tvm, a[0], a[1]),
            CovgFunction::ExtendMeasurement => {
                super::attest::extend_measurement(tvm, a[0], a[1], a[2])
            }
            CovgFunction::ReadMeasurement => super::attest::read_measurement(tvm, a[0], a[1], a[2]),
            CovgFunction::AllowExternalInterrupt | CovgFunction::DenyExternalInterrupt => {
                // Per vCPU (the caller), as the spec says; COVI
                // inject_tvm_cpu delivers only what is allowed.
                super::covi::set_allowed(v, a[0], f == CovgFunction::AllowExternalInterrupt)?;
                Ok(0)
            }
            _ => Err(CoveError::Sbi(SbiError::NotSupported)),
        }
    })();
    (r, fence)
}

/// Where a faulting GPA of the TVM of `v` lies.
pub enum GpaKind {
    /// The IMSIC page of the TVM's vCPU `target`, with no file mapped there
    /// now: the TSM emulates the write (COVI).
    Imsic { target: u64 },
    /// An MMIO region the TVM declared: the host emulates it.
    Mmio,
    /// Its confidential memory (demand zero, shared pages): the host adds.
    Memory,
    /// Neither: no device or memory is there, as on real hardware.
    Outside,
}

pub fn gpa_kind(v: &VcpuState, gpa: u64) -> GpaKind {
    let g = hyp_addr::GuestPhysAddr::new(gpa);
    let mut tsm = TSM.lock();
    let tvm = tsm.tvms.get(v.tvm.raw() as u64);
    if let Some(target) = tvm
        .as_ref()
        .ok()
        .and_then(|t| super::covi::imsic_target(t, gpa))
    {
        return GpaKind::Imsic { target };
    }
    match tvm {
        Ok(tvm) if tvm.mmio.find(g).is_some() => GpaKind::Mmio,
        Ok(tvm) if tvm.confidential.find(g).is_none() => GpaKind::Outside,
        _ => GpaKind::Memory,
    }
}

/// SBI HSM calls from a TVM about its own vCPUs. hart_start and hart_stop
/// change vCPU state here and are then reported to the host (which decides
/// where the vCPUs run); hart_get_status is answered directly. `None`:
/// not for the TSM (forward to the host).
pub fn hsm(v: &VcpuState, fid: u64, a: [u64; 6]) -> Option<(CoveResult, bool)> {
    use sbi_abi::hsm;
    let mut tsm = TSM.lock();
    let tvm = tsm.tvms.get(v.tvm.raw() as u64).ok()?;
    let target = |id: u64| tvm.vcpu(id).ok_or(INVALID_PARAM);
    match fid as usize {
        hsm::HART_START => {
            let r = (|| {
                let t = target(a[0])?;
                if a[0] == v.vcpu_id {
                    return Err(CoveError::Sbi(SbiError::AlreadyAvailable));
                }
                if !tvm
                    .confidential
                    .iter()
                    .any(|r| r.contains(hyp_addr::GuestPhysAddr::new(a[1])))
                {
                    return Err(INVALID_ADDRESS);
                }
                // Started, or stopped but still being switched out on
                // another hart (SBI: STOP_PENDING): not available.
                if !t.boot(a[1], a[2]) {
                    return Err(CoveError::Sbi(SbiError::AlreadyAvailable));
                }
                Ok(0)
            })();
            let ok = r.is_ok();
            Some((r, ok))
        }
        hsm::HART_STOP => {
            v.stop();
            Some((Ok(0), true))
        }
        hsm::HART_GET_STATUS => {
            let r = target(a[0]).map(|t| {
                if core::ptr::eq(t, v) || t.started() {
                    hsm::hart_state::STARTED as u64
                } else {
                    hsm::hart_state::STOPPED as u64
                }
            });
            Some((r, false))
        }
        _ => None,
    }
}
