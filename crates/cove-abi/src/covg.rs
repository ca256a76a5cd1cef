//! COVE Guest extension (EID "COVG"): calls a TVM makes to the TSM, and the
//! attestation-capabilities structure.

use crate::bytes::{rd_u32, rd_u64, rd_u8, wr_u32, wr_u64, wr_u8};
use core::mem::{offset_of, size_of};

crate::fid_enum! {
    /// COVG function ids (spec FID #0..#10).
    CovgFunction {
        /// `add_mmio_region(gpa, len)`; exits to the host.
        AddMmioRegion = 0,
        /// `remove_mmio_region(gpa, len)`; exits to the host.
        RemoveMmioRegion = 1,
        /// `share_memory_region(gpa, len)`; exits to the host.
        ShareMemoryRegion = 2,
        /// `unshare_memory_region(gpa, len)`; exits to the host.
        UnshareMemoryRegion = 3,
        /// `allow_external_interrupt(id)`; `id == ALL_INTERRUPTS` for all.
        AllowExternalInterrupt = 4,
        /// `deny_external_interrupt(id)`; `id == ALL_INTERRUPTS` for all.
        DenyExternalInterrupt = 5,
        /// `get_attcaps(caps_addr, caps_size)`.
        GetAttcaps = 6,
        /// `extend_measurement(msmt_buf_addr, msmt_buf_len, msmt_index)`.
        ExtendMeasurement = 7,
        /// `get_evidence(pub_key_addr, pub_key_size, challenge_addr, cert_format, cert_addr_out, cert_size)`.
        GetEvidence = 8,
        /// `retrieve_secret(buf_addr, buf_size)`.
        RetrieveSecret = 9,
        /// `read_measurement(msmt_buf_addr_out, msmt_buf_size, msmt_index)`.
        ReadMeasurement = 10,
    }
}

/// `interrupt_id` meaning "every external interrupt" (2^64 - 1).
pub const ALL_INTERRUPTS: u64 = u64::MAX;

/// `enum HashAlgorithm : uint32_t`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum HashAlgorithm {
    /// SHA-384 (what Salus uses).
    Sha384 = 0,
    /// SHA-512.
    Sha512 = 1,
    /// SHA3-384.
    Sha3_384 = 2,
    /// SHA3-512.
    Sha3_512 = 3,
}

impl HashAlgorithm {
    /// Decodes the raw value.
    pub const fn from_u32(v: u32) -> Option<Self> {
        match v {
            0 => Some(HashAlgorithm::Sha384),
            1 => Some(HashAlgorithm::Sha512),
            2 => Some(HashAlgorithm::Sha3_384),
            3 => Some(HashAlgorithm::Sha3_512),
            _ => None,
        }
    }

    /// Digest length in bytes.
    pub const fn digest_len(self) -> usize {
        match self {
            HashAlgorithm::Sha384 | HashAlgorithm::Sha3_384 => 48,
            HashAlgorithm::Sha512 | HashAlgorithm::Sha3_512 => 64,
        }
    }
}

/// `enum MeasurementType : uint32_t`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum MeasurementType {
    /// Initial (static) measurement register.
    Initial = 0,
    /// Runtime register, extendable by the TVM.
    Runtime = 1,
}

impl MeasurementType {
    /// Decodes the raw value.
    pub const fn from_u32(v: u32) -> Option<Self> {
        match v {
            0 => Some(MeasurementType::Initial),
            1 => Some(MeasurementType::Runtime),
            _ => None,
        }
    }
}

/// `ATTESTATION_CERTIFICATE_CBOR`.
pub const ATTESTATION_CERTIFICATE_CBOR: u32 = 1 << 0;
/// `ATTESTATION_CERTIFICATE_X509`.
pub const ATTESTATION_CERTIFICATE_X509: u32 = 1 << 1;
/// `MAX_INITIAL_MEASUREMENT_REGISTERS`.
pub const MAX_INITIAL_MEASUREMENT_REGISTERS: usize = 8;
/// `MAX_RUNTIME_MEASUREMENT_REGISTERS`.
pub const MAX_RUNTIME_MEASUREMENT_REGISTERS: usize = 18;
/// `MAX_MEASUREMENT_REGISTERS`.
pub const MAX_MEASUREMENT_REGISTERS: usize =
    MAX_INITIAL_MEASUREMENT_REGISTERS + MAX_RUNTIME_MEASUREMENT_REGISTERS;
/// `UNMAPPED_TCG_PCR`.
pub const UNMAPPED_TCG_PCR: u8 = 0xff;

/// `struct MeasurementRegisterDescriptor`, 12 bytes (3 bytes tail padding).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[repr(C)]
pub struct MeasurementRegisterDescriptor {
    /// Raw [`HashAlgorithm`].
    pub hash_algorithm: u32,
    /// Raw [`MeasurementType`].
    pub measurement_type: u32,
    /// TCG PCR index, or [`UNMAPPED_TCG_PCR`].
    pub tcg_pcr_index: u8,
    /// Tail padding, 0.
    pub _padding: [u8; 3],
}

const _: () = {
    assert!(size_of::<MeasurementRegisterDescriptor>() == 12);
    assert!(offset_of!(MeasurementRegisterDescriptor, measurement_type) == 4);
    assert!(offset_of!(MeasurementRegisterDescriptor, tcg_pcr_index) == 8);
};

impl MeasurementRegisterDescriptor {
    /// Size in bytes.
    pub const SIZE: usize = 12;

    fn write(&self, b: &mut [u8], off: usize) {
        wr_u32(b, off, self.hash_algorithm);
        wr_u32(b, off + 4, self.measurement_type);
        wr_u8(b, off + 8, self.tcg_pcr_index);
        b[off + 9..off + 12].copy_from_slice(&self._padding);
    }

    fn read(b: &[u8], off: usize) -> Self {
        MeasurementRegisterDescriptor {
            hash_algorithm: rd_u32(b, off),
            measurement_type: rd_u32(b, off + 4),
            tcg_pcr_index: rd_u8(b, off + 8),
            _padding: [b[off + 9], b[off + 10], b[off + 11]],
        }
    }
}

/// `struct AttestationCapabilities`, 336 bytes on RV64:
///
/// | off | size | field |
/// |---:|---:|---|
/// | 0   | 8 | tcb_svn |
/// | 8   | 4 | hash_algorithm |
/// | 12  | 4 | certificate_formats |
/// | 16  | 1 | initial_measurements |
/// | 17  | 1 | runtime_measurements |
/// | 18  | 2 | (padding) |
/// | 20  | 26 x 12 | msmt_regs |
/// | 332 | 4 | (tail padding) |
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(C)]
pub struct AttestationCapabilities {
    /// TCB secure version number.
    pub tcb_svn: u64,
    /// Raw [`HashAlgorithm`].
    pub hash_algorithm: u32,
    /// Bit map of `ATTESTATION_CERTIFICATE_*`.
    pub certificate_formats: u32,
    /// Number of initial measurement registers.
    pub initial_measurements: u8,
    /// Number of runtime measurement registers.
    pub runtime_measurements: u8,
    /// Padding, 0.
    pub _padding0: [u8; 2],
    /// Descriptors of all registers (initial first, then runtime).
    pub msmt_regs: [MeasurementRegisterDescriptor; MAX_MEASUREMENT_REGISTERS],
    /// Tail padding, 0.
    pub _padding1: u32,
}

const _: () = {
    assert!(size_of::<AttestationCapabilities>() == 336);
    assert!(offset_of!(AttestationCapabilities, hash_algorithm) == 8);
    assert!(offset_of!(AttestationCapabilities, certificate_formats) == 12);
    assert!(offset_of!(AttestationCapabilities, initial_measurements) == 16);
    assert!(offset_of!(AttestationCapabilities, runtime_measurements) == 17);
    assert!(offset_of!(AttestationCapabilities, msmt_regs) == 20);
    assert!(offset_of!(AttestationCapabilities, _padding1) == 332);
};

impl Default for AttestationCapabilities {
    fn default() -> Self {
        AttestationCapabilities {
            tcb_svn: 0,
            hash_algorithm: 0,
            certificate_formats: 0,
            initial_measurements: 0,
            runtime_measurements: 0,
            _padding0: [0; 2],
            msmt_regs: [MeasurementRegisterDescriptor::default(); MAX_MEASUREMENT_REGISTERS],
            _padding1: 0,
        }
    }
}

impl AttestationCapabilities {
    /// Size in bytes.
    pub const SIZE: usize = 336;
    /// Offset of `msmt_regs`.
    pub const MSMT_REGS_OFFSET: usize = 20;

    /// Little-endian image.
    pub fn to_bytes(&self) -> [u8; Self::SIZE] {
        let mut b = [0u8; Self::SIZE];
        wr_u64(&mut b, 0, self.tcb_svn);
        wr_u32(&mut b, 8, self.hash_algorithm);
        wr_u32(&mut b, 12, self.certificate_formats);
        wr_u8(&mut b, 16, self.initial_measurements);
        wr_u8(&mut b, 17, self.runtime_measurements);
        b[18..20].copy_from_slice(&self._padding0);
        for (i, r) in self.msmt_regs.iter().enumerate() {
            r.write(
                &mut b,
                Self::MSMT_REGS_OFFSET + i * MeasurementRegisterDescriptor::SIZE,
            );
        }
        wr_u32(&mut b, 332, self._padding1);
        b
    }

    /// Parses the first 336 bytes; `None` if shorter. Not validated.
    pub fn from_bytes(b: &[u8]) -> Option<Self> {
        if b.len() < Self::SIZE {
            return None;
        }
        let mut msmt_regs = [MeasurementRegisterDescriptor::default(); MAX_MEASUREMENT_REGISTERS];
        for (i, r) in msmt_regs.iter_mut().enumerate() {
            *r = MeasurementRegisterDescriptor::read(
                b,
                Self::MSMT_REGS_OFFSET + i * MeasurementRegisterDescriptor::SIZE,
            );
        }
        Some(AttestationCapabilities {
            tcb_svn: rd_u64(b, 0),
            hash_algorithm: rd_u32(b, 8),
            certificate_formats: rd_u32(b, 12),
            initial_measurements: rd_u8(b, 16),
            runtime_measurements: rd_u8(b, 17),
            _padding0: [b[18], b[19]],
            msmt_regs,
            _padding1: rd_u32(b, 332),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fids() {
        assert_eq!(CovgFunction::ALL.len(), 11);
        for (i, f) in CovgFunction::ALL.iter().enumerate() {
            assert_eq!(CovgFunction::from_fid(i as u64), Some(*f));
        }
        assert_eq!(CovgFunction::from_fid(11), None);
        assert_eq!(CovgFunction::ExtendMeasurement.fid(), 7);
    }

    #[test]
    fn attcaps_round_trip() {
        let mut c = AttestationCapabilities {
            tcb_svn: 0x0102_0304_0506_0708,
            hash_algorithm: HashAlgorithm::Sha384 as u32,
            certificate_formats: ATTESTATION_CERTIFICATE_CBOR,
            initial_measurements: 1,
            runtime_measurements: 4,
            ..Default::default()
        };
        c.msmt_regs[25] = MeasurementRegisterDescriptor {
            hash_algorithm: 0,
            measurement_type: MeasurementType::Runtime as u32,
            tcg_pcr_index: UNMAPPED_TCG_PCR,
            _padding: [0; 3],
        };
        let b = c.to_bytes();
        assert_eq!(b[16], 1);
        assert_eq!(b[17], 4);
        let last = 20 + 25 * 12;
        assert_eq!(&b[last + 4..last + 8], &1u32.to_le_bytes());
        assert_eq!(b[last + 8], 0xff);
        assert_eq!(AttestationCapabilities::from_bytes(&b), Some(c));
        assert_eq!(AttestationCapabilities::from_bytes(&b[..335]), None);
        assert_eq!(HashAlgorithm::from_u32(0).unwrap().digest_len(), 48);
        assert_eq!(HashAlgorithm::from_u32(4), None);
        assert_eq!(MeasurementType::from_u32(1), Some(MeasurementType::Runtime));
    }
}
