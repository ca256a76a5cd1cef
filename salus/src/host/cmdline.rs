//! Salus's own options and the host's kernel command line.
//!
//! QEMU's `-device guest-loader,...,bootargs=` becomes the host kernel's
//! command line; `-append` becomes the firmware tree's `/chosen/bootargs`,
//! which the host gets when the guest-loader gives none. Salus reads its
//! options from both, as whitespace-separated words:
//!
//! * `salus.pci=unsafe`: give the host the PCI host bridge even without an
//!   IOMMU (its devices can then DMA anywhere, Salus's memory included).
//!   Salus-only: removed from what the host sees.
//! * `salus.bench`: also read by the initramfs's `/init`; Salus counts the
//!   host's traps by cause and prints them when the host shuts down.
//! * `salus.check`: after every COVH call Salus also cross-checks the page
//!   map against the TSM's own records (slow; for fuzzing).
//!
//! * `salus.no_htinst`: ignore `htinst` and always read a trapping
//!   instruction with HLVX (the path hardware without htinst takes; for
//!   tests on QEMU, which always provides htinst). Left for the host to see.
//! * `salus.sbi_kick`: kick a hart for a TVM's IPI with an SBI IPI even
//!   when Salus has an S-level IMSIC file to ring (the path of machines
//!   without AIA; for tests and benchmarks). Left for the host to see.
//! * `salus.vmid_bits=N`: use at most N VMID bits (tests the shared-VMID
//!   path on QEMU). Left for the host to see.
//!
//! With no command line (or only Salus-only words) the host gets an empty
//! one: Salus adds nothing of its own. A Linux host's `console=` and
//! `earlycon=` come from whoever boots it (the Makefile's `LINUX_BOOTARGS`).

use alloc::string::String;
use alloc::vec::Vec;
use devicetree::MachineInfo;

/// Words only Salus consumes.
const SALUS_ONLY: &[&str] = &["salus.pci=", "salus.check"];

#[derive(Clone, Copy, Debug, Default)]
pub struct Options {
    pub pci_unsafe: bool,
    pub bench: bool,
    pub check: bool,
    pub no_htinst: bool,
    pub sbi_kick: bool,
    pub vmid_bits: Option<u32>,
}

fn words(info: &MachineInfo) -> impl Iterator<Item = &str> {
    let kernel = info
        .kernel
        .as_ref()
        .and_then(|k| k.bootargs.as_deref())
        .unwrap_or("");
    let chosen = info.bootargs.as_deref().unwrap_or("");
    kernel.split_whitespace().chain(chosen.split_whitespace())
}

pub fn parse(info: &MachineInfo) -> Options {
    let mut o = Options::default();
    for w in words(info) {
        match w {
            "salus.pci=unsafe" => o.pci_unsafe = true,
            "salus.bench" => o.bench = true,
            "salus.check" => o.check = true,
            "salus.no_htinst" => o.no_htinst = true,
            "salus.sbi_kick" => o.sbi_kick = true,
            _ => {
                if let Some(n) = w.strip_prefix("salus.vmid_bits=") {
                    o.vmid_bits = n.parse().ok();
                }
            }
        }
    }
    o
}

/// The host kernel's command line: the guest-loader's, else `/chosen`'s,
/// without Salus-only words; empty when that leaves nothing (given as an
/// empty `/chosen/bootargs`, so the firmware's is not used instead).
pub fn host_bootargs(info: &MachineInfo) -> String {
    let src = info
        .kernel
        .as_ref()
        .and_then(|k| k.bootargs.as_deref())
        .or(info.bootargs.as_deref())
        .unwrap_or("");
    let kept: Vec<&str> = src
        .split_whitespace()
        .filter(|w| !SALUS_ONLY.iter().any(|p| w.starts_with(p)))
        .collect();
    kept.join(" ")
}
