//! CoVE error codes.
//!
//! The standard SBI codes are [`sbi_abi::SbiError`]. The CoVE chapter also
//! names `SBI_ERR_OUT_OF_PTPAGES`, `SBI_ERR_AUTH`, `SBI_ERR_OUT_OF_MEMORY` and
//! `SBI_ERR_BUSY` without giving numbers; the values below are this
//! project's choice (see `docs/cove-abi-choices.md`), deliberately far from
//! the standard range (-1..=-14 today, growing downwards with new SBI
//! releases) so a future SBI code can never alias them.

use sbi_abi::{SbiError, SbiRet};

/// `SBI_ERR_OUT_OF_PTPAGES`: not enough page-table pages donated.
pub const SBI_ERR_OUT_OF_PTPAGES: i64 = -1000;
/// `SBI_ERR_AUTH`: local attestation failed.
pub const SBI_ERR_AUTH: i64 = -1001;
/// `SBI_ERR_OUT_OF_MEMORY`: not enough confidential memory.
pub const SBI_ERR_OUT_OF_MEMORY: i64 = -1002;
/// `SBI_ERR_BUSY`: resource busy, the request may be retried.
pub const SBI_ERR_BUSY: i64 = -1003;

/// Lowest standard SBI error code this project knows (`DENIED_LOCKED`).
pub const STANDARD_ERROR_FLOOR: i64 = -14;
/// The CoVE-only codes live in `COVE_ERROR_LAST..=COVE_ERROR_FIRST`.
pub const COVE_ERROR_FIRST: i64 = -1000;
/// See [`COVE_ERROR_FIRST`]; -1000..=-1099 is reserved for CoVE codes.
pub const COVE_ERROR_LAST: i64 = -1099;

/// Any error a CoVE function can return.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CoveError {
    /// A standard SBI error.
    Sbi(SbiError),
    /// `SBI_ERR_OUT_OF_PTPAGES` (-1000).
    OutOfPtPages,
    /// `SBI_ERR_AUTH` (-1001).
    Auth,
    /// `SBI_ERR_OUT_OF_MEMORY` (-1002).
    OutOfMemory,
    /// `SBI_ERR_BUSY` (-1003).
    Busy,
}

impl CoveError {
    /// The four CoVE-only errors.
    pub const COVE_ONLY: [CoveError; 4] = [
        CoveError::OutOfPtPages,
        CoveError::Auth,
        CoveError::OutOfMemory,
        CoveError::Busy,
    ];

    /// The value placed in `sbiret.error`.
    pub const fn code(self) -> i64 {
        match self {
            CoveError::Sbi(e) => e.code(),
            CoveError::OutOfPtPages => SBI_ERR_OUT_OF_PTPAGES,
            CoveError::Auth => SBI_ERR_AUTH,
            CoveError::OutOfMemory => SBI_ERR_OUT_OF_MEMORY,
            CoveError::Busy => SBI_ERR_BUSY,
        }
    }

    /// Inverse of [`code`](Self::code); `None` for 0 and unknown codes.
    pub const fn from_code(code: i64) -> Option<CoveError> {
        match code {
            SBI_ERR_OUT_OF_PTPAGES => Some(CoveError::OutOfPtPages),
            SBI_ERR_AUTH => Some(CoveError::Auth),
            SBI_ERR_OUT_OF_MEMORY => Some(CoveError::OutOfMemory),
            SBI_ERR_BUSY => Some(CoveError::Busy),
            c => match SbiError::from_code(c) {
                Some(e) => Some(CoveError::Sbi(e)),
                None => None,
            },
        }
    }

    /// The standard error, if this is one.
    pub const fn as_sbi(self) -> Option<SbiError> {
        match self {
            CoveError::Sbi(e) => Some(e),
            _ => None,
        }
    }
}

impl From<SbiError> for CoveError {
    fn from(e: SbiError) -> Self {
        CoveError::Sbi(e)
    }
}

/// Result of a CoVE handler: `Ok(value)` becomes `{a0 = 0, a1 = value}`.
pub type CoveResult = Result<u64, CoveError>;

/// `(a0, a1)` for a CoVE result.
pub const fn to_sbiret(r: CoveResult) -> SbiRet {
    match r {
        Ok(value) => SbiRet::success(value),
        Err(e) => SbiRet {
            error: e.code(),
            value: 0,
        },
    }
}

/// Back to a typed result; unknown nonzero codes map to `Sbi(Failed)`.
pub const fn from_sbiret(ret: SbiRet) -> CoveResult {
    if ret.error == 0 {
        Ok(ret.value)
    } else {
        match CoveError::from_code(ret.error) {
            Some(e) => Err(e),
            None => Err(CoveError::Sbi(SbiError::Failed)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> impl Iterator<Item = CoveError> {
        (-14..=-1)
            .map(|c| CoveError::Sbi(SbiError::from_code(c).unwrap()))
            .chain(CoveError::COVE_ONLY)
    }

    #[test]
    fn chosen_numbers_are_pinned() {
        assert_eq!(CoveError::OutOfPtPages.code(), -1000);
        assert_eq!(CoveError::Auth.code(), -1001);
        assert_eq!(CoveError::OutOfMemory.code(), -1002);
        assert_eq!(CoveError::Busy.code(), -1003);
    }

    #[test]
    fn every_code_is_distinct_and_round_trips() {
        let codes: [i64; 18] = {
            let mut a = [0; 18];
            for (i, e) in all().enumerate() {
                a[i] = e.code();
            }
            a
        };
        for (i, a) in codes.iter().enumerate() {
            assert!(*a < 0);
            for b in &codes[i + 1..] {
                assert_ne!(a, b);
            }
        }
        for e in all() {
            assert_eq!(CoveError::from_code(e.code()), Some(e));
            assert_eq!(from_sbiret(to_sbiret(Err(e))), Err(e));
        }
        assert_eq!(CoveError::from_code(0), None);
        assert_eq!(CoveError::from_code(-15), None);
        assert_eq!(from_sbiret(to_sbiret(Ok(7))), Ok(7));
    }

    #[test]
    fn cove_codes_are_outside_the_standard_range() {
        for e in CoveError::COVE_ONLY {
            let c = e.code();
            assert!((COVE_ERROR_LAST..=COVE_ERROR_FIRST).contains(&c));
            assert!(c < STANDARD_ERROR_FLOOR - 100);
            assert_eq!(SbiError::from_code(c), None);
            assert_eq!(e.as_sbi(), None);
        }
    }
}
