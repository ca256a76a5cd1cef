//! `linux_tvm_boot` (issue 12), run by `make bench`: the Debian kernel of
//! the Linux TVM from its start to the initramfs's marker, under
//! `-icount shift=0,sleep=off` (a nanosecond of guest time is an
//! instruction), as a TVM under tellus (`linux-tvm` mode) and bare on
//! QEMU with the same kernel, initramfs and 2 harts; the figure is the
//! TVM's instructions, and `linux_tvm_boot_ratio` TVM / bare. The clock
//! is the kernel's own (`/proc/uptime` at the marker: from the kernel's
//! start, so the shim and the TVM's construction are not in it; 10 ms
//! resolution).

use std::time::Duration;

use crate::linux_bench::Figure;
use crate::{build_dir, env_timeout, run, QemuConfig};

/// The uptime (s) on the `SALUS-TVM-UPTIME` line.
fn uptime(console: &str) -> Option<f64> {
    console.lines().find_map(|l| {
        l.trim_end()
            .strip_prefix("SALUS-TVM-UPTIME ")?
            .trim()
            .parse()
            .ok()
    })
}

pub fn run_linux_tvm_bench(icount: &str) -> (Vec<Figure>, Vec<String>) {
    let build = build_dir();
    let bundle = build.join("linux-tvm/bundle.bin");
    let image = build.join("linux/Image");
    let initrd = build.join("linux-tvm/initramfs.cpio.gz");
    for f in [&bundle, &image, &initrd] {
        if !f.is_file() {
            return (
                Vec::new(),
                vec![format!("{} missing (make linux-tvm-bundle)", f.display())],
            );
        }
    }
    eprintln!("bench: the Linux TVM's boot, TVM and bare (-icount {icount})...");
    let timeout = env_timeout(Duration::from_secs(1200));
    let tvm = QemuConfig::tellus()
        .ncpu(2)
        .mem_mib(2048)
        .bootargs("linux-tvm")
        .extra_args([
            "-device".to_string(),
            format!("guest-loader,initrd={},addr=0xd0000000", bundle.display()),
        ])
        .icount(icount)
        .timeout(timeout);
    let bare = QemuConfig::new()
        .ncpu(2)
        .mem_mib(256)
        .kernel(&image)
        .extra_args([
            "-initrd".to_string(),
            initrd.display().to_string(),
            "-append".into(),
            "console=ttyS0 rdinit=/init".into(),
        ])
        .icount(icount)
        .timeout(timeout);
    let (t, b) = std::thread::scope(|s| {
        let t = s.spawn(|| run(&tvm));
        let b = s.spawn(|| run(&bare));
        (t.join().unwrap(), b.join().unwrap())
    });
    let mut errors = Vec::new();
    let (tu, bu) = (uptime(&t.console), uptime(&b.console));
    if tu.is_none() {
        errors.push(format!(
            "linux-tvm boot: no SALUS-TVM-UPTIME line\n{}",
            t.describe(30)
        ));
    }
    if bu.is_none() {
        errors.push(format!(
            "bare boot of the TVM kernel: no SALUS-TVM-UPTIME line\n{}",
            b.describe(30)
        ));
    }
    let mut figs = Vec::new();
    if let (Some(tu), Some(bu)) = (tu, bu) {
        figs.push((
            "linux_tvm_boot".to_string(),
            (tu * 1e9).round(),
            format!("instructions (kernel start to the marker, -icount {icount}: {tu:.2} s of guest time; bare {bu:.2} s)"),
        ));
        if bu > 0.0 {
            figs.push((
                "linux_tvm_boot_ratio".to_string(),
                tu / bu,
                "x (TVM under Salus / bare QEMU, same kernel and initramfs)".to_string(),
            ));
        }
    }
    (figs, errors)
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_uptime() {
        let c = "x\nSALUS-TVM-READY nproc=2\r\nSALUS-TVM-UPTIME 3.41\r\n";
        assert_eq!(super::uptime(c), Some(3.41));
        assert_eq!(super::uptime("none"), None);
    }
}
