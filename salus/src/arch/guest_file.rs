//! IMSIC guest interrupt files (COVI) as HS mode reaches them: the registers of
//! the file `hstatus.VGEIN` selects, through `vsiselect`/`vsireg` (AIA's
//! indirect access), and a file's `seteipnum_le` doorbell by its physical
//! address. A file's registers are only reachable from its own hart.

use super::csr::{self, num};
use hyp_addr::HostPhysAddr;
use imsic_files::SwFile;

const VSIREG: u16 = 0x251;
const EIDELIVERY: u64 = 0x70;
const EITHRESHOLD: u64 = 0x72;
/// `eip0`; on RV64 only the even-numbered registers exist, 64 ids each.
const EIP0: u64 = 0x80;
const EIE0: u64 = 0xC0;
const VGEIN_MASK: u64 = 0x3f << csr::bits::HSTATUS_VGEIN_SHIFT;

/// Runs `f` with `vsiselect`/`vsireg` reaching this hart's guest file
/// `vgein`; `hstatus` and `vsiselect` (the host's or a TVM's, whoever
/// owns VS right now) are as before afterwards.
fn with_file<R>(vgein: u32, f: impl FnOnce() -> R) -> R {
    let hstatus = csr::read!(num::HSTATUS);
    let sel = csr::read!(num::VSISELECT);
    csr::write!(
        num::HSTATUS,
        (hstatus & !VGEIN_MASK) | (u64::from(vgein) << csr::bits::HSTATUS_VGEIN_SHIFT)
    );
    let r = f();
    csr::write!(num::VSISELECT, sel);
    csr::write!(num::HSTATUS, hstatus);
    r
}

fn rd(sel: u64) -> u64 {
    csr::write!(num::VSISELECT, sel);
    csr::read!(VSIREG)
}

fn wr(sel: u64, v: u64) {
    csr::write!(num::VSISELECT, sel);
    csr::write!(VSIREG, v);
}

/// Moves guest file `vgein`'s state into `sw` and leaves the file empty
/// (delivery off, nothing enabled or pending). Pending bits are ORed in:
/// `sw` may already hold interrupts sent while the file was unmapped.
pub fn save_and_clear(vgein: u32, num_ids: u32, sw: &mut SwFile) {
    with_file(vgein, || {
        sw.eidelivery = rd(EIDELIVERY);
        sw.eithreshold = rd(EITHRESHOLD);
        wr(EIDELIVERY, 0);
        wr(EITHRESHOLD, 0);
        for w in 0..SwFile::words(num_ids) {
            let k = 2 * w as u64;
            if let (Some(p), Some(e)) = (sw.eip.get_mut(w), sw.eie.get_mut(w)) {
                *p |= rd(EIP0 + k);
                *e = rd(EIE0 + k);
            }
            wr(EIP0 + k, 0);
            wr(EIE0 + k, 0);
        }
    })
}

/// Loads `sw` into guest file `vgein` (every register: nothing of an
/// earlier owner survives) and empties `sw`'s pending bits, which the file
/// now holds.
pub fn load(vgein: u32, num_ids: u32, sw: &mut SwFile) {
    with_file(vgein, || {
        // Delivery off while the bits change, on (if it was) at the end.
        wr(EIDELIVERY, 0);
        wr(EITHRESHOLD, sw.eithreshold);
        for w in 0..SwFile::words(num_ids) {
            let k = 2 * w as u64;
            wr(EIE0 + k, sw.eie.get(w).copied().unwrap_or(0));
            wr(EIP0 + k, sw.eip.get(w).copied().unwrap_or(0));
        }
        wr(EIDELIVERY, sw.eidelivery);
    });
    sw.eip = [0; imsic_files::MAX_IDS / 64];
}

/// Sets interrupt `id` pending in the file at `file` (its `seteipnum_le`,
/// offset 0), on any hart.
pub fn send(file: HostPhysAddr, id: u32) {
    super::phys::write_u32(file, id);
    // The store reaches the file before anything this hart does next (an
    // unlock another hart's save of the file may follow).
    // SAFETY: a fence has no memory effects of its own.
    unsafe { core::arch::asm!("fence iorw, iorw", options(nostack)) };
}
