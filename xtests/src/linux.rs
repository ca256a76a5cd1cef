//! Linux as the host VM: the pieces the Linux integration tests and the
//! Linux benchmarks share.
//!
//! * [`LinuxImages`]: the Debian kernel and the initramfs `make linux
//!   rootfs` builds (`build/linux/`), or `$LINUX_IMAGE` / `$LINUX_INITRD`;
//! * [`LinuxVm`]: a QEMU process running in the background whose console is
//!   captured as it comes, with [`LinuxVm::wait_for`] (a line matching a
//!   predicate, bounded by a timeout), console input, SSH commands through
//!   the forwarded port and a bounded wait for QEMU's exit;
//! * [`free_port`]: a loopback TCP port for `hostfwd`, so parallel runs do
//!   not collide on 7722.

use std::io::{self, Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::{build_dir, verbose_echo, workspace_root, QemuConfig};

/// Where the guest-loader puts the initramfs (clear of the kernel at
/// 0xc0200000, which relocates itself below).
pub const INITRD_ADDR: u64 = 0xd000_0000;
/// The host's kernel command line under Salus.
pub const BOOTARGS: &str = "console=ttyS0 earlycon=sbi";

/// The Linux host images.
#[derive(Clone, Debug)]
pub struct LinuxImages {
    pub image: PathBuf,
    pub initrd: PathBuf,
    /// Private key root's `authorized_keys` accepts.
    pub ssh_key: PathBuf,
}

impl LinuxImages {
    /// `$LINUX_IMAGE` / `$LINUX_INITRD`, else `<build>/linux/{Image,
    /// initramfs.cpio.gz}`; an error saying how to build them if missing.
    pub fn locate() -> Result<Self, String> {
        let dir = std::env::var_os("LINUX_BUILD")
            .map(PathBuf::from)
            .unwrap_or_else(|| workspace_root().join("build/linux"));
        let pick = |var: &str, default: PathBuf| {
            std::env::var_os(var)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
                .unwrap_or(default)
        };
        let me = LinuxImages {
            image: pick("LINUX_IMAGE", dir.join("Image")),
            initrd: pick("LINUX_INITRD", dir.join("initramfs.cpio.gz")),
            ssh_key: dir.join("ssh/id_ed25519"),
        };
        for p in [&me.image, &me.initrd, &me.ssh_key] {
            if !p.is_file() {
                return Err(format!(
                    "missing {} (`make linux rootfs` builds the Linux images; `make test` does it first)",
                    p.display()
                ));
            }
        }
        Ok(me)
    }
}

/// A free TCP port on 127.0.0.1 (bound and released; QEMU takes it next),
/// never one this process handed out before: two tests starting at once
/// could otherwise be given the same just-released port, and the second
/// QEMU fails to set up its forwarding.
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    // Hold every candidate until one is new, so the OS cannot hand back
    // the same port in the meantime.
    let mut held = Vec::new();
    for _ in 0..64 {
        let Ok(l) = std::net::TcpListener::bind("127.0.0.1:0") else {
            break;
        };
        let Ok(port) = l.local_addr().map(|a| a.port()) else {
            break;
        };
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
        held.push(l);
    }
    7722
}

/// A raw disk image of `size` bytes starting with `marker`.
pub fn make_disk(path: &Path, size: u64, marker: &str) -> io::Result<()> {
    let mut f = std::fs::File::create(path)?;
    f.write_all(marker.as_bytes())?;
    f.set_len(size)
}

/// A scratch path under the build directory, unique to this process.
pub fn scratch(name: &str) -> PathBuf {
    let dir = build_dir().join("xtests-tmp");
    let _ = std::fs::create_dir_all(&dir);
    dir.join(format!("{}-{}", std::process::id(), name))
}

/// QEMU arguments that give the host the default Linux devices: the
/// initramfs, the RISC-V IOMMU, a virtio-net NIC on restricted user
/// networking with SSH forwarded from `127.0.0.1:ssh_port`, and a
/// virtio-blk disk backed by `disk`. All PCI devices use the IOMMU.
pub fn linux_devices(images: &LinuxImages, ssh_port: u16, disk: &Path) -> Vec<String> {
    vec![
        "-device".into(),
        format!(
            "guest-loader,initrd={},addr={:#x}",
            images.initrd.display(),
            INITRD_ADDR
        ),
        "-device".into(),
        "riscv-iommu-pci".into(),
        "-device".into(),
        "virtio-net-pci,netdev=n0,iommu_platform=on,disable-legacy=on".into(),
        "-netdev".into(),
        format!("user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:{ssh_port}-:22"),
        "-drive".into(),
        format!("file={},if=none,id=d0,format=raw", disk.display()),
        "-device".into(),
        "virtio-blk-pci,drive=d0,iommu_platform=on,disable-legacy=on".into(),
    ]
}

/// Salus + the Linux host with [`linux_devices`].
pub fn salus_linux_config(images: &LinuxImages, ssh_port: u16, disk: &Path) -> QemuConfig {
    QemuConfig::tellus()
        .host_image(&images.image)
        .bootargs(BOOTARGS)
        .extra_args(linux_devices(images, ssh_port, disk))
}

/// The text after the last newline, minus ANSI CSI sequences (`ESC [ ...
/// final`), ends in `#` and some blanks.
pub fn ends_with_prompt(console: &str) -> bool {
    let last = console.rsplit('\n').next().unwrap_or("");
    let mut plain = String::new();
    let mut chars = last.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            if chars.next() == Some('[') {
                for f in chars.by_ref() {
                    if ('@'..='~').contains(&f) {
                        break;
                    }
                }
            }
        } else {
            plain.push(c);
        }
    }
    let t = plain.trim_end_matches([' ', '\r']);
    t.ends_with('#') && t.len() < plain.len()
}

/// A QEMU process running in the background.
pub struct LinuxVm {
    child: Child,
    stdin: Option<ChildStdin>,
    console: Arc<Mutex<Vec<u8>>>,
    pub ssh_port: u16,
    pub ssh_key: PathBuf,
    pub started: Instant,
    pub command: String,
}

impl LinuxVm {
    /// Starts `qemu args...` in its own process group, console captured.
    pub fn spawn(qemu: &Path, args: &[String], ssh_port: u16, ssh_key: &Path) -> io::Result<Self> {
        let mut cmd = Command::new(qemu);
        cmd.args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        let mut child = cmd.spawn()?;
        let console = Arc::new(Mutex::new(Vec::new()));
        for mut r in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let console = Arc::clone(&console);
            thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = r.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    console.lock().unwrap().extend_from_slice(&buf[..n]);
                    verbose_echo(&buf[..n]);
                }
            });
        }
        let command = std::iter::once(qemu.display().to_string())
            .chain(args.iter().cloned())
            .collect::<Vec<_>>()
            .join(" ");
        Ok(LinuxVm {
            stdin: child.stdin.take(),
            child,
            console,
            ssh_port,
            ssh_key: ssh_key.to_path_buf(),
            started: Instant::now(),
            command,
        })
    }

    /// Starts the run `cfg` describes.
    pub fn start(cfg: &QemuConfig, ssh_port: u16, ssh_key: &Path) -> io::Result<Self> {
        let args: Vec<String> = cfg
            .args()
            .into_iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        Self::spawn(&cfg.qemu, &args, ssh_port, ssh_key)
    }

    /// The console so far.
    pub fn console(&self) -> String {
        String::from_utf8_lossy(&self.console.lock().unwrap()).into_owned()
    }

    /// The last `n` console lines and the command, for failure messages.
    pub fn describe(&self, n: usize) -> String {
        format!(
            "command: {}\n---- console (last {n} lines) ----\n{}\n---- end ----",
            self.command,
            crate::tail_lines(&self.console(), n)
        )
    }

    /// QEMU is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Waits for a complete console line for which `pred` holds (trimmed
    /// of `\r`); `Err` with the console tail on timeout or QEMU exit.
    pub fn wait_for<F: Fn(&str) -> bool>(
        &mut self,
        what: &str,
        timeout: Duration,
        pred: F,
    ) -> Result<String, String> {
        let end = Instant::now() + timeout;
        loop {
            // Complete lines only: a line may arrive in pieces.
            let console = self.console();
            let complete = &console[..console.rfind('\n').map_or(0, |i| i + 1)];
            if let Some(l) = complete
                .lines()
                .map(|l| l.trim_end_matches('\r'))
                .find(|l| pred(l))
            {
                return Ok(l.to_string());
            }
            if !self.running() {
                return Err(format!("QEMU exited before {what}\n{}", self.describe(60)));
            }
            if Instant::now() > end {
                return Err(format!(
                    "no {what} within {timeout:?}\n{}",
                    self.describe(60)
                ));
            }
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits for a shell prompt: the console's last, unfinished line ends
    /// in `#` (root's prompt, e.g. `salus-host:~# `; escape sequences the
    /// shell sends after it are ignored). Nothing follows a prompt until
    /// input comes, so this fails if the console holds back a partial line.
    pub fn wait_for_prompt(&mut self, timeout: Duration) -> Result<(), String> {
        let end = Instant::now() + timeout;
        loop {
            if ends_with_prompt(&self.console()) {
                return Ok(());
            }
            if !self.running() {
                return Err(format!(
                    "QEMU exited before a prompt\n{}",
                    self.describe(60)
                ));
            }
            if Instant::now() > end {
                return Err(format!(
                    "no shell prompt (a partial line) within {timeout:?}\n{}",
                    self.describe(60)
                ));
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Types `text` on the serial console.
    pub fn send(&mut self, text: &str) -> io::Result<()> {
        let s = self.stdin.as_mut().ok_or(io::ErrorKind::BrokenPipe)?;
        s.write_all(text.as_bytes())?;
        s.flush()
    }

    /// Runs `script` as root over SSH (key login), retrying the connection
    /// up to `tries` times; returns stdout.
    pub fn ssh(&self, script: &str, tries: u32, timeout: Duration) -> Result<String, String> {
        let mut last = String::new();
        for _ in 0..tries.max(1) {
            let out = Command::new("timeout")
                .arg(timeout.as_secs().max(1).to_string())
                .arg("ssh")
                .args(["-i", &self.ssh_key.to_string_lossy()])
                .args(["-p", &self.ssh_port.to_string()])
                .args([
                    "-o",
                    "BatchMode=yes",
                    "-o",
                    "StrictHostKeyChecking=no",
                    "-o",
                    "UserKnownHostsFile=/dev/null",
                    "-o",
                    "LogLevel=ERROR",
                    "-o",
                    "ConnectTimeout=30",
                    "root@127.0.0.1",
                ])
                .arg(script)
                .stdin(Stdio::null())
                .output()
                .map_err(|e| format!("cannot run ssh (apt-get install openssh-client): {e}"))?;
            if out.status.success() {
                return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
            }
            last = format!(
                "ssh exited {:?}: {}{}",
                out.status.code(),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            thread::sleep(Duration::from_secs(2));
        }
        Err(last)
    }

    /// Waits (bounded) for QEMU to exit; kills it on timeout.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let end = Instant::now() + timeout;
        while Instant::now() < end {
            if let Ok(Some(s)) = self.child.try_wait() {
                // Let the readers take the last bytes.
                thread::sleep(Duration::from_millis(200));
                return Some(s);
            }
            thread::sleep(Duration::from_millis(100));
        }
        self.kill();
        None
    }

    pub fn kill(&mut self) {
        crate::kill_group(self.child.id());
        let _ = self.child.wait();
    }
}

impl Drop for LinuxVm {
    fn drop(&mut self) {
        if self.running() {
            self.kill();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ends_with_prompt;

    #[test]
    fn prompt_detection() {
        assert!(ends_with_prompt("boot\r\nsalus-host:~# \x1b[6n"));
        assert!(ends_with_prompt("x\n~ # "));
        assert!(!ends_with_prompt("salus-host:~# echo hi\r\n"));
        assert!(!ends_with_prompt("salus-host:~# ls"));
        assert!(!ends_with_prompt("# comment without blank"));
    }
}

#[cfg(test)]
mod port_tests {
    #[test]
    fn free_ports_are_never_handed_out_twice() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..20 {
            assert!(seen.insert(super::free_port()));
        }
    }
}
