//! The CoVE (RISC-V AP-TEE "Confidential VM Extension") SBI ABI, shared by
//! Salus (the TSM), tellus (the untrusted host) and guestvm (the TVM).
//!
//! Normative source: `src/sbi_cove.adoc` of `riscv-non-isa/riscv-ap-tee`.
//! Every value the spec leaves open (error numbers, implementation version
//! encoding, measurement byte order, ...) is chosen in exactly one place,
//! `docs/cove-abi-choices.md`, and pinned by the unit tests of this crate.
//!
//! Layout of the crate:
//! - [`fid`]: the a6 encoding (`FID`, reserved bits, `SDID`) and FID
//!   namespaces;
//! - [`error`]: [`CoveError`], the standard SBI errors plus the four
//!   CoVE-only ones;
//! - [`covh`], [`covi`], [`covg`], [`supd`]: function ids and the
//!   exact-layout structures of each extension;
//! - [`nacl`]: the NACL shared-memory layout used by `run_tvm_vcpu`;
//! - [`measurement`]: the measurement rules (the hashing itself lives in the
//!   `measurement` crate).
#![no_std]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod bytes;
pub mod covg;
pub mod covh;
pub mod covi;
pub mod error;
pub mod fid;
pub mod measurement;
pub mod nacl;
pub mod supd;

pub use covg::CovgFunction;
pub use covh::{
    CovhFunction, PageType, TsmCapabilities, TsmInfo, TsmState, TvmCreateParams, TvmState,
};
pub use covi::{CoviFunction, TvmAiaParams};
pub use error::{CoveError, CoveResult};
pub use fid::{CoveFid, FidError};
pub use nacl::NaclFunction;
pub use sbi_abi::SbiError;

/// Builds an SBI extension id from its four-character ASCII name.
pub const fn eid_from_name(name: &[u8; 4]) -> u64 {
    u32::from_be_bytes(*name) as u64
}

/// COVE Host extension, "COVH".
pub const EID_COVH: u64 = 0x434F_5648;
/// COVE Interrupt extension, "COVI".
pub const EID_COVI: u64 = 0x434F_5649;
/// COVE Guest extension, "COVG".
pub const EID_COVG: u64 = 0x434F_5647;
/// Nested acceleration extension (SBI 2.0 chapter 15), "NACL".
pub const EID_NACL: u64 = 0x4E41_434C;
/// Supervisor domains enumeration extension, "SUPD".
pub const EID_SUPD: u64 = 0x5355_5044;

/// Size of the 4 KiB base page every CoVE "page" argument refers to.
pub const PAGE_SIZE_4K: u64 = 4096;

/// Generates a `#[repr(u16)]` function-id enum with `from_fid`, `fid`,
/// `from_a6` and `ALL`.
macro_rules! fid_enum {
    (
        $(#[$meta:meta])*
        $name:ident {
            $( $(#[$vmeta:meta])* $var:ident = $val:literal, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[repr(u16)]
        pub enum $name {
            $( $(#[$vmeta])* $var = $val, )*
        }

        impl $name {
            /// Every function of the extension, in FID order.
            pub const ALL: &'static [$name] = &[$($name::$var,)*];

            /// Decodes a bare function id (`a6[15:0]` already extracted).
            /// Values above `0xffff` or not assigned by the spec give `None`.
            pub const fn from_fid(fid: u64) -> Option<Self> {
                match fid {
                    $( $val => Some($name::$var), )*
                    _ => None,
                }
            }

            /// The function id as placed in `a6[15:0]`.
            pub const fn fid(self) -> u64 {
                self as u64
            }

            /// Decodes a full `a6` value addressed to the local supervisor
            /// domain (SDID 0): rejects reserved bits, a nonzero SDID and
            /// unknown function ids.
            pub const fn from_a6(a6: u64) -> Result<Self, $crate::fid::FidError> {
                match $crate::fid::CoveFid::decode_local(a6) {
                    Ok(fid) => match Self::from_fid(fid as u64) {
                        Some(f) => Ok(f),
                        None => Err($crate::fid::FidError::UnknownFunction(fid)),
                    },
                    Err(e) => Err(e),
                }
            }
        }
    };
}
pub(crate) use fid_enum;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eids_spell_their_names() {
        assert_eq!(eid_from_name(b"COVH"), EID_COVH);
        assert_eq!(eid_from_name(b"COVI"), EID_COVI);
        assert_eq!(eid_from_name(b"COVG"), EID_COVG);
        assert_eq!(eid_from_name(b"NACL"), EID_NACL);
        assert_eq!(eid_from_name(b"SUPD"), EID_SUPD);
        assert_eq!(EID_NACL, sbi_abi::spec::nacl::EID_NACL as u64);
    }
}
