//! TEE tests: TSM info, convert/fence/reclaim, the guestvm lifecycle (run
//! on every hart in turn), negative tests of every COVH call, and the page
//! census. Run by `crate::suite` after the SBI tests, only when COVH probes
//! as present.

pub mod census;
pub mod covi;
pub mod guestvm;
pub mod info;
pub mod negative;
pub mod negative_tvm;

use crate::harness::run_one;
use crate::platform::Platform;
use crate::tee::ctx::Ctx;

/// The TEE tests before the attack group (`tee_census` comes last of all).
pub fn run(p: &Platform, cx: &mut Ctx) {
    run_one("tee_tsm_info", p, |t, p| info::test_tsm_info(t, p, cx));
    run_one("tee_convert_fence", p, |t, p| {
        info::test_convert_fence(t, p, cx)
    });
    run_one("tee_guestvm", p, |t, p| guestvm::test_guestvm(t, p, cx));
    run_one("tee_covi", p, |t, p| covi::test_covi(t, p, cx));
    run_one("tee_negative_convert_reclaim", p, |t, p| {
        negative::test_neg_convert(t, p, cx)
    });
    run_one("tee_negative_create", p, |t, p| {
        negative::test_neg_create(t, p, cx)
    });
    run_one("tee_negative_tvm_calls", p, |t, p| {
        negative_tvm::test_neg_tvm(t, p, cx)
    });
}
