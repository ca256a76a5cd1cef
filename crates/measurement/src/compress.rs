//! The SHA-512 compression function (FIPS 180-4 §6.4.2), written once and
//! instantiated with either software or Zknh primitives.

use crate::sha384::BLOCK_LEN;

/// SHA-512 round constants (FIPS 180-4 §4.2.3).
pub const K512: [u64; 80] = [
    0x428a2f98d728ae22,
    0x7137449123ef65cd,
    0xb5c0fbcfec4d3b2f,
    0xe9b5dba58189dbbc,
    0x3956c25bf348b538,
    0x59f111f1b605d019,
    0x923f82a4af194f9b,
    0xab1c5ed5da6d8118,
    0xd807aa98a3030242,
    0x12835b0145706fbe,
    0x243185be4ee4b28c,
    0x550c7dc3d5ffb4e2,
    0x72be5d74f27b896f,
    0x80deb1fe3b1696b1,
    0x9bdc06a725c71235,
    0xc19bf174cf692694,
    0xe49b69c19ef14ad2,
    0xefbe4786384f25e3,
    0x0fc19dc68b8cd5b5,
    0x240ca1cc77ac9c65,
    0x2de92c6f592b0275,
    0x4a7484aa6ea6e483,
    0x5cb0a9dcbd41fbd4,
    0x76f988da831153b5,
    0x983e5152ee66dfab,
    0xa831c66d2db43210,
    0xb00327c898fb213f,
    0xbf597fc7beef0ee4,
    0xc6e00bf33da88fc2,
    0xd5a79147930aa725,
    0x06ca6351e003826f,
    0x142929670a0e6e70,
    0x27b70a8546d22ffc,
    0x2e1b21385c26c926,
    0x4d2c6dfc5ac42aed,
    0x53380d139d95b3df,
    0x650a73548baf63de,
    0x766a0abb3c77b2a8,
    0x81c2c92e47edaee6,
    0x92722c851482353b,
    0xa2bfe8a14cf10364,
    0xa81a664bbc423001,
    0xc24b8b70d0f89791,
    0xc76c51a30654be30,
    0xd192e819d6ef5218,
    0xd69906245565a910,
    0xf40e35855771202a,
    0x106aa07032bbd1b8,
    0x19a4c116b8d2d0c8,
    0x1e376c085141ab53,
    0x2748774cdf8eeb99,
    0x34b0bcb5e19b48a8,
    0x391c0cb3c5c95a63,
    0x4ed8aa4ae3418acb,
    0x5b9cca4f7763e373,
    0x682e6ff3d6b2b8a3,
    0x748f82ee5defb2fc,
    0x78a5636f43172f60,
    0x84c87814a1f0ab72,
    0x8cc702081a6439ec,
    0x90befffa23631e28,
    0xa4506cebde82bde9,
    0xbef9a3f7b2c67915,
    0xc67178f2e372532b,
    0xca273eceea26619c,
    0xd186b8c721c0c207,
    0xeada7dd6cde0eb1e,
    0xf57d4f7fee6ed178,
    0x06f067aa72176fba,
    0x0a637dc5a2c898a6,
    0x113f9804bef90dae,
    0x1b710b35131c471b,
    0x28db77f523047d84,
    0x32caab7b40c72493,
    0x3c9ebe0a15c9bebc,
    0x431d67c49c100d4c,
    0x4cc5d4becb3e42b6,
    0x597f299cfc657e2a,
    0x5fcb6fab3ad6faec,
    0x6c44198c4a475817,
];

/// The four SHA-512 sigma functions and the message-word loader.
///
/// Implementations must compute exactly the FIPS 180-4 functions; the
/// round code in [`compress`] is shared.
pub trait Primitives {
    /// σ0(x) = ROTR¹ ⊕ ROTR⁸ ⊕ SHR⁷.
    fn sig0(x: u64) -> u64;
    /// σ1(x) = ROTR¹⁹ ⊕ ROTR⁶¹ ⊕ SHR⁶.
    fn sig1(x: u64) -> u64;
    /// Σ0(x) = ROTR²⁸ ⊕ ROTR³⁴ ⊕ ROTR³⁹.
    fn sum0(x: u64) -> u64;
    /// Σ1(x) = ROTR¹⁴ ⊕ ROTR¹⁸ ⊕ ROTR⁴¹.
    fn sum1(x: u64) -> u64;

    /// The 16 big-endian message words of a block.
    #[inline(always)]
    fn load_block(block: &[u8; BLOCK_LEN]) -> [u64; 16] {
        let mut w = [0u64; 16];
        let (words, _) = block.as_chunks::<8>();
        for (w, b) in w.iter_mut().zip(words) {
            *w = u64::from_be_bytes(*b);
        }
        w
    }
}

/// Plain-Rust primitives (the host emulation of the Zknh instructions).
#[derive(Clone, Copy, Debug)]
pub struct SoftPrimitives;

impl Primitives for SoftPrimitives {
    #[inline(always)]
    fn sig0(x: u64) -> u64 {
        x.rotate_right(1) ^ x.rotate_right(8) ^ (x >> 7)
    }
    #[inline(always)]
    fn sig1(x: u64) -> u64 {
        x.rotate_right(19) ^ x.rotate_right(61) ^ (x >> 6)
    }
    #[inline(always)]
    fn sum0(x: u64) -> u64 {
        x.rotate_right(28) ^ x.rotate_right(34) ^ x.rotate_right(39)
    }
    #[inline(always)]
    fn sum1(x: u64) -> u64 {
        x.rotate_right(14) ^ x.rotate_right(18) ^ x.rotate_right(41)
    }
}

/// One round. `bc` carries `b ^ c` from the previous round so that
/// Maj(a, b, c) = b ^ ((a ^ b) & (b ^ c)) costs three operations; on exit
/// it holds `a ^ b`, which is the next round's `b ^ c`.
macro_rules! round {
    ($P:ty, $a:ident, $b:ident, $c:ident, $d:ident, $e:ident, $f:ident, $g:ident, $h:ident,
     $bc:ident, $kw:expr) => {
        let ch = $g ^ ($e & ($f ^ $g));
        let t1 = $h
            .wrapping_add(<$P>::sum1($e))
            .wrapping_add(ch)
            .wrapping_add($kw);
        let ab = $a ^ $b;
        let maj = $b ^ (ab & $bc);
        $bc = ab;
        $d = $d.wrapping_add(t1);
        $h = t1.wrapping_add(<$P>::sum0($a)).wrapping_add(maj);
    };
}

/// Message schedule for word `t >= 16` kept in a 16-entry ring.
macro_rules! schedule {
    ($P:ty, $w:ident, $i:expr) => {{
        let i = $i;
        $w[i] = $w[i]
            .wrapping_add(<$P>::sig0($w[(i + 1) & 15]))
            .wrapping_add($w[(i + 9) & 15])
            .wrapping_add(<$P>::sig1($w[(i + 14) & 15]));
        $w[i]
    }};
}

/// `$kw[i] = K[$base + i] + W[$base + i]` for i in 0..16, advancing the
/// 16-word schedule ring `$w` first when `$sched`.
macro_rules! group {
    ($P:ty, $w:ident, $kw:ident, $base:expr, $sched:expr) => {{
        macro_rules! one {
            ($i:expr) => {
                let x = if $sched {
                    schedule!($P, $w, $i)
                } else {
                    $w[$i]
                };
                $kw[$i] = x.wrapping_add(K512[$base + $i]);
            };
        }
        one!(0);
        one!(1);
        one!(2);
        one!(3);
        one!(4);
        one!(5);
        one!(6);
        one!(7);
        one!(8);
        one!(9);
        one!(10);
        one!(11);
        one!(12);
        one!(13);
        one!(14);
        one!(15);
    }};
}

/// Sixteen rounds consuming `$w[i]` = K + W, the variables renamed every
/// round instead of moved.
macro_rules! rounds16 {
    ($P:ty, $s:ident, $w:ident, $bc:ident) => {{
        macro_rules! r {
            ($i:expr, $A:ident, $B:ident, $C:ident, $D:ident, $E:ident, $F:ident, $G:ident, $H:ident) => {
                let kw = $w[$i];
                round!($P, $A, $B, $C, $D, $E, $F, $G, $H, $bc, kw);
            };
        }
        let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut h] = $s;
        r!(0, a, b, c, d, e, f, g, h);
        r!(1, h, a, b, c, d, e, f, g);
        r!(2, g, h, a, b, c, d, e, f);
        r!(3, f, g, h, a, b, c, d, e);
        r!(4, e, f, g, h, a, b, c, d);
        r!(5, d, e, f, g, h, a, b, c);
        r!(6, c, d, e, f, g, h, a, b);
        r!(7, b, c, d, e, f, g, h, a);
        r!(8, a, b, c, d, e, f, g, h);
        r!(9, h, a, b, c, d, e, f, g);
        r!(10, g, h, a, b, c, d, e, f);
        r!(11, f, g, h, a, b, c, d, e);
        r!(12, e, f, g, h, a, b, c, d);
        r!(13, d, e, f, g, h, a, b, c);
        r!(14, c, d, e, f, g, h, a, b);
        r!(15, b, c, d, e, f, g, h, a);
        $s = [a, b, c, d, e, f, g, h];
    }};
}

/// SHA-512 compression of whole blocks into `state`, using `P` for the
/// sigma functions and word loads.
#[inline(always)]
#[allow(unused_assignments)] // the last round's `b ^ c` carry is dead
pub fn compress<P: Primitives>(state: &mut [u64; 8], blocks: &[[u8; BLOCK_LEN]]) {
    for block in blocks {
        let mut w = P::load_block(block);
        let mut s = *state;
        let mut bc = s[1] ^ s[2];
        let mut kw = [0u64; 16];
        // Message words of each group of 16 rounds, with K added, are
        // produced in bulk (constant indices, fully unrolled) so the rounds
        // only keep the state in registers.
        group!(P, w, kw, 0, false);
        rounds16!(P, s, kw, bc);
        group!(P, w, kw, 16, true);
        rounds16!(P, s, kw, bc);
        group!(P, w, kw, 32, true);
        rounds16!(P, s, kw, bc);
        group!(P, w, kw, 48, true);
        rounds16!(P, s, kw, bc);
        group!(P, w, kw, 64, true);
        rounds16!(P, s, kw, bc);
        for (st, v) in state.iter_mut().zip(s) {
            *st = st.wrapping_add(v);
        }
    }
}
