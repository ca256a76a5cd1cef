//! guestvm: the confidential test guest. Salus runs it as a TVM that tellus
//! (the host) creates from measured pages; the boot vCPU enters `_start` at
//! `IMAGE_GPA` with a0 = vCPU id, a1 = entry_arg (`protocol::ARG_*`),
//! paging off.
//!
//! It prints `TEST: guestvm:NAME` then `PASS: guestvm:NAME` or
//! `FAIL: guestvm:NAME: reason` through the host (DBCN console_write,
//! forwarded by the TSM, from a page it shares with the host), then
//! `guestvm: N passed, M failed`, and shuts down with SRST (forwarded to
//! the host; reason SYSTEM_FAILURE if anything failed). tellus counts the
//! guest's PASS/FAIL lines into its own totals.
//!
//! What it checks: COVG share/unshare with a two-way data exchange and
//! "the host no longer sees new writes after unshare", an MMIO region the
//! host emulates (stores of every width incl. compressed, loads with sign
//! and zero extension), demand-zero 4 KiB pages, a measured 2 MiB page and a
//! 2 MiB zero page, vector state across exits (when the host says V is
//! there), GPRs across forwarded ecalls, and COVG argument errors.
#![no_std]
#![no_main]
// Test results carry a fixed-size reason by value: there is no allocator.
#![allow(clippy::result_large_err)]

mod protocol;

use core::arch::{asm, global_asm};
use core::fmt::{self, Write};

use protocol::*;

const EID_DBCN: u64 = 0x4442_434E;
const EID_SRST: u64 = 0x5352_5354;
const EID_COVG: u64 = 0x434F_5647;
const EID_BASE: u64 = 0x10;
const EID_SPI: u64 = 0x0073_5049;
const EID_RFNC: u64 = 0x5246_4E43;
const EID_PMU: u64 = 0x0050_4D55;
const EID_NACL: u64 = 0x4E41_434C;
const EID_COVH: u64 = 0x434F_5648;
const ERR_NOT_SUPPORTED: i64 = -2;
/// Salus's TVM entropy call (docs/cove-abi-choices.md).
const EID_SALUS_ENTROPY: u64 = 0x0953_524E;
/// sip.SSIP: a supervisor software interrupt (an IPI) is pending.
const SIP_SSIP: u64 = 1 << 1;
const COVG_ADD_MMIO: u64 = 0;
const COVG_REMOVE_MMIO: u64 = 1;
const COVG_SHARE: u64 = 2;
const COVG_UNSHARE: u64 = 3;
const COVG_ALLOW_EXT: u64 = 4;
const COVG_DENY_EXT: u64 = 5;
const ERR_INVALID_PARAM: i64 = -3;
const ERR_INVALID_ADDRESS: i64 = -5;

const STACK_SIZE: usize = 16 * 1024;

// a1 & ARG_FIRST_EXIT: shut down at once (the create-to-first-exit bench);
// nothing before that touches memory.
global_asm!(
    r#"
    .section .text.entry, "ax"
    .global _start
_start:
    andi t0, a1, {first_exit}
    beqz t0, 1f
    li a7, {srst}
    li a6, 0
    li a0, 0
    li a1, 0
    ecall
1:
    la sp, {stack} + {stack_size}
    la t0, guestvm_trap
    csrw stvec, t0
    li t0, 0x2000
    csrs sstatus, t0
    // Fill every FP (and vector) register with the guest's own pattern
    // first: the host must never see these, whatever exit comes next.
    li t1, {guest_pattern}
    fmv.d.x f0, t1
    fmv.d.x f1, t1
    fmv.d.x f2, t1
    fmv.d.x f3, t1
    fmv.d.x f4, t1
    fmv.d.x f5, t1
    fmv.d.x f6, t1
    fmv.d.x f7, t1
    fmv.d.x f8, t1
    fmv.d.x f9, t1
    fmv.d.x f10, t1
    fmv.d.x f11, t1
    fmv.d.x f12, t1
    fmv.d.x f13, t1
    fmv.d.x f14, t1
    fmv.d.x f15, t1
    fmv.d.x f16, t1
    fmv.d.x f17, t1
    fmv.d.x f18, t1
    fmv.d.x f19, t1
    fmv.d.x f20, t1
    fmv.d.x f21, t1
    fmv.d.x f22, t1
    fmv.d.x f23, t1
    fmv.d.x f24, t1
    fmv.d.x f25, t1
    fmv.d.x f26, t1
    fmv.d.x f27, t1
    fmv.d.x f28, t1
    fmv.d.x f29, t1
    fmv.d.x f30, t1
    fmv.d.x f31, t1
    andi t0, a1, {has_v}
    beqz t0, 2f
    li t0, 0x200
    csrs sstatus, t0
    .option push
    .option arch, +v
    vsetvli t0, x0, e64, m8, ta, ma
    vmv.v.x v0, t1
    vmv.v.x v8, t1
    vmv.v.x v16, t1
    vmv.v.x v24, t1
    .option pop
2:
    call guestvm_main
3:
    wfi
    j 3b

    .balign 4
    .global guestvm_secondary
guestvm_secondary:
    la sp, {stack2} + {stack2_size}
    la t0, guestvm_trap
    csrw stvec, t0
    call guestvm_secondary_main
5:
    wfi
    j 5b

    .balign 4
    .global guestvm_trap
guestvm_trap:
    // sscratch != 0: a guestvm_try_* access expects the trap; resume at
    // its recovery point with a0 = scause, a1 = stval.
    csrr t0, sscratch
    bnez t0, 6f
    csrr a0, scause
    csrr a1, sepc
    csrr a2, stval
    call guestvm_trap_rust
4:
    wfi
    j 4b
6:
    csrw sscratch, zero
    csrr a0, scause
    csrr a1, stval
    csrw sepc, t0
    sret

    // (a0 = cause or 0, a1 = stval or the loaded value) guestvm_try_load(addr)
    .balign 4
    .global guestvm_try_load
guestvm_try_load:
    la t0, 7f
    csrw sscratch, t0
    ld a1, 0(a0)
    csrw sscratch, zero
    li a0, 0
7:
    ret

    // (a0 = cause or 0, a1 = stval) guestvm_try_store(addr, value)
    .balign 4
    .global guestvm_try_store
guestvm_try_store:
    la t0, 7b
    csrw sscratch, t0
    sd a1, 0(a0)
    csrw sscratch, zero
    li a0, 0
    ret
"#,
    first_exit = const ARG_FIRST_EXIT,
    guest_pattern = const GUEST_REG_PATTERN,
    has_v = const ARG_HAS_V,
    srst = const EID_SRST,
    stack = sym STACK,
    stack_size = const STACK_SIZE,
    stack2 = sym STACK2,
    stack2_size = const STACK2_SIZE,
);

const STACK2_SIZE: usize = 4096;
#[repr(C, align(4096))]
struct Stack2([u8; STACK2_SIZE]);
static mut STACK2: Stack2 = Stack2([0; STACK2_SIZE]);

/// vCPU 1's send_ipi(vCPU 0) result.
static SECONDARY_IPI: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(1);

/// Written by vCPU 1 (started through SBI HSM), read by vCPU 0.
static SECONDARY_MARK: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);

extern "C" {
    fn guestvm_secondary();
    fn guestvm_try_load(addr: u64) -> Tried;
    fn guestvm_try_store(addr: u64, value: u64) -> Tried;
}

/// What a `guestvm_try_*` access did: `cause` 0 (and the loaded value in
/// `data`), or the trap it took (`data` = stval).
#[repr(C)]
#[derive(Clone, Copy)]
struct Tried {
    cause: u64,
    data: u64,
}

const EID_HSM: u64 = 0x0048_534D;
const HSM_STOPPED: u64 = 1;
const ERR_ALREADY_AVAILABLE: i64 = -6;
const SECONDARY_MAGIC: u64 = 0x5ec0_0d0c_0000_0001;

/// vCPU 1's life: leave a mark for vCPU 0 (confidential memory both see),
/// send vCPU 0 an IPI (SBI IPI, served by the TSM), then stop.
#[no_mangle]
extern "C" fn guestvm_secondary_main(vcpu: u64, opaque: u64) -> ! {
    if opaque == covi::SECONDARY_COVI {
        covi::secondary();
        ecall(EID_HSM, 1, [0; 6]);
    }
    if opaque == IPI_BENCH_MAGIC {
        ipi_bench_secondary();
    }
    SECONDARY_MARK.store(opaque ^ vcpu, core::sync::atomic::Ordering::Release);
    let r = ecall(EID_SPI, 0, [1, 0, 0, 0, 0, 0]);
    SECONDARY_IPI.store(r.error as u64, core::sync::atomic::Ordering::Release);
    ecall(EID_HSM, 1, [0; 6]);
    loop {
        // SAFETY: wfi has no memory effects.
        unsafe { asm!("wfi") };
    }
}

#[repr(C, align(4096))]
struct Stack([u8; STACK_SIZE]);
static mut STACK: Stack = Stack([0; STACK_SIZE]);

// ---- SBI ---------------------------------------------------------------------

#[derive(Clone, Copy)]
struct Ret {
    error: i64,
    value: u64,
}

fn ecall(eid: u64, fid: u64, a: [u64; 6]) -> Ret {
    let error: i64;
    let value: u64;
    // SAFETY: an SBI call; every call guestvm makes passes only scalars or
    // guest-physical buffers it owns.
    unsafe {
        asm!("ecall",
            inlateout("a0") a[0] => error, inlateout("a1") a[1] => value,
            in("a2") a[2], in("a3") a[3], in("a4") a[4], in("a5") a[5],
            in("a6") fid, in("a7") eid, options(nostack));
    }
    Ret { error, value }
}

fn covg(fid: u64, a0: u64, a1: u64) -> Ret {
    ecall(EID_COVG, fid, [a0, a1, 0, 0, 0, 0])
}

fn gvm(fid: u64, a0: u64) -> Ret {
    ecall(EID_GVM, fid, [a0, 0, 0, 0, 0, 0])
}

fn shutdown(failed: bool) -> ! {
    // SRST: type shutdown (0), reason 0 or SYSTEM_FAILURE (1).
    ecall(EID_SRST, 0, [0, failed as u64, 0, 0, 0, 0]);
    loop {
        // SAFETY: wfi has no memory effects.
        unsafe { asm!("wfi") };
    }
}

// ---- volatile guest-physical memory ------------------------------------------

fn rd(addr: u64) -> u64 {
    // SAFETY: paging is off; every address guestvm reads is guest-physical
    // memory the host maps (or emulates) per the protocol.
    unsafe { core::ptr::read_volatile(addr as *const u64) }
}

fn wr(addr: u64, v: u64) {
    // SAFETY: as for `rd`.
    unsafe { core::ptr::write_volatile(addr as *mut u64, v) }
}

// ---- console ---------------------------------------------------------------

/// Output is collected here until the console page is shared, then written
/// from the console page with DBCN console_write.
struct Console {
    shared: bool,
    buf: [u8; 2048],
    len: usize,
}

static mut CONSOLE: Console = Console {
    shared: false,
    buf: [0; 2048],
    len: 0,
};

#[allow(clippy::deref_addrof)]
fn console() -> &'static mut Console {
    // SAFETY: guestvm runs on one vCPU and never re-enters the console.
    unsafe { &mut *(&raw mut CONSOLE) }
}

impl Console {
    fn flush(&mut self) {
        if !self.shared || self.len == 0 {
            return;
        }
        let mut off = 0;
        while off < self.len {
            let n = (self.len - off).min(SHARED_LEN as usize);
            for i in 0..n {
                // SAFETY: the console page is shared and mapped for us.
                unsafe {
                    core::ptr::write_volatile((CONSOLE_GPA as *mut u8).add(i), self.buf[off + i])
                };
            }
            let mut done = 0;
            let mut tries = 0;
            while done < n && tries < 16 {
                let r = ecall(
                    EID_DBCN,
                    0,
                    [(n - done) as u64, CONSOLE_GPA + done as u64, 0, 0, 0, 0],
                );
                if r.error != 0 {
                    break;
                }
                done += (r.value as usize).min(n - done);
                tries += 1;
            }
            off += n;
        }
        self.len = 0;
    }
}

impl Write for Console {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for &b in s.as_bytes() {
            if self.len == self.buf.len() {
                self.flush();
                if self.len == self.buf.len() {
                    return Ok(()); // not shared yet: drop the overflow
                }
            }
            self.buf[self.len] = b;
            self.len += 1;
        }
        Ok(())
    }
}

fn print_line(args: fmt::Arguments) {
    let c = console();
    let _ = c.write_fmt(args);
    let _ = c.write_str("\n");
    c.flush();
}

macro_rules! println {
    ($($arg:tt)*) => { print_line(format_args!($($arg)*)) };
}

/// A short failure reason.
struct Reason {
    buf: [u8; 120],
    len: usize,
}

impl Write for Reason {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for &b in s.as_bytes() {
            if self.len < self.buf.len() {
                self.buf[self.len] = b;
                self.len += 1;
            }
        }
        Ok(())
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(core::str::from_utf8(&self.buf[..self.len]).unwrap_or("?"))
    }
}

fn reason(args: fmt::Arguments) -> Reason {
    let mut r = Reason {
        buf: [0; 120],
        len: 0,
    };
    let _ = r.write_fmt(args);
    r
}

macro_rules! ensure {
    ($cond:expr, $($arg:tt)*) => {
        if !$cond {
            return Err(reason(format_args!($($arg)*)));
        }
    };
}

type TestResult = Result<(), Reason>;

mod attest;
mod covi;

struct Tally {
    passed: u32,
    failed: u32,
}

fn run_test(t: &mut Tally, name: &str, f: impl FnOnce() -> TestResult) {
    println!("TEST: guestvm:{name}");
    match f() {
        Ok(()) => {
            t.passed += 1;
            println!("PASS: guestvm:{name}");
        }
        Err(r) => {
            t.failed += 1;
            println!("FAIL: guestvm:{name}: {r}");
        }
    }
}

// ---- tests ----------------------------------------------------------------

fn test_console() -> TestResult {
    let r = covg(COVG_SHARE, CONSOLE_GPA, SHARED_LEN);
    ensure!(
        r.error == 0,
        "share_memory_region(console page): error {}",
        r.error
    );
    // The first touch faults; the host adds a shared page.
    wr(CONSOLE_GPA, 0);
    console().shared = true;
    Ok(())
}

fn test_shared_exchange() -> TestResult {
    let r = covg(COVG_SHARE, SHARED_GPA, SHARED_LEN);
    ensure!(r.error == 0, "share_memory_region: error {}", r.error);
    let seed = 0x5eed_0001;
    for i in 0..HALF_WORDS {
        wr(SHARED_GPA + 8 * i, pattern(seed, i));
    }
    let r = gvm(FID_SHARED_CHECK, seed);
    ensure!(
        r.error == 0 && r.value == 0,
        "host saw {} wrong word(s) of ours (error {})",
        r.value,
        r.error
    );
    for i in 0..HALF_WORDS {
        let w = rd(SHARED_GPA + 8 * (HALF_WORDS + i));
        ensure!(
            w == pattern(!seed, i),
            "host word {i} reads {w:#x}, want {:#x}",
            pattern(!seed, i)
        );
    }
    Ok(())
}

fn test_unshare() -> TestResult {
    let r = covg(COVG_UNSHARE, SHARED_GPA, SHARED_LEN);
    ensure!(r.error == 0, "unshare_memory_region: error {}", r.error);
    // Unsharing is destructive: the page is confidential (zero) again.
    let first = rd(SHARED_GPA);
    ensure!(
        first == 0,
        "first word after unshare reads {first:#x}, want 0"
    );
    let seed = 0x5eed_0002;
    for i in 0..HALF_WORDS {
        wr(SHARED_GPA + 8 * i, pattern(seed, i));
    }
    let r = gvm(FID_UNSHARED_CHECK, seed);
    ensure!(
        r.error == 0 && r.value == 0,
        "the host still sees {} new word(s) (error {})",
        r.value,
        r.error
    );
    for i in 0..HALF_WORDS {
        ensure!(rd(SHARED_GPA + 8 * i) == pattern(seed, i), "word {i} lost");
    }
    Ok(())
}

fn mmio_store(width: u64, off: u64) {
    let a = MMIO_GPA + off;
    let v = mmio_store_value(off);
    // SAFETY: stores to the emulated MMIO page; the host handles the fault.
    unsafe {
        match width {
            8 => asm!("sd {v}, 0({a})", v = in(reg) v, a = in(reg) a, options(nostack)),
            4 => asm!("sw {v}, 0({a})", v = in(reg) v, a = in(reg) a, options(nostack)),
            2 => asm!("sh {v}, 0({a})", v = in(reg) v, a = in(reg) a, options(nostack)),
            _ => asm!("sb {v}, 0({a})", v = in(reg) v, a = in(reg) a, options(nostack)),
        }
    }
}

fn mmio_c_sw(off: u64) {
    let a = MMIO_GPA + off;
    let v = mmio_store_value(off);
    // SAFETY: as above; a4/a5 are in the compressed register set.
    unsafe {
        asm!(".option push", ".option rvc", "c.sw a4, 0(a5)", ".option pop",
            in("a5") a, in("a4") v, options(nostack));
    }
}

/// (mnemonic, width, signed) of the loads exercised.
const LOADS: [(&str, u64, bool); 7] = [
    ("ld", 8, true),
    ("lw", 4, true),
    ("lwu", 4, false),
    ("lh", 2, true),
    ("lhu", 2, false),
    ("lb", 1, true),
    ("lbu", 1, false),
];

fn mmio_load(i: usize, a: u64) -> u64 {
    let v: u64;
    // SAFETY: loads from the emulated MMIO page.
    unsafe {
        match i {
            0 => asm!("ld {v}, 0({a})", v = out(reg) v, a = in(reg) a, options(nostack)),
            1 => asm!("lw {v}, 0({a})", v = out(reg) v, a = in(reg) a, options(nostack)),
            2 => asm!("lwu {v}, 0({a})", v = out(reg) v, a = in(reg) a, options(nostack)),
            3 => asm!("lh {v}, 0({a})", v = out(reg) v, a = in(reg) a, options(nostack)),
            4 => asm!("lhu {v}, 0({a})", v = out(reg) v, a = in(reg) a, options(nostack)),
            5 => asm!("lb {v}, 0({a})", v = out(reg) v, a = in(reg) a, options(nostack)),
            _ => asm!("lbu {v}, 0({a})", v = out(reg) v, a = in(reg) a, options(nostack)),
        }
    }
    v
}

fn mmio_c_lw(a: u64) -> u64 {
    let v: u64;
    // SAFETY: as above.
    unsafe {
        asm!(".option push", ".option rvc", "c.lw a4, 0(a5)", ".option pop",
            in("a5") a, out("a4") v, options(nostack));
    }
    v
}

fn test_mmio() -> TestResult {
    let r = covg(COVG_ADD_MMIO, MMIO_GPA, MMIO_LEN);
    ensure!(r.error == 0, "add_mmio_region: error {}", r.error);
    let mut stores = 0;
    for (k, w) in [8u64, 4, 2, 1].into_iter().enumerate() {
        mmio_store(w, 8 * k as u64);
        stores += 1;
    }
    mmio_c_sw(0x40);
    stores += 1;
    let r = gvm(FID_MMIO_STORES, 0);
    ensure!(
        r.error == 0 && r.value == stores,
        "host matched {} of {stores} MMIO stores (error {})",
        r.value,
        r.error
    );
    for (i, &(name, width, signed)) in LOADS.iter().enumerate() {
        let off = 0x100 + 8 * i as u64;
        let got = mmio_load(i, MMIO_GPA + off);
        let raw = truncate(mmio_load_value(off), width);
        let want = if signed { sign_extend(raw, width) } else { raw };
        ensure!(got == want, "{name} at +{off:#x}: {got:#x}, want {want:#x}");
    }
    let off = 0x180;
    let got = mmio_c_lw(MMIO_GPA + off);
    let want = sign_extend(truncate(mmio_load_value(off), 4), 4);
    ensure!(got == want, "c.lw at +{off:#x}: {got:#x}, want {want:#x}");
    let r = covg(COVG_REMOVE_MMIO, MMIO_GPA, MMIO_LEN);
    ensure!(r.error == 0, "remove_mmio_region: error {}", r.error);
    Ok(())
}

fn test_demand_zero() -> TestResult {
    for p in 0..ZERO_4K_PAGES {
        let base = ZERO_4K_GPA + p * 4096;
        let off = ((p * 520) % 4096) & !7;
        let v = rd(base + off);
        ensure!(v == 0, "page {p} +{off:#x} reads {v:#x} before any write");
        wr(base + off, pattern(p, off));
        wr(base + 4088, !p);
    }
    for p in 0..ZERO_4K_PAGES {
        let base = ZERO_4K_GPA + p * 4096;
        let off = ((p * 520) % 4096) & !7;
        ensure!(
            rd(base + off) == pattern(p, off),
            "page {p}: write did not stick"
        );
        ensure!(rd(base + 4088) == !p, "page {p}: last word did not stick");
        let other = if off == 8 { 16 } else { 8 };
        ensure!(
            rd(base + other) == 0,
            "page {p}: untouched word is not zero"
        );
    }
    Ok(())
}

fn test_measured_2m() -> TestResult {
    for i in 0..SIZE_2M / 8 {
        let w = rd(MEASURED_2M_GPA + 8 * i);
        ensure!(
            w == pattern(MEASURED_2M_SEED, i),
            "word {i} (+{:#x}) = {w:#x}, want {:#x}",
            8 * i,
            pattern(MEASURED_2M_SEED, i)
        );
    }
    Ok(())
}

fn test_zero_2m() -> TestResult {
    // Every 4 KiB page's first and last word, then write and read back.
    let mut off = 0;
    while off < SIZE_2M {
        let (a, b) = (rd(ZERO_2M_GPA + off), rd(ZERO_2M_GPA + off + 4088));
        ensure!(a == 0 && b == 0, "+{off:#x} not zero ({a:#x}, {b:#x})");
        off += 4096;
    }
    let mut off = 0;
    while off < SIZE_2M {
        wr(ZERO_2M_GPA + off + 8, pattern(7, off));
        off += 4096;
    }
    let mut off = 0;
    while off < SIZE_2M {
        ensure!(
            rd(ZERO_2M_GPA + off + 8) == pattern(7, off),
            "+{:#x}: write did not stick",
            off + 8
        );
        off += 4096;
    }
    Ok(())
}

fn test_vector() -> TestResult {
    let a: [u64; 8] = core::array::from_fn(|i| pattern(11, i as u64));
    let b: [u64; 8] = core::array::from_fn(|i| pattern(12, i as u64));
    let mut c = [0u64; 8];
    let mut after = [0u64; 8];
    let vl: u64;
    // SAFETY: V is present (the host says so) and sstatus.VS was set at
    // entry; the arrays are 8 u64 each and vl <= 8 (e64, m1 with VLEN <=
    // 512 gives at most 8; larger VLEN is capped by the AVL of 8). The
    // forwarded NOP ecall in the middle must preserve v1.
    unsafe {
        asm!(
            ".option push",
            ".option arch, +v",
            "li t0, 8",
            "vsetvli {vl}, t0, e64, m1, ta, ma",
            "vle64.v v1, ({a})",
            "vle64.v v2, ({b})",
            "vadd.vv v3, v1, v2",
            "vse64.v v3, ({c})",
            "li a7, {eid}",
            "li a6, {nop}",
            "li a0, 0",
            "ecall",
            "vse64.v v1, ({after})",
            ".option pop",
            vl = out(reg) vl,
            a = in(reg) a.as_ptr(),
            b = in(reg) b.as_ptr(),
            c = in(reg) c.as_mut_ptr(),
            after = in(reg) after.as_mut_ptr(),
            eid = const EID_GVM,
            nop = const FID_NOP,
            out("t0") _, out("a0") _, out("a1") _, out("a6") _, out("a7") _,
            options(nostack),
        );
    }
    ensure!((1..=8).contains(&vl), "vl = {vl}");
    for i in 0..vl as usize {
        ensure!(c[i] == a[i].wrapping_add(b[i]), "vadd element {i} wrong");
        ensure!(after[i] == a[i], "v1 element {i} changed across an exit");
    }
    Ok(())
}

fn test_ecall_regs() -> TestResult {
    let (mut r2, mut r3, mut r4, mut r5, mut r6, mut r7): (u64, u64, u64, u64, u64, u64);
    // SAFETY: a forwarded NOP ecall; only a0/a1 may change.
    unsafe {
        asm!("ecall",
            inout("a0") 0u64 => _, inout("a1") 0u64 => _,
            inout("a2") 0xa2a2u64 => r2, inout("a3") 0xa3a3u64 => r3,
            inout("a4") 0xa4a4u64 => r4, inout("a5") 0xa5a5u64 => r5,
            inout("a6") FID_NOP => r6, inout("a7") EID_GVM => r7,
            options(nostack));
    }
    let out = [r2, r3, r4, r5, r6, r7];
    let want = [0xa2a2, 0xa3a3, 0xa4a4, 0xa5a5, FID_NOP, EID_GVM];
    for (i, (&g, &w)) in out.iter().zip(want.iter()).enumerate() {
        ensure!(
            g == w,
            "a{} = {g:#x} after a forwarded ecall, want {w:#x}",
            i + 2
        );
    }
    // Keep the compiler from assuming anything about the outputs.
    r2 = core::hint::black_box(r2);
    r3 = core::hint::black_box(r3);
    r4 = core::hint::black_box(r4);
    r5 = core::hint::black_box(r5);
    r6 = core::hint::black_box(r6);
    r7 = core::hint::black_box(r7);
    let _ = (r2, r3, r4, r5, r6, r7);
    Ok(())
}

fn test_covg_errors() -> TestResult {
    let r = covg(COVG_SHARE, SHARED_GPA + 8, SHARED_LEN);
    ensure!(
        r.error == ERR_INVALID_ADDRESS,
        "share(unaligned gpa): error {}",
        r.error
    );
    let r = covg(COVG_SHARE, MMIO_GPA, SHARED_LEN);
    ensure!(
        r.error == ERR_INVALID_PARAM,
        "share(range outside every confidential region): error {}",
        r.error
    );
    let r = covg(COVG_ADD_MMIO, MMIO_GPA + 4, MMIO_LEN);
    ensure!(
        r.error == ERR_INVALID_ADDRESS,
        "add_mmio_region(unaligned gpa): error {}",
        r.error
    );
    let r = covg(COVG_ALLOW_EXT, u64::MAX, 0);
    ensure!(
        r.error == 0,
        "allow_external_interrupt(all): error {}",
        r.error
    );
    let r = covg(COVG_DENY_EXT, u64::MAX, 0);
    ensure!(
        r.error == 0,
        "deny_external_interrupt(all): error {}",
        r.error
    );
    Ok(())
}

#[no_mangle]
extern "C" fn guestvm_main(vcpu: u64, arg: u64) -> ! {
    if arg & ARG_BENCH_ECALL != 0 {
        let n = arg >> ARG_ITERS_SHIFT;
        for _ in 0..n {
            gvm(FID_NOP, 0);
        }
        shutdown(false);
    }
    if arg & ARG_BENCH_IPI != 0 && arg & ARG_HAS_VCPU1 != 0 {
        if arg & ARG_COVI != 0 {
            IPI_BENCH_IMSIC.store(true, core::sync::atomic::Ordering::Release);
            // The host benches inject_tvm_cpu afterwards.
            covg(COVG_ALLOW_EXT, u64::MAX, 0);
        }
        ipi_bench(arg >> ARG_ITERS_SHIFT);
    }
    let mut t = Tally {
        passed: 0,
        failed: 0,
    };
    run_test(&mut t, "console", test_console);
    println!("guestvm: vcpu {vcpu}, entry_arg {arg:#x}");
    if arg & ARG_COVI != 0 {
        covi::run(&mut t, arg);
        println!("guestvm: {} passed, {} failed", t.passed, t.failed);
        shutdown(t.failed != 0)
    }
    run_test(&mut t, "shared_exchange", test_shared_exchange);
    run_test(&mut t, "unshare", test_unshare);
    run_test(&mut t, "mmio", test_mmio);
    run_test(&mut t, "demand_zero", test_demand_zero);
    if arg & ARG_HAS_2M != 0 {
        run_test(&mut t, "measured_2m", test_measured_2m);
    }
    run_test(&mut t, "zero_2m", test_zero_2m);
    if arg & ARG_HAS_V != 0 {
        run_test(&mut t, "vector", test_vector);
    } else {
        println!("guestvm: no V (entry_arg): vector test not run");
    }
    run_test(&mut t, "ecall_regs", test_ecall_regs);
    run_test(&mut t, "covg_errors", test_covg_errors);
    run_test(&mut t, "tsm_sbi", test_tsm_sbi);
    run_test(&mut t, "unmapped_gpa", test_unmapped_gpa);
    run_test(&mut t, "s_mode_insns", || test_s_mode_insns(arg));
    attest::run(&mut t, arg);
    if arg & ARG_HAS_VCPU1 != 0 {
        run_test(&mut t, "secondary_vcpu", test_secondary_vcpu);
    }
    println!("guestvm: {} passed, {} failed", t.passed, t.failed);
    shutdown(t.failed != 0)
}

#[no_mangle]
extern "C" fn guestvm_trap_rust(scause: u64, sepc: u64, stval: u64) -> ! {
    println!(
        "FAIL: guestvm:trap: unexpected trap scause={scause:#x} sepc={sepc:#x} stval={stval:#x}"
    );
    shutdown(true)
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    println!("FAIL: guestvm:panic: {info}");
    shutdown(true)
}

/// Reads and clears sip.SSIP (interrupts stay disabled: sie is 0).
fn take_ssip() -> bool {
    let sip: u64;
    // SAFETY: CSR accesses with no memory effects.
    unsafe {
        asm!("csrr {0}, sip", out(reg) sip);
        asm!("csrc sip, {0}", in(reg) SIP_SSIP);
    }
    sip & SIP_SSIP != 0
}

/// The SBI the TSM serves to the TVM (the host cannot answer for it):
/// probe results, BASE, an unserved extension, RFENCE, a self IPI, and
/// DBCN from confidential memory.
fn test_tsm_sbi() -> TestResult {
    for (eid, want) in [
        (EID_BASE, 1),
        (EID_SPI, 1),
        (EID_RFNC, 1),
        (EID_HSM, 1),
        (EID_SRST, 1),
        (EID_DBCN, 1),
        (EID_COVG, 1),
        (EID_PMU, 0),
        (EID_NACL, 0),
        (EID_COVH, 0),
        (0x01, 0),
        (EID_GVM, 0),
    ] {
        let r = ecall(EID_BASE, 3, [eid, 0, 0, 0, 0, 0]);
        ensure!(
            r.error == 0 && r.value == want,
            "probe_extension({eid:#x}) = ({}, {}), want (0, {want})",
            r.error,
            r.value
        );
    }
    let v = ecall(EID_BASE, 0, [0; 6]);
    ensure!(
        v.error == 0 && v.value == 2 << 24,
        "spec version {:#x}",
        v.value
    );
    let id = ecall(EID_BASE, 1, [0; 6]);
    ensure!(
        id.error == 0 && id.value == 0x5341_4c55,
        "impl id {:#x}",
        id.value
    );
    // Not served, and not the host's to answer either.
    let pmu = ecall(EID_PMU, 0, [0; 6]);
    ensure!(
        pmu.error == ERR_NOT_SUPPORTED,
        "PMU num_counters: error {}",
        pmu.error
    );
    // RFENCE among our vCPUs: all, fence.i, a vCPU that does not exist,
    // the hypervisor fences.
    let r = ecall(EID_RFNC, 1, [0, u64::MAX, 0, u64::MAX, 0, 0]);
    ensure!(r.error == 0, "remote_sfence_vma(all): error {}", r.error);
    let r = ecall(EID_RFNC, 0, [1, 0, 0, 0, 0, 0]);
    ensure!(r.error == 0, "remote_fence_i(vCPU 0): error {}", r.error);
    let r = ecall(EID_RFNC, 1, [1, 7, 0, 4096, 0, 0]);
    ensure!(
        r.error == ERR_INVALID_PARAM,
        "remote_sfence_vma(vCPU 7): error {}",
        r.error
    );
    let r = ecall(EID_RFNC, 3, [1, 0, 0, 4096, 0, 0]);
    ensure!(
        r.error == ERR_NOT_SUPPORTED,
        "remote_hfence_gvma_vmid: error {}",
        r.error
    );
    // An IPI to ourselves is pending when the call returns.
    ensure!(!take_ssip(), "sip.SSIP set before any IPI");
    let r = ecall(EID_SPI, 0, [1, 0, 0, 0, 0, 0]);
    ensure!(r.error == 0, "send_ipi(self): error {}", r.error);
    ensure!(take_ssip(), "send_ipi(self): sip.SSIP clear");
    let r = ecall(EID_SPI, 0, [1, 6, 0, 0, 0, 0]);
    ensure!(
        r.error == ERR_INVALID_PARAM,
        "send_ipi(vCPU 6): error {}",
        r.error
    );
    // DBCN straight from confidential memory (the TSM copies it out).
    static LINE: &[u8] = b"guestvm: dbcn from confidential memory\n";
    let r = ecall(
        EID_DBCN,
        0,
        [LINE.len() as u64, LINE.as_ptr() as u64, 0, 0, 0, 0],
    );
    ensure!(
        r.error == 0 && r.value == LINE.len() as u64,
        "console_write(confidential) = ({}, {})",
        r.error,
        r.value
    );
    let r = ecall(EID_DBCN, 0, [8, 0x1000, 0, 0, 0, 0]);
    ensure!(
        r.error == ERR_INVALID_PARAM,
        "console_write(unmapped): error {}",
        r.error
    );
    // SRST's type and reason are uint32: bits 63..32 are ignored. A vendor
    // reset type (0xF000_0000) is not supported, whatever is above it
    // (INVALID_PARAM would mean the upper bits were looked at); a valid
    // type would end the TVM, so only this one is tried.
    const JUNK: u64 = 0xdead_beef << 32;
    let r = ecall(EID_SRST, 0, [JUNK | 0xF000_0000, JUNK, 0, 0, 0, 0]);
    ensure!(
        r.error == ERR_NOT_SUPPORTED,
        "system_reset(type 0xdeadbeef_f0000000, reason 0xdeadbeef_00000000): error {}",
        r.error
    );
    // Salus's entropy for TVMs (QEMU's firmware always has an rng-seed).
    let p = ecall(EID_BASE, 3, [EID_SALUS_ENTROPY, 0, 0, 0, 0, 0]);
    ensure!(p.value == 1, "probe_extension(Salus entropy) = {}", p.value);
    let (a, b) = (
        ecall(EID_SALUS_ENTROPY, 0, [0; 6]),
        ecall(EID_SALUS_ENTROPY, 0, [0; 6]),
    );
    ensure!(
        a.error == 0 && b.error == 0 && a.value != b.value,
        "entropy draws ({}, {:#x}), ({}, {:#x})",
        a.error,
        a.value,
        b.error,
        b.value
    );
    let r = ecall(EID_SALUS_ENTROPY, 1, [0; 6]);
    ensure!(
        r.error == ERR_NOT_SUPPORTED,
        "entropy FID 1: error {}",
        r.error
    );
    Ok(())
}

/// A GPA that is neither the TVM's memory nor an MMIO region it declared
/// faults back into the TVM as an access fault, as on real hardware: the
/// host never sees it (tellus stops on a fault at an unexpected GPA).
fn test_unmapped_gpa() -> TestResult {
    const NOWHERE: u64 = 0x4000_0000;
    // SAFETY: the access either faults (and guestvm_trap resumes at the
    // recovery point) or reads/writes a word nobody else uses.
    let l = unsafe { guestvm_try_load(NOWHERE) };
    ensure!(
        l.cause == 5 && l.data == NOWHERE,
        "load from {NOWHERE:#x}: cause {} stval/value {:#x} (want load access fault 5)",
        l.cause,
        l.data
    );
    // SAFETY: as above.
    let s = unsafe { guestvm_try_store(NOWHERE + 8, 1) };
    ensure!(
        s.cause == 7 && s.data == NOWHERE + 8,
        "store to {:#x}: cause {} stval {:#x} (want store access fault 7)",
        NOWHERE + 8,
        s.cause,
        s.data
    );
    // Memory still works through the same path.
    // SAFETY: reads guestvm's own first image word.
    let ok = unsafe { guestvm_try_load(IMAGE_GPA) };
    ensure!(ok.cause == 0, "load from the image: cause {}", ok.cause);
    Ok(())
}

/// A second vCPU of this TVM, started with SBI HSM (the TSM starts it; the
/// host runs it on another hart), runs, writes memory vCPU 0 sees, stops.
fn test_secondary_vcpu() -> TestResult {
    let entry = guestvm_secondary as *const () as u64;
    let r = ecall(EID_HSM, 0, [1, entry, SECONDARY_MAGIC, 0, 0, 0]);
    ensure!(r.error == 0, "hart_start(1) error {}", r.error);
    // The host ran vCPU 1 to its hart_stop before resuming us.
    let mark = SECONDARY_MARK.load(core::sync::atomic::Ordering::Acquire);
    ensure!(mark == SECONDARY_MAGIC ^ 1, "vCPU 1 left mark {mark:#x}");
    // vCPU 1's IPI reached us through the TSM (we were not running).
    let ipi = SECONDARY_IPI.load(core::sync::atomic::Ordering::Acquire);
    ensure!(ipi == 0, "vCPU 1's send_ipi(vCPU 0): error {}", ipi as i64);
    ensure!(take_ssip(), "vCPU 1's IPI never arrived (sip.SSIP clear)");
    let st = ecall(EID_HSM, 2, [1, 0, 0, 0, 0, 0]);
    ensure!(
        st.error == 0 && st.value == HSM_STOPPED,
        "hart_get_status(1) = ({}, {})",
        st.error,
        st.value
    );
    let me = ecall(EID_HSM, 0, [0, entry, 0, 0, 0, 0]);
    ensure!(
        me.error == ERR_ALREADY_AVAILABLE,
        "hart_start(self) error {}",
        me.error
    );
    let none = ecall(EID_HSM, 0, [7, entry, 0, 0, 0, 0]);
    ensure!(
        none.error == ERR_INVALID_PARAM,
        "hart_start(7, no such vCPU) error {}",
        none.error
    );
    let out = ecall(EID_HSM, 0, [1, 0x1000, 0, 0, 0, 0]);
    ensure!(
        out.error == ERR_INVALID_ADDRESS,
        "hart_start(1, outside memory) error {}",
        out.error
    );
    Ok(())
}

// ---- the SBI IPI round-trip benchmark (ARG_BENCH_IPI) ----------------------

/// vCPU 1's `opaque` in the IPI benchmark.
const IPI_BENCH_MAGIC: u64 = 0x1b1b_0000_0000_0001;
/// Untimed round trips before the timed ones.
const IPI_BENCH_WARMUP: u64 = 16;
/// How many IPIs vCPU 1 answers (vCPU 0 sets it before starting vCPU 1).
static IPI_BENCH_ROUNDS: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);
/// The ping-pong goes through the vCPUs' IMSIC files (`ARG_COVI`), not SBI.
static IPI_BENCH_IMSIC: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);

fn ipi_imsic() -> bool {
    IPI_BENCH_IMSIC.load(core::sync::atomic::Ordering::Relaxed)
}

fn read_time() -> u64 {
    let t: u64;
    // SAFETY: reads the time CSR (hcounteren.TM lets VS-mode read it).
    unsafe { asm!("csrr {0}, time", out(reg) t) };
    t
}

/// sie.SSIE on (sstatus.SIE stays clear: an IPI never traps, it only wakes
/// `wfi`).
fn enable_ssie() {
    if ipi_imsic() {
        covi::bench_setup();
        return;
    }
    // SAFETY: a CSR write with no memory effects.
    unsafe { asm!("csrs sie, {0}", in(reg) SIP_SSIP) };
}

/// Waits (in `wfi`, so the hart idles) for an IPI and takes it.
fn ipi_wait() {
    if ipi_imsic() {
        covi::bench_wait();
        return;
    }
    while !take_ssip() {
        // SAFETY: wfi has no memory effects; SSIP is enabled in sie, so an
        // IPI posted before it makes it return at once.
        unsafe { asm!("wfi") };
    }
}

/// SBI send_ipi to one vCPU; the SBI error.
fn ipi_send(vcpu: u64) -> i64 {
    if ipi_imsic() {
        covi::bench_send(vcpu);
        return 0;
    }
    ecall(EID_SPI, 0, [1 << vcpu, 0, 0, 0, 0, 0]).error
}

/// vCPU 0: starts vCPU 1, waits for its first IPI, then sends it an IPI
/// and waits for the answer, `IPI_BENCH_WARMUP + n` times, timing the
/// last `n` with the time CSR. The host hears the result (it converts
/// ticks to ns, i.e. instructions under `-icount shift=0`).
fn ipi_bench(n: u64) -> ! {
    enable_ssie();
    IPI_BENCH_ROUNDS.store(IPI_BENCH_WARMUP + n, core::sync::atomic::Ordering::Release);
    // vCPU 1 must never need the host while it runs: fault its stack in
    // from here (the statics it reads are in this page or the image).
    for off in (0..STACK2_SIZE as u64).step_by(4096) {
        wr((&raw mut STACK2) as u64 + off, 0);
    }
    let entry = guestvm_secondary as *const () as u64;
    let r = ecall(EID_HSM, 0, [1, entry, IPI_BENCH_MAGIC, 0, 0, 0]);
    if r.error != 0 {
        ecall(EID_GVM, FID_BENCH_RESULT, [0, 0, 1, 0, 0, 0]);
        shutdown(true);
    }
    let mut bad = 0u64;
    ipi_wait();
    for _ in 0..IPI_BENCH_WARMUP {
        bad += (ipi_send(1) != 0) as u64;
        ipi_wait();
    }
    let t0 = read_time();
    for _ in 0..n {
        bad += (ipi_send(1) != 0) as u64;
        ipi_wait();
    }
    let t1 = read_time();
    ecall(
        EID_GVM,
        FID_BENCH_RESULT,
        [t1.wrapping_sub(t0), n, bad, 0, 0, 0],
    );
    shutdown(bad != 0)
}

/// vCPU 1: says it runs (an IPI to vCPU 0), answers every IPI with one,
/// then stops (HSM).
fn ipi_bench_secondary() -> ! {
    enable_ssie();
    let rounds = IPI_BENCH_ROUNDS.load(core::sync::atomic::Ordering::Acquire);
    ipi_send(0);
    for _ in 0..rounds {
        ipi_wait();
        ipi_send(0);
    }
    ecall(EID_HSM, 1, [0; 6]);
    loop {
        // SAFETY: wfi has no memory effects.
        unsafe { asm!("wfi") };
    }
}

// ---- S-mode instructions a TVM executes as S-mode would ----------------------

/// Runs the asm text `$insn` with guestvm_trap's recovery armed and gives
/// (scause, stval) of the trap it took, (0, 0) if it took none. `$insn`
/// must not touch t0, a0 or a1; further asm operands may follow.
macro_rules! try_insn {
    ($insn:literal $(, $($ops:tt)*)?) => {{
        let cause: u64;
        let tval: u64;
        // SAFETY: the instruction is one of the test's (no memory effects
        // beyond its operands); a trap resumes at label 9 through
        // guestvm_trap with a0 = scause, a1 = stval.
        unsafe {
            asm!(
                "la t0, 9f",
                "li a0, 0",
                "li a1, 0",
                "csrw sscratch, t0",
                $insn,
                "csrw sscratch, zero",
                "9:",
                out("t0") _,
                out("a0") cause,
                out("a1") tval,
                $($($ops)*)?
            );
        }
        (cause, tval)
    }};
}

/// Instructions real S-mode hardware with these extensions executes must
/// complete in the TVM too (no virtual-instruction exception may reach it
/// as an illegal instruction), and hypervisor instructions and CSRs, which
/// S-mode hardware without H rejects, must raise an illegal-instruction
/// exception (2) in it. docs/cove-abi-choices.md has the audit.
fn test_s_mode_insns(arg: u64) -> TestResult {
    // wfi returns at once with an interrupt pending and enabled in sie
    // (sstatus.SIE stays clear: nothing is taken).
    // SAFETY: CSR writes with no memory effects.
    unsafe {
        asm!("csrs sie, {0}", in(reg) SIP_SSIP);
        asm!("csrs sip, {0}", in(reg) SIP_SSIP);
    }
    let (c, v) = try_insn!("wfi");
    let pending = take_ssip();
    // SAFETY: as above.
    unsafe { asm!("csrc sie, {0}", in(reg) SIP_SSIP) };
    ensure!(c == 0, "wfi (SSIP pending): trap {c} stval {v:#x}");
    ensure!(pending, "sip.SSIP set by the TVM did not stick");
    if arg & ARG_HAS_ZAWRS != 0 {
        // wrs.nto, wrs.sto (Zawrs), no reservation held: they return.
        let (c, v) = try_insn!(".word 0x00d00073");
        ensure!(c == 0, "wrs.nto: trap {c} stval {v:#x}");
        let (c, v) = try_insn!(".word 0x01d00073");
        ensure!(c == 0, "wrs.sto: trap {c} stval {v:#x}");
    }
    for (name, (c, v)) in [
        ("rdtime", try_insn!("csrr t1, time", out("t1") _)),
        ("rdcycle", try_insn!("csrr t1, cycle", out("t1") _)),
        ("rdinstret", try_insn!("csrr t1, instret", out("t1") _)),
        (
            "csrrw senvcfg",
            try_insn!("csrr t1, senvcfg\ncsrw senvcfg, t1", out("t1") _),
        ),
        ("sfence.vma", try_insn!("sfence.vma zero, zero")),
        ("csrr sstatus", try_insn!("csrr t1, sstatus", out("t1") _)),
    ] {
        ensure!(c == 0, "{name}: trap {c} stval {v:#x}");
    }
    if arg & ARG_HAS_SSTC != 0 {
        let (c, v) = try_insn!("csrr t1, stimecmp", out("t1") _);
        ensure!(c == 0, "csrr stimecmp: trap {c} stval {v:#x}");
    }
    if arg & ARG_HAS_ZICBOZ != 0 {
        #[repr(C, align(4096))]
        struct Page([u64; 512]);
        static mut CBO_PAGE: Page = Page([0; 512]);
        let base = (&raw mut CBO_PAGE) as u64;
        for i in 0..512 {
            wr(base + 8 * i, !0);
        }
        // cbo.zero (base): zeroes the cache block at base (>= 64 bytes,
        // the page is aligned).
        let (c, v) = try_insn!(".word 0x0040200f | (6 << 15)", in("t1") base);
        ensure!(c == 0, "cbo.zero: trap {c} stval {v:#x}");
        ensure!(
            rd(base) == 0 && rd(base + 56) == 0,
            "cbo.zero left {:#x} {:#x}",
            rd(base),
            rd(base + 56)
        );
        ensure!(
            rd(base + 4088) == !0,
            "cbo.zero cleared the page's last word"
        );
    }
    // What S-mode hardware without H does not have: illegal instruction.
    for (name, insn, (c, v)) in [
        ("hfence.vvma", 0x2200_0073u64, try_insn!(".word 0x22000073")),
        (
            "csrr hstatus",
            0x6000_2373,
            try_insn!("csrr t1, 0x600", out("t1") _),
        ),
        (
            "csrr vsstatus",
            0x2000_2373,
            try_insn!("csrr t1, 0x200", out("t1") _),
        ),
    ] {
        ensure!(
            c == 2,
            "{name}: trap {c} stval {v:#x}, want an illegal instruction (2)"
        );
        ensure!(
            v == 0 || v == insn,
            "{name}: stval {v:#x}, want 0 or {insn:#x}"
        );
    }
    Ok(())
}
