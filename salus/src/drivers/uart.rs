//! Polled NS16550 UART: Salus's console after the device tree is read.

/// An NS16550-compatible UART with byte-spaced registers.
pub struct Ns16550 {
    base: usize,
}

const RBR_THR: usize = 0;
const LSR: usize = 5;
const LSR_DATA_READY: u8 = 1 << 0;
const LSR_THR_EMPTY: u8 = 1 << 5;
const LSR_TX_EMPTY: u8 = 1 << 6;
/// Polls of LSR before `drain` gives up on a stuck transmitter.
const DRAIN_SPINS: u32 = 1_000_000;

impl Ns16550 {
    /// # Safety
    /// `base` must be the MMIO base of an NS16550 that only this driver
    /// touches (Salus never maps it into a guest).
    pub const unsafe fn new(base: usize) -> Self {
        Ns16550 { base }
    }

    fn read_reg(&self, off: usize) -> u8 {
        // SAFETY: `new`'s contract: base + off is a register of our UART.
        unsafe { core::ptr::read_volatile((self.base + off) as *const u8) }
    }

    fn write_reg(&self, off: usize, v: u8) {
        // SAFETY: as for read_reg.
        unsafe { core::ptr::write_volatile((self.base + off) as *mut u8, v) }
    }

    pub fn put(&self, b: u8) {
        while self.read_reg(LSR) & LSR_THR_EMPTY == 0 {
            core::hint::spin_loop();
        }
        self.write_reg(RBR_THR, b);
    }

    /// Waits (bounded) until the transmitter is empty: the last byte left.
    pub fn drain(&self) {
        for _ in 0..DRAIN_SPINS {
            if self.read_reg(LSR) & LSR_TX_EMPTY != 0 {
                return;
            }
            core::hint::spin_loop();
        }
    }

    /// A received byte, if one is waiting.
    pub fn get(&self) -> Option<u8> {
        if self.read_reg(LSR) & LSR_DATA_READY != 0 {
            Some(self.read_reg(RBR_THR))
        } else {
            None
        }
    }
}
