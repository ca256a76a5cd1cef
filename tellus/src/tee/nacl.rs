//! NACL shared memory: one area per hart, registered once per hart.

use core::sync::atomic::{AtomicBool, Ordering::*};

use cove_abi::nacl;

use super::calls::{nacl_set_shmem, OK};
use crate::platform::MAX_HARTS;

#[repr(C, align(4096))]
struct NaclArea([u8; nacl::SHMEM_SIZE]);

static mut NACL: [NaclArea; MAX_HARTS] = [const { NaclArea([0; nacl::SHMEM_SIZE]) }; MAX_HARTS];
static NACL_SET: [AtomicBool; MAX_HARTS] = [const { AtomicBool::new(false) }; MAX_HARTS];

pub fn nacl_addr(slot: usize) -> u64 {
    // SAFETY: only the address is taken.
    unsafe { (&raw mut NACL[slot]) as u64 }
}

pub fn nacl_gpr(slot: usize, reg: usize) -> u64 {
    let a = nacl_addr(slot) + nacl::gpr_offset(reg).unwrap() as u64;
    // SAFETY: inside tellus's own NACL area.
    unsafe { core::ptr::read_volatile(a as *const u64) }
}

pub fn nacl_set_gpr(slot: usize, reg: usize, v: u64) {
    let a = nacl_addr(slot) + nacl::gpr_offset(reg).unwrap() as u64;
    // SAFETY: inside tellus's own NACL area.
    unsafe { core::ptr::write_volatile(a as *mut u64, v) }
}

/// Byte `k` of the console bytes the TSM copied for a DBCN exit.
pub fn nacl_console_byte(slot: usize, k: usize) -> u8 {
    let a = nacl_addr(slot) + (nacl::CONSOLE_BYTES_OFFSET + k) as u64;
    // SAFETY: inside tellus's own NACL area (k < CONSOLE_BYTES_MAX).
    unsafe { core::ptr::read_volatile(a as *const u8) }
}

/// a0..a7 of a forwarded or notified ecall exit taken on hart `slot`.
pub fn nacl_ecall_args(slot: usize) -> [u64; 8] {
    core::array::from_fn(|k| nacl_gpr(slot, nacl::gpr::A0 + k))
}

pub fn nacl_csr(slot: usize, csr: u16) -> u64 {
    let a = nacl_addr(slot) + nacl::csr_offset(csr).unwrap() as u64;
    // SAFETY: inside tellus's own NACL area.
    unsafe { core::ptr::read_volatile(a as *const u64) }
}

/// Registers this hart's NACL area (once per hart, or again with `force`).
pub fn nacl_setup_here(slot: usize, force: bool) -> i64 {
    if NACL_SET[slot].load(Acquire) && !force {
        return OK;
    }
    let r = nacl_set_shmem(nacl_addr(slot), 0, 0);
    if r.error == OK {
        NACL_SET[slot].store(true, Release);
    }
    r.error
}

/// Forgets every registration (after a hart was stopped and restarted).
pub fn nacl_forget(slot: usize) {
    NACL_SET[slot].store(false, Release);
}
