//! CSR access. The only place Salus reads or writes control registers.
//!
//! CSRs are named by number so the assembler needs no extension flags; the
//! numbers come from the privileged spec (H extension, Sstc, AIA, Smstateen).

/// Numbers of the CSRs Salus touches (a catalogue: not all used yet).
#[allow(dead_code)]
pub mod num {
    // The VS/HS CSRs the NACL exchange names have one definition, in the
    // ABI crate.
    #[allow(unused_imports)]
    pub use cove_abi::nacl::csr::{
        HGATP, HSTATUS, HTIMEDELTA, HTINST, HTVAL, HVIP, VSATP, VSCAUSE, VSEPC, VSIE, VSIP,
        VSSCRATCH, VSSTATUS, VSTIMECMP, VSTVAL, VSTVEC,
    };

    pub const SSTATUS: u16 = 0x100;
    pub const SIE: u16 = 0x104;
    pub const STVEC: u16 = 0x105;
    pub const SCOUNTEREN: u16 = 0x106;
    pub const SENVCFG: u16 = 0x10A;
    pub const SSTATEEN0: u16 = 0x10C;
    pub const SSCRATCH: u16 = 0x140;
    pub const SEPC: u16 = 0x141;
    pub const SCAUSE: u16 = 0x142;
    pub const STVAL: u16 = 0x143;
    pub const SIP: u16 = 0x144;
    pub const STIMECMP: u16 = 0x14D;
    /// AIA (Ssaia): indirect register select / window, top external
    /// interrupt of Salus's own S-level interrupt file.
    pub const SISELECT: u16 = 0x150;
    pub const SIREG: u16 = 0x151;
    pub const STOPEI: u16 = 0x15C;
    pub const SATP: u16 = 0x180;

    pub const VSISELECT: u16 = 0x250;

    pub const HEDELEG: u16 = 0x602;
    pub const HIDELEG: u16 = 0x603;
    pub const HIE: u16 = 0x604;
    pub const HCOUNTEREN: u16 = 0x606;
    pub const HGEIE: u16 = 0x607;
    pub const HENVCFG: u16 = 0x60A;
    pub const HSTATEEN0: u16 = 0x60C;
    pub const HIP: u16 = 0x644;
    pub const HGEIP: u16 = 0xE12;

    pub const TIME: u16 = 0xC01;
    pub const INSTRET: u16 = 0xC02;
}

/// Bits of the CSRs above.
#[allow(dead_code)]
pub mod bits {
    pub const SSTATUS_SIE: u64 = 1 << 1;
    pub const SSTATUS_SPIE: u64 = 1 << 5;
    pub const SSTATUS_SPP: u64 = 1 << 8;
    pub const SSTATUS_VS_INITIAL: u64 = 1 << 9;
    pub const SSTATUS_VS_MASK: u64 = 3 << 9;
    pub const SSTATUS_FS_INITIAL: u64 = 1 << 13;
    pub const SSTATUS_FS_MASK: u64 = 3 << 13;

    pub const HSTATUS_SPV: u64 = 1 << 7;
    pub const HSTATUS_SPVP: u64 = 1 << 8;
    pub const HSTATUS_VGEIN_SHIFT: u64 = 12;
    pub const HSTATUS_VTW: u64 = 1 << 21;

    /// Interrupt numbers (bit positions in sip/sie/hip/hvip).
    pub const IRQ_S_SOFT: u64 = 1;
    pub const IRQ_VS_SOFT: u64 = 2;
    pub const IRQ_S_TIMER: u64 = 5;
    pub const IRQ_VS_TIMER: u64 = 6;
    pub const IRQ_S_EXT: u64 = 9;
    pub const IRQ_VS_EXT: u64 = 10;
    /// Supervisor guest external interrupt (hip/hie): a guest file in
    /// `hgeie` has an interrupt pending.
    pub const IRQ_SGEI: u64 = 12;

    /// hstateen0: what VS-mode may reach (Smstateen).
    pub const HSTATEEN0_IMSIC: u64 = 1 << 58;
    pub const HSTATEEN0_AIA: u64 = 1 << 59;
    pub const HSTATEEN0_CSRIND: u64 = 1 << 60;
    pub const HSTATEEN0_ENVCFG: u64 = 1 << 62;
    pub const HSTATEEN0_SE0: u64 = 1 << 63;
}

/// Reads a CSR by number.
macro_rules! read {
    ($csr:expr) => {{
        let v: u64;
        // SAFETY: reading a CSR has no memory effects; an absent CSR traps,
        // which Salus treats as a fatal bug of its own (never guest-driven).
        unsafe { core::arch::asm!("csrr {0}, {csr}", out(reg) v, csr = const $csr, options(nomem, nostack)) };
        v
    }};
}

/// Writes a CSR by number.
macro_rules! write {
    ($csr:expr, $val:expr) => {{
        let v: u64 = $val;
        // SAFETY: the CSRs written through this macro only configure
        // translation/trap state of a less-privileged mode or of Salus's
        // own trap handling; callers keep those invariants (see each site).
        unsafe { core::arch::asm!("csrw {csr}, {0}", in(reg) v, csr = const $csr, options(nostack)) };
    }};
}

/// Writes a CSR by number and returns its previous value (`csrrw`).
macro_rules! swap {
    ($csr:expr, $val:expr) => {{
        let v: u64 = $val;
        let old: u64;
        // SAFETY: as for `write!`.
        unsafe { core::arch::asm!("csrrw {0}, {csr}, {1}", out(reg) old, in(reg) v, csr = const $csr, options(nostack)) };
        old
    }};
}

/// Sets bits in a CSR.
macro_rules! set {
    ($csr:expr, $val:expr) => {{
        let v: u64 = $val;
        // SAFETY: as for `write!`.
        unsafe { core::arch::asm!("csrs {csr}, {0}", in(reg) v, csr = const $csr, options(nostack)) };
    }};
}

/// Clears bits in a CSR.
macro_rules! clear {
    ($csr:expr, $val:expr) => {{
        let v: u64 = $val;
        // SAFETY: as for `write!`.
        unsafe { core::arch::asm!("csrc {csr}, {0}", in(reg) v, csr = const $csr, options(nostack)) };
    }};
}

pub(crate) use {clear, read, set, swap, write};
