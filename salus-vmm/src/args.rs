//! The command line.
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};

use crate::abi;

pub const USAGE: &str = "\
usage: salus-vmm run [OPTIONS] IMAGE [OPTIONS]
Builds a TVM from IMAGE through /dev/salus-tsm and runs it until it shuts down.
  --vcpus N           vCPUs to create (default: 2 for guestvm, else 1)
  --mem SIZE          confidential memory at 0x80000000 (generic images;
                      K/M/G suffixes, default 256M)
  --initrd FILE       measured after the image (generic images)
  --dtb FILE          measured after the initrd; its GPA is entry_arg (a1)
  --dtb generated     (not implemented yet)
  --guestvm           IMAGE is guestvm (default when its name starts with
                      \"guestvm\"): its fixed layout, 2 MiB pages, EID_GVM checks
  --generic           IMAGE is not guestvm, whatever its name
A Linux TVM bundle (build/linux-tvm/bundle.bin, a file or a disk holding
it) is recognised by its header: it brings its own layout, device tree and
boot shim, runs 2 vCPUs and its console is an emulated 16550 UART (output
to stdout, input from stdin).
  --max-exits N       end the TVM after N exits (default: no limit)
  --bench-ecalls N    guestvm only: N no-op forwarded ecalls, then shutdown;
                      prints the time per round trip (`make bench`)
  --bench-in-kernel   with --bench-ecalls: the driver answers them (nop_eid)
  --device PATH       the TSM device (default /dev/salus-tsm)
  -v, --verbose       report unsupported SBI calls and 2 MiB fallbacks
Exit status: the TVM's SRST reason (0 = success; reasons above 63 give 63),
64 for a usage error, 70 when the VMM could not build or serve the TVM.";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Profile {
    Guestvm,
    Generic,
    /// IMAGE is a Linux TVM bundle (`make linux-tvm-bundle`; recognised
    /// by its magic when the file is read): the shim, kernel, initramfs and
    /// device tree at their fixed GPAs, 2 vCPUs, a 16550 UART console.
    LinuxTvm,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Dtb {
    File(PathBuf),
    Generated,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunArgs {
    pub image: PathBuf,
    pub profile: Profile,
    pub vcpus: Option<u64>,
    pub mem: u64,
    pub initrd: Option<PathBuf>,
    pub dtb: Option<Dtb>,
    pub max_exits: Option<u64>,
    pub device: String,
    pub verbose: bool,
    /// `--bench-ecalls N` (and whether the driver answers them).
    pub bench: Option<Bench>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bench {
    pub ecalls: u64,
    pub in_kernel: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    Run(RunArgs),
    Help,
}

pub const DEFAULT_MEM: u64 = 256 << 20;

/// `256M`, `1G`, `4096`, `0x100000`, `64k`: bytes, a multiple of 4 KiB.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let bad = || format!("bad size {s:?} (e.g. 256M, 1G, 0x1000000)");
    let (num, shift) = match s.char_indices().last() {
        Some((i, 'k' | 'K')) => (&s[..i], 10),
        Some((i, 'm' | 'M')) => (&s[..i], 20),
        Some((i, 'g' | 'G')) => (&s[..i], 30),
        _ => (s, 0),
    };
    let v = match num.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16),
        None => num.parse::<u64>(),
    }
    .map_err(|_| bad())?;
    let v = v.checked_mul(1 << shift).ok_or_else(bad)?;
    if v == 0 || v % abi::SIZE_4K != 0 {
        return Err(format!("size {s:?} is not a non-zero multiple of 4 KiB"));
    }
    Ok(v)
}

fn parse_count(opt: &str, s: &str) -> Result<u64, String> {
    s.parse::<u64>()
        .map_err(|_| format!("{opt}: not a number: {s:?}"))
}

/// Whether the file name says guestvm (`guestvm`, `guestvm.bin`, ...).
pub fn looks_like_guestvm(image: &Path) -> bool {
    image
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with("guestvm"))
}

/// Parses the arguments after the program name.
pub fn parse(args: &[String]) -> Result<Command, String> {
    let mut it = args.iter();
    match it.next().map(String::as_str) {
        None | Some("-h" | "--help" | "help") => return Ok(Command::Help),
        Some("run") => {}
        Some(c) => return Err(format!("unknown command {c:?}")),
    }
    let mut image = None;
    let mut profile = None;
    let mut vcpus = None;
    let mut mem = None;
    let mut initrd = None;
    let mut dtb = None;
    let mut max_exits = None;
    let mut device = abi::DEVICE.to_string();
    let mut verbose = false;
    let mut bench_ecalls = None;
    let mut in_kernel = false;
    while let Some(a) = it.next() {
        let (opt, inline) = match a.split_once('=') {
            Some((o, v)) if o.starts_with("--") => (o, Some(v.to_string())),
            _ => (a.as_str(), None),
        };
        let takes_value = matches!(
            opt,
            "--vcpus"
                | "--mem"
                | "--initrd"
                | "--dtb"
                | "--max-exits"
                | "--device"
                | "--bench-ecalls"
        );
        let value = if takes_value {
            match inline {
                Some(v) => v,
                None => it
                    .next()
                    .cloned()
                    .ok_or_else(|| format!("{opt} needs a value"))?,
            }
        } else {
            if inline.is_some() {
                return Err(format!("{opt} takes no value"));
            }
            String::new()
        };
        match opt {
            "-h" | "--help" => return Ok(Command::Help),
            "--vcpus" => {
                let n = parse_count(opt, &value)?;
                if n == 0 {
                    return Err("--vcpus must be at least 1".into());
                }
                vcpus = Some(n);
            }
            "--mem" => mem = Some(parse_size(&value)?),
            "--initrd" => initrd = Some(PathBuf::from(value)),
            "--dtb" if value == "generated" => dtb = Some(Dtb::Generated),
            "--dtb" => dtb = Some(Dtb::File(PathBuf::from(value))),
            "--max-exits" => max_exits = Some(parse_count(opt, &value)?).filter(|&n| n != 0),
            "--device" => device = value,
            "--guestvm" => profile = Some(Profile::Guestvm),
            "--generic" => profile = Some(Profile::Generic),
            "-v" | "--verbose" => verbose = true,
            "--bench-ecalls" => {
                let n = parse_count(opt, &value)?;
                if n == 0 || n > u32::MAX as u64 {
                    return Err("--bench-ecalls takes 1..=4294967295".into());
                }
                bench_ecalls = Some(n);
            }
            "--bench-in-kernel" => in_kernel = true,
            o if o.starts_with('-') && o.len() > 1 => return Err(format!("unknown option {o}")),
            _ if image.is_some() => return Err(format!("a second IMAGE {a:?}")),
            _ => image = Some(PathBuf::from(a)),
        }
    }
    let image = image.ok_or("no IMAGE given")?;
    let profile = profile.unwrap_or(if looks_like_guestvm(&image) {
        Profile::Guestvm
    } else {
        Profile::Generic
    });
    if in_kernel && bench_ecalls.is_none() {
        return Err("--bench-in-kernel needs --bench-ecalls".into());
    }
    if bench_ecalls.is_some() && profile != Profile::Guestvm {
        return Err("--bench-ecalls needs guestvm (its bench mode)".into());
    }
    if profile == Profile::Guestvm {
        for (set, what) in [
            (mem.is_some(), "--mem"),
            (initrd.is_some(), "--initrd"),
            (dtb.is_some(), "--dtb"),
        ] {
            if set {
                return Err(format!(
                    "{what} does not apply to guestvm (its layout is fixed; --generic if IMAGE is not guestvm)"
                ));
            }
        }
    }
    Ok(Command::Run(RunArgs {
        image,
        profile,
        vcpus,
        mem: mem.unwrap_or(DEFAULT_MEM),
        initrd,
        dtb,
        max_exits,
        device,
        verbose,
        bench: bench_ecalls.map(|ecalls| Bench { ecalls, in_kernel }),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<Command, String> {
        let v: Vec<String> = s.split_whitespace().map(String::from).collect();
        parse(&v)
    }

    #[test]
    fn bench_options() {
        let r = run("run guestvm.bin --bench-ecalls 1000 --bench-in-kernel");
        assert_eq!(
            r.bench,
            Some(Bench {
                ecalls: 1000,
                in_kernel: true
            })
        );
        assert_eq!(
            run("run guestvm.bin --bench-ecalls=5").bench,
            Some(Bench {
                ecalls: 5,
                in_kernel: false
            })
        );
        assert!(p("run guestvm.bin --bench-in-kernel").is_err());
        assert!(p("run Image --bench-ecalls 5").is_err());
        assert!(p("run guestvm.bin --bench-ecalls 0").is_err());
    }

    fn run(s: &str) -> RunArgs {
        match p(s) {
            Ok(Command::Run(r)) => r,
            other => panic!("{s}: {other:?}"),
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("256M"), Ok(256 << 20));
        assert_eq!(parse_size("1G"), Ok(1 << 30));
        assert_eq!(parse_size("64k"), Ok(64 << 10));
        assert_eq!(parse_size("0x100000"), Ok(0x10_0000));
        assert_eq!(parse_size("8192"), Ok(8192));
        assert!(parse_size("100").is_err());
        assert!(parse_size("0").is_err());
        assert!(parse_size("12Q").is_err());
        assert!(parse_size("").is_err());
        assert!(parse_size("99999999999G").is_err());
    }

    #[test]
    fn guestvm_by_name_or_flag() {
        let r = run("run build/guestvm.bin");
        assert_eq!(r.profile, Profile::Guestvm);
        assert_eq!(
            (r.vcpus, r.mem, r.device.as_str()),
            (None, DEFAULT_MEM, abi::DEVICE)
        );
        assert_eq!(run("run --guestvm x.bin").profile, Profile::Guestvm);
        assert_eq!(run("run guestvm.bin --generic").profile, Profile::Generic);
        assert!(p("run guestvm.bin --mem 1G").unwrap_err().contains("--mem"));
        assert!(p("run guestvm.bin --initrd i").is_err());
    }

    #[test]
    fn generic_with_everything() {
        let r = run(
            "run --vcpus 4 --mem=512M Image --initrd initrd.gz --dtb board.dtb -v --max-exits 10",
        );
        assert_eq!(r.profile, Profile::Generic);
        assert_eq!(r.image, PathBuf::from("Image"));
        assert_eq!(r.vcpus, Some(4));
        assert_eq!(r.mem, 512 << 20);
        assert_eq!(r.initrd, Some(PathBuf::from("initrd.gz")));
        assert_eq!(r.dtb, Some(Dtb::File(PathBuf::from("board.dtb"))));
        assert_eq!(r.max_exits, Some(10));
        assert!(r.verbose);
        assert_eq!(run("run Image --dtb generated").dtb, Some(Dtb::Generated));
        assert_eq!(run("run Image --max-exits 0").max_exits, None);
        assert_eq!(run("run Image --device /dev/x").device, "/dev/x");
    }

    #[test]
    fn errors_and_help() {
        assert_eq!(p(""), Ok(Command::Help));
        assert_eq!(p("--help"), Ok(Command::Help));
        assert_eq!(p("run Image -h"), Ok(Command::Help));
        assert!(p("start Image").is_err());
        assert!(p("run").unwrap_err().contains("no IMAGE"));
        assert!(p("run a b").is_err());
        assert!(p("run Image --vcpus").is_err());
        assert!(p("run Image --vcpus 0").is_err());
        assert!(p("run Image --vcpus x").is_err());
        assert!(p("run Image --bogus").is_err());
        assert!(p("run Image --verbose=1").is_err());
    }
}
