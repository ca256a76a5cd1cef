//! Host memory for the TEE tests: a page pool carved from free RAM, and
//! volatile / fault-checked accesses to it.

use crate::arch;
use crate::platform::{Platform, Range};
use crate::trap;

/// Host RAM tellus may use for TEE tests: the free ranges (RAM minus
/// tellus, the FDT and every reserved range), bump-allocated. `mark` and
/// `reset` let a test give back what it took.
pub struct Pool {
    ranges: [Range; 16],
    cursor: [u64; 16],
    n: usize,
}

pub type Mark = [u64; 16];

impl Pool {
    pub fn new(p: &Platform) -> Pool {
        let mut pool = Pool {
            ranges: [Range::default(); 16],
            cursor: [0; 16],
            n: 0,
        };
        let excl = crate::platform::exclusions(p);
        crate::platform::for_each_free(p, &excl, |s, e| {
            if pool.n < 16 && e > s {
                pool.ranges[pool.n] = Range { start: s, end: e };
                pool.cursor[pool.n] = s;
                pool.n += 1;
            }
        });
        pool
    }

    /// `size` bytes aligned to `align` (both multiples of 4 KiB), zeroed.
    pub fn alloc(&mut self, size: u64, align: u64) -> Option<u64> {
        let a = self.alloc_raw(size, align)?;
        zero(a, size);
        Some(a)
    }

    /// Like `alloc` without zeroing (for huge benchmark ranges).
    pub fn alloc_raw(&mut self, size: u64, align: u64) -> Option<u64> {
        for i in 0..self.n {
            let a = self.cursor[i].checked_add(align - 1)? & !(align - 1);
            if a.checked_add(size)? <= self.ranges[i].end {
                self.cursor[i] = a + size;
                return Some(a);
            }
        }
        None
    }

    pub fn mark(&self) -> Mark {
        self.cursor
    }

    pub fn reset(&mut self, m: Mark) {
        self.cursor = m;
    }
}

pub fn zero(addr: u64, size: u64) {
    let mut a = addr;
    while a < addr + size {
        // SAFETY: host memory handed out by the pool.
        unsafe { core::ptr::write_volatile(a as *mut u64, 0) };
        a += 8;
    }
}

pub fn rd(addr: u64) -> u64 {
    // SAFETY: callers pass host memory tellus owns.
    unsafe { core::ptr::read_volatile(addr as *const u64) }
}

pub fn wr(addr: u64, v: u64) {
    // SAFETY: callers pass host memory tellus owns.
    unsafe { core::ptr::write_volatile(addr as *mut u64, v) }
}

/// Loads from `addr` with the expected-fault handling armed: `Ok(value)` if
/// it did not fault, `Err(scause)` if it did.
pub fn try_read(addr: u64) -> Result<u64, u64> {
    let s = trap::expect_fault();
    // SAFETY: armed; a fault resumes after the load.
    let v = unsafe { arch::probe_load(addr) };
    match trap::fault_result(s) {
        None => Ok(v),
        Some((cause, _)) => Err(cause),
    }
}

/// Stores to `addr` only if a load works (so a broken protection cannot
/// make tellus write memory it gave away), then reads back.
pub fn host_page_ok(addr: u64) -> bool {
    if try_read(addr).is_err() {
        return false;
    }
    let s = trap::expect_fault();
    // SAFETY: armed; `addr` is a page tellus owns again (the load worked).
    unsafe { arch::probe_store(addr, !addr) };
    if trap::fault_result(s).is_some() {
        return false;
    }
    try_read(addr) == Ok(!addr)
}
