//! G-stage (stage-2) page tables for the RISC-V hypervisor extension.
//!
//! This crate owns the *format and manipulation* of the guest-physical to
//! host-physical translation tables pointed to by `hgatp` (Sv39x4 and
//! Sv48x4, see the privileged spec, "Two-Stage Address Translation"):
//! building and tearing down tables, mapping/unmapping with the largest
//! leaves possible, splitting huge leaves, software walks, and the `hgatp`
//! encoding. The raw PTE format lives in the pure [`pte`] module so that
//! other users of the same format (the IOMMU) can reuse it.
//!
//! It does *not* own the memory the tables live in: every table page comes
//! from, and goes back to, a [`PageTableMemory`] supplied by the caller, which
//! is also the only way entries are read and written (so the crate needs no
//! `unsafe`). It does not own TLB maintenance either: after any change the
//! caller must issue `HFENCE.GVMA` (for the VMID) before relying on it, and
//! table pages handed to [`PageTableMemory::free_table`] must not be reused
//! until that fence has been done.
//!
//! Invariants kept by every operation:
//! * leaves carry V, U, A, D and the requested R/W/X; non-leaf entries only V;
//! * no non-root table is ever left without a valid entry (empty tables are
//!   freed), so `AlreadyMapped` is decided by the presence of any entry;
//! * a failing operation leaves the tables exactly as they were.
#![no_std]
#![forbid(unsafe_code)]

pub mod pool;
pub mod pte;

use hyp_addr::{GuestPhysAddr, HostPhysAddr, PageSize};
pub use pte::*;

/// Bytes of a non-root table (512 entries).
pub const TABLE_BYTES: u64 = 4096;
/// Bytes of an x4 root table (2048 entries).
pub const ROOT_TABLE_BYTES: u64 = 16384;
/// Position of the MODE field of `hgatp`.
pub const HGATP_MODE_SHIFT: u32 = 60;
/// Position of the VMID field of `hgatp`.
pub const HGATP_VMID_SHIFT: u32 = 44;
/// VMID field width mask (VMIDLEN is at most 14 on RV64).
pub const HGATP_VMID_MASK: u64 = 0x3fff;
/// PPN field of `hgatp`.
pub const HGATP_PPN_MASK: u64 = (1 << 44) - 1;

/// Where the page-table pages live and how their entries are accessed.
pub trait PageTableMemory {
    /// A zeroed table of `bytes` (4096, or 16384 for the x4 root), aligned to `bytes`. None when out of pages.
    fn alloc_table(&mut self, bytes: u64) -> Option<HostPhysAddr>;
    /// Gives back a table obtained from `alloc_table` with the same `bytes`.
    fn free_table(&mut self, table: HostPhysAddr, bytes: u64);
    /// Read/write the 8-byte entry at `entry_addr` (inside a table this memory handed out).
    fn read_pte(&self, entry_addr: HostPhysAddr) -> u64;
    fn write_pte(&mut self, entry_addr: HostPhysAddr, value: u64);
}

/// G-stage translation mode (the value of `hgatp.MODE`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GStageMode {
    /// Three levels, 41-bit guest-physical addresses.
    Sv39x4,
    /// Four levels, 50-bit guest-physical addresses.
    Sv48x4,
}

impl GStageMode {
    /// Encoding of the mode in `hgatp.MODE`.
    pub const fn hgatp_mode(self) -> u64 {
        match self {
            GStageMode::Sv39x4 => 8,
            GStageMode::Sv48x4 => 9,
        }
    }

    /// Number of table levels.
    pub const fn levels(self) -> usize {
        match self {
            GStageMode::Sv39x4 => 3,
            GStageMode::Sv48x4 => 4,
        }
    }

    /// Width of a guest-physical address.
    pub const fn gpa_bits(self) -> u32 {
        match self {
            GStageMode::Sv39x4 => 41,
            GStageMode::Sv48x4 => 50,
        }
    }

    /// One past the highest translatable guest-physical address.
    pub const fn gpa_limit(self) -> u64 {
        1 << self.gpa_bits()
    }

    /// Largest leaf the mode can express (a root-level leaf).
    pub const fn largest_page_size(self) -> PageSize {
        match self {
            GStageMode::Sv39x4 => PageSize::Size1G,
            GStageMode::Sv48x4 => PageSize::Size512G,
        }
    }

    const fn top_level(self) -> usize {
        self.levels() - 1
    }
}

/// Why an operation failed. Whatever the error, the tables are unchanged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Error {
    /// `PageTableMemory::alloc_table` returned `None`.
    OutOfTables,
    /// An address or length is not aligned to the page size involved.
    Misaligned,
    /// The GPA range exceeds the mode's width, the HPA range exceeds what a
    /// PTE can hold, or the page size is larger than the mode allows.
    OutOfRange,
    /// Part of the target GPA range is already mapped.
    AlreadyMapped,
    /// Part of the GPA range to unmap is not mapped.
    NotMapped,
    /// W without R, or no permission at all.
    InvalidPerms,
}

/// Result of a software walk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Translation {
    /// Host-physical address of the translated GPA itself (offset included).
    pub hpa: HostPhysAddr,
    pub perms: Perms,
    /// Size of the leaf that maps it.
    pub size: PageSize,
}

/// A G-stage page table: an x4 root table plus the tables below it.
///
/// Dropping it leaks the table pages; use [`GStageTable::destroy`].
#[derive(Debug, PartialEq, Eq)]
pub struct GStageTable {
    root: HostPhysAddr,
    mode: GStageMode,
}

const fn level_shift(level: usize) -> u32 {
    12 + 9 * level as u32
}

const fn level_bytes(level: usize) -> u64 {
    1 << level_shift(level)
}

const fn phys_limit() -> u64 {
    1 << PHYS_ADDR_BITS
}

/// Parameters of one map operation, shared by the recursion.
struct MapReq {
    gpa: u64,
    end: u64,
    hpa: u64,
    max_leaf_level: usize,
    flags: u64,
}

/// Splits done by one unmap, so that they can be undone on failure.
/// At most `levels - 1` splits per boundary, two boundaries.
struct SplitLog {
    entries: [(HostPhysAddr, u64, HostPhysAddr); 6],
    len: usize,
}

impl SplitLog {
    const fn new() -> Self {
        SplitLog {
            entries: [(HostPhysAddr::new(0), 0, HostPhysAddr::new(0)); 6],
            len: 0,
        }
    }

    fn push(&mut self, entry: HostPhysAddr, old: u64, table: HostPhysAddr) {
        self.entries[self.len] = (entry, old, table);
        self.len += 1;
    }

    /// Puts the original leaves back and frees the tables, newest first.
    fn undo(&self, mem: &mut impl PageTableMemory) {
        for &(entry, old, table) in self.entries[..self.len].iter().rev() {
            mem.write_pte(entry, old);
            mem.free_table(table, TABLE_BYTES);
        }
    }
}

impl GStageTable {
    /// Allocates an empty root table.
    pub fn new(mem: &mut impl PageTableMemory, mode: GStageMode) -> Result<Self, Error> {
        let root = mem
            .alloc_table(ROOT_TABLE_BYTES)
            .ok_or(Error::OutOfTables)?;
        debug_assert!(root.bits() & (ROOT_TABLE_BYTES - 1) == 0);
        Ok(GStageTable { root, mode })
    }

    pub fn root(&self) -> HostPhysAddr {
        self.root
    }

    pub fn mode(&self) -> GStageMode {
        self.mode
    }

    /// `hgatp` value for this table: MODE<<60 | VMID<<44 | PPN(root).
    /// `vmid` is truncated to the 14 bits of the field.
    pub fn hgatp(&self, vmid: u16) -> u64 {
        (self.mode.hgatp_mode() << HGATP_MODE_SHIFT)
            | ((vmid as u64 & HGATP_VMID_MASK) << HGATP_VMID_SHIFT)
            | (self.root.pfn() & HGATP_PPN_MASK)
    }

    /// Maps one leaf of `size` at `gpa` to `hpa` (both aligned to `size`).
    pub fn map(
        &mut self,
        mem: &mut impl PageTableMemory,
        gpa: GuestPhysAddr,
        hpa: HostPhysAddr,
        size: PageSize,
        perms: Perms,
    ) -> Result<(), Error> {
        let flags = leaf_flags(perms)?;
        if size.level() > self.mode.top_level() {
            return Err(Error::OutOfRange);
        }
        if !gpa.is_aligned(size) || !hpa.is_aligned(size) {
            return Err(Error::Misaligned);
        }
        let end = self.check_ranges(gpa, hpa, size.bytes())?;
        self.map_checked(
            mem,
            &MapReq {
                gpa: gpa.bits(),
                end,
                hpa: hpa.bits(),
                max_leaf_level: size.level(),
                flags,
            },
        )
    }

    /// Maps `[gpa, gpa + len)` to `[hpa, hpa + len)` using the largest leaves
    /// (1G, 2M, 4K) that the alignment of both addresses allows. All inputs
    /// must be 4K-aligned. On error nothing is changed.
    pub fn map_range(
        &mut self,
        mem: &mut impl PageTableMemory,
        gpa: GuestPhysAddr,
        hpa: HostPhysAddr,
        len: u64,
        perms: Perms,
    ) -> Result<(), Error> {
        let flags = leaf_flags(perms)?;
        if !gpa.is_aligned(PageSize::Size4K)
            || !hpa.is_aligned(PageSize::Size4K)
            || len & (TABLE_BYTES - 1) != 0
        {
            return Err(Error::Misaligned);
        }
        let end = self.check_ranges(gpa, hpa, len)?;
        if len == 0 {
            return Ok(());
        }
        self.map_checked(
            mem,
            &MapReq {
                gpa: gpa.bits(),
                end,
                hpa: hpa.bits(),
                max_leaf_level: PageSize::Size1G.level(),
                flags,
            },
        )
    }

    /// Removes the mapping of the 4K page at `gpa`, splitting a larger leaf
    /// covering it (the rest stays mapped). Returns the HPA it mapped to.
    pub fn unmap_4k(
        &mut self,
        mem: &mut impl PageTableMemory,
        gpa: GuestPhysAddr,
    ) -> Result<HostPhysAddr, Error> {
        if !gpa.is_aligned(PageSize::Size4K) {
            return Err(Error::Misaligned);
        }
        self.check_gpa_range(gpa, TABLE_BYTES)?;
        let t = self.translate(mem, gpa).ok_or(Error::NotMapped)?;
        self.unmap_range(mem, gpa, TABLE_BYTES)?;
        Ok(t.hpa)
    }

    /// Removes the mappings of `[gpa, gpa + len)` (4K-aligned). Leaves fully
    /// inside the range are removed whole; leaves straddling an end of the
    /// range are split first. Every page of the range must be mapped
    /// (`NotMapped` otherwise). On error nothing is changed.
    pub fn unmap_range(
        &mut self,
        mem: &mut impl PageTableMemory,
        gpa: GuestPhysAddr,
        len: u64,
    ) -> Result<(), Error> {
        if !gpa.is_aligned(PageSize::Size4K) || len & (TABLE_BYTES - 1) != 0 {
            return Err(Error::Misaligned);
        }
        let end = self.check_gpa_range(gpa, len)?;
        if len == 0 {
            return Ok(());
        }
        let top = self.mode.top_level();
        let start = gpa.bits();
        if !range_mapped(mem, self.root, top, self.entries(top), start, end) {
            return Err(Error::NotMapped);
        }
        let mut log = SplitLog::new();
        if let Err(e) = self
            .split_at(mem, start, &mut log)
            .and_then(|()| self.split_at(mem, end, &mut log))
        {
            log.undo(mem);
            return Err(e);
        }
        self.unmap_rec(mem, self.root, top, start, end);
        Ok(())
    }

    /// Software walk of `gpa`.
    pub fn translate(&self, mem: &impl PageTableMemory, gpa: GuestPhysAddr) -> Option<Translation> {
        let gpa = gpa.bits();
        if gpa >= self.mode.gpa_limit() {
            return None;
        }
        let mut table = self.root;
        let mut level = self.mode.top_level();
        loop {
            let pte = Pte::from_bits(mem.read_pte(self.entry_addr(table, level, gpa)));
            if pte.is_leaf() {
                let size = PageSize::from_level(level)?;
                let offset = gpa & (size.bytes() - 1);
                return Some(Translation {
                    hpa: HostPhysAddr::new(pte.addr().bits() + offset),
                    perms: pte.perms(),
                    size,
                });
            }
            if !pte.is_valid() || level == 0 {
                return None;
            }
            table = pte.addr();
            level -= 1;
        }
    }

    /// For an unmapped `gpa`: the number of bytes from `gpa` to the end of
    /// the unmapped stretch its missing entry covers (so a scan can skip
    /// it); `None` if `gpa` is mapped. Beyond the mode's range the rest of
    /// the address space counts as one unmapped stretch.
    pub fn unmapped_span(&self, mem: &impl PageTableMemory, gpa: GuestPhysAddr) -> Option<u64> {
        let gpa = gpa.bits();
        if gpa >= self.mode.gpa_limit() {
            return Some(u64::MAX - gpa);
        }
        let mut table = self.root;
        let mut level = self.mode.top_level();
        loop {
            let pte = Pte::from_bits(mem.read_pte(self.entry_addr(table, level, gpa)));
            if pte.is_leaf() {
                return None;
            }
            if !pte.is_valid() || level == 0 {
                let covered = 1u64 << (12 + 9 * level as u32);
                return Some(covered - (gpa & (covered - 1)));
            }
            table = pte.addr();
            level -= 1;
        }
    }

    /// How many table pages mapping `[gpa, gpa + len)` with leaves of
    /// `size` would allocate (a dry run of [`map_range`](Self::map_range)
    /// limited to `size`). A caller that has this many tables at hand can
    /// map without any failure half way. `AlreadyMapped` if any page of the
    /// range is mapped; `Misaligned`/`OutOfRange` as for `map`.
    pub fn tables_needed(
        &self,
        mem: &impl PageTableMemory,
        gpa: GuestPhysAddr,
        len: u64,
        size: PageSize,
    ) -> Result<u64, Error> {
        if size.level() > self.mode.top_level() {
            return Err(Error::OutOfRange);
        }
        if !gpa.is_aligned(size) || len & (size.bytes() - 1) != 0 {
            return Err(Error::Misaligned);
        }
        let end = self.check_gpa_range(gpa, len)?;
        let top = self.mode.top_level();
        self.need_rec(mem, Some(self.root), top, gpa.bits(), end, size.level())
    }

    /// Table pages [`unmap_range`](Self::unmap_range) of a range starting
    /// or ending at `boundary` allocates to split the leaf covering it.
    pub fn split_tables_needed(&self, mem: &impl PageTableMemory, boundary: GuestPhysAddr) -> u64 {
        let boundary = boundary.bits();
        if boundary >= self.mode.gpa_limit() {
            return 0;
        }
        let mut table = self.root;
        let mut level = self.mode.top_level();
        loop {
            let pte = Pte::from_bits(mem.read_pte(self.entry_addr(table, level, boundary)));
            if !pte.is_valid() || level == 0 {
                return 0;
            }
            if pte.is_leaf() {
                // One new table per level down to the first level whose
                // leaves the boundary is aligned to.
                let mut n = 0;
                let mut l = level;
                while l > 0 && boundary & (level_bytes(l) - 1) != 0 {
                    n += 1;
                    l -= 1;
                }
                return n;
            }
            table = pte.addr();
            level -= 1;
        }
    }

    /// Frees every table page (not the mapped memory).
    pub fn destroy(self, mem: &mut impl PageTableMemory) {
        let top = self.mode.top_level();
        self.free_subtree(mem, self.root, top);
    }

    // ---- internals --------------------------------------------------------

    /// Entries of a table at `level` (the root has four times more).
    fn entries(&self, level: usize) -> u64 {
        if level == self.mode.top_level() {
            ROOT_TABLE_BYTES / 8
        } else {
            TABLE_BYTES / 8
        }
    }

    fn entry_addr(&self, table: HostPhysAddr, level: usize, gpa: u64) -> HostPhysAddr {
        let index = (gpa >> level_shift(level)) & (self.entries(level) - 1);
        HostPhysAddr::new(table.bits() + index * 8)
    }

    /// Checks `[gpa, gpa + len)` fits the mode; returns its end.
    fn check_gpa_range(&self, gpa: GuestPhysAddr, len: u64) -> Result<u64, Error> {
        match gpa.bits().checked_add(len) {
            Some(end) if end <= self.mode.gpa_limit() => Ok(end),
            _ => Err(Error::OutOfRange),
        }
    }

    /// Checks both ranges; returns the GPA end.
    fn check_ranges(&self, gpa: GuestPhysAddr, hpa: HostPhysAddr, len: u64) -> Result<u64, Error> {
        let end = self.check_gpa_range(gpa, len)?;
        match hpa.bits().checked_add(len) {
            Some(hend) if hend <= phys_limit() => Ok(end),
            _ => Err(Error::OutOfRange),
        }
    }

    /// Counts the tables mapping `[start, end)` with leaves at `leaf_level`
    /// needs below `table` (`None`: a table that does not exist yet).
    fn need_rec(
        &self,
        mem: &impl PageTableMemory,
        table: Option<HostPhysAddr>,
        level: usize,
        start: u64,
        end: u64,
        leaf_level: usize,
    ) -> Result<u64, Error> {
        let size = level_bytes(level);
        let mut n = 0u64;
        let mut cur = start;
        while cur < end {
            let block = cur & !(size - 1);
            let sub_end = end.min(block + size);
            let pte = match table {
                Some(t) => Pte::from_bits(mem.read_pte(self.entry_addr(t, level, cur))),
                None => Pte::from_bits(0),
            };
            if level == leaf_level {
                if pte.is_valid() {
                    return Err(Error::AlreadyMapped);
                }
            } else if pte.is_leaf() {
                return Err(Error::AlreadyMapped);
            } else if pte.is_table() {
                n += self.need_rec(mem, Some(pte.addr()), level - 1, cur, sub_end, leaf_level)?;
            } else {
                n += 1 + self.need_rec(mem, None, level - 1, cur, sub_end, leaf_level)?;
            }
            cur = sub_end;
        }
        Ok(n)
    }

    /// Runs the map recursion; on failure removes what it had mapped.
    fn map_checked(&mut self, mem: &mut impl PageTableMemory, req: &MapReq) -> Result<(), Error> {
        let top = self.mode.top_level();
        match self.map_rec(mem, req, self.root, top, req.gpa, req.end) {
            Ok(()) => Ok(()),
            Err((e, failed_at)) => {
                // [req.gpa, failed_at) was mapped by this call and only by it
                // (anything already there would have failed earlier), in
                // whole leaves; empty tables left on the failure path were
                // freed by the recursion itself.
                if failed_at > req.gpa {
                    self.unmap_rec(mem, self.root, top, req.gpa, failed_at);
                }
                Err(e)
            }
        }
    }

    /// Maps `[start, end)` (inside the span of `table`) in increasing order.
    /// On error returns the first GPA not mapped: everything of the request
    /// below it is mapped.
    fn map_rec(
        &mut self,
        mem: &mut impl PageTableMemory,
        req: &MapReq,
        table: HostPhysAddr,
        level: usize,
        start: u64,
        end: u64,
    ) -> Result<(), (Error, u64)> {
        let size = level_bytes(level);
        let mut cur = start;
        while cur < end {
            let block = cur & !(size - 1);
            let sub_end = end.min(block + size);
            let entry = self.entry_addr(table, level, cur);
            let pte = Pte::from_bits(mem.read_pte(entry));
            let hpa = req.hpa + (cur - req.gpa);
            if level <= req.max_leaf_level
                && cur == block
                && sub_end == block + size
                && hpa & (size - 1) == 0
            {
                if pte.is_valid() {
                    return Err((Error::AlreadyMapped, cur));
                }
                mem.write_pte(entry, Pte::leaf(HostPhysAddr::new(hpa), req.flags).bits());
            } else {
                if level == 0 {
                    // Unreachable with 4K-aligned inputs.
                    return Err((Error::Misaligned, cur));
                }
                let (child, fresh) = if !pte.is_valid() {
                    let t = mem
                        .alloc_table(TABLE_BYTES)
                        .ok_or((Error::OutOfTables, cur))?;
                    mem.write_pte(entry, Pte::table(t).bits());
                    (t, true)
                } else if pte.is_table() {
                    (pte.addr(), false)
                } else {
                    return Err((Error::AlreadyMapped, cur));
                };
                if let Err((e, at)) = self.map_rec(mem, req, child, level - 1, cur, sub_end) {
                    if fresh && at == cur {
                        // Nothing went into the new table: take it back.
                        mem.write_pte(entry, 0);
                        mem.free_table(child, TABLE_BYTES);
                    }
                    return Err((e, at));
                }
            }
            cur = sub_end;
        }
        Ok(())
    }

    /// Splits leaves covering `boundary` until it is a leaf boundary.
    fn split_at(
        &mut self,
        mem: &mut impl PageTableMemory,
        boundary: u64,
        log: &mut SplitLog,
    ) -> Result<(), Error> {
        if boundary >= self.mode.gpa_limit() {
            return Ok(());
        }
        let mut table = self.root;
        let mut level = self.mode.top_level();
        loop {
            let entry = self.entry_addr(table, level, boundary);
            let pte = Pte::from_bits(mem.read_pte(entry));
            if !pte.is_valid() || level == 0 {
                return Ok(());
            }
            if pte.is_leaf() {
                if boundary & (level_bytes(level) - 1) == 0 {
                    return Ok(());
                }
                let new = mem.alloc_table(TABLE_BYTES).ok_or(Error::OutOfTables)?;
                let step = level_bytes(level - 1) >> 12;
                for i in 0..TABLE_BYTES / 8 {
                    let child = pte.with_ppn(pte.ppn() + i * step);
                    mem.write_pte(HostPhysAddr::new(new.bits() + i * 8), child.bits());
                }
                // The new table is complete before it becomes visible.
                mem.write_pte(entry, Pte::table(new).bits());
                log.push(entry, pte.bits(), new);
                table = new;
            } else {
                table = pte.addr();
            }
            level -= 1;
        }
    }

    /// Removes every mapping in `[start, end)`, freeing tables that become
    /// empty. Leaves must not straddle the range ends (split first).
    fn unmap_rec(
        &mut self,
        mem: &mut impl PageTableMemory,
        table: HostPhysAddr,
        level: usize,
        start: u64,
        end: u64,
    ) {
        let size = level_bytes(level);
        let mut cur = start;
        while cur < end {
            let block = cur & !(size - 1);
            let sub_end = end.min(block + size);
            let whole = cur == block && sub_end == block + size;
            let entry = self.entry_addr(table, level, cur);
            let pte = Pte::from_bits(mem.read_pte(entry));
            if pte.is_leaf() {
                debug_assert!(whole, "unmap_rec over a straddling leaf");
                mem.write_pte(entry, 0);
            } else if pte.is_table() && level > 0 {
                let child = pte.addr();
                if whole {
                    mem.write_pte(entry, 0);
                    self.free_subtree(mem, child, level - 1);
                } else {
                    self.unmap_rec(mem, child, level - 1, cur, sub_end);
                    if table_empty(mem, child) {
                        mem.write_pte(entry, 0);
                        mem.free_table(child, TABLE_BYTES);
                    }
                }
            }
            cur = sub_end;
        }
    }

    /// Frees `table` (at `level`) and all tables below it.
    fn free_subtree(&self, mem: &mut impl PageTableMemory, table: HostPhysAddr, level: usize) {
        if level > 0 {
            for i in 0..self.entries(level) {
                let pte = Pte::from_bits(mem.read_pte(HostPhysAddr::new(table.bits() + i * 8)));
                if pte.is_table() {
                    self.free_subtree(mem, pte.addr(), level - 1);
                }
            }
        }
        let bytes = if level == self.mode.top_level() {
            ROOT_TABLE_BYTES
        } else {
            TABLE_BYTES
        };
        mem.free_table(table, bytes);
    }
}

fn leaf_flags(perms: Perms) -> Result<u64, Error> {
    if perms.is_valid_leaf() {
        Ok(G_STAGE_LEAF_FLAGS | perms.to_pte_bits())
    } else {
        Err(Error::InvalidPerms)
    }
}

/// True if no entry of the (non-root) table is valid.
fn table_empty(mem: &impl PageTableMemory, table: HostPhysAddr) -> bool {
    (0..TABLE_BYTES / 8)
        .all(|i| !Pte::from_bits(mem.read_pte(HostPhysAddr::new(table.bits() + i * 8))).is_valid())
}

/// True if every page of `[start, end)` (inside the span of `table`, which
/// has `entries` entries) is mapped.
fn range_mapped(
    mem: &impl PageTableMemory,
    table: HostPhysAddr,
    level: usize,
    entries: u64,
    start: u64,
    end: u64,
) -> bool {
    let size = level_bytes(level);
    let mut cur = start;
    while cur < end {
        let block = cur & !(size - 1);
        let sub_end = end.min(block + size);
        let index = (cur >> level_shift(level)) & (entries - 1);
        let pte = Pte::from_bits(mem.read_pte(HostPhysAddr::new(table.bits() + index * 8)));
        if !pte.is_leaf()
            && (!pte.is_table()
                || level == 0
                || !range_mapped(mem, pte.addr(), level - 1, TABLE_BYTES / 8, cur, sub_end))
        {
            return false;
        }
        cur = sub_end;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes() {
        assert_eq!(GStageMode::Sv39x4.hgatp_mode(), 8);
        assert_eq!(GStageMode::Sv48x4.hgatp_mode(), 9);
        assert_eq!(GStageMode::Sv39x4.levels(), 3);
        assert_eq!(GStageMode::Sv48x4.levels(), 4);
        assert_eq!(GStageMode::Sv39x4.gpa_bits(), 41);
        assert_eq!(GStageMode::Sv48x4.gpa_bits(), 50);
        assert_eq!(GStageMode::Sv39x4.largest_page_size(), PageSize::Size1G);
        assert_eq!(GStageMode::Sv48x4.largest_page_size(), PageSize::Size512G);
    }

    #[test]
    fn hgatp_encoding() {
        let t = GStageTable {
            root: HostPhysAddr::new(0x8040_4000),
            mode: GStageMode::Sv39x4,
        };
        assert_eq!(t.hgatp(0), (8 << 60) | 0x80404);
        assert_eq!(t.hgatp(5), (8 << 60) | (5 << 44) | 0x80404);
        assert_eq!(t.hgatp(0x3fff), (8 << 60) | (0x3fff << 44) | 0x80404);
        // VMID is a 14-bit field: it never spills into MODE.
        assert_eq!(t.hgatp(0xffff) >> 58, 8 << 2);
        let t = GStageTable {
            root: HostPhysAddr::new(0x1_0000_c000),
            mode: GStageMode::Sv48x4,
        };
        assert_eq!(t.hgatp(1), 0x9000_1000_0010_000c);
    }

    #[test]
    fn x4_root_indexing() {
        let t39 = GStageTable {
            root: HostPhysAddr::new(0x10_0000),
            mode: GStageMode::Sv39x4,
        };
        // Root index is GPA[40:30], 11 bits.
        assert_eq!(t39.entries(2), 2048);
        assert_eq!(t39.entry_addr(t39.root, 2, 0).bits(), 0x10_0000);
        assert_eq!(t39.entry_addr(t39.root, 2, 1 << 30).bits(), 0x10_0008);
        assert_eq!(
            t39.entry_addr(t39.root, 2, (1 << 41) - 1).bits(),
            0x10_0000 + 2047 * 8
        );
        assert_eq!(
            t39.entry_addr(t39.root, 2, 1 << 40).bits(),
            0x10_0000 + 1024 * 8
        );
        // Lower levels: 9 bits each, GPA[29:21] and GPA[20:12].
        assert_eq!(t39.entries(1), 512);
        assert_eq!(
            t39.entry_addr(t39.root, 1, (1 << 30) - 1).bits(),
            0x10_0000 + 511 * 8
        );
        assert_eq!(
            t39.entry_addr(t39.root, 0, 0x3000).bits(),
            0x10_0000 + 3 * 8
        );
        let t48 = GStageTable {
            root: HostPhysAddr::new(0x10_0000),
            mode: GStageMode::Sv48x4,
        };
        // Root index is GPA[49:39].
        assert_eq!(t48.entries(3), 2048);
        assert_eq!(t48.entries(2), 512);
        assert_eq!(t48.entry_addr(t48.root, 3, 1 << 39).bits(), 0x10_0008);
        assert_eq!(
            t48.entry_addr(t48.root, 3, (1 << 50) - 1).bits(),
            0x10_0000 + 2047 * 8
        );
    }

    #[test]
    fn leaf_flags_rules() {
        assert_eq!(
            leaf_flags(Perms::RW),
            Ok(PTE_V | PTE_U | PTE_A | PTE_D | PTE_R | PTE_W)
        );
        assert_eq!(
            leaf_flags(Perms {
                read: false,
                write: true,
                exec: true
            }),
            Err(Error::InvalidPerms)
        );
        assert_eq!(leaf_flags(Perms::default()), Err(Error::InvalidPerms));
    }
}
