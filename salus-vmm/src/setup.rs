//! Building the TVM: the guest-physical layout (`plan`, pure), then the
//! ioctls in order (`build`) with the initial measurement computed over
//! exactly what was added.
#![forbid(unsafe_code)]

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;

use measurement::{Backend, Measurement};

use crate::abi::{self, errno, SIZE_2M, SIZE_4K};
use crate::args::{Dtb, Profile, RunArgs};
use crate::guestvm;
use crate::memory::{Memory, Range};
use crate::protocol as proto;
use crate::tsm::{Page, PageSize, Tsm, PAGE};

/// Where generic images go (and guestvm's fixed `IMAGE_GPA`).
pub const RAM_GPA: u64 = 0x8000_0000;

/// File contents as whole zero-padded pages, and the byte length.
pub struct Blob {
    pub pages: Vec<Page>,
    pub len: u64,
}

impl Blob {
    #[cfg(test)]
    pub fn from_bytes(b: &[u8]) -> Blob {
        let mut pages = vec![Page::ZERO; b.len().div_ceil(PAGE)];
        for (p, chunk) in pages.iter_mut().zip(b.chunks(PAGE)) {
            p.0[..chunk.len()].copy_from_slice(chunk);
        }
        Blob {
            pages,
            len: b.len() as u64,
        }
    }

    /// The whole file (or block device: its length comes from seeking to
    /// the end, as `metadata` says 0 for one).
    pub fn read(path: &Path) -> io::Result<Blob> {
        let mut f = File::open(path)?;
        let len = f.seek(SeekFrom::End(0))?;
        Blob::read_at(&mut f, 0, len)
    }

    /// `len` bytes of `f` from `offset`; a file shorter than that is an
    /// error, not zeros.
    pub fn read_at(f: &mut File, offset: u64, len: u64) -> io::Result<Blob> {
        f.seek(SeekFrom::Start(offset))?;
        let mut pages = vec![Page::ZERO; (len as usize).div_ceil(PAGE)];
        let mut left = len as usize;
        for p in pages.iter_mut() {
            let want = left.min(PAGE);
            f.read_exact(&mut p.0[..want])?;
            left -= want;
        }
        Ok(Blob { pages, len })
    }

    pub fn bytes(&self) -> u64 {
        (self.pages.len() * PAGE) as u64
    }
}

pub struct Inputs {
    pub image: Blob,
    pub initrd: Option<Blob>,
    pub dtb: Option<Blob>,
    /// The Linux TVM's boot shim (from its bundle).
    pub shim: Option<Blob>,
}

/// Measured 4 KiB pages at one GPA.
pub struct Load {
    pub what: &'static str,
    pub gpa: u64,
    pub blob: Blob,
}

pub struct Plan {
    pub profile: Profile,
    pub region: Range,
    pub loads: Vec<Load>,
    /// guestvm's measured 2 MiB page (skipped when the driver has no
    /// 2 MiB page to give).
    pub measured_2m: Option<Load>,
    pub vcpus: u64,
    pub entry: u64,
    /// entry_arg before `ARG_HAS_2M` (added when the 2 MiB page went in).
    pub arg: u64,
    pub prefer_2m_zero: Vec<u64>,
}

pub const fn align_up(v: u64, a: u64) -> u64 {
    v.div_ceil(a) * a
}

/// `(text_offset, image_size)` from a RISC-V Linux `Image` header.
pub fn linux_header(first: &Page) -> Option<(u64, u64)> {
    let b = &first.0;
    let u64_at = |o: usize| u64::from_le_bytes(b[o..o + 8].try_into().unwrap());
    (&b[56..60] == b"RSC\x05" || &b[48..56] == b"RISCV\0\0\0").then(|| (u64_at(8), u64_at(16)))
}

/// True if every `isa` line of /proc/cpuinfo has V among its single-letter
/// extensions (`rv64imafdcvh_zicbom...`).
pub fn cpuinfo_has_v(cpuinfo: &str) -> bool {
    let isas: Vec<&str> = cpuinfo
        .lines()
        .filter_map(|l| l.split_once(':'))
        .filter(|(k, _)| k.trim() == "isa")
        .map(|(_, v)| v.trim())
        .collect();
    !isas.is_empty()
        && isas.iter().all(|isa| {
            let isa = isa.to_ascii_lowercase();
            let base = isa
                .strip_prefix("rv64")
                .or_else(|| isa.strip_prefix("rv32"))
                .unwrap_or("");
            base.split('_').next().unwrap_or("").contains('v')
        })
}

pub fn plan(args: &RunArgs, inputs: Inputs, max_vcpus: u64, has_v: bool) -> Result<Plan, String> {
    if args.profile == Profile::LinuxTvm {
        return crate::linux_tvm::plan(args, inputs, max_vcpus);
    }
    let image = inputs.image;
    if image.len == 0 {
        return Err(format!("{}: empty image", args.image.display()));
    }
    let default_vcpus = match args.profile {
        Profile::Guestvm => max_vcpus.clamp(1, 2),
        Profile::Generic | Profile::LinuxTvm => 1,
    };
    let vcpus = args.vcpus.unwrap_or(default_vcpus);
    if vcpus > max_vcpus {
        return Err(format!(
            "--vcpus {vcpus}: the TSM allows at most {max_vcpus} vCPUs per TVM"
        ));
    }
    if args.profile == Profile::Guestvm {
        if image.bytes() > proto::IMAGE_MAX / 2 {
            return Err(format!(
                "{}: {} bytes is too big for guestvm (at most {:#x}: bss and stack follow it)",
                args.image.display(),
                image.len,
                proto::IMAGE_MAX / 2
            ));
        }
        let mut arg = 0;
        if has_v {
            arg |= proto::ARG_HAS_V;
        }
        if vcpus >= 2 {
            arg |= proto::ARG_HAS_VCPU1;
        }
        if let Some(b) = args.bench {
            arg |= proto::ARG_BENCH_ECALL | (b.ecalls << proto::ARG_ITERS_SHIFT);
        }
        return Ok(Plan {
            profile: Profile::Guestvm,
            region: Range::new(proto::REGION_GPA, proto::REGION_LEN),
            loads: vec![Load {
                what: "image",
                gpa: proto::IMAGE_GPA,
                blob: image,
            }],
            measured_2m: Some(Load {
                what: "2 MiB pattern page",
                gpa: proto::MEASURED_2M_GPA,
                blob: Blob {
                    pages: guestvm::measured_2m_pages(),
                    len: SIZE_2M,
                },
            }),
            vcpus,
            entry: proto::IMAGE_GPA,
            arg,
            prefer_2m_zero: vec![proto::ZERO_2M_GPA],
        });
    }

    let region = Range::new(RAM_GPA, args.mem);
    let (text_offset, image_size) = linux_header(&image.pages[0]).unwrap_or((0, 0));
    let image_gpa = RAM_GPA + text_offset;
    let mut next = align_up(image_gpa + image.bytes().max(image_size), SIZE_2M);
    let mut loads = vec![Load {
        what: "image",
        gpa: image_gpa,
        blob: image,
    }];
    let mut arg = 0;
    if let Some(initrd) = inputs.initrd {
        let gpa = next;
        next = align_up(gpa + initrd.bytes(), SIZE_2M);
        loads.push(Load {
            what: "initrd",
            gpa,
            blob: initrd,
        });
    }
    match (&args.dtb, inputs.dtb) {
        (Some(Dtb::Generated), _) => {
            return Err("--dtb generated: not implemented yet (give a --dtb FILE)".into())
        }
        (_, Some(dtb)) => {
            arg = next;
            loads.push(Load {
                what: "dtb",
                gpa: next,
                blob: dtb,
            });
        }
        _ => {}
    }
    for l in &loads {
        let r = Range::new(l.gpa, l.blob.bytes());
        if !region.covers(r) {
            return Err(format!(
                "the {} at [{:#x}, {:#x}) does not fit in --mem {:#x} at {RAM_GPA:#x}",
                l.what,
                r.gpa,
                r.end(),
                args.mem
            ));
        }
    }
    let prefer_2m_zero = zero_2m_blocks(region, &loads);
    Ok(Plan {
        profile: Profile::Generic,
        region,
        loads,
        measured_2m: None,
        vcpus,
        entry: image_gpa,
        arg,
        prefer_2m_zero,
    })
}

/// Every 2 MiB block of `region` nothing is loaded into: each starts as
/// one 2 MiB zero page at its first fault, one conversion (and fence)
/// instead of 512.
pub fn zero_2m_blocks(region: Range, loads: &[Load]) -> Vec<u64> {
    let loaded: Vec<Range> = loads
        .iter()
        .map(|l| Range::new(l.gpa, l.blob.bytes()))
        .collect();
    (0..region.len / SIZE_2M)
        .map(|k| region.gpa + k * SIZE_2M)
        .filter(|&b| !loaded.iter().any(|r| r.overlaps(Range::new(b, SIZE_2M))))
        .collect()
}

/// What `build` made.
pub struct Built {
    pub tvm_id: u64,
    /// Register 0: the measured pages, entry and argument.
    pub measurement: [u8; 48],
    /// Register 1: the configuration (the region, the vCPUs; no AIA).
    pub config: [u8; 48],
    pub entry_arg: u64,
    pub has_2m: bool,
}

/// Adds measured pages in calls of at most `MAX_CALL_BYTES`, extending
/// `m` with every 4 KiB page in the order added.
fn add_measured<T: Tsm>(
    tsm: &T,
    m: &mut Measurement,
    load: &Load,
    size: PageSize,
) -> Result<(), crate::tsm::TsmError> {
    let per_call =
        (abi::MAX_CALL_BYTES / size.bytes()) as usize * (size.bytes() / SIZE_4K) as usize;
    for (k, chunk) in load.blob.pages.chunks(per_call).enumerate() {
        let gpa = load.gpa + (k * per_call * PAGE) as u64;
        tsm.add_measured(gpa, chunk, size)?;
        for (i, p) in chunk.iter().enumerate() {
            m.extend_page(gpa + (i * PAGE) as u64, &p.0);
        }
    }
    Ok(())
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Creates and finalizes the TVM of `plan`, recording in `mem` what it
/// added.
pub fn build<T: Tsm>(
    tsm: &T,
    plan: &Plan,
    mem: &mut Memory<T::Page>,
    note: &mut dyn FnMut(String),
) -> Result<Built, String> {
    let fail = |what: String, e| format!("{what}: {}", tsm.explain(e));
    let tvm_id = tsm
        .create_tvm()
        .map_err(|e| fail("create the TVM".into(), e))?;
    let r = plan.region;
    tsm.add_region(r.gpa, r.len)
        .map_err(|e| fail(format!("add region [{:#x}, {:#x})", r.gpa, r.end()), e))?;
    mem.add_region(r);
    let mut m = Measurement::new(Backend::Portable);
    for l in &plan.loads {
        add_measured(tsm, &mut m, l, PageSize::Size4K)
            .map_err(|e| fail(format!("add the {} at {:#x}", l.what, l.gpa), e))?;
        mem.add_measured(Range::new(l.gpa, l.blob.bytes()));
    }
    let mut arg = plan.arg;
    let mut has_2m = false;
    if let Some(l) = &plan.measured_2m {
        match add_measured(tsm, &mut m, l, PageSize::Size2M) {
            Ok(()) => {
                mem.add_measured(Range::new(l.gpa, l.blob.bytes()));
                arg |= proto::ARG_HAS_2M;
                has_2m = true;
            }
            Err(e) if e.is(errno::ENOMEM) => note(format!(
                "no 2 MiB page for the {} ({e}): skipped, ARG_HAS_2M clear",
                l.what
            )),
            Err(e) => return Err(fail(format!("add the {} at {:#x}", l.what, l.gpa), e)),
        }
    }
    for b in &plan.prefer_2m_zero {
        mem.prefer_2m_zero(*b);
    }
    for v in 0..plan.vcpus {
        tsm.create_vcpu(v)
            .map_err(|e| fail(format!("create vCPU {v}"), e))?;
    }
    tsm.finalize(plan.entry, arg).map_err(|e| {
        fail(
            format!("finalize (entry {:#x}, arg {arg:#x})", plan.entry),
            e,
        )
    })?;
    m.extend_finalize(plan.entry, arg);
    Ok(Built {
        tvm_id,
        measurement: *m.value(),
        config: {
            let mut c = Measurement::new(Backend::Portable);
            c.extend_config(
                [(plan.region.gpa, plan.region.len)].into_iter(),
                plan.vcpus,
                None,
            );
            *c.value()
        },
        entry_arg: arg,
        has_2m,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::{parse, Command};

    fn args(s: &str) -> RunArgs {
        let v: Vec<String> = s.split_whitespace().map(String::from).collect();
        match parse(&v).unwrap() {
            Command::Run(r) => r,
            Command::Help => unreachable!(),
        }
    }

    fn blob(n: usize) -> Blob {
        Blob::from_bytes(&vec![0x5a; n])
    }

    fn inputs(image: usize) -> Inputs {
        Inputs {
            image: blob(image),
            initrd: None,
            dtb: None,
            shim: None,
        }
    }

    #[test]
    fn guestvm_layout_and_flags() {
        let p = plan(&args("run guestvm.bin"), inputs(10_000), 4, true).unwrap();
        assert_eq!(p.vcpus, 2);
        assert_eq!(p.region, Range::new(proto::REGION_GPA, proto::REGION_LEN));
        assert_eq!(p.loads.len(), 1);
        assert_eq!(p.loads[0].gpa, proto::IMAGE_GPA);
        assert_eq!(p.loads[0].blob.pages.len(), 3);
        assert_eq!(p.entry, proto::IMAGE_GPA);
        assert_eq!(p.arg, proto::ARG_HAS_V | proto::ARG_HAS_VCPU1);
        assert_eq!(p.measured_2m.as_ref().unwrap().gpa, proto::MEASURED_2M_GPA);
        assert_eq!(p.prefer_2m_zero, vec![proto::ZERO_2M_GPA]);
        let p = plan(&args("run guestvm.bin --vcpus 1"), inputs(10), 4, false).unwrap();
        assert_eq!((p.vcpus, p.arg), (1, 0));
        // A TSM with one vCPU per TVM: default 1, no ARG_HAS_VCPU1.
        let p = plan(&args("run guestvm.bin"), inputs(10), 1, false).unwrap();
        assert_eq!((p.vcpus, p.arg), (1, 0));
        assert!(plan(&args("run guestvm.bin --vcpus 3"), inputs(10), 2, false).is_err());
        assert!(plan(&args("run guestvm.bin"), inputs(0), 2, false).is_err());
        assert!(plan(&args("run guestvm.bin"), inputs(0x10_1000), 2, false).is_err());
    }

    #[test]
    fn generic_layout() {
        let mut i = inputs(0x30_0001);
        i.initrd = Some(blob(0x1000));
        i.dtb = Some(blob(100));
        let p = plan(&args("run Image --mem 64M --dtb x.dtb"), i, 8, true).unwrap();
        let at: Vec<(&str, u64, usize)> = p
            .loads
            .iter()
            .map(|l| (l.what, l.gpa, l.blob.pages.len()))
            .collect();
        assert_eq!(
            at,
            vec![
                ("image", RAM_GPA, 0x301),
                ("initrd", RAM_GPA + 0x40_0000, 1),
                ("dtb", RAM_GPA + 0x60_0000, 1)
            ]
        );
        assert_eq!((p.entry, p.arg, p.vcpus), (RAM_GPA, RAM_GPA + 0x60_0000, 1));
        assert_eq!(p.region, Range::new(RAM_GPA, 64 << 20));
        assert!(p.measured_2m.is_none());
        // 2 MiB zero pages for every block without a load: [8M, 64M).
        let want: Vec<u64> = (4..32).map(|k| RAM_GPA + k * 0x20_0000).collect();
        assert_eq!(p.prefer_2m_zero, want);
        // Too small a --mem.
        let mut i = inputs(0x30_0000);
        i.initrd = Some(blob(0x1000));
        let e = plan(&args("run Image --mem 4M"), i, 8, true).err().unwrap();
        assert!(e.contains("initrd"), "{e}");
        let e = plan(&args("run Image --dtb generated"), inputs(8), 8, true)
            .err()
            .unwrap();
        assert!(e.contains("not implemented"), "{e}");
    }

    #[test]
    fn linux_image_header() {
        let mut h = vec![0u8; 64];
        h[8..16].copy_from_slice(&0x20_0000u64.to_le_bytes());
        h[16..24].copy_from_slice(&0x150_0000u64.to_le_bytes());
        h[56..60].copy_from_slice(b"RSC\x05");
        let b = Blob::from_bytes(&h);
        assert_eq!(linux_header(&b.pages[0]), Some((0x20_0000, 0x150_0000)));
        let p = plan(
            &args("run Image"),
            Inputs {
                image: b,
                initrd: Some(blob(1)),
                dtb: None,
                shim: None,
            },
            1,
            false,
        )
        .unwrap();
        // Loaded at text_offset; the initrd after image_size (its bss).
        assert_eq!(p.entry, RAM_GPA + 0x20_0000);
        assert_eq!(p.loads[1].gpa, RAM_GPA + 0x20_0000 + 0x160_0000);
        assert_eq!(linux_header(&Page::ZERO), None);
    }

    #[test]
    fn cpuinfo_v() {
        let two = "processor\t: 0\nhart\t\t: 0\nisa\t\t: rv64imafdcvh_zicbom_zkn\n\n\
                   processor\t: 1\nisa\t\t: rv64imafdcvh_zicbom\n";
        assert!(cpuinfo_has_v(two));
        assert!(!cpuinfo_has_v("isa\t\t: rv64imafdch_zicbom_zve64x\n"));
        assert!(!cpuinfo_has_v(&format!("{two}isa : rv64imafdc\n")));
        assert!(!cpuinfo_has_v("processor : 0\n"));
    }

    #[test]
    fn blob_padding() {
        let b = Blob::from_bytes(&[1; PAGE + 1]);
        assert_eq!((b.pages.len(), b.len), (2, PAGE as u64 + 1));
        assert_eq!((b.pages[1].0[0], b.pages[1].0[1]), (1, 0));
        let dir = std::env::temp_dir().join(format!("salus-vmm-blob-{}", std::process::id()));
        std::fs::write(&dir, vec![7u8; 5000]).unwrap();
        let r = Blob::read(&dir).unwrap();
        std::fs::remove_file(&dir).unwrap();
        assert_eq!(
            (r.len, r.pages.len(), r.pages[1].0[903], r.pages[1].0[904]),
            (5000, 2, 7, 0)
        );
        assert_eq!(hex(&[0, 0xab, 0x10]), "00ab10");
    }
}
