//! COVG: calls a TVM makes to the TSM (MMIO regions, sharing, interrupts).
//! The TSM enforces them and the host is then told (a Notify exit).

use super::tvm::{drop_shared, Region};
use super::vcpu::VcpuState;
use super::{CoveResult, INVALID_ADDRESS, INVALID_PARAM, TSM};
use cove_abi::{CoveError, CovgFunction};
use hyp_addr::PAGE_SIZE;
use sbi_abi::SbiError;

fn region(gpa: u64, len: u64) -> Result<Region, CoveError> {
    if gpa % PAGE_SIZE != 0 {
        return Err(INVALID_ADDRESS);
    }
    if len == 0 || len % PAGE_SIZE != 0 {
        return Err(INVALID_PARAM);
    }
    Region::new(gpa, len).ok_or(INVALID_PARAM)
}

pub fn handle(v: &VcpuState, a6: u64, a: [u64; 6]) -> CoveResult {
    let fid = cove_abi::fid::CoveFid::decode_local(a6)
        .map_err(|_| CoveError::Sbi(SbiError::NotSupported))?;
    let f = CovgFunction::from_fid(fid as u64).ok_or(CoveError::Sbi(SbiError::NotSupported))?;
    let mut tsm = TSM.lock();
    let tvm = tsm
        .tvms
        .get(v.tvm.raw() as u64)
        .map_err(|_| CoveError::Sbi(SbiError::Failed))?;
    match f {
        CovgFunction::AddMmioRegion => {
            let r = region(a[0], a[1])?;
            if r.end() > tvm.gstage.mode().gpa_limit()
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
            let r = region(a[0], a[1])?;
            if !tvm.mmio.remove(&r) {
                return Err(CoveError::OutOfMemory);
            }
            Ok(0)
        }
        CovgFunction::ShareMemoryRegion => {
            let r = region(a[0], a[1])?;
            if !tvm.confidential.covers(&r) || tvm.shareable.overlaps(&r) {
                return Err(INVALID_PARAM);
            }
            if !tvm.shareable.insert(r) {
                return Err(CoveError::OutOfMemory);
            }
            Ok(0)
        }
        CovgFunction::UnshareMemoryRegion => {
            let r = region(a[0], a[1])?;
            if !tvm.shareable.covers(&r) {
                return Err(INVALID_PARAM);
            }
            if !tvm.shareable.remove(&r) {
                return Err(CoveError::OutOfMemory);
            }
            // Stronger than the spec's host-driven sequence: the host's pages
            // stop receiving the TVM's writes the moment it unshares.
            drop_shared(tvm, r);
            crate::arch::hfence_gvma_all();
            Ok(0)
        }
        CovgFunction::AllowExternalInterrupt | CovgFunction::DenyExternalInterrupt => {
            // No interrupt is injected into TVMs yet (no COVI): record the
            // guest's wish so it is honoured once injection exists.
            tvm.ext_interrupts_allowed = f == CovgFunction::AllowExternalInterrupt;
            Ok(0)
        }
        _ => Err(CoveError::Sbi(SbiError::NotSupported)),
    }
}

/// True if `gpa` lies in an MMIO region the TVM of `v` declared.
pub fn is_mmio(v: &VcpuState, gpa: u64) -> bool {
    let mut tsm = TSM.lock();
    match tsm.tvms.get(v.tvm.raw() as u64) {
        Ok(tvm) => tvm.mmio.find(gpa).is_some(),
        Err(_) => false,
    }
}
