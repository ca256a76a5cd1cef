//! Everything that needs assembly: the entry points, the trap vector, CSR
//! accessors, the SBI `ecall`, and the register-preservation probes.
//!
//! Written from the RISC-V privileged spec (supervisor CSRs) and the SBI
//! calling convention (a7 = EID, a6 = FID, a0..a5 = args, a0/a1 = result,
//! every other register preserved).

use core::arch::{asm, global_asm};

use sbi_abi::SbiRet;

/// `sip`/`sie` bit of the supervisor software interrupt.
pub const SSIP: u64 = 1 << 1;
/// `sip`/`sie` bit of the supervisor timer interrupt.
pub const STIP: u64 = 1 << 5;
/// Interrupt bit of `scause`.
pub const SCAUSE_INTERRUPT: u64 = 1 << 63;
/// Interrupt codes in `scause`.
pub const IRQ_S_SOFT: u64 = 1;
pub const IRQ_S_TIMER: u64 = 5;
/// Exception codes in `scause`.
pub const EXC_LOAD_ACCESS: u64 = 5;
pub const EXC_STORE_ACCESS: u64 = 7;

// Entry of the boot hart (a0 = hart id, a1 = FDT), of secondary harts started
// through HSM (a0 = hart id, a1 = opaque = its `HartSlot`), and the trap
// vector. `_start` must be the first byte of the image.
//
// The very first instruction samples `instret` for the boot benchmark; it is
// kept in s0 until Rust is reached. sstatus.FS and sstatus.VS are set to
// Initial so that F/D (and V, when present; otherwise the write is ignored)
// can be used.
global_asm!(
    r#"
    .section .text.entry, "ax"
    .globl _start
_start:
    rdinstret s0
    mv s1, a0
    mv s2, a1
    csrw sie, zero
    csrci sstatus, 2
    la t0, tellus_trap_entry
    csrw stvec, t0
    li t0, 0x2200
    csrs sstatus, t0
    la t0, _bss_start
    la t1, _bss_end
1:
    bgeu t0, t1, 2f
    sd zero, 0(t0)
    addi t0, t0, 8
    j 1b
2:
    la sp, _boot_stack_top
    mv tp, zero
    mv a0, s1
    mv a1, s2
    mv a2, s0
    call tellus_main
3:
    wfi
    j 3b

    .section .text, "ax"
    .balign 4
    .globl tellus_secondary_entry
tellus_secondary_entry:
    csrw sie, zero
    csrci sstatus, 2
    la t0, tellus_trap_entry
    csrw stvec, t0
    li t0, 0x2200
    csrs sstatus, t0
    ld sp, 0(a1)
    mv tp, a1
    call tellus_secondary_main
1:
    wfi
    j 1b

    .balign 4
    .globl tellus_trap_entry
tellus_trap_entry:
    addi sp, sp, -288
    .irp n,1,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    sd x\n, (\n*8)(sp)
    .endr
    addi t0, sp, 288
    sd t0, 16(sp)
    csrr t0, sepc
    sd t0, 256(sp)
    csrr t0, scause
    sd t0, 264(sp)
    csrr t0, stval
    sd t0, 272(sp)
    csrr t0, sstatus
    sd t0, 280(sp)
    mv a0, sp
    call tellus_trap
    ld t0, 256(sp)
    csrw sepc, t0
    .irp n,1,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    ld x\n, (\n*8)(sp)
    .endr
    addi sp, sp, 288
    sret
"#
);

// Register-preservation probes. Each fills a register file from `fill`,
// makes several SBI calls, arms a timer through SBI and waits (bounded by
// `timeout_ticks` of the `time` CSR) for the timer interrupt handler to bump
// `*counter`, then dumps the registers to `dump`. The caller enables the
// timer interrupt. Only caller-saved integer registers are used across the
// ecalls (the SBI preserves all but a0/a1); fs0-fs11 are saved and restored
// around the FP probe to honour the ABI.
global_asm!(
    r#"
    .macro TORTURE_MIDDLE
    mv t6, a0
    li t5, 0
    li a7, 0x10
    li a6, 3
    li a0, 0x10
    ecall
    or t5, t5, a0
    li a7, 0x10
    li a6, 0
    ecall
    or t5, t5, a0
    li a7, 0x10
    li a6, 3
    li a0, 0x54494D45
    ecall
    or t5, t5, a0
    rdtime t0
    ld t1, 32(t6)
    add a0, t0, t1
    li a7, 0x54494D45
    li a6, 0
    ecall
    or t5, t5, a0
    sd t5, 88(t6)
    ld t2, 16(t6)
    ld t3, 24(t6)
    ld t4, 40(t6)
    add t4, t0, t4
    li t5, 0
91:
    ld t1, 0(t2)
    bne t1, t3, 92f
    rdtime t0
    bltu t0, t4, 91b
    j 93f
92:
    li t5, 1
93:
    sd t5, 80(t6)
    .endm

    .section .text, "ax"
    .balign 4
    .globl tellus_fp_torture
tellus_fp_torture:
    addi sp, sp, -96
    .irp n,0,1,2,3,4,5,6,7,8,9,10,11
    fsd fs\n, (\n*8)(sp)
    .endr
    ld a1, 0(a0)
    .irp n,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    fld f\n, (\n*8)(a1)
    .endr
    li t0, 0x55
    fscsr t0
    frcsr t0
    sd t0, 48(a0)
    TORTURE_MIDDLE
    frcsr t0
    sd t0, 64(t6)
    ld a1, 8(t6)
    .irp n,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    fsd f\n, (\n*8)(a1)
    .endr
    fscsr zero
    .irp n,0,1,2,3,4,5,6,7,8,9,10,11
    fld fs\n, (\n*8)(sp)
    .endr
    addi sp, sp, 96
    ret

    .balign 4
    .globl tellus_vec_torture
tellus_vec_torture:
    .option push
    .option arch, +v
    vsetvli t0, zero, e64, m1, ta, ma
    ld a1, 0(a0)
    csrr t1, vlenb
    .irp n,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    vl1re64.v v\n, (a1)
    add a1, a1, t1
    .endr
    li t0, 3
    vsetvli t0, t0, e32, m2, tu, mu
    csrr t0, vl
    sd t0, 48(a0)
    csrr t0, vtype
    sd t0, 56(a0)
    TORTURE_MIDDLE
    csrr t0, vl
    sd t0, 64(t6)
    csrr t0, vtype
    sd t0, 72(t6)
    ld a1, 8(t6)
    csrr t1, vlenb
    .irp n,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    vs1r.v v\n, (a1)
    add a1, a1, t1
    .endr
    .option pop
    ret
"#
);

/// Shared with the probes above; field offsets are hard-coded in the asm.
#[repr(C)]
#[derive(Default)]
pub struct TortureCtx {
    pub fill: u64,
    pub dump: u64,
    pub counter: u64,
    pub counter_before: u64,
    pub delay_ticks: u64,
    pub timeout_ticks: u64,
    pub ctl_before: u64,
    pub ctl2_before: u64,
    pub ctl_after: u64,
    pub ctl2_after: u64,
    pub fired: u64,
    pub sbi_errors: u64,
}

/// Registers saved by `tellus_trap_entry`; `regs[i]` is `x<i>`.
#[repr(C)]
pub struct TrapFrame {
    pub regs: [u64; 32],
    pub sepc: u64,
    pub scause: u64,
    pub stval: u64,
    pub sstatus: u64,
}

extern "C" {
    fn tellus_secondary_entry();
    fn tellus_fp_torture(ctx: *mut TortureCtx);
    fn tellus_vec_torture(ctx: *mut TortureCtx);
}

/// Physical (= virtual, paging is off) address of the secondary entry point.
pub fn secondary_entry_addr() -> u64 {
    tellus_secondary_entry as *const () as u64
}

/// Runs the FP register probe. `ctx.fill`/`ctx.dump` must point to 32 u64s.
pub fn fp_torture(ctx: &mut TortureCtx, fill: &[u64; 32], dump: &mut [u64; 32]) {
    ctx.fill = fill.as_ptr() as u64;
    ctx.dump = dump.as_mut_ptr() as u64;
    // SAFETY: the probe reads 32 u64 from `fill`, writes 32 u64 to `dump`
    // (both borrowed for the call), follows the C ABI (fs0-fs11 restored,
    // fcsr reset to 0) and only reads `ctx.counter`, which the caller points
    // at a live atomic.
    unsafe { tellus_fp_torture(ctx) }
}

/// Runs the vector register probe. Only call it when V is present; `fill`
/// and `dump` must each hold 32 * vlenb bytes.
pub fn vec_torture(ctx: &mut TortureCtx, fill: &[u64], dump: &mut [u64]) {
    let need = 32 * read_vlenb() as usize / 8;
    assert!(fill.len() >= need && dump.len() >= need);
    ctx.fill = fill.as_ptr() as u64;
    ctx.dump = dump.as_mut_ptr() as u64;
    // SAFETY: as for `fp_torture`; buffer sizes checked above; vector
    // registers, vl and vtype are caller-saved in the ABI and tellus's Rust
    // code never uses them.
    unsafe { tellus_vec_torture(ctx) }
}

/// Raw SBI call.
///
/// # Safety
/// The caller must make sure the call cannot make the SBI implementation
/// write tellus memory it does not own or run code on tellus's behalf at
/// an address that is not a valid entry point.
#[inline(always)]
pub unsafe fn ecall(eid: u64, fid: u64, args: [u64; 6]) -> SbiRet {
    let error: i64;
    let value: u64;
    // SAFETY: per the SBI calling convention only a0/a1 are modified; the
    // memory effects are the caller's responsibility (see above).
    unsafe {
        asm!(
            "ecall",
            inlateout("a0") args[0] => error,
            inlateout("a1") args[1] => value,
            in("a2") args[2],
            in("a3") args[3],
            in("a4") args[4],
            in("a5") args[5],
            in("a6") fid,
            in("a7") eid,
            options(nostack),
        );
    }
    SbiRet { error, value }
}

macro_rules! csr_read {
    ($csr:literal) => {{
        let v: u64;
        // SAFETY: reading this CSR has no side effects.
        unsafe { asm!(concat!("csrr {0}, ", $csr), out(reg) v, options(nomem, nostack)) };
        v
    }};
}

/// `csrrw`: writes a CSR and returns its old value.
macro_rules! csr_swap {
    ($csr:literal, $v:expr) => {{
        let old: u64;
        // SAFETY: only CSRs that configure U-mode (which tellus never
        // enters) or select indirect AIA registers are swapped.
        unsafe { asm!(concat!("csrrw {0}, ", $csr, ", {1}"), out(reg) old, in(reg) $v, options(nostack)) };
        old
    }};
}

/// S-level CSRs VS-mode reaches directly (see attack::csrs).
pub fn swap_senvcfg(v: u64) -> u64 {
    csr_swap!("0x10a", v)
}
pub fn swap_scounteren(v: u64) -> u64 {
    csr_swap!("0x106", v)
}
/// Traps without Ssaia.
pub fn swap_siselect(v: u64) -> u64 {
    csr_swap!("0x150", v)
}
/// Writes `v` to register `sel` of tellus's own IMSIC file (`siselect`,
/// `sireg`); traps without one.
pub fn imsic_write(sel: u64, v: u64) {
    swap_siselect(sel);
    // SAFETY: an indirect AIA register of tellus's own interrupt file.
    unsafe { asm!("csrw 0x151, {0}", in(reg) v, options(nostack)) };
}

/// Claims the top pending-and-enabled interrupt of tellus's own IMSIC file
/// (`stopei`): its id, 0 if none.
pub fn imsic_claim() -> u64 {
    let v: u64;
    // SAFETY: csrrw on stopei reads the top interrupt and claims it.
    unsafe { asm!("csrrw {0}, 0x15C, zero", out(reg) v, options(nostack)) };
    v >> 16
}

/// Traps without Smstateen.
pub fn swap_sstateen0(v: u64) -> u64 {
    csr_swap!("0x10c", v)
}

/// Reads `sstateen0`; traps without Smstateen (or when the hypervisor
/// withholds it), so it may be probed with `trap::expect_fault`.
pub fn read_sstateen0() -> u64 {
    let v: u64;
    // SAFETY: a read; not `nomem` so it stays after arming the probe.
    unsafe { asm!("csrr {0}, 0x10c", out(reg) v, options(nostack)) };
    v
}

/// The `time` CSR (needs hcounteren.TM under a hypervisor).
#[inline(always)]
pub fn read_time() -> u64 {
    csr_read!("time")
}

/// The `instret` CSR (needs hcounteren.IR under a hypervisor).
#[inline(always)]
pub fn read_instret() -> u64 {
    csr_read!("instret")
}

pub fn read_sip() -> u64 {
    csr_read!("sip")
}

/// `vlenb`; only valid when V is implemented.
pub fn read_vlenb() -> u64 {
    csr_read!("0xc22")
}

pub fn sie_set(bits: u64) {
    // SAFETY: enabling interrupt sources; the trap vector handles them all.
    unsafe { asm!("csrs sie, {0}", in(reg) bits, options(nostack)) };
}

pub fn sie_clear(bits: u64) {
    // SAFETY: disabling interrupt sources is always sound.
    unsafe { asm!("csrc sie, {0}", in(reg) bits, options(nostack)) };
}

pub fn sip_clear(bits: u64) {
    // SAFETY: clears pending bits (only SSIP is writable by S mode).
    unsafe { asm!("csrc sip, {0}", in(reg) bits, options(nostack)) };
}

/// Sets sstatus.SIE. Not `nomem`: the handler may run right here and
/// update memory.
pub fn interrupts_enable() {
    // SAFETY: the trap vector is installed before Rust code runs.
    unsafe { asm!("csrsi sstatus, 2", options(nostack)) };
}

pub fn interrupts_disable() {
    // SAFETY: masking interrupts is always sound.
    unsafe { asm!("csrci sstatus, 2", options(nostack)) };
}

/// Writes the Sstc `stimecmp` CSR (0x14d). Traps unless Sstc is
/// implemented and enabled (menvcfg/henvcfg.STCE).
pub fn write_stimecmp(v: u64) {
    // SAFETY: programs the timer; a trap is handled by the vector.
    unsafe { asm!("csrw 0x14d, {0}", in(reg) v, options(nostack)) };
}

pub fn wfi() {
    // SAFETY: waits for an interrupt; no memory effects.
    unsafe { asm!("wfi", options(nostack)) };
}

/// Points `tp` at this hart's `HartSlot` (the trap handler reads it).
pub fn set_tp(v: u64) {
    // SAFETY: tellus uses no TLS, `tp` is reserved for the slot pointer.
    unsafe { asm!("mv tp, {0}", in(reg) v, options(nomem, nostack)) };
}

pub fn read_tp() -> u64 {
    let v: u64;
    // SAFETY: reads a register.
    unsafe { asm!("mv {0}, tp", out(reg) v, options(nomem, nostack)) };
    v
}

/// Length in bytes of the instruction at `pc` (2 for compressed, else 4).
///
/// # Safety
/// `pc` must be the address of an instruction (paging is off).
pub unsafe fn insn_len(pc: u64) -> u64 {
    // SAFETY: per the contract `pc` is readable and 2-byte aligned.
    let half = unsafe { core::ptr::read_volatile(pc as *const u16) };
    if half & 3 == 3 {
        4
    } else {
        2
    }
}

/// Loads a u64 from a physical address that is expected to fault; the trap
/// handler skips the instruction when armed.
///
/// # Safety
/// The caller arms the expected-fault handling, or `addr` is readable.
pub unsafe fn probe_load(addr: u64) -> u64 {
    let mut v: u64 = 0;
    // SAFETY: see the contract; a fault resumes after the `ld`.
    unsafe { asm!("ld {0}, 0({1})", inout(reg) v, in(reg) addr, options(nostack)) };
    v
}

/// Stores a u64 to a physical address that is expected to fault.
///
/// # Safety
/// The caller arms the expected-fault handling, and `addr` belongs to
/// memory tellus may not touch (so a store that does not fault is a bug in
/// the protection under test, not in tellus).
pub unsafe fn probe_store(addr: u64, v: u64) {
    // SAFETY: see the contract; a fault resumes after the `sd`.
    unsafe { asm!("sd {0}, 0({1})", in(reg) v, in(reg) addr, options(nostack)) };
}
