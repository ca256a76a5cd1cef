//! Salus's own S-level IMSIC interrupt file as a doorbell between harts.
//!
//! The host gets a guest interrupt file (and sees it at the S-level file's
//! address); the S-level file itself stays Salus's and nobody else sends to
//! it. The TSM uses it to kick a hart that runs a TVM vCPU an IPI is owed
//! to (`tsm::tvm_sbi::send_ipi`): one MSI store to that hart's file instead
//! of an SBI IPI, which costs two firmware traps (the sender's ecall and
//! the target's M-level interrupt). Only identity [`KICK_ID`] is enabled,
//! and sie.SEIE only while a TVM runs, so a kick that lands while the host
//! runs (or Salus waits in `wfi`) stays pending in the file without
//! trapping until it is drained.

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use super::csr::{self, bits, num};
use super::entry::MAX_HARTS;

/// The interrupt identity of a kick.
pub const KICK_ID: u64 = 1;

// Indirect registers of an interrupt file (AIA: siselect values).
const EIDELIVERY: u64 = 0x70;
const EITHRESHOLD: u64 = 0x72;
/// eie0: enable bits of identities 0..63 (RV64).
const EIE0: u64 = 0xc0;

/// Physical address of each hart's S-level file, by hart id (0: none).
static FILES: [AtomicU64; MAX_HARTS] = [const { AtomicU64::new(0) }; MAX_HARTS];
static ENABLED: AtomicBool = AtomicBool::new(false);

/// Boot (before any hart runs a TVM): the S-level file of every hart, as
/// (hart id, file address), when the harts have Ssaia and an S-level
/// IMSIC. Doorbells are used only if every hart Salus runs on has one.
pub fn set_files(files: impl Iterator<Item = (usize, u64)>, harts: u64) {
    let mut have = 0u64;
    for (hart, addr) in files {
        if hart < MAX_HARTS && addr != 0 {
            FILES[hart].store(addr, Ordering::Relaxed);
            have |= 1 << hart;
        }
    }
    ENABLED.store(harts != 0 && have & harts == harts, Ordering::Release);
}

/// Whether TVM kicks go through the IMSIC.
#[inline(always)]
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// Per hart, at start: the file delivers, identity KICK_ID is enabled and
/// nothing is left pending from before.
pub fn init_hart() {
    if !enabled() {
        return;
    }
    csr::write!(num::SISELECT, EIDELIVERY);
    csr::write!(num::SIREG, 1);
    csr::write!(num::SISELECT, EITHRESHOLD);
    csr::write!(num::SIREG, 0);
    csr::write!(num::SISELECT, EIE0);
    csr::set!(num::SIREG, 1 << KICK_ID);
    drain();
}

/// Kicks every hart in `mask` that has a file; returns the harts left
/// (the caller uses an SBI IPI for those).
pub fn kick(mask: u64) -> u64 {
    if !enabled() {
        return mask;
    }
    let mut rest = mask;
    let mut fenced = false;
    let mut m = mask;
    while m != 0 {
        let hart = m.trailing_zeros() as usize;
        m &= m - 1;
        let file = FILES.get(hart).map_or(0, |f| f.load(Ordering::Relaxed));
        if file == 0 {
            continue;
        }
        if !fenced {
            // The owed IPI (a memory store) is visible before the MSI
            // store is performed.
            // SAFETY: a fence has no memory effects of its own.
            unsafe { core::arch::asm!("fence w, o", options(nostack)) };
            fenced = true;
        }
        // seteipnum_le at offset 0 of the file.
        // SAFETY: `file` is the S-level interrupt file of a hart, from the
        // firmware's device tree: MMIO that Salus alone uses (the host sees
        // its guest file at that address, never this page). Storing an
        // identity only makes it pending there.
        unsafe { core::ptr::write_volatile(file as *mut u32, KICK_ID as u32) };
        rest &= !(1 << hart);
    }
    rest
}

/// Claims every interrupt pending in this hart's file; true if any was.
#[inline(always)]
pub fn drain() -> bool {
    let mut any = false;
    // stopei reads the top pending-and-enabled identity (0: none); a write
    // claims it. Only KICK_ID is enabled, so this ends after one or two.
    while csr::swap!(num::STOPEI, 0) != 0 {
        any = true;
    }
    any
}

/// sie.SEIE on (a TVM is about to run) or off.
#[inline(always)]
pub fn enable_kicks(on: bool) {
    if on {
        csr::set!(num::SIE, 1 << bits::IRQ_S_EXT);
    } else {
        csr::clear!(num::SIE, 1 << bits::IRQ_S_EXT);
    }
}
