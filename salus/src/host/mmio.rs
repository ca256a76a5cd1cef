//! Emulated MMIO for the host: accesses to guest-physical pages the host's
//! stage-2 leaves unmapped on purpose (the console UART, the hidden PCI
//! functions' config space) arrive as guest-page faults. The faulting load
//! or store is decoded from `htinst` when the hart provides the transformed
//! instruction, else read from the host's memory with HLVX; it is then
//! emulated and the host's pc steps past it.

use super::vcpu::HostVcpu;
use crate::arch::csr::{self, num};
use crate::arch::guest_insn;
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

/// The load or store that faulted, if it can be emulated.
fn faulting_op(vcpu: &HostVcpu) -> Option<MemOp> {
    match decode_transformed(csr::read!(num::HTINST)) {
        Transformed::MemOp(op) => Some(op),
        Transformed::None => decode(guest_insn::read_insn(vcpu.regs.sepc)),
        Transformed::Implicit | Transformed::Other(_) => None,
    }
}

/// Emulates the access at `gpa` that caused guest-page fault `scause`;
/// false if no device is there or the instruction cannot be emulated (the
/// caller then reflects an access fault).
pub fn emulate(vcpu: &mut HostVcpu, scause: u64, gpa: u64) -> bool {
    if scause != CAUSE_LOAD_GUEST_PAGE_FAULT && scause != CAUSE_STORE_GUEST_PAGE_FAULT {
        return false;
    }
    let Some(dev) = device_at(gpa) else {
        return false;
    };
    let Some(op) = faulting_op(vcpu) else {
        return false;
    };
    if op.is_store() != (scause == CAUSE_STORE_GUEST_PAGE_FAULT) {
        return false;
    }
    match op.access {
        Access::Load { rd, width, .. } => {
            let raw = match dev {
                Device::Uart => super::uart16550::read(gpa),
                Device::HiddenConfig => width_mask(width),
            };
            if rd != 0 {
                vcpu.regs.gprs[rd as usize] = op.extend(raw);
            }
        }
        Access::Store { rs2, width } => {
            let value = vcpu.regs.gprs[rs2 as usize] & width_mask(width);
            match dev {
                Device::Uart => super::uart16550::write(vcpu.hartid, gpa, value),
                Device::HiddenConfig => {}
            }
        }
    }
    vcpu.regs.sepc = vcpu.regs.sepc.wrapping_add(op.len as u64);
    true
}
