//! The CoVE `a6` encoding.
//!
//! ```text
//!  63        32 31     26 25        16 15          0
//! [  zero      |  SDID   |  reserved  |     FID     ]
//! ```
//!
//! `a6[15:0]` is the function id, `a6[25:16]` is reserved (must be 0) and
//! `a6[31:26]` names the target supervisor domain (SDID). On RV64 we also
//! require `a6[63:32]` to be zero. FIDs 0..=1023 belong to CoVE itself,
//! 1024..=1087 to CoVE-IO, the rest is unallocated.

/// Mask of the function-id field, `a6[15:0]`.
pub const FID_MASK: u64 = 0xffff;
/// Shift of the supervisor-domain id field.
pub const SDID_SHIFT: u32 = 26;
/// Width mask of the SDID field (6 bits).
pub const SDID_MASK: u64 = 0x3f;
/// Bits that must be zero: `a6[25:16]` and `a6[63:32]`.
pub const RESERVED_MASK: u64 = !(FID_MASK | (SDID_MASK << SDID_SHIFT));
/// Largest SDID representable in `a6`.
pub const MAX_SDID: u8 = 63;

/// First FID of the CoVE namespace.
pub const COVE_FID_FIRST: u16 = 0;
/// Last FID of the CoVE namespace.
pub const COVE_FID_LAST: u16 = 0x3ff;
/// First FID of the CoVE-IO namespace.
pub const COVE_IO_FID_FIRST: u16 = 0x400;
/// Last FID of the CoVE-IO namespace.
pub const COVE_IO_FID_LAST: u16 = 0x43f;

/// Which specification owns a FID.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FidNamespace {
    /// 0..=1023: the main CoVE specification.
    Cove,
    /// 1024..=1087: CoVE-IO.
    CoveIo,
    /// 1088..=65535: not allocated.
    Unallocated,
}

impl FidNamespace {
    /// Namespace of a 16-bit function id.
    pub const fn of(fid: u16) -> Self {
        if fid <= COVE_FID_LAST {
            FidNamespace::Cove
        } else if fid <= COVE_IO_FID_LAST {
            FidNamespace::CoveIo
        } else {
            FidNamespace::Unallocated
        }
    }
}

/// Why an `a6` value was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FidError {
    /// `a6[25:16]` or `a6[63:32]` was not zero.
    ReservedBits,
    /// The call targets another supervisor domain (the SDID).
    ForeignDomain(u8),
    /// The FID is not a function of the extension.
    UnknownFunction(u16),
}

impl FidError {
    /// The SBI error to return for it: every case is `NOT_SUPPORTED`
    /// (the function, as addressed, does not exist here).
    pub const fn sbi_error(self) -> sbi_abi::SbiError {
        sbi_abi::SbiError::NotSupported
    }
}

/// A decoded `a6`: function id plus target supervisor domain.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CoveFid {
    /// `a6[15:0]`.
    pub fid: u16,
    /// `a6[31:26]` (0..=63).
    pub sdid: u8,
}

impl CoveFid {
    /// Decodes `a6`, returning the domain bits; fails only on reserved bits.
    pub const fn decode(a6: u64) -> Result<CoveFid, FidError> {
        if a6 & RESERVED_MASK != 0 {
            return Err(FidError::ReservedBits);
        }
        Ok(CoveFid {
            fid: (a6 & FID_MASK) as u16,
            sdid: ((a6 >> SDID_SHIFT) & SDID_MASK) as u8,
        })
    }

    /// Decodes `a6` for the local domain: reserved bits or a nonzero SDID
    /// are errors. Returns the 16-bit FID.
    pub const fn decode_local(a6: u64) -> Result<u16, FidError> {
        match Self::decode(a6) {
            Ok(CoveFid { fid, sdid: 0 }) => Ok(fid),
            Ok(CoveFid { sdid, .. }) => Err(FidError::ForeignDomain(sdid)),
            Err(e) => Err(e),
        }
    }

    /// Encodes into an `a6` value; `None` if `sdid > 63`.
    pub const fn encode(self) -> Option<u64> {
        if self.sdid > MAX_SDID {
            return None;
        }
        Some(self.fid as u64 | ((self.sdid as u64) << SDID_SHIFT))
    }

    /// Namespace of the function id.
    pub const fn namespace(self) -> FidNamespace {
        FidNamespace::of(self.fid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_plain_fid() {
        assert_eq!(CoveFid::decode(15), Ok(CoveFid { fid: 15, sdid: 0 }));
        assert_eq!(CoveFid::decode_local(15), Ok(15));
    }

    #[test]
    fn domain_bits_are_returned_or_rejected() {
        let a6 = (5u64 << 26) | 3;
        assert_eq!(CoveFid::decode(a6), Ok(CoveFid { fid: 3, sdid: 5 }));
        assert_eq!(CoveFid::decode_local(a6), Err(FidError::ForeignDomain(5)));
        let top = (63u64 << 26) | 0xffff;
        assert_eq!(
            CoveFid::decode(top),
            Ok(CoveFid {
                fid: 0xffff,
                sdid: 63
            })
        );
    }

    #[test]
    fn reserved_bits_are_rejected() {
        for bit in (16..26).chain(32..64) {
            assert_eq!(
                CoveFid::decode(1u64 << bit),
                Err(FidError::ReservedBits),
                "bit {bit}"
            );
        }
    }

    #[test]
    fn encode_round_trips() {
        for sdid in 0..=63u8 {
            for fid in [0u16, 1, 19, 0x3ff, 0x400, 0xffff] {
                let f = CoveFid { fid, sdid };
                assert_eq!(CoveFid::decode(f.encode().unwrap()), Ok(f));
            }
        }
        assert_eq!(CoveFid { fid: 0, sdid: 64 }.encode(), None);
    }

    #[test]
    fn namespaces() {
        assert_eq!(FidNamespace::of(0), FidNamespace::Cove);
        assert_eq!(FidNamespace::of(1023), FidNamespace::Cove);
        assert_eq!(FidNamespace::of(1024), FidNamespace::CoveIo);
        assert_eq!(FidNamespace::of(1087), FidNamespace::CoveIo);
        assert_eq!(FidNamespace::of(1088), FidNamespace::Unallocated);
    }
}
