//! Guest-physical regions a TVM declares (confidential, shareable, MMIO):
//! small fixed sets, so no call can grow Salus's memory.

use super::tvm::MAX_REGIONS;
use hyp_addr::{GuestPhysAddr, GuestRange};

/// A small fixed set of disjoint guest ranges.
#[derive(Clone, Copy, Debug, Default)]
pub struct RegionSet {
    regions: [GuestRange; MAX_REGIONS],
}

impl RegionSet {
    pub fn iter(&self) -> impl Iterator<Item = &GuestRange> {
        self.regions.iter().filter(|r| !r.is_empty())
    }
    pub fn find(&self, gpa: GuestPhysAddr) -> Option<GuestRange> {
        self.iter().find(|r| r.contains(gpa)).copied()
    }
    pub fn covers(&self, r: &GuestRange) -> bool {
        self.iter().any(|x| x.covers(r))
    }
    pub fn overlaps(&self, r: &GuestRange) -> bool {
        self.iter().any(|x| x.overlaps(r))
    }
    /// Adds `r` (must not overlap); false when full.
    pub fn insert(&mut self, r: GuestRange) -> bool {
        match self.regions.iter_mut().find(|x| x.is_empty()) {
            Some(slot) => {
                *slot = r;
                true
            }
            None => false,
        }
    }
    /// Removes `r` from the set, splitting regions it cuts; false (and no
    /// change) when the split would need more slots than are free.
    pub fn remove(&mut self, r: &GuestRange) -> bool {
        let mut next = RegionSet::default();
        let mut n = 0;
        for x in self.iter() {
            for p in x.minus(r).iter().filter(|p| !p.is_empty()) {
                match next.regions.get_mut(n) {
                    Some(slot) => *slot = *p,
                    None => return false,
                }
                n += 1;
            }
        }
        *self = next;
        true
    }
}
