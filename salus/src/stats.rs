//! Trap statistics for benchmarks (`salus.bench` on the command line; off
//! by default, when counting costs one relaxed load per trap).
//!
//! Per hart, for every *entry*: how many times it happened and how many
//! `time` ticks Salus spent on it (from the trap to the next guest entry;
//! `time` because it is the one counter HS mode always has, at the
//! platform's timebase -- 10 MHz on QEMU `virt`; `cycle` depends on the
//! firmware's mcounteren and means host TSC under QEMU TCG). Entries:
//!
//! * every trap cause (exceptions 0..32, interrupts 0..32);
//! * SBI calls by extension and function ([`SBI_NAMES`]);
//! * waits: spinning on a Salus lock, waiting for another hart's remote
//!   fence, and mailbox work (virtual IPIs forwarded, fences served).
//!
//! Readable three ways (docs/linux-host.md): the vendor SBI extension
//! [`EID_SALUS_STATS`]; a table on Salus's console at shutdown; and the
//! same table (or a reset) when the host writes a `SALUS-STATS:` line to
//! its console, which needs no driver in an unmodified kernel
//! (`echo '<2>SALUS-STATS: dump pipe' > /dev/kmsg`).

use crate::arch::entry::MAX_HARTS;
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use spin::Mutex;

/// The vendor SBI extension ("\tSTA"; in the vendor range 0x09000000..).
pub const EID_SALUS_STATS: u64 = 0x0953_5441;
pub const FID_NUM_ENTRIES: u64 = 0;
pub const FID_READ_COUNT: u64 = 1;
pub const FID_READ_TICKS: u64 = 2;
pub const FID_RESET: u64 = 3;
pub const FID_TIMEBASE: u64 = 4;

static ENABLED: AtomicBool = AtomicBool::new(false);
static TIMEBASE_HZ: AtomicU64 = AtomicU64::new(10_000_000);
/// `time` at the last reset.
static SINCE: AtomicU64 = AtomicU64::new(0);

const INTERRUPT: u64 = 1 << 63;

/// SBI call entries, after the 64 trap causes.
pub const SBI_NAMES: [&str; 19] = [
    "sbi.base",
    "sbi.time.set_timer",
    "sbi.ipi.send_ipi",
    "sbi.rfence.fence_i",
    "sbi.rfence.sfence_vma",
    "sbi.rfence.sfence_vma_asid",
    "sbi.rfence.other",
    "sbi.hsm.start",
    "sbi.hsm.stop",
    "sbi.hsm.status",
    "sbi.hsm.suspend",
    "sbi.hsm.other",
    "sbi.srst",
    "sbi.dbcn",
    "sbi.covh",
    "sbi.nacl",
    "sbi.legacy_console",
    "sbi.salus_stats",
    "sbi.other",
];
const SBI_BASE: usize = 64;
/// Wait entries, after the SBI ones.
pub const WAIT_NAMES: [&str; 4] = [
    "wait.lock_spin",
    "wait.remote_fence",
    "mailbox.virtual_ipi",
    "mailbox.fence_served",
];
const WAIT_BASE: usize = SBI_BASE + SBI_NAMES.len();
pub const LOCK_SPIN: usize = WAIT_BASE;
pub const REMOTE_FENCE: usize = WAIT_BASE + 1;
pub const MAILBOX_VIPI: usize = WAIT_BASE + 2;
pub const MAILBOX_FENCE: usize = WAIT_BASE + 3;
pub const NUM_ENTRIES: usize = WAIT_BASE + WAIT_NAMES.len();

struct HartStats {
    count: [AtomicU64; NUM_ENTRIES],
    ticks: [AtomicU64; NUM_ENTRIES],
}

#[allow(clippy::declare_interior_mutable_const)]
const ZERO: AtomicU64 = AtomicU64::new(0);
#[allow(clippy::declare_interior_mutable_const)]
const HART_ZERO: HartStats = HartStats {
    count: [ZERO; NUM_ENTRIES],
    ticks: [ZERO; NUM_ENTRIES],
};
static STATS: [HartStats; MAX_HARTS] = [HART_ZERO; MAX_HARTS];

pub fn enable(timebase_hz: u64) {
    if timebase_hz != 0 {
        TIMEBASE_HZ.store(timebase_hz, Ordering::Relaxed);
    }
    SINCE.store(crate::arch::time(), Ordering::Relaxed);
    ENABLED.store(true, Ordering::Relaxed);
}

#[inline(always)]
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// `time` if counting, else 0 (no CSR read on the fast path).
#[inline(always)]
pub fn now() -> u64 {
    if enabled() {
        crate::arch::time()
    } else {
        0
    }
}

/// The entry of trap cause `scause`.
pub fn cause_entry(scause: u64) -> usize {
    let code = (scause & 31) as usize;
    if scause & INTERRUPT != 0 {
        32 + code
    } else {
        code
    }
}

/// The entry of SBI call (`eid`, `fid`).
pub fn sbi_entry(eid: u64, fid: u64) -> usize {
    use sbi_abi::{base, dbcn, hsm, rfnc, spi, srst, time};
    let i = match (eid, fid as usize) {
        (e, _) if e == base::EID_BASE as u64 => 0,
        (e, time::SET_TIMER) if e == time::EID_TIME as u64 => 1,
        (e, spi::SEND_IPI) if e == spi::EID_SPI as u64 => 2,
        (e, rfnc::REMOTE_FENCE_I) if e == rfnc::EID_RFNC as u64 => 3,
        (e, rfnc::REMOTE_SFENCE_VMA) if e == rfnc::EID_RFNC as u64 => 4,
        (e, rfnc::REMOTE_SFENCE_VMA_ASID) if e == rfnc::EID_RFNC as u64 => 5,
        (e, _) if e == rfnc::EID_RFNC as u64 => 6,
        (e, hsm::HART_START) if e == hsm::EID_HSM as u64 => 7,
        (e, hsm::HART_STOP) if e == hsm::EID_HSM as u64 => 8,
        (e, hsm::HART_GET_STATUS) if e == hsm::EID_HSM as u64 => 9,
        (e, hsm::HART_SUSPEND) if e == hsm::EID_HSM as u64 => 10,
        (e, _) if e == hsm::EID_HSM as u64 => 11,
        (e, _) if e == srst::EID_SRST as u64 => 12,
        (e, _) if e == dbcn::EID_DBCN as u64 => 13,
        (cove_abi::EID_COVH, _) => 14,
        (cove_abi::EID_NACL, _) => 15,
        (sbi_abi::LEGACY_CONSOLE_PUTCHAR | sbi_abi::LEGACY_CONSOLE_GETCHAR, _) => 16,
        (EID_SALUS_STATS, _) => 17,
        _ => 18,
    };
    SBI_BASE + i
}

/// Adds one event of `entry` on `hart` that took `ticks`.
#[inline(always)]
pub fn add(hart: usize, entry: usize, ticks: u64) {
    if let (Some(h), true) = (STATS.get(hart), entry < NUM_ENTRIES) {
        h.count[entry].fetch_add(1, Ordering::Relaxed);
        h.ticks[entry].fetch_add(ticks, Ordering::Relaxed);
    }
}

/// A trap taken at `since` (from [`now`]) is done; `sbi` is its SBI call
/// entry if it was an ecall.
#[inline(always)]
pub fn trap_done(hart: usize, scause: u64, sbi: Option<usize>, since: u64) {
    if !enabled() {
        return;
    }
    let t = crate::arch::time().wrapping_sub(since);
    add(hart, cause_entry(scause), t);
    if let Some(e) = sbi {
        add(hart, e, t);
    }
}

/// A wait of `entry` that began at `since` (from [`now`]) is over.
#[inline(always)]
pub fn wait_done(entry: usize, since: u64) {
    if enabled() {
        let t = crate::arch::time().wrapping_sub(since);
        add(crate::arch::entry::hart_id(), entry, t);
    }
}

/// Counts one mailbox event (no time).
#[inline(always)]
pub fn event(hart: usize, entry: usize) {
    if enabled() {
        add(hart, entry, 0);
    }
}

pub fn reset() {
    for h in STATS.iter() {
        h.count
            .iter()
            .chain(h.ticks.iter())
            .for_each(|c| c.store(0, Ordering::Relaxed));
    }
    SINCE.store(crate::arch::time(), Ordering::Relaxed);
}

/// Count and ticks of `entry` on `hart`; `None` for a bad index.
pub fn read(hart: usize, entry: usize) -> Option<(u64, u64)> {
    let h = STATS.get(hart)?;
    Some((
        h.count.get(entry)?.load(Ordering::Relaxed),
        h.ticks.get(entry)?.load(Ordering::Relaxed),
    ))
}

pub fn timebase_hz() -> u64 {
    TIMEBASE_HZ.load(Ordering::Relaxed)
}

fn name(i: usize) -> &'static str {
    match i {
        0 => "exc.misaligned_fetch",
        1 => "exc.fetch_access",
        2 => "exc.illegal_instruction",
        5 => "exc.load_access",
        7 => "exc.store_access",
        10 => "exc.ecall_vs",
        20 => "exc.fetch_guest_page_fault",
        21 => "exc.load_guest_page_fault",
        22 => "exc.virtual_instruction",
        23 => "exc.store_guest_page_fault",
        33 => "irq.s_software",
        37 => "irq.s_timer",
        41 => "irq.s_external",
        i if i < 32 => "exc.other",
        i if i < SBI_BASE => "irq.other",
        i if i < WAIT_BASE => SBI_NAMES[i - SBI_BASE],
        i => WAIT_NAMES.get(i - WAIT_BASE).copied().unwrap_or("?"),
    }
}

/// Prints the table: one line per non-zero entry with the total count,
/// the microseconds spent on it (all harts) and the count per hart:
/// `salus: stats LABEL: NAME COUNT US h0=N h1=N ...`.
pub fn print(label: &str) {
    let nharts = crate::platform::get().nharts.min(MAX_HARTS);
    let hz = timebase_hz().max(1);
    let us = |t: u64| (t as u128 * 1_000_000 / hz as u128) as u64;
    let window = crate::arch::time().wrapping_sub(SINCE.load(Ordering::Relaxed));
    crate::info!(
        "stats {}: window {} us, {} harts, timebase {} Hz; entry count us-in-salus per-hart",
        label,
        us(window),
        nharts,
        hz
    );
    for e in 0..NUM_ENTRIES {
        let (mut n, mut t) = (0u64, 0u64);
        for h in 0..nharts {
            let (c, k) = read(h, e).unwrap_or((0, 0));
            n += c;
            t += k;
        }
        if n == 0 {
            continue;
        }
        crate::console::_print(format_args!(
            "salus: stats {}: {} {} {}",
            label,
            name(e),
            n,
            us(t)
        ));
        for h in 0..nharts {
            let (c, _) = read(h, e).unwrap_or((0, 0));
            crate::console::_print(format_args!(" h{}={}", h, c));
        }
        crate::console::_print(format_args!("\n"));
    }
    crate::info!("stats {}: end", label);
}

/// A console command seen in a host line, run once the UART lock is free.
const CMD_NONE: u8 = 0;
const CMD_RESET: u8 = 1;
const CMD_DUMP: u8 = 2;
static PENDING: AtomicU8 = AtomicU8::new(CMD_NONE);
const LABEL_MAX: usize = 24;
static LABEL: Mutex<([u8; LABEL_MAX], usize)> = Mutex::new(([0; LABEL_MAX], 0));
const MAGIC: &[u8] = b"SALUS-STATS: ";

/// Looks for `SALUS-STATS: reset` or `SALUS-STATS: dump LABEL` in a line
/// the host wrote to its console (bench mode only). LABEL: up to 24 bytes
/// of `[A-Za-z0-9_.-]`; anything else ends it.
pub fn console_line(line: &[u8]) {
    if !enabled() {
        return;
    }
    let Some(at) = line.windows(MAGIC.len()).position(|w| w == MAGIC) else {
        return;
    };
    let rest = &line[at + MAGIC.len()..];
    if rest.starts_with(b"reset") {
        PENDING.store(CMD_RESET, Ordering::Release);
    } else if let Some(arg) = rest.strip_prefix(b"dump ") {
        let n = arg
            .iter()
            .take(LABEL_MAX)
            .take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
            .count();
        if let Some(mut l) = LABEL.try_lock() {
            l.0[..n].copy_from_slice(&arg[..n]);
            l.1 = n;
            PENDING.store(CMD_DUMP, Ordering::Release);
        }
    }
}

/// Runs a console command seen by [`console_line`] (called with no lock
/// held).
pub fn run_pending() {
    match PENDING.swap(CMD_NONE, Ordering::AcqRel) {
        CMD_RESET => reset(),
        CMD_DUMP => {
            let (buf, n) = *LABEL.lock();
            print(core::str::from_utf8(&buf[..n]).unwrap_or("?"));
        }
        _ => {}
    }
}

/// The host is shutting the machine down: in bench mode, the table (the
/// caller wrote out the host's buffered console output first).
pub fn report() {
    if enabled() {
        print("shutdown");
    }
}
