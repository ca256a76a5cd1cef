//! The shared context of the TEE tests, the attack group and fuzz: the
//! probed TSM info, the host page pool and live harts (`Ctx`), the census of
//! every range converted, and the helpers that convert, reclaim and build
//! small TVMs with the checks every user makes.

use cove_abi::{TsmInfo, TvmCreateParams};
use sbi_abi::SbiRet;

use super::*;
use crate::harness::T;
use crate::platform::{Platform, MAX_HARTS};
use crate::sbi;

/// Every range tellus converted, for the final census.
pub struct Census {
    pub ranges: [(u64, u64); 64],
    pub n: usize,
    pub lost: bool,
}

impl Census {
    const fn new() -> Census {
        Census {
            ranges: [(0, 0); 64],
            n: 0,
            lost: false,
        }
    }
    pub fn add(&mut self, base: u64, pages: u64) {
        if self.n < self.ranges.len() {
            self.ranges[self.n] = (base, pages);
            self.n += 1;
        } else {
            self.lost = true;
        }
    }
}

pub static CENSUS: spin::Mutex<Census> = spin::Mutex::new(Census::new());

/// Shared state of the TEE tests.
pub struct Ctx {
    pub info: TsmInfo,
    pub pool: Pool,
    pub live: [bool; MAX_HARTS],
    /// The boot hart followed by every live secondary.
    pub slots: [usize; MAX_HARTS],
    pub nslots: usize,
}

impl Ctx {
    pub fn slots(&self) -> &[usize] {
        &self.slots[..self.nslots]
    }
    pub fn secondaries(&self) -> usize {
        self.nslots - 1
    }
}

pub fn setup(p: &Platform) -> Option<Ctx> {
    let mut buf = Info([0; 64]);
    let info = probe(&mut buf)?;
    let live = live_secondaries(p);
    let mut slots = [0; MAX_HARTS];
    slots[0] = boot_slot(p);
    let mut n = 1;
    for (i, l) in live.iter().enumerate() {
        if *l {
            slots[n] = i;
            n += 1;
        }
    }
    let _ = sbi::set_timer(u64::MAX);
    Some(Ctx {
        info,
        pool: Pool::new(p),
        live,
        slots,
        nslots: n,
    })
}

/// Converts `[base, base + n pages)` and completes the conversion with
/// global + local fences. Records the range for the census.
pub fn convert(t: &mut T, p: &Platform, cx: &Ctx, base: u64, n: u64) -> bool {
    if !check_err!(
        t,
        convert_pages(base, n),
        OK,
        "convert_pages({base:#x}, {n})"
    ) {
        return false;
    }
    CENSUS.lock().add(base, n);
    match fence_all(p, &cx.live) {
        Ok(()) => true,
        Err((what, e)) => {
            check!(t, false, "{what} after converting {base:#x}: error {e}");
            false
        }
    }
}

/// Reclaims and checks that every page reads zero and is host memory again.
pub fn reclaim_check(t: &mut T, base: u64, n: u64) -> bool {
    if !check_err!(
        t,
        reclaim_pages(base, n),
        OK,
        "reclaim_pages({base:#x}, {n})"
    ) {
        return false;
    }
    let mut nonzero = 0u64;
    let mut first = None;
    for pg in 0..n {
        let a = base + pg * PAGE;
        if let Err(c) = try_read(a) {
            check!(t, false, "reclaimed page {a:#x} still faults (scause {c})");
            return false;
        }
        let mut w = 0;
        while w < PAGE {
            if rd(a + w) != 0 {
                nonzero += 1;
                first.get_or_insert(a + w);
                break;
            }
            w += 8;
        }
    }
    if let Some(f) = first {
        check!(
            t,
            false,
            "{nonzero} reclaimed page(s) not zeroed, first at {f:#x}"
        );
    }
    first.is_none()
}

/// A bump allocator over an already converted range.
pub struct Arena {
    pub base: u64,
    pub pages: u64,
    next: u64,
}

impl Arena {
    pub fn new(base: u64, pages: u64) -> Arena {
        Arena {
            base,
            pages,
            next: base,
        }
    }
    pub fn take(&mut self, n: u64, align: u64) -> u64 {
        let a = (self.next + align - 1) & !(align - 1);
        assert!(
            a + n * PAGE <= self.base + self.pages * PAGE,
            "arena exhausted"
        );
        self.next = a + n * PAGE;
        a
    }
}

pub const PT_PAGES: u64 = 32;

/// The pieces of a small TVM built from an arena.
pub struct Tiny {
    pub id: u64,
    pub vcpu_state: u64,
    pub pt: u64,
}

/// Writes `tvm_create_params` into a host page.
pub fn write_params(params_page: u64, pagedir: u64, state: u64) {
    let b = TvmCreateParams {
        tvm_page_directory_addr: pagedir,
        tvm_state_addr: state,
    }
    .to_bytes();
    wr(params_page, u64::from_le_bytes(b[0..8].try_into().unwrap()));
    wr(
        params_page + 8,
        u64::from_le_bytes(b[8..16].try_into().unwrap()),
    );
}

/// Writes params into a host page and calls create_tvm.
pub fn create(params_page: u64, pagedir: u64, state: u64) -> SbiRet {
    write_params(params_page, pagedir, state);
    create_tvm(params_page, TvmCreateParams::SIZE as u64)
}

/// create_tvm + a 2 MiB region at 0x8000_0000 + PT pages + vCPU 0, taking
/// pages from `ar` (which must have room for them).
pub fn tiny_tvm(t: &mut T, cx: &Ctx, ar: &mut Arena, params_page: u64) -> Option<Tiny> {
    let pagedir = ar.take(4, 4 * PAGE);
    let state = ar.take(cx.info.tvm_state_pages.max(1), PAGE);
    let vcpu_state = ar.take(cx.info.tvm_vcpu_state_pages.max(1), PAGE);
    let pt = ar.take(PT_PAGES, PAGE);
    let r = create(params_page, pagedir, state);
    if !check_err!(t, r, OK, "create_tvm") {
        return None;
    }
    let id = r.value;
    check!(t, id >= 1, "create_tvm returned id {id}");
    check_err!(
        t,
        add_memory_region(id, 0x8000_0000, SIZE_2M),
        OK,
        "add_tvm_memory_region"
    );
    check_err!(
        t,
        add_pt_pages(id, pt, PT_PAGES),
        OK,
        "add_tvm_page_table_pages"
    );
    check_err!(t, create_vcpu(id, 0, vcpu_state), OK, "create_tvm_vcpu(0)");
    Some(Tiny { id, vcpu_state, pt })
}

/// Pages a tiny TVM needs from an arena (plus slack for alignment).
pub fn tiny_pages(info: &TsmInfo) -> u64 {
    8 + info.tvm_state_pages.max(1) + info.tvm_vcpu_state_pages.max(1) + PT_PAGES
}
