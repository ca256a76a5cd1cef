//! Page states and their compact 32-bit encoding.

use core::fmt;

/// Identifier of a confidential VM (TVM). Limited to 24 bits so that a
/// page's owner fits in one 32-bit [`Entry`].
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TvmId(u32);

impl TvmId {
    /// Largest representable id.
    pub const MAX: u32 = (1 << 24) - 1;

    /// `None` if `raw` exceeds [`TvmId::MAX`].
    pub const fn new(raw: u32) -> Option<Self> {
        if raw <= Self::MAX {
            Some(Self(raw))
        } else {
            None
        }
    }

    pub const fn raw(self) -> u32 {
        self.0
    }
}

impl fmt::Debug for TvmId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "tvm{}", self.0)
    }
}

/// What a page owned by a TVM is used for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TvmPageKind {
    /// Guest memory mapped into the TVM's confidential address space.
    Data,
    /// A page of the TVM's G-stage page table.
    PageTable,
    /// TVM or vCPU state kept by the hypervisor on the TVM's behalf.
    State,
}

impl TvmPageKind {
    pub const ALL: [TvmPageKind; 3] = [
        TvmPageKind::Data,
        TvmPageKind::PageTable,
        TvmPageKind::State,
    ];

    const fn code(self) -> u32 {
        match self {
            TvmPageKind::Data => 0,
            TvmPageKind::PageTable => 1,
            TvmPageKind::State => 2,
        }
    }

    const fn from_code(code: u32) -> Option<Self> {
        match code {
            0 => Some(TvmPageKind::Data),
            1 => Some(TvmPageKind::PageTable),
            2 => Some(TvmPageKind::State),
            _ => None,
        }
    }
}

/// Owner and state of one 4 KiB page of RAM.
///
/// The CoVE life cycle of a page handed to confidential VMs is
///
/// ```text
///  Host --convert_begin--> ConvertPending --convert_complete (after fence)--> Converted
///  Converted --assign_to_tvm--> Tvm(id, kind) --release_from_tvm--> Released
///  Released --scrub_complete (zeroed)--> Converted
///  Converted --reclaim_begin--> Reclaiming --reclaim_complete--> Host
/// ```
///
/// and a host page may be lent to a TVM without leaving the host:
/// `Host --share--> Shared(id) --unshare--> Host`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PageState {
    /// Owned by the firmware (M-mode); never touched by Salus.
    Firmware,
    /// Owned by Salus itself (code, data, heap, this page map, ...).
    Hypervisor,
    /// Owned by the host VM (non-confidential).
    Host,
    /// The host asked to convert the page to confidential; the host's TLB
    /// entries for it have not been fenced yet, so it is usable by no one.
    ConvertPending,
    /// Confidential and free: may be assigned to a TVM. Holds no TVM data.
    Converted,
    /// Confidential, owned by one TVM.
    Tvm(TvmId, TvmPageKind),
    /// A host page shared into a TVM's non-confidential address space.
    Shared(TvmId),
    /// Formerly owned by a TVM (now destroyed or which gave it back); may
    /// still hold TVM secrets and must be zeroed before any reuse.
    Released,
    /// Being returned to the host (zeroing or fencing in progress).
    Reclaiming,
}

/// The state of a page without its owner, used by the [`Census`](crate::Census).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum StateKind {
    Firmware,
    Hypervisor,
    Host,
    ConvertPending,
    Converted,
    Tvm,
    Shared,
    Released,
    Reclaiming,
}

impl StateKind {
    /// Number of kinds.
    pub const COUNT: usize = 9;

    /// All kinds in index order.
    pub const ALL: [StateKind; Self::COUNT] = [
        StateKind::Firmware,
        StateKind::Hypervisor,
        StateKind::Host,
        StateKind::ConvertPending,
        StateKind::Converted,
        StateKind::Tvm,
        StateKind::Shared,
        StateKind::Released,
        StateKind::Reclaiming,
    ];

    /// Dense index in `0..COUNT`.
    pub const fn index(self) -> usize {
        self as usize
    }
}

impl PageState {
    pub const fn kind(self) -> StateKind {
        match self {
            PageState::Firmware => StateKind::Firmware,
            PageState::Hypervisor => StateKind::Hypervisor,
            PageState::Host => StateKind::Host,
            PageState::ConvertPending => StateKind::ConvertPending,
            PageState::Converted => StateKind::Converted,
            PageState::Tvm(..) => StateKind::Tvm,
            PageState::Shared(_) => StateKind::Shared,
            PageState::Released => StateKind::Released,
            PageState::Reclaiming => StateKind::Reclaiming,
        }
    }

    /// The TVM owning or using the page, if any.
    pub const fn tvm(self) -> Option<TvmId> {
        match self {
            PageState::Tvm(id, _) | PageState::Shared(id) => Some(id),
            _ => None,
        }
    }

    /// True if the page is confidential memory (host access must be
    /// blocked, e.g. by the memory-isolation hardware).
    pub const fn is_confidential(self) -> bool {
        matches!(
            self,
            PageState::ConvertPending
                | PageState::Converted
                | PageState::Tvm(..)
                | PageState::Released
                | PageState::Reclaiming
        )
    }
}

// Encoding: bits 0..4 = tag (kind index + 1; 0 never appears in a built
// map), bits 4..8 = TvmPageKind code, bits 8..32 = TvmId.
const TAG_BITS: u32 = 4;
const TAG_MASK: u32 = (1 << TAG_BITS) - 1;
const SUB_SHIFT: u32 = 4;
const SUB_MASK: u32 = 0xf;
const ID_SHIFT: u32 = 8;

/// One page's state, packed into 32 bits (2 MiB of entries per 2 GiB of RAM).
///
/// `#[repr(transparent)]` over `u32`, so the caller may carve the storage
/// out of raw reserved memory; [`PageMap::new`](crate::PageMap::new)
/// overwrites every entry it uses, so the previous contents do not matter.
/// Entries cannot be built from arbitrary bits in safe code.
#[derive(Clone, Copy, PartialEq, Eq)]
#[repr(transparent)]
pub struct Entry(u32);

impl Entry {
    /// The entry of a `Firmware` page (a conservative placeholder, e.g. to
    /// initialise a static array).
    pub const FIRMWARE: Entry = Entry::encode(PageState::Firmware);

    pub const fn encode(state: PageState) -> Entry {
        let tag = state.kind().index() as u32 + 1;
        let (sub, id) = match state {
            PageState::Tvm(id, kind) => (kind.code(), id.raw()),
            PageState::Shared(id) => (0, id.raw()),
            _ => (0, 0),
        };
        Entry(tag | (sub << SUB_SHIFT) | (id << ID_SHIFT))
    }

    /// Decodes the entry. Entries produced by [`Entry::encode`] always
    /// decode; `None` only for bits that did not come from it.
    pub const fn decode(self) -> Option<PageState> {
        let tag = self.0 & TAG_MASK;
        let sub = (self.0 >> SUB_SHIFT) & SUB_MASK;
        let id = TvmId(self.0 >> ID_SHIFT);
        let plain = sub == 0 && id.0 == 0;
        match tag {
            1 if plain => Some(PageState::Firmware),
            2 if plain => Some(PageState::Hypervisor),
            3 if plain => Some(PageState::Host),
            4 if plain => Some(PageState::ConvertPending),
            5 if plain => Some(PageState::Converted),
            6 => match TvmPageKind::from_code(sub) {
                Some(kind) => Some(PageState::Tvm(id, kind)),
                None => None,
            },
            7 if sub == 0 => Some(PageState::Shared(id)),
            8 if plain => Some(PageState::Released),
            9 if plain => Some(PageState::Reclaiming),
            _ => None,
        }
    }

    /// The raw bits (for debugging dumps).
    pub const fn bits(self) -> u32 {
        self.0
    }
}

impl Default for Entry {
    fn default() -> Self {
        Entry::FIRMWARE
    }
}

impl From<PageState> for Entry {
    fn from(s: PageState) -> Self {
        Entry::encode(s)
    }
}

impl fmt::Debug for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.decode() {
            Some(s) => write!(f, "{s:?}"),
            None => write!(f, "Entry({:#x})", self.0),
        }
    }
}
