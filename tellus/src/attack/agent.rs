//! A scriptable hostile TVM ("agent") for attack tests and the fuzzer.
//!
//! The agent is a few dozen instructions of position-independent code
//! (assembled into tellus, copied into one measured page at [`CODE_GPA`];
//! the TVM runs with `vsatp` bare, so VA = GPA). It uses no memory of its
//! own and loops:
//!
//! 1. forwarded ecall `a7 = EID_AGENT, a6 = 0, a0/a1 = result of the last
//!    command`; the host answers `a0 = op, a1 = arg0`;
//! 2. forwarded ecall `a6 = 1`; the host answers `a0 = arg1, a1 = arg2`;
//! 3. runs the command (result `(0, 0)` unless said otherwise):
//!    - [`OP_LOAD`]: `a1 = *(u64 *)arg0`;
//!    - [`OP_STORE`]: `*(u64 *)arg0 = arg1`;
//!    - [`OP_COVG`]: `ecall(a7 = COVG, a6 = arg2, a0 = arg0, a1 = arg1)`,
//!      result = its a0/a1 (a successful COVG call also makes the TSM tell
//!      the host with a Notify exit; [`Agent::cmd`] resumes through it);
//!    - [`OP_FILL`]: every word of `[arg0, arg0 + arg2)` = `arg1`;
//!    - [`OP_HAMMER`]: forever { spin `arg2` iterations; `*(u64 *)arg0 =
//!      arg1` } (never reports: the host stops it with an interrupt);
//!    - anything else: nothing.
//!
//! Loads and stores that fault come to the host as guest page faults; the
//! caller of [`Agent::cmd`] decides how to serve them.

use core::arch::global_asm;

use cove_abi::{nacl, EID_COVG};
use sbi_abi::SbiRet;

use crate::arch;
use crate::console::Msg;
use crate::platform::Platform;
use crate::tee::ctx::{create, Arena, Ctx};
use crate::tee::*;

/// The agent's forwarded-ecall extension (SBI's experimental range: the
/// one a TSM forwards to the host).
pub const EID_AGENT: u64 = 0x0800_4147;
#[allow(dead_code)]
pub const OP_NOP: u64 = 0;
pub const OP_LOAD: u64 = 1;
pub const OP_STORE: u64 = 2;
pub const OP_COVG: u64 = 3;
pub const OP_FILL: u64 = 4;
pub const OP_HAMMER: u64 = 5;

/// COVG function ids.
pub const COVG_SHARE: u64 = 2;
pub const COVG_UNSHARE: u64 = 3;

/// Where the code page is mapped and the vCPU starts.
pub const CODE_GPA: u64 = 0x8000_0000;

global_asm!(
    r#"
    .section .text.tellus_agent, "ax"
    .balign 4
    .globl tellus_agent_start
    .globl tellus_agent_end
tellus_agent_start:
    li a0, 0
    li a1, 0
1:
    li a7, 0x08004147
    li a6, 0
    ecall
    mv s1, a0
    mv s2, a1
    li a7, 0x08004147
    li a6, 1
    ecall
    mv s3, a0
    mv s4, a1
    li a0, 0
    li a1, 0
    li t0, 1
    beq s1, t0, 10f
    li t0, 2
    beq s1, t0, 20f
    li t0, 3
    beq s1, t0, 30f
    li t0, 4
    beq s1, t0, 40f
    li t0, 5
    beq s1, t0, 50f
    j 1b
10:
    ld a1, 0(s2)
    j 1b
20:
    sd s3, 0(s2)
    j 1b
30:
    mv a0, s2
    mv a1, s3
    mv a6, s4
    li a7, 0x434F5647
    ecall
    j 1b
40:
    add t1, s2, s4
41:
    bgeu s2, t1, 1b
    sd s3, 0(s2)
    addi s2, s2, 8
    j 41b
50:
    mv t1, s4
51:
    beqz t1, 52f
    addi t1, t1, -1
    j 51b
52:
    sd s3, 0(s2)
    j 50b
tellus_agent_end:
    .text
"#
);

extern "C" {
    static tellus_agent_start: u8;
    static tellus_agent_end: u8;
}

/// The agent's machine code.
pub fn code() -> &'static [u8] {
    // SAFETY: both symbols delimit the code assembled above, in tellus's
    // read-only text.
    unsafe {
        let s = &raw const tellus_agent_start;
        let e = &raw const tellus_agent_end;
        core::slice::from_raw_parts(s, e as usize - s as usize)
    }
}

/// What a guest page fault handler decided.
pub enum Serve {
    /// Run the vCPU again.
    Retry,
    /// Stop the command with this message.
    Stop(Msg),
}

/// A hostile TVM driven command by command from one host hart.
pub struct Agent {
    pub id: u64,
    pub vcpu: u64,
    /// Converted pages for page-table donations and demand-zero faults.
    pub spare: [u64; 32],
    pub spare_n: usize,
    /// Page-table pages donated so far.
    pub pt_donated: u64,
    /// COVG notifications and page faults seen.
    pub notifies: u64,
    pub faults: u64,
    /// Waiting at its step-1 ecall for a command.
    ready: bool,
}

/// How to build an agent TVM.
pub struct Spec {
    /// Confidential region (GPA, length); must contain [`CODE_GPA`].
    pub region: (u64, u64),
    /// PT pages donated at creation; the rest on demand from `spare`.
    pub pt_pages: u64,
    /// Converted pages kept for PT donations / zero faults.
    pub spare: u64,
}

impl Agent {
    /// Creates, measures (the code page), finalizes an agent TVM from the
    /// converted arena `ar`; `src` is one host page for the code copy,
    /// `params` a host page for create_tvm's parameters.
    pub fn build(
        cx: &Ctx,
        ar: &mut Arena,
        params: u64,
        src: u64,
        spec: &Spec,
    ) -> Result<Agent, Msg> {
        let info = cx.info;
        let pagedir = ar.take(4, 4 * PAGE);
        let state = ar.take(info.tvm_state_pages.max(1), PAGE);
        let vstate = ar.take(info.tvm_vcpu_state_pages.max(1), PAGE);
        let code_pg = ar.take(1, PAGE);
        let mut a = Agent {
            id: 0,
            vcpu: 0,
            spare: [0; 32],
            spare_n: 0,
            pt_donated: 0,
            notifies: 0,
            faults: 0,
            ready: false,
        };
        for k in 0..spec.spare.min(32) as usize {
            a.spare[k] = ar.take(1, PAGE);
            a.spare_n += 1;
        }
        let c = code();
        zero(src, PAGE);
        // SAFETY: `src` is a host page tellus owns; the code is < 4 KiB.
        unsafe { core::ptr::copy_nonoverlapping(c.as_ptr(), src as *mut u8, c.len()) };
        let r = create(params, pagedir, state);
        if r.error != OK {
            return Err(crate::msg!("agent create_tvm: error {}", r.error));
        }
        a.id = r.value;
        let r = add_memory_region(a.id, spec.region.0, spec.region.1);
        if r.error != OK {
            return Err(crate::msg!(
                "agent add_tvm_memory_region: error {}",
                r.error
            ));
        }
        if spec.pt_pages > 0 {
            let pt = ar.take(spec.pt_pages, PAGE);
            let r = add_pt_pages(a.id, pt, spec.pt_pages);
            if r.error != OK {
                return Err(crate::msg!(
                    "agent add_tvm_page_table_pages: error {}",
                    r.error
                ));
            }
            a.pt_donated += spec.pt_pages;
        }
        let id = a.id;
        let r = a.with_pt(|| add_measured_pages(id, src, code_pg, 0, 1, CODE_GPA));
        if r.error != OK {
            return Err(crate::msg!(
                "agent add_tvm_measured_pages: error {}",
                r.error
            ));
        }
        let r = create_vcpu(id, 0, vstate);
        if r.error != OK {
            return Err(crate::msg!("agent create_tvm_vcpu: error {}", r.error));
        }
        let r = finalize_tvm(id, CODE_GPA, 0, 0);
        if r.error != OK {
            return Err(crate::msg!("agent finalize_tvm: error {}", r.error));
        }
        Ok(a)
    }

    /// Takes one spare converted page.
    pub fn take_spare(&mut self) -> Option<u64> {
        if self.spare_n == 0 {
            return None;
        }
        self.spare_n -= 1;
        Some(self.spare[self.spare_n])
    }

    /// Runs `f` (an add_* call), donating one spare page as a PT page after
    /// every OUT_OF_PTPAGES, so the pool holds only what was needed.
    pub fn with_pt(&mut self, mut f: impl FnMut() -> SbiRet) -> SbiRet {
        let mut r = f();
        while r.error == ERR_OUT_OF_PTPAGES {
            let Some(pg) = self.take_spare() else {
                return r;
            };
            let a = add_pt_pages(self.id, pg, 1);
            if a.error != OK {
                return a;
            }
            self.pt_donated += 1;
            r = f();
        }
        r
    }

    /// Serves a fault at `gpa` with a demand-zero 4 KiB page (donating PT
    /// pages as needed).
    pub fn serve_zero(&mut self, gpa: u64) -> Serve {
        let Some(z) = self.take_spare() else {
            return Serve::Stop(crate::msg!("no spare page for a zero fault at {gpa:#x}"));
        };
        let id = self.id;
        let page = gpa & !(PAGE - 1);
        let r = self.with_pt(|| add_zero_pages(id, z, 0, 1, page));
        if r.error != OK {
            return Serve::Stop(crate::msg!(
                "add_tvm_zero_pages({z:#x} -> {page:#x}) for a fault: error {}",
                r.error
            ));
        }
        Serve::Retry
    }

    /// One run on the boot hart; interrupts are taken and the run repeated.
    fn run_once(&mut self, p: &Platform) -> Result<Exit, Msg> {
        let slot = boot_slot(p);
        let e = nacl_setup_here(slot, false);
        if e != OK {
            return Err(crate::msg!("nacl set_shmem: error {e}"));
        }
        for _ in 0..10_000 {
            let x = run_vcpu(self.id, self.vcpu);
            if x.error != OK {
                return Err(crate::msg!("run_tvm_vcpu: error {}", x.error));
            }
            if x.scause & arch::SCAUSE_INTERRUPT != 0 {
                take_interrupts();
                continue;
            }
            if x.value != 0 {
                return Err(crate::msg!(
                    "agent not resumable: scause {:#x} stval {:#x}",
                    x.scause,
                    x.stval
                ));
            }
            return Ok(x);
        }
        Err(crate::msg!("10000 interrupt exits in a row"))
    }

    /// Runs the agent until its next forwarded ecall to EID_AGENT (passing
    /// through COVG notifications); page faults go to `fault`.
    fn run_to_ecall(
        &mut self,
        p: &Platform,
        fault: &mut dyn FnMut(&mut Agent, u64, u64) -> Serve,
    ) -> Result<[u64; 8], Msg> {
        let slot = boot_slot(p);
        for _ in 0..1000 {
            let x = self.run_once(p)?;
            match x.scause {
                10 => {
                    let mut a = [0u64; 8];
                    for (k, v) in a.iter_mut().enumerate() {
                        *v = nacl_gpr(slot, nacl::gpr::A0 + k);
                    }
                    if a[7] == EID_COVG {
                        self.notifies += 1;
                        continue;
                    }
                    if a[7] != EID_AGENT {
                        return Err(crate::msg!("agent made ecall eid {:#x} fid {}", a[7], a[6]));
                    }
                    return Ok(a);
                }
                20 | 21 | 23 => {
                    self.faults += 1;
                    let htval = nacl_csr(slot, nacl::csr::HTVAL);
                    let gpa = cove_abi::covh::fault_gpa(htval, x.stval);
                    match fault(self, x.scause, gpa) {
                        Serve::Retry => continue,
                        Serve::Stop(m) => return Err(m),
                    }
                }
                c => {
                    return Err(crate::msg!(
                        "agent exit scause {c:#x} stval {:#x} htval {:#x}",
                        x.stval,
                        nacl_csr(slot, nacl::csr::HTVAL)
                    ))
                }
            }
        }
        Err(crate::msg!("agent: 1000 exits without reaching its ecall"))
    }

    fn answer(p: &Platform, a0: u64, a1: u64) {
        let slot = boot_slot(p);
        nacl_set_gpr(slot, nacl::gpr::A0, a0);
        nacl_set_gpr(slot, nacl::gpr::A1, a1);
    }

    /// Runs the agent to its first "ready" ecall.
    pub fn start(&mut self, p: &Platform) -> Result<(), Msg> {
        let a = self.run_to_ecall(p, &mut |_, c, g| {
            Serve::Stop(crate::msg!("agent start: fault {c} at {g:#x}"))
        })?;
        if a[6] != 0 {
            return Err(crate::msg!("agent started at step {}", a[6]));
        }
        self.ready = true;
        Ok(())
    }

    /// Runs one command; returns the agent's (a0, a1) result.
    pub fn cmd(
        &mut self,
        p: &Platform,
        op: u64,
        args: [u64; 3],
        fault: &mut dyn FnMut(&mut Agent, u64, u64) -> Serve,
    ) -> Result<(i64, u64), Msg> {
        if !self.ready {
            return Err(crate::msg!("agent not waiting for a command"));
        }
        self.ready = false;
        Self::answer(p, op, args[0]);
        let a = self.run_to_ecall(p, fault)?;
        if a[6] != 1 {
            return Err(crate::msg!("agent at step {} (want 1)", a[6]));
        }
        Self::answer(p, args[1], args[2]);
        let a = self.run_to_ecall(p, fault)?;
        if a[6] != 0 {
            return Err(crate::msg!("agent at step {} (want 0)", a[6]));
        }
        self.ready = true;
        Ok((a[0] as i64, a[1]))
    }

    /// A command where any guest page fault is an error.
    pub fn cmd_nofault(
        &mut self,
        p: &Platform,
        op: u64,
        args: [u64; 3],
    ) -> Result<(i64, u64), Msg> {
        self.cmd(p, op, args, &mut |_, c, g| {
            Serve::Stop(crate::msg!("unexpected guest fault (scause {c}) at {g:#x}"))
        })
    }

    /// COVG call `fid(a0, a1)` made by the TVM.
    pub fn covg(&mut self, p: &Platform, fid: u64, a0: u64, a1: u64) -> Result<i64, Msg> {
        self.cmd_nofault(p, OP_COVG, [a0, a1, fid]).map(|r| r.0)
    }
}
