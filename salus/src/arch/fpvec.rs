//! Saving and restoring the floating-point and vector register files when
//! a hart switches between the host and a TVM. Salus itself never uses F or
//! V registers, so with only the host on a hart nothing is switched.

/// f0..f31 and fcsr.
#[repr(C)]
#[derive(Clone, Debug, Default)]
pub struct FpState {
    pub f: [u64; 32],
    pub fcsr: u64,
}

/// Vector CSRs; the registers themselves live in a caller-provided area of
/// 32 * vlenb bytes.
#[repr(C)]
#[derive(Clone, Debug, Default)]
pub struct VecCsrs {
    pub vl: u64,
    pub vtype: u64,
    pub vstart: u64,
    pub vcsr: u64,
}

/// Saves f0..f31 and fcsr into `s`.
pub fn save_fp(s: &mut FpState) {
    // SAFETY: stores 33 doublewords into `s`, which is exclusively borrowed
    // and large enough; sstatus.FS is non-Off in HS mode (boot sets it).
    unsafe {
        core::arch::asm!(
            "fsd f0, 0({p})", "fsd f1, 8({p})", "fsd f2, 16({p})", "fsd f3, 24({p})",
            "fsd f4, 32({p})", "fsd f5, 40({p})", "fsd f6, 48({p})", "fsd f7, 56({p})",
            "fsd f8, 64({p})", "fsd f9, 72({p})", "fsd f10, 80({p})", "fsd f11, 88({p})",
            "fsd f12, 96({p})", "fsd f13, 104({p})", "fsd f14, 112({p})", "fsd f15, 120({p})",
            "fsd f16, 128({p})", "fsd f17, 136({p})", "fsd f18, 144({p})", "fsd f19, 152({p})",
            "fsd f20, 160({p})", "fsd f21, 168({p})", "fsd f22, 176({p})", "fsd f23, 184({p})",
            "fsd f24, 192({p})", "fsd f25, 200({p})", "fsd f26, 208({p})", "fsd f27, 216({p})",
            "fsd f28, 224({p})", "fsd f29, 232({p})", "fsd f30, 240({p})", "fsd f31, 248({p})",
            "frcsr {t}",
            "sd {t}, 256({p})",
            p = in(reg) s as *mut FpState,
            t = out(reg) _,
            options(nostack),
        )
    }
}

/// Loads f0..f31 and fcsr from `s`.
pub fn restore_fp(s: &FpState) {
    // SAFETY: loads from `s` only; clobbers exactly the FP registers it
    // restores, which Rust code in Salus never holds values in.
    unsafe {
        core::arch::asm!(
            "fld f0, 0({p})", "fld f1, 8({p})", "fld f2, 16({p})", "fld f3, 24({p})",
            "fld f4, 32({p})", "fld f5, 40({p})", "fld f6, 48({p})", "fld f7, 56({p})",
            "fld f8, 64({p})", "fld f9, 72({p})", "fld f10, 80({p})", "fld f11, 88({p})",
            "fld f12, 96({p})", "fld f13, 104({p})", "fld f14, 112({p})", "fld f15, 120({p})",
            "fld f16, 128({p})", "fld f17, 136({p})", "fld f18, 144({p})", "fld f19, 152({p})",
            "fld f20, 160({p})", "fld f21, 168({p})", "fld f22, 176({p})", "fld f23, 184({p})",
            "fld f24, 192({p})", "fld f25, 200({p})", "fld f26, 208({p})", "fld f27, 216({p})",
            "fld f28, 224({p})", "fld f29, 232({p})", "fld f30, 240({p})", "fld f31, 248({p})",
            "ld {t}, 256({p})",
            "fscsr {t}",
            p = in(reg) s as *const FpState,
            t = out(reg) _,
            options(nostack),
        )
    }
}

/// vlenb (bytes per vector register); only call on harts with V.
pub fn vlenb() -> u64 {
    let v: u64;
    // SAFETY: reads the vlenb CSR (0xC22), present when V is.
    unsafe { core::arch::asm!("csrr {0}, 0xC22", out(reg) v, options(nomem, nostack)) };
    v
}

/// Saves the vector CSRs and v0..v31 into `csrs` and `area`
/// (`area.len() >= 32 * vlenb`). Only on harts with V.
pub fn save_vector(csrs: &mut VecCsrs, area: &mut [u8]) {
    assert!(area.len() as u64 >= 32 * vlenb());
    // SAFETY: the whole-register stores write 32 * vlenb bytes into `area`
    // (checked above); the vector CSRs (vstart included) are read before
    // anything changes them and `restore_vector` puts them back.
    unsafe {
        core::arch::asm!(
            ".option push",
            ".option arch, +v",
            "csrr {vl}, vl",
            "csrr {vtype}, vtype",
            "csrr {vstart}, vstart",
            "csrr {vcsr}, vcsr",
            // Whole-register stores honour vstart: start at element 0.
            "csrw vstart, zero",
            "csrr {step}, vlenb",
            "slli {step}, {step}, 3",
            "mv {q}, {p}",
            "vs8r.v v0, ({q})",
            "add {q}, {q}, {step}",
            "vs8r.v v8, ({q})",
            "add {q}, {q}, {step}",
            "vs8r.v v16, ({q})",
            "add {q}, {q}, {step}",
            "vs8r.v v24, ({q})",
            ".option pop",
            p = in(reg) area.as_mut_ptr(),
            q = out(reg) _,
            step = out(reg) _,
            vl = out(reg) csrs.vl,
            vtype = out(reg) csrs.vtype,
            vstart = out(reg) csrs.vstart,
            vcsr = out(reg) csrs.vcsr,
            options(nostack),
        )
    }
}

/// Restores what `save_vector` saved.
pub fn restore_vector(csrs: &VecCsrs, area: &[u8]) {
    assert!(area.len() as u64 >= 32 * vlenb());
    // SAFETY: loads 32 * vlenb bytes from `area` (checked), then restores
    // vl/vtype with vsetvl and the other vector CSRs.
    unsafe {
        core::arch::asm!(
            ".option push",
            ".option arch, +v",
            // Whole-register loads honour vstart (whatever the previous
            // owner left): start at element 0; the saved vstart goes last.
            "csrw vstart, zero",
            "csrr {step}, vlenb",
            "slli {step}, {step}, 3",
            "mv {q}, {p}",
            "vl8re8.v v0, ({q})",
            "add {q}, {q}, {step}",
            "vl8re8.v v8, ({q})",
            "add {q}, {q}, {step}",
            "vl8re8.v v16, ({q})",
            "add {q}, {q}, {step}",
            "vl8re8.v v24, ({q})",
            "vsetvl x0, {vl}, {vtype}",
            "csrw vstart, {vstart}",
            "csrw vcsr, {vcsr}",
            ".option pop",
            p = in(reg) area.as_ptr(),
            q = out(reg) _,
            step = out(reg) _,
            vl = in(reg) csrs.vl,
            vtype = in(reg) csrs.vtype,
            vstart = in(reg) csrs.vstart,
            vcsr = in(reg) csrs.vcsr,
            options(nostack),
        )
    }
}
