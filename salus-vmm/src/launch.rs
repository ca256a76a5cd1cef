//! `salus-vmm run`: check the TSM, build the TVM, print its measurement,
//! run it, and turn how it ended into a summary and an exit status.
#![forbid(unsafe_code)]

use std::io::Write;
use std::time::{Duration, Instant};

use crate::protocol as proto;

use crate::abi;
use crate::args::{Profile, RunArgs};
use crate::memory::Memory;
use crate::setup::{self, hex, Inputs};
use crate::tsm::Tsm;
use crate::vm::{Config, End, Stats, Vm};

/// Exit status when the VMM could not build or serve the TVM.
pub const EXIT_VMM_FAILED: i32 = 70;
/// Exit status of a command-line error.
pub const EXIT_USAGE: i32 = 64;
/// SRST reasons above this are reported as this.
pub const MAX_REASON_STATUS: u64 = 63;

/// How long a guestvm vCPU that started another waits for it to stop.
pub const HSM_SYNC_LIMIT: Duration = Duration::from_secs(60);

pub struct Report {
    pub profile: Profile,
    pub end: End,
    pub stats: Stats,
}

pub fn launch<T: Tsm>(
    tsm: T,
    args: &RunArgs,
    inputs: Inputs,
    has_v: bool,
    mut out: Box<dyn Write + Send>,
    console_input: Option<std::sync::mpsc::Receiver<u8>>,
) -> Result<Report, String> {
    let started = Instant::now();
    let info = tsm
        .get_info()
        .map_err(|e| format!("{}: {}", args.device, tsm.explain(e)))?;
    if info.abi_version != abi::ABI_VERSION {
        return Err(format!(
            "{}: driver ABI version {}, this VMM speaks version {}",
            args.device,
            info.abi_version,
            abi::ABI_VERSION
        ));
    }
    if cove_abi::TsmState::from_u32(info.tsm_state) != Some(cove_abi::TsmState::Ready) {
        return Err(format!(
            "the TSM is not ready (tsm_state {})",
            info.tsm_state
        ));
    }
    let plan = setup::plan(args, inputs, info.tvm_max_vcpus, has_v)?;
    let mut mem = Memory::default();
    let built = setup::build(&tsm, &plan, &mut mem, &mut |m| eprintln!("salus-vmm: {m}"))?;
    let _ = writeln!(
        out,
        "salus-vmm: initial measurement {}",
        hex(&built.measurement)
    );
    let _ = writeln!(
        out,
        "salus-vmm: configuration register {}",
        hex(&built.config)
    );
    let _ = out.flush();
    if args.verbose {
        eprintln!(
            "salus-vmm: TVM {}: {} vCPU(s), entry {:#x}, entry_arg {:#x}{}",
            built.tvm_id,
            plan.vcpus,
            plan.entry,
            built.entry_arg,
            if built.has_2m {
                ", 2 MiB measured page"
            } else {
                ""
            }
        );
    }
    let cfg = Config {
        profile: plan.profile,
        vcpus: plan.vcpus,
        max_exits: args.max_exits,
        verbose: args.verbose,
        hsm_sync: (plan.profile == Profile::Guestvm).then_some(HSM_SYNC_LIMIT),
        nop_eid: match args.bench {
            Some(b) if b.in_kernel => proto::EID_GVM,
            _ => 0,
        },
    };
    let profile = plan.profile;
    drop(plan);
    let vm = Vm::new(tsm, cfg, mem, out, console_input);
    let t0 = Instant::now();
    let end = vm.run();
    if args.verbose {
        if let Some(t) = vm.first_line.get() {
            eprintln!(
                "salus-vmm: launch: first console output {:.3} s after start",
                t.duration_since(started).as_secs_f64()
            );
        }
    }
    if let Some(b) = args.bench {
        // Under `-icount shift=0` a nanosecond is an instruction (one busy
        // hart): the round trip in instructions, TVM start amortized.
        let ns = t0.elapsed().as_nanos() as f64;
        let name = if b.in_kernel {
            "vmm_ecall_kernel"
        } else {
            "vmm_ecall_roundtrip"
        };
        println!(
            "salus-vmm: bench {name} {:.0} ns per ecall ({} ecalls in {:.0} ns)",
            ns / b.ecalls as f64,
            b.ecalls,
            ns
        );
    }
    Ok(Report {
        profile,
        end,
        stats: vm.stats(),
    })
}

pub fn exit_status(end: &End) -> i32 {
    match end {
        End::Shutdown { reason, .. } => (*reason).min(MAX_REASON_STATUS) as i32,
        End::Failed(_) => EXIT_VMM_FAILED,
    }
}

pub fn summary(r: &Report) -> String {
    let s = &r.stats;
    let mut counts = format!(
        "{} exits, {} zero faults, {} shared faults, {} MMIO accesses, {} console lines",
        s.exits, s.zero_faults, s.shared_faults, s.mmio, s.lines
    );
    if r.profile == Profile::Guestvm {
        counts += &format!(" ({} PASS, {} FAIL)", s.passed, s.failed);
    }
    match &r.end {
        End::Shutdown { kind: 0, reason } => {
            format!("salus-vmm: TVM shut down (reason {reason}): {counts}")
        }
        End::Shutdown { kind, reason } => format!(
            "salus-vmm: TVM asked for reset type {kind} (reason {reason}), shut down instead: {counts}"
        ),
        End::Failed(why) => format!("salus-vmm: TVM ended: {why} ({counts})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses() {
        let sd = |reason| End::Shutdown { kind: 0, reason };
        assert_eq!(exit_status(&sd(0)), 0);
        assert_eq!(exit_status(&sd(1)), 1);
        assert_eq!(exit_status(&sd(0xf000_0000)), 63);
        assert_eq!(exit_status(&End::Failed("x".into())), EXIT_VMM_FAILED);
    }

    #[test]
    fn summaries() {
        let mut r = Report {
            profile: Profile::Guestvm,
            end: End::Shutdown { kind: 0, reason: 0 },
            stats: Stats {
                exits: 12,
                zero_faults: 3,
                passed: 2,
                ..Default::default()
            },
        };
        assert_eq!(
            summary(&r),
            "salus-vmm: TVM shut down (reason 0): 12 exits, 3 zero faults, 0 shared faults, \
             0 MMIO accesses, 0 console lines (2 PASS, 0 FAIL)"
        );
        r.profile = Profile::Generic;
        r.end = End::Failed("vCPU 0: boom".into());
        assert!(summary(&r).starts_with("salus-vmm: TVM ended: vCPU 0: boom (12 exits"));
        r.end = End::Shutdown { kind: 1, reason: 0 };
        assert!(summary(&r).contains("reset type 1"));
    }
}
