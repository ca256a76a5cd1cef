//! Per-hart state, secondary harts' life (started via HSM) and the tiny
//! mailbox protocol the boot hart uses to drive them.

use core::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering::*};

use crate::platform::{Platform, MAX_HARTS};
use crate::{arch, sbi};

const STACK_SIZE: usize = 16 * 1024;

pub const CMD_NONE: u64 = 0;
/// Acknowledge (proves the hart is alive and serving).
pub const CMD_PING: u64 = 1;
/// Call hart_stop (does not return on success).
pub const CMD_STOP: u64 = 2;
/// Call `call_fn(call_arg)` (a `fn(u64) -> i64`) and report its result.
pub const CMD_CALL: u64 = 3;

/// One per hart, indexed like `Platform::harts`. `tp` points at the
/// current hart's slot (null on the boot hart before the FDT is parsed).
/// `stack_top` must stay the first field: the secondary entry loads sp
/// from offset 0 of its opaque argument.
#[repr(C, align(64))]
pub struct HartSlot {
    pub stack_top: AtomicU64,
    pub expected_hartid: AtomicU64,
    pub reported_hartid: AtomicU64,
    pub reported_opaque: AtomicU64,
    pub boot_count: AtomicU64,
    pub ipi_count: AtomicU64,
    pub timer_count: AtomicU64,
    pub timer_time: AtomicU64,
    pub cmd: AtomicU64,
    pub cmd_seq: AtomicU64,
    pub ack_seq: AtomicU64,
    pub cmd_result: AtomicI64,
    pub expect_fault: AtomicBool,
    pub fault_taken: AtomicBool,
    pub fault_cause: AtomicU64,
    pub fault_tval: AtomicU64,
    pub fault_epc: AtomicU64,
    pub in_trap: AtomicBool,
    pub call_fn: AtomicU64,
    pub call_arg: AtomicU64,
}

impl HartSlot {
    const fn new() -> Self {
        HartSlot {
            stack_top: AtomicU64::new(0),
            expected_hartid: AtomicU64::new(u64::MAX),
            reported_hartid: AtomicU64::new(u64::MAX),
            reported_opaque: AtomicU64::new(0),
            boot_count: AtomicU64::new(0),
            ipi_count: AtomicU64::new(0),
            timer_count: AtomicU64::new(0),
            timer_time: AtomicU64::new(0),
            cmd: AtomicU64::new(CMD_NONE),
            cmd_seq: AtomicU64::new(0),
            ack_seq: AtomicU64::new(0),
            cmd_result: AtomicI64::new(0),
            expect_fault: AtomicBool::new(false),
            fault_taken: AtomicBool::new(false),
            fault_cause: AtomicU64::new(0),
            fault_tval: AtomicU64::new(0),
            fault_epc: AtomicU64::new(0),
            in_trap: AtomicBool::new(false),
            call_fn: AtomicU64::new(0),
            call_arg: AtomicU64::new(0),
        }
    }

    /// Value passed as `opaque` to hart_start: the slot's address.
    pub fn opaque(&self) -> u64 {
        self as *const HartSlot as u64
    }
}

#[allow(clippy::declare_interior_mutable_const)]
const SLOT_INIT: HartSlot = HartSlot::new();
pub static SLOTS: [HartSlot; MAX_HARTS] = [SLOT_INIT; MAX_HARTS];
/// Used by the trap handler when `tp` is not set up yet.
pub static FALLBACK_SLOT: HartSlot = HartSlot::new();

#[repr(C, align(16))]
struct Stacks([[u8; STACK_SIZE]; MAX_HARTS]);
static mut STACKS: Stacks = Stacks([[0; STACK_SIZE]; MAX_HARTS]);

/// Prepares all slots (expected hart ids and stacks) and points `tp` at the
/// boot hart's slot.
pub fn init(p: &Platform) {
    let base = (&raw mut STACKS) as u64;
    for (i, &h) in p.hart_ids().iter().enumerate() {
        SLOTS[i].expected_hartid.store(h, Relaxed);
        SLOTS[i]
            .stack_top
            .store(base + ((i + 1) * STACK_SIZE) as u64, Relaxed);
    }
    let me = p.slot_of(p.boot_hartid).unwrap_or(0);
    SLOTS[me].reported_hartid.store(p.boot_hartid, Relaxed);
    arch::set_tp(SLOTS[me].opaque());
}

/// The current hart's slot.
pub fn current() -> &'static HartSlot {
    let tp = arch::read_tp();
    let first = SLOTS.as_ptr() as u64;
    let size = core::mem::size_of::<HartSlot>() as u64;
    if tp >= first && tp < first + size * MAX_HARTS as u64 && (tp - first).is_multiple_of(size) {
        &SLOTS[((tp - first) / size) as usize]
    } else {
        &FALLBACK_SLOT
    }
}

fn slot_from_opaque(opaque: u64) -> Option<&'static HartSlot> {
    SLOTS.iter().find(|s| s.opaque() == opaque)
}

/// Rust entry of secondary harts (from `tellus_secondary_entry`).
#[no_mangle]
extern "C" fn tellus_secondary_main(hartid: u64, opaque: u64) -> ! {
    let Some(slot) = slot_from_opaque(opaque) else {
        // Not one of ours: nothing sane to do; park.
        loop {
            arch::wfi();
        }
    };
    slot.reported_hartid.store(hartid, Relaxed);
    slot.reported_opaque.store(opaque, Relaxed);
    // Serve only commands posted from now on.
    let mut seen = slot.cmd_seq.load(Acquire);
    slot.ack_seq.store(seen, Relaxed);
    slot.boot_count.fetch_add(1, Release);

    arch::sie_set(arch::SSIP);
    loop {
        arch::interrupts_disable();
        let seq = slot.cmd_seq.load(Acquire);
        if seq != seen {
            arch::interrupts_enable();
            seen = seq;
            let result = match slot.cmd.load(Acquire) {
                CMD_PING => 0,
                CMD_STOP => {
                    arch::interrupts_disable();
                    arch::sie_clear(arch::SSIP | arch::STIP);
                    // On success this never returns; the hart restarts at
                    // the secondary entry on the next hart_start.
                    let r = sbi::hart_stop();
                    arch::sie_set(arch::SSIP);
                    arch::interrupts_enable();
                    r.error
                }
                CMD_CALL => {
                    let f = slot.call_fn.load(Acquire);
                    // SAFETY: `call` stores only `fn(u64) -> i64` pointers.
                    let f: fn(u64) -> i64 = unsafe { core::mem::transmute(f as usize) };
                    f(slot.call_arg.load(Acquire))
                }
                _ => -1,
            };
            slot.cmd_result.store(result, Relaxed);
            slot.ack_seq.store(seq, Release);
            continue;
        }
        // A wake-up interrupt pending here makes wfi return at once (it is
        // enabled in sie); it is then taken when SIE is set again.
        arch::wfi();
        arch::interrupts_enable();
    }
}

/// Posts `cmd` to the hart in `slot` and wakes it with an IPI. Returns the
/// sequence number to wait for with `wait_ack`.
pub fn post(slot: &HartSlot, hartid: u64, cmd: u64) -> u64 {
    slot.cmd.store(cmd, Relaxed);
    let seq = slot.cmd_seq.fetch_add(1, AcqRel) + 1;
    sbi::send_ipi(1, hartid);
    seq
}

/// Waits until `cond` holds or `ticks` of the `time` CSR have elapsed.
pub fn wait_for(ticks: u64, mut cond: impl FnMut() -> bool) -> bool {
    let start = arch::read_time();
    loop {
        if cond() {
            return true;
        }
        if arch::read_time().wrapping_sub(start) > ticks {
            return cond();
        }
        core::hint::spin_loop();
    }
}

/// Runs `f(arg)` on the (started, serving) secondary at `slot_idx` and
/// waits up to `ticks` for its result.
pub fn call(p: &Platform, slot_idx: usize, f: fn(u64) -> i64, arg: u64, ticks: u64) -> Option<i64> {
    let seq = call_async(p, slot_idx, f, arg);
    wait_ack(&SLOTS[slot_idx], seq, ticks)
}

/// Starts `f(arg)` on the secondary at `slot_idx` without waiting; returns
/// the sequence number for `wait_ack` (the caller keeps `arg` alive).
pub fn call_async(p: &Platform, slot_idx: usize, f: fn(u64) -> i64, arg: u64) -> u64 {
    let slot = &SLOTS[slot_idx];
    slot.call_fn.store(f as usize as u64, Relaxed);
    slot.call_arg.store(arg, Relaxed);
    post(slot, p.harts[slot_idx], CMD_CALL)
}

pub fn wait_ack(slot: &HartSlot, seq: u64, ticks: u64) -> Option<i64> {
    if wait_for(ticks, || slot.ack_seq.load(Acquire) >= seq) {
        Some(slot.cmd_result.load(Relaxed))
    } else {
        None
    }
}

/// hart_start of the secondary at `slot_idx` with its slot as opaque.
pub fn start(p: &Platform, slot_idx: usize) -> sbi_abi::SbiRet {
    let slot = &SLOTS[slot_idx];
    // SAFETY: `tellus_secondary_entry` is tellus's secondary entry point
    // and expects its slot as opaque, which holds a valid stack top.
    unsafe {
        sbi::hart_start(
            p.harts[slot_idx],
            arch::secondary_entry_addr(),
            slot.opaque(),
        )
    }
}
