//! The shim's only unsafe code: the entry, SBI calls, raw access to the
//! device-tree blob, and the jump into the kernel.

use core::arch::{asm, global_asm};

const STACK_SIZE: usize = 16 * 1024;

#[repr(C, align(16))]
struct Stack([u8; STACK_SIZE]);

static mut STACK: Stack = Stack([0; STACK_SIZE]);

// a0 (hart id) and a1 (device tree) pass straight to `shim_main`.
global_asm!(
    r#"
    .section .text.entry, "ax"
    .global _start
_start:
    csrw sie, zero
    la sp, {stack} + {stack_size}
    call {main}
1:  wfi
    j 1b
"#,
    stack = sym STACK,
    stack_size = const STACK_SIZE,
    main = sym crate::shim::shim_main,
);

/// Whether this hart has a vector unit: `sstatus.VS` sticks only then.
pub fn has_vector() -> bool {
    let vs: u64;
    // SAFETY: sets sstatus.VS to Initial and reads it back (no memory
    // effects; without V the field is read-only zero).
    unsafe {
        asm!("csrs sstatus, {0}", "csrr {1}, sstatus", in(reg) 1u64 << 9, out(reg) vs);
    }
    vs & (3 << 9) != 0
}

/// One SBI call; returns (error, value).
pub fn sbi(eid: u64, fid: u64, a0: u64, a1: u64, a2: u64) -> (i64, u64) {
    let (e, v): (i64, u64);
    // SAFETY: an ecall to the TSM; it returns like a call and changes only
    // a0/a1. DBCN reads memory we pass it but never writes it.
    unsafe {
        asm!("ecall", inlateout("a0") a0 as i64 => e, inlateout("a1") a1 => v,
             in("a2") a2, in("a6") fid, in("a7") eid, options(nostack));
    }
    (e, v)
}

/// Calls `f` with the device tree at `addr` (paging is off: GPA = address),
/// or returns `None` when there is no FDT header there.
pub fn with_dtb<R>(addr: u64, f: impl FnOnce(&[u8]) -> R) -> Option<R> {
    if addr == 0 || !addr.is_multiple_of(8) {
        return None;
    }
    // SAFETY: the host put the device tree at `addr` inside the TVM's RAM
    // (measured pages); the header is 40 bytes.
    let hdr = unsafe { core::slice::from_raw_parts(addr as *const u8, 40) };
    if hdr[0..4] != [0xd0, 0x0d, 0xfe, 0xed] {
        return None;
    }
    let total = u32::from_be_bytes(hdr[4..8].try_into().unwrap()) as usize;
    if !(40..=(1 << 20)).contains(&total) {
        return None;
    }
    // SAFETY: `totalsize` bytes of the blob, within the TVM's RAM; nothing
    // writes them while `f` runs (the slice does not outlive the call).
    let blob = unsafe { core::slice::from_raw_parts(addr as *const u8, total) };
    Some(f(blob))
}

/// Overwrites bytes of the device tree at `dtb + off`.
pub fn write_dtb(dtb: u64, off: usize, bytes: &[u8]) {
    for (k, &b) in bytes.iter().enumerate() {
        // SAFETY: `off` came from parsing the blob (a property's value
        // inside it) and the caller stays within that property; no slice
        // of the blob is alive.
        unsafe { core::ptr::write_volatile((dtb as usize + off + k) as *mut u8, b) };
    }
}

/// Jumps to the kernel with a0 = hart id, a1 = device tree, satp off.
pub fn enter_kernel(entry: u64, hart: u64, dtb: u64) -> ! {
    // SAFETY: leaves the shim for good; the kernel's image is at `entry`
    // (measured pages) and expects exactly this register state.
    unsafe {
        asm!("fence.i", "csrw satp, zero", "jr {e}", e = in(reg) entry,
             in("a0") hart, in("a1") dtb, options(noreturn));
    }
}

pub fn halt() -> ! {
    loop {
        // SAFETY: wfi has no memory effects.
        unsafe { asm!("wfi") };
    }
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    let msg = b"tvm-shim: panic\n";
    let _ = sbi(0x4442_434E, 0, msg.len() as u64, msg.as_ptr() as u64, 0);
    let _ = sbi(0x5352_5354, 0, 0, 1, 0);
    halt()
}
