//! # devicetree
//!
//! Reads the firmware's flattened device tree (FDT) and writes the host
//! VM's.
//!
//! * [`MachineInfo::parse`] walks the firmware DTB (using the `fdt` crate,
//!   after a structural check of the blob so that malformed or truncated
//!   input yields an [`Error`] rather than a panic) and collects what Salus
//!   needs: RAM, reserved memory, harts and their ISA extensions, the
//!   timebase, UART, IMSICs, APLICs, PLIC, the PCI host bridge, the test
//!   device, `/chosen` and the guest-loader modules (host kernel, initrd).
//! * [`build_host_fdt`] (or [`HostFdtBuilder`]) writes a fresh DTB for the
//!   host VM (using `vm-fdt`): its RAM and reserved ranges, its harts with
//!   hypervisor-only extensions removed from the ISA, `/chosen` with the
//!   kernel command line and initrd, and optionally the S-level IMSIC, the
//!   PCI host bridge and a polled UART, as [`HostFdtConfig`] asks.
//!
//! All addresses are host-physical; the host VM is identity mapped.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

mod build;
mod isa;
mod parse;
mod reserve;
mod validate;

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use hyp_addr::{HostPhysAddr, HostRange};

pub use build::{build_host_fdt, HostFdtBuilder, HostFdtConfig, HostUart};
pub use isa::{extensions_from_list, is_hypervisor_only, IsaExtensions, IsaString};
pub use reserve::{firmware_reserved, host_reserved, subtract};

/// Why a DTB could not be read or written.
#[derive(Debug, PartialEq, Eq)]
pub enum Error {
    /// The blob does not start with the FDT magic number.
    BadMagic,
    /// The blob is shorter than its header says or than a header.
    Truncated,
    /// The structure of the blob is invalid.
    Malformed(&'static str),
    /// A property Salus needs has an invalid value (the property's name).
    BadProperty(&'static str),
    /// A required node or property is missing.
    Missing(&'static str),
    /// The host FDT configuration is inconsistent with the machine.
    Config(&'static str),
    /// `vm-fdt` refused to write the tree.
    Write(vm_fdt::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::BadMagic => write!(f, "not a flattened device tree"),
            Error::Truncated => write!(f, "device tree truncated"),
            Error::Malformed(what) => write!(f, "malformed device tree: {what}"),
            Error::BadProperty(p) => write!(f, "bad value for property {p}"),
            Error::Missing(what) => write!(f, "missing {what}"),
            Error::Config(what) => write!(f, "bad host FDT configuration: {what}"),
            Error::Write(e) => write!(f, "writing FDT: {e}"),
        }
    }
}

impl From<vm_fdt::Error> for Error {
    fn from(e: vm_fdt::Error) -> Self {
        Error::Write(e)
    }
}

/// A `/reserved-memory` child.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReservedRegion {
    /// Node name (e.g. `mmode_resv0@80000000`).
    pub name: String,
    pub range: HostRange,
    /// The `no-map` property is present.
    pub no_map: bool,
}

/// One enabled hart.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CpuInfo {
    /// `reg` of the `cpu@N` node.
    pub hart_id: u64,
    /// `riscv,isa`, as given.
    pub isa: Option<String>,
    /// `riscv,isa-base` (e.g. `rv64i`).
    pub isa_base: Option<String>,
    /// `riscv,isa-extensions`, as given.
    pub isa_extensions: Vec<String>,
    /// Known extensions named by either property.
    pub extensions: IsaExtensions,
    /// `mmu-type` (e.g. `riscv,sv57`).
    pub mmu_type: Option<String>,
    pub cbom_block_size: Option<u32>,
    pub cboz_block_size: Option<u32>,
    pub cbop_block_size: Option<u32>,
    /// Phandle of the hart's `riscv,cpu-intc` child.
    pub intc_phandle: Option<u32>,
}

/// A 16550-compatible UART.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UartInfo {
    pub base: HostPhysAddr,
    pub size: u64,
    pub clock_frequency: Option<u32>,
    /// Raw `interrupts` cells.
    pub interrupts: Vec<u32>,
}

/// Privilege level an interrupt file or domain delivers to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IrqLevel {
    /// Supervisor external interrupt (cpu-intc irq 9).
    Supervisor,
    /// Machine external interrupt (cpu-intc irq 11).
    Machine,
    /// Could not be told (mixed or not routed to harts).
    Unknown,
}

/// A set of IMSIC interrupt files (`riscv,imsics`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImsicInfo {
    pub phandle: Option<u32>,
    /// `compatible` strings.
    pub compatible: Vec<String>,
    /// `reg` ranges (one per group).
    pub regs: Vec<HostRange>,
    pub num_ids: u32,
    pub guest_index_bits: u32,
    pub hart_index_bits: Option<u32>,
    pub group_index_bits: u32,
    pub group_index_shift: Option<u32>,
    /// Hart ids, in `interrupts-extended` order (the order of the files).
    pub harts: Vec<u64>,
    pub level: IrqLevel,
}

impl ImsicInfo {
    /// Bytes between two consecutive harts' files: one page per interrupt
    /// file (supervisor + guests).
    pub fn hart_stride(&self) -> u64 {
        1u64 << (12 + self.guest_index_bits.min(51))
    }

    /// Address of the `index`-th hart's (S- or M-level) file, for the
    /// single-group layout.
    pub fn hart_file(&self, index: usize) -> Option<HostPhysAddr> {
        let base = self.regs.first()?.start;
        let addr = base.checked_add(self.hart_stride().checked_mul(index as u64)?)?;
        self.regs[0].contains(addr).then_some(addr)
    }
}

/// An APLIC domain (`riscv,aplic`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AplicInfo {
    pub phandle: Option<u32>,
    pub base: HostPhysAddr,
    pub size: u64,
    pub num_sources: u32,
    /// Phandle of the IMSIC it forwards MSIs to (MSI mode).
    pub msi_parent: Option<u32>,
    /// `riscv,children` phandles (child domains).
    pub children: Vec<u32>,
    /// Level, from the MSI parent or `interrupts-extended`.
    pub level: IrqLevel,
}

/// A PLIC.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlicInfo {
    pub phandle: Option<u32>,
    pub base: HostPhysAddr,
    pub size: u64,
    pub ndev: u32,
    /// `(hart id, cpu-intc irq)` for each context, in order.
    pub contexts: Vec<(u64, u32)>,
}

/// Address space of a PCI `ranges` entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PciSpace {
    Config,
    Io,
    Mem32,
    Mem64,
}

/// One decoded entry of a PCI host bridge's `ranges`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PciRange {
    pub space: PciSpace,
    pub prefetchable: bool,
    /// The raw first (`phys.hi`) cell, kept to write the entry back.
    pub flags: u32,
    pub pci_addr: u64,
    pub cpu_addr: HostPhysAddr,
    pub size: u64,
}

/// A generic ECAM PCI host bridge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PciHostInfo {
    pub ecam: HostRange,
    pub bus_range: (u32, u32),
    pub ranges: Vec<PciRange>,
    pub dma_coherent: bool,
    /// `msi-parent` phandle, if any.
    pub msi_parent: Option<u32>,
    pub pci_domain: Option<u32>,
}

/// A guest-loader module (`/chosen/module@...`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Module {
    pub range: HostRange,
    pub bootargs: Option<String>,
    pub compatible: Vec<String>,
}

/// What Salus learns from the firmware's device tree.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct MachineInfo {
    pub model: Option<String>,
    /// RAM (`/memory` nodes' `reg`), in tree order.
    pub memory: Vec<HostRange>,
    /// `/reserved-memory` children.
    pub reserved: Vec<ReservedRegion>,
    /// The header's memory reservation block.
    pub mem_reservations: Vec<HostRange>,
    /// Enabled harts, in tree order.
    pub cpus: Vec<CpuInfo>,
    /// Extensions every enabled hart has.
    pub isa: IsaExtensions,
    pub timebase_frequency: u64,
    pub uart: Option<UartInfo>,
    pub imsics: Vec<ImsicInfo>,
    pub aplics: Vec<AplicInfo>,
    pub plic: Option<PlicInfo>,
    pub pci: Option<PciHostInfo>,
    /// `sifive,test0` (test/poweroff) device.
    pub test_device: Option<HostRange>,
    /// `/chosen/bootargs`.
    pub bootargs: Option<String>,
    /// `/chosen/stdout-path`.
    pub stdout_path: Option<String>,
    /// `/chosen/rng-seed`: the firmware's boot entropy, handed on to the
    /// host (Salus itself does not use it).
    pub rng_seed: Option<Vec<u8>>,
    /// `/chosen/salus,uds`: the stand-in Unique Device Secret a platform
    /// may hand Salus (docs/attestation.md); never given to the host.
    pub uds: Option<Vec<u8>>,
    /// All guest-loader modules, in tree order.
    pub modules: Vec<Module>,
    /// The first `multiboot,kernel` module.
    pub kernel: Option<Module>,
    /// The first other module (`multiboot,ramdisk` or `multiboot,module`).
    pub initrd: Option<Module>,
}

impl MachineInfo {
    /// Parses a firmware DTB. Never panics on malformed input.
    pub fn parse(dtb: &[u8]) -> Result<MachineInfo, Error> {
        parse::parse(dtb)
    }

    /// The S-level IMSIC, if any.
    pub fn s_imsic(&self) -> Option<&ImsicInfo> {
        self.imsics.iter().find(|i| i.level == IrqLevel::Supervisor)
    }

    /// The M-level IMSIC, if any.
    pub fn m_imsic(&self) -> Option<&ImsicInfo> {
        self.imsics.iter().find(|i| i.level == IrqLevel::Machine)
    }

    /// The hart with id `hart_id`.
    pub fn cpu(&self, hart_id: u64) -> Option<&CpuInfo> {
        self.cpus.iter().find(|c| c.hart_id == hart_id)
    }
}
