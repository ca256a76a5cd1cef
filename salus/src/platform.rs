//! What Salus learned about the machine at boot, read-only afterwards.

use spin::Once;

pub struct Platform {
    /// Harts are numbered 0..nharts (checked at boot).
    pub nharts: usize,
    pub boot_hart: usize,
    pub has_sstc: bool,
    pub has_vector: bool,
    pub has_smstateen: bool,
    /// Ssaia: `vsiselect` and friends exist.
    pub has_ssaia: bool,
    /// Zknh and Zbb: SHA-512 instructions for measurement.
    pub has_zknh: bool,
    /// Bytes per vector register (0 without V).
    pub vlenb: u64,
    pub henvcfg: u64,
    /// Zicbom cache-block size in bytes (a power of two), 0 without Zicbom.
    pub cbom_block: u64,
    /// VMIDLEN probed at boot.
    pub vmid_bits: u32,
    /// hgatp of the host's stage-2 table.
    pub host_hgatp: u64,
    /// hstatus.VGEIN for the host (0 without an IMSIC guest file).
    pub host_vgein: u64,
    pub mvendorid: u64,
    pub marchid: u64,
    pub mimpid: u64,
}

impl Platform {
    /// What SBI BASE reports about the machine.
    pub fn machine_ids(&self) -> sbi_abi::MachineIds {
        sbi_abi::MachineIds {
            mvendorid: self.mvendorid,
            marchid: self.marchid,
            mimpid: self.mimpid,
        }
    }
}

static PLATFORM: Once<Platform> = Once::new();

pub fn set(p: Platform) {
    PLATFORM.call_once(|| p);
}

pub fn get() -> &'static Platform {
    PLATFORM.get().expect("platform::set ran at boot")
}
