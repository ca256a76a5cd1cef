//! A pool of donated table pages that never hands out a page freed since
//! the last completed TLB fence.
//!
//! A table unlinked from a G-stage tree may still be cached by a hart's
//! walker (non-leaf entries are cacheable): until HFENCE.GVMA has run on
//! every hart that may have used the tree, a stale walk can read it. If the
//! page were reused as a table elsewhere in the same tree meanwhile, such a
//! walk would follow the new entries for the old address: a private GPA
//! could reach a host page. So freed tables wait in a quarantine, tagged
//! with the fence epoch current when they were freed, and return to the
//! free list only when a fence of a later epoch has completed.
//!
//! The lists are threaded through the pages themselves (word 0: next,
//! word 1: epoch << 1), so the pool needs no memory of its own and never
//! allocates, whatever the number of pages. A stale walk may still read a
//! quarantined page as a table: every word the pool writes keeps bit 0 (V)
//! clear, so such a walk sees invalid entries, never a host-chosen one.

use hyp_addr::HostPhysAddr;

/// Word access to the pool's pages.
pub trait PoolMemory {
    fn read_u64(&self, pa: HostPhysAddr) -> u64;
    fn write_u64(&mut self, pa: HostPhysAddr, value: u64);
    fn zero_page(&mut self, pa: HostPhysAddr);
}

/// Free and quarantined table pages; `0` ends a list (page 0 is never RAM
/// handed to a pool).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TablePool {
    free_head: u64,
    free: u64,
    /// FIFO: oldest (lowest epoch) at the head.
    q_head: u64,
    q_tail: u64,
    quarantined: u64,
}

impl TablePool {
    pub const fn new() -> Self {
        TablePool {
            free_head: 0,
            free: 0,
            q_head: 0,
            q_tail: 0,
            quarantined: 0,
        }
    }

    /// Pages ready to be handed out.
    pub fn free(&self) -> u64 {
        self.free
    }

    /// Pages waiting for a fence.
    pub fn quarantined(&self) -> u64 {
        self.quarantined
    }

    /// Adds a page that was never part of any table (donated): usable at
    /// once.
    pub fn donate(&mut self, mem: &mut impl PoolMemory, pa: HostPhysAddr) {
        mem.write_u64(pa, self.free_head);
        self.free_head = pa.bits();
        self.free += 1;
    }

    /// A zeroed page from the free list; never a quarantined one.
    pub fn alloc(&mut self, mem: &mut impl PoolMemory) -> Option<HostPhysAddr> {
        if self.free_head == 0 {
            return None;
        }
        let pa = HostPhysAddr::new(self.free_head);
        self.free_head = mem.read_u64(pa);
        self.free -= 1;
        mem.zero_page(pa);
        Some(pa)
    }

    /// Takes back a page that was a table in epoch `epoch`: it waits until
    /// a fence of a later epoch completes.
    pub fn retire(&mut self, mem: &mut impl PoolMemory, pa: HostPhysAddr, epoch: u64) {
        mem.write_u64(pa, 0);
        mem.write_u64(HostPhysAddr::new(pa.bits() + 8), epoch << 1);
        if self.q_tail == 0 {
            self.q_head = pa.bits();
        } else {
            mem.write_u64(HostPhysAddr::new(self.q_tail), pa.bits());
        }
        self.q_tail = pa.bits();
        self.quarantined += 1;
    }

    /// A fence that started in epoch `fenced_epoch - 1` has completed on
    /// every hart: pages retired in earlier epochs are free again. Epochs
    /// only grow, so the FIFO releases a prefix.
    pub fn release_fenced(&mut self, mem: &mut impl PoolMemory, fenced_epoch: u64) {
        while self.q_head != 0 {
            let pa = HostPhysAddr::new(self.q_head);
            if mem.read_u64(HostPhysAddr::new(pa.bits() + 8)) >> 1 >= fenced_epoch {
                break;
            }
            self.q_head = mem.read_u64(pa);
            if self.q_head == 0 {
                self.q_tail = 0;
            }
            self.quarantined -= 1;
            self.donate(mem, pa);
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::collections::HashMap;
    use std::vec::Vec;

    #[derive(Default)]
    struct Mem(HashMap<u64, u64>);

    impl PoolMemory for Mem {
        fn read_u64(&self, pa: HostPhysAddr) -> u64 {
            *self.0.get(&pa.bits()).unwrap_or(&0)
        }
        fn write_u64(&mut self, pa: HostPhysAddr, value: u64) {
            self.0.insert(pa.bits(), value);
        }
        fn zero_page(&mut self, pa: HostPhysAddr) {
            for i in 0..512 {
                self.0.remove(&(pa.bits() + i * 8));
            }
        }
    }

    fn page(i: u64) -> HostPhysAddr {
        HostPhysAddr::new(0x8000_0000 + i * 4096)
    }

    #[test]
    fn donated_pages_are_free_at_once() {
        let (mut m, mut p) = (Mem::default(), TablePool::new());
        p.donate(&mut m, page(1));
        p.donate(&mut m, page(2));
        assert_eq!(p.free(), 2);
        let a = p.alloc(&mut m).unwrap();
        let b = p.alloc(&mut m).unwrap();
        assert_ne!(a, b);
        assert_eq!(p.alloc(&mut m), None);
    }

    #[test]
    fn retired_pages_wait_for_a_later_fence() {
        let (mut m, mut p) = (Mem::default(), TablePool::new());
        p.retire(&mut m, page(1), 0);
        assert_eq!(p.alloc(&mut m), None, "reused before any fence");
        // A fence that started in epoch 0 completes: fenced_epoch = 1.
        p.release_fenced(&mut m, 1);
        assert_eq!(p.alloc(&mut m), Some(page(1)));
        // Retired in epoch 1, a fence of epoch 0 completing late frees nothing.
        p.retire(&mut m, page(2), 1);
        p.release_fenced(&mut m, 1);
        assert_eq!(p.alloc(&mut m), None);
        p.release_fenced(&mut m, 2);
        assert_eq!(p.alloc(&mut m), Some(page(2)));
    }

    #[test]
    fn pool_words_are_never_valid_ptes() {
        let (mut m, mut p) = (Mem::default(), TablePool::new());
        for i in 1..7 {
            p.donate(&mut m, page(i));
        }
        for e in [0, 1, 2, 3, 0x1_0000_0001, (1 << 62) + 1] {
            let pa = p.alloc(&mut m).unwrap();
            p.retire(&mut m, pa, e);
        }
        p.release_fenced(&mut m, 2);
        assert!(
            m.0.values().all(|w| w & 1 == 0),
            "a pool word has the V bit set: a stale walk would follow it"
        );
    }

    use proptest::prelude::*;

    #[derive(Clone, Debug)]
    enum Op {
        Donate,
        Alloc,
        Retire(usize),
        FenceStart,
        FenceEnd(usize),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            Just(Op::Donate),
            Just(Op::Alloc),
            (0usize..8).prop_map(Op::Retire),
            Just(Op::FenceStart),
            (0usize..4).prop_map(Op::FenceEnd),
        ]
    }

    proptest! {
        /// Model: the pool never returns a page retired since the start of
        /// the last completed fence, never loses a page and never hands one
        /// out twice.
        #[test]
        fn never_reuses_unfenced(ops in proptest::collection::vec(op(), 1..200)) {
            let (mut m, mut p) = (Mem::default(), TablePool::new());
            let mut next = 1u64;
            let mut epoch = 0u64;
            let mut fenced = 0u64;
            let mut started: Vec<u64> = Vec::new();
            let mut in_use: Vec<HostPhysAddr> = Vec::new();
            let mut retired: HashMap<u64, u64> = HashMap::new();
            let mut total = 0u64;
            for o in ops {
                match o {
                    Op::Donate => { p.donate(&mut m, page(next)); next += 1; total += 1; }
                    Op::Alloc => if let Some(pa) = p.alloc(&mut m) {
                        prop_assert!(!in_use.contains(&pa), "handed out twice");
                        if let Some(e) = retired.remove(&pa.bits()) {
                            prop_assert!(e < fenced, "page retired in epoch {} reused with fences done up to {}", e, fenced);
                        }
                        in_use.push(pa);
                    },
                    Op::Retire(i) => if !in_use.is_empty() {
                        let pa = in_use.remove(i % in_use.len());
                        p.retire(&mut m, pa, epoch);
                        retired.insert(pa.bits(), epoch);
                    },
                    Op::FenceStart => { started.push(epoch); epoch += 1; }
                    Op::FenceEnd(i) => if !started.is_empty() {
                        let e = started.remove(i % started.len());
                        fenced = fenced.max(e + 1);
                        p.release_fenced(&mut m, fenced);
                    },
                }
                prop_assert_eq!(p.free() + p.quarantined() + in_use.len() as u64, total);
            }
        }
    }
}
