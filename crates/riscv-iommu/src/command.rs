//! Command-queue commands (16 bytes, two little-endian doublewords).
//!
//! ```text
//! IOTINVAL (1): w0 = opcode[6:0] func3[9:7] (VMA 0, GVMA 1) AV[10]
//!               PSCID[31:12] PSCV[32] GV[33] GSCID[59:44]
//!               w1 = ADDR[63:12] at [61:10]
//! IOFENCE  (2): w0 = opcode func3 (C 0) AV[10] WSI[11] PR[12] PW[13]
//!               DATA[63:32];  w1 = ADDR[63:2] at [61:0]
//! IODIR    (3): w0 = opcode func3 (INVAL_DDT 0, INVAL_PDT 1) PID[31:12]
//!               DV[33] DID[63:40];  w1 = 0
//! ATS      (4): w0 = opcode func3 (INVAL 0, PRGR 1) PID[31:12] PV[32]
//!               DSV[33] RID[55:40] DSEG[63:56];  w1 = payload
//! ```

use crate::{bit, flag, get, mask, put};

pub const OP_IOTINVAL: u64 = 1;
pub const OP_IOFENCE: u64 = 2;
pub const OP_IODIR: u64 = 3;
pub const OP_ATS: u64 = 4;

/// A command of the command queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Command {
    /// `IOTINVAL.VMA`: first-stage invalidation. `gscid: None` targets host
    /// address spaces (GV=0); `pscid`/`addr` narrow the scope (PSCV/AV).
    IotinvalVma {
        gscid: Option<u16>,
        pscid: Option<u32>,
        /// Page-aligned IOVA (low 12 bits dropped).
        addr: Option<u64>,
    },
    /// `IOTINVAL.GVMA`: second-stage invalidation for one VM (`GV=1`) or all.
    IotinvalGvma {
        gscid: Option<u16>,
        /// Page-aligned GPA (only used with a GSCID).
        addr: Option<u64>,
    },
    /// `IOFENCE.C`: completes after all previous commands; with
    /// `completion`, writes `data` (4 bytes) to `addr` (4-byte aligned).
    IofenceC {
        completion: Option<(u64, u32)>,
        wsi: bool,
        pr: bool,
        pw: bool,
    },
    /// `IODIR.INVAL_DDT` for one device (`DV=1`) or all.
    IodirInvalDdt { device_id: Option<u32> },
    /// `IODIR.INVAL_PDT` for one process of one device.
    IodirInvalPdt { device_id: u32, process_id: u32 },
    /// `ATS.INVAL`: device ATC invalidation message.
    AtsInval {
        rid: u16,
        dseg: Option<u8>,
        pid: Option<u32>,
        payload: u64,
    },
    /// `ATS.PRGR`: page-request group response message.
    AtsPrgr {
        rid: u16,
        dseg: Option<u8>,
        pid: Option<u32>,
        payload: u64,
    },
}

/// Why a command could not be decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CommandDecodeError {
    /// Unknown opcode or func3.
    Unknown { opcode: u8, func3: u8 },
    /// Reserved bits set (or PSCV with GVMA, DV=0 with INVAL_PDT).
    Illegal,
}

const fn head(op: u64, func3: u64) -> u64 {
    put(op, 0, 7) | put(func3, 7, 3)
}

impl Command {
    /// `IOFENCE.C` that writes `data` to `addr` on completion, ordering
    /// previous device reads and writes.
    pub const fn fence_with_completion(addr: u64, data: u32) -> Self {
        Command::IofenceC {
            completion: Some((addr, data)),
            wsi: false,
            pr: true,
            pw: true,
        }
    }

    pub const fn encode(self) -> [u64; 2] {
        match self {
            Command::IotinvalVma { gscid, pscid, addr } => Self::iotinval(0, gscid, pscid, addr),
            Command::IotinvalGvma { gscid, addr } => Self::iotinval(1, gscid, None, addr),
            Command::IofenceC {
                completion,
                wsi,
                pr,
                pw,
            } => {
                let (av, a, d) = match completion {
                    Some((a, d)) => (true, a, d),
                    None => (false, 0, 0),
                };
                [
                    head(OP_IOFENCE, 0)
                        | flag(av, 10)
                        | flag(wsi, 11)
                        | flag(pr, 12)
                        | flag(pw, 13)
                        | put(d as u64, 32, 32),
                    put(a >> 2, 0, 62),
                ]
            }
            Command::IodirInvalDdt { device_id } => {
                let (dv, did) = match device_id {
                    Some(d) => (true, d),
                    None => (false, 0),
                };
                [
                    head(OP_IODIR, 0) | flag(dv, 33) | put(did as u64, 40, 24),
                    0,
                ]
            }
            Command::IodirInvalPdt {
                device_id,
                process_id,
            } => [
                head(OP_IODIR, 1)
                    | put(process_id as u64, 12, 20)
                    | flag(true, 33)
                    | put(device_id as u64, 40, 24),
                0,
            ],
            Command::AtsInval {
                rid,
                dseg,
                pid,
                payload,
            } => [Self::ats(0, rid, dseg, pid), payload],
            Command::AtsPrgr {
                rid,
                dseg,
                pid,
                payload,
            } => [Self::ats(1, rid, dseg, pid), payload],
        }
    }

    const fn iotinval(
        func3: u64,
        gscid: Option<u16>,
        pscid: Option<u32>,
        addr: Option<u64>,
    ) -> [u64; 2] {
        let mut w0 = head(OP_IOTINVAL, func3);
        let mut w1 = 0;
        if let Some(a) = addr {
            w0 |= 1 << 10;
            w1 = put(a >> 12, 10, 52);
        }
        if let Some(p) = pscid {
            w0 |= put(p as u64, 12, 20) | 1 << 32;
        }
        if let Some(g) = gscid {
            w0 |= 1 << 33 | put(g as u64, 44, 16);
        }
        [w0, w1]
    }

    const fn ats(func3: u64, rid: u16, dseg: Option<u8>, pid: Option<u32>) -> u64 {
        let mut w0 = head(OP_ATS, func3) | put(rid as u64, 40, 16);
        if let Some(p) = pid {
            w0 |= put(p as u64, 12, 20) | 1 << 32;
        }
        if let Some(s) = dseg {
            w0 |= 1 << 33 | put(s as u64, 56, 8);
        }
        w0
    }

    pub fn decode(w: [u64; 2]) -> Result<Self, CommandDecodeError> {
        let opcode = get(w[0], 0, 7);
        let func3 = get(w[0], 7, 3);
        let check = |known0: u64, known1: u64| {
            if w[0] & !known0 != 0 || w[1] & !known1 != 0 {
                Err(CommandDecodeError::Illegal)
            } else {
                Ok(())
            }
        };
        let hdr = mask(10);
        match (opcode, func3) {
            (OP_IOTINVAL, 0 | 1) => {
                let known0 = hdr | 1 << 10 | mask(20) << 12 | 3 << 32 | mask(16) << 44;
                check(known0, mask(52) << 10)?;
                let av = bit(w[0], 10);
                let pscv = bit(w[0], 32);
                let gv = bit(w[0], 33);
                let gscid = if gv {
                    Some(get(w[0], 44, 16) as u16)
                } else {
                    None
                };
                let addr = if av {
                    Some(get(w[1], 10, 52) << 12)
                } else {
                    None
                };
                if func3 == 0 {
                    Ok(Command::IotinvalVma {
                        gscid,
                        pscid: if pscv {
                            Some(get(w[0], 12, 20) as u32)
                        } else {
                            None
                        },
                        addr,
                    })
                } else if pscv {
                    Err(CommandDecodeError::Illegal)
                } else {
                    Ok(Command::IotinvalGvma { gscid, addr })
                }
            }
            (OP_IOFENCE, 0) => {
                check(hdr | 0xf << 10 | mask(32) << 32, mask(62))?;
                let completion = if bit(w[0], 10) {
                    Some((get(w[1], 0, 62) << 2, get(w[0], 32, 32) as u32))
                } else {
                    None
                };
                Ok(Command::IofenceC {
                    completion,
                    wsi: bit(w[0], 11),
                    pr: bit(w[0], 12),
                    pw: bit(w[0], 13),
                })
            }
            (OP_IODIR, 0) => {
                check(hdr | 1 << 33 | mask(24) << 40, 0)?;
                Ok(Command::IodirInvalDdt {
                    device_id: if bit(w[0], 33) {
                        Some(get(w[0], 40, 24) as u32)
                    } else {
                        None
                    },
                })
            }
            (OP_IODIR, 1) => {
                check(hdr | mask(20) << 12 | 1 << 33 | mask(24) << 40, 0)?;
                if !bit(w[0], 33) {
                    return Err(CommandDecodeError::Illegal);
                }
                Ok(Command::IodirInvalPdt {
                    device_id: get(w[0], 40, 24) as u32,
                    process_id: get(w[0], 12, 20) as u32,
                })
            }
            (OP_ATS, 0 | 1) => {
                check(hdr | mask(20) << 12 | 3 << 32 | mask(24) << 40, u64::MAX)?;
                let rid = get(w[0], 40, 16) as u16;
                let dseg = if bit(w[0], 33) {
                    Some(get(w[0], 56, 8) as u8)
                } else {
                    None
                };
                let pid = if bit(w[0], 32) {
                    Some(get(w[0], 12, 20) as u32)
                } else {
                    None
                };
                let payload = w[1];
                Ok(if func3 == 0 {
                    Command::AtsInval {
                        rid,
                        dseg,
                        pid,
                        payload,
                    }
                } else {
                    Command::AtsPrgr {
                        rid,
                        dseg,
                        pid,
                        payload,
                    }
                })
            }
            _ => Err(CommandDecodeError::Unknown {
                opcode: opcode as u8,
                func3: func3 as u8,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn hand_encoded() {
        // IOTINVAL.GVMA, GV=1, GSCID=5: opcode 1 | func3 1<<7 | GV 1<<33 | 5<<44.
        let c = Command::IotinvalGvma {
            gscid: Some(5),
            addr: None,
        };
        assert_eq!(c.encode(), [0x81 | 1 << 33 | 5 << 44, 0]);
        // IOTINVAL.VMA, all: just the opcode.
        let all = Command::IotinvalVma {
            gscid: None,
            pscid: None,
            addr: None,
        };
        assert_eq!(all.encode(), [1, 0]);
        // IOTINVAL.VMA with PSCID 0x12345 and address 0x1234_5000.
        let v = Command::IotinvalVma {
            gscid: Some(0xffff),
            pscid: Some(0x12345),
            addr: Some(0x1234_5678),
        };
        assert_eq!(
            v.encode(),
            [
                1 | 1 << 10 | 0x12345 << 12 | 1 << 32 | 1 << 33 | 0xffff << 44,
                0x12345 << 10
            ]
        );
        // IOFENCE.C AV=1 PR=PW=1, data 0xdead_beef at 0x8000_0040.
        let f = Command::fence_with_completion(0x8000_0040, 0xdead_beef);
        assert_eq!(
            f.encode(),
            [
                2 | 1 << 10 | 1 << 12 | 1 << 13 | 0xdead_beef << 32,
                0x8000_0040 >> 2
            ]
        );
        // IODIR.INVAL_DDT DV=1 DID=0x010203.
        let d = Command::IodirInvalDdt {
            device_id: Some(0x010203),
        };
        assert_eq!(d.encode(), [3 | 1 << 33 | 0x010203 << 40, 0]);
        assert_eq!(Command::IodirInvalDdt { device_id: None }.encode(), [3, 0]);
        // IODIR.INVAL_PDT DID=8 PID=0x42.
        let p = Command::IodirInvalPdt {
            device_id: 8,
            process_id: 0x42,
        };
        assert_eq!(p.encode(), [3 | 1 << 7 | 0x42 << 12 | 1 << 33 | 8 << 40, 0]);
    }

    #[test]
    fn illegal_decodes() {
        // GVMA with PSCV.
        assert_eq!(
            Command::decode([0x81 | 1 << 32, 0]),
            Err(CommandDecodeError::Illegal)
        );
        // INVAL_PDT with DV=0.
        assert_eq!(
            Command::decode([3 | 1 << 7, 0]),
            Err(CommandDecodeError::Illegal)
        );
        // Reserved bit 11 in IOTINVAL.
        assert_eq!(
            Command::decode([1 | 1 << 11, 0]),
            Err(CommandDecodeError::Illegal)
        );
        // IODIR word 1 reserved.
        assert_eq!(Command::decode([3, 1]), Err(CommandDecodeError::Illegal));
        assert_eq!(
            Command::decode([5, 0]),
            Err(CommandDecodeError::Unknown {
                opcode: 5,
                func3: 0
            })
        );
        assert_eq!(
            Command::decode([2 | 1 << 7, 0]),
            Err(CommandDecodeError::Unknown {
                opcode: 2,
                func3: 1
            })
        );
    }

    fn arb_cmd() -> impl Strategy<Value = Command> {
        let gscid = proptest::option::of(any::<u16>());
        let pscid = proptest::option::of(0u32..1 << 20);
        let page = proptest::option::of((0u64..1 << 52).prop_map(|p| p << 12));
        prop_oneof![
            (gscid.clone(), pscid.clone(), page.clone())
                .prop_map(|(gscid, pscid, addr)| Command::IotinvalVma { gscid, pscid, addr }),
            (gscid, page).prop_map(|(gscid, addr)| Command::IotinvalGvma { gscid, addr }),
            (
                proptest::option::of(((0u64..1 << 62).prop_map(|a| a << 2), any::<u32>())),
                any::<bool>(),
                any::<bool>(),
                any::<bool>()
            )
                .prop_map(|(completion, wsi, pr, pw)| Command::IofenceC {
                    completion,
                    wsi,
                    pr,
                    pw
                }),
            proptest::option::of(0u32..1 << 24)
                .prop_map(|device_id| Command::IodirInvalDdt { device_id }),
            (0u32..1 << 24, pscid.clone().prop_map(|p| p.unwrap_or(0))).prop_map(
                |(device_id, process_id)| Command::IodirInvalPdt {
                    device_id,
                    process_id
                }
            ),
            (
                any::<u16>(),
                proptest::option::of(any::<u8>()),
                pscid,
                any::<u64>(),
                any::<bool>()
            )
                .prop_map(|(rid, dseg, pid, payload, prgr)| if prgr {
                    Command::AtsPrgr {
                        rid,
                        dseg,
                        pid,
                        payload,
                    }
                } else {
                    Command::AtsInval {
                        rid,
                        dseg,
                        pid,
                        payload,
                    }
                }),
        ]
    }

    proptest! {
        #[test]
        fn roundtrip(c in arb_cmd()) {
            prop_assert_eq!(Command::decode(c.encode()), Ok(c));
        }
    }
}
