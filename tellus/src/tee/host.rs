//! The host side of a TVM run that drives guestvm: forwarded ecalls
//! (console, shared-region declarations, shutdown), demand-zero / shared /
//! MMIO faults, and runs rotating over the live harts.
// `Stop` carries a fixed-size message: tellus has no allocator.
#![allow(clippy::result_large_err)]

use core::sync::atomic::Ordering::*;

use cove_abi::covi::CoviFunction;
use cove_abi::{nacl, EID_COVG};
use sbi_abi::SbiRet;

use super::calls::*;
use super::covi_host::covi_on;
use super::harts::{boot_slot, run_on, take_interrupts};
use super::nacl::{
    nacl_console_byte, nacl_csr, nacl_ecall_args, nacl_gpr, nacl_set_gpr, nacl_setup_here,
};
use super::pool::{host_page_ok, rd, wr};
use super::proto;
use super::run::{run_vcpu_regcheck, Exit, RegCheck, REGCHECK_VBYTES};
use crate::arch;
use crate::platform::{Platform, MAX_HARTS};

/// What the host knows about one TVM while running it.
pub struct TvmHost {
    pub id: u64,
    /// Converted 4 KiB pages for demand-zero faults.
    pub zero_pages: [u64; 64],
    pub zero_n: usize,
    /// A converted 2 MiB-aligned 2 MiB block for the 2 MiB zero range.
    pub zero_2m: Option<u64>,
    pub zero_2m_used: bool,
    /// Converted pages for OUT_OF_PTPAGES retries.
    pub spare_pt: [u64; 16],
    pub spare_pt_n: usize,
    /// Host pages for shared mappings (console, exchange).
    pub host_pages: [u64; 4],
    pub host_pages_used: usize,
    /// (gpa, host page) of shared pages added.
    pub shared_maps: [(u64, u64); 4],
    pub shared_n: usize,
    /// The exchange page the guest unshared (the host keeps watching it).
    pub old_exchange_page: Option<u64>,
    /// Declared by the guest through COVG.
    pub shared_regions: [(u64, u64); 4],
    pub mmio: Option<(u64, u64)>,
    pub mmio_good: u64,
    pub mmio_bad: u64,
    /// Guest console line buffer.
    line: [u8; 200],
    line_len: usize,
    pub guest_passed: u32,
    pub guest_failed: u32,
    pub guest_lines: u32,
    /// SRST reason when the guest shut down.
    pub shutdown: Option<u64>,
    pub exits: u64,
    pub interrupts: u64,
    pub zero_faults: u64,
    /// Shared pages the TSM had already unmapped when the guest unshared.
    pub unshared_by_tsm: u64,
    pub hart_runs: [u64; MAX_HARTS],
    /// Echo guest output and count its PASS/FAIL lines into tellus's totals.
    pub echo: bool,
    /// A vCPU the guest started with SBI HSM (the TSM told us): run it.
    pub start_vcpu: Option<u64>,
    /// The vCPU we are running for the guest called hart_stop.
    pub vcpu_stopped: bool,
    /// Exits of secondary vCPUs run this way.
    pub secondary_exits: u64,
    /// Check, on the next run on the boot hart, that the host's FP and
    /// vector registers survive it.
    pub regcheck: bool,
    pub regcheck_done: bool,
    /// First register that came back changed: (name, index, got, want).
    pub regcheck_fail: Option<(&'static str, usize, u64, u64)>,
    /// COVI: the guest file (hgeie mask) vCPU 1 is bound to when guestvm
    /// asks (`FID_COVI_BIND_VCPU1`); 0: no COVI.
    pub covi_vcpu1_mask: u64,
    /// COVI: where `FID_COVI_REBIND` moves vCPU 0 (hart slot, file mask).
    pub covi_rebind_to: Option<(usize, u64)>,
    /// Run vCPU 0 on this hart slot only (it is bound there).
    pub pin: Option<usize>,
}

static REGCHECK: spin::Mutex<RegCheck> = spin::Mutex::new(RegCheck {
    f_in: [0; 32],
    f_out: [0; 32],
    v_in: [0; REGCHECK_VBYTES / 8],
    v_out: [0; REGCHECK_VBYTES / 8],
});

/// Why a run stopped.
pub enum Stop {
    /// The guest shut down (SRST) with this reason.
    Shutdown(u64),
    /// Something went wrong; a short description.
    Error(crate::console::Msg),
}

macro_rules! stop {
    ($($arg:tt)*) => { Stop::Error(crate::msg!($($arg)*)) };
}

impl TvmHost {
    pub fn new(id: u64) -> TvmHost {
        TvmHost {
            id,
            zero_pages: [0; 64],
            zero_n: 0,
            zero_2m: None,
            zero_2m_used: false,
            spare_pt: [0; 16],
            spare_pt_n: 0,
            host_pages: [0; 4],
            host_pages_used: 0,
            shared_maps: [(0, 0); 4],
            shared_n: 0,
            old_exchange_page: None,
            shared_regions: [(0, 0); 4],
            mmio: None,
            mmio_good: 0,
            mmio_bad: 0,
            line: [0; 200],
            line_len: 0,
            guest_passed: 0,
            guest_failed: 0,
            guest_lines: 0,
            shutdown: None,
            exits: 0,
            interrupts: 0,
            zero_faults: 0,
            unshared_by_tsm: 0,
            hart_runs: [0; MAX_HARTS],
            echo: true,
            start_vcpu: None,
            vcpu_stopped: false,
            secondary_exits: 0,
            regcheck: false,
            regcheck_done: false,
            regcheck_fail: None,
            covi_vcpu1_mask: 0,
            covi_rebind_to: None,
            pin: None,
        }
    }

    fn host_page_for(&self, gpa: u64) -> Option<u64> {
        let page = gpa & !(PAGE - 1);
        self.shared_maps[..self.shared_n]
            .iter()
            .find(|&&(g, _)| g == page)
            .map(|&(_, h)| h + (gpa - page))
    }

    fn in_shared_region(&self, gpa: u64) -> bool {
        self.shared_regions
            .iter()
            .any(|&(g, l)| l != 0 && gpa >= g && gpa < g + l)
    }

    fn guest_byte(&mut self, b: u8) {
        if b == b'\n' || self.line_len == self.line.len() {
            let line = core::str::from_utf8(&self.line[..self.line_len])
                .unwrap_or("guestvm: <non-utf8 line>");
            self.guest_lines += 1;
            if line.starts_with("PASS: ") {
                self.guest_passed += 1;
            } else if line.starts_with("FAIL: ") {
                self.guest_failed += 1;
            }
            if self.echo {
                println!("{}", line);
                if line.starts_with("PASS: ") {
                    crate::PASSED.fetch_add(1, Relaxed);
                } else if line.starts_with("FAIL: ") {
                    crate::FAILED.fetch_add(1, Relaxed);
                }
            }
            self.line_len = 0;
            if b == b'\n' {
                return;
            }
        }
        self.line[self.line_len] = b;
        self.line_len += 1;
    }

    /// Handles a forwarded ecall; returns the (error, value) to hand back,
    /// or a stop.
    fn ecall(&mut self, slot: usize, a: &[u64; 8]) -> Result<(i64, u64), Stop> {
        let (eid, fid) = (a[7], a[6]);
        match eid {
            0x4442_434E => match fid {
                // DBCN console_write, served by the TSM: a0 bytes wait in
                // the NACL scratch of the hart that took the exit.
                0 => {
                    let n = a[0] as usize;
                    if n > nacl::CONSOLE_BYTES_MAX {
                        return Err(stop!("console exit with {n} bytes"));
                    }
                    for k in 0..n {
                        self.guest_byte(nacl_console_byte(slot, k));
                    }
                    Ok((OK, n as u64))
                }
                2 => {
                    self.guest_byte(a[0] as u8);
                    Ok((OK, 0))
                }
                _ => Ok((ERR_NOT_SUPPORTED, 0)),
            },
            0x5352_5354 => Err(Stop::Shutdown(a[1])),
            // HSM from the guest: the TSM already changed the vCPU's state
            // and tells us so we schedule it (its answer to the guest is
            // final; ours is ignored).
            0x0048_534D => {
                match fid {
                    0 => self.start_vcpu = Some(a[0]),
                    1 => self.vcpu_stopped = true,
                    _ => {}
                }
                Ok((OK, 0))
            }
            EID_COVG => {
                let (gpa, len) = (a[0], a[1]);
                let aligned = gpa % PAGE == 0 && len % PAGE == 0 && len != 0;
                let in_region = gpa >= proto::REGION_GPA
                    && gpa
                        .checked_add(len)
                        .is_some_and(|e| e <= proto::REGION_GPA + proto::REGION_LEN);
                match fid {
                    0 if aligned => self.mmio = Some((gpa, len)),
                    1 if aligned => self.mmio = None,
                    2 if aligned && in_region => {
                        if let Some(s) = self.shared_regions.iter_mut().find(|s| s.1 == 0) {
                            *s = (gpa, len);
                        }
                    }
                    3 if aligned && in_region => self.unshare(gpa, len)?,
                    _ => {}
                }
                Ok((OK, 0))
            }
            proto::EID_GVM => match fid {
                proto::FID_NOP => Ok((OK, 0)),
                proto::FID_SHARED_CHECK => {
                    let Some(h) = self.host_page_for(proto::SHARED_GPA) else {
                        return Ok((ERR_FAILED, 0));
                    };
                    let seed = a[0];
                    let mut bad = 0;
                    for i in 0..proto::HALF_WORDS {
                        if rd(h + 8 * i) != proto::pattern(seed, i) {
                            bad += 1;
                        }
                        wr(h + 8 * (proto::HALF_WORDS + i), proto::pattern(!seed, i));
                    }
                    Ok((OK, bad))
                }
                proto::FID_UNSHARED_CHECK => {
                    let Some(h) = self.old_exchange_page else {
                        return Ok((ERR_FAILED, 0));
                    };
                    let seed = a[0];
                    let seen = (0..proto::HALF_WORDS)
                        .filter(|&i| rd(h + 8 * i) == proto::pattern(seed, i))
                        .count();
                    Ok((OK, seen as u64))
                }
                proto::FID_MMIO_STORES => Ok((
                    if self.mmio_bad == 0 { OK } else { ERR_FAILED },
                    self.mmio_good,
                )),
                proto::FID_COVI_INJECT => {
                    let r = covi(CoviFunction::InjectTvmCpu, [self.id, 0, a[0], 0, 0, 0]);
                    Ok((OK, r.error as u64))
                }
                proto::FID_COVI_WAKE_CHECK if self.covi_vcpu1_mask != 0 => {
                    use cove_abi::covi::wake;
                    let mask =
                        crate::sbi::call(wake::EID_SALUS_COVI_WAKE, wake::FID_TAKE_WAKE, [0; 6])
                            .value;
                    let msi = arch::imsic_claim();
                    // vCPU 0's own file may have woken us too (an injection
                    // while it was not running): vCPU 1's must be there.
                    let ok = mask & self.covi_vcpu1_mask != 0 && msi == proto::COVI_HOST_WAKE_MSI;
                    Ok((OK, if ok { 0 } else { mask << 32 | msi }))
                }
                proto::FID_COVI_REBIND => {
                    let (Some((to, mask)), Some(p)) = (self.covi_rebind_to, crate::the_platform())
                    else {
                        return Ok((ERR_NOT_SUPPORTED, 0));
                    };
                    let id = self.id;
                    let steps = [
                        covi_on(p, to, CoviFunction::RebindAiaImsicBegin, [id, 0, mask]),
                        covi_call(CoviFunction::InjectTvmCpu, id, 0, proto::COVI_ALLOWED_ID),
                        tvm_fence(id).error,
                        covi_call(CoviFunction::RebindAiaImsicClone, id, 0, 0),
                        covi_call(CoviFunction::InjectTvmCpu, id, 0, proto::COVI_DENIED_ID),
                        covi_on(p, to, CoviFunction::RebindAiaImsicEnd, [id, 0, 0]),
                    ];
                    let bad = steps.iter().copied().find(|&e| e != OK).unwrap_or(OK);
                    if bad == OK {
                        self.pin = Some(to);
                    }
                    Ok((OK, bad as u64))
                }
                proto::FID_COVI_BIND_VCPU1 if self.covi_vcpu1_mask != 0 => {
                    let m = self.covi_vcpu1_mask;
                    let r = covi(CoviFunction::BindAiaImsic, [self.id, 1, m, 0, 0, 0]);
                    Ok((OK, r.error as u64))
                }
                _ => Ok((ERR_NOT_SUPPORTED, 0)),
            },
            _ => Ok((ERR_NOT_SUPPORTED, 0)),
        }
    }

    /// The guest unshared `[gpa, gpa+len)`: invalidate, fence and remove the
    /// shared pages there (spec: the vCPU is blocked until then).
    fn unshare(&mut self, gpa: u64, len: u64) -> Result<(), Stop> {
        for s in self.shared_regions.iter_mut() {
            if s.0 == gpa && s.1 == len {
                *s = (0, 0);
            }
        }
        let mut k = 0;
        while k < self.shared_n {
            let (g, h) = self.shared_maps[k];
            if g >= gpa && g < gpa + len {
                // Spec: invalidate, fence, remove. A TSM may also unmap the
                // shared page itself at unshare (Salus does): then the page
                // is no longer mapped (INVALID_ADDRESS) and must already be
                // plain host memory again.
                let r = tvm_invalidate(self.id, g, PAGE);
                if r.error == ERR_INVALID_ADDRESS && host_page_ok(h) {
                    self.unshared_by_tsm += 1;
                } else {
                    if r.error != OK {
                        return Err(stop!(
                            "unshare: tvm_invalidate_pages({g:#x}): error {}",
                            r.error
                        ));
                    }
                    let r = tvm_fence(self.id);
                    if r.error != OK {
                        return Err(stop!("unshare: tvm_fence: error {}", r.error));
                    }
                    let r = tvm_remove(self.id, g, PAGE);
                    if r.error != OK {
                        return Err(stop!(
                            "unshare: tvm_remove_pages({g:#x}): error {}",
                            r.error
                        ));
                    }
                }
                if g == proto::SHARED_GPA {
                    self.old_exchange_page = Some(h);
                }
                self.shared_maps[k] = self.shared_maps[self.shared_n - 1];
                self.shared_n -= 1;
            } else {
                k += 1;
            }
        }
        Ok(())
    }

    fn add_with_pt_retry(&mut self, mut f: impl FnMut() -> SbiRet) -> SbiRet {
        let mut r = f();
        while r.error == ERR_OUT_OF_PTPAGES && self.spare_pt_n > 0 {
            self.spare_pt_n -= 1;
            let pt = self.spare_pt[self.spare_pt_n];
            let a = add_pt_pages(self.id, pt, 1);
            if a.error != OK {
                return a;
            }
            r = f();
        }
        r
    }

    fn page_fault(&mut self, slot: usize, cause: u64, gpa: u64) -> Result<(), Stop> {
        let id = self.id;
        if let Some((mg, ml)) = self.mmio {
            if gpa >= mg && gpa < mg + ml && cause != 20 {
                let htinst = nacl_csr(slot, nacl::csr::HTINST);
                if htinst == 0 {
                    return Err(stop!("MMIO fault at {gpa:#x} with htinst 0"));
                }
                let width = 1u64 << ((htinst >> 12) & 3);
                let off = gpa - mg;
                if cause == 21 {
                    let raw = proto::truncate(proto::mmio_load_value(off), width);
                    let unsigned = (htinst >> 14) & 1 == 1;
                    let v = if unsigned {
                        raw
                    } else {
                        proto::sign_extend(raw, width)
                    };
                    self.set_result_gpr(nacl::gpr::A0, v);
                } else {
                    let v = nacl_gpr(slot, nacl::gpr::A0);
                    if proto::truncate(v, width)
                        == proto::truncate(proto::mmio_store_value(off), width)
                    {
                        self.mmio_good += 1;
                    } else {
                        self.mmio_bad += 1;
                        println!(
                            "tellus: MMIO store at +{off:#x} width {width}: {v:#x} (htinst {htinst:#x})"
                        );
                    }
                }
                return Ok(());
            }
        }
        let page = gpa & !(PAGE - 1);
        if self.in_shared_region(gpa) && self.host_page_for(gpa).is_none() {
            if self.host_pages_used == self.host_pages.len()
                || self.shared_n == self.shared_maps.len()
            {
                return Err(stop!("out of host pages for shared faults"));
            }
            let h = self.host_pages[self.host_pages_used];
            self.host_pages_used += 1;
            let r = self.add_with_pt_retry(|| add_shared_pages(id, h, 0, 1, page));
            if r.error != OK {
                return Err(stop!(
                    "add_tvm_shared_pages({h:#x} -> {page:#x}): error {}",
                    r.error
                ));
            }
            self.shared_maps[self.shared_n] = (page, h);
            self.shared_n += 1;
            return Ok(());
        }
        if (proto::REGION_GPA..proto::REGION_GPA + proto::REGION_LEN).contains(&gpa) {
            self.zero_faults += 1;
            if (proto::ZERO_2M_GPA..proto::ZERO_2M_GPA + SIZE_2M).contains(&gpa) {
                let Some(b) = self.zero_2m.filter(|_| !self.zero_2m_used) else {
                    return Err(stop!("second fault in the 2 MiB zero range at {gpa:#x}"));
                };
                self.zero_2m_used = true;
                let r = self.add_with_pt_retry(|| add_zero_pages(id, b, 1, 1, proto::ZERO_2M_GPA));
                if r.error != OK {
                    return Err(stop!("add_tvm_zero_pages(2M {b:#x}): error {}", r.error));
                }
                return Ok(());
            }
            if self.zero_n == 0 {
                return Err(stop!("out of zero pages at fault {gpa:#x}"));
            }
            self.zero_n -= 1;
            let z = self.zero_pages[self.zero_n];
            let r = self.add_with_pt_retry(|| add_zero_pages(id, z, 0, 1, page));
            if r.error != OK {
                return Err(stop!(
                    "add_tvm_zero_pages({z:#x} -> {page:#x}): error {}",
                    r.error
                ));
            }
            return Ok(());
        }
        Err(stop!(
            "guest page fault (scause {cause}) at unexpected GPA {gpa:#x}"
        ))
    }

    /// Results are written into every hart's NACL area: the next run may be
    /// on any hart.
    fn set_result_gpr(&self, reg: usize, v: u64) {
        for s in 0..MAX_HARTS {
            nacl_set_gpr(s, reg, v);
        }
    }

    /// Handles one exit taken on hart `slot`. `Ok(())` = run again.
    pub fn handle(&mut self, slot: usize, x: &Exit) -> Result<(), Stop> {
        self.exits += 1;
        if x.error != OK {
            return Err(stop!("run_tvm_vcpu: error {}", x.error));
        }
        if x.scause & arch::SCAUSE_INTERRUPT != 0 {
            self.interrupts += 1;
            if self.interrupts > 1_000_000 {
                return Err(stop!("more than 1000000 interrupt exits"));
            }
            return Ok(());
        }
        if x.value != 0 {
            return Err(stop!(
                "not resumable: scause {:#x} stval {:#x} htval {:#x}",
                x.scause,
                x.stval,
                nacl_csr(slot, nacl::csr::HTVAL)
            ));
        }
        match x.scause {
            10 => {
                let a = nacl_ecall_args(slot);
                let (e, v) = self.ecall(slot, &a)?;
                self.set_result_gpr(nacl::gpr::A0, e as u64);
                self.set_result_gpr(nacl::gpr::A1, v);
                Ok(())
            }
            20 | 21 | 23 => {
                let htval = nacl_csr(slot, nacl::csr::HTVAL);
                let gpa = cove_abi::covh::fault_gpa(htval, x.stval);
                self.page_fault(slot, x.scause, gpa)
            }
            c => Err(stop!(
                "unexpected exit scause {c:#x} stval {:#x} htval {:#x} htinst {:#x}",
                x.stval,
                nacl_csr(slot, nacl::csr::HTVAL),
                nacl_csr(slot, nacl::csr::HTINST)
            )),
        }
    }

    /// One run on the boot hart with the host's FP/vector registers set to
    /// a host pattern across the ecall; records the first one that changed.
    fn run_checking_regs(&mut self, p: &Platform, slot: usize, vcpu: u64) -> Result<Exit, i64> {
        let e = nacl_setup_here(slot, false);
        if e != OK {
            return Err(e);
        }
        let mut rc = REGCHECK.lock();
        for (i, f) in rc.f_in.iter_mut().enumerate() {
            *f = 0x686f_7374_0000_0000 | i as u64; // "host"
        }
        let vwords = if p.has_v {
            (32 * arch::read_vlenb() as usize / 8).min(REGCHECK_VBYTES / 8)
        } else {
            0
        };
        for (k, v) in rc.v_in.iter_mut().enumerate() {
            *v = 0x686f_7374_7600_0000 ^ (k as u64).wrapping_mul(0x9e37_79b9);
        }
        let x = run_vcpu_regcheck(self.id, vcpu, vwords != 0, &mut rc);
        self.regcheck_done = true;
        if let Some(i) = (0..32).find(|&i| rc.f_out[i] != rc.f_in[i]) {
            self.regcheck_fail = Some(("f", i, rc.f_out[i], rc.f_in[i]));
        } else if let Some(k) = (0..vwords).find(|&k| rc.v_out[k] != rc.v_in[k]) {
            self.regcheck_fail = Some(("v word", k, rc.v_out[k], rc.v_in[k]));
        }
        Ok(x)
    }

    /// Runs vCPU `vcpu` until it shuts down or something fails, rotating
    /// over the harts in `slots` on every exit.
    pub fn run(&mut self, p: &Platform, vcpu: u64, slots: &[usize], max_exits: u64) -> Stop {
        let boot = boot_slot(p);
        let mut k = 0;
        loop {
            let slot = self.pin.unwrap_or(slots[k % slots.len()]);
            k += 1;
            let x = if self.regcheck && slot == boot {
                self.regcheck = false;
                match self.run_checking_regs(p, slot, vcpu) {
                    Ok(x) => x,
                    Err(e) => return stop!("nacl set_shmem: error {e}"),
                }
            } else {
                match run_on(p, slot, self.id, vcpu) {
                    Ok(x) => x,
                    Err((what, e)) => return stop!("{what}: error {e}"),
                }
            };
            self.hart_runs[slot] += 1;
            if slot == boot && x.scause & arch::SCAUSE_INTERRUPT != 0 {
                take_interrupts();
            }
            match self.handle(slot, &x) {
                Ok(()) => {}
                Err(Stop::Shutdown(r)) => {
                    self.shutdown = Some(r);
                    // Flush a partial line.
                    if self.line_len != 0 {
                        self.guest_byte(b'\n');
                    }
                    return Stop::Shutdown(r);
                }
                Err(s) => return s,
            }
            if let Some(v2) = self.start_vcpu.take() {
                // Run the started vCPU to its hart_stop on the next hart in
                // the rotation, before the guest's vCPU resumes.
                self.vcpu_stopped = false;
                let mut n = 0;
                while !self.vcpu_stopped {
                    let slot = slots[k % slots.len()];
                    k += 1;
                    let x = match run_on(p, slot, self.id, v2) {
                        Ok(x) => x,
                        Err((what, e)) => return stop!("vCPU {v2}: {what}: error {e}"),
                    };
                    self.hart_runs[slot] += 1;
                    self.secondary_exits += 1;
                    if slot == boot && x.scause & arch::SCAUSE_INTERRUPT != 0 {
                        take_interrupts();
                    }
                    if let Err(s) = self.handle(slot, &x) {
                        return s;
                    }
                    n += 1;
                    if n > 10_000 {
                        return stop!("vCPU {v2} never stopped");
                    }
                }
            }
            if self.exits >= max_exits {
                return stop!("no shutdown after {max_exits} exits");
            }
        }
    }
}
