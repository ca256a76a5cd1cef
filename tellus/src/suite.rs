//! The tellus suite, in order: the SBI tests, then (when COVH probes as
//! present) the TEE tests, the attack group, fuzz (with `fuzz` in bootargs)
//! and the page census, then the deliberate failure if asked for.

use crate::harness::run_one;
use crate::platform::Platform;
use crate::tee::ctx::{setup, Ctx};
use crate::{attack, fuzz, tee, tests};

pub fn run(p: &Platform) {
    tests::run(p);
    if let Some(mut cx) = setup(p) {
        run_tee(p, &mut cx);
    } else {
        println!("tellus: COVH not available: TEE tests not run");
    }
    if p.fail_selftest {
        run_one("fail_selftest", p, tests::test_fail_selftest);
    }
}

fn run_tee(p: &Platform, cx: &mut Ctx) {
    println!(
        "tellus: COVH present: tsm version {:#x}, caps {:#x}, state pages {}, max vcpus {}, vcpu state pages {}, {} hart(s) live",
        cx.info.tsm_version,
        cx.info.tsm_capabilities,
        cx.info.tvm_state_pages,
        cx.info.tvm_max_vcpus,
        cx.info.tvm_vcpu_state_pages,
        cx.nslots
    );
    tee::tests::run(p, cx);
    attack::run(p, cx);
    if p.fuzz {
        run_one("tee_fuzz", p, |t, p| fuzz::test_fuzz(t, p, cx));
    }
    run_one("tee_census", p, tee::tests::census::test_census);
}
