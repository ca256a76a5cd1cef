//! PCI for the host, behind the IOMMU.
//!
//! At boot Salus enumerates the host bridge's functions through ECAM and
//! keeps the RISC-V IOMMU (`riscv-iommu-pci`, 0x1b36:0x0014 or
//! 0x1efd:0xedf1) for itself:
//! * its 4 KiB config page is left out of the host's stage-2, and host
//!   accesses to it are emulated as "no device" (reads all ones, writes
//!   ignored: `host::mmio`);
//! * its BAR is placed at the top of the 32-bit memory window, in a slice
//!   the host's device tree does not offer and its stage-2 does not map;
//! * every other function found at boot (device id = its routing id) is
//!   attached with the host's G-stage table (GSCID [`HOST_GSCID`]) and a
//!   flat MSI page table that sends writes to hart *i*'s S-level IMSIC file
//!   to hart *i*'s guest interrupt file 1, as the host's stage-2 does.
//!
//! The host then gets the ECAM window and the MMIO windows identity mapped
//! and enumerates and programs its devices itself (MSI/MSI-X only: the
//! bridge has no `interrupt-map`). DMA outside host memory faults in the
//! IOMMU; the fault queue is drained periodically ([`tick`]) into
//! `salus: iommu: fault ...` lines.
//!
//! Without an IOMMU the host gets no PCI at all unless the command line
//! opts in with `salus.pci=unsafe` (see `host::cmdline`).

use crate::arch::csr::{self, num};
use crate::drivers::ecam::Ecam;
use crate::drivers::iommu::{MmioRegs, PoolDma};
use crate::memory::HypTableMemory;
use crate::timer::{self, Source};
use crate::{info, platform};
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use devicetree::{MachineInfo, PciSpace};
use hyp_addr::{GuestPhysAddr, HostPhysAddr, HostRange, PAGE_SIZE};
use page_tables::{GStageTable, Perms};
use pci::{bar, Bdf, FunctionInfo};
use riscv_iommu::driver::DdtChoice;
use riscv_iommu::msi::MsiAddrMatch;
use riscv_iommu::{AttachConfig, InitConfig, Iohgatp, Iommu, MsiPte, MsiRedirect};
use spin::{Mutex, Once};

/// The host VM's guest soft-context id in the IOMMU.
pub const HOST_GSCID: u16 = 1;

/// PCI ids of the RISC-V IOMMU (QEMU's `riscv-iommu-pci`, and the ids of
/// the RISC-V International vendor space).
const IOMMU_IDS: [(u16, u16); 2] = [(0x1b36, 0x0014), (0x1efd, 0xedf1)];

/// Fault-queue drain period (timer ticks; QEMU virt: 10 MHz => 50 ms).
const DRAIN_PERIOD: u64 = 500_000;
/// Fault lines printed before going quiet (a count is kept).
const FAULT_LOG_LIMIT: u32 = 32;

type HostIommu = Iommu<MmioRegs, PoolDma>;

static IOMMU: Mutex<Option<HostIommu>> = Mutex::new(None);
/// ECAM pages (4 KiB, one per hidden function) the host must not reach.
static HIDDEN: Once<Vec<u64>> = Once::new();
static HOUSEKEEPING: AtomicBool = AtomicBool::new(false);
static FAULTS: AtomicU32 = AtomicU32::new(0);

/// What the host gets.
#[derive(Clone, Copy, Debug, Default)]
pub struct HostPci {
    /// Give the host the PCI host bridge.
    pub give: bool,
    /// A slice of a memory window Salus keeps (the IOMMU's BAR).
    pub kept: Option<HostRange>,
}

/// True if `gpa` is inside a config page Salus hides from the host.
pub fn hidden_config(gpa: u64) -> bool {
    HIDDEN
        .get()
        .is_some_and(|v| v.contains(&(gpa & !(PAGE_SIZE - 1))))
}

fn is_iommu(f: &FunctionInfo) -> bool {
    IOMMU_IDS.contains(&(f.vendor_id, f.device_id))
}

/// Probes PCI, sets up the IOMMU and maps what the host gets into its
/// stage-2 table. Boot hart, before the host runs.
pub fn setup(
    info: &MachineInfo,
    gstage: &mut GStageTable,
    mem: &mut HypTableMemory,
    pci_unsafe: bool,
    host_imsic: bool,
) -> HostPci {
    let Some(p) = &info.pci else {
        return HostPci::default();
    };
    let first = p.bus_range.0.min(255) as u8;
    let last = p.bus_range.1.clamp(first as u32, 255) as u8;
    // SAFETY: the device tree's ECAM window; the host has no access yet.
    let mut ecam = unsafe { Ecam::new(p.ecam.start.bits(), p.ecam.len, first) };
    let functions: Vec<FunctionInfo> = pci::Enumerator::new(&mut ecam, first, last).collect();
    for f in &functions {
        info!(
            "PCI: {} {:04x}:{:04x} class {:02x}{:02x}{}",
            f.bdf,
            f.vendor_id,
            f.device_id,
            f.class.base,
            f.class.sub,
            if is_iommu(f) {
                " (IOMMU, kept by Salus)"
            } else {
                ""
            }
        );
    }

    let mut out = HostPci::default();
    let mut hidden = Vec::new();
    let iommu_fn = functions.iter().find(|f| is_iommu(f)).copied();
    let mut have_iommu = false;
    if let Some(f) = iommu_fn {
        let rel = Bdf::new(f.bdf.bus() - first, f.bdf.device(), f.bdf.function());
        hidden.extend(rel.map(|b| p.ecam.start.bits() + b.ecam_offset()));
        match start_iommu(info, &mut ecam, f, &functions, gstage, host_imsic) {
            Ok(kept) => {
                out.kept = Some(kept);
                have_iommu = true;
            }
            Err(why) => info!("iommu: {} {}: not used: {}", f.bdf, "riscv-iommu", why),
        }
    }
    if !have_iommu {
        if pci_unsafe {
            info!("WARNING: no usable IOMMU: the host gets PCI anyway (salus.pci=unsafe): its devices can DMA anywhere, Salus's memory included");
        } else {
            info!("WARNING: no usable IOMMU: the host gets no PCI devices (their DMA could reach Salus's memory); salus.pci=unsafe in -append overrides");
            HIDDEN.call_once(|| hidden);
            return out;
        }
    }
    out.give = true;

    // The host's view: ECAM (minus hidden pages) and the windows (minus
    // Salus's slice), identity mapped.
    let mut map = |start: u64, len: u64| {
        if len == 0 {
            return;
        }
        if let Err(e) = gstage.map_range(
            mem,
            GuestPhysAddr::new(start),
            HostPhysAddr::new(start),
            len,
            Perms::RW,
        ) {
            crate::fatal!(
                "cannot map PCI range {:#x}+{:#x} for the host: {:?}",
                start,
                len,
                e
            );
        }
    };
    map(p.ecam.start.bits(), p.ecam.len);
    for r in &p.ranges {
        if r.space == PciSpace::Config {
            continue;
        }
        let (s, e) = (r.cpu_addr.bits(), r.cpu_addr.bits() + r.size);
        match out
            .kept
            .filter(|k| k.start.bits() >= s && k.end().bits() <= e)
        {
            Some(k) => {
                map(s, k.start.bits() - s);
                map(k.end().bits(), e - k.end().bits());
            }
            None => map(s, r.size),
        }
    }
    for &page in &hidden {
        if let Err(e) = gstage.unmap_4k(mem, GuestPhysAddr::new(page)) {
            crate::fatal!("cannot hide PCI config page {:#x}: {:?}", page, e);
        }
    }
    HIDDEN.call_once(|| hidden);
    out
}

/// Programs the IOMMU's BAR, initialises it and attaches every other
/// function. Returns the window slice its BAR occupies.
fn start_iommu(
    info: &MachineInfo,
    ecam: &mut Ecam,
    f: FunctionInfo,
    functions: &[FunctionInfo],
    gstage: &GStageTable,
    host_imsic: bool,
) -> Result<HostRange, &'static str> {
    let p = info.pci.as_ref().ok_or("no PCI")?;
    let b = bar::size_bar(ecam, f.bdf, 0).map_err(|_| "BAR 0 unreadable")?;
    if b.size == 0 || matches!(b.bar, bar::Bar::Io { .. }) {
        return Err("BAR 0 is not a memory BAR");
    }
    // The top of the 32-bit window, 2 MiB aligned so the host's window
    // mappings keep their large leaves.
    let slice = b.size.next_power_of_two().max(2 << 20);
    let win = p
        .ranges
        .iter()
        .find(|r| r.space == PciSpace::Mem32 && !r.prefetchable && r.size >= 2 * slice)
        .ok_or("no 32-bit memory window for its BAR")?;
    let cpu = (win.cpu_addr.bits() + win.size - slice) & !(slice - 1);
    let pci_addr = win.pci_addr + (cpu - win.cpu_addr.bits());
    bar::set_bar_addr(ecam, f.bdf, 0, pci_addr).map_err(|_| "cannot program BAR 0")?;
    pci::write_command(
        ecam,
        f.bdf,
        pci::command::MEMORY_SPACE | pci::command::BUS_MASTER,
    );
    let kept = HostRange::new(HostPhysAddr::new(cpu), slice).ok_or("bad BAR")?;

    let max_id = functions
        .iter()
        .map(|x| x.bdf.routing_id() as u32)
        .max()
        .unwrap_or(0)
        .max(0xff);
    let cfg = InitConfig {
        ddt: DdtChoice::Fit {
            max_device_id: max_id,
        },
        ..Default::default()
    };
    // SAFETY: the BAR just programmed, in a window slice nobody else gets.
    let regs = unsafe { MmioRegs::new(cpu) };
    let mut iommu = match Iommu::init(regs, PoolDma, cfg) {
        Ok(i) => i,
        Err(e) => {
            info!("iommu: init failed: {:?}", e);
            return Err("initialisation failed");
        }
    };
    let caps = iommu.capabilities();
    let mode = match gstage.mode() {
        page_tables::GStageMode::Sv39x4 => riscv_iommu::GStageMode::Sv39x4,
        page_tables::GStageMode::Sv48x4 => riscv_iommu::GStageMode::Sv48x4,
    };
    if !caps.supports_gstage(mode) {
        return Err("it cannot walk the host's G-stage format");
    }
    let iohgatp = Iohgatp::new(mode, HOST_GSCID, gstage.root());
    let msi = if host_imsic {
        msi_table(info, &mut iommu)
    } else {
        None
    };
    let config = AttachConfig { iohgatp, msi };
    let mut attached = 0;
    for d in functions.iter().filter(|x| !is_iommu(x)) {
        match iommu.attach_device(d.bdf.routing_id() as u32, &config) {
            Ok(()) => attached += 1,
            Err(e) => info!("iommu: cannot attach {}: {:?}", d.bdf, e),
        }
    }
    info!(
        "iommu: {} at {:#x}: {:?} directory, {:?} G-stage (GSCID {}), MSI {}, {} device(s) attached{}",
        f.bdf,
        cpu,
        iommu.mode(),
        mode,
        HOST_GSCID,
        if msi.is_some() { "flat page table" } else { "through G-stage" },
        attached,
        if caps.amo_hwad() { "" } else { ", no hardware A/D (Salus pre-sets A/D)" }
    );
    *IOMMU.lock() = Some(iommu);
    Ok(kept)
}

/// The flat MSI page table for the host: hart i's S-level IMSIC file ->
/// hart i's guest interrupt file 1. None without flat MSI support or
/// without guest interrupt files.
fn msi_table(info: &MachineInfo, iommu: &mut HostIommu) -> Option<MsiRedirect> {
    if !iommu.capabilities().msi_flat() {
        return None;
    }
    let im = info.s_imsic().filter(|i| i.guest_index_bits > 0)?;
    let n = im.harts.len();
    let hart_bits = im
        .hart_index_bits
        .unwrap_or_else(|| usize::BITS - (n.max(1) - 1).leading_zeros());
    if hart_bits > 8 {
        return None;
    }
    let base = im.hart_file(0)?;
    let addr_match = MsiAddrMatch {
        mask: ((1u64 << hart_bits) - 1) << im.guest_index_bits,
        pattern: base.bits() >> 12,
    };
    use riscv_iommu::DmaMemory;
    let table = iommu.mem().alloc_zeroed_page()?;
    for h in 0..n {
        let s_file = im.hart_file(h)?;
        let gpa = hyp_addr::GuestPhysAddr::new(s_file.bits());
        let idx = addr_match.lookup(gpa)?;
        let pte = MsiPte::flat(HostPhysAddr::new(s_file.bits() + PAGE_SIZE)).encode();
        let at = MsiAddrMatch::pte_addr(table, idx);
        iommu.mem().write_u64(at, pte[0]);
        iommu
            .mem()
            .write_u64(HostPhysAddr::new(at.bits() + 8), pte[1]);
    }
    Some(MsiRedirect { table, addr_match })
}

/// The host's G-stage lost (or changed) mappings: devices must not keep
/// cached translations. IOTINVAL.GVMA for the host's GSCID + IOFENCE.C;
/// a no-op without an IOMMU. An error means devices may still use the old
/// translations.
pub fn host_gstage_changed() -> Result<(), riscv_iommu::Error> {
    if let Some(iommu) = IOMMU.lock().as_mut() {
        if let Err(e) = iommu.invalidate_gstage(HOST_GSCID) {
            info!("iommu: G-stage invalidation failed: {:?}", e);
            return Err(e);
        }
    }
    Ok(())
}

/// Starts the periodic fault-queue drain on the boot hart (the caller).
pub fn arm_housekeeping() {
    if IOMMU.lock().is_some() {
        HOUSEKEEPING.store(true, Ordering::Release);
        let hart = platform::get().boot_hart;
        timer::set(hart, Source::IommuDrain, crate::arch::time() + DRAIN_PERIOD);
    }
}

/// The drain deadline passed on `hartid`: drains the IOMMU's fault queue
/// and re-arms the drain.
pub fn tick(hartid: usize) {
    drain_faults();
    if HOUSEKEEPING.load(Ordering::Acquire) && hartid == platform::get().boot_hart {
        timer::set(
            hartid,
            Source::IommuDrain,
            crate::arch::time() + DRAIN_PERIOD,
        );
    }
}

/// `salus.check`: after a TVM ran on `hartid`, the boot hart's fault drain
/// must still be armed and the hardware timer no later than it (finding
/// 13: the world switch used to disarm it).
pub fn check_housekeeping_armed(hartid: usize) {
    let p = platform::get();
    if !HOUSEKEEPING.load(Ordering::Acquire) || hartid != p.boot_hart {
        return;
    }
    let (drain, programmed) = timer::deadline(hartid, Source::IommuDrain);
    let hw = if p.has_sstc {
        csr::read!(num::STIMECMP)
    } else {
        programmed
    };
    if drain == timer::NEVER || hw != programmed || hw > drain {
        crate::fatal!(
            "hart {}: IOMMU fault drain disarmed after a TVM run (drain {:#x}, timer {:#x})",
            hartid,
            drain,
            hw
        );
    }
}

/// Logs and consumes the IOMMU's pending fault records.
pub fn drain_faults() {
    let Some(mut guard) = IOMMU.try_lock() else {
        return;
    };
    let Some(iommu) = guard.as_mut() else {
        return;
    };
    for r in iommu.drain_faults() {
        let n = FAULTS.fetch_add(1, Ordering::Relaxed);
        if n < FAULT_LOG_LIMIT {
            info!(
                "iommu: fault cause {} device {} iova {:#x} ({}, {:?}): DMA blocked",
                r.cause.code(),
                Bdf::from_routing_id(r.device_id as u16),
                r.iotval,
                r.cause.name(),
                r.ttyp
            );
        } else if n == FAULT_LOG_LIMIT {
            info!("iommu: more faults; not logging them any more");
        }
    }
    let errs = iommu.fault_queue_errors();
    if errs != 0 {
        iommu.clear_fault_queue_errors(errs);
    }
}

/// The machine as the host's device tree describes it: the memory window
/// slice Salus keeps is cut off the end of its window.
pub fn host_view(info: &MachineInfo, pci: &HostPci) -> MachineInfo {
    let mut v = info.clone();
    if let (Some(k), Some(p)) = (pci.kept, v.pci.as_mut()) {
        for r in p.ranges.iter_mut() {
            let (s, e) = (r.cpu_addr.bits(), r.cpu_addr.bits() + r.size);
            if k.start.bits() >= s && k.end().bits() == e {
                r.size -= k.len;
            }
        }
    }
    v
}
