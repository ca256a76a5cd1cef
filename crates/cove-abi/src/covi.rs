//! COVE Interrupt extension (EID "COVI"): AIA/IMSIC management for TVMs.

use crate::bytes::{rd_u32, rd_u64, wr_u32, wr_u64};
use core::mem::{offset_of, size_of};

crate::fid_enum! {
    /// COVI function ids (spec FID #0..#10).
    CoviFunction {
        /// `init_tvm_aia(tvm_id, tvm_aia_params_addr, tvm_aia_params_len)`.
        InitTvmAia = 0,
        /// `set_tvm_aia_cpu_imsic_addr(tvm_id, vcpu_id, imsic_gpa)`.
        SetTvmAiaCpuImsicAddr = 1,
        /// `convert_aia_imsic(imsic_page_addr)`.
        ConvertAiaImsic = 2,
        /// `reclaim_tvm_aia_imsic(imsic_page_addr)`.
        ReclaimTvmAiaImsic = 3,
        /// `bind_aia_imsic(tvm_id, vcpu_id, imsic_mask)`.
        BindAiaImsic = 4,
        /// `unbind_aia_imsic_begin(tvm_id, vcpu_id)`.
        UnbindAiaImsicBegin = 5,
        /// `unbind_aia_imsic_end(tvm_id, vcpu_id)`.
        UnbindAiaImsicEnd = 6,
        /// `inject_tvm_cpu(tvm_id, vcpu_id, interrupt_id)`.
        InjectTvmCpu = 7,
        /// `rebind_aia_imsic_begin(tvm_id, vcpu_id, imsic_mask)`.
        RebindAiaImsicBegin = 8,
        /// `rebind_aia_imsic_clone(tvm_id, vcpu_id)`.
        RebindAiaImsicClone = 9,
        /// `rebind_aia_imsic_end(tvm_id, vcpu_id)`.
        RebindAiaImsicEnd = 10,
    }
}

/// Salus's extension for waking vCPUs that are bound but not running
/// (docs/cove-abi-choices.md, "Waking a bound vCPU"): vendor EID "\tSCW".
pub mod wake {
    /// The extension id.
    pub const EID_SALUS_COVI_WAKE: u64 = 0x0953_4357;
    /// `set_wake_msi(id)`: Salus sends interrupt `id` to the host's own
    /// IMSIC file of a hart when a vCPU bound there (and not running) gets
    /// an interrupt; 0 turns it off. INVALID_PARAM for an id the file lacks.
    pub const FID_SET_WAKE_MSI: u64 = 0;
    /// `take_wake()`: the guest files (hgeie format) of this hart whose
    /// vCPUs woke since the last call; clears them.
    pub const FID_TAKE_WAKE: u64 = 1;
}

/// Minimum `group_index_shift` the spec allows.
pub const MIN_GROUP_INDEX_SHIFT: u32 = 24;

/// `struct tvm_aia_params`, 32 bytes on RV64 (C tail padding made explicit):
///
/// | off | size | field |
/// |---:|---:|---|
/// | 0  | 8 | imsic_base_addr |
/// | 8  | 4 | group_index_bits |
/// | 12 | 4 | group_index_shift |
/// | 16 | 4 | hart_index_bits |
/// | 20 | 4 | guest_index_bits |
/// | 24 | 4 | guests_per_hart |
/// | 28 | 4 | (padding, 0) |
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[repr(C)]
pub struct TvmAiaParams {
    /// GPA of the virtual IMSIC with group, hart and guest index 0.
    pub imsic_base_addr: u64,
    /// Group index bits in an IMSIC address.
    pub group_index_bits: u32,
    /// Position of the group index; must be >= 24.
    pub group_index_shift: u32,
    /// Hart index bits.
    pub hart_index_bits: u32,
    /// Guest index bits; must be >= log2(guests_per_hart + 1).
    pub guest_index_bits: u32,
    /// Guest interrupt files per vCPU (nested IMSIC virtualization).
    pub guests_per_hart: u32,
    /// Tail padding; always 0.
    pub _padding: u32,
}

const _: () = {
    assert!(size_of::<TvmAiaParams>() == 32);
    assert!(offset_of!(TvmAiaParams, imsic_base_addr) == 0);
    assert!(offset_of!(TvmAiaParams, group_index_bits) == 8);
    assert!(offset_of!(TvmAiaParams, group_index_shift) == 12);
    assert!(offset_of!(TvmAiaParams, hart_index_bits) == 16);
    assert!(offset_of!(TvmAiaParams, guest_index_bits) == 20);
    assert!(offset_of!(TvmAiaParams, guests_per_hart) == 24);
};

impl TvmAiaParams {
    /// Size in bytes.
    pub const SIZE: usize = 32;

    /// Little-endian image.
    pub fn to_bytes(&self) -> [u8; Self::SIZE] {
        let mut b = [0u8; Self::SIZE];
        wr_u64(&mut b, 0, self.imsic_base_addr);
        wr_u32(&mut b, 8, self.group_index_bits);
        wr_u32(&mut b, 12, self.group_index_shift);
        wr_u32(&mut b, 16, self.hart_index_bits);
        wr_u32(&mut b, 20, self.guest_index_bits);
        wr_u32(&mut b, 24, self.guests_per_hart);
        wr_u32(&mut b, 28, self._padding);
        b
    }

    /// Parses the first 32 bytes; `None` if shorter. Not validated.
    pub fn from_bytes(b: &[u8]) -> Option<Self> {
        if b.len() < Self::SIZE {
            return None;
        }
        Some(TvmAiaParams {
            imsic_base_addr: rd_u64(b, 0),
            group_index_bits: rd_u32(b, 8),
            group_index_shift: rd_u32(b, 12),
            hart_index_bits: rd_u32(b, 16),
            guest_index_bits: rd_u32(b, 20),
            guests_per_hart: rd_u32(b, 24),
            _padding: rd_u32(b, 28),
        })
    }

    /// The spec's structural constraints: `group_index_shift >= 24`,
    /// `2^guest_index_bits >= guests_per_hart + 1`, index fields fit in 64
    /// bits, and the base address is 4 KiB-aligned.
    pub const fn is_valid(&self) -> bool {
        let gib = self.guest_index_bits;
        let guests_ok = gib < 32 && (1u64 << gib) > self.guests_per_hart as u64;
        let hart_top = 12u64 + gib as u64 + self.hart_index_bits as u64;
        let group_top = self.group_index_shift as u64 + self.group_index_bits as u64;
        self.group_index_shift >= MIN_GROUP_INDEX_SHIFT
            && guests_ok
            && hart_top <= self.group_index_shift as u64
            && group_top <= 64
            && self.imsic_base_addr & 0xfff == 0
    }

    /// Whether `gpa` is a vCPU's own IMSIC file under valid parameters: the
    /// base address with only the group and hart index fields set (guest
    /// index 0: nested guest files are not part of a vCPU's page).
    pub const fn is_vcpu_file(&self, gpa: u64) -> bool {
        const fn ones(bits: u32) -> u64 {
            if bits >= 64 {
                !0
            } else {
                (1u64 << bits) - 1
            }
        }
        let hart_shift = 12 + self.guest_index_bits;
        if hart_shift >= 64 || self.group_index_shift >= 64 {
            return false;
        }
        let index = (ones(self.hart_index_bits) << hart_shift)
            | (ones(self.group_index_bits) << self.group_index_shift);
        let guest = ones(self.guest_index_bits) << 12;
        let base = self.imsic_base_addr;
        base & (index | guest) == 0 && gpa & !index == base
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fids() {
        assert_eq!(CoviFunction::ALL.len(), 11);
        for (i, f) in CoviFunction::ALL.iter().enumerate() {
            assert_eq!(CoviFunction::from_fid(i as u64), Some(*f));
        }
        assert_eq!(CoviFunction::from_fid(11), None);
        assert_eq!(CoviFunction::InjectTvmCpu.fid(), 7);
    }

    #[test]
    fn aia_params_round_trip_and_validation() {
        let p = TvmAiaParams {
            imsic_base_addr: 0x2800_0000,
            group_index_bits: 0,
            group_index_shift: 24,
            hart_index_bits: 3,
            guest_index_bits: 1,
            guests_per_hart: 1,
            _padding: 0,
        };
        let b = p.to_bytes();
        assert_eq!(&b[12..16], &24u32.to_le_bytes());
        assert_eq!(TvmAiaParams::from_bytes(&b), Some(p));
        assert_eq!(TvmAiaParams::from_bytes(&b[..31]), None);
        assert!(p.is_valid());
        assert!(!TvmAiaParams {
            group_index_shift: 23,
            ..p
        }
        .is_valid());
        assert!(!TvmAiaParams {
            guests_per_hart: 2,
            ..p
        }
        .is_valid());
        assert!(TvmAiaParams {
            guests_per_hart: 0,
            guest_index_bits: 0,
            ..p
        }
        .is_valid());
    }

    #[test]
    fn vcpu_files() {
        // 8 harts, no guest bits: one page per vCPU from 0x2800_0000.
        let p = TvmAiaParams {
            imsic_base_addr: 0x2800_0000,
            group_index_bits: 0,
            group_index_shift: 24,
            hart_index_bits: 3,
            guest_index_bits: 0,
            guests_per_hart: 0,
            _padding: 0,
        };
        assert!(p.is_valid());
        for k in 0..8 {
            assert!(p.is_vcpu_file(0x2800_0000 + k * 0x1000), "{k}");
        }
        for bad in [0x2800_8000, 0x2800_0004, 0x2700_0000, 0x2900_0000, 0] {
            assert!(!p.is_vcpu_file(bad), "{bad:#x}");
        }
        // One guest bit: vCPU files every 2 pages, the odd pages are guests.
        let g = TvmAiaParams {
            guest_index_bits: 1,
            ..p
        };
        assert!(g.is_vcpu_file(0x2800_2000) && !g.is_vcpu_file(0x2800_1000));
        // Two groups at bit 24.
        let grp = TvmAiaParams {
            group_index_bits: 1,
            ..p
        };
        assert!(grp.is_vcpu_file(0x2900_0000) && !grp.is_vcpu_file(0x2a00_0000));
        // A base with index bits set matches nothing.
        let off = TvmAiaParams {
            imsic_base_addr: 0x2800_1000,
            ..p
        };
        assert!(!off.is_vcpu_file(0x2800_1000));
    }
}
