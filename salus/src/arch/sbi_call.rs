//! Calls from Salus (HS mode) down to the firmware's SBI (OpenSBI, M mode).

use sbi_abi::{SbiError, SbiRet};

/// Raw ecall with up to 6 arguments.
#[inline(always)]
pub fn ecall(eid: u64, fid: u64, args: [u64; 6]) -> SbiRet {
    let error: i64;
    let value: u64;
    // SAFETY: an ecall to M mode; OpenSBI only clobbers a0/a1 and follows the
    // SBI calling convention. Arguments pointing to memory are physical
    // addresses of Salus-owned buffers chosen by the callers below.
    unsafe {
        core::arch::asm!(
            "ecall",
            inlateout("a0") args[0] => error,
            inlateout("a1") args[1] => value,
            in("a2") args[2], in("a3") args[3], in("a4") args[4], in("a5") args[5],
            in("a6") fid, in("a7") eid,
            options(nostack)
        );
    }
    SbiRet { error, value }
}

pub fn probe(eid: u64) -> bool {
    matches!(ecall(0x10, 3, [eid, 0, 0, 0, 0, 0]).into_result(), Ok(v) if v != 0)
}

pub fn base_value(fid: u64) -> u64 {
    ecall(0x10, fid, [0; 6]).value
}

pub fn dbcn_write(bytes: &[u8]) -> Result<u64, SbiError> {
    ecall(
        0x4442_434E,
        0,
        [bytes.len() as u64, bytes.as_ptr() as u64, 0, 0, 0, 0],
    )
    .into_result()
}

pub fn legacy_putchar(c: u8) {
    ecall(0x01, 0, [c as u64, 0, 0, 0, 0, 0]);
}

pub fn set_timer(deadline: u64) {
    ecall(0x5449_4D45, 0, [deadline, 0, 0, 0, 0, 0]);
}

pub fn send_ipi(hart_mask: u64, base: u64) -> Result<u64, SbiError> {
    ecall(0x0073_5049, 0, [hart_mask, base, 0, 0, 0, 0]).into_result()
}

pub fn hart_start(hartid: u64, addr: u64, opaque: u64) -> Result<u64, SbiError> {
    ecall(0x0048_534D, 0, [hartid, addr, opaque, 0, 0, 0]).into_result()
}

pub fn system_reset(kind: u32, reason: u32) -> SbiRet {
    ecall(0x5352_5354, 0, [kind as u64, reason as u64, 0, 0, 0, 0])
}
