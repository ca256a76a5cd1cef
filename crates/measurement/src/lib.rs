//! SHA-384 for TVM measurement, with a run-time choice of compression
//! function:
//!
//! - [`Backend::Portable`]: the `sha2` crate's software SHA-512 compression
//!   (`sha2::block_api::compress512`);
//! - [`Backend::Zknh`]: on `riscv64`, a hand-scheduled assembly SHA-512
//!   compression using the Zknh scalar crypto instructions
//!   (`sha512sig0/sig1/sum0/sum1`, RV64 forms) and Zbb `rev8`, processing
//!   any number of blocks per call with the state and message schedule in
//!   registers (about 1,670 instructions per block). Elsewhere it runs this
//!   crate's generic round code ([`compress`]) with plain-Rust primitives
//!   ([`SoftPrimitives`]), which is how the round logic is tested on the
//!   host; on riscv64 the same generic code with [`ZknhPrimitives`] is
//!   available as an independent cross-check. The assembly itself is
//!   validated on RISC-V by the bare-metal self-test in
//!   `crates/measurement/riscv-selftest` (`run.sh`).
//!
//! Padding, IV, length encoding and output truncation ([`Sha384`]) are
//! shared by both backends; only the block compression differs.
//!
//! [`Measurement`] is a 48-byte measurement register implementing the CoVE
//! rules fixed in `cove_abi::measurement`: `extend(data)` sets
//! `m = SHA-384(m || data)`; a measured page extends
//! `gpa.to_le_bytes() || page`; finalize extends
//! `entry_sepc.to_le_bytes() || entry_arg.to_le_bytes()`.
#![no_std]
#![cfg_attr(not(target_arch = "riscv64"), forbid(unsafe_code))]
#![cfg_attr(target_arch = "riscv64", deny(unsafe_code))]
#![deny(missing_docs)]

mod compress;
pub mod seed;
mod sha384;
#[cfg(target_arch = "riscv64")]
#[allow(unsafe_code)]
mod zknh;

pub use compress::{compress, Primitives, SoftPrimitives, K512};
pub use sha384::{Sha384, BLOCK_LEN, DIGEST_LEN, IV384};
#[cfg(target_arch = "riscv64")]
pub use zknh::ZknhPrimitives;

use cove_abi::measurement as rules;

/// Which SHA-512 compression function to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Backend {
    /// Pure software (`sha2` crate). Runs everywhere.
    Portable,
    /// Zknh assembly compression on riscv64. Only
    /// select it on a hart that implements Zknh and Zbb (the instructions
    /// are executed unconditionally and trap as illegal otherwise). On
    /// other architectures it runs the generic round code ([`compress`])
    /// with software primitives.
    Zknh,
}

impl Backend {
    /// `Zknh` when the hart has the extensions (e.g. from the device tree's
    /// `riscv,isa-extensions` listing both `zknh` and `zbb`), else `Portable`.
    pub const fn select(has_zknh_and_zbb: bool) -> Backend {
        if has_zknh_and_zbb {
            Backend::Zknh
        } else {
            Backend::Portable
        }
    }

    /// Compresses whole 128-byte blocks into `state` with this backend.
    pub fn compress(self, state: &mut [u64; 8], blocks: &[[u8; BLOCK_LEN]]) {
        match self {
            Backend::Portable => sha2::block_api::compress512(state, blocks),
            #[cfg(target_arch = "riscv64")]
            Backend::Zknh => zknh::compress_blocks(state, blocks),
            #[cfg(not(target_arch = "riscv64"))]
            Backend::Zknh => compress::<SoftPrimitives>(state, blocks),
        }
    }
}

/// One-shot SHA-384.
pub fn sha384(backend: Backend, data: &[u8]) -> [u8; DIGEST_LEN] {
    let mut h = Sha384::new(backend);
    h.update(data);
    h.finalize()
}

/// A 48-byte SHA-384 measurement register (initially all zero).
#[derive(Clone, Copy, Debug)]
pub struct Measurement {
    value: [u8; DIGEST_LEN],
    backend: Backend,
}

impl PartialEq for Measurement {
    /// Registers compare by value only, whatever backend computed them.
    fn eq(&self, other: &Self) -> bool {
        self.value == other.value
    }
}

impl Eq for Measurement {}

impl Measurement {
    /// A fresh register (value [`cove_abi::measurement::INITIAL_VALUE`]).
    pub const fn new(backend: Backend) -> Self {
        Measurement {
            value: rules::INITIAL_VALUE,
            backend,
        }
    }

    /// A register with a given value.
    pub const fn from_value(value: [u8; DIGEST_LEN], backend: Backend) -> Self {
        Measurement { value, backend }
    }

    /// Current value.
    pub const fn value(&self) -> &[u8; DIGEST_LEN] {
        &self.value
    }

    /// Backend used by the extend operations.
    pub const fn backend(&self) -> Backend {
        self.backend
    }

    /// `m = SHA-384(m || data)`.
    pub fn extend(&mut self, data: &[u8]) {
        self.extend_parts(&[data]);
    }

    /// `m = SHA-384(m || parts[0] || parts[1] || ...)`.
    pub fn extend_parts(&mut self, parts: &[&[u8]]) {
        let mut h = Sha384::new(self.backend);
        h.update(&self.value);
        for p in parts {
            h.update(p);
        }
        self.value = h.finalize();
    }

    /// Measures one 4 KiB page mapped at `gpa`:
    /// `m = SHA-384(m || gpa.to_le_bytes() || page)`.
    pub fn extend_page(&mut self, gpa: u64, page: &[u8; rules::MEASURED_PAGE_SIZE]) {
        self.extend_parts(&[&rules::page_prefix(gpa), page]);
    }

    /// The `finalize_tvm` step:
    /// `m = SHA-384(m || entry_sepc.to_le_bytes() || entry_arg.to_le_bytes())`.
    pub fn extend_finalize(&mut self, entry_sepc: u64, entry_arg: u64) {
        self.extend(&rules::finalize_data(entry_sepc, entry_arg));
    }

    /// The TVM configuration register (rule 7 of `cove_abi::measurement`):
    /// `regions` (gpa, len) in increasing GPA order, the vCPU count, the AIA
    /// parameters and each vCPU's IMSIC page (vcpu, gpa) if any.
    pub fn extend_config(
        &mut self,
        regions: impl Iterator<Item = (u64, u64)>,
        vcpus: u64,
        aia: Option<(&cove_abi::covi::TvmAiaParams, &[(u64, u64)])>,
    ) {
        for (gpa, len) in regions {
            self.extend(&rules::region_data(gpa, len));
        }
        self.extend(&rules::vcpus_data(vcpus));
        if let Some((p, imsics)) = aia {
            self.extend(&rules::aia_data(p));
            for &(vcpu, gpa) in imsics {
                self.extend(&rules::imsic_data(vcpu, gpa));
            }
        }
    }
}
