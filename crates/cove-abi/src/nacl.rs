//! NACL (SBI nested acceleration, EID "NACL") ids and the shared-memory
//! layout CoVE uses between the host and the TSM for `run_tvm_vcpu`.
//!
//! Layout of the per-hart shared memory (RV64, 12 KiB = 3 pages, must be
//! 4 KiB-aligned, set with `set_shmem`):
//!
//! | offset | size | content |
//! |---:|---:|---|
//! | 0x0000 | 2048 | `scratch[256]` (for COVH: `tsm_shmem_scratch`) |
//! | 0x0800 | 1920 | `_reserved[240]` |
//! | 0x0F80 | 128  | `dirty_bitmap[16]` (unused by CoVE; the TSM neither reads nor writes it) |
//! | 0x1000 | 8192 | `csrs[1024]`, slot = `{csr[11:10], csr[7:0]}` |
//!
//! `tsm_shmem_scratch` = `guest_gprs[32]` (x0..x31 at 0x000..0x100, so
//! `a0` = x10 is at 0x50 and `a7` = x17 at 0x88), then `_reserved[224]`.
//!
//! # What crosses on `run_tvm_vcpu`
//! TSM -> host on every exit (written by the TSM, read by the host) into
//! the `csrs` area: [`csr::HTINST`], [`csr::HTVAL`], [`csr::HTIMEDELTA`],
//! [`csr::VSTIMECMP`], [`csr::VSIE`] (see [`TSM_WRITTEN_CSRS`]). The exit
//! cause itself arrives in the host's architectural `scause`/`stval` (from
//! the TSM's side: the CSRs the host will read as `scause`/`stval`, i.e.
//! `vscause`/`vstval` when the host runs virtualized); those two CSRs are
//! not NACL-indexable (`csr[9:8] != 0b10`).
//!
//! GPRs in the scratch area (`guest_gprs`):
//! - forwarded ECALL (`scause` = 10): TSM writes `a0..=a7` (x10..x17); on
//!   the next `run_tvm_vcpu` the TSM reads back `a0`, `a1` only
//!   ([`ECALL_ARG_GPRS`], [`ECALL_RESULT_GPRS`]);
//! - MMIO store fault (21/23 in an MMIO region): the TSM rewrites the store
//!   so its source is `a0` in `htinst` and writes the value to `a0`;
//! - MMIO load fault: `htinst` is rewritten with destination `a0`; the
//!   host writes the loaded value to `a0`, which the TSM reads back
//!   ([`MMIO_DATA_GPR`]).
//!
//! Host -> TSM for `promote_to_tvm` only: `hgatp` and the `vs*` CSRs
//! ([`HOST_REFLECTED_CSRS`]) and all 32 GPRs.

use crate::bytes::{rd_u64, wr_u64};
use core::mem::{offset_of, size_of};

crate::fid_enum! {
    /// NACL function ids (SBI 2.0 §15).
    NaclFunction {
        /// `probe_feature(feature_id)` -> 1 if available.
        ProbeFeature = 0,
        /// `set_shmem(phys_lo, phys_hi, flags)`; `phys_lo == phys_hi == !0` disables.
        SetShmem = 1,
        /// `sync_csr(csr_num)`; `!0` syncs all.
        SyncCsr = 2,
        /// `sync_hfence(entry_index)`; `!0` syncs all.
        SyncHfence = 3,
        /// `sync_sret()`.
        SyncSret = 4,
    }
}

/// NACL feature ids for `probe_feature`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u64)]
pub enum NaclFeature {
    /// Synchronize CSR.
    SyncCsr = 0,
    /// Synchronize HFENCE.
    SyncHfence = 1,
    /// Synchronize SRET.
    SyncSret = 2,
    /// Autoswap CSR.
    AutoswapCsr = 3,
}

impl NaclFeature {
    /// Decodes a feature id.
    pub const fn from_u64(v: u64) -> Option<Self> {
        match v {
            0 => Some(NaclFeature::SyncCsr),
            1 => Some(NaclFeature::SyncHfence),
            2 => Some(NaclFeature::SyncSret),
            3 => Some(NaclFeature::AutoswapCsr),
            _ => None,
        }
    }
}

/// `set_shmem` argument value that disables the shared memory.
pub const SHMEM_DISABLE: u64 = u64::MAX;

/// Total size: 4 KiB scratch page + 1024 XLEN-wide CSR slots = 12 KiB.
pub const SHMEM_SIZE: usize = 0x3000;
/// Number of 4 KiB pages.
pub const SHMEM_PAGES: usize = 3;
/// Required alignment of the shared memory.
pub const SHMEM_ALIGN: usize = 4096;
/// Offset of `scratch`.
pub const SCRATCH_OFFSET: usize = 0x0000;
/// Size of `scratch` in bytes.
pub const SCRATCH_SIZE: usize = 256 * 8;
/// Offset of `_reserved`.
pub const RESERVED_OFFSET: usize = 0x0800;
/// Offset of `dirty_bitmap`.
pub const DIRTY_BITMAP_OFFSET: usize = 0x0F80;
/// Offset of `csrs`.
pub const CSRS_OFFSET: usize = 0x1000;
/// Number of CSR slots.
pub const CSR_SLOTS: usize = 1024;
/// Offset of `tsm_shmem_scratch.guest_gprs` (start of scratch).
pub const GUEST_GPRS_OFFSET: usize = SCRATCH_OFFSET;
/// Number of guest GPR slots (x0..x31).
pub const GUEST_GPRS: usize = 32;

/// DBCN console exits (a Salus choice, docs/cove-abi-choices.md): the TSM
/// copies the bytes a TVM prints into the scratch area right after
/// `guest_gprs`, at most this many per exit; the exit's `a0` says how many.
pub const CONSOLE_BYTES_OFFSET: usize = GUEST_GPRS_OFFSET + GUEST_GPRS * 8;
/// Most console bytes one exit carries.
pub const CONSOLE_BYTES_MAX: usize = 1024;
const _: () = assert!(CONSOLE_BYTES_OFFSET + CONSOLE_BYTES_MAX <= SCRATCH_OFFSET + SCRATCH_SIZE);

/// `struct nacl_shmem`, for layout checking (12 KiB; don't put it on a stack).
#[repr(C)]
pub struct NaclShmemLayout {
    /// Scratch space; `TsmShmemScratch` for COVH.
    pub scratch: [u64; 256],
    /// Reserved.
    pub _reserved: [u64; 240],
    /// CSR dirty bitmap (unused by CoVE).
    pub dirty_bitmap: [u64; 16],
    /// CSR slots.
    pub csrs: [u64; CSR_SLOTS],
}

/// `struct tsm_shmem_scratch`.
#[repr(C)]
pub struct TsmShmemScratch {
    /// x0..x31 of the TVM vCPU (only the ones the exit needs are valid).
    pub guest_gprs: [u64; GUEST_GPRS],
    /// Reserved.
    pub _reserved: [u64; 224],
}

const _: () = {
    assert!(size_of::<NaclShmemLayout>() == SHMEM_SIZE);
    assert!(SHMEM_SIZE == SHMEM_PAGES * 4096);
    assert!(offset_of!(NaclShmemLayout, scratch) == SCRATCH_OFFSET);
    assert!(offset_of!(NaclShmemLayout, _reserved) == RESERVED_OFFSET);
    assert!(offset_of!(NaclShmemLayout, dirty_bitmap) == DIRTY_BITMAP_OFFSET);
    assert!(offset_of!(NaclShmemLayout, csrs) == CSRS_OFFSET);
    assert!(size_of::<TsmShmemScratch>() == SCRATCH_SIZE);
};

/// CSR numbers that appear in the CoVE NACL exchange (all have
/// `csr[9:8] == 0b10`, i.e. are HS or VS CSRs).
pub mod csr {
    /// `vsstatus`.
    pub const VSSTATUS: u16 = 0x200;
    /// `vsie`.
    pub const VSIE: u16 = 0x204;
    /// `vstvec`.
    pub const VSTVEC: u16 = 0x205;
    /// `vsscratch`.
    pub const VSSCRATCH: u16 = 0x240;
    /// `vsepc`.
    pub const VSEPC: u16 = 0x241;
    /// `vscause`.
    pub const VSCAUSE: u16 = 0x242;
    /// `vstval`.
    pub const VSTVAL: u16 = 0x243;
    /// `vsip`.
    pub const VSIP: u16 = 0x244;
    /// `vstimecmp` (Sstc).
    pub const VSTIMECMP: u16 = 0x24D;
    /// `vsatp`.
    pub const VSATP: u16 = 0x280;
    /// `hstatus`.
    pub const HSTATUS: u16 = 0x600;
    /// `htimedelta`.
    pub const HTIMEDELTA: u16 = 0x605;
    /// `htval`.
    pub const HTVAL: u16 = 0x643;
    /// `hvip`.
    pub const HVIP: u16 = 0x645;
    /// `htinst`.
    pub const HTINST: u16 = 0x64A;
    /// `hgatp`.
    pub const HGATP: u16 = 0x680;
}

/// GPR numbers.
pub mod gpr {
    /// x10.
    pub const A0: usize = 10;
    /// x11.
    pub const A1: usize = 11;
    /// x16.
    pub const A6: usize = 16;
    /// x17.
    pub const A7: usize = 17;
}

/// CSRs the TSM writes on every `run_tvm_vcpu` exit (host reads them).
pub const TSM_WRITTEN_CSRS: [u16; 5] = [
    csr::HTINST,
    csr::HTVAL,
    csr::HTIMEDELTA,
    csr::VSTIMECMP,
    csr::VSIE,
];

/// CSRs the host reflects to the TSM for `promote_to_tvm`.
pub const HOST_REFLECTED_CSRS: [u16; 11] = [
    csr::HGATP,
    csr::VSSTATUS,
    csr::VSIE,
    csr::VSTVEC,
    csr::VSSCRATCH,
    csr::VSEPC,
    csr::VSCAUSE,
    csr::VSTVAL,
    csr::VSIP,
    csr::VSTIMECMP,
    csr::VSATP,
];

/// GPRs the TSM writes for a forwarded ECALL: a0..=a7.
pub const ECALL_ARG_GPRS: core::ops::RangeInclusive<usize> = gpr::A0..=gpr::A7;
/// GPRs the TSM reads back after a forwarded ECALL: a0, a1.
pub const ECALL_RESULT_GPRS: [usize; 2] = [gpr::A0, gpr::A1];
/// The only GPR used for MMIO data (the TSM rewrites `htinst` to use it).
pub const MMIO_DATA_GPR: usize = gpr::A0;

/// Slot of an HS/VS CSR: `{csr[11:10], csr[7:0]}`. `None` unless the number
/// is 12-bit with `csr[9:8] == 0b10`.
pub const fn csr_index(csr_number: u16) -> Option<usize> {
    if csr_number > 0xfff || (csr_number >> 8) & 3 != 0b10 {
        return None;
    }
    Some(((((csr_number >> 10) & 3) << 8) | (csr_number & 0xff)) as usize)
}

/// Byte offset of a CSR slot in the shared memory.
pub const fn csr_offset(csr_number: u16) -> Option<usize> {
    match csr_index(csr_number) {
        Some(i) => Some(CSRS_OFFSET + 8 * i),
        None => None,
    }
}

/// Byte offset of guest GPR `x{reg}` in the shared memory.
pub const fn gpr_offset(reg: usize) -> Option<usize> {
    if reg < GUEST_GPRS {
        Some(GUEST_GPRS_OFFSET + 8 * reg)
    } else {
        None
    }
}

/// Safe little-endian accessors over a byte image of the shared memory.
pub struct NaclShmem<'a> {
    bytes: &'a mut [u8; SHMEM_SIZE],
}

impl<'a> NaclShmem<'a> {
    /// Wraps a 12 KiB buffer.
    pub fn new(bytes: &'a mut [u8; SHMEM_SIZE]) -> Self {
        NaclShmem { bytes }
    }

    /// Guest GPR `x{reg}`; `None` if `reg >= 32`.
    pub fn gpr(&self, reg: usize) -> Option<u64> {
        gpr_offset(reg).map(|o| rd_u64(&self.bytes[..], o))
    }

    /// Sets guest GPR `x{reg}`; `false` if `reg >= 32`.
    pub fn set_gpr(&mut self, reg: usize, value: u64) -> bool {
        match gpr_offset(reg) {
            Some(o) => {
                wr_u64(&mut self.bytes[..], o, value);
                true
            }
            None => false,
        }
    }

    /// CSR slot value; `None` for non-HS/VS CSR numbers.
    pub fn csr(&self, csr_number: u16) -> Option<u64> {
        csr_offset(csr_number).map(|o| rd_u64(&self.bytes[..], o))
    }

    /// Sets a CSR slot; `false` for non-HS/VS CSR numbers.
    pub fn set_csr(&mut self, csr_number: u16, value: u64) -> bool {
        match csr_offset(csr_number) {
            Some(o) => {
                wr_u64(&mut self.bytes[..], o, value);
                true
            }
            None => false,
        }
    }

    /// The raw bytes.
    pub fn bytes(&self) -> &[u8; SHMEM_SIZE] {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sbi_abi::spec::nacl as spec;

    #[test]
    fn ids_match_sbi_spec() {
        assert_eq!(NaclFunction::ProbeFeature.fid(), spec::PROBE_FEATURE as u64);
        assert_eq!(NaclFunction::SetShmem.fid(), spec::SET_SHMEM as u64);
        assert_eq!(NaclFunction::SyncCsr.fid(), spec::SYNC_CSR as u64);
        assert_eq!(NaclFunction::SyncHfence.fid(), spec::SYNC_HFENCE as u64);
        assert_eq!(NaclFunction::SyncSret.fid(), spec::SYNC_SRET as u64);
        assert_eq!(NaclFunction::from_fid(5), None);
        assert_eq!(NaclFeature::SyncCsr as usize, spec::feature_id::SYNC_CSR);
        assert_eq!(
            NaclFeature::SyncHfence as usize,
            spec::feature_id::SYNC_HFENCE
        );
        assert_eq!(NaclFeature::SyncSret as usize, spec::feature_id::SYNC_SRET);
        assert_eq!(
            NaclFeature::AutoswapCsr as usize,
            spec::feature_id::AUTOSWAP_CSR
        );
        assert_eq!(NaclFeature::from_u64(4), None);
        assert_eq!(SHMEM_SIZE, spec::shmem_size::RV64);
    }

    #[test]
    fn csr_slots() {
        assert_eq!(csr_index(csr::VSSTATUS), Some(0x000));
        assert_eq!(csr_index(csr::VSIE), Some(0x004));
        assert_eq!(csr_index(csr::VSTIMECMP), Some(0x04D));
        assert_eq!(csr_index(csr::HTIMEDELTA), Some(0x105));
        assert_eq!(csr_index(csr::HTVAL), Some(0x143));
        assert_eq!(csr_index(csr::HTINST), Some(0x14A));
        assert_eq!(csr_index(csr::HGATP), Some(0x180));
        assert_eq!(csr_index(0xE12), Some(0x312)); // hgeip
        assert_eq!(csr_offset(csr::HTVAL), Some(0x1A18));
        assert_eq!(csr_index(0x142), None); // scause: not HS/VS
        assert_eq!(csr_index(0x300), None); // mstatus
        assert_eq!(csr_index(0x1200), None); // not 12-bit
    }

    #[test]
    fn csr_index_is_a_bijection_onto_slots() {
        let mut seen = [false; CSR_SLOTS];
        for n in 0..=0xfffu16 {
            if let Some(i) = csr_index(n) {
                assert!(!seen[i]);
                seen[i] = true;
            }
        }
        assert!(seen.iter().all(|s| *s));
    }

    #[test]
    fn gpr_offsets() {
        assert_eq!(gpr_offset(gpr::A0), Some(0x50));
        assert_eq!(gpr_offset(gpr::A7), Some(0x88));
        assert_eq!(gpr_offset(32), None);
        assert_eq!(ECALL_ARG_GPRS.count(), 8);
    }

    #[test]
    fn accessor_round_trip() {
        let mut buf = [0u8; SHMEM_SIZE];
        let mut s = NaclShmem::new(&mut buf);
        assert!(s.set_gpr(gpr::A0, 0x1122_3344_5566_7788));
        assert!(s.set_csr(csr::HTINST, 0x0005_3503));
        assert!(!s.set_csr(0x142, 1));
        assert!(!s.set_gpr(32, 1));
        assert_eq!(s.gpr(gpr::A0), Some(0x1122_3344_5566_7788));
        assert_eq!(s.csr(csr::HTINST), Some(0x0005_3503));
        assert_eq!(s.bytes()[0x50], 0x88);
        assert_eq!(buf[0x1000 + 8 * 0x14A], 0x03);
    }
}
