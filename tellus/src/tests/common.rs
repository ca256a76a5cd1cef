//! What the SBI tests share: the SBI errors and states they expect, and
//! helpers to pick harts.

use core::sync::atomic::{AtomicBool, Ordering::*};

use sbi_abi::hsm::hart_state;

use crate::platform::{Platform, MAX_HARTS};

pub const OK: i64 = 0;
pub const ERR_NOT_SUPPORTED: i64 = -2;
pub const ERR_INVALID_PARAM: i64 = -3;
pub const ERR_INVALID_ADDRESS: i64 = -5;
pub const ERR_ALREADY_AVAILABLE: i64 = -6;

pub const STARTED: u64 = hart_state::STARTED as u64;
pub const STOPPED: u64 = hart_state::STOPPED as u64;

/// An id no SBI implementation defines.
pub const UNKNOWN_EID: u64 = 0x0A00_0000;
pub const UNKNOWN_FID: u64 = 0x777;

/// Secondary harts that are started and serving commands.
pub static ALIVE: [AtomicBool; MAX_HARTS] = [const { AtomicBool::new(false) }; MAX_HARTS];

pub fn me(p: &Platform) -> u64 {
    p.boot_hartid
}

/// (mask, base) selecting just `hartid`, in the `1 << id, 0` form when
/// possible.
pub fn mask_of(hartid: u64) -> (u64, u64) {
    if hartid < 64 {
        (1 << hartid, 0)
    } else {
        (1, hartid)
    }
}

/// (mask, base) for one hart past the last one.
pub fn bad_mask(p: &Platform) -> (u64, u64) {
    (1, p.max_hartid() + 1)
}

/// Indices of secondaries (every FDT hart but the boot hart).
pub fn secondaries(p: &Platform) -> impl Iterator<Item = (usize, u64)> + '_ {
    let boot = p.boot_hartid;
    p.hart_ids()
        .iter()
        .copied()
        .enumerate()
        .filter(move |&(_, h)| h != boot)
}

pub fn alive(p: &Platform) -> impl Iterator<Item = (usize, u64)> + '_ {
    secondaries(p).filter(|&(i, _)| ALIVE[i].load(Acquire))
}
