//! Firmware DTB -> [`MachineInfo`].

use alloc::collections::BTreeMap;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use fdt::node::FdtNode;
use fdt::Fdt;
use hyp_addr::{HostPhysAddr, HostRange};

use crate::isa::{extensions_from_list, IsaExtensions, IsaString};
use crate::{
    validate, AplicInfo, CpuInfo, Error, ImsicInfo, IrqLevel, MachineInfo, Module, PciHostInfo,
    PciRange, PciSpace, PlicInfo, ReservedRegion, UartInfo,
};

#[derive(Clone, Copy)]
struct Cells {
    addr: usize,
    size: usize,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Ctx {
    Root,
    Top,
    ReservedMemory,
    Cpus,
    Cpu,
    Chosen,
    Other,
}

fn prop<'a>(node: FdtNode<'_, 'a>, name: &str) -> Option<&'a [u8]> {
    node.properties().find(|p| p.name == name).map(|p| p.value)
}

fn has(node: FdtNode<'_, '_>, name: &str) -> bool {
    prop(node, name).is_some()
}

fn cells_of(v: &[u8]) -> Option<Vec<u32>> {
    if !v.len().is_multiple_of(4) {
        return None;
    }
    Some(
        v.chunks_exact(4)
            .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
    )
}

fn prop_cells(node: FdtNode<'_, '_>, name: &'static str) -> Result<Option<Vec<u32>>, Error> {
    prop(node, name)
        .map(|v| cells_of(v).ok_or(Error::BadProperty(name)))
        .transpose()
}

fn prop_u32(node: FdtNode<'_, '_>, name: &'static str) -> Result<Option<u32>, Error> {
    match prop(node, name) {
        None => Ok(None),
        Some(v) if v.len() == 4 => Ok(Some(u32::from_be_bytes([v[0], v[1], v[2], v[3]]))),
        Some(_) => Err(Error::BadProperty(name)),
    }
}

/// A u32 or u64 property.
fn prop_u64(node: FdtNode<'_, '_>, name: &'static str) -> Result<Option<u64>, Error> {
    match prop_cells(node, name)?.as_deref() {
        None => Ok(None),
        Some([a]) => Ok(Some(*a as u64)),
        Some([hi, lo]) => Ok(Some(((*hi as u64) << 32) | *lo as u64)),
        Some(_) => Err(Error::BadProperty(name)),
    }
}

fn prop_str(node: FdtNode<'_, '_>, name: &'static str) -> Result<Option<String>, Error> {
    match prop(node, name) {
        None => Ok(None),
        Some(v) => {
            let v = v.strip_suffix(&[0]).unwrap_or(v);
            let s = core::str::from_utf8(v).map_err(|_| Error::BadProperty(name))?;
            if s.contains('\0') {
                return Err(Error::BadProperty(name));
            }
            Ok(Some(s.to_string()))
        }
    }
}

/// A string-list property; invalid UTF-8 entries are skipped.
fn prop_strings(node: FdtNode<'_, '_>, name: &str) -> Vec<String> {
    let Some(v) = prop(node, name) else {
        return Vec::new();
    };
    let v = v.strip_suffix(&[0]).unwrap_or(v);
    if v.is_empty() {
        return Vec::new();
    }
    v.split(|b| *b == 0)
        .filter_map(|s| core::str::from_utf8(s).ok())
        .map(|s| s.to_string())
        .collect()
}

fn read_number(cells: &[u32]) -> Option<u64> {
    match cells {
        [] => Some(0),
        [a] => Some(*a as u64),
        [hi, lo] => Some(((*hi as u64) << 32) | *lo as u64),
        _ => None,
    }
}

/// Decodes `reg` with the parent's cell sizes.
fn reg(node: FdtNode<'_, '_>, cells: Cells) -> Result<Vec<(u64, u64)>, Error> {
    let Some(v) = prop_cells(node, "reg")? else {
        return Ok(Vec::new());
    };
    let stride = cells.addr + cells.size;
    if cells.addr == 0 || cells.addr > 2 || cells.size > 2 || v.len() % stride != 0 {
        return Err(Error::BadProperty("reg"));
    }
    v.chunks_exact(stride)
        .map(|c| {
            let a = read_number(&c[..cells.addr]).ok_or(Error::BadProperty("reg"))?;
            let s = read_number(&c[cells.addr..]).ok_or(Error::BadProperty("reg"))?;
            Ok((a, s))
        })
        .collect()
}

fn range(addr: u64, size: u64, what: &'static str) -> Result<HostRange, Error> {
    HostRange::new(HostPhysAddr::new(addr), size).ok_or(Error::BadProperty(what))
}

/// First `reg` entry as a range.
fn first_reg(node: FdtNode<'_, '_>, cells: Cells) -> Result<HostRange, Error> {
    let r = reg(node, cells)?;
    let (a, s) = *r.first().ok_or(Error::BadProperty("reg"))?;
    range(a, s, "reg")
}

fn child_cells(node: FdtNode<'_, '_>, inherited: Cells) -> Result<Cells, Error> {
    let a = prop_u32(node, "#address-cells").or(Err(Error::BadProperty("#address-cells")))?;
    let s = prop_u32(node, "#size-cells").or(Err(Error::BadProperty("#size-cells")))?;
    Ok(Cells {
        addr: a.map_or(inherited.addr, |v| v as usize),
        size: s.map_or(inherited.size, |v| v as usize),
    })
}

fn base_name(name: &str) -> &str {
    name.split('@').next().unwrap_or(name)
}

/// Raw IMSIC / APLIC / PLIC data whose phandle references are resolved
/// after the walk.
struct PendingIntc<T> {
    info: T,
    irqs_ext: Vec<u32>,
}

#[derive(Default)]
struct Parser {
    info: MachineInfo,
    /// phandle -> #interrupt-cells of interrupt controllers.
    intc_cells: BTreeMap<u32, u32>,
    /// cpu-intc phandle -> hart id.
    cpu_intc: BTreeMap<u32, u64>,
    imsics: Vec<PendingIntc<ImsicInfo>>,
    aplics: Vec<PendingIntc<AplicInfo>>,
    plic: Option<PendingIntc<PlicInfo>>,
    cpus_timebase: Option<u64>,
    cpu_timebase: Option<u64>,
}

pub fn parse(dtb: &[u8]) -> Result<MachineInfo, Error> {
    let owned = validate::check(dtb)?;
    let blob: &[u8] = owned.as_deref().unwrap_or(dtb);
    let fdt = Fdt::new(blob).map_err(|_| Error::Malformed("header"))?;
    let root = fdt
        .all_nodes()
        .next()
        .ok_or(Error::Malformed("no root node"))?;
    let mut p = Parser::default();
    for r in fdt.memory_reservations() {
        let (a, s) = (r.address() as usize as u64, r.size() as u64);
        p.info
            .mem_reservations
            .push(range(a, s, "memory reservation")?);
    }
    p.walk(root, Cells { addr: 2, size: 1 }, Ctx::Root, 0)?;
    p.finish()
}

impl Parser {
    fn walk(
        &mut self,
        node: FdtNode<'_, '_>,
        parent: Cells,
        ctx: Ctx,
        depth: usize,
    ) -> Result<(), Error> {
        if depth > validate::MAX_DEPTH {
            return Err(Error::Malformed("nodes nested too deep"));
        }
        let name = node.name;
        let compat = prop_strings(node, "compatible");
        let device_type = prop_str(node, "device_type").unwrap_or(None);
        let phandle = prop_u32(node, "phandle")?;
        if let (Some(ph), Some(n)) = (phandle, prop_u32(node, "#interrupt-cells")?) {
            self.intc_cells.insert(ph, n);
        }
        let disabled = prop_str(node, "status")
            .unwrap_or(None)
            .is_some_and(|s| s != "okay" && s != "ok");

        let mut child_ctx = Ctx::Other;
        match ctx {
            Ctx::Root => {
                self.info.model = prop_str(node, "model").unwrap_or(None);
                child_ctx = Ctx::Top;
            }
            Ctx::Top => match base_name(name) {
                "reserved-memory" => child_ctx = Ctx::ReservedMemory,
                "cpus" => {
                    self.cpus_timebase = prop_u64(node, "timebase-frequency")?;
                    child_ctx = Ctx::Cpus;
                }
                "chosen" => {
                    self.info.bootargs = prop_str(node, "bootargs")?;
                    self.info.stdout_path = prop_str(node, "stdout-path")?;
                    self.info.rng_seed = prop(node, "rng-seed")
                        .filter(|v| !v.is_empty())
                        .map(|v| v.to_vec());
                    self.info.uds = prop(node, "salus,uds").map(|v| v.to_vec());
                    child_ctx = Ctx::Chosen;
                }
                _ => {}
            },
            Ctx::ReservedMemory => {
                if !disabled {
                    for (a, s) in reg(node, parent)? {
                        self.info.reserved.push(ReservedRegion {
                            name: name.to_string(),
                            range: range(a, s, "reg")?,
                            no_map: has(node, "no-map"),
                        });
                    }
                }
            }
            Ctx::Cpus => {
                if base_name(name) == "cpu" && device_type.as_deref() == Some("cpu") {
                    child_ctx = Ctx::Cpu;
                    if !disabled {
                        self.cpu(node, parent)?;
                    }
                }
            }
            Ctx::Chosen => {
                if base_name(name) == "module" {
                    self.module(node, parent, &compat)?;
                }
            }
            Ctx::Cpu | Ctx::Other => {}
        }
        if ctx != Ctx::Root
            && (base_name(name) == "memory" || device_type.as_deref() == Some("memory"))
            && !disabled
        {
            for (a, s) in reg(node, parent)? {
                if s != 0 {
                    self.info.memory.push(range(a, s, "reg")?);
                }
            }
        }
        if !disabled {
            self.device(node, parent, &compat, phandle)?;
        }

        let cells = child_cells(node, parent)?;
        for child in node.children() {
            self.walk(child, cells, child_ctx, depth + 1)?;
        }
        Ok(())
    }

    fn cpu(&mut self, node: FdtNode<'_, '_>, parent: Cells) -> Result<(), Error> {
        let hart_id = reg(node, parent)?
            .first()
            .map(|r| r.0)
            .ok_or(Error::BadProperty("reg"))?;
        let isa = prop_str(node, "riscv,isa")?;
        let isa_extensions = prop_strings(node, "riscv,isa-extensions");
        let mut extensions = IsaExtensions::empty();
        if let Some(s) = &isa {
            extensions.insert(
                IsaString::parse(s)
                    .ok_or(Error::BadProperty("riscv,isa"))?
                    .extensions(),
            );
        }
        extensions.insert(extensions_from_list(
            isa_extensions.iter().map(|s| s.as_str()),
        ));
        if isa.is_none() && isa_extensions.is_empty() {
            return Err(Error::Missing("riscv,isa"));
        }
        let mut intc_phandle = None;
        for c in node.children() {
            if prop_strings(c, "compatible")
                .iter()
                .any(|x| x == "riscv,cpu-intc")
            {
                intc_phandle = prop_u32(c, "phandle")?;
            }
        }
        if let Some(ph) = intc_phandle {
            self.cpu_intc.insert(ph, hart_id);
        }
        if let Some(t) = prop_u64(node, "timebase-frequency")? {
            self.cpu_timebase.get_or_insert(t);
        }
        self.info.cpus.push(CpuInfo {
            hart_id,
            isa,
            isa_base: prop_str(node, "riscv,isa-base")?,
            isa_extensions,
            extensions,
            mmu_type: prop_str(node, "mmu-type")?,
            cbom_block_size: prop_u32(node, "riscv,cbom-block-size")?,
            cboz_block_size: prop_u32(node, "riscv,cboz-block-size")?,
            cbop_block_size: prop_u32(node, "riscv,cbop-block-size")?,
            intc_phandle,
        });
        Ok(())
    }

    fn module(
        &mut self,
        node: FdtNode<'_, '_>,
        parent: Cells,
        compat: &[String],
    ) -> Result<(), Error> {
        let is = |c: &str| compat.iter().any(|x| x == c);
        if !is("multiboot,kernel") && !is("multiboot,module") && !is("multiboot,ramdisk") {
            return Ok(());
        }
        let m = Module {
            range: first_reg(node, parent)?,
            bootargs: prop_str(node, "bootargs")?,
            compatible: compat.to_vec(),
        };
        if is("multiboot,kernel") {
            if self.info.kernel.is_none() {
                self.info.kernel = Some(m.clone());
            }
        } else if self.info.initrd.is_none() {
            self.info.initrd = Some(m.clone());
        }
        self.info.modules.push(m);
        Ok(())
    }

    fn device(
        &mut self,
        node: FdtNode<'_, '_>,
        parent: Cells,
        compat: &[String],
        phandle: Option<u32>,
    ) -> Result<(), Error> {
        let is = |c: &str| compat.iter().any(|x| x == c);
        if (is("ns16550a") || is("ns16550")) && self.info.uart.is_none() {
            let r = first_reg(node, parent)?;
            self.info.uart = Some(UartInfo {
                base: r.start,
                size: r.len,
                clock_frequency: prop_u32(node, "clock-frequency")?,
                interrupts: prop_cells(node, "interrupts")?.unwrap_or_default(),
            });
        } else if is("riscv,imsics") {
            let regs = reg(node, parent)?
                .into_iter()
                .map(|(a, s)| range(a, s, "reg"))
                .collect::<Result<Vec<_>, _>>()?;
            if regs.is_empty() {
                return Err(Error::BadProperty("reg"));
            }
            let info = ImsicInfo {
                phandle,
                compatible: compat.to_vec(),
                regs,
                num_ids: prop_u32(node, "riscv,num-ids")?.ok_or(Error::Missing("riscv,num-ids"))?,
                guest_index_bits: prop_u32(node, "riscv,guest-index-bits")?.unwrap_or(0),
                hart_index_bits: prop_u32(node, "riscv,hart-index-bits")?,
                group_index_bits: prop_u32(node, "riscv,group-index-bits")?.unwrap_or(0),
                group_index_shift: prop_u32(node, "riscv,group-index-shift")?,
                harts: Vec::new(),
                level: IrqLevel::Unknown,
            };
            if info.guest_index_bits > 7 {
                return Err(Error::BadProperty("riscv,guest-index-bits"));
            }
            let irqs_ext = prop_cells(node, "interrupts-extended")?.unwrap_or_default();
            self.imsics.push(PendingIntc { info, irqs_ext });
        } else if is("riscv,aplic") {
            let r = first_reg(node, parent)?;
            let info = AplicInfo {
                phandle,
                base: r.start,
                size: r.len,
                num_sources: prop_u32(node, "riscv,num-sources")?.unwrap_or(0),
                msi_parent: prop_u32(node, "msi-parent")?,
                children: prop_cells(node, "riscv,children")?.unwrap_or_default(),
                level: IrqLevel::Unknown,
            };
            let irqs_ext = prop_cells(node, "interrupts-extended")?.unwrap_or_default();
            self.aplics.push(PendingIntc { info, irqs_ext });
        } else if (is("riscv,plic0") || is("sifive,plic-1.0.0")) && self.plic.is_none() {
            let r = first_reg(node, parent)?;
            let info = PlicInfo {
                phandle,
                base: r.start,
                size: r.len,
                ndev: prop_u32(node, "riscv,ndev")?.unwrap_or(0),
                contexts: Vec::new(),
            };
            let irqs_ext = prop_cells(node, "interrupts-extended")?.unwrap_or_default();
            self.plic = Some(PendingIntc { info, irqs_ext });
        } else if is("pci-host-ecam-generic") && self.info.pci.is_none() {
            self.info.pci = Some(pci(node, parent)?);
        } else if is("sifive,test0") && self.info.test_device.is_none() {
            self.info.test_device = Some(first_reg(node, parent)?);
        }
        Ok(())
    }

    /// Decodes `interrupts-extended` into `(phandle, first specifier cell)`.
    fn irqs_ext(&self, cells: &[u32]) -> Result<Vec<(u32, u32)>, Error> {
        let mut out = Vec::new();
        let mut i = 0;
        while i < cells.len() {
            let ph = cells[i];
            let n = *self
                .intc_cells
                .get(&ph)
                .ok_or(Error::BadProperty("interrupts-extended"))? as usize;
            let end = n
                .checked_add(i + 1)
                .ok_or(Error::BadProperty("interrupts-extended"))?;
            let spec = cells
                .get(i + 1..end)
                .ok_or(Error::BadProperty("interrupts-extended"))?;
            out.push((ph, spec.first().copied().unwrap_or(0)));
            i = end;
        }
        Ok(out)
    }

    /// Hart ids and level of an `interrupts-extended` routed to cpu-intcs.
    fn hart_routes(&self, cells: &[u32]) -> Result<(Vec<(u64, u32)>, IrqLevel), Error> {
        let mut routes = Vec::new();
        for (ph, irq) in self.irqs_ext(cells)? {
            if let Some(h) = self.cpu_intc.get(&ph) {
                routes.push((*h, irq));
            }
        }
        let level = if !routes.is_empty() && routes.iter().all(|r| r.1 == 9) {
            IrqLevel::Supervisor
        } else if !routes.is_empty() && routes.iter().all(|r| r.1 == 11) {
            IrqLevel::Machine
        } else {
            IrqLevel::Unknown
        };
        Ok((routes, level))
    }

    fn finish(mut self) -> Result<MachineInfo, Error> {
        for p in core::mem::take(&mut self.imsics) {
            let (routes, level) = self.hart_routes(&p.irqs_ext)?;
            let mut info = p.info;
            info.harts = routes.iter().map(|r| r.0).collect();
            info.level = level;
            self.info.imsics.push(info);
        }
        for p in core::mem::take(&mut self.aplics) {
            let mut info = p.info;
            info.level = match info.msi_parent {
                Some(ph) => self
                    .info
                    .imsics
                    .iter()
                    .find(|i| i.phandle == Some(ph))
                    .map_or(IrqLevel::Unknown, |i| i.level),
                None => self.hart_routes(&p.irqs_ext)?.1,
            };
            self.info.aplics.push(info);
        }
        if let Some(p) = self.plic.take() {
            let (routes, _) = self.hart_routes(&p.irqs_ext)?;
            let mut info = p.info;
            info.contexts = routes;
            self.info.plic = Some(info);
        }
        if self.info.cpus.is_empty() {
            return Err(Error::Missing("enabled cpu nodes"));
        }
        if self.info.memory.is_empty() {
            return Err(Error::Missing("memory"));
        }
        self.info.timebase_frequency = self
            .cpus_timebase
            .or(self.cpu_timebase)
            .ok_or(Error::Missing("timebase-frequency"))?;
        self.info.isa = self
            .info
            .cpus
            .iter()
            .fold(IsaExtensions::all(), |a, c| a.intersection(c.extensions));
        Ok(self.info)
    }
}

fn pci(node: FdtNode<'_, '_>, parent: Cells) -> Result<PciHostInfo, Error> {
    let ecam = first_reg(node, parent)?;
    let bus_range = match prop_cells(node, "bus-range")?.as_deref() {
        None => (0, 255),
        Some([a, b]) if a <= b => (*a, *b),
        Some(_) => return Err(Error::BadProperty("bus-range")),
    };
    let own = child_cells(node, parent)?;
    if own.addr != 3 || own.size == 0 || own.size > 2 || parent.addr == 0 || parent.addr > 2 {
        return Err(Error::BadProperty("ranges"));
    }
    let raw = prop_cells(node, "ranges")?.unwrap_or_default();
    let stride = 3 + parent.addr + own.size;
    if raw.len() % stride != 0 {
        return Err(Error::BadProperty("ranges"));
    }
    let ranges = raw
        .chunks_exact(stride)
        .map(|c| {
            let flags = c[0];
            let space = match (flags >> 24) & 3 {
                0 => PciSpace::Config,
                1 => PciSpace::Io,
                2 => PciSpace::Mem32,
                _ => PciSpace::Mem64,
            };
            let bad = Error::BadProperty("ranges");
            let pci_addr = read_number(&c[1..3]).ok_or(Error::BadProperty("ranges"))?;
            let cpu = read_number(&c[3..3 + parent.addr]).ok_or(Error::BadProperty("ranges"))?;
            let size = read_number(&c[3 + parent.addr..]).ok_or(bad)?;
            range(cpu, size, "ranges")?;
            Ok(PciRange {
                space,
                prefetchable: flags & 0x4000_0000 != 0,
                flags,
                pci_addr,
                cpu_addr: HostPhysAddr::new(cpu),
                size,
            })
        })
        .collect::<Result<Vec<_>, Error>>()?;
    Ok(PciHostInfo {
        ecam,
        bus_range,
        ranges,
        dma_coherent: has(node, "dma-coherent"),
        msi_parent: prop_u32(node, "msi-parent")?,
        pci_domain: prop_u32(node, "linux,pci-domain")?,
    })
}
