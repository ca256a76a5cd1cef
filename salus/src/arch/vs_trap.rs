//! Exceptions delivered to a guest's VS-mode trap handler (the host's or a
//! TVM's: whichever guest's VS CSRs are loaded).

use super::csr::{self, bits, num};
use super::entry::GuestRegs;

/// Delivers a synchronous exception to the VS-mode trap handler of the
/// guest whose VS CSRs are loaded (`regs` is its register file), as the
/// hart would have if the exception were delegated.
pub fn inject_exception(regs: &mut GuestRegs, cause: u64, tval: u64) {
    let from_vs = csr::read!(num::SSTATUS) & bits::SSTATUS_SPP != 0;
    let mut vsstatus = csr::read!(num::VSSTATUS);
    let sie = vsstatus & bits::SSTATUS_SIE != 0;
    vsstatus &= !(bits::SSTATUS_SPP | bits::SSTATUS_SPIE | bits::SSTATUS_SIE);
    if from_vs {
        vsstatus |= bits::SSTATUS_SPP;
    }
    if sie {
        vsstatus |= bits::SSTATUS_SPIE;
    }
    csr::write!(num::VSSTATUS, vsstatus);
    csr::write!(num::VSCAUSE, cause);
    csr::write!(num::VSTVAL, tval);
    csr::write!(num::VSEPC, regs.sepc);
    regs.sepc = csr::read!(num::VSTVEC) & !3;
    csr::set!(num::SSTATUS, bits::SSTATUS_SPP);
}
