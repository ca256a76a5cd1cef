//! MSI page tables (AIA "IOMMU support for MSIs to virtual machines", as
//! referenced by the IOMMU spec section "MSI address translation").
//!
//! An MSI PTE is 16 bytes. Write-through (flat) mode, `M == 3`:
//!
//! ```text
//! word0: V[0] | M[2:1] = 3 | PPN[53:10] | C[63]          word1: 0
//! ```
//!
//! MRIF mode, `M == 1`:
//!
//! ```text
//! word0: V[0] | M[2:1] = 1 | MRIF address[55:9] at [53:7] | C[63]
//! word1: NID[9:0] at [9:0] | NPPN[53:10] | NID[10] at [60]
//! ```

use crate::ddt::MSI_ADDR_BITS;
use crate::{bit, get, mask, put, PPN_BITS};
use hyp_addr::{GuestPhysAddr, HostPhysAddr};

/// Size of one MSI PTE in bytes.
pub const MSI_PTE_SIZE: u64 = 16;

/// A decoded MSI page-table entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MsiPte {
    /// `V == 0`.
    Invalid,
    /// Write-through: the MSI is written to the same offset of page `ppn`
    /// (a guest interrupt file of an IMSIC).
    Flat { ppn: u64 },
    /// Memory-resident interrupt file at `mrif` (512-byte aligned); the
    /// notice MSI writes `nid` (11 bits) to page `notice_ppn`.
    Mrif {
        mrif: HostPhysAddr,
        notice_ppn: u64,
        nid: u16,
    },
}

/// MSI PTE decoding failures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MsiPteError {
    /// `C == 1`: implementation-defined custom format.
    Custom,
    /// `M` is 0 or 2.
    BadMode(u8),
    /// Reserved bits set.
    Reserved,
}

const V: u64 = 1;
const C: u64 = 1 << 63;
const M_FLAT: u64 = 3;
const M_MRIF: u64 = 1;
const MRIF_ADDR_SHIFT: u32 = 7;
const MRIF_ADDR_BITS: u32 = 47;
const N10: u64 = 1 << 60;

impl MsiPte {
    /// A write-through entry targeting the interrupt-file page at `target`.
    pub const fn flat(target: HostPhysAddr) -> Self {
        MsiPte::Flat { ppn: target.pfn() }
    }

    pub const fn encode(self) -> [u64; 2] {
        match self {
            MsiPte::Invalid => [0, 0],
            MsiPte::Flat { ppn } => [V | put(M_FLAT, 1, 2) | put(ppn, 10, PPN_BITS), 0],
            MsiPte::Mrif {
                mrif,
                notice_ppn,
                nid,
            } => [
                V | put(M_MRIF, 1, 2) | put(mrif.bits() >> 9, MRIF_ADDR_SHIFT, MRIF_ADDR_BITS),
                put(nid as u64, 0, 10)
                    | put(notice_ppn, 10, PPN_BITS)
                    | (((nid as u64) >> 10) & 1) << 60,
            ],
        }
    }

    pub fn decode(w: [u64; 2]) -> Result<Self, MsiPteError> {
        if !bit(w[0], 0) {
            return Ok(MsiPte::Invalid);
        }
        if w[0] & C != 0 {
            return Err(MsiPteError::Custom);
        }
        match get(w[0], 1, 2) {
            M_FLAT => {
                let known = V | (3 << 1) | (mask(PPN_BITS) << 10);
                if w[0] & !known != 0 || w[1] != 0 {
                    return Err(MsiPteError::Reserved);
                }
                Ok(MsiPte::Flat {
                    ppn: get(w[0], 10, PPN_BITS),
                })
            }
            M_MRIF => {
                let known0 = V | (3 << 1) | (mask(MRIF_ADDR_BITS) << MRIF_ADDR_SHIFT);
                let known1 = mask(10) | (mask(PPN_BITS) << 10) | N10;
                if w[0] & !known0 != 0 || w[1] & !known1 != 0 {
                    return Err(MsiPteError::Reserved);
                }
                Ok(MsiPte::Mrif {
                    mrif: HostPhysAddr::new(get(w[0], MRIF_ADDR_SHIFT, MRIF_ADDR_BITS) << 9),
                    notice_ppn: get(w[1], 10, PPN_BITS),
                    nid: (get(w[1], 0, 10) | (((w[1] & N10) >> 60) << 10)) as u16,
                })
            }
            m => Err(MsiPteError::BadMode(m as u8)),
        }
    }
}

/// The spec's `extract(x, y)`: keeps the bits of `x` where `y` has ones and
/// packs them, in order, at the least-significant end.
pub const fn extract(x: u64, y: u64) -> u64 {
    let mut out = 0;
    let mut pos = 0;
    let mut i = 0;
    while i < 64 {
        if y & (1 << i) != 0 {
            out |= ((x >> i) & 1) << pos;
            pos += 1;
        }
        i += 1;
    }
    out
}

/// `msi_addr_mask` / `msi_addr_pattern` of a device context.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Hash)]
pub struct MsiAddrMatch {
    /// Page-number mask (52 bits).
    pub mask: u64,
    /// Page-number pattern (52 bits).
    pub pattern: u64,
}

impl MsiAddrMatch {
    /// True if `gpa` is a virtual interrupt file page:
    /// `(A >> 12) & ~mask == pattern & ~mask`.
    pub const fn matches(self, gpa: GuestPhysAddr) -> bool {
        let m = !self.mask & mask(MSI_ADDR_BITS);
        (gpa.bits() >> 12) & m == self.pattern & m && (gpa.bits() >> 12) >> MSI_ADDR_BITS == 0
    }
    /// Interrupt file number `I = extract(A >> 12, mask)`, the MSI PTE index.
    pub const fn file_index(self, gpa: GuestPhysAddr) -> u64 {
        extract(gpa.bits() >> 12, self.mask & mask(MSI_ADDR_BITS))
    }
    /// `Some(index)` if `gpa` matches, else `None`.
    pub const fn lookup(self, gpa: GuestPhysAddr) -> Option<u64> {
        if self.matches(gpa) {
            Some(self.file_index(gpa))
        } else {
            None
        }
    }
    /// Number of PTEs the MSI page table needs (`2^popcount(mask)`).
    pub const fn table_entries(self) -> u64 {
        1 << (self.mask & mask(MSI_ADDR_BITS)).count_ones()
    }
    /// Byte size of the MSI page table; the table must be aligned to
    /// `max(4 KiB, table_bytes())` because the IOMMU ORs the index in.
    pub const fn table_bytes(self) -> u64 {
        self.table_entries() * MSI_PTE_SIZE
    }
    /// Address of the PTE for interrupt file `index` in table `table`.
    pub const fn pte_addr(table: HostPhysAddr, index: u64) -> HostPhysAddr {
        HostPhysAddr::new(table.bits() | (index * MSI_PTE_SIZE))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn extract_spec_example() {
        // x = a b c d e f g h, y = 1 0 1 0 0 1 1 0  ->  0 0 0 0 a c f g
        let x = 0b1011_0110u64; // a=1 b=0 c=1 d=1 e=0 f=1 g=1 h=0
        let y = 0b1010_0110u64;
        // a c f g = 1 1 1 1
        assert_eq!(extract(x, y), 0b1111);
        assert_eq!(extract(0b0100_0000, y), 0); // only b set
        assert_eq!(extract(0b1000_0000, y), 0b1000); // a is the top kept bit
        assert_eq!(extract(0b0000_0010, y), 0b0001); // g is the lowest kept bit
        assert_eq!(extract(u64::MAX, 0), 0);
        assert_eq!(extract(0x1234, u64::MAX), 0x1234);
    }

    #[test]
    fn match_and_index() {
        // Guest interrupt files at GPA 0x2800_0000 + hart * 0x1000, 8 harts.
        let m = MsiAddrMatch {
            mask: 0x7,
            pattern: 0x0002_8000,
        };
        assert!(m.matches(GuestPhysAddr::new(0x2800_0000)));
        assert_eq!(m.lookup(GuestPhysAddr::new(0x2800_5004)), Some(5));
        assert_eq!(m.lookup(GuestPhysAddr::new(0x2800_8000)), None);
        assert_eq!(m.table_entries(), 8);
        assert_eq!(m.table_bytes(), 128);
        assert_eq!(
            MsiAddrMatch::pte_addr(HostPhysAddr::new(0x9000_0000), 5),
            HostPhysAddr::new(0x9000_0050)
        );
        // Non-contiguous mask (guest and hart index bits separated).
        let m2 = MsiAddrMatch {
            mask: 0b1_0000_0011,
            pattern: 0,
        };
        assert_eq!(m2.file_index(GuestPhysAddr::new(0x10_2000)), 0b110);
    }

    #[test]
    fn pte_encodings() {
        let f = MsiPte::flat(HostPhysAddr::new(0x2800_3000));
        assert_eq!(f.encode(), [(0x28003 << 10) | 0b111, 0]);
        assert_eq!(MsiPte::decode(f.encode()), Ok(f));
        let r = MsiPte::Mrif {
            mrif: HostPhysAddr::new(0x8000_0200),
            notice_ppn: 0x28000,
            nid: 0x7ff,
        };
        let w = r.encode();
        assert_eq!(w[0], 1 | (1 << 1) | ((0x8000_0200 >> 9) << 7));
        assert_eq!(w[1], 0x3ff | (0x28000 << 10) | (1 << 60));
        assert_eq!(MsiPte::decode(w), Ok(r));
        assert_eq!(MsiPte::decode([0, 5]), Ok(MsiPte::Invalid));
        assert_eq!(MsiPte::decode([1, 0]), Err(MsiPteError::BadMode(0)));
        assert_eq!(
            MsiPte::decode([1 | 2 << 1, 0]),
            Err(MsiPteError::BadMode(2))
        );
        assert_eq!(MsiPte::decode([1 | 1 << 63, 0]), Err(MsiPteError::Custom));
        assert_eq!(
            MsiPte::decode([0b111 | 1 << 3, 0]),
            Err(MsiPteError::Reserved)
        );
        assert_eq!(MsiPte::decode([0b111, 1]), Err(MsiPteError::Reserved));
    }

    proptest! {
        #[test]
        fn extract_counts_bits(x in any::<u64>(), y in any::<u64>()) {
            prop_assert_eq!(extract(x, y).count_ones(), (x & y).count_ones());
            prop_assert!(extract(x, y) < (1u128 << y.count_ones()) as u64 || y.count_ones() == 64);
        }

        #[test]
        fn pte_roundtrip(ppn in 0u64..1 << 44, mrif in 0u64..1 << 47, nppn in 0u64..1 << 44, nid in 0u16..1 << 11) {
            let f = MsiPte::Flat { ppn };
            prop_assert_eq!(MsiPte::decode(f.encode()), Ok(f));
            let r = MsiPte::Mrif { mrif: HostPhysAddr::new(mrif << 9), notice_ppn: nppn, nid };
            prop_assert_eq!(MsiPte::decode(r.encode()), Ok(r));
        }
    }
}
