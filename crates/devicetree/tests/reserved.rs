//! The firmware's reserved memory: every `/reserved-memory` child (no-map
//! or not) and every `/memreserve/` entry is reserved, page-aligned, and
//! host RAM is what is left around them.

use devicetree::{
    build_host_fdt, firmware_reserved, host_reserved, subtract, HostFdtConfig, MachineInfo,
};
use hyp_addr::{HostPhysAddr, HostRange};
use vm_fdt::{FdtReserveEntry, FdtWriter};

fn r(start: u64, len: u64) -> HostRange {
    HostRange::new(HostPhysAddr::new(start), len).unwrap()
}

/// A small tree: 2 GiB of RAM at 0x8000_0000, one hart, a /memreserve/
/// entry and a /reserved-memory node with the given children
/// (name, start, len, no-map).
fn dtb(children: &[(&str, u64, u64, bool)], memreserve: &[(u64, u64)]) -> Vec<u8> {
    let rsv: Vec<FdtReserveEntry> = memreserve
        .iter()
        .map(|&(a, s)| FdtReserveEntry::new(a, s).unwrap())
        .collect();
    let mut w = FdtWriter::new_with_mem_reserv(&rsv).unwrap();
    let root = w.begin_node("").unwrap();
    w.property_u32("#address-cells", 2).unwrap();
    w.property_u32("#size-cells", 2).unwrap();
    w.property_string("compatible", "riscv-virtio").unwrap();
    let m = w.begin_node("memory@80000000").unwrap();
    w.property_string("device_type", "memory").unwrap();
    w.property_array_u64("reg", &[0x8000_0000, 2 << 30])
        .unwrap();
    w.end_node(m).unwrap();
    let cpus = w.begin_node("cpus").unwrap();
    w.property_u32("#address-cells", 1).unwrap();
    w.property_u32("#size-cells", 0).unwrap();
    w.property_u32("timebase-frequency", 10_000_000).unwrap();
    let c = w.begin_node("cpu@0").unwrap();
    w.property_string("device_type", "cpu").unwrap();
    w.property_u32("reg", 0).unwrap();
    w.property_string("riscv,isa", "rv64imafdch").unwrap();
    w.property_string("status", "okay").unwrap();
    w.end_node(c).unwrap();
    w.end_node(cpus).unwrap();
    let rm = w.begin_node("reserved-memory").unwrap();
    w.property_u32("#address-cells", 2).unwrap();
    w.property_u32("#size-cells", 2).unwrap();
    w.property_null("ranges").unwrap();
    for &(name, start, len, no_map) in children {
        let n = w.begin_node(&format!("{name}@{start:x}")).unwrap();
        w.property_array_u64("reg", &[start, len]).unwrap();
        if no_map {
            w.property_null("no-map").unwrap();
        }
        w.end_node(n).unwrap();
    }
    w.end_node(rm).unwrap();
    w.end_node(root).unwrap();
    w.finish().unwrap()
}

#[test]
fn every_reserved_child_and_memreserve_counts() {
    let b = dtb(
        &[
            ("fw", 0x8000_0000, 0x4_0000, true),
            ("shared", 0x9000_0000, 0x10_0000, false),
            // Unaligned: widened to whole pages.
            ("odd", 0x9100_0100, 0x100, false),
            // Overlapping the first: merged.
            ("fw2", 0x8003_0000, 0x2_0000, true),
        ],
        &[(0xa000_0000, 0x2000)],
    );
    let info = MachineInfo::parse(&b).unwrap();
    assert_eq!(info.reserved.len(), 4);
    assert_eq!(
        firmware_reserved(&info),
        vec![
            r(0x8000_0000, 0x5_0000),
            r(0x9000_0000, 0x10_0000),
            r(0x9100_0000, 0x1000),
            r(0xa000_0000, 0x2000),
        ]
    );
}

#[test]
fn qemu_dtb_with_reserved_memory() {
    let info = MachineInfo::parse(include_bytes!("dtbs/virt-reserved.dtb")).unwrap();
    let fw = firmware_reserved(&info);
    // Each child and the /memreserve/ entry lies inside some result.
    for x in info
        .reserved
        .iter()
        .map(|c| c.range)
        .chain(info.mem_reservations.iter().copied())
    {
        assert!(
            fw.iter().any(|f| f.contains_range(x.start, x.len)),
            "{x:?} not reserved in {fw:?}"
        );
    }
    // The non-no-map child is reserved too.
    let plain = info.reserved.iter().find(|c| !c.no_map).unwrap().range;
    assert!(fw.iter().any(|f| f.overlaps(&plain)));
}

#[test]
fn host_ram_is_punched_around_reserved_ranges() {
    let ram = r(0x8060_0000, 0x1000_0000);
    let holes = [
        r(0x8000_0000, 0x70_0000), // straddles the start
        r(0x8100_0000, 0x1000),
        r(0x8100_0000, 0x2000),     // overlapping hole
        r(0x9000_0000, 0x1000),     // past the end: ignored
        r(0x8f00_0000, 0x200_0000), // straddles the end
    ];
    let pieces = subtract(ram, &holes);
    assert_eq!(
        pieces,
        vec![r(0x8070_0000, 0x90_0000), r(0x8100_2000, 0xdffe000)]
    );
    for p in &pieces {
        assert!(ram.contains_range(p.start, p.len));
        assert!(!holes.iter().any(|h| h.overlaps(p)));
    }
    assert_eq!(subtract(ram, &[]), vec![ram]);
    assert_eq!(subtract(ram, &[r(0, 1 << 40)]), vec![]);
}

#[test]
fn host_tree_lists_every_firmware_range() {
    let own = [r(0x8000_0000, 0x20_0000), r(0x8020_0000, 0xc0_0000)];
    let fw = [
        r(0x8000_0000, 0x4_0000),  // inside Salus's firmware range
        r(0x9000_0000, 0x10_0000), // in host RAM: must be listed
    ];
    let reserved = host_reserved(&own, &fw);
    assert_eq!(reserved, vec![own[0], own[1], fw[1]]);
    let cfg = HostFdtConfig {
        memory: vec![r(0x8000_0000, 2 << 30)],
        reserved,
        ..HostFdtConfig::default()
    };
    let info = MachineInfo::parse(&dtb(&[], &[])).unwrap();
    let host = build_host_fdt(&info, &cfg).unwrap();
    let back = MachineInfo::parse(&host).unwrap();
    for f in fw {
        assert!(
            back.reserved
                .iter()
                .any(|c| c.range.contains_range(f.start, f.len) && c.no_map),
            "{f:?} not reserved (no-map) in the host's tree"
        );
    }
}
