//! `run_tvm_vcpu`: the plain call, and the variant that checks that the
//! host's FP and vector registers survive it.

use core::arch::asm;

use cove_abi::{CovhFunction, EID_COVH};
use sbi_abi::SbiRet;

use crate::arch;

/// Result of `run_tvm_vcpu` plus the exit cause from the host's CSRs.
/// Inline-asm text: v0..v31 <- the `32 * vlenb` bytes at `{vin}`
/// (whole-register loads; clobbers `{t}` and `{q}`).
macro_rules! vregs_load {
    () => {
        ".option push\n.option arch, +v\ncsrr {t}, vlenb\nslli {t}, {t}, 3\nmv {q}, {vin}\n\
         vl8re8.v v0, ({q})\nadd {q}, {q}, {t}\nvl8re8.v v8, ({q})\nadd {q}, {q}, {t}\n\
         vl8re8.v v16, ({q})\nadd {q}, {q}, {t}\nvl8re8.v v24, ({q})\n.option pop"
    };
}
pub(crate) use vregs_load;

/// Inline-asm text: the `32 * vlenb` bytes at `{vout}` <- v0..v31
/// (whole-register stores; clobbers `{t}` and `{q}`).
macro_rules! vregs_store {
    () => {
        ".option push\n.option arch, +v\ncsrr {t}, vlenb\nslli {t}, {t}, 3\nmv {q}, {vout}\n\
         vs8r.v v0, ({q})\nadd {q}, {q}, {t}\nvs8r.v v8, ({q})\nadd {q}, {q}, {t}\n\
         vs8r.v v16, ({q})\nadd {q}, {q}, {t}\nvs8r.v v24, ({q})\n.option pop"
    };
}
pub(crate) use vregs_store;

#[derive(Clone, Copy, Debug, Default)]
pub struct Exit {
    pub error: i64,
    pub value: u64,
    pub scause: u64,
    pub stval: u64,
}

impl Exit {
    pub fn into_ret(self) -> SbiRet {
        SbiRet {
            error: self.error,
            value: self.value,
        }
    }
}

/// Largest vector register file tellus checks (32 registers of VLEN 2048).
pub const REGCHECK_VBYTES: usize = 32 * 256;

/// Buffers for [`run_vcpu_regcheck`].
pub struct RegCheck {
    pub f_in: [u64; 32],
    pub f_out: [u64; 32],
    pub v_in: [u64; REGCHECK_VBYTES / 8],
    pub v_out: [u64; REGCHECK_VBYTES / 8],
}

/// `run_tvm_vcpu`, reading `scause`/`stval` right after the ecall with
/// interrupts masked so no trap can overwrite them. Restores SIE.
pub fn run_vcpu(id: u64, vcpu: u64) -> Exit {
    run_tvm_vcpu(id, vcpu, None)
}

/// run_tvm_vcpu with the host's FP (and, with `has_v`, vector) registers
/// loaded from `rc.*_in` just before the ecall and stored to `rc.*_out`
/// right after it, with no Rust code in between: whatever the TVM did with
/// its own registers, the host's must come back unchanged.
pub fn run_vcpu_regcheck(id: u64, vcpu: u64, has_v: bool, rc: &mut RegCheck) -> Exit {
    run_tvm_vcpu(id, vcpu, Some((rc, has_v)))
}

/// The one `run_tvm_vcpu` ecall: SIE masked around it, `scause`/`stval`
/// read right after it. With `regs`, the FP (and, with its flag, vector)
/// registers are loaded from the buffers just before the ecall and stored
/// right after it, all in the same asm block; the callee-saved FP
/// registers are saved on the stack around that and restored, so without
/// `regs` no FP register is touched.
#[inline(never)]
fn run_tvm_vcpu(id: u64, vcpu: u64, regs: Option<(&mut RegCheck, bool)>) -> Exit {
    let error: i64;
    let value: u64;
    let scause: u64;
    let stval: u64;
    let sstatus: u64;
    // Null `fin` means no register check (and `hv` is then 0).
    let (fin, fout, vin, vout, hv) = match regs {
        Some((rc, has_v)) => (
            rc.f_in.as_ptr(),
            rc.f_out.as_mut_ptr(),
            rc.v_in.as_ptr(),
            rc.v_out.as_mut_ptr(),
            has_v as u64,
        ),
        None => (
            core::ptr::null(),
            core::ptr::null_mut(),
            core::ptr::null(),
            core::ptr::null_mut(),
            0,
        ),
    };
    // SAFETY: run_tvm_vcpu returns like any ecall (only a0/a1 change); the
    // TSM writes the NACL area tellus registered on this hart. The
    // loads/stores touch only the `RegCheck` buffers (the vector ones hold
    // 32 * vlenb bytes for vlenb <= 256, checked by the caller); interrupts
    // are off.
    unsafe {
        asm!(
            "csrrci {ss}, sstatus, 2",
            "beqz {fin}, 1f",
            "addi sp, sp, -96",
            ".irp i, 8,9",
            "fsd f\\i, 8*(\\i-8)(sp)",
            ".endr",
            ".irp i, 18,19,20,21,22,23,24,25,26,27",
            "fsd f\\i, 8*(\\i-16)(sp)",
            ".endr",
            ".irp i, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31",
            "fld f\\i, 8*\\i({fin})",
            ".endr",
            "beqz {hv}, 1f",
            vregs_load!(),
            "1:",
            "ecall",
            "csrr {sc}, scause",
            "csrr {tv}, stval",
            "beqz {fin}, 2f",
            ".irp i, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31",
            "fsd f\\i, 8*\\i({fout})",
            ".endr",
            "beqz {hv}, 3f",
            vregs_store!(),
            "3:",
            ".irp i, 8,9",
            "fld f\\i, 8*(\\i-8)(sp)",
            ".endr",
            ".irp i, 18,19,20,21,22,23,24,25,26,27",
            "fld f\\i, 8*(\\i-16)(sp)",
            ".endr",
            "addi sp, sp, 96",
            "2:",
            fin = in(reg) fin,
            fout = in(reg) fout,
            vin = in(reg) vin,
            vout = in(reg) vout,
            hv = in(reg) hv,
            ss = out(reg) sstatus,
            // fs0-fs11 (f8-f9, f18-f27) are saved and restored inside.
            out("f0") _,
            out("f1") _,
            out("f2") _,
            out("f3") _,
            out("f4") _,
            out("f5") _,
            out("f6") _,
            out("f7") _,
            out("f10") _,
            out("f11") _,
            out("f12") _,
            out("f13") _,
            out("f14") _,
            out("f15") _,
            out("f16") _,
            out("f17") _,
            out("f28") _,
            out("f29") _,
            out("f30") _,
            out("f31") _,
            t = out(reg) _,
            q = out(reg) _,
            sc = out(reg) scause,
            tv = out(reg) stval,
            inlateout("a0") id => error,
            inlateout("a1") vcpu => value,
            in("a6") CovhFunction::RunTvmVcpu.fid(),
            in("a7") EID_COVH,
        );
    }
    if sstatus & 2 != 0 {
        arch::interrupts_enable();
    }
    Exit {
        error,
        value,
        scause,
        stval,
    }
}
