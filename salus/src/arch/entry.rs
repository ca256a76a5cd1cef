//! Assembly entry points: reset entry from OpenSBI, secondary-hart entry, the
//! world switch into a guest and the trap vector back out of it.
//!
//! Protocol: while Salus runs, `sscratch` is 0. `run_guest` stores Salus's
//! callee-saved registers in the guest's `GuestRegs`, points `sscratch` at it
//! and `sret`s. The trap vector swaps `a0` with `sscratch`: non-zero means the
//! trap came from the guest, so it saves the guest GPRs and `sepc`, reloads
//! Salus's registers and "returns" from `run_guest`. Zero means Salus itself
//! trapped: a fault of the HLVX read in `salus_hlvx_hu` resumes at its
//! fixup; anything else is a bug in Salus: it is reported and the machine
//! stopped.

use core::arch::global_asm;

/// Harts Salus supports (hart ids 0..MAX_HARTS).
pub const MAX_HARTS: usize = 32;
/// Stack per hart.
pub const STACK_SIZE: usize = 32 * 1024;

/// Guest register file as the world switch sees it.
#[repr(C)]
#[derive(Clone, Debug)]
pub struct GuestRegs {
    /// x0..x31 (x0 is never loaded).
    pub gprs: [u64; 32],
    pub sepc: u64,
    /// Salus's ra, sp, gp, tp, s0..s11 while the guest runs.
    hyp: [u64; 16],
}

impl GuestRegs {
    pub const fn new() -> Self {
        GuestRegs {
            gprs: [0; 32],
            sepc: 0,
            hyp: [0; 16],
        }
    }
}

impl GuestRegs {
    /// Writes an SBI return (`a0` = error, `a1` = value): the one place a
    /// handler's result becomes guest registers.
    pub fn set_sbi_return(&mut self, r: sbi_abi::SbiRet) {
        self.gprs[reg::A0] = r.error as u64;
        self.gprs[reg::A1] = r.value;
    }
}

impl Default for GuestRegs {
    fn default() -> Self {
        Self::new()
    }
}

const _: () = {
    assert!(core::mem::offset_of!(GuestRegs, sepc) == 256);
    assert!(core::mem::offset_of!(GuestRegs, hyp) == 264);
};

/// GPR numbers used by the SBI calling convention.
pub mod reg {
    pub const A0: usize = 10;
    pub const A1: usize = 11;
    pub const A2: usize = 12;
    pub const A3: usize = 13;
    pub const A4: usize = 14;
    pub const A5: usize = 15;
    pub const A6: usize = 16;
    pub const A7: usize = 17;
}

global_asm!(
    r#"
    .section .text.entry, "ax"
    .global _start
_start:
    csrw sie, zero
    csrw sscratch, zero
    li t0, {max_harts}
    bgeu a0, t0, .Lpark_forever
    la sp, __salus_stacks
    li t1, {stack_size}
    addi t2, a0, 1
    mul t2, t2, t1
    add sp, sp, t2
    la t0, _bss_start
    la t1, _bss_end
1:  bgeu t0, t1, 2f
    sd zero, 0(t0)
    addi t0, t0, 8
    j 1b
2:  mv tp, a0
    call salus_boot_main
    j .Lpark_forever

    .global _secondary_start
_secondary_start:
    csrw sie, zero
    csrw sscratch, zero
    li t0, {max_harts}
    bgeu a0, t0, .Lpark_forever
    la sp, __salus_stacks
    li t1, {stack_size}
    addi t2, a0, 1
    mul t2, t2, t1
    add sp, sp, t2
    mv tp, a0
    call salus_secondary_main
.Lpark_forever:
    wfi
    j .Lpark_forever

    .section .text
    .global salus_run_guest
    .balign 4
salus_run_guest:
    sd ra, 264(a0)
    sd sp, 272(a0)
    sd gp, 280(a0)
    sd tp, 288(a0)
    sd s0, 296(a0)
    sd s1, 304(a0)
    sd s2, 312(a0)
    sd s3, 320(a0)
    sd s4, 328(a0)
    sd s5, 336(a0)
    sd s6, 344(a0)
    sd s7, 352(a0)
    sd s8, 360(a0)
    sd s9, 368(a0)
    sd s10, 376(a0)
    sd s11, 384(a0)
    ld t0, 256(a0)
    csrw sepc, t0
    csrw sscratch, a0
    ld x1, 8(a0)
    ld x2, 16(a0)
    ld x3, 24(a0)
    ld x4, 32(a0)
    ld x5, 40(a0)
    ld x6, 48(a0)
    ld x7, 56(a0)
    ld x8, 64(a0)
    ld x9, 72(a0)
    ld x11, 88(a0)
    ld x12, 96(a0)
    ld x13, 104(a0)
    ld x14, 112(a0)
    ld x15, 120(a0)
    ld x16, 128(a0)
    ld x17, 136(a0)
    ld x18, 144(a0)
    ld x19, 152(a0)
    ld x20, 160(a0)
    ld x21, 168(a0)
    ld x22, 176(a0)
    ld x23, 184(a0)
    ld x24, 192(a0)
    ld x25, 200(a0)
    ld x26, 208(a0)
    ld x27, 216(a0)
    ld x28, 224(a0)
    ld x29, 232(a0)
    ld x30, 240(a0)
    ld x31, 248(a0)
    ld x10, 80(a0)
    sret

    .global salus_trap_entry
    .balign 4
salus_trap_entry:
    csrrw a0, sscratch, a0
    beqz a0, .Lhyp_trap
    sd x1, 8(a0)
    sd x2, 16(a0)
    sd x3, 24(a0)
    sd x4, 32(a0)
    sd x5, 40(a0)
    sd x6, 48(a0)
    sd x7, 56(a0)
    sd x8, 64(a0)
    sd x9, 72(a0)
    sd x11, 88(a0)
    sd x12, 96(a0)
    sd x13, 104(a0)
    sd x14, 112(a0)
    sd x15, 120(a0)
    sd x16, 128(a0)
    sd x17, 136(a0)
    sd x18, 144(a0)
    sd x19, 152(a0)
    sd x20, 160(a0)
    sd x21, 168(a0)
    sd x22, 176(a0)
    sd x23, 184(a0)
    sd x24, 192(a0)
    sd x25, 200(a0)
    sd x26, 208(a0)
    sd x27, 216(a0)
    sd x28, 224(a0)
    sd x29, 232(a0)
    sd x30, 240(a0)
    sd x31, 248(a0)
    csrrw t0, sscratch, zero
    sd t0, 80(a0)
    csrr t0, sepc
    sd t0, 256(a0)
    ld ra, 264(a0)
    ld sp, 272(a0)
    ld gp, 280(a0)
    ld tp, 288(a0)
    ld s0, 296(a0)
    ld s1, 304(a0)
    ld s2, 312(a0)
    ld s3, 320(a0)
    ld s4, 328(a0)
    ld s5, 336(a0)
    ld s6, 344(a0)
    ld s7, 352(a0)
    ld s8, 360(a0)
    ld s9, 368(a0)
    ld s10, 376(a0)
    ld s11, 384(a0)
    ret

.Lhyp_trap:
    // a0 = 0, sscratch = Salus's a0. The one expected trap in Salus: the
    // HLVX in salus_hlvx_hu faulting (the host page went away since the
    // host's trap): resume at its fixup. Below sp is free (no red zone
    // is in use while Salus traps).
    sd t0, -8(sp)
    csrr a0, sepc
    la t0, .Lhlvx_insn
    bne a0, t0, 1f
    la t0, .Lhlvx_fixup
    csrw sepc, t0
    ld t0, -8(sp)
    csrrw a0, sscratch, zero
    sret
1:  ld t0, -8(sp)
    csrrw a0, sscratch, zero
    j salus_hyp_fault

    // HLVX.HU a0 <- (a0) with a fault fixup: returns (a0 = parcel, a1 = 1)
    // or (0, 0) if the read faulted. The fault's trap overwrote
    // sstatus.SPP and hstatus.SPV/SPVP that the host's trap had set, so the
    // fixup puts back the values read before.
    .global salus_hlvx_hu
    .balign 4
salus_hlvx_hu:
    csrr t1, sstatus
    csrr t2, hstatus
    li a1, 1
.Lhlvx_insn:
    .insn r 0x73, 4, 0x32, a0, a0, x3
    ret
.Lhlvx_fixup:
    csrw sstatus, t1
    csrw hstatus, t2
    li a0, 0
    li a1, 0
    ret

    .section .stacks, "aw", @nobits
    .balign 4096
    .global __salus_stacks
__salus_stacks:
    .space {stacks_bytes}
"#,
    max_harts = const MAX_HARTS,
    stack_size = const STACK_SIZE,
    stacks_bytes = const STACK_SIZE * MAX_HARTS,
);

/// Result of `salus_hlvx_hu`: (parcel, 1) or (0, 0) after a fault.
#[repr(C)]
struct HlvxResult {
    value: u64,
    ok: u64,
}

extern "C" {
    fn salus_hlvx_hu(gva: u64) -> HlvxResult;
    fn salus_run_guest(regs: *mut GuestRegs);
    fn salus_trap_entry();
    fn _secondary_start();
}

/// Runs the guest whose state is `regs` (with the guest's hgatp, hstatus,
/// sstatus.SPP and VS CSRs already loaded) until it traps back to HS mode.
#[inline(always)]
pub fn run_guest(regs: &mut GuestRegs) {
    // SAFETY: `regs` is a valid, exclusively borrowed GuestRegs for the whole
    // call; the assembly saves/restores every callee-saved register of ours
    // and returns here on the guest's next trap. Interrupts are disabled in
    // HS mode (sstatus.SIE = 0), so nothing else observes the switch.
    unsafe { salus_run_guest(regs) }
}

/// This hart's id: `tp` holds it from entry on (Salus keeps no thread
/// pointer; `run_guest` saves and restores `tp` around the guest).
#[inline(always)]
pub fn hart_id() -> usize {
    let id: usize;
    // SAFETY: reads a register; no memory effects.
    unsafe { core::arch::asm!("mv {0}, tp", out(reg) id, options(nomem, nostack)) };
    id
}

/// HLVX.HU of the guest's `gva` (guest translation, hstatus.SPVP
/// privilege); `None` if the read faulted.
pub fn hlvx_hu(gva: u64) -> Option<u16> {
    // SAFETY: salus_hlvx_hu only reads guest memory through the guest's
    // translation and clobbers caller-saved registers (a standard call); a
    // fault in it is caught by the trap vector, which resumes at its fixup
    // with sstatus/hstatus restored.
    let r = unsafe { salus_hlvx_hu(gva) };
    (r.ok != 0).then_some(r.value as u16)
}

/// Address of the trap vector, for `stvec` (direct mode).
pub fn trap_vector() -> u64 {
    salus_trap_entry as *const () as u64
}

/// Address secondary harts are started at through the firmware's HSM.
pub fn secondary_entry() -> u64 {
    _secondary_start as *const () as u64
}

extern "C" {
    static __salus_stacks: u8;
}

/// Written at the lowest words of each hart's stack; a hart whose stack
/// ran into them overflowed (there is no guard page: Salus runs with
/// paging off).
const STACK_CANARY: u64 = 0x5a1a_57ac_c0de_f00d;
const CANARY_WORDS: usize = 8;

fn stack_bottom(hart: usize) -> *mut u64 {
    // Only the address of the linker symbol is taken.
    let base = core::ptr::addr_of!(__salus_stacks) as usize;
    (base + hart * STACK_SIZE) as *mut u64
}

/// Arms this hart's stack canary (at its first entry into Rust).
pub fn arm_stack_canary(hart: usize) {
    if hart >= MAX_HARTS {
        return;
    }
    for i in 0..CANARY_WORDS {
        // SAFETY: the lowest words of this hart's own stack, far below
        // anything in use at entry; nothing else writes them.
        unsafe { stack_bottom(hart).add(i).write_volatile(STACK_CANARY) };
    }
}

/// False if this hart's stack has run into its lowest words.
pub fn stack_canary_intact(hart: usize) -> bool {
    if hart >= MAX_HARTS {
        return true;
    }
    (0..CANARY_WORDS).all(|i| {
        // SAFETY: reads words of this hart's own stack area.
        unsafe { stack_bottom(hart).add(i).read_volatile() == STACK_CANARY }
    })
}

extern "C" {
    static _salus_start: u8;
    static _salus_ro_end: u8;
    static _salus_end: u8;
}

/// `[start, end)` of the Salus image including bss and stacks.
/// Salus's code and read-only data as loaded: `[start, end)`.
pub fn ro_range() -> (u64, u64) {
    // Only the addresses of the linker symbols are taken (safe).
    (
        core::ptr::addr_of!(_salus_start) as u64,
        core::ptr::addr_of!(_salus_ro_end) as u64,
    )
}

pub fn image_range() -> (u64, u64) {
    // Only the addresses of the linker symbols are taken (safe).
    (
        core::ptr::addr_of!(_salus_start) as u64,
        core::ptr::addr_of!(_salus_end) as u64,
    )
}
