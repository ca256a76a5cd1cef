//! SBI services for the host VM. Every handler validates its arguments and
//! returns a `SbiResult`; `handle` is the only place that writes a0/a1.

use super::vcpu::HostVcpu;
use crate::arch::csr::{self, bits, num};
use crate::arch::entry::reg;
use crate::arch::{phys, sbi_call};
use crate::hart::{self, HsmState};
use crate::{console, memory, platform};
use core::sync::atomic::Ordering;
use hyp_addr::HostPhysAddr;
use sbi_abi::{dbcn, hsm, spi, srst, time, HartSelection, SbiError, SbiResult, SbiRet};

/// What the vCPU loop does after a call.
pub enum SbiOutcome {
    /// Write a0/a1 (already done) and step past the ecall.
    Return,
    /// The vCPU stopped (hart_stop).
    Stop,
    /// The vCPU state was reset (non-retentive resume): enter as is.
    Resume,
}

use sbi_abi::eid::{EID_BASE, EID_DBCN, EID_HSM, EID_RFNC, EID_SPI, EID_SRST, EID_TIME};

/// Largest chunk one DBCN call moves; the caller loops for the rest.
const DBCN_CHUNK: u64 = 256;

/// Extensions the host may probe for.
fn implemented(eid: u64) -> bool {
    matches!(
        eid,
        EID_BASE
            | EID_TIME
            | EID_SPI
            | EID_RFNC
            | EID_HSM
            | EID_SRST
            | EID_DBCN
            | cove_abi::EID_COVH
            | cove_abi::EID_NACL
            | cove_abi::EID_SUPD
            | sbi_abi::LEGACY_CONSOLE_PUTCHAR
            | sbi_abi::LEGACY_CONSOLE_GETCHAR
    ) || (eid == crate::stats::EID_SALUS_STATS && crate::stats::enabled())
        || ((eid == cove_abi::EID_COVI || eid == cove_abi::covi::wake::EID_SALUS_COVI_WAKE)
            && crate::tsm::covi::available())
}

pub fn handle(vcpu: &mut HostVcpu) -> SbiOutcome {
    let g = &vcpu.regs.gprs;
    let (eid, fid) = (g[reg::A7], g[reg::A6]);
    let a = [
        g[reg::A0],
        g[reg::A1],
        g[reg::A2],
        g[reg::A3],
        g[reg::A4],
        g[reg::A5],
    ];
    let result = match eid {
        EID_BASE => base_call(fid, a[0]),
        EID_TIME if fid == time::SET_TIMER as u64 => {
            vcpu.set_timer(a[0]);
            Ok(0)
        }
        EID_SPI if fid == spi::SEND_IPI as u64 => send_ipi(vcpu.hartid, a[0], a[1]),
        EID_RFNC => rfence(vcpu.hartid, fid, a),
        EID_HSM => match hsm_call(vcpu, fid, a) {
            Err(e) => Err(e),
            Ok(HsmDone::Value(v)) => Ok(v),
            Ok(HsmDone::Stop) => return SbiOutcome::Stop,
            Ok(HsmDone::Resumed) => return SbiOutcome::Resume,
        },
        EID_SRST if fid == srst::SYSTEM_RESET as u64 => system_reset(a[0], a[1]),
        EID_DBCN => dbcn_call(fid, a),
        cove_abi::EID_COVH => {
            let r = crate::tsm::handle_covh(vcpu, fid, a);
            vcpu.regs.set_sbi_return(cove_abi::error::to_sbiret(r));
            return SbiOutcome::Return;
        }
        cove_abi::EID_COVI => {
            let r = crate::tsm::covi::handle_covi(vcpu, fid, a);
            vcpu.regs.set_sbi_return(cove_abi::error::to_sbiret(r));
            return SbiOutcome::Return;
        }
        cove_abi::covi::wake::EID_SALUS_COVI_WAKE => {
            crate::tsm::covi::wake_call(vcpu.hartid, fid, a[0])
        }
        cove_abi::EID_NACL => nacl_call(vcpu, fid, a),
        cove_abi::EID_SUPD => supd_call(fid),
        crate::stats::EID_SALUS_STATS => stats_call(fid, a),
        sbi_abi::LEGACY_CONSOLE_PUTCHAR => {
            console::write_bytes(&[a[0] as u8]);
            vcpu.regs.gprs[reg::A0] = 0;
            return SbiOutcome::Return;
        }
        sbi_abi::LEGACY_CONSOLE_GETCHAR => {
            // Legacy calls return only a0: the byte, or -1 when none.
            vcpu.regs.gprs[reg::A0] = console::read_byte().map_or(u64::MAX, u64::from);
            return SbiOutcome::Return;
        }
        _ => Err(SbiError::NotSupported),
    };
    vcpu.regs.set_sbi_return(SbiRet::from_result(result));
    SbiOutcome::Return
}

/// SUPD (CoVE "Platform TSM detection"): the TSM lives in the hosting
/// supervisor domain itself, so the only active domain is SDID 0 and COVH
/// is called with SDID 0 (docs/cove-abi-choices.md).
fn supd_call(fid: u64) -> SbiResult {
    use cove_abi::supd::{SupdFunction, HOST_DOMAIN_ONLY};
    match SupdFunction::from_fid(fid) {
        Some(SupdFunction::GetActiveDomains) => Ok(HOST_DOMAIN_ONLY),
        None => Err(SbiError::NotSupported),
    }
}

fn base_call(fid: u64, arg: u64) -> SbiResult {
    sbi_abi::base_answer(fid, arg, platform::get().machine_ids(), implemented)
}

fn send_ipi(me: usize, mask: u64, mask_base: u64) -> SbiResult {
    let nharts = platform::get().nharts as u64;
    let mut phys_mask = 0u64;
    HartSelection::decode(mask, mask_base).for_each(nharts, |h| {
        if h as usize == me {
            csr::set!(num::HVIP, 1 << bits::IRQ_VS_SOFT);
        } else {
            hart::shared(h as usize)
                .vssip
                .store(true, Ordering::Release);
            phys_mask |= 1 << h;
        }
    })?;
    if phys_mask != 0 {
        sbi_call::send_ipi(phys_mask, 0).map_err(|_| SbiError::Failed)?;
    }
    Ok(0)
}

fn rfence(me: usize, fid: u64, a: [u64; 6]) -> SbiResult {
    // The hfence calls are for hypervisors; the host is not one here.
    sbi_abi::check_rfence(fid, a[2], a[3])?;
    let nharts = platform::get().nharts as u64;
    let mut targets = 0u64;
    HartSelection::decode(a[0], a[1]).for_each(nharts, |h| targets |= 1 << h)?;
    hart::remote_fence(me, targets);
    Ok(0)
}

enum HsmDone {
    Value(u64),
    Stop,
    Resumed,
}

fn valid_hart(id: u64) -> Result<usize, SbiError> {
    if id < platform::get().nharts as u64 {
        Ok(id as usize)
    } else {
        Err(SbiError::InvalidParam)
    }
}

fn hsm_call(vcpu: &mut HostVcpu, fid: u64, a: [u64; 6]) -> Result<HsmDone, SbiError> {
    match fid as usize {
        hsm::HART_START => {
            let target = valid_hart(a[0])?;
            let (addr, opaque) = (a[1], a[2]);
            if !memory::host_owns(addr, 4) {
                return Err(SbiError::InvalidAddress);
            }
            let t = hart::shared(target);
            if t.hsm() != HsmState::Stopped {
                return Err(SbiError::AlreadyAvailable);
            }
            t.start_addr.store(addr, Ordering::Release);
            t.start_opaque.store(opaque, Ordering::Release);
            if !t.hsm_transition(HsmState::Stopped, HsmState::StartPending) {
                return Err(SbiError::AlreadyAvailable);
            }
            sbi_call::send_ipi(1 << target, 0).map_err(|_| SbiError::Failed)?;
            Ok(HsmDone::Value(0))
        }
        hsm::HART_STOP => {
            hart::shared(vcpu.hartid).set_hsm(HsmState::StopPending);
            Ok(HsmDone::Stop)
        }
        hsm::HART_GET_STATUS => {
            let target = valid_hart(a[0])?;
            Ok(HsmDone::Value(hart::shared(target).hsm() as u64))
        }
        hsm::HART_SUSPEND => suspend(vcpu, a[0], a[1], a[2]),
        _ => Err(SbiError::NotSupported),
    }
}

fn suspend(
    vcpu: &mut HostVcpu,
    kind: u64,
    resume_addr: u64,
    opaque: u64,
) -> Result<HsmDone, SbiError> {
    const RETENTIVE: u64 = hsm::suspend_type::RETENTIVE as u64;
    const NON_RETENTIVE: u64 = hsm::suspend_type::NON_RETENTIVE as u64;
    // suspend_type is uint32: bits 63..32 are ignored.
    let kind = kind & 0xffff_ffff;
    if kind != RETENTIVE && kind != NON_RETENTIVE {
        return Err(SbiError::InvalidParam);
    }
    if kind == NON_RETENTIVE && !memory::host_owns(resume_addr, 4) {
        return Err(SbiError::InvalidAddress);
    }
    let me = hart::shared(vcpu.hartid);
    me.set_hsm(HsmState::Suspended);
    // Wakes on any pending interrupt enabled for HS or (through hie) for the
    // guest; spurious wake-ups are allowed by the spec.
    crate::arch::wfi();
    me.set_hsm(HsmState::Started);
    if kind == NON_RETENTIVE {
        vcpu.reset(resume_addr, opaque);
        return Ok(HsmDone::Resumed);
    }
    Ok(HsmDone::Value(0))
}

fn system_reset(kind: u64, reason: u64) -> SbiResult {
    // uint32 parameters: on RV64 the upper halves are ignored.
    let (kind, reason) = (kind as u32, reason as u32);
    match kind {
        srst::RESET_TYPE_SHUTDOWN | srst::RESET_TYPE_COLD_REBOOT | srst::RESET_TYPE_WARM_REBOOT => {
        }
        0xF000_0000..=u32::MAX => return Err(SbiError::NotSupported),
        _ => return Err(SbiError::InvalidParam),
    }
    if (2..0xE000_0000).contains(&reason) {
        return Err(SbiError::InvalidParam);
    }
    let what = match kind {
        srst::RESET_TYPE_SHUTDOWN => "shutdown",
        srst::RESET_TYPE_COLD_REBOOT => "cold reboot",
        _ => "warm reboot",
    };
    // RAM survives a warm reset: no TVM page may reach the next host boot.
    // A vCPU running elsewhere holds TVM state the TSM cannot clear now.
    crate::tsm::reset::scrub_for_reset().map_err(|_| SbiError::Failed)?;
    // The host's last lines first, then the table (bench mode).
    super::uart16550::flush();
    crate::stats::report();
    crate::info!("host requested {} (reason {})", what, reason);
    // Before the test finisher too: it ends QEMU at once.
    super::uart16550::drain();
    console::drain();
    if kind == srst::RESET_TYPE_SHUTDOWN && reason == srst::RESET_REASON_SYSTEM_FAILURE {
        // Make the failure visible as QEMU's exit status.
        crate::drivers::test_finisher::fail(1);
    }
    let r = sbi_call::system_reset(kind, reason);
    r.into_result()
}

fn dbcn_call(fid: u64, a: [u64; 6]) -> SbiResult {
    match fid as usize {
        dbcn::CONSOLE_WRITE | dbcn::CONSOLE_READ => {
            let (len, lo, hi) = (a[0], a[1], a[2]);
            if hi != 0 || lo.checked_add(len).is_none() {
                return Err(SbiError::InvalidParam);
            }
            let n = len.min(DBCN_CHUNK);
            if !memory::host_owns(lo, n) {
                return Err(SbiError::InvalidParam);
            }
            let mut buf = [0u8; DBCN_CHUNK as usize];
            // n <= DBCN_CHUNK, the buffer's length.
            let buf = buf.get_mut(..n as usize).unwrap_or_default();
            if fid as usize == dbcn::CONSOLE_WRITE {
                phys::copy_from(HostPhysAddr::new(lo), buf);
                console::write_bytes(buf);
                Ok(n)
            } else {
                let mut got = 0;
                for slot in buf.iter_mut() {
                    match console::read_byte() {
                        Some(b) => {
                            *slot = b;
                            got += 1;
                        }
                        None => break,
                    }
                }
                phys::copy_to(HostPhysAddr::new(lo), buf.get(..got).unwrap_or_default());
                Ok(got as u64)
            }
        }
        dbcn::CONSOLE_WRITE_BYTE => {
            console::write_bytes(&[a[0] as u8]);
            Ok(0)
        }
        _ => Err(SbiError::NotSupported),
    }
}

/// NACL: only the shared memory the TSM needs for run_tvm_vcpu; none of the
/// optional acceleration features.
fn nacl_call(vcpu: &mut HostVcpu, fid: u64, a: [u64; 6]) -> SbiResult {
    use cove_abi::nacl::{NaclFunction, SHMEM_DISABLE, SHMEM_SIZE};
    match NaclFunction::from_fid(fid) {
        Some(NaclFunction::ProbeFeature) => Ok(0),
        Some(NaclFunction::SetShmem) => {
            let (lo, hi, flags) = (a[0], a[1], a[2]);
            // After a reset that failed in the firmware the TSM lock stays
            // held (tsm::reset): fail instead of waiting for it.
            if crate::tsm::reset::resetting() {
                return Err(SbiError::Failed);
            }
            let _tsm = crate::tsm::TSM.lock();
            let slot = &hart::shared(vcpu.hartid).nacl_shmem;
            if lo == SHMEM_DISABLE && hi == SHMEM_DISABLE {
                vcpu.nacl_shmem = None;
                slot.store(0, Ordering::Release);
                return Ok(0);
            }
            if flags != 0 {
                return Err(SbiError::InvalidParam);
            }
            if lo % 4096 != 0 {
                return Err(SbiError::InvalidParam);
            }
            if hi != 0 {
                return Err(SbiError::InvalidAddress);
            }
            if !memory::host_owns(lo, SHMEM_SIZE as u64) {
                return Err(SbiError::InvalidAddress);
            }
            vcpu.nacl_shmem = Some(lo);
            slot.store(lo, Ordering::Release);
            Ok(0)
        }
        _ => Err(SbiError::NotSupported),
    }
}

/// The Salus statistics vendor extension (docs/linux-host.md); only with
/// `salus.bench`, so timings of Salus's work are not exposed otherwise.
fn stats_call(fid: u64, a: [u64; 6]) -> SbiResult {
    use crate::stats;
    if !stats::enabled() {
        return Err(SbiError::NotSupported);
    }
    let entry = |i: u64| usize::try_from(i).map_err(|_| SbiError::InvalidParam);
    match fid {
        stats::FID_NUM_ENTRIES => Ok(stats::NUM_ENTRIES as u64),
        stats::FID_READ_COUNT | stats::FID_READ_TICKS => {
            let hart = valid_hart(a[0])?;
            let (count, ticks) = stats::read(hart, entry(a[1])?).ok_or(SbiError::InvalidParam)?;
            Ok(if fid == stats::FID_READ_COUNT {
                count
            } else {
                ticks
            })
        }
        stats::FID_RESET => {
            stats::reset();
            Ok(0)
        }
        stats::FID_TIMEBASE => Ok(stats::timebase_hz()),
        _ => Err(SbiError::NotSupported),
    }
}
