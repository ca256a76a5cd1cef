//! The SBI tests (run first by `crate::suite`). Checks are strict (they encode
//! what the SBI v2.0 spec and Salus's contract require); a failed check does
//! not stop the test unless later steps depend on it.

mod calls;
mod common;
mod hsm;
mod state;
mod timer;

use crate::harness::{run_one, T};
use crate::platform::Platform;
use calls::*;
use hsm::*;
use state::*;
use timer::*;

pub fn run(p: &Platform) {
    run_one("base", p, test_base);
    run_one("unknown_ids", p, test_unknown);
    run_one("dbcn", p, test_dbcn);
    run_one("time", p, test_time);
    run_one("ipi_self", p, test_ipi_self);
    run_one("hsm_start", p, test_hsm_start);
    run_one("ipi_all", p, test_ipi_all);
    run_one("rfence", p, test_rfence);
    run_one("timer_stress", p, test_timer_stress);
    run_one("hsm_stop_suspend", p, test_hsm_stop_suspend);
    run_one("fpu_regs", p, test_fpu);
    if p.has_v {
        run_one("vector_regs", p, test_vector);
    } else {
        println!("tellus: no V extension in riscv,isa: vector test not run");
    }
    run_one("memory", p, test_memory);
    run_one("salus_memory_fault", p, test_salus_fault);
    run_one("dbcn_oob", p, test_dbcn_oob);
    run_one("srst_invalid", p, test_srst_invalid);
    run_one("uint32_upper_bits", p, test_uint32_upper_bits);
    run_one("host_bootargs", p, test_host_bootargs);
}

/// A deliberate failure (bootargs `fail-selftest`): proves that one failed
/// test makes the whole run, and QEMU's exit status, fail.
pub fn test_fail_selftest(t: &mut T, _p: &Platform) {
    check!(
        t,
        false,
        "deliberate failure requested by bootargs fail-selftest"
    );
}
