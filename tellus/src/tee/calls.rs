//! The COVH and NACL calls tellus makes as a CoVE host, one wrapper per
//! function, and the SBI errors the TEE tests expect.

use cove_abi::covi::CoviFunction;
use cove_abi::supd::SupdFunction;
use cove_abi::{CovhFunction, TsmInfo, EID_COVH, EID_COVI, EID_NACL, EID_SUPD};
use sbi_abi::SbiRet;

use crate::arch::ecall;
use crate::sbi;

pub const PAGE: u64 = 4096;
pub const SIZE_2M: u64 = 2 << 20;

pub const OK: i64 = 0;
pub const ERR_FAILED: i64 = -1;
pub const ERR_NOT_SUPPORTED: i64 = -2;
pub const ERR_INVALID_PARAM: i64 = -3;
pub const ERR_INVALID_ADDRESS: i64 = -5;
pub const ERR_ALREADY_STARTED: i64 = -7;
pub const ERR_NO_SHMEM: i64 = -9;
pub const ERR_OUT_OF_PTPAGES: i64 = cove_abi::error::SBI_ERR_OUT_OF_PTPAGES;

/// SUPD get_active_domains: the mask of active supervisor domains.
pub fn supd_active_domains() -> SbiRet {
    sbi::call(EID_SUPD, SupdFunction::GetActiveDomains.fid(), [0; 6])
}

/// A COVH call. Every argument that is an address names memory tellus owns
/// or memory the TSM must refuse (host RAM it gives away or does not own,
/// which tellus does not use afterwards until it is reclaimed).
pub fn covh(f: CovhFunction, args: [u64; 6]) -> SbiRet {
    // SAFETY: see above; the TSM writes only into buffers tellus passes for
    // that purpose (tsm_info) and never runs host code.
    unsafe { ecall(EID_COVH, f.fid(), args) }
}

/// A raw COVH call by FID (for invalid-FID tests).
pub fn covh_raw(fid: u64, args: [u64; 6]) -> SbiRet {
    // SAFETY: as for `covh`.
    unsafe { ecall(EID_COVH, fid, args) }
}

/// A COVI call (the same rules as `covh`; guest-file addresses are never
/// memory tellus uses).
pub fn covi(f: CoviFunction, args: [u64; 6]) -> SbiRet {
    // SAFETY: as for `covh`; the TSM only reads `tvm_aia_params`.
    unsafe { ecall(EID_COVI, f.fid(), args) }
}

/// A COVI call's error.
pub fn covi_call(f: CoviFunction, a0: u64, a1: u64, a2: u64) -> i64 {
    covi(f, [a0, a1, a2, 0, 0, 0]).error
}

pub fn get_tsm_info(addr: u64, len: u64) -> SbiRet {
    covh(CovhFunction::GetTsmInfo, [addr, len, 0, 0, 0, 0])
}
pub fn convert_pages(base: u64, n: u64) -> SbiRet {
    covh(CovhFunction::ConvertPages, [base, n, 0, 0, 0, 0])
}
pub fn reclaim_pages(base: u64, n: u64) -> SbiRet {
    covh(CovhFunction::ReclaimPages, [base, n, 0, 0, 0, 0])
}
pub fn global_fence() -> SbiRet {
    covh(CovhFunction::GlobalFence, [0; 6])
}
pub fn local_fence() -> SbiRet {
    covh(CovhFunction::LocalFence, [0; 6])
}
pub fn create_tvm(params: u64, len: u64) -> SbiRet {
    covh(CovhFunction::CreateTvm, [params, len, 0, 0, 0, 0])
}
pub fn finalize_tvm(id: u64, sepc: u64, arg: u64, identity: u64) -> SbiRet {
    covh(CovhFunction::FinalizeTvm, [id, sepc, arg, identity, 0, 0])
}
pub fn destroy_tvm(id: u64) -> SbiRet {
    covh(CovhFunction::DestroyTvm, [id, 0, 0, 0, 0, 0])
}
pub fn add_memory_region(id: u64, gpa: u64, len: u64) -> SbiRet {
    covh(CovhFunction::AddTvmMemoryRegion, [id, gpa, len, 0, 0, 0])
}
pub fn add_pt_pages(id: u64, base: u64, n: u64) -> SbiRet {
    covh(CovhFunction::AddTvmPageTablePages, [id, base, n, 0, 0, 0])
}
pub fn add_measured_pages(id: u64, src: u64, dest: u64, ty: u64, n: u64, gpa: u64) -> SbiRet {
    covh(
        CovhFunction::AddTvmMeasuredPages,
        [id, src, dest, ty, n, gpa],
    )
}
pub fn add_zero_pages(id: u64, base: u64, ty: u64, n: u64, gpa: u64) -> SbiRet {
    covh(CovhFunction::AddTvmZeroPages, [id, base, ty, n, gpa, 0])
}
pub fn add_shared_pages(id: u64, base: u64, ty: u64, n: u64, gpa: u64) -> SbiRet {
    covh(CovhFunction::AddTvmSharedPages, [id, base, ty, n, gpa, 0])
}
pub fn create_vcpu(id: u64, vcpu: u64, state: u64) -> SbiRet {
    covh(CovhFunction::CreateTvmVcpu, [id, vcpu, state, 0, 0, 0])
}
pub fn tvm_fence(id: u64) -> SbiRet {
    covh(CovhFunction::TvmFence, [id, 0, 0, 0, 0, 0])
}
pub fn tvm_invalidate(id: u64, gpa: u64, len: u64) -> SbiRet {
    covh(CovhFunction::TvmInvalidatePages, [id, gpa, len, 0, 0, 0])
}
pub fn tvm_validate(id: u64, gpa: u64, len: u64) -> SbiRet {
    covh(CovhFunction::TvmValidatePages, [id, gpa, len, 0, 0, 0])
}
pub fn tvm_remove(id: u64, gpa: u64, len: u64) -> SbiRet {
    covh(CovhFunction::TvmRemovePages, [id, gpa, len, 0, 0, 0])
}

pub fn nacl_set_shmem(lo: u64, hi: u64, flags: u64) -> SbiRet {
    // SAFETY: the TSM uses the buffer as NACL shared memory; tellus passes
    // its own per-hart 12 KiB buffer (or a value the TSM must refuse).
    unsafe { ecall(EID_NACL, 1, [lo, hi, flags, 0, 0, 0]) }
}

/// COVH present and the TSM READY? Returns the info.
/// The spec's "Platform TSM detection": SUPD, the active supervisor
/// domains (Salus hosts its TSM in domain 0), then COVH and get_tsm_info.
pub fn probe(info_buf: &mut Info) -> Option<TsmInfo> {
    if sbi::probe(EID_SUPD).value == 0 || supd_active_domains().value & 1 == 0 {
        return None;
    }
    let r = sbi::probe(EID_COVH);
    if r.error != OK || r.value == 0 {
        return None;
    }
    let r = get_tsm_info(info_buf.0.as_mut_ptr() as u64, 48);
    if r.error != OK {
        return None;
    }
    let info = TsmInfo::from_bytes(&info_buf.0)?;
    (info.state() == Some(cove_abi::TsmState::Ready)).then_some(info)
}

#[repr(C, align(64))]
pub struct Info(pub [u8; 64]);
