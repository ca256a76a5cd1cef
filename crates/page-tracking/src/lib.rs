//! # page-tracking
//!
//! Tracks the owner and state of every 4 KiB page of RAM, from boot on.
//!
//! Salus reserves one [`Entry`] (32 bits) per page of the contiguous RAM
//! range it manages, hands that slice to [`PageMap::new`] together with the
//! range and an initial state (a simple fill: it runs under emulation at
//! boot), then marks its own and the firmware's pages with
//! [`PageMap::set_range`]. From then on ownership changes go through
//! [`PageMap::transition`] or the typed CoVE operations
//! ([`PageMap::convert_begin`], [`PageMap::convert_complete`],
//! [`PageMap::assign_to_tvm`], [`PageMap::release_from_tvm`],
//! [`PageMap::scrub_complete`], [`PageMap::reclaim`], ...), each of which
//! checks that every page of the range is in the expected source state.
//!
//! Every operation validates its arguments (overflow, 4 KiB alignment,
//! range inside the map, source state) before changing anything: on error
//! the map is left untouched. A running [`Census`] (pages per
//! [`StateKind`]) is kept up to date incrementally, so reading it is O(1);
//! its counts always sum to the number of pages in the map.
//!
//! The page life cycle for confidential VMs is described on [`PageState`].
#![no_std]
#![forbid(unsafe_code)]

mod state;

use core::fmt;

use hyp_addr::{HostPhysAddr, HostRange, PageSize, PAGE_SIZE};

pub use state::{Entry, PageState, StateKind, TvmId, TvmPageKind};

/// Why an operation on the [`PageMap`] was refused. Nothing was changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// The range (or address) is not entirely inside the tracked RAM.
    OutOfRange,
    /// Start or length is not a multiple of 4 KiB.
    Misaligned,
    /// The page at `addr` is in state `found`, not the one the operation
    /// requires (the first such page of the range is reported).
    WrongState {
        addr: HostPhysAddr,
        found: PageState,
    },
    /// `start + len` overflows a u64.
    Overflow,
    /// The storage slice handed to [`PageMap::new`] has fewer entries than
    /// [`required_entries`] asks for.
    StorageTooSmall { needed: usize },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::OutOfRange => write!(f, "range outside tracked RAM"),
            Error::Misaligned => write!(f, "range not 4 KiB aligned"),
            Error::WrongState { addr, found } => {
                write!(f, "page {addr} is in state {found:?}")
            }
            Error::Overflow => write!(f, "range end overflows"),
            Error::StorageTooSmall { needed } => {
                write!(f, "page map storage too small ({needed} entries needed)")
            }
        }
    }
}

/// Number of [`Entry`]s needed to track `ram_len` bytes (rounded up to whole
/// pages).
pub const fn required_entries(ram_len: u64) -> usize {
    let pages = ram_len / PAGE_SIZE + !ram_len.is_multiple_of(PAGE_SIZE) as u64;
    if pages > usize::MAX as u64 {
        usize::MAX
    } else {
        pages as usize
    }
}

/// Pages per [`StateKind`]; the counts always sum to [`Census::total`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Census {
    counts: [u64; StateKind::COUNT],
    total: u64,
}

impl Census {
    /// Pages currently in a state of kind `kind`.
    pub const fn count(&self, kind: StateKind) -> u64 {
        self.counts[kind.index()]
    }

    /// Pages tracked by the map.
    pub const fn total(&self) -> u64 {
        self.total
    }

    /// `(kind, count)` for every kind, in [`StateKind::ALL`] order.
    pub fn iter(&self) -> impl Iterator<Item = (StateKind, u64)> + '_ {
        StateKind::ALL.iter().map(|k| (*k, self.counts[k.index()]))
    }

    /// True if the per-kind counts add up to the total.
    pub fn is_balanced(&self) -> bool {
        self.counts.iter().try_fold(0u64, |a, c| a.checked_add(*c)) == Some(self.total)
    }

    /// Census of a sequence of states (e.g. to recount a map from scratch).
    pub fn recount<I: IntoIterator<Item = PageState>>(states: I) -> Census {
        let mut c = Census::default();
        for s in states {
            c.counts[s.kind().index()] += 1;
            c.total += 1;
        }
        c
    }

    fn add(&mut self, kind: StateKind, n: u64) {
        self.counts[kind.index()] += n;
    }

    fn sub(&mut self, kind: StateKind, n: u64) {
        self.counts[kind.index()] -= n;
    }
}

/// What [`PageMap::release_tvm`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct TvmRelease {
    /// Confidential pages moved from `Tvm(id, _)` to `Released`.
    pub released: u64,
    /// Host pages moved from `Shared(id)` back to `Host`.
    pub unshared: u64,
}

/// One bounded step of [`PageMap::release_tvm_step`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReleaseStep {
    /// The whole map has been scanned: nothing of the TVM is left.
    Done,
    /// Nothing of the TVM in the window scanned; call again.
    Scanned,
    /// These pages went `Tvm(id, _) -> Released` (to be scrubbed).
    Released(HostRange),
    /// These pages went `Shared(id) -> Host`.
    Unshared(HostRange),
}

/// The state of every 4 KiB page of one contiguous RAM range.
pub struct PageMap<'a> {
    entries: &'a mut [Entry],
    ram: HostRange,
    census: Census,
}

impl fmt::Debug for PageMap<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PageMap")
            .field("ram", &self.ram)
            .field("census", &self.census)
            .finish()
    }
}

impl<'a> PageMap<'a> {
    /// Builds a map of `ram` with every page in state `initial`, using the
    /// first [`required_entries`]`(ram.len)` entries of `storage` (whose
    /// previous contents are overwritten).
    ///
    /// `ram` must be 4 KiB aligned in start and length and must not wrap.
    pub fn new(
        storage: &'a mut [Entry],
        ram: HostRange,
        initial: PageState,
    ) -> Result<Self, Error> {
        ram.start
            .bits()
            .checked_add(ram.len)
            .ok_or(Error::Overflow)?;
        if !ram.start.is_aligned(PageSize::Size4K) || !ram.len.is_multiple_of(PAGE_SIZE) {
            return Err(Error::Misaligned);
        }
        let needed = required_entries(ram.len);
        if storage.len() < needed {
            return Err(Error::StorageTooSmall { needed });
        }
        let entries = &mut storage[..needed];
        entries.fill(Entry::encode(initial));
        let mut census = Census {
            total: needed as u64,
            ..Census::default()
        };
        census.add(initial.kind(), needed as u64);
        Ok(Self {
            entries,
            ram,
            census,
        })
    }

    /// The RAM range tracked.
    pub fn ram(&self) -> HostRange {
        self.ram
    }

    /// Number of pages tracked.
    pub fn num_pages(&self) -> u64 {
        self.entries.len() as u64
    }

    /// Pages per state kind (O(1), kept up to date by every operation).
    pub fn census(&self) -> Census {
        self.census
    }

    /// State of the page containing `addr` (which need not be aligned).
    pub fn state(&self, addr: HostPhysAddr) -> Result<PageState, Error> {
        if !self.ram.contains(addr) {
            return Err(Error::OutOfRange);
        }
        let idx = ((addr.bits() - self.ram.start.bits()) / PAGE_SIZE) as usize;
        Ok(self.state_at(idx))
    }

    /// Marks every page of `range` as `new`, whatever its state (for boot
    /// time assignment: Salus's image, the firmware, the page map itself).
    pub fn set_range(&mut self, range: HostRange, new: PageState) -> Result<(), Error> {
        let (first, n) = self.span(range)?;
        let enc = Entry::encode(new);
        for i in first..first + n {
            let old = self.state_at(i);
            self.census.sub(old.kind(), 1);
            self.entries[i] = enc;
        }
        self.census.add(new.kind(), n as u64);
        Ok(())
    }

    /// Moves every page of `range` from `from` to `to`. Fails with
    /// [`Error::WrongState`] (changing nothing) if any page is not in `from`.
    pub fn transition(
        &mut self,
        range: HostRange,
        from: PageState,
        to: PageState,
    ) -> Result<(), Error> {
        let (first, n) = self.span(range)?;
        let want = Entry::encode(from);
        if let Some(off) = self.entries[first..first + n]
            .iter()
            .position(|e| *e != want)
        {
            return Err(self.wrong_state(first + off));
        }
        self.entries[first..first + n].fill(Entry::encode(to));
        self.census.sub(from.kind(), n as u64);
        self.census.add(to.kind(), n as u64);
        Ok(())
    }

    /// Like [`transition`](Self::transition), with the source states given
    /// by a predicate.
    pub fn transition_if<F>(
        &mut self,
        range: HostRange,
        accept: F,
        to: PageState,
    ) -> Result<(), Error>
    where
        F: Fn(PageState) -> bool,
    {
        let (first, n) = self.span(range)?;
        if let Some(i) = (first..first + n).find(|&i| !accept(self.state_at(i))) {
            return Err(self.wrong_state(i));
        }
        self.set_range(range, to)
    }

    // ----- typed CoVE transitions -------------------------------------

    /// The host asks to convert `range` to confidential memory:
    /// `Host -> ConvertPending`.
    pub fn convert_begin(&mut self, range: HostRange) -> Result<(), Error> {
        self.transition(range, PageState::Host, PageState::ConvertPending)
    }

    /// The host's TLBs have been fenced: `ConvertPending -> Converted`.
    pub fn convert_complete(&mut self, range: HostRange) -> Result<(), Error> {
        self.transition(range, PageState::ConvertPending, PageState::Converted)
    }

    /// Gives free confidential pages to a TVM: `Converted -> Tvm(id, kind)`.
    pub fn assign_to_tvm(
        &mut self,
        range: HostRange,
        id: TvmId,
        kind: TvmPageKind,
    ) -> Result<(), Error> {
        self.transition(range, PageState::Converted, PageState::Tvm(id, kind))
    }

    /// Takes pages back from TVM `id` (any use): `Tvm(id, _) -> Released`.
    pub fn release_from_tvm(&mut self, range: HostRange, id: TvmId) -> Result<(), Error> {
        self.transition_if(
            range,
            |s| matches!(s, PageState::Tvm(owner, _) if owner == id),
            PageState::Released,
        )
    }

    /// Released pages have been zeroed: `Released -> Converted`.
    pub fn scrub_complete(&mut self, range: HostRange) -> Result<(), Error> {
        self.transition(range, PageState::Released, PageState::Converted)
    }

    /// Starts returning free confidential pages to the host:
    /// `Converted -> Reclaiming`.
    pub fn reclaim_begin(&mut self, range: HostRange) -> Result<(), Error> {
        self.transition(range, PageState::Converted, PageState::Reclaiming)
    }

    /// Finishes a reclaim: `Reclaiming -> Host`.
    pub fn reclaim_complete(&mut self, range: HostRange) -> Result<(), Error> {
        self.transition(range, PageState::Reclaiming, PageState::Host)
    }

    /// Returns free confidential pages to the host in one step (the caller
    /// has made sure they hold nothing secret): `Converted -> Host`.
    pub fn reclaim(&mut self, range: HostRange) -> Result<(), Error> {
        self.transition(range, PageState::Converted, PageState::Host)
    }

    /// Shares host pages into TVM `id`: `Host -> Shared(id)`.
    pub fn share_with_tvm(&mut self, range: HostRange, id: TvmId) -> Result<(), Error> {
        self.transition(range, PageState::Host, PageState::Shared(id))
    }

    /// Ends sharing: `Shared(id) -> Host`.
    pub fn unshare_from_tvm(&mut self, range: HostRange, id: TvmId) -> Result<(), Error> {
        self.transition(range, PageState::Shared(id), PageState::Host)
    }

    /// On TVM destruction: every `Tvm(id, _)` page becomes `Released` and
    /// every `Shared(id)` page goes back to `Host`. Scans the whole map.
    pub fn release_tvm(&mut self, id: TvmId) -> TvmRelease {
        let shared = Entry::encode(PageState::Shared(id));
        let host = Entry::encode(PageState::Host);
        let released_e = Entry::encode(PageState::Released);
        let mut r = TvmRelease::default();
        for e in self.entries.iter_mut() {
            if *e == shared {
                *e = host;
                r.unshared += 1;
            } else if matches!(e.decode(), Some(PageState::Tvm(owner, _)) if owner == id) {
                *e = released_e;
                r.released += 1;
            }
        }
        self.census.sub(StateKind::Shared, r.unshared);
        self.census.add(StateKind::Host, r.unshared);
        self.census.sub(StateKind::Tvm, r.released);
        self.census.add(StateKind::Released, r.released);
        r
    }

    /// [`release_tvm`](Self::release_tvm) in bounded steps, so a caller can
    /// drop its locks between them: looks at no more than `max_scan`
    /// entries from `*cursor` and changes at most `max_pages` consecutive
    /// pages of one kind (the TVM's own, or shared with it). `*cursor`
    /// advances; start it at 0. Repeating until [`ReleaseStep::Done`] does
    /// what `release_tvm` does, provided no new page is given to `id`
    /// meanwhile.
    pub fn release_tvm_step(
        &mut self,
        id: TvmId,
        cursor: &mut usize,
        max_scan: usize,
        max_pages: usize,
    ) -> ReleaseStep {
        let shared = Entry::encode(PageState::Shared(id));
        let owned = |e: &Entry| matches!(e.decode(), Some(PageState::Tvm(o, _)) if o == id);
        let len = self.entries.len();
        let start = (*cursor).min(len);
        let window_end = start.saturating_add(max_scan.max(1)).min(len);
        let Some(off) = self.entries[start..window_end]
            .iter()
            .position(|e| *e == shared || owned(e))
        else {
            *cursor = window_end;
            return if window_end == len {
                ReleaseStep::Done
            } else {
                ReleaseStep::Scanned
            };
        };
        let first = start + off;
        let is_shared = self.entries[first] == shared;
        let limit = first.saturating_add(max_pages.max(1)).min(len);
        let n = self.entries[first..limit]
            .iter()
            .take_while(|e| if is_shared { **e == shared } else { owned(e) })
            .count();
        *cursor = first + n;
        let range = HostRange {
            start: HostPhysAddr::new(self.ram.start.bits() + first as u64 * PAGE_SIZE),
            len: n as u64 * PAGE_SIZE,
        };
        let (to, from_kind, step) = if is_shared {
            (
                PageState::Host,
                StateKind::Shared,
                ReleaseStep::Unshared(range),
            )
        } else {
            (
                PageState::Released,
                StateKind::Tvm,
                ReleaseStep::Released(range),
            )
        };
        self.entries[first..first + n].fill(Entry::encode(to));
        self.census.sub(from_kind, n as u64);
        self.census.add(to.kind(), n as u64);
        step
    }

    // ----- queries -----------------------------------------------------

    /// Addresses of the pages in exactly `state`, in ascending order.
    pub fn pages_in_state(&self, state: PageState) -> impl Iterator<Item = HostPhysAddr> + '_ {
        let want = Entry::encode(state);
        let base = self.ram.start.bits();
        self.entries
            .iter()
            .enumerate()
            .filter(move |(_, e)| **e == want)
            .map(move |(i, _)| HostPhysAddr::new(base + i as u64 * PAGE_SIZE))
    }

    /// Maximal runs of consecutive pages in the same state, in ascending
    /// order.
    pub fn runs(&self) -> Runs<'_> {
        Runs {
            entries: self.entries,
            base: self.ram.start.bits(),
            next: 0,
        }
    }

    /// The lowest run of `pages` consecutive pages all in `state` whose
    /// start is aligned to `align`. `None` if there is none or `pages` is 0.
    pub fn find_run(&self, state: PageState, pages: u64, align: PageSize) -> Option<HostRange> {
        if pages == 0 || pages > self.num_pages() {
            return None;
        }
        let want = Entry::encode(state);
        let n = pages as usize;
        let base = self.ram.start.bits();
        // First index >= i whose address is aligned.
        let aligned_from = |i: usize| -> Option<usize> {
            let addr = base.checked_add(i as u64 * PAGE_SIZE)?;
            let up = HostPhysAddr::new(addr).checked_align_up(align)?;
            Some(((up.bits() - base) / PAGE_SIZE) as usize)
        };
        let mut cand = aligned_from(0)?;
        while cand.checked_add(n)? <= self.entries.len() {
            match self.entries[cand..cand + n]
                .iter()
                .rposition(|e| *e != want)
            {
                None => {
                    let start = HostPhysAddr::new(base + cand as u64 * PAGE_SIZE);
                    return HostRange::new(start, pages * PAGE_SIZE);
                }
                Some(bad) => cand = aligned_from(cand + bad + 1)?,
            }
        }
        None
    }

    // ----- internals ---------------------------------------------------

    fn state_at(&self, idx: usize) -> PageState {
        // Every entry of the map was written by `Entry::encode`, so it
        // decodes; `Firmware` is the conservative answer otherwise.
        self.entries[idx].decode().unwrap_or(PageState::Firmware)
    }

    fn wrong_state(&self, idx: usize) -> Error {
        Error::WrongState {
            addr: HostPhysAddr::new(self.ram.start.bits() + idx as u64 * PAGE_SIZE),
            found: self.state_at(idx),
        }
    }

    /// Validates `range`; returns (first index, number of pages).
    fn span(&self, range: HostRange) -> Result<(usize, usize), Error> {
        let start = range.start.bits();
        let end = start.checked_add(range.len).ok_or(Error::Overflow)?;
        if !start.is_multiple_of(PAGE_SIZE) || !range.len.is_multiple_of(PAGE_SIZE) {
            return Err(Error::Misaligned);
        }
        if start < self.ram.start.bits() || end > self.ram.end().bits() {
            return Err(Error::OutOfRange);
        }
        let first = ((start - self.ram.start.bits()) / PAGE_SIZE) as usize;
        Ok((first, (range.len / PAGE_SIZE) as usize))
    }
}

/// Iterator returned by [`PageMap::runs`].
pub struct Runs<'m> {
    entries: &'m [Entry],
    base: u64,
    next: usize,
}

impl Iterator for Runs<'_> {
    type Item = (HostRange, PageState);

    fn next(&mut self) -> Option<Self::Item> {
        let entries = self.entries;
        let first = self.next;
        let e = *entries.get(first)?;
        let len = entries[first..]
            .iter()
            .position(|x| *x != e)
            .unwrap_or(entries.len() - first);
        self.next = first + len;
        let start = HostPhysAddr::new(self.base + first as u64 * PAGE_SIZE);
        let range = HostRange {
            start,
            len: len as u64 * PAGE_SIZE,
        };
        Some((range, e.decode().unwrap_or(PageState::Firmware)))
    }
}

#[cfg(test)]
mod tests;
