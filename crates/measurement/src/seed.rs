//! Splitting the firmware's boot entropy (`/chosen/rng-seed`) by one-way
//! derivations: a seed for the host (handed on in its device tree) and a
//! key only Salus keeps, from which TVMs draw. Knowing its own seed, the
//! host learns nothing about the key, so it cannot predict a TVM's draws.

use crate::{Backend, Sha384, DIGEST_LEN};

/// Label of the host's derivation (domain separation).
pub const HOST_LABEL: &[u8] = b"salus: host rng-seed v1";
/// Label of the TSM key's derivation.
pub const TSM_LABEL: &[u8] = b"salus: tsm entropy key v1";

/// SHA-384(label || len(seed) as u64 LE || seed).
pub fn derive(backend: Backend, label: &[u8], seed: &[u8]) -> [u8; DIGEST_LEN] {
    let mut h = Sha384::new(backend);
    h.update(label);
    h.update(&(seed.len() as u64).to_le_bytes());
    h.update(seed);
    h.finalize()
}

/// The host's seed: as long as the firmware's, at most 48 bytes.
pub fn host_seed(backend: Backend, seed: &[u8]) -> ([u8; DIGEST_LEN], usize) {
    (
        derive(backend, HOST_LABEL, seed),
        seed.len().min(DIGEST_LEN),
    )
}

/// Draw number `n` from `key` (with `extra`: the hart, the time): the
/// first 8 bytes of SHA-384(key || n || extra).
pub fn draw(backend: Backend, key: &[u8; DIGEST_LEN], n: u64, extra: u64) -> u64 {
    let mut h = Sha384::new(backend);
    h.update(key);
    h.update(&n.to_le_bytes());
    h.update(&extra.to_le_bytes());
    let d = h.finalize();
    let mut w = [0u8; 8];
    w.copy_from_slice(&d[..8]);
    u64::from_le_bytes(w)
}

#[cfg(test)]
mod tests {
    use super::*;

    const B: Backend = Backend::Portable;

    #[test]
    fn host_and_tsm_differ_and_are_stable() {
        let seed = [7u8; 32];
        let (h, n) = host_seed(B, &seed);
        assert_eq!(n, 32);
        let k = derive(B, TSM_LABEL, &seed);
        assert_ne!(&h[..], &k[..]);
        assert_eq!(host_seed(B, &seed).0, h);
        // Neither is the seed itself.
        assert_ne!(&h[..32], &seed[..]);
        // A different seed changes both.
        let (h2, _) = host_seed(B, &[8u8; 32]);
        assert_ne!(h, h2);
        assert_eq!(host_seed(B, &[1u8; 64]).1, 48);
    }

    #[test]
    fn draws_differ() {
        let k = derive(B, TSM_LABEL, &[3u8; 32]);
        let a = draw(B, &k, 0, 0);
        assert_ne!(a, draw(B, &k, 1, 0));
        assert_ne!(a, draw(B, &k, 0, 1));
        assert_eq!(a, draw(B, &k, 0, 0));
        assert_ne!(a, draw(B, &derive(B, TSM_LABEL, &[4u8; 32]), 0, 0));
    }
}
