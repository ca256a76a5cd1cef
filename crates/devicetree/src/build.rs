//! [`MachineInfo`] + [`HostFdtConfig`] -> the host VM's DTB.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use hyp_addr::{HostPhysAddr, HostRange};
use vm_fdt::FdtWriter;

use crate::isa::{is_hypervisor_only, IsaString};
use crate::{CpuInfo, Error, ImsicInfo, MachineInfo};

/// FIFO depth the host's (emulated) UART advertises.
const HOST_UART_FIFO: u32 = 64;

/// A UART given to the host (polled: no `interrupts` property).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostUart {
    pub base: HostPhysAddr,
    pub size: u64,
    pub clock_frequency: u32,
}

/// What the host VM gets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostFdtConfig {
    /// Root `model`.
    pub model: String,
    /// The host's RAM, one `/memory@..` node each.
    pub memory: Vec<HostRange>,
    /// Ranges kept by Salus and the firmware: `/reserved-memory` children
    /// with `no-map`.
    pub reserved: Vec<HostRange>,
    /// Hart ids given to the host; `None` = every enabled hart. For the
    /// IMSIC, host harts should be all harts or a prefix of them in the
    /// IMSIC's order (file positions follow `interrupts-extended` order).
    pub harts: Option<Vec<u64>>,
    /// Give the host the S-level IMSIC (needs one in the firmware tree).
    pub imsic: bool,
    /// Give the host the PCI host bridge (needs one in the firmware tree).
    pub pci: bool,
    /// Give the host a polled UART.
    pub uart: Option<HostUart>,
    /// Further extension names to hide from the host (case-insensitive).
    pub hidden_extensions: Vec<String>,
}

impl Default for HostFdtConfig {
    fn default() -> Self {
        Self {
            model: String::from("riscv-virtio,salus-host"),
            memory: Vec::new(),
            reserved: Vec::new(),
            harts: None,
            imsic: false,
            pci: false,
            uart: None,
            hidden_extensions: Vec::new(),
        }
    }
}

/// Writes the host VM's device tree. Phandles are assigned by the builder.
pub struct HostFdtBuilder<'a> {
    info: &'a MachineInfo,
    cfg: &'a HostFdtConfig,
    next_phandle: u32,
}

/// Convenience for `HostFdtBuilder::new(info, cfg).build()`.
pub fn build_host_fdt(info: &MachineInfo, cfg: &HostFdtConfig) -> Result<Vec<u8>, Error> {
    HostFdtBuilder::new(info, cfg).build()
}

fn hi_lo(v: u64) -> [u32; 2] {
    [(v >> 32) as u32, v as u32]
}

fn reg_cells(ranges: impl IntoIterator<Item = (u64, u64)>) -> Vec<u64> {
    ranges.into_iter().flat_map(|(a, s)| [a, s]).collect()
}

impl<'a> HostFdtBuilder<'a> {
    pub fn new(info: &'a MachineInfo, cfg: &'a HostFdtConfig) -> Self {
        Self {
            info,
            cfg,
            next_phandle: 1,
        }
    }

    fn phandle(&mut self) -> u32 {
        let p = self.next_phandle;
        self.next_phandle += 1;
        p
    }

    fn host_cpus(&self) -> Result<Vec<&'a CpuInfo>, Error> {
        match &self.cfg.harts {
            None => Ok(self.info.cpus.iter().collect()),
            Some(ids) => {
                let mut v: Vec<&CpuInfo> = Vec::new();
                for id in ids {
                    let c = self
                        .info
                        .cpu(*id)
                        .ok_or(Error::Config("host hart not in machine"))?;
                    if v.iter().any(|x| x.hart_id == *id) {
                        return Err(Error::Config("duplicate host hart"));
                    }
                    v.push(c);
                }
                Ok(v)
            }
        }
    }

    fn hidden(&self, name: &str) -> bool {
        is_hypervisor_only(name, &self.cfg.hidden_extensions)
            || (!self.cfg.imsic && name.eq_ignore_ascii_case("ssaia"))
    }

    /// The hart's ISA string without `h` and hypervisor/M-level extensions.
    fn host_isa(&self, cpu: &CpuInfo) -> Result<Option<String>, Error> {
        let Some(s) = &cpu.isa else { return Ok(None) };
        let mut isa = IsaString::parse(s).ok_or(Error::BadProperty("riscv,isa"))?;
        let mut buf = [0u8; 4];
        isa.letters = isa
            .letters
            .chars()
            .filter(|c| !self.hidden(c.encode_utf8(&mut buf)))
            .collect();
        isa.multi.retain(|m| !self.hidden(m));
        Ok(Some(isa.render()))
    }

    pub fn build(mut self) -> Result<Vec<u8>, Error> {
        let info = self.info;
        let cfg = self.cfg;
        if cfg.memory.is_empty() {
            return Err(Error::Config("no host memory"));
        }
        let cpus = self.host_cpus()?;
        if cpus.is_empty() {
            return Err(Error::Config("no host harts"));
        }
        let imsic: Option<&ImsicInfo> = if cfg.imsic {
            Some(info.s_imsic().ok_or(Error::Config("no S-level IMSIC"))?)
        } else {
            None
        };
        let pci = if cfg.pci {
            Some(
                info.pci
                    .as_ref()
                    .ok_or(Error::Config("no PCI host bridge"))?,
            )
        } else {
            None
        };

        let mut w = FdtWriter::new()?;
        let root = w.begin_node("")?;
        w.property_u32("#address-cells", 2)?;
        w.property_u32("#size-cells", 2)?;
        w.property_string("compatible", "riscv-virtio")?;
        w.property_string("model", &cfg.model)?;

        // /chosen
        let chosen = w.begin_node("chosen")?;
        let bootargs = info
            .kernel
            .as_ref()
            .and_then(|k| k.bootargs.as_deref())
            .or(info.bootargs.as_deref());
        if let Some(b) = bootargs {
            w.property_string("bootargs", b)?;
        }
        // Without it Linux's crng waits (seconds) for entropy of its own.
        if let Some(seed) = &info.rng_seed {
            w.property("rng-seed", seed)?;
        }
        if let Some(initrd) = &info.initrd {
            w.property_u64("linux,initrd-start", initrd.range.start.bits())?;
            w.property_u64("linux,initrd-end", initrd.range.end().bits())?;
        }
        let uart_path = cfg
            .uart
            .as_ref()
            .map(|u| format!("/soc/serial@{:x}", u.base.bits()));
        if let Some(p) = &uart_path {
            w.property_string("stdout-path", p)?;
        }
        w.end_node(chosen)?;
        if let Some(p) = &uart_path {
            let aliases = w.begin_node("aliases")?;
            w.property_string("serial0", p)?;
            w.end_node(aliases)?;
        }

        // Memory.
        for m in &cfg.memory {
            let n = w.begin_node(&format!("memory@{:x}", m.start.bits()))?;
            w.property_string("device_type", "memory")?;
            w.property_array_u64("reg", &[m.start.bits(), m.len])?;
            w.end_node(n)?;
        }
        if !cfg.reserved.is_empty() {
            let rm = w.begin_node("reserved-memory")?;
            w.property_u32("#address-cells", 2)?;
            w.property_u32("#size-cells", 2)?;
            w.property_null("ranges")?;
            for r in &cfg.reserved {
                let n = w.begin_node(&format!("reserved@{:x}", r.start.bits()))?;
                w.property_array_u64("reg", &[r.start.bits(), r.len])?;
                w.property_null("no-map")?;
                w.end_node(n)?;
            }
            w.end_node(rm)?;
        }

        // CPUs.
        let mut intc = Vec::new();
        let cpus_node = w.begin_node("cpus")?;
        w.property_u32("#address-cells", 1)?;
        w.property_u32("#size-cells", 0)?;
        let tb = u32::try_from(info.timebase_frequency)
            .map_err(|_| Error::BadProperty("timebase-frequency"))?;
        w.property_u32("timebase-frequency", tb)?;
        for cpu in &cpus {
            let id = u32::try_from(cpu.hart_id).map_err(|_| Error::Config("hart id above u32"))?;
            let n = w.begin_node(&format!("cpu@{id:x}"))?;
            w.property_string("device_type", "cpu")?;
            w.property_u32("reg", id)?;
            w.property_string("status", "okay")?;
            w.property_string("compatible", "riscv")?;
            if let Some(isa) = self.host_isa(cpu)? {
                w.property_string("riscv,isa", &isa)?;
            }
            if let Some(b) = &cpu.isa_base {
                w.property_string("riscv,isa-base", b)?;
            }
            if !cpu.isa_extensions.is_empty() {
                let list: Vec<String> = cpu
                    .isa_extensions
                    .iter()
                    .filter(|e| !self.hidden(e))
                    .map(|e| e.to_string())
                    .collect();
                w.property_string_list("riscv,isa-extensions", list)?;
            }
            if let Some(m) = &cpu.mmu_type {
                w.property_string("mmu-type", m)?;
            }
            for (name, v) in [
                ("riscv,cbom-block-size", cpu.cbom_block_size),
                ("riscv,cboz-block-size", cpu.cboz_block_size),
                ("riscv,cbop-block-size", cpu.cbop_block_size),
            ] {
                if let Some(v) = v {
                    w.property_u32(name, v)?;
                }
            }
            let ph = self.phandle();
            intc.push((cpu.hart_id, ph));
            let ic = w.begin_node("interrupt-controller")?;
            w.property_u32("#interrupt-cells", 1)?;
            w.property_null("interrupt-controller")?;
            w.property_string("compatible", "riscv,cpu-intc")?;
            w.property_phandle(ph)?;
            w.end_node(ic)?;
            w.end_node(n)?;
        }
        w.end_node(cpus_node)?;

        // Devices.
        let soc = w.begin_node("soc")?;
        w.property_u32("#address-cells", 2)?;
        w.property_u32("#size-cells", 2)?;
        w.property_string("compatible", "simple-bus")?;
        w.property_null("ranges")?;

        let mut imsic_phandle = None;
        if let Some(im) = imsic {
            let base = im.regs[0].start.bits();
            let n = w.begin_node(&format!("interrupt-controller@{base:x}"))?;
            w.property_string_list("compatible", im.compatible.clone())?;
            w.property_array_u64(
                "reg",
                &reg_cells(im.regs.iter().map(|r| (r.start.bits(), r.len))),
            )?;
            let mut ext = Vec::new();
            for h in &im.harts {
                if let Some((_, ph)) = intc.iter().find(|(id, _)| id == h) {
                    ext.extend_from_slice(&[*ph, 9]);
                }
            }
            if ext.is_empty() {
                return Err(Error::Config("no host hart has an IMSIC file"));
            }
            w.property_array_u32("interrupts-extended", &ext)?;
            w.property_null("msi-controller")?;
            w.property_null("interrupt-controller")?;
            w.property_u32("#interrupt-cells", 0)?;
            w.property_u32("riscv,num-ids", im.num_ids)?;
            if im.guest_index_bits != 0 {
                w.property_u32("riscv,guest-index-bits", im.guest_index_bits)?;
            }
            if let Some(v) = im.hart_index_bits {
                w.property_u32("riscv,hart-index-bits", v)?;
            }
            if im.group_index_bits != 0 {
                w.property_u32("riscv,group-index-bits", im.group_index_bits)?;
            }
            if let Some(v) = im.group_index_shift {
                w.property_u32("riscv,group-index-shift", v)?;
            }
            let ph = self.phandle();
            w.property_phandle(ph)?;
            imsic_phandle = Some(ph);
            w.end_node(n)?;
        }

        if let Some(p) = pci {
            let n = w.begin_node(&format!("pci@{:x}", p.ecam.start.bits()))?;
            w.property_string("compatible", "pci-host-ecam-generic")?;
            w.property_string("device_type", "pci")?;
            w.property_u32("#address-cells", 3)?;
            w.property_u32("#size-cells", 2)?;
            w.property_array_u64("reg", &[p.ecam.start.bits(), p.ecam.len])?;
            w.property_array_u32("bus-range", &[p.bus_range.0, p.bus_range.1])?;
            let mut ranges = Vec::new();
            for r in &p.ranges {
                ranges.push(r.flags);
                ranges.extend_from_slice(&hi_lo(r.pci_addr));
                ranges.extend_from_slice(&hi_lo(r.cpu_addr.bits()));
                ranges.extend_from_slice(&hi_lo(r.size));
            }
            w.property_array_u32("ranges", &ranges)?;
            if p.dma_coherent {
                w.property_null("dma-coherent")?;
            }
            if let Some(d) = p.pci_domain {
                w.property_u32("linux,pci-domain", d)?;
            }
            // MSI-only: no `interrupt-map`, so no INTx. `#interrupt-cells`
            // makes that Linux's "no interrupt-map found" (INTx not
            // available) instead of an error for every device with a pin.
            w.property_u32("#interrupt-cells", 1)?;
            if let (Some(ph), Some(_)) = (imsic_phandle, p.msi_parent) {
                w.property_u32("msi-parent", ph)?;
            }
            w.end_node(n)?;
        }

        if let Some(u) = &cfg.uart {
            let n = w.begin_node(&format!("serial@{:x}", u.base.bits()))?;
            w.property_string("compatible", "ns16550a")?;
            w.property_array_u64("reg", &[u.base.bits(), u.size])?;
            w.property_u32("clock-frequency", u.clock_frequency)?;
            // Salus emulates it and sends each byte at once: a deep FIFO
            // lets Linux's polled 8250 write a whole line per kick.
            w.property_u32("fifo-size", HOST_UART_FIFO)?;
            w.property_u32("tx-threshold", 0)?;
            w.end_node(n)?;
        }
        w.end_node(soc)?;

        w.end_node(root)?;
        Ok(w.finish()?)
    }
}
