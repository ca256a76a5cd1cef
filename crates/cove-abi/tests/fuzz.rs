//! Decoders never panic, whatever the input.

use cove_abi::covg::{AttestationCapabilities, CovgFunction};
use cove_abi::covh::{CovhFunction, TsmInfo, TvmCreateParams};
use cove_abi::covi::{CoviFunction, TvmAiaParams};
use cove_abi::error::CoveError;
use cove_abi::fid::CoveFid;
use cove_abi::nacl::{csr_index, NaclFunction};
use proptest::prelude::*;

proptest! {
    #[test]
    fn from_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let t = TsmInfo::from_bytes(&bytes);
        prop_assert_eq!(t.is_some(), bytes.len() >= TsmInfo::SIZE);
        if let Some(t) = t {
            prop_assert_eq!(&t.to_bytes()[..], &bytes[..TsmInfo::SIZE]);
        }
        if let Some(p) = TvmCreateParams::from_bytes(&bytes) {
            prop_assert_eq!(&p.to_bytes()[..], &bytes[..TvmCreateParams::SIZE]);
        }
        if let Some(p) = TvmAiaParams::from_bytes(&bytes) {
            let _ = p.is_valid();
            prop_assert_eq!(&p.to_bytes()[..], &bytes[..TvmAiaParams::SIZE]);
        }
        if let Some(c) = AttestationCapabilities::from_bytes(&bytes) {
            prop_assert_eq!(&c.to_bytes()[..], &bytes[..AttestationCapabilities::SIZE]);
        }
    }

    #[test]
    fn fid_decoding_never_panics(a6 in any::<u64>()) {
        let d = CoveFid::decode(a6);
        if let Ok(f) = d {
            prop_assert_eq!(f.encode(), Some(a6));
        }
        let _ = CovhFunction::from_a6(a6);
        let _ = CoviFunction::from_a6(a6);
        let _ = CovgFunction::from_a6(a6);
        let _ = NaclFunction::from_fid(a6);
        let _ = CoveError::from_code(a6 as i64);
        let _ = csr_index(a6 as u16);
    }
}
