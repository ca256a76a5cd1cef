//! Pure encode/decode of RISC-V Sv39/Sv48 page-table entries.
//!
//! The layout is the one of the privileged spec ("Sv39/Sv48 PTE format");
//! G-stage tables (Sv39x4/Sv48x4) and the IOMMU's second-stage tables use the
//! same 8-byte format, so nothing here is G-stage specific except
//! [`G_STAGE_LEAF_FLAGS`].
//!
//! ```text
//!  63 | 62-61 | 60-54    | 53-10 | 9-8 | 7 | 6 | 5 | 4 | 3 | 2 | 1 | 0
//!  N  | PBMT  | reserved | PPN   | RSW | D | A | G | U | X | W | R | V
//! ```

use hyp_addr::HostPhysAddr;

/// Valid.
pub const PTE_V: u64 = 1 << 0;
/// Readable.
pub const PTE_R: u64 = 1 << 1;
/// Writable (only meaningful together with `PTE_R`).
pub const PTE_W: u64 = 1 << 2;
/// Executable.
pub const PTE_X: u64 = 1 << 3;
/// User. Every G-stage leaf must have it set (G-stage accesses are U-mode).
pub const PTE_U: u64 = 1 << 4;
/// Global (must be 0 in G-stage tables).
pub const PTE_G: u64 = 1 << 5;
/// Accessed.
pub const PTE_A: u64 = 1 << 6;
/// Dirty.
pub const PTE_D: u64 = 1 << 7;
/// Reserved for software.
pub const PTE_RSW_MASK: u64 = 0b11 << 8;
/// R | W | X: a valid entry with none of these points to the next table.
pub const PTE_RWX_MASK: u64 = PTE_R | PTE_W | PTE_X;
/// The ten low flag bits (V..RSW).
pub const PTE_FLAGS_MASK: u64 = 0x3ff;
/// Position of the PPN field.
pub const PTE_PPN_SHIFT: u32 = 10;
/// Width of the PPN field (56-bit physical addresses).
pub const PTE_PPN_BITS: u32 = 44;
/// The PPN field in place.
pub const PTE_PPN_MASK: u64 = ((1 << PTE_PPN_BITS) - 1) << PTE_PPN_SHIFT;
/// Bits 60:54, reserved (must be zero).
pub const PTE_RESERVED_MASK: u64 = 0x7f << 54;
/// Svpbmt memory type field (bits 62:61).
pub const PTE_PBMT_MASK: u64 = 0b11 << 61;
/// Svnapot NAPOT bit.
pub const PTE_N: u64 = 1 << 63;

/// Number of bits of a physical address a PTE can express.
pub const PHYS_ADDR_BITS: u32 = PTE_PPN_BITS + 12;

/// Flags every leaf written by the G-stage code carries besides R/W/X:
/// valid, user (required for G-stage), accessed and dirty (hardware A/D
/// updating is not assumed).
pub const G_STAGE_LEAF_FLAGS: u64 = PTE_V | PTE_U | PTE_A | PTE_D;

/// Access permissions of a leaf.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Perms {
    pub read: bool,
    pub write: bool,
    pub exec: bool,
}

impl Perms {
    pub const R: Perms = Perms {
        read: true,
        write: false,
        exec: false,
    };
    pub const RW: Perms = Perms {
        read: true,
        write: true,
        exec: false,
    };
    pub const RX: Perms = Perms {
        read: true,
        write: false,
        exec: true,
    };
    pub const RWX: Perms = Perms {
        read: true,
        write: true,
        exec: true,
    };

    /// True if a leaf may carry these permissions: at least one of R/W/X
    /// (otherwise the entry would be a table pointer) and no W without R
    /// (reserved encoding).
    pub const fn is_valid_leaf(self) -> bool {
        self.read || (self.exec && !self.write)
    }

    /// The R/W/X bits of a PTE.
    pub const fn to_pte_bits(self) -> u64 {
        (if self.read { PTE_R } else { 0 })
            | (if self.write { PTE_W } else { 0 })
            | (if self.exec { PTE_X } else { 0 })
    }

    /// Decodes the R/W/X bits of a PTE (other bits ignored).
    pub const fn from_pte_bits(bits: u64) -> Perms {
        Perms {
            read: bits & PTE_R != 0,
            write: bits & PTE_W != 0,
            exec: bits & PTE_X != 0,
        }
    }
}

/// One 8-byte page-table entry.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(transparent)]
pub struct Pte(u64);

impl Pte {
    /// The all-zero (invalid) entry.
    pub const INVALID: Pte = Pte(0);

    pub const fn from_bits(bits: u64) -> Pte {
        Pte(bits)
    }

    pub const fn bits(self) -> u64 {
        self.0
    }

    /// A leaf mapping the page at `hpa` (its low 12 bits are dropped) with
    /// `flags` (any non-PPN bits; `PTE_V` is added).
    pub const fn leaf(hpa: HostPhysAddr, flags: u64) -> Pte {
        Pte(((hpa.pfn() << PTE_PPN_SHIFT) & PTE_PPN_MASK) | (flags & !PTE_PPN_MASK) | PTE_V)
    }

    /// A non-leaf entry pointing to the table at `table` (only `V` set).
    pub const fn table(table: HostPhysAddr) -> Pte {
        Pte(((table.pfn() << PTE_PPN_SHIFT) & PTE_PPN_MASK) | PTE_V)
    }

    pub const fn is_valid(self) -> bool {
        self.0 & PTE_V != 0
    }

    /// Valid with at least one of R/W/X.
    pub const fn is_leaf(self) -> bool {
        self.is_valid() && self.0 & PTE_RWX_MASK != 0
    }

    /// Valid with none of R/W/X: points to the next-level table.
    pub const fn is_table(self) -> bool {
        self.is_valid() && self.0 & PTE_RWX_MASK == 0
    }

    /// The physical page number field.
    pub const fn ppn(self) -> u64 {
        (self.0 & PTE_PPN_MASK) >> PTE_PPN_SHIFT
    }

    /// The physical address the PPN designates (page or next table).
    pub const fn addr(self) -> HostPhysAddr {
        HostPhysAddr::from_pfn(self.ppn())
    }

    /// Everything except the PPN (flags, RSW, PBMT, N, reserved).
    pub const fn flags(self) -> u64 {
        self.0 & !PTE_PPN_MASK
    }

    /// The same entry with another PPN.
    pub const fn with_ppn(self, ppn: u64) -> Pte {
        Pte((self.0 & !PTE_PPN_MASK) | ((ppn << PTE_PPN_SHIFT) & PTE_PPN_MASK))
    }

    pub const fn perms(self) -> Perms {
        Perms::from_pte_bits(self.0)
    }
}

impl core::fmt::Debug for Pte {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "Pte({:#x}: ppn={:#x} flags={:#x})",
            self.0,
            self.ppn(),
            self.flags()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bit_positions() {
        assert_eq!(PTE_V, 0x1);
        assert_eq!(PTE_R, 0x2);
        assert_eq!(PTE_W, 0x4);
        assert_eq!(PTE_X, 0x8);
        assert_eq!(PTE_U, 0x10);
        assert_eq!(PTE_G, 0x20);
        assert_eq!(PTE_A, 0x40);
        assert_eq!(PTE_D, 0x80);
        assert_eq!(PTE_RSW_MASK, 0x300);
        assert_eq!(PTE_PPN_MASK, 0x003f_ffff_ffff_fc00);
        assert_eq!(PTE_RESERVED_MASK, 0x1fc0_0000_0000_0000);
        assert_eq!(PTE_PBMT_MASK, 0x6000_0000_0000_0000);
        assert_eq!(
            PTE_FLAGS_MASK | PTE_PPN_MASK | PTE_RESERVED_MASK | PTE_PBMT_MASK | PTE_N,
            u64::MAX
        );
        assert_eq!(G_STAGE_LEAF_FLAGS, 0xd1);
    }

    #[test]
    fn leaf_encoding() {
        let hpa = HostPhysAddr::new(0x8020_0000);
        let pte = Pte::leaf(hpa, G_STAGE_LEAF_FLAGS | Perms::RW.to_pte_bits());
        assert_eq!(pte.bits(), (0x80200 << 10) | 0xd7);
        assert!(pte.is_valid() && pte.is_leaf() && !pte.is_table());
        assert_eq!(pte.ppn(), 0x80200);
        assert_eq!(pte.addr(), hpa);
        assert_eq!(pte.perms(), Perms::RW);
        assert_eq!(pte.flags(), 0xd7);
        assert_eq!(pte.with_ppn(0x1234).addr(), HostPhysAddr::new(0x123_4000));
        assert_eq!(pte.with_ppn(0x1234).flags(), 0xd7);
        // Highest page of the 56-bit physical space.
        let top = HostPhysAddr::new((1 << 56) - 4096);
        assert_eq!(Pte::leaf(top, PTE_R).addr(), top);
        assert_eq!(Pte::leaf(top, PTE_R).bits() & PTE_RESERVED_MASK, 0);
    }

    #[test]
    fn table_encoding() {
        let pte = Pte::table(HostPhysAddr::new(0x8100_3000));
        assert_eq!(pte.bits(), (0x81003 << 10) | 1);
        assert!(pte.is_table() && !pte.is_leaf());
        assert!(!Pte::INVALID.is_valid());
        assert!(!Pte::from_bits(PTE_R | PTE_W).is_leaf()); // V clear
    }

    #[test]
    fn perms() {
        assert!(Perms::R.is_valid_leaf());
        assert!(Perms::RW.is_valid_leaf());
        assert!(Perms::RX.is_valid_leaf());
        assert!(Perms::RWX.is_valid_leaf());
        assert!(Perms {
            read: false,
            write: false,
            exec: true
        }
        .is_valid_leaf());
        assert!(!Perms::default().is_valid_leaf());
        assert!(!Perms {
            read: false,
            write: true,
            exec: false
        }
        .is_valid_leaf());
        for bits in 0..8u64 {
            assert_eq!(Perms::from_pte_bits(bits << 1).to_pte_bits(), bits << 1);
        }
    }
}
