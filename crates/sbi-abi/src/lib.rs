//! The SBI ABI as Salus speaks it: extension/function ids (from the
//! `sbi-spec` crate), our implementation identity, and a typed error that
//! maps one-to-one onto the spec's error codes.
#![no_std]
#![forbid(unsafe_code)]

pub use sbi_spec as spec;
pub use sbi_spec::{base, dbcn, hsm, rfnc, spi, srst, time};

/// The extension ids as the `u64` an `a7` holds.
pub mod eid {
    use super::*;
    pub const EID_BASE: u64 = base::EID_BASE as u64;
    pub const EID_TIME: u64 = time::EID_TIME as u64;
    pub const EID_SPI: u64 = spi::EID_SPI as u64;
    pub const EID_RFNC: u64 = rfnc::EID_RFNC as u64;
    pub const EID_HSM: u64 = hsm::EID_HSM as u64;
    pub const EID_SRST: u64 = srst::EID_SRST as u64;
    pub const EID_DBCN: u64 = dbcn::EID_DBCN as u64;
}

/// SBI spec version Salus implements for its guests: 2.0.
pub const SPEC_VERSION: u64 = 2 << 24;
/// Implementation id reported by `sbi_get_impl_id`. Not in the SBI registry;
/// picked from the experimental range and kept here only.
pub const SALUS_IMPL_ID: u64 = 0x5341_4c55; // "SALU"
/// Implementation version: major << 16 | minor.
pub const SALUS_IMPL_VERSION: u64 = 0x0001_0000;

/// Legacy (v0.1) extension ids we still answer.
pub const LEGACY_CONSOLE_PUTCHAR: u64 = 0x01;
pub const LEGACY_CONSOLE_GETCHAR: u64 = 0x02;

/// The machine ids BASE reports (`mvendorid`, `marchid`, `mimpid`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MachineIds {
    pub mvendorid: u64,
    pub marchid: u64,
    pub mimpid: u64,
}

/// A BASE call of Salus's (to the host or to a TVM): `probe` says which
/// extensions that caller has.
pub fn base_answer(fid: u64, arg: u64, ids: MachineIds, probe: impl Fn(u64) -> bool) -> SbiResult {
    match fid as usize {
        base::GET_SBI_SPEC_VERSION => Ok(SPEC_VERSION),
        base::GET_SBI_IMPL_ID => Ok(SALUS_IMPL_ID),
        base::GET_SBI_IMPL_VERSION => Ok(SALUS_IMPL_VERSION),
        base::PROBE_EXTENSION => Ok(probe(arg) as u64),
        base::GET_MVENDORID => Ok(ids.mvendorid),
        base::GET_MARCHID => Ok(ids.marchid),
        base::GET_MIMPID => Ok(ids.mimpid),
        _ => Err(SbiError::NotSupported),
    }
}

/// Checks an RFENCE call whose callers are not hypervisors: fence.i and
/// sfence.vma[_asid] (their address range must not wrap; `size` all-ones
/// means everything); the hfence calls are `NotSupported`.
pub fn check_rfence(fid: u64, start: u64, size: u64) -> Result<(), SbiError> {
    match fid as usize {
        rfnc::REMOTE_FENCE_I => Ok(()),
        rfnc::REMOTE_SFENCE_VMA | rfnc::REMOTE_SFENCE_VMA_ASID => {
            if size != u64::MAX && start.checked_add(size).is_none() {
                Err(SbiError::InvalidAddress)
            } else {
                Ok(())
            }
        }
        _ => Err(SbiError::NotSupported),
    }
}

/// SBI error codes (SBI 2.0 table 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(i64)]
pub enum SbiError {
    Failed = -1,
    NotSupported = -2,
    InvalidParam = -3,
    Denied = -4,
    InvalidAddress = -5,
    AlreadyAvailable = -6,
    AlreadyStarted = -7,
    AlreadyStopped = -8,
    NoShmem = -9,
    InvalidState = -10,
    BadRange = -11,
    Timeout = -12,
    Io = -13,
    DeniedLocked = -14,
}

impl SbiError {
    pub const fn code(self) -> i64 {
        self as i64
    }

    pub const fn from_code(code: i64) -> Option<SbiError> {
        use SbiError::*;
        Some(match code {
            -1 => Failed,
            -2 => NotSupported,
            -3 => InvalidParam,
            -4 => Denied,
            -5 => InvalidAddress,
            -6 => AlreadyAvailable,
            -7 => AlreadyStarted,
            -8 => AlreadyStopped,
            -9 => NoShmem,
            -10 => InvalidState,
            -11 => BadRange,
            -12 => Timeout,
            -13 => Io,
            -14 => DeniedLocked,
            _ => return None,
        })
    }
}

/// Result of an SBI handler: `Ok(value)` becomes `{a0 = 0, a1 = value}`.
pub type SbiResult = Result<u64, SbiError>;

/// The `(a0, a1)` register pair of an SBI return.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SbiRet {
    pub error: i64,
    pub value: u64,
}

impl SbiRet {
    pub const fn success(value: u64) -> Self {
        SbiRet { error: 0, value }
    }
    pub const fn from_result(r: SbiResult) -> Self {
        match r {
            Ok(value) => SbiRet { error: 0, value },
            Err(e) => SbiRet {
                error: e.code(),
                value: 0,
            },
        }
    }
    /// Back to a typed result; unknown negative codes map to `Failed`.
    pub fn into_result(self) -> SbiResult {
        if self.error == 0 {
            Ok(self.value)
        } else {
            Err(SbiError::from_code(self.error).unwrap_or(SbiError::Failed))
        }
    }
}

/// Hart mask decoding shared by IPI, RFENCE (and later COVH fences).
///
/// `base == u64::MAX` means "all harts"; otherwise bit `i` of `mask`
/// selects hart `base + i`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HartSelection {
    All,
    Mask { mask: u64, base: u64 },
}

impl HartSelection {
    pub const fn decode(mask: u64, base: u64) -> Self {
        if base == u64::MAX {
            HartSelection::All
        } else {
            HartSelection::Mask { mask, base }
        }
    }

    /// Visits every selected hart id; fails with `InvalidParam` (per the SBI
    /// spec) if any selected id is not `< nharts`, before visiting any.
    pub fn for_each(self, nharts: u64, mut f: impl FnMut(u64)) -> Result<(), SbiError> {
        match self {
            HartSelection::All => {
                (0..nharts).for_each(&mut f);
                Ok(())
            }
            HartSelection::Mask { mask, base } => {
                if mask == 0 {
                    return Ok(());
                }
                let highest = 63 - mask.leading_zeros() as u64;
                match base.checked_add(highest) {
                    Some(top) if top < nharts => {}
                    _ => return Err(SbiError::InvalidParam),
                }
                let mut m = mask;
                while m != 0 {
                    let bit = m.trailing_zeros() as u64;
                    f(base + bit);
                    m &= m - 1;
                }
                Ok(())
            }
        }
    }
}

// The constants we rely on, pinned against the spec so a typo fails the build.
const _: () = {
    assert!(spec::base::EID_BASE == 0x10);
    assert!(spec::time::EID_TIME == 0x5449_4D45);
    assert!(spec::spi::EID_SPI == 0x0073_5049);
    assert!(spec::rfnc::EID_RFNC == 0x5246_4E43);
    assert!(spec::hsm::EID_HSM == 0x0048_534D);
    assert!(spec::srst::EID_SRST == 0x5352_5354);
    assert!(spec::dbcn::EID_DBCN == 0x4442_434E);
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfence_checks() {
        assert_eq!(check_rfence(0, 0, 0), Ok(()));
        assert_eq!(check_rfence(1, u64::MAX, u64::MAX), Ok(()));
        assert_eq!(check_rfence(2, u64::MAX, 2), Err(SbiError::InvalidAddress));
        for hfence in 3..=6 {
            assert_eq!(check_rfence(hfence, 0, 0), Err(SbiError::NotSupported));
        }
    }

    #[test]
    fn base_answers() {
        let ids = MachineIds {
            mvendorid: 1,
            marchid: 2,
            mimpid: 3,
        };
        let probe = |e: u64| e == 0x10;
        assert_eq!(base_answer(0, 0, ids, probe), Ok(SPEC_VERSION));
        assert_eq!(base_answer(3, 0x10, ids, probe), Ok(1));
        assert_eq!(base_answer(3, 0x11, ids, probe), Ok(0));
        assert_eq!(base_answer(4, 0, ids, probe), Ok(1));
        assert_eq!(base_answer(6, 0, ids, probe), Ok(3));
        assert_eq!(base_answer(7, 0, ids, probe), Err(SbiError::NotSupported));
    }

    #[test]
    fn error_codes_round_trip() {
        for code in -14..=-1 {
            let e = SbiError::from_code(code).unwrap();
            assert_eq!(e.code(), code);
        }
        assert_eq!(SbiError::from_code(0), None);
        assert_eq!(SbiError::from_code(-15), None);
        assert_eq!(SbiError::NotSupported.code(), -2);
    }

    #[test]
    fn sbiret_mapping() {
        assert_eq!(SbiRet::from_result(Ok(5)), SbiRet { error: 0, value: 5 });
        assert_eq!(
            SbiRet::from_result(Err(SbiError::InvalidParam)),
            SbiRet {
                error: -3,
                value: 0
            }
        );
        assert_eq!(
            SbiRet {
                error: -99,
                value: 0
            }
            .into_result(),
            Err(SbiError::Failed)
        );
    }

    fn collect(sel: HartSelection, n: u64) -> Result<std::vec::Vec<u64>, SbiError> {
        let mut v = std::vec::Vec::new();
        sel.for_each(n, |h| v.push(h)).map(|_| v)
    }

    extern crate std;

    #[test]
    fn hart_masks() {
        assert_eq!(
            collect(HartSelection::decode(0, u64::MAX), 3),
            Ok(std::vec![0, 1, 2])
        );
        assert_eq!(
            collect(HartSelection::decode(0b101, 0), 3),
            Ok(std::vec![0, 2])
        );
        assert_eq!(collect(HartSelection::decode(0b1, 2), 3), Ok(std::vec![2]));
        assert_eq!(
            collect(HartSelection::decode(0b1, 3), 3),
            Err(SbiError::InvalidParam)
        );
        assert_eq!(
            collect(HartSelection::decode(0b1000, 0), 3),
            Err(SbiError::InvalidParam)
        );
        assert_eq!(
            collect(HartSelection::decode(1 << 63, u64::MAX - 1), 4),
            Err(SbiError::InvalidParam)
        );
        assert_eq!(collect(HartSelection::decode(0, 77), 3), Ok(std::vec![]));
    }
}
