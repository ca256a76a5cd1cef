//! COVE Host extension (EID "COVH"): function ids, TSM info, TVM creation
//! parameters, page types, TVM states and `run_tvm_vcpu` exit causes.

use crate::bytes::{rd_u32, rd_u64, wr_u32, wr_u64};
use core::mem::{offset_of, size_of};

crate::fid_enum! {
    /// COVH function ids (spec FID #0..#19). Arguments in a0.. as listed.
    CovhFunction {
        /// `get_tsm_info(tsm_info_addr, tsm_info_len)` -> bytes written.
        GetTsmInfo = 0,
        /// `convert_pages(base_page_addr, num_pages)`.
        ConvertPages = 1,
        /// `reclaim_pages(base_page_addr, num_pages)`.
        ReclaimPages = 2,
        /// `global_fence()`; `ALREADY_STARTED` while one is in flight.
        GlobalFence = 3,
        /// `local_fence()`.
        LocalFence = 4,
        /// `create_tvm(params_addr, params_len)` -> tvm_guest_id.
        CreateTvm = 5,
        /// `finalize_tvm(tvm_id, entry_sepc, entry_arg, tvm_identity_addr)`.
        FinalizeTvm = 6,
        /// `promote_to_tvm(fdt_addr, tap_addr, entry_sepc, tvm_identity_addr)`.
        PromoteToTvm = 7,
        /// `destroy_tvm(tvm_id)`.
        DestroyTvm = 8,
        /// `add_tvm_memory_region(tvm_id, gpa, len)`.
        AddTvmMemoryRegion = 9,
        /// `add_tvm_page_table_pages(tvm_id, base_page_addr, num_pages)`.
        AddTvmPageTablePages = 10,
        /// `add_tvm_measured_pages(tvm_id, src, dest, page_type, num_pages, gpa)`.
        AddTvmMeasuredPages = 11,
        /// `add_tvm_zero_pages(tvm_id, base_page_addr, page_type, num_pages, gpa)`.
        AddTvmZeroPages = 12,
        /// `add_tvm_shared_pages(tvm_id, base_page_addr, page_type, num_pages, gpa)`.
        AddTvmSharedPages = 13,
        /// `create_tvm_vcpu(tvm_id, vcpu_id, state_page_addr)`.
        CreateTvmVcpu = 14,
        /// `run_tvm_vcpu(tvm_id, vcpu_id)`.
        RunTvmVcpu = 15,
        /// `tvm_fence(tvm_id)`.
        TvmFence = 16,
        /// `tvm_invalidate_pages(tvm_id, gpa, len)`.
        TvmInvalidatePages = 17,
        /// `tvm_validate_pages(tvm_id, gpa, len)`.
        TvmValidatePages = 18,
        /// `tvm_remove_pages(tvm_id, gpa, len)`.
        TvmRemovePages = 19,
    }
}

/// `enum tsm_state` (a `uint32_t`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum TsmState {
    /// TSM has not been loaded on this platform.
    NotLoaded = 0,
    /// TSM loaded but not yet initialized.
    Loaded = 1,
    /// TSM initialized and accepting ECALLs.
    Ready = 2,
}

impl TsmState {
    /// Decodes the raw field.
    pub const fn from_u32(v: u32) -> Option<Self> {
        match v {
            0 => Some(TsmState::NotLoaded),
            1 => Some(TsmState::Loaded),
            2 => Some(TsmState::Ready),
            _ => None,
        }
    }
}

/// Bit positions of `tsm_info.tsm_capabilities` (`COVE_TSM_CAP_*`).
pub mod cap {
    /// Single-step TVM creation (`promote_to_tvm`) when set, multi-step otherwise.
    pub const PROMOTE_TVM: u32 = 0;
    /// Local attestation.
    pub const ATTESTATION_LOCAL: u32 = 1;
    /// Remote attestation.
    pub const ATTESTATION_REMOTE: u32 = 2;
    /// RISC-V AIA (otherwise legacy interrupt handling).
    pub const AIA: u32 = 3;
    /// MRIF.
    pub const MRIF: u32 = 4;
    /// Dynamic memory allocation (otherwise static).
    pub const MEMORY_ALLOCATION: u32 = 5;
    /// Bits 6..63 are reserved.
    pub const RESERVED_MASK: u64 = !0x3f;
}

/// The `tsm_capabilities` bit mask.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct TsmCapabilities(pub u64);

impl TsmCapabilities {
    /// No capability.
    pub const NONE: TsmCapabilities = TsmCapabilities(0);
    /// Whether capability bit `bit` (a [`cap`] constant) is set.
    pub const fn has(self, bit: u32) -> bool {
        bit < 64 && self.0 & (1 << bit) != 0
    }
    /// Returns the mask with `bit` set.
    pub const fn with(self, bit: u32) -> Self {
        TsmCapabilities(self.0 | (1 << bit))
    }
    /// Whether any reserved bit (6..63) is set.
    pub const fn has_reserved(self) -> bool {
        self.0 & cap::RESERVED_MASK != 0
    }
}

/// Reserved TSM implementation ids (spec table "Reserved TSM Implementation IDs").
pub mod impl_id {
    /// `COVE_TSM_IMPL_SALUS`: what Salus reports.
    pub const SALUS: u32 = 1;
    /// `COVE_TSM_IMPL_ACE`.
    pub const ACE: u32 = 2;
}

/// TSM version encoding (project choice): `major << 16 | minor`.
pub const fn tsm_version(major: u16, minor: u16) -> u32 {
    ((major as u32) << 16) | minor as u32
}

/// The version Salus reports: 1.0.
pub const SALUS_TSM_VERSION: u32 = tsm_version(1, 0);

/// `struct tsm_info`, written by `get_tsm_info`. 48 bytes on RV64:
///
/// | off | size | field |
/// |----:|----:|---|
/// | 0  | 4 | tsm_state |
/// | 4  | 4 | tsm_impl_id |
/// | 8  | 4 | tsm_version |
/// | 12 | 4 | (C alignment padding, written as 0) |
/// | 16 | 8 | tsm_capabilities |
/// | 24 | 8 | tvm_state_pages |
/// | 32 | 8 | tvm_max_vcpus |
/// | 40 | 8 | tvm_vcpu_state_pages |
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[repr(C)]
pub struct TsmInfo {
    /// Raw [`TsmState`]. If not `Ready`, all other fields are 0.
    pub tsm_state: u32,
    /// TSM implementation id ([`impl_id`]).
    pub tsm_impl_id: u32,
    /// TSM version ([`tsm_version`] encoding).
    pub tsm_version: u32,
    /// Explicit padding so the layout has no implicit holes; always 0.
    pub _padding: u32,
    /// [`TsmCapabilities`] bits.
    pub tsm_capabilities: u64,
    /// 4 KiB pages to donate for TVM state (`create_tvm`); 0 without
    /// dynamic memory allocation.
    pub tvm_state_pages: u64,
    /// Maximum vCPUs per TVM.
    pub tvm_max_vcpus: u64,
    /// 4 KiB pages to donate per vCPU (`create_tvm_vcpu`).
    pub tvm_vcpu_state_pages: u64,
}

const _: () = {
    assert!(size_of::<TsmInfo>() == 48);
    assert!(offset_of!(TsmInfo, tsm_state) == 0);
    assert!(offset_of!(TsmInfo, tsm_impl_id) == 4);
    assert!(offset_of!(TsmInfo, tsm_version) == 8);
    assert!(offset_of!(TsmInfo, _padding) == 12);
    assert!(offset_of!(TsmInfo, tsm_capabilities) == 16);
    assert!(offset_of!(TsmInfo, tvm_state_pages) == 24);
    assert!(offset_of!(TsmInfo, tvm_max_vcpus) == 32);
    assert!(offset_of!(TsmInfo, tvm_vcpu_state_pages) == 40);
};

impl TsmInfo {
    /// Size in bytes of the structure on RV64.
    pub const SIZE: usize = 48;

    /// Typed state, `None` if the raw value is not a known state.
    pub const fn state(&self) -> Option<TsmState> {
        TsmState::from_u32(self.tsm_state)
    }

    /// Typed capabilities.
    pub const fn capabilities(&self) -> TsmCapabilities {
        TsmCapabilities(self.tsm_capabilities)
    }

    /// Little-endian image.
    pub fn to_bytes(&self) -> [u8; Self::SIZE] {
        let mut b = [0u8; Self::SIZE];
        wr_u32(&mut b, 0, self.tsm_state);
        wr_u32(&mut b, 4, self.tsm_impl_id);
        wr_u32(&mut b, 8, self.tsm_version);
        wr_u32(&mut b, 12, self._padding);
        wr_u64(&mut b, 16, self.tsm_capabilities);
        wr_u64(&mut b, 24, self.tvm_state_pages);
        wr_u64(&mut b, 32, self.tvm_max_vcpus);
        wr_u64(&mut b, 40, self.tvm_vcpu_state_pages);
        b
    }

    /// Parses the first [`SIZE`](Self::SIZE) bytes; `None` if shorter.
    /// Values are not validated (see [`state`](Self::state)).
    pub fn from_bytes(b: &[u8]) -> Option<Self> {
        if b.len() < Self::SIZE {
            return None;
        }
        Some(TsmInfo {
            tsm_state: rd_u32(b, 0),
            tsm_impl_id: rd_u32(b, 4),
            tsm_version: rd_u32(b, 8),
            _padding: rd_u32(b, 12),
            tsm_capabilities: rd_u64(b, 16),
            tvm_state_pages: rd_u64(b, 24),
            tvm_max_vcpus: rd_u64(b, 32),
            tvm_vcpu_state_pages: rd_u64(b, 40),
        })
    }
}

/// Size and alignment of the TVM page directory (16 KiB, 16 KiB-aligned).
pub const TVM_PAGE_DIRECTORY_SIZE: u64 = 16 * 1024;

/// `struct tvm_create_params`, 16 bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[repr(C)]
pub struct TvmCreateParams {
    /// 16 KiB-aligned confidential 16 KiB region for the G-stage root.
    pub tvm_page_directory_addr: u64,
    /// Page-aligned confidential region of >= `tsm_info.tvm_state_pages` pages.
    pub tvm_state_addr: u64,
}

const _: () = {
    assert!(size_of::<TvmCreateParams>() == 16);
    assert!(offset_of!(TvmCreateParams, tvm_page_directory_addr) == 0);
    assert!(offset_of!(TvmCreateParams, tvm_state_addr) == 8);
};

impl TvmCreateParams {
    /// Size in bytes.
    pub const SIZE: usize = 16;

    /// Little-endian image.
    pub fn to_bytes(&self) -> [u8; Self::SIZE] {
        let mut b = [0u8; Self::SIZE];
        wr_u64(&mut b, 0, self.tvm_page_directory_addr);
        wr_u64(&mut b, 8, self.tvm_state_addr);
        b
    }

    /// Parses the first 16 bytes; `None` if shorter.
    pub fn from_bytes(b: &[u8]) -> Option<Self> {
        if b.len() < Self::SIZE {
            return None;
        }
        Some(TvmCreateParams {
            tvm_page_directory_addr: rd_u64(b, 0),
            tvm_state_addr: rd_u64(b, 8),
        })
    }
}

/// `enum tsm_page_type`. Any other value is invalid (`INVALID_PARAM`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u64)]
pub enum PageType {
    /// 4 KiB.
    Page4K = 0,
    /// 2 MiB.
    Page2M = 1,
    /// 1 GiB.
    Page1G = 2,
    /// 512 GiB.
    Page512G = 3,
}

impl PageType {
    /// All page types, smallest first.
    pub const ALL: [PageType; 4] = [
        PageType::Page4K,
        PageType::Page2M,
        PageType::Page1G,
        PageType::Page512G,
    ];

    /// Decodes the `tsm_page_type` argument.
    pub const fn from_u64(v: u64) -> Option<Self> {
        match v {
            0 => Some(PageType::Page4K),
            1 => Some(PageType::Page2M),
            2 => Some(PageType::Page1G),
            3 => Some(PageType::Page512G),
            _ => None,
        }
    }

    /// Size of one page of this type in bytes.
    pub const fn size_bytes(self) -> u64 {
        1u64 << (12 + 9 * self as u32)
    }

    /// Number of 4 KiB pages in one page of this type.
    pub const fn base_pages(self) -> u64 {
        1u64 << (9 * self as u32)
    }
}

/// `enum tvm_state`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u64)]
pub enum TvmState {
    /// Created, not yet finalized.
    Initializing = 0,
    /// Finalized (or promoted), vCPUs may run.
    Runnable = 1,
}

impl TvmState {
    /// Decodes a raw value.
    pub const fn from_u64(v: u64) -> Option<Self> {
        match v {
            0 => Some(TvmState::Initializing),
            1 => Some(TvmState::Runnable),
            _ => None,
        }
    }
}

/// `sbiret.value` of a successful `run_tvm_vcpu` when the exit is resumable.
pub const RUN_VCPU_RESUMABLE: u64 = 0;
/// `sbiret.value` when the vCPU cannot be resumed (project choice: 1; the
/// spec only says "non-zero").
pub const RUN_VCPU_NOT_RESUMABLE: u64 = 1;

/// Interrupt bit of `scause` (RV64).
pub const SCAUSE_INTERRUPT: u64 = 1 << 63;

/// `enum tvm_interrupt_exit`: `scause` codes with the interrupt bit set.
pub mod interrupt {
    /// User software.
    pub const USER_SOFT: u64 = 0;
    /// Supervisor software.
    pub const SUPERVISOR_SOFT: u64 = 1;
    /// Virtual supervisor software.
    pub const VIRTUAL_SUPERVISOR_SOFT: u64 = 2;
    /// Machine software.
    pub const MACHINE_SOFT: u64 = 3;
    /// User timer.
    pub const USER_TIMER: u64 = 4;
    /// Supervisor timer.
    pub const SUPERVISOR_TIMER: u64 = 5;
    /// Virtual supervisor timer.
    pub const VIRTUAL_SUPERVISOR_TIMER: u64 = 6;
    /// Machine timer.
    pub const MACHINE_TIMER: u64 = 7;
    /// User external.
    pub const USER_EXTERNAL: u64 = 8;
    /// Supervisor external.
    pub const SUPERVISOR_EXTERNAL: u64 = 9;
    /// Virtual supervisor external.
    pub const VIRTUAL_SUPERVISOR_EXTERNAL: u64 = 10;
    /// Machine external.
    pub const MACHINE_EXTERNAL: u64 = 11;
    /// Supervisor guest external.
    pub const SUPERVISOR_GUEST_EXTERNAL: u64 = 12;
}

/// `enum Exception`: `scause` codes with the interrupt bit clear.
pub mod exception {
    /// Instruction address misaligned.
    pub const INSTRUCTION_MISALIGNED: u64 = 0;
    /// Instruction access fault.
    pub const INSTRUCTION_FAULT: u64 = 1;
    /// Illegal instruction.
    pub const ILLEGAL_INSTRUCTION: u64 = 2;
    /// Breakpoint.
    pub const BREAKPOINT: u64 = 3;
    /// Load address misaligned.
    pub const LOAD_MISALIGNED: u64 = 4;
    /// Load access fault.
    pub const LOAD_FAULT: u64 = 5;
    /// Store address misaligned.
    pub const STORE_MISALIGNED: u64 = 6;
    /// Store access fault.
    pub const STORE_FAULT: u64 = 7;
    /// ECALL from U.
    pub const USER_ENVCALL: u64 = 8;
    /// ECALL from HS.
    pub const SUPERVISOR_ENVCALL: u64 = 9;
    /// ECALL from VS forwarded to the host: a0-a7 are in the NACL scratch GPRs.
    pub const VIRTUAL_SUPERVISOR_ENV_CALL: u64 = 10;
    /// ECALL from M.
    pub const MACHINE_ENVCALL: u64 = 11;
    /// Instruction page fault.
    pub const INSTRUCTION_PAGE_FAULT: u64 = 12;
    /// Load page fault.
    pub const LOAD_PAGE_FAULT: u64 = 13;
    /// Store page fault.
    pub const STORE_PAGE_FAULT: u64 = 15;
    /// Guest instruction page fault.
    pub const GUEST_INSTRUCTION_PAGE_FAULT: u64 = 20;
    /// Guest load page fault: GPA = `htval << 2 | stval & 3`.
    pub const GUEST_LOAD_PAGE_FAULT: u64 = 21;
    /// Virtual instruction: decode `htinst`.
    pub const VIRTUAL_INSTRUCTION: u64 = 22;
    /// Guest store page fault: GPA = `htval << 2 | stval & 3`.
    pub const GUEST_STORE_PAGE_FAULT: u64 = 23;
}

/// A decoded `scause` of a TVM exit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitCause {
    /// Interrupt with its code ([`interrupt`]).
    Interrupt(u64),
    /// Exception with its code ([`exception`]).
    Exception(u64),
}

impl ExitCause {
    /// Splits `scause` into interrupt / exception and code.
    pub const fn from_scause(scause: u64) -> Self {
        if scause & SCAUSE_INTERRUPT != 0 {
            ExitCause::Interrupt(scause & !SCAUSE_INTERRUPT)
        } else {
            ExitCause::Exception(scause)
        }
    }

    /// Back to the `scause` value.
    pub const fn to_scause(self) -> u64 {
        match self {
            ExitCause::Interrupt(c) => c | SCAUSE_INTERRUPT,
            ExitCause::Exception(c) => c,
        }
    }
}

/// Faulting guest physical address of a guest page fault, as the spec tells
/// the host to compute it: `(htval << 2) | (stval & 3)`.
pub const fn fault_gpa(htval: u64, stval: u64) -> u64 {
    (htval << 2) | (stval & 3)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fid::FidError;

    #[test]
    fn fids_are_dense_0_to_19() {
        assert_eq!(CovhFunction::ALL.len(), 20);
        for (i, f) in CovhFunction::ALL.iter().enumerate() {
            assert_eq!(f.fid(), i as u64);
            assert_eq!(CovhFunction::from_fid(i as u64), Some(*f));
        }
        assert_eq!(CovhFunction::from_fid(20), None);
        assert_eq!(CovhFunction::from_fid(1 << 16), None);
        assert_eq!(CovhFunction::RunTvmVcpu.fid(), 15);
        assert_eq!(CovhFunction::AddTvmMeasuredPages.fid(), 11);
    }

    #[test]
    fn from_a6_checks_domain_and_reserved_bits() {
        assert_eq!(CovhFunction::from_a6(5), Ok(CovhFunction::CreateTvm));
        assert_eq!(
            CovhFunction::from_a6((1 << 26) | 5),
            Err(FidError::ForeignDomain(1))
        );
        assert_eq!(
            CovhFunction::from_a6((1 << 16) | 5),
            Err(FidError::ReservedBits)
        );
        assert_eq!(
            CovhFunction::from_a6(1024),
            Err(FidError::UnknownFunction(1024))
        );
    }

    #[test]
    fn tsm_info_round_trip_and_offsets() {
        let info = TsmInfo {
            tsm_state: TsmState::Ready as u32,
            tsm_impl_id: impl_id::SALUS,
            tsm_version: SALUS_TSM_VERSION,
            _padding: 0,
            tsm_capabilities: TsmCapabilities::NONE.with(cap::MEMORY_ALLOCATION).0,
            tvm_state_pages: 4,
            tvm_max_vcpus: 8,
            tvm_vcpu_state_pages: 1,
        };
        let b = info.to_bytes();
        assert_eq!(&b[0..4], &2u32.to_le_bytes());
        assert_eq!(&b[4..8], &1u32.to_le_bytes());
        assert_eq!(&b[8..12], &0x0001_0000u32.to_le_bytes());
        assert_eq!(&b[12..16], &[0; 4]);
        assert_eq!(&b[16..24], &(1u64 << 5).to_le_bytes());
        assert_eq!(&b[24..32], &4u64.to_le_bytes());
        assert_eq!(&b[32..40], &8u64.to_le_bytes());
        assert_eq!(&b[40..48], &1u64.to_le_bytes());
        assert_eq!(TsmInfo::from_bytes(&b), Some(info));
        assert_eq!(TsmInfo::from_bytes(&b[..47]), None);
        assert_eq!(info.state(), Some(TsmState::Ready));
        assert!(info.capabilities().has(cap::MEMORY_ALLOCATION));
        assert!(!info.capabilities().has(cap::AIA));
        assert!(!info.capabilities().has_reserved());
    }

    #[test]
    fn create_params_round_trip() {
        let p = TvmCreateParams {
            tvm_page_directory_addr: 0x8020_0000,
            tvm_state_addr: 0x8030_0000,
        };
        let b = p.to_bytes();
        assert_eq!(&b[0..8], &0x8020_0000u64.to_le_bytes());
        assert_eq!(TvmCreateParams::from_bytes(&b), Some(p));
        assert_eq!(TvmCreateParams::from_bytes(&b[..15]), None);
    }

    #[test]
    fn page_types() {
        assert_eq!(PageType::from_u64(0), Some(PageType::Page4K));
        assert_eq!(PageType::from_u64(3), Some(PageType::Page512G));
        assert_eq!(PageType::from_u64(4), None);
        assert_eq!(PageType::from_u64(u64::MAX), None);
        assert_eq!(PageType::Page4K.size_bytes(), 4096);
        assert_eq!(PageType::Page2M.size_bytes(), 2 << 20);
        assert_eq!(PageType::Page1G.size_bytes(), 1 << 30);
        assert_eq!(PageType::Page512G.size_bytes(), 512 << 30);
        assert_eq!(PageType::Page2M.base_pages(), 512);
    }

    #[test]
    fn states_and_exits() {
        assert_eq!(TsmState::from_u32(3), None);
        assert_eq!(TvmState::from_u64(1), Some(TvmState::Runnable));
        assert_eq!(TvmState::from_u64(2), None);
        let s = SCAUSE_INTERRUPT | interrupt::SUPERVISOR_EXTERNAL;
        assert_eq!(ExitCause::from_scause(s), ExitCause::Interrupt(9));
        assert_eq!(ExitCause::from_scause(s).to_scause(), s);
        assert_eq!(
            ExitCause::from_scause(21),
            ExitCause::Exception(exception::GUEST_LOAD_PAGE_FAULT)
        );
        assert_eq!(fault_gpa(0x2000_0400, 0x1003), 0x8000_1003);
        assert_eq!(tsm_version(1, 2), 0x0001_0002);
    }
}
