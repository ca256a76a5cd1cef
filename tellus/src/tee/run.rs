//! `run_tvm_vcpu`: the plain call, and the variant that checks that the
//! host's FP and vector registers survive it.

use core::arch::asm;

use cove_abi::{CovhFunction, EID_COVH};
use sbi_abi::SbiRet;

use crate::arch;

/// Result of `run_tvm_vcpu` plus the exit cause from the host's CSRs.
#[derive(Clone, Copy, Debug, Default)]
pub struct Exit {
    pub error: i64,
    pub value: u64,
    pub scause: u64,
    pub stval: u64,
}

/// `run_tvm_vcpu`, reading `scause`/`stval` right after the ecall with
/// interrupts masked so no trap can overwrite them. Restores SIE.
pub fn run_vcpu(id: u64, vcpu: u64) -> Exit {
    let error: i64;
    let value: u64;
    let scause: u64;
    let stval: u64;
    let sstatus: u64;
    // SAFETY: run_tvm_vcpu returns like any ecall (only a0/a1 change); the
    // TSM writes the NACL area tellus registered on this hart.
    unsafe {
        asm!(
            "csrrci {ss}, sstatus, 2",
            "ecall",
            "csrr {sc}, scause",
            "csrr {tv}, stval",
            ss = out(reg) sstatus,
            sc = out(reg) scause,
            tv = out(reg) stval,
            inlateout("a0") id => error,
            inlateout("a1") vcpu => value,
            in("a6") CovhFunction::RunTvmVcpu.fid(),
            in("a7") EID_COVH,
            options(nostack),
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

/// run_tvm_vcpu with the host's FP (and, with `has_v`, vector) registers
/// loaded from `rc.*_in` just before the ecall and stored to `rc.*_out`
/// right after it, with no Rust code in between: whatever the TVM did with
/// its own registers, the host's must come back unchanged.
pub fn run_vcpu_regcheck(id: u64, vcpu: u64, has_v: bool, rc: &mut RegCheck) -> Exit {
    let error: i64;
    let value: u64;
    let scause: u64;
    let stval: u64;
    let sstatus: u64;
    // SAFETY: the loads/stores touch only `rc`'s buffers (the vector ones
    // hold 32 * vlenb bytes for vlenb <= 256, checked by the caller); the
    // ecall returns like any other (a0/a1 change); interrupts are off.
    unsafe {
        asm!(
            "csrrci {ss}, sstatus, 2",
            "fld f0, 0({fin})",
            "fld f1, 8({fin})",
            "fld f2, 16({fin})",
            "fld f3, 24({fin})",
            "fld f4, 32({fin})",
            "fld f5, 40({fin})",
            "fld f6, 48({fin})",
            "fld f7, 56({fin})",
            "fld f8, 64({fin})",
            "fld f9, 72({fin})",
            "fld f10, 80({fin})",
            "fld f11, 88({fin})",
            "fld f12, 96({fin})",
            "fld f13, 104({fin})",
            "fld f14, 112({fin})",
            "fld f15, 120({fin})",
            "fld f16, 128({fin})",
            "fld f17, 136({fin})",
            "fld f18, 144({fin})",
            "fld f19, 152({fin})",
            "fld f20, 160({fin})",
            "fld f21, 168({fin})",
            "fld f22, 176({fin})",
            "fld f23, 184({fin})",
            "fld f24, 192({fin})",
            "fld f25, 200({fin})",
            "fld f26, 208({fin})",
            "fld f27, 216({fin})",
            "fld f28, 224({fin})",
            "fld f29, 232({fin})",
            "fld f30, 240({fin})",
            "fld f31, 248({fin})",
            "beqz {hv}, 1f",
            ".option push",
            ".option arch, +v",
            "csrr {t}, vlenb",
            "slli {t}, {t}, 3",
            "mv {q}, {vin}",
            "vl8re8.v v0, ({q})",
            "add {q}, {q}, {t}",
            "vl8re8.v v8, ({q})",
            "add {q}, {q}, {t}",
            "vl8re8.v v16, ({q})",
            "add {q}, {q}, {t}",
            "vl8re8.v v24, ({q})",
            ".option pop",
            "1:",
            "ecall",
            "csrr {sc}, scause",
            "csrr {tv}, stval",
            "fsd f0, 0({fout})",
            "fsd f1, 8({fout})",
            "fsd f2, 16({fout})",
            "fsd f3, 24({fout})",
            "fsd f4, 32({fout})",
            "fsd f5, 40({fout})",
            "fsd f6, 48({fout})",
            "fsd f7, 56({fout})",
            "fsd f8, 64({fout})",
            "fsd f9, 72({fout})",
            "fsd f10, 80({fout})",
            "fsd f11, 88({fout})",
            "fsd f12, 96({fout})",
            "fsd f13, 104({fout})",
            "fsd f14, 112({fout})",
            "fsd f15, 120({fout})",
            "fsd f16, 128({fout})",
            "fsd f17, 136({fout})",
            "fsd f18, 144({fout})",
            "fsd f19, 152({fout})",
            "fsd f20, 160({fout})",
            "fsd f21, 168({fout})",
            "fsd f22, 176({fout})",
            "fsd f23, 184({fout})",
            "fsd f24, 192({fout})",
            "fsd f25, 200({fout})",
            "fsd f26, 208({fout})",
            "fsd f27, 216({fout})",
            "fsd f28, 224({fout})",
            "fsd f29, 232({fout})",
            "fsd f30, 240({fout})",
            "fsd f31, 248({fout})",
            "beqz {hv}, 2f",
            ".option push",
            ".option arch, +v",
            "csrr {t}, vlenb",
            "slli {t}, {t}, 3",
            "mv {q}, {vout}",
            "vs8r.v v0, ({q})",
            "add {q}, {q}, {t}",
            "vs8r.v v8, ({q})",
            "add {q}, {q}, {t}",
            "vs8r.v v16, ({q})",
            "add {q}, {q}, {t}",
            "vs8r.v v24, ({q})",
            ".option pop",
            "2:",
            fin = in(reg) rc.f_in.as_ptr(),
            fout = in(reg) rc.f_out.as_mut_ptr(),
            vin = in(reg) rc.v_in.as_ptr(),
            vout = in(reg) rc.v_out.as_mut_ptr(),
            hv = in(reg) has_v as u64,
            ss = out(reg) sstatus,
            out("f0") _,
            out("f1") _,
            out("f2") _,
            out("f3") _,
            out("f4") _,
            out("f5") _,
            out("f6") _,
            out("f7") _,
            out("f8") _,
            out("f9") _,
            out("f10") _,
            out("f11") _,
            out("f12") _,
            out("f13") _,
            out("f14") _,
            out("f15") _,
            out("f16") _,
            out("f17") _,
            out("f18") _,
            out("f19") _,
            out("f20") _,
            out("f21") _,
            out("f22") _,
            out("f23") _,
            out("f24") _,
            out("f25") _,
            out("f26") _,
            out("f27") _,
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
            options(nostack),
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
