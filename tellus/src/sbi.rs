//! Typed wrappers around the SBI calls tellus makes (SBI spec v2.0).

use sbi_abi::{base, dbcn, hsm, rfnc, spi, srst, time, SbiRet};

use crate::arch::ecall;

pub use sbi_abi::eid::{EID_BASE, EID_DBCN, EID_HSM, EID_RFNC, EID_SPI, EID_SRST, EID_TIME};
/// Performance Monitoring extension, which Salus does not offer.
pub const EID_PMU: u64 = 0x0050_4D55;

/// Calls a function that takes only scalar arguments and neither reads nor
/// writes memory on tellus's behalf nor transfers control anywhere.
pub fn call(eid: u64, fid: u64, args: [u64; 6]) -> SbiRet {
    // SAFETY: scalar-only calls (BASE, TIME, IPI, RFENCE, HSM status/stop,
    // SRST and unknown ids) cannot touch tellus memory or run code.
    unsafe { ecall(eid, fid, args) }
}

fn call0(eid: u64, fid: usize) -> SbiRet {
    call(eid, fid as u64, [0; 6])
}

pub fn spec_version() -> SbiRet {
    call0(EID_BASE, base::GET_SBI_SPEC_VERSION)
}
pub fn impl_id() -> SbiRet {
    call0(EID_BASE, base::GET_SBI_IMPL_ID)
}
pub fn impl_version() -> SbiRet {
    call0(EID_BASE, base::GET_SBI_IMPL_VERSION)
}
pub fn probe(eid: u64) -> SbiRet {
    call(EID_BASE, base::PROBE_EXTENSION as u64, [eid, 0, 0, 0, 0, 0])
}
pub fn mvendorid() -> SbiRet {
    call0(EID_BASE, base::GET_MVENDORID)
}
pub fn marchid() -> SbiRet {
    call0(EID_BASE, base::GET_MARCHID)
}
pub fn mimpid() -> SbiRet {
    call0(EID_BASE, base::GET_MIMPID)
}

pub fn set_timer(deadline: u64) -> SbiRet {
    call(EID_TIME, time::SET_TIMER as u64, [deadline, 0, 0, 0, 0, 0])
}

pub fn send_ipi(mask: u64, base: u64) -> SbiRet {
    call(EID_SPI, spi::SEND_IPI as u64, [mask, base, 0, 0, 0, 0])
}

pub fn remote_fence_i(mask: u64, base: u64) -> SbiRet {
    call(
        EID_RFNC,
        rfnc::REMOTE_FENCE_I as u64,
        [mask, base, 0, 0, 0, 0],
    )
}
pub fn remote_sfence_vma(mask: u64, base: u64, start: u64, size: u64) -> SbiRet {
    call(
        EID_RFNC,
        rfnc::REMOTE_SFENCE_VMA as u64,
        [mask, base, start, size, 0, 0],
    )
}
pub fn remote_sfence_vma_asid(mask: u64, base: u64, start: u64, size: u64, asid: u64) -> SbiRet {
    call(
        EID_RFNC,
        rfnc::REMOTE_SFENCE_VMA_ASID as u64,
        [mask, base, start, size, asid, 0],
    )
}

pub fn hart_stop() -> SbiRet {
    call0(EID_HSM, hsm::HART_STOP)
}
pub fn hart_get_status(hartid: u64) -> SbiRet {
    call(
        EID_HSM,
        hsm::HART_GET_STATUS as u64,
        [hartid, 0, 0, 0, 0, 0],
    )
}

/// HSM hart_start.
///
/// # Safety
/// On success hart `hartid` starts executing at `start_addr` with `opaque`
/// in a1: the caller must pass a valid entry point (or one the SBI must
/// refuse).
pub unsafe fn hart_start(hartid: u64, start_addr: u64, opaque: u64) -> SbiRet {
    // SAFETY: the caller vouches for `start_addr`.
    unsafe {
        ecall(
            EID_HSM,
            hsm::HART_START as u64,
            [hartid, start_addr, opaque, 0, 0, 0],
        )
    }
}

/// HSM hart_suspend of a retentive type (the call returns to the caller;
/// resume address and opaque are ignored by the spec for retentive types).
/// Types with bit 31 set (non-retentive) are refused here.
pub fn hart_suspend_retentive(suspend_type: u32) -> Option<SbiRet> {
    if suspend_type & 0x8000_0000 != 0 {
        return None;
    }
    // SAFETY: retentive suspend returns to the caller like any ecall.
    Some(unsafe {
        ecall(
            EID_HSM,
            hsm::HART_SUSPEND as u64,
            [suspend_type as u64, 0, 0, 0, 0, 0],
        )
    })
}

pub fn system_reset(reset_type: u32, reason: u32) -> SbiRet {
    call(
        EID_SRST,
        srst::SYSTEM_RESET as u64,
        [reset_type as u64, reason as u64, 0, 0, 0, 0],
    )
}

/// DBCN console_write of `bytes`.
pub fn console_write(bytes: &[u8]) -> SbiRet {
    console_write_raw(bytes.len() as u64, bytes.as_ptr() as u64, 0)
}

/// DBCN console_write with arbitrary (possibly invalid) buffer parameters.
pub fn console_write_raw(len: u64, base_lo: u64, base_hi: u64) -> SbiRet {
    // SAFETY: console_write only reads the buffer; a bad buffer must be
    // rejected by the SBI, and reading can never corrupt tellus.
    unsafe {
        ecall(
            EID_DBCN,
            dbcn::CONSOLE_WRITE as u64,
            [len, base_lo, base_hi, 0, 0, 0],
        )
    }
}

/// DBCN console_read into `buf` (non-blocking).
pub fn console_read(buf: &mut [u8]) -> SbiRet {
    // SAFETY: the SBI writes at most `buf.len()` bytes into `buf`, which we
    // borrow mutably for the call.
    unsafe {
        ecall(
            EID_DBCN,
            dbcn::CONSOLE_READ as u64,
            [buf.len() as u64, buf.as_mut_ptr() as u64, 0, 0, 0, 0],
        )
    }
}

pub fn console_write_byte(b: u8) -> SbiRet {
    call(
        EID_DBCN,
        dbcn::CONSOLE_WRITE_BYTE as u64,
        [b as u64, 0, 0, 0, 0, 0],
    )
}

/// Legacy (v0.1) console_putchar; returns a0.
pub fn legacy_putchar(c: u8) -> i64 {
    call(
        sbi_abi::LEGACY_CONSOLE_PUTCHAR,
        0,
        [c as u64, 0, 0, 0, 0, 0],
    )
    .error
}
