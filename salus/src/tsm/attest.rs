//! COVG attestation calls (FIDs 6-10) on a TVM's measurement registers
//! (`cove_abi::measurement`: register 0 the measured pages and entry,
//! register 1 the configuration, 2.. runtime registers the TVM extends).
//! Evidence (`get_evidence`) and local attestation (`retrieve_secret`) are
//! not offered yet: both answer NOT_SUPPORTED and the capability bits and
//! `certificate_formats` say so.
//!
//! Buffers are the TVM's own confidential memory: page aligned
//! (INVALID_ADDRESS otherwise), inside a confidential region and outside
//! every shareable one (INVALID_PARAM, the spec's "doesn't span a
//! CONFIDENTIAL_MEMORY_REGION"), and mapped (a page the host never added
//! is INVALID_ADDRESS: touch it first).

use super::tvm::Tvm;
use super::{CoveResult, INVALID_ADDRESS, INVALID_PARAM};
use crate::arch::phys;
use cove_abi::covg::{
    AttestationCapabilities, HashAlgorithm, MeasurementRegisterDescriptor, MeasurementType,
    UNMAPPED_TCG_PCR,
};
use cove_abi::measurement as rules;
use cove_abi::CoveError;
use hyp_addr::{GuestPhysAddr, GuestRange, HostPhysAddr, PAGE_SIZE};
use measurement::Measurement;
use sbi_abi::SbiError;

/// Runtime registers, in the TVM's state.
pub type RuntimeRegisters = [Measurement; rules::RUNTIME_REGISTERS as usize];

/// TCB security version of this TSM.
pub const TCB_SVN: u64 = 1;

/// What `get_attcaps` reports.
pub fn capabilities() -> AttestationCapabilities {
    let mut c = AttestationCapabilities {
        tcb_svn: TCB_SVN,
        hash_algorithm: rules::HASH_ALGORITHM as u32,
        // No evidence format yet (get_evidence: NOT_SUPPORTED).
        certificate_formats: 0,
        initial_measurements: rules::INITIAL_REGISTERS,
        runtime_measurements: rules::RUNTIME_REGISTERS,
        ..AttestationCapabilities::default()
    };
    let n = (rules::INITIAL_REGISTERS + rules::RUNTIME_REGISTERS) as usize;
    for (i, d) in c.msmt_regs.iter_mut().take(n).enumerate() {
        let initial = i < rules::INITIAL_REGISTERS as usize;
        *d = MeasurementRegisterDescriptor {
            hash_algorithm: HashAlgorithm::Sha384 as u32,
            measurement_type: if initial {
                MeasurementType::Initial
            } else {
                MeasurementType::Runtime
            } as u32,
            tcg_pcr_index: UNMAPPED_TCG_PCR,
            _padding: [0; 3],
        };
    }
    c
}

/// The host address of `[gpa, gpa + len)` in `tvm`'s confidential memory
/// (within one page, `gpa` page aligned).
fn confidential(tvm: &mut Tvm, gpa: u64, len: u64) -> Result<HostPhysAddr, CoveError> {
    if !gpa.is_multiple_of(PAGE_SIZE) {
        return Err(INVALID_ADDRESS);
    }
    let r = GuestRange::new(GuestPhysAddr::new(gpa), len.max(1)).ok_or(INVALID_PARAM)?;
    if !tvm.confidential.covers(&r) || tvm.shareable.overlaps(&r) {
        return Err(INVALID_PARAM);
    }
    let id = tvm.id;
    let (g, mem) = tvm.tables();
    let t = g
        .translate(&mem, GuestPhysAddr::new(gpa))
        .filter(|t| t.perms.write)
        .ok_or(INVALID_ADDRESS)?;
    // RAM the page map holds as this TVM's data, nothing else (a device
    // page would fault Salus on a wide copy).
    match crate::memory::page_map().lock().state(t.hpa) {
        Ok(page_tracking::PageState::Tvm(o, page_tracking::TvmPageKind::Data)) if o == id => {
            Ok(t.hpa)
        }
        _ => Err(INVALID_ADDRESS),
    }
}

/// FID 6: `get_attcaps(addr, size)`; `size` page aligned (the spec) and
/// at least one page.
pub fn get_attcaps(tvm: &mut Tvm, addr: u64, size: u64) -> CoveResult {
    if size == 0 || !size.is_multiple_of(PAGE_SIZE) {
        return Err(INVALID_PARAM);
    }
    let hpa = confidential(tvm, addr, size)?;
    phys::copy_to(hpa, &capabilities().to_bytes());
    Ok(0)
}

/// FID 7: `extend_measurement(addr, len, index)`: a 48-byte digest in
/// confidential memory, a runtime register.
pub fn extend_measurement(tvm: &mut Tvm, addr: u64, len: u64, index: u64) -> CoveResult {
    if len != rules::REGISTER_LEN as u64 || !rules::is_runtime_index(index) {
        return Err(INVALID_PARAM);
    }
    // The spec's table has only INVALID_ADDRESS for a bad digest buffer.
    let hpa = confidential(tvm, addr, len).map_err(|_| INVALID_ADDRESS)?;
    let mut digest = [0u8; rules::REGISTER_LEN];
    phys::copy_from(hpa, &mut digest);
    let slot = (index - rules::RUNTIME_FIRST_INDEX) as usize;
    let r = tvm
        .runtime
        .get_mut(slot)
        .ok_or(CoveError::Sbi(SbiError::Failed))?;
    r.extend(&digest);
    Ok(0)
}

/// FID 10: `read_measurement(addr, size, index)`: any register into a
/// confidential buffer of at least 48 bytes.
pub fn read_measurement(tvm: &mut Tvm, addr: u64, size: u64, index: u64) -> CoveResult {
    if size < rules::REGISTER_LEN as u64 || !rules::is_index(index) {
        return Err(INVALID_PARAM);
    }
    let hpa = confidential(tvm, addr, size)?;
    let value = match index {
        rules::TVM_INITIAL_INDEX => *tvm.measurement.value(),
        rules::TVM_CONFIG_INDEX => *tvm.config.value(),
        i => *tvm
            .runtime
            .get((i - rules::RUNTIME_FIRST_INDEX) as usize)
            .ok_or(CoveError::Sbi(SbiError::Failed))?
            .value(),
    };
    phys::copy_to(hpa, &value);
    Ok(0)
}
