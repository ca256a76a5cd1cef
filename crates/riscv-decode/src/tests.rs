use super::*;
use proptest::prelude::*;

fn load(rd: u8, width: Width, signed: bool, len: u8) -> Option<MemOp> {
    Some(MemOp {
        access: Access::Load { rd, width, signed },
        len,
    })
}

fn store(rs2: u8, width: Width, len: u8) -> Option<MemOp> {
    Some(MemOp {
        access: Access::Store { rs2, width },
        len,
    })
}

#[test]
fn base_loads_and_stores() {
    assert_eq!(decode(0x0005_a503), load(10, Width::Word, true, 4)); // lw a0,0(a1)
    assert_eq!(decode(0x0007_c703), load(14, Width::Byte, false, 4)); // lbu a4,0(a5)
    assert_eq!(decode(0x00f1_3423), store(15, Width::Double, 4)); // sd a5,8(sp)
    assert_eq!(decode(0x0005_b503), load(10, Width::Double, true, 4)); // ld
    assert_eq!(decode(0x0005_e503), load(10, Width::Word, false, 4)); // lwu
    assert_eq!(decode(0x0005_d503), load(10, Width::Half, false, 4)); // lhu
    assert_eq!(decode(0x0005_f503), None); // funct3 7: not a load
    assert_eq!(decode(0x00f1_4423), None); // funct3 4: not a store
    assert_eq!(decode(0x0000_0013), None); // nop
    assert_eq!(decode(0x0005_a507), None); // flw
}

#[test]
fn compressed() {
    assert_eq!(decode(0x4188), load(10, Width::Word, true, 2)); // c.lw a0,0(a1)
    assert_eq!(decode(0x6188), load(10, Width::Double, true, 2)); // c.ld
    assert_eq!(decode(0xc188), store(10, Width::Word, 2)); // c.sw
    assert_eq!(decode(0xe188), store(10, Width::Double, 2)); // c.sd
    assert_eq!(decode(0x4502), load(10, Width::Word, true, 2)); // c.lwsp a0,0(sp)
    assert_eq!(decode(0xe02a), store(10, Width::Double, 2)); // c.sdsp a0,0(sp)
    assert_eq!(decode(0x8188), load(10, Width::Byte, false, 2)); // c.lbu
    assert_eq!(decode(0x8588), load(10, Width::Half, false, 2)); // c.lhu
    assert_eq!(decode(0x85c8), load(10, Width::Half, true, 2)); // c.lh
    assert_eq!(decode(0x8988), store(10, Width::Byte, 2)); // c.sb
    assert_eq!(decode(0x8d88), store(10, Width::Half, 2)); // c.sh
    assert_eq!(decode(0x0001), None); // c.nop
    assert_eq!(decode(0x4002), None); // c.lwsp with rd = x0 (reserved)
                                      // Upper half ignored for a compressed instruction.
    assert_eq!(decode(0xdead_4188), load(10, Width::Word, true, 2));
}

#[test]
fn transformed() {
    assert_eq!(decode_transformed(0), Transformed::None);
    assert_eq!(decode_transformed(0x2000), Transformed::Implicit);
    assert_eq!(decode_transformed(0x3020), Transformed::Implicit);
    // lw a0 with rs1/imm zeroed.
    assert_eq!(
        decode_transformed(0x0000_2503),
        Transformed::MemOp(load(10, Width::Word, true, 4).unwrap())
    );
    // The same from a compressed c.lw: bit 1 clear.
    assert_eq!(
        decode_transformed(0x0000_2501),
        Transformed::MemOp(load(10, Width::Word, true, 2).unwrap())
    );
    // sb a5 from a compressed c.sb.
    assert_eq!(
        decode_transformed(0x00f0_0021),
        Transformed::MemOp(store(15, Width::Byte, 2).unwrap())
    );
    assert_eq!(decode_transformed(0x0000_2507), Transformed::Other(0x2507));
    assert!(matches!(
        decode_transformed(0x1_0000_2503),
        Transformed::Other(_)
    ));
}

#[test]
fn extension() {
    let lb = load(1, Width::Byte, true, 4).unwrap();
    assert_eq!(lb.extend(0x80), 0xffff_ffff_ffff_ff80);
    let lbu = load(1, Width::Byte, false, 4).unwrap();
    assert_eq!(lbu.extend(0x1_80), 0x80);
    let lw = load(1, Width::Word, true, 4).unwrap();
    assert_eq!(lw.extend(0x7fff_ffff), 0x7fff_ffff);
    assert_eq!(lw.extend(0x8000_0000), 0xffff_ffff_8000_0000);
    let ld = load(1, Width::Double, true, 4).unwrap();
    assert_eq!(ld.extend(u64::MAX), u64::MAX);
}

proptest! {
    /// Every 32-bit load/store decodes to the same access as its
    /// transformed form (rs1 and immediate zeroed).
    #[test]
    fn transformed_matches_original(insn in any::<u32>()) {
        let insn = insn | 3;
        if let Some(op) = decode(insn) {
            let opcode = insn & 0x7f;
            let t = if opcode == OP_LOAD {
                insn & 0x0000_7fff & !(0x1f << 15) | (insn & (0x1f << 7))
            } else {
                insn & ((0x1f << 20) | (7 << 12) | 0x7f)
            };
            prop_assert_eq!(decode_transformed(t as u64), Transformed::MemOp(op));
        }
    }

    /// Decoding never panics and lengths are 2 or 4.
    #[test]
    fn lengths(insn in any::<u32>()) {
        if let Some(op) = decode(insn) {
            prop_assert!(op.len == insn_len(insn as u16));
        }
    }
}
