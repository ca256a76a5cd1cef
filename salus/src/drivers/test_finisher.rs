//! QEMU's `sifive,test0` finisher: the only way to make QEMU exit with a
//! non-zero status, since OpenSBI's SRST on QEMU virt ignores the reason.

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

static BASE: AtomicU64 = AtomicU64::new(0);
static TRIED: AtomicBool = AtomicBool::new(false);

const FINISHER_FAIL: u32 = 0x3333;
const FINISHER_PASS: u32 = 0x5555;

/// Records the finisher's MMIO base from the device tree.
///
/// # Safety
/// `base` must be the `sifive,test0` device named by the device tree.
pub unsafe fn init(base: u64) {
    BASE.store(base, Ordering::Release);
}

/// Ends the run with exit status `code` (QEMU: `exit(code)`) and never
/// returns. Returns only if there is no finisher or a previous attempt
/// trapped. The hart must not go on to the firmware's own shutdown: QEMU
/// handles shutdown requests asynchronously and a second one (the
/// firmware's "pass") could overwrite the failure status.
pub fn fail(code: u16) {
    if write((code as u32) << 16 | FINISHER_FAIL) {
        loop {
            crate::arch::wfi();
        }
    }
}

/// Ends the run with exit status 0.
#[allow(dead_code)]
pub fn pass() {
    let _ = write(FINISHER_PASS);
}

/// True if the write was made.
fn write(val: u32) -> bool {
    let base = BASE.load(Ordering::Acquire);
    // A trap here (firmware PMP) re-enters shutdown: try only once.
    if base == 0 || TRIED.swap(true, Ordering::AcqRel) {
        return false;
    }
    // SAFETY: `init`'s contract: base is the finisher's register.
    unsafe { core::ptr::write_volatile(base as *mut u32, val) };
    true
}
