//! Base address registers: decoding and sizing.
//!
//! Memory BAR: bit 0 = 0, bits 2:1 type (00 32-bit, 10 64-bit), bit 3
//! prefetchable, address bits 31:4 (64-bit: the next BAR holds bits 63:32).
//! I/O BAR: bit 0 = 1, address bits 31:2.

use crate::{read_command, reg, write_command, Bdf, ConfigAccess, FunctionInfo, PciError};

/// A decoded BAR.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Bar {
    Io { port: u32 },
    Mem32 { addr: u32, prefetchable: bool },
    Mem64 { addr: u64, prefetchable: bool },
}

impl Bar {
    /// Number of BAR slots this BAR occupies.
    pub const fn slots(self) -> u8 {
        match self {
            Bar::Mem64 { .. } => 2,
            _ => 1,
        }
    }
    pub const fn addr(self) -> u64 {
        match self {
            Bar::Io { port } => port as u64,
            Bar::Mem32 { addr, .. } => addr as u64,
            Bar::Mem64 { addr, .. } => addr,
        }
    }
}

/// A BAR with its decoded size (0 = unimplemented).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BarInfo {
    pub index: u8,
    pub bar: Bar,
    pub size: u64,
}

fn bar_offset(index: u8) -> u16 {
    reg::BAR0 + index as u16 * 4
}

fn bar_count<C: ConfigAccess + ?Sized>(cfg: &mut C, bdf: Bdf) -> Result<u8, PciError> {
    Ok(FunctionInfo::read(cfg, bdf)
        .ok_or(PciError::NoDevice)?
        .header_type
        .bar_count())
}

/// Decodes BAR `index` from its current value(s).
pub fn decode_bar<C: ConfigAccess + ?Sized>(
    cfg: &mut C,
    bdf: Bdf,
    index: u8,
) -> Result<Bar, PciError> {
    let count = bar_count(cfg, bdf)?;
    if index >= count {
        return Err(PciError::BadBarIndex(index));
    }
    let lo = cfg.read32(bdf, bar_offset(index));
    decode_raw(lo, index, count, || cfg.read32(bdf, bar_offset(index + 1)))
}

fn decode_raw(lo: u32, index: u8, count: u8, hi: impl FnOnce() -> u32) -> Result<Bar, PciError> {
    if lo & 1 != 0 {
        return Ok(Bar::Io { port: lo & !3 });
    }
    let prefetchable = lo & 8 != 0;
    match (lo >> 1) & 3 {
        0 => Ok(Bar::Mem32 {
            addr: lo & !0xf,
            prefetchable,
        }),
        2 if index + 1 < count => Ok(Bar::Mem64 {
            addr: (hi() as u64) << 32 | (lo & !0xf) as u64,
            prefetchable,
        }),
        _ => Err(PciError::MalformedBar(index)),
    }
}

/// Sizes BAR `index`: with I/O and memory decoding disabled, writes all
/// ones, reads the size mask back and restores the original value(s) and
/// the command register.
pub fn size_bar<C: ConfigAccess + ?Sized>(
    cfg: &mut C,
    bdf: Bdf,
    index: u8,
) -> Result<BarInfo, PciError> {
    let bar = decode_bar(cfg, bdf, index)?;
    let cmd = read_command(cfg, bdf);
    write_command(
        cfg,
        bdf,
        cmd & !(crate::command::IO_SPACE | crate::command::MEMORY_SPACE),
    );
    let mut probe = |i: u8| {
        let off = bar_offset(i);
        let orig = cfg.read32(bdf, off);
        cfg.write32(bdf, off, 0xffff_ffff);
        let mask = cfg.read32(bdf, off);
        cfg.write32(bdf, off, orig);
        mask
    };
    let size = match bar {
        Bar::Io { .. } => {
            let m = probe(index) & !3;
            if m == 0 {
                0
            } else {
                // Devices decoding only 16 I/O address bits return 0 in 31:16.
                let m = if m & 0xffff_0000 == 0 {
                    m | 0xffff_0000
                } else {
                    m
                };
                (!m).wrapping_add(1) as u64
            }
        }
        Bar::Mem32 { .. } => {
            let m = probe(index) & !0xf;
            if m == 0 {
                0
            } else {
                (!m).wrapping_add(1) as u64
            }
        }
        Bar::Mem64 { .. } => {
            let lo = probe(index) & !0xf;
            let hi = probe(index + 1);
            let m = (hi as u64) << 32 | lo as u64;
            if m == 0 {
                0
            } else {
                (!m).wrapping_add(1)
            }
        }
    };
    write_command(cfg, bdf, cmd);
    Ok(BarInfo { index, bar, size })
}

/// Decodes and sizes every BAR of the function (skipping the upper halves
/// of 64-bit BARs), calling `f` for each implemented one (size > 0).
pub fn for_each_bar<C: ConfigAccess + ?Sized, F: FnMut(BarInfo)>(
    cfg: &mut C,
    bdf: Bdf,
    mut f: F,
) -> Result<(), PciError> {
    let count = bar_count(cfg, bdf)?;
    let mut i = 0;
    while i < count {
        let info = size_bar(cfg, bdf, i)?;
        if info.size != 0 {
            f(info);
        }
        i += info.bar.slots();
    }
    Ok(())
}

/// Programs BAR `index` with `addr` (both halves for a 64-bit BAR), keeping
/// the type bits.
pub fn set_bar_addr<C: ConfigAccess + ?Sized>(
    cfg: &mut C,
    bdf: Bdf,
    index: u8,
    addr: u64,
) -> Result<(), PciError> {
    let bar = decode_bar(cfg, bdf, index)?;
    let off = bar_offset(index);
    let lo = cfg.read32(bdf, off);
    match bar {
        Bar::Io { .. } => cfg.write32(bdf, off, (addr as u32 & !3) | (lo & 3)),
        Bar::Mem32 { .. } => cfg.write32(bdf, off, (addr as u32 & !0xf) | (lo & 0xf)),
        Bar::Mem64 { .. } => {
            cfg.write32(bdf, off, (addr as u32 & !0xf) | (lo & 0xf));
            cfg.write32(bdf, off + 4, (addr >> 32) as u32);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_decoding() {
        assert_eq!(decode_raw(0xc001, 0, 6, || 0), Ok(Bar::Io { port: 0xc000 }));
        assert_eq!(
            decode_raw(0xfe00_0008, 0, 6, || 0),
            Ok(Bar::Mem32 {
                addr: 0xfe00_0000,
                prefetchable: true
            })
        );
        assert_eq!(
            decode_raw(0x4000_000c, 2, 6, || 0x1),
            Ok(Bar::Mem64 {
                addr: 0x1_4000_0000,
                prefetchable: true
            })
        );
        assert_eq!(decode_raw(0x4, 5, 6, || 0), Err(PciError::MalformedBar(5)));
        assert_eq!(decode_raw(0x2, 0, 6, || 0), Err(PciError::MalformedBar(0)));
    }
}
