//! Salus's heap, carved from its reserved memory at boot.

use crate::arch::phys;
use hyp_addr::HostRange;
use linked_list_allocator::LockedHeap;

#[global_allocator]
static HEAP: LockedHeap = LockedHeap::empty();

pub fn init(range: HostRange) {
    // SAFETY: `range` is Salus-reserved RAM handed to the heap only, once.
    let bytes = unsafe { phys::claim_bytes(range.start, range.len) };
    // SAFETY: the slice is valid for 'static and used by nothing else.
    unsafe { HEAP.lock().init(bytes.as_mut_ptr(), bytes.len()) };
}
