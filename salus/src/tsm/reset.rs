//! A system reset or shutdown requested by the host. RAM usually survives a
//! warm reset (QEMU keeps it, as does most hardware), and the next host boot
//! owns all of it: every page that may hold TVM data is scrubbed first.

use super::TSM;
use crate::arch::phys;
use crate::memory;
use core::sync::atomic::{AtomicBool, Ordering};
use page_tracking::PageState;

static RESETTING: AtomicBool = AtomicBool::new(false);

/// After `scrub_for_reset` succeeded every COVH call fails.
#[inline(always)]
pub fn resetting() -> bool {
    RESETTING.load(Ordering::Acquire)
}

/// A TVM vCPU runs on some hart: the TSM cannot clear its memory now.
#[derive(Debug)]
pub struct VcpuRunning;

/// Pages that may hold TVM data (or be handed to a TVM) and are not the
/// host's, the firmware's or Salus's own.
fn may_hold_tvm_data(s: PageState) -> bool {
    !matches!(
        s,
        PageState::Host | PageState::Firmware | PageState::Hypervisor | PageState::Shared(_)
    )
}

/// Stops the TSM for good and scrubs every page that is not the host's,
/// the firmware's or Salus's. Refuses (changing nothing) while any TVM
/// vCPU runs on another hart.
///
/// The TSM lock stays held afterwards: no COVH or COVG call can touch the
/// scrubbed TVM state again (`resetting()` fails new ones up front).
pub fn scrub_for_reset() -> Result<(), VcpuRunning> {
    let mut tsm = TSM.lock();
    // A vCPU is claimed under the TSM lock, held from here on: none can
    // start once this check passed.
    if tsm.tvms.any_vcpu_running() {
        return Err(VcpuRunning);
    }
    RESETTING.store(true, Ordering::Release);
    {
        let map = memory::page_map().lock();
        for (range, state) in map.runs() {
            if may_hold_tvm_data(state) {
                phys::scrub(range.start, range.len);
            }
        }
    }
    // The TVM state is gone: calls already past the flag check wait on
    // the lock until the reset happens, and new ones fail up front.
    core::mem::forget(tsm);
    Ok(())
}
