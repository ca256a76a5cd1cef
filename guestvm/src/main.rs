//! guestvm: the confidential test guest. For now a stub that says hello
//! through the SBI debug console and shuts down; it becomes a TVM payload
//! with the CoVE issue.
#![no_std]
#![no_main]

use core::arch::{asm, global_asm};

global_asm!(
    r#"
    .section .text.entry, "ax"
    .global _start
_start:
    la sp, {stack} + 4096
    call guestvm_main
1:  wfi
    j 1b
"#,
    stack = sym STACK,
);

static mut STACK: [u8; 4096] = [0; 4096];

fn sbi(eid: u64, fid: u64, a0: u64, a1: u64) -> i64 {
    let ret: i64;
    // SAFETY: an SBI call; the callee only reads the buffer we pass.
    unsafe {
        asm!("ecall", inlateout("a0") a0 as i64 => ret, inlateout("a1") a1 => _, in("a2") 0u64, in("a6") fid, in("a7") eid);
    }
    ret
}

#[no_mangle]
extern "C" fn guestvm_main() -> ! {
    let msg = b"guestvm: hello\n";
    sbi(0x4442_434E, 0, msg.len() as u64, msg.as_ptr() as u64);
    sbi(0x5352_5354, 0, 0, 0);
    loop {
        // SAFETY: wfi has no memory effects.
        unsafe { asm!("wfi") };
    }
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    loop {}
}
