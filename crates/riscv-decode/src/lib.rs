//! # riscv-decode
//!
//! Decodes the integer loads and stores a trapping guest MMIO access can
//! come from, so a hypervisor can emulate the access and step past the
//! instruction:
//!
//! * [`decode`]: a raw instruction as fetched from guest memory (32-bit, or
//!   16-bit compressed: RVC `C.LW/C.LD/C.SW/C.SD`, their SP-relative forms
//!   and the Zcb byte/halfword forms);
//! * [`decode_transformed`]: the value the hart writes to `htinst` on a
//!   guest-page fault (privileged spec, "Transformed Instruction or
//!   Pseudoinstruction for mtinst or htinst"). For loads and stores this is
//!   the 32-bit form of the instruction with its immediate and `rs1` zeroed
//!   and bit 1 cleared when the original was compressed; the
//!   pseudoinstructions written for implicit (VS-stage page-table) accesses
//!   are reported as [`Transformed::Implicit`].
//!
//! Floating-point and vector loads/stores, atomics and anything else decode
//! to `None`: an emulator should then reflect the fault to the guest.
#![no_std]
#![forbid(unsafe_code)]

/// Access width in bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Width {
    Byte,
    Half,
    Word,
    Double,
}

impl Width {
    pub const fn bytes(self) -> u64 {
        match self {
            Width::Byte => 1,
            Width::Half => 2,
            Width::Word => 4,
            Width::Double => 8,
        }
    }
}

/// What the instruction does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Access {
    /// Load into `rd`, sign-extended when `signed`.
    Load { rd: u8, width: Width, signed: bool },
    /// Store the low bytes of `rs2`.
    Store { rs2: u8, width: Width },
}

/// A decoded load or store.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MemOp {
    pub access: Access,
    /// Length of the original instruction in bytes (2 or 4): how far to
    /// advance the pc after emulating it.
    pub len: u8,
}

impl MemOp {
    pub const fn width(&self) -> Width {
        match self.access {
            Access::Load { width, .. } | Access::Store { width, .. } => width,
        }
    }
    pub const fn is_store(&self) -> bool {
        matches!(self.access, Access::Store { .. })
    }
    /// The value a load of `raw` (the bytes read, zero-extended) puts in
    /// `rd`; `raw` itself for a store.
    pub const fn extend(&self, raw: u64) -> u64 {
        match self.access {
            Access::Load {
                width,
                signed: true,
                ..
            } => {
                let shift = 64 - 8 * width.bytes() as u32;
                (((raw << shift) as i64) >> shift) as u64
            }
            Access::Load { width, .. } => raw & width_mask(width),
            Access::Store { .. } => raw,
        }
    }
}

/// Mask of the low `width` bytes.
pub const fn width_mask(width: Width) -> u64 {
    match width {
        Width::Double => u64::MAX,
        w => (1u64 << (8 * w.bytes())) - 1,
    }
}

/// Length in bytes of the instruction whose low 16 bits are `lo`: 2 for
/// compressed, 4 otherwise (longer encodings are reserved and not used by
/// any ratified extension Salus cares about; they report 4).
pub const fn insn_len(lo: u16) -> u8 {
    if lo & 3 == 3 {
        4
    } else {
        2
    }
}

const OP_LOAD: u32 = 0x03;
const OP_STORE: u32 = 0x23;

/// Decodes a 32-bit load or store (opcode LOAD or STORE).
fn decode32(insn: u32, len: u8) -> Option<MemOp> {
    let opcode = insn & 0x7f;
    let funct3 = (insn >> 12) & 7;
    let rd = ((insn >> 7) & 0x1f) as u8;
    let rs2 = ((insn >> 20) & 0x1f) as u8;
    let access = match opcode {
        OP_LOAD => {
            let (width, signed) = match funct3 {
                0 => (Width::Byte, true),
                1 => (Width::Half, true),
                2 => (Width::Word, true),
                3 => (Width::Double, true),
                4 => (Width::Byte, false),
                5 => (Width::Half, false),
                6 => (Width::Word, false),
                _ => return None,
            };
            Access::Load { rd, width, signed }
        }
        OP_STORE => {
            let width = match funct3 {
                0 => Width::Byte,
                1 => Width::Half,
                2 => Width::Word,
                3 => Width::Double,
                _ => return None,
            };
            Access::Store { rs2, width }
        }
        _ => return None,
    };
    Some(MemOp { access, len })
}

/// Decodes a 16-bit compressed load or store (RV64C and Zcb).
fn decode16(insn: u16) -> Option<MemOp> {
    let op = insn & 3;
    let funct3 = (insn >> 13) & 7;
    // rd' / rs2' (bits 4:2) and rs1' (bits 9:7) name x8..x15.
    let rdp = (((insn >> 2) & 7) + 8) as u8;
    let rd_full = ((insn >> 7) & 0x1f) as u8;
    let rs2_full = ((insn >> 2) & 0x1f) as u8;
    let load = |rd, width, signed| Access::Load { rd, width, signed };
    let store = |rs2, width| Access::Store { rs2, width };
    let access = match (op, funct3) {
        (0, 2) => load(rdp, Width::Word, true),   // C.LW
        (0, 3) => load(rdp, Width::Double, true), // C.LD (RV64)
        (0, 6) => store(rdp, Width::Word),        // C.SW
        (0, 7) => store(rdp, Width::Double),      // C.SD (RV64)
        (0, 4) => {
            // Zcb: funct6 = 100000 (C.LBU), 100001 (C.LHU / C.LH),
            // 100010 (C.SB), 100011 (C.SH).
            let funct6 = (insn >> 10) & 0x3f;
            let bit6 = (insn >> 6) & 1;
            match (funct6, bit6) {
                (0b100000, _) => load(rdp, Width::Byte, false),
                (0b100001, 0) => load(rdp, Width::Half, false),
                (0b100001, 1) => load(rdp, Width::Half, true),
                (0b100010, _) => store(rdp, Width::Byte),
                (0b100011, 0) => store(rdp, Width::Half),
                _ => return None,
            }
        }
        (2, 2) if rd_full != 0 => load(rd_full, Width::Word, true), // C.LWSP
        (2, 3) if rd_full != 0 => load(rd_full, Width::Double, true), // C.LDSP
        (2, 6) => store(rs2_full, Width::Word),                     // C.SWSP
        (2, 7) => store(rs2_full, Width::Double),                   // C.SDSP
        _ => return None,
    };
    Some(MemOp { access, len: 2 })
}

/// Decodes the instruction whose first bytes are `insn` (for a compressed
/// instruction only the low 16 bits are looked at).
pub fn decode(insn: u32) -> Option<MemOp> {
    if insn_len(insn as u16) == 2 {
        decode16(insn as u16)
    } else {
        decode32(insn, 4)
    }
}

/// A decoded `htinst` / `mtinst` value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Transformed {
    /// Zero: the hart gave no information; read the instruction instead.
    None,
    /// A load or store (its `len` is the original instruction's length).
    MemOp(MemOp),
    /// A pseudoinstruction: the fault came from an implicit access for
    /// VS-stage address translation, not from the instruction itself.
    Implicit,
    /// Something this crate does not emulate (AMOs, FP, vector, custom).
    Other(u32),
}

/// Decodes an `htinst` value written on a load/store guest-page fault.
pub fn decode_transformed(htinst: u64) -> Transformed {
    let v = htinst as u32;
    if htinst == 0 {
        return Transformed::None;
    }
    // Pseudoinstructions (implicit VS-stage page-table reads and writes,
    // 32- or 64-bit): 0x00002000, 0x00003000, 0x00002020, 0x00003020.
    if htinst >> 32 == 0 && matches!(v, 0x2000 | 0x3000 | 0x2020 | 0x3020) {
        return Transformed::Implicit;
    }
    if v & 1 == 0 || htinst >> 32 != 0 {
        return Transformed::Other(v);
    }
    // Bit 1 clear: the original instruction was 16 bits long.
    let len = if v & 2 == 0 { 2 } else { 4 };
    match decode32(v | 2, len) {
        Some(op) => Transformed::MemOp(op),
        None => Transformed::Other(v),
    }
}

#[cfg(test)]
mod tests;
