//! Capability list walk and MSI / MSI-X / PCIe capability parsing.

use crate::{reg, Bdf, ConfigAccess, HeaderType, STATUS_CAP_LIST};

pub const CAP_ID_MSI: u8 = 0x05;
pub const CAP_ID_PCIE: u8 = 0x10;
pub const CAP_ID_MSIX: u8 = 0x11;

/// Most capabilities that fit in the 192 bytes after the header (4 bytes
/// each); the walk never visits more.
pub const MAX_CAPS: usize = 48;

/// One capability header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Capability {
    pub offset: u8,
    pub id: u8,
}

/// Iterator over the standard capability list. Stops at a null pointer, a
/// pointer into the header (< 0x40), a revisited offset or after
/// [`MAX_CAPS`] entries; [`looped`](Self::looped) tells whether it was cut
/// short by a malformed list.
pub struct CapabilityIter<'a, C: ConfigAccess + ?Sized> {
    cfg: &'a mut C,
    bdf: Bdf,
    next: u8,
    visited: [u64; 1],
    count: usize,
    looped: bool,
}

impl<'a, C: ConfigAccess + ?Sized> CapabilityIter<'a, C> {
    /// Starts at the header's capabilities pointer (empty if the status
    /// register has no capability list or the header is not type 0/1).
    pub fn new(cfg: &'a mut C, bdf: Bdf) -> Self {
        let status = cfg.read16(bdf, reg::STATUS);
        let ht = HeaderType::from_bits(cfg.read8(bdf, reg::HEADER_TYPE));
        let start = if status != 0xffff
            && status & STATUS_CAP_LIST != 0
            && matches!(ht, HeaderType::Endpoint | HeaderType::Bridge)
        {
            cfg.read8(bdf, reg::CAPABILITIES_PTR)
        } else {
            0
        };
        Self {
            cfg,
            bdf,
            next: start,
            visited: [0],
            count: 0,
            looped: false,
        }
    }

    /// True if the walk stopped because of a loop or a malformed pointer.
    pub fn looped(&self) -> bool {
        self.looped
    }
}

impl<C: ConfigAccess + ?Sized> Iterator for CapabilityIter<'_, C> {
    type Item = Capability;

    fn next(&mut self) -> Option<Capability> {
        let off = self.next & 0xfc;
        if off == 0 {
            return None;
        }
        if off < 0x40 {
            self.looped = true;
            self.next = 0;
            return None;
        }
        // 48 possible dword slots 0x40..0x100: one bit each.
        let slot = (off as usize - 0x40) / 4;
        if self.count >= MAX_CAPS || self.visited[0] & (1 << slot) != 0 {
            self.looped = true;
            self.next = 0;
            return None;
        }
        self.visited[0] |= 1 << slot;
        self.count += 1;
        let hdr = self.cfg.read32(self.bdf, off as u16);
        self.next = (hdr >> 8) as u8;
        Some(Capability {
            offset: off,
            id: hdr as u8,
        })
    }
}

/// Offset of the first capability with `id`.
pub fn find_capability<C: ConfigAccess + ?Sized>(cfg: &mut C, bdf: Bdf, id: u8) -> Option<u8> {
    CapabilityIter::new(cfg, bdf)
        .find(|c| c.id == id)
        .map(|c| c.offset)
}

/// Parsed MSI capability.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MsiCapability {
    pub offset: u8,
    pub enabled: bool,
    /// log2 of vectors requested (Multiple Message Capable).
    pub multi_message_capable: u8,
    /// log2 of vectors enabled (Multiple Message Enable).
    pub multi_message_enable: u8,
    pub is_64bit: bool,
    pub per_vector_masking: bool,
}

impl MsiCapability {
    pub const CTRL_ENABLE: u16 = 1 << 0;
    pub const CTRL_64BIT: u16 = 1 << 7;
    pub const CTRL_PVM: u16 = 1 << 8;

    pub fn parse<C: ConfigAccess + ?Sized>(cfg: &mut C, bdf: Bdf, offset: u8) -> Self {
        let ctrl = cfg.read16(bdf, offset as u16 + 2);
        Self {
            offset,
            enabled: ctrl & Self::CTRL_ENABLE != 0,
            multi_message_capable: ((ctrl >> 1) & 7) as u8,
            multi_message_enable: ((ctrl >> 4) & 7) as u8,
            is_64bit: ctrl & Self::CTRL_64BIT != 0,
            per_vector_masking: ctrl & Self::CTRL_PVM != 0,
        }
    }
    pub fn find<C: ConfigAccess + ?Sized>(cfg: &mut C, bdf: Bdf) -> Option<Self> {
        find_capability(cfg, bdf, CAP_ID_MSI).map(|o| Self::parse(cfg, bdf, o))
    }
    /// Offset of the message-address (low) dword.
    pub const fn addr_offset(&self) -> u16 {
        self.offset as u16 + 4
    }
    /// Offset of the message-data dword.
    pub const fn data_offset(&self) -> u16 {
        self.offset as u16 + if self.is_64bit { 0xc } else { 8 }
    }
    /// Offset of the mask-bits dword (per-vector masking only).
    pub const fn mask_offset(&self) -> Option<u16> {
        if self.per_vector_masking {
            Some(self.data_offset() + 4)
        } else {
            None
        }
    }
    /// Programs address and data (single vector) and enables MSI.
    /// Returns false if `addr` needs 64 bits and the function has only 32.
    pub fn program<C: ConfigAccess + ?Sized>(
        &self,
        cfg: &mut C,
        bdf: Bdf,
        addr: u64,
        data: u16,
    ) -> bool {
        if addr >> 32 != 0 && !self.is_64bit {
            return false;
        }
        cfg.write32(bdf, self.addr_offset(), addr as u32 & !3);
        if self.is_64bit {
            cfg.write32(bdf, self.addr_offset() + 4, (addr >> 32) as u32);
        }
        let d = cfg.read32(bdf, self.data_offset());
        cfg.write32(bdf, self.data_offset(), (d & 0xffff_0000) | data as u32);
        let hdr = cfg.read32(bdf, self.offset as u16);
        // MME = 0 (one vector), enable.
        let ctrl = ((hdr >> 16) as u16 & !(7 << 4)) | Self::CTRL_ENABLE;
        cfg.write32(
            bdf,
            self.offset as u16,
            (hdr & 0xffff) | (ctrl as u32) << 16,
        );
        true
    }
}

/// Parsed MSI-X capability.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MsixCapability {
    pub offset: u8,
    /// Number of table entries.
    pub table_size: u16,
    pub enabled: bool,
    pub function_masked: bool,
    /// BAR index holding the table.
    pub table_bir: u8,
    /// Byte offset of the table in that BAR (8-byte aligned).
    pub table_offset: u32,
    pub pba_bir: u8,
    pub pba_offset: u32,
}

impl MsixCapability {
    pub const CTRL_ENABLE: u16 = 1 << 15;
    pub const CTRL_FUNCTION_MASK: u16 = 1 << 14;
    /// Size of one table entry (address lo, hi, data, vector control).
    pub const ENTRY_SIZE: u32 = 16;

    pub fn parse<C: ConfigAccess + ?Sized>(cfg: &mut C, bdf: Bdf, offset: u8) -> Self {
        let ctrl = cfg.read16(bdf, offset as u16 + 2);
        let table = cfg.read32(bdf, offset as u16 + 4);
        let pba = cfg.read32(bdf, offset as u16 + 8);
        Self {
            offset,
            table_size: (ctrl & 0x7ff) + 1,
            enabled: ctrl & Self::CTRL_ENABLE != 0,
            function_masked: ctrl & Self::CTRL_FUNCTION_MASK != 0,
            table_bir: (table & 7) as u8,
            table_offset: table & !7,
            pba_bir: (pba & 7) as u8,
            pba_offset: pba & !7,
        }
    }
    pub fn find<C: ConfigAccess + ?Sized>(cfg: &mut C, bdf: Bdf) -> Option<Self> {
        find_capability(cfg, bdf, CAP_ID_MSIX).map(|o| Self::parse(cfg, bdf, o))
    }
    /// Byte offset of table entry `n` within the table BAR.
    pub const fn entry_offset(&self, n: u16) -> u32 {
        self.table_offset + n as u32 * Self::ENTRY_SIZE
    }
    /// Sets the enable and function-mask bits.
    pub fn set_control<C: ConfigAccess + ?Sized>(
        &self,
        cfg: &mut C,
        bdf: Bdf,
        enable: bool,
        mask_all: bool,
    ) {
        let hdr = cfg.read32(bdf, self.offset as u16);
        let mut ctrl = (hdr >> 16) as u16 & !(Self::CTRL_ENABLE | Self::CTRL_FUNCTION_MASK);
        if enable {
            ctrl |= Self::CTRL_ENABLE;
        }
        if mask_all {
            ctrl |= Self::CTRL_FUNCTION_MASK;
        }
        cfg.write32(
            bdf,
            self.offset as u16,
            (hdr & 0xffff) | (ctrl as u32) << 16,
        );
    }
}

/// PCI Express capability summary.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PcieCapability {
    pub offset: u8,
    pub version: u8,
    /// Device/port type (0 endpoint, 4 root port, 9 RC integrated endpoint...).
    pub port_type: u8,
}

impl PcieCapability {
    pub fn find<C: ConfigAccess + ?Sized>(cfg: &mut C, bdf: Bdf) -> Option<Self> {
        let offset = find_capability(cfg, bdf, CAP_ID_PCIE)?;
        let caps = cfg.read16(bdf, offset as u16 + 2);
        Some(Self {
            offset,
            version: (caps & 0xf) as u8,
            port_type: ((caps >> 4) & 0xf) as u8,
        })
    }
}
