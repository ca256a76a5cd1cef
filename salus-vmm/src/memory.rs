//! The VMM's view of the TVM's guest-physical memory: confidential
//! regions, what is mapped where (measured, zero, shared pages), the ranges
//! the TVM declared shareable or MMIO, and the host pages behind shared
//! pages. Pure bookkeeping: the ioctls are made by the caller.
#![forbid(unsafe_code)]

use std::collections::{BTreeMap, BTreeSet};

use crate::abi::{SIZE_2M, SIZE_4K};
use crate::tsm::HostPage;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Range {
    pub gpa: u64,
    pub len: u64,
}

impl Range {
    pub const fn new(gpa: u64, len: u64) -> Range {
        Range { gpa, len }
    }
    pub const fn end(&self) -> u64 {
        self.gpa.saturating_add(self.len)
    }
    pub const fn contains(&self, gpa: u64) -> bool {
        gpa >= self.gpa && gpa < self.end()
    }
    pub const fn covers(&self, r: Range) -> bool {
        r.gpa >= self.gpa && r.end() <= self.end()
    }
    pub const fn overlaps(&self, r: Range) -> bool {
        r.gpa < self.end() && self.gpa < r.end()
    }
    /// Page-aligned, non-empty, not wrapping.
    pub fn is_page_range(&self) -> bool {
        self.gpa.is_multiple_of(SIZE_4K)
            && self.len.is_multiple_of(SIZE_4K)
            && self.len != 0
            && self.gpa.checked_add(self.len).is_some()
    }
}

/// What a guest page fault at some GPA should get.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// Inside an MMIO region the TVM declared.
    Mmio,
    /// Inside a shareable range with no page yet: a shared page.
    NewShared,
    /// Confidential memory with nothing mapped: a zero page.
    Zero,
    /// Something is already mapped there (another vCPU's fault won the
    /// race): just run again.
    Mapped,
    /// A measured page (cannot fault).
    Measured,
    /// Outside every region.
    Outside,
}

pub struct Memory<P> {
    regions: Vec<Range>,
    measured: Vec<Range>,
    zero_4k: BTreeSet<u64>,
    zero_2m: BTreeSet<u64>,
    /// 2 MiB blocks where a 2 MiB zero page is tried on the first fault.
    try_2m: BTreeSet<u64>,
    shareable: Vec<Range>,
    shared: BTreeMap<u64, P>,
    /// The host page that last backed a GPA the TVM unshared.
    retired: BTreeMap<u64, P>,
    mmio: Vec<Range>,
}

impl<P> Default for Memory<P> {
    fn default() -> Self {
        Memory {
            regions: Vec::new(),
            measured: Vec::new(),
            zero_4k: BTreeSet::new(),
            zero_2m: BTreeSet::new(),
            try_2m: BTreeSet::new(),
            shareable: Vec::new(),
            shared: BTreeMap::new(),
            retired: BTreeMap::new(),
            mmio: Vec::new(),
        }
    }
}

const fn page_of(gpa: u64) -> u64 {
    gpa & !(SIZE_4K - 1)
}

const fn block_of(gpa: u64) -> u64 {
    gpa & !(SIZE_2M - 1)
}

/// `list` without `cut` (ranges split where needed).
fn subtract(list: &mut Vec<Range>, cut: Range) {
    let mut out = Vec::new();
    for r in list.drain(..) {
        if !r.overlaps(cut) {
            out.push(r);
            continue;
        }
        if r.gpa < cut.gpa {
            out.push(Range::new(r.gpa, cut.gpa - r.gpa));
        }
        if r.end() > cut.end() {
            out.push(Range::new(cut.end(), r.end() - cut.end()));
        }
    }
    *list = out;
}

impl<P: HostPage> Memory<P> {
    pub fn add_region(&mut self, r: Range) {
        self.regions.push(r);
    }

    pub fn in_regions(&self, r: Range) -> bool {
        self.regions.iter().any(|c| c.covers(r))
    }

    pub fn add_measured(&mut self, r: Range) {
        self.measured.push(r);
    }

    /// Try a 2 MiB zero page first on the first fault in this block.
    pub fn prefer_2m_zero(&mut self, block: u64) {
        self.try_2m.insert(block_of(block));
    }

    pub fn target(&self, gpa: u64) -> Target {
        let page = page_of(gpa);
        if self.mmio.iter().any(|r| r.contains(gpa)) {
            return Target::Mmio;
        }
        let zero_mapped = self.zero_4k.contains(&page) || self.zero_2m.contains(&block_of(gpa));
        if self.shareable.iter().any(|r| r.contains(gpa)) {
            // A confidential page mapped before the share stays mapped (and
            // private) until removed, so it does not fault either.
            return if self.shared.contains_key(&page) || zero_mapped {
                Target::Mapped
            } else {
                Target::NewShared
            };
        }
        if !self.regions.iter().any(|r| r.contains(gpa)) {
            return Target::Outside;
        }
        if self.measured.iter().any(|r| r.contains(gpa)) {
            Target::Measured
        } else if zero_mapped {
            Target::Mapped
        } else {
            Target::Zero
        }
    }

    /// The 2 MiB block to try a 2 MiB zero page at for a zero fault at
    /// `gpa`, once per block, while nothing else is mapped in it.
    pub fn take_2m_block(&mut self, gpa: u64) -> Option<u64> {
        let b = block_of(gpa);
        if !self.try_2m.remove(&b) {
            return None;
        }
        let block = Range::new(b, SIZE_2M);
        let busy = self.zero_4k.range(b..block.end()).next().is_some()
            || self.shared.range(b..block.end()).next().is_some()
            || self.measured.iter().any(|r| r.overlaps(block))
            || !self.in_regions(block);
        (!busy).then_some(b)
    }

    pub fn zero_added(&mut self, gpa: u64, two_mib: bool) {
        if two_mib {
            self.zero_2m.insert(block_of(gpa));
        } else {
            self.zero_4k.insert(page_of(gpa));
        }
    }

    /// The TVM declared `r` shareable (COVG share_memory_region).
    pub fn share(&mut self, r: Range) -> Result<(), String> {
        if !r.is_page_range() || !self.in_regions(r) {
            return Err(format!(
                "share of [{:#x}, +{:#x}) outside the confidential memory",
                r.gpa, r.len
            ));
        }
        subtract(&mut self.shareable, r);
        self.shareable.push(r);
        Ok(())
    }

    /// Confidential zero pages still mapped inside `r` (they stay private:
    /// the uapi cannot remove them).
    pub fn private_pages_in(&self, r: Range) -> usize {
        self.zero_4k.range(r.gpa..r.end()).count()
            + self
                .zero_2m
                .iter()
                .filter(|&&b| Range::new(b, SIZE_2M).overlaps(r))
                .count()
    }

    /// The TVM unshared `r`: returns the GPAs of the shared pages that were
    /// mapped there (the caller removes them). Their host pages are kept
    /// (`retired_page`).
    pub fn unshare(&mut self, r: Range) -> Vec<u64> {
        subtract(&mut self.shareable, r);
        let gpas: Vec<u64> = self.shared.range(r.gpa..r.end()).map(|(&g, _)| g).collect();
        for g in &gpas {
            if let Some(p) = self.shared.remove(g) {
                self.retired.insert(*g, p);
            }
        }
        gpas
    }

    pub fn add_shared(&mut self, gpa: u64, page: P) {
        self.retired.remove(&page_of(gpa));
        self.shared.insert(page_of(gpa), page);
    }

    /// The host page now shared at the page of `gpa`.
    pub fn shared_page(&self, gpa: u64) -> Option<&P> {
        self.shared.get(&page_of(gpa))
    }

    /// The host page that was shared at the page of `gpa` before the TVM
    /// unshared it.
    pub fn retired_page(&self, gpa: u64) -> Option<&P> {
        self.retired.get(&page_of(gpa))
    }

    pub fn add_mmio(&mut self, r: Range) {
        subtract(&mut self.mmio, r);
        self.mmio.push(r);
    }

    pub fn remove_mmio(&mut self, r: Range) {
        subtract(&mut self.mmio, r);
    }
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use std::sync::Mutex;

    /// A heap page standing in for user memory.
    pub struct VecPage {
        pub addr: u64,
        pub data: Mutex<Vec<u8>>,
    }

    impl VecPage {
        pub fn new(addr: u64) -> VecPage {
            VecPage {
                addr,
                data: Mutex::new(vec![0; SIZE_4K as usize]),
            }
        }
    }

    impl HostPage for VecPage {
        fn uaddr(&self) -> u64 {
            self.addr
        }
        fn read(&self, off: usize, buf: &mut [u8]) {
            buf.copy_from_slice(&self.data.lock().unwrap()[off..off + buf.len()]);
        }
        fn write(&self, off: usize, d: &[u8]) {
            self.data.lock().unwrap()[off..off + d.len()].copy_from_slice(d);
        }
    }

    const BASE: u64 = 0x8000_0000;

    fn mem() -> Memory<VecPage> {
        let mut m = Memory::default();
        m.add_region(Range::new(BASE, 0x80_0000));
        m.add_measured(Range::new(BASE, 0x3000));
        m
    }

    #[test]
    fn fault_targets() {
        let mut m = mem();
        assert_eq!(m.target(BASE + 0x10), Target::Measured);
        assert_eq!(m.target(BASE + 0x3008), Target::Zero);
        m.zero_added(BASE + 0x3008, false);
        assert_eq!(m.target(BASE + 0x3ff8), Target::Mapped);
        assert_eq!(m.target(BASE + 0x4000), Target::Zero);
        assert_eq!(m.target(BASE + 0x80_0000), Target::Outside);
        assert_eq!(m.target(0x1000_0000), Target::Outside);
        m.add_mmio(Range::new(0x1000_0000, 0x1000));
        assert_eq!(m.target(0x1000_0ff8), Target::Mmio);
        m.remove_mmio(Range::new(0x1000_0000, 0x1000));
        assert_eq!(m.target(0x1000_0ff8), Target::Outside);
    }

    #[test]
    fn share_fault_unshare() {
        let mut m = mem();
        let r = Range::new(BASE + 0x7f_0000, 0x1000);
        assert!(m.share(Range::new(0x1000_0000, 0x1000)).is_err());
        assert!(m.share(Range::new(BASE + 8, 0x1000)).is_err());
        m.share(r).unwrap();
        assert_eq!(m.target(r.gpa + 8), Target::NewShared);
        let p = VecPage::new(0x7000_0000);
        p.write_u64(0, 0xabcd);
        m.add_shared(r.gpa, p);
        assert_eq!(m.target(r.gpa + 8), Target::Mapped);
        assert_eq!(m.shared_page(r.gpa + 0x10).unwrap().read_u64(0), 0xabcd);
        assert_eq!(m.unshare(r), vec![r.gpa]);
        assert!(m.shared_page(r.gpa).is_none());
        assert_eq!(m.retired_page(r.gpa).unwrap().read_u64(0), 0xabcd);
        // Confidential again: the next fault gets a zero page.
        assert_eq!(m.target(r.gpa), Target::Zero);
        assert!(m.unshare(r).is_empty());
    }

    #[test]
    fn partial_unshare_splits_the_range() {
        let mut m = mem();
        m.share(Range::new(BASE + 0x10_0000, 0x3000)).unwrap();
        m.unshare(Range::new(BASE + 0x10_1000, 0x1000));
        assert_eq!(m.target(BASE + 0x10_0000), Target::NewShared);
        assert_eq!(m.target(BASE + 0x10_1000), Target::Zero);
        assert_eq!(m.target(BASE + 0x10_2000), Target::NewShared);
    }

    #[test]
    fn two_mib_zero_blocks() {
        let mut m = mem();
        let b = BASE + 0x40_0000;
        m.prefer_2m_zero(b);
        assert_eq!(m.take_2m_block(b + 0x1234), Some(b));
        // Only once per block.
        assert_eq!(m.take_2m_block(b + 0x1234), None);
        m.zero_added(b, true);
        assert_eq!(m.target(b + 0x1f_fff8), Target::Mapped);
        // A block with a 4 KiB page in it, or measured pages, is not tried.
        let c = BASE + 0x60_0000;
        m.prefer_2m_zero(c);
        m.zero_added(c + 0x5000, false);
        assert_eq!(m.take_2m_block(c), None);
        m.prefer_2m_zero(BASE);
        assert_eq!(m.take_2m_block(BASE + 0x10_0000), None);
        assert_eq!((m.zero_4k.len(), m.zero_2m.len()), (1, 1));
    }

    #[test]
    fn shared_pages_are_not_private() {
        let mut m = mem();
        let g = BASE + 0x7e_0000;
        m.share(Range::new(g, 0x2000)).unwrap();
        m.add_shared(g, VecPage::new(0x7000_0000));
        m.add_shared(g + 0x1000, VecPage::new(0x7000_1000));
        assert_eq!(m.private_pages_in(Range::new(g, 0x2000)), 0);
    }
}
