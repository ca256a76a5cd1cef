//! Reading the host's instruction at a trapping pc, for MMIO emulation when
//! the hart gives no transformed instruction in `htinst`.

/// Reads the 16-bit parcel at guest virtual address `gva` with the guest's
/// current translation (vsatp + hgatp), as an instruction fetch would
/// (`HLVX.HU`: execute permission suffices).
///
/// Only call this right after a trap from the guest, for the pc that
/// trapped: the hart fetched that instruction just before, so both
/// translation stages map it (hstatus.SPVP holds the guest's privilege,
/// written by the trap).
pub fn read_parcel(gva: u64) -> u16 {
    let v: u64;
    // SAFETY: HLVX.HU reads guest memory through the guest's own page
    // tables; it has no effect on Salus's memory. It can fault if another
    // hart of the same guest unmapped the page between the trap and this
    // read (a guest racing against itself): that trap would land in
    // Salus's own trap path and stop the machine, which the host can only
    // do to itself. hlvx.hu rd, (rs1) = funct7 0x32, rs2 = 3, funct3 4.
    unsafe {
        core::arch::asm!(
            ".insn r 0x73, 4, 0x32, {rd}, {rs1}, x3",
            rd = out(reg) v,
            rs1 = in(reg) gva,
            options(nostack, readonly)
        )
    };
    v as u16
}

/// The instruction at `gva`: 16 bits for a compressed one, else 32.
pub fn read_insn(gva: u64) -> u32 {
    let lo = read_parcel(gva);
    if lo & 3 != 3 {
        return lo as u32;
    }
    (read_parcel(gva.wrapping_add(2)) as u32) << 16 | lo as u32
}
