//! Confidential VMs launched from the Linux host (issue 9): Debian's kernel
//! under Salus loads `salus-tsm.ko` at boot (the initramfs's /init), and
//! over SSH:
//!
//! * `salus-vmm run --vcpus 2 /usr/share/salus/guestvm.bin` runs guestvm
//!   with every one of its tests passing and exits 0 (the TVM's SRST
//!   reason), printing the TVM's initial measurement;
//! * two VMMs run guestvm at the same time, both pass;
//! * a VMM killed with SIGKILL in the middle of a run (a TVM that spins)
//!   loses no page: the driver's counters go back to zero, and a new TVM
//!   still runs;
//! * `salus-tsm-hostile` (bad fds, arguments, order, one vCPU from two
//!   threads, a close while running) gets an error from every call, and
//!   the kernel has no oops;
//!
//! at 2 harts (all of the above) and 4 harts (guestvm with 2 vCPUs, and
//! the Linux TVM of issue 12: `salus-vmm run /dev/vda` with the bundle as
//! the host's disk boots Debian's kernel as a 2-vCPU TVM to its marker
//! lines and powers off with every page back).
//! Needs `make test`'s images (salus, guestvm, linux, rootfs with the
//! module and the VMM, the Linux TVM bundle).

use std::time::Duration;

use std::path::Path;

use xtests::linux::{free_port, make_disk, salus_linux_config, scratch, LinuxImages, LinuxVm};
use xtests::{build_dir, env_timeout};

const BOOT: Duration = Duration::from_secs(300);
/// One guestvm run over SSH (TCG on a loaded 2-core machine).
const RUN: Duration = Duration::from_secs(240);

/// The Linux TVM's run from the host's shell (its boot under TCG, with
/// every UART access an exit to the VMM).
const LINUX_TVM_RUN: Duration = Duration::from_secs(420);

const GUESTVM: &str = "/usr/share/salus/guestvm.bin";

/// Boots the host with `disk` (default: a 1 MiB scratch disk) as vda.
fn boot(ncpu: u32, disk: Option<&Path>) -> LinuxVm {
    let img = LinuxImages::locate().unwrap_or_else(|e| panic!("{e}"));
    let port = free_port();
    let scratch_disk = scratch(&format!("tvm-vda-{ncpu}.img"));
    let disk = disk.unwrap_or_else(|| {
        make_disk(&scratch_disk, 1 << 20, "SALUS-TVM").expect("create the disk image");
        &scratch_disk
    });
    let cfg = salus_linux_config(&img, port, disk)
        .ncpu(ncpu)
        .timeout(env_timeout(BOOT + 4 * RUN + LINUX_TVM_RUN));
    let mut vm = LinuxVm::start(&cfg, port, &img.ssh_key).expect("start QEMU");
    let ready = vm
        .wait_for("SALUS-INIT-READY", env_timeout(BOOT), |l| {
            l.starts_with("SALUS-INIT-READY")
        })
        .unwrap_or_else(|e| panic!("{e}"));
    let console = vm.console();
    assert!(
        console.contains("salus-tsm: loaded"),
        "the driver did not load at boot ({ready})\n{}",
        vm.describe(80)
    );
    vm
}

fn ssh(vm: &LinuxVm, script: &str, timeout: Duration) -> String {
    let out = vm
        .ssh(script, 3, env_timeout(timeout))
        .unwrap_or_else(|e| panic!("ssh `{script}`: {e}\n{}", vm.describe(80)));
    // Shown with --nocapture (and on failure).
    eprintln!("---- ssh: {script}\n{out}");
    out
}

/// The value after `key=` on the first line that has it.
fn field(out: &str, key: &str) -> Option<String> {
    let pat = format!("{key}=");
    out.lines().find_map(|l| {
        let i = l.find(&pat)?;
        Some(
            l[i + pat.len()..]
                .split_whitespace()
                .next()
                .unwrap_or("")
                .to_string(),
        )
    })
}

/// Checks one guestvm run's output: exit 0, every guest test passed.
fn assert_guestvm_passed(vm: &LinuxVm, out: &str, what: &str) {
    let passed = out.lines().filter(|l| l.starts_with("PASS: ")).count();
    let failed = out.lines().filter(|l| l.starts_with("FAIL: ")).count();
    assert!(
        field(out, "VMM-EXIT").as_deref() == Some("0") && failed == 0 && passed >= 10,
        "{what}: {passed} passed, {failed} failed\n{out}\n{}",
        vm.describe(40)
    );
    assert!(
        out.contains("salus-vmm: initial measurement "),
        "{what}: no initial measurement printed\n{out}"
    );
}

/// The driver's page counters are all zero (nothing held, nothing leaked).
fn assert_counters_zero(vm: &LinuxVm, when: &str) {
    let mut out = String::new();
    for _ in 0..20 {
        out = ssh(vm, "salus-tsm-hostile info", Duration::from_secs(60));
        if field(&out, "converted_pages").as_deref() == Some("0")
            && field(&out, "live_tvms").as_deref() == Some("0")
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    for key in [
        "converted_pages",
        "shared_pages",
        "leaked_pages",
        "live_tvms",
    ] {
        assert_eq!(
            field(&out, key).as_deref(),
            Some("0"),
            "{when}: driver counter {key}: {out}"
        );
    }
}

fn assert_no_oops(vm: &LinuxVm) {
    let out = ssh(
        vm,
        "dmesg | grep -E 'Oops|BUG:|Unable to handle|WARNING:|Call Trace' | head -20; echo DMESG-DONE",
        Duration::from_secs(60),
    );
    let bad: Vec<&str> = out.lines().filter(|l| *l != "DMESG-DONE").collect();
    assert!(bad.is_empty(), "kernel complained:\n{out}");
}

fn run_guestvm(vm: &LinuxVm, vcpus: u32) -> String {
    ssh(
        vm,
        &format!("salus-vmm run --vcpus {vcpus} {GUESTVM} 2>&1; echo VMM-EXIT=$?"),
        RUN,
    )
}

#[test]
fn linux_tvm_two_harts() {
    let mut vm = boot(2, None);
    assert_counters_zero(&vm, "at boot");

    let out = run_guestvm(&vm, 2);
    assert_guestvm_passed(&vm, &out, "guestvm with 2 vCPUs");
    assert_counters_zero(&vm, "after a guestvm run");

    // Two TVMs at the same time.
    let both = ssh(
        &vm,
        &format!(
            "(salus-vmm run {GUESTVM} > /tmp/a.log 2>&1; echo VMM-EXIT=$? >> /tmp/a.log) & \
             (salus-vmm run --vcpus 2 {GUESTVM} > /tmp/b.log 2>&1; echo VMM-EXIT=$? >> /tmp/b.log) & \
             wait; cat /tmp/a.log; echo SPLIT; cat /tmp/b.log"
        ),
        2 * RUN,
    );
    let (a, b) = both.split_once("SPLIT\n").unwrap_or((&both, ""));
    assert_guestvm_passed(&vm, a, "first of two concurrent TVMs");
    assert_guestvm_passed(&vm, b, "second of two concurrent TVMs");
    assert_counters_zero(&vm, "after two concurrent TVMs");

    // SIGKILL in the middle of a run: a TVM whose vCPU spins (`j .`).
    let killed = ssh(
        &vm,
        "printf '\\157\\000\\000\\000' > /tmp/spin.bin; \
         salus-vmm run /tmp/spin.bin > /tmp/spin.log 2>&1 & pid=$!; sleep 3; \
         salus-tsm-hostile info; kill -9 $pid; wait $pid; echo KILLED=$?; cat /tmp/spin.log",
        RUN,
    );
    assert!(
        field(&killed, "live_tvms").as_deref() == Some("1")
            && field(&killed, "KILLED").as_deref() == Some("137"),
        "the spinning TVM was not running when killed:\n{killed}"
    );
    assert_counters_zero(&vm, "after kill -9 of a running VMM");
    let out = run_guestvm(&vm, 1);
    assert_guestvm_passed(&vm, &out, "guestvm after the kill");

    // The hostile user.
    let hostile = ssh(&vm, "salus-tsm-hostile 2>&1; echo HOSTILE-EXIT=$?", RUN);
    assert!(
        field(&hostile, "HOSTILE-EXIT").as_deref() == Some("0") && !hostile.contains("FAIL: "),
        "hostile user:\n{hostile}"
    );
    assert_counters_zero(&vm, "after the hostile user");
    assert_no_oops(&vm);

    vm.send("poweroff -f\n").unwrap();
    let status = vm.wait_exit(Duration::from_secs(60));
    assert!(status.is_some_and(|s| s.code() == Some(0)), "{status:?}");
}

#[test]
fn linux_tvm_four_harts() {
    // The Linux TVM's bundle as the host's disk (a copy: QEMU locks it).
    let build = build_dir();
    let bundle = build.join("linux-tvm/bundle.bin");
    let disk = scratch("tvm-bundle-4.img");
    std::fs::copy(&bundle, &disk).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (make linux-tvm-bundle; make test does)",
            bundle.display()
        )
    });
    let mut vm = boot(4, Some(&disk));
    let out = run_guestvm(&vm, 2);
    assert_guestvm_passed(&vm, &out, "guestvm with 2 vCPUs on 4 harts");
    assert_counters_zero(&vm, "after the run");

    // The Linux TVM, launched by the VMM instead of tellus: the same
    // kernel, initramfs, device tree and shim, its UART emulated in
    // userspace.
    let release = std::fs::read_to_string(build.join("linux/kernel.release"))
        .expect("build/linux/kernel.release (make linux)");
    let md5 = std::fs::read_to_string(build.join("linux-tvm/tvm-check.md5"))
        .expect("build/linux-tvm/tvm-check.md5");
    let out = ssh(
        &vm,
        "salus-vmm run /dev/vda < /dev/null 2>&1; echo VMM-EXIT=$?",
        LINUX_TVM_RUN,
    );
    let marker = format!(
        "SALUS-TVM-READY nproc=2 kernel={} sum={}",
        release.trim(),
        &md5.trim()[..8]
    );
    let lines: Vec<&str> = out.lines().map(|l| l.trim_end_matches('\r')).collect();
    let ctx = || format!("{out}\n{}", vm.describe(40));
    assert!(
        lines.contains(&marker.as_str()),
        "no `{marker}` line:\n{}",
        ctx()
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("tvm-shim: 1 MMIO regions, rng-seed replaced,")),
        "no shim line:\n{}",
        ctx()
    );
    let ipis = lines
        .iter()
        .find_map(|l| l.strip_prefix("SALUS-TVM-IPI-OK cpus=2 ipis="))
        .and_then(|n| n.trim().parse::<u64>().ok());
    assert!(ipis.is_some_and(|n| n > 0), "no IPI-heavy step:\n{}", ctx());
    assert!(
        out.contains("salus-vmm: TVM shut down (reason 0)")
            && field(&out, "VMM-EXIT").as_deref() == Some("0"),
        "the Linux TVM did not power off cleanly:\n{}",
        ctx()
    );
    assert_counters_zero(&vm, "after the Linux TVM");
    assert_no_oops(&vm);
    vm.send("poweroff -f\n").unwrap();
    let status = vm.wait_exit(Duration::from_secs(60));
    assert!(status.is_some_and(|s| s.code() == Some(0)), "{status:?}");
}
