//! Reading the host's instruction at a trapping pc, for MMIO emulation when
//! the hart gives no transformed instruction in `htinst`.

/// Reads the 16-bit parcel at guest virtual address `gva` with the guest's
/// current translation (vsatp + hgatp), as an instruction fetch would
/// (`HLVX.HU`: execute permission suffices).
///
/// Call this right after a trap from the guest, for the pc that trapped.
/// The read can still fail: another hart of the guest may have unmapped
/// the page since, or the fetch used a stale TLB entry the walk no longer
/// finds. `None` then (the fault is caught, see `entry::hlvx_hu`).
pub fn read_parcel(gva: u64) -> Option<u16> {
    super::entry::hlvx_hu(gva)
}

/// The instruction at `gva`: 16 bits for a compressed one, else 32; `None`
/// if it could not be read.
pub fn read_insn(gva: u64) -> Option<u32> {
    let lo = read_parcel(gva)?;
    if lo & 3 != 3 {
        return Some(lo as u32);
    }
    Some((read_parcel(gva.wrapping_add(2))? as u32) << 16 | lo as u32)
}
