//! COVI: TVM interrupts through IMSIC guest interrupt files. The host
//! converts guest files (each hart's files past the host's own), binds a
//! vCPU to a file on the hart that will run it, moves it with rebind, and
//! injects the external interrupts the vCPU allowed. A bound vCPU's file
//! is mapped at its IMSIC GPA in the TVM's G-stage and selected by
//! `hstatus.VGEIN` while it runs; an unbound vCPU's interrupts wait in its
//! software file (`imsic_files::SwFile`, in its vCPU state). The state
//! machines are `imsic_files`; this file applies them under the TSM lock.

use super::host_side::HostSide;
use super::tvm::Tvm;
use super::vcpu::VcpuState;
use super::{CoveResult, FAILED, INVALID_ADDRESS, INVALID_PARAM, TSM};
use crate::arch::{guest_file as imsic, phys};
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use cove_abi::covi::{CoviFunction, TvmAiaParams};
use cove_abi::CoveError;
use hyp_addr::{GuestPhysAddr, HostPhysAddr, PageSize, PAGE_SIZE};
use imsic_files::{Binding, Error as FileError, FileId, SwFile, MAX_HARTS};
use page_tables::Perms;
use sbi_abi::SbiError;
use spin::Once;

/// Where the guest files are: each hart's S-level file, and the pages
/// after it (`vgein` pages in).
struct Layout {
    s_files: [u64; MAX_HARTS],
    nharts: usize,
    /// Bytes from one hart's S-level file to the next's.
    stride: u64,
    num_ids: u32,
}

static LAYOUT: Once<Layout> = Once::new();

/// Per hart: guest files of bound vCPUs that wake the host (its `hgeie`
/// while the host runs there), and those that did since it last asked.
static ARMED: [AtomicU64; MAX_HARTS] = [const { AtomicU64::new(0) }; MAX_HARTS];
static WOKEN: [AtomicU64; MAX_HARTS] = [const { AtomicU64::new(0) }; MAX_HARTS];
/// The interrupt id Salus sends the host's own file on a wake (0: none).
static WAKE_MSI: AtomicU32 = AtomicU32::new(0);

/// A vCPU's COVI state, in its vCPU state pages; changed only under the
/// TSM lock (its own mutex makes access safe through `&VcpuState`; the run
/// path reads the binding after a run without the TSM lock).
pub struct VcpuCovi {
    /// GPA of its IMSIC page (0: not set).
    pub imsic_gpa: u64,
    pub binding: Binding,
    pub sw: SwFile,
    pub allowed: imsic_files::Allowed,
}

impl VcpuCovi {
    pub const fn new() -> Self {
        VcpuCovi {
            imsic_gpa: 0,
            binding: Binding::Unbound,
            sw: SwFile::new(),
            allowed: imsic_files::Allowed::new(),
        }
    }
}

/// At boot: `s_files` gives each hart's S-level file as (hart id, address),
/// the files `stride` apart, with `num_ids` identities; `hgeie_mask` is
/// what `hgeie` kept of all ones (the guest files a hart has); the host
/// owns `host_vgein`. Every hart `0..nharts` needs a file (else no COVI).
/// Returns the guest files per hart left for TVM vCPUs.
pub fn init(
    s_files_by_hart: impl Iterator<Item = (usize, u64)>,
    nharts: usize,
    stride: u64,
    num_ids: u32,
    hgeie_mask: u64,
    host_vgein: u64,
) -> usize {
    let mut s_files = [0; MAX_HARTS];
    for (hart, addr) in s_files_by_hart {
        if let Some(f) = s_files.get_mut(hart) {
            *f = addr;
        }
    }
    if s_files.iter().take(nharts).any(|&a| a == 0) {
        return 0;
    }
    let mut tsm = TSM.lock();
    for h in 0..nharts {
        tsm.files.add_hart(h, hgeie_mask, host_vgein as u32);
    }
    LAYOUT.call_once(|| Layout {
        s_files,
        nharts,
        stride,
        num_ids: num_ids.min(imsic_files::MAX_IDS as u32 - 1),
    });
    tsm.files.tvm_files(0)
}

/// COVI is offered: an IMSIC with guest files for TVMs.
pub fn available() -> bool {
    LAYOUT.get().is_some() && TSM.lock().files.tvm_files(0) > 0
}

fn layout() -> Result<&'static Layout, CoveError> {
    LAYOUT.get().ok_or(CoveError::Sbi(SbiError::NotSupported))
}

fn file_addr(l: &Layout, f: FileId) -> Option<HostPhysAddr> {
    let s = *l.s_files.get(f.hart)?;
    Some(HostPhysAddr::new(s + u64::from(f.vgein) * PAGE_SIZE))
}

/// The guest file at host physical `addr` (a page past some hart's S file).
fn file_at(l: &Layout, addr: u64) -> Option<FileId> {
    if !addr.is_multiple_of(PAGE_SIZE) {
        return None;
    }
    l.s_files
        .iter()
        .take(l.nharts)
        .enumerate()
        .find_map(|(hart, &s)| {
            let off = addr.checked_sub(s).filter(|o| *o < l.stride)?;
            let vgein = u32::try_from(off / PAGE_SIZE).ok().filter(|v| *v >= 1)?;
            Some(FileId { hart, vgein })
        })
}

/// The one file of `mask` (hgeie format) on hart `me`: TVM vCPUs have
/// exactly one file (guests_per_hart 0).
fn mask_file(me: usize, mask: u64) -> Result<FileId, CoveError> {
    if mask.count_ones() != 1 || mask & 1 != 0 {
        return Err(INVALID_PARAM);
    }
    Ok(FileId {
        hart: me,
        vgein: mask.trailing_zeros(),
    })
}

fn vcpu_of(tvm: &Tvm, vcpu_id: u64) -> Result<&'static VcpuState, CoveError> {
    tvm.vcpu(vcpu_id).ok_or(INVALID_PARAM)
}

/// COVI dispatch for the host on hart `me`.
pub fn handle_covi(host: &impl HostSide, a6: u64, a: [u64; 6]) -> CoveResult {
    // The FID carries the target domain (SDID) as for COVH.
    let fid = cove_abi::fid::CoveFid::decode_local(a6)
        .map_err(|_| CoveError::Sbi(SbiError::NotSupported))?;
    let Some(f) = CoviFunction::from_fid(u64::from(fid)) else {
        return Err(CoveError::Sbi(SbiError::NotSupported));
    };
    let l = layout()?;
    let me = host.hartid();
    let mut tsm = TSM.lock();
    let completed = tsm.conv.rounds_completed();
    tsm.files.settle(completed);
    match f {
        CoviFunction::InitTvmAia => {
            let tvm = tsm.tvms.get(a[0])?;
            init_tvm_aia(tvm, a[1], a[2])
        }
        CoviFunction::SetTvmAiaCpuImsicAddr => {
            let tvm = tsm.tvms.get(a[0])?;
            set_cpu_imsic_addr(tvm, a[1], a[2])
        }
        CoviFunction::ConvertAiaImsic => {
            let file = file_at(l, a[0]).ok_or(INVALID_ADDRESS)?;
            let round = tsm.conv.next_round();
            tsm.files
                .convert(file, round)
                .map_err(|_| INVALID_ADDRESS)?;
            Ok(0)
        }
        CoviFunction::ReclaimTvmAiaImsic => {
            let file = file_at(l, a[0]).ok_or(INVALID_ADDRESS)?;
            tsm.files.reclaim(file).map_err(|e| match e {
                FileError::WrongState => INVALID_PARAM,
                _ => INVALID_ADDRESS,
            })?;
            Ok(0)
        }
        CoviFunction::BindAiaImsic => {
            let file = mask_file(me, a[2])?;
            let super::Tsm { tvms, files, .. } = &mut *tsm;
            let tvm = tvms.get(a[0])?;
            let v = vcpu_of(tvm, a[1])?;
            let mut c = v.covi.lock();
            if tvm.aia.is_none() || c.imsic_gpa == 0 || c.binding != Binding::Unbound {
                return Err(INVALID_PARAM);
            }
            let page = hyp_addr::GuestRange::new(GuestPhysAddr::new(c.imsic_gpa), PAGE_SIZE)
                .ok_or(INVALID_PARAM)?;
            if tvm.confidential.overlaps(&page) || tvm.mmio.overlaps(&page) {
                return Err(INVALID_PARAM);
            }
            let addr = file_addr(l, file).ok_or(INVALID_PARAM)?;
            files.assign(file, a[0], a[1]).map_err(|_| INVALID_PARAM)?;
            if let Err(e) = map_file(tvm, c.imsic_gpa, addr) {
                let _ = files.release(file, a[0], a[1]);
                return Err(e);
            }
            c.binding.bind(me, file).map_err(|_| FAILED)?;
            imsic::load(file.vgein, l.num_ids, &mut c.sw);
            arm(file);
            Ok(0)
        }
        CoviFunction::UnbindAiaImsicBegin => {
            let tvm = tsm.tvms.get(a[0])?;
            let v = vcpu_of(tvm, a[1])?;
            let mut c = v.covi.lock();
            let file = match c.binding {
                Binding::Bound(f) if f.hart == me => f,
                _ => return Err(INVALID_PARAM),
            };
            // The mapping goes first; nothing changes if it cannot.
            unmap_file(tvm, c.imsic_gpa, file_addr(l, file).ok_or(FAILED)?)?;
            c.binding.unbind_begin(me, tvm.epoch).map_err(|_| FAILED)?;
            disarm(file);
            Ok(0)
        }
        CoviFunction::UnbindAiaImsicEnd => {
            let super::Tsm { tvms, files, .. } = &mut *tsm;
            let tvm = tvms.get(a[0])?;
            let fenced = tvm.fenced_epoch;
            let v = vcpu_of(tvm, a[1])?;
            let mut c = v.covi.lock();
            let file = c
                .binding
                .unbind_end(me, |e| e < fenced)
                .map_err(|_| INVALID_PARAM)?;
            imsic::save_and_clear(file.vgein, l.num_ids, &mut c.sw);
            files.release(file, a[0], a[1]).map_err(|_| FAILED)?;
            Ok(0)
        }
        CoviFunction::InjectTvmCpu => {
            let tvm = tsm.tvms.get(a[0])?;
            let v = vcpu_of(tvm, a[1])?;
            let mut c = v.covi.lock();
            if tvm.aia.is_none()
                || !imsic_files::valid_id(a[2], l.num_ids)
                || !c.allowed.allows(a[2])
            {
                return Err(INVALID_PARAM);
            }
            deliver(l, &mut c, a[2]);
            Ok(0)
        }
        CoviFunction::RebindAiaImsicBegin => {
            let new = mask_file(me, a[2])?;
            let super::Tsm { tvms, files, .. } = &mut *tsm;
            let tvm = tvms.get(a[0])?;
            let v = vcpu_of(tvm, a[1])?;
            let mut c = v.covi.lock();
            let old = match c.binding {
                Binding::Bound(old) if old != new => old,
                _ => return Err(INVALID_PARAM),
            };
            files.assign(new, a[0], a[1]).map_err(|_| INVALID_PARAM)?;
            let gpa = c.imsic_gpa;
            if let Err(e) = unmap_file(tvm, gpa, file_addr(l, old).ok_or(FAILED)?) {
                let _ = files.release(new, a[0], a[1]);
                return Err(e);
            }
            let old = c
                .binding
                .rebind_begin(me, new, tvm.epoch)
                .map_err(|_| FAILED)?;
            disarm(old);
            Ok(0)
        }
        CoviFunction::RebindAiaImsicClone => {
            let super::Tsm { tvms, files, .. } = &mut *tsm;
            let tvm = tvms.get(a[0])?;
            let fenced = tvm.fenced_epoch;
            let v = vcpu_of(tvm, a[1])?;
            let mut c = v.covi.lock();
            let old = c
                .binding
                .rebind_clone(me, |e| e < fenced)
                .map_err(|_| INVALID_PARAM)?;
            imsic::save_and_clear(old.vgein, l.num_ids, &mut c.sw);
            files.release(old, a[0], a[1]).map_err(|_| FAILED)?;
            Ok(0)
        }
        CoviFunction::RebindAiaImsicEnd => {
            let tvm = tsm.tvms.get(a[0])?;
            let v = vcpu_of(tvm, a[1])?;
            let mut c = v.covi.lock();
            let new = match c.binding {
                Binding::Rebinding {
                    new, cloned: true, ..
                } if new.hart == me => new,
                _ => return Err(INVALID_PARAM),
            };
            let addr = file_addr(l, new).ok_or(FAILED)?;
            map_file(tvm, c.imsic_gpa, addr)?;
            c.binding.rebind_end(me).map_err(|_| FAILED)?;
            imsic::load(new.vgein, l.num_ids, &mut c.sw);
            arm(new);
            Ok(0)
        }
    }
}

/// Sets `id` pending for the vCPU: in the hardware file that holds its
/// state now, else in its software file (loaded at the next bind).
fn deliver(l: &Layout, c: &mut VcpuCovi, id: u64) {
    let holder = match c.binding {
        Binding::Bound(f) | Binding::Unbinding { file: f, .. } => Some(f),
        Binding::Rebinding {
            old, cloned: false, ..
        } => Some(old),
        _ => None,
    };
    match holder.and_then(|f| file_addr(l, f)) {
        Some(addr) => imsic::send(addr, id as u32),
        None => c.sw.set_pending(id, l.num_ids),
    }
}

fn init_tvm_aia(tvm: &mut Tvm, addr: u64, len: u64) -> CoveResult {
    if tvm.runnable || tvm.aia.is_some() || len < TvmAiaParams::SIZE as u64 {
        return Err(INVALID_PARAM);
    }
    let size = TvmAiaParams::SIZE as u64;
    if !addr.is_multiple_of(8) || !crate::memory::host_owns(addr, size) {
        return Err(INVALID_ADDRESS);
    }
    let mut raw = [0u8; TvmAiaParams::SIZE];
    phys::copy_from(HostPhysAddr::new(addr), &mut raw);
    let p = TvmAiaParams::from_bytes(&raw).ok_or(INVALID_PARAM)?;
    // Nested guest files are not offered: one file per vCPU.
    if !p.is_valid() || p.guests_per_hart != 0 || p._padding != 0 {
        return Err(INVALID_PARAM);
    }
    tvm.aia = Some(p);
    Ok(0)
}

fn set_cpu_imsic_addr(tvm: &mut Tvm, vcpu_id: u64, gpa: u64) -> CoveResult {
    let Some(p) = tvm.aia else {
        return Err(INVALID_PARAM);
    };
    if tvm.runnable {
        return Err(INVALID_PARAM);
    }
    let v = vcpu_of(tvm, vcpu_id)?;
    // Never under a mapping: a bound vCPU keeps the address its file is at.
    if v.covi.lock().binding != Binding::Unbound {
        return Err(INVALID_PARAM);
    }
    let page = GuestPhysAddr::new(gpa);
    let clash = |r: &super::region::RegionSet| {
        r.iter()
            .any(|m| m.contains(page) || m.contains(GuestPhysAddr::new(gpa + PAGE_SIZE - 1)))
    };
    if !p.is_vcpu_file(gpa) || clash(&tvm.confidential) || clash(&tvm.mmio) {
        return Err(INVALID_ADDRESS);
    }
    let taken = tvm.vcpus.iter().enumerate().any(|(k, _)| {
        k as u64 != vcpu_id
            && tvm
                .vcpu(k as u64)
                .is_some_and(|o| o.covi.lock().imsic_gpa == gpa)
    });
    if taken {
        return Err(INVALID_ADDRESS);
    }
    v.covi.lock().imsic_gpa = gpa;
    Ok(0)
}

/// finalize_tvm's check: an AIA TVM's every vCPU has its IMSIC address.
pub fn ready_to_finalize(tvm: &Tvm) -> bool {
    tvm.aia.is_none()
        || (0..tvm.vcpus.len() as u64)
            .filter_map(|k| tvm.vcpu(k))
            .all(|v| v.covi.lock().imsic_gpa != 0)
}

fn map_file(tvm: &mut Tvm, gpa: u64, file: HostPhysAddr) -> Result<(), CoveError> {
    let region = hyp_addr::GuestRange::new(GuestPhysAddr::new(gpa), PAGE_SIZE).ok_or(FAILED)?;
    super::pages::check_mappable(tvm, region, PageSize::Size4K)?;
    super::pages::map_checked(tvm, gpa, file.bits(), PageSize::Size4K, 1, Perms::RW)
}

/// Unmaps the vCPU's IMSIC page, which must map `file` (checked before
/// anything changes: FAILED otherwise, and nothing is unmapped).
fn unmap_file(tvm: &mut Tvm, gpa: u64, file: HostPhysAddr) -> Result<(), CoveError> {
    let (gstage, mut mem) = tvm.tables();
    let g = GuestPhysAddr::new(gpa);
    match gstage.translate(&mem, g) {
        Some(t) if t.hpa == file && t.size == PageSize::Size4K => {}
        _ => return Err(FAILED),
    }
    gstage.unmap_4k(&mut mem, g).map_err(|_| FAILED)?;
    Ok(())
}

/// Whether `r` covers the IMSIC page of any vCPU of `tvm` (memory may not
/// be laid over a guest file's page).
pub fn overlaps_imsic(tvm: &Tvm, r: &hyp_addr::GuestRange) -> bool {
    tvm.aia.is_some()
        && (0..tvm.vcpus.len() as u64)
            .filter_map(|k| tvm.vcpu(k))
            .map(|v| v.covi.lock().imsic_gpa)
            .any(|g| g != 0 && r.contains(GuestPhysAddr::new(g)))
}

/// The `hstatus.VGEIN` a vCPU of `tvm` runs with on hart `me`: 0 for a TVM
/// without AIA, its bound file for one with (an unbound vCPU of an AIA TVM
/// may not run: INVALID_PARAM).
pub fn run_vgein(tvm: &Tvm, v: &VcpuState, me: usize) -> Result<u64, CoveError> {
    if tvm.aia.is_none() {
        return Ok(0);
    }
    let c = v.covi.lock();
    c.binding
        .runs_on(me)
        .map(|f| u64::from(f.vgein))
        .ok_or(INVALID_PARAM)
}

/// The vCPU of `tvm` whose IMSIC page holds `gpa`, if any.
pub fn imsic_target(tvm: &Tvm, gpa: u64) -> Option<u64> {
    let page = gpa & !(PAGE_SIZE - 1);
    // Every guest page fault asks (MMIO exits too): pages outside the
    // TVM's IMSIC layout never look at the vCPUs.
    if !tvm.aia?.is_vcpu_file(page) {
        return None;
    }
    (0..tvm.vcpus.len() as u64)
        .find(|&k| tvm.vcpu(k).is_some_and(|v| v.covi.lock().imsic_gpa == page))
}

/// A TVM's store to the IMSIC page of its vCPU `target` while no file is
/// mapped there (unbound, or between unbind/rebind begin and end): a
/// `seteipnum_le` (offset 0) or `seteipnum_be` (offset 4) write is what
/// the file would have taken; anything else is ignored, as the hardware
/// ignores writes to other offsets.
pub fn emulate_send(tvm_id: u64, target: u64, offset: u64, value: u64, width: u64) {
    let Some(l) = LAYOUT.get() else {
        return;
    };
    // The doorbells are 32-bit registers; other widths set nothing.
    if width != 4 {
        return;
    }
    let id = match offset {
        0 => value & 0xffff_ffff,
        4 => u64::from((value as u32).swap_bytes()),
        _ => return,
    };
    let mut tsm = TSM.lock();
    let Ok(tvm) = tsm.tvms.get(tvm_id) else {
        return;
    };
    if let Some(v) = tvm.vcpu(target) {
        deliver(l, &mut v.covi.lock(), id);
    }
}

/// A TVM's files go back to the free pool when it is destroyed.
pub fn tvm_destroyed(files: &mut imsic_files::Files, id: u64) {
    for hart in 0..MAX_HARTS {
        for vgein in 1..=imsic_files::MAX_FILES as u32 {
            let f = FileId { hart, vgein };
            if matches!(files.state(f), imsic_files::FileState::Assigned { tvm, .. } if tvm == id) {
                disarm(f);
            }
        }
    }
    files.release_tvm(id);
}

// ---- waking bound vCPUs that are not running (a Salus extension) ----------
//
// While the host runs on a hart, `hgeie` holds the guest files of the vCPUs
// bound there: an interrupt pending in one raises SGEI in Salus, which
// disarms that file, records it, and sends the host's chosen MSI to the
// host's own file. The file is armed again when its vCPU next runs there.

/// `file` may wake the host (called on its hart or, lazily, from another:
/// the SGEI handler only believes `ARMED`).
fn arm(file: FileId) {
    if let Some(a) = ARMED.get(file.hart) {
        a.fetch_or(file.mask(), Ordering::SeqCst);
        if file.hart == crate::arch::entry::hart_id() {
            apply(a.load(Ordering::SeqCst));
        }
    }
}

fn disarm(file: FileId) {
    if let Some(a) = ARMED.get(file.hart) {
        a.fetch_and(!file.mask(), Ordering::SeqCst);
        if file.hart == crate::arch::entry::hart_id() {
            apply(a.load(Ordering::SeqCst));
        }
    }
}

/// This hart's `hgeie` = `armed`, and SGEI enabled only while some file
/// is armed: a host that does not use COVI runs exactly as before it (no
/// SGEI source enabled at all).
fn apply(armed: u64) {
    use crate::arch::csr::{self, bits, num};
    csr::write!(num::HGEIE, armed);
    if armed != 0 {
        csr::set!(num::HIE, 1 << bits::IRQ_SGEI);
    } else {
        csr::clear!(num::HIE, 1 << bits::IRQ_SGEI);
    }
}

/// Back to the host on `hart` after vCPU `v` ran there with file `vgein`
/// (0: none), which is armed again if the vCPU is still bound to it (a
/// rebind may have begun on another hart meanwhile): what it left pending
/// wakes the host from now on.
pub fn restore_host_hgeie(hart: usize, vgein: u64, v: &VcpuState) {
    let Some(a) = ARMED.get(hart) else {
        apply(0);
        return;
    };
    let file = FileId {
        hart,
        vgein: vgein as u32,
    };
    if vgein != 0 {
        // Held across the arm: a rebind_begin elsewhere disarms after it.
        let c = v.covi.lock();
        if c.binding == Binding::Bound(file) {
            a.fetch_or(file.mask(), Ordering::SeqCst);
        }
    }
    apply(a.load(Ordering::SeqCst));
}

/// SGEI while the host ran on `hart`.
pub fn host_wake(hart: usize) {
    use crate::arch::csr::{self, num};
    let (Some(a), Some(w), Some(l)) = (ARMED.get(hart), WOKEN.get(hart), LAYOUT.get()) else {
        apply(0);
        return;
    };
    let pending = csr::read!(num::HGEIP) & a.load(Ordering::SeqCst);
    a.fetch_and(!pending, Ordering::SeqCst);
    apply(a.load(Ordering::SeqCst));
    if pending == 0 {
        return;
    }
    w.fetch_or(pending, Ordering::SeqCst);
    let msi = WAKE_MSI.load(Ordering::SeqCst);
    // The host's own file is guest file `host_vgein` of this hart.
    let host_file = FileId {
        hart,
        vgein: crate::platform::get().host_vgein as u32,
    };
    if let (true, Some(addr)) = (msi != 0, file_addr(l, host_file)) {
        imsic::send(addr, msi);
    }
}

/// The Salus COVI-wake extension for the host on `hart`.
pub fn wake_call(hart: usize, fid: u64, a0: u64) -> Result<u64, SbiError> {
    use cove_abi::covi::wake;
    let l = LAYOUT.get().ok_or(SbiError::NotSupported)?;
    match fid {
        wake::FID_SET_WAKE_MSI => {
            if a0 != 0 && !imsic_files::valid_id(a0, l.num_ids) {
                return Err(SbiError::InvalidParam);
            }
            WAKE_MSI.store(a0 as u32, Ordering::SeqCst);
            Ok(0)
        }
        wake::FID_TAKE_WAKE => Ok(WOKEN.get(hart).map_or(0, |w| w.swap(0, Ordering::SeqCst))),
        _ => Err(SbiError::NotSupported),
    }
}

/// Allow or deny (COVG) external interrupt `id` for vCPU `v`.
pub fn set_allowed(v: &VcpuState, id: u64, allow: bool) -> Result<(), CoveError> {
    // Without COVI the ids are AIA's (1..=2047): nothing is injected anyway.
    let num_ids = LAYOUT
        .get()
        .map_or(imsic_files::MAX_IDS as u32 - 1, |l| l.num_ids);
    if v.covi.lock().allowed.set(id, num_ids, allow) {
        Ok(())
    } else {
        Err(INVALID_PARAM)
    }
}

/// The TSM's AIA capability.
pub fn capability() -> u64 {
    if available() {
        1 << cove_abi::covh::cap::AIA
    } else {
        0
    }
}
