//! Memory-mapped register layout and register-field encodings
//! (spec chapter "Memory-mapped register interface").

use crate::{bit, get, put, PPN_BITS};
use hyp_addr::HostPhysAddr;

/// Byte offsets of the registers inside the 4 KiB register page.
pub mod offset {
    pub const CAPABILITIES: usize = 0;
    pub const FCTL: usize = 8;
    pub const DDTP: usize = 16;
    pub const CQB: usize = 24;
    pub const CQH: usize = 32;
    pub const CQT: usize = 36;
    pub const FQB: usize = 40;
    pub const FQH: usize = 48;
    pub const FQT: usize = 52;
    pub const PQB: usize = 56;
    pub const PQH: usize = 64;
    pub const PQT: usize = 68;
    pub const CQCSR: usize = 72;
    pub const FQCSR: usize = 76;
    pub const PQCSR: usize = 80;
    pub const IPSR: usize = 84;
    pub const IOCOUNTOVF: usize = 88;
    pub const IOCOUNTINH: usize = 92;
    pub const IOHPMCYCLES: usize = 96;
    /// `iohpmctr1`; counter `n` (1..=31) is at `IOHPMCTR_BASE + (n - 1) * 8`.
    pub const IOHPMCTR_BASE: usize = 104;
    /// `iohpmevt1`; selector `n` (1..=31) is at `IOHPMEVT_BASE + (n - 1) * 8`.
    pub const IOHPMEVT_BASE: usize = 352;
    pub const TR_REQ_IOVA: usize = 600;
    pub const TR_REQ_CTL: usize = 608;
    pub const TR_RESPONSE: usize = 616;
    pub const IOMMU_QOSID: usize = 624;
    pub const ICVEC: usize = 760;
    /// `msi_cfg_tbl`: 16 entries of 16 bytes (address, data, vector control).
    pub const MSI_CFG_TBL: usize = 768;
    /// Size of the register page.
    pub const REG_PAGE_SIZE: usize = 4096;
}

/// `msi_cfg_tbl` entry `vector` (0..16): offsets of the message address
/// (8 bytes), message data (4 bytes) and vector control (4 bytes).
pub const fn msi_cfg_offsets(vector: usize) -> (usize, usize, usize) {
    let base = offset::MSI_CFG_TBL + vector * 16;
    (base, base + 8, base + 12)
}

/// Vector-control mask bit of a `msi_cfg_tbl` entry.
pub const MSI_VEC_CTL_M: u32 = 1;

/// Interrupt generation support (`capabilities.IGS`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InterruptGeneration {
    /// Message-signaled interrupts only.
    Msi,
    /// Wire-signaled interrupts only.
    Wsi,
    /// Both, selected with `fctl.WSI`.
    Both,
    /// Encoding 3, reserved.
    Reserved,
}

/// The read-only `capabilities` register.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct Capabilities(u64);

macro_rules! cap_bits {
    ($($(#[$doc:meta])* $name:ident = $bit:expr;)*) => {
        $( $(#[$doc])* pub const fn $name(self) -> bool { bit(self.0, $bit) } )*
    };
}

impl Capabilities {
    pub const fn from_bits(raw: u64) -> Self {
        Self(raw)
    }
    pub const fn bits(self) -> u64 {
        self.0
    }
    /// Spec version, major in the high nibble (0x10 = 1.0).
    pub const fn version(self) -> u8 {
        get(self.0, 0, 8) as u8
    }
    pub const fn version_major(self) -> u8 {
        self.version() >> 4
    }
    pub const fn version_minor(self) -> u8 {
        self.version() & 0xf
    }
    cap_bits! {
        sv32 = 8;
        sv39 = 9;
        sv48 = 10;
        sv57 = 11;
        svpbmt = 15;
        sv32x4 = 16;
        sv39x4 = 17;
        sv48x4 = 18;
        sv57x4 = 19;
        /// Atomic updates to MRIFs.
        amo_mrif = 21;
        /// Flat (write-through) MSI page tables; implies the 64-byte DC.
        msi_flat = 22;
        /// MRIF-mode MSI PTEs.
        msi_mrif = 23;
        /// Hardware A/D bit updating (`DC.tc.GADE` / `SADE` usable).
        amo_hwad = 24;
        /// PCIe ATS / PRI (and the page-request queue).
        ats = 25;
        t2gpa = 26;
        /// Both endiannesses supported (`fctl.BE` writable).
        end = 27;
        /// Hardware performance monitor.
        hpm = 30;
        /// Translation-request debug interface.
        dbg = 31;
        pd8 = 38;
        pd17 = 39;
        pd20 = 40;
        qosid = 41;
    }
    /// Interrupt generation support.
    pub const fn igs(self) -> InterruptGeneration {
        match get(self.0, 28, 2) {
            0 => InterruptGeneration::Msi,
            1 => InterruptGeneration::Wsi,
            2 => InterruptGeneration::Both,
            _ => InterruptGeneration::Reserved,
        }
    }
    /// Physical address size in bits.
    pub const fn pas(self) -> u8 {
        get(self.0, 32, 6) as u8
    }
    /// Device-context format implied by `MSI_FLAT`.
    pub const fn dc_format(self) -> crate::ddt::DcFormat {
        if self.msi_flat() {
            crate::ddt::DcFormat::Extended
        } else {
            crate::ddt::DcFormat::Base
        }
    }
    /// Whether second-stage scheme `mode` may be programmed in `iohgatp`
    /// (with `fctl.GXL == 0`).
    pub const fn supports_gstage(self, mode: crate::ddt::GStageMode) -> bool {
        match mode {
            crate::ddt::GStageMode::Bare => true,
            crate::ddt::GStageMode::Sv39x4 => self.sv39x4(),
            crate::ddt::GStageMode::Sv48x4 => self.sv48x4(),
            crate::ddt::GStageMode::Sv57x4 => self.sv57x4(),
        }
    }
}

impl core::fmt::Debug for Capabilities {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Capabilities")
            .field("raw", &format_args!("{:#x}", self.0))
            .field("version", &format_args!("{:#x}", self.version()))
            .field("sv39", &self.sv39())
            .field("sv48", &self.sv48())
            .field("sv57", &self.sv57())
            .field("sv39x4", &self.sv39x4())
            .field("sv48x4", &self.sv48x4())
            .field("sv57x4", &self.sv57x4())
            .field("msi_flat", &self.msi_flat())
            .field("msi_mrif", &self.msi_mrif())
            .field("amo_hwad", &self.amo_hwad())
            .field("ats", &self.ats())
            .field("igs", &self.igs())
            .field("pas", &self.pas())
            .finish_non_exhaustive()
    }
}

/// Features-control register (`fctl`, 32 bits).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Fctl {
    /// Big-endian in-memory data structures.
    pub be: bool,
    /// Wire-signaled interrupts instead of MSIs.
    pub wsi: bool,
    /// RV32 guest-physical translation schemes (`Sv32x4`).
    pub gxl: bool,
}

impl Fctl {
    pub const BE: u32 = 1 << 0;
    pub const WSI: u32 = 1 << 1;
    pub const GXL: u32 = 1 << 2;

    pub const fn from_bits(raw: u32) -> Self {
        Self {
            be: raw & Self::BE != 0,
            wsi: raw & Self::WSI != 0,
            gxl: raw & Self::GXL != 0,
        }
    }
    pub const fn bits(self) -> u32 {
        (if self.be { Self::BE } else { 0 })
            | (if self.wsi { Self::WSI } else { 0 })
            | (if self.gxl { Self::GXL } else { 0 })
    }
}

/// `ddtp.iommu_mode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IommuMode {
    /// No inbound transactions allowed.
    Off,
    /// Pass-through.
    Bare,
    /// One-level device directory.
    OneLevel,
    /// Two-level device directory.
    TwoLevel,
    /// Three-level device directory.
    ThreeLevel,
}

impl IommuMode {
    pub const fn bits(self) -> u64 {
        match self {
            IommuMode::Off => 0,
            IommuMode::Bare => 1,
            IommuMode::OneLevel => 2,
            IommuMode::TwoLevel => 3,
            IommuMode::ThreeLevel => 4,
        }
    }
    pub const fn from_bits(v: u64) -> Option<Self> {
        match v {
            0 => Some(IommuMode::Off),
            1 => Some(IommuMode::Bare),
            2 => Some(IommuMode::OneLevel),
            3 => Some(IommuMode::TwoLevel),
            4 => Some(IommuMode::ThreeLevel),
            _ => None,
        }
    }
    /// Number of directory levels (0 for Off/Bare).
    pub const fn levels(self) -> usize {
        match self {
            IommuMode::Off | IommuMode::Bare => 0,
            IommuMode::OneLevel => 1,
            IommuMode::TwoLevel => 2,
            IommuMode::ThreeLevel => 3,
        }
    }
    pub const fn from_levels(levels: usize) -> Option<Self> {
        match levels {
            1 => Some(IommuMode::OneLevel),
            2 => Some(IommuMode::TwoLevel),
            3 => Some(IommuMode::ThreeLevel),
            _ => None,
        }
    }
}

/// Device-directory-table pointer (`ddtp`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Ddtp(u64);

impl Ddtp {
    pub const MODE_MASK: u64 = 0xf;
    pub const BUSY: u64 = 1 << 4;
    pub const PPN_SHIFT: u32 = 10;

    pub const fn from_bits(raw: u64) -> Self {
        Self(raw)
    }
    pub const fn bits(self) -> u64 {
        self.0
    }
    /// `mode` with the root table at `root` (its low 12 bits are dropped).
    pub const fn new(mode: IommuMode, root: HostPhysAddr) -> Self {
        Self(mode.bits() | put(root.pfn(), Self::PPN_SHIFT, PPN_BITS))
    }
    /// The raw 4-bit mode field.
    pub const fn raw_mode(self) -> u8 {
        get(self.0, 0, 4) as u8
    }
    /// The mode, `None` for reserved/custom encodings.
    pub const fn mode(self) -> Option<IommuMode> {
        IommuMode::from_bits(get(self.0, 0, 4))
    }
    pub const fn busy(self) -> bool {
        self.0 & Self::BUSY != 0
    }
    pub const fn ppn(self) -> u64 {
        get(self.0, Self::PPN_SHIFT, PPN_BITS)
    }
    pub const fn root(self) -> HostPhysAddr {
        HostPhysAddr::from_pfn(self.ppn())
    }
    /// The same PPN with another mode (busy and reserved bits cleared), as
    /// required when turning the IOMMU off.
    pub const fn with_mode(self, mode: IommuMode) -> Self {
        Self(mode.bits() | put(self.ppn(), Self::PPN_SHIFT, PPN_BITS))
    }
}

/// Command-queue CSR (`cqcsr`) bits.
pub mod cqcsr {
    pub const CQEN: u32 = 1 << 0;
    pub const CIE: u32 = 1 << 1;
    pub const CQMF: u32 = 1 << 8;
    pub const CMD_TO: u32 = 1 << 9;
    pub const CMD_ILL: u32 = 1 << 10;
    pub const FENCE_W_IP: u32 = 1 << 11;
    pub const CQON: u32 = 1 << 16;
    pub const BUSY: u32 = 1 << 17;
    /// The RW1C error bits.
    pub const ERRORS: u32 = CQMF | CMD_TO | CMD_ILL;
}

/// Fault-queue CSR (`fqcsr`) bits.
pub mod fqcsr {
    pub const FQEN: u32 = 1 << 0;
    pub const FIE: u32 = 1 << 1;
    pub const FQMF: u32 = 1 << 8;
    pub const FQOF: u32 = 1 << 9;
    pub const FQON: u32 = 1 << 16;
    pub const BUSY: u32 = 1 << 17;
    pub const ERRORS: u32 = FQMF | FQOF;
}

/// Page-request-queue CSR (`pqcsr`) bits.
pub mod pqcsr {
    pub const PQEN: u32 = 1 << 0;
    pub const PIE: u32 = 1 << 1;
    pub const PQMF: u32 = 1 << 8;
    pub const PQOF: u32 = 1 << 9;
    pub const PQON: u32 = 1 << 16;
    pub const BUSY: u32 = 1 << 17;
    pub const ERRORS: u32 = PQMF | PQOF;
}

/// Interrupt pending status (`ipsr`, RW1C) bits.
pub mod ipsr {
    /// Command queue.
    pub const CIP: u32 = 1 << 0;
    /// Fault queue.
    pub const FIP: u32 = 1 << 1;
    /// Performance monitoring.
    pub const PMIP: u32 = 1 << 2;
    /// Page-request queue.
    pub const PIP: u32 = 1 << 3;
}

/// Interrupt-cause-to-vector register (`icvec`): a 4-bit vector per cause.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Icvec {
    /// Command-queue interrupt vector.
    pub civ: u8,
    /// Fault-queue interrupt vector.
    pub fiv: u8,
    /// Performance-monitoring interrupt vector.
    pub pmiv: u8,
    /// Page-request-queue interrupt vector.
    pub piv: u8,
}

impl Icvec {
    pub const fn from_bits(raw: u64) -> Self {
        Self {
            civ: get(raw, 0, 4) as u8,
            fiv: get(raw, 4, 4) as u8,
            pmiv: get(raw, 8, 4) as u8,
            piv: get(raw, 12, 4) as u8,
        }
    }
    pub const fn bits(self) -> u64 {
        put(self.civ as u64, 0, 4)
            | put(self.fiv as u64, 4, 4)
            | put(self.pmiv as u64, 8, 4)
            | put(self.piv as u64, 12, 4)
    }
}

/// Bits of the translation-request control register (`tr_req_ctl`).
pub mod tr_req_ctl {
    pub const GO_BUSY: u64 = 1 << 0;
    pub const PRIV: u64 = 1 << 1;
    pub const EXE: u64 = 1 << 2;
    pub const NW: u64 = 1 << 3;
}

/// `tr_response` fault bit.
pub const TR_RESPONSE_FAULT: u64 = 1;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ddt::{DcFormat, GStageMode};

    /// QEMU 10 `riscv-iommu-pci` with default properties: version 1.0,
    /// Sv32/39/48/57, Sv32x4..Sv57x4, MSI_FLAT, MSI_MRIF, ATS, IGS=MSI, HPM,
    /// DBG, PAS=56, PD8.
    pub const QEMU_CAPS: u64 = 0x78_c2cf_0f10;

    #[test]
    fn offsets_match_spec_table() {
        use offset::*;
        assert_eq!(
            [CAPABILITIES, FCTL, DDTP, CQB, CQH, CQT, FQB, FQH, FQT],
            [0, 8, 16, 24, 32, 36, 40, 48, 52]
        );
        assert_eq!(
            [PQB, PQH, PQT, CQCSR, FQCSR, PQCSR, IPSR],
            [56, 64, 68, 72, 76, 80, 84]
        );
        assert_eq!(
            [IOCOUNTOVF, IOCOUNTINH, IOHPMCYCLES, IOHPMCTR_BASE],
            [88, 92, 96, 104]
        );
        assert_eq!(
            [IOHPMEVT_BASE, TR_REQ_IOVA, TR_REQ_CTL, TR_RESPONSE],
            [352, 600, 608, 616]
        );
        assert_eq!([IOMMU_QOSID, ICVEC, MSI_CFG_TBL], [624, 760, 768]);
        assert_eq!(msi_cfg_offsets(0), (768, 776, 780));
        assert_eq!(msi_cfg_offsets(15), (1008, 1016, 1020));
    }

    #[test]
    fn decode_qemu_capabilities() {
        let c = Capabilities::from_bits(QEMU_CAPS);
        assert_eq!(c.version(), 0x10);
        assert_eq!((c.version_major(), c.version_minor()), (1, 0));
        assert!(c.sv32() && c.sv39() && c.sv48() && c.sv57());
        assert!(c.sv32x4() && c.sv39x4() && c.sv48x4() && c.sv57x4());
        assert!(c.msi_flat() && c.msi_mrif() && c.ats());
        assert!(!c.amo_hwad() && !c.amo_mrif() && !c.t2gpa() && !c.end() && !c.svpbmt());
        assert_eq!(c.igs(), InterruptGeneration::Msi);
        assert!(c.hpm() && c.dbg());
        assert_eq!(c.pas(), 56);
        assert!(c.pd8() && !c.pd17() && !c.pd20() && !c.qosid());
        assert_eq!(c.dc_format(), DcFormat::Extended);
        assert!(c.supports_gstage(GStageMode::Sv48x4));
    }

    #[test]
    fn single_capability_bits() {
        let one = |n: u32| Capabilities::from_bits(1 << n);
        assert!(one(9).sv39() && !one(9).sv48());
        assert!(one(17).sv39x4());
        assert!(one(24).amo_hwad());
        assert!(one(26).t2gpa());
        assert!(one(27).end());
        assert_eq!(
            Capabilities::from_bits(1 << 28).igs(),
            InterruptGeneration::Wsi
        );
        assert_eq!(
            Capabilities::from_bits(2 << 28).igs(),
            InterruptGeneration::Both
        );
        assert_eq!(
            Capabilities::from_bits(3 << 28).igs(),
            InterruptGeneration::Reserved
        );
        assert!(one(39).pd17() && one(40).pd20() && one(41).qosid());
        assert_eq!(Capabilities::from_bits(0x3f << 32).pas(), 63);
        assert_eq!(one(22).dc_format(), DcFormat::Extended);
        assert_eq!(Capabilities::default().dc_format(), DcFormat::Base);
    }

    #[test]
    fn fctl_and_icvec() {
        assert_eq!(
            Fctl {
                be: true,
                wsi: true,
                gxl: true
            }
            .bits(),
            7
        );
        assert_eq!(
            Fctl::from_bits(2),
            Fctl {
                be: false,
                wsi: true,
                gxl: false
            }
        );
        let v = Icvec {
            civ: 1,
            fiv: 2,
            pmiv: 3,
            piv: 4,
        };
        assert_eq!(v.bits(), 0x4321);
        assert_eq!(Icvec::from_bits(0xffff_0000_4321), v);
    }

    #[test]
    fn ddtp_encoding() {
        let d = Ddtp::new(IommuMode::TwoLevel, HostPhysAddr::new(0x8765_4000));
        assert_eq!(d.bits(), (0x87654 << 10) | 3);
        assert_eq!(d.mode(), Some(IommuMode::TwoLevel));
        assert_eq!(d.root(), HostPhysAddr::new(0x8765_4000));
        assert!(!d.busy());
        assert!(Ddtp::from_bits(0x10).busy());
        assert_eq!(Ddtp::from_bits(5).mode(), None);
        assert_eq!(Ddtp::from_bits(5).raw_mode(), 5);
        assert_eq!(d.with_mode(IommuMode::Off).bits(), 0x87654 << 10);
        for m in [
            IommuMode::Off,
            IommuMode::Bare,
            IommuMode::OneLevel,
            IommuMode::TwoLevel,
            IommuMode::ThreeLevel,
        ] {
            assert_eq!(IommuMode::from_bits(m.bits()), Some(m));
        }
    }

    #[test]
    fn csr_bits() {
        assert_eq!(cqcsr::CQON, 0x1_0000);
        assert_eq!(cqcsr::BUSY, 0x2_0000);
        assert_eq!(cqcsr::ERRORS, 0x700);
        assert_eq!(fqcsr::ERRORS, 0x300);
        assert_eq!(pqcsr::PQON | pqcsr::PQEN, 0x1_0001);
        assert_eq!(ipsr::CIP | ipsr::FIP | ipsr::PMIP | ipsr::PIP, 0xf);
    }
}
