//! tellus: the bare-metal host kernel Salus boots in VS mode. It checks the
//! SBI (v2.0) that Salus offers its host, the isolation of Salus's memory,
//! and (with `bench` in /chosen/bootargs) reports instruction counts.
//!
//! Entered on the boot hart with a0 = hart id, a1 = FDT, paging and
//! interrupts off.
#![no_std]
#![no_main]

#[macro_use]
mod console;
#[macro_use]
mod harness;
mod arch;
mod attack;
mod bench;
mod fuzz;
mod harts;
mod platform;
mod sbi;
mod suite;
mod tee;
mod tests;
mod trap;

use core::fmt;
use core::sync::atomic::{AtomicU32, Ordering::*};

use sbi_abi::srst;

use platform::Platform;

static PLATFORM: spin::Once<Platform> = spin::Once::new();

/// The machine, once parsed (for code far from `tellus_main`'s `&Platform`).
pub fn the_platform() -> Option<&'static Platform> {
    PLATFORM.get()
}
static PASSED: AtomicU32 = AtomicU32::new(0);
static FAILED: AtomicU32 = AtomicU32::new(0);
/// Name of the running test, for failures reported from trap/panic paths.
static CURRENT: spin::Mutex<&str> = spin::Mutex::new("tellus");

#[no_mangle]
extern "C" fn tellus_main(hartid: u64, fdt: u64, boot_instret: u64) -> ! {
    console::init();
    let p = match platform::parse(fdt, hartid) {
        Ok(p) => PLATFORM.call_once(|| p),
        Err(e) => fatal(format_args!("device tree at {fdt:#x}: {e}")),
    };
    harts::init(p);
    // Every wait below is bounded by the `time` CSR, so make sure it runs.
    let t0 = arch::read_time();
    if (0..50_000_000u64).all(|_| arch::read_time() == t0) {
        fatal(format_args!("the time CSR does not advance"));
    }
    if p.bench {
        bench::run(p, boot_instret);
        shutdown(srst::RESET_REASON_NO_REASON);
    }
    println!(
        "tellus: hart {} of {}, timebase {} Hz, V {}, Sstc {}, fdt {:#x}",
        hartid,
        p.nharts,
        p.timebase,
        if p.has_v { "yes" } else { "no" },
        if p.has_sstc { "yes" } else { "no" },
        fdt
    );
    if let Some(a) = p.fw_resv {
        attack::hw::fw_reserved_scenario(p, a);
        finish()
    }
    if p.linux_tvm {
        tee::linux_tvm::run(p);
        finish()
    }
    if p.attack_reboot {
        attack::hw::reboot_scenario(p);
        finish()
    }
    suite::run(p);
    finish()
}

/// Prints the summary line and powers off.
fn finish() -> ! {
    let passed = PASSED.load(Relaxed);
    let failed = FAILED.load(Relaxed);
    console::print_line_forced(format_args!("tellus: {passed} passed, {failed} failed"));
    shutdown(if failed == 0 {
        srst::RESET_REASON_NO_REASON
    } else {
        srst::RESET_REASON_SYSTEM_FAILURE
    })
}

fn shutdown(reason: u32) -> ! {
    let r = sbi::system_reset(srst::RESET_TYPE_SHUTDOWN, reason);
    console::print_line_forced(format_args!(
        "tellus: system_reset returned error {}",
        r.error
    ));
    loop {
        arch::interrupts_disable();
        arch::wfi();
    }
}

/// Reports a failure of the current test and ends the run (used for
/// unexpected traps and panics, where continuing is unsafe).
pub fn fatal(args: fmt::Arguments) -> ! {
    arch::interrupts_disable();
    let name = CURRENT.try_lock().map(|g| *g).unwrap_or("tellus");
    console::print_line_forced(format_args!("FAIL: {name}: {args}"));
    FAILED.fetch_add(1, Relaxed);
    finish()
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    fatal(format_args!("panic: {info}"))
}
