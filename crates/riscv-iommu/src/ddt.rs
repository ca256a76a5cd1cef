//! Device directory table (DDT) and device context (DC) encodings
//! (spec chapter "Data Structures").

use crate::regs::IommuMode;
use crate::{bit, flag, get, mask, put, PPN_BITS};
use hyp_addr::HostPhysAddr;
use page_tables::pte::{PTE_PPN_SHIFT, PTE_V};

/// Device-context format, selected by `capabilities.MSI_FLAT`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DcFormat {
    /// 32-byte DC (`tc`, `iohgatp`, `ta`, `fsc`).
    Base,
    /// 64-byte DC adding `msiptp`, `msi_addr_mask`, `msi_addr_pattern`.
    Extended,
}

/// Width of `device_id` (24 bits).
pub const DEVICE_ID_BITS: u32 = 24;

impl DcFormat {
    /// Size in bytes of one DC.
    pub const fn dc_size(self) -> usize {
        match self {
            DcFormat::Base => 32,
            DcFormat::Extended => 64,
        }
    }
    /// Number of 64-bit words in one DC.
    pub const fn dc_words(self) -> usize {
        self.dc_size() / 8
    }
    /// `(shift, width)` of `DDI[level]` in the device id.
    pub const fn ddi_field(self, level: usize) -> (u32, u32) {
        match (self, level) {
            (DcFormat::Base, 0) => (0, 7),
            (DcFormat::Base, 1) => (7, 9),
            (DcFormat::Base, _) => (16, 8),
            (DcFormat::Extended, 0) => (0, 6),
            (DcFormat::Extended, 1) => (6, 9),
            (DcFormat::Extended, _) => (15, 9),
        }
    }
    /// `DDI[level]` of `device_id` (level 0 indexes the leaf page of DCs,
    /// levels 1 and 2 index non-leaf pages of 8-byte entries).
    pub const fn ddi(self, device_id: u32, level: usize) -> usize {
        let (shift, width) = self.ddi_field(level);
        get(device_id as u64, shift, width) as usize
    }
    /// Number of device-id bits a directory of `levels` levels decodes.
    pub const fn id_bits(self, levels: usize) -> u32 {
        match (self, levels) {
            (_, 0) => 0,
            (DcFormat::Base, 1) => 7,
            (DcFormat::Base, 2) => 16,
            (DcFormat::Extended, 1) => 6,
            (DcFormat::Extended, 2) => 15,
            _ => DEVICE_ID_BITS,
        }
    }
    /// Whether `device_id` can be looked up in `mode` (false for Off/Bare).
    pub const fn fits(self, mode: IommuMode, device_id: u32) -> bool {
        let levels = mode.levels();
        levels != 0 && (device_id as u64) < (1u64 << self.id_bits(levels))
    }
    /// Fewest directory levels that cover device ids `0..=max_device_id`.
    pub const fn levels_for(self, max_device_id: u32) -> Option<IommuMode> {
        let mut levels = 1;
        while levels <= 3 {
            if (max_device_id as u64) < (1u64 << self.id_bits(levels)) {
                return IommuMode::from_levels(levels);
            }
            levels += 1;
        }
        None
    }
}

/// Non-leaf DDT (and PDT) entry: `V` and the PPN of the next level, at the
/// same positions as in a page-table entry (`page_tables::pte`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct DirEntry(u64);

impl DirEntry {
    pub const V: u64 = PTE_V;
    pub const PPN_SHIFT: u32 = PTE_PPN_SHIFT;
    /// Bits that must be zero in a valid non-leaf entry.
    pub const RESERVED: u64 = !(Self::V | (mask(PPN_BITS) << Self::PPN_SHIFT));

    pub const fn from_bits(raw: u64) -> Self {
        Self(raw)
    }
    pub const fn bits(self) -> u64 {
        self.0
    }
    /// A valid entry pointing to the table at `next`.
    pub const fn table(next: HostPhysAddr) -> Self {
        Self(Self::V | put(next.pfn(), Self::PPN_SHIFT, PPN_BITS))
    }
    pub const fn is_valid(self) -> bool {
        self.0 & Self::V != 0
    }
    pub const fn next(self) -> HostPhysAddr {
        HostPhysAddr::from_pfn(get(self.0, Self::PPN_SHIFT, PPN_BITS))
    }
    pub const fn has_reserved_bits(self) -> bool {
        self.0 & Self::RESERVED != 0
    }
}

/// Decoding failure of a device-context word.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// Reserved bits set in the named word.
    ReservedBits { word: &'static str, bits: u64 },
    /// A mode field holds a reserved or custom encoding.
    BadMode { word: &'static str, mode: u8 },
    /// Fewer words than the format needs.
    TooShort,
}

/// Translation control (`DC.tc`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Hash)]
pub struct TranslationControl {
    /// Valid.
    pub v: bool,
    /// Enable ATS.
    pub en_ats: bool,
    /// Enable PRI.
    pub en_pri: bool,
    /// Return GPAs in ATS completions.
    pub t2gpa: bool,
    /// Disable translation-fault reporting.
    pub dtf: bool,
    /// `fsc` holds a `pdtp` (else an `iosatp`).
    pub pdtv: bool,
    /// PRG-response PASID required.
    pub prpr: bool,
    /// Hardware A/D updating in second-stage PTEs (needs `AMO_HWAD`).
    pub gade: bool,
    /// Hardware A/D updating in first-stage PTEs (needs `AMO_HWAD`).
    pub sade: bool,
    /// Default process id enable (needs `pdtv`).
    pub dpe: bool,
    /// Big-endian PDT / first-stage accesses.
    pub sbe: bool,
    /// RV32 first-stage schemes.
    pub sxl: bool,
    /// Custom-use bits 31:24.
    pub custom: u8,
}

impl TranslationControl {
    const RESERVED: u64 = !(mask(12) | (0xff << 24));

    pub const fn bits(self) -> u64 {
        flag(self.v, 0)
            | flag(self.en_ats, 1)
            | flag(self.en_pri, 2)
            | flag(self.t2gpa, 3)
            | flag(self.dtf, 4)
            | flag(self.pdtv, 5)
            | flag(self.prpr, 6)
            | flag(self.gade, 7)
            | flag(self.sade, 8)
            | flag(self.dpe, 9)
            | flag(self.sbe, 10)
            | flag(self.sxl, 11)
            | put(self.custom as u64, 24, 8)
    }
    pub const fn from_bits(raw: u64) -> Self {
        Self {
            v: bit(raw, 0),
            en_ats: bit(raw, 1),
            en_pri: bit(raw, 2),
            t2gpa: bit(raw, 3),
            dtf: bit(raw, 4),
            pdtv: bit(raw, 5),
            prpr: bit(raw, 6),
            gade: bit(raw, 7),
            sade: bit(raw, 8),
            dpe: bit(raw, 9),
            sbe: bit(raw, 10),
            sxl: bit(raw, 11),
            custom: get(raw, 24, 8) as u8,
        }
    }
    pub fn decode(raw: u64) -> Result<Self, DecodeError> {
        reserved("tc", raw, Self::RESERVED)?;
        Ok(Self::from_bits(raw))
    }
}

fn reserved(word: &'static str, raw: u64, mask: u64) -> Result<(), DecodeError> {
    if raw & mask != 0 {
        Err(DecodeError::ReservedBits {
            word,
            bits: raw & mask,
        })
    } else {
        Ok(())
    }
}

/// Second-stage translation scheme (`iohgatp.MODE`, `fctl.GXL == 0`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GStageMode {
    Bare,
    Sv39x4,
    Sv48x4,
    Sv57x4,
}

impl GStageMode {
    pub const fn bits(self) -> u64 {
        match self {
            GStageMode::Bare => 0,
            GStageMode::Sv39x4 => 8,
            GStageMode::Sv48x4 => 9,
            GStageMode::Sv57x4 => 10,
        }
    }
    pub const fn from_bits(v: u64) -> Option<Self> {
        match v {
            0 => Some(GStageMode::Bare),
            8 => Some(GStageMode::Sv39x4),
            9 => Some(GStageMode::Sv48x4),
            10 => Some(GStageMode::Sv57x4),
            _ => None,
        }
    }
}

/// `PPN[43:0] | ID[59:44] | MODE[63:60]`, the layout shared by `iohgatp`,
/// `iosatp`, `pdtp` and `msiptp` (and by the hart's `hgatp`).
const fn atp(mode: u64, id: u64, ppn: u64) -> u64 {
    put(ppn, 0, PPN_BITS) | put(id, 44, 16) | put(mode, 60, 4)
}

/// IO hypervisor guest address translation and protection (`DC.iohgatp`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Iohgatp {
    pub mode: GStageMode,
    /// Guest soft-context id (VM tag for `IOTINVAL.GVMA`).
    pub gscid: u16,
    /// Root of the 16 KiB second-stage table.
    pub ppn: u64,
}

impl Default for Iohgatp {
    fn default() -> Self {
        Self::BARE
    }
}

impl Iohgatp {
    pub const BARE: Iohgatp = Iohgatp {
        mode: GStageMode::Bare,
        gscid: 0,
        ppn: 0,
    };

    /// A G-stage table rooted at `root` (must be 16 KiB aligned to be valid).
    pub const fn new(mode: GStageMode, gscid: u16, root: HostPhysAddr) -> Self {
        Self {
            mode,
            gscid,
            ppn: root.pfn(),
        }
    }
    pub const fn root(self) -> HostPhysAddr {
        HostPhysAddr::from_pfn(self.ppn)
    }
    pub const fn bits(self) -> u64 {
        atp(self.mode.bits(), self.gscid as u64, self.ppn)
    }
    pub fn decode(raw: u64) -> Result<Self, DecodeError> {
        let mode = get(raw, 60, 4);
        Ok(Self {
            mode: GStageMode::from_bits(mode).ok_or(DecodeError::BadMode {
                word: "iohgatp",
                mode: mode as u8,
            })?,
            gscid: get(raw, 44, 16) as u16,
            ppn: get(raw, 0, PPN_BITS),
        })
    }
}

/// Translation attributes (`DC.ta`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Hash)]
pub struct TranslationAttributes {
    /// Process soft-context id (20 bits), used when `pdtv == 0`.
    pub pscid: u32,
    /// QoS resource-control id (12 bits, needs `capabilities.QOSID`).
    pub rcid: u16,
    /// QoS monitoring-counter id (12 bits, needs `capabilities.QOSID`).
    pub mcid: u16,
}

impl TranslationAttributes {
    const RESERVED: u64 = mask(12) | (0xff << 32);

    pub const fn bits(self) -> u64 {
        put(self.pscid as u64, 12, 20)
            | put(self.rcid as u64, 40, 12)
            | put(self.mcid as u64, 52, 12)
    }
    pub fn decode(raw: u64) -> Result<Self, DecodeError> {
        reserved("ta", raw, Self::RESERVED)?;
        Ok(Self {
            pscid: get(raw, 12, 20) as u32,
            rcid: get(raw, 40, 12) as u16,
            mcid: get(raw, 52, 12) as u16,
        })
    }
}

/// First-stage scheme (`iosatp.MODE`, `DC.tc.SXL == 0`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FirstStageMode {
    Bare,
    Sv39,
    Sv48,
    Sv57,
}

impl FirstStageMode {
    pub const fn bits(self) -> u64 {
        match self {
            FirstStageMode::Bare => 0,
            FirstStageMode::Sv39 => 8,
            FirstStageMode::Sv48 => 9,
            FirstStageMode::Sv57 => 10,
        }
    }
    pub const fn from_bits(v: u64) -> Option<Self> {
        match v {
            0 => Some(FirstStageMode::Bare),
            8 => Some(FirstStageMode::Sv39),
            9 => Some(FirstStageMode::Sv48),
            10 => Some(FirstStageMode::Sv57),
            _ => None,
        }
    }
}

/// Process-directory scheme (`pdtp.MODE`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PdtMode {
    Bare,
    /// One level, 8-bit process ids.
    Pd8,
    /// Two levels, 17-bit process ids.
    Pd17,
    /// Three levels, 20-bit process ids.
    Pd20,
}

impl PdtMode {
    pub const fn bits(self) -> u64 {
        match self {
            PdtMode::Bare => 0,
            PdtMode::Pd8 => 1,
            PdtMode::Pd17 => 2,
            PdtMode::Pd20 => 3,
        }
    }
    pub const fn from_bits(v: u64) -> Option<Self> {
        match v {
            0 => Some(PdtMode::Bare),
            1 => Some(PdtMode::Pd8),
            2 => Some(PdtMode::Pd17),
            3 => Some(PdtMode::Pd20),
            _ => None,
        }
    }
}

/// First-stage context (`DC.fsc`): an `iosatp` when `tc.PDTV == 0`, a
/// `pdtp` when `tc.PDTV == 1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FirstStageContext {
    Iosatp { mode: FirstStageMode, ppn: u64 },
    Pdtp { mode: PdtMode, ppn: u64 },
}

impl Default for FirstStageContext {
    fn default() -> Self {
        Self::BARE
    }
}

impl FirstStageContext {
    /// `iosatp` Bare: no first stage.
    pub const BARE: FirstStageContext = FirstStageContext::Iosatp {
        mode: FirstStageMode::Bare,
        ppn: 0,
    };
    const RESERVED: u64 = mask(16) << 44;

    pub const fn is_pdtp(self) -> bool {
        matches!(self, FirstStageContext::Pdtp { .. })
    }
    pub const fn bits(self) -> u64 {
        match self {
            FirstStageContext::Iosatp { mode, ppn } => atp(mode.bits(), 0, ppn),
            FirstStageContext::Pdtp { mode, ppn } => atp(mode.bits(), 0, ppn),
        }
    }
    /// Decodes `raw` as a `pdtp` if `pdtv`, else as an `iosatp`.
    pub fn decode(raw: u64, pdtv: bool) -> Result<Self, DecodeError> {
        reserved("fsc", raw, Self::RESERVED)?;
        let m = get(raw, 60, 4);
        let ppn = get(raw, 0, PPN_BITS);
        let bad = DecodeError::BadMode {
            word: "fsc",
            mode: m as u8,
        };
        Ok(if pdtv {
            FirstStageContext::Pdtp {
                mode: PdtMode::from_bits(m).ok_or(bad)?,
                ppn,
            }
        } else {
            FirstStageContext::Iosatp {
                mode: FirstStageMode::from_bits(m).ok_or(bad)?,
                ppn,
            }
        })
    }
}

/// MSI page-table mode (`msiptp.MODE`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MsiPtMode {
    /// No MSI recognition by address mask/pattern.
    Off,
    /// Flat MSI page table.
    Flat,
}

/// MSI page-table pointer (`DC.msiptp`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Msiptp {
    pub mode: MsiPtMode,
    pub ppn: u64,
}

impl Default for Msiptp {
    fn default() -> Self {
        Self::OFF
    }
}

impl Msiptp {
    pub const OFF: Msiptp = Msiptp {
        mode: MsiPtMode::Off,
        ppn: 0,
    };
    const RESERVED: u64 = mask(16) << 44;

    pub const fn flat(table: HostPhysAddr) -> Self {
        Self {
            mode: MsiPtMode::Flat,
            ppn: table.pfn(),
        }
    }
    pub const fn table(self) -> HostPhysAddr {
        HostPhysAddr::from_pfn(self.ppn)
    }
    pub const fn bits(self) -> u64 {
        let m = match self.mode {
            MsiPtMode::Off => 0,
            MsiPtMode::Flat => 1,
        };
        atp(m, 0, self.ppn)
    }
    pub fn decode(raw: u64) -> Result<Self, DecodeError> {
        reserved("msiptp", raw, Self::RESERVED)?;
        let mode = match get(raw, 60, 4) {
            0 => MsiPtMode::Off,
            1 => MsiPtMode::Flat,
            m => {
                return Err(DecodeError::BadMode {
                    word: "msiptp",
                    mode: m as u8,
                })
            }
        };
        Ok(Self {
            mode,
            ppn: get(raw, 0, PPN_BITS),
        })
    }
}

/// Width of `msi_addr_mask` / `msi_addr_pattern` (page-number bits).
pub const MSI_ADDR_BITS: u32 = 52;

/// A device context. `msiptp`, `msi_addr_mask` and `msi_addr_pattern` only
/// exist in the extended format (they are dropped when encoding the base
/// format and read as zero when decoding it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Hash)]
pub struct DeviceContext {
    pub tc: TranslationControl,
    pub iohgatp: Iohgatp,
    pub ta: TranslationAttributes,
    pub fsc: FirstStageContext,
    pub msiptp: Msiptp,
    /// Page-number mask (bits 51:0): set bits select the interrupt file.
    pub msi_addr_mask: u64,
    /// Page-number pattern (bits 51:0) of the guest's interrupt files.
    pub msi_addr_pattern: u64,
}

impl DeviceContext {
    /// Encodes into 8 words; only `format.dc_words()` of them are meaningful.
    pub const fn encode(&self, format: DcFormat) -> [u64; 8] {
        let mut w = [0u64; 8];
        w[0] = self.tc.bits();
        w[1] = self.iohgatp.bits();
        w[2] = self.ta.bits();
        w[3] = self.fsc.bits();
        if let DcFormat::Extended = format {
            w[4] = self.msiptp.bits();
            w[5] = self.msi_addr_mask & mask(MSI_ADDR_BITS);
            w[6] = self.msi_addr_pattern & mask(MSI_ADDR_BITS);
        }
        w
    }

    /// Decodes the first `format.dc_words()` words, rejecting reserved
    /// bits and reserved mode encodings.
    pub fn decode(words: &[u64], format: DcFormat) -> Result<Self, DecodeError> {
        if words.len() < format.dc_words() {
            return Err(DecodeError::TooShort);
        }
        let tc = TranslationControl::decode(words[0])?;
        let mut dc = DeviceContext {
            tc,
            iohgatp: Iohgatp::decode(words[1])?,
            ta: TranslationAttributes::decode(words[2])?,
            fsc: FirstStageContext::decode(words[3], tc.pdtv)?,
            ..Default::default()
        };
        if format == DcFormat::Extended {
            dc.msiptp = Msiptp::decode(words[4])?;
            reserved("msi_addr_mask", words[5], !mask(MSI_ADDR_BITS))?;
            reserved("msi_addr_pattern", words[6], !mask(MSI_ADDR_BITS))?;
            reserved("dc.reserved", words[7], u64::MAX)?;
            dc.msi_addr_mask = words[5];
            dc.msi_addr_pattern = words[6];
        }
        Ok(dc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn device_id_split() {
        // Base: DDI0 = id[6:0], DDI1 = id[15:7], DDI2 = id[23:16].
        let id = 0xab_cd_ef;
        let b = DcFormat::Base;
        assert_eq!(b.ddi(id, 0), 0x6f);
        assert_eq!(b.ddi(id, 1), (0xcdef >> 7) & 0x1ff);
        assert_eq!(b.ddi(id, 2), 0xab);
        // Extended: DDI0 = id[5:0], DDI1 = id[14:6], DDI2 = id[23:15].
        let e = DcFormat::Extended;
        assert_eq!(e.ddi(id, 0), 0x2f);
        assert_eq!(e.ddi(id, 1), (id as usize >> 6) & 0x1ff);
        assert_eq!(e.ddi(id, 2), id as usize >> 15);
        // Leaf pages hold exactly one page of DCs.
        assert_eq!((1 << 7) * b.dc_size(), 4096);
        assert_eq!((1 << 6) * e.dc_size(), 4096);
        assert_eq!(e.dc_words(), 8);
    }

    #[test]
    fn levels_and_fit() {
        let e = DcFormat::Extended;
        assert_eq!(e.levels_for(63), Some(IommuMode::OneLevel));
        assert_eq!(e.levels_for(64), Some(IommuMode::TwoLevel));
        assert_eq!(e.levels_for(0x7fff), Some(IommuMode::TwoLevel));
        assert_eq!(e.levels_for(0xffff), Some(IommuMode::ThreeLevel));
        assert_eq!(e.levels_for(0x100_0000), None);
        let b = DcFormat::Base;
        assert_eq!(b.levels_for(127), Some(IommuMode::OneLevel));
        assert_eq!(b.levels_for(0xffff), Some(IommuMode::TwoLevel));
        assert!(e.fits(IommuMode::TwoLevel, 0x7fff));
        assert!(!e.fits(IommuMode::TwoLevel, 0x8000));
        assert!(e.fits(IommuMode::ThreeLevel, 0xff_ffff));
        assert!(!e.fits(IommuMode::Bare, 0));
    }

    #[test]
    fn dir_entry() {
        let e = DirEntry::table(HostPhysAddr::new(0x8020_1000));
        assert_eq!(e.bits(), (0x80201 << 10) | 1);
        assert!(e.is_valid() && !e.has_reserved_bits());
        assert_eq!(e.next(), HostPhysAddr::new(0x8020_1000));
        assert!(DirEntry::from_bits(1 << 63 | 1).has_reserved_bits());
        assert!(DirEntry::from_bits(2).has_reserved_bits());
    }

    #[test]
    fn tc_bit_positions() {
        let all = TranslationControl {
            v: true,
            en_ats: true,
            en_pri: true,
            t2gpa: true,
            dtf: true,
            pdtv: true,
            prpr: true,
            gade: true,
            sade: true,
            dpe: true,
            sbe: true,
            sxl: true,
            custom: 0,
        };
        assert_eq!(all.bits(), 0xfff);
        let v_dtf = TranslationControl {
            v: true,
            dtf: true,
            ..Default::default()
        };
        assert_eq!(v_dtf.bits(), 0x11);
        assert!(TranslationControl::from_bits(1 << 7).gade, "GADE is bit 7");
        assert!(TranslationControl::from_bits(1 << 8).sade);
        assert!(TranslationControl::decode(1 << 12).is_err());
        assert!(TranslationControl::decode(1 << 32).is_err());
        assert_eq!(TranslationControl::decode(0xff << 24).unwrap().custom, 0xff);
    }

    #[test]
    fn iohgatp_encoding() {
        // MODE=Sv48x4 (9) at 63:60, GSCID 0x1234 at 59:44, PPN at 43:0.
        let g = Iohgatp::new(GStageMode::Sv48x4, 0x1234, HostPhysAddr::new(0x9000_c000));
        assert_eq!(g.bits(), 0x9123_4000_0009_000c);
        assert_eq!(Iohgatp::decode(g.bits()).unwrap(), g);
        assert_eq!(
            Iohgatp::new(GStageMode::Sv39x4, 1, HostPhysAddr::new(0)).bits(),
            0x8000_1000_0000_0000
        );
        assert!(Iohgatp::decode(1 << 60).is_err());
        assert_eq!(Iohgatp::BARE.bits(), 0);
    }

    #[test]
    fn ta_fsc_msiptp_encoding() {
        let ta = TranslationAttributes {
            pscid: 0xabcde,
            rcid: 0x123,
            mcid: 0x456,
        };
        assert_eq!(ta.bits(), 0x4561_2300_abcd_e000);
        assert_eq!(TranslationAttributes::decode(ta.bits()).unwrap(), ta);
        assert!(TranslationAttributes::decode(1).is_err());
        assert!(TranslationAttributes::decode(1 << 32).is_err());

        let s = FirstStageContext::Iosatp {
            mode: FirstStageMode::Sv39,
            ppn: 0x1234,
        };
        assert_eq!(s.bits(), 0x8000_0000_0000_1234);
        assert_eq!(FirstStageContext::decode(s.bits(), false).unwrap(), s);
        let p = FirstStageContext::Pdtp {
            mode: PdtMode::Pd8,
            ppn: 0x55,
        };
        assert_eq!(p.bits(), 0x1000_0000_0000_0055);
        assert_eq!(FirstStageContext::decode(p.bits(), true).unwrap(), p);
        assert!(FirstStageContext::decode(p.bits(), false).is_err());
        assert!(FirstStageContext::decode(1 << 44, false).is_err());

        let m = Msiptp::flat(HostPhysAddr::new(0x8800_0000));
        assert_eq!(m.bits(), 0x1000_0000_0008_8000);
        assert_eq!(Msiptp::decode(m.bits()).unwrap(), m);
        assert!(Msiptp::decode(2 << 60).is_err());
    }

    #[test]
    fn dc_words() {
        let dc = DeviceContext {
            tc: TranslationControl {
                v: true,
                ..Default::default()
            },
            iohgatp: Iohgatp::new(GStageMode::Sv48x4, 7, HostPhysAddr::new(0x8100_0000)),
            msiptp: Msiptp::flat(HostPhysAddr::new(0x8200_0000)),
            msi_addr_mask: 0x7,
            msi_addr_pattern: 0x0002_8000,
            ..Default::default()
        };
        let w = dc.encode(DcFormat::Extended);
        assert_eq!(
            w,
            [
                1,
                0x9000_7000_0008_1000,
                0,
                0,
                0x1000_0000_0008_2000,
                7,
                0x28000,
                0
            ]
        );
        assert_eq!(DeviceContext::decode(&w, DcFormat::Extended).unwrap(), dc);
        let wb = dc.encode(DcFormat::Base);
        assert_eq!(&wb[4..], &[0, 0, 0, 0]);
        let back = DeviceContext::decode(&wb[..4], DcFormat::Base).unwrap();
        assert_eq!(back.iohgatp, dc.iohgatp);
        assert_eq!(back.msiptp, Msiptp::OFF);
        assert_eq!(
            DeviceContext::decode(&wb[..4], DcFormat::Extended),
            Err(DecodeError::TooShort)
        );
        let mut bad = w;
        bad[7] = 1;
        assert!(DeviceContext::decode(&bad, DcFormat::Extended).is_err());
    }

    fn arb_dc() -> impl Strategy<Value = DeviceContext> {
        (
            (0u64..1 << 12, any::<u8>()),
            (0usize..4, any::<u16>(), 0u64..1 << 44),
            (0u32..1 << 20, 0u16..1 << 12, 0u16..1 << 12),
            (0usize..4, 0u64..1 << 44),
            (any::<bool>(), 0u64..1 << 44),
            (0u64..1 << 52, 0u64..1 << 52),
        )
            .prop_map(|(tc, g, ta, fsc, msi, mp)| {
                let tc = TranslationControl::from_bits(tc.0 | (tc.1 as u64) << 24);
                let gm = [
                    GStageMode::Bare,
                    GStageMode::Sv39x4,
                    GStageMode::Sv48x4,
                    GStageMode::Sv57x4,
                ][g.0];
                let fsc = if tc.pdtv {
                    FirstStageContext::Pdtp {
                        mode: [PdtMode::Bare, PdtMode::Pd8, PdtMode::Pd17, PdtMode::Pd20][fsc.0],
                        ppn: fsc.1,
                    }
                } else {
                    FirstStageContext::Iosatp {
                        mode: [
                            FirstStageMode::Bare,
                            FirstStageMode::Sv39,
                            FirstStageMode::Sv48,
                            FirstStageMode::Sv57,
                        ][fsc.0],
                        ppn: fsc.1,
                    }
                };
                DeviceContext {
                    tc,
                    iohgatp: Iohgatp {
                        mode: gm,
                        gscid: g.1,
                        ppn: g.2,
                    },
                    ta: TranslationAttributes {
                        pscid: ta.0,
                        rcid: ta.1,
                        mcid: ta.2,
                    },
                    fsc,
                    msiptp: Msiptp {
                        mode: if msi.0 {
                            MsiPtMode::Flat
                        } else {
                            MsiPtMode::Off
                        },
                        ppn: msi.1,
                    },
                    msi_addr_mask: mp.0,
                    msi_addr_pattern: mp.1,
                }
            })
    }

    proptest! {
        #[test]
        fn dc_roundtrip(dc in arb_dc()) {
            let w = dc.encode(DcFormat::Extended);
            prop_assert_eq!(DeviceContext::decode(&w, DcFormat::Extended).unwrap(), dc);
            let wb = dc.encode(DcFormat::Base);
            let b = DeviceContext::decode(&wb[..4], DcFormat::Base).unwrap();
            prop_assert_eq!(b, DeviceContext { msiptp: Msiptp::OFF, msi_addr_mask: 0, msi_addr_pattern: 0, ..dc });
        }

        #[test]
        fn ddi_recomposes_device_id(id in 0u32..1 << 24) {
            for f in [DcFormat::Base, DcFormat::Extended] {
                let mut v = 0u32;
                for l in 0..3 {
                    let (shift, _) = f.ddi_field(l);
                    v |= (f.ddi(id, l) as u32) << shift;
                }
                prop_assert_eq!(v, id);
            }
        }
    }
}
