//! What tellus learns from the device tree it was booted with.

use fdt::Fdt;

pub const MAX_HARTS: usize = 16;
const MAX_RANGES: usize = 16;

/// A half-open physical address range `[start, end)`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Range {
    pub start: u64,
    pub end: u64,
}

impl Range {
    pub fn new(start: u64, size: u64) -> Self {
        Range {
            start,
            end: start.saturating_add(size),
        }
    }
    pub fn size(&self) -> u64 {
        self.end - self.start
    }
}

/// A small fixed-capacity list of ranges.
#[derive(Clone, Copy, Debug)]
pub struct Ranges {
    items: [Range; MAX_RANGES],
    len: usize,
}

impl Ranges {
    pub const fn new() -> Self {
        Ranges {
            items: [Range { start: 0, end: 0 }; MAX_RANGES],
            len: 0,
        }
    }
    pub fn push(&mut self, r: Range) {
        if r.end > r.start && self.len < MAX_RANGES {
            self.items[self.len] = r;
            self.len += 1;
        }
    }
    pub fn as_slice(&self) -> &[Range] {
        &self.items[..self.len]
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Default for Ranges {
    fn default() -> Self {
        Ranges::new()
    }
}

#[derive(Debug)]
pub struct Platform {
    pub boot_hartid: u64,
    /// Hart ids of the enabled cpus in /cpus, in FDT order.
    pub harts: [u64; MAX_HARTS],
    pub nharts: usize,
    pub timebase: u64,
    pub has_v: bool,
    pub has_sstc: bool,
    /// Ssaia (`siselect`) per the ISA string.
    pub has_ssaia: bool,
    /// Zawrs (`wrs.nto` / `wrs.sto`) on the boot hart.
    pub has_zawrs: bool,
    /// Zicboz (`cbo.zero`) on the boot hart.
    pub has_zicboz: bool,
    pub memory: Ranges,
    /// All /reserved-memory children.
    pub reserved: Ranges,
    /// The /reserved-memory children marked `no-map` (what the host must
    /// never be able to touch).
    pub no_map: Ranges,
    /// /memreserve/ entries of the FDT header.
    pub memreserve: Ranges,
    pub fdt: Range,
    pub bench: bool,
    /// `skip_oob_dbcn` in bootargs: do not make the DBCN calls that crash
    /// SBIs without buffer validation (for runs on plain OpenSBI).
    pub skip_oob_dbcn: bool,
    /// `fail-selftest` in bootargs: add one test that always fails.
    pub fail_selftest: bool,
    /// Zknh and Zbb on the boot hart (SHA-384 backend for the TEE bench).
    pub has_zknh: bool,
    /// `fuzz` in bootargs: randomized COVH sequences (`seed=N`, `iters=N`).
    pub fuzz: bool,
    /// `attack-reboot` in bootargs: only the reboot attack (TVM secret
    /// across a warm reset), see `attack::hw::reboot_scenario`.
    pub attack_reboot: bool,
    /// `salus.no_htinst` in bootargs: Salus reads trapped MMIO
    /// instructions with HLVX.
    pub no_htinst: bool,
    /// `fw-resv=ADDR`: only check that ADDR, which the firmware's tree
    /// reserves, is out of the host's reach (`attack::hw`).
    pub fw_resv: Option<u64>,
    /// The ns16550a Salus emulates for the host (0 if none).
    pub uart: u64,
    /// The S-level IMSIC's base (0 if none) and its guest index bits: hart
    /// slot i's file is at `imsic + i << (12 + imsic_guest_bits)`, its guest
    /// file k `k` pages after it.
    pub imsic: u64,
    pub imsic_guest_bits: u32,
    pub seed: u64,
    pub fuzz_iters: u64,
    /// `fuzz-harts=1`: fuzz from the boot hart only (default: every hart).
    pub fuzz_harts: u64,
    /// `fuzz-nofence`: no tvm_fence / destroy_tvm while harts race.
    pub fuzz_nofence: bool,
    /// `linux-tvm` in bootargs: boot the Linux TVM from the bundle
    /// (`tee::linux_tvm`) instead of the suite.
    pub linux_tvm: bool,
    /// The host's initrd (`/chosen/linux,initrd-start/end`): kept out of
    /// the page pool.
    pub initrd: Option<Range>,
    /// /chosen/bootargs when no word of it is one tellus knows (a run
    /// given no bootargs: `make run_tellus`); `None` when absent or when
    /// tellus was given options.
    pub unasked_bootargs: Option<crate::console::Msg>,
}

impl Platform {
    pub fn hart_ids(&self) -> &[u64] {
        &self.harts[..self.nharts]
    }
    pub fn slot_of(&self, hartid: u64) -> Option<usize> {
        self.hart_ids().iter().position(|&h| h == hartid)
    }
    pub fn max_hartid(&self) -> u64 {
        self.hart_ids().iter().copied().max().unwrap_or(0)
    }
    /// Converts milliseconds to `time` ticks.
    pub fn ms(&self, ms: u64) -> u64 {
        self.timebase * ms / 1000
    }
    /// The range the negative tests poke at: the first no-map reserved
    /// range, else the first reserved one.
    pub fn forbidden(&self) -> Option<Range> {
        self.no_map
            .as_slice()
            .first()
            .or(self.reserved.as_slice().first())
            .copied()
    }
    pub fn ram_end(&self) -> u64 {
        self.memory
            .as_slice()
            .iter()
            .map(|r| r.end)
            .max()
            .unwrap_or(0)
    }
}

fn be_u64(bytes: &[u8]) -> Option<u64> {
    match bytes.len() {
        4 => Some(u32::from_be_bytes(bytes.try_into().ok()?) as u64),
        8 => Some(u64::from_be_bytes(bytes.try_into().ok()?)),
        _ => None,
    }
}

/// Single-letter extension check on an ISA string like `rv64imafdcv_sstc`.
fn isa_has_letter(isa: &str, letter: char) -> bool {
    let base = isa.split('_').next().unwrap_or("");
    let letters = base
        .strip_prefix("rv64")
        .or_else(|| base.strip_prefix("rv32"))
        .unwrap_or("");
    letters.chars().any(|c| c == letter)
}

fn isa_has_multi(isa: &str, ext: &str) -> bool {
    isa.split('_').skip(1).any(|e| e == ext)
}

pub fn parse(fdt_addr: u64, boot_hartid: u64) -> Result<Platform, &'static str> {
    // SAFETY: a1 at entry points to the FDT blob the firmware handed us; the
    // header is validated by the parser before it uses totalsize.
    let fdt = unsafe { Fdt::from_ptr(fdt_addr as *const u8) }.map_err(|_| "bad FDT header")?;

    let mut p = Platform {
        boot_hartid,
        harts: [0; MAX_HARTS],
        nharts: 0,
        timebase: 0,
        has_v: false,
        has_sstc: false,
        has_ssaia: false,
        has_zawrs: false,
        has_zicboz: false,
        memory: Ranges::new(),
        reserved: Ranges::new(),
        no_map: Ranges::new(),
        memreserve: Ranges::new(),
        fdt: Range::new(fdt_addr, fdt.total_size() as u64),
        bench: false,
        skip_oob_dbcn: false,
        fail_selftest: false,
        attack_reboot: false,
        no_htinst: false,
        fw_resv: None,
        uart: 0,
        imsic: 0,
        imsic_guest_bits: 0,
        has_zknh: false,
        fuzz: false,
        seed: 1,
        fuzz_iters: 2000,
        fuzz_harts: 0,
        fuzz_nofence: false,
        linux_tvm: false,
        initrd: None,
        unasked_bootargs: None,
    };

    if let Some(r) = fdt
        .find_compatible(&["ns16550a"])
        .and_then(|n| n.reg())
        .and_then(|mut r| r.next())
    {
        p.uart = r.starting_address as u64;
    }
    if let Some(n) = fdt.find_compatible(&["riscv,imsics"]) {
        if let Some(r) = n.reg().and_then(|mut r| r.next()) {
            p.imsic = r.starting_address as u64;
        }
        p.imsic_guest_bits = n
            .property("riscv,guest-index-bits")
            .and_then(|v| v.as_usize())
            .unwrap_or(0) as u32;
    }
    let cpus = fdt.find_node("/cpus").ok_or("no /cpus")?;
    if let Some(tb) = cpus.property("timebase-frequency") {
        p.timebase = be_u64(tb.value).unwrap_or(0);
    }
    for cpu in cpus.children() {
        if cpu.name.split('@').next() != Some("cpu") {
            continue;
        }
        if cpu.property("device_type").and_then(|d| d.as_str()) != Some("cpu") {
            continue;
        }
        if let Some(s) = cpu.property("status").and_then(|s| s.as_str()) {
            if s != "okay" && s != "ok" {
                continue;
            }
        }
        let Some(id) = cpu.property("reg").and_then(|r| be_u64(r.value)) else {
            continue;
        };
        if p.timebase == 0 {
            if let Some(tb) = cpu.property("timebase-frequency") {
                p.timebase = be_u64(tb.value).unwrap_or(0);
            }
        }
        if id == boot_hartid {
            if let Some(isa) = cpu.property("riscv,isa").and_then(|i| i.as_str()) {
                p.has_v |= isa_has_letter(isa, 'v');
                p.has_sstc |= isa_has_multi(isa, "sstc");
                p.has_ssaia |= isa_has_multi(isa, "ssaia");
                p.has_zawrs |= isa_has_multi(isa, "zawrs");
                p.has_zicboz |= isa_has_multi(isa, "zicboz");
            }
            let (mut zknh, mut zbb) = (false, false);
            if let Some(isa) = cpu.property("riscv,isa").and_then(|i| i.as_str()) {
                zknh |= isa_has_multi(isa, "zknh");
                zbb |= isa_has_multi(isa, "zbb");
            }
            if let Some(exts) = cpu.property("riscv,isa-extensions") {
                for e in exts.value.split(|&b| b == 0) {
                    p.has_v |= e == b"v";
                    p.has_sstc |= e == b"sstc";
                    p.has_ssaia |= e == b"ssaia";
                    p.has_zawrs |= e == b"zawrs";
                    p.has_zicboz |= e == b"zicboz";
                    zknh |= e == b"zknh";
                    zbb |= e == b"zbb";
                }
            }
            p.has_zknh = zknh && zbb;
        }
        if p.nharts < MAX_HARTS {
            p.harts[p.nharts] = id;
            p.nharts += 1;
        }
    }
    if p.timebase == 0 {
        return Err("no timebase-frequency");
    }
    if p.slot_of(boot_hartid).is_none() {
        return Err("boot hart not in /cpus");
    }

    for node in fdt.find_node("/").ok_or("no root node")?.children() {
        let n = node.name.split('@').next().unwrap_or("");
        if n == "memory" {
            for r in node.reg().into_iter().flatten() {
                p.memory.push(Range::new(
                    r.starting_address as u64,
                    r.size.unwrap_or(0) as u64,
                ));
            }
        }
    }
    if p.memory.is_empty() {
        return Err("no /memory");
    }

    if let Some(resv) = fdt.find_node("/reserved-memory") {
        for child in resv.children() {
            let no_map = child.property("no-map").is_some();
            for r in child.reg().into_iter().flatten() {
                let range = Range::new(r.starting_address as u64, r.size.unwrap_or(0) as u64);
                p.reserved.push(range);
                if no_map {
                    p.no_map.push(range);
                }
            }
        }
    }
    for r in fdt.memory_reservations() {
        p.memreserve
            .push(Range::new(r.address() as u64, r.size() as u64));
    }

    if let Some(chosen) = fdt.find_node("/chosen") {
        let prop = |n: &str| chosen.property(n).and_then(|v| be_u64(v.value));
        if let (Some(s), Some(e)) = (prop("linux,initrd-start"), prop("linux,initrd-end")) {
            if e > s {
                p.initrd = Some(Range { start: s, end: e });
            }
        }
    }
    if let Some(args) = fdt
        .find_node("/chosen")
        .and_then(|c| c.property("bootargs"))
        .and_then(|a| a.as_str())
    {
        p.bench = args.split_whitespace().any(|w| w == "bench");
        p.skip_oob_dbcn = args.split_whitespace().any(|w| w == "skip_oob_dbcn");
        p.fail_selftest = args.split_whitespace().any(|w| w == "fail-selftest");
        for w in args.split_whitespace() {
            p.fuzz |= w == "fuzz";
            p.attack_reboot |= w == "attack-reboot";
            p.no_htinst |= w == "salus.no_htinst";
            if let Some(v) = w
                .strip_prefix("fw-resv=0x")
                .and_then(|v| u64::from_str_radix(v, 16).ok())
            {
                p.fw_resv = Some(v);
            }
            if let Some(v) = w.strip_prefix("seed=").and_then(|v| v.parse().ok()) {
                p.seed = v;
            }
            if let Some(v) = w.strip_prefix("iters=").and_then(|v| v.parse().ok()) {
                p.fuzz_iters = v;
            }
            if let Some(v) = w.strip_prefix("fuzz-harts=").and_then(|v| v.parse().ok()) {
                p.fuzz_harts = v;
            }
            p.fuzz_nofence |= w == "fuzz-nofence";
            p.linux_tvm |= w == "linux-tvm";
        }
        if !args.split_whitespace().any(tellus_word) {
            p.unasked_bootargs = Some(crate::console::Msg::from_args(format_args!("{args}")));
        }
    }
    Ok(p)
}

/// A bootargs word tellus (or Salus, for the host's tests) acts on.
fn tellus_word(w: &str) -> bool {
    const WORDS: &[&str] = &[
        "bench",
        "skip_oob_dbcn",
        "fail-selftest",
        "fuzz",
        "attack-reboot",
        "fuzz-nofence",
        "linux-tvm",
    ];
    const PREFIXES: &[&str] = &["salus.", "fw-resv=", "seed=", "iters=", "fuzz-harts="];
    WORDS.contains(&w) || PREFIXES.iter().any(|p| w.starts_with(p))
}

// ---- free RAM ----------------------------------------------------------------

pub const PAGE: u64 = 4096;

extern "C" {
    static _image_start: u8;
    static _image_end: u8;
}

fn image_range() -> Range {
    let s = (&raw const _image_start) as u64;
    let e = (&raw const _image_end) as u64;
    Range { start: s, end: e }
}

/// Ranges the memory test must skip, sorted and page-aligned outward.
pub fn exclusions(p: &Platform) -> Ranges {
    let mut v = [Range::default(); 48];
    let mut n = 0;
    let mut add = |r: Range| {
        if n < v.len() && r.end > r.start {
            v[n] = Range {
                start: r.start & !(PAGE - 1),
                end: r.end.saturating_add(PAGE - 1) & !(PAGE - 1),
            };
            n += 1;
        }
    };
    for r in p.reserved.as_slice() {
        add(*r);
    }
    for r in p.memreserve.as_slice() {
        add(*r);
    }
    add(image_range());
    add(p.fdt);
    if let Some(r) = p.initrd {
        add(r);
    }
    let v = &mut v[..n];
    v.sort_unstable_by_key(|r| r.start);
    // Merge into a Ranges (at most 16 after merging in practice).
    let mut out = Ranges::new();
    let mut cur: Option<Range> = None;
    for r in v.iter() {
        match cur {
            Some(ref mut c) if r.start <= c.end => c.end = c.end.max(r.end),
            Some(c) => {
                out.push(c);
                cur = Some(*r);
            }
            None => cur = Some(*r),
        }
    }
    if let Some(c) = cur {
        out.push(c);
    }
    out
}

/// Calls `f(start, end)` for each page-aligned piece of RAM not excluded.
pub fn for_each_free(p: &Platform, excl: &Ranges, mut f: impl FnMut(u64, u64)) {
    for m in p.memory.as_slice() {
        let mut cur = m.start.saturating_add(PAGE - 1) & !(PAGE - 1);
        let end = m.end & !(PAGE - 1);
        for x in excl.as_slice() {
            if x.end <= cur || x.start >= end {
                continue;
            }
            if x.start > cur {
                f(cur, x.start);
            }
            cur = cur.max(x.end);
        }
        if cur < end {
            f(cur, end);
        }
    }
}
