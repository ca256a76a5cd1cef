//! Raw access to physical memory. Salus runs with `satp` = Bare, so a
//! host-physical address is directly dereferenceable. Every function here
//! takes addresses that the caller has proven it may touch (Salus-owned
//! memory, or host memory whose ownership the page map confirmed).

use hyp_addr::HostPhysAddr;

/// Reads a u64 at an 8-byte aligned physical address.
#[inline(always)]
pub fn read_u64(pa: HostPhysAddr) -> u64 {
    // SAFETY: callers pass aligned addresses of RAM Salus may access.
    unsafe { core::ptr::read_volatile(pa.bits() as *const u64) }
}

/// Writes a u64 at an 8-byte aligned physical address.
#[inline(always)]
pub fn write_u64(pa: HostPhysAddr, val: u64) {
    // SAFETY: callers pass aligned addresses of RAM Salus owns.
    unsafe { core::ptr::write_volatile(pa.bits() as *mut u64, val) }
}

/// Writes a u32 at a 4-byte aligned physical address (a device register).
#[inline(always)]
pub fn write_u32(pa: HostPhysAddr, val: u32) {
    // SAFETY: callers pass aligned addresses of device registers or RAM
    // Salus owns (an IMSIC file's doorbell for `arch::imsic::send`).
    unsafe { core::ptr::write_volatile(pa.bits() as *mut u32, val) }
}

/// Zeroes `len` bytes at `pa` (both 8-byte aligned).
pub fn zero(pa: HostPhysAddr, len: u64) {
    // SAFETY: callers pass a range of RAM Salus owns, not aliased by any
    // Rust reference.
    unsafe { core::ptr::write_bytes(pa.bits() as *mut u8, 0, len as usize) }
}

/// Zeroes `len` bytes at `pa` (both 8-byte aligned) and, on harts with
/// Zicbom, writes the zeros back to memory (`cbo.flush` per cache block).
/// For memory leaving a TVM or returning to the host: the zeros must reach
/// DRAM, or a non-cacheable mapping (Svpbmt) of the page would still read
/// what the TVM left there.
pub fn scrub(pa: HostPhysAddr, len: u64) {
    zero(pa, len);
    let block = crate::platform::get().cbom_block;
    if block == 0 || len == 0 {
        return;
    }
    let mut a = pa.bits() & !(block - 1);
    let end = pa.bits() + len;
    while a < end {
        // SAFETY: cbo.flush (MISC-MEM, funct3 2, imm 2 = flush; `.insn` so
        // no assembler extension is needed)
        // writes a cache block back to memory; it changes no memory
        // contents and `a` lies in the range Salus just zeroed (rounded
        // down to its block, still RAM the caller owns).
        unsafe {
            core::arch::asm!(
                ".insn i 0x0f, 2, x0, {0}, 2",
                in(reg) a,
                options(nostack),
            )
        };
        a += block;
    }
    // The flushes complete before any later access (host re-mapping).
    // SAFETY: a full fence has no effect on Rust-visible state.
    unsafe { core::arch::asm!("fence rw, rw", options(nostack)) };
}

/// Copies `dst.len()` bytes out of physical memory at `src`.
pub fn copy_from(src: HostPhysAddr, dst: &mut [u8]) {
    // SAFETY: callers validated that [src, src + len) is readable RAM that no
    // Rust reference aliases mutably.
    unsafe { core::ptr::copy_nonoverlapping(src.bits() as *const u8, dst.as_mut_ptr(), dst.len()) }
}

/// Copies `src` into physical memory at `dst`.
pub fn copy_to(dst: HostPhysAddr, src: &[u8]) {
    // SAFETY: callers validated that [dst, dst + len) is writable RAM that no
    // Rust reference aliases.
    unsafe { core::ptr::copy_nonoverlapping(src.as_ptr(), dst.bits() as *mut u8, src.len()) }
}

/// Borrows `[pa, pa + len)` as a shared byte slice for the rest of Salus's
/// life.
///
/// # Safety
/// The range is memory nothing writes to (e.g. Salus's own code and
/// constants).
pub unsafe fn shared_bytes(pa: HostPhysAddr, len: u64) -> &'static [u8] {
    // SAFETY: the caller guarantees nothing writes to the range.
    unsafe { core::slice::from_raw_parts(pa.bits() as *const u8, len as usize) }
}

/// Borrows `[pa, pa + len)` as a byte slice for the rest of Salus's life.
///
/// # Safety
/// The range must be RAM reserved for Salus, handed out exactly once.
pub unsafe fn claim_bytes(pa: HostPhysAddr, len: u64) -> &'static mut [u8] {
    // SAFETY: guaranteed by the caller (exclusive, Salus-owned RAM).
    unsafe { core::slice::from_raw_parts_mut(pa.bits() as *mut u8, len as usize) }
}

/// Borrows a Salus-reserved range as a slice of `T` (zero-initialised by
/// the caller's later fill, or valid for any bit pattern).
///
/// # Safety
/// As `claim_bytes`; `pa` must be aligned for `T` and `T` must be valid for
/// any bit pattern (plain integers / repr(transparent) over them).
pub unsafe fn claim_slice<T>(pa: HostPhysAddr, count: usize) -> &'static mut [T] {
    // SAFETY: guaranteed by the caller.
    unsafe { core::slice::from_raw_parts_mut(pa.bits() as *mut T, count) }
}

/// Moves `value` into physical memory at `pa` and returns a reference to it
/// for as long as the TSM keeps the pages.
///
/// # Safety
/// `[pa, pa + size_of::<T>())` must be RAM the page map records as owned by
/// Salus on behalf of a TVM (donated and converted), aligned for `T`, and not
/// referenced by anything else. The reference must not be used after the
/// pages are released (the TSM only dereferences it under its lock, and
/// releases pages only after dropping every such reference).
pub unsafe fn place<T>(pa: HostPhysAddr, value: T) -> &'static mut T {
    let p = pa.bits() as *mut T;
    // SAFETY: guaranteed by the caller.
    unsafe {
        p.write(value);
        &mut *p
    }
}

/// Re-borrows an object previously placed with [`place`].
///
/// # Safety
/// As for `place`; `pa` must hold a live `T` written by `place`, and no
/// other reference to it may be live.
pub unsafe fn object_at<T>(pa: HostPhysAddr) -> &'static mut T {
    // SAFETY: guaranteed by the caller.
    unsafe { &mut *(pa.bits() as *mut T) }
}

/// Shares an object previously placed with [`place`] (for objects whose
/// cross-hart parts are atomics or locks).
///
/// # Safety
/// `pa` must hold a live `T` written by `place`, and nobody may hold a
/// `&mut` to it while the returned reference is used.
pub unsafe fn object_ref<T>(pa: HostPhysAddr) -> &'static T {
    // SAFETY: guaranteed by the caller.
    unsafe { &*(pa.bits() as *const T) }
}

/// Copies `len` bytes between two physical ranges.
pub fn copy_phys(dst: HostPhysAddr, src: HostPhysAddr, len: u64) {
    if (dst.bits() | src.bits() | len).is_multiple_of(64) {
        // Whole pages: 64 bytes per iteration (the generic memcpy moves one
        // word per loop trip; this runs for every measured page).
        let (d, s) = (dst.bits() as *mut [u64; 8], src.bits() as *const [u64; 8]);
        for i in 0..(len / 64) as usize {
            // SAFETY: as below; both pointers are 64-byte aligned and the
            // i-th chunk lies inside the validated ranges.
            unsafe { d.add(i).write(s.add(i).read()) };
        }
        return;
    }
    // SAFETY: callers validated both ranges (the source readable by the
    // caller's ownership check, the destination owned by Salus for a TVM)
    // and that they do not overlap (different page-map owners).
    unsafe {
        core::ptr::copy_nonoverlapping(src.bits() as *const u8, dst.bits() as *mut u8, len as usize)
    }
}

/// Borrows the 4 KiB page at `pa` for reading.
///
/// # Safety
/// The page must be owned by Salus (e.g. a TVM page under the TSM lock)
/// and not written while the borrow lives.
pub unsafe fn page<'a>(pa: HostPhysAddr) -> &'a [u8; 4096] {
    // SAFETY: guaranteed by the caller.
    unsafe { &*(pa.bits() as *const [u8; 4096]) }
}

/// The physical address of an object (Salus runs with paging off).
pub fn addr_of<T>(obj: &T) -> HostPhysAddr {
    HostPhysAddr::new(obj as *const T as u64)
}
