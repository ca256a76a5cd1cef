//! TEE work on several harts: starting the secondaries, local fences on
//! every live hart, and running a vCPU on a given hart.

use core::sync::atomic::Ordering::*;

use sbi_abi::hsm::hart_state;

use super::calls::{global_fence, local_fence, ERR_FAILED, OK};
use super::nacl::{nacl_forget, nacl_setup_here};
use super::run::{run_vcpu, Exit};
use crate::arch;
use crate::harts::{self, SLOTS};
use crate::platform::{Platform, MAX_HARTS};
use crate::sbi;

pub fn boot_slot(p: &Platform) -> usize {
    p.slot_of(p.boot_hartid).unwrap_or(0)
}

/// Makes sure every secondary is started and serving commands (starting
/// stopped ones). Returns a mask of the serving ones.
pub fn live_secondaries(p: &Platform) -> [bool; MAX_HARTS] {
    let mut live = [false; MAX_HARTS];
    for (i, &h) in p.hart_ids().iter().enumerate() {
        if h == p.boot_hartid {
            continue;
        }
        let st = sbi::hart_get_status(h);
        if st.error == OK && st.value == hart_state::STOPPED as u64 {
            let slot = &SLOTS[i];
            let before = slot.boot_count.load(Acquire);
            if harts::start(p, i).error == OK {
                harts::wait_for(p.ms(500), || slot.boot_count.load(Acquire) != before);
            }
            nacl_forget(i);
        }
        let seq = harts::post(&SLOTS[i], h, harts::CMD_PING);
        live[i] = harts::wait_ack(&SLOTS[i], seq, p.ms(500)) == Some(0);
    }
    live
}

fn call_local_fence(_: u64) -> i64 {
    local_fence().error
}

/// global_fence, then local_fence on every other live hart. Returns the
/// first error (global's, else a local one) or OK.
pub fn fence_all(p: &Platform, live: &[bool; MAX_HARTS]) -> Result<(), (&'static str, i64)> {
    let r = global_fence();
    if r.error != OK {
        return Err(("global_fence", r.error));
    }
    local_fences(p, live)
}

pub fn local_fences(p: &Platform, live: &[bool; MAX_HARTS]) -> Result<(), (&'static str, i64)> {
    for (i, &l) in live.iter().enumerate().take(p.nharts) {
        if l {
            match harts::call(p, i, call_local_fence, 0, p.ms(2000)) {
                Some(OK) => {}
                Some(e) => return Err(("local_fence", e)),
                None => return Err(("local_fence (hart did not answer)", ERR_FAILED)),
            }
        }
    }
    Ok(())
}

/// Shared between the boot hart and a secondary running a vCPU.
#[repr(C)]
struct RunReq {
    id: u64,
    vcpu: u64,
    slot: usize,
    nacl_error: i64,
    exit: Exit,
}

fn run_on_secondary(arg: u64) -> i64 {
    // SAFETY: `arg` is a `RunReq` the boot hart keeps alive until we ack.
    let req = unsafe { &mut *(arg as *mut RunReq) };
    req.nacl_error = nacl_setup_here(req.slot, false);
    if req.nacl_error != OK {
        return req.nacl_error;
    }
    req.exit = run_vcpu(req.id, req.vcpu);
    // Any host interrupt that preempted the TVM is taken here (the command
    // loop runs with interrupts enabled).
    OK
}

/// Runs the vCPU once on hart `slot` (the boot hart or a live secondary).
pub fn run_on(p: &Platform, slot: usize, id: u64, vcpu: u64) -> Result<Exit, (&'static str, i64)> {
    if slot == boot_slot(p) {
        let e = nacl_setup_here(slot, false);
        if e != OK {
            return Err(("nacl set_shmem", e));
        }
        let x = run_vcpu(id, vcpu);
        return Ok(x);
    }
    let mut req = RunReq {
        id,
        vcpu,
        slot,
        nacl_error: 0,
        exit: Exit::default(),
    };
    let r = harts::call(
        p,
        slot,
        run_on_secondary,
        (&raw mut req) as u64,
        p.ms(20_000),
    );
    match r {
        Some(OK) => Ok(req.exit),
        Some(_) => Err(("nacl set_shmem on a secondary", req.nacl_error)),
        None => Err(("secondary did not come back from run_tvm_vcpu", ERR_FAILED)),
    }
}

/// Lets the boot hart take a pending host interrupt that preempted a TVM;
/// a timer that fired is re-armed far away (as any OS would), so it stops
/// pending.
pub fn take_interrupts() {
    arch::sie_set(arch::SSIP);
    arch::interrupts_enable();
    for _ in 0..16 {
        core::hint::spin_loop();
    }
    arch::interrupts_disable();
    if arch::read_sip() & arch::STIP != 0 {
        let _ = sbi::set_timer(u64::MAX);
    }
}
