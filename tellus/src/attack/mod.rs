//! The `attack` group: each test is an attacker's call sequence (a hostile
//! host, or a hostile TVM) against one finding of the hardening review, with
//! the exact result expected and the TVM's and host's views checked after.
//! Run by `make test` after the TEE tests, only when COVH is present.
//!
//! - `tsm`: the TSM's locking, page ownership and fencing (deadlock,
//!   shareability, rollback, heap, long work under the lock), driving a
//!   scriptable hostile TVM (`agent`);
//! - `hw`: state the hardware keeps (vector `vstart`, HLVX faults, reset);
//! - `csrs`: S-level CSRs shared between host and TVM;
//! - `timer`: Salus's own timer deadlines while a TVM runs.

// Attack steps fail with a fixed-size reason by value: there is no
// allocator to box it.
#![allow(clippy::result_large_err)]

use crate::platform::Platform;
use crate::tee::ctx::Ctx;

pub mod agent;
pub mod csrs;
pub mod hw;
pub mod timer;
pub mod tsm;

pub fn run(p: &Platform, cx: &mut Ctx) {
    tsm::run(p, cx);
    hw::run(p, cx);
    csrs::run(p, cx);
    timer::run(p, cx);
    // Last: on a TSM with those findings they hang or kill Salus.
    tsm::run_last(p, cx);
}
