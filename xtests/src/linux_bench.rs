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

use std::io::Write;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::linux::{
    free_port, make_disk, salus_linux_config, scratch, LinuxImages, LinuxVm, BOOTARGS,
};
use crate::{env_timeout, run, QemuConfig, RunOutput};

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
    for l in so.console.lines().map(str::trim_end) {
        if let Some(n) = l.strip_prefix("salus: traps: total ") {
            figs.push((
                "linux_boot_traps".into(),
                n.parse().unwrap_or(f64::NAN),
                "traps".into(),
            ));
        } else if let Some(rest) = l.strip_prefix("salus: traps: ") {
            let w: Vec<&str> = rest.split_whitespace().collect();
            if let [_, _, name, n] = w[..] {
                figs.push((
                    format!("linux_boot_traps_{}", name.replace('-', "_")),
                    n.parse().unwrap_or(f64::NAN),
                    "traps".into(),
                ));
            }
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
