//! Host-side QEMU harness for Salus.
//!
//! This crate boots Salus (and, through QEMU's `guest-loader` device, the
//! tellus host kernel) in `qemu-system-riscv64`, captures the console and
//! parses what tellus prints:
//!
//! ```text
//! TEST: name
//! PASS: name
//! FAIL: name: reason
//! bench: NAME VALUE UNIT
//! tellus: N passed, M failed
//! ```
//!
//! Salus's own lines start with `salus: `; fatal errors with `salus: fatal: `.
//!
//! Environment:
//! - `SALUS_BUILD_DIR`: where `salus.elf`, `tellus.bin` and `guestvm.bin`
//!   live (default: `<workspace root>/build`).
//! - `QEMU_BIN`: the QEMU binary (default: `qemu-system-riscv64`).
//! - `XTESTS_TIMEOUT_SECS`: override the default per-run timeout (240 s:
//!   the full tellus suite with the attack group shares 2 cores with other
//!   runs).
//! - `XTESTS_VERBOSE=1`: echo the console to stderr while QEMU runs.

pub mod linux;
pub mod linux_bench;
pub mod tvm_bench;
pub mod vmm_bench;

use std::ffi::OsString;
use std::fmt;
use std::io::{self, Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// Default QEMU machine (AIA with IMSICs, three guest interrupt files).
pub const DEFAULT_MACHINE: &str = "virt,aia=aplic-imsic,aia-guests=3";
/// Default QEMU CPU model.
pub const DEFAULT_CPU: &str = "rv64,v=true,vlen=256,sstc=true,svadu=true,zknh=true";
/// Physical address where the guest-loader places the host kernel.
pub const HOST_LOAD_ADDR: u64 = 0xc020_0000;
/// Default number of harts.
pub const DEFAULT_NCPU: u32 = 2;
/// Default RAM size in MiB (must exceed 1 GiB: tellus sits at 0xc0200000).
pub const DEFAULT_MEM_MIB: u32 = 2048;
/// Default per-run timeout when `XTESTS_TIMEOUT_SECS` is not set.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(240);

/// Prefix of Salus's fatal-error lines.
pub const SALUS_FATAL_PREFIX: &str = "salus: fatal:";

// ---------------------------------------------------------------------------
// Locating QEMU and the images
// ---------------------------------------------------------------------------

/// The workspace root (the parent of this crate's manifest directory).
pub fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// `$SALUS_BUILD_DIR`, or `<workspace root>/build`.
pub fn build_dir() -> PathBuf {
    match std::env::var_os("SALUS_BUILD_DIR") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => workspace_root().join("build"),
    }
}

/// `$QEMU_BIN`, or `qemu-system-riscv64` (looked up in `PATH`).
///
/// As in the Makefile, `QEMU_BIN` may also name a QEMU build tree that
/// contains the binary.
pub fn qemu_bin() -> PathBuf {
    let q = match std::env::var_os("QEMU_BIN") {
        Some(q) if !q.is_empty() => PathBuf::from(q),
        _ => return PathBuf::from("qemu-system-riscv64"),
    };
    if q.is_dir() {
        for c in [
            q.join("qemu-system-riscv64"),
            q.join("build/qemu-system-riscv64"),
        ] {
            if c.is_file() {
                return c;
            }
        }
    }
    q
}

/// The firmware images produced by `make salus tellus guestvm`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Images {
    /// `salus.elf`, passed to QEMU as `-kernel`.
    pub salus_elf: PathBuf,
    /// `tellus.bin`, the raw host kernel image for the guest-loader.
    pub tellus_bin: PathBuf,
    /// `guestvm.bin`, if it was built.
    pub guestvm_bin: Option<PathBuf>,
}

impl Images {
    /// Finds the images in [`build_dir`]. The error names the missing files
    /// and says how to build them.
    pub fn locate() -> Result<Images, String> {
        Self::locate_in(&build_dir())
    }

    /// Finds the images in `dir`.
    pub fn locate_in(dir: &Path) -> Result<Images, String> {
        let salus_elf = dir.join("salus.elf");
        let tellus_bin = dir.join("tellus.bin");
        let guestvm_bin = dir.join("guestvm.bin");
        let missing: Vec<String> = [&salus_elf, &tellus_bin]
            .into_iter()
            .filter(|p| !p.is_file())
            .map(|p| p.display().to_string())
            .collect();
        if !missing.is_empty() {
            return Err(format!(
                "missing firmware image(s): {}\n\
                 Build them first with `make salus tellus` (or `make test`, which \
                 builds the images and then runs the tests), or point \
                 SALUS_BUILD_DIR at a directory that contains them.",
                missing.join(", ")
            ));
        }
        Ok(Images {
            salus_elf,
            tellus_bin,
            guestvm_bin: guestvm_bin.is_file().then_some(guestvm_bin),
        })
    }
}

/// `$XTESTS_TIMEOUT_SECS` if set to a positive number, else `default`.
pub fn env_timeout(default: Duration) -> Duration {
    std::env::var("XTESTS_TIMEOUT_SECS")
        .ok()
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0)
        .map(Duration::from_secs_f64)
        .unwrap_or(default)
}

// ---------------------------------------------------------------------------
// QEMU configuration
// ---------------------------------------------------------------------------

/// One QEMU invocation. Build it with [`QemuConfig::tellus`] (Salus + tellus
/// with the Makefile's defaults) or [`QemuConfig::new`] (no images at all),
/// then adjust it with the builder methods.
#[derive(Clone, Debug)]
pub struct QemuConfig {
    /// The QEMU binary.
    pub qemu: PathBuf,
    /// `-smp`.
    pub ncpu: u32,
    /// `-m`, in MiB.
    pub mem_mib: u32,
    /// `-M`.
    pub machine: String,
    /// `-cpu`.
    pub cpu: String,
    /// `-bios` (normally `default`, i.e. QEMU's OpenSBI).
    pub bios: String,
    /// `-kernel` (the Salus ELF); `None` boots the firmware alone.
    pub kernel: Option<PathBuf>,
    /// Host kernel loaded by `-device guest-loader`; `None` omits the device.
    pub host_image: Option<PathBuf>,
    /// Load address of the host kernel.
    pub host_addr: u64,
    /// `bootargs=` of the guest-loader device.
    pub bootargs: Option<String>,
    /// `-icount` argument, e.g. `shift=0,sleep=off`.
    pub icount: Option<String>,
    /// Extra arguments appended verbatim.
    pub extra_args: Vec<String>,
    /// Wall-clock limit; QEMU's process group is killed when it expires.
    pub timeout: Duration,
}

impl Default for QemuConfig {
    fn default() -> Self {
        Self::new()
    }
}

impl QemuConfig {
    /// The Makefile's machine, CPU, hart count and memory, with no kernel and
    /// no host image.
    pub fn new() -> Self {
        QemuConfig {
            qemu: qemu_bin(),
            ncpu: DEFAULT_NCPU,
            mem_mib: DEFAULT_MEM_MIB,
            machine: DEFAULT_MACHINE.to_string(),
            cpu: DEFAULT_CPU.to_string(),
            bios: "default".to_string(),
            kernel: None,
            host_image: None,
            host_addr: HOST_LOAD_ADDR,
            bootargs: None,
            icount: None,
            extra_args: Vec::new(),
            timeout: env_timeout(DEFAULT_TIMEOUT),
        }
    }

    /// Salus as `-kernel` and tellus through the guest-loader, as in
    /// `make run_tellus`.
    pub fn with_images(images: &Images) -> Self {
        Self::new()
            .kernel(&images.salus_elf)
            .host_image(&images.tellus_bin)
    }

    /// Like [`QemuConfig::with_images`] with [`Images::locate`]; the error
    /// says to run `make salus tellus`.
    pub fn try_tellus() -> Result<Self, String> {
        Images::locate().map(|i| Self::with_images(&i))
    }

    /// Like [`QemuConfig::try_tellus`] but panics (failing the test) with
    /// the "run `make salus tellus`" message when an image is missing.
    #[track_caller]
    pub fn tellus() -> Self {
        match Self::try_tellus() {
            Ok(c) => c,
            Err(e) => panic!("{e}"),
        }
    }

    pub fn qemu(mut self, qemu: impl Into<PathBuf>) -> Self {
        self.qemu = qemu.into();
        self
    }

    pub fn ncpu(mut self, ncpu: u32) -> Self {
        self.ncpu = ncpu;
        self
    }

    pub fn mem_mib(mut self, mem_mib: u32) -> Self {
        self.mem_mib = mem_mib;
        self
    }

    pub fn machine(mut self, machine: impl Into<String>) -> Self {
        self.machine = machine.into();
        self
    }

    pub fn cpu(mut self, cpu: impl Into<String>) -> Self {
        self.cpu = cpu.into();
        self
    }

    pub fn bios(mut self, bios: impl Into<String>) -> Self {
        self.bios = bios.into();
        self
    }

    pub fn kernel(mut self, kernel: impl Into<PathBuf>) -> Self {
        self.kernel = Some(kernel.into());
        self
    }

    pub fn no_kernel(mut self) -> Self {
        self.kernel = None;
        self
    }

    pub fn host_image(mut self, image: impl Into<PathBuf>) -> Self {
        self.host_image = Some(image.into());
        self
    }

    /// Drops the guest-loader device (Salus then has no host kernel).
    pub fn no_host_image(mut self) -> Self {
        self.host_image = None;
        self
    }

    pub fn host_addr(mut self, addr: u64) -> Self {
        self.host_addr = addr;
        self
    }

    pub fn bootargs(mut self, bootargs: impl Into<String>) -> Self {
        self.bootargs = Some(bootargs.into());
        self
    }

    pub fn icount(mut self, icount: impl Into<String>) -> Self {
        self.icount = Some(icount.into());
        self
    }

    pub fn extra_arg(mut self, arg: impl Into<String>) -> Self {
        self.extra_args.push(arg.into());
        self
    }

    pub fn extra_args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.extra_args.extend(args.into_iter().map(Into::into));
        self
    }

    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The QEMU arguments (without the binary).
    pub fn args(&self) -> Vec<OsString> {
        let mut a: Vec<OsString> = Vec::new();
        let mut push = |s: &str| a.push(OsString::from(s));
        push("-M");
        push(&self.machine);
        push("-cpu");
        push(&self.cpu);
        push("-smp");
        push(&self.ncpu.to_string());
        push("-m");
        push(&self.mem_mib.to_string());
        push("-nographic");
        push("-bios");
        push(&self.bios);
        if let Some(icount) = &self.icount {
            push("-icount");
            push(icount);
        }
        if let Some(k) = &self.kernel {
            a.push("-kernel".into());
            a.push(k.clone().into_os_string());
        }
        if let Some(img) = &self.host_image {
            let mut dev = format!(
                "guest-loader,kernel={},addr={:#x}",
                qemu_opt_escape(&img.to_string_lossy()),
                self.host_addr
            );
            if let Some(b) = &self.bootargs {
                dev.push_str(",bootargs=");
                dev.push_str(&qemu_opt_escape(b));
            }
            a.push("-device".into());
            a.push(dev.into());
        }
        a.extend(self.extra_args.iter().map(OsString::from));
        a
    }

    /// A shell-like rendering of the command, for diagnostics.
    pub fn command_line(&self) -> String {
        let mut s = shell_quote(&self.qemu.to_string_lossy());
        for a in self.args() {
            s.push(' ');
            s.push_str(&shell_quote(&a.to_string_lossy()));
        }
        s
    }
}

/// QEMU's option parser splits on commas; a literal comma is written `,,`.
fn qemu_opt_escape(s: &str) -> String {
    s.replace(',', ",,")
}

fn shell_quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_=,./:+@%".contains(c));
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

// ---------------------------------------------------------------------------
// Running QEMU
// ---------------------------------------------------------------------------

/// What one QEMU run produced.
#[derive(Clone, Debug)]
pub struct RunOutput {
    /// stdout and stderr, interleaved in the order QEMU wrote them.
    pub console: String,
    /// QEMU's exit code; `None` when it was killed by a signal (e.g. after a
    /// timeout).
    pub exit_code: Option<i32>,
    /// The run hit [`QemuConfig::timeout`] and QEMU was killed.
    pub timed_out: bool,
    /// Wall time from spawning QEMU until it exited.
    pub wall: Duration,
    /// The command line, for diagnostics.
    pub command: String,
}

impl RunOutput {
    /// QEMU exited by itself with status 0.
    pub fn success(&self) -> bool {
        !self.timed_out && self.exit_code == Some(0)
    }

    /// The last `n` lines of the console.
    pub fn console_tail(&self, n: usize) -> String {
        tail_lines(&self.console, n)
    }

    /// Lines starting with `salus: fatal:`.
    pub fn fatal_lines(&self) -> Vec<&str> {
        fatal_lines(&self.console)
    }

    /// A multi-line description (command, exit, timeout, wall, console tail)
    /// for failure messages.
    pub fn describe(&self, tail: usize) -> String {
        let exit = match self.exit_code {
            Some(c) => c.to_string(),
            None => "none (killed by a signal)".to_string(),
        };
        format!(
            "command: {}\nexit code: {}\ntimed out: {}\nwall: {:.3} s\n\
             ---- console (last {} lines) ----\n{}\n---- end of console ----",
            self.command,
            exit,
            self.timed_out,
            self.wall.as_secs_f64(),
            tail,
            self.console_tail(tail)
        )
    }
}

unsafe extern "C" {
    fn kill(pid: i32, sig: i32) -> i32;
}

const SIGKILL: i32 = 9;

/// Kills the process group `pgid` (the QEMU process and anything it started).
pub(crate) fn kill_group(pgid: u32) {
    if let Ok(pgid) = i32::try_from(pgid) {
        if pgid > 0 {
            // SAFETY: `kill` has no memory-safety preconditions; the group
            // was created by us for this QEMU process.
            unsafe {
                kill(-pgid, SIGKILL);
            }
        }
    }
}

/// Echoes console bytes to stderr when `XTESTS_VERBOSE` is set.
pub(crate) fn verbose_echo(bytes: &[u8]) {
    if verbose() {
        let _ = io::stderr().write_all(bytes);
    }
}

fn verbose() -> bool {
    std::env::var_os("XTESTS_VERBOSE").is_some_and(|v| !v.is_empty() && v != "0")
}

/// Runs QEMU; panics only if QEMU cannot be started at all.
#[track_caller]
pub fn run(cfg: &QemuConfig) -> RunOutput {
    match try_run(cfg) {
        Ok(o) => o,
        Err(e) => panic!(
            "could not start QEMU `{}`: {e}\n\
             Install QEMU >= 9.2 (`make setup`) or set QEMU_BIN.\ncommand: {}",
            cfg.qemu.display(),
            cfg.command_line()
        ),
    }
}

/// Runs QEMU with stdin from `/dev/null`, stdout and stderr captured into one
/// stream, in its own process group, killed (as a group) at the timeout.
pub fn try_run(cfg: &QemuConfig) -> io::Result<RunOutput> {
    let (mut reader, writer) = io::pipe()?;
    let mut cmd = Command::new(&cfg.qemu);
    cmd.args(cfg.args())
        .stdin(Stdio::null())
        .stdout(writer.try_clone()?)
        .stderr(writer)
        .process_group(0);

    let start = Instant::now();
    let spawned = cmd.spawn();
    // The command holds the pipe's write ends; drop them so that the reader
    // sees EOF once QEMU (and its children) are gone.
    drop(cmd);
    let mut child = spawned?;
    let pid = child.id();

    let captured = Arc::new(Mutex::new(Vec::<u8>::new()));
    let (done_tx, done_rx) = mpsc::channel::<()>();
    {
        let captured = Arc::clone(&captured);
        let echo = verbose();
        thread::spawn(move || {
            let mut buf = [0u8; 8192];
            loop {
                match reader.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        captured.lock().unwrap().extend_from_slice(&buf[..n]);
                        if echo {
                            let _ = io::stderr().write_all(&buf[..n]);
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(_) => break,
                }
            }
            let _ = done_tx.send(());
        });
    }

    let (status_tx, status_rx) = mpsc::channel::<io::Result<ExitStatus>>();
    thread::spawn(move || {
        let _ = status_tx.send(child.wait());
    });

    let mut timed_out = false;
    let status = match status_rx.recv_timeout(cfg.timeout) {
        Ok(s) => s,
        Err(_) => {
            timed_out = true;
            kill_group(pid);
            status_rx
                .recv()
                .unwrap_or_else(|_| Err(io::Error::other("waiter thread vanished")))
        }
    };
    let wall = start.elapsed();

    // Drain the rest of the output. If something else in the group still
    // holds the pipe open, kill the group and take what we have.
    if done_rx.recv_timeout(Duration::from_secs(2)).is_err() {
        kill_group(pid);
        let _ = done_rx.recv_timeout(Duration::from_secs(2));
    }
    let console = String::from_utf8_lossy(&captured.lock().unwrap()).into_owned();

    let exit_code = match status {
        Ok(s) => s.code(),
        Err(_) => None,
    };
    Ok(RunOutput {
        console,
        exit_code,
        timed_out,
        wall,
        command: cfg.command_line(),
    })
}

// ---------------------------------------------------------------------------
// Console parsing
// ---------------------------------------------------------------------------

/// Console lines with trailing `\r`/whitespace removed.
fn console_lines(console: &str) -> impl Iterator<Item = &str> {
    console.lines().map(|l| l.trim_end())
}

/// The last `n` lines of `text`.
pub fn tail_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(n);
    lines[start..].join("\n")
}

/// Lines starting with `salus: fatal:`.
pub fn fatal_lines(console: &str) -> Vec<&str> {
    console_lines(console)
        .map(str::trim_start)
        .filter(|l| l.starts_with(SALUS_FATAL_PREFIX))
        .collect()
}

/// One `PASS:` or `FAIL:` line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TestOutcome {
    pub name: String,
    pub passed: bool,
    /// The text after `FAIL: name: ` (empty for passes and bare `FAIL: name`).
    pub reason: String,
}

/// The `tellus: N passed, M failed` line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Summary {
    pub passed: usize,
    pub failed: usize,
}

impl Summary {
    pub fn total(&self) -> usize {
        self.passed + self.failed
    }
}

/// Everything tellus reported on one console.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TellusReport {
    /// Names from `TEST:` lines, in order.
    pub started: Vec<String>,
    /// `PASS:`/`FAIL:` lines, in order.
    pub outcomes: Vec<TestOutcome>,
    /// Every summary line found (a well-formed run has exactly one).
    pub summaries: Vec<Summary>,
}

impl TellusReport {
    /// Parses a console. Never fails: use [`TellusReport::summary`] and
    /// [`TellusReport::problems`] to judge the result.
    pub fn parse(console: &str) -> TellusReport {
        let mut r = TellusReport::default();
        for line in console_lines(console).map(str::trim_start) {
            if let Some(name) = line.strip_prefix("TEST:") {
                r.started.push(name.trim().to_string());
            } else if let Some(name) = line.strip_prefix("PASS:") {
                r.outcomes.push(TestOutcome {
                    name: name.trim().to_string(),
                    passed: true,
                    reason: String::new(),
                });
            } else if let Some(rest) = line.strip_prefix("FAIL:") {
                let rest = rest.trim();
                let (name, reason) = match rest.split_once(": ") {
                    Some((n, why)) => (n, why),
                    None => (rest.strip_suffix(':').unwrap_or(rest), ""),
                };
                r.outcomes.push(TestOutcome {
                    name: name.trim().to_string(),
                    passed: false,
                    reason: reason.trim().to_string(),
                });
            } else if let Some(s) = parse_summary(line) {
                r.summaries.push(s);
            }
        }
        r
    }

    /// The summary, if it appears exactly once.
    pub fn summary(&self) -> Result<Summary, String> {
        match self.summaries.as_slice() {
            [s] => Ok(*s),
            [] => Err("no `tellus: N passed, M failed` summary line".to_string()),
            many => Err(format!(
                "{} summary lines (expected exactly one): {:?}",
                many.len(),
                many
            )),
        }
    }

    /// The `PASS:` lines.
    pub fn passed(&self) -> impl Iterator<Item = &TestOutcome> {
        self.outcomes.iter().filter(|o| o.passed)
    }

    /// The `FAIL:` lines.
    pub fn failed(&self) -> impl Iterator<Item = &TestOutcome> {
        self.outcomes.iter().filter(|o| !o.passed)
    }

    /// Tests with a `TEST:` line but no `PASS:`/`FAIL:` line (e.g. the one
    /// that was running when the machine died).
    pub fn unfinished(&self) -> Vec<&str> {
        self.started
            .iter()
            .filter(|n| !self.outcomes.iter().any(|o| &o.name == *n))
            .map(String::as_str)
            .collect()
    }

    /// Why this report is not a clean pass (empty when it is): a missing or
    /// repeated summary, failures in the summary, or `FAIL:` lines.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        match self.summary() {
            Ok(s) if s.failed != 0 => {
                p.push(format!("summary reports {} failed test(s)", s.failed))
            }
            Ok(_) => {}
            Err(e) => p.push(e),
        }
        for f in self.failed() {
            if f.reason.is_empty() {
                p.push(format!("FAIL: {}", f.name));
            } else {
                p.push(format!("FAIL: {}: {}", f.name, f.reason));
            }
        }
        p
    }
}

/// Parses `tellus: N passed, M failed`.
fn parse_summary(line: &str) -> Option<Summary> {
    let rest = line.strip_prefix("tellus:")?.trim();
    let (p, f) = rest.split_once(',')?;
    let passed = p.trim().strip_suffix("passed")?.trim().parse().ok()?;
    let failed = f.trim().strip_suffix("failed")?.trim().parse().ok()?;
    Some(Summary { passed, failed })
}

/// One `bench: NAME VALUE UNIT` line.
#[derive(Clone, Debug, PartialEq)]
pub struct BenchLine {
    pub name: String,
    pub value: f64,
    /// The value exactly as printed.
    pub value_text: String,
    /// Everything after the value (may be empty).
    pub unit: String,
}

impl fmt::Display for BenchLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bench: {} {}", self.name, self.value_text)?;
        if !self.unit.is_empty() {
            write!(f, " {}", self.unit)?;
        }
        Ok(())
    }
}

/// All `bench: NAME VALUE UNIT` lines, in order. Lines whose value is not a
/// number are skipped.
pub fn bench_lines(console: &str) -> Vec<BenchLine> {
    console_lines(console)
        .map(str::trim_start)
        .filter_map(parse_bench_line)
        .collect()
}

fn parse_bench_line(line: &str) -> Option<BenchLine> {
    let rest = line.strip_prefix("bench:")?;
    let mut words = rest.split_whitespace();
    let name = words.next()?;
    let value_text = words.next()?;
    let value: f64 = value_text.parse().ok()?;
    if !value.is_finite() {
        return None;
    }
    let unit = words.collect::<Vec<_>>().join(" ");
    Some(BenchLine {
        name: name.to_string(),
        value,
        value_text: value_text.to_string(),
        unit,
    })
}

// ---------------------------------------------------------------------------
// Assertions
// ---------------------------------------------------------------------------

/// Console lines shown in failure messages.
pub const FAILURE_TAIL_LINES: usize = 80;

/// Checks that a tellus run passed; returns why not.
///
/// A pass means: QEMU exited by itself with code 0, no `salus: fatal:` line,
/// exactly one summary line reporting 0 failures, no `FAIL:` lines, and at
/// least `min_tests` tests in the summary.
pub fn check_tellus_passed(out: &RunOutput, min_tests: usize) -> Result<TellusReport, String> {
    let report = TellusReport::parse(&out.console);
    let mut problems = Vec::new();
    if out.timed_out {
        problems.push(format!(
            "QEMU timed out after {:.1} s and was killed",
            out.wall.as_secs_f64()
        ));
    } else if out.exit_code != Some(0) {
        problems.push(format!("QEMU exit code {:?} (expected 0)", out.exit_code));
    }
    for l in out.fatal_lines() {
        problems.push(format!("Salus fatal error: {l}"));
    }
    problems.extend(report.problems());
    if let Ok(s) = report.summary() {
        if s.total() < min_tests {
            problems.push(format!(
                "only {} test(s) ran (expected at least {min_tests})",
                s.total()
            ));
        }
    }
    if problems.is_empty() {
        return Ok(report);
    }
    let mut msg = String::from("tellus run failed:\n");
    for p in &problems {
        msg.push_str("  - ");
        msg.push_str(p);
        msg.push('\n');
    }
    let unfinished = report.unfinished();
    if !unfinished.is_empty() {
        msg.push_str(&format!(
            "  started but never finished: {}\n",
            unfinished.join(", ")
        ));
    }
    msg.push_str(&format!(
        "  {} passed / {} failed by PASS/FAIL lines\n",
        report.passed().count(),
        report.failed().count()
    ));
    msg.push_str(&out.describe(FAILURE_TAIL_LINES));
    Err(msg)
}

/// Panics with a readable message (failed tests with reasons, exit code,
/// timeout, console tail) unless the tellus run passed. See
/// [`check_tellus_passed`]; this variant requires at least one test.
#[track_caller]
pub fn assert_tellus_passed(out: &RunOutput) -> TellusReport {
    assert_tellus_passed_min(out, 1)
}

/// [`assert_tellus_passed`] requiring at least `min_tests` tests.
#[track_caller]
pub fn assert_tellus_passed_min(out: &RunOutput, min_tests: usize) -> TellusReport {
    match check_tellus_passed(out, min_tests) {
        Ok(r) => r,
        Err(msg) => panic!("{msg}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "\
OpenSBI v1.5\r
salus: Salus starting on 2 harts\r
TEST: sbi_base\r
PASS: sbi_base\r
TEST: timer\r
PASS: timer\r
tellus: 2 passed, 0 failed\r
";

    fn out(console: &str, code: Option<i32>, timed_out: bool) -> RunOutput {
        RunOutput {
            console: console.to_string(),
            exit_code: code,
            timed_out,
            wall: Duration::from_millis(1500),
            command: "qemu".to_string(),
        }
    }

    #[test]
    fn parses_good_run() {
        let r = TellusReport::parse(GOOD);
        assert_eq!(r.started, vec!["sbi_base", "timer"]);
        assert_eq!(r.outcomes.len(), 2);
        assert!(r.outcomes.iter().all(|o| o.passed));
        assert_eq!(
            r.summary(),
            Ok(Summary {
                passed: 2,
                failed: 0
            })
        );
        assert!(r.problems().is_empty());
        assert!(r.unfinished().is_empty());
    }

    #[test]
    fn parses_failures_with_reasons() {
        let c = "TEST: a\nFAIL: a: expected 3, got 4: bad\nTEST: b\nFAIL: b\n\
                 TEST: c\nFAIL: c:\ntellus: 0 passed, 3 failed\n";
        let r = TellusReport::parse(c);
        let f: Vec<_> = r.failed().collect();
        assert_eq!(f.len(), 3);
        assert_eq!(f[0].name, "a");
        assert_eq!(f[0].reason, "expected 3, got 4: bad");
        assert_eq!(f[1].name, "b");
        assert_eq!(f[1].reason, "");
        assert_eq!(f[2].name, "c");
        assert_eq!(f[2].reason, "");
        let p = r.problems();
        assert!(p.iter().any(|s| s.contains("3 failed")));
        assert!(p.iter().any(|s| s == "FAIL: a: expected 3, got 4: bad"));
    }

    #[test]
    fn missing_or_duplicate_summary_is_a_problem() {
        let r = TellusReport::parse("TEST: a\nPASS: a\n");
        assert!(r.summary().is_err());
        assert_eq!(r.problems().len(), 1);

        let r = TellusReport::parse(
            "PASS: a\ntellus: 1 passed, 0 failed\ntellus: 1 passed, 0 failed\n",
        );
        let e = r.summary().unwrap_err();
        assert!(e.contains("2 summary lines"), "{e}");
    }

    #[test]
    fn summary_parsing_is_strict() {
        assert_eq!(
            parse_summary("tellus: 12 passed, 3 failed"),
            Some(Summary {
                passed: 12,
                failed: 3
            })
        );
        assert_eq!(parse_summary("tellus: starting"), None);
        assert_eq!(parse_summary("tellus: 1 passed"), None);
        assert_eq!(parse_summary("tellus: x passed, 0 failed"), None);
        assert_eq!(parse_summary("salus: 1 passed, 0 failed"), None);
    }

    #[test]
    fn unfinished_test_is_reported() {
        let r = TellusReport::parse("TEST: a\nPASS: a\nTEST: b\nsalus: fatal: oops\n");
        assert_eq!(r.unfinished(), vec!["b"]);
    }

    #[test]
    fn lines_elsewhere_in_a_line_are_ignored() {
        let r = TellusReport::parse("salus: got PASS: x\nfoo TEST: y\n");
        assert!(r.started.is_empty());
        assert!(r.outcomes.is_empty());
    }

    #[test]
    fn bench_lines_parse() {
        let c = "bench: sbi_null_roundtrip 212 instructions\r\n\
                 noise\n\
                 bench: boot_to_host_2g 123456789 ns\n\
                 bench: run_tellus_wall 1.234 s\n\
                 bench: nounit 7\n\
                 bench: bad abc ns\n\
                 bench: onlyname\n";
        let b = bench_lines(c);
        assert_eq!(b.len(), 4);
        assert_eq!(b[0].name, "sbi_null_roundtrip");
        assert_eq!(b[0].value, 212.0);
        assert_eq!(b[0].unit, "instructions");
        assert_eq!(
            b[0].to_string(),
            "bench: sbi_null_roundtrip 212 instructions"
        );
        assert_eq!(b[1].value, 123456789.0);
        assert_eq!(b[2].value_text, "1.234");
        assert_eq!(b[2].to_string(), "bench: run_tellus_wall 1.234 s");
        assert_eq!(b[3].unit, "");
        assert_eq!(b[3].to_string(), "bench: nounit 7");
    }

    #[test]
    fn fatal_lines_found() {
        let c = "salus: hello\nsalus: fatal: H extension not present\nx salus: fatal: no\n";
        assert_eq!(
            fatal_lines(c),
            vec!["salus: fatal: H extension not present"]
        );
    }

    #[test]
    fn check_accepts_clean_run() {
        let r = check_tellus_passed(&out(GOOD, Some(0), false), 2).unwrap();
        assert_eq!(r.summary().unwrap().passed, 2);
    }

    #[test]
    fn check_rejects_bad_runs() {
        let e = check_tellus_passed(&out(GOOD, Some(0), false), 10).unwrap_err();
        assert!(e.contains("only 2 test(s) ran"), "{e}");

        let e = check_tellus_passed(&out(GOOD, Some(1), false), 1).unwrap_err();
        assert!(e.contains("exit code Some(1)"), "{e}");

        let e = check_tellus_passed(&out("TEST: a\n", None, true), 1).unwrap_err();
        assert!(e.contains("timed out"), "{e}");
        assert!(e.contains("no `tellus: N passed"), "{e}");
        assert!(e.contains("started but never finished: a"), "{e}");
        assert!(e.contains("---- console"), "{e}");

        let c = "TEST: a\nFAIL: a: wrong value\ntellus: 0 passed, 1 failed\n";
        let e = check_tellus_passed(&out(c, Some(0), false), 1).unwrap_err();
        assert!(e.contains("FAIL: a: wrong value"), "{e}");

        let c = format!("{GOOD}salus: fatal: boom\n");
        let e = check_tellus_passed(&out(&c, Some(0), false), 1).unwrap_err();
        assert!(e.contains("Salus fatal error: salus: fatal: boom"), "{e}");
    }

    #[test]
    #[should_panic(expected = "tellus run failed")]
    fn assert_panics() {
        assert_tellus_passed(&out("", Some(0), false));
    }

    #[test]
    fn tail() {
        assert_eq!(tail_lines("a\nb\nc\n", 2), "b\nc");
        assert_eq!(tail_lines("a", 5), "a");
    }

    #[test]
    fn command_line_matches_makefile() {
        let cfg = QemuConfig::new()
            .qemu("qemu-system-riscv64")
            .ncpu(4)
            .mem_mib(4096)
            .kernel("/b/salus.elf")
            .host_image("/b/tellus.bin")
            .bootargs("bench a,b")
            .icount("shift=0,sleep=off")
            .extra_arg("-S");
        let args: Vec<String> = cfg
            .args()
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect();
        assert_eq!(
            args,
            [
                "-M",
                DEFAULT_MACHINE,
                "-cpu",
                DEFAULT_CPU,
                "-smp",
                "4",
                "-m",
                "4096",
                "-nographic",
                "-bios",
                "default",
                "-icount",
                "shift=0,sleep=off",
                "-kernel",
                "/b/salus.elf",
                "-device",
                "guest-loader,kernel=/b/tellus.bin,addr=0xc0200000,bootargs=bench a,,b",
                "-S",
            ]
        );
        let s = cfg.command_line();
        assert!(s.starts_with("qemu-system-riscv64 -M "), "{s}");
        assert!(
            s.contains("'guest-loader,kernel=/b/tellus.bin,addr=0xc0200000,bootargs=bench a,,b'")
        );
    }

    #[test]
    fn no_host_image_means_no_guest_loader() {
        let cfg = QemuConfig::new().kernel("/b/salus.elf");
        assert!(!cfg.args().iter().any(|a| a == "-device"));
        assert!(!cfg.args().iter().any(|a| a == "-icount"));
    }

    #[test]
    fn missing_images_message() {
        let e = Images::locate_in(Path::new("/nonexistent/xtests")).unwrap_err();
        assert!(e.contains("make salus tellus"), "{e}");
        assert!(e.contains("salus.elf") && e.contains("tellus.bin"), "{e}");
    }

    /// Boots QEMU's OpenSBI with nothing to run for 3 s: checks that the
    /// console is captured and that the timeout kills QEMU.
    /// `cargo test -p xtests --lib -- --ignored`
    #[test]
    #[ignore = "needs qemu-system-riscv64"]
    fn smoke_opensbi_timeout() {
        let cfg = QemuConfig::new()
            .ncpu(1)
            .mem_mib(256)
            .timeout(Duration::from_secs(3));
        let o = run(&cfg);
        assert!(o.timed_out, "{}", o.describe(40));
        assert_eq!(o.exit_code, None, "{}", o.describe(40));
        assert!(o.console.contains("OpenSBI"), "{}", o.describe(40));
        assert!(o.wall >= Duration::from_secs(3));
    }

    /// QEMU exiting by itself: a bad option gives a non-zero exit and the
    /// error text (stderr) lands in the console.
    #[test]
    #[ignore = "needs qemu-system-riscv64"]
    fn smoke_qemu_error_exit() {
        let cfg = QemuConfig::new()
            .machine("no-such-machine")
            .timeout(Duration::from_secs(20));
        let o = run(&cfg);
        assert!(!o.timed_out, "{}", o.describe(40));
        assert!(
            matches!(o.exit_code, Some(c) if c != 0),
            "{}",
            o.describe(40)
        );
        assert!(o.console.contains("no-such-machine"), "{}", o.describe(40));
    }
}
