//! Zknh (+ Zbb) code for riscv64. The only module allowed `unsafe`.
//!
//! - [`compress_blocks`]: the SHA-512 compression of N blocks as one
//!   hand-scheduled `asm!` routine (state and the 16-word message
//!   schedule entirely in registers); this is what [`crate::Backend::Zknh`]
//!   runs on riscv64.
//! - [`ZknhPrimitives`]: the same instructions as [`Primitives`] for the
//!   generic Rust round code ([`crate::compress`]), kept as a second,
//!   independently written implementation to cross-check against.
//!
//! All assembly is wrapped in `.option arch, +zknh, +zbb` so the rest of
//! the binary keeps the baseline ISA. Executing it on a hart without
//! Zknh/Zbb traps, which is why the backend is chosen at run time by the
//! caller (`Backend::Zknh`).

use crate::compress::Primitives;
use crate::sha384::BLOCK_LEN;
use core::arch::asm;

/// Zknh scalar-crypto implementation of [`Primitives`].
#[derive(Clone, Copy, Debug)]
pub struct ZknhPrimitives;

macro_rules! unary {
    ($name:ident, $insn:literal) => {
        #[inline(always)]
        fn $name(x: u64) -> u64 {
            let r: u64;
            // SAFETY: a pure register-to-register instruction; the caller
            // selected this backend because the hart implements Zknh.
            unsafe {
                asm!(
                    ".option push",
                    ".option arch, +zknh",
                    concat!($insn, " {r}, {x}"),
                    ".option pop",
                    r = lateout(reg) r,
                    x = in(reg) x,
                    options(pure, nomem, nostack, preserves_flags),
                );
            }
            r
        }
    };
}

impl Primitives for ZknhPrimitives {
    unary!(sig0, "sha512sig0");
    unary!(sig1, "sha512sig1");
    unary!(sum0, "sha512sum0");
    unary!(sum1, "sha512sum1");

    /// 8-byte aligned blocks (the hasher's own buffer, and page-aligned
    /// input) are loaded with `ld` + `rev8`; others byte by byte.
    #[inline(always)]
    fn load_block(block: &[u8; BLOCK_LEN]) -> [u64; 16] {
        let p = block.as_ptr();
        if (p as usize) & 7 != 0 {
            let mut w = [0u64; 16];
            let (words, _) = block.as_chunks::<8>();
            for (w, b) in w.iter_mut().zip(words) {
                *w = u64::from_be_bytes(*b);
            }
            return w;
        }
        let mut w = [0u64; 16];
        for (i, w) in w.iter_mut().enumerate() {
            let r: u64;
            // SAFETY: `p + 8 * i` (i < 16) lies inside the borrowed
            // 128-byte block and is 8-byte aligned (checked above).
            unsafe {
                asm!(
                    ".option push",
                    ".option arch, +zbb",
                    "ld {r}, 0({a})",
                    "rev8 {r}, {r}",
                    ".option pop",
                    r = lateout(reg) r,
                    a = in(reg) p.wrapping_add(8 * i),
                    options(pure, readonly, nostack, preserves_flags),
                );
            }
            *w = r;
        }
        w
    }
}

/// The SHA-512 round constants as one static table, addressed by the
/// assembly through a pointer register.
static K: [u64; 80] = crate::compress::K512;

/// One SHA-512 round (FIPS 180-4 §6.4.2 step 3) on the registers named.
///
/// `$t` is free on entry; `$bc` holds `b ^ c`. On exit `$t` holds `a ^ b`
/// (the next round's `b ^ c`) and `$bc` is free, so the two swap roles
/// every round. `h` accumulates T1 in place, `d += T1`, then `h += T2`:
/// the new `a` is the old `h` register (the caller rotates the names).
/// `$k` is the byte offset of K[t] from `t2`. 16 instructions.
macro_rules! round {
    ($a:ident $b:ident $c:ident $d:ident $e:ident $f:ident $g:ident $h:ident,
     $w:ident, $t:ident $bc:ident, $k:literal) => {
        concat!(
            // T1 = h + Σ1(e) + Ch(e, f, g) + K[t] + W[t]
            "sha512sum1 ",
            stringify!($t),
            ", ",
            stringify!($e),
            "\n",
            "add ",
            stringify!($h),
            ", ",
            stringify!($h),
            ", ",
            stringify!($t),
            "\n",
            // Ch(e, f, g) = g ^ (e & (f ^ g))
            "xor ",
            stringify!($t),
            ", ",
            stringify!($f),
            ", ",
            stringify!($g),
            "\n",
            "and ",
            stringify!($t),
            ", ",
            stringify!($t),
            ", ",
            stringify!($e),
            "\n",
            "xor ",
            stringify!($t),
            ", ",
            stringify!($t),
            ", ",
            stringify!($g),
            "\n",
            "add ",
            stringify!($h),
            ", ",
            stringify!($h),
            ", ",
            stringify!($t),
            "\n",
            "ld ",
            stringify!($t),
            ", ",
            stringify!($k),
            "(t2)\n",
            "add ",
            stringify!($h),
            ", ",
            stringify!($h),
            ", ",
            stringify!($t),
            "\n",
            "add ",
            stringify!($h),
            ", ",
            stringify!($h),
            ", ",
            stringify!($w),
            "\n",
            // e' = d + T1
            "add ",
            stringify!($d),
            ", ",
            stringify!($d),
            ", ",
            stringify!($h),
            "\n",
            // a' = T1 + Σ0(a) + Maj(a, b, c), Maj = b ^ ((a ^ b) & (b ^ c))
            "sha512sum0 ",
            stringify!($t),
            ", ",
            stringify!($a),
            "\n",
            "add ",
            stringify!($h),
            ", ",
            stringify!($h),
            ", ",
            stringify!($t),
            "\n",
            "xor ",
            stringify!($t),
            ", ",
            stringify!($a),
            ", ",
            stringify!($b),
            "\n",
            "and ",
            stringify!($bc),
            ", ",
            stringify!($bc),
            ", ",
            stringify!($t),
            "\n",
            "xor ",
            stringify!($bc),
            ", ",
            stringify!($bc),
            ", ",
            stringify!($b),
            "\n",
            "add ",
            stringify!($h),
            ", ",
            stringify!($h),
            ", ",
            stringify!($bc),
            "\n",
        )
    };
}

/// Message schedule in a 16-register ring (FIPS 180-4 §6.4.2 step 1):
/// `w16` holds W[t-16] and becomes
/// W[t] = σ1(W[t-2]) + W[t-7] + σ0(W[t-15]) + W[t-16]. 5 instructions.
macro_rules! sched {
    ($w16:ident, $w15:ident, $w7:ident, $w2:ident, $t:ident) => {
        concat!(
            "add ",
            stringify!($w16),
            ", ",
            stringify!($w16),
            ", ",
            stringify!($w7),
            "\n",
            "sha512sig0 ",
            stringify!($t),
            ", ",
            stringify!($w15),
            "\n",
            "add ",
            stringify!($w16),
            ", ",
            stringify!($w16),
            ", ",
            stringify!($t),
            "\n",
            "sha512sig1 ",
            stringify!($t),
            ", ",
            stringify!($w2),
            "\n",
            "add ",
            stringify!($w16),
            ", ",
            stringify!($w16),
            ", ",
            stringify!($t),
            "\n",
        )
    };
}

/// Big-endian load of message word `$i` of the block at `ra`.
macro_rules! load {
    ($w:ident, $off:literal) => {
        concat!(
            "ld ",
            stringify!($w),
            ", ",
            stringify!($off),
            "(ra)\n",
            "rev8 ",
            stringify!($w),
            ", ",
            stringify!($w),
            "\n",
        )
    };
}

/// Adds working variable `$r` into `state[$off / 8]` (pointer in t0) and
/// keeps the sum in `$r` for the next block.
macro_rules! feed {
    ($r:ident, $off:literal) => {
        concat!(
            "ld t1, ",
            stringify!($off),
            "(t0)\n",
            "add ",
            stringify!($r),
            ", ",
            stringify!($r),
            ", t1\n",
            "sd ",
            stringify!($r),
            ", ",
            stringify!($off),
            "(t0)\n",
        )
    };
}

/// SHA-512 compression of `n >= 1` consecutive 128-byte blocks at `blocks`
/// (8-byte aligned) into `state`, in one hand-scheduled assembly routine.
///
/// Register use (all 28 allocatable GPRs but gp/tp):
/// - `a0..a7`: the working variables a..h, renamed every round (round i
///   sees a = `a[(8 - i) % 8]`, ...), so no moves;
/// - `s2..s11, t3..t6, s0, s1`: the 16-word message schedule ring
///   (W[t] lives in ring slot t % 16; `s0`/`s1`, reserved for LLVM, are
///   saved and restored around the routine);
/// - `t0`/`t1`: one scratch register and the `b ^ c` carry of the Maj
///   trick, swapping roles every round;
/// - `t2`: pointer into [`K`] (advanced by 16 words per group of rounds);
/// - `ra`: the input pointer during the loads, then the end of the K
///   groups; the state pointer, input pointer and end pointer live in a
///   small stack frame between blocks.
///
/// Per block: 16 loads + `rev8`, 80 rounds of 16 instructions, 64 schedule
/// steps of 5, the feed-forward (8 × load/add/store) and ~15 instructions
/// of loop control: about 1,670 instructions.
///
/// # Safety
///
/// The hart must implement Zknh and Zbb; `blocks` must be 8-byte aligned
/// and point to `n >= 1` readable blocks.
#[inline(never)]
unsafe fn compress_raw(state: &mut [u64; 8], blocks: *const [u8; BLOCK_LEN], n: usize) {
    debug_assert!(n >= 1 && (blocks as usize) & 7 == 0);
    let end = blocks.wrapping_add(n);
    // SAFETY: see the function's contract. The routine reads `n` blocks
    // and K, reads and writes `state`, uses 48 bytes of stack below `sp`
    // (restored), and restores `s0`/`s1`; every other register it
    // writes is declared below.
    unsafe {
        asm!(
            ".option push",
            ".option arch, +zknh, +zbb",
            "addi sp, sp, -48",
            "sd s0, 0(sp)",
            "sd s1, 8(sp)",
            "sd a0, 16(sp)",
            "sd a2, 24(sp)",
            "sd a1, 32(sp)",
            "ld a1, 8(a0)",
            "ld a2, 16(a0)",
            "ld a3, 24(a0)",
            "ld a4, 32(a0)",
            "ld a5, 40(a0)",
            "ld a6, 48(a0)",
            "ld a7, 56(a0)",
            "ld a0, 0(a0)",
            // ---- per block ----
            "3:",
            "ld ra, 32(sp)",
            load!(s2, 0),
            load!(s3, 8),
            load!(s4, 16),
            load!(s5, 24),
            load!(s6, 32),
            load!(s7, 40),
            load!(s8, 48),
            load!(s9, 56),
            load!(s10, 64),
            load!(s11, 72),
            load!(t3, 80),
            load!(t4, 88),
            load!(t5, 96),
            load!(t6, 104),
            load!(s0, 112),
            load!(s1, 120),
            "addi ra, ra, 128",
            "sd ra, 32(sp)",
            "xor t1, a1, a2",
            // rounds 0..15
            round!(a0 a1 a2 a3 a4 a5 a6 a7, s2, t0 t1, 0),
            round!(a7 a0 a1 a2 a3 a4 a5 a6, s3, t1 t0, 8),
            round!(a6 a7 a0 a1 a2 a3 a4 a5, s4, t0 t1, 16),
            round!(a5 a6 a7 a0 a1 a2 a3 a4, s5, t1 t0, 24),
            round!(a4 a5 a6 a7 a0 a1 a2 a3, s6, t0 t1, 32),
            round!(a3 a4 a5 a6 a7 a0 a1 a2, s7, t1 t0, 40),
            round!(a2 a3 a4 a5 a6 a7 a0 a1, s8, t0 t1, 48),
            round!(a1 a2 a3 a4 a5 a6 a7 a0, s9, t1 t0, 56),
            round!(a0 a1 a2 a3 a4 a5 a6 a7, s10, t0 t1, 64),
            round!(a7 a0 a1 a2 a3 a4 a5 a6, s11, t1 t0, 72),
            round!(a6 a7 a0 a1 a2 a3 a4 a5, t3, t0 t1, 80),
            round!(a5 a6 a7 a0 a1 a2 a3 a4, t4, t1 t0, 88),
            round!(a4 a5 a6 a7 a0 a1 a2 a3, t5, t0 t1, 96),
            round!(a3 a4 a5 a6 a7 a0 a1 a2, t6, t1 t0, 104),
            round!(a2 a3 a4 a5 a6 a7 a0 a1, s0, t0 t1, 112),
            round!(a1 a2 a3 a4 a5 a6 a7 a0, s1, t1 t0, 120),
            // rounds 16..79: four groups of 16 with the schedule
            "addi ra, t2, 512",
            "2:",
            "addi t2, t2, 128",
            sched!(s2, s3, s11, s0, t0),
            round!(a0 a1 a2 a3 a4 a5 a6 a7, s2, t0 t1, 0),
            sched!(s3, s4, t3, s1, t1),
            round!(a7 a0 a1 a2 a3 a4 a5 a6, s3, t1 t0, 8),
            sched!(s4, s5, t4, s2, t0),
            round!(a6 a7 a0 a1 a2 a3 a4 a5, s4, t0 t1, 16),
            sched!(s5, s6, t5, s3, t1),
            round!(a5 a6 a7 a0 a1 a2 a3 a4, s5, t1 t0, 24),
            sched!(s6, s7, t6, s4, t0),
            round!(a4 a5 a6 a7 a0 a1 a2 a3, s6, t0 t1, 32),
            sched!(s7, s8, s0, s5, t1),
            round!(a3 a4 a5 a6 a7 a0 a1 a2, s7, t1 t0, 40),
            sched!(s8, s9, s1, s6, t0),
            round!(a2 a3 a4 a5 a6 a7 a0 a1, s8, t0 t1, 48),
            sched!(s9, s10, s2, s7, t1),
            round!(a1 a2 a3 a4 a5 a6 a7 a0, s9, t1 t0, 56),
            sched!(s10, s11, s3, s8, t0),
            round!(a0 a1 a2 a3 a4 a5 a6 a7, s10, t0 t1, 64),
            sched!(s11, t3, s4, s9, t1),
            round!(a7 a0 a1 a2 a3 a4 a5 a6, s11, t1 t0, 72),
            sched!(t3, t4, s5, s10, t0),
            round!(a6 a7 a0 a1 a2 a3 a4 a5, t3, t0 t1, 80),
            sched!(t4, t5, s6, s11, t1),
            round!(a5 a6 a7 a0 a1 a2 a3 a4, t4, t1 t0, 88),
            sched!(t5, t6, s7, t3, t0),
            round!(a4 a5 a6 a7 a0 a1 a2 a3, t5, t0 t1, 96),
            sched!(t6, s0, s8, t4, t1),
            round!(a3 a4 a5 a6 a7 a0 a1 a2, t6, t1 t0, 104),
            sched!(s0, s1, s9, t5, t0),
            round!(a2 a3 a4 a5 a6 a7 a0 a1, s0, t0 t1, 112),
            sched!(s1, s2, s10, t6, t1),
            round!(a1 a2 a3 a4 a5 a6 a7 a0, s1, t1 t0, 120),
            "bne t2, ra, 2b",
            "addi t2, t2, -512",
            // feed-forward
            "ld t0, 16(sp)",
            feed!(a0, 0),
            feed!(a1, 8),
            feed!(a2, 16),
            feed!(a3, 24),
            feed!(a4, 32),
            feed!(a5, 40),
            feed!(a6, 48),
            feed!(a7, 56),
            "ld t0, 32(sp)",
            "ld t1, 24(sp)",
            "bne t0, t1, 3b",
            "ld s0, 0(sp)",
            "ld s1, 8(sp)",
            "addi sp, sp, 48",
            ".option pop",
            inout("a0") state.as_mut_ptr() => _,
            inout("a1") blocks => _,
            inout("a2") end => _,
            inout("t2") K.as_ptr() => _,
            out("ra") _,
            out("t0") _,
            out("t1") _,
            out("a3") _,
            out("a4") _,
            out("a5") _,
            out("a6") _,
            out("a7") _,
            out("s2") _,
            out("s3") _,
            out("s4") _,
            out("s5") _,
            out("s6") _,
            out("s7") _,
            out("s8") _,
            out("s9") _,
            out("s10") _,
            out("s11") _,
            out("t3") _,
            out("t4") _,
            out("t5") _,
            out("t6") _,
            options(preserves_flags),
        );
    }
}

/// 8-byte aligned copy of one block, for unaligned input.
#[repr(C, align(8))]
struct Aligned([u8; BLOCK_LEN]);

/// SHA-512 compression of whole blocks with the Zknh assembly routine
/// ([`compress_raw`]). 8-byte aligned input (the hasher's buffer, pages,
/// and anything following an 8-byte multiple of them) is read in place in
/// one call; unaligned input is copied block by block to an aligned
/// buffer first. Only call on a hart with Zknh and Zbb.
pub(crate) fn compress_blocks(state: &mut [u64; 8], blocks: &[[u8; BLOCK_LEN]]) {
    if blocks.is_empty() {
        return;
    }
    if (blocks.as_ptr() as usize) & 7 == 0 {
        // SAFETY: non-empty, aligned, borrowed for the call; the caller
        // selected the Zknh backend for this hart.
        unsafe { compress_raw(state, blocks.as_ptr(), blocks.len()) };
        return;
    }
    let mut buf = Aligned([0; BLOCK_LEN]);
    for b in blocks {
        buf.0 = *b;
        // SAFETY: one aligned block on the stack; Zknh as above.
        unsafe { compress_raw(state, &buf.0, 1) };
    }
}
