//! Emulated MMIO for the host: accesses to guest-physical pages the host's
//! stage-2 leaves unmapped on purpose (the console UART, the hidden PCI
//! functions' config space) arrive as guest-page faults. The faulting load
//! or store is decoded from `htinst` when the hart provides the transformed
//! instruction, else read from the host's memory with HLVX; it is then
//! emulated and the host's pc steps past it.

use super::vcpu::HostVcpu;
use crate::arch::csr::{self, num};
use crate::arch::guest_insn;
use core::sync::atomic::{AtomicBool, Ordering};
use riscv_decode::{decode, decode_transformed, width_mask, Access, MemOp, Transformed};

const CAUSE_LOAD_GUEST_PAGE_FAULT: u64 = 21;
const CAUSE_STORE_GUEST_PAGE_FAULT: u64 = 23;

/// A device model behind a trapped page.
enum Device {
    Uart,
    /// A PCI function hidden from the host: reads all ones, writes ignored.
    HiddenConfig,
}

fn device_at(gpa: u64) -> Option<Device> {
    if super::uart16550::contains(gpa) {
        Some(Device::Uart)
    } else if super::pci::hidden_config(gpa) {
        Some(Device::HiddenConfig)
    } else {
        None
    }
}

/// `salus.no_htinst`: behave like a hart without htinst (tests the HLVX
/// path on QEMU).
static NO_HTINST: AtomicBool = AtomicBool::new(false);

pub fn set_no_htinst(on: bool) {
    NO_HTINST.store(on, Ordering::Relaxed);
}

/// What became of a trapped access.
pub enum Emulated {
    /// Done; the host's pc is past the instruction.
    Done,
    /// No device there, or an instruction that cannot be emulated: the
    /// caller reflects an access fault.
    No,
    /// The instruction could not be read (the host's page went away, or
    /// its fetch used a stale translation): the host's pc is unchanged, so
    /// it re-executes and traps again or takes its own fault.
    Retry,
}

/// The load or store that faulted: `Err` if the instruction could not be
/// read, `Ok(None)` if it is not an emulatable load or store.
fn faulting_op(vcpu: &HostVcpu) -> Result<Option<MemOp>, ()> {
    let htinst = if NO_HTINST.load(Ordering::Relaxed) {
        0
    } else {
        csr::read!(num::HTINST)
    };
    Ok(match decode_transformed(htinst) {
        Transformed::MemOp(op) => Some(op),
        Transformed::None => decode(guest_insn::read_insn(vcpu.regs.sepc).ok_or(())?),
        Transformed::Implicit | Transformed::Other(_) => None,
    })
}

/// Emulates the access at `gpa` that caused guest-page fault `scause`.
pub fn emulate(vcpu: &mut HostVcpu, scause: u64, gpa: u64) -> Emulated {
    if scause != CAUSE_LOAD_GUEST_PAGE_FAULT && scause != CAUSE_STORE_GUEST_PAGE_FAULT {
        return Emulated::No;
    }
    let Some(dev) = device_at(gpa) else {
        return Emulated::No;
    };
    let op = match faulting_op(vcpu) {
        Ok(Some(op)) => op,
        Ok(None) => return Emulated::No,
        Err(()) => {
            // The host's own fetch may have used a stale VS-stage TLB entry
            // that the walk no longer finds: drop this hart's entries so
            // the re-execution sees what the walk saw.
            crate::arch::hfence_vvma_all();
            return Emulated::Retry;
        }
    };
    if op.is_store() != (scause == CAUSE_STORE_GUEST_PAGE_FAULT) {
        return Emulated::No;
    }
    match op.access {
        Access::Load { rd, width, .. } => {
            let raw = match dev {
                Device::Uart => super::uart16550::read(gpa),
                Device::HiddenConfig => width_mask(width),
            };
            if let Some(r) = vcpu.regs.gprs.get_mut(rd as usize).filter(|_| rd != 0) {
                *r = op.extend(raw);
            }
        }
        Access::Store { rs2, width } => {
            // rs2 is a 5-bit field: always a register.
            let value = vcpu.regs.gprs.get(rs2 as usize).copied().unwrap_or(0) & width_mask(width);
            match dev {
                Device::Uart => super::uart16550::write(vcpu.hartid, gpa, value),
                Device::HiddenConfig => {}
            }
        }
    }
    vcpu.regs.sepc = vcpu.regs.sepc.wrapping_add(op.len as u64);
    Emulated::Done
}
