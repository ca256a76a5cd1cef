//! Shared TVMs every hart hits at once: runs of their vCPUs, tvm_fence,
//! destroy (the winner rebuilds it from the slot's own pages), calls that
//! must fail on a finalized TVM, and private pages lent to them. The check
//! for these is "one of the codes some interleaving allows".
//!
//! A slot's pages (one block) belong to whoever holds its TVM: nobody while
//! it is published, the hart whose destroy_tvm returned OK while it
//! rebuilds. `gen` counts destroys, so a page lent to generation g is
//! converted again once `gen > g`.

use super::model::{Model, Op, Pg, Want, REGION, REGION_PAGES};
use super::ERR_BUSY;
use crate::tee::ctx::write_params;
use crate::tee::*;

pub const NSHARED: usize = 2;
/// PT pages each shared TVM gets up front (enough for the whole region).
const PT_PAGES: u64 = 4;
/// The shared TVMs have vCPU 0 (started at finalize) and vCPU 1 (never).
const VCPUS: u64 = 2;

#[derive(Clone, Copy)]
pub struct Slot {
    /// Published TVM id, 0 while there is none (destroyed, rebuilding).
    pub id: u64,
    pub gen: u32,
    /// First page of the block: directory, state, vCPUs, PT pages, code.
    pub block: u64,
}

pub static SLOTS: [spin::Mutex<Slot>; NSHARED] = [const {
    spin::Mutex::new(Slot {
        id: 0,
        gen: 0,
        block: 0,
    })
}; NSHARED];

/// The guest of the shared TVMs:
/// `1: mv a7, a0; mv a6, a1; ecall; lui a7, 0x08000; ecall; j 1b`.
/// It makes the ecall the host put in a0/a1 (eid, fid) of its NACL area at
/// the previous exit -- COVG calls the TSM handles (and mostly refuses),
/// SBI calls the TSM answers, or a forwarded one, which exits -- and then
/// a forwarded call (EID 0x0800_0000), so every run ends in an exit. Never
/// faults.
pub const GUEST: [u32; 6] = [
    0x0005_0893,
    0x0005_8813,
    0x0000_0073,
    0x0800_08b7,
    0x0000_0073,
    0xfedf_f06f,
];

/// Pages of one slot's block.
pub fn block_pages(info: &cove_abi::TsmInfo) -> u64 {
    let sp = info.tvm_state_pages.max(1);
    let vp = info.tvm_vcpu_state_pages.max(1);
    4 + sp + VCPUS * vp + PT_PAGES + 1
}

pub fn generations() -> [u32; NSHARED] {
    let mut g = [0; NSHARED];
    for (s, v) in g.iter_mut().enumerate() {
        *v = SLOTS[s].lock().gen;
    }
    g
}

fn published(s: usize) -> (u64, u32) {
    let sl = SLOTS[s].lock();
    (sl.id, sl.gen)
}

impl Model {
    /// Builds a shared TVM in slot `s` from its block (all converted pages
    /// only we hold) and publishes it. Every call must succeed.
    pub fn build_shared(&mut self, s: usize, gsrc: u64) -> bool {
        let info = self.cfg.info;
        let sp = info.tvm_state_pages.max(1);
        let vp = info.tvm_vcpu_state_pages.max(1);
        let block = SLOTS[s].lock().block;
        let state = block + 4 * PAGE;
        let vcpus = state + sp * PAGE;
        let pt = vcpus + VCPUS * vp * PAGE;
        let code = pt + PT_PAGES * PAGE;
        write_params(self.params, block, state);
        let r = create_tvm(self.params, 16);
        if !self.expect("create_tvm (shared)", r, Want::Ok) {
            return false;
        }
        let id = r.value;
        self.seen_ids += 1;
        let r = add_memory_region(id, REGION, REGION_PAGES * PAGE);
        if !self.expect("add_tvm_memory_region (shared)", r, Want::Ok) {
            return false;
        }
        let r = add_pt_pages(id, pt, PT_PAGES);
        if !self.expect("add_tvm_page_table_pages (shared)", r, Want::Ok) {
            return false;
        }
        let r = add_measured_pages(id, gsrc, code, 0, 1, REGION);
        if !self.expect("add_tvm_measured_pages (shared)", r, Want::Ok) {
            return false;
        }
        for v in 0..VCPUS {
            let r = create_vcpu(id, v, vcpus + v * vp * PAGE);
            if !self.expect("create_tvm_vcpu (shared)", r, Want::Ok) {
                return false;
            }
        }
        if !self.expect(
            "finalize_tvm (shared)",
            finalize_tvm(id, REGION, 0, 0),
            Want::Ok,
        ) {
            return false;
        }
        SLOTS[s].lock().id = id;
        true
    }

    fn shared_slot(&mut self) -> usize {
        self.shared_calls += 1;
        self.rng.below(NSHARED as u64) as usize
    }

    /// run_tvm_vcpu on a shared TVM: an exit (always resumable: an ecall or
    /// an interrupt), BUSY (its vCPU runs on another hart) or INVALID_PARAM
    /// (destroyed meanwhile, or vCPU 1 which never starts).
    pub fn sh_run(&mut self) {
        self.op(Op::SharedRun);
        let s = self.shared_slot();
        let (id, _) = published(s);
        let vcpu = if self.rng.chance(10) { 1 } else { 0 };
        // What the guest calls next: mostly a plain exit to the host,
        // sometimes COVG (any function), HSM or NACL (which a TVM may not).
        let (eid, fid) = match self.rng.below(8) {
            0 | 1 => (
                cove_abi::EID_COVG,
                cove_abi::CovgFunction::ALL
                    [self.rng.below(cove_abi::CovgFunction::ALL.len() as u64) as usize]
                    .fid(),
            ),
            2 => (sbi_abi::hsm::EID_HSM as u64, self.rng.below(4)),
            3 => (cove_abi::EID_NACL, self.rng.below(6)),
            _ => (0x0A00_0000 + self.rng.below(16), self.rng.below(4)),
        };
        nacl_set_gpr(self.hart, cove_abi::nacl::gpr::A0, eid);
        nacl_set_gpr(self.hart, cove_abi::nacl::gpr::A1, fid);
        let mut x = run_vcpu(id, vcpu);
        let mut n = 0;
        while x.error == OK && x.scause & crate::arch::SCAUSE_INTERRUPT != 0 && n < 100 {
            take_interrupts();
            x = run_vcpu(id, vcpu);
            n += 1;
            self.count(1);
        }
        if self.expect(
            "run_tvm_vcpu (shared)",
            x.into_ret(),
            Want::OneOf(&[OK, ERR_BUSY, ERR_INVALID_PARAM]),
        ) {
            let irq = x.scause & crate::arch::SCAUSE_INTERRUPT != 0;
            if x.value != 0 || !(irq || x.scause == 10) {
                self.mismatch(format_args!(
                    "run_tvm_vcpu (shared {id:#x}): exit scause {:#x} stval {:#x} resumable {}",
                    x.scause,
                    x.stval,
                    x.value == 0
                ));
            }
        }
    }

    /// tvm_fence on a shared TVM: OK, or INVALID_PARAM if destroyed.
    pub fn sh_fence(&mut self) {
        self.op(Op::SharedFence);
        let s = self.shared_slot();
        let (id, _) = published(s);
        self.expect(
            "tvm_fence (shared)",
            tvm_fence(id),
            Want::OneOf(&[OK, ERR_INVALID_PARAM]),
        );
    }

    /// destroy_tvm on a shared TVM: OK (we won: rebuild it), BUSY (a vCPU
    /// runs) or INVALID_PARAM (someone else destroyed it first).
    pub fn sh_destroy(&mut self) {
        self.op(Op::SharedDestroy);
        let s = self.shared_slot();
        let (id, _) = published(s);
        if id == 0 {
            return;
        }
        let r = destroy_tvm(id);
        if !self.expect(
            "destroy_tvm (shared)",
            r,
            Want::OneOf(&[OK, ERR_BUSY, ERR_INVALID_PARAM]),
        ) {
            return;
        }
        {
            let mut sl = SLOTS[s].lock();
            if sl.id != id {
                drop(sl);
                self.mismatch(format_args!(
                    "destroy_tvm (shared {id:#x}) returned OK for a TVM already gone"
                ));
                return;
            }
            sl.id = 0;
            sl.gen += 1;
        }
        let gsrc = super::GSRC.load(core::sync::atomic::Ordering::Acquire);
        self.build_shared(s, gsrc);
    }

    /// Calls a finalized TVM must refuse, whatever else happens to it
    /// (INVALID_PARAM either way), with one of our converted pages.
    pub fn sh_neg(&mut self) {
        self.op(Op::SharedNeg);
        let s = self.shared_slot();
        let (id, _) = published(s);
        let Some(i) = self.find(1, Pg::Unassigned, 1) else {
            return;
        };
        let page = self.addr(i);
        let gpa = REGION + (1 + self.rng.below(REGION_PAGES - 1)) * PAGE;
        let (what, r) = match self.rng.below(4) {
            0 => ("create_tvm_vcpu (shared)", create_vcpu(id, 2, page)),
            1 => (
                "add_tvm_memory_region (shared)",
                add_memory_region(id, REGION + REGION_PAGES * PAGE, PAGE),
            ),
            2 => ("finalize_tvm (shared)", finalize_tvm(id, REGION, 0, 0)),
            _ => (
                "add_tvm_measured_pages (shared)",
                add_measured_pages(id, self.src_page(), page, 0, 1, gpa),
            ),
        };
        if r.error == OK {
            self.pg[i] = Pg::Lost;
        }
        self.expect(what, r, Want::Err(ERR_INVALID_PARAM));
    }

    /// Lends one of our converted pages to a shared TVM as a zero page or
    /// a PT page. Zero page: OK, OUT_OF_PTPAGES, INVALID_ADDRESS (that GPA
    /// is mapped already) or INVALID_PARAM (destroyed); PT page: OK or
    /// INVALID_PARAM.
    pub fn sh_lend(&mut self) {
        self.op(Op::SharedLend);
        let s = self.shared_slot();
        let (id, gen) = published(s);
        let Some(i) = self.find(1, Pg::Unassigned, 1) else {
            return;
        };
        let page = self.addr(i);
        let lent = if self.rng.chance(20) {
            let r = add_pt_pages(id, page, 1);
            self.expect(
                "add_tvm_page_table_pages (shared)",
                r,
                Want::OneOf(&[OK, ERR_INVALID_PARAM]),
            )
        } else {
            let gpa = REGION + (1 + self.rng.below(REGION_PAGES - 1)) * PAGE;
            let r = add_zero_pages(id, page, 0, 1, gpa);
            self.expect(
                "add_tvm_zero_pages (shared)",
                r,
                Want::OneOf(&[
                    OK,
                    ERR_OUT_OF_PTPAGES,
                    ERR_INVALID_ADDRESS,
                    ERR_INVALID_PARAM,
                ]),
            )
        };
        if lent {
            self.pg[i] = Pg::Lent(s as u8, gen);
        }
    }

    fn src_page(&self) -> u64 {
        super::GSRC.load(core::sync::atomic::Ordering::Acquire)
    }
}
