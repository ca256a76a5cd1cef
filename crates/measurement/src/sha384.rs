//! Backend-independent SHA-384: IV, buffering, padding and truncation.

use crate::Backend;

/// SHA-512 block size.
pub const BLOCK_LEN: usize = 128;
/// SHA-384 digest size.
pub const DIGEST_LEN: usize = 48;

/// SHA-384 initial hash value (FIPS 180-4 §5.3.4).
pub const IV384: [u64; 8] = [
    0xcbbb9d5dc1059ed8,
    0x629a292a367cd507,
    0x9159015a3070dd17,
    0x152fecd8f70e5939,
    0x67332667ffc00b31,
    0x8eb44a8768581511,
    0xdb0c2e0d64f98fa7,
    0x47b5481dbefa4fa4,
];

/// 8-byte aligned block buffer, so the Zknh backend can load it with `ld`.
#[derive(Clone, Copy)]
#[repr(C, align(8))]
struct Block([u8; BLOCK_LEN]);

/// Every compression goes through here (counted in unit tests).
#[inline(always)]
fn run(backend: Backend, state: &mut [u64; 8], blocks: &[[u8; BLOCK_LEN]]) {
    #[cfg(test)]
    tests::count(blocks.len());
    backend.compress(state, blocks);
}

/// Incremental SHA-384.
#[derive(Clone)]
pub struct Sha384 {
    state: [u64; 8],
    buf: Block,
    buf_len: usize,
    /// Total message length in bytes (the spec allows up to 2^128 bits).
    len: u128,
    backend: Backend,
}

impl Sha384 {
    /// A new hasher using `backend` for compression.
    pub const fn new(backend: Backend) -> Self {
        Sha384 {
            state: IV384,
            buf: Block([0; BLOCK_LEN]),
            buf_len: 0,
            len: 0,
            backend,
        }
    }

    /// Absorbs `data`.
    pub fn update(&mut self, mut data: &[u8]) {
        self.len = self.len.wrapping_add(data.len() as u128);
        if self.buf_len > 0 {
            let take = (BLOCK_LEN - self.buf_len).min(data.len());
            self.buf.0[self.buf_len..self.buf_len + take].copy_from_slice(&data[..take]);
            self.buf_len += take;
            data = &data[take..];
            if self.buf_len < BLOCK_LEN {
                return;
            }
            self.compress_buf();
            self.buf_len = 0;
        }
        let (blocks, rest) = data.as_chunks::<BLOCK_LEN>();
        if !blocks.is_empty() {
            self.compress(blocks);
        }
        self.buf.0[..rest.len()].copy_from_slice(rest);
        self.buf_len = rest.len();
    }

    /// Compresses whole blocks (read in place) with the backend.
    #[inline(always)]
    fn compress(&mut self, blocks: &[[u8; BLOCK_LEN]]) {
        run(self.backend, &mut self.state, blocks);
    }

    /// Compresses the (full, 8-byte aligned) internal buffer in place.
    #[inline(always)]
    fn compress_buf(&mut self) {
        run(
            self.backend,
            &mut self.state,
            core::slice::from_ref(&self.buf.0),
        );
    }

    /// Pads, compresses the last block(s) and returns the digest.
    pub fn finalize(mut self) -> [u8; DIGEST_LEN] {
        let bit_len = self.len.wrapping_mul(8);
        let n = self.buf_len;
        self.buf.0[n] = 0x80;
        self.buf.0[n + 1..].fill(0);
        if n + 1 > BLOCK_LEN - 16 {
            self.compress_buf();
            self.buf.0 = [0; BLOCK_LEN];
        }
        self.buf.0[BLOCK_LEN - 16..].copy_from_slice(&bit_len.to_be_bytes());
        self.compress_buf();
        let mut out = [0u8; DIGEST_LEN];
        for (o, s) in out.chunks_exact_mut(8).zip(self.state.iter()) {
            o.copy_from_slice(&s.to_be_bytes());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;
    use crate::Measurement;
    use core::cell::Cell;

    std::thread_local! {
        static BLOCKS: Cell<usize> = const { Cell::new(0) };
    }

    /// Called for every compression (test builds only).
    pub(super) fn count(blocks: usize) {
        BLOCKS.with(|b| b.set(b.get() + blocks));
    }

    fn blocks_of(f: impl FnOnce()) -> usize {
        BLOCKS.with(|b| b.set(0));
        f();
        BLOCKS.with(|b| b.get())
    }

    #[test]
    fn measured_page_is_33_compressions() {
        let page = [0x5au8; 4096];
        for backend in [Backend::Portable, Backend::Zknh] {
            let mut m = Measurement::new(backend);
            // 48 + 8 + 4096 = 4152 bytes + 0x80 + 16-byte length: 33 blocks.
            assert_eq!(blocks_of(|| m.extend_page(0x8020_0000, &page)), 33);
            assert_eq!(blocks_of(|| m.extend_finalize(1, 2)), 1);
        }
    }

    #[test]
    fn compressions_are_the_minimum_for_every_length() {
        let data = [0xa5u8; 700];
        for len in 0..=data.len() {
            // Message + 0x80 + 16-byte length, rounded up to whole blocks.
            let want = (len + 1 + 16).div_ceil(BLOCK_LEN);
            for cut in [0, len / 3, len] {
                let n = blocks_of(|| {
                    let mut h = Sha384::new(Backend::Zknh);
                    h.update(&data[..cut]);
                    h.update(&data[cut..len]);
                    let _ = h.finalize();
                });
                assert_eq!(n, want, "len {len} cut {cut}");
            }
        }
    }
}
