//! Attacks on the TSM's locking, ownership and fencing.

use crate::platform::Platform;
use crate::tee::tests::Ctx;

pub fn run(_p: &Platform, _cx: &mut Ctx) {}
