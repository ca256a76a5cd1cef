//! Little-endian field access on byte slices, without `unsafe`.
//!
//! Callers check the overall length first, so the index arithmetic here
//! never goes out of bounds.

pub(crate) fn rd_u8(b: &[u8], off: usize) -> u8 {
    b[off]
}

pub(crate) fn rd_u32(b: &[u8], off: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[off..off + 4]);
    u32::from_le_bytes(a)
}

pub(crate) fn rd_u64(b: &[u8], off: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[off..off + 8]);
    u64::from_le_bytes(a)
}

pub(crate) fn wr_u8(b: &mut [u8], off: usize, v: u8) {
    b[off] = v;
}

pub(crate) fn wr_u32(b: &mut [u8], off: usize, v: u32) {
    b[off..off + 4].copy_from_slice(&v.to_le_bytes());
}

pub(crate) fn wr_u64(b: &mut [u8], off: usize, v: u64) {
    b[off..off + 8].copy_from_slice(&v.to_le_bytes());
}
