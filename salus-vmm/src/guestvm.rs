//! The host half of guestvm's private protocol (`guestvm/src/protocol.rs`,
//! shared with tellus): its MMIO page and the `EID_GVM` checks, served
//! exactly as tellus serves them.
#![forbid(unsafe_code)]

use crate::memory::Memory;
use crate::protocol as proto;
use crate::tsm::{HostPage, Page, PAGE};

pub const OK: i64 = 0;
pub const ERR_FAILED: i64 = -1;
pub const ERR_NOT_SUPPORTED: i64 = -2;

/// The MMIO page guestvm declares and what it saw stored there.
#[derive(Default)]
pub struct Device {
    pub mmio_good: u64,
    pub mmio_bad: u64,
}

impl Device {
    /// The device's offset for `gpa`, if it is on guestvm's MMIO page.
    pub fn offset(gpa: u64) -> Option<u64> {
        (proto::MMIO_GPA..proto::MMIO_GPA + proto::MMIO_LEN)
            .contains(&gpa)
            .then(|| gpa - proto::MMIO_GPA)
    }

    /// The raw value behind a load at `off` (the caller truncates and
    /// extends it as the instruction requires).
    pub fn load(&self, off: u64) -> u64 {
        proto::mmio_load_value(off)
    }

    /// A store of `width` bytes of `v` at `off`; `Err` describes a store
    /// that is not what guestvm should have stored.
    pub fn store(&mut self, off: u64, width: u64, v: u64) -> Result<(), String> {
        let want = proto::truncate(proto::mmio_store_value(off), width);
        if proto::truncate(v, width) == want {
            self.mmio_good += 1;
            Ok(())
        } else {
            self.mmio_bad += 1;
            Err(format!(
                "MMIO store at +{off:#x} width {width}: {v:#x}, want {want:#x}"
            ))
        }
    }

    /// An `EID_GVM` call: the (error, value) to hand back.
    pub fn ecall<P: HostPage>(&self, fid: u64, a: &[u64; 8], mem: &Memory<P>) -> (i64, u64) {
        let seed = a[0];
        match fid {
            proto::FID_NOP => (OK, 0),
            proto::FID_SHARED_CHECK => {
                let Some(h) = mem.shared_page(proto::SHARED_GPA) else {
                    return (ERR_FAILED, 0);
                };
                let mut bad = 0;
                for i in 0..proto::HALF_WORDS {
                    if h.read_u64(8 * i as usize) != proto::pattern(seed, i) {
                        bad += 1;
                    }
                    h.write_u64(
                        8 * (proto::HALF_WORDS + i) as usize,
                        proto::pattern(!seed, i),
                    );
                }
                (OK, bad)
            }
            proto::FID_UNSHARED_CHECK => {
                let Some(h) = mem.retired_page(proto::SHARED_GPA) else {
                    return (ERR_FAILED, 0);
                };
                let seen = (0..proto::HALF_WORDS)
                    .filter(|&i| h.read_u64(8 * i as usize) == proto::pattern(seed, i))
                    .count();
                (OK, seen as u64)
            }
            proto::FID_MMIO_STORES => (
                if self.mmio_bad == 0 { OK } else { ERR_FAILED },
                self.mmio_good,
            ),
            _ => (ERR_NOT_SUPPORTED, 0),
        }
    }
}

/// guestvm's measured 2 MiB page: u64 word `i` is
/// `pattern(MEASURED_2M_SEED, i)`.
pub fn measured_2m_pages() -> Vec<Page> {
    let words = PAGE / 8;
    (0..proto::SIZE_2M as usize / PAGE)
        .map(|p| {
            let mut page = Page::ZERO;
            for w in 0..words {
                let v = proto::pattern(proto::MEASURED_2M_SEED, (p * words + w) as u64);
                page.0[8 * w..8 * w + 8].copy_from_slice(&v.to_le_bytes());
            }
            page
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::tests::VecPage;
    use crate::memory::Range;

    #[test]
    fn mmio_values() {
        let mut d = Device::default();
        assert_eq!(Device::offset(proto::MMIO_GPA + 8), Some(8));
        assert_eq!(Device::offset(proto::MMIO_GPA + proto::MMIO_LEN), None);
        assert_eq!(d.load(0x100), proto::mmio_load_value(0x100));
        assert!(d.store(0, 8, proto::mmio_store_value(0)).is_ok());
        // Only the low `width` bytes count.
        assert!(d.store(8, 1, proto::mmio_store_value(8) | 0xff00).is_ok());
        assert!(d.store(16, 2, 0).is_err());
        assert_eq!((d.mmio_good, d.mmio_bad), (2, 1));
        let mem = Memory::<VecPage>::default();
        assert_eq!(
            d.ecall(proto::FID_MMIO_STORES, &[0; 8], &mem),
            (ERR_FAILED, 2)
        );
    }

    #[test]
    fn shared_checks() {
        let mut mem = Memory::<VecPage>::default();
        mem.add_region(Range::new(proto::REGION_GPA, proto::REGION_LEN));
        let d = Device::default();
        let seed = 0x5eed_0001;
        let mut a = [0; 8];
        a[0] = seed;
        assert_eq!(d.ecall(proto::FID_SHARED_CHECK, &a, &mem), (ERR_FAILED, 0));
        mem.share(Range::new(proto::SHARED_GPA, proto::SHARED_LEN))
            .unwrap();
        let page = VecPage::new(0x7000_0000);
        for i in 0..proto::HALF_WORDS {
            page.write_u64(8 * i as usize, proto::pattern(seed, i));
        }
        page.write_u64(8, 0); // one wrong word
        mem.add_shared(proto::SHARED_GPA, page);
        assert_eq!(d.ecall(proto::FID_SHARED_CHECK, &a, &mem), (OK, 1));
        let h = mem.shared_page(proto::SHARED_GPA).unwrap();
        let i = 5;
        assert_eq!(
            h.read_u64(8 * (proto::HALF_WORDS + i) as usize),
            proto::pattern(!seed, i)
        );
        // After unshare the host checks its old page.
        assert_eq!(
            d.ecall(proto::FID_UNSHARED_CHECK, &a, &mem),
            (ERR_FAILED, 0)
        );
        mem.unshare(Range::new(proto::SHARED_GPA, proto::SHARED_LEN));
        assert_eq!(
            d.ecall(proto::FID_UNSHARED_CHECK, &a, &mem),
            (OK, proto::HALF_WORDS - 1)
        );
        a[0] = 0x5eed_0002;
        assert_eq!(d.ecall(proto::FID_UNSHARED_CHECK, &a, &mem), (OK, 0));
        assert_eq!(d.ecall(proto::FID_NOP, &a, &mem), (OK, 0));
        assert_eq!(d.ecall(99, &a, &mem), (ERR_NOT_SUPPORTED, 0));
    }

    #[test]
    fn the_2m_pattern() {
        let p = measured_2m_pages();
        assert_eq!(p.len(), 512);
        let word = |i: usize| {
            let (pg, off) = (i * 8 / PAGE, i * 8 % PAGE);
            u64::from_le_bytes(p[pg].0[off..off + 8].try_into().unwrap())
        };
        for i in [0, 1, 511, 512, 262_143] {
            assert_eq!(word(i), proto::pattern(proto::MEASURED_2M_SEED, i as u64));
        }
    }
}
