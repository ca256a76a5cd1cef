//! The one serial line shared by Salus's log and the host's console.
//!
//! Early on, output goes through the firmware's SBI debug console (legacy
//! putchar as a fallback); once the device tree names a 16550, Salus drives
//! it directly. Salus's own lines start with `salus: ` so they stand apart
//! from the host's output.

use crate::arch::sbi_call;
use crate::drivers::uart::Ns16550;
use core::fmt::{self, Write};
use spin::Mutex;

enum Sink {
    SbiDbcn,
    SbiLegacy,
    Uart(Ns16550),
}

pub struct Console {
    sink: Sink,
    /// The last byte out was a `\n` (or nothing went out yet): a `salus:`
    /// line can start here without landing in a host's partial line.
    at_line_start: bool,
}

static CONSOLE: Mutex<Console> = Mutex::new(Console {
    sink: Sink::SbiLegacy,
    at_line_start: true,
});

impl Console {
    fn put_bytes(&mut self, bytes: &[u8]) {
        self.put(bytes, true)
    }

    /// `crlf`: a `\n` goes out as `\r\n` on the UART (Salus's log and
    /// SBI console text); raw bytes from the host's emulated UART already
    /// carry their own `\r`.
    fn put(&mut self, bytes: &[u8], crlf: bool) {
        if let Some(&last) = bytes.last() {
            self.at_line_start = last == b'\n';
        }
        match &self.sink {
            Sink::Uart(u) => bytes.iter().for_each(|&b| {
                if crlf && b == b'\n' {
                    u.put(b'\r');
                }
                u.put(b)
            }),
            Sink::SbiDbcn => {
                // The buffer lives in Salus's image (identity, physical).
                let mut rest = bytes;
                while !rest.is_empty() {
                    match sbi_call::dbcn_write(rest) {
                        Ok(n) if n > 0 => rest = &rest[(n as usize).min(rest.len())..],
                        _ => {
                            rest.iter().for_each(|&b| sbi_call::legacy_putchar(b));
                            break;
                        }
                    }
                }
            }
            Sink::SbiLegacy => bytes.iter().for_each(|&b| sbi_call::legacy_putchar(b)),
        }
    }

    /// Waits until the UART has sent everything it holds.
    fn drain(&self) {
        if let Sink::Uart(u) = &self.sink {
            u.drain();
        }
    }

    /// A byte from the console input, if any (UART only).
    pub fn get_byte(&mut self) -> Option<u8> {
        match &self.sink {
            Sink::Uart(u) => u.get(),
            _ => None,
        }
    }
}

impl Write for Console {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.put_bytes(s.as_bytes());
        Ok(())
    }
}

/// Picks the firmware debug console if it has one.
pub fn init_early() {
    let dbcn = sbi_call::probe(sbi_abi::dbcn::EID_DBCN as u64);
    CONSOLE.lock().sink = if dbcn { Sink::SbiDbcn } else { Sink::SbiLegacy };
}

/// Switches to the UART at `base`.
///
/// # Safety
/// `base` must be an NS16550 from the device tree that no guest can reach.
pub unsafe fn init_uart(base: usize) {
    // SAFETY: forwarded contract.
    CONSOLE.lock().sink = Sink::Uart(unsafe { Ns16550::new(base) });
}

/// Writes raw bytes (the host's console output) as one unit.
pub fn write_bytes(bytes: &[u8]) {
    CONSOLE.lock().put_bytes(bytes);
}

/// Writes raw bytes as one unit, without adding `\r` before `\n`.
pub fn write_raw(bytes: &[u8]) {
    CONSOLE.lock().put(bytes, false);
}

pub fn read_byte() -> Option<u8> {
    CONSOLE.lock().get_byte()
}

#[doc(hidden)]
pub fn _print(args: fmt::Arguments) {
    let _ = CONSOLE.lock().write_fmt(args);
}

/// A whole line of Salus's own: on a fresh line even if a host's partial
/// line (a prompt) already went out, so `salus:` always starts a line.
#[doc(hidden)]
pub fn _print_line(args: fmt::Arguments) {
    let mut c = CONSOLE.lock();
    if !c.at_line_start {
        c.put_bytes(b"\n");
    }
    let _ = c.write_fmt(args);
}

/// Prints a `salus: `-prefixed line.
#[macro_export]
macro_rules! info {
    ($($arg:tt)*) => {
        $crate::console::_print_line(format_args!("salus: {}\n", format_args!($($arg)*)))
    };
}

/// Prints a `salus: fatal: ` line, then stops the machine with a failure.
#[macro_export]
macro_rules! fatal {
    ($($arg:tt)*) => {{
        $crate::console::_print_line(format_args!("salus: fatal: {}\n", format_args!($($arg)*)));
        $crate::shutdown(true)
    }};
}

/// Prints even if another hart died holding the console lock (panic path).
pub fn emergency(args: fmt::Arguments) {
    if CONSOLE.is_locked() {
        // SAFETY: we are stopping the machine; a torn line beats silence.
        unsafe { CONSOLE.force_unlock() };
    }
    let mut c = CONSOLE.lock();
    if !c.at_line_start {
        c.put_bytes(b"\n");
    }
    let _ = c.write_fmt(args);
}

/// Waits for the real UART's transmitter to send what it holds (callers
/// first flush the host's partial lines, host::uart16550::drain). Called
/// before the machine stops (SRST, fatal, panic).
/// Bounded: a hart that died holding a lock does not hang the shutdown.
pub fn drain() {
    for _ in 0..1_000_000 {
        if let Some(c) = CONSOLE.try_lock() {
            c.drain();
            return;
        }
        core::hint::spin_loop();
    }
}
