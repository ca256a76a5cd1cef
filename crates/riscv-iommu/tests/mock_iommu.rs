//! End-to-end driver tests against a simulated IOMMU: a register file plus
//! physical memory, consuming the command queue the way the spec describes.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use hyp_addr::{GuestPhysAddr, HostPhysAddr};
use riscv_iommu::command::Command;
use riscv_iommu::ddt::{DeviceContext, GStageMode, Iohgatp, MsiPtMode};
use riscv_iommu::driver::{probe, DdtChoice, WaitFor};
use riscv_iommu::fault::{FaultCause, FaultRecord, TransactionType};
use riscv_iommu::msi::MsiAddrMatch;
use riscv_iommu::regs::{cqcsr, fqcsr, offset, IommuMode};
use riscv_iommu::{
    AttachConfig, DcFormat, DmaMemory, Error, InitConfig, Iommu, IommuRegs, MsiRedirect,
};

/// QEMU 10 riscv-iommu-pci default `capabilities`.
const QEMU_CAPS: u64 = 0x78_c2cf_0f10;

#[derive(Default)]
struct Sim {
    caps: u64,
    fctl: u32,
    ddtp: u64,
    cqb: u64,
    cqh: u32,
    cqt: u32,
    cqcsr: u32,
    fqb: u64,
    fqh: u32,
    fqt: u32,
    fqcsr: u32,
    /// Reads of `ddtp` that still report busy after a write.
    ddtp_busy_reads: u32,
    /// Physical memory, 8-byte words.
    mem: BTreeMap<u64, u64>,
    next_page: u64,
    pages_allocated: usize,
    page_limit: usize,
    /// Commands executed, in order.
    log: Vec<Command>,
    /// Fences are fetched but never complete.
    stall_fences: bool,
    /// IODIR commands are treated as illegal.
    reject_iodir: bool,
    /// IOTINVAL commands are treated as illegal.
    reject_iotinval: bool,
    /// Modes the simulated `ddtp` accepts.
    ddt_modes: Vec<u64>,
}

impl Sim {
    fn new(caps: u64) -> Rc<RefCell<Sim>> {
        Rc::new(RefCell::new(Sim {
            caps,
            ddtp: 0x1234 << 10, // Off, stale PPN from firmware
            next_page: 0x8000_0000,
            page_limit: usize::MAX,
            ddt_modes: vec![0, 1, 2, 3, 4],
            ..Default::default()
        }))
    }

    fn rd(&self, a: u64) -> u64 {
        assert_eq!(a % 8, 0, "unaligned 8-byte access {a:#x}");
        *self.mem.get(&a).unwrap_or(&0)
    }

    fn wr(&mut self, a: u64, v: u64) {
        assert_eq!(a % 8, 0);
        self.mem.insert(a, v);
    }

    fn wr32(&mut self, a: u64, v: u32) {
        assert_eq!(a % 4, 0);
        let base = a & !7;
        let shift = (a & 4) * 8;
        let old = self.rd(base);
        self.wr(
            base,
            (old & !(0xffff_ffffu64 << shift)) | (v as u64) << shift,
        );
    }

    fn cq_mask(&self) -> u32 {
        ((2u64 << (self.cqb & 0x1f)) - 1) as u32
    }

    fn fq_mask(&self) -> u32 {
        ((2u64 << (self.fqb & 0x1f)) - 1) as u32
    }

    fn process_cq(&mut self) {
        if self.cqcsr & cqcsr::CQON == 0 || self.cqcsr & cqcsr::ERRORS != 0 {
            return;
        }
        let base = ((self.cqb >> 10) & ((1 << 44) - 1)) << 12;
        while self.cqh != self.cqt {
            let a = base + self.cqh as u64 * 16;
            let w = [self.rd(a), self.rd(a + 8)];
            let cmd = match Command::decode(w) {
                Ok(c) => c,
                Err(_) => {
                    self.cqcsr |= cqcsr::CMD_ILL;
                    return;
                }
            };
            match cmd {
                Command::IofenceC { completion, .. } => {
                    if self.stall_fences {
                        return;
                    }
                    if let Some((addr, data)) = completion {
                        self.wr32(addr, data);
                    }
                }
                Command::IotinvalGvma { .. } if self.reject_iotinval => {
                    self.cqcsr |= cqcsr::CMD_ILL;
                    return;
                }
                Command::IodirInvalDdt { .. } | Command::IodirInvalPdt { .. }
                    if self.reject_iodir =>
                {
                    self.cqcsr |= cqcsr::CMD_ILL;
                    return;
                }
                _ => {}
            }
            self.log.push(cmd);
            self.cqh = (self.cqh + 1) & self.cq_mask();
        }
    }

    /// Records a fault the way the IOMMU would.
    fn raise_fault(&mut self, rec: &FaultRecord) {
        let mask = self.fq_mask();
        if (self.fqt + 1) & mask == self.fqh {
            self.fqcsr |= fqcsr::FQOF;
            return;
        }
        let base = ((self.fqb >> 10) & ((1 << 44) - 1)) << 12;
        let a = base + self.fqt as u64 * 32;
        for (i, w) in rec.encode().iter().enumerate() {
            self.wr(a + i as u64 * 8, *w);
        }
        self.fqt = (self.fqt + 1) & mask;
    }

    /// Independent DDT walk following the spec's "process to locate the
    /// device-context" for the extended format.
    fn walk_ext(&self, device_id: u32) -> Option<[u64; 8]> {
        let levels = match self.ddtp & 0xf {
            2 => 1,
            3 => 2,
            4 => 3,
            _ => return None,
        };
        let ddi = [
            device_id & 0x3f,
            (device_id >> 6) & 0x1ff,
            (device_id >> 15) & 0x1ff,
        ];
        let mut a = ((self.ddtp >> 10) & ((1 << 44) - 1)) << 12;
        for i in (1..levels).rev() {
            let e = self.rd(a + ddi[i] as u64 * 8);
            if e & 1 == 0 {
                return None;
            }
            a = ((e >> 10) & ((1 << 44) - 1)) << 12;
        }
        let dc = a + ddi[0] as u64 * 64;
        let mut w = [0; 8];
        for (i, x) in w.iter_mut().enumerate() {
            *x = self.rd(dc + i as u64 * 8);
        }
        Some(w)
    }
}

struct Regs(Rc<RefCell<Sim>>);
struct Mem(Rc<RefCell<Sim>>);

impl IommuRegs for Regs {
    fn read32(&mut self, off: usize) -> u32 {
        let s = self.0.borrow();
        match off {
            offset::FCTL => s.fctl,
            offset::CQH => s.cqh,
            offset::CQT => s.cqt,
            offset::FQH => s.fqh,
            offset::FQT => s.fqt,
            offset::CQCSR => s.cqcsr,
            offset::FQCSR => s.fqcsr,
            _ => panic!("read32 of {off:#x}"),
        }
    }
    fn read64(&mut self, off: usize) -> u64 {
        let mut s = self.0.borrow_mut();
        match off {
            offset::CAPABILITIES => s.caps,
            offset::DDTP => {
                if s.ddtp_busy_reads > 0 {
                    s.ddtp_busy_reads -= 1;
                    s.ddtp | 1 << 4
                } else {
                    s.ddtp
                }
            }
            offset::CQB => s.cqb,
            offset::FQB => s.fqb,
            _ => panic!("read64 of {off:#x}"),
        }
    }
    fn write32(&mut self, off: usize, v: u32) {
        let mut s = self.0.borrow_mut();
        match off {
            offset::FCTL => {
                assert_eq!(s.ddtp & 0xf, 0, "fctl written while not Off");
                s.fctl = v & 0x2; // BE hard-wired to 0 like QEMU
            }
            offset::CQT => {
                let m = s.cq_mask();
                s.cqt = v & m;
                s.process_cq();
            }
            offset::FQH => {
                let m = s.fq_mask();
                s.fqh = v & m;
            }
            offset::CQCSR => {
                let errors = s.cqcsr & cqcsr::ERRORS & !(v & cqcsr::ERRORS);
                if v & cqcsr::CQEN != 0 && s.cqcsr & cqcsr::CQON == 0 {
                    s.cqh = 0;
                    s.cqt = 0;
                    s.cqcsr = cqcsr::CQEN | cqcsr::CQON;
                } else if v & cqcsr::CQEN == 0 {
                    s.cqcsr = errors;
                } else {
                    s.cqcsr = (s.cqcsr & !cqcsr::ERRORS) | errors;
                }
            }
            offset::FQCSR => {
                let errors = s.fqcsr & fqcsr::ERRORS & !(v & fqcsr::ERRORS);
                if v & fqcsr::FQEN != 0 && s.fqcsr & fqcsr::FQON == 0 {
                    s.fqh = 0;
                    s.fqt = 0;
                    s.fqcsr = fqcsr::FQEN | fqcsr::FQON;
                } else if v & fqcsr::FQEN == 0 {
                    s.fqcsr = 0;
                } else {
                    s.fqcsr = (s.fqcsr & !fqcsr::ERRORS) | errors;
                }
            }
            _ => panic!("write32 of {off:#x}"),
        }
    }
    fn write64(&mut self, off: usize, v: u64) {
        let mut s = self.0.borrow_mut();
        match off {
            offset::DDTP => {
                assert_eq!(s.ddtp_busy_reads, 0, "ddtp written while busy");
                let new_mode = v & 0xf;
                let old_mode = s.ddtp & 0xf;
                if new_mode >= 2 {
                    assert!(old_mode <= 1, "directory mode entered from mode {old_mode}");
                }
                if new_mode == 0 && old_mode != 0 {
                    assert_eq!(v >> 10, s.ddtp >> 10, "PPN changed while turning Off");
                }
                if s.ddt_modes.contains(&new_mode) {
                    s.ddtp = v & (0xf | (((1u64 << 44) - 1) << 10));
                }
                s.ddtp_busy_reads = 3;
            }
            offset::CQB => {
                assert_eq!(s.cqcsr & cqcsr::CQON, 0);
                s.cqb = v;
            }
            offset::FQB => {
                assert_eq!(s.fqcsr & fqcsr::FQON, 0);
                s.fqb = v;
            }
            _ => panic!("write64 of {off:#x}"),
        }
    }
}

impl DmaMemory for Mem {
    fn alloc_zeroed_page(&mut self) -> Option<HostPhysAddr> {
        let mut s = self.0.borrow_mut();
        if s.pages_allocated >= s.page_limit {
            return None;
        }
        s.pages_allocated += 1;
        let p = s.next_page;
        s.next_page += 4096;
        Some(HostPhysAddr::new(p))
    }
    fn read_u64(&mut self, a: HostPhysAddr) -> u64 {
        self.0.borrow().rd(a.bits())
    }
    fn write_u64(&mut self, a: HostPhysAddr, v: u64) {
        self.0.borrow_mut().wr(a.bits(), v)
    }
}

type Setup = (Rc<RefCell<Sim>>, Result<Iommu<Regs, Mem>, Error>);

fn setup(caps: u64, cfg: InitConfig) -> Setup {
    let sim = Sim::new(caps);
    let r = Iommu::init(Regs(sim.clone()), Mem(sim.clone()), cfg);
    (sim, r)
}

fn vm_attach(gscid: u16) -> AttachConfig {
    AttachConfig {
        iohgatp: Iohgatp::new(GStageMode::Sv48x4, gscid, HostPhysAddr::new(0x9000_0000)),
        msi: Some(MsiRedirect {
            table: HostPhysAddr::new(0x9100_0000),
            addr_match: MsiAddrMatch {
                mask: 0x7,
                pattern: 0x28000,
            },
        }),
    }
}

#[test]
fn probe_accepts_qemu_and_rejects_bad() {
    let sim = Sim::new(QEMU_CAPS);
    let caps = probe(&mut Regs(sim)).unwrap();
    assert_eq!(caps.bits(), QEMU_CAPS);
    assert!(caps.msi_flat() && !caps.amo_hwad());

    let v2 = (QEMU_CAPS & !0xff) | 0x20;
    assert_eq!(
        probe(&mut Regs(Sim::new(v2))),
        Err(Error::UnsupportedVersion(0x20))
    );
    let no_g = QEMU_CAPS & !(0xf << 16);
    assert_eq!(
        probe(&mut Regs(Sim::new(no_g))),
        Err(Error::MissingFeature("Sv39x4/Sv48x4"))
    );
    let bad_igs = QEMU_CAPS | 3 << 28;
    assert_eq!(
        probe(&mut Regs(Sim::new(bad_igs))),
        Err(Error::MissingFeature("IGS"))
    );
}

#[test]
fn init_programs_queues_and_directory() {
    let (sim, r) = setup(QEMU_CAPS, InitConfig::default());
    let iommu = r.unwrap();
    assert_eq!(iommu.mode(), IommuMode::TwoLevel);
    assert_eq!(iommu.dc_format(), DcFormat::Extended);
    let s = sim.borrow();
    assert_eq!(s.ddtp & 0xf, 3);
    assert_eq!(
        HostPhysAddr::new(((s.ddtp >> 10) & ((1 << 44) - 1)) << 12),
        iommu.ddt_root()
    );
    assert_eq!(s.cqb & 0x1f, 7, "256-entry command queue");
    assert_eq!(s.fqb & 0x1f, 6, "128-entry fault queue");
    assert_eq!(s.cqcsr, cqcsr::CQEN | cqcsr::CQON);
    assert_eq!(s.fqcsr, fqcsr::FQEN | fqcsr::FQON);
    assert_eq!(s.fctl, 0, "IGS=MSI: fctl.WSI stays 0");
    // Global flush then a fence.
    assert_eq!(s.log.len(), 4);
    assert_eq!(s.log[0], Command::IodirInvalDdt { device_id: None });
    assert!(matches!(
        s.log[3],
        Command::IofenceC {
            completion: Some(_),
            ..
        }
    ));
    assert_eq!(s.cqh, s.cqt);
}

#[test]
fn attach_builds_directory_and_dc() {
    let (sim, r) = setup(QEMU_CAPS, InitConfig::default());
    let mut iommu = r.unwrap();
    let pages_before = sim.borrow().pages_allocated;
    // 00:02.0 -> device id 0x10; 00:1f.7 -> 0xff (second leaf page).
    iommu.attach_device(0x10, &vm_attach(3)).unwrap();
    iommu.attach_device(0x11, &vm_attach(3)).unwrap();
    assert_eq!(
        sim.borrow().pages_allocated,
        pages_before + 1,
        "one leaf page"
    );
    iommu.attach_device(0xff, &vm_attach(4)).unwrap();
    assert_eq!(sim.borrow().pages_allocated, pages_before + 2);

    let s = sim.borrow();
    let w = s.walk_ext(0x10).expect("DC reachable");
    let dc = DeviceContext::decode(&w, DcFormat::Extended).unwrap();
    assert!(dc.tc.v && !dc.tc.gade && !dc.tc.sade && !dc.tc.pdtv && !dc.tc.sbe);
    assert_eq!(dc.iohgatp.gscid, 3);
    assert_eq!(dc.iohgatp.mode, GStageMode::Sv48x4);
    assert_eq!(dc.iohgatp.root(), HostPhysAddr::new(0x9000_0000));
    assert_eq!(dc.msiptp.mode, MsiPtMode::Flat);
    assert_eq!(dc.msiptp.table(), HostPhysAddr::new(0x9100_0000));
    assert_eq!((dc.msi_addr_mask, dc.msi_addr_pattern), (7, 0x28000));
    assert_eq!(w[0], 1, "tc = V only");
    assert_eq!(
        DeviceContext::decode(&s.walk_ext(0xff).unwrap(), DcFormat::Extended)
            .unwrap()
            .iohgatp
            .gscid,
        4
    );
    assert!(s.walk_ext(0x12).map(|w| w[0] & 1 == 0).unwrap_or(true));

    // Each attach: IODIR.INVAL_DDT(DID) + IOFENCE.C.
    let n = s.log.len();
    assert_eq!(
        s.log[n - 2],
        Command::IodirInvalDdt {
            device_id: Some(0xff)
        }
    );
    assert!(matches!(
        s.log[n - 1],
        Command::IofenceC {
            completion: Some(_),
            pr: true,
            pw: true,
            ..
        }
    ));
}

#[test]
fn reattach_invalidates_first_and_detach_clears_valid() {
    let (sim, r) = setup(QEMU_CAPS, InitConfig::default());
    let mut iommu = r.unwrap();
    iommu.attach_device(0x10, &vm_attach(1)).unwrap();
    let n0 = sim.borrow().log.len();
    iommu.attach_device(0x10, &vm_attach(2)).unwrap();
    assert_eq!(
        sim.borrow().log.len(),
        n0 + 4,
        "invalidate old DC, then publish new"
    );
    assert_eq!(
        iommu.read_device_context(0x10).unwrap().unwrap()[1] >> 44 & 0xffff,
        2
    );

    iommu.detach_device(0x10).unwrap();
    assert_eq!(sim.borrow().walk_ext(0x10).unwrap()[0] & 1, 0);
    assert_eq!(iommu.detach_device(0x10), Err(Error::NotAttached(0x10)));
    assert_eq!(iommu.detach_device(0x80), Err(Error::NotAttached(0x80)));
}

#[test]
fn attach_validation() {
    let (_sim, r) = setup(QEMU_CAPS, InitConfig::default());
    let mut iommu = r.unwrap();
    assert_eq!(
        iommu.attach_device(0x8000, &vm_attach(1)),
        Err(Error::DeviceIdOutOfRange {
            device_id: 0x8000,
            mode: IommuMode::TwoLevel
        })
    );
    let mut bad = vm_attach(1);
    bad.iohgatp = Iohgatp::new(GStageMode::Sv48x4, 1, HostPhysAddr::new(0x9000_1000));
    assert_eq!(
        iommu.attach_device(1, &bad),
        Err(Error::MisalignedGStageRoot(HostPhysAddr::new(0x9000_1000)))
    );
    let mut bad = vm_attach(1);
    bad.msi.as_mut().unwrap().table = HostPhysAddr::new(0x9100_0080);
    assert_eq!(iommu.attach_device(1, &bad), Err(Error::InvalidMsiConfig));
    // 512 interrupt files need an 8 KiB table aligned to 8 KiB.
    let mut bad = vm_attach(1);
    bad.msi.as_mut().unwrap().addr_match.mask = 0x1ff;
    bad.msi.as_mut().unwrap().table = HostPhysAddr::new(0x9100_1000);
    assert_eq!(iommu.attach_device(1, &bad), Err(Error::InvalidMsiConfig));
}

#[test]
fn base_format_without_msi_flat() {
    let caps = QEMU_CAPS & !(3 << 22); // no MSI_FLAT / MSI_MRIF
    let (sim, r) = setup(caps, InitConfig::default());
    let mut iommu = r.unwrap();
    assert_eq!(iommu.dc_format(), DcFormat::Base);
    assert_eq!(iommu.mode(), IommuMode::TwoLevel, "0xff needs 8 bits > 7");
    assert_eq!(
        iommu.attach_device(5, &vm_attach(1)),
        Err(Error::MsiUnsupported)
    );
    let cfg = AttachConfig {
        iohgatp: Iohgatp::new(GStageMode::Sv39x4, 9, HostPhysAddr::new(0x9000_4000)),
        msi: None,
    };
    iommu.attach_device(0x85, &cfg).unwrap();
    // Base format: DDI0 = id[6:0] (32-byte DCs), DDI1 = id[15:7].
    let s = sim.borrow();
    let root = ((s.ddtp >> 10) & ((1 << 44) - 1)) << 12;
    let nl = s.rd(root + 8);
    assert_eq!(nl & 1, 1);
    let dc = (((nl >> 10) & ((1 << 44) - 1)) << 12) + 5 * 32;
    assert_eq!(s.rd(dc), 1);
    assert_eq!(
        s.rd(dc + 8),
        Iohgatp::new(GStageMode::Sv39x4, 9, HostPhysAddr::new(0x9000_4000)).bits()
    );
}

#[test]
fn fixed_and_fitted_modes() {
    let (_s, r) = setup(
        QEMU_CAPS,
        InitConfig {
            ddt: DdtChoice::Fit {
                max_device_id: 0xffff,
            },
            ..Default::default()
        },
    );
    assert_eq!(r.unwrap().mode(), IommuMode::ThreeLevel);
    let (_s, r) = setup(
        QEMU_CAPS,
        InitConfig {
            ddt: DdtChoice::Fixed(IommuMode::OneLevel),
            ..Default::default()
        },
    );
    let mut one = r.unwrap();
    one.attach_device(63, &vm_attach(1)).unwrap();
    assert!(matches!(
        one.attach_device(64, &vm_attach(1)),
        Err(Error::DeviceIdOutOfRange { .. })
    ));

    // Hardware without 3-level support: WARL read-back mismatch is an error
    // and the IOMMU is left Off.
    let sim = Sim::new(QEMU_CAPS);
    sim.borrow_mut().ddt_modes = vec![0, 1, 2, 3];
    let r = Iommu::init(
        Regs(sim.clone()),
        Mem(sim.clone()),
        InitConfig {
            ddt: DdtChoice::Fixed(IommuMode::ThreeLevel),
            ..Default::default()
        },
    );
    assert!(matches!(
        r,
        Err(Error::DdtModeRejected {
            requested: IommuMode::ThreeLevel,
            got: 0
        })
    ));
    sim.borrow_mut().ddtp_busy_reads = 0;
    assert_eq!(sim.borrow().ddtp & 0xf, 0);
}

#[test]
fn invalidate_gstage_commands() {
    let (sim, r) = setup(QEMU_CAPS, InitConfig::default());
    let mut iommu = r.unwrap();
    iommu.invalidate_gstage(7).unwrap();
    iommu
        .invalidate_gstage_page(7, GuestPhysAddr::new(0x8020_1234))
        .unwrap();
    let s = sim.borrow();
    let n = s.log.len();
    assert_eq!(
        s.log[n - 4],
        Command::IotinvalGvma {
            gscid: Some(7),
            addr: None
        }
    );
    assert_eq!(
        s.log[n - 2],
        Command::IotinvalGvma {
            gscid: Some(7),
            addr: Some(0x8020_1000)
        }
    );
}

/// The TSM completes a page conversion only when the host's G-stage
/// invalidation is known to be done: every way it can fail must be an
/// error, never a silent success.
#[test]
fn failed_gstage_invalidation_is_an_error() {
    let (sim, r) = setup(
        QEMU_CAPS,
        InitConfig {
            spin_limit: 1000,
            ..Default::default()
        },
    );
    let mut iommu = r.unwrap();
    sim.borrow_mut().stall_fences = true;
    assert_eq!(
        iommu.invalidate_gstage(HOST),
        Err(Error::Timeout(WaitFor::FenceCompletion))
    );
    // Still stalled: the first fence's pending completion must not make a
    // retry look done.
    assert_eq!(
        iommu.invalidate_gstage(HOST),
        Err(Error::Timeout(WaitFor::FenceCompletion))
    );
    // Once the IOMMU makes progress again, a retry succeeds (and the
    // invalidation really reached it).
    sim.borrow_mut().stall_fences = false;
    iommu.invalidate_gstage(HOST).unwrap();
    let n = sim
        .borrow()
        .log
        .iter()
        .filter(|c| {
            **c == Command::IotinvalGvma {
                gscid: Some(HOST),
                addr: None,
            }
        })
        .count();
    assert_eq!(n, 3);

    // An IOMMU that refuses the invalidation (illegal command).
    let (sim, r) = setup(QEMU_CAPS, InitConfig::default());
    let mut iommu = r.unwrap();
    sim.borrow_mut().reject_iotinval = true;
    assert!(matches!(
        iommu.invalidate_gstage(HOST),
        Err(Error::CommandQueue { cqcsr, .. }) if cqcsr & cqcsr::CMD_ILL != 0
    ));
    // The queue stays stopped until software clears the error: later
    // invalidations fail too instead of being skipped.
    sim.borrow_mut().reject_iotinval = false;
    assert!(iommu.invalidate_gstage(HOST).is_err());
}

const HOST: u16 = 0;

#[test]
fn command_queue_wraps() {
    let (sim, r) = setup(
        QEMU_CAPS,
        InitConfig {
            cq_log2_entries: 2, // 4 entries: lots of wrapping
            ..Default::default()
        },
    );
    let mut iommu = r.unwrap();
    for g in 0..50u16 {
        iommu.invalidate_gstage(g).unwrap();
    }
    let s = sim.borrow();
    assert_eq!(s.cqb & 0x1f, 1);
    let gvmas: Vec<_> = s
        .log
        .iter()
        .filter_map(|c| match c {
            Command::IotinvalGvma { gscid: Some(g), .. } => Some(*g),
            _ => None,
        })
        .collect();
    assert_eq!(gvmas, (0..50).collect::<Vec<_>>());
}

#[test]
fn bounded_waits_and_queue_errors() {
    let (sim, r) = setup(
        QEMU_CAPS,
        InitConfig {
            spin_limit: 1000,
            ..Default::default()
        },
    );
    let mut iommu = r.unwrap();
    sim.borrow_mut().stall_fences = true;
    assert_eq!(
        iommu.invalidate_gstage(1),
        Err(Error::Timeout(WaitFor::FenceCompletion))
    );

    let (sim, r) = setup(QEMU_CAPS, InitConfig::default());
    let mut iommu = r.unwrap();
    sim.borrow_mut().reject_iodir = true;
    let head = sim.borrow().cqh;
    assert_eq!(
        iommu.attach_device(1, &vm_attach(1)),
        Err(Error::CommandQueue {
            cqcsr: cqcsr::CQEN | cqcsr::CQON | cqcsr::CMD_ILL,
            head
        })
    );

    // A device that never leaves ddtp.busy.
    let sim = Sim::new(QEMU_CAPS);
    sim.borrow_mut().ddtp_busy_reads = u32::MAX;
    let r = Iommu::init(
        Regs(sim.clone()),
        Mem(sim.clone()),
        InitConfig {
            spin_limit: 100,
            ..Default::default()
        },
    );
    assert!(matches!(r, Err(Error::Timeout(WaitFor::DdtpBusy))));

    // Out of DMA memory.
    let sim = Sim::new(QEMU_CAPS);
    sim.borrow_mut().page_limit = 2;
    let r = Iommu::init(Regs(sim.clone()), Mem(sim), InitConfig::default());
    assert!(matches!(r, Err(Error::OutOfMemory)));
}

#[test]
fn drain_faults_consumes_records() {
    let (sim, r) = setup(
        QEMU_CAPS,
        InitConfig {
            fq_log2_entries: 2,
            ..Default::default()
        },
    );
    let mut iommu = r.unwrap();
    assert_eq!(iommu.drain_faults().count(), 0);
    let rec = |i: u64| FaultRecord {
        cause: FaultCause::WriteGuestPageFault,
        process_id: None,
        privileged: false,
        ttyp: TransactionType::UntranslatedWrite,
        device_id: 0x10,
        custom: 0,
        iotval: 0x1000 * i,
        iotval2: (0x8000_0000 + 0x1000 * i) >> 2,
    };
    for round in 0..3u64 {
        for i in 0..3 {
            sim.borrow_mut().raise_fault(&rec(round * 3 + i));
        }
        let got: Vec<_> = iommu.drain_faults().collect();
        assert_eq!(got, (0..3).map(|i| rec(round * 3 + i)).collect::<Vec<_>>());
        let s = sim.borrow();
        assert_eq!(s.fqh, s.fqt);
    }
    // Overflow: 4 entries hold 3 records.
    for i in 0..4 {
        sim.borrow_mut().raise_fault(&rec(i));
    }
    assert_eq!(iommu.fault_queue_errors(), fqcsr::FQOF);
    assert_eq!(iommu.drain_faults().count(), 3);
    iommu.clear_fault_queue_errors(fqcsr::FQOF);
    assert_eq!(iommu.fault_queue_errors(), 0);
    // Partial drain leaves the rest for later.
    for i in 0..2 {
        sim.borrow_mut().raise_fault(&rec(i));
    }
    assert_eq!(iommu.drain_faults().next().unwrap().iotval, 0);
    assert_eq!(iommu.drain_faults().next().unwrap().iotval, 0x1000);
    assert!(iommu.drain_faults().next().is_none());
}
