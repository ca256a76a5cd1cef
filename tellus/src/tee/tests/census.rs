//! `tee_census`: every range tellus converted is host memory again.

use core::fmt::Write;

use crate::console::Msg;
use crate::harness::T;
use crate::platform::Platform;
use crate::tee::ctx::*;
use crate::tee::*;

// ---- 7. census -----------------------------------------------------------------

pub fn test_census(t: &mut T, _p: &Platform) {
    let c = CENSUS.lock();
    check!(
        t,
        !c.lost,
        "more than {} converted ranges: census incomplete",
        c.ranges.len()
    );
    let mut pages = 0u64;
    let mut bad = 0u64;
    let mut first = None;
    for &(base, n) in &c.ranges[..c.n] {
        for k in 0..n {
            let a = base + k * PAGE;
            pages += 1;
            if !host_page_ok(a) || !host_page_ok(a + PAGE - 8) {
                bad += 1;
                first.get_or_insert(a);
            }
        }
    }
    if let Some(f) = first {
        check!(
            t,
            false,
            "{bad} of {pages} converted page(s) not host memory again, first {f:#x}"
        );
    }
    let mut m = Msg::new();
    let _ = write!(m, "{pages} page(s) in {} range(s) back with the host", c.n);
    t.note(format_args!("{m}"));
}
