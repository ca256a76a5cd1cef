//! Salus's own entropy. The firmware's `/chosen/rng-seed` is split at boot
//! (measurement::seed): the host gets a derived seed in its device tree,
//! Salus keeps a derived key and TVMs draw from it through a TSM-served
//! call, so the host can neither know nor predict what a TVM gets. Without
//! a firmware seed there is no key, and the call is NOT_SUPPORTED.

use core::sync::atomic::{AtomicU64, Ordering};
use measurement::{seed, Backend, DIGEST_LEN};

static KEY: spin::Once<[u8; DIGEST_LEN]> = spin::Once::new();
static DRAWS: AtomicU64 = AtomicU64::new(0);

fn backend() -> Backend {
    Backend::select(crate::platform::get().has_zknh)
}

/// Takes the firmware's seed; returns the host's (same length, at most 48
/// bytes). Called once, at boot.
pub fn split_firmware_seed(fw: &[u8]) -> alloc::vec::Vec<u8> {
    KEY.call_once(|| seed::derive(backend(), seed::TSM_LABEL, fw));
    let (h, n) = seed::host_seed(backend(), fw);
    h[..n].to_vec()
}

/// Whether TVMs can draw (a firmware seed existed).
pub fn available() -> bool {
    KEY.get().is_some()
}

/// 64 fresh bits for a TVM.
pub fn draw() -> Option<u64> {
    let key = KEY.get()?;
    let n = DRAWS.fetch_add(1, Ordering::Relaxed);
    let extra = crate::arch::time() ^ ((crate::arch::entry::hart_id() as u64) << 56);
    Some(seed::draw(backend(), key, n, extra))
}
