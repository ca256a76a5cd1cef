//! A 16550 UART's registers as a VMM emulates them for a guest whose
//! driver polls (Linux's 8250 driver on a UART without `interrupts`): the
//! transmitter is always empty, received bytes come from the caller one at
//! a time. tellus (`linux-tvm` mode) and salus-vmm both serve the Linux
//! TVM's console with it, so the TVM sees the same device under either.
//!
//! Registers are one byte wide at offsets 0..8 (`reg-shift` 0); accesses
//! elsewhere read 0 and are ignored.
#![no_std]
#![forbid(unsafe_code)]

/// Bytes of register space (the device tree may declare more).
pub const REGS: u64 = 8;

/// Line status: transmitter holding register and shift register empty.
const LSR_TX_EMPTY: u8 = 0x60;
/// Line status: a received byte is waiting.
const LSR_DATA_READY: u8 = 0x01;
const LCR_DLAB: u8 = 0x80;
const IER_RX: u8 = 0x01;
const IER_TX: u8 = 0x02;
const MCR_LOOP: u8 = 0x10;
/// Input is looked for on every this many LSR reads: a polling driver
/// reads LSR in a loop for every byte it prints, and looking costs the
/// caller (an SBI call in tellus).
pub const LSR_POLL_EVERY: u64 = 16;

#[derive(Clone, Debug, Default)]
pub struct Uart16550 {
    ier: u8,
    lcr: u8,
    mcr: u8,
    scr: u8,
    dll: u8,
    dlm: u8,
    fcr: u8,
    rx: Option<u8>,
    lsr_reads: u64,
}

impl Uart16550 {
    pub const fn new() -> Self {
        Uart16550 {
            ier: 0,
            lcr: 0,
            mcr: 0,
            scr: 0,
            dll: 0,
            dlm: 0,
            fcr: 0,
            rx: None,
            lsr_reads: 0,
        }
    }

    fn poll_input(&mut self, input: &mut impl FnMut() -> Option<u8>) {
        if self.rx.is_none() {
            self.rx = input();
        }
    }

    /// A one-byte load at `off`; `input` is asked for the next received
    /// byte when the guest looks for one.
    pub fn read(&mut self, off: u64, input: &mut impl FnMut() -> Option<u8>) -> u8 {
        let dlab = self.lcr & LCR_DLAB != 0;
        match off {
            0 if dlab => self.dll,
            0 => self.rx.take().unwrap_or(0),
            1 if dlab => self.dlm,
            1 => self.ier,
            2 => {
                // The polling driver reads IIR first and LSR only when IIR
                // says something is pending: look for input here too.
                if self.ier & IER_RX != 0 {
                    self.poll_input(input);
                }
                let fifo = if self.fcr & 1 != 0 { 0xc0 } else { 0 };
                let id = if self.ier & IER_RX != 0 && self.rx.is_some() {
                    0x04
                } else if self.ier & IER_TX != 0 {
                    // The transmitter is always empty.
                    0x02
                } else {
                    0x01
                };
                fifo | id
            }
            3 => self.lcr,
            4 => self.mcr,
            5 => {
                self.lsr_reads += 1;
                if self.lsr_reads.is_multiple_of(LSR_POLL_EVERY) {
                    self.poll_input(input);
                }
                LSR_TX_EMPTY | if self.rx.is_some() { LSR_DATA_READY } else { 0 }
            }
            6 => {
                if self.mcr & MCR_LOOP != 0 {
                    // Loopback: DTR->DSR, RTS->CTS, OUT1->RI, OUT2->DCD.
                    let m = self.mcr;
                    ((m & 1) << 5) | ((m & 2) << 3) | ((m & 4) << 4) | ((m & 8) << 4)
                } else {
                    // DCD, DSR, CTS: a cable with someone at the other end.
                    0xb0
                }
            }
            7 => self.scr,
            _ => 0,
        }
    }

    /// A one-byte store at `off`; returns the byte to print for a write
    /// to the transmit register.
    pub fn write(&mut self, off: u64, v: u8) -> Option<u8> {
        let dlab = self.lcr & LCR_DLAB != 0;
        match off {
            0 if dlab => self.dll = v,
            0 => return Some(v),
            1 if dlab => self.dlm = v,
            1 => self.ier = v & 0x0f,
            2 => self.fcr = v,
            3 => self.lcr = v,
            4 => self.mcr = v & 0x1f,
            7 => self.scr = v,
            _ => {}
        }
        None
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec::Vec;

    fn none() -> impl FnMut() -> Option<u8> {
        || None
    }

    #[test]
    fn transmit_prints_and_nothing_else_does() {
        let mut u = Uart16550::new();
        assert_eq!(u.write(0, b'h'), Some(b'h'));
        for off in 1..REGS + 4 {
            assert_eq!(u.write(off, 0x41), None, "offset {off}");
        }
        // 0x41 in LCR leaves DLAB clear: offset 0 is still THR.
        assert_eq!(u.write(0, b'i'), Some(b'i'));
        let mut n = none();
        assert_eq!(u.read(5, &mut n) & LSR_TX_EMPTY, LSR_TX_EMPTY);
    }

    #[test]
    fn divisor_latch_hides_thr_and_ier() {
        let mut u = Uart16550::new();
        let mut n = none();
        u.write(1, 0x03);
        u.write(3, LCR_DLAB | 0x03);
        assert_eq!(u.write(0, 0x0c), None, "DLL, not THR");
        u.write(1, 0x00);
        assert_eq!(u.read(0, &mut n), 0x0c);
        assert_eq!(u.read(1, &mut n), 0x00);
        assert_eq!(u.read(3, &mut n), LCR_DLAB | 0x03);
        u.write(3, 0x03);
        assert_eq!(u.read(1, &mut n), 0x03, "IER kept");
        assert_eq!(u.write(0, b'x'), Some(b'x'));
    }

    #[test]
    fn input_through_lsr_polling() {
        let mut u = Uart16550::new();
        let mut queue: Vec<u8> = b"ab".to_vec();
        queue.reverse();
        let mut asked = 0;
        let mut input = || {
            asked += 1;
            queue.pop()
        };
        // Only every LSR_POLL_EVERY-th LSR read looks for input.
        for _ in 0..LSR_POLL_EVERY - 1 {
            assert_eq!(u.read(5, &mut input) & LSR_DATA_READY, 0);
        }
        assert_eq!(u.read(5, &mut input) & LSR_DATA_READY, LSR_DATA_READY);
        // A waiting byte is not overwritten by more input.
        for _ in 0..LSR_POLL_EVERY {
            u.read(5, &mut input);
        }
        assert_eq!(u.read(0, &mut input), b'a');
        assert_eq!(u.read(0, &mut input), 0, "the byte was taken");
        assert_eq!(asked, 1);
    }

    #[test]
    fn input_through_iir_when_rx_interrupt_enabled() {
        let mut u = Uart16550::new();
        let mut got = Some(b'z');
        let mut input = || got.take();
        assert_eq!(
            u.read(2, &mut input),
            0x01,
            "RX disabled: no input looked for"
        );
        u.write(1, IER_RX | IER_TX);
        u.write(2, 0x01);
        assert_eq!(u.read(2, &mut input), 0xc4, "FIFO on, RX data available");
        assert_eq!(u.read(0, &mut input), b'z');
        assert_eq!(u.read(2, &mut input), 0xc2, "then THR empty");
        u.write(1, 0);
        assert_eq!(u.read(2, &mut input), 0xc1, "nothing pending");
    }

    #[test]
    fn modem_status_and_loopback() {
        let mut u = Uart16550::new();
        let mut n = none();
        assert_eq!(u.read(6, &mut n), 0xb0);
        u.write(4, MCR_LOOP | 0x0f);
        assert_eq!(u.read(4, &mut n), 0x1f);
        assert_eq!(u.read(6, &mut n), 0xf0);
        u.write(4, MCR_LOOP | 0x02);
        assert_eq!(u.read(6, &mut n), 0x10, "RTS -> CTS");
        u.write(4, 0xff);
        assert_eq!(u.read(4, &mut n), 0x1f, "MCR keeps 5 bits");
    }

    #[test]
    fn scratch_and_out_of_range() {
        let mut u = Uart16550::new();
        let mut n = none();
        u.write(7, 0x5a);
        assert_eq!(u.read(7, &mut n), 0x5a);
        for off in [8, 9, 0xff, u64::MAX] {
            assert_eq!(u.read(off, &mut n), 0);
            assert_eq!(u.write(off, 1), None);
        }
    }
}
