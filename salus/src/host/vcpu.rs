//! The host's vCPU on one hart: enter VS mode, take the trap back, handle
//! it, repeat. Host vCPU `i` is pinned to physical hart `i`.

use super::sbi::{self, SbiOutcome};
use crate::arch::csr::{self, bits, num};
use crate::arch::entry::{reg, run_guest, GuestRegs};
use crate::hart::{self, HsmState};
use crate::platform;
use crate::timer::{Source, Sources};

const INTERRUPT: u64 = 1 << 63;
const CAUSE_ECALL_VS: u64 = 10;
const CAUSE_FETCH_GUEST_PAGE_FAULT: u64 = 20;
const CAUSE_LOAD_GUEST_PAGE_FAULT: u64 = 21;
const CAUSE_VIRTUAL_INSTRUCTION: u64 = 22;
const CAUSE_STORE_GUEST_PAGE_FAULT: u64 = 23;
const CAUSE_ILLEGAL_INSTRUCTION: u64 = 2;

/// How many stray accesses per hart are logged before going quiet.
const FAULT_LOG_LIMIT: u32 = 8;

pub struct HostVcpu {
    pub hartid: usize,
    pub regs: GuestRegs,
    faults_logged: u32,
    /// NACL shared memory set by the host on this hart (12 KiB, host RAM).
    pub nacl_shmem: Option<u64>,
    /// Where the host's vector registers wait while a TVM runs here.
    pub vec_area: alloc::vec::Vec<u8>,
    /// The host's FP registers / vector CSRs while a TVM runs here, and
    /// whether the copies are current (see tsm::run).
    pub fp: crate::arch::fpvec::FpState,
    pub vec: crate::arch::fpvec::VecCsrs,
    pub fp_saved: bool,
    pub vec_saved: bool,
}

/// Why the vCPU loop returned.
pub enum Exit {
    /// The host stopped this vCPU (HSM hart_stop).
    Stopped,
}

impl HostVcpu {
    /// A vCPU reset to start at `entry` with a0 = hart id, a1 = `arg`.
    pub fn new(hartid: usize, entry: u64, arg: u64) -> Self {
        let mut v = HostVcpu {
            hartid,
            regs: GuestRegs::new(),
            faults_logged: 0,
            nacl_shmem: None,
            vec_area: alloc::vec::Vec::new(),
            fp: Default::default(),
            vec: Default::default(),
            fp_saved: false,
            vec_saved: false,
        };
        v.reset(entry, arg);
        v
    }

    /// Resets the architectural state the SBI spec defines for a hart start
    /// (and non-retentive resume): pc, a0, a1, S-mode with paging and
    /// interrupts off.
    pub fn reset(&mut self, entry: u64, arg: u64) {
        self.regs = GuestRegs::new();
        self.regs.sepc = entry;
        self.regs.gprs[reg::A0] = self.hartid as u64;
        self.regs.gprs[reg::A1] = arg;
        csr::write!(num::VSSTATUS, bits::SSTATUS_FS_INITIAL);
        csr::write!(num::VSIE, 0);
        csr::write!(num::VSATP, 0);
        csr::write!(num::VSTVEC, 0);
        csr::write!(num::VSSCRATCH, 0);
        csr::write!(num::HVIP, 0);
        if platform::get().has_sstc {
            csr::write!(num::VSTIMECMP, u64::MAX);
        }
        crate::timer::cancel(self.hartid, Source::HostVtimer);
        crate::arch::hfence_vvma_all();
        crate::arch::hfence_gvma_all();
        self.nacl_shmem = None;
        hart::shared(self.hartid)
            .nacl_shmem
            .store(0, core::sync::atomic::Ordering::Release);
        // Enter VS (not VU) mode on the next sret.
        csr::set!(num::SSTATUS, bits::SSTATUS_SPP);
    }

    /// Runs until the host stops this vCPU.
    pub fn run(&mut self) -> Exit {
        // The last trap (cause, SBI entry, when it came) for the
        // statistics: accounted just before the next entry.
        let mut last: Option<(u64, Option<usize>, u64)> = None;
        loop {
            if let Some((cause, sbi, since)) = last.take() {
                crate::stats::trap_done(self.hartid, cause, sbi, since);
            }
            let scause = {
                run_guest(&mut self.regs);
                csr::read!(num::SCAUSE)
            };
            let since = crate::stats::now();
            if scause & INTERRUPT != 0 {
                self.handle_interrupt(scause & !INTERRUPT);
                last = Some((scause, None, since));
                continue;
            }
            let mut sbi_entry = None;
            match scause {
                CAUSE_ECALL_VS => {
                    if crate::stats::enabled() {
                        let g = &self.regs.gprs;
                        sbi_entry = Some(crate::stats::sbi_entry(
                            g[crate::arch::entry::reg::A7],
                            g[crate::arch::entry::reg::A6],
                        ));
                    }
                    match sbi::handle(self) {
                        SbiOutcome::Return => self.regs.sepc += 4,
                        SbiOutcome::Stop => return Exit::Stopped,
                        SbiOutcome::Resume => {}
                    }
                }
                CAUSE_FETCH_GUEST_PAGE_FAULT
                | CAUSE_LOAD_GUEST_PAGE_FAULT
                | CAUSE_STORE_GUEST_PAGE_FAULT => self.guest_page_fault(scause),
                CAUSE_VIRTUAL_INSTRUCTION => {
                    let insn = csr::read!(num::STVAL);
                    self.inject_exception(CAUSE_ILLEGAL_INSTRUCTION, insn);
                }
                other => {
                    // Anything else not delegated (e.g. an access fault from
                    // PMP) belongs to the host: reflect it unchanged.
                    let tval = csr::read!(num::STVAL);
                    self.inject_exception(other, tval);
                }
            }
            last = Some((scause, sbi_entry, since));
        }
    }

    // Out of line: keeps the ecall fast path in `run` lean.
    #[inline(never)]
    pub fn handle_interrupt(&mut self, code: u64) {
        match code {
            bits::IRQ_S_SOFT => serve_mailbox(self.hartid),
            bits::IRQ_S_TIMER => self.timer_fired(),
            bits::IRQ_SGEI => crate::tsm::covi::host_wake(self.hartid),
            _ => {
                // Not enabled in sie; if it shows up, mask it so it cannot
                // storm, and say so.
                csr::clear!(num::SIE, 1 << code);
                crate::info!("hart {}: unexpected interrupt {} masked", self.hartid, code);
            }
        }
    }

    /// SBI set_timer for the host.
    pub fn set_timer(&mut self, deadline: u64) {
        if platform::get().has_sstc {
            crate::timer::write_vstimecmp(deadline);
            return;
        }
        self.set_emulated_timer(deadline);
    }

    #[inline(never)]
    fn set_emulated_timer(&mut self, deadline: u64) {
        csr::clear!(num::HVIP, 1 << bits::IRQ_VS_TIMER);
        crate::timer::set(self.hartid, Source::HostVtimer, deadline);
    }

    fn timer_fired(&mut self) {
        let fired = crate::timer::expired(self.hartid);
        if fired.contains(Source::IommuDrain) {
            super::pci::tick(self.hartid);
        }
        self.host_timer_fired(fired);
    }

    /// The host's share of an S-timer interrupt: its emulated timer (no
    /// Sstc) becomes a pending VS timer interrupt.
    pub fn host_timer_fired(&mut self, fired: Sources) {
        if fired.contains(Source::HostVtimer) {
            csr::set!(num::HVIP, 1 << bits::IRQ_VS_TIMER);
        }
    }

    fn guest_page_fault(&mut self, scause: u64) {
        let stval = csr::read!(num::STVAL);
        let gpa = (csr::read!(num::HTVAL) << 2) | (stval & 3);
        match super::mmio::emulate(self, scause, gpa) {
            super::mmio::Emulated::Done | super::mmio::Emulated::Retry => return,
            super::mmio::Emulated::No => {}
        }
        if crate::memory::host_owns(gpa, 1) {
            // A stale translation from before the page came back (reclaim):
            // drop it and retry.
            crate::arch::hfence_gvma_all();
            return;
        }
        let (what, access_fault) = match scause {
            CAUSE_FETCH_GUEST_PAGE_FAULT => ("fetch", 1),
            CAUSE_LOAD_GUEST_PAGE_FAULT => ("load", 5),
            _ => ("store", 7),
        };
        if self.faults_logged < FAULT_LOG_LIMIT {
            self.faults_logged += 1;
            crate::info!(
                "host hart {}: {} at GPA {:#x} (pc {:#x}) is not host memory; access fault injected",
                self.hartid,
                what,
                gpa,
                self.regs.sepc
            );
        }
        self.inject_exception(access_fault, stval);
    }

    /// Delivers a synchronous exception to the host's trap handler.
    pub fn inject_exception(&mut self, cause: u64, tval: u64) {
        crate::arch::vs_trap::inject_exception(&mut self.regs, cause, tval);
    }
}

/// Serves requests other harts posted for this one: owed virtual IPIs and
/// remote fences. Called on a supervisor software interrupt and when a
/// parked or waiting hart wakes.
pub fn serve_mailbox(hartid: usize) {
    csr::clear!(num::SIP, 1 << bits::IRQ_S_SOFT);
    let me = hart::shared(hartid);
    if me.vssip.swap(false, core::sync::atomic::Ordering::AcqRel) {
        csr::set!(num::HVIP, 1 << bits::IRQ_VS_SOFT);
        crate::stats::event(hartid, crate::stats::MAILBOX_VIPI);
    }
    hart::serve_fences(hartid);
}

/// Parks a hart until the host starts its vCPU, then runs it; forever.
pub fn park_and_serve(hartid: usize) -> ! {
    let me = hart::shared(hartid);
    loop {
        serve_mailbox(hartid);
        if me.hsm() == HsmState::StartPending {
            let entry = me.start_addr.load(core::sync::atomic::Ordering::Acquire);
            let arg = me.start_opaque.load(core::sync::atomic::Ordering::Acquire);
            // A started hart begins with no virtual interrupt owed.
            me.vssip.store(false, core::sync::atomic::Ordering::Release);
            let mut vcpu = HostVcpu::new(hartid, entry, arg);
            me.set_hsm(HsmState::Started);
            match vcpu.run() {
                Exit::Stopped => me.set_hsm(HsmState::Stopped),
            }
            crate::tsm::hart_parked(hartid);
            continue;
        }
        if csr::read!(num::SIP) & (1 << bits::IRQ_S_TIMER) != 0 {
            // Salus's own deadlines (the boot hart's IOMMU drain) keep
            // running while no vCPU does; a pending, unserved timer would
            // also make WFI return at once.
            if crate::timer::expired(hartid).contains(Source::IommuDrain) {
                super::pci::tick(hartid);
            }
        }
        crate::arch::wfi();
    }
}

/// The TSM's view of the host (tsm::host_side): the host vCPU on this hart,
/// the host's stage-2 and the devices behind the IOMMU.
impl crate::tsm::host_side::HostSide for HostVcpu {
    fn hartid(&self) -> usize {
        self.hartid
    }
    fn nacl_shmem(&self) -> Option<u64> {
        self.nacl_shmem
    }
    fn saved_fpvec(&mut self) -> crate::tsm::host_side::HostFpVec<'_> {
        crate::tsm::host_side::HostFpVec {
            fp: &mut self.fp,
            vec: &mut self.vec,
            vec_area: &mut self.vec_area,
            fp_saved: &mut self.fp_saved,
            vec_saved: &mut self.vec_saved,
        }
    }
    fn take_interrupt(&mut self, code: u64) {
        self.handle_interrupt(code)
    }
    fn take_timer(&mut self, fired: Sources) {
        self.host_timer_fired(fired)
    }
    fn housekeeping(&mut self) {
        super::pci::tick(self.hartid)
    }
    fn check_housekeeping(&self) {
        super::pci::check_housekeeping_armed(self.hartid)
    }
    fn unmap_pages(&self, range: hyp_addr::HostRange) -> Result<(), ()> {
        let mut g = super::GSTAGE.lock();
        let g = g.as_mut().ok_or(())?;
        g.unmap_range(
            &mut crate::memory::HypTableMemory,
            range.start.identity(),
            range.len,
        )
        .map_err(|_| ())
    }
    fn map_pages(&self, range: hyp_addr::HostRange) -> Result<(), ()> {
        let mut g = super::GSTAGE.lock();
        let g = g.as_mut().ok_or(())?;
        g.map_range(
            &mut crate::memory::HypTableMemory,
            range.start.identity(),
            range.start,
            range.len,
            page_tables::Perms::RWX,
        )
        .map_err(|_| ())
    }
    fn fence_devices(&self) -> Result<(), ()> {
        super::gstage_changed().map_err(|_| ())
    }
}
