//! The DICE layers of Salus's attestation (docs/attestation.md):
//!
//! ```text
//! UDS ──HKDF──▶ platform CDI ──▶ platform key (Ed25519)
//!                    │
//!                    └─HKDF(salt = TSM measurement)──▶ TSM CDI ──▶ TSM key
//!                                                        │
//!                        HKDF(salt = TVM initial registers)──▶ TVM CDI
//! ```
//!
//! Every derivation is HKDF-SHA384 (RFC 5869) with a fixed `info` label per
//! layer, so no two layers can produce the same secret from the same input.
//! A key is the Ed25519 key whose 32-byte seed is HKDF-Expand of the CDI
//! with the key label. Secrets ([`Cdi`], the seeds, `SigningKey`) are
//! zeroed when dropped.
#![no_std]
#![forbid(unsafe_code)]

use ed25519_dalek::SigningKey;
use hkdf::Hkdf;
use sha2::Sha384;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// Bytes of a UDS, a CDI and a measurement (SHA-384).
pub const LEN: usize = 48;

/// HKDF salt of the first layer (the UDS is the input key material).
pub const PLATFORM_SALT: &[u8] = b"SALUS-DICE-v1";
pub const PLATFORM_CDI_INFO: &[u8] = b"salus platform CDI";
pub const TSM_CDI_INFO: &[u8] = b"salus TSM CDI";
pub const TVM_CDI_INFO: &[u8] = b"salus TVM CDI";
pub const KEY_INFO: &[u8] = b"salus attestation key";

/// A Compound Device Identifier (or the UDS): secret, zeroed on drop.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Cdi([u8; LEN]);

impl Cdi {
    pub fn from_bytes(b: [u8; LEN]) -> Cdi {
        Cdi(b)
    }

    /// Test vectors only: the secret bytes.
    #[cfg(test)]
    fn bytes(&self) -> &[u8; LEN] {
        &self.0
    }

    fn derive(&self, salt: &[u8], info: &[u8]) -> Cdi {
        let hk = Hkdf::<Sha384>::new(Some(salt), &self.0);
        let mut out = [0u8; LEN];
        // 48 bytes is far below HKDF-SHA384's limit (255 * 48).
        let _ = hk.expand(info, &mut out);
        Cdi(out)
    }

    /// The Ed25519 attestation key of this layer.
    pub fn signing_key(&self) -> SigningKey {
        let mut seed = [0u8; 32];
        let hk = Hkdf::<Sha384>::new(None, &self.0);
        let _ = hk.expand(KEY_INFO, &mut seed);
        let key = SigningKey::from_bytes(&seed);
        seed.zeroize();
        key
    }
}

/// The platform layer's CDI from the Unique Device Secret.
pub fn platform_cdi(uds: &Cdi) -> Cdi {
    uds.derive(PLATFORM_SALT, PLATFORM_CDI_INFO)
}

/// The TSM layer's CDI: the platform CDI bound to the TSM's measurement.
pub fn tsm_cdi(platform: &Cdi, tsm_measurement: &[u8; LEN]) -> Cdi {
    platform.derive(tsm_measurement, TSM_CDI_INFO)
}

/// A TVM's CDI: the TSM CDI bound to the TVM's initial measurement
/// registers: salt = their count (one byte) || the registers in index
/// order. The count matters: HMAC pads its key with zeros, so without it
/// a trailing all-zero register would not change the CDI.
pub fn tvm_cdi(tsm: &Cdi, initial_registers: &[[u8; LEN]]) -> Cdi {
    let mut salt = [0u8; 1 + 8 * LEN];
    let n = initial_registers.len().min(8);
    salt[0] = n as u8;
    for (k, r) in initial_registers.iter().take(n).enumerate() {
        salt[1 + k * LEN..1 + (k + 1) * LEN].copy_from_slice(r);
    }
    let cdi = tsm.derive(&salt[..1 + n * LEN], TVM_CDI_INFO);
    salt.zeroize();
    cdi
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;

    fn hex(b: &[u8]) -> std::string::String {
        b.iter().map(|x| std::format!("{x:02x}")).collect()
    }

    /// UDS = 48 bytes 0x00..0x2f. The expected values were computed
    /// independently with Python's hmac/hashlib (HKDF written from RFC 5869:
    /// extract = HMAC(salt, ikm), expand T(1) = HMAC(prk, info || 0x01)).
    #[test]
    fn hkdf_layers_match_independent_vectors() {
        let uds = Cdi::from_bytes(core::array::from_fn(|i| i as u8));
        let p = platform_cdi(&uds);
        assert_eq!(hex(p.bytes()), PLATFORM_CDI_VECTOR);
        let t = tsm_cdi(&p, &[0x11; LEN]);
        assert_eq!(hex(t.bytes()), TSM_CDI_VECTOR);
        let v = tvm_cdi(&t, &[[0x22; LEN], [0x33; LEN]]);
        assert_eq!(hex(v.bytes()), TVM_CDI_VECTOR);
    }

    const PLATFORM_CDI_VECTOR: &str = "483cbec2fa4f453cb06c7fb33c084ad01524047dc86088cd960b3941d99e40babf5f335ed68ae98648695680b2ee43ae";
    const TSM_CDI_VECTOR: &str = "228960dc2e3c010ff7318a1a8ce09bfe684618e6bef8735be795840b0bca3b5f524f45f2d37dc40b247a0bbe7bf598f8";
    const TVM_CDI_VECTOR: &str = "a7136d9db07e2653d776eec1689d53463abe2f101f17404523f8867837a467b9adf30b220ef4db9b4ed643cdce68633f";

    /// RFC 8032 test 1: the seed 9d61b1...7f60 gives the public key
    /// d75a98...511a (the key step is plain Ed25519 from a 32-byte seed).
    #[test]
    fn ed25519_from_seed_is_rfc8032() {
        let seed: [u8; 32] = [
            0x9d, 0x61, 0xb1, 0x9d, 0xef, 0xfd, 0x5a, 0x60, 0xba, 0x84, 0x4a, 0xf4, 0x92, 0xec,
            0x2c, 0xc4, 0x44, 0x49, 0xc5, 0x69, 0x7b, 0x32, 0x69, 0x19, 0x70, 0x3b, 0xac, 0x03,
            0x1c, 0xae, 0x7f, 0x60,
        ];
        let k = SigningKey::from_bytes(&seed);
        assert_eq!(
            hex(k.verifying_key().as_bytes()),
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
        );
    }

    #[test]
    fn layers_and_inputs_separate() {
        let uds = Cdi::from_bytes([7; LEN]);
        let p = platform_cdi(&uds);
        let t1 = tsm_cdi(&p, &[1; LEN]);
        let t2 = tsm_cdi(&p, &[2; LEN]);
        assert_ne!(t1.bytes(), t2.bytes(), "a different TSM, a different CDI");
        assert_ne!(p.bytes(), uds.bytes());
        let v1 = tvm_cdi(&t1, &[[3; LEN]]);
        let v2 = tvm_cdi(&t1, &[[3; LEN], [0; LEN]]);
        assert_ne!(v1.bytes(), v2.bytes(), "the register count is bound too");
        let k1 = t1.signing_key().verifying_key();
        let k2 = t2.signing_key().verifying_key();
        assert_ne!(k1, k2);
        assert_eq!(
            k1,
            t1.clone().signing_key().verifying_key(),
            "deterministic"
        );
        let other_uds = platform_cdi(&Cdi::from_bytes([8; LEN]));
        assert_ne!(
            other_uds.signing_key().verifying_key(),
            p.signing_key().verifying_key()
        );
    }
}
