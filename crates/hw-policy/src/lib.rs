//! Decisions Salus derives from what the hardware supports, kept free of
//! CSR accesses so they can be tested on the build host.
#![no_std]
#![forbid(unsafe_code)]

/// The ISA features `henvcfg` depends on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EnvFeatures {
    pub sstc: bool,
    pub svadu: bool,
    pub svpbmt: bool,
    pub zicbom: bool,
    pub zicboz: bool,
}

/// `henvcfg` field values (privileged spec, "Hypervisor Environment
/// Configuration Register").
pub mod henvcfg {
    pub const FIOM: u64 = 1 << 0;
    pub const CBIE_SHIFT: u64 = 4;
    pub const CBIE_MASK: u64 = 3 << CBIE_SHIFT;
    /// CBIE = 01: `cbo.inval` in VS/VU mode performs a flush.
    pub const CBIE_FLUSH: u64 = 1 << CBIE_SHIFT;
    /// CBIE = 11: `cbo.inval` really invalidates (never given to a guest).
    pub const CBIE_INVAL: u64 = 3 << CBIE_SHIFT;
    pub const CBCFE: u64 = 1 << 6;
    pub const CBZE: u64 = 1 << 7;
    pub const ADUE: u64 = 1 << 61;
    pub const PBMTE: u64 = 1 << 62;
    pub const STCE: u64 = 1 << 63;
}

/// The host's `henvcfg`.
///
/// `cbo.inval` is turned into a flush: a real invalidate would let the host
/// drop the dirty zeros Salus wrote when it scrubbed a page and read the
/// stale bytes a TVM left in DRAM behind them.
pub fn host_henvcfg(f: EnvFeatures) -> u64 {
    let mut v = 0;
    if f.sstc {
        v |= henvcfg::STCE;
    }
    if f.svadu {
        v |= henvcfg::ADUE;
    }
    if f.svpbmt {
        v |= henvcfg::PBMTE;
    }
    if f.zicbom {
        v |= henvcfg::CBIE_FLUSH | henvcfg::CBCFE;
    }
    if f.zicboz {
        v |= henvcfg::CBZE;
    }
    v
}

/// `hgatp.VMID` occupies bits 57:44 on RV64 (VMIDLEN <= 14).
pub const HGATP_VMID_SHIFT: u32 = 44;
pub const HGATP_VMID_MAX_BITS: u32 = 14;

/// VMIDLEN from `hgatp` read back after writing all ones to its VMID field
/// (the implemented bits are the low ones; the rest read as zero).
pub fn vmid_bits(hgatp_readback: u64) -> u32 {
    let field = (hgatp_readback >> HGATP_VMID_SHIFT) & ((1 << HGATP_VMID_MAX_BITS) - 1);
    field.trailing_ones()
}

/// The VMID for the TVM in `slot` (of `max_tvms`), given VMIDLEN, and
/// whether switching `hgatp` to or from it needs a full TLB fence.
///
/// The host is VMID 0 and TVM slots get `slot + 1`, but only when VMIDLEN
/// gives every slot and the host distinct tags. Otherwise every TVM runs as
/// VMID 0 and each switch fences: TVMs and the host must never share TLB
/// entries, and a wrapped VMID would alias some other VM's.
pub fn vmid_for(slot: usize, vmid_bits: u32, max_tvms: usize) -> (u16, bool) {
    let bits = vmid_bits.min(HGATP_VMID_MAX_BITS);
    let distinct = (max_tvms as u64) < (1u64 << bits);
    if distinct && slot < max_tvms {
        ((slot + 1) as u16, false)
    } else {
        (0, true)
    }
}

/// Whether `vmid_for` gives TVMs the shared VMID 0 (fence on every switch).
pub fn vmids_shared(vmid_bits: u32, max_tvms: usize) -> bool {
    vmid_for(0, vmid_bits, max_tvms).1
}
