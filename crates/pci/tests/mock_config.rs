//! Config-space tests against a mock built from byte arrays.

use std::collections::BTreeMap;

use pci::bar::{decode_bar, for_each_bar, size_bar, Bar};
use pci::caps::{
    CapabilityIter, MsiCapability, MsixCapability, PcieCapability, CAP_ID_MSIX, CAP_ID_PCIE,
};
use pci::{bridge_buses, set_bridge_buses, Bdf, BridgeBuses, ConfigAccess, Enumerator, HeaderType};

struct Func {
    cfg: [u8; 256],
    /// Writable bits per BAR dword (size mask); other BAR bits read-only.
    bar_wmask: [u32; 6],
}

#[derive(Default)]
struct MockEcam {
    funcs: BTreeMap<Bdf, Func>,
    /// Command register value observed at each BAR write.
    cmd_at_bar_write: Vec<u16>,
}

fn bdf(b: u8, d: u8, f: u8) -> Bdf {
    Bdf::new(b, d, f).unwrap()
}

impl Func {
    fn new(vendor: u16, device: u16, class: u32, header_type: u8) -> Self {
        let mut cfg = [0u8; 256];
        cfg[0..2].copy_from_slice(&vendor.to_le_bytes());
        cfg[2..4].copy_from_slice(&device.to_le_bytes());
        cfg[8..12].copy_from_slice(&class.to_le_bytes());
        cfg[0x0e] = header_type;
        Func {
            cfg,
            bar_wmask: [0; 6],
        }
    }
    fn w32(&mut self, off: usize, v: u32) -> &mut Self {
        self.cfg[off..off + 4].copy_from_slice(&v.to_le_bytes());
        self
    }
    fn r32(&self, off: usize) -> u32 {
        u32::from_le_bytes(self.cfg[off..off + 4].try_into().unwrap())
    }
    fn bar(&mut self, i: usize, value: u32, size_mask: u32) -> &mut Self {
        self.bar_wmask[i] = size_mask;
        self.w32(0x10 + i * 4, value)
    }
    /// Appends capability list entries `(offset, id, next)` and sets the
    /// status bit and pointer.
    fn caps(&mut self, first: u8, list: &[(u8, u8, u8)]) -> &mut Self {
        self.cfg[6] |= 0x10;
        self.cfg[0x34] = first;
        for &(off, id, next) in list {
            self.cfg[off as usize] = id;
            self.cfg[off as usize + 1] = next;
        }
        self
    }
}

impl ConfigAccess for MockEcam {
    fn read32(&mut self, b: Bdf, off: u16) -> u32 {
        assert_eq!(off % 4, 0);
        match self.funcs.get(&b) {
            Some(f) if (off as usize) < 256 => f.r32(off as usize),
            Some(_) => 0,
            None => 0xffff_ffff,
        }
    }
    fn write32(&mut self, b: Bdf, off: u16, v: u32) {
        assert_eq!(off % 4, 0);
        let Some(f) = self.funcs.get_mut(&b) else {
            return;
        };
        let off = off as usize;
        let bars = if f.cfg[0x0e] & 0x7f == 0 { 6 } else { 2 };
        if (0x10..0x10 + bars * 4).contains(&off) {
            let i = (off - 0x10) / 4;
            let cmd = u16::from_le_bytes([f.cfg[4], f.cfg[5]]);
            self.cmd_at_bar_write.push(cmd);
            let m = f.bar_wmask[i];
            let old = f.r32(off);
            f.w32(off, (old & !m) | (v & m));
        } else if off == 0x04 {
            // Command writable; status RW1C (we model no pending status).
            f.cfg[4..6].copy_from_slice(&(v as u16).to_le_bytes());
        } else if off < 0x40 && off != 0x18 {
            // Other header fields are read-only in this mock.
        } else if CAP_HEADERS.with(|h| h.borrow().contains(&(b, off))) {
            // Capability id / next pointer are read-only.
            let old = f.r32(off);
            f.w32(off, (v & 0xffff_0000) | (old & 0xffff));
        } else {
            f.w32(off, v);
        }
    }
}

thread_local! {
    static CAP_HEADERS: std::cell::RefCell<Vec<(Bdf, usize)>> = Default::default();
}

/// Bus 0: 00.0 host bridge; 01.0 endpoint with a 64-bit prefetchable BAR
/// (16 KiB), a 32-bit BAR (4 KiB), an I/O BAR (32 bytes), MSI-X + MSI +
/// PCIe capabilities; 02.0..02.3 multi-function (02.1 absent); 03.0 bridge
/// to bus 1 with 1:00.0 behind it; 04.0 endpoint with a looping capability
/// list; 05.1 present but 05.0 absent (must not be found).
fn machine() -> MockEcam {
    let mut m = MockEcam::default();
    m.funcs
        .insert(bdf(0, 0, 0), Func::new(0x1b36, 0x0008, 0x0600_0000, 0));

    let mut ep = Func::new(0x1b36, 0x0014, 0x0806_0001, 0);
    ep.bar(0, 0x0000_000c, 0xffff_c000) // 64-bit prefetchable, 16 KiB
        .bar(1, 0, 0xffff_ffff)
        .bar(2, 0x1000_0000, 0xffff_f000) // 32-bit, 4 KiB
        .bar(3, 0x0000_c001, 0x0000_ffe0) // I/O, 32 bytes, 16-bit decode
        .caps(
            0x40,
            &[(0x40, 0x11, 0x50), (0x50, 0x05, 0x70), (0x70, 0x10, 0x00)],
        );
    // MSI-X: 5 vectors (size-1 = 4), table BAR0 + 0x300, PBA BAR0 + 0x400.
    ep.w32(0x40, 0x0004_5011).w32(0x44, 0x300).w32(0x48, 0x400);
    // MSI: 64-bit, per-vector masking, 4 vectors capable.
    ep.w32(0x50, (0x0184 << 16) | 0x7005);
    // PCIe v2 endpoint (type 0).
    ep.w32(0x70, (0x0002 << 16) | 0x0010);
    ep.w32(0x04, 0x0010_0006); // mem + bus master enabled, cap list
    m.funcs.insert(bdf(0, 1, 0), ep);

    m.funcs
        .insert(bdf(0, 2, 0), Func::new(0x8086, 0x1000, 0x0200_0000, 0x80));
    m.funcs
        .insert(bdf(0, 2, 2), Func::new(0x8086, 0x1002, 0x0200_0000, 0));
    m.funcs
        .insert(bdf(0, 2, 3), Func::new(0x8086, 0x1003, 0x0200_0000, 0));

    let mut br = Func::new(0x1b36, 0x000c, 0x0604_0000, 0x01);
    br.w32(0x18, 0x0001_0100); // primary 0, secondary 1, subordinate 1
    m.funcs.insert(bdf(0, 3, 0), br);
    m.funcs
        .insert(bdf(1, 0, 0), Func::new(0x1af4, 0x1041, 0x0200_0000, 0));

    let mut lp = Func::new(0xdead, 0xbeef, 0xff00_0000, 0);
    lp.caps(0x40, &[(0x40, 0x09, 0x60), (0x60, 0x09, 0x40)]);
    m.funcs.insert(bdf(0, 4, 0), lp);

    m.funcs
        .insert(bdf(0, 5, 1), Func::new(0x1234, 0x5678, 0, 0));
    CAP_HEADERS.with(|h| {
        let mut h = h.borrow_mut();
        for (b, offs) in [
            (bdf(0, 1, 0), vec![0x40, 0x50, 0x70]),
            (bdf(0, 4, 0), vec![0x40, 0x60]),
        ] {
            for o in offs {
                h.push((b, o));
            }
        }
    });
    m
}

#[test]
fn enumeration_skips_absent_and_follows_multifunction() {
    let mut m = machine();
    let found: Vec<_> = Enumerator::new(&mut m, 0, 255)
        .map(|f| (f.bdf, f.vendor_id, f.device_id))
        .collect();
    assert_eq!(
        found,
        vec![
            (bdf(0, 0, 0), 0x1b36, 0x0008),
            (bdf(0, 1, 0), 0x1b36, 0x0014),
            (bdf(0, 2, 0), 0x8086, 0x1000),
            (bdf(0, 2, 2), 0x8086, 0x1002),
            (bdf(0, 2, 3), 0x8086, 0x1003),
            (bdf(0, 3, 0), 0x1b36, 0x000c),
            (bdf(0, 4, 0), 0xdead, 0xbeef),
            (bdf(1, 0, 0), 0x1af4, 0x1041),
        ]
    );
    let iommu = Enumerator::new(&mut m, 0, 0)
        .find(|f| f.vendor_id == 0x1b36 && f.device_id == 0x0014)
        .unwrap();
    assert_eq!((iommu.class.base, iommu.class.sub), pci::ClassCode::IOMMU);
    assert_eq!(iommu.revision, 1);
    assert_eq!(iommu.header_type, HeaderType::Endpoint);
    assert_eq!(Enumerator::new(&mut m, 1, 1).count(), 1);
    assert_eq!(Enumerator::new(&mut m, 2, 255).count(), 0);
}

#[test]
fn bridge_bus_numbers() {
    let mut m = machine();
    let b = bdf(0, 3, 0);
    assert_eq!(
        bridge_buses(&mut m, b),
        BridgeBuses {
            primary: 0,
            secondary: 1,
            subordinate: 1
        }
    );
    set_bridge_buses(
        &mut m,
        b,
        BridgeBuses {
            primary: 0,
            secondary: 2,
            subordinate: 5,
        },
    );
    assert_eq!(bridge_buses(&mut m, b).subordinate, 5);
    assert_eq!(
        pci::FunctionInfo::read(&mut m, b).unwrap().header_type,
        HeaderType::Bridge
    );
}

#[test]
fn bar_decoding_and_sizing_restores_values() {
    let mut m = machine();
    let ep = bdf(0, 1, 0);
    let before: Vec<u32> = (0..6).map(|i| m.read32(ep, 0x10 + i * 4)).collect();
    let cmd_before = m.read32(ep, 4) & 0xffff;

    assert_eq!(
        decode_bar(&mut m, ep, 0),
        Ok(Bar::Mem64 {
            addr: 0,
            prefetchable: true
        })
    );
    let mut bars = vec![];
    for_each_bar(&mut m, ep, |b| bars.push(b)).unwrap();
    assert_eq!(bars.len(), 3);
    assert_eq!((bars[0].index, bars[0].size), (0, 0x4000));
    assert_eq!(
        bars[1].bar,
        Bar::Mem32 {
            addr: 0x1000_0000,
            prefetchable: false
        }
    );
    assert_eq!((bars[1].index, bars[1].size), (2, 0x1000));
    assert_eq!(bars[2].bar, Bar::Io { port: 0xc000 });
    assert_eq!(bars[2].size, 32);

    // Every value restored, decode re-enabled, and decoding was off while
    // the BARs held all ones.
    let after: Vec<u32> = (0..6).map(|i| m.read32(ep, 0x10 + i * 4)).collect();
    assert_eq!(before, after);
    assert_eq!(m.read32(ep, 4) & 0xffff, cmd_before);
    assert!(!m.cmd_at_bar_write.is_empty());
    assert!(m.cmd_at_bar_write.iter().all(|c| c & 0x3 == 0));

    // Unimplemented BAR sizes to 0; upper half of a 64-bit BAR decodes as
    // whatever it holds but for_each_bar skipped it.
    assert_eq!(size_bar(&mut m, ep, 4).unwrap().size, 0);
    assert_eq!(
        decode_bar(&mut m, ep, 6),
        Err(pci::PciError::BadBarIndex(6))
    );
    assert_eq!(
        decode_bar(&mut m, bdf(9, 0, 0), 0),
        Err(pci::PciError::NoDevice)
    );

    pci::bar::set_bar_addr(&mut m, ep, 0, 0x1_0000_0000).unwrap();
    assert_eq!(decode_bar(&mut m, ep, 0).unwrap().addr(), 0x1_0000_0000);
}

#[test]
fn capability_walk_and_parsing() {
    let mut m = machine();
    let ep = bdf(0, 1, 0);
    let mut it = CapabilityIter::new(&mut m, ep);
    let ids: Vec<_> = it.by_ref().map(|c| (c.offset, c.id)).collect();
    assert_eq!(ids, vec![(0x40, 0x11), (0x50, 0x05), (0x70, 0x10)]);
    assert!(!it.looped());

    let x = MsixCapability::find(&mut m, ep).unwrap();
    assert_eq!(x.offset, 0x40);
    assert_eq!(x.table_size, 5);
    assert_eq!((x.table_bir, x.table_offset), (0, 0x300));
    assert_eq!((x.pba_bir, x.pba_offset), (0, 0x400));
    assert!(!x.enabled && !x.function_masked);
    assert_eq!(x.entry_offset(2), 0x320);
    x.set_control(&mut m, ep, true, true);
    let x2 = MsixCapability::find(&mut m, ep).unwrap();
    assert!(x2.enabled && x2.function_masked);
    assert_eq!(x2.table_size, 5, "size field untouched");

    let msi = MsiCapability::find(&mut m, ep).unwrap();
    assert!(msi.is_64bit && msi.per_vector_masking && !msi.enabled);
    assert_eq!(msi.multi_message_capable, 2);
    assert_eq!(msi.data_offset(), 0x5c);
    assert_eq!(msi.mask_offset(), Some(0x60));
    assert!(msi.program(&mut m, ep, 0x2800_0000, 0x21));
    assert_eq!(m.read32(ep, 0x54), 0x2800_0000);
    assert_eq!(m.read32(ep, 0x5c) & 0xffff, 0x21);
    assert!(MsiCapability::find(&mut m, ep).unwrap().enabled);

    let pcie = PcieCapability::find(&mut m, ep).unwrap();
    assert_eq!((pcie.offset, pcie.version, pcie.port_type), (0x70, 2, 0));
    assert!(pci::caps::find_capability(&mut m, ep, CAP_ID_PCIE).is_some());
    assert!(PcieCapability::find(&mut m, bdf(0, 0, 0)).is_none());
    assert!(pci::caps::find_capability(&mut m, bdf(0, 4, 0), CAP_ID_MSIX).is_none());
}

#[test]
fn looping_capability_list_terminates() {
    let mut m = machine();
    let mut it = CapabilityIter::new(&mut m, bdf(0, 4, 0));
    let caps: Vec<_> = it.by_ref().collect();
    assert_eq!(caps.len(), 2);
    assert!(it.looped());

    // Self-loop, pointer into the header, and absent device.
    let mut f = Func::new(1, 2, 0, 0);
    f.caps(0x80, &[(0x80, 0x01, 0x80)]);
    m.funcs.insert(bdf(0, 6, 0), f);
    let mut it = CapabilityIter::new(&mut m, bdf(0, 6, 0));
    assert_eq!(it.by_ref().count(), 1);
    assert!(it.looped());
    let mut f = Func::new(1, 2, 0, 0);
    f.caps(0x80, &[(0x80, 0x01, 0x10)]);
    m.funcs.insert(bdf(0, 7, 0), f);
    let mut it = CapabilityIter::new(&mut m, bdf(0, 7, 0));
    assert_eq!(it.by_ref().count(), 1);
    assert!(it.looped());
    assert_eq!(CapabilityIter::new(&mut m, bdf(7, 0, 0)).count(), 0);
}

mod prop {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Arbitrary bytes as a capability area: the walk always ends
        /// within MAX_CAPS steps and never revisits an offset.
        #[test]
        fn walk_terminates(bytes in proptest::collection::vec(any::<u8>(), 192), start in any::<u8>()) {
            let mut m = MockEcam::default();
            let mut f = Func::new(1, 2, 0, 0);
            f.cfg[0x40..].copy_from_slice(&bytes);
            f.cfg[6] |= 0x10;
            f.cfg[0x34] = start;
            m.funcs.insert(bdf(0, 0, 0), f);
            let offs: Vec<u8> = CapabilityIter::new(&mut m, bdf(0, 0, 0)).map(|c| c.offset).collect();
            prop_assert!(offs.len() <= pci::caps::MAX_CAPS);
            let mut sorted = offs.clone();
            sorted.sort();
            sorted.dedup();
            prop_assert_eq!(sorted.len(), offs.len());
            prop_assert!(offs.iter().all(|o| *o >= 0x40 && o % 4 == 0));
        }

        #[test]
        fn ecam_roundtrip(b in any::<u8>(), d in 0u8..32, f in 0u8..8) {
            let x = Bdf::new(b, d, f).unwrap();
            prop_assert_eq!(Bdf::from_ecam_offset(x.ecam_offset()), Some(x));
            prop_assert_eq!(Bdf::from_routing_id(x.routing_id()), x);
        }
    }
}
