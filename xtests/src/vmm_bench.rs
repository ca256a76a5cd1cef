//! Benchmarks of TVMs launched from the Linux host (issue 9), run by
//! `make bench`:
//!
//! * `vmm_ecall_roundtrip`: guestvm's bench mode under `salus-vmm`, every
//!   no-op forwarded ecall answered by the VMM in userspace; instructions
//!   per round trip under `-icount shift=0` (a nanosecond of guest time is
//!   an instruction of the one busy hart), TVM start amortized over
//!   `ECALLS` calls; the median of `ROUNDTRIP_RUNS` runs (the host's own
//!   background work lands in guest time: single runs varied 3,208 to
//!   12,028 with one binary);
//! * `vmm_ecall_kernel`: the same, answered inside salus-tsm.ko (the run
//!   ioctl's `nop_eid`);
//! * `vmm_tvm_launch`: wall seconds from `salus-vmm run` to guestvm's first
//!   console output (median of 3, no icount; guestvm's fixed 8 MiB layout).

use std::time::Duration;

use crate::env_timeout;
use crate::linux::{free_port, make_disk, salus_linux_config, scratch, LinuxImages, LinuxVm};
use crate::linux_bench::Figure;

const GUESTVM: &str = "/usr/share/salus/guestvm.bin";
const ECALLS: u64 = 20_000;
const LAUNCH_RUNS: usize = 3;
const ROUNDTRIP_RUNS: usize = 5;

/// The median of `v` (sorted in place); None if empty.
fn median(v: &mut [f64]) -> Option<f64> {
    v.sort_by(|a, b| a.total_cmp(b));
    v.get(v.len() / 2).copied()
}

/// The number after `key ` in the first line that has it.
fn value_after(out: &str, key: &str) -> Option<f64> {
    out.lines().find_map(|l| {
        let i = l.find(key)?;
        l[i + key.len()..].split_whitespace().next()?.parse().ok()
    })
}

fn boot(images: &LinuxImages, icount: Option<&str>, tag: &str) -> Result<LinuxVm, String> {
    let port = free_port();
    let disk = scratch(&format!("vmm-bench-{tag}.img"));
    make_disk(&disk, 1 << 20, "SALUS-VMM").map_err(|e| format!("disk image: {e}"))?;
    let mut cfg = salus_linux_config(images, port, &disk)
        .ncpu(2)
        .timeout(env_timeout(Duration::from_secs(1800)));
    if let Some(i) = icount {
        cfg = cfg.icount(i);
    }
    let mut vm = LinuxVm::start(&cfg, port, &images.ssh_key).map_err(|e| format!("QEMU: {e}"))?;
    vm.wait_for(
        "SALUS-INIT-READY",
        env_timeout(Duration::from_secs(900)),
        |l| l.starts_with("SALUS-INIT-READY"),
    )?;
    Ok(vm)
}

fn finish(mut vm: LinuxVm) {
    let _ = vm.send("poweroff -f\n");
    let _ = vm.wait_exit(Duration::from_secs(60));
}

pub fn run_vmm_benches(icount: &str) -> (Vec<Figure>, Vec<String>) {
    let mut figs = Vec::new();
    let mut errors = Vec::new();
    let images = match LinuxImages::locate() {
        Ok(i) => i,
        Err(e) => return (figs, vec![e]),
    };
    eprintln!("bench: salus-vmm round trips (-icount {icount}, {ECALLS} ecalls each)...");
    match boot(&images, Some(icount), "icount") {
        Ok(vm) => {
            for (flag, name) in [
                ("", "vmm_ecall_roundtrip"),
                ("--bench-in-kernel", "vmm_ecall_kernel"),
            ] {
                let cmd = format!("salus-vmm run --bench-ecalls {ECALLS} {flag} {GUESTVM} 2>&1");
                let mut runs = Vec::new();
                for _ in 0..ROUNDTRIP_RUNS {
                    match vm.ssh(&cmd, 3, env_timeout(Duration::from_secs(900))) {
                        Ok(out) => match value_after(&out, &format!("bench {name}")) {
                            Some(v) => runs.push(v),
                            None => errors.push(format!("{cmd}: no `bench {name}` line:\n{out}")),
                        },
                        Err(e) => errors.push(format!("{cmd}: {e}")),
                    }
                }
                let all = format!("{runs:?}");
                if let Some(v) = median(&mut runs) {
                    figs.push((
                        name.to_string(),
                        v,
                        format!(
                            "instructions per round trip (median of {}: {all}; -icount {icount}: ns of guest time, {ECALLS} ecalls)",
                            runs.len()
                        ),
                    ));
                }
            }
            finish(vm);
        }
        Err(e) => errors.push(format!("salus-vmm bench boot (icount): {e}")),
    }
    eprintln!(
        "bench: salus-vmm launch to first console output ({LAUNCH_RUNS} runs, wall clock)..."
    );
    match boot(&images, None, "wall") {
        Ok(vm) => {
            let mut secs = Vec::new();
            for _ in 0..LAUNCH_RUNS {
                let cmd = format!("salus-vmm run -v --vcpus 1 {GUESTVM} 2>&1");
                match vm.ssh(&cmd, 3, env_timeout(Duration::from_secs(300))) {
                    Ok(out) => match value_after(&out, "first console output") {
                        Some(v) => secs.push(v),
                        None => errors.push(format!("{cmd}: no launch line:\n{out}")),
                    },
                    Err(e) => errors.push(format!("{cmd}: {e}")),
                }
            }
            if secs.len() == LAUNCH_RUNS {
                secs.sort_by(f64::total_cmp);
                figs.push((
                    "vmm_tvm_launch".to_string(),
                    secs[LAUNCH_RUNS / 2],
                    format!("s (median of {LAUNCH_RUNS}: {secs:?}; wall clock, TCG)"),
                ));
            }
            finish(vm);
        }
        Err(e) => errors.push(format!("salus-vmm bench boot (wall): {e}")),
    }
    (figs, errors)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_runs() {
        assert_eq!(median(&mut [5.0, 1.0, 9.0]), Some(5.0));
        assert_eq!(
            median(&mut [12028.0, 3208.0, 5890.0, 6370.0, 7219.0]),
            Some(6370.0)
        );
        assert_eq!(median(&mut []), None);
    }

    #[test]
    fn parses_the_vmm_lines() {
        let out = "salus-vmm: initial measurement ab\n\
                   salus-vmm: bench vmm_ecall_kernel 2875 ns per ecall (20000 ecalls in 57500000 ns)\n\
                   salus-vmm: launch: first console output 0.412 s after start\n";
        assert_eq!(value_after(out, "bench vmm_ecall_kernel"), Some(2875.0));
        assert_eq!(value_after(out, "first console output"), Some(0.412));
        assert_eq!(value_after(out, "bench vmm_ecall_roundtrip"), None);
    }
}
