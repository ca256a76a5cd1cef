//! Guest-physical regions a TVM declares (confidential, shareable, MMIO):
//! small fixed sets, so no call can grow Salus's memory.

use super::tvm::MAX_REGIONS;

/// A guest-physical range `[start, start + len)`; `len == 0` is empty.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Region {
    pub start: u64,
    pub len: u64,
}

impl Region {
    pub fn new(start: u64, len: u64) -> Option<Region> {
        start.checked_add(len)?;
        Some(Region { start, len })
    }
    pub fn end(&self) -> u64 {
        self.start + self.len
    }
    pub fn contains(&self, gpa: u64) -> bool {
        gpa >= self.start && gpa < self.end()
    }
    pub fn covers(&self, other: &Region) -> bool {
        other.start >= self.start && other.end() <= self.end()
    }
    pub fn overlaps(&self, other: &Region) -> bool {
        self.start < other.end() && other.start < self.end()
    }
}

/// A small fixed set of disjoint regions.
#[derive(Clone, Copy, Debug, Default)]
pub struct RegionSet {
    regions: [Region; MAX_REGIONS],
}

impl RegionSet {
    pub fn iter(&self) -> impl Iterator<Item = &Region> {
        self.regions.iter().filter(|r| r.len != 0)
    }
    pub fn find(&self, gpa: u64) -> Option<Region> {
        self.iter().find(|r| r.contains(gpa)).copied()
    }
    pub fn covers(&self, r: &Region) -> bool {
        self.iter().any(|x| x.covers(r))
    }
    pub fn overlaps(&self, r: &Region) -> bool {
        self.iter().any(|x| x.overlaps(r))
    }
    /// Adds `r` (must not overlap); false when full.
    pub fn insert(&mut self, r: Region) -> bool {
        match self.regions.iter_mut().find(|x| x.len == 0) {
            Some(slot) => {
                *slot = r;
                true
            }
            None => false,
        }
    }
    /// Removes `r` from the set, splitting regions it cuts; false (and no
    /// change) when the split would need more slots than are free.
    pub fn remove(&mut self, r: &Region) -> bool {
        let mut next = RegionSet::default();
        let mut n = 0;
        for x in self.iter() {
            let pieces = [
                Region {
                    start: x.start,
                    len: r.start.saturating_sub(x.start).min(x.len),
                },
                Region {
                    start: r.end().max(x.start),
                    len: x.end().saturating_sub(r.end().max(x.start)),
                },
            ];
            for p in pieces.iter().filter(|p| p.len != 0) {
                if n == MAX_REGIONS {
                    return false;
                }
                next.regions[n] = *p;
                n += 1;
            }
        }
        *self = next;
        true
    }
}

