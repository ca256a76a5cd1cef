//! QEMU runs of tellus's attack scenarios that need a run of their own.
//! Needs `build/salus.elf` and `build/tellus.bin` (`make images`).

use xtests::{run, QemuConfig};

/// Finding 16: a warm reboot must not hand a live TVM's memory to the next
/// host boot (QEMU keeps RAM across the reset). tellus plants a secret in a
/// TVM, reboots, and on its second boot scans the TVM's old pages.
#[test]
fn reboot_scrubs_tvm_memory() {
    // One hart: with two, QEMU 10.0.2 sometimes aborts during the reset
    // (pmu.c riscv_pmu_cycle_update_priv: assertion env->priv <= PRV_S).
    let out = run(&QemuConfig::tellus().ncpu(1).bootargs("attack-reboot"));
    let ctx = out.describe(40);
    assert!(!out.timed_out, "timed out\n{ctx}");
    assert!(
        out.console.contains("PASS: attack_hw_reboot_plant"),
        "the first boot did not plant the secret\n{ctx}"
    );
    assert!(
        out.console.contains("PASS: attack_hw_reboot_scrub"),
        "no PASS for the second boot's scan\n{ctx}"
    );
    assert!(!out.console.contains("FAIL:"), "a check failed\n{ctx}");
    assert!(
        out.console.contains("tellus: 1 passed, 0 failed"),
        "the second boot did not finish cleanly\n{ctx}"
    );
}

/// Finding 10: with `salus.no_htinst` Salus reads trapped MMIO instructions
/// with HLVX. The whole tellus suite must pass that way, including the
/// attack where the HLVX read faults (stale TLB entry in the host) and the
/// UART test through HLVX.
#[test]
fn hlvx_path_no_htinst() {
    let out = run(&QemuConfig::tellus().ncpu(2).bootargs("salus.no_htinst"));
    let report = xtests::assert_tellus_passed_min(&out, 20);
    let ctx = out.describe(40);
    assert!(
        out.console.contains("salus.no_htinst: trapped MMIO instructions are read with HLVX"),
        "salus.no_htinst not in effect\n{ctx}"
    );
    for (name, note) in [
        ("attack_hw_mmio_insn", "instructions read with HLVX"),
        ("attack_hw_hlvx_fault", "8 HLVX faults survived"),
    ] {
        assert!(
            report.passed().any(|o| o.name == format!("{name} ({note})")),
            "no `PASS: {name} ({note})`\n{ctx}"
        );
    }
}
