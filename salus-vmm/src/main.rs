//! salus-vmm: the userspace VMM of a Linux host under Salus (in progress:
//! the uapi mirror and the device come first, the run loop next).
#![deny(unsafe_code)]
#![allow(dead_code)] // used by the run loop, which comes next

mod abi;
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
mod sys;
mod tsm;

fn main() {
    eprintln!("salus-vmm: not usable yet");
    std::process::exit(70)
}
