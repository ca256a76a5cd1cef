//! COVI bookkeeping (CoVE interrupt extension), as plain state machines the
//! TSM drives under its lock:
//!
//! - [`Files`]: every IMSIC guest interrupt file of every hart and who owns
//!   it: the host (never mapped for it: Salus gives the host only its own
//!   file), a conversion waiting for the host's fence, free for TVMs, or
//!   assigned to one vCPU;
//! - [`Binding`]: how a TVM vCPU is tied to a file through bind, unbind
//!   (begin/end) and rebind (begin/clone/end), with the spec's "on the
//!   bound hart" and "after a TVM fence" rules;
//! - [`SwFile`]: a vCPU's interrupt state while no hardware file holds it;
//! - [`Allowed`]: the external interrupts a vCPU let the host inject.
//!
//! Files are named by hart and guest index (`vgein`, the `hgeie` bit), the
//! way hardware selects them.
#![no_std]
#![forbid(unsafe_code)]

/// Harts tracked (hart ids `0..MAX_HARTS`).
pub const MAX_HARTS: usize = 32;
/// Guest files per hart tracked (`vgein` 1..=MAX_FILES).
pub const MAX_FILES: usize = 15;
/// Interrupt identities a file can hold (the AIA maximum is 2047).
pub const MAX_IDS: usize = 2048;
const WORDS: usize = MAX_IDS / 64;

/// One guest interrupt file: `hart`'s file `vgein` (1-based).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileId {
    pub hart: usize,
    pub vgein: u32,
}

impl FileId {
    /// The `hgeie`-format mask with just this file.
    pub const fn mask(&self) -> u64 {
        1 << self.vgein
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileState {
    /// No such file, or the host's own: never given to a TVM.
    Absent,
    /// The host's; Salus never maps it for the host, but it is not the TSM's.
    Host,
    /// Converted in fence round `round`: usable once that round completes.
    Converting { round: u64 },
    /// Confidential and unassigned.
    Free,
    /// Holds (or will hold, during a rebind) `tvm`'s vCPU `vcpu`.
    Assigned { tvm: u64, vcpu: u64 },
}

/// Why a call was refused; the TSM maps each to the spec's error code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// Not a file the TSM manages (INVALID_ADDRESS for convert/reclaim).
    NoSuchFile,
    /// The file is not in the state the call needs.
    WrongState,
    /// The vCPU is not in the binding state the call needs, or the call
    /// came from the wrong hart.
    WrongBinding,
    /// The TVM has not completed the fence the call waits for.
    NotFenced,
}

/// Every guest file of every hart.
pub struct Files {
    state: [[FileState; MAX_FILES]; MAX_HARTS],
    /// Files in `Converting` (settle has nothing to do when 0).
    converting: usize,
}

impl Default for Files {
    fn default() -> Self {
        Self::new()
    }
}

impl Files {
    pub const fn new() -> Self {
        Files {
            state: [[FileState::Absent; MAX_FILES]; MAX_HARTS],
            converting: 0,
        }
    }

    fn slot(&mut self, id: FileId) -> Option<&mut FileState> {
        let i = usize::try_from(id.vgein).ok()?.checked_sub(1)?;
        self.state.get_mut(id.hart)?.get_mut(i)
    }

    pub fn state(&self, id: FileId) -> FileState {
        usize::try_from(id.vgein)
            .ok()
            .and_then(|v| v.checked_sub(1))
            .and_then(|i| self.state.get(id.hart)?.get(i))
            .copied()
            .unwrap_or(FileState::Absent)
    }

    /// At boot: `hart` implements the guest files of `hgeie_mask` (as read
    /// back from `hgeie`); `host_vgein` is the host's own (0: none).
    pub fn add_hart(&mut self, hart: usize, hgeie_mask: u64, host_vgein: u32) {
        for vgein in 1..=MAX_FILES as u32 {
            if hgeie_mask & (1 << vgein) != 0 && vgein != host_vgein {
                if let Some(s) = self.slot(FileId { hart, vgein }) {
                    *s = FileState::Host;
                }
            }
        }
    }

    /// Files TVMs may use on `hart`.
    pub fn tvm_files(&self, hart: usize) -> usize {
        self.state
            .get(hart)
            .map_or(0, |h| h.iter().filter(|s| **s != FileState::Absent).count())
    }

    /// Conversions of rounds below `completed` are done: those files are free.
    pub fn settle(&mut self, completed: u64) {
        if self.converting == 0 {
            return;
        }
        for s in self.state.iter_mut().flatten() {
            if matches!(*s, FileState::Converting { round } if round < completed) {
                *s = FileState::Free;
                self.converting -= 1;
            }
        }
    }

    /// convert_aia_imsic: Host -> Converting in fence round `round` (the
    /// round the host's next global fence completes).
    pub fn convert(&mut self, id: FileId, round: u64) -> Result<(), Error> {
        let s = self.slot(id).ok_or(Error::NoSuchFile)?;
        match *s {
            FileState::Absent => Err(Error::NoSuchFile),
            FileState::Host => {
                *s = FileState::Converting { round };
                self.converting += 1;
                Ok(())
            }
            _ => Err(Error::WrongState),
        }
    }

    /// reclaim_tvm_aia_imsic: a converted file no vCPU holds goes back.
    pub fn reclaim(&mut self, id: FileId) -> Result<(), Error> {
        let s = self.slot(id).ok_or(Error::NoSuchFile)?;
        match *s {
            FileState::Absent | FileState::Host => Err(Error::NoSuchFile),
            FileState::Assigned { .. } => Err(Error::WrongState),
            FileState::Converting { .. } => {
                *s = FileState::Host;
                self.converting -= 1;
                Ok(())
            }
            FileState::Free => {
                *s = FileState::Host;
                Ok(())
            }
        }
    }

    /// Free -> Assigned to `tvm`'s `vcpu`.
    pub fn assign(&mut self, id: FileId, tvm: u64, vcpu: u64) -> Result<(), Error> {
        let s = self.slot(id).ok_or(Error::NoSuchFile)?;
        if *s != FileState::Free {
            return Err(Error::WrongState);
        }
        *s = FileState::Assigned { tvm, vcpu };
        Ok(())
    }

    /// Assigned to `tvm`'s `vcpu` -> Free.
    pub fn release(&mut self, id: FileId, tvm: u64, vcpu: u64) -> Result<(), Error> {
        let s = self.slot(id).ok_or(Error::NoSuchFile)?;
        if *s != (FileState::Assigned { tvm, vcpu }) {
            return Err(Error::WrongState);
        }
        *s = FileState::Free;
        Ok(())
    }

    /// A destroyed TVM's files become free (their contents are overwritten
    /// by the next bind, which loads a whole software file).
    pub fn release_tvm(&mut self, tvm: u64) -> usize {
        let mut n = 0;
        for s in self.state.iter_mut().flatten() {
            if matches!(*s, FileState::Assigned { tvm: t, .. } if t == tvm) {
                *s = FileState::Free;
                n += 1;
            }
        }
        n
    }
}

/// How a vCPU of an AIA TVM is tied to a guest file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Binding {
    #[default]
    Unbound,
    Bound(FileId),
    /// unbind_begin removed the mapping in TVM fence epoch `epoch`.
    Unbinding {
        file: FileId,
        epoch: u64,
    },
    /// rebind_begin: `new` is assigned, the mapping of `old` was removed in
    /// `epoch`; `cloned` once `old`'s state is in the software file.
    Rebinding {
        old: FileId,
        new: FileId,
        epoch: u64,
        cloned: bool,
    },
}

impl Binding {
    /// The file the vCPU runs with on `hart`, if it may run there.
    pub fn runs_on(&self, hart: usize) -> Option<FileId> {
        match *self {
            Binding::Bound(f) if f.hart == hart => Some(f),
            _ => None,
        }
    }

    /// bind: Unbound -> Bound(file); `file` must be on the calling hart.
    pub fn bind(&mut self, me: usize, file: FileId) -> Result<(), Error> {
        if *self != Binding::Unbound || file.hart != me {
            return Err(Error::WrongBinding);
        }
        *self = Binding::Bound(file);
        Ok(())
    }

    /// unbind_begin on the bound hart; returns the file whose mapping the
    /// caller removes in `epoch`.
    pub fn unbind_begin(&mut self, me: usize, epoch: u64) -> Result<FileId, Error> {
        match *self {
            Binding::Bound(file) if file.hart == me => {
                *self = Binding::Unbinding { file, epoch };
                Ok(file)
            }
            _ => Err(Error::WrongBinding),
        }
    }

    /// unbind_end on the bound hart once epoch `epoch` is fenced
    /// (`fenced(epoch)`); returns the file to save and free.
    pub fn unbind_end(&mut self, me: usize, fenced: impl Fn(u64) -> bool) -> Result<FileId, Error> {
        match *self {
            Binding::Unbinding { file, epoch } if file.hart == me => {
                if !fenced(epoch) {
                    return Err(Error::NotFenced);
                }
                *self = Binding::Unbound;
                Ok(file)
            }
            _ => Err(Error::WrongBinding),
        }
    }

    /// rebind_begin on the new hart with `new` (assigned by the caller);
    /// returns the old file whose mapping the caller removes in `epoch`.
    pub fn rebind_begin(&mut self, me: usize, new: FileId, epoch: u64) -> Result<FileId, Error> {
        match *self {
            Binding::Bound(old) if new.hart == me && new != old => {
                *self = Binding::Rebinding {
                    old,
                    new,
                    epoch,
                    cloned: false,
                };
                Ok(old)
            }
            _ => Err(Error::WrongBinding),
        }
    }

    /// rebind_clone on the old hart once the epoch is fenced; returns the
    /// old file to save into the software file and free.
    pub fn rebind_clone(
        &mut self,
        me: usize,
        fenced: impl Fn(u64) -> bool,
    ) -> Result<FileId, Error> {
        match self {
            Binding::Rebinding {
                old,
                epoch,
                cloned: cloned @ false,
                ..
            } if old.hart == me => {
                if !fenced(*epoch) {
                    return Err(Error::NotFenced);
                }
                *cloned = true;
                Ok(*old)
            }
            _ => Err(Error::WrongBinding),
        }
    }

    /// rebind_end on the new hart after the clone; returns the new file to
    /// load and map.
    pub fn rebind_end(&mut self, me: usize) -> Result<FileId, Error> {
        match *self {
            Binding::Rebinding {
                new, cloned: true, ..
            } if new.hart == me => {
                *self = Binding::Bound(new);
                Ok(new)
            }
            _ => Err(Error::WrongBinding),
        }
    }

    /// Files assigned to this vCPU (to free when its TVM goes).
    pub fn files(&self) -> [Option<FileId>; 2] {
        match *self {
            Binding::Unbound => [None, None],
            Binding::Bound(f) | Binding::Unbinding { file: f, .. } => [Some(f), None],
            Binding::Rebinding {
                old, new, cloned, ..
            } => [(!cloned).then_some(old), Some(new)],
        }
    }
}

/// A vCPU's interrupt file kept in memory: the registers a hardware file
/// has (`eidelivery`, `eithreshold`, `eip*`, `eie*`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SwFile {
    pub eidelivery: u64,
    pub eithreshold: u64,
    pub eip: [u64; WORDS],
    pub eie: [u64; WORDS],
}

impl Default for SwFile {
    fn default() -> Self {
        Self::new()
    }
}

/// Whether `id` names an interrupt of a file with `num_ids` identities
/// (1..=num_ids; 0 is never an interrupt).
pub fn valid_id(id: u64, num_ids: u32) -> bool {
    id >= 1 && id <= u64::from(num_ids) && id < MAX_IDS as u64
}

impl SwFile {
    pub const fn new() -> Self {
        SwFile {
            eidelivery: 0,
            eithreshold: 0,
            eip: [0; WORDS],
            eie: [0; WORDS],
        }
    }

    /// Marks `id` pending (an `seteipnum` write); out-of-range ids are
    /// ignored, as the hardware ignores them.
    pub fn set_pending(&mut self, id: u64, num_ids: u32) {
        if valid_id(id, num_ids) {
            if let Some(w) = self.eip.get_mut(id as usize / 64) {
                *w |= 1 << (id % 64);
            }
        }
    }

    pub fn is_pending(&self, id: u64) -> bool {
        self.eip
            .get(id as usize / 64)
            .is_some_and(|w| w & (1 << (id % 64)) != 0)
    }

    /// 64-bit words covering `num_ids` identities (0..=num_ids).
    pub fn words(num_ids: u32) -> usize {
        (num_ids as usize / 64 + 1).min(WORDS)
    }
}

/// External interrupts a vCPU allows the host to inject (all denied at
/// start, as the spec says).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Allowed {
    words: [u64; WORDS],
}

impl Default for Allowed {
    fn default() -> Self {
        Self::new()
    }
}

/// `interrupt_id` meaning "every interrupt" in allow/deny.
pub const ALL_IDS: u64 = u64::MAX;

impl Allowed {
    pub const fn new() -> Self {
        Allowed { words: [0; WORDS] }
    }

    /// allow (`on`) or deny one id, or every id with [`ALL_IDS`]; false
    /// for an id the files do not have.
    pub fn set(&mut self, id: u64, num_ids: u32, on: bool) -> bool {
        if id == ALL_IDS {
            self.words = [if on { !0 } else { 0 }; WORDS];
            return true;
        }
        if !valid_id(id, num_ids) {
            return false;
        }
        if let Some(w) = self.words.get_mut(id as usize / 64) {
            if on {
                *w |= 1 << (id % 64);
            } else {
                *w &= !(1 << (id % 64));
            }
        }
        true
    }

    pub fn allows(&self, id: u64) -> bool {
        id != 0
            && self
                .words
                .get(id as usize / 64)
                .is_some_and(|w| w & (1 << (id % 64)) != 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const F2: FileId = FileId { hart: 0, vgein: 2 };
    const F3: FileId = FileId { hart: 0, vgein: 3 };
    const H1F2: FileId = FileId { hart: 1, vgein: 2 };

    fn files() -> Files {
        let mut f = Files::new();
        // aia-guests=3: files 1..3, the host has file 1.
        for h in 0..2 {
            f.add_hart(h, 0b1110, 1);
        }
        f
    }

    #[test]
    fn host_file_and_absent_files_are_never_converted() {
        let mut f = files();
        assert_eq!(f.tvm_files(0), 2);
        assert_eq!(f.tvm_files(5), 0);
        for bad in [
            FileId { hart: 0, vgein: 1 },
            FileId { hart: 0, vgein: 4 },
            FileId { hart: 0, vgein: 0 },
            FileId { hart: 2, vgein: 2 },
            FileId { hart: 99, vgein: 2 },
            FileId { hart: 0, vgein: 99 },
        ] {
            assert_eq!(f.convert(bad, 0), Err(Error::NoSuchFile), "{bad:?}");
            assert_eq!(f.reclaim(bad), Err(Error::NoSuchFile), "{bad:?}");
            assert_eq!(f.state(bad), FileState::Absent);
        }
    }

    #[test]
    fn convert_fence_assign_release_reclaim() {
        let mut f = files();
        assert_eq!(f.reclaim(F2), Err(Error::NoSuchFile), "still the host's");
        f.convert(F2, 4).unwrap();
        assert_eq!(f.convert(F2, 4), Err(Error::WrongState));
        assert_eq!(f.assign(F2, 1, 0), Err(Error::WrongState), "not fenced yet");
        f.settle(4);
        assert_eq!(f.state(F2), FileState::Converting { round: 4 });
        f.settle(5);
        assert_eq!(f.state(F2), FileState::Free);
        f.assign(F2, 1, 0).unwrap();
        assert_eq!(f.assign(F2, 2, 0), Err(Error::WrongState));
        assert_eq!(f.reclaim(F2), Err(Error::WrongState), "assigned");
        assert_eq!(f.release(F2, 1, 1), Err(Error::WrongState), "not its vCPU");
        f.release(F2, 1, 0).unwrap();
        f.reclaim(F2).unwrap();
        assert_eq!(f.state(F2), FileState::Host);
        // A conversion not fenced yet may be taken back.
        f.convert(F3, 9).unwrap();
        f.reclaim(F3).unwrap();
        assert_eq!(f.state(F3), FileState::Host);
        // Settling counts: a later conversion still settles.
        f.convert(F3, 10).unwrap();
        f.settle(11);
        assert_eq!(f.state(F3), FileState::Free);
        f.settle(12);
        assert_eq!(f.state(F3), FileState::Free);
    }

    #[test]
    fn destroy_frees_only_that_tvms_files() {
        let mut f = files();
        for id in [F2, F3, H1F2] {
            f.convert(id, 0).unwrap();
        }
        f.settle(1);
        f.assign(F2, 7, 0).unwrap();
        f.assign(H1F2, 7, 1).unwrap();
        f.assign(F3, 8, 0).unwrap();
        assert_eq!(f.release_tvm(7), 2);
        assert_eq!(f.state(F2), FileState::Free);
        assert_eq!(f.state(F3), FileState::Assigned { tvm: 8, vcpu: 0 });
    }

    #[test]
    fn bind_unbind_on_the_bound_hart_after_the_fence() {
        let mut b = Binding::default();
        assert_eq!(b.runs_on(0), None);
        assert_eq!(
            b.bind(1, F2),
            Err(Error::WrongBinding),
            "file on another hart"
        );
        b.bind(0, F2).unwrap();
        assert_eq!(b.bind(0, F3), Err(Error::WrongBinding));
        assert_eq!(b.runs_on(0), Some(F2));
        assert_eq!(b.runs_on(1), None);
        assert_eq!(b.unbind_begin(1, 3), Err(Error::WrongBinding));
        assert_eq!(
            b.unbind_end(0, |_| true),
            Err(Error::WrongBinding),
            "no begin"
        );
        assert_eq!(b.unbind_begin(0, 3), Ok(F2));
        assert_eq!(b.runs_on(0), None, "no run while unbinding");
        assert_eq!(b.unbind_end(0, |e| e > 3), Err(Error::NotFenced));
        assert_eq!(b.unbind_end(1, |_| true), Err(Error::WrongBinding));
        assert_eq!(b.files(), [Some(F2), None]);
        assert_eq!(b.unbind_end(0, |e| e == 3), Ok(F2));
        assert_eq!(b, Binding::Unbound);
        assert_eq!(b.files(), [None, None]);
    }

    #[test]
    fn rebind_begin_clone_end() {
        let mut b = Binding::Bound(F2);
        assert_eq!(
            b.rebind_begin(1, F2, 0),
            Err(Error::WrongBinding),
            "new on another hart"
        );
        assert_eq!(
            b.rebind_begin(0, F2, 0),
            Err(Error::WrongBinding),
            "same file"
        );
        assert_eq!(b.rebind_end(1), Err(Error::WrongBinding));
        assert_eq!(b.rebind_begin(1, H1F2, 5), Ok(F2));
        assert_eq!(b.runs_on(0), None);
        assert_eq!(b.runs_on(1), None);
        assert_eq!(b.files(), [Some(F2), Some(H1F2)]);
        assert_eq!(
            b.rebind_end(1),
            Err(Error::WrongBinding),
            "before the clone"
        );
        assert_eq!(
            b.rebind_clone(1, |_| true),
            Err(Error::WrongBinding),
            "new hart"
        );
        assert_eq!(b.rebind_clone(0, |e| e > 5), Err(Error::NotFenced));
        assert_eq!(b.rebind_clone(0, |_| true), Ok(F2));
        assert_eq!(
            b.rebind_clone(0, |_| true),
            Err(Error::WrongBinding),
            "once"
        );
        assert_eq!(b.files(), [None, Some(H1F2)]);
        assert_eq!(b.rebind_end(0), Err(Error::WrongBinding));
        assert_eq!(b.rebind_end(1), Ok(H1F2));
        assert_eq!(b.runs_on(1), Some(H1F2));
    }

    #[test]
    fn software_file_and_allowed_ids() {
        let mut s = SwFile::new();
        s.set_pending(5, 255);
        s.set_pending(255, 255);
        s.set_pending(256, 255);
        s.set_pending(0, 255);
        assert!(s.is_pending(5) && s.is_pending(255));
        assert!(!s.is_pending(256) && !s.is_pending(0) && !s.is_pending(1 << 40));
        assert_eq!(SwFile::words(255), 4);
        assert_eq!(SwFile::words(63), 1);
        assert_eq!(SwFile::words(2047), 32);
        let mut a = Allowed::new();
        assert!(!a.allows(5));
        assert!(a.set(5, 255, true) && a.allows(5) && !a.allows(6));
        assert!(!a.set(0, 255, true) && !a.set(256, 255, true));
        assert!(a.set(ALL_IDS, 255, true) && a.allows(200) && !a.allows(0));
        assert!(a.set(200, 255, false) && !a.allows(200) && a.allows(5));
        assert!(a.set(ALL_IDS, 255, false) && !a.allows(5));
        assert!(valid_id(1, 63) && valid_id(63, 63) && !valid_id(64, 63));
        assert!(!valid_id(2048, u32::MAX));
    }
}
