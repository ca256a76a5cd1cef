//! Fault-queue records (32 bytes, four little-endian doublewords).
//!
//! ```text
//! w0: CAUSE[11:0] PID[31:12] PV[32] PRIV[33] TTYP[39:34] DID[63:40]
//! w1: custom[31:0], reserved[63:32]
//! w2: iotval      w3: iotval2
//! ```

use crate::{bit, get};

/// Fault / event cause (spec table "Fault record CAUSE field encodings").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FaultCause {
    InstructionAccessFault,
    ReadAddressMisaligned,
    ReadAccessFault,
    WriteAddressMisaligned,
    WriteAccessFault,
    InstructionPageFault,
    ReadPageFault,
    WritePageFault,
    InstructionGuestPageFault,
    ReadGuestPageFault,
    WriteGuestPageFault,
    AllInboundDisallowed,
    DdtLoadAccessFault,
    DdtEntryNotValid,
    DdtEntryMisconfigured,
    TransactionTypeDisallowed,
    MsiPteLoadAccessFault,
    MsiPteNotValid,
    MsiPteMisconfigured,
    MrifAccessFault,
    PdtLoadAccessFault,
    PdtEntryNotValid,
    PdtEntryMisconfigured,
    DdtDataCorruption,
    PdtDataCorruption,
    MsiPtDataCorruption,
    MsiMrifDataCorruption,
    InternalDataPathError,
    IommuMsiWriteAccessFault,
    PtDataCorruption,
    /// Reserved (275..2047 and unlisted codes) or custom (2048..4095).
    Other(u16),
}

const CAUSES: [(u16, FaultCause, &str); 29] = [
    (
        1,
        FaultCause::InstructionAccessFault,
        "instruction access fault",
    ),
    (
        4,
        FaultCause::ReadAddressMisaligned,
        "read address misaligned",
    ),
    (5, FaultCause::ReadAccessFault, "read access fault"),
    (
        6,
        FaultCause::WriteAddressMisaligned,
        "write/AMO address misaligned",
    ),
    (7, FaultCause::WriteAccessFault, "write/AMO access fault"),
    (
        12,
        FaultCause::InstructionPageFault,
        "instruction page fault",
    ),
    (13, FaultCause::ReadPageFault, "read page fault"),
    (15, FaultCause::WritePageFault, "write/AMO page fault"),
    (
        20,
        FaultCause::InstructionGuestPageFault,
        "instruction guest page fault",
    ),
    (21, FaultCause::ReadGuestPageFault, "read guest-page fault"),
    (
        23,
        FaultCause::WriteGuestPageFault,
        "write/AMO guest-page fault",
    ),
    (
        256,
        FaultCause::AllInboundDisallowed,
        "all inbound transactions disallowed",
    ),
    (
        257,
        FaultCause::DdtLoadAccessFault,
        "DDT entry load access fault",
    ),
    (258, FaultCause::DdtEntryNotValid, "DDT entry not valid"),
    (
        259,
        FaultCause::DdtEntryMisconfigured,
        "DDT entry misconfigured",
    ),
    (
        260,
        FaultCause::TransactionTypeDisallowed,
        "transaction type disallowed",
    ),
    (
        261,
        FaultCause::MsiPteLoadAccessFault,
        "MSI PTE load access fault",
    ),
    (262, FaultCause::MsiPteNotValid, "MSI PTE not valid"),
    (
        263,
        FaultCause::MsiPteMisconfigured,
        "MSI PTE misconfigured",
    ),
    (264, FaultCause::MrifAccessFault, "MRIF access fault"),
    (
        265,
        FaultCause::PdtLoadAccessFault,
        "PDT entry load access fault",
    ),
    (266, FaultCause::PdtEntryNotValid, "PDT entry not valid"),
    (
        267,
        FaultCause::PdtEntryMisconfigured,
        "PDT entry misconfigured",
    ),
    (268, FaultCause::DdtDataCorruption, "DDT data corruption"),
    (269, FaultCause::PdtDataCorruption, "PDT data corruption"),
    (
        270,
        FaultCause::MsiPtDataCorruption,
        "MSI PT data corruption",
    ),
    (
        271,
        FaultCause::MsiMrifDataCorruption,
        "MSI MRIF data corruption",
    ),
    (
        272,
        FaultCause::InternalDataPathError,
        "internal data path error",
    ),
    (
        273,
        FaultCause::IommuMsiWriteAccessFault,
        "IOMMU MSI write access fault",
    ),
];

impl FaultCause {
    pub fn from_code(code: u16) -> Self {
        if code == 274 {
            return FaultCause::PtDataCorruption;
        }
        CAUSES
            .iter()
            .find(|(c, _, _)| *c == code)
            .map(|(_, f, _)| *f)
            .unwrap_or(FaultCause::Other(code))
    }
    pub fn code(self) -> u16 {
        match self {
            FaultCause::PtDataCorruption => 274,
            FaultCause::Other(c) => c,
            f => CAUSES
                .iter()
                .find(|(_, g, _)| *g == f)
                .map(|(c, _, _)| *c)
                .unwrap_or(0),
        }
    }
    /// Human-readable description from the spec table.
    pub fn name(self) -> &'static str {
        match self {
            FaultCause::PtDataCorruption => "first/second-stage PT data corruption",
            FaultCause::Other(c) if c >= 2048 => "custom",
            FaultCause::Other(_) => "reserved",
            f => CAUSES
                .iter()
                .find(|(_, g, _)| *g == f)
                .map(|(_, _, n)| *n)
                .unwrap_or(""),
        }
    }
    /// Whether the IOMMU still reports this cause when `DC.tc.DTF == 1`.
    pub fn reported_with_dtf(self) -> bool {
        matches!(
            self,
            FaultCause::AllInboundDisallowed
                | FaultCause::DdtLoadAccessFault
                | FaultCause::DdtEntryNotValid
                | FaultCause::DdtEntryMisconfigured
                | FaultCause::DdtDataCorruption
                | FaultCause::InternalDataPathError
                | FaultCause::IommuMsiWriteAccessFault
        )
    }
}

/// Inbound transaction type (`TTYP`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TransactionType {
    /// Fault not caused by an inbound transaction.
    None,
    UntranslatedExec,
    UntranslatedRead,
    UntranslatedWrite,
    TranslatedExec,
    TranslatedRead,
    TranslatedWrite,
    AtsTranslationRequest,
    PcieMessage,
    /// Reserved (4, 10..31) or custom (32..63).
    Other(u8),
}

impl TransactionType {
    pub const fn from_code(code: u8) -> Self {
        match code {
            0 => TransactionType::None,
            1 => TransactionType::UntranslatedExec,
            2 => TransactionType::UntranslatedRead,
            3 => TransactionType::UntranslatedWrite,
            5 => TransactionType::TranslatedExec,
            6 => TransactionType::TranslatedRead,
            7 => TransactionType::TranslatedWrite,
            8 => TransactionType::AtsTranslationRequest,
            9 => TransactionType::PcieMessage,
            c => TransactionType::Other(c),
        }
    }
    pub const fn code(self) -> u8 {
        match self {
            TransactionType::None => 0,
            TransactionType::UntranslatedExec => 1,
            TransactionType::UntranslatedRead => 2,
            TransactionType::UntranslatedWrite => 3,
            TransactionType::TranslatedExec => 5,
            TransactionType::TranslatedRead => 6,
            TransactionType::TranslatedWrite => 7,
            TransactionType::AtsTranslationRequest => 8,
            TransactionType::PcieMessage => 9,
            TransactionType::Other(c) => c,
        }
    }
}

/// A decoded fault record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FaultRecord {
    pub cause: FaultCause,
    /// Process id, if `PV` was set.
    pub process_id: Option<u32>,
    /// Supervisor privilege requested (`PRIV`).
    pub privileged: bool,
    pub ttyp: TransactionType,
    pub device_id: u32,
    /// Custom-use bits of word 1.
    pub custom: u32,
    /// IOVA (or message code / cause-specific value).
    pub iotval: u64,
    /// GPA for guest-page faults, else cause-specific.
    pub iotval2: u64,
}

impl FaultRecord {
    pub fn decode(w: [u64; 4]) -> Self {
        Self {
            cause: FaultCause::from_code(get(w[0], 0, 12) as u16),
            process_id: if bit(w[0], 32) {
                Some(get(w[0], 12, 20) as u32)
            } else {
                None
            },
            privileged: bit(w[0], 33),
            ttyp: TransactionType::from_code(get(w[0], 34, 6) as u8),
            device_id: get(w[0], 40, 24) as u32,
            custom: w[1] as u32,
            iotval: w[2],
            iotval2: w[3],
        }
    }

    /// Inverse of [`decode`](Self::decode) (used by simulators and tests).
    pub fn encode(&self) -> [u64; 4] {
        let (pv, pid) = match self.process_id {
            Some(p) => (1u64, p as u64 & 0xf_ffff),
            None => (0, 0),
        };
        [
            (self.cause.code() as u64 & 0xfff)
                | pid << 12
                | pv << 32
                | (self.privileged as u64) << 33
                | (self.ttyp.code() as u64 & 0x3f) << 34
                | (self.device_id as u64 & 0xff_ffff) << 40,
            self.custom as u64,
            self.iotval,
            self.iotval2,
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_hand_built_record() {
        // Write guest-page fault (23), untranslated write (3), device 0x0010,
        // no PID, iotval 0x1000, iotval2 = GPA >> 2.
        let w0 = 23 | 3 << 34 | 0x10 << 40;
        let r = FaultRecord::decode([w0, 0, 0x1000, 0x8000_0000 >> 2]);
        assert_eq!(r.cause, FaultCause::WriteGuestPageFault);
        assert_eq!(r.cause.name(), "write/AMO guest-page fault");
        assert_eq!(r.ttyp, TransactionType::UntranslatedWrite);
        assert_eq!(r.device_id, 0x10);
        assert_eq!(r.process_id, None);
        assert!(!r.privileged);
        assert_eq!(r.iotval, 0x1000);
        assert_eq!(r.encode(), [w0, 0, 0x1000, 0x2000_0000]);

        let w0 = 258 | 0x42 << 12 | 1 << 32 | 1 << 33 | 2 << 34 | 0xff_ffff << 40;
        let r = FaultRecord::decode([w0, 0xabcd, 0, 0]);
        assert_eq!(r.cause, FaultCause::DdtEntryNotValid);
        assert!(r.cause.reported_with_dtf());
        assert_eq!(r.process_id, Some(0x42));
        assert!(r.privileged);
        assert_eq!(r.device_id, 0xff_ffff);
        assert_eq!(r.custom, 0xabcd);
        assert_eq!(r.encode()[0], w0);
    }

    #[test]
    fn cause_table() {
        for code in 0..4096u16 {
            let c = FaultCause::from_code(code);
            assert_eq!(c.code(), code);
        }
        assert_eq!(FaultCause::from_code(1).name(), "instruction access fault");
        assert_eq!(
            FaultCause::from_code(256).name(),
            "all inbound transactions disallowed"
        );
        assert_eq!(FaultCause::from_code(274), FaultCause::PtDataCorruption);
        assert_eq!(FaultCause::from_code(275).name(), "reserved");
        assert_eq!(FaultCause::from_code(3000).name(), "custom");
        assert_eq!(FaultCause::from_code(2), FaultCause::Other(2));
        assert!(!FaultCause::ReadPageFault.reported_with_dtf());
        for t in 0..64u8 {
            assert_eq!(TransactionType::from_code(t).code(), t);
        }
        assert_eq!(TransactionType::from_code(4), TransactionType::Other(4));
    }
}
