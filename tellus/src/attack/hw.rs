//! Attacks through state the hardware keeps for the guest.

use crate::platform::Platform;
use crate::tee::tests::Ctx;

pub fn run(_p: &Platform, _cx: &mut Ctx) {}
