//! Decoding what the run ioctl reported: which kind of exit, and for MMIO
//! the access width and extension from the (TSM-rewritten) htinst.
#![forbid(unsafe_code)]

use crate::tsm::Exit;

pub const SCAUSE_INTERRUPT: u64 = 1 << 63;
/// Environment call from VS-mode: a forwarded SBI call.
pub const CAUSE_ECALL_VS: u64 = 10;
pub const CAUSE_FETCH_GUEST_PAGE_FAULT: u64 = 20;
pub const CAUSE_LOAD_GUEST_PAGE_FAULT: u64 = 21;
pub const CAUSE_STORE_GUEST_PAGE_FAULT: u64 = 23;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    Fetch,
    Load,
    Store,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A forwarded ecall (or a COVG/HSM notification): eid a7, fid a6.
    Ecall { eid: u64, fid: u64, a: [u64; 8] },
    /// A guest page fault at `gpa`; `htinst` is non-zero only when the TSM
    /// made it an MMIO exit (then `store_value` is a[0]).
    Fault {
        access: Access,
        gpa: u64,
        htinst: u64,
        store_value: u64,
    },
    /// An interrupt exit (the driver should serve these itself).
    Interrupt(u64),
    /// Salus said the vCPU cannot run again.
    NotResumable,
    /// Anything else.
    Unexpected,
}

/// A DBCN console_write exit, whose bytes Salus copied into the exit.
pub fn is_console_write(scause: u64, a: &[u64; 8]) -> bool {
    scause == 10
        && a[7] == sbi_abi::dbcn::EID_DBCN as u64
        && a[6] == sbi_abi::dbcn::CONSOLE_WRITE as u64
}

pub fn classify(x: &Exit) -> Kind {
    if !x.resumable {
        return Kind::NotResumable;
    }
    if x.scause & SCAUSE_INTERRUPT != 0 {
        return Kind::Interrupt(x.scause & !SCAUSE_INTERRUPT);
    }
    let access = match x.scause {
        CAUSE_ECALL_VS => {
            return Kind::Ecall {
                eid: x.a[7],
                fid: x.a[6],
                a: x.a,
            }
        }
        CAUSE_FETCH_GUEST_PAGE_FAULT => Access::Fetch,
        CAUSE_LOAD_GUEST_PAGE_FAULT => Access::Load,
        CAUSE_STORE_GUEST_PAGE_FAULT => Access::Store,
        _ => return Kind::Unexpected,
    };
    Kind::Fault {
        access,
        gpa: x.gpa,
        htinst: x.htinst,
        store_value: x.a[0],
    }
}

/// One MMIO access: `width` bytes; loads zero-extend when `unsigned`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mmio {
    pub store: bool,
    pub width: u64,
    pub unsigned: bool,
}

/// Decodes the transformed load/store in `htinst` (the privileged spec's
/// transformed instruction: bit 1 clear for a compressed original; Salus
/// has rewritten the data register to a0). Only integer loads and stores.
pub fn decode_mmio(access: Access, htinst: u64) -> Result<Mmio, String> {
    if htinst == 0 {
        return Err("htinst is 0 (no transformed instruction to emulate)".into());
    }
    if htinst & 1 == 0 {
        return Err(format!(
            "htinst {htinst:#x} is not a transformed load/store"
        ));
    }
    let opcode = htinst & 0x7d; // bit 1 only says whether it was compressed
    let funct3 = (htinst >> 12) & 7;
    let m = match (access, opcode) {
        (Access::Load, 0x01) if funct3 != 7 => Mmio {
            store: false,
            width: 1 << (funct3 & 3),
            unsigned: funct3 & 4 != 0,
        },
        (Access::Store, 0x21) if funct3 < 4 => Mmio {
            store: true,
            width: 1 << funct3,
            unsigned: false,
        },
        _ => {
            return Err(format!(
                "htinst {htinst:#x} is not an integer {} the VMM can emulate",
                if access == Access::Store {
                    "store"
                } else {
                    "load"
                }
            ))
        }
    };
    Ok(m)
}

// Width arithmetic is guestvm's protocol's (the same for any MMIO).
use crate::protocol::{sign_extend, truncate};

impl Mmio {
    /// What a load of this kind leaves in its register when the device
    /// answers `raw` (only the low `width` bytes of it count).
    pub const fn load_result(&self, raw: u64) -> u64 {
        let v = truncate(raw, self.width);
        if self.unsigned {
            v
        } else {
            sign_extend(v, self.width)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Standard encodings with rd/rs2 = a0 (x10), rs1 = a5.
    fn load(funct3: u64) -> u64 {
        (funct3 << 12) | (15 << 15) | (10 << 7) | 0x03
    }
    fn store(funct3: u64) -> u64 {
        (10 << 20) | (15 << 15) | (funct3 << 12) | 0x23
    }

    #[test]
    fn loads_of_every_width() {
        let cases = [
            (0, 1, false), // lb
            (1, 2, false), // lh
            (2, 4, false), // lw
            (3, 8, false), // ld
            (4, 1, true),  // lbu
            (5, 2, true),  // lhu
            (6, 4, true),  // lwu
        ];
        for (f3, width, unsigned) in cases {
            let m = decode_mmio(Access::Load, load(f3)).unwrap();
            assert_eq!(
                m,
                Mmio {
                    store: false,
                    width,
                    unsigned
                },
                "funct3 {f3}"
            );
        }
        assert!(decode_mmio(Access::Load, load(7)).is_err());
    }

    #[test]
    fn stores_and_compressed_forms() {
        for (f3, width) in [(0, 1), (1, 2), (2, 4), (3, 8)] {
            let m = decode_mmio(Access::Store, store(f3)).unwrap();
            assert!(m.store && m.width == width && !m.unsigned);
        }
        assert!(decode_mmio(Access::Store, store(4)).is_err());
        // A compressed c.lw / c.sw transformed: bit 1 cleared.
        let c_lw = load(2) & !2;
        assert_eq!(decode_mmio(Access::Load, c_lw).unwrap().width, 4);
        let c_sw = store(2) & !2;
        assert_eq!(decode_mmio(Access::Store, c_sw).unwrap().width, 4);
    }

    #[test]
    fn what_is_not_emulated() {
        assert!(decode_mmio(Access::Load, 0).is_err());
        // A store encoding on a load fault and vice versa.
        assert!(decode_mmio(Access::Load, store(3)).is_err());
        assert!(decode_mmio(Access::Store, load(3)).is_err());
        // FP load (flw, opcode 0x07), fetch, and the guest-page-table
        // pseudo-instructions (0x2000 / 0x3020: bit 0 clear).
        assert!(decode_mmio(Access::Load, (2 << 12) | 0x07).is_err());
        assert!(decode_mmio(Access::Fetch, load(3)).is_err());
        assert!(decode_mmio(Access::Load, 0x2000).is_err());
        assert!(decode_mmio(Access::Store, 0x3020).is_err());
    }

    #[test]
    fn load_extension() {
        let raw = 0x8877_6655_f3f2_f1f0;
        let lb = decode_mmio(Access::Load, load(0)).unwrap();
        let lbu = decode_mmio(Access::Load, load(4)).unwrap();
        let lw = decode_mmio(Access::Load, load(2)).unwrap();
        let lwu = decode_mmio(Access::Load, load(6)).unwrap();
        let ld = decode_mmio(Access::Load, load(3)).unwrap();
        assert_eq!(lb.load_result(raw), 0xffff_ffff_ffff_fff0);
        assert_eq!(lbu.load_result(raw), 0xf0);
        assert_eq!(lw.load_result(raw), 0xffff_ffff_f3f2_f1f0);
        assert_eq!(lwu.load_result(raw), 0xf3f2_f1f0);
        assert_eq!(ld.load_result(raw), raw);
        assert_eq!(lw.load_result(0x7fff_ffff), 0x7fff_ffff);
    }

    #[test]
    fn classification() {
        let mut x = Exit {
            resumable: true,
            scause: 10,
            ..Default::default()
        };
        x.a[6] = 1;
        x.a[7] = 0x4442_434e;
        assert!(matches!(
            classify(&x),
            Kind::Ecall {
                eid: 0x4442_434e,
                fid: 1,
                ..
            }
        ));
        x.scause = 23;
        x.gpa = 0x1000_0008;
        x.htinst = store(3);
        x.a[0] = 42;
        assert_eq!(
            classify(&x),
            Kind::Fault {
                access: Access::Store,
                gpa: 0x1000_0008,
                htinst: store(3),
                store_value: 42
            }
        );
        x.scause = SCAUSE_INTERRUPT | 5;
        assert_eq!(classify(&x), Kind::Interrupt(5));
        x.scause = 2;
        assert_eq!(classify(&x), Kind::Unexpected);
        x.resumable = false;
        assert_eq!(classify(&x), Kind::NotResumable);
    }
}
