//! `make bench`'s Linux figures: the same Debian kernel and initramfs under
//! Salus and on bare QEMU (no Salus, no IOMMU device; everything else the
//! same).
//!
//! * `linux_boot_ratio`: under `-icount shift=0,sleep=off` QEMU's virtual
//!   clock advances one nanosecond per instruction, so the kernel's own
//!   timestamp on `reboot: Power down` (printed right after `/init`
//!   printed `SALUS-BENCH-BOOTED` and powered off, `salus.bench`) counts
//!   the instructions from the kernel's clock start to that point. Ratio
//!   Salus / bare. Both runs are started together (counts do not depend
//!   on wall time).
//! * `linux_boot_traps`: the traps to Salus during that boot (Salus counts
//!   them by cause in bench mode), one `linux_boot_traps_<cause>` line each.
//! * `disk_ratio`: `dd` of 32 MiB to the virtio-blk disk with fsync inside
//!   the guest, median of 3, Salus / bare. `net_ratio`: 16 MiB through SSH
//!   into the guest (`cat > /dev/null`), timed on this side, median of 3,
//!   Salus / bare. Wall-clock figures: the two VMs run one after the other.
//!   The bare VM has no IOMMU device (Debian's kernel has no RISC-V IOMMU
//!   driver), so these ratios include the cost of QEMU's IOMMU model,
//!   which translates every DMA access of the devices under Salus.
//! * `linux_load_*` ([`run_load_benches`]): scheduler, timer and IPI load
//!   from the initramfs's `salus-load`, with Salus's trap table per run.

use std::io::Write;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::linux::{
    free_port, make_disk, salus_linux_config, scratch, LinuxImages, LinuxVm, BOOTARGS,
};
use crate::{build_dir, env_timeout, run, QemuConfig, RunOutput};

const ICOUNT: &str = "shift=0,sleep=off";
const RUNS: usize = 3;

/// A `bench:` line's name, value and unit.
pub type Figure = (String, f64, String);

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn bare_config(
    images: &LinuxImages,
    port: u16,
    disk: &std::path::Path,
    append: &str,
) -> QemuConfig {
    QemuConfig::new().kernel(&images.image).extra_args([
        "-initrd".to_string(),
        images.initrd.display().to_string(),
        "-append".into(),
        append.into(),
        "-device".into(),
        "virtio-net-pci,netdev=n0,disable-legacy=on".into(),
        "-netdev".into(),
        format!("user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:{port}-:22"),
        "-drive".into(),
        format!("file={},if=none,id=d0,format=raw", disk.display()),
        "-device".into(),
        "virtio-blk-pci,drive=d0,disable-legacy=on".into(),
    ])
}

/// The kernel timestamp (s) of `reboot: Power down`.
fn power_down_time(console: &str) -> Option<f64> {
    console
        .lines()
        .find(|l| l.contains("reboot: Power down"))
        .and_then(|l| {
            let s = l.split_once('[')?.1.split_once(']')?.0.trim();
            s.parse().ok()
        })
}

fn boot_figure(what: &str, out: &RunOutput) -> Result<f64, String> {
    // The polled 16550 sends 16 bytes per poll tick: the marker's tail may
    // still be in the guest's tty buffer when /init powers off.
    if !out.success() || !out.console.contains("SALUS-BENCH-BOOT") {
        return Err(format!("{what}: no clean bench boot\n{}", out.describe(40)));
    }
    power_down_time(&out.console)
        .ok_or_else(|| format!("{what}: no `reboot: Power down` line\n{}", out.describe(40)))
}

/// Disk and network throughput (bytes/s) of a running VM.
fn throughput(vm: &LinuxVm) -> Result<(f64, f64), String> {
    let mut disk = Vec::new();
    for _ in 0..RUNS {
        // The guest's own clock (/proc/uptime, 10 ms resolution).
        let out = vm.ssh(
            "a=$(cut -d' ' -f1 /proc/uptime); \
             dd if=/dev/zero of=/dev/vda bs=1M count=32 conv=fsync 2>/dev/null; \
             b=$(cut -d' ' -f1 /proc/uptime); echo \"$a $b\"",
            3,
            Duration::from_secs(300),
        )?;
        let t: Vec<f64> = out
            .split_whitespace()
            .filter_map(|s| s.parse().ok())
            .collect();
        let secs = match t[..] {
            [a, b] if b > a => b - a,
            _ => return Err(format!("cannot time dd: {out}")),
        };
        disk.push((32u64 << 20) as f64 / secs.max(1e-6));
    }
    let payload = vec![0x5au8; 16 << 20];
    let mut net = Vec::new();
    for _ in 0..RUNS {
        let t = Instant::now();
        let mut child = Command::new("ssh")
            .args([
                "-i",
                &vm.ssh_key.to_string_lossy(),
                "-p",
                &vm.ssh_port.to_string(),
            ])
            .args([
                "-o",
                "BatchMode=yes",
                "-o",
                "StrictHostKeyChecking=no",
                "-o",
                "UserKnownHostsFile=/dev/null",
                "-o",
                "LogLevel=ERROR",
                "root@127.0.0.1",
                "cat > /dev/null",
            ])
            .stdin(Stdio::piped())
            .spawn()
            .map_err(|e| format!("ssh: {e}"))?;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(&payload)
            .map_err(|e| format!("ssh write: {e}"))?;
        let st = child.wait().map_err(|e| format!("ssh: {e}"))?;
        if !st.success() {
            return Err(format!("ssh transfer failed: {st}"));
        }
        net.push(payload.len() as f64 / t.elapsed().as_secs_f64());
    }
    Ok((median(disk), median(net)))
}

fn throughput_run(
    what: &str,
    cfg: QemuConfig,
    port: u16,
    key: &std::path::Path,
) -> Result<(f64, f64), String> {
    let mut vm = LinuxVm::start(&cfg, port, key).map_err(|e| format!("{what}: {e}"))?;
    vm.wait_for(
        "SALUS-INIT-READY",
        env_timeout(Duration::from_secs(300)),
        |l| l.starts_with("SALUS-INIT-READY"),
    )?;
    let r = throughput(&vm).map_err(|e| format!("{what}: {e}\n{}", vm.describe(30)));
    let _ = vm.ssh("poweroff -f", 1, Duration::from_secs(20));
    vm.wait_exit(Duration::from_secs(30));
    r
}

/// Runs the Linux benchmarks; figures and errors.
pub fn run_linux_benches() -> (Vec<Figure>, Vec<String>) {
    let mut figs = Vec::new();
    let mut errors = Vec::new();
    let images = match LinuxImages::locate() {
        Ok(i) => i,
        Err(e) => return (figs, vec![e]),
    };
    let disk_s = scratch("bench-salus.img");
    let disk_b = scratch("bench-bare.img");
    for d in [&disk_s, &disk_b] {
        if let Err(e) = make_disk(d, 64 << 20, "SALUS-BENCH") {
            return (figs, vec![format!("disk image: {e}")]);
        }
    }

    // Boot instructions, both runs at once.
    eprintln!("bench: Linux boot under -icount {ICOUNT}, Salus and bare...");
    let long = env_timeout(Duration::from_secs(900));
    let salus_cfg = salus_linux_config(&images, free_port(), &disk_s)
        .bootargs(format!("{BOOTARGS} quiet salus.bench"))
        .icount(ICOUNT)
        .timeout(long);
    let bare_cfg = bare_config(
        &images,
        free_port(),
        &disk_b,
        &format!("{BOOTARGS} quiet salus.bench"),
    )
    .icount(ICOUNT)
    .timeout(long);
    let (so, bo) = thread::scope(|s| {
        let a = s.spawn(|| run(&salus_cfg));
        let b = s.spawn(|| run(&bare_cfg));
        (a.join().unwrap(), b.join().unwrap())
    });
    match (
        boot_figure("Salus boot", &so),
        boot_figure("bare boot", &bo),
    ) {
        (Ok(s), Ok(b)) => {
            figs.push((
                "linux_boot_salus".into(),
                (s * 1e9).round(),
                "instructions".into(),
            ));
            figs.push((
                "linux_boot_bare".into(),
                (b * 1e9).round(),
                "instructions".into(),
            ));
            figs.push(("linux_boot_ratio".into(), s / b, "x".into()));
        }
        (a, b) => errors.extend(a.err().into_iter().chain(b.err())),
    }
    let table = stats_table(&so.console, "shutdown");
    if !table.is_empty() {
        figs.push((
            "linux_boot_traps".into(),
            total_traps(&table) as f64,
            "traps".into(),
        ));
        for s in &table {
            figs.push((
                format!("linux_boot_traps_{}", s.entry.replace('.', "_")),
                s.count as f64,
                format!("({} us in Salus)", s.us),
            ));
        }
    }
    if !figs.iter().any(|f| f.0 == "linux_boot_traps") {
        errors.push(format!("Salus printed no trap counts\n{}", so.describe(20)));
    }

    // Throughput, one VM at a time.
    eprintln!("bench: disk and network throughput, Salus then bare...");
    let port = free_port();
    let s = throughput_run(
        "Salus",
        salus_linux_config(&images, port, &disk_s).timeout(long),
        port,
        &images.ssh_key,
    );
    let port = free_port();
    let b = throughput_run(
        "bare",
        bare_config(&images, port, &disk_b, BOOTARGS).timeout(long),
        port,
        &images.ssh_key,
    );
    match (s, b) {
        (Ok((sd, sn)), Ok((bd, bn))) => {
            let mb = |v: f64| (v / 1e6 * 100.0).round() / 100.0;
            figs.push(("disk_salus".into(), mb(sd), "MB/s".into()));
            figs.push(("disk_bare".into(), mb(bd), "MB/s".into()));
            figs.push(("disk_ratio".into(), sd / bd, "x".into()));
            figs.push(("net_salus".into(), mb(sn), "MB/s".into()));
            figs.push(("net_bare".into(), mb(bn), "MB/s".into()));
            figs.push(("net_ratio".into(), sn / bn, "x".into()));
        }
        (a, b) => errors.extend(a.err().into_iter().chain(b.err())),
    }
    let _ = std::fs::remove_file(&disk_s);
    let _ = std::fs::remove_file(&disk_b);
    (figs, errors)
}

/// The salus-load workloads, in the order `/init` runs them.
pub const LOAD_WORKLOADS: [&str; 5] = ["pipe", "futex", "timer", "clock", "fork"];

/// One `salus: stats LABEL: ENTRY COUNT US h0=.. h1=..` line.
#[derive(Clone, Debug, PartialEq)]
pub struct StatLine {
    pub entry: String,
    pub count: u64,
    pub us: u64,
    pub per_hart: Vec<u64>,
}

/// Salus's statistics table labelled `label` in a console log.
pub fn stats_table(console: &str, label: &str) -> Vec<StatLine> {
    let prefix = format!("salus: stats {label}: ");
    console
        .lines()
        .filter_map(|l| l.trim_end().strip_prefix(&prefix))
        .filter_map(|rest| {
            let w: Vec<&str> = rest.split_whitespace().collect();
            match w[..] {
                [entry, count, us, ref harts @ ..] if !entry.starts_with("window") => {
                    Some(StatLine {
                        entry: entry.to_string(),
                        count: count.parse().ok()?,
                        us: us.parse().ok()?,
                        per_hart: harts
                            .iter()
                            .filter_map(|h| h.split_once('=')?.1.parse().ok())
                            .collect(),
                    })
                }
                _ => None,
            }
        })
        .collect()
}

/// Traps into Salus (exceptions and interrupts) in a table.
pub fn total_traps(table: &[StatLine]) -> u64 {
    table
        .iter()
        .filter(|s| s.entry.starts_with("exc.") || s.entry.starts_with("irq."))
        .map(|s| s.count)
        .sum()
}

/// `(round, workload, ops/s)` of every `SALUS-LOAD rN NAME OPS_S OPS SECS`
/// line (`hung` runs give 0).
pub fn load_results(console: &str) -> Vec<(u32, String, f64)> {
    console
        .lines()
        .filter_map(|l| {
            let rest = &l[l.find("SALUS-LOAD r")? + "SALUS-LOAD r".len()..];
            let w: Vec<&str> = rest.split_whitespace().collect();
            match w[..] {
                [round, name, ops_s, ..] => {
                    Some((round.parse().ok()?, name.to_string(), ops_s.parse().ok()?))
                }
                _ => None,
            }
        })
        .collect()
}

/// Seconds per workload run and rounds (`SALUS_LOAD_SECS`,
/// `SALUS_LOAD_ROUNDS`; default 2 s, 3 rounds).
fn load_params() -> (f64, u32) {
    let secs = std::env::var("SALUS_LOAD_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|s: &f64| *s > 0.0)
        .unwrap_or(2.0);
    let rounds = std::env::var("SALUS_LOAD_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|r: &u32| *r > 0)
        .unwrap_or(3);
    (secs, rounds)
}

/// `make bench`'s scheduler/timer/IPI load figures (issue 14): the
/// initramfs's `salus-load` (scripts/linux/salus-load.c) under Salus and
/// on bare QEMU, at 2 and 4 vCPUs. `/init` runs each workload for
/// `secs` of guest time, `rounds` times, with `salus.load=SECS:ROUNDS`;
/// Salus prints its trap table after each run. `icount`: `None` runs
/// multi-threaded TCG (wall-clock guest time: what a user sees, noisy on a
/// shared machine; the VMs run one after the other); `Some(opts)` counts
/// instructions (stable; runs in parallel).
pub fn run_load_benches(icount: Option<&str>) -> (Vec<Figure>, Vec<String>) {
    let mut figs = Vec::new();
    let mut errors = Vec::new();
    let images = match LinuxImages::locate() {
        Ok(i) => i,
        Err(e) => return (figs, vec![e]),
    };
    let (secs, rounds) = load_params();
    let args = format!("{BOOTARGS} quiet salus.nonet salus.bench salus.load={secs}:{rounds}");
    let tag = if icount.is_some() { "_icount" } else { "" };
    for ncpu in [2u32, 4] {
        let disk_s = scratch(&format!("load-salus-{ncpu}.img"));
        let disk_b = scratch(&format!("load-bare-{ncpu}.img"));
        for d in [&disk_s, &disk_b] {
            if let Err(e) = make_disk(d, 1 << 20, "SALUS-LOAD") {
                return (figs, vec![format!("disk image: {e}")]);
            }
        }
        let timeout = env_timeout(Duration::from_secs(
            300 + (secs * f64::from(rounds) * 5.0 * 30.0) as u64,
        ));
        let mut salus_cfg = salus_linux_config(&images, free_port(), &disk_s)
            .ncpu(ncpu)
            .bootargs(args.clone())
            .timeout(timeout);
        let mut bare_cfg = bare_config(&images, free_port(), &disk_b, &args)
            .ncpu(ncpu)
            .timeout(timeout);
        eprintln!(
            "bench: salus-load at {ncpu} vCPUs ({secs} s x {rounds} rounds, {}), Salus and bare...",
            icount.map_or("wall clock".to_string(), |i| format!("-icount {i}"))
        );
        let (so, bo) = if let Some(i) = icount {
            salus_cfg = salus_cfg.icount(i);
            bare_cfg = bare_cfg.icount(i);
            thread::scope(|s| {
                let a = s.spawn(|| run(&salus_cfg));
                let b = s.spawn(|| run(&bare_cfg));
                (a.join().unwrap(), b.join().unwrap())
            })
        } else {
            (run(&salus_cfg), run(&bare_cfg))
        };
        let _ = std::fs::remove_file(&disk_s);
        let _ = std::fs::remove_file(&disk_b);
        // The consoles stay for a closer look (every table Salus printed).
        for (what, out) in [("salus", &so), ("bare", &bo)] {
            let log = build_dir().join(format!("load-{what}-smp{ncpu}{tag}.log"));
            let _ = std::fs::write(&log, &out.console);
        }
        for (what, out) in [("Salus", &so), ("bare", &bo)] {
            if !out.success() || !out.console.contains("SALUS-LOAD-DONE") {
                errors.push(format!(
                    "salus-load {what} smp{ncpu}: no clean run\n{}",
                    out.describe(40)
                ));
            }
        }
        let (sr, br) = (load_results(&so.console), load_results(&bo.console));
        for w in LOAD_WORKLOADS {
            let pick = |r: &[(u32, String, f64)]| -> Vec<f64> {
                r.iter().filter(|x| x.1 == w).map(|x| x.2).collect()
            };
            let (sv, bv) = (pick(&sr), pick(&br));
            if sv.len() < rounds as usize || bv.len() < rounds as usize {
                errors.push(format!(
                    "salus-load {w} smp{ncpu}: {} Salus / {} bare results of {rounds}",
                    sv.len(),
                    bv.len()
                ));
                continue;
            }
            let spread = |v: &[f64]| {
                let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
                let hi = v.iter().copied().fold(0.0, f64::max);
                (lo, hi)
            };
            let (sm, bm) = (median(sv.clone()), median(bv.clone()));
            let ((slo, shi), (blo, bhi)) = (spread(&sv), spread(&bv));
            let name = format!("linux_load_{w}_smp{ncpu}{tag}");
            figs.push((
                name.clone(),
                if bm > 0.0 { sm / bm } else { 0.0 },
                format!(
                    "x (ops/s median [min-max] of {rounds}: Salus {sm:.0} [{slo:.0}-{shi:.0}], bare {bm:.0} [{blo:.0}-{bhi:.0}])"
                ),
            ));
            // Salus's table for the median Salus round.
            let Some(round) = sr
                .iter()
                .filter(|x| x.1 == w)
                .find(|x| x.2 == sm)
                .map(|x| x.0)
            else {
                continue;
            };
            // Per second of the run (most traps come at a fixed rate, e.g.
            // the polled UART's tick, not per op).
            let table = stats_table(&so.console, &format!("{w}.r{round}"));
            let mut rows: Vec<&StatLine> = table.iter().collect();
            rows.sort_by_key(|s| std::cmp::Reverse(s.count));
            let detail: Vec<String> = rows
                .iter()
                .map(|s| {
                    format!(
                        "{} {:.0}/s {:.0}us/s",
                        s.entry,
                        s.count as f64 / secs,
                        s.us as f64 / secs
                    )
                })
                .collect();
            figs.push((
                format!("{name}_traps"),
                (total_traps(&table) as f64 / secs).round(),
                format!(
                    "traps/s, {:.2} traps/op (round {round}: {})",
                    total_traps(&table) as f64 / (sm * secs).max(1.0),
                    detail.join(", ")
                ),
            ));
        }
    }
    (figs, errors)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = "[   10.5] SALUS-LOAD r2 futex 4458 8916 2.000\r
salus: stats futex.r2: window 2000000 us, 2 harts, timebase 10000000 Hz; entry count us-in-salus per-hart\r
salus: stats futex.r2: exc.store_guest_page_fault 57 460 h0=20 h1=37\r
salus: stats futex.r2: sbi.time.set_timer 3 1 h0=3 h1=0\r
salus: stats futex.r2: irq.s_timer 6 220 h0=6 h1=0\r
salus: stats futex.r2: end\r
[   11.0] SALUS-LOAD r2 pipe 0 0 0 hung\r
";

    #[test]
    fn parses_stats_and_results() {
        let t = stats_table(LOG, "futex.r2");
        assert_eq!(t.len(), 3);
        assert_eq!(
            t[0],
            StatLine {
                entry: "exc.store_guest_page_fault".into(),
                count: 57,
                us: 460,
                per_hart: vec![20, 37],
            }
        );
        // SBI entries are part of the ecall count, not extra traps.
        assert_eq!(total_traps(&t), 63);
        assert!(stats_table(LOG, "futex.r1").is_empty());
        assert_eq!(
            load_results(LOG),
            vec![
                (2, "futex".to_string(), 4458.0),
                (2, "pipe".to_string(), 0.0)
            ]
        );
    }
}
