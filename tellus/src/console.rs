//! Line-buffered output through SBI DBCN (legacy putchar as a fallback),
//! serialized across harts by a spin lock.

use core::fmt::{self, Write};
use core::sync::atomic::{AtomicBool, Ordering};

use crate::{arch, sbi};

static USE_DBCN: AtomicBool = AtomicBool::new(false);
/// Held for a whole line so that harts never interleave output.
pub static LOCK: spin::Mutex<()> = spin::Mutex::new(());

/// Picks DBCN when the SBI says it is there.
pub fn init() {
    let r = sbi::probe(sbi::EID_DBCN);
    USE_DBCN.store(r.error == 0 && r.value != 0, Ordering::Relaxed);
}

fn emit(bytes: &[u8]) {
    let mut rest = bytes;
    if USE_DBCN.load(Ordering::Relaxed) {
        // console_write may write fewer bytes than asked; bounded retries.
        let mut tries = 0;
        while !rest.is_empty() && tries < 64 {
            let r = sbi::console_write(rest);
            if r.error != 0 {
                break;
            }
            let n = (r.value as usize).min(rest.len());
            rest = &rest[n..];
            tries += 1;
        }
    }
    for &b in rest {
        sbi::legacy_putchar(b);
    }
}

/// A fixed-size text buffer usable with `write!`; truncates when full.
pub struct Msg {
    buf: [u8; 160],
    len: usize,
}

impl Msg {
    pub const fn new() -> Self {
        Msg {
            buf: [0; 160],
            len: 0,
        }
    }
    pub fn from_args(args: fmt::Arguments) -> Self {
        let mut m = Msg::new();
        let _ = m.write_fmt(args);
        m
    }
    pub fn as_str(&self) -> &str {
        core::str::from_utf8(&self.buf[..self.len]).unwrap_or("<non-utf8>")
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl fmt::Debug for Msg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl Default for Msg {
    fn default() -> Self {
        Msg::new()
    }
}

impl Write for Msg {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for &b in s.as_bytes() {
            if self.len == self.buf.len() {
                break;
            }
            self.buf[self.len] = b;
            self.len += 1;
        }
        Ok(())
    }
}

impl fmt::Display for Msg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Flushes to the console in chunks as it fills.
struct LineWriter {
    buf: [u8; 128],
    len: usize,
}

impl LineWriter {
    fn flush(&mut self) {
        emit(&self.buf[..self.len]);
        self.len = 0;
    }
}

impl Write for LineWriter {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for &b in s.as_bytes() {
            if self.len == self.buf.len() {
                self.flush();
            }
            self.buf[self.len] = b;
            self.len += 1;
        }
        Ok(())
    }
}

fn write_line(args: fmt::Arguments) {
    let mut w = LineWriter {
        buf: [0; 128],
        len: 0,
    };
    let _ = w.write_fmt(args);
    let _ = w.write_str("\n");
    w.flush();
}

/// Prints one line atomically with respect to the other harts.
pub fn print_line(args: fmt::Arguments) {
    let _guard = LOCK.lock();
    write_line(args);
}

/// For fatal paths (trap handler, panic): takes the lock with a timeout and
/// prints anyway if the lock is stuck (e.g. held by this very hart).
pub fn print_line_forced(args: fmt::Arguments) {
    let start = arch::read_time();
    loop {
        if let Some(_g) = LOCK.try_lock() {
            write_line(args);
            return;
        }
        // ~10M ticks is seconds at any sane timebase; we only need "stuck".
        if arch::read_time().wrapping_sub(start) > 10_000_000 {
            write_line(args);
            return;
        }
        core::hint::spin_loop();
    }
}

#[macro_export]
macro_rules! println {
    ($($arg:tt)*) => {
        $crate::console::print_line(format_args!($($arg)*))
    };
}

#[macro_export]
macro_rules! msg {
    ($($arg:tt)*) => {
        $crate::console::Msg::from_args(format_args!($($arg)*))
    };
}
