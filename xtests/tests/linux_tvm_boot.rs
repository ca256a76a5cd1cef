//! An unmodified Debian kernel boots as a 2-vCPU confidential VM under
//! tellus (`linux-tvm` mode, docs/linux-tvm.md): the measured tvm-shim
//! enters it, it brings up its second vCPU through the TSM's HSM, reaches
//! the initramfs's /init (`SALUS-TVM-READY nproc=2 kernel=<release>
//! sum=<md5 of /etc/tvm-check>`), survives an IPI-heavy step and powers
//! off (SRST); tellus destroys the TVM and gets every page back.
//! Needs `make test`'s images: salus, tellus (with build/tvm-shim.bin),
//! build/linux/Image and build/linux-tvm/bundle.bin (`make
//! linux-tvm-bundle`). About 30-60 s under TCG.

use std::time::Duration;

use xtests::{build_dir, env_timeout, run, QemuConfig};

const TIMEOUT: Duration = Duration::from_secs(300);

#[test]
fn linux_tvm_boots_to_init() {
    let build = build_dir();
    let bundle = build.join("linux-tvm/bundle.bin");
    assert!(
        bundle.is_file(),
        "{} missing: run `make linux-tvm-bundle` (make test does)",
        bundle.display()
    );
    let release = std::fs::read_to_string(build.join("linux/kernel.release"))
        .expect("build/linux/kernel.release (make linux)");
    let release = release.trim();
    let md5 = std::fs::read_to_string(build.join("linux-tvm/tvm-check.md5"))
        .expect("build/linux-tvm/tvm-check.md5");
    let sum = &md5.trim()[..8];
    let cfg = QemuConfig::tellus()
        .ncpu(2)
        .mem_mib(2048)
        .bootargs("linux-tvm")
        .extra_args([
            "-device".to_string(),
            format!("guest-loader,initrd={},addr=0xd0000000", bundle.display()),
        ])
        .timeout(env_timeout(TIMEOUT));
    let out = run(&cfg);
    let ctx = out.describe(60);
    let c = &out.console;
    eprintln!("linux-tvm boot: {:?} wall", out.wall);
    assert!(!out.timed_out, "timed out\n{ctx}");
    assert!(
        c.contains("tvm-shim: 1 MMIO regions,"),
        "no shim line\n{ctx}"
    );
    let marker = format!("SALUS-TVM-READY nproc=2 kernel={release} sum={sum}");
    assert!(
        c.lines().any(|l| l.trim_end() == marker),
        "no `{marker}` line\n{ctx}"
    );
    let ipis = c
        .lines()
        .find_map(|l| l.strip_prefix("SALUS-TVM-IPI-OK cpus=2 ipis="))
        .unwrap_or_else(|| panic!("no IPI line\n{ctx}"));
    let ipis: u64 = ipis.trim().parse().unwrap_or(0);
    assert!(ipis > 0, "the kernel counted no IPIs\n{ctx}");
    // COVI (issue 15): the vCPUs are bound to IMSIC guest files and the
    // unmodified kernel takes its IPIs through the IMSIC.
    assert!(
        c.contains("tellus: linux-tvm: COVI: vCPU 0 bound"),
        "the vCPUs were not bound to IMSIC guest files\n{ctx}"
    );
    assert!(
        c.contains("riscv-imsic: imsics@28000000: providing IPIs using interrupt"),
        "the kernel does not use the IMSIC for IPIs\n{ctx}"
    );
    // Salus serves the entropy call: the shim must not fall back to zeros.
    assert!(
        c.contains("rng-seed replaced,"),
        "the shim did not refresh rng-seed\n{ctx}"
    );
    assert!(
        c.contains("tellus: linux-tvm: vCPU 1 started by the kernel"),
        "vCPU 1 never started\n{ctx}"
    );
    assert!(
        c.contains("tellus: linux-tvm: shutdown reason 0"),
        "no clean SRST shutdown\n{ctx}"
    );
    assert!(
        c.contains("pages reclaimed and zero") && c.contains("PASS: tee_census"),
        "pages not all back with the host\n{ctx}"
    );
    assert!(
        c.contains("PASS: linux_tvm") && c.contains("tellus: 2 passed, 0 failed"),
        "tellus did not pass\n{ctx}"
    );
    assert!(out.success(), "QEMU did not exit cleanly\n{ctx}");
}

/// On a hart without V the Linux TVM's device tree (which lists V) would
/// oops the kernel at its first vector probe: the measured shim refuses it
/// first, says why, and shuts the TVM down; tellus still reclaims every
/// page.
#[test]
fn linux_tvm_without_v_is_refused_by_the_shim() {
    let build = build_dir();
    let bundle = build.join("linux-tvm/bundle.bin");
    assert!(
        bundle.is_file(),
        "{} missing (make linux-tvm-bundle)",
        bundle.display()
    );
    let cfg = QemuConfig::tellus()
        .ncpu(2)
        .mem_mib(2048)
        .cpu("rv64,v=false,sstc=true,svadu=true,zknh=true")
        .bootargs("linux-tvm")
        .extra_args([
            "-device".to_string(),
            format!("guest-loader,initrd={},addr=0xd0000000", bundle.display()),
        ])
        .timeout(env_timeout(Duration::from_secs(300)));
    let out = run(&cfg);
    let ctx = out.describe(40);
    let c = &out.console;
    assert!(
        c.contains("tvm-shim: the device tree lists V but this hart has no vector unit"),
        "the shim did not refuse\n{ctx}"
    );
    assert!(
        c.contains("tellus: linux-tvm: shutdown reason 1"),
        "no SRST with reason system failure\n{ctx}"
    );
    assert!(
        c.contains("pages reclaimed and zero") && c.contains("PASS: tee_census"),
        "pages not all back with the host\n{ctx}"
    );
}
