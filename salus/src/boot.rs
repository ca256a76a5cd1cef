//! Boot: from the firmware's hand-off to the host's first instruction.

use crate::arch::csr::{self, bits, num};
use crate::arch::{entry, phys, sbi_call};
use crate::hart::{self, HsmState};
use crate::host::vcpu::HostVcpu;
use crate::memory::{self, HypTableMemory, Layout};
use crate::platform::{self, Platform};
use crate::{fatal, info};
use alloc::vec::Vec;
use devicetree::{IsaExtensions, MachineInfo};
use hyp_addr::{HostPhysAddr, HostRange, PageSize};
use page_tables::{GStageMode, GStageTable, Perms};

const FDT_MAGIC: u32 = 0xd00d_feed;
const FDT_MAX: u32 = 1 << 20;

/// Reads the FDT header at `addr` and returns its total size.
fn fdt_size(addr: u64) -> Option<u32> {
    if addr == 0 || !addr.is_multiple_of(8) {
        return None;
    }
    let head = phys::read_u64(HostPhysAddr::new(addr));
    let magic = u32::from_be(head as u32);
    let size = u32::from_be((head >> 32) as u32);
    (magic == FDT_MAGIC && (40..=FDT_MAX).contains(&size)).then_some(size)
}

/// The RAM region Salus was loaded into, from the firmware's device tree.
fn boot_ram(dtb: &[u8], image_start: u64) -> Option<HostRange> {
    let fdt = fdt::Fdt::new(dtb).ok()?;
    for region in fdt.memory().regions() {
        let start = region.starting_address as u64;
        let range = HostRange::new(HostPhysAddr::new(start), region.size? as u64)?;
        if range.contains(HostPhysAddr::new(image_start)) {
            return Some(range);
        }
    }
    None
}

pub fn boot_hart(hartid: usize, fdt_addr: u64) -> ! {
    let Some(size) = fdt_size(fdt_addr) else {
        fatal!(
            "no valid device tree at {:#x} (a1 from the firmware)",
            fdt_addr
        );
    };
    // SAFETY: the firmware's FDT is in RAM nobody else uses during boot; it
    // is only read, and copied into Salus's heap before the host exists.
    let firmware_dtb: &[u8] =
        unsafe { phys::claim_bytes(HostPhysAddr::new(fdt_addr), size as u64) };
    let (image_start, image_end) = entry::image_range();
    let Some(ram) = boot_ram(firmware_dtb, image_start) else {
        fatal!(
            "the device tree has no memory region containing Salus at {:#x}",
            image_start
        );
    };
    let layout = match Layout::compute(ram, image_start, image_end) {
        Ok(l) => l,
        Err(e) => fatal!("memory layout: {}", e),
    };
    memory::init(layout);
    let mut dtb: Vec<u8> = firmware_dtb.to_vec();
    let mut info = match MachineInfo::parse(&dtb) {
        Ok(i) => i,
        Err(e) => fatal!("cannot parse the device tree: {:?}", e),
    };
    // The copy may hold a stand-in UDS (/chosen/salus,uds): parsed, gone.
    // Volatile stores: not elided before the free.
    zeroize::Zeroize::zeroize(dtb.as_mut_slice());
    drop(dtb);
    if let Some(uart) = &info.uart {
        // SAFETY: the UART named by the device tree; the host never gets it
        // mapped (it is outside host RAM and not in the host's MMIO list).
        unsafe { crate::console::init_uart(uart.base.bits() as usize) };
        // The host gets an emulated 16550 at the same address.
        crate::host::uart16550::init(uart.base.bits(), uart.size);
    }
    if let Some(test) = info.test_device {
        // SAFETY: the device tree's sifive,test0 node.
        unsafe { crate::drivers::test_finisher::init(test.start.bits()) };
    }
    let isa = info.isa;
    banner(&info, &layout, isa, hartid);
    // What the firmware reserves (no-map or not) stays the firmware's: never
    // the host's, never mapped for it, never convertible.
    let fw_reserved = devicetree::firmware_reserved(&info);
    for r in &fw_reserved {
        if r.overlaps(&layout.salus) {
            fatal!(
                "the firmware reserves {:#x}..{:#x}, inside Salus's own memory {:#x}..{:#x}",
                r.start.bits(),
                r.end().bits(),
                layout.salus.start.bits(),
                layout.salus.end().bits()
            );
        }
        info!(
            "firmware reserves {:#x}..{:#x}",
            r.start.bits(),
            r.end().bits()
        );
    }
    memory::reserve_firmware(&fw_reserved);

    if !isa.contains(IsaExtensions::H) {
        fatal!("the H extension is missing (riscv,isa has no 'h'): Salus needs a hart with the hypervisor extension");
    }
    let Some(kernel) = info.kernel.as_ref().map(|m| m.range) else {
        fatal!("no host kernel: add -device guest-loader,kernel=FILE,addr=0xc0200000 (no multiboot,kernel module in /chosen)");
    };
    let nharts = info.cpus.len();
    if nharts == 0
        || nharts > entry::MAX_HARTS
        || info.cpus.iter().any(|c| c.hart_id as usize >= nharts)
    {
        fatal!(
            "hart ids must be 0..N with N <= {} (found {} harts)",
            entry::MAX_HARTS,
            nharts
        );
    }
    let host_ram = layout.host_ram();
    if kernel.len == 0
        || !host_ram.contains_range(kernel.start, kernel.len)
        || fw_reserved.iter().any(|r| r.overlaps(&kernel))
    {
        fatal!(
            "host kernel at {:#x} (+{:#x}) is outside host RAM {:#x}..{:#x}",
            kernel.start.bits(),
            kernel.len,
            host_ram.start.bits(),
            host_ram.end().bits()
        );
    }

    // The host's stage-2 table.
    let opts = crate::host::cmdline::parse(&info);
    let mode = probe_gstage_mode();
    let vmid_bits = probe_vmid_bits(mode).min(opts.vmid_bits.unwrap_or(u32::MAX));
    let vmid_shared = hw_policy::vmids_shared(vmid_bits, crate::tsm::tvm::MAX_TVMS);
    let mut mem = HypTableMemory;
    let mut gstage = match GStageTable::new(&mut mem, mode) {
        Ok(t) => t,
        Err(e) => fatal!("cannot allocate the host's stage-2 root: {:?}", e),
    };
    for piece in devicetree::subtract(host_ram, &fw_reserved) {
        if let Err(e) = gstage.map_range(
            &mut mem,
            piece.start.identity(),
            piece.start,
            piece.len,
            Perms::RWX,
        ) {
            fatal!("cannot map host RAM: {:?}", e);
        }
    }
    // The host's IMSIC: each hart's S-level file GPA -> its guest file 1.
    let mut host_vgein = 0;
    if let Some(imsic) = info
        .s_imsic()
        .filter(|i| i.guest_index_bits > 0 && isa.contains(IsaExtensions::SSAIA))
    {
        for (h, _) in imsic.harts.iter().enumerate() {
            let Some(s_file) = imsic.hart_file(h) else {
                fatal!("IMSIC has no file for hart index {}", h);
            };
            // Guest file 1 is the page right after the S-level file.
            let guest_file = s_file.checked_add(hyp_addr::PAGE_SIZE).unwrap();
            if let Err(e) = gstage.map(
                &mut mem,
                s_file.identity(),
                guest_file,
                PageSize::Size4K,
                Perms::RW,
            ) {
                fatal!("cannot map the host's IMSIC file for hart {}: {:?}", h, e);
            }
        }
        host_vgein = 1;
    }

    let henvcfg = hw_policy::host_henvcfg(hw_policy::EnvFeatures {
        sstc: isa.contains(IsaExtensions::SSTC),
        svadu: isa.contains(IsaExtensions::SVADU),
        svpbmt: isa.contains(IsaExtensions::SVPBMT),
        zicbom: isa.contains(IsaExtensions::ZICBOM),
        zicboz: isa.contains(IsaExtensions::ZICBOZ),
    });
    // PCI behind the IOMMU (maps ECAM and the windows into the host's
    // stage-2 when the host gets them).
    if opts.check {
        crate::tsm::enable_deep_checks();
    }
    if opts.bench {
        crate::stats::enable(info.timebase_frequency);
    }
    if opts.no_htinst {
        info!("salus.no_htinst: trapped MMIO instructions are read with HLVX");
        crate::host::mmio::set_no_htinst(true);
    }
    let host_pci = crate::host::pci::setup(
        &info,
        &mut gstage,
        &mut mem,
        opts.pci_unsafe,
        host_vgein != 0,
    );
    platform::set(Platform {
        nharts,
        boot_hart: hartid,
        has_sstc: isa.contains(IsaExtensions::SSTC),
        has_vector: isa.contains(IsaExtensions::V),
        has_smstateen: isa.contains(IsaExtensions::SMSTATEEN),
        has_ssaia: isa.contains(IsaExtensions::SSAIA),
        has_zknh: isa.contains(IsaExtensions::ZKNH) && isa.contains(IsaExtensions::ZBB),
        vlenb: if isa.contains(IsaExtensions::V) {
            // Vector CSRs are only readable with sstatus.VS on.
            csr::set!(num::SSTATUS, bits::SSTATUS_VS_INITIAL);
            crate::arch::fpvec::vlenb()
        } else {
            0
        },
        henvcfg,
        cbom_block: if isa.contains(IsaExtensions::ZICBOM) {
            cbom_block(&info)
        } else {
            0
        },
        vmid_bits,
        host_hgatp: gstage.hgatp(0),
        host_vgein,
        mvendorid: sbi_call::base_value(4),
        marchid: sbi_call::base_value(5),
        mimpid: sbi_call::base_value(6),
    });
    *crate::host::GSTAGE.lock() = Some(gstage);
    attest_boot(&mut info, opts.bench);
    // COVI: each hart's guest files past the host's are for TVM vCPUs
    // (the harts are alike: the boot hart's hgeie says which exist).
    if let Some(imsic) = info.s_imsic().filter(|_| host_vgein != 0) {
        csr::write!(num::HGEIE, !0);
        let files = csr::read!(num::HGEIE);
        csr::write!(num::HGEIE, 0);
        // By hart id: file i belongs to the hart `interrupts-extended` names i.
        let by_hart = imsic.harts.iter().enumerate().filter_map(|(i, &hart)| {
            Some((usize::try_from(hart).ok()?, imsic.hart_file(i)?.bits()))
        });
        let per_hart = crate::tsm::covi::init(
            by_hart,
            nharts,
            imsic.hart_stride(),
            imsic.num_ids,
            files,
            host_vgein,
        );
        info!(
            "COVI: {} guest file(s) per hart for TVM vCPUs (hgeie {:#x}, the host has file {})",
            per_hart, files, host_vgein
        );
    }

    // The host's device tree, written where the firmware's was (QEMU picked
    // that spot clear of the images it loaded).
    let host_fdt_addr = fdt_addr;
    let reserved = devicetree::host_reserved(&[layout.firmware, layout.salus], &fw_reserved);
    let mut host_view = crate::host::pci::host_view(&info, &host_pci);
    // The host gets a seed derived from the firmware's; Salus keeps its
    // own (TVM entropy, crate::entropy).
    host_view.rng_seed = info
        .rng_seed
        .as_deref()
        .map(crate::entropy::split_firmware_seed);
    if let Some(k) = host_view.kernel.as_mut() {
        k.bootargs = Some(crate::host::cmdline::host_bootargs(&info));
    }
    let mut fdt_cfg = host_fdt_config(&info, &layout, &reserved, host_vgein != 0);
    fdt_cfg.pci = host_pci.give;
    fdt_cfg.uart = info.uart.as_ref().map(|u| devicetree::HostUart {
        base: u.base,
        size: u.size,
        clock_frequency: u.clock_frequency.unwrap_or(3_686_400),
    });
    let host_dtb = match devicetree::build_host_fdt(&host_view, &fdt_cfg) {
        Ok(b) => b,
        Err(e) => fatal!("cannot build the host device tree: {:?}", e),
    };
    let fdt_slot = HostRange::new(HostPhysAddr::new(host_fdt_addr), host_dtb.len() as u64);
    let clash = |m: &Option<devicetree::Module>| {
        m.as_ref()
            .is_some_and(|m| fdt_slot.is_some_and(|s| s.overlaps(&m.range)))
    };
    if !fdt_slot.is_some_and(|s| host_ram.contains_range(s.start, s.len))
        || fdt_slot.is_some_and(|s| fw_reserved.iter().any(|r| r.overlaps(&s)))
        || clash(&info.kernel)
        || clash(&info.initrd)
    {
        fatal!("no room for the host device tree at {:#x}", host_fdt_addr);
    }
    // Nothing of the firmware's tree (a stand-in UDS among it) survives
    // past the host's, which is written where it was.
    phys::zero(
        HostPhysAddr::new(fdt_addr),
        u64::from(size).next_multiple_of(8),
    );
    phys::copy_to(HostPhysAddr::new(host_fdt_addr), &host_dtb);
    crate::arch::set_vmid_shared(vmid_shared);
    info!(
        "VMID: {} bits{}",
        vmid_bits,
        if vmid_shared {
            ", too few for every TVM: TVMs share VMID 0, TLB fence on every switch"
        } else {
            ""
        }
    );
    info!(
        "host: kernel at {:#x} ({} KiB), device tree at {:#x} ({} bytes), stage-2 {:?}",
        kernel.start.bits(),
        kernel.len / 1024,
        host_fdt_addr,
        host_dtb.len(),
        mode
    );

    // TVM IPIs ring the target hart's S-level IMSIC file (arch::imsic).
    match info.s_imsic() {
        Some(im) if isa.contains(IsaExtensions::SSAIA) && !opts.sbi_kick => {
            let harts = info
                .cpus
                .iter()
                .filter(|c| c.hart_id < 64)
                .fold(0u64, |m, c| m | 1 << c.hart_id);
            crate::arch::imsic::set_files(
                im.harts
                    .iter()
                    .enumerate()
                    .filter_map(|(i, &h)| Some((h as usize, im.hart_file(i)?.bits()))),
                harts,
            );
        }
        _ => {}
    }
    info!(
        "TVM IPIs: {}",
        if crate::arch::imsic::enabled() {
            "IMSIC doorbell (Salus's S-level file)"
        } else {
            "SBI IPI"
        }
    );
    init_hart_csrs();
    crate::host::pci::arm_housekeeping();
    hart::shared(hartid)
        .online
        .store(true, core::sync::atomic::Ordering::Release);
    for cpu in &info.cpus {
        let id = cpu.hart_id as usize;
        if id != hartid {
            if let Err(e) = sbi_call::hart_start(id as u64, entry::secondary_entry(), 0) {
                info!("hart {} did not start: {:?}", id, e);
            }
        }
    }

    // The boot hart runs host vCPU 0 (the vCPU with its own hart id).
    hart::shared(hartid).set_hsm(HsmState::Started);
    let mut vcpu = HostVcpu::new(hartid, kernel.start.bits(), host_fdt_addr);
    match vcpu.run() {
        crate::host::vcpu::Exit::Stopped => hart::shared(hartid).set_hsm(HsmState::Stopped),
    }
    crate::host::vcpu::park_and_serve(hartid)
}

fn host_fdt_config(
    info: &MachineInfo,
    layout: &Layout,
    reserved: &[HostRange],
    imsic: bool,
) -> devicetree::HostFdtConfig {
    let _ = info;
    devicetree::HostFdtConfig {
        memory: alloc::vec![layout.ram],
        reserved: reserved.to_vec(),
        imsic,
        ..Default::default()
    }
}

/// The smallest cache-block size any hart reports (64 when none does):
/// flushing in smaller steps than the real block is only slower.
fn cbom_block(info: &MachineInfo) -> u64 {
    let min = info
        .cpus
        .iter()
        .filter_map(|c| c.cbom_block_size)
        .filter(|b| b.is_power_of_two() && *b >= 8)
        .min()
        .unwrap_or(64);
    min as u64
}

/// Sv48x4 when the hart has it, else Sv39x4 (hgatp.MODE is WARL).
fn probe_gstage_mode() -> GStageMode {
    csr::write!(num::HGATP, GStageMode::Sv48x4.hgatp_mode() << 60);
    let got = csr::read!(num::HGATP) >> 60;
    csr::write!(num::HGATP, 0);
    if got == GStageMode::Sv48x4.hgatp_mode() {
        GStageMode::Sv48x4
    } else {
        GStageMode::Sv39x4
    }
}

/// VMIDLEN: write all ones to hgatp.VMID (with a supported MODE, or the
/// whole write would be ignored) and count the bits that stick.
fn probe_vmid_bits(mode: GStageMode) -> u32 {
    let ones = ((1u64 << hw_policy::HGATP_VMID_MAX_BITS) - 1) << hw_policy::HGATP_VMID_SHIFT;
    csr::write!(num::HGATP, (mode.hgatp_mode() << 60) | ones);
    let got = csr::read!(num::HGATP);
    csr::write!(num::HGATP, 0);
    crate::arch::hfence_gvma_all();
    hw_policy::vmid_bits(got)
}

/// Salus's DICE layer (`rot`): measures Salus, derives the chain from the
/// stand-in UDS (the tree's is zeroed), and says what it is.
fn attest_boot(info: &mut MachineInfo, bench: bool) {
    let i0 = csr::read!(num::INSTRET);
    let id = crate::rot::init(info.uds.as_deref_mut(), platform::get().has_zknh);
    let spent = csr::read!(num::INSTRET) - i0;
    info.uds = None;
    info!(
        "attestation: platform key {} (UDS {}: a stand-in, NOT a hardware root of trust; evidence says debug)",
        Hex(&id.platform_key),
        if id.uds_from_platform {
            "from /chosen/salus,uds"
        } else {
            "built in (TEST_UDS)"
        }
    );
    info!(
        "attestation: Salus measurement {}, TSM key {} ({} instructions)",
        Hex(&id.tsm_measurement),
        Hex(&id.tsm_key),
        spent
    );
    if bench {
        crate::console::_print(format_args!(
            "bench: boot_attest_overhead {spent} instructions\n"
        ));
    }
}

/// Bytes as lowercase hex.
struct Hex<'a>(&'a [u8]);

impl core::fmt::Display for Hex<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

/// Per-hart hypervisor CSRs: trap vector, delegation, counters, the host's
/// stage-2 table and environment.
pub fn init_hart_csrs() {
    let p = platform::get();
    csr::write!(num::STVEC, entry::trap_vector());
    csr::write!(num::SSCRATCH, 0);
    // Exceptions the host handles itself: misaligned fetch/load/store,
    // illegal instruction, breakpoint, U-mode ecall, page faults.
    const HEDELEG: u64 = (1 << 0)
        | (1 << 2)
        | (1 << 3)
        | (1 << 4)
        | (1 << 6)
        | (1 << 8)
        | (1 << 12)
        | (1 << 13)
        | (1 << 15);
    csr::write!(num::HEDELEG, HEDELEG);
    csr::write!(
        num::HIDELEG,
        (1 << bits::IRQ_VS_SOFT) | (1 << bits::IRQ_VS_TIMER) | (1 << bits::IRQ_VS_EXT)
    );
    csr::write!(num::HCOUNTEREN, 0x7);
    csr::write!(num::HENVCFG, p.henvcfg);
    if p.has_smstateen {
        // Let the host reach every state mstateen0 lets through (AIA CSRs,
        // envcfg, ...); bits the firmware withholds read back as zero.
        csr::write!(num::HSTATEEN0, u64::MAX);
    }
    csr::write!(num::HTIMEDELTA, 0);
    csr::write!(num::HVIP, 0);
    csr::write!(num::HGEIE, 0);
    csr::write!(num::HGATP, p.host_hgatp);
    crate::arch::hfence_gvma_all();
    csr::write!(
        num::HSTATUS,
        bits::HSTATUS_SPV | bits::HSTATUS_SPVP | (p.host_vgein << bits::HSTATUS_VGEIN_SHIFT)
    );
    if p.has_sstc {
        csr::write!(num::STIMECMP, u64::MAX);
    }
    // FP and vector state belong to the guest; leave them enabled at HS so
    // vsstatus alone decides. Salus itself never touches F/V registers.
    let mut sstatus = csr::read!(num::SSTATUS);
    sstatus &= !(bits::SSTATUS_FS_MASK | bits::SSTATUS_VS_MASK | bits::SSTATUS_SIE);
    sstatus |= bits::SSTATUS_FS_INITIAL | bits::SSTATUS_SPP;
    if p.has_vector {
        sstatus |= bits::SSTATUS_VS_INITIAL;
    }
    csr::write!(num::SSTATUS, sstatus);
    csr::write!(num::SIE, (1 << bits::IRQ_S_SOFT) | (1 << bits::IRQ_S_TIMER));
    crate::arch::imsic::init_hart();
}

fn banner(info: &MachineInfo, layout: &Layout, isa: IsaExtensions, boot_hart: usize) {
    info!(
        "Salus {} (HS mode): {} harts, boot hart {}",
        env!("CARGO_PKG_VERSION"),
        info.cpus.len(),
        boot_hart
    );
    let mib = |b: u64| b >> 20;
    info!(
        "memory: {} MiB at {:#x}; firmware keeps {} MiB, Salus keeps {} MiB ({} KiB image, {} KiB heap, {} KiB page map, {} KiB page tables); host gets {} MiB",
        mib(layout.ram.len),
        layout.ram.start.bits(),
        mib(layout.firmware.len),
        mib(layout.salus.len),
        (entry::image_range().1 - entry::image_range().0) / 1024,
        layout.heap.len / 1024,
        layout.page_map.len / 1024,
        layout.pt_pool.len / 1024,
        mib(layout.host_ram().len)
    );
    crate::console::_print(format_args!("salus: ISA:"));
    for (name, flag) in [
        ("H", IsaExtensions::H),
        ("V", IsaExtensions::V),
        ("Sstc", IsaExtensions::SSTC),
        ("Ssaia", IsaExtensions::SSAIA),
        ("Smaia", IsaExtensions::SMAIA),
        ("Svadu", IsaExtensions::SVADU),
        ("Svnapot", IsaExtensions::SVNAPOT),
        ("Zicbom", IsaExtensions::ZICBOM),
        ("Zkn", IsaExtensions::ZKN),
        ("Zknh", IsaExtensions::ZKNH),
    ] {
        let mark = if isa.contains(flag) { "+" } else { "-" };
        crate::console::_print(format_args!(" {}{}", mark, name));
    }
    crate::console::_print(format_args!("\n"));
    match info.s_imsic() {
        Some(i) => info!(
            "AIA: S-level IMSIC at {:#x}, {} ids, guest-index bits {}; APLICs: {}",
            i.regs.first().map_or(0, |r| r.start.bits()),
            i.num_ids,
            i.guest_index_bits,
            info.aplics.len()
        ),
        None => info!("AIA: no IMSIC (host gets no external interrupts)"),
    }
    match &info.pci {
        Some(p) => info!(
            "PCI: ECAM at {:#x} (+{:#x})",
            p.ecam.start.bits(),
            p.ecam.len
        ),
        None => info!("PCI: none"),
    }
}
