//! Driver logic over [`IommuRegs`] and [`DmaMemory`].
//!
//! The sequence follows the spec's software guidelines: with the IOMMU
//! `Off`, program the command and fault queues, build an (initially empty)
//! device directory, switch `ddtp` to the directory mode and flush any
//! cached state. Device contexts are written with `tc.V` last and made
//! visible with `IODIR.INVAL_DDT` + `IOFENCE.C`. Completion of a fence is
//! observed through its `AV` memory write (no interrupts needed). Every
//! wait is bounded by [`InitConfig::spin_limit`].

use crate::command::Command;
use crate::ddt::{
    DcFormat, DeviceContext, DirEntry, FirstStageContext, Iohgatp, Msiptp, TranslationAttributes,
    TranslationControl, MSI_ADDR_BITS,
};
use crate::fault::FaultRecord;
use crate::mask;
use crate::msi::MsiAddrMatch;
use crate::queue::{QueueBase, Ring, COMMAND_SIZE, FAULT_RECORD_SIZE};
use crate::regs::{cqcsr, fqcsr, offset, Capabilities, Ddtp, Fctl, InterruptGeneration, IommuMode};
use hyp_addr::{HostPhysAddr, PAGE_SIZE};

/// Access to the IOMMU's 4 KiB register page. Offsets are byte offsets from
/// [`crate::regs::offset`]. Implementations must order earlier normal
/// memory writes before a register write (e.g. `fence w,o`), so that queue
/// entries are visible before the tail update.
pub trait IommuRegs {
    fn read32(&mut self, offset: usize) -> u32;
    fn read64(&mut self, offset: usize) -> u64;
    fn write32(&mut self, offset: usize, value: u32);
    fn write64(&mut self, offset: usize, value: u64);
}

/// Memory the IOMMU reads and writes (directory, queues, completion word).
pub trait DmaMemory {
    /// A zeroed, 4 KiB aligned page the IOMMU may access; `None` if out of
    /// memory.
    fn alloc_zeroed_page(&mut self) -> Option<HostPhysAddr>;
    fn read_u64(&mut self, addr: HostPhysAddr) -> u64;
    fn write_u64(&mut self, addr: HostPhysAddr, value: u64);
    /// 4-byte read (4-byte aligned address), used for fence completions.
    fn read_u32(&mut self, addr: HostPhysAddr) -> u32 {
        let aligned = HostPhysAddr::new(addr.bits() & !7);
        (self.read_u64(aligned) >> ((addr.bits() & 4) * 8)) as u32
    }
}

/// What a bounded wait was waiting for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitFor {
    DdtpBusy,
    CommandQueueOn,
    CommandQueueOff,
    FaultQueueOn,
    FaultQueueOff,
    CommandQueueSpace,
    FenceCompletion,
}

/// Driver errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// `capabilities.version` major is not 1.
    UnsupportedVersion(u8),
    /// A feature the driver needs is absent.
    MissingFeature(&'static str),
    /// Only big-endian data structures are supported (`fctl.BE` stuck at 1).
    BigEndianOnly,
    /// `ddtp` did not accept the requested mode (WARL read-back differs).
    DdtModeRejected { requested: IommuMode, got: u8 },
    /// No directory mode covers the requested device-id range.
    DeviceIdRangeTooLarge(u32),
    /// Device id not decodable by the configured directory.
    DeviceIdOutOfRange { device_id: u32, mode: IommuMode },
    /// MSI redirection requested but `capabilities.MSI_FLAT == 0`.
    MsiUnsupported,
    /// MSI table / mask / pattern unusable (reserved bits or misalignment).
    InvalidMsiConfig,
    /// The `iohgatp` scheme is not supported by the IOMMU.
    GStageModeUnsupported(crate::ddt::GStageMode),
    /// Second-stage root not 16 KiB aligned.
    MisalignedGStageRoot(HostPhysAddr),
    /// Out of DMA memory.
    OutOfMemory,
    /// A bounded wait expired.
    Timeout(WaitFor),
    /// The command queue stopped (`cqcsr` error bits) at index `head`.
    CommandQueue { cqcsr: u32, head: u32 },
    /// The device has no valid device context.
    NotAttached(u32),
    /// The driver is not initialised in a directory mode.
    NotInitialized,
}

/// Directory-mode choice for [`Iommu::init`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DdtChoice {
    /// Fewest levels covering device ids `0..=max_device_id`.
    Fit { max_device_id: u32 },
    /// Exactly this mode (must be 1, 2 or 3 levels).
    Fixed(IommuMode),
}

/// Parameters of [`Iommu::init`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InitConfig {
    pub ddt: DdtChoice,
    /// log2 of command-queue entries (1..=8: the queue is one page).
    pub cq_log2_entries: u8,
    /// log2 of fault-queue entries (1..=7: the queue is one page).
    pub fq_log2_entries: u8,
    /// Upper bound of polling iterations of every wait.
    pub spin_limit: u32,
}

impl Default for InitConfig {
    /// One bus (device ids up to 0xff, QEMU `virt` puts its PCIe devices on
    /// bus 0): a 2-level directory with the 64-byte DC, 1-level with the
    /// 32-byte one. Full one-page queues.
    fn default() -> Self {
        Self {
            ddt: DdtChoice::Fit {
                max_device_id: 0xff,
            },
            cq_log2_entries: 8,
            fq_log2_entries: 7,
            spin_limit: 1_000_000,
        }
    }
}

/// Routing of a device's MSIs through a flat MSI page table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MsiRedirect {
    /// Flat MSI page table (aligned to `max(4 KiB, table size)`).
    pub table: HostPhysAddr,
    pub addr_match: MsiAddrMatch,
}

/// What [`Iommu::attach_device`] programs for a device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AttachConfig {
    /// Second-stage table and GSCID of the owning VM.
    pub iohgatp: Iohgatp,
    pub msi: Option<MsiRedirect>,
}

/// Producer state of the command queue.
#[derive(Clone, Copy, Debug)]
struct CmdQueue {
    base: HostPhysAddr,
    ring: Ring,
    tail: u32,
}

/// An initialised IOMMU in a directory mode.
pub struct Iommu<R: IommuRegs, M: DmaMemory> {
    regs: R,
    mem: M,
    caps: Capabilities,
    format: DcFormat,
    mode: IommuMode,
    ddt_root: HostPhysAddr,
    cq: CmdQueue,
    fq_base: HostPhysAddr,
    fq_ring: Ring,
    fence_word: HostPhysAddr,
    fence_seq: u32,
    spin_limit: u32,
}

/// Reads and validates `capabilities`. Refuses versions other than 1.x, a
/// reserved `IGS`, a zero `PAS` and IOMMUs without any second-stage scheme
/// Salus can use (Sv39x4 or Sv48x4); QEMU 10's device passes.
pub fn probe<R: IommuRegs>(regs: &mut R) -> Result<Capabilities, Error> {
    let caps = Capabilities::from_bits(regs.read64(offset::CAPABILITIES));
    if caps.version_major() != 1 {
        return Err(Error::UnsupportedVersion(caps.version()));
    }
    if caps.igs() == InterruptGeneration::Reserved {
        return Err(Error::MissingFeature("IGS"));
    }
    if caps.pas() == 0 {
        return Err(Error::MissingFeature("PAS"));
    }
    if !caps.sv39x4() && !caps.sv48x4() {
        return Err(Error::MissingFeature("Sv39x4/Sv48x4"));
    }
    Ok(caps)
}

fn spin<F: FnMut() -> bool>(limit: u32, what: WaitFor, mut done: F) -> Result<(), Error> {
    for _ in 0..limit.max(1) {
        if done() {
            return Ok(());
        }
        core::hint::spin_loop();
    }
    Err(Error::Timeout(what))
}

impl<R: IommuRegs, M: DmaMemory> Iommu<R, M> {
    /// Probes, turns the IOMMU off, sets up the queues and an empty device
    /// directory, enables the directory mode and invalidates all caches.
    pub fn init(mut regs: R, mut mem: M, config: InitConfig) -> Result<Self, Error> {
        let caps = probe(&mut regs)?;
        let format = caps.dc_format();
        let limit = config.spin_limit;
        let mode = match config.ddt {
            DdtChoice::Fit { max_device_id } => format
                .levels_for(max_device_id)
                .ok_or(Error::DeviceIdRangeTooLarge(max_device_id))?,
            DdtChoice::Fixed(m) if m.levels() > 0 => m,
            DdtChoice::Fixed(_) => return Err(Error::NotInitialized),
        };
        let cq_log2 = config.cq_log2_entries.clamp(1, 8);
        let fq_log2 = config.fq_log2_entries.clamp(1, 7);

        // 1. Off, keeping the PPN as the spec requires.
        spin(limit, WaitFor::DdtpBusy, || {
            !Ddtp::from_bits(regs.read64(offset::DDTP)).busy()
        })?;
        let cur = Ddtp::from_bits(regs.read64(offset::DDTP));
        regs.write64(offset::DDTP, cur.with_mode(IommuMode::Off).bits());
        spin(limit, WaitFor::DdtpBusy, || {
            !Ddtp::from_bits(regs.read64(offset::DDTP)).busy()
        })?;

        // 2. Queues off.
        regs.write32(offset::CQCSR, 0);
        spin(limit, WaitFor::CommandQueueOff, || {
            regs.read32(offset::CQCSR) & (cqcsr::CQON | cqcsr::BUSY) == 0
        })?;
        regs.write32(offset::FQCSR, 0);
        spin(limit, WaitFor::FaultQueueOff, || {
            regs.read32(offset::FQCSR) & (fqcsr::FQON | fqcsr::BUSY) == 0
        })?;

        // 3. Features: little-endian structures, interrupt method.
        let fctl = Fctl {
            be: false,
            wsi: caps.igs() == InterruptGeneration::Wsi,
            gxl: false,
        };
        regs.write32(offset::FCTL, fctl.bits());
        if Fctl::from_bits(regs.read32(offset::FCTL)).be {
            return Err(Error::BigEndianOnly);
        }

        // 4. Command queue.
        let cq_page = mem.alloc_zeroed_page().ok_or(Error::OutOfMemory)?;
        let cqb = QueueBase::new(cq_page, cq_log2).ok_or(Error::NotInitialized)?;
        regs.write64(offset::CQB, cqb.bits());
        regs.write32(offset::CQT, 0);
        regs.write32(offset::CQCSR, cqcsr::CQEN);
        spin(limit, WaitFor::CommandQueueOn, || {
            let v = regs.read32(offset::CQCSR);
            v & cqcsr::CQON != 0 && v & cqcsr::BUSY == 0
        })?;

        // 5. Fault queue.
        let fq_page = mem.alloc_zeroed_page().ok_or(Error::OutOfMemory)?;
        let fqb = QueueBase::new(fq_page, fq_log2).ok_or(Error::NotInitialized)?;
        regs.write64(offset::FQB, fqb.bits());
        regs.write32(offset::FQH, 0);
        regs.write32(offset::FQCSR, fqcsr::FQEN);
        spin(limit, WaitFor::FaultQueueOn, || {
            let v = regs.read32(offset::FQCSR);
            v & fqcsr::FQON != 0 && v & fqcsr::BUSY == 0
        })?;

        // 6. Empty directory, then the directory mode.
        let root = mem.alloc_zeroed_page().ok_or(Error::OutOfMemory)?;
        let fence_word = mem.alloc_zeroed_page().ok_or(Error::OutOfMemory)?;
        regs.write64(offset::DDTP, Ddtp::new(mode, root).bits());
        spin(limit, WaitFor::DdtpBusy, || {
            !Ddtp::from_bits(regs.read64(offset::DDTP)).busy()
        })?;
        let got = Ddtp::from_bits(regs.read64(offset::DDTP));
        if got.mode() != Some(mode) || got.root() != root {
            // Leave the IOMMU blocking DMA.
            regs.write64(offset::DDTP, got.with_mode(IommuMode::Off).bits());
            return Err(Error::DdtModeRejected {
                requested: mode,
                got: got.raw_mode(),
            });
        }

        let mut iommu = Iommu {
            regs,
            mem,
            caps,
            format,
            mode,
            ddt_root: root,
            cq: CmdQueue {
                base: cq_page,
                ring: cqb.ring(),
                tail: 0,
            },
            fq_base: fq_page,
            fq_ring: fqb.ring(),
            fence_word,
            fence_seq: 0,
            spin_limit: limit,
        };

        // 7. Nothing cached from before may survive.
        iommu.submit_and_sync(&[
            Command::IodirInvalDdt { device_id: None },
            Command::IotinvalGvma {
                gscid: None,
                addr: None,
            },
            Command::IotinvalVma {
                gscid: None,
                pscid: None,
                addr: None,
            },
        ])?;
        Ok(iommu)
    }

    pub fn capabilities(&self) -> Capabilities {
        self.caps
    }
    pub fn mode(&self) -> IommuMode {
        self.mode
    }
    pub fn dc_format(&self) -> DcFormat {
        self.format
    }
    pub fn ddt_root(&self) -> HostPhysAddr {
        self.ddt_root
    }
    pub fn regs(&mut self) -> &mut R {
        &mut self.regs
    }
    pub fn mem(&mut self) -> &mut M {
        &mut self.mem
    }
    pub fn into_parts(self) -> (R, M) {
        (self.regs, self.mem)
    }

    /// Writes `cmds` to the command queue and advances `cqt`, waiting
    /// (bounded) for free slots.
    pub fn submit(&mut self, cmds: &[Command]) -> Result<(), Error> {
        for cmd in cmds {
            let ring = self.cq.ring;
            let tail = self.cq.tail;
            let regs = &mut self.regs;
            let mut stopped = None;
            spin(self.spin_limit, WaitFor::CommandQueueSpace, || {
                let csr = regs.read32(offset::CQCSR);
                if csr & cqcsr::ERRORS != 0 {
                    stopped = Some(csr);
                    return true;
                }
                !ring.is_full(regs.read32(offset::CQH), tail)
            })?;
            if let Some(csr) = stopped {
                return Err(self.cq_error(csr));
            }
            let slot = HostPhysAddr::new(self.cq.base.bits() + tail as u64 * COMMAND_SIZE);
            let w = cmd.encode();
            self.mem.write_u64(slot, w[0]);
            self.mem.write_u64(HostPhysAddr::new(slot.bits() + 8), w[1]);
            self.cq.tail = ring.next(tail);
            self.regs.write32(offset::CQT, self.cq.tail);
        }
        Ok(())
    }

    fn cq_error(&mut self, csr: u32) -> Error {
        Error::CommandQueue {
            cqcsr: csr,
            head: self.regs.read32(offset::CQH),
        }
    }

    /// Submits an `IOFENCE.C` with a completion write and waits for it.
    pub fn sync(&mut self) -> Result<(), Error> {
        self.fence_seq = self.fence_seq.wrapping_add(1).max(1);
        let seq = self.fence_seq;
        let word = self.fence_word;
        self.mem.write_u64(word, 0);
        self.submit(&[Command::fence_with_completion(word.bits(), seq)])?;
        let mut stopped = None;
        let (regs, mem) = (&mut self.regs, &mut self.mem);
        spin(self.spin_limit, WaitFor::FenceCompletion, || {
            if mem.read_u32(word) == seq {
                return true;
            }
            let csr = regs.read32(offset::CQCSR);
            if csr & cqcsr::ERRORS != 0 {
                stopped = Some(csr);
                return true;
            }
            false
        })?;
        match stopped {
            Some(csr) => Err(self.cq_error(csr)),
            None => Ok(()),
        }
    }

    /// [`submit`](Self::submit) then [`sync`](Self::sync).
    pub fn submit_and_sync(&mut self, cmds: &[Command]) -> Result<(), Error> {
        self.submit(cmds)?;
        self.sync()
    }

    fn check_device(&self, device_id: u32) -> Result<(), Error> {
        if self.format.fits(self.mode, device_id) {
            Ok(())
        } else {
            Err(Error::DeviceIdOutOfRange {
                device_id,
                mode: self.mode,
            })
        }
    }

    /// Address of the device's DC, allocating missing directory pages when
    /// `create`; `None` if a level is missing and `!create`.
    fn dc_addr(&mut self, device_id: u32, create: bool) -> Result<Option<HostPhysAddr>, Error> {
        let mut table = self.ddt_root;
        for level in (1..self.mode.levels()).rev() {
            let entry_addr =
                HostPhysAddr::new(table.bits() + self.format.ddi(device_id, level) as u64 * 8);
            let entry = DirEntry::from_bits(self.mem.read_u64(entry_addr));
            table = if entry.is_valid() {
                entry.next()
            } else if create {
                let page = self.mem.alloc_zeroed_page().ok_or(Error::OutOfMemory)?;
                self.mem.write_u64(entry_addr, DirEntry::table(page).bits());
                page
            } else {
                return Ok(None);
            };
        }
        Ok(Some(HostPhysAddr::new(
            table.bits() + (self.format.ddi(device_id, 0) * self.format.dc_size()) as u64,
        )))
    }

    /// Reads back the device context of `device_id`, if its directory path
    /// exists.
    pub fn read_device_context(&mut self, device_id: u32) -> Result<Option<[u64; 8]>, Error> {
        self.check_device(device_id)?;
        let Some(dc) = self.dc_addr(device_id, false)? else {
            return Ok(None);
        };
        let mut w = [0u64; 8];
        for (i, word) in w.iter_mut().take(self.format.dc_words()).enumerate() {
            *word = self
                .mem
                .read_u64(HostPhysAddr::new(dc.bits() + i as u64 * 8));
        }
        Ok(Some(w))
    }

    /// Builds the device context for `config` (not written).
    pub fn device_context(&self, config: &AttachConfig) -> Result<DeviceContext, Error> {
        let g = config.iohgatp;
        if !self.caps.supports_gstage(g.mode) {
            return Err(Error::GStageModeUnsupported(g.mode));
        }
        if g.mode != crate::ddt::GStageMode::Bare && g.root().bits() & (4 * PAGE_SIZE - 1) != 0 {
            return Err(Error::MisalignedGStageRoot(g.root()));
        }
        let mut dc = DeviceContext {
            tc: TranslationControl {
                v: true,
                ..Default::default()
            },
            iohgatp: g,
            ta: TranslationAttributes::default(),
            fsc: FirstStageContext::BARE,
            ..Default::default()
        };
        if let Some(msi) = config.msi {
            if self.format != DcFormat::Extended {
                return Err(Error::MsiUnsupported);
            }
            let m = msi.addr_match;
            let align = m.table_bytes().max(PAGE_SIZE);
            if m.mask >> MSI_ADDR_BITS != 0
                || m.pattern >> MSI_ADDR_BITS != 0
                || msi.table.bits() & (align - 1) != 0
                || msi.table.bits() >> 56 != 0
            {
                return Err(Error::InvalidMsiConfig);
            }
            dc.msiptp = Msiptp::flat(msi.table);
            dc.msi_addr_mask = m.mask & mask(MSI_ADDR_BITS);
            dc.msi_addr_pattern = m.pattern & mask(MSI_ADDR_BITS);
        }
        Ok(dc)
    }

    /// Points `device_id` at a VM: builds missing directory pages, writes
    /// the DC with `tc.V = 1` last, then `IODIR.INVAL_DDT` + `IOFENCE.C`.
    pub fn attach_device(&mut self, device_id: u32, config: &AttachConfig) -> Result<(), Error> {
        self.check_device(device_id)?;
        let dc = self.device_context(config)?;
        let addr = self
            .dc_addr(device_id, true)?
            .ok_or(Error::NotInitialized)?;
        let words = dc.encode(self.format);
        let n = self.format.dc_words();
        // Invalidate first if the slot was live, so no mix of old and new
        // words is ever valid.
        let was_valid = self.mem.read_u64(addr) & 1 != 0;
        if was_valid {
            self.mem.write_u64(addr, 0);
            self.submit_and_sync(&[Command::IodirInvalDdt {
                device_id: Some(device_id),
            }])?;
        }
        for (i, w) in words.iter().enumerate().take(n).skip(1) {
            self.mem
                .write_u64(HostPhysAddr::new(addr.bits() + i as u64 * 8), *w);
        }
        self.mem.write_u64(addr, words[0]);
        self.submit_and_sync(&[Command::IodirInvalDdt {
            device_id: Some(device_id),
        }])
    }

    /// Clears `tc.V` of the device's DC (its DMA then faults with "DDT entry
    /// not valid") and flushes the IOMMU's copy.
    pub fn detach_device(&mut self, device_id: u32) -> Result<(), Error> {
        self.check_device(device_id)?;
        let addr = self
            .dc_addr(device_id, false)?
            .ok_or(Error::NotAttached(device_id))?;
        if self.mem.read_u64(addr) & 1 == 0 {
            return Err(Error::NotAttached(device_id));
        }
        self.mem.write_u64(addr, 0);
        self.submit_and_sync(&[Command::IodirInvalDdt {
            device_id: Some(device_id),
        }])
    }

    /// Invalidates cached second-stage translations of VM `gscid` and waits
    /// (the fence also orders earlier device reads and writes).
    pub fn invalidate_gstage(&mut self, gscid: u16) -> Result<(), Error> {
        self.submit_and_sync(&[Command::IotinvalGvma {
            gscid: Some(gscid),
            addr: None,
        }])
    }

    /// Invalidates the cached second-stage leaf for one guest page.
    pub fn invalidate_gstage_page(
        &mut self,
        gscid: u16,
        gpa: hyp_addr::GuestPhysAddr,
    ) -> Result<(), Error> {
        self.submit_and_sync(&[Command::IotinvalGvma {
            gscid: Some(gscid),
            addr: Some(gpa.bits() & !(PAGE_SIZE - 1)),
        }])
    }

    /// `fqcsr` error bits (`FQMF`, `FQOF`) currently set.
    pub fn fault_queue_errors(&mut self) -> u32 {
        self.regs.read32(offset::FQCSR) & fqcsr::ERRORS
    }

    /// Clears the given `fqcsr` error bits (RW1C) so recording resumes.
    pub fn clear_fault_queue_errors(&mut self, bits: u32) {
        self.regs
            .write32(offset::FQCSR, fqcsr::FQEN | (bits & fqcsr::ERRORS));
    }

    /// Iterates over pending fault records, consuming each (advancing
    /// `fqh`) as it is yielded.
    pub fn drain_faults(&mut self) -> FaultDrain<'_, R, M> {
        let tail = self.fq_ring.index(self.regs.read32(offset::FQT));
        let head = self.fq_ring.index(self.regs.read32(offset::FQH));
        FaultDrain {
            iommu: self,
            head,
            tail,
        }
    }
}

/// Iterator returned by [`Iommu::drain_faults`]. Records are read up to the
/// `fqt` sampled when the iterator was created.
pub struct FaultDrain<'a, R: IommuRegs, M: DmaMemory> {
    iommu: &'a mut Iommu<R, M>,
    head: u32,
    tail: u32,
}

impl<R: IommuRegs, M: DmaMemory> Iterator for FaultDrain<'_, R, M> {
    type Item = FaultRecord;

    fn next(&mut self) -> Option<FaultRecord> {
        let ring = self.iommu.fq_ring;
        if ring.is_empty(self.head, self.tail) {
            return None;
        }
        let base = self.iommu.fq_base.bits() + self.head as u64 * FAULT_RECORD_SIZE;
        let mut w = [0u64; 4];
        for (i, word) in w.iter_mut().enumerate() {
            *word = self
                .iommu
                .mem
                .read_u64(HostPhysAddr::new(base + i as u64 * 8));
        }
        self.head = ring.next(self.head);
        self.iommu.regs.write32(offset::FQH, self.head);
        Some(FaultRecord::decode(w))
    }
}
