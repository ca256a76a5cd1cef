//! The host's console: an emulated 16550 at the GPA of the real UART, which
//! Salus keeps for itself. The host's stage-2 does not map the page, so
//! every register access traps and lands here (through `host::mmio`).
//!
//! No interrupt line: the host's device tree has no `interrupts` for the
//! UART, so Linux's 8250 driver polls it (IIR/LSR from a timer). IIR still
//! reports the would-be interrupt sources IER enables, because that is what
//! the polled driver looks at.
//!
//! "THR empty" is raised by a transmit, not by enabling it in IER. Linux
//! tests exactly that at startup (write IER.THRI, read IIR) and, seeing no
//! interrupt, sets `UART_BUG_TXEN`: then the driver's `start_tx` sends the
//! first FIFO load at once, in the writer's context, instead of waiting for
//! its next poll tick. Without it, whatever a process wrote just before
//! `poweroff -f` was still in the guest's tty buffer when the machine
//! stopped. The host's device tree also gives the UART a deep FIFO
//! (`fifo-size`, `tx-threshold`): a transmit here is instant, so a 64-byte
//! load costs nothing and one `start_tx` covers a whole line.
//!
//! Output: bytes are collected per hart and written to the real console as
//! whole lines, so a `salus:` line never lands in the middle of a host line.
//! A partial line (a shell prompt) is written out when the driver polls
//! (its IIR read, every few ms while the port is open), when any access to
//! the UART finds it older than [`PARTIAL_TICKS`], when the buffer fills,
//! and before Salus stops the machine ([`flush`]). That needs no timer of
//! Salus's own: the polled driver's tick already traps here. Input: the
//! real UART is polled when the host looks at LSR/IIR/RBR.

use crate::arch::entry::MAX_HARTS;
use crate::console;
use spin::{Mutex, Once};

const RBR_THR_DLL: u64 = 0;
const IER_DLM: u64 = 1;
const IIR_FCR: u64 = 2;
const LCR: u64 = 3;
const MCR: u64 = 4;
const LSR: u64 = 5;
const MSR: u64 = 6;
const SCR: u64 = 7;

const LCR_DLAB: u8 = 0x80;
const IER_RDI: u8 = 0x01;
const IER_THRI: u8 = 0x02;
const IIR_NO_INT: u8 = 0x01;
const IIR_THRI: u8 = 0x02;
const IIR_RDI: u8 = 0x04;
const IIR_FIFO_ON: u8 = 0xc0;
const FCR_FIFO_ENABLE: u8 = 0x01;
const LSR_DR: u8 = 0x01;
const LSR_THRE: u8 = 0x20;
const LSR_TEMT: u8 = 0x40;
const MCR_LOOP: u8 = 0x10;
/// Modem status with nothing attached but a "ready" terminal: DCD, DSR, CTS.
const MSR_READY: u8 = 0xb0;

/// Bytes a hart may buffer before its partial line is written anyway.
const LINE_MAX: usize = 160;

/// Age (in `time` ticks: 10 ms at QEMU virt's 10 MHz timebase) after which
/// a partial line goes out on the next access to the UART.
const PARTIAL_TICKS: u64 = 100_000;

struct LineBuf {
    len: usize,
    /// `time` when the first buffered byte came.
    since: u64,
    buf: [u8; LINE_MAX],
}

impl LineBuf {
    const fn new() -> Self {
        LineBuf {
            len: 0,
            since: 0,
            buf: [0; LINE_MAX],
        }
    }
    fn flush(&mut self) {
        if self.len != 0 {
            console::write_raw(self.buf.get(..self.len).unwrap_or_default());
            self.len = 0;
        }
    }
    /// Writes the partial line out if it has waited `PARTIAL_TICKS`.
    fn flush_if_older(&mut self, now: u64) {
        if self.len != 0 && now.wrapping_sub(self.since) >= PARTIAL_TICKS {
            self.flush();
        }
    }
    fn push(&mut self, b: u8, now: u64) {
        if self.len == 0 {
            self.since = now;
        }
        if let Some(slot) = self.buf.get_mut(self.len) {
            *slot = b;
            self.len += 1;
        }
        if b == b'\n' || self.len == LINE_MAX {
            crate::stats::console_line(self.buf.get(..self.len).unwrap_or_default());
            self.flush();
        }
    }
}

struct Uart {
    ier: u8,
    lcr: u8,
    mcr: u8,
    fcr: u8,
    scr: u8,
    dll: u8,
    dlm: u8,
    /// A byte read from the real UART, not yet taken by the host.
    rx: Option<u8>,
    /// The "THR empty" interrupt condition (cleared by reading it in IIR).
    thri: bool,
    lines: [LineBuf; MAX_HARTS],
}

#[allow(clippy::declare_interior_mutable_const)]
const EMPTY: LineBuf = LineBuf::new();

static UART: Mutex<Uart> = Mutex::new(Uart {
    ier: 0,
    lcr: 0,
    mcr: 0,
    fcr: 0,
    scr: 0,
    dll: 12,
    dlm: 0,
    rx: None,
    thri: false,
    lines: [EMPTY; MAX_HARTS],
});

/// `(base, size)` of the emulated UART in the host's address space.
static WINDOW: Once<(u64, u64)> = Once::new();

/// Places the emulated UART at `base` (the real UART's address).
pub fn init(base: u64, size: u64) {
    WINDOW.call_once(|| (base, size.max(8)));
}

/// True if `gpa` is one of the emulated UART's registers.
pub fn contains(gpa: u64) -> bool {
    WINDOW.get().is_some_and(|&(b, s)| gpa >= b && gpa - b < s)
}

impl Uart {
    fn poll_input(&mut self) {
        if self.rx.is_none() {
            self.rx = console::read_byte();
        }
    }

    fn flush_all(&mut self) {
        self.lines.iter_mut().for_each(LineBuf::flush);
    }

    fn flush_old(&mut self) {
        let now = crate::arch::time();
        self.lines.iter_mut().for_each(|l| l.flush_if_older(now));
    }

    fn read(&mut self, off: u64) -> u8 {
        let dlab = self.lcr & LCR_DLAB != 0;
        match off {
            RBR_THR_DLL if dlab => self.dll,
            RBR_THR_DLL => {
                self.poll_input();
                self.rx.take().unwrap_or(0)
            }
            IER_DLM if dlab => self.dlm,
            IER_DLM => self.ier,
            IIR_FCR => {
                // The polled driver's tick: a good moment to show partial
                // lines (prompts) the harts have buffered.
                self.flush_all();
                self.poll_input();
                let fifo = if self.fcr & FCR_FIFO_ENABLE != 0 {
                    IIR_FIFO_ON
                } else {
                    0
                };
                let id = if self.ier & IER_RDI != 0 && self.rx.is_some() {
                    IIR_RDI
                } else if self.ier & IER_THRI != 0 && self.thri {
                    self.thri = false;
                    IIR_THRI
                } else {
                    IIR_NO_INT
                };
                fifo | id
            }
            LCR => self.lcr,
            MCR => self.mcr,
            LSR => {
                self.poll_input();
                LSR_THRE | LSR_TEMT | if self.rx.is_some() { LSR_DR } else { 0 }
            }
            MSR => {
                if self.mcr & MCR_LOOP != 0 {
                    // Loopback: RTS->CTS, DTR->DSR, OUT1->RI, OUT2->DCD.
                    let m = self.mcr;
                    ((m & 2) << 3) | ((m & 1) << 5) | ((m & 4) << 4) | ((m & 8) << 4)
                } else {
                    MSR_READY
                }
            }
            SCR => self.scr,
            _ => 0,
        }
    }

    fn write(&mut self, hart: usize, off: u64, v: u8) {
        let dlab = self.lcr & LCR_DLAB != 0;
        match off {
            RBR_THR_DLL if dlab => self.dll = v,
            RBR_THR_DLL => {
                if self.mcr & MCR_LOOP != 0 {
                    self.rx = Some(v);
                } else if let Some(l) = self.lines.get_mut(hart) {
                    l.push(v, crate::arch::time());
                }
                // Transmitted at once: THR is empty again.
                self.thri = true;
            }
            IER_DLM if dlab => self.dlm = v,
            // Enabling THRI raises nothing (see the module comment).
            IER_DLM => self.ier = v & 0x0f,
            IIR_FCR => {
                self.fcr = v & (FCR_FIFO_ENABLE | 0xc0);
                if v & 0x02 != 0 {
                    self.rx = None;
                }
            }
            LCR => self.lcr = v,
            MCR => self.mcr = v & 0x1f,
            SCR => self.scr = v,
            _ => {}
        }
    }
}

/// A host load of the register at `gpa` (the byte at that offset).
pub fn read(gpa: u64) -> u64 {
    let off = gpa - WINDOW.get().map_or(0, |w| w.0);
    let mut u = UART.lock();
    u.flush_old();
    u.read(off) as u64
}

/// A host store to the register at `gpa` (its low byte) from `hart`.
pub fn write(hart: usize, gpa: u64, value: u64) {
    let off = gpa - WINDOW.get().map_or(0, |w| w.0);
    let mut u = UART.lock();
    u.flush_old();
    u.write(hart, off, value as u8);
    drop(u);
    // A `SALUS-STATS:` line the host just wrote (bench mode).
    crate::stats::run_pending();
}

/// Writes out every buffered partial line (e.g. before Salus stops).
pub fn flush() {
    UART.lock().flush_all();
}

/// [`flush`] for the way down: gives up (bounded spin) if a hart died
/// holding the lock rather than hanging the shutdown.
pub fn drain() {
    for _ in 0..1_000_000 {
        if let Some(mut u) = UART.try_lock() {
            u.flush_all();
            return;
        }
        core::hint::spin_loop();
    }
}
