//! `linux-tvm` mode (docs/linux-tvm.md): tellus boots an unmodified Linux
//! kernel as a 2-vCPU TVM from the bundle QEMU's guest-loader put where the
//! host device tree's `/chosen/linux,initrd-*` says. tellus converts 256 MiB
//! (plus the TVM's state, vCPU and page-table pages), measures the boot shim
//! (tvm-shim), the kernel, the initramfs and the TVM's device tree into
//! their fixed GPAs, backs the rest of RAM with zero pages, and runs vCPU 0
//! on the boot hart and vCPU 1 (once the kernel starts it with SBI HSM) on
//! a secondary, concurrently, each run cut short by a 250 us host timer
//! (vCPU 1's exits wait for the boot hart's loop: the slice bounds that). It
//! serves the TVM's console (DBCN exits and a polled 16550 UART emulated
//! from MMIO exits) and its shutdown, then destroys the TVM and reclaims
//! every page.
// `parse_bundle` reports a fixed-size message: tellus has no allocator.
#![allow(clippy::result_large_err)]

use core::sync::atomic::Ordering::*;

use cove_abi::covi::CoviFunction;
use cove_abi::nacl;

use super::ctx::*;
use super::*;
use crate::harness::{run_one, T};
use crate::harts::{call_async, SLOTS};
use crate::platform::{Platform, Range};
use crate::{arch, sbi};

use tvm_bundle::{DTB_GPA, RAM_BASE, RAM_SIZE, UART_GPA, UART_SIZE, VCPUS};
use uart16550::Uart16550;

const EID_HSM: u64 = 0x0048_534D;
const EID_SRST: u64 = 0x5352_5354;
const EID_DBCN: u64 = 0x4442_434E;
const PT_PAGES_LINUX: u64 = 64;
const SPARE_PT: u64 = 32;

/// Reads the bundle's header out of the memory QEMU loaded it into.
fn parse_bundle(r: Range) -> Result<tvm_bundle::Bundle, crate::console::Msg> {
    if r.size() < tvm_bundle::HEADER_LEN as u64 || !r.start.is_multiple_of(SIZE_2M) {
        return Err(crate::msg!(
            "bundle at {:#x} ({} bytes): too small or not 2 MiB aligned",
            r.start,
            r.size()
        ));
    }
    let mut head = [0u8; tvm_bundle::HEADER_LEN];
    for (k, w) in head.chunks_exact_mut(8).enumerate() {
        w.copy_from_slice(&rd(r.start + 8 * k as u64).to_le_bytes());
    }
    tvm_bundle::parse(&head, r.size()).map_err(|e| crate::msg!("bundle at {:#x}: {}", r.start, e))
}

/// The UART's input: Salus's console (the SBI DBCN read of the host).
fn console_input() -> Option<u8> {
    let mut b = [0u8; 1];
    let r = sbi::console_read(&mut b);
    (r.error == OK && r.value == 1).then_some(b[0])
}

struct Host {
    uart: Uart16550,
    line: [u8; 512],
    line_len: usize,
    vcpu1_started: bool,
    exits: [u64; 2],
    interrupts: u64,
    mmio: u64,
    console_bytes: u64,
    marker: bool,
    ipi_ok: bool,
    /// /init gave a shell (`salus.shell`) instead of the test steps.
    shell: bool,
}

enum Stop {
    Shutdown(u64),
    Error(crate::console::Msg),
}

impl Host {
    fn byte(&mut self, b: u8) {
        self.console_bytes += 1;
        if b == b'\r' {
            return;
        }
        if b == b'\n' || self.line_len == self.line.len() {
            let s = core::str::from_utf8(&self.line[..self.line_len]).unwrap_or("<non-utf8 line>");
            self.marker |= s.starts_with("SALUS-TVM-READY");
            self.ipi_ok |= s.starts_with("SALUS-TVM-IPI-OK");
            self.shell |= s.starts_with("SALUS-TVM-SHELL");
            println!("{}", s);
            self.line_len = 0;
            if b == b'\n' {
                return;
            }
        }
        self.line[self.line_len] = b;
        self.line_len += 1;
    }

    fn flush(&mut self) {
        if self.line_len != 0 {
            self.byte(b'\n');
        }
    }

    /// Handles one exit of `vcpu` taken on hart `slot`.
    fn handle(&mut self, slot: usize, vcpu: u64, x: &Exit) -> Result<(), Stop> {
        self.exits[vcpu as usize] += 1;
        if x.error != OK {
            return Err(Stop::Error(crate::msg!(
                "run_tvm_vcpu({vcpu}): error {}",
                x.error
            )));
        }
        if x.scause & arch::SCAUSE_INTERRUPT != 0 {
            self.interrupts += 1;
            return Ok(());
        }
        if x.value != 0 {
            return Err(Stop::Error(crate::msg!(
                "vCPU {vcpu} not resumable: scause {:#x} stval {:#x} htval {:#x}",
                x.scause,
                x.stval,
                nacl_csr(slot, nacl::csr::HTVAL)
            )));
        }
        match x.scause {
            10 => {
                let a = nacl_ecall_args(slot);
                let (e, v) = match (a[7], a[6]) {
                    (EID_DBCN, 0) => {
                        let n = (a[0] as usize).min(nacl::CONSOLE_BYTES_MAX);
                        for k in 0..n {
                            self.byte(nacl_console_byte(slot, k));
                        }
                        (OK, n as u64)
                    }
                    (EID_DBCN, 2) => {
                        self.byte(a[0] as u8);
                        (OK, 0)
                    }
                    (EID_SRST, _) => return Err(Stop::Shutdown(a[1])),
                    (EID_HSM, 0) => {
                        if a[0] == 1 {
                            self.vcpu1_started = true;
                        }
                        (OK, 0)
                    }
                    (EID_HSM, _) => (OK, 0),
                    _ => (ERR_NOT_SUPPORTED, 0),
                };
                nacl_set_gpr(slot, nacl::gpr::A0, e as u64);
                nacl_set_gpr(slot, nacl::gpr::A0 + 1, v);
                Ok(())
            }
            21 | 23 => {
                let htval = nacl_csr(slot, nacl::csr::HTVAL);
                let gpa = cove_abi::covh::fault_gpa(htval, x.stval);
                if !(UART_GPA..UART_GPA + UART_SIZE).contains(&gpa) {
                    return Err(Stop::Error(crate::msg!(
                        "vCPU {vcpu}: fault (scause {}) at GPA {gpa:#x}",
                        x.scause
                    )));
                }
                self.mmio += 1;
                let off = gpa - UART_GPA;
                if x.scause == 21 {
                    let v = self.uart.read(off, &mut console_input);
                    nacl_set_gpr(slot, nacl::gpr::A0, v as u64);
                } else {
                    let v = nacl_gpr(slot, nacl::gpr::A0) as u8;
                    if let Some(b) = self.uart.write(off, v) {
                        self.byte(b);
                    }
                }
                Ok(())
            }
            c => Err(Stop::Error(crate::msg!(
                "vCPU {vcpu}: unexpected exit scause {c:#x} stval {:#x} htval {:#x} htinst {:#x}",
                x.stval,
                nacl_csr(slot, nacl::csr::HTVAL),
                nacl_csr(slot, nacl::csr::HTINST)
            ))),
        }
    }
}

/// What the boot hart hands the secondary running vCPU 1.
#[repr(C)]
struct RunReq {
    id: u64,
    vcpu: u64,
    slot: usize,
    tick: u64,
    exit: Exit,
}

/// One run on a secondary, cut short by its host timer after `tick`.
fn run_secondary(arg: u64) -> i64 {
    let req = arg as *mut RunReq;
    // SAFETY: the boot hart keeps the `RunReq` alive and does not touch it
    // until we ack.
    let (id, vcpu, slot, tick) = unsafe { ((*req).id, (*req).vcpu, (*req).slot, (*req).tick) };
    let e = nacl_setup_here(slot, false);
    if e != OK {
        return e;
    }
    // Armed with interrupts off: a deadline that passed before the ecall
    // must still be enabled (sie.STIE) when the TSM looks at it, or the run
    // would never be preempted. The trap handler takes it afterwards.
    arch::interrupts_disable();
    arch::sie_set(arch::STIP);
    let _ = sbi::set_timer(arch::read_time() + tick);
    let x = run_vcpu(id, vcpu);
    arch::interrupts_enable();
    // SAFETY: as above.
    unsafe { (*req).exit = x };
    OK
}

fn quiet_timer(_: u64) -> i64 {
    arch::sie_clear(arch::STIP);
    sbi::set_timer(u64::MAX).error
}

pub fn run(p: &Platform) {
    run_one("linux_tvm", p, boot);
    run_one("tee_census", p, tests::census::test_census);
}

fn boot(t: &mut T, p: &Platform) {
    let Some(bundle) = p.initrd else {
        check!(t, false, "no bundle: /chosen has no linux,initrd-start/end");
        return;
    };
    let b = match parse_bundle(bundle) {
        Ok(b) => b,
        Err(m) => {
            check!(t, false, "{m}");
            return;
        }
    };
    println!(
        "tellus: linux-tvm: bundle at {:#x}: kernel {} bytes, initrd {} bytes, dtb {} bytes, shim {} bytes",
        bundle.start, b.kernel.size, b.initrd.size, b.dtb.size, b.shim.size
    );
    let Some(mut cx) = setup(p) else {
        check!(t, false, "COVH not available");
        return;
    };
    if !check!(
        t,
        cx.nslots >= 2,
        "needs a second live hart, have {}",
        cx.nslots
    ) {
        return;
    }
    let info = cx.info;
    if !check!(
        t,
        info.tvm_max_vcpus >= VCPUS,
        "TSM allows {} vCPUs",
        info.tvm_max_vcpus
    ) {
        return;
    }
    let params = cx.pool.alloc(PAGE, PAGE).unwrap();
    // COVI when the TSM offers it: the device tree with the IMSIC, each
    // vCPU bound to guest file 2 of the hart that runs it (converted here,
    // completed by the arena's fence below).
    let aia = info.tsm_capabilities & (1 << cove_abi::covh::cap::AIA) != 0 && p.imsic != 0;
    let (boot, sec) = (boot_slot(p), cx.slots()[1]);
    let files = [guest_file_addr(p, boot, 2), guest_file_addr(p, sec, 2)];
    let aia_page = cx.pool.alloc(PAGE, PAGE).unwrap();
    if aia {
        write_aia_params(
            aia_page,
            &covi_params(tvm_bundle::IMSIC_GPA, tvm_bundle::IMSIC_HART_BITS),
        );
        for f in files {
            if !check!(
                t,
                covi_call(CoviFunction::ConvertAiaImsic, f, 0, 0) == OK,
                "convert guest file {f:#x}"
            ) {
                return;
            }
        }
    }

    // The arena: RAM (1:1 with the GPAs), then the TVM's own pages.
    let small =
        8 + info.tvm_state_pages + VCPUS * info.tvm_vcpu_state_pages + PT_PAGES_LINUX + SPARE_PT;
    let ram_pages = RAM_SIZE / PAGE;
    let arena_pages = ram_pages + small.div_ceil(512) * 512;
    let Some(arena) = cx.pool.alloc_raw(arena_pages * PAGE, SIZE_2M) else {
        check!(t, false, "no room for {arena_pages} pages");
        return;
    };
    let t0 = arch::read_time();
    if !convert(t, p, &cx, arena, arena_pages) {
        return;
    }
    let mut ar = Arena::new(arena, arena_pages);
    let ram = ar.take(ram_pages, SIZE_2M);
    let pagedir = ar.take(4, 4 * PAGE);
    let state = ar.take(info.tvm_state_pages, PAGE);
    let mut vstate = [0u64; VCPUS as usize];
    for v in vstate.iter_mut() {
        *v = ar.take(info.tvm_vcpu_state_pages, PAGE);
    }
    let pt = ar.take(PT_PAGES_LINUX, PAGE);
    let spare = ar.take(SPARE_PT, PAGE);
    let mut spare_used = 0;

    let r = create(params, pagedir, state);
    if !check_err!(t, r, OK, "create_tvm") {
        reclaim_check(t, arena, arena_pages);
        return;
    }
    let id = r.value;
    let ok = build(
        t,
        id,
        ram,
        pt,
        spare,
        &mut spare_used,
        bundle.start,
        &b,
        &vstate,
        aia.then_some(aia_page),
    );
    let t1 = arch::read_time();
    let bound = ok
        && (!aia
            || (0..VCPUS).all(|v| {
                let slot = if v == 0 { boot } else { sec };
                let e = covi_on(p, slot, CoviFunction::BindAiaImsic, [id, v, 1 << 2]);
                check!(
                    t,
                    e == OK,
                    "bind vCPU {v} to file 2 of hart slot {slot}: error {e}"
                )
            }));
    if aia && bound {
        println!("tellus: linux-tvm: COVI: vCPU 0 bound to file 2 of slot {boot}, vCPU 1 to file 2 of slot {sec}; the device tree has the IMSIC");
    }
    if ok && bound {
        println!(
            "tellus: linux-tvm: TVM {id} built and finalized in {} ms (entry {RAM_BASE:#x}, dtb {DTB_GPA:#x})",
            (t1 - t0) / p.ms(1).max(1)
        );
        run_tvm(t, p, &cx, id);
    }
    check_err!(t, destroy_tvm(id), OK, "destroy_tvm");
    if aia {
        for f in files {
            check!(
                t,
                covi_call(CoviFunction::ReclaimTvmAiaImsic, f, 0, 0) == OK,
                "reclaim guest file {f:#x}"
            );
        }
    }
    if reclaim_check(t, arena, arena_pages) {
        println!("tellus: linux-tvm: TVM destroyed, {arena_pages} pages reclaimed and zero");
    }
}

#[allow(clippy::too_many_arguments)]
fn build(
    t: &mut T,
    id: u64,
    ram: u64,
    pt: u64,
    spare: u64,
    spare_used: &mut u64,
    bundle: u64,
    b: &tvm_bundle::Bundle,
    vstate: &[u64; VCPUS as usize],
    aia_params: Option<u64>,
) -> bool {
    let aia = aia_params.is_some();
    let dest = |gpa: u64| ram + (gpa - RAM_BASE);
    if !check_err!(
        t,
        add_memory_region(id, RAM_BASE, RAM_SIZE),
        OK,
        "add_tvm_memory_region"
    ) || !check_err!(
        t,
        add_pt_pages(id, pt, PT_PAGES_LINUX),
        OK,
        "add_tvm_page_table_pages"
    ) {
        return false;
    }
    // Retries with a spare page-table page on OUT_OF_PTPAGES.
    let mut with_pt = |t: &mut T, what: &str, f: &mut dyn FnMut() -> sbi_abi::SbiRet| -> bool {
        loop {
            let r = f();
            if r.error == ERR_OUT_OF_PTPAGES && *spare_used < SPARE_PT {
                let a = add_pt_pages(id, spare + *spare_used * PAGE, 1);
                *spare_used += 1;
                if a.error == OK {
                    continue;
                }
            }
            return check_err!(t, r, OK, "{what}");
        }
    };
    // Measured: 2 MiB pages where the GPA and the source allow, else 4 KiB.
    let parts = b
        .loads(aia)
        .map(|l| (l.what, bundle + l.part.offset, l.gpa, l.part.size));
    for (what, src, gpa, size) in parts {
        let mut done = 0;
        let big = src % SIZE_2M == 0 && gpa % SIZE_2M == 0;
        let n2m = if big { size / SIZE_2M } else { 0 };
        if n2m != 0
            && !with_pt(t, what, &mut || {
                add_measured_pages(id, src, dest(gpa), 1, n2m, gpa)
            })
        {
            return false;
        }
        done += n2m * SIZE_2M;
        let n4k = (size - done).div_ceil(PAGE);
        if n4k != 0
            && !with_pt(t, what, &mut || {
                add_measured_pages(id, src + done, dest(gpa + done), 0, n4k, gpa + done)
            })
        {
            return false;
        }
        println!("tellus: linux-tvm: measured {what}: {n2m} 2 MiB + {n4k} 4 KiB pages at {gpa:#x}");
    }
    for (v, &s) in vstate.iter().enumerate() {
        if !check_err!(t, create_vcpu(id, v as u64, s), OK, "create_tvm_vcpu({v})") {
            return false;
        }
    }
    if let Some(page) = aia_params {
        let imsic = tvm_bundle::IMSIC_GPA;
        if !check!(
            t,
            covi_call(CoviFunction::InitTvmAia, id, page, 32) == OK,
            "init_tvm_aia"
        ) || !(0..VCPUS).all(|v| {
            let e = covi_call(CoviFunction::SetTvmAiaCpuImsicAddr, id, v, imsic + v * PAGE);
            check!(t, e == OK, "set_tvm_aia_cpu_imsic_addr({v}): error {e}")
        }) {
            return false;
        }
    }
    if !check_err!(
        t,
        finalize_tvm(id, RAM_BASE, DTB_GPA, 0),
        OK,
        "finalize_tvm"
    ) {
        return false;
    }
    // The rest of RAM: zero pages (2 MiB blocks whole, else runs of 4 KiB).
    let covered = |g: u64| b.measured(g, aia);
    let (mut z2, mut z4) = (0, 0);
    for blk in 0..RAM_SIZE / SIZE_2M {
        let bg = RAM_BASE + blk * SIZE_2M;
        let any = (0..512).any(|k| covered(bg + k * PAGE));
        if !any {
            if !with_pt(t, "zero 2 MiB", &mut || {
                add_zero_pages(id, dest(bg), 1, 1, bg)
            }) {
                return false;
            }
            z2 += 1;
            continue;
        }
        let mut k = 0;
        while k < 512 {
            if covered(bg + k * PAGE) {
                k += 1;
                continue;
            }
            let s = k;
            while k < 512 && !covered(bg + k * PAGE) {
                k += 1;
            }
            let g = bg + s * PAGE;
            let n = k - s;
            if !with_pt(t, "zero 4 KiB", &mut || {
                add_zero_pages(id, dest(g), 0, n, g)
            }) {
                return false;
            }
            z4 += n;
        }
    }
    println!("tellus: linux-tvm: zero pages: {z2} of 2 MiB, {z4} of 4 KiB");
    true
}

fn run_tvm(t: &mut T, p: &Platform, cx: &Ctx, id: u64) {
    let boot = boot_slot(p);
    let sec = cx.slots()[1];
    // 250 us: vCPU 1's exits are served between vCPU 0's runs.
    let tick = (p.ms(1) / 4).max(1);
    let mut h = Host {
        uart: Uart16550::new(),
        line: [0; 512],
        line_len: 0,
        vcpu1_started: false,
        exits: [0; 2],
        interrupts: 0,
        mmio: 0,
        console_bytes: 0,
        marker: false,
        ipi_ok: false,
        shell: false,
    };
    let mut req = RunReq {
        id,
        vcpu: 1,
        slot: sec,
        tick,
        exit: Exit::default(),
    };
    let reqp = &raw mut req;
    let mut inflight: Option<u64> = None;
    let start = arch::read_time();
    let limit = p.ms(30 * 60 * 1000);
    let stop = loop {
        // vCPU 1 on the secondary: collect a finished run, start the next.
        if let Some(seq) = inflight {
            if SLOTS[sec].ack_seq.load(Acquire) >= seq {
                inflight = None;
                let res = SLOTS[sec].cmd_result.load(Relaxed);
                if res != OK {
                    break Stop::Error(crate::msg!(
                        "nacl set_shmem on hart slot {sec}: error {res}"
                    ));
                }
                // SAFETY: the secondary acked: it no longer touches `req`.
                let x = unsafe { (*reqp).exit };
                if let Err(s) = h.handle(sec, 1, &x) {
                    break s;
                }
            }
        }
        if h.vcpu1_started && inflight.is_none() {
            if h.exits[1] == 0 {
                println!(
                    "tellus: linux-tvm: vCPU 1 started by the kernel: running it on hart {}",
                    p.harts[sec]
                );
            }
            inflight = Some(call_async(p, sec, run_secondary, reqp as u64));
        }
        // vCPU 0 on the boot hart.
        let e = nacl_setup_here(boot, false);
        if e != OK {
            break Stop::Error(crate::msg!("nacl set_shmem on the boot hart: error {e}"));
        }
        arch::interrupts_disable();
        arch::sie_set(arch::STIP);
        let _ = sbi::set_timer(arch::read_time() + tick);
        let x = run_vcpu(id, 0);
        take_interrupts();
        if let Err(s) = h.handle(boot, 0, &x) {
            break s;
        }
        if arch::read_time() - start > limit {
            break Stop::Error(crate::msg!("no shutdown after 30 minutes"));
        }
    };
    // Let an in-flight run of vCPU 1 come back (its timer ends it).
    if let Some(seq) = inflight {
        let sl = &SLOTS[sec];
        let (timers, t_at) = (sl.timer_count.load(Acquire), arch::read_time());
        if crate::harts::wait_ack(sl, seq, p.ms(5000)).is_none() {
            check!(
                t,
                false,
                "vCPU 1's run did not come back: seq {seq} ack {} timers {} -> {} ipis {}",
                sl.ack_seq.load(Acquire),
                timers,
                sl.timer_count.load(Acquire),
                sl.ipi_count.load(Acquire)
            );
        } else {
            println!(
                "tellus: linux-tvm: vCPU 1's last run came back after {} us",
                (arch::read_time() - t_at) * 1000 / p.ms(1).max(1)
            );
        }
    }
    let _ = crate::harts::call(p, sec, quiet_timer, 0, p.ms(1000));
    arch::sie_clear(arch::STIP);
    let _ = sbi::set_timer(u64::MAX);
    h.flush();
    let secs = (arch::read_time() - start) / p.ms(1000).max(1);
    match stop {
        Stop::Shutdown(r) => {
            println!("tellus: linux-tvm: shutdown reason {r}");
            check!(t, r == 0, "the TVM shut down with reason {r}");
        }
        Stop::Error(m) => {
            check!(t, false, "linux-tvm: {m}");
        }
    }
    println!(
        "tellus: linux-tvm: ran {secs} s: exits vCPU0 {} vCPU1 {}, {} interrupts, {} UART accesses, {} console bytes",
        h.exits[0], h.exits[1], h.interrupts, h.mmio, h.console_bytes
    );
    check!(t, h.exits[1] > 0, "vCPU 1 never ran");
    if !h.shell {
        check!(t, h.marker, "no SALUS-TVM-READY line");
        check!(t, h.ipi_ok, "no SALUS-TVM-IPI-OK line");
    }
}
