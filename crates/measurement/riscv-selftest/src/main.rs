//! Bare-metal riscv64 self-test of `measurement` (S-mode payload entered by
//! OpenSBI on QEMU `virt`, with `-cpu rv64,zknh=true,zbb=true`).
//!
//! - FIPS 180-4 SHA-384 examples on both backends;
//! - random inputs (lengths, splits, misalignment) and random compression
//!   states compared between the Zknh assembly, the portable backend and
//!   the generic round code with Zknh primitives;
//! - the measurement rules (page extend == SHA-384 of the concatenation);
//! - instruction counts (`instret`, exact under `-icount shift=0`) per
//!   block and per measured page, with budgets for the Zknh backend.
//!
//! Prints one line per check, then `N passed, N failed` and
//! `SELFTEST: PASS` or `SELFTEST: FAIL`, and powers off through SBI SRST.
#![no_std]
#![no_main]

use core::arch::{asm, global_asm};
use core::fmt::{self, Write};
use measurement::{
    compress, sha384, Backend, Measurement, Sha384, ZknhPrimitives, BLOCK_LEN, IV384,
};

/// Zknh instructions per 128-byte block must not exceed this.
const ZKNH_BLOCK_BUDGET: u64 = 1_700;
/// One measured-page extend (33 blocks + finalization) with Zknh.
const ZKNH_PAGE_BUDGET: u64 = 60_000;

global_asm!(
    ".section .text.entry, \"ax\"",
    ".globl _start",
    "_start:",
    ".option push",
    ".option norelax",
    "la sp, __stack_top",
    ".option pop",
    "la t0, __bss_start",
    "la t1, __bss_end",
    "2:",
    "bgeu t0, t1, 3f",
    "sd zero, 0(t0)",
    "addi t0, t0, 8",
    "j 2b",
    "3:",
    "la t0, trap_entry",
    "csrw stvec, t0",
    "call selftest_main",
    "4:",
    "wfi",
    "j 4b",
    ".balign 4",
    "trap_entry:",
    "csrr a0, scause",
    "csrr a1, sepc",
    "csrr a2, stval",
    "call selftest_trap",
);

// ---------------------------------------------------------------- SBI

fn sbi(eid: usize, fid: usize, a0: usize, a1: usize, a2: usize) -> (isize, usize) {
    let (err, val): (isize, usize);
    // SAFETY: an SBI call; OpenSBI preserves all registers but a0/a1.
    unsafe {
        asm!("ecall",
            inlateout("a0") a0 => err, inlateout("a1") a1 => val,
            in("a2") a2, in("a6") fid, in("a7") eid, options(nostack));
    }
    (err, val)
}

const EID_BASE: usize = 0x10;
const EID_DBCN: usize = 0x4442_434E;
const EID_SRST: usize = 0x5352_5354;
const EID_LEGACY_PUTCHAR: usize = 0x01;
const EID_LEGACY_SHUTDOWN: usize = 0x08;

static mut HAVE_DBCN: bool = false;

struct Console;

impl Write for Console {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        // SAFETY: single hart, no interrupts.
        if unsafe { HAVE_DBCN } {
            let mut b = s.as_bytes();
            while !b.is_empty() {
                let (err, n) = sbi(EID_DBCN, 0, b.len(), b.as_ptr() as usize, 0);
                if err != 0 || n == 0 {
                    return Err(fmt::Error);
                }
                b = &b[n.min(b.len())..];
            }
        } else {
            for c in s.bytes() {
                sbi(EID_LEGACY_PUTCHAR, 0, c as usize, 0, 0);
            }
        }
        Ok(())
    }
}

macro_rules! println {
    ($($t:tt)*) => {{
        let _ = writeln!(Console, $($t)*);
    }};
}

fn power_off(failure: bool) -> ! {
    sbi(EID_SRST, 0, 0, failure as usize, 0);
    sbi(EID_LEGACY_SHUTDOWN, 0, 0, 0, 0);
    loop {
        // SAFETY: idles the hart.
        unsafe { asm!("wfi") };
    }
}

#[no_mangle]
extern "C" fn selftest_trap(scause: usize, sepc: usize, stval: usize) -> ! {
    println!("TRAP scause={scause:#x} sepc={sepc:#x} stval={stval:#x}");
    println!("SELFTEST: FAIL");
    power_off(true)
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    println!("PANIC: {info}");
    println!("SELFTEST: FAIL");
    power_off(true)
}

#[inline(always)]
fn instret() -> u64 {
    let r: u64;
    // SAFETY: reads a counter OpenSBI delegates to S-mode (mcounteren.IR).
    unsafe { asm!("csrr {}, instret", out(reg) r, options(nomem, nostack)) };
    r
}

// ---------------------------------------------------------------- helpers

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn hex(s: &str) -> [u8; 48] {
    let mut out = [0u8; 48];
    let b = s.as_bytes();
    let nib = |c: u8| match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        _ => panic!("bad hex"),
    };
    for (i, o) in out.iter_mut().enumerate() {
        *o = nib(b[2 * i]) << 4 | nib(b[2 * i + 1]);
    }
    out
}

struct Tally {
    passed: u32,
    failed: u32,
}

impl Tally {
    fn check(&mut self, ok: bool, what: fmt::Arguments) {
        if ok {
            self.passed += 1;
            println!("ok - {what}");
        } else {
            self.failed += 1;
            println!("FAIL - {what}");
        }
    }
}

const BACKENDS: [Backend; 2] = [Backend::Portable, Backend::Zknh];

#[repr(C, align(4096))]
struct Buf<const N: usize>([u8; N]);

/// 64 KiB (+ slack for misaligned views) of benchmark / random input.
static mut BIG: Buf<{ 64 * 1024 + 4096 }> = Buf([0; 64 * 1024 + 4096]);

// ---------------------------------------------------------------- tests

fn fips_vectors(t: &mut Tally) {
    let two_block = b"abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu";
    let cases: [(&str, &[u8], &str); 3] = [
        ("empty", b"", "38b060a751ac96384cd9327eb1b1e36a21fdb71114be07434c0cc7bf63f6e1da274edebfe76f65fbd51ad2f14898b95b"),
        ("abc", b"abc", "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed8086072ba1e7cc2358baeca134c825a7"),
        ("896-bit two-block message", two_block, "09330c33f71147e83d192fc782cd1b4753111b173b3b05d22fa08086e3b0f712fcc7c71a557e2db966c3e9fa91746039"),
    ];
    for (name, msg, want) in cases {
        for b in BACKENDS {
            t.check(
                sha384(b, msg) == hex(want),
                format_args!("FIPS 180-4 SHA-384 {name} ({b:?})"),
            );
        }
    }
    let want = hex("9d0e1809716474cb086e834e310a4a1ced149e9c00f248527972cec5704c2a5b07b8b3dc38ecc4ebae97ddd87f3d8985");
    let chunk = [b'a'; 1000];
    for b in BACKENDS {
        let mut h = Sha384::new(b);
        for _ in 0..1000 {
            h.update(&chunk);
        }
        t.check(
            h.finalize() == want,
            format_args!("FIPS 180-4 SHA-384 one million 'a' ({b:?})"),
        );
    }
    // The same million, as one slice (one compression call of 7812 blocks).
    // SAFETY: single-threaded; the buffer is only used here and below.
    let big = unsafe { &mut *core::ptr::addr_of_mut!(BIG) };
    for b in BACKENDS {
        let mut h = Sha384::new(b);
        big.0[..64 * 1024].fill(b'a');
        let mut left = 1_000_000usize;
        while left > 0 {
            let n = left.min(64 * 1024);
            h.update(&big.0[..n]);
            left -= n;
        }
        t.check(
            h.finalize() == want,
            format_args!("one million 'a' in 64 KiB updates ({b:?})"),
        );
    }
}

fn random_inputs(t: &mut Tally) {
    let mut rng = Rng(0x5a1_5eed_u64 ^ 0x9e37_79b9_7f4a_7c15);
    // SAFETY: single-threaded; see above.
    let big = unsafe { &mut *core::ptr::addr_of_mut!(BIG) };
    for b in big.0.iter_mut() {
        *b = rng.next() as u8;
    }
    let mut bad = 0;
    let rounds = 300;
    for i in 0..rounds {
        let len = if i % 10 == 0 {
            rng.below(20_000)
        } else {
            rng.below(1_500)
        };
        let off = rng.below(8);
        let data = &big.0[off..off + len];
        let mut digests = [[0u8; 48]; 2];
        for (d, b) in digests.iter_mut().zip(BACKENDS) {
            let mut h = Sha384::new(b);
            let mut rest = data;
            // Same split points for both backends: a fresh generator.
            let mut split = Rng(i as u64 + 1);
            for _ in 0..split.below(4) {
                let n = split.below(rest.len() + 1);
                h.update(&rest[..n]);
                rest = &rest[n..];
            }
            h.update(rest);
            *d = h.finalize();
        }
        if digests[0] != digests[1] {
            bad += 1;
            println!("  mismatch: len {len} offset {off}");
        }
    }
    t.check(
        bad == 0,
        format_args!("{rounds} random inputs (length, split, alignment): Zknh == Portable"),
    );

    // Raw compression from random states, 1..=9 blocks, aligned or not,
    // against the portable backend and the generic round code.
    let mut bad = 0;
    let rounds = 200;
    for _ in 0..rounds {
        let n = 1 + rng.below(9);
        let off = rng.below(16);
        let bytes = &big.0[off..off + n * BLOCK_LEN];
        let (blocks, _) = bytes.as_chunks::<BLOCK_LEN>();
        let mut st = [0u64; 8];
        for s in st.iter_mut() {
            *s = rng.next();
        }
        let (mut a, mut b, mut c) = (st, st, st);
        Backend::Zknh.compress(&mut a, blocks);
        Backend::Portable.compress(&mut b, blocks);
        compress::<ZknhPrimitives>(&mut c, blocks);
        if a != b || a != c {
            bad += 1;
            println!("  mismatch: {n} blocks offset {off}");
        }
    }
    t.check(
        bad == 0,
        format_args!("{rounds} random states x 1..9 blocks: Zknh asm == Portable == generic Zknh"),
    );

    // Edge words: all-zero and all-ones blocks from the IV.
    for fill in [0u8, 0xff] {
        let blk = [[fill; BLOCK_LEN]; 2];
        let (mut a, mut b) = (IV384, IV384);
        Backend::Zknh.compress(&mut a, &blk);
        Backend::Portable.compress(&mut b, &blk);
        t.check(
            a == b,
            format_args!("compression of {fill:#04x} blocks: Zknh == Portable"),
        );
    }
}

fn measurement_rules(t: &mut Tally) {
    let page = Buf::<4096>(core::array::from_fn(|i| (i ^ (i >> 8)) as u8));
    let gpa = 0x8020_3000u64;
    let mut vals = [[0u8; 48]; 2];
    for (v, b) in vals.iter_mut().zip(BACKENDS) {
        let mut m = Measurement::new(b);
        m.extend_page(gpa, &page.0);
        let mut h = Sha384::new(b);
        h.update(&[0u8; 48]);
        h.update(&gpa.to_le_bytes());
        h.update(&page.0);
        t.check(
            *m.value() == h.finalize(),
            format_args!("extend_page == SHA-384(m || gpa || page) ({b:?})"),
        );
        m.extend_finalize(0x8020_0000, 0x8220_0000);
        *v = *m.value();
    }
    t.check(
        vals[0] == vals[1],
        format_args!("page + finalize measurement: Zknh == Portable"),
    );
}

fn counts(t: &mut Tally) {
    // SAFETY: single-threaded; see above.
    let big = unsafe { &mut *core::ptr::addr_of_mut!(BIG) };
    let nblocks = 64 * 1024 / BLOCK_LEN;
    let mut per_block = [0u64; 2];
    for (pb, b) in per_block.iter_mut().zip(BACKENDS) {
        let (blocks, _) = big.0[..64 * 1024].as_chunks::<BLOCK_LEN>();
        let mut st = IV384;
        b.compress(&mut st, &blocks[..1]); // warm-up
        let t0 = instret();
        b.compress(&mut st, blocks);
        let d = instret() - t0;
        core::hint::black_box(st);
        *pb = d / nblocks as u64;
        println!("# {b:?}: compress 64 KiB ({nblocks} blocks, one call): {d} instructions, {}.{:02} per block",
            d / nblocks as u64, (d % nblocks as u64) * 100 / nblocks as u64);

        let (blocks, _) = big.0[1..1 + 64 * 1024].as_chunks::<BLOCK_LEN>();
        let t0 = instret();
        b.compress(&mut st, blocks);
        let d = instret() - t0;
        core::hint::black_box(st);
        println!(
            "# {b:?}: compress 64 KiB misaligned by 1: {} per block",
            d / nblocks as u64
        );

        let one = &big.0[..BLOCK_LEN];
        let (one, _) = one.as_chunks::<BLOCK_LEN>();
        let t0 = instret();
        b.compress(&mut st, one);
        let d = instret() - t0;
        core::hint::black_box(st);
        println!("# {b:?}: compress of a single block (one call): {d} instructions");

        let t0 = instret();
        let dg = sha384(b, &big.0[..64 * 1024]);
        let d = instret() - t0;
        core::hint::black_box(dg);
        println!(
            "# {b:?}: sha384 of 64 KiB ({} blocks with padding): {d} instructions, {} per block",
            nblocks + 1,
            d / (nblocks as u64 + 1)
        );
    }

    let page = Buf::<4096>(core::array::from_fn(|i| (i * 7) as u8));
    let mut per_page = [0u64; 2];
    for (pp, b) in per_page.iter_mut().zip(BACKENDS) {
        let mut m = Measurement::new(b);
        m.extend_page(0, &page.0); // warm-up
        let pages = 16u64;
        let t0 = instret();
        for i in 0..pages {
            m.extend_page(0x8000_0000 + i * 4096, &page.0);
        }
        let d = instret() - t0;
        core::hint::black_box(&m);
        *pp = d / pages;
        let blocks = 33 * per_block[(b == Backend::Zknh) as usize];
        println!(
            "# {b:?}: measured page extend (48 + 8 + 4096 bytes): {} instructions \
                  (33 blocks = {blocks}, rest {})",
            d / pages,
            (d / pages).saturating_sub(blocks)
        );
    }
    let zb = per_block[1];
    let zp = per_page[1];
    t.check(
        zb <= ZKNH_BLOCK_BUDGET,
        format_args!("Zknh: {zb} instructions per block <= {ZKNH_BLOCK_BUDGET}"),
    );
    // The hashing glue around the blocks is Rust: budgets for it only
    // hold in an optimized build.
    if cfg!(debug_assertions) {
        println!("# unoptimized build: per-page budgets not checked");
        return;
    }
    t.check(
        zp <= ZKNH_PAGE_BUDGET,
        format_args!("Zknh: {zp} instructions per measured page <= {ZKNH_PAGE_BUDGET}"),
    );
    // Exactly 33 compressions: a 34th block would cost another `zb`.
    t.check(
        zp >= 33 * zb && zp < 34 * zb,
        format_args!(
            "Zknh: measured page costs 33 blocks + {} (< 1 block) of overhead",
            zp - 33 * zb.min(zp / 33)
        ),
    );
}

#[no_mangle]
extern "C" fn selftest_main() -> ! {
    let (err, avail) = sbi(EID_BASE, 3, EID_DBCN, 0, 0);
    // SAFETY: single hart, before any printing.
    unsafe { HAVE_DBCN = err == 0 && avail != 0 };
    println!("measurement riscv64 self-test (Zknh + Zbb)");
    let mut t = Tally {
        passed: 0,
        failed: 0,
    };
    fips_vectors(&mut t);
    random_inputs(&mut t);
    measurement_rules(&mut t);
    counts(&mut t);
    println!("{} passed, {} failed", t.passed, t.failed);
    if t.failed == 0 {
        println!("SELFTEST: PASS");
    } else {
        println!("SELFTEST: FAIL");
    }
    power_off(t.failed != 0)
}
