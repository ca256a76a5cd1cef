//! TVM measurement rules (the hashing is implemented by the `measurement`
//! crate; this module only fixes *what* is hashed).
//!
//! The spec requires a SHA-384 "hash extend" per 4 KiB page added with
//! `add_tvm_measured_pages`, with the page's GPA part of the operation, in
//! the order the pages are added; `finalize_tvm` includes `entry_sepc` and
//! `entry_arg`; `tvm_identity` is *not* measured. The exact byte strings are
//! this project's choice:
//!
//! 1. A register starts as 48 zero bytes ([`INITIAL_VALUE`]).
//! 2. `extend(m, data)` sets `m = SHA-384(m || data)`.
//! 3. Measured page: one extend per 4 KiB page (a 2 MiB / 1 GiB page type is
//!    measured as its 512 / 262144 4 KiB sub-pages in increasing GPA order),
//!    `data = gpa.to_le_bytes() (8 bytes) || page contents (4096 bytes)`,
//!    where `gpa` is the guest physical address the 4 KiB page is mapped at.
//! 4. `finalize_tvm`: one extend with
//!    `data = entry_sepc.to_le_bytes() || entry_arg.to_le_bytes()` (16 bytes).
//! 5. Zero pages, shared pages, page-table pages, vCPU creation and the TVM
//!    identity are not measured.
//! 6. COVG `extend_measurement` on a runtime register: one extend with the
//!    48-byte digest supplied by the guest.
//! 7. The TVM configuration register ([`TVM_CONFIG_INDEX`]), computed at
//!    `finalize_tvm` from the TVM's final configuration: one extend per
//!    confidential memory region in increasing GPA order with
//!    [`region_data`], then one with [`vcpus_data`] (vCPUs created), then
//!    one with [`aia_data`] if COVI `init_tvm_aia` configured the TVM, then
//!    one per vCPU in id order with [`imsic_data`] (its IMSIC page's GPA).
//!
//! Register map reported by `get_attcaps`: index [`TVM_INITIAL_INDEX`] is
//! the initial (static) TVM measurement above, [`TVM_CONFIG_INDEX`] the
//! configuration register; indices
//! [`RUNTIME_FIRST_INDEX`]..=[`RUNTIME_LAST_INDEX`] are runtime registers.

use crate::covg::HashAlgorithm;

/// Hash used for every register.
pub const HASH_ALGORITHM: HashAlgorithm = HashAlgorithm::Sha384;
/// Register width in bytes.
pub const REGISTER_LEN: usize = 48;
/// Initial value of every register.
pub const INITIAL_VALUE: [u8; REGISTER_LEN] = [0; REGISTER_LEN];
/// Bytes of the GPA prefix of a measured page.
pub const PAGE_GPA_LEN: usize = 8;
/// Size of the unit measured per extend.
pub const MEASURED_PAGE_SIZE: usize = 4096;
/// Total bytes hashed into one page extend besides the old register value.
pub const PAGE_EXTEND_LEN: usize = PAGE_GPA_LEN + MEASURED_PAGE_SIZE;
/// Bytes of the finalize extend (`entry_sepc`, `entry_arg`).
pub const FINALIZE_EXTEND_LEN: usize = 16;

/// Number of initial registers Salus implements.
pub const INITIAL_REGISTERS: u8 = 2;
/// Number of runtime registers Salus implements.
pub const RUNTIME_REGISTERS: u8 = 4;
/// Index of the TVM initial measurement register.
pub const TVM_INITIAL_INDEX: u64 = 0;
/// Index of the TVM configuration register (rule 7).
pub const TVM_CONFIG_INDEX: u64 = 1;
/// First runtime register index.
pub const RUNTIME_FIRST_INDEX: u64 = 2;
/// Last runtime register index.
pub const RUNTIME_LAST_INDEX: u64 = RUNTIME_FIRST_INDEX + RUNTIME_REGISTERS as u64 - 1;

/// The bytes extended for a measured 4 KiB page, minus the page itself.
pub const fn page_prefix(gpa: u64) -> [u8; PAGE_GPA_LEN] {
    gpa.to_le_bytes()
}

/// The bytes extended by `finalize_tvm`.
pub const fn finalize_data(entry_sepc: u64, entry_arg: u64) -> [u8; FINALIZE_EXTEND_LEN] {
    let a = entry_sepc.to_le_bytes();
    let b = entry_arg.to_le_bytes();
    let mut out = [0u8; FINALIZE_EXTEND_LEN];
    let mut i = 0;
    while i < 8 {
        out[i] = a[i];
        out[8 + i] = b[i];
        i += 1;
    }
    out
}

/// Rule 7: one confidential memory region.
pub fn region_data(gpa: u64, len: u64) -> [u8; 22] {
    let mut out = [0u8; 22];
    out[..6].copy_from_slice(b"region");
    out[6..14].copy_from_slice(&gpa.to_le_bytes());
    out[14..].copy_from_slice(&len.to_le_bytes());
    out
}

/// Rule 7: the number of vCPUs.
pub fn vcpus_data(count: u64) -> [u8; 13] {
    let mut out = [0u8; 13];
    out[..5].copy_from_slice(b"vcpus");
    out[5..].copy_from_slice(&count.to_le_bytes());
    out
}

/// Rule 7: the TVM's AIA parameters (`tvm_aia_params` as passed).
pub fn aia_data(params: &crate::covi::TvmAiaParams) -> [u8; 35] {
    let mut out = [0u8; 35];
    out[..3].copy_from_slice(b"aia");
    out[3..].copy_from_slice(&params.to_bytes());
    out
}

/// Rule 7: vCPU `vcpu`'s IMSIC page (COVI).
pub fn imsic_data(vcpu: u64, gpa: u64) -> [u8; 21] {
    let mut out = [0u8; 21];
    out[..5].copy_from_slice(b"imsic");
    out[5..13].copy_from_slice(&vcpu.to_le_bytes());
    out[13..].copy_from_slice(&gpa.to_le_bytes());
    out
}

/// Whether `index` names any register `get_attcaps` reports.
pub const fn is_index(index: u64) -> bool {
    index <= RUNTIME_LAST_INDEX
}

/// Whether `index` names a runtime (guest-extendable) register.
pub const fn is_runtime_index(index: u64) -> bool {
    index >= RUNTIME_FIRST_INDEX && index <= RUNTIME_LAST_INDEX
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings() {
        assert_eq!(page_prefix(0x8000_1000), [0, 0x10, 0, 0x80, 0, 0, 0, 0]);
        let f = finalize_data(0x1122, 0x3344);
        assert_eq!(&f[..2], &[0x22, 0x11]);
        assert_eq!(&f[8..10], &[0x44, 0x33]);
        assert!(!is_runtime_index(TVM_INITIAL_INDEX) && !is_runtime_index(TVM_CONFIG_INDEX));
        assert!(is_runtime_index(2) && is_runtime_index(5) && !is_runtime_index(6));
        assert!(is_index(0) && is_index(5) && !is_index(6) && !is_index(u64::MAX));
        let r = region_data(0x8000_0000, 0x80_0000);
        assert_eq!(&r[..6], b"region");
        assert_eq!(&r[6..14], &0x8000_0000u64.to_le_bytes());
        assert_eq!(&r[14..], &0x80_0000u64.to_le_bytes());
        let v = vcpus_data(2);
        assert_eq!((&v[..5], v[5], v[6]), (&b"vcpus"[..], 2, 0));
        let a = aia_data(&crate::covi::TvmAiaParams::default());
        assert_eq!(&a[..3], b"aia");
        let i = imsic_data(1, 0x2800_1000);
        assert_eq!(
            (&i[..5], i[5], &i[13..]),
            (&b"imsic"[..], 1, &0x2800_1000u64.to_le_bytes()[..])
        );
        assert_eq!(HASH_ALGORITHM.digest_len(), REGISTER_LEN);
    }
}
