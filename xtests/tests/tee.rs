//! QEMU integration tests of the CoVE TSM: tellus's TEE tests (TSM info,
//! convert/fence/reclaim, guestvm run as a TVM on every hart in turn,
//! negative tests of every COVH call, page census) and a short randomized
//! run. Needs `build/salus.elf`, `build/tellus.bin` (which embeds
//! `build/guestvm.bin`); `make test` builds them.
//!
//! The plain tellus runs in `tellus.rs` run the TEE tests too; these
//! additionally require that they ran (COVH present) and check guestvm's
//! own results.

use xtests::{assert_tellus_passed_min, run, QemuConfig, RunOutput, TellusReport};

const MIN_TESTS: usize = 20;
/// What `tellus` prints when the TSM is missing.
const NO_COVH: &str = "tellus: COVH not available";

/// `PASS: name` or `PASS: name (note)`.
fn passed(r: &TellusReport, name: &str) -> bool {
    r.passed()
        .any(|o| o.name == name || o.name.starts_with(&format!("{name} (")))
}

#[track_caller]
fn run_tee(cfg: QemuConfig) -> (RunOutput, TellusReport) {
    let out = run(&cfg);
    let report = assert_tellus_passed_min(&out, MIN_TESTS);
    let ctx = out.describe(60);
    assert!(
        !out.console.contains(NO_COVH),
        "COVH did not probe as present: the TEE tests did not run\n{ctx}"
    );
    for name in [
        "tee_tsm_info",
        "tee_convert_fence",
        "tee_guestvm",
        "tee_negative_convert_reclaim",
        "tee_negative_create",
        "tee_negative_tvm_calls",
        "tee_census",
    ] {
        assert!(passed(&report, name), "no `PASS: {name}` line\n{ctx}");
    }
    let guest: Vec<_> = report
        .outcomes
        .iter()
        .filter(|o| o.name.starts_with("guestvm:"))
        .collect();
    assert!(
        guest.len() >= 8 && guest.iter().all(|o| o.passed),
        "guestvm reported {:?}\n{ctx}",
        guest
    );
    assert!(
        out.console.contains("guestvm: ") && out.console.contains(" passed, 0 failed"),
        "no guestvm summary line\n{ctx}"
    );
    (out, report)
}

#[test]
fn tee_two_harts() {
    // With Salus's own page-map cross-checks after every COVH call.
    let (_, r) = run_tee(QemuConfig::tellus().ncpu(2).bootargs("salus.check"));
    assert!(passed(&r, "guestvm:vector"));
    assert!(passed(&r, "guestvm:secondary_vcpu"));
}

#[test]
fn tee_four_harts_vector_off() {
    // Also too few VMID bits for every TVM: TVMs share VMID 0 with the host
    // and every hgatp switch fences.
    let (out, r) = run_tee(
        QemuConfig::tellus()
            .ncpu(4)
            .cpu("rv64,v=false,sstc=true")
            .bootargs("salus.vmid_bits=3"),
    );
    assert!(
        out.console.contains("VMID: 3 bits, too few"),
        "salus.vmid_bits=3 not in effect\n{}",
        out.describe(40)
    );
    assert!(
        !r.outcomes.iter().any(|o| o.name == "guestvm:vector"),
        "guestvm ran its vector test without V\n{}",
        out.describe(40)
    );
    assert!(out.console.contains("guestvm: no V"));
}

/// A short randomized COVH run with a fixed seed (`make fuzz` runs longer
/// ones): no mismatch against tellus's model, no Salus panic, and Salus's
/// own cross-checks (`salus.check`: page map vs TSM records after every
/// call) hold throughout.
#[test]
fn tee_fuzz_short() {
    let seed = 12345;
    let cfg = QemuConfig::tellus()
        .ncpu(2)
        .bootargs(format!("fuzz seed={seed} iters=2000 salus.check"));
    let (out, r) = run_tee(cfg);
    assert!(passed(&r, "tee_fuzz"));
    let line = out
        .console
        .lines()
        .find(|l| l.starts_with(&format!("tellus: fuzz seed {seed}:")))
        .unwrap_or_else(|| panic!("no fuzz summary line\n{}", out.describe(40)));
    let calls: u64 = line
        .split(": ")
        .nth(2)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(calls >= 2000, "only {calls} calls: {line}");
    assert!(line.ends_with(" 0 mismatches"), "{line}");
}
