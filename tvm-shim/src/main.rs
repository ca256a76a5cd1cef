//! tvm-shim: the measured boot shim of a Linux TVM (docs/linux-tvm.md).
//! Loaded as measured pages at the TVM's RAM base and entered on vCPU 0
//! with a0 = 0 and a1 = the device tree's GPA, paging off. It
//!  1. declares every device range of the device tree (nodes with `reg`
//!     except RAM, CPUs and IMSICs) as an MMIO region with COVG
//!     add_mmio_region, refusing a range that overlaps `/memory`;
//!  2. replaces `/chosen/rng-seed` in place with fresh entropy from the
//!     TSM (EID 0x0953524E; zeros and a warning if the TSM lacks it);
//!  3. prints one line through DBCN and jumps to the kernel at RAM base +
//!     2 MiB with a0 = hart id 0, a1 = the device tree (Linux's RISC-V boot
//!     protocol).
//!
//! On an error it prints why and shuts the TVM down (SRST, system failure).
#![cfg_attr(target_os = "none", no_std, no_main)]
#![deny(unsafe_code)]

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("tvm-shim runs inside a TVM: build it for riscv64gc-unknown-none-elf");
}

#[cfg(target_os = "none")]
#[allow(unsafe_code)]
mod rt;

#[cfg(target_os = "none")]
pub mod shim {
    use core::fmt::Write;

    use tvm_shim::{plan, Line, KERNEL_OFFSET};

    use crate::rt;

    const EID_DBCN: u64 = 0x4442_434E;
    const EID_SRST: u64 = 0x5352_5354;
    const EID_COVG: u64 = 0x434F_5647;
    const COVG_ADD_MMIO: u64 = 0;
    /// Salus's TVM entropy call: FID 0 returns 64 random bits.
    const EID_ENTROPY: u64 = 0x0953_524E;
    const ERR_NOT_SUPPORTED: i64 = -2;
    const RAM_BASE: u64 = 0x8000_0000;

    fn print(l: &Line) {
        let b = l.as_bytes();
        let _ = rt::sbi(EID_DBCN, 0, b.len() as u64, b.as_ptr() as u64, 0);
    }

    fn fail(args: core::fmt::Arguments) -> ! {
        let mut l = Line::new();
        let _ = writeln!(l, "tvm-shim: {args}");
        print(&l);
        // SRST shutdown, reason system failure.
        let _ = rt::sbi(EID_SRST, 0, 0, 1, 0);
        rt::halt()
    }

    /// Called by the entry in `rt` on the shim's stack.
    pub extern "C" fn shim_main(_hart: u64, dtb: u64) -> ! {
        let p = match rt::with_dtb(dtb, plan) {
            Some(Ok(p)) => p,
            Some(Err(e)) => fail(format_args!("refusing the device tree: {e}")),
            None => fail(format_args!("no device tree at {dtb:#x}")),
        };
        if p.isa_v && !rt::has_vector() {
            fail(format_args!(
                "the device tree lists V but this hart has no vector unit (build the bundle for this CPU)"
            ));
        }
        for &(base, len) in &p.mmio[..p.nmmio] {
            let (e, _) = rt::sbi(EID_COVG, COVG_ADD_MMIO, base, len, 0);
            if e != 0 {
                fail(format_args!(
                    "add_mmio_region({base:#x}, {len:#x}): error {e}"
                ));
            }
        }
        let mut seed_note = "no rng-seed";
        if let Some((off, len)) = p.rng_seed {
            seed_note = "rng-seed replaced";
            let mut done = 0;
            while done < len {
                let (e, v) = rt::sbi(EID_ENTROPY, 0, 0, 0, 0);
                let word = if e == 0 {
                    v
                } else if e == ERR_NOT_SUPPORTED {
                    seed_note = "rng-seed zeroed (WARNING: the TSM offers no entropy)";
                    0
                } else {
                    fail(format_args!("entropy call: error {e}"));
                };
                let n = (len - done).min(8);
                rt::write_dtb(dtb, off + done, &word.to_le_bytes()[..n]);
                done += n;
            }
        }
        let kernel = RAM_BASE + KERNEL_OFFSET;
        let mut l = Line::new();
        let _ = writeln!(
            l,
            "tvm-shim: {} MMIO regions, {seed_note}, entering the kernel at {kernel:#x}",
            p.nmmio
        );
        print(&l);
        rt::enter_kernel(kernel, 0, dtb)
    }
}
