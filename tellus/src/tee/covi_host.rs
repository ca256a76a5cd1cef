//! COVI from the host's side: where a hart's guest interrupt files are,
//! the `tvm_aia_params` tellus uses, and COVI calls made on a given hart
//! (bind and rebind must run where the file is).

use super::calls::{covi_call, ERR_FAILED, PAGE};
use super::harts::boot_slot;
use super::pool::wr;
use crate::platform::Platform;

/// COVI: host physical address of hart slot `slot`'s guest file `vgein`.
pub fn guest_file_addr(p: &Platform, slot: usize, vgein: u64) -> u64 {
    p.imsic + ((slot as u64) << (12 + p.imsic_guest_bits)) + vgein * PAGE
}

/// COVI: tvm_aia_params with vCPU k's file at `base + k * 4 KiB`.
pub fn covi_params(base: u64, hart_bits: u32) -> cove_abi::covi::TvmAiaParams {
    cove_abi::covi::TvmAiaParams {
        imsic_base_addr: base,
        group_index_bits: 0,
        group_index_shift: 24,
        hart_index_bits: hart_bits,
        guest_index_bits: 0,
        guests_per_hart: 0,
        _padding: 0,
    }
}

/// Writes `prm` into the host page `page`.
pub fn write_aia_params(page: u64, prm: &cove_abi::covi::TvmAiaParams) {
    let b = prm.to_bytes();
    for (k, w) in b.chunks_exact(8).enumerate() {
        let mut v = [0u8; 8];
        v.copy_from_slice(w);
        wr(page + 8 * k as u64, u64::from_le_bytes(v));
    }
}

/// Arguments for the COVI call a secondary makes (`covi_on`).
static REMOTE_COVI: spin::Mutex<(cove_abi::covi::CoviFunction, [u64; 3])> =
    spin::Mutex::new((cove_abi::covi::CoviFunction::InjectTvmCpu, [0; 3]));

fn remote_covi(_: u64) -> i64 {
    let (f, a) = *REMOTE_COVI.lock();
    covi_call(f, a[0], a[1], a[2])
}

/// A COVI call made on hart slot `slot` (here if it is this hart's).
pub fn covi_on(p: &Platform, slot: usize, f: cove_abi::covi::CoviFunction, a: [u64; 3]) -> i64 {
    if slot == boot_slot(p) {
        return covi_call(f, a[0], a[1], a[2]);
    }
    *REMOTE_COVI.lock() = (f, a);
    crate::harts::call(p, slot, remote_covi, 0, p.ms(2000)).unwrap_or(ERR_FAILED)
}
