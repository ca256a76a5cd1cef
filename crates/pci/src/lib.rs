//! PCI / PCIe configuration-space logic over a [`ConfigAccess`] backend
//! (ECAM MMIO in the hypervisor, a byte-array mock in tests).
//!
//! Covers: [`Bdf`] addressing, header fields, bus enumeration
//! ([`Enumerator`]), BAR decoding and sizing ([`bar`]), the capability list
//! walk with loop protection ([`caps`]), MSI / MSI-X / PCIe capability
//! parsing and type-1 bridge bus numbers.
#![no_std]
#![forbid(unsafe_code)]

pub mod bar;
pub mod caps;

use core::fmt;

/// Bus / device / function address of a PCI function.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Bdf {
    bus: u8,
    device: u8,
    function: u8,
}

impl Bdf {
    /// `None` if `device > 31` or `function > 7`.
    pub const fn new(bus: u8, device: u8, function: u8) -> Option<Self> {
        if device > 31 || function > 7 {
            None
        } else {
            Some(Self {
                bus,
                device,
                function,
            })
        }
    }
    pub const fn bus(self) -> u8 {
        self.bus
    }
    pub const fn device(self) -> u8 {
        self.device
    }
    pub const fn function(self) -> u8 {
        self.function
    }
    /// Offset of the function's 4 KiB config space in an ECAM window:
    /// `bus << 20 | device << 15 | function << 12`.
    pub const fn ecam_offset(self) -> u64 {
        (self.bus as u64) << 20 | (self.device as u64) << 15 | (self.function as u64) << 12
    }
    /// Inverse of [`ecam_offset`](Self::ecam_offset) (low 12 bits ignored).
    pub const fn from_ecam_offset(off: u64) -> Option<Self> {
        if off >> 28 != 0 {
            return None;
        }
        Self::new(
            (off >> 20) as u8,
            ((off >> 15) & 0x1f) as u8,
            ((off >> 12) & 7) as u8,
        )
    }
    /// 16-bit routing id `bus << 8 | device << 3 | function` (the requester
    /// id, and the IOMMU `device_id` within segment 0).
    pub const fn routing_id(self) -> u16 {
        (self.bus as u16) << 8 | (self.device as u16) << 3 | self.function as u16
    }
    pub const fn from_routing_id(rid: u16) -> Self {
        Self {
            bus: (rid >> 8) as u8,
            device: ((rid >> 3) & 0x1f) as u8,
            function: (rid & 7) as u8,
        }
    }
}

impl fmt::Debug for Bdf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:02x}:{:02x}.{:x}",
            self.bus, self.device, self.function
        )
    }
}

impl fmt::Display for Bdf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// 32-bit configuration-space access. `offset` is a dword-aligned byte
/// offset (0..4096). Reads of absent functions return all ones.
pub trait ConfigAccess {
    fn read32(&mut self, bdf: Bdf, offset: u16) -> u32;
    fn write32(&mut self, bdf: Bdf, offset: u16, value: u32);

    /// 16-bit read (any 2-byte aligned offset) through `read32`.
    fn read16(&mut self, bdf: Bdf, offset: u16) -> u16 {
        (self.read32(bdf, offset & !3) >> ((offset & 2) * 8)) as u16
    }
    /// 8-bit read through `read32`.
    fn read8(&mut self, bdf: Bdf, offset: u16) -> u8 {
        (self.read32(bdf, offset & !3) >> ((offset & 3) * 8)) as u8
    }
}

/// Standard header offsets.
pub mod reg {
    pub const VENDOR_ID: u16 = 0x00;
    pub const DEVICE_ID: u16 = 0x02;
    pub const COMMAND: u16 = 0x04;
    pub const STATUS: u16 = 0x06;
    pub const REVISION: u16 = 0x08;
    pub const CLASS: u16 = 0x08;
    pub const HEADER_TYPE: u16 = 0x0e;
    pub const BAR0: u16 = 0x10;
    /// Type 1: primary / secondary / subordinate bus numbers and latency.
    pub const BUS_NUMBERS: u16 = 0x18;
    pub const CAPABILITIES_PTR: u16 = 0x34;
}

/// Command register bits.
pub mod command {
    pub const IO_SPACE: u16 = 1 << 0;
    pub const MEMORY_SPACE: u16 = 1 << 1;
    pub const BUS_MASTER: u16 = 1 << 2;
    pub const INTX_DISABLE: u16 = 1 << 10;
}

/// Status bit: capability list present.
pub const STATUS_CAP_LIST: u16 = 1 << 4;

/// Vendor id read from an absent function.
pub const VENDOR_NONE: u16 = 0xffff;

/// Header layout (`header type & 0x7f`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HeaderType {
    /// Type 0: endpoint.
    Endpoint,
    /// Type 1: PCI-to-PCI bridge.
    Bridge,
    /// Type 2: CardBus bridge.
    CardBus,
    Unknown(u8),
}

impl HeaderType {
    pub const fn from_bits(v: u8) -> Self {
        match v & 0x7f {
            0 => HeaderType::Endpoint,
            1 => HeaderType::Bridge,
            2 => HeaderType::CardBus,
            x => HeaderType::Unknown(x),
        }
    }
    /// Number of BAR slots of the layout.
    pub const fn bar_count(self) -> u8 {
        match self {
            HeaderType::Endpoint => 6,
            HeaderType::Bridge => 2,
            _ => 0,
        }
    }
}

/// Class code triple.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ClassCode {
    pub base: u8,
    pub sub: u8,
    pub prog_if: u8,
}

impl ClassCode {
    /// RISC-V IOMMU (base 0x08 system peripheral, sub 0x06 IOMMU).
    pub const IOMMU: (u8, u8) = (0x08, 0x06);
}

/// Identification of a present function.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FunctionInfo {
    pub bdf: Bdf,
    pub vendor_id: u16,
    pub device_id: u16,
    pub revision: u8,
    pub class: ClassCode,
    pub header_type: HeaderType,
    /// Header-type bit 7 (only meaningful on function 0).
    pub multi_function: bool,
}

impl FunctionInfo {
    /// Reads the header of `bdf`; `None` when the vendor id is 0xffff.
    pub fn read<C: ConfigAccess + ?Sized>(cfg: &mut C, bdf: Bdf) -> Option<Self> {
        let id = cfg.read32(bdf, reg::VENDOR_ID);
        let vendor_id = id as u16;
        if vendor_id == VENDOR_NONE {
            return None;
        }
        let class = cfg.read32(bdf, reg::CLASS);
        let ht = cfg.read8(bdf, reg::HEADER_TYPE);
        Some(Self {
            bdf,
            vendor_id,
            device_id: (id >> 16) as u16,
            revision: class as u8,
            class: ClassCode {
                base: (class >> 24) as u8,
                sub: (class >> 16) as u8,
                prog_if: (class >> 8) as u8,
            },
            header_type: HeaderType::from_bits(ht),
            multi_function: ht & 0x80 != 0,
        })
    }
}

/// Reads the command register.
pub fn read_command<C: ConfigAccess + ?Sized>(cfg: &mut C, bdf: Bdf) -> u16 {
    cfg.read16(bdf, reg::COMMAND)
}

/// Writes the command register. The status half is written as zero, which
/// leaves its RW1C bits untouched.
pub fn write_command<C: ConfigAccess + ?Sized>(cfg: &mut C, bdf: Bdf, value: u16) {
    cfg.write32(bdf, reg::COMMAND, value as u32);
}

/// Walks buses `first..=last`, device 0..32; functions 1..8 only when
/// function 0 is present and multi-function. Absent functions (vendor
/// 0xffff) are skipped.
pub struct Enumerator<'a, C: ConfigAccess + ?Sized> {
    cfg: &'a mut C,
    bus: u16,
    last_bus: u16,
    device: u8,
    function: u8,
    multi: bool,
}

impl<'a, C: ConfigAccess + ?Sized> Enumerator<'a, C> {
    pub fn new(cfg: &'a mut C, first_bus: u8, last_bus: u8) -> Self {
        Self {
            cfg,
            bus: first_bus as u16,
            last_bus: last_bus as u16,
            device: 0,
            function: 0,
            multi: false,
        }
    }

    fn advance_device(&mut self) {
        self.function = 0;
        self.multi = false;
        self.device += 1;
        if self.device == 32 {
            self.device = 0;
            self.bus += 1;
        }
    }
}

impl<C: ConfigAccess + ?Sized> Iterator for Enumerator<'_, C> {
    type Item = FunctionInfo;

    fn next(&mut self) -> Option<FunctionInfo> {
        while self.bus <= self.last_bus {
            let bdf = Bdf::new(self.bus as u8, self.device, self.function)?;
            let info = FunctionInfo::read(self.cfg, bdf);
            if self.function == 0 {
                match info {
                    None => {
                        self.advance_device();
                        continue;
                    }
                    Some(i) => {
                        self.multi = i.multi_function;
                        if self.multi {
                            self.function = 1;
                        } else {
                            self.advance_device();
                        }
                        return Some(i);
                    }
                }
            }
            // Functions 1..7 of a multi-function device.
            if self.function == 7 {
                self.advance_device();
            } else {
                self.function += 1;
            }
            if info.is_some() {
                return info;
            }
        }
        None
    }
}

/// Type-1 bridge bus numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BridgeBuses {
    pub primary: u8,
    pub secondary: u8,
    pub subordinate: u8,
}

/// Reads the bus numbers of a type-1 header.
pub fn bridge_buses<C: ConfigAccess + ?Sized>(cfg: &mut C, bdf: Bdf) -> BridgeBuses {
    let v = cfg.read32(bdf, reg::BUS_NUMBERS);
    BridgeBuses {
        primary: v as u8,
        secondary: (v >> 8) as u8,
        subordinate: (v >> 16) as u8,
    }
}

/// Programs the bus numbers of a type-1 header (keeps the secondary
/// latency timer byte).
pub fn set_bridge_buses<C: ConfigAccess + ?Sized>(cfg: &mut C, bdf: Bdf, b: BridgeBuses) {
    let v = cfg.read32(bdf, reg::BUS_NUMBERS);
    cfg.write32(
        bdf,
        reg::BUS_NUMBERS,
        (v & 0xff00_0000)
            | (b.subordinate as u32) << 16
            | (b.secondary as u32) << 8
            | b.primary as u32,
    );
}

/// Errors of this crate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PciError {
    /// No function at this address.
    NoDevice,
    /// BAR index beyond the header's BAR count.
    BadBarIndex(u8),
    /// A 64-bit BAR in the last slot, or the reserved memory type.
    MalformedBar(u8),
    /// The slot is the upper half of a 64-bit BAR.
    UpperHalfOf64(u8),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bdf_encodings() {
        let b = Bdf::new(0x12, 0x1f, 7).unwrap();
        assert_eq!(b.ecam_offset(), 0x12 << 20 | 0x1f << 15 | 7 << 12);
        assert_eq!(b.ecam_offset(), 0x12f_f000);
        assert_eq!(Bdf::from_ecam_offset(0x12f_f000), Some(b));
        assert_eq!(b.routing_id(), 0x12ff);
        assert_eq!(Bdf::from_routing_id(0x12ff), b);
        assert_eq!(Bdf::new(0, 2, 0).unwrap().routing_id(), 0x10);
        assert!(Bdf::new(0, 32, 0).is_none());
        assert!(Bdf::new(0, 0, 8).is_none());
        extern crate std;
        assert_eq!(std::format!("{b}"), "12:1f.7");
    }

    #[test]
    fn header_types() {
        assert_eq!(HeaderType::from_bits(0x80), HeaderType::Endpoint);
        assert_eq!(HeaderType::from_bits(0x81), HeaderType::Bridge);
        assert_eq!(HeaderType::Bridge.bar_count(), 2);
        assert_eq!(HeaderType::Endpoint.bar_count(), 6);
        assert_eq!(HeaderType::CardBus.bar_count(), 0);
    }
}
