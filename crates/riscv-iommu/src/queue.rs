//! In-memory queue base registers (`cqb`, `fqb`, `pqb`) and circular
//! head/tail arithmetic.

use crate::{get, put, PPN_BITS};
use hyp_addr::HostPhysAddr;

/// Size of a command-queue entry.
pub const COMMAND_SIZE: u64 = 16;
/// Size of a fault-queue record.
pub const FAULT_RECORD_SIZE: u64 = 32;
/// Size of a page-request-queue entry.
pub const PAGE_REQUEST_SIZE: u64 = 16;

/// A queue base register: `LOG2SZ-1[4:0] | PPN[53:10]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct QueueBase {
    /// log2 of the number of entries (1..=32).
    pub log2_entries: u8,
    pub ppn: u64,
}

impl QueueBase {
    /// `entries = 2^log2_entries` at `base`. `None` if `log2_entries` is
    /// outside 1..=32.
    pub const fn new(base: HostPhysAddr, log2_entries: u8) -> Option<Self> {
        if log2_entries == 0 || log2_entries > 32 {
            return None;
        }
        Some(Self {
            log2_entries,
            ppn: base.pfn(),
        })
    }
    pub const fn bits(self) -> u64 {
        put(self.log2_entries as u64 - 1, 0, 5) | put(self.ppn, 10, PPN_BITS)
    }
    pub const fn from_bits(raw: u64) -> Self {
        Self {
            log2_entries: get(raw, 0, 5) as u8 + 1,
            ppn: get(raw, 10, PPN_BITS),
        }
    }
    pub const fn base(self) -> HostPhysAddr {
        HostPhysAddr::from_pfn(self.ppn)
    }
    pub const fn ring(self) -> Ring {
        Ring::new(self.log2_entries)
    }
    /// Required alignment of the base for entries of `entry_size` bytes:
    /// 4 KiB, or the queue size when larger.
    pub const fn required_alignment(self, entry_size: u64) -> u64 {
        let bytes = (1u64 << self.log2_entries) * entry_size;
        if bytes > 4096 {
            bytes
        } else {
            4096
        }
    }
}

/// Head/tail arithmetic of a power-of-two circular queue. A queue is empty
/// when head == tail and full when tail == head - 1 (one slot stays unused).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Ring {
    log2_entries: u8,
}

impl Ring {
    pub const fn new(log2_entries: u8) -> Self {
        Self { log2_entries }
    }
    pub const fn entries(self) -> u32 {
        (1u64 << self.log2_entries) as u32
    }
    /// Index mask (`entries - 1`).
    pub const fn mask(self) -> u32 {
        ((1u64 << self.log2_entries) - 1) as u32
    }
    /// Reduces a register value to an index.
    pub const fn index(self, raw: u32) -> u32 {
        raw & self.mask()
    }
    /// The index after `i`, wrapping.
    pub const fn next(self, i: u32) -> u32 {
        (i.wrapping_add(1)) & self.mask()
    }
    pub const fn is_empty(self, head: u32, tail: u32) -> bool {
        self.index(head) == self.index(tail)
    }
    pub const fn is_full(self, head: u32, tail: u32) -> bool {
        self.next(tail) == self.index(head)
    }
    /// Entries between head and tail.
    pub const fn len(self, head: u32, tail: u32) -> u32 {
        tail.wrapping_sub(head) & self.mask()
    }
    /// Entries the producer may still add.
    pub const fn free(self, head: u32, tail: u32) -> u32 {
        self.mask() - self.len(head, tail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn base_encoding() {
        // 256 commands (LOG2SZ-1 = 7) at 0x8000_1000.
        let q = QueueBase::new(HostPhysAddr::new(0x8000_1000), 8).unwrap();
        assert_eq!(q.bits(), (0x80001 << 10) | 7);
        assert_eq!(QueueBase::from_bits(q.bits()), q);
        assert_eq!(q.base(), HostPhysAddr::new(0x8000_1000));
        assert_eq!(q.required_alignment(COMMAND_SIZE), 4096);
        let big = QueueBase::new(HostPhysAddr::new(0), 10).unwrap();
        assert_eq!(big.required_alignment(COMMAND_SIZE), 16384);
        assert_eq!(big.required_alignment(FAULT_RECORD_SIZE), 32768);
        assert!(QueueBase::new(HostPhysAddr::new(0), 0).is_none());
        assert!(QueueBase::new(HostPhysAddr::new(0), 33).is_none());
        assert_eq!(QueueBase::new(HostPhysAddr::new(0), 32).unwrap().bits(), 31);
        // LOG2SZ-1 = 0 means 2 entries.
        assert_eq!(QueueBase::from_bits(0).log2_entries, 1);
    }

    #[test]
    fn ring_arith() {
        let r = Ring::new(2); // 4 entries
        assert_eq!(r.entries(), 4);
        assert!(r.is_empty(3, 3));
        assert!(r.is_full(0, 3));
        assert!(r.is_full(2, 1));
        assert!(!r.is_full(1, 1));
        assert_eq!(r.next(3), 0);
        assert_eq!(r.len(3, 1), 2);
        assert_eq!(r.free(3, 1), 1);
        assert_eq!(r.free(0, 0), 3);
    }

    proptest! {
        #[test]
        fn len_plus_free(log2 in 1u8..=12, h in any::<u32>(), t in any::<u32>()) {
            let r = Ring::new(log2);
            let (h, t) = (r.index(h), r.index(t));
            prop_assert_eq!(r.len(h, t) + r.free(h, t), r.entries() - 1);
            prop_assert_eq!(r.is_full(h, t), r.free(h, t) == 0);
            prop_assert_eq!(r.is_empty(h, t), r.len(h, t) == 0);
        }
    }
}
