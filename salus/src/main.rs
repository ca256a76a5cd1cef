//! Salus: a micro hypervisor for RISC-V, running in HS mode on top of the
//! firmware (OpenSBI). Boot flow:
//!
//! 1. `_start` (arch::entry) on the boot hart -> `salus_boot_main`: read the
//!    firmware's device tree, reserve Salus's memory, build the host's
//!    stage-2 table and device tree, start the other harts, enter the host.
//! 2. Other harts -> `salus_secondary_main`: set up, park until the host
//!    starts their vCPU through SBI HSM.
#![no_std]
#![no_main]

extern crate alloc;

mod arch;
mod boot;
mod console;
mod drivers;
mod entropy;
mod hart;
mod heap;
mod host;
mod memory;
mod platform;
mod rot;
mod stats;
mod sync;
mod timer;
mod tsm;

use arch::csr::{self, num};

/// Stops the machine through the firmware's SRST; `failure` makes QEMU exit
/// non-zero.
pub fn shutdown(failure: bool) -> ! {
    // The host's buffered console output, then ours, before the machine goes.
    // The host console's pending lines first, then the UART itself.
    host::uart16550::drain();
    console::drain();
    if failure {
        // OpenSBI's QEMU reset driver (syscon-poweroff) drops the reason, so
        // report failure on the test finisher ourselves when there is one.
        drivers::test_finisher::fail(1);
    }
    let reason = if failure {
        sbi_abi::srst::RESET_REASON_SYSTEM_FAILURE
    } else {
        0
    };
    arch::sbi_call::system_reset(sbi_abi::srst::RESET_TYPE_SHUTDOWN, reason);
    loop {
        arch::wfi();
    }
}

#[no_mangle]
extern "C" fn salus_boot_main(hartid: u64, fdt_addr: u64) -> ! {
    arch::entry::arm_stack_canary(hartid as usize);
    console::init_early();
    boot::boot_hart(hartid as usize, fdt_addr)
}

#[no_mangle]
extern "C" fn salus_secondary_main(hartid: u64, _opaque: u64) -> ! {
    let hartid = hartid as usize;
    arch::entry::arm_stack_canary(hartid);
    boot::init_hart_csrs();
    hart::shared(hartid)
        .online
        .store(true, core::sync::atomic::Ordering::Release);
    host::vcpu::park_and_serve(hartid)
}

/// Salus itself trapped: a bug in Salus, never something a guest caused.
#[no_mangle]
extern "C" fn salus_hyp_fault() -> ! {
    let (cause, epc, tval) = (
        csr::read!(num::SCAUSE),
        csr::read!(num::SEPC),
        csr::read!(num::STVAL),
    );
    console::emergency(format_args!(
        "salus: fatal: trap in Salus: scause {:#x} sepc {:#x} stval {:#x}\n",
        cause, epc, tval
    ));
    shutdown(true)
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    console::emergency(format_args!("salus: fatal: panic: {}\n", info));
    shutdown(true)
}
