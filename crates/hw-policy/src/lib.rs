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
