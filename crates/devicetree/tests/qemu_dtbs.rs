//! Parses device trees dumped from QEMU `virt` and builds host trees from
//! them.

use devicetree::{
    build_host_fdt, Error, HostFdtConfig, HostUart, IrqLevel, IsaExtensions, MachineInfo, PciSpace,
};
use hyp_addr::{HostPhysAddr, HostRange};
use proptest::prelude::*;

const VIRT1: &[u8] = include_bytes!("dtbs/virt-1.dtb");
const VIRT2: &[u8] = include_bytes!("dtbs/virt-2.dtb");
const VIRT4: &[u8] = include_bytes!("dtbs/virt-4.dtb");
const AIA: &[u8] = include_bytes!("dtbs/virt-aia.dtb");
const APLIC: &[u8] = include_bytes!("dtbs/virt-aplic.dtb");
const VSSTC: &[u8] = include_bytes!("dtbs/virt-vsstc.dtb");
const NOH: &[u8] = include_bytes!("dtbs/virt-noh.dtb");
const LOADER: &[u8] = include_bytes!("dtbs/virt-loader.dtb");
const RESERVED: &[u8] = include_bytes!("dtbs/virt-reserved.dtb");
const ALL: &[&[u8]] = &[
    VIRT1, VIRT2, VIRT4, AIA, APLIC, VSSTC, NOH, LOADER, RESERVED,
];

fn r(start: u64, len: u64) -> HostRange {
    HostRange::new(HostPhysAddr::new(start), len).unwrap()
}

fn parse(b: &[u8]) -> MachineInfo {
    MachineInfo::parse(b).unwrap()
}

#[test]
fn hart_counts_memory_and_common_devices() {
    for (dtb, harts, mem) in [
        (VIRT1, 1, 2u64 << 30),
        (VIRT2, 2, 2 << 30),
        (VIRT4, 4, 4 << 30),
    ] {
        let m = parse(dtb);
        assert_eq!(m.cpus.len(), harts);
        assert_eq!(
            m.cpus.iter().map(|c| c.hart_id).collect::<Vec<_>>(),
            (0..harts as u64).collect::<Vec<_>>()
        );
        assert_eq!(m.memory, vec![r(0x8000_0000, mem)]);
        assert_eq!(m.timebase_frequency, 10_000_000);
        let uart = m.uart.as_ref().unwrap();
        assert_eq!(uart.base, HostPhysAddr::new(0x1000_0000));
        assert_eq!(uart.size, 0x100);
        assert_eq!(uart.clock_frequency, Some(3_686_400));
        assert_eq!(uart.interrupts, vec![10]);
        assert_eq!(m.test_device, Some(r(0x10_0000, 0x1000)));
        assert_eq!(m.stdout_path.as_deref(), Some("/soc/serial@10000000"));
        assert_eq!(m.model.as_deref(), Some("riscv-virtio,qemu"));
        assert!(m.kernel.is_none() && m.initrd.is_none());
        assert!(m.imsics.is_empty() && m.aplics.is_empty());
        let plic = m.plic.as_ref().unwrap();
        assert_eq!(plic.base, HostPhysAddr::new(0xc00_0000));
        assert_eq!(plic.ndev, 0x5f);
        // One M and one S context per hart.
        assert_eq!(plic.contexts.len(), 2 * harts);
        assert_eq!(plic.contexts[0], (0, 11));
        assert_eq!(plic.contexts[1], (0, 9));
        for c in &m.cpus {
            assert_eq!(c.mmu_type.as_deref(), Some("riscv,sv57"));
            assert!(c.intc_phandle.is_some());
            assert!(c.isa.as_deref().unwrap().starts_with("rv64imafdch"));
            assert_eq!(c.cbom_block_size, Some(64));
        }
        let e = m.isa;
        assert!(e.contains(IsaExtensions::H));
        assert!(e.contains(IsaExtensions::SSTC));
        assert!(e.contains(
            IsaExtensions::ZICBOM
                .union(IsaExtensions::ZICBOZ)
                .union(IsaExtensions::ZBB)
        ));
        assert!(e.contains(IsaExtensions::SVADU));
        assert!(!e.contains(IsaExtensions::V));
        assert!(!e.contains(IsaExtensions::SSAIA));
    }
}

#[test]
fn pci_ranges() {
    let m = parse(VIRT1);
    let pci = m.pci.unwrap();
    assert_eq!(pci.ecam, r(0x3000_0000, 0x1000_0000));
    assert_eq!(pci.bus_range, (0, 255));
    assert!(pci.dma_coherent);
    assert_eq!(pci.pci_domain, Some(0));
    assert_eq!(pci.ranges.len(), 3);
    let io = pci.ranges[0];
    assert_eq!(
        (io.space, io.pci_addr, io.cpu_addr.bits(), io.size),
        (PciSpace::Io, 0, 0x300_0000, 0x1_0000)
    );
    let m32 = pci.ranges[1];
    assert_eq!(
        (m32.space, m32.pci_addr, m32.cpu_addr.bits(), m32.size),
        (PciSpace::Mem32, 0x4000_0000, 0x4000_0000, 0x4000_0000)
    );
    let m64 = pci.ranges[2];
    assert_eq!(
        (m64.space, m64.pci_addr, m64.cpu_addr.bits(), m64.size),
        (PciSpace::Mem64, 0x4_0000_0000, 0x4_0000_0000, 0x4_0000_0000)
    );
    assert!(!m64.prefetchable);
}

#[test]
fn aia_imsic_and_aplic() {
    let m = parse(AIA);
    assert_eq!(m.cpus.len(), 4);
    assert!(m
        .isa
        .contains(IsaExtensions::SSAIA.union(IsaExtensions::SMAIA)));
    assert!(m.plic.is_none());
    assert_eq!(m.imsics.len(), 2);
    let s = m.s_imsic().unwrap();
    assert_eq!(s.regs, vec![r(0x2800_0000, 0x1_0000)]);
    assert_eq!(s.guest_index_bits, 2);
    assert_eq!(s.num_ids, 255);
    assert_eq!(s.hart_stride(), 0x4000);
    assert_eq!(s.harts, vec![0, 1, 2, 3]);
    assert_eq!(s.hart_file(1), Some(HostPhysAddr::new(0x2800_4000)));
    assert_eq!(s.hart_file(4), None);
    let mi = m.m_imsic().unwrap();
    assert_eq!(mi.regs, vec![r(0x2400_0000, 0x4000)]);
    assert_eq!(mi.hart_stride(), 0x1000);
    assert_eq!(mi.level, IrqLevel::Machine);
    assert_eq!(m.aplics.len(), 2);
    let s_aplic = m
        .aplics
        .iter()
        .find(|a| a.level == IrqLevel::Supervisor)
        .unwrap();
    assert_eq!(s_aplic.base, HostPhysAddr::new(0xd00_0000));
    assert_eq!(s_aplic.num_sources, 0x60);
    let m_aplic = m
        .aplics
        .iter()
        .find(|a| a.level == IrqLevel::Machine)
        .unwrap();
    assert_eq!(m_aplic.base, HostPhysAddr::new(0xc00_0000));
    assert_eq!(m_aplic.children, vec![s_aplic.phandle.unwrap()]);
    assert_eq!(m.pci.as_ref().unwrap().msi_parent, s.phandle);

    // Wired APLIC (no IMSIC): domains routed to the harts' intcs.
    let m = parse(APLIC);
    assert!(m.imsics.is_empty());
    assert_eq!(m.aplics.len(), 2);
    assert!(m.aplics.iter().any(|a| a.level == IrqLevel::Supervisor));
    assert!(m.aplics.iter().any(|a| a.level == IrqLevel::Machine));
}

#[test]
fn isa_variants() {
    let m = parse(VSSTC);
    assert!(m.isa.contains(
        IsaExtensions::V
            .union(IsaExtensions::SSTC)
            .union(IsaExtensions::ZKNH)
    ));
    assert!(!m.isa.contains(IsaExtensions::ZKND));
    let m = parse(NOH);
    assert!(!m.isa.contains(IsaExtensions::H));
    assert!(m.isa.contains(IsaExtensions::F.union(IsaExtensions::D)));
}

#[test]
fn guest_loader_modules() {
    let m = parse(LOADER);
    let k = m.kernel.as_ref().unwrap();
    assert_eq!(k.range, r(0xc020_0000, 3000));
    assert_eq!(k.bootargs.as_deref(), Some("console=hvc0 x=y"));
    let i = m.initrd.as_ref().unwrap();
    assert_eq!(i.range, r(0xc800_0000, 2000));
    assert_eq!(i.bootargs, None);
    assert_eq!(m.modules.len(), 2);
    assert!(m.bootargs.is_none());
}

#[test]
fn reserved_memory() {
    let m = parse(RESERVED);
    assert_eq!(m.mem_reservations, vec![r(0x8000_0000, 0x4_0000)]);
    assert_eq!(m.reserved.len(), 3);
    assert_eq!(m.reserved[0].name, "mmode_resv0@80000000");
    assert_eq!(m.reserved[0].range, r(0x8000_0000, 0x4_0000));
    assert!(m.reserved[0].no_map);
    assert_eq!(m.reserved[1].range, r(0x8004_0000, 0x2_0000));
    assert!(!m.reserved[2].no_map);
    assert_eq!(m.memory, vec![r(0x8000_0000, 2 << 30)]);
    for dtb in [VIRT1, AIA, LOADER] {
        let m = parse(dtb);
        assert!(m.reserved.is_empty() && m.mem_reservations.is_empty());
    }
}

// ----- host FDT ---------------------------------------------------------------

fn config() -> HostFdtConfig {
    HostFdtConfig {
        memory: vec![
            r(0x8020_0000 + (62 << 20), (2 << 30) - (64 << 20)),
            r(0x1_0000_0000, 1 << 20),
        ],
        reserved: vec![r(0x8000_0000, 0x20_0000), r(0x8020_0000, 62 << 20)],
        ..HostFdtConfig::default()
    }
}

fn prop_str<'a>(n: fdt::node::FdtNode<'_, 'a>, name: &str) -> Option<&'a str> {
    n.property(name).and_then(|p| p.as_str())
}

fn prop_u64(n: fdt::node::FdtNode<'_, '_>, name: &str) -> Option<u64> {
    n.property(name)
        .and_then(|p| p.as_usize())
        .map(|v| v as u64)
}

fn regs(n: fdt::node::FdtNode<'_, '_>) -> Vec<(u64, u64)> {
    n.reg()
        .unwrap()
        .map(|m| (m.starting_address as u64, m.size.unwrap() as u64))
        .collect()
}

#[test]
fn host_fdt_basic() {
    let m = parse(LOADER);
    let cfg = config();
    let dtb = build_host_fdt(&m, &cfg).unwrap();
    let f = fdt::Fdt::new(&dtb).unwrap();
    assert_eq!(f.root().model(), "riscv-virtio,salus-host");
    assert!(f.root().compatible().all().any(|c| c == "riscv-virtio"));

    let chosen = f.find_node("/chosen").unwrap();
    assert_eq!(prop_str(chosen, "bootargs"), Some("console=hvc0 x=y"));
    assert_eq!(prop_u64(chosen, "linux,initrd-start"), Some(0xc800_0000));
    assert_eq!(
        prop_u64(chosen, "linux,initrd-end"),
        Some(0xc800_0000 + 2000)
    );
    assert!(chosen.property("stdout-path").is_none());

    let mems: Vec<_> = f
        .all_nodes()
        .filter(|n| n.name.starts_with("memory@"))
        .flat_map(regs)
        .collect();
    let want: Vec<_> = cfg.memory.iter().map(|r| (r.start.bits(), r.len)).collect();
    assert_eq!(mems, want);

    let rm = f.find_node("/reserved-memory").unwrap();
    let res: Vec<_> = rm.children().collect();
    assert_eq!(res.len(), 2);
    for (n, want) in res.iter().zip(&cfg.reserved) {
        assert!(n.property("no-map").is_some());
        assert_eq!(regs(*n), vec![(want.start.bits(), want.len)]);
    }

    let cpus: Vec<_> = f.cpus().collect();
    assert_eq!(cpus.len(), 2);
    assert_eq!(f.cpus().next().unwrap().timebase_frequency(), 10_000_000);
    for c in &cpus {
        let isa = prop_str(
            c.property("riscv,isa")
                .map(|_| c_node(&f, c.ids().first()))
                .unwrap(),
            "riscv,isa",
        )
        .unwrap();
        let letters = isa.split('_').next().unwrap();
        assert_eq!(letters, "rv64imafdc", "{isa}");
        assert!(!isa.contains("_sh"), "{isa}");
        assert!(!isa.contains("_sm"), "{isa}");
        assert!(!isa.contains("ssaia"), "{isa}");
        assert!(isa.contains("_sstc"), "{isa}");
        let exts: Vec<&str> = c
            .property("riscv,isa-extensions")
            .unwrap()
            .value
            .split(|b| *b == 0)
            .filter(|s| !s.is_empty())
            .map(|s| std::str::from_utf8(s).unwrap())
            .collect();
        assert!(!exts.contains(&"h"));
        assert!(exts.contains(&"i") && exts.contains(&"zicbom"));
        assert!(!exts
            .iter()
            .any(|e| e.starts_with("sh") || e.starts_with("sm")));
        let node = c_node(&f, c.ids().first());
        assert_eq!(prop_str(node, "mmu-type"), Some("riscv,sv57"));
        let intc = node.children().next().unwrap();
        assert_eq!(intc.compatible().unwrap().first(), "riscv,cpu-intc");
        assert!(intc.property("phandle").is_some());
    }
    assert!(f.find_compatible(&["riscv,imsics"]).is_none());
    assert!(f.find_compatible(&["pci-host-ecam-generic"]).is_none());
    assert!(f.find_compatible(&["ns16550a"]).is_none());

    // The host tree parses with our own reader too.
    let h = MachineInfo::parse(&dtb).unwrap();
    assert_eq!(h.memory, cfg.memory);
    assert!(!h.isa.contains(IsaExtensions::H));
    assert_eq!(h.reserved.len(), 2);
}

fn c_node<'b, 'a>(f: &'b fdt::Fdt<'a>, id: usize) -> fdt::node::FdtNode<'b, 'a> {
    f.find_node("/cpus")
        .unwrap()
        .children()
        .find(|n| {
            n.reg()
                .and_then(|mut r| r.next())
                .map(|m| m.starting_address as usize)
                == Some(id)
        })
        .unwrap()
}

#[test]
fn host_fdt_with_imsic_pci_uart() {
    let m = parse(AIA);
    let cfg = HostFdtConfig {
        imsic: true,
        pci: true,
        uart: Some(HostUart {
            base: HostPhysAddr::new(0x1000_0000),
            size: 0x100,
            clock_frequency: 3_686_400,
        }),
        ..config()
    };
    let dtb = build_host_fdt(&m, &cfg).unwrap();
    let f = fdt::Fdt::new(&dtb).unwrap();
    let chosen = f.find_node("/chosen").unwrap();
    assert!(chosen.property("bootargs").is_none());
    assert!(chosen.property("linux,initrd-start").is_none());
    assert_eq!(
        prop_str(chosen, "stdout-path"),
        Some("/soc/serial@10000000")
    );
    let uart = f.find_node("/soc/serial@10000000").unwrap();
    assert!(uart.property("interrupts").is_none());
    assert_eq!(regs(uart), vec![(0x1000_0000, 0x100)]);

    let imsic = f.find_compatible(&["riscv,imsics"]).unwrap();
    assert_eq!(regs(imsic), vec![(0x2800_0000, 0x1_0000)]);
    assert!(imsic.property("msi-controller").is_some());
    assert_eq!(prop_u64(imsic, "riscv,guest-index-bits"), Some(2));
    assert_eq!(prop_u64(imsic, "riscv,num-ids"), Some(255));
    let ext = imsic.property("interrupts-extended").unwrap().value;
    let cells: Vec<u32> = ext
        .chunks(4)
        .map(|c| u32::from_be_bytes(c.try_into().unwrap()))
        .collect();
    assert_eq!(cells.len(), 8);
    for (i, pair) in cells.chunks(2).enumerate() {
        assert_eq!(pair[1], 9);
        let intc = c_node(&f, i).children().next().unwrap();
        assert_eq!(prop_u64(intc, "phandle"), Some(pair[0] as u64));
    }
    let imsic_ph = prop_u64(imsic, "phandle").unwrap();

    let pci = f.find_compatible(&["pci-host-ecam-generic"]).unwrap();
    assert_eq!(prop_u64(pci, "msi-parent"), Some(imsic_ph));
    assert!(pci.property("dma-coherent").is_some());
    assert_eq!(pci.property("ranges").unwrap().value.len(), 3 * 7 * 4);
    // The ranges decode back to the firmware's.
    let h = MachineInfo::parse(&dtb).unwrap();
    let (hp, fp) = (h.pci.clone().unwrap(), m.pci.clone().unwrap());
    assert_eq!(hp.ranges, fp.ranges);
    assert_eq!(hp.ecam, fp.ecam);
    assert_eq!(hp.bus_range, fp.bus_range);
    let hi = h.s_imsic().unwrap();
    assert_eq!(hi.harts, vec![0, 1, 2, 3]);
    assert_eq!(hi.regs, m.s_imsic().unwrap().regs);
    assert_eq!(h.uart.as_ref().unwrap().interrupts, Vec::<u32>::new());
    // ssaia is kept when the host has an IMSIC; smaia is not.
    assert!(h.isa.contains(IsaExtensions::SSAIA));
    assert!(!h.isa.contains(IsaExtensions::SMAIA));
}

#[test]
fn host_fdt_config_errors() {
    let m = parse(VIRT2);
    assert_eq!(
        build_host_fdt(
            &m,
            &HostFdtConfig {
                imsic: true,
                ..config()
            }
        ),
        Err(Error::Config("no S-level IMSIC"))
    );
    assert_eq!(
        build_host_fdt(
            &m,
            &HostFdtConfig {
                memory: vec![],
                ..config()
            }
        ),
        Err(Error::Config("no host memory"))
    );
    assert_eq!(
        build_host_fdt(
            &m,
            &HostFdtConfig {
                harts: Some(vec![7]),
                ..config()
            }
        ),
        Err(Error::Config("host hart not in machine"))
    );
    let dtb = build_host_fdt(
        &m,
        &HostFdtConfig {
            harts: Some(vec![1]),
            pci: true,
            ..config()
        },
    )
    .unwrap();
    let h = MachineInfo::parse(&dtb).unwrap();
    assert_eq!(h.cpus.len(), 1);
    assert_eq!(h.cpus[0].hart_id, 1);
    assert!(h.pci.is_some());
    assert!(h.pci.unwrap().msi_parent.is_none());
    assert!(h.reserved.iter().all(|r| r.no_map));
}

// ----- malformed input ----------------------------------------------------------

#[test]
fn truncated_and_garbage_are_errors() {
    for dtb in ALL {
        for len in [0, 3, 39, 40, 100, dtb.len() / 2, dtb.len() - 1] {
            assert!(MachineInfo::parse(&dtb[..len]).is_err(), "len {len}");
        }
    }
    assert_eq!(MachineInfo::parse(&[0u8; 64]), Err(Error::BadMagic));
    assert_eq!(MachineInfo::parse(&[0xd0, 0x0d]), Err(Error::Truncated));
    // A tree without /cpus or /memory is refused, not a panic.
    let mut bad = VIRT1.to_vec();
    let hdr =
        |b: &[u8], i: usize| u32::from_be_bytes(b[i * 4..i * 4 + 4].try_into().unwrap()) as usize;
    let (so, ss) = (hdr(&bad, 2), hdr(&bad, 9));
    // Corrupt the END token.
    bad[so + ss - 1] = 7;
    assert!(MachineInfo::parse(&bad).is_err());
}

#[test]
fn nop_tokens_are_tolerated() {
    // Replace the first property of the root node (#address-cells, 16
    // bytes: token, len, nameoff, value) with four NOPs, then the same
    // bytes back as a NOP-prefixed copy: the tree must still parse.
    let mut b = VIRT1.to_vec();
    let so = u32::from_be_bytes(b[8..12].try_into().unwrap()) as usize;
    // Root: BEGIN_NODE + empty name (8 bytes), then the first property.
    let p = so + 8;
    assert_eq!(&b[p..p + 4], &3u32.to_be_bytes());
    // Turn the (stale) model-unrelated first property into NOPs.
    let len = u32::from_be_bytes(b[p + 4..p + 8].try_into().unwrap()) as usize;
    let total = 12 + len.div_ceil(4) * 4;
    for w in (p..p + total).step_by(4) {
        b[w..w + 4].copy_from_slice(&4u32.to_be_bytes());
    }
    let m = MachineInfo::parse(&b).unwrap();
    assert_eq!(m.cpus.len(), 1);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn random_flips_never_panic(
        which in 0..ALL.len(),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
    ) {
        let mut b = ALL[which].to_vec();
        for (i, v) in flips {
            let i = i.index(b.len());
            b[i] ^= v;
        }
        let _ = MachineInfo::parse(&b);
    }

    #[test]
    fn random_header_and_struct_flips_never_panic(
        which in 0..ALL.len(),
        flips in proptest::collection::vec((0usize..600, any::<u8>()), 1..4),
        cut in any::<prop::sample::Index>(),
    ) {
        // Concentrate on the header and the first nodes, where offsets,
        // lengths and tokens live.
        let mut b = ALL[which].to_vec();
        for (i, v) in flips {
            b[i] ^= v;
        }
        let _ = MachineInfo::parse(&b);
        let _ = MachineInfo::parse(&b[..cut.index(b.len())]);
    }

    #[test]
    fn parsed_flipped_trees_build_or_fail_cleanly(
        which in 0..ALL.len(),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
    ) {
        let mut b = ALL[which].to_vec();
        for (i, v) in flips {
            let i = i.index(b.len());
            b[i] ^= v;
        }
        if let Ok(m) = MachineInfo::parse(&b) {
            let _ = build_host_fdt(&m, &HostFdtConfig { imsic: m.s_imsic().is_some(), pci: m.pci.is_some(), ..config() });
        }
    }
}

/// Writes a sample host DTB to $DUMP_HOST_DTB (manual inspection with dtc).
#[test]
fn dump_sample_host_dtb() {
    if let Ok(path) = std::env::var("DUMP_HOST_DTB") {
        let m = parse(AIA);
        let cfg = HostFdtConfig {
            imsic: true,
            pci: true,
            uart: Some(HostUart {
                base: HostPhysAddr::new(0x1000_0000),
                size: 0x100,
                clock_frequency: 3_686_400,
            }),
            ..config()
        };
        std::fs::write(path, build_host_fdt(&m, &cfg).unwrap()).unwrap();
    }
}

#[test]
fn rng_seed_reaches_the_host() {
    let m = parse(VIRT2);
    // QEMU puts 32 fresh bytes in every tree it makes.
    let seed = m.rng_seed.clone().expect("QEMU's /chosen/rng-seed");
    assert_eq!(seed.len(), 32);
    let dtb = build_host_fdt(&m, &config()).unwrap();
    let f = fdt::Fdt::new(&dtb).unwrap();
    let chosen = f.find_node("/chosen").unwrap();
    assert_eq!(
        chosen.property("rng-seed").map(|p| p.value),
        Some(&seed[..])
    );
    assert_eq!(parse(&dtb).rng_seed, Some(seed));
    // A stand-in UDS the firmware handed Salus never reaches the host.
    let secret = MachineInfo {
        uds: Some(vec![0xa5; 48]),
        ..m.clone()
    };
    let dtb = build_host_fdt(&secret, &config()).unwrap();
    assert!(!dtb.windows(9).any(|w| w == b"salus,uds"));
    assert!(!dtb.windows(48).any(|w| w == [0xa5; 48]));
    // No seed in, none out.
    let m = MachineInfo {
        rng_seed: None,
        ..m
    };
    let dtb = build_host_fdt(&m, &config()).unwrap();
    let f = fdt::Fdt::new(&dtb).unwrap();
    assert!(f
        .find_node("/chosen")
        .unwrap()
        .property("rng-seed")
        .is_none());
}

#[test]
fn host_pci_is_msi_only_without_intx_errors() {
    let m = parse(AIA);
    let cfg = HostFdtConfig {
        imsic: true,
        pci: true,
        ..config()
    };
    let dtb = build_host_fdt(&m, &cfg).unwrap();
    let f = fdt::Fdt::new(&dtb).unwrap();
    let pci = f.find_compatible(&["pci-host-ecam-generic"]).unwrap();
    // Linux's INTx lookup needs #interrupt-cells to say "no map" rather
    // than fail; no interrupt-map: MSI only.
    assert_eq!(prop_u64(pci, "#interrupt-cells"), Some(1));
    assert!(pci.property("interrupt-map").is_none());
    assert!(pci.property("msi-parent").is_some());
}
