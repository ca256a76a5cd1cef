//! Address and page-size types shared by every layer of Salus.
//!
//! A host-physical address (what the hart's bus sees) and a guest-physical
//! address (what a VM's stage-2 table translates) are distinct types so that
//! handing one where the other is expected fails to compile.
#![no_std]
#![forbid(unsafe_code)]

use core::fmt;

/// Page sizes of the RISC-V Sv39/Sv48 families (4 KiB base page and the
/// leaf sizes of levels 1, 2 and 3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PageSize {
    Size4K,
    Size2M,
    Size1G,
    Size512G,
}

impl PageSize {
    /// All sizes, smallest first.
    pub const ALL: [PageSize; 4] = [
        PageSize::Size4K,
        PageSize::Size2M,
        PageSize::Size1G,
        PageSize::Size512G,
    ];

    pub const fn bytes(self) -> u64 {
        match self {
            PageSize::Size4K => 1 << 12,
            PageSize::Size2M => 1 << 21,
            PageSize::Size1G => 1 << 30,
            PageSize::Size512G => 1 << 39,
        }
    }

    /// Number of 4 KiB pages in one page of this size.
    pub const fn base_pages(self) -> u64 {
        self.bytes() >> 12
    }

    /// Page-table level at which a leaf of this size lives (0 = 4 KiB).
    pub const fn level(self) -> usize {
        match self {
            PageSize::Size4K => 0,
            PageSize::Size2M => 1,
            PageSize::Size1G => 2,
            PageSize::Size512G => 3,
        }
    }

    pub const fn from_level(level: usize) -> Option<PageSize> {
        match level {
            0 => Some(PageSize::Size4K),
            1 => Some(PageSize::Size2M),
            2 => Some(PageSize::Size1G),
            3 => Some(PageSize::Size512G),
            _ => None,
        }
    }
}

/// Size of the base page in bytes.
pub const PAGE_SIZE: u64 = PageSize::Size4K.bytes();

macro_rules! address_type {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
        #[repr(transparent)]
        pub struct $name(u64);

        impl $name {
            pub const fn new(raw: u64) -> Self {
                Self(raw)
            }
            pub const fn bits(self) -> u64 {
                self.0
            }
            pub const fn is_aligned(self, size: PageSize) -> bool {
                self.0 & (size.bytes() - 1) == 0
            }
            pub const fn align_down(self, size: PageSize) -> Self {
                Self(self.0 & !(size.bytes() - 1))
            }
            /// Rounds up; `None` on overflow.
            pub const fn checked_align_up(self, size: PageSize) -> Option<Self> {
                match self.0.checked_add(size.bytes() - 1) {
                    Some(v) => Some(Self(v & !(size.bytes() - 1))),
                    None => None,
                }
            }
            pub const fn checked_add(self, bytes: u64) -> Option<Self> {
                match self.0.checked_add(bytes) {
                    Some(v) => Some(Self(v)),
                    None => None,
                }
            }
            /// Byte distance from `base` to `self`; `None` when below `base`.
            pub const fn checked_offset_from(self, base: Self) -> Option<u64> {
                self.0.checked_sub(base.0)
            }
            /// 4 KiB page frame number.
            pub const fn pfn(self) -> u64 {
                self.0 >> 12
            }
            pub const fn from_pfn(pfn: u64) -> Self {
                Self(pfn << 12)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!($prefix, ":{:#x}"), self.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{:#x}", self.0)
            }
        }
    };
}

address_type!(
    /// An address on the host's physical bus.
    HostPhysAddr,
    "hpa"
);
address_type!(
    /// An address in a VM's guest-physical space (input of the G-stage).
    GuestPhysAddr,
    "gpa"
);

impl GuestPhysAddr {
    /// For identity-mapped VMs (the host): the host-physical address equal
    /// to this guest-physical one. Kept explicit so every use is visible.
    pub const fn identity(self) -> HostPhysAddr {
        HostPhysAddr(self.0)
    }
}

impl HostPhysAddr {
    /// The guest-physical address equal to this host-physical one (identity).
    pub const fn identity(self) -> GuestPhysAddr {
        GuestPhysAddr(self.0)
    }
}

macro_rules! range_type {
    ($(#[$doc:meta])* $name:ident, $addr:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
        pub struct $name {
            pub start: $addr,
            pub len: u64,
        }

        impl $name {
            /// `None` if the end would overflow.
            pub const fn new(start: $addr, len: u64) -> Option<Self> {
                match start.0.checked_add(len) {
                    Some(_) => Some(Self { start, len }),
                    None => None,
                }
            }
            pub const fn end(&self) -> $addr {
                $addr(self.start.0 + self.len)
            }
            pub const fn is_empty(&self) -> bool {
                self.len == 0
            }
            pub const fn contains(&self, addr: $addr) -> bool {
                addr.0 >= self.start.0 && addr.0 < self.start.0 + self.len
            }
            /// True if `[addr, addr + len)` lies entirely inside `self`.
            pub const fn contains_range(&self, addr: $addr, len: u64) -> bool {
                match addr.0.checked_add(len) {
                    Some(end) => addr.0 >= self.start.0 && end <= self.start.0 + self.len,
                    None => false,
                }
            }
            /// True if `other` lies entirely inside `self`.
            pub const fn covers(&self, other: &$name) -> bool {
                self.contains_range(other.start, other.len)
            }
            pub const fn overlaps(&self, other: &$name) -> bool {
                self.start.0 < other.start.0 + other.len && other.start.0 < self.start.0 + self.len
            }
            /// The part of `self` below `other.start` and the part above
            /// `other.end()` (either may be empty).
            pub const fn minus(&self, other: &$name) -> [$name; 2] {
                let (s, e) = (self.start.0, self.start.0 + self.len);
                let lo_end = if other.start.0 < e { other.start.0 } else { e };
                let hi_start = if other.start.0 + other.len > s {
                    other.start.0 + other.len
                } else {
                    s
                };
                [
                    $name {
                        start: $addr(s),
                        len: lo_end.saturating_sub(s),
                    },
                    $name {
                        start: $addr(if hi_start > e { e } else { hi_start }),
                        len: e.saturating_sub(hi_start),
                    },
                ]
            }
        }
    };
}

range_type!(
    /// A half-open range `[start, start + len)` of host-physical memory.
    HostRange,
    HostPhysAddr
);
range_type!(
    /// A half-open range `[start, start + len)` of a guest's physical
    /// address space.
    GuestRange,
    GuestPhysAddr
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_sizes() {
        assert_eq!(PageSize::Size2M.base_pages(), 512);
        for (i, s) in PageSize::ALL.iter().enumerate() {
            assert_eq!(s.level(), i);
            assert_eq!(PageSize::from_level(i), Some(*s));
        }
        assert_eq!(PageSize::from_level(4), None);
    }

    #[test]
    fn alignment() {
        let a = HostPhysAddr::new(0x8020_1234);
        assert!(!a.is_aligned(PageSize::Size4K));
        assert_eq!(a.align_down(PageSize::Size4K).bits(), 0x8020_1000);
        assert_eq!(
            a.checked_align_up(PageSize::Size2M).unwrap().bits(),
            0x8040_0000
        );
        assert_eq!(
            HostPhysAddr::new(u64::MAX).checked_align_up(PageSize::Size4K),
            None
        );
    }

    #[test]
    fn ranges_reject_overflow() {
        assert!(HostRange::new(HostPhysAddr::new(u64::MAX - 1), 4).is_none());
        let r = HostRange::new(HostPhysAddr::new(0x1000), 0x2000).unwrap();
        assert!(r.contains(HostPhysAddr::new(0x2fff)));
        assert!(!r.contains(HostPhysAddr::new(0x3000)));
        assert!(r.contains_range(HostPhysAddr::new(0x1000), 0x2000));
        assert!(!r.contains_range(HostPhysAddr::new(0x1000), u64::MAX));
    }

    #[test]
    fn guest_ranges() {
        let g = |s, l| GuestRange::new(GuestPhysAddr::new(s), l).unwrap();
        let r = g(0x1000, 0x4000);
        assert!(r.covers(&g(0x2000, 0x1000)));
        assert!(!r.covers(&g(0x4000, 0x2000)));
        assert!(r.overlaps(&g(0x4000, 0x2000)));
        assert!(!r.overlaps(&g(0x5000, 0x1000)));
        assert_eq!(
            r.minus(&g(0x2000, 0x1000)),
            [g(0x1000, 0x1000), g(0x3000, 0x2000)]
        );
        // Cut off one end, or all of it.
        assert_eq!(r.minus(&g(0, 0x2000))[0].len, 0);
        assert_eq!(r.minus(&g(0, 0x2000))[1], g(0x2000, 0x3000));
        assert!(r.minus(&g(0, 0x10000)).iter().all(|p| p.is_empty()));
        assert!(GuestRange::new(GuestPhysAddr::new(u64::MAX), 1).is_none());
    }

    proptest::proptest! {
        #[test]
        fn minus_partitions(s in 0u64..64, l in 0u64..64, os in 0u64..64, ol in 0u64..64) {
            let r = HostRange::new(HostPhysAddr::new(s), l).unwrap();
            let o = HostRange::new(HostPhysAddr::new(os), ol).unwrap();
            let [a, b] = r.minus(&o);
            for x in 0..130u64 {
                let x = HostPhysAddr::new(x);
                let want = r.contains(x) && !o.contains(x);
                proptest::prop_assert_eq!(a.contains(x) || b.contains(x), want);
                proptest::prop_assert!(!(a.contains(x) && b.contains(x)));
            }
        }
    }
}
