//! Everything that needs `unsafe` to talk to the hart: CSRs, the assembly
//! entry/world switch, SBI calls to the firmware, fences and raw physical
//! memory. The rest of Salus is safe Rust on top of these.

pub mod csr;
pub mod entry;
pub mod fpvec;
pub mod guest_file;
pub mod guest_insn;
pub mod imsic;
pub mod phys;
pub mod sbi_call;
pub mod vs_trap;

/// Waits for an interrupt (with interrupts globally disabled in HS mode,
/// a pending-and-enabled interrupt still wakes the hart).
#[inline(always)]
pub fn wfi() {
    // SAFETY: wfi has no memory effects.
    unsafe { core::arch::asm!("wfi", options(nomem, nostack)) }
}

/// Invalidates all G-stage (and VS-stage) TLB entries on this hart.
#[inline(always)]
pub fn hfence_gvma_all() {
    // SAFETY: hfence.gvma zero, zero; a TLB flush has no memory effects
    // visible to Rust.
    unsafe { core::arch::asm!(".insn r 0x73, 0, 0x31, x0, x0, x0", options(nostack)) }
}

/// After an hgatp switch between VMs that share a VMID: no TLB entry of
/// the previous VM (G-stage, combined or VS-stage) survives on this hart.
pub fn fence_shared_vmid() {
    hfence_gvma_all();
    hfence_vvma_all();
}

/// Set at boot when TVMs share VMID 0 with the host (too few VMID bits).
/// A static, not a platform field: read right after a guest ran, it costs
/// no register kept live across the run.
static VMID_SHARED: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);

pub fn set_vmid_shared(shared: bool) {
    VMID_SHARED.store(shared, core::sync::atomic::Ordering::Relaxed);
}

/// `fence_shared_vmid` if VMIDs are shared (after every hgatp switch).
#[inline(always)]
pub fn fence_if_vmid_shared() {
    if VMID_SHARED.load(core::sync::atomic::Ordering::Relaxed) {
        fence_shared_vmid();
    }
}

/// Invalidates all VS-stage TLB entries of the current VMID on this hart.
#[inline(always)]
pub fn hfence_vvma_all() {
    // SAFETY: hfence.vvma zero, zero; no memory effects visible to Rust.
    unsafe { core::arch::asm!(".insn r 0x73, 0, 0x11, x0, x0, x0", options(nostack)) }
}

#[inline(always)]
pub fn fence_i() {
    // SAFETY: instruction-fetch fence; no memory effects visible to Rust.
    unsafe { core::arch::asm!("fence.i", options(nostack)) }
}

#[inline(always)]
pub fn time() -> u64 {
    csr::read!(csr::num::TIME)
}
