//! The Linux TVM (docs/linux-tvm.md) under salus-vmm: its bundle read
//! from a file or a disk (only the parts, not the padding between them),
//! planned at the fixed layout tellus uses (`tvm-bundle`), so the same
//! bytes make the same TVM under either host.
#![forbid(unsafe_code)]

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use tvm_bundle as tb;

use crate::args::{Profile, RunArgs};
use crate::memory::Range;
use crate::setup::{zero_2m_blocks, Blob, Inputs, Load, Plan};

/// Whether the file at `path` starts with the bundle's magic.
pub fn is_bundle(path: &Path) -> bool {
    let mut magic = [0u8; 8];
    File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .is_ok_and(|()| &magic == tb::MAGIC)
}

/// Reads the bundle's header and its four parts: the kernel as the image.
pub fn read(path: &Path) -> Result<Inputs, String> {
    let at = |e: io::Error| format!("{}: {e}", path.display());
    let mut f = File::open(path).map_err(at)?;
    let len = io::Seek::seek(&mut f, io::SeekFrom::End(0)).map_err(at)?;
    let mut head = [0u8; tb::HEADER_LEN];
    let n = len.min(tb::HEADER_LEN as u64) as usize;
    io::Seek::seek(&mut f, io::SeekFrom::Start(0)).map_err(at)?;
    f.read_exact(&mut head[..n]).map_err(at)?;
    let b = tb::parse(&head[..n], len).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut part = |p: tb::Part| Blob::read_at(&mut f, p.offset, p.size).map_err(at);
    Ok(Inputs {
        image: part(b.kernel)?,
        initrd: Some(part(b.initrd)?),
        dtb: Some(part(b.dtb)?),
        shim: Some(part(b.shim)?),
    })
}

/// The Linux TVM's plan: RAM at `RAM_BASE`, the shim as the entry point
/// with the device tree's GPA as its argument, 2 vCPUs.
pub fn plan(args: &RunArgs, inputs: Inputs, max_vcpus: u64) -> Result<Plan, String> {
    for (set, what) in [
        (args.mem != crate::args::DEFAULT_MEM, "--mem"),
        (args.initrd.is_some(), "--initrd"),
        (args.dtb.is_some(), "--dtb"),
        (args.bench.is_some(), "--bench-ecalls"),
    ] {
        if set {
            return Err(format!(
                "{what} does not apply to a Linux TVM bundle (it brings its own layout and device tree)"
            ));
        }
    }
    let vcpus = args.vcpus.unwrap_or(tb::VCPUS);
    if vcpus != tb::VCPUS {
        return Err(format!(
            "--vcpus {vcpus}: the bundle's device tree describes {} vCPUs",
            tb::VCPUS
        ));
    }
    if max_vcpus < tb::VCPUS {
        return Err(format!(
            "the Linux TVM needs {} vCPUs; the TSM allows {max_vcpus} per TVM",
            tb::VCPUS
        ));
    }
    let (Some(initrd), Some(dtb), Some(shim)) = (inputs.initrd, inputs.dtb, inputs.shim) else {
        return Err("a Linux TVM bundle needs its initrd, device tree and shim".into());
    };
    let loads = vec![
        Load {
            what: "shim",
            gpa: tb::SHIM_GPA,
            blob: shim,
        },
        Load {
            what: "kernel",
            gpa: tb::KERNEL_GPA,
            blob: inputs.image,
        },
        Load {
            what: "initrd",
            gpa: tb::INITRD_GPA,
            blob: initrd,
        },
        Load {
            what: "dtb",
            gpa: tb::DTB_GPA,
            blob: dtb,
        },
    ];
    let region = Range::new(tb::RAM_BASE, tb::RAM_SIZE);
    if let Some(l) = loads
        .iter()
        .find(|l| !region.covers(Range::new(l.gpa, l.blob.bytes())))
    {
        return Err(format!(
            "the bundle's {} does not fit the TVM's RAM",
            l.what
        ));
    }
    let prefer_2m_zero = zero_2m_blocks(region, &loads);
    Ok(Plan {
        profile: Profile::LinuxTvm,
        region,
        loads,
        measured_2m: None,
        vcpus,
        entry: tb::SHIM_GPA,
        arg: tb::DTB_GPA,
        prefer_2m_zero,
    })
}

/// The UART's register offset for an access at `gpa`, if it is the UART's.
pub fn uart_offset(gpa: u64) -> Option<u64> {
    (tb::UART_GPA..tb::UART_GPA + tb::UART_SIZE)
        .contains(&gpa)
        .then(|| gpa - tb::UART_GPA)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::{parse, Command};

    fn args(s: &str) -> RunArgs {
        let v: Vec<String> = s.split_whitespace().map(String::from).collect();
        match parse(&v).unwrap() {
            Command::Run(mut r) => {
                r.profile = Profile::LinuxTvm;
                r
            }
            Command::Help => unreachable!(),
        }
    }

    /// A bundle file: kernel of 3 MiB + 1, initrd 5000, dtb 300, shim 9000,
    /// dtb_aia 400 bytes, each filled with its own byte.
    fn bundle_file(name: &str) -> std::path::PathBuf {
        let sizes = [(3 << 20) + 1, 5000, 300, 9000, 400];
        let mut out = vec![0u8; tb::ALIGN as usize];
        let mut hdr = tb::MAGIC.to_vec();
        hdr.extend_from_slice(&tb::VERSION.to_le_bytes());
        hdr.extend_from_slice(&5u32.to_le_bytes());
        for (k, &n) in sizes.iter().enumerate() {
            hdr.extend_from_slice(&(out.len() as u64).to_le_bytes());
            hdr.extend_from_slice(&(n as u64).to_le_bytes());
            out.extend(std::iter::repeat_n(k as u8 + 1, n));
            out.resize(
                out.len().div_ceil(tb::ALIGN as usize) * tb::ALIGN as usize,
                0,
            );
        }
        out[..hdr.len()].copy_from_slice(&hdr);
        let p = std::env::temp_dir().join(format!("salus-vmm-{name}-{}", std::process::id()));
        std::fs::write(&p, out).unwrap();
        p
    }

    #[test]
    fn reads_and_plans_a_bundle() {
        let p = bundle_file("bundle");
        assert!(is_bundle(&p));
        let i = read(&p).unwrap();
        std::fs::remove_file(&p).unwrap();
        assert_eq!(i.image.len, (3 << 20) + 1);
        assert_eq!(i.image.pages.len(), 769);
        assert_eq!((i.image.pages[768].0[0], i.image.pages[768].0[1]), (1, 0));
        assert_eq!(i.shim.as_ref().unwrap().pages[2].0[0], 4);
        let plan = plan(&args("run b.bin"), i, 4).unwrap();
        let at: Vec<(&str, u64, u64)> = plan
            .loads
            .iter()
            .map(|l| (l.what, l.gpa, l.blob.len))
            .collect();
        assert_eq!(
            at,
            vec![
                ("shim", tb::SHIM_GPA, 9000),
                ("kernel", tb::KERNEL_GPA, (3 << 20) + 1),
                ("initrd", tb::INITRD_GPA, 5000),
                ("dtb", tb::DTB_GPA, 300)
            ]
        );
        assert_eq!(
            (plan.entry, plan.arg, plan.vcpus),
            (tb::RAM_BASE, tb::DTB_GPA, 2)
        );
        // Blocks 0 (shim), 1-2 (kernel), the initrd's and the dtb's are
        // loaded; every other one starts as a 2 MiB zero page.
        let z = &plan.prefer_2m_zero;
        assert_eq!(z.len(), 128 - 5);
        assert!(!z.contains(&tb::RAM_BASE) && !z.contains(&(tb::KERNEL_GPA + (2 << 20))));
        assert!(z.contains(&(tb::KERNEL_GPA + (4 << 20))));
        assert!(!z.contains(&tb::INITRD_GPA) && !z.contains(&tb::DTB_GPA));
    }

    #[test]
    fn refuses_what_does_not_apply() {
        let p = bundle_file("opts");
        for (opts, what) in [
            ("--mem 512M", "--mem"),
            ("--initrd x", "--initrd"),
            ("--dtb x", "--dtb"),
            ("--vcpus 3", "--vcpus 3"),
        ] {
            let e = plan(&args(&format!("run b.bin {opts}")), read(&p).unwrap(), 4)
                .err()
                .unwrap();
            assert!(e.contains(what), "{opts}: {e}");
        }
        let e = plan(&args("run b.bin"), read(&p).unwrap(), 1)
            .err()
            .unwrap();
        assert!(e.contains("allows 1"), "{e}");
        // Truncated: a part runs past the end.
        let full = std::fs::read(&p).unwrap();
        std::fs::write(&p, &full[..full.len() - tb::ALIGN as usize]).unwrap();
        let e = read(&p).err().unwrap();
        assert!(e.contains("part 4"), "{e}");
        std::fs::write(&p, b"SALUSTVM").unwrap();
        assert!(read(&p).err().unwrap().contains("too short"));
        std::fs::write(&p, b"not a bundle").unwrap();
        assert!(!is_bundle(&p));
        std::fs::remove_file(&p).unwrap();
    }

    #[test]
    fn uart_window() {
        assert_eq!(uart_offset(tb::UART_GPA), Some(0));
        assert_eq!(uart_offset(tb::UART_GPA + 5), Some(5));
        assert_eq!(uart_offset(tb::UART_GPA + tb::UART_SIZE), None);
        assert_eq!(uart_offset(tb::UART_GPA - 1), None);
    }
}
