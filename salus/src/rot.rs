//! Salus's place in the DICE chain (docs/attestation.md), at boot.
//!
//! QEMU has no hardware root of trust, so the Unique Device Secret is a
//! stand-in: `/chosen/salus,uds` (48 bytes) if the firmware's device tree
//! has it, else [`TEST_UDS`], a fixed value in this source. Neither is a
//! hardware secret, and the banner and the evidence say so (debug
//! platform). From the UDS: the platform CDI and key, then the TSM CDI bound
//! to the SHA-384 of Salus's code and read-only data as loaded. The UDS and
//! the platform CDI are zeroed before `init` returns; the TSM CDI stays in
//! Salus's memory (TVM CDIs come from it).

use dice::{Cdi, LEN};
use measurement::Backend;
use spin::Once;
use zeroize::Zeroize;

/// The stand-in UDS when the platform gives none. NOT a secret.
pub const TEST_UDS: [u8; LEN] = *b"salus stand-in UDS: NOT a hardware root of trust";

/// What the chain says about this boot (public).
pub struct Identity {
    /// The platform key (the trust anchor a verifier is given).
    pub platform_key: [u8; 32],
    /// The TSM key, certified by the platform key.
    pub tsm_key: [u8; 32],
    /// SHA-384 of Salus's code and read-only data.
    pub tsm_measurement: [u8; LEN],
    /// The UDS came from the device tree (else the built-in test value).
    pub uds_from_platform: bool,
}

static IDENTITY: Once<Identity> = Once::new();
static TSM_CDI: Once<spin::Mutex<Cdi>> = Once::new();

/// Derives the chain at boot; `uds` is the device tree's, zeroed here.
pub fn init(uds: Option<&mut [u8]>, zknh: bool) -> &'static Identity {
    let (lo, hi) = crate::arch::entry::ro_range();
    // SAFETY: Salus's own code and constants, never written.
    let image =
        unsafe { crate::arch::phys::shared_bytes(hyp_addr::HostPhysAddr::new(lo), hi - lo) };
    let backend = Backend::select(zknh);
    let tsm_measurement = measurement::sha384(backend, image);
    let mut raw = TEST_UDS;
    let from_platform = match uds {
        Some(b) if b.len() == LEN => {
            raw.copy_from_slice(b);
            b.zeroize();
            true
        }
        Some(b) => {
            b.zeroize();
            false
        }
        None => false,
    };
    let uds = Cdi::from_bytes(raw);
    raw.zeroize();
    let platform = dice::platform_cdi(&uds);
    drop(uds);
    let platform_key = platform.signing_key().verifying_key().to_bytes();
    let tsm = dice::tsm_cdi(&platform, &tsm_measurement);
    drop(platform);
    let tsm_key = tsm.signing_key().verifying_key().to_bytes();
    TSM_CDI.call_once(|| spin::Mutex::new(tsm));
    IDENTITY.call_once(|| Identity {
        platform_key,
        tsm_key,
        tsm_measurement,
        uds_from_platform: from_platform,
    })
}
