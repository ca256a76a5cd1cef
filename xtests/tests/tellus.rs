//! QEMU integration tests: boot Salus with the tellus host kernel and check
//! the console. Needs `build/salus.elf` and `build/tellus.bin`
//! (`make salus tellus`; `make test` builds them first) and
//! `qemu-system-riscv64` (or `$QEMU_BIN`).
//!
//! Each test is one QEMU run; they run in parallel, so keep them cheap.
//! Nothing here asserts on wall-clock time: "no hang" means "did not hit the
//! timeout".

use std::time::Duration;

use xtests::{assert_tellus_passed_min, run, QemuConfig, RunOutput, TellusReport};

/// The tellus suite is expected to have at least this many tests.
const MIN_TESTS: usize = 10;

/// Runs that Salus must refuse should stop long before this.
const REFUSAL_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs `cfg` and asserts a clean tellus pass with Salus present.
#[track_caller]
fn run_passing(cfg: QemuConfig) -> RunOutput {
    // The full suite (TEE and attack groups included) shares 2 cores with
    // other runs.
    let cfg = cfg.timeout(xtests::env_timeout(Duration::from_secs(240)));
    let out = run(&cfg);
    assert_tellus_passed_min(&out, MIN_TESTS);
    assert!(
        out.console.contains("salus:"),
        "no `salus:` line on the console\n{}",
        out.describe(40)
    );
    out
}

/// Asserts a refused boot: QEMU exited by itself with a non-zero code, a
/// `salus: fatal:` line contains one of `needles` (case-insensitive), and
/// tellus never started a test.
#[track_caller]
fn assert_refused(out: &RunOutput, needles: &[&str]) {
    let ctx = out.describe(40);
    assert!(
        !out.timed_out,
        "Salus hung instead of refusing to boot\n{ctx}"
    );
    assert!(
        matches!(out.exit_code, Some(c) if c != 0),
        "QEMU should exit with a non-zero code\n{ctx}"
    );
    let fatal = out.fatal_lines();
    assert!(
        fatal.iter().any(|l| {
            let l = l.to_ascii_lowercase();
            needles.iter().any(|n| l.contains(n))
        }),
        "expected a `salus: fatal:` line mentioning one of {needles:?}, got {fatal:?}\n{ctx}"
    );
    let report = TellusReport::parse(&out.console);
    assert!(
        report.started.is_empty() && report.outcomes.is_empty(),
        "tellus should never have run, but it started {:?}\n{ctx}",
        report.started
    );
}

// ---- hart counts (default machine: AIA aplic-imsic; default CPU) ---------

#[test]
fn one_hart() {
    run_passing(QemuConfig::tellus().ncpu(1));
}

#[test]
fn two_harts() {
    run_passing(QemuConfig::tellus().ncpu(2));
}

#[test]
fn four_harts() {
    run_passing(QemuConfig::tellus().ncpu(4));
}

// ---- CPU features ----------------------------------------------------------

#[test]
fn vector_off() {
    run_passing(QemuConfig::tellus().cpu("rv64,v=false,sstc=true"));
}

/// Vector with QEMU's default VLEN (the default CPU string uses vlen=256).
#[test]
fn vector_on() {
    run_passing(QemuConfig::tellus().cpu("rv64,v=true,sstc=true"));
}

#[test]
fn sstc_off() {
    run_passing(QemuConfig::tellus().cpu("rv64,v=true,sstc=false"));
}

// ---- interrupt controllers -------------------------------------------------

/// Plain `virt`: PLIC, no AIA (the other tests use aplic-imsic).
#[test]
fn plic_without_aia() {
    run_passing(QemuConfig::tellus().machine("virt"));
}

// ---- refusals and failure propagation -------------------------------------

#[test]
fn no_h_extension_is_refused() {
    let cfg = QemuConfig::tellus()
        .ncpu(1)
        .cpu("rv64,h=false")
        .timeout(REFUSAL_TIMEOUT);
    assert_refused(&run(&cfg), &["h extension"]);
}

#[test]
fn missing_host_kernel_is_refused() {
    let cfg = QemuConfig::tellus()
        .ncpu(1)
        .no_host_image()
        .timeout(REFUSAL_TIMEOUT);
    assert_refused(&run(&cfg), &["host kernel", "guest-loader", "guest loader"]);
}

/// `fail-selftest` on tellus's command line makes it report one deliberate
/// FAIL; the failure must reach QEMU's exit code.
#[test]
fn tellus_failure_propagates() {
    let cfg = QemuConfig::tellus().ncpu(1).bootargs("fail-selftest");
    let out = run(&cfg);
    let ctx = out.describe(40);
    assert!(!out.timed_out, "QEMU hung\n{ctx}");
    assert!(
        matches!(out.exit_code, Some(c) if c != 0),
        "a tellus FAIL must make QEMU exit non-zero\n{ctx}"
    );
    let report = TellusReport::parse(&out.console);
    assert!(
        report.failed().count() >= 1,
        "expected a FAIL: line from the self-test\n{ctx}"
    );
    let summary = report.summary().unwrap_or_else(|e| panic!("{e}\n{ctx}"));
    assert!(
        summary.failed >= 1,
        "summary should count the failure\n{ctx}"
    );
}
