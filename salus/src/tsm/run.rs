//! run_tvm_vcpu: the world switch host -> TVM -> host on one hart, and the
//! TVM exits the TSM handles itself or reports to the host through the NACL
//! shared memory.

use super::covg::GpaKind;
use super::host_side::HostSide;
use super::tvm_sbi::{self, Served};
use super::vcpu::{Pending, VcpuPrivate, VcpuState, VsCsrs, VEC_AREA_OFFSET};
use super::{CoveResult, INVALID_PARAM, TSM};
use crate::arch::csr::{self, bits, num};
use crate::arch::entry::{reg, run_guest, GuestRegs};
use crate::arch::fpvec;
use crate::arch::phys;
use crate::arch::vs_trap::inject_exception;
use crate::platform;
use crate::timer::{self, Source, Sources};
use core::sync::atomic::Ordering;
use cove_abi::nacl;
use cove_abi::CoveError;
use hyp_addr::HostPhysAddr;
use sbi_abi::SbiError;

const INTERRUPT: u64 = 1 << 63;

/// Why the TVM stopped running on this hart.
enum Exit {
    /// An interrupt for the host (an IPI, a device MSI).
    Interrupt(u64),
    /// The host's timer deadline passed (`HostPreempt` with Sstc, the
    /// emulated `HostVtimer` without).
    Timer(Sources),
    /// An ECALL for the host to serve: a0..a7 go to the NACL scratch.
    Ecall([u64; 8]),
    /// A COVG call the TSM served; the host is told its arguments.
    Notify([u64; 8]),
    /// A guest page fault the host must serve (demand zero, shared page,
    /// or an access outside every region).
    PageFault { cause: u64, stval: u64, htval: u64 },
    /// An MMIO access in a region the TVM declared: `htinst` rewritten so
    /// only a0 crosses; `store_value` for stores.
    Mmio {
        cause: u64,
        stval: u64,
        htval: u64,
        htinst: u64,
        store_value: Option<u64>,
    },
}

/// The NACL shared memory of the calling host hart.
struct Nacl(u64);

// Only a0..a7 and the CSRs the TSM reports are used here, all of which
// have slots in the NACL layout; an offset that does not exist reads 0 and
// writes nothing.
impl Nacl {
    fn gpr(&self, r: usize) -> u64 {
        nacl::gpr_offset(r).map_or(0, |off| {
            phys::read_u64(HostPhysAddr::new(self.0 + off as u64))
        })
    }
    fn set_gpr(&self, r: usize, v: u64) {
        if let Some(off) = nacl::gpr_offset(r) {
            phys::write_u64(HostPhysAddr::new(self.0 + off as u64), v)
        }
    }
    fn set_csr(&self, csr: u16, v: u64) {
        if let Some(off) = nacl::csr_offset(csr) {
            phys::write_u64(HostPhysAddr::new(self.0 + off as u64), v)
        }
    }
}

/// COVH run_tvm_vcpu.
pub fn run_tvm_vcpu(host: &mut impl HostSide, id: u64, vcpu_id: u64) -> CoveResult {
    let shmem = host.nacl_shmem().ok_or(CoveError::Sbi(SbiError::NoShmem))?;
    // set_shmem checked it is host RAM, and convert_pages refuses to take
    // it from the host while it is registered.
    let nacl = Nacl(shmem);
    let (v, mut claim, hgatp, vgein) = {
        let mut tsm = TSM.lock();
        let tvm = tsm.tvms.get(id)?;
        if !tvm.runnable {
            return Err(INVALID_PARAM);
        }
        let v = tvm.vcpu(vcpu_id).ok_or(INVALID_PARAM)?;
        if !v.started() {
            return Err(INVALID_PARAM);
        }
        // A vCPU of an AIA TVM runs only on the hart its file is on.
        let vgein = super::covi::run_vgein(tvm, v, host.hartid())?;
        // Claimed under the TSM lock: destroy (which checks claims under
        // it) cannot start until the claim is dropped.
        let claim = v.try_claim().ok_or(CoveError::Busy)?;
        (v, claim, tvm.hgatp(), vgein)
    };
    let vlenb = platform::get().vlenb;
    let vpa = phys::addr_of(v);
    // SAFETY: the vector area follows VcpuState inside the same donated
    // pages (vcpu::state_pages() covers it); only the holder of the claim
    // touches it, and the claim lives until the end of this function.
    let area =
        unsafe { phys::claim_bytes(HostPhysAddr::new(vpa.bits() + VEC_AREA_OFFSET), 32 * vlenb) };
    let p: &mut VcpuPrivate = &mut claim;

    complete_pending(p, &nacl);
    let injected_code = pending_host_interrupt();
    let injected = injected_code.is_some();
    let exit = match injected_code {
        // An interrupt Salus already injected for the host (emulated
        // timer, IPI) that the host has enabled but not taken yet preempts
        // the TVM before it runs, as it would have while it ran.
        Some(code) => Exit::Interrupt(code),
        None => switch_and_run(host, v, p, area, hgatp, vgein, shmem),
    };
    if super::deep_checks() {
        host.check_housekeeping();
    }
    let tvm_vsie = p.csrs.vsie;
    let tvm_vstimecmp = p.csrs.vstimecmp;
    drop(claim);

    nacl.set_csr(nacl::csr::HTIMEDELTA, 0);
    nacl.set_csr(nacl::csr::VSTIMECMP, tvm_vstimecmp);
    nacl.set_csr(nacl::csr::VSIE, tvm_vsie);
    let (scause, stval) = match exit {
        Exit::Timer(fired) => {
            host.take_timer(fired);
            nacl.set_csr(nacl::csr::HTVAL, 0);
            nacl.set_csr(nacl::csr::HTINST, 0);
            (INTERRUPT | bits::IRQ_S_TIMER, 0)
        }
        Exit::Interrupt(code) => {
            // A guest external interrupt (12) is the host's IMSIC file: the
            // host sees it as its own external interrupt once it runs again.
            let code = if code == 12 { 9 } else { code };
            if !injected && code != 9 {
                host.take_interrupt(code);
            }
            nacl.set_csr(nacl::csr::HTVAL, 0);
            nacl.set_csr(nacl::csr::HTINST, 0);
            (INTERRUPT | code, 0)
        }
        Exit::Ecall(args) | Exit::Notify(args) => {
            for (i, a) in args.iter().enumerate() {
                nacl.set_gpr(reg::A0 + i, *a);
            }
            nacl.set_csr(nacl::csr::HTVAL, 0);
            nacl.set_csr(nacl::csr::HTINST, 0);
            (cove_abi::covh::exception::VIRTUAL_SUPERVISOR_ENV_CALL, 0)
        }
        Exit::PageFault {
            cause,
            stval,
            htval,
        } => {
            nacl.set_csr(nacl::csr::HTVAL, htval);
            nacl.set_csr(nacl::csr::HTINST, 0);
            // Only the page offset bits the GPA needs; the TVM's virtual
            // address stays private.
            (cause, stval & 3)
        }
        Exit::Mmio {
            cause,
            stval,
            htval,
            htinst,
            store_value,
        } => {
            nacl.set_csr(nacl::csr::HTVAL, htval);
            nacl.set_csr(nacl::csr::HTINST, htinst);
            if let Some(val) = store_value {
                nacl.set_gpr(reg::A0, val);
            }
            (cause, stval & 3)
        }
    };
    csr::write!(num::VSCAUSE, scause);
    csr::write!(num::VSTVAL, stval);
    Ok(cove_abi::covh::RUN_VCPU_RESUMABLE)
}

/// The S-level cause (1, 5, 9) of a virtual interrupt pending for the host
/// in `hvip` and enabled in its `sie` (our `vsie`), if any.
fn pending_host_interrupt() -> Option<u64> {
    let pending = (csr::read!(num::HVIP) >> 1) & csr::read!(num::VSIE);
    [9u64, 1, 5].into_iter().find(|c| pending & (1 << c) != 0)
}

/// Applies what the host returned for the previous exit.
fn complete_pending(v: &mut VcpuPrivate, nacl: &Nacl) {
    match v.pending {
        Pending::None | Pending::Notify => {}
        Pending::Ecall => {
            v.regs.gprs[reg::A0] = nacl.gpr(reg::A0);
            v.regs.gprs[reg::A1] = nacl.gpr(reg::A1);
            v.regs.sepc += 4;
        }
        Pending::MmioLoad { rd, len } => {
            if let Some(r) = v.regs.gprs.get_mut(rd as usize).filter(|_| rd != 0) {
                *r = nacl.gpr(reg::A0);
            }
            v.regs.sepc += len as u64;
        }
        Pending::MmioStore { len } => v.regs.sepc += len as u64,
    }
    v.pending = Pending::None;
}

/// Which S-level state VS-mode can reach on this machine, hence what a
/// world switch must exchange (the same on every hart: boot gives each the
/// same hstateen0).
struct Switch {
    senvcfg: bool,
    sstateen0: bool,
    vsiselect: bool,
    /// hstateen0 for the host and, narrowed to the state switched here, for
    /// TVMs (e.g. no `scontext`); `None` when they are the same.
    hstateen0: Option<(u64, u64)>,
}

static SWITCH: spin::Once<Switch> = spin::Once::new();

fn switch_plan() -> &'static Switch {
    SWITCH.call_once(|| {
        let p = platform::get();
        // Without Smstateen nothing gates these; with it, HS reaches them
        // only if the firmware's mstateen0 lets it, which is what the bits
        // of hstateen0 that stuck say.
        let h = if p.has_smstateen {
            csr::read!(num::HSTATEEN0)
        } else {
            u64::MAX
        };
        const SWITCHED: u64 = bits::HSTATEEN0_SE0
            | bits::HSTATEEN0_ENVCFG
            | bits::HSTATEEN0_CSRIND
            | bits::HSTATEEN0_AIA
            | bits::HSTATEEN0_IMSIC;
        Switch {
            senvcfg: h & bits::HSTATEEN0_ENVCFG != 0,
            sstateen0: p.has_smstateen && h & bits::HSTATEEN0_SE0 != 0,
            vsiselect: p.has_ssaia && h & bits::HSTATEEN0_CSRIND != 0,
            hstateen0: (p.has_smstateen && h & !SWITCHED != 0).then_some((h, h & SWITCHED)),
        }
    })
}

/// Exchanges the VS-visible CSRs with `c`: the hart gets `c`'s values and
/// `c` the hart's (one `csrrw` each). Covers the VS copies, `hvip`,
/// sstatus.SPP, and the S-level CSRs VS-mode uses directly (senvcfg,
/// scounteren, sstateen0), so no value crosses between host and TVM.
fn swap_vs(c: &mut VsCsrs, sw: &Switch, has_sstc: bool) {
    c.vsstatus = csr::swap!(num::VSSTATUS, c.vsstatus);
    c.vsie = csr::swap!(num::VSIE, c.vsie);
    c.vstvec = csr::swap!(num::VSTVEC, c.vstvec);
    c.vsscratch = csr::swap!(num::VSSCRATCH, c.vsscratch);
    c.vsepc = csr::swap!(num::VSEPC, c.vsepc);
    c.vscause = csr::swap!(num::VSCAUSE, c.vscause);
    c.vstval = csr::swap!(num::VSTVAL, c.vstval);
    c.vsatp = csr::swap!(num::VSATP, c.vsatp);
    if has_sstc {
        c.vstimecmp = csr::swap!(num::VSTIMECMP, c.vstimecmp);
    }
    c.hvip = csr::swap!(num::HVIP, c.hvip);
    if has_sstc {
        // The outgoing deadline's expiry must not reach the incoming side
        // (timer::write_vstimecmp).
        timer::settle_vstimecmp(csr::read!(num::VSTIMECMP));
    }
    c.scounteren = csr::swap!(num::SCOUNTEREN, c.scounteren);
    if sw.senvcfg {
        c.senvcfg = csr::swap!(num::SENVCFG, c.senvcfg);
    }
    if sw.sstateen0 {
        c.sstateen0 = csr::swap!(num::SSTATEEN0, c.sstateen0);
    }
    if sw.vsiselect {
        c.vsiselect = csr::swap!(num::VSISELECT, c.vsiselect);
    }
    let spp = csr::read!(num::SSTATUS) & bits::SSTATUS_SPP;
    if c.spp != 0 {
        csr::set!(num::SSTATUS, bits::SSTATUS_SPP);
    } else {
        csr::clear!(num::SSTATUS, bits::SSTATUS_SPP);
    }
    c.spp = spp;
}

fn hstatus_for(vgein: u64) -> u64 {
    bits::HSTATUS_SPV | bits::HSTATUS_SPVP | (vgein << bits::HSTATUS_VGEIN_SHIFT)
}

/// Swaps the hart from the host to the TVM vCPU, runs it until an exit the
/// host must see, and swaps back. The host's registers, FP and vector state
/// are restored exactly; none of the TVM's reach the host.
fn switch_and_run(
    host: &mut impl HostSide,
    vcpu: &VcpuState,
    v: &mut VcpuPrivate,
    area: &mut [u8],
    hgatp: u64,
    vgein: u64,
    nacl: u64,
) -> Exit {
    let p = platform::get();
    let sw = switch_plan();
    // From here until the swap back, the hart holds the TVM's VS state and
    // `v.csrs` the host's (nothing in the run loop reads `v.csrs`).
    swap_vs(&mut v.csrs, sw, p.has_sstc);
    let (host_vsie, host_vstimecmp) = (v.csrs.vsie, v.csrs.vstimecmp);
    if let Some((_, tvm)) = sw.hstateen0 {
        csr::write!(num::HSTATEEN0, tvm);
    }
    // The host's FP/vector registers are saved only if they changed since
    // Salus last restored them (it leaves them Clean; any write by the host
    // makes the HS-level status Dirty again).
    let sstatus = csr::read!(num::SSTATUS);
    let hartid = host.hartid();
    let h = host.saved_fpvec();
    if !*h.fp_saved || sstatus & bits::SSTATUS_FS_MASK == bits::SSTATUS_FS_MASK {
        fpvec::save_fp(h.fp);
        *h.fp_saved = true;
    }
    if p.has_vector {
        let need = 32 * p.vlenb as usize;
        if h.vec_area.len() != need {
            h.vec_area.resize(need, 0);
            *h.vec_saved = false;
        }
        if !*h.vec_saved || sstatus & bits::SSTATUS_VS_MASK == bits::SSTATUS_VS_MASK {
            fpvec::save_vector(h.vec, h.vec_area);
            *h.vec_saved = true;
        }
    }

    fpvec::restore_fp(&v.fp);
    if p.has_vector {
        fpvec::restore_vector(&v.vec, area);
    }
    csr::write!(num::HGATP, hgatp);
    crate::arch::fence_if_vmid_shared();
    // vCPUs move between harts and a TVM's sfence.vma only reaches the
    // hart it runs on: no VS-stage entry of this TVM from an earlier turn
    // may survive into this one (also what makes TVM RFENCE complete).
    crate::arch::hfence_vvma_all();
    csr::write!(num::HSTATUS, hstatus_for(vgein));
    // No guest file raises SGEI while a TVM runs: the host's device
    // interrupts wait for the TVM's exit (the host's timer bounds that, as
    // before COVI), and bound vCPUs' files wake the host once it runs
    // again (tsm::covi).
    csr::write!(num::HGEIE, 0);
    // The host's own timer deadline (if it has one and the interrupt
    // enabled) preempts the TVM; without Sstc its emulated timer is
    // already armed.
    let preempt = p.has_sstc && host_vsie & (1 << 5) != 0 && host_vstimecmp != timer::NEVER;
    if preempt {
        timer::set(hartid, Source::HostPreempt, host_vstimecmp);
    }
    // Mark the TVM's FP/vector state clean: the hart sets Dirty again only
    // if the TVM writes those registers, so unchanged state needs no save.
    let clean = (2 << 13) | if p.has_vector { 2 << 9 } else { 0 };
    csr::clear!(num::SSTATUS, bits::SSTATUS_FS_MASK | bits::SSTATUS_VS_MASK);
    csr::set!(num::SSTATUS, clean);

    vcpu.set_running_on(Some(hartid));
    // IMSIC kicks (IPIs owed to this vCPU) trap while it runs.
    let kicks = crate::arch::imsic::enabled();
    if kicks {
        crate::arch::imsic::enable_kicks(true);
    }
    tvm_sbi::deliver_ipi(vcpu);
    let exit = run_until_exit(host, vcpu, v, nacl);
    vcpu.set_running_on(None);
    if kicks {
        // A kick that comes later finds the vCPU's IPI owed. It stays
        // pending in the file (no trap while sie.SEIE is off) until the
        // next TVM run here drains it.
        crate::arch::imsic::enable_kicks(false);
    }

    swap_vs(&mut v.csrs, sw, p.has_sstc);
    if let Some((host_h, _)) = sw.hstateen0 {
        csr::write!(num::HSTATEEN0, host_h);
    }
    let sstatus = csr::read!(num::SSTATUS);
    if sstatus & bits::SSTATUS_FS_MASK == bits::SSTATUS_FS_MASK {
        fpvec::save_fp(&mut v.fp);
    }
    if p.has_vector && sstatus & bits::SSTATUS_VS_MASK == bits::SSTATUS_VS_MASK {
        fpvec::save_vector(&mut v.vec, area);
    }
    let h = host.saved_fpvec();
    fpvec::restore_fp(h.fp);
    if p.has_vector {
        fpvec::restore_vector(h.vec, h.vec_area);
    }
    // Clean: the saved copies equal the registers until the host writes.
    csr::clear!(num::SSTATUS, bits::SSTATUS_FS_MASK | bits::SSTATUS_VS_MASK);
    csr::set!(
        num::SSTATUS,
        (2 << 13) | if p.has_vector { 2 << 9 } else { 0 }
    );
    csr::write!(num::HGATP, p.host_hgatp);
    crate::arch::fence_if_vmid_shared();
    csr::write!(num::HSTATUS, hstatus_for(p.host_vgein));
    // The bound vCPUs of this hart (this one's file again) wake the host.
    super::covi::restore_host_hgeie(hartid, vgein, vcpu);
    if preempt {
        // Other sources (the IOMMU drain) stay armed.
        timer::cancel(hartid, Source::HostPreempt);
    }
    csr::set!(num::SSTATUS, bits::SSTATUS_SPP);
    exit
}

fn args(regs: &GuestRegs) -> [u64; 8] {
    let mut a = [0; 8];
    a.copy_from_slice(&regs.gprs[reg::A0..=reg::A7]);
    a
}

// Inlined into switch_and_run: as a call of its own it costs the hot
// ecall path a full save and restore of the callee-saved registers.
#[inline(always)]
fn run_until_exit(
    host: &mut impl HostSide,
    vcpu: &VcpuState,
    v: &mut VcpuPrivate,
    nacl: u64,
) -> Exit {
    let hartid = host.hartid();
    loop {
        run_guest(&mut v.regs);
        let scause = csr::read!(num::SCAUSE);
        // One sign test keeps the exceptions (ecalls, faults) off the
        // interrupt checks.
        if scause & INTERRUPT != 0 {
            match scause & !INTERRUPT {
                bits::IRQ_S_TIMER => {
                    // Salus's own deadlines are served here and the TVM
                    // resumes; only the host's end the TVM's turn.
                    let fired = timer::expired(hartid);
                    if fired.contains(Source::IommuDrain) {
                        host.housekeeping();
                    }
                    if fired.contains(Source::HostPreempt) || fired.contains(Source::HostVtimer) {
                        return Exit::Timer(fired);
                    }
                    continue;
                }
                bits::IRQ_S_SOFT if kicked(hartid, vcpu) => continue,
                bits::IRQ_S_EXT => {
                    // An IMSIC kick (sie.SEIE is on only for them): the
                    // IPI the sender owed this vCPU, if it is still the
                    // one here.
                    crate::arch::imsic::drain();
                    tvm_sbi::deliver_ipi(vcpu);
                    continue;
                }
                code => return Exit::Interrupt(code),
            }
        }
        match scause {
            10 => {
                let a = args(&v.regs);
                // The host's own channel: the hot path of a VMM's calls.
                if tvm_sbi::for_host(a[7]) {
                    v.pending = Pending::Ecall;
                    return Exit::Ecall(a);
                }
                match tvm_sbi::handle(vcpu, v, a, nacl) {
                    Served::Resume => {
                        tvm_sbi::deliver_ipi(vcpu);
                        continue;
                    }
                    Served::Notify(n) => return Exit::Notify(n),
                }
            }
            20 | 21 | 23 => {
                if let Some(exit) = guest_page_fault(vcpu, v, scause) {
                    return exit;
                }
            }
            22 => virtual_instruction(v, csr::read!(num::STVAL)),
            other => {
                let tval = csr::read!(num::STVAL);
                inject_exception(&mut v.regs, other, tval);
            }
        }
    }
}

/// `wfi`, Zawrs's `wrs.nto` and `wrs.sto`.
const WFI: u64 = 0x1050_0073;
const WRS_NTO: u64 = 0x00d0_0073;
const WRS_STO: u64 = 0x01d0_0073;

/// A virtual-instruction exception of the TVM (`stval`: the instruction,
/// or 0 when the hart did not say; it is then read at the TVM's pc, with
/// its translation still loaded). S-mode executes `wfi`, `wrs.nto` and `wrs.sto`; they trap
/// here only while hstatus.VTW is set (Salus leaves it clear) and complete
/// as a no-op, which each of them may be. Everything else that raises it
/// is what S-mode without H does not have or is not given (hypervisor
/// instructions and CSRs, counters hcounteren withholds, state hstateen0
/// withholds): an illegal-instruction exception, as such hardware raises.
/// docs/cove-abi-choices.md has the audit.
#[cold]
#[inline(never)]
fn virtual_instruction(v: &mut VcpuPrivate, stval: u64) {
    let insn = match stval {
        0 => crate::arch::guest_insn::read_insn(v.regs.sepc).map_or(0, u64::from),
        i => i,
    };
    match insn {
        WFI | WRS_NTO | WRS_STO => v.regs.sepc += 4,
        _ => inject_exception(&mut v.regs, 2, insn),
    }
}

/// A guest page fault: an MMIO exit, a fault for the host to serve, or
/// (None) an access fault injected into the TVM.
#[inline(never)]
fn guest_page_fault(vcpu: &VcpuState, v: &mut VcpuPrivate, scause: u64) -> Option<Exit> {
    let stval = csr::read!(num::STVAL);
    let htval = csr::read!(num::HTVAL);
    let htinst = csr::read!(num::HTINST);
    let gpa = (htval << 2) | (stval & 3);
    match super::covg::gpa_kind(vcpu, gpa) {
        GpaKind::Mmio if scause != 20 => {
            if let Some(exit) = mmio_exit(v, scause, stval, htval, htinst) {
                return Some(exit);
            }
        }
        // No memory and no device there (or code fetched from a device):
        // an access fault, as on real hardware; the host is never asked.
        GpaKind::Mmio | GpaKind::Outside => {
            inject_exception(&mut v.regs, access_fault(scause), stval);
            return None;
        }
        GpaKind::Imsic { target } => {
            if !emulate_imsic(vcpu, v, target, scause, gpa, htinst) {
                inject_exception(&mut v.regs, access_fault(scause), stval);
            }
            return None;
        }
        GpaKind::Memory => {}
    }
    Some(Exit::PageFault {
        cause: scause,
        stval,
        htval,
    })
}

/// A load or store of the IMSIC page of vCPU `target` with no file mapped
/// there (COVI): a store to a doorbell reaches the target's software file,
/// a load reads 0; the instruction completes. False if `htinst` does not
/// say what the instruction was.
fn emulate_imsic(
    vcpu: &VcpuState,
    v: &mut VcpuPrivate,
    target: u64,
    scause: u64,
    gpa: u64,
    htinst: u64,
) -> bool {
    let len = if htinst & 2 != 0 { 4 } else { 2 };
    match (scause, htinst & 0x7d) {
        (21, 0x01) => {
            let rd = ((htinst >> 7) & 0x1f) as usize;
            if let Some(r) = v.regs.gprs.get_mut(rd).filter(|_| rd != 0) {
                *r = 0;
            }
        }
        (23, 0x21) => {
            let rs2 = ((htinst >> 20) & 0x1f) as usize;
            let value = v.regs.gprs.get(rs2).copied().unwrap_or(0);
            let width = 1 << ((htinst >> 12) & 3);
            super::covi::emulate_send(vcpu.tvm.raw() as u64, target, gpa & 0xfff, value, width);
        }
        _ => return false,
    }
    v.regs.sepc = v.regs.sepc.wrapping_add(len);
    true
}

/// A supervisor software interrupt while a TVM ran: fences (served here,
/// the TVM's VMID loaded), a kick for an IPI this vCPU is owed, or an IPI
/// for the host; true if the TVM runs on (no IPI owed to the host).
/// SSIP is cleared before `vssip` is read: a host IPI posted meanwhile
/// (`vssip` stored, then the IPI sent) is either seen here or raises SSIP
/// again, never lost.
#[cold]
#[inline(never)]
fn kicked(hartid: usize, vcpu: &VcpuState) -> bool {
    csr::clear!(num::SIP, 1 << bits::IRQ_S_SOFT);
    crate::hart::serve_fences(hartid);
    tvm_sbi::deliver_ipi(vcpu);
    !crate::hart::shared(hartid).vssip.load(Ordering::SeqCst)
}

/// The access fault for a guest page fault cause (20, 21, 23).
fn access_fault(guest_page_fault: u64) -> u64 {
    match guest_page_fault {
        20 => 1,
        21 => 5,
        _ => 7,
    }
}

/// Builds the MMIO exit from the transformed instruction in htinst: loads
/// get rd = a0, stores rs2 = a0, so a0 is the only register the host sees.
fn mmio_exit(v: &mut VcpuPrivate, cause: u64, stval: u64, htval: u64, htinst: u64) -> Option<Exit> {
    if htinst == 0 {
        return None;
    }
    let len = if htinst & 2 != 0 { 4 } else { 2 };
    let opcode = htinst & 0x7d; // bit 1 only says "was it compressed"
    match (cause, opcode) {
        (21, 0x01) => {
            let rd = ((htinst >> 7) & 0x1f) as u8;
            let rewritten = (htinst & !(0x1f << 7)) | ((reg::A0 as u64) << 7);
            v.pending = Pending::MmioLoad { rd, len };
            Some(Exit::Mmio {
                cause,
                stval,
                htval,
                htinst: rewritten,
                store_value: None,
            })
        }
        (23, 0x21) => {
            let rs2 = ((htinst >> 20) & 0x1f) as usize;
            let rewritten = (htinst & !(0x1f << 20)) | ((reg::A0 as u64) << 20);
            v.pending = Pending::MmioStore { len };
            Some(Exit::Mmio {
                cause,
                stval,
                htval,
                htinst: rewritten,
                store_value: v.regs.gprs.get(rs2).copied(),
            })
        }
        _ => None,
    }
}
