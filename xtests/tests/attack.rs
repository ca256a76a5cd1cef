//! QEMU runs of tellus's attack scenarios that need a run of their own.
//! Needs `build/salus.elf` and `build/tellus.bin` (`make images`).

use xtests::{run, QemuConfig};

/// Finding 16: a warm reboot must not hand a live TVM's memory to the next
/// host boot (QEMU keeps RAM across the reset). tellus plants a secret in a
/// TVM, reboots, and on its second boot scans the TVM's old pages.
#[test]
fn reboot_scrubs_tvm_memory() {
    let out = run(&QemuConfig::tellus().ncpu(2).bootargs("attack-reboot"));
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
