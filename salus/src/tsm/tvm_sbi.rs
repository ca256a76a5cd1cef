//! The SBI a TVM sees, served by the TSM itself: what the host could drop,
//! delay or fake (IPIs and fences among the TVM's vCPUs, its timer, the
//! bytes it prints) never depends on the host. The host only hears about
//! calls it must act on (Notify exits: HSM, SRST, DBCN, COVG); its answer
//! to those is ignored. The experimental and vendor EID ranges are the one
//! channel the host answers (a VMM's own protocol); every other EID is
//! NOT_SUPPORTED. docs/cove-abi-choices.md lists it all.

use super::vcpu::{Pending, VcpuPrivate, VcpuState};
use super::TSM;
use crate::arch::csr::{self, bits, num};
use crate::arch::entry::reg;
use crate::arch::{phys, sbi_call};
use crate::platform;
use cove_abi::nacl::{CONSOLE_BYTES_MAX, CONSOLE_BYTES_OFFSET};
use cove_abi::{EID_COVG, EID_COVH, EID_COVI, EID_NACL, EID_SUPD};
use hyp_addr::{GuestPhysAddr, HostPhysAddr, PAGE_SIZE};
use sbi_abi::{dbcn, spi, srst, time, HartSelection, SbiError, SbiResult};

use sbi_abi::eid::{EID_BASE, EID_DBCN, EID_HSM, EID_RFNC, EID_SPI, EID_SRST, EID_TIME};
/// Salus's TVM entropy call (a vendor-range EID the TSM serves itself):
/// FID 0 returns 64 fresh bits (crate::entropy).
pub const EID_SALUS_ENTROPY: u64 = 0x0953_524E;

/// EIDs whose calls go to the host for an answer (SBI's experimental and
/// vendor-specific ranges, but for Salus's own EID_SALUS_ENTROPY).
pub const fn forwarded(eid: u64) -> bool {
    eid >= 0x0800_0000 && eid <= 0x09ff_ffff
}

/// The host answers this EID (the run loop checks it first).
#[inline(always)]
pub fn for_host(eid: u64) -> bool {
    forwarded(eid) && eid != EID_SALUS_ENTROPY
}

/// Extensions the TSM serves to a TVM (`probe_extension` says exactly
/// these).
fn served(eid: u64) -> bool {
    match eid {
        EID_BASE | EID_SPI | EID_RFNC | EID_HSM | EID_SRST | EID_DBCN => true,
        EID_TIME => platform::get().has_sstc,
        EID_SALUS_ENTROPY => crate::entropy::available(),
        _ => eid == EID_COVG,
    }
}

/// What the run loop does after a TVM's ecall.
pub enum Served {
    /// Answered; the vCPU resumes.
    Resume,
    /// Answered; the host is told these a0..a7 (nothing comes back).
    Notify([u64; 8]),
}

/// A TVM's ecall (a0..a7 in `a`) that is not [`for_host`] (the run loop
/// forwards those itself), on this hart, whose host registered its NACL
/// shared memory at `nacl`. Sets the TVM's a0/a1 and steps past the ecall.
#[inline(never)]
pub fn handle(vcpu: &VcpuState, v: &mut VcpuPrivate, a: [u64; 8], nacl: u64) -> Served {
    let (eid, fid) = (a[7], a[6]);
    let args = [a[0], a[1], a[2], a[3], a[4], a[5]];
    let mut notify = false;
    let r: SbiResult = match eid {
        EID_COVG => {
            let r = super::covg::handle(vcpu, fid, args);
            notify = r.is_ok();
            answer(v, cove_abi::error::to_sbiret(r));
            return done(v, notify, a);
        }
        EID_HSM => match super::covg::hsm(vcpu, fid, args) {
            Some((r, n)) => {
                answer(v, cove_abi::error::to_sbiret(r));
                return done(v, n, a);
            }
            None => Err(SbiError::NotSupported),
        },
        EID_BASE => base_call(fid, a[0]),
        EID_TIME if platform::get().has_sstc && fid == time::SET_TIMER as u64 => {
            // The TVM's own vstimecmp is loaded while it runs.
            crate::timer::write_vstimecmp(a[0]);
            Ok(0)
        }
        EID_SPI if fid == spi::SEND_IPI as u64 => send_ipi(vcpu, a[0], a[1]),
        EID_RFNC => rfence(vcpu, fid, args),
        EID_SRST if fid == srst::SYSTEM_RESET as u64 => {
            let r = check_reset(a[0]);
            if r.is_ok() {
                // The TVM is going away: this vCPU never runs again; the
                // host destroys the TVM. It hears the 32-bit type and
                // reason.
                vcpu.stop();
                answer(v, sbi_abi::SbiRet::success(0));
                let (kind, reason) = (a[0] & 0xffff_ffff, a[1] & 0xffff_ffff);
                return done(v, true, [kind, reason, 0, 0, 0, 0, fid, eid]);
            }
            r
        }
        EID_DBCN => match fid as usize {
            dbcn::CONSOLE_WRITE => {
                let r = console_write(vcpu, a[0], a[1], a[2], nacl);
                if let Ok(n) = r {
                    answer(v, sbi_abi::SbiRet::success(n));
                    return done(v, true, [n, 0, 0, 0, 0, 0, fid, eid]);
                }
                r
            }
            dbcn::CONSOLE_WRITE_BYTE => {
                answer(v, sbi_abi::SbiRet::success(0));
                return done(v, true, [a[0] & 0xff, 0, 0, 0, 0, 0, fid, eid]);
            }
            // No console input for TVMs (their UART is the host's device).
            dbcn::CONSOLE_READ => Ok(0),
            _ => Err(SbiError::NotSupported),
        },
        EID_SALUS_ENTROPY if fid == 0 => crate::entropy::draw().ok_or(SbiError::NotSupported),
        _ => Err(SbiError::NotSupported),
    };
    answer(v, sbi_abi::SbiRet::from_result(r));
    done(v, notify, a)
}

fn answer(v: &mut VcpuPrivate, r: sbi_abi::SbiRet) {
    v.regs.set_sbi_return(r);
    v.regs.sepc += 4;
}

fn done(v: &mut VcpuPrivate, notify: bool, a: [u64; 8]) -> Served {
    if notify {
        v.pending = Pending::Notify;
        Served::Notify(a)
    } else {
        Served::Resume
    }
}

fn base_call(fid: u64, arg: u64) -> SbiResult {
    sbi_abi::base_answer(fid, arg, platform::get().machine_ids(), served)
}

/// SBI IPI among the TVM's own vCPUs (hart ids are vCPU ids): the target's
/// VSSIP is owed, and a target running on another hart is kicked out of
/// the TVM there so it is raised at once: through that hart's S-level
/// IMSIC file when Salus has one (arch::imsic), else an SBI IPI.
fn send_ipi(me: &VcpuState, mask: u64, base: u64) -> SbiResult {
    let sel = HartSelection::decode(mask, base);
    let mut kick = 0u64;
    {
        let mut tsm = TSM.lock();
        let tvm = tsm
            .tvms
            .get(me.tvm.raw() as u64)
            .map_err(|_| SbiError::Failed)?;
        let n = super::tvm::MAX_VCPUS as u64;
        // Every named vCPU must exist before any IPI is sent.
        named_vcpus_exist(tvm, sel)?;
        let here = crate::arch::entry::hart_id();
        sel.for_each(n, |id| {
            if let Some(t) = tvm.vcpu(id) {
                match t.post_ipi() {
                    Some(h) if h != here && h < 64 => kick |= 1 << h,
                    _ => {}
                }
            }
        })?;
    }
    // Harts without an IMSIC doorbell (or all, without AIA) get an SBI IPI.
    let rest = crate::arch::imsic::kick(kick);
    if rest != 0 {
        sbi_call::send_ipi(rest, 0).map_err(|_| SbiError::Failed)?;
    }
    Ok(0)
}

/// SBI RFENCE among the TVM's vCPUs. vCPUs move between harts, so the
/// fence covers them all: this hart now, every hart running a vCPU of this
/// TVM through the fence IPI (it traps with the TVM's VMID loaded), and
/// every other hart when it next enters the TVM (run flushes the TVM's
/// VS-stage on every entry).
fn rfence(me_vcpu: &VcpuState, fid: u64, a: [u64; 6]) -> SbiResult {
    // A TVM is not a hypervisor: no hfence calls.
    sbi_abi::check_rfence(fid, a[2], a[3])?;
    check_vcpus(me_vcpu, HartSelection::decode(a[0], a[1]))?;
    let me = crate::arch::entry::hart_id();
    crate::arch::hfence_vvma_all();
    crate::arch::fence_i();
    crate::hart::remote_fence(me, crate::hart::all_harts() & !(1 << me));
    Ok(0)
}

/// SBI's INVALID_PARAM for a hart mask naming a vCPU the TVM lacks ("all"
/// means the vCPUs it has).
fn named_vcpus_exist(tvm: &super::tvm::Tvm, sel: HartSelection) -> SbiResult {
    let mut missing = false;
    sel.for_each(super::tvm::MAX_VCPUS as u64, |id| {
        missing |= tvm.vcpu(id).is_none()
    })?;
    if missing && !matches!(sel, HartSelection::All) {
        return Err(SbiError::InvalidParam);
    }
    Ok(0)
}

fn check_vcpus(v: &VcpuState, sel: HartSelection) -> SbiResult {
    let mut tsm = TSM.lock();
    let tvm = tsm
        .tvms
        .get(v.tvm.raw() as u64)
        .map_err(|_| SbiError::Failed)?;
    named_vcpus_exist(tvm, sel)
}

/// SRST's reset_type (uint32: on RV64 bits 63..32 are ignored). Any
/// 32-bit reason is passed on (salus-vmm turns it into an exit status).
fn check_reset(kind: u64) -> SbiResult {
    match kind as u32 {
        0..=2 => Ok(0),
        0xF000_0000..=u32::MAX => Err(SbiError::NotSupported),
        _ => Err(SbiError::InvalidParam),
    }
}

/// DBCN console_write: copies up to CONSOLE_BYTES_MAX bytes the TVM maps
/// readable at [lo, lo + len) into the host's NACL scratch (the host
/// prints them without reading TVM memory). Returns the bytes copied; a
/// range whose first byte is not mapped is INVALID_PARAM.
fn console_write(vcpu: &VcpuState, len: u64, lo: u64, hi: u64, nacl: u64) -> SbiResult {
    if hi != 0 {
        return Err(SbiError::InvalidParam);
    }
    let n = len.min(CONSOLE_BYTES_MAX as u64);
    let mut tsm = TSM.lock();
    let tvm = tsm
        .tvms
        .get(vcpu.tvm.raw() as u64)
        .map_err(|_| SbiError::Failed)?;
    let (g, mem) = tvm.tables();
    let mut done = 0u64;
    while done < n {
        let gpa = lo.checked_add(done).ok_or(SbiError::InvalidParam)?;
        let t = match g.translate(&mem, GuestPhysAddr::new(gpa)) {
            Some(t) if t.perms.read => t,
            _ if done == 0 => return Err(SbiError::InvalidParam),
            _ => break,
        };
        let chunk = (n - done).min(PAGE_SIZE - (gpa & (PAGE_SIZE - 1)));
        phys::copy_phys(
            HostPhysAddr::new(nacl + CONSOLE_BYTES_OFFSET as u64 + done),
            t.hpa,
            chunk,
        );
        done += chunk;
    }
    Ok(done)
}

/// Raises the vCPU's VSSIP if an IPI is owed (its CSRs are loaded).
pub fn deliver_ipi(vcpu: &VcpuState) {
    if vcpu.take_ipi() {
        csr::set!(num::HVIP, 1 << bits::IRQ_VS_SOFT);
    }
}

// Keep the served set honest: none of the host-only extensions.
const _: () = {
    assert!(!forwarded(EID_COVH) && !forwarded(EID_COVI) && !forwarded(EID_NACL));
    assert!(!forwarded(EID_SUPD) && !forwarded(EID_BASE) && !forwarded(EID_DBCN));
    assert!(forwarded(0x0800_4756)); // guestvm's private protocol
    assert!(reg::A0 == 10);
};
