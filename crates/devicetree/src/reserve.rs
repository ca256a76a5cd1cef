//! The memory the firmware's tree keeps for itself, and host RAM around it.

use crate::MachineInfo;
use alloc::vec::Vec;
use hyp_addr::{HostPhysAddr, HostRange, PAGE_SIZE};

/// Every range the firmware's tree reserves: each `/reserved-memory` child
/// with a `reg` (`no-map` or not: either way it is not the host's to give
/// away) and each `/memreserve/` entry of the header. Widened to whole
/// 4 KiB pages, sorted and merged; empty ranges and ranges reaching past
/// the end of the address space are clipped.
pub fn firmware_reserved(info: &MachineInfo) -> Vec<HostRange> {
    let mut v: Vec<(u64, u64)> = info
        .reserved
        .iter()
        .map(|r| r.range)
        .chain(info.mem_reservations.iter().copied())
        .filter(|r| r.len != 0)
        .map(|r| {
            let start = r.start.bits() & !(PAGE_SIZE - 1);
            let end = r
                .start
                .bits()
                .checked_add(r.len)
                .and_then(|e| e.checked_next_multiple_of(PAGE_SIZE))
                .unwrap_or(!(PAGE_SIZE - 1));
            (start, end)
        })
        .filter(|(s, e)| e > s)
        .collect();
    v.sort_unstable();
    let mut out: Vec<HostRange> = Vec::new();
    for (s, e) in v {
        if let Some(last) = out.last_mut() {
            if s <= last.end().bits() {
                let end = e.max(last.end().bits());
                last.len = end - last.start.bits();
                continue;
            }
        }
        if let Some(r) = HostRange::new(HostPhysAddr::new(s), e - s) {
            out.push(r);
        }
    }
    out
}

/// `range` minus every range in `holes`, in address order.
pub fn subtract(range: HostRange, holes: &[HostRange]) -> Vec<HostRange> {
    let mut out = Vec::new();
    let mut cur = range.start.bits();
    let end = range.end().bits();
    let mut hs: Vec<&HostRange> = holes.iter().filter(|h| h.overlaps(&range)).collect();
    hs.sort_unstable_by_key(|h| h.start.bits());
    for h in hs {
        let (hs, he) = (h.start.bits(), h.end().bits());
        if hs > cur {
            out.push(HostRange::new(HostPhysAddr::new(cur), hs.min(end) - cur).unwrap());
        }
        cur = cur.max(he);
        if cur >= end {
            return out;
        }
    }
    if cur < end {
        out.push(HostRange::new(HostPhysAddr::new(cur), end - cur).unwrap());
    }
    out
}

/// What the host's tree lists under `/reserved-memory`: Salus's own
/// ranges, then each firmware range not already inside one of them.
pub fn host_reserved(own: &[HostRange], firmware: &[HostRange]) -> Vec<HostRange> {
    let mut out: Vec<HostRange> = own.to_vec();
    for f in firmware {
        if !own.iter().any(|o| o.contains_range(f.start, f.len)) {
            out.push(*f);
        }
    }
    out
}
