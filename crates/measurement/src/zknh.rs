//! Zknh (+ Zbb) primitives for riscv64. The only module allowed `unsafe`:
//! each `asm!` is a single register-to-register instruction (or an aligned
//! load of memory the caller borrowed), assembled with
//! `.option arch, +zknh, +zbb` so the rest of the binary keeps the baseline
//! ISA. Executing them on a hart without Zknh/Zbb traps, which is why the
//! backend is chosen at run time by the caller (`Backend::Zknh`).

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
