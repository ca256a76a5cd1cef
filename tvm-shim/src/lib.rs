//! The pure logic of the TVM boot shim (see `main.rs` and
//! `docs/linux-tvm.md`): which device-tree ranges become MMIO regions, how
//! they are rounded to pages and checked against RAM, where `/chosen/rng-seed`
//! sits in the blob, and a fixed-size line buffer. Host-testable: no
//! allocator, no unsafe code.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

use core::fmt;

pub const PAGE: u64 = 4096;
/// The kernel's offset from the RAM base (Linux RISC-V: 2 MiB aligned).
pub const KERNEL_OFFSET: u64 = 0x20_0000;
/// How many MMIO ranges the shim declares at most.
pub const MAX_MMIO: usize = 32;
/// How many `/memory` ranges it checks against.
pub const MAX_MEMORY: usize = 8;

/// `[base, base + len)` rounded outward to whole 4 KiB pages, as (base,
/// len). `None` for an empty range or one that wraps.
pub fn page_range(base: u64, len: u64) -> Option<(u64, u64)> {
    if len == 0 {
        return None;
    }
    let end = base.checked_add(len)?.checked_add(PAGE - 1)? & !(PAGE - 1);
    let start = base & !(PAGE - 1);
    Some((start, end - start))
}

/// Whether two half-open ranges (base, len) share a byte.
pub fn overlaps(a: (u64, u64), b: (u64, u64)) -> bool {
    let (ae, be) = (a.0.saturating_add(a.1), b.0.saturating_add(b.1));
    a.1 != 0 && b.1 != 0 && a.0 < be && b.0 < ae
}

/// Adds `r` to the first `*n` entries of `set`, merging it with every range
/// it overlaps or touches. `false` when the set is full.
pub fn merge_into(set: &mut [(u64, u64)], n: &mut usize, r: (u64, u64)) -> bool {
    let (mut s, mut e) = (r.0, r.0 + r.1);
    let mut k = 0;
    while k < *n {
        let (bs, be) = (set[k].0, set[k].0 + set[k].1);
        if bs <= e && s <= be {
            s = s.min(bs);
            e = e.max(be);
            set[k] = set[*n - 1];
            *n -= 1;
        } else {
            k += 1;
        }
    }
    if *n == set.len() {
        return false;
    }
    set[*n] = (s, e - s);
    *n += 1;
    true
}

/// Why the shim refuses a device tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    BadFdt,
    NoMemory,
    /// A device range (page-rounded) overlaps `/memory`.
    MmioOverlapsMemory(u64, u64),
    TooManyRegions,
    BadRange(u64, u64),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match *self {
            Error::BadFdt => write!(f, "bad device tree"),
            Error::NoMemory => write!(f, "no /memory"),
            Error::MmioOverlapsMemory(b, l) => {
                write!(f, "device range {b:#x}+{l:#x} overlaps /memory")
            }
            Error::TooManyRegions => write!(f, "more than {MAX_MMIO} MMIO ranges"),
            Error::BadRange(b, l) => write!(f, "bad reg range {b:#x}+{l:#x}"),
        }
    }
}

/// What the shim does with a device tree.
#[derive(Debug)]
pub struct Plan {
    pub mmio: [(u64, u64); MAX_MMIO],
    pub nmmio: usize,
    pub memory: [(u64, u64); MAX_MEMORY],
    pub nmemory: usize,
    /// (offset in the blob, length) of `/chosen/rng-seed`'s bytes.
    pub rng_seed: Option<(usize, usize)>,
    /// Some CPU's `riscv,isa` lists V (the kernel will use the vector unit).
    pub isa_v: bool,
}

/// Whether a `riscv,isa` string lists V among its single-letter
/// extensions (`rv64imafdcv_zicsr...`: the letters before the first `_`).
pub fn isa_has_v(isa: &str) -> bool {
    let isa = isa.trim_end_matches('\0');
    let base = isa
        .strip_prefix("rv64")
        .or_else(|| isa.strip_prefix("rv32"))
        .unwrap_or("");
    base.split('_').next().unwrap_or("").contains('v')
}

/// Top-level nodes whose `reg` is not a device: RAM, CPUs, reservations.
fn skipped_top(name: &str) -> bool {
    let base = name.split('@').next().unwrap_or("");
    base == "memory" || base == "cpus" || base == "reserved-memory" || base == "chosen"
}

/// IMSIC interrupt files are the TSM's business, never MMIO exits.
fn is_imsic(name: &str, compatible: Option<fdt::standard_nodes::Compatible>) -> bool {
    name.split('@').next() == Some("imsics")
        || compatible.is_some_and(|c| c.all().any(|s| s == "riscv,imsics"))
}

/// Checks a range (page-rounded) against RAM and adds it to the plan.
pub fn add_device_range(plan: &mut Plan, base: u64, len: u64) -> Result<(), Error> {
    let r = page_range(base, len).ok_or(Error::BadRange(base, len))?;
    if plan.memory[..plan.nmemory].iter().any(|&m| overlaps(m, r)) {
        return Err(Error::MmioOverlapsMemory(r.0, r.1));
    }
    if !merge_into(&mut plan.mmio, &mut plan.nmmio, r) {
        return Err(Error::TooManyRegions);
    }
    Ok(())
}

fn walk(plan: &mut Plan, node: fdt::node::FdtNode, top: bool) -> Result<(), Error> {
    for child in node.children() {
        if (top && skipped_top(child.name)) || is_imsic(child.name, child.compatible()) {
            continue;
        }
        if let Some(regs) = child.reg() {
            for r in regs {
                let Some(size) = r.size else { continue };
                add_device_range(plan, r.starting_address as u64, size as u64)?;
            }
        }
        walk(plan, child, false)?;
    }
    Ok(())
}

/// Reads the device tree in `blob`: RAM, every device range (all nodes
/// with `reg` except `/memory*`, `/cpus`, `/reserved-memory`, IMSICs), and
/// where `/chosen/rng-seed`'s bytes are.
pub fn plan(blob: &[u8]) -> Result<Plan, Error> {
    let fdt = fdt::Fdt::new(blob).map_err(|_| Error::BadFdt)?;
    let mut plan = Plan {
        mmio: [(0, 0); MAX_MMIO],
        nmmio: 0,
        memory: [(0, 0); MAX_MEMORY],
        nmemory: 0,
        rng_seed: None,
        isa_v: false,
    };
    if let Some(cpus) = fdt.find_node("/cpus") {
        plan.isa_v = cpus.children().any(|c| {
            c.property("riscv,isa")
                .and_then(|p| core::str::from_utf8(p.value).ok())
                .is_some_and(isa_has_v)
        });
    }
    let root = fdt.find_node("/").ok_or(Error::BadFdt)?;
    for node in root.children() {
        if node.name.split('@').next() != Some("memory") {
            continue;
        }
        for r in node.reg().into_iter().flatten() {
            let len = r.size.unwrap_or(0) as u64;
            if len != 0 && plan.nmemory < MAX_MEMORY {
                plan.memory[plan.nmemory] = (r.starting_address as u64, len);
                plan.nmemory += 1;
            }
        }
    }
    if plan.nmemory == 0 {
        return Err(Error::NoMemory);
    }
    walk(&mut plan, root, true)?;
    if let Some(p) = fdt
        .find_node("/chosen")
        .and_then(|c| c.property("rng-seed"))
    {
        let off = p.value.as_ptr() as usize - blob.as_ptr() as usize;
        plan.rng_seed = Some((off, p.value.len()));
    }
    Ok(plan)
}

/// A line of at most 160 bytes (longer output is cut).
pub struct Line {
    buf: [u8; 160],
    len: usize,
}

impl Line {
    pub const fn new() -> Line {
        Line {
            buf: [0; 160],
            len: 0,
        }
    }
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl Default for Line {
    fn default() -> Self {
        Line::new()
    }
}

impl fmt::Write for Line {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let n = s.len().min(self.buf.len() - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn v_in_the_isa_string() {
        assert!(isa_has_v("rv64imafdcv_zicsr_zifencei\0"));
        assert!(isa_has_v("rv64imafdcvh"));
        assert!(!isa_has_v("rv64imafdc_zicsr_zve64x"));
        assert!(!isa_has_v("rv64imafdc"));
        assert!(!isa_has_v("garbage_v"));
    }

    use super::*;
    use core::fmt::Write;

    #[test]
    fn rounding() {
        assert_eq!(page_range(0x1000_0000, 0x100), Some((0x1000_0000, 0x1000)));
        assert_eq!(page_range(0x1000_0f00, 0x200), Some((0x1000_0000, 0x2000)));
        assert_eq!(page_range(0x2000, 0x1000), Some((0x2000, 0x1000)));
        assert_eq!(page_range(0x2000, 0), None);
        assert_eq!(page_range(u64::MAX - 0x10, 0x100), None);
    }

    #[test]
    fn overlap() {
        assert!(overlaps((0x1000, 0x1000), (0x1fff, 1)));
        assert!(!overlaps((0x1000, 0x1000), (0x2000, 0x1000)));
        assert!(!overlaps((0x1000, 0), (0x1000, 0x1000)));
        assert!(overlaps((0, u64::MAX), (u64::MAX - 1, 1)));
    }

    #[test]
    fn merging() {
        let mut set = [(0, 0); 3];
        let mut n = 0;
        assert!(merge_into(&mut set, &mut n, (0x1000, 0x1000)));
        assert!(merge_into(&mut set, &mut n, (0x3000, 0x1000)));
        assert!(merge_into(&mut set, &mut n, (0x2000, 0x1000)));
        assert_eq!(n, 1);
        assert_eq!(set[0], (0x1000, 0x3000));
        assert!(merge_into(&mut set, &mut n, (0x10000, 0x1000)));
        assert!(merge_into(&mut set, &mut n, (0x20000, 0x1000)));
        assert!(!merge_into(&mut set, &mut n, (0x30000, 0x1000)));
    }

    #[test]
    fn device_in_ram_refused() {
        let mut p = Plan {
            mmio: [(0, 0); MAX_MMIO],
            nmmio: 0,
            memory: [(0, 0); MAX_MEMORY],
            nmemory: 1,
            rng_seed: None,
            isa_v: false,
        };
        p.memory[0] = (0x8000_0000, 0x1000_0000);
        assert_eq!(add_device_range(&mut p, 0x1000_0000, 0x100), Ok(()));
        assert_eq!(
            add_device_range(&mut p, 0x8fff_ff00, 0x100),
            Err(Error::MmioOverlapsMemory(0x8fff_f000, 0x1000))
        );
        // Rounding outward makes a range that ends just below RAM touch it.
        assert_eq!(
            add_device_range(&mut p, 0x7fff_fff0, 0x20),
            Err(Error::MmioOverlapsMemory(0x7fff_f000, 0x2000))
        );
        assert_eq!(p.nmmio, 1);
    }

    #[test]
    fn line_cuts() {
        let mut l = Line::new();
        for _ in 0..50 {
            write!(l, "abcd").unwrap();
        }
        assert_eq!(l.as_bytes().len(), 160);
    }

    /// A device tree like the Linux TVM's, plus an IMSIC and a second
    /// device range in the UART's page; `dev` adds one more device range.
    fn tree(dev: Option<(u64, u64)>) -> Vec<u8> {
        let mut w = vm_fdt::FdtWriter::new().unwrap();
        let root = w.begin_node("").unwrap();
        w.property_u32("#address-cells", 2).unwrap();
        w.property_u32("#size-cells", 2).unwrap();
        let n = w.begin_node("chosen").unwrap();
        w.property_string("bootargs", "console=ttyS0").unwrap();
        w.property("rng-seed", &[0xaa; 32]).unwrap();
        w.end_node(n).unwrap();
        let n = w.begin_node("cpus").unwrap();
        w.property_u32("#address-cells", 1).unwrap();
        w.property_u32("#size-cells", 0).unwrap();
        let c = w.begin_node("cpu@0").unwrap();
        w.property_u32("reg", 0).unwrap();
        w.end_node(c).unwrap();
        w.end_node(n).unwrap();
        let n = w.begin_node("memory@80000000").unwrap();
        w.property_string("device_type", "memory").unwrap();
        w.property_array_u64("reg", &[0x8000_0000, 0x1000_0000])
            .unwrap();
        w.end_node(n).unwrap();
        let n = w.begin_node("imsics@28000000").unwrap();
        w.property_string("compatible", "riscv,imsics").unwrap();
        w.property_array_u64("reg", &[0x2800_0000, 0x4000]).unwrap();
        w.end_node(n).unwrap();
        let soc = w.begin_node("soc").unwrap();
        w.property_u32("#address-cells", 2).unwrap();
        w.property_u32("#size-cells", 2).unwrap();
        w.property_string("compatible", "simple-bus").unwrap();
        w.property_null("ranges").unwrap();
        for (name, base, len) in [
            ("serial@10000000", 0x1000_0000u64, 0x100u64),
            ("gpio@10000100", 0x1000_0100, 0x100),
            ("rtc@101000", 0x10_1000, 0x1000),
        ] {
            let n = w.begin_node(name).unwrap();
            w.property_array_u64("reg", &[base, len]).unwrap();
            w.end_node(n).unwrap();
        }
        if let Some((b, l)) = dev {
            let n = w.begin_node("extra").unwrap();
            w.property_array_u64("reg", &[b, l]).unwrap();
            w.end_node(n).unwrap();
        }
        w.end_node(soc).unwrap();
        w.end_node(root).unwrap();
        w.finish().unwrap()
    }

    #[test]
    fn plan_of_a_tree() {
        let blob = tree(None);
        let p = plan(&blob).unwrap();
        assert_eq!(&p.memory[..p.nmemory], &[(0x8000_0000, 0x1000_0000)]);
        // RAM, the CPU and the IMSIC are not MMIO; the two ranges in the
        // UART's page merge.
        let mut m = p.mmio[..p.nmmio].to_vec();
        m.sort();
        assert_eq!(m, vec![(0x10_1000, 0x1000), (0x1000_0000, 0x1000)]);
        let (off, len) = p.rng_seed.unwrap();
        assert_eq!(len, 32);
        assert!(blob[off..off + len].iter().all(|&b| b == 0xaa));
    }

    #[test]
    fn plan_refuses_mmio_in_ram() {
        let blob = tree(Some((0x8800_0000, 0x1000)));
        assert_eq!(
            plan(&blob).unwrap_err(),
            Error::MmioOverlapsMemory(0x8800_0000, 0x1000)
        );
        let blob = tree(Some((0x9000_0000, 0x1000)));
        assert_eq!(plan(&blob).unwrap().nmmio, 3);
    }
}
