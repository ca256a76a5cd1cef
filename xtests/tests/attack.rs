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
        out.console
            .contains("salus.no_htinst: trapped MMIO instructions are read with HLVX"),
        "salus.no_htinst not in effect\n{ctx}"
    );
    for (name, note) in [
        ("attack_hw_mmio_insn", "instructions read with HLVX"),
        ("attack_hw_hlvx_fault", "8 HLVX faults survived"),
    ] {
        assert!(
            report
                .passed()
                .any(|o| o.name == format!("{name} ({note})")),
            "no `PASS: {name} ({note})`\n{ctx}"
        );
    }
}

/// Appends `/reserved-memory` (2 address and 2 size cells, `ranges`) with
/// one child `name@addr` of `len` bytes (no `no-map`) to the root node of
/// the flattened device tree `dtb`. QEMU's own tree has no
/// `/reserved-memory` (the firmware adds one later, around it).
fn add_reserved_child(dtb: &[u8], addr: u64, len: u64) -> Vec<u8> {
    let be32 = |o: usize| u32::from_be_bytes(dtb[o..o + 4].try_into().unwrap()) as usize;
    assert_eq!(be32(0), 0xd00d_feed, "not a DTB");
    let (off_struct, off_strings, off_rsv) = (be32(8), be32(12), be32(16));
    let (size_strings, size_struct) = (be32(32), be32(36));
    assert!(off_rsv < off_struct, "unexpected DTB layout");
    let structure = &dtb[off_struct..off_struct + size_struct];
    let mut strings = dtb[off_strings..off_strings + size_strings].to_vec();
    // The structure block ends with the root's END_NODE then END.
    let tail = [0, 0, 0, 2, 0, 0, 0, 9];
    assert_eq!(
        &structure[structure.len() - 8..],
        &tail,
        "unexpected DTB end"
    );
    let mut name_off = |s: &str| {
        let o = strings.len() as u32;
        strings.extend_from_slice(s.as_bytes());
        strings.push(0);
        o
    };
    let (ac, sc, ranges, reg) = (
        name_off("#address-cells"),
        name_off("#size-cells"),
        name_off("ranges"),
        name_off("reg"),
    );
    let mut node = Vec::new();
    let tok = |v: &mut Vec<u8>, t: u32| v.extend_from_slice(&t.to_be_bytes());
    let begin = |v: &mut Vec<u8>, name: &str| {
        tok(v, 1);
        v.extend_from_slice(name.as_bytes());
        v.push(0);
        while !v.len().is_multiple_of(4) {
            v.push(0);
        }
    };
    let prop = |v: &mut Vec<u8>, nameoff: u32, val: &[u8]| {
        tok(v, 3);
        tok(v, val.len() as u32);
        tok(v, nameoff);
        v.extend_from_slice(val);
        while !v.len().is_multiple_of(4) {
            v.push(0);
        }
    };
    begin(&mut node, "reserved-memory");
    prop(&mut node, ac, &2u32.to_be_bytes());
    prop(&mut node, sc, &2u32.to_be_bytes());
    prop(&mut node, ranges, &[]);
    begin(&mut node, &format!("xtests@{addr:x}"));
    let mut r = addr.to_be_bytes().to_vec();
    r.extend_from_slice(&len.to_be_bytes());
    prop(&mut node, reg, &r);
    tok(&mut node, 2);
    tok(&mut node, 2);
    let mut new_struct = structure[..structure.len() - 8].to_vec();
    new_struct.extend_from_slice(&node);
    new_struct.extend_from_slice(&tail);

    let rsv = &dtb[off_rsv..off_struct];
    let off_rsv_new = 40usize.next_multiple_of(8);
    let off_struct_new = off_rsv_new + rsv.len();
    let off_strings_new = off_struct_new + new_struct.len();
    let total = off_strings_new + strings.len();
    let mut out = dtb[..40].to_vec();
    out.resize(off_rsv_new, 0);
    out.extend_from_slice(rsv);
    out.extend_from_slice(&new_struct);
    out.extend_from_slice(&strings);
    let mut put = |o: usize, v: usize| out[o..o + 4].copy_from_slice(&(v as u32).to_be_bytes());
    put(4, total);
    put(8, off_struct_new);
    put(12, off_strings_new);
    put(16, off_rsv_new);
    put(32, strings.len());
    put(36, new_struct.len());
    out
}

/// Finding 11: a range the firmware's tree reserves (here without
/// `no-map`, in the middle of RAM Salus would otherwise give the host)
/// must stay out of the host's stage-2, be listed in the host's tree and
/// not be convertible.
#[test]
fn firmware_reserved_memory_stays_out_of_reach() {
    const RESV: u64 = 0xa000_0000;
    let base = QemuConfig::tellus().ncpu(1);
    let dir = std::env::temp_dir().join(format!("xtests-fwresv-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let plain = dir.join("virt.dtb");
    let patched = dir.join("virt-resv.dtb");
    // QEMU's tree for the same machine, without the guest-loader (which
    // adds its /chosen nodes to whatever tree the machine gets).
    let status = std::process::Command::new(&base.qemu)
        .args([
            "-M",
            &format!("{},dumpdtb={}", base.machine, plain.display()),
            "-cpu",
            &base.cpu,
            "-smp",
            &base.ncpu.to_string(),
            "-m",
            &base.mem_mib.to_string(),
            "-nographic",
        ])
        .status()
        .unwrap();
    assert!(status.success(), "QEMU dumpdtb failed");
    let dtb = std::fs::read(&plain).unwrap();
    std::fs::write(&patched, add_reserved_child(&dtb, RESV, 0x1_0000)).unwrap();
    let out = run(&base
        .bootargs(format!("fw-resv={RESV:#x}"))
        .extra_args(["-dtb".to_string(), patched.display().to_string()]));
    let _ = std::fs::remove_dir_all(&dir);
    let ctx = out.describe(40);
    assert!(
        out.console
            .contains("salus: firmware reserves 0xa0000000..0xa0010000"),
        "Salus did not see the reserved range\n{ctx}"
    );
    assert!(
        out.console.contains("PASS: attack_hw_fw_reserved"),
        "no PASS: attack_hw_fw_reserved\n{ctx}"
    );
    assert!(!out.console.contains("FAIL:"), "a check failed\n{ctx}");
}
