//! salus-vmm: the userspace VMM of a Linux host under Salus. It builds a
//! TVM through `/dev/salus-tsm` (salus-tsm.ko; the contract is
//! `drivers/salus-tsm/include/uapi/salus-tsm.h`), prints its initial
//! measurement, runs every vCPU on its own thread and serves the TVM's
//! exits until it shuts down. See docs/salus-vmm.md.
//!
//! Only `sys` (the system calls) has unsafe code; everything else is
//! plain logic, unit-tested on the build host, with the run loop driven by
//! a scripted fake TSM in `fake`.
#![deny(unsafe_code)]

mod abi;
mod args;
mod console;
mod exit;
mod guestvm;
mod launch;
mod linux_tvm;
mod memory;
#[path = "../../guestvm/src/protocol.rs"]
mod protocol;
mod setup;
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
mod sys;
mod tsm;
mod vm;

#[cfg(test)]
mod fake;

use std::io::Write;

use args::{Command, RunArgs};
use launch::{EXIT_USAGE, EXIT_VMM_FAILED};

fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let status = match args::parse(&argv) {
        Ok(Command::Help) => {
            let _ = writeln!(std::io::stdout(), "{}", args::USAGE);
            0
        }
        Ok(Command::Run(mut a)) => run(&mut a),
        Err(e) => {
            eprintln!("salus-vmm: {e}\n{}", args::USAGE);
            EXIT_USAGE
        }
    };
    std::process::exit(status)
}

/// Reads IMAGE (and --initrd, --dtb); a Linux TVM bundle makes the run
/// a Linux TVM whatever IMAGE's name.
fn read_inputs(a: &mut RunArgs) -> Result<setup::Inputs, String> {
    if a.profile != args::Profile::Guestvm && linux_tvm::is_bundle(&a.image) {
        a.profile = args::Profile::LinuxTvm;
        return linux_tvm::read(&a.image);
    }
    let read =
        |p: &std::path::Path| setup::Blob::read(p).map_err(|e| format!("{}: {e}", p.display()));
    let dtb = match &a.dtb {
        Some(args::Dtb::File(p)) => Some(read(p)?),
        _ => None,
    };
    Ok(setup::Inputs {
        image: read(&a.image)?,
        initrd: a.initrd.as_deref().map(read).transpose()?,
        dtb,
        shim: None,
    })
}

/// stdin's bytes, read by a thread of their own (the UART polls for them);
/// the thread ends with stdin.
#[cfg(target_os = "linux")]
fn stdin_bytes() -> std::sync::mpsc::Receiver<u8> {
    use std::io::Read;
    let (tx, rx) = std::sync::mpsc::channel();
    let _ = std::thread::Builder::new()
        .name("stdin".into())
        .spawn(move || {
            let mut b = [0u8; 256];
            let mut stdin = std::io::stdin();
            while let Ok(n @ 1..) = stdin.read(&mut b) {
                if b[..n].iter().any(|&c| tx.send(c).is_err()) {
                    return;
                }
            }
        });
    rx
}

/// Whether the harts have V: the kernel's hwcap (riscv64) or every hart's
/// `isa` line in /proc/cpuinfo.
#[cfg(target_os = "linux")]
fn has_v() -> bool {
    let hwcap_v = cfg!(target_arch = "riscv64") && sys::hwcap() & (1 << (b'v' - b'a')) != 0;
    hwcap_v || std::fs::read_to_string("/proc/cpuinfo").is_ok_and(|c| setup::cpuinfo_has_v(&c))
}

#[cfg(target_os = "linux")]
fn run(a: &mut RunArgs) -> i32 {
    let inputs = match read_inputs(a) {
        Ok(i) => i,
        Err(e) => {
            eprintln!("salus-vmm: {e}");
            return EXIT_VMM_FAILED;
        }
    };
    let dev = match sys::Device::open(&a.device) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("salus-vmm: {}: {e} (is salus-tsm.ko loaded?)", a.device);
            return EXIT_VMM_FAILED;
        }
    };
    let input = (a.profile == args::Profile::LinuxTvm).then(stdin_bytes);
    match launch::launch(dev, a, inputs, has_v(), Box::new(std::io::stdout()), input) {
        Ok(report) => {
            let line = launch::summary(&report);
            // Failures go to stderr; a closed stdout does not matter here.
            if matches!(report.end, vm::End::Failed(_)) {
                eprintln!("{line}");
            } else {
                let _ = writeln!(std::io::stdout(), "{line}");
            }
            launch::exit_status(&report.end)
        }
        Err(e) => {
            eprintln!("salus-vmm: {e}");
            EXIT_VMM_FAILED
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn run(a: &mut RunArgs) -> i32 {
    let _ = read_inputs(a);
    eprintln!("salus-vmm: runs on Linux only");
    EXIT_VMM_FAILED
}
