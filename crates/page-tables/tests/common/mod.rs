//! Test support: an in-memory `PageTableMemory` and structural checks.
#![allow(dead_code)]

use std::cell::Cell;
use std::collections::HashMap;

use hyp_addr::{GuestPhysAddr, HostPhysAddr, PageSize};
use page_tables::{
    GStageTable, PageTableMemory, Perms, Pte, PTE_A, PTE_D, PTE_PPN_MASK, PTE_U, PTE_V,
    ROOT_TABLE_BYTES, TABLE_BYTES,
};

/// Table pages keyed by 4K page number; a bump allocator that never reuses
/// addresses (so snapshots compare exactly) with an optional budget.
#[derive(Default)]
pub struct TestMemory {
    pub pages: HashMap<u64, Box<[u64; 512]>>,
    /// Live allocations: address -> bytes.
    pub live: HashMap<u64, u64>,
    next: u64,
    /// Remaining allocations allowed (`None`: unlimited).
    pub budget: Option<usize>,
    pub total_allocs: usize,
    pub reads: Cell<u64>,
    pub writes: u64,
}

/// What must not change when an operation fails.
#[derive(Clone, PartialEq, Debug)]
pub struct Snapshot {
    pages: Vec<(u64, Vec<u64>)>,
    live: Vec<(u64, u64)>,
}

impl TestMemory {
    pub fn new() -> Self {
        TestMemory {
            next: 0x2_0000_0000,
            ..Default::default()
        }
    }

    pub fn live_tables(&self) -> usize {
        self.live.len()
    }

    pub fn snapshot(&self) -> Snapshot {
        let mut pages: Vec<_> = self.pages.iter().map(|(k, v)| (*k, v.to_vec())).collect();
        pages.sort();
        let mut live: Vec<_> = self.live.iter().map(|(k, v)| (*k, *v)).collect();
        live.sort();
        Snapshot { pages, live }
    }

    fn page(&self, addr: u64) -> &[u64; 512] {
        self.pages
            .get(&(addr >> 12))
            .unwrap_or_else(|| panic!("access outside any table: {addr:#x}"))
    }
}

impl PageTableMemory for TestMemory {
    fn alloc_table(&mut self, bytes: u64) -> Option<HostPhysAddr> {
        assert!(bytes == TABLE_BYTES || bytes == ROOT_TABLE_BYTES);
        if let Some(b) = &mut self.budget {
            if *b == 0 {
                return None;
            }
            *b -= 1;
        }
        let addr = self.next.next_multiple_of(bytes);
        self.next = addr + bytes;
        for p in 0..bytes / 4096 {
            self.pages.insert((addr >> 12) + p, Box::new([0; 512]));
        }
        self.live.insert(addr, bytes);
        self.total_allocs += 1;
        Some(HostPhysAddr::new(addr))
    }

    fn free_table(&mut self, table: HostPhysAddr, bytes: u64) {
        assert_eq!(
            self.live.remove(&table.bits()),
            Some(bytes),
            "bad free {table:?}"
        );
        for p in 0..bytes / 4096 {
            assert!(self.pages.remove(&(table.pfn() + p)).is_some());
        }
    }

    fn read_pte(&self, entry_addr: HostPhysAddr) -> u64 {
        let a = entry_addr.bits();
        assert_eq!(a % 8, 0);
        self.reads.set(self.reads.get() + 1);
        self.page(a)[((a & 0xfff) / 8) as usize]
    }

    fn write_pte(&mut self, entry_addr: HostPhysAddr, value: u64) {
        let a = entry_addr.bits();
        assert_eq!(a % 8, 0);
        self.writes += 1;
        let page = self
            .pages
            .get_mut(&(a >> 12))
            .unwrap_or_else(|| panic!("write outside any table: {a:#x}"));
        page[((a & 0xfff) / 8) as usize] = value;
    }
}

/// One leaf found by a full walk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Leaf {
    pub gpa: u64,
    pub hpa: u64,
    pub size: PageSize,
    pub perms: Perms,
}

/// Walks the whole table, checking the format invariants, and returns the
/// leaves in GPA order and the number of tables reachable (root included).
pub fn walk_all(mem: &TestMemory, pt: &GStageTable) -> (Vec<Leaf>, usize) {
    let mut leaves = Vec::new();
    let mut tables = 0;
    let top = pt.mode().levels() - 1;
    walk_table(mem, pt.root().bits(), top, top, 0, &mut leaves, &mut tables);
    (leaves, tables)
}

fn walk_table(
    mem: &TestMemory,
    table: u64,
    level: usize,
    top: usize,
    base: u64,
    leaves: &mut Vec<Leaf>,
    tables: &mut usize,
) {
    *tables += 1;
    let entries = if level == top { 2048 } else { 512 };
    let shift = 12 + 9 * level as u64;
    let mut valid = 0;
    for i in 0..entries {
        let raw = mem.read_pte(HostPhysAddr::new(table + i * 8));
        let pte = Pte::from_bits(raw);
        let gpa = base + (i << shift);
        if !pte.is_valid() {
            assert_eq!(raw, 0, "invalid entry with stray bits");
            continue;
        }
        valid += 1;
        if pte.is_leaf() {
            assert_eq!(
                raw & (PTE_V | PTE_U | PTE_A | PTE_D),
                PTE_V | PTE_U | PTE_A | PTE_D,
                "leaf without V/U/A/D: {pte:?}"
            );
            assert!(pte.perms().is_valid_leaf());
            let size = PageSize::from_level(level).unwrap();
            assert_eq!(pte.addr().bits() % size.bytes(), 0, "misaligned leaf");
            leaves.push(Leaf {
                gpa,
                hpa: pte.addr().bits(),
                size,
                perms: pte.perms(),
            });
        } else {
            assert_eq!(raw & !PTE_PPN_MASK, PTE_V, "non-leaf with flags: {pte:?}");
            assert!(level > 0, "pointer at level 0");
            walk_table(mem, pte.addr().bits(), level - 1, top, gpa, leaves, tables);
        }
    }
    if level != top {
        assert!(valid > 0, "empty non-root table left behind");
    }
}

/// Run-length model of the mapping: start page -> (pages, hpa page, perms).
/// Semantically a map of 4K page -> (hpa, perms), stored compressed so that
/// 1 GiB mappings stay cheap.
#[derive(Clone, Default, Debug)]
pub struct Model {
    runs: std::collections::BTreeMap<u64, (u64, u64, Perms)>,
}

impl Model {
    pub fn lookup(&self, page: u64) -> Option<(u64, Perms)> {
        let (&s, &(n, h, p)) = self.runs.range(..=page).next_back()?;
        (page < s + n).then_some((h + (page - s), p))
    }

    /// The `i % count`-th run as (start page, pages).
    pub fn nth_run(&self, i: usize) -> Option<(u64, u64)> {
        if self.runs.is_empty() {
            return None;
        }
        let (&s, &(n, _, _)) = self.runs.iter().nth(i % self.runs.len())?;
        Some((s, n))
    }

    fn run_end_at(&self, page: u64) -> Option<u64> {
        let (&s, &(n, _, _)) = self.runs.range(..=page).next_back()?;
        (page < s + n).then_some(s + n)
    }

    pub fn any_mapped(&self, start: u64, n: u64) -> bool {
        self.lookup(start).is_some() || self.runs.range(start..start + n).next().is_some()
    }

    pub fn all_mapped(&self, start: u64, n: u64) -> bool {
        let mut cur = start;
        while cur < start + n {
            match self.run_end_at(cur) {
                Some(e) => cur = e,
                None => return false,
            }
        }
        true
    }

    pub fn insert(&mut self, start: u64, n: u64, hpa: u64, perms: Perms) {
        assert!(!self.any_mapped(start, n));
        self.runs.insert(start, (n, hpa, perms));
    }

    pub fn remove(&mut self, start: u64, n: u64) {
        let end = start + n;
        let overlapping: Vec<_> = self
            .runs
            .range(..end)
            .filter(|(&s, &(len, _, _))| s + len > start)
            .map(|(&s, &v)| (s, v))
            .collect();
        for (s, (len, h, p)) in overlapping {
            self.runs.remove(&s);
            if s < start {
                self.runs.insert(s, (start - s, h, p));
            }
            if s + len > end {
                self.runs.insert(end, (s + len - end, h + (end - s), p));
            }
        }
    }

    /// Runs with adjacent compatible runs merged.
    pub fn normalized(&self) -> Vec<(u64, u64, u64, Perms)> {
        merge(self.runs.iter().map(|(&s, &(n, h, p))| (s, n, h, p)))
    }
}

fn merge(runs: impl Iterator<Item = (u64, u64, u64, Perms)>) -> Vec<(u64, u64, u64, Perms)> {
    let mut out: Vec<(u64, u64, u64, Perms)> = Vec::new();
    for (s, n, h, p) in runs {
        if let Some(last) = out.last_mut() {
            if last.0 + last.1 == s && last.2 + last.1 == h && last.3 == p {
                last.1 += n;
                continue;
            }
        }
        out.push((s, n, h, p));
    }
    out
}

/// The leaves as normalized page runs (comparable with `Model::normalized`).
pub fn leaves_to_runs(leaves: &[Leaf]) -> Vec<(u64, u64, u64, Perms)> {
    merge(
        leaves
            .iter()
            .map(|l| (l.gpa >> 12, l.size.base_pages(), l.hpa >> 12, l.perms)),
    )
}

/// Checks `translate` of `gpa` against the model.
pub fn check_translate(mem: &TestMemory, pt: &GStageTable, model: &Model, gpa: u64) {
    let t = pt.translate(mem, GuestPhysAddr::new(gpa));
    let want = model.lookup(gpa >> 12);
    match (t, want) {
        (None, None) => {}
        (Some(t), Some((hpage, perms))) => {
            assert_eq!(t.hpa.bits(), (hpage << 12) | (gpa & 0xfff), "gpa {gpa:#x}");
            assert_eq!(t.perms, perms, "gpa {gpa:#x}");
        }
        (t, w) => panic!("gpa {gpa:#x}: table says {t:?}, model says {w:?}"),
    }
}
