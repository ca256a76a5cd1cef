extern crate std;

use std::vec;
use std::vec::Vec;

use proptest::prelude::*;

use super::*;

const BASE: u64 = 0x8000_0000;

fn range(start: u64, len: u64) -> HostRange {
    HostRange {
        start: HostPhysAddr::new(start),
        len,
    }
}

fn pages(start_page: u64, n: u64) -> HostRange {
    range(BASE + start_page * PAGE_SIZE, n * PAGE_SIZE)
}

fn tvm(n: u32) -> TvmId {
    TvmId::new(n).unwrap()
}

fn recount(map: &PageMap<'_>) -> Census {
    let base = map.ram().start.bits();
    Census::recount(
        (0..map.num_pages()).map(|i| map.state(HostPhysAddr::new(base + i * PAGE_SIZE)).unwrap()),
    )
}

fn all_states() -> Vec<PageState> {
    let mut v = vec![
        PageState::Firmware,
        PageState::Hypervisor,
        PageState::Host,
        PageState::ConvertPending,
        PageState::Converted,
        PageState::Released,
        PageState::Reclaiming,
    ];
    for id in [0, 1, 77, TvmId::MAX] {
        v.push(PageState::Shared(tvm(id)));
        for k in TvmPageKind::ALL {
            v.push(PageState::Tvm(tvm(id), k));
        }
    }
    v
}

#[test]
fn encoding_round_trips_and_is_injective() {
    let states = all_states();
    for (i, s) in states.iter().enumerate() {
        let e = Entry::encode(*s);
        assert_eq!(e.decode(), Some(*s));
        for t in &states[i + 1..] {
            assert_ne!(e, Entry::encode(*t), "{s:?} vs {t:?}");
        }
    }
    assert_eq!(core::mem::size_of::<Entry>(), 4);
    assert_eq!(Entry::default().decode(), Some(PageState::Firmware));
    assert!(TvmId::new(TvmId::MAX + 1).is_none());
}

#[test]
fn required_entries_rounds_up() {
    assert_eq!(required_entries(0), 0);
    assert_eq!(required_entries(1), 1);
    assert_eq!(required_entries(PAGE_SIZE), 1);
    assert_eq!(required_entries(PAGE_SIZE + 1), 2);
    assert_eq!(required_entries(2 << 30), 512 * 1024);
}

#[test]
fn new_validates() {
    let mut st = vec![Entry::default(); 16];
    assert_eq!(
        PageMap::new(&mut st, range(BASE, 17 * PAGE_SIZE), PageState::Host).unwrap_err(),
        Error::StorageTooSmall { needed: 17 }
    );
    assert_eq!(
        PageMap::new(&mut st, range(BASE + 1, PAGE_SIZE), PageState::Host).unwrap_err(),
        Error::Misaligned
    );
    assert_eq!(
        PageMap::new(&mut st, range(BASE, 100), PageState::Host).unwrap_err(),
        Error::Misaligned
    );
    assert_eq!(
        PageMap::new(&mut st, range(u64::MAX - 0xfff, 0x2000), PageState::Host).unwrap_err(),
        Error::Overflow
    );
    // A larger slice is fine; only the first entries are used.
    let map = PageMap::new(&mut st, pages(0, 8), PageState::Host).unwrap();
    assert_eq!(map.num_pages(), 8);
    assert_eq!(map.census().count(StateKind::Host), 8);
    assert!(map.census().is_balanced());
}

#[test]
fn cove_life_cycle() {
    let mut st = vec![Entry::default(); 32];
    let mut map = PageMap::new(&mut st, pages(0, 32), PageState::Host).unwrap();
    map.set_range(pages(0, 4), PageState::Firmware).unwrap();
    map.set_range(pages(4, 4), PageState::Hypervisor).unwrap();
    let r = pages(8, 8);
    let id = tvm(3);

    // Cannot assign host pages directly.
    assert_eq!(
        map.assign_to_tvm(r, id, TvmPageKind::Data),
        Err(Error::WrongState {
            addr: HostPhysAddr::new(BASE + 8 * PAGE_SIZE),
            found: PageState::Host
        })
    );
    map.convert_begin(r).unwrap();
    assert_eq!(map.state(r.start).unwrap(), PageState::ConvertPending);
    assert!(map.state(r.start).unwrap().is_confidential());
    // Pending pages are not usable yet.
    assert!(map.assign_to_tvm(r, id, TvmPageKind::Data).is_err());
    map.convert_complete(r).unwrap();
    map.assign_to_tvm(pages(8, 2), id, TvmPageKind::PageTable)
        .unwrap();
    map.assign_to_tvm(pages(10, 2), id, TvmPageKind::State)
        .unwrap();
    map.assign_to_tvm(pages(12, 4), id, TvmPageKind::Data)
        .unwrap();
    assert_eq!(map.census().count(StateKind::Tvm), 8);
    // Reclaiming pages still owned by the TVM fails.
    assert!(map.reclaim(r).is_err());
    // Another TVM cannot release them.
    assert!(map.release_from_tvm(r, tvm(4)).is_err());
    map.release_from_tvm(pages(12, 4), id).unwrap();
    map.share_with_tvm(pages(20, 2), id).unwrap();
    let rel = map.release_tvm(id);
    assert_eq!(
        rel,
        TvmRelease {
            released: 4,
            unshared: 2
        }
    );
    assert_eq!(map.census().count(StateKind::Released), 8);
    // Released pages must be scrubbed first.
    assert!(map.reclaim(r).is_err());
    map.scrub_complete(r).unwrap();
    map.reclaim_begin(pages(8, 4)).unwrap();
    map.reclaim_complete(pages(8, 4)).unwrap();
    map.reclaim(pages(12, 4)).unwrap();
    let c = map.census();
    assert_eq!(c.count(StateKind::Host), 24);
    assert_eq!(c.count(StateKind::Firmware), 4);
    assert_eq!(c.count(StateKind::Hypervisor), 4);
    assert_eq!(c, recount(&map));
}

#[test]
fn range_validation() {
    let mut st = vec![Entry::default(); 8];
    let mut map = PageMap::new(&mut st, pages(0, 8), PageState::Host).unwrap();
    let t = |m: &mut PageMap<'_>, r| m.transition(r, PageState::Host, PageState::Hypervisor);
    assert_eq!(
        t(&mut map, range(BASE + 1, PAGE_SIZE)),
        Err(Error::Misaligned)
    );
    assert_eq!(t(&mut map, range(BASE, 1)), Err(Error::Misaligned));
    assert_eq!(
        t(&mut map, range(BASE - PAGE_SIZE, PAGE_SIZE)),
        Err(Error::OutOfRange)
    );
    assert_eq!(t(&mut map, pages(7, 2)), Err(Error::OutOfRange));
    assert_eq!(t(&mut map, range(BASE, !0xfffu64)), Err(Error::Overflow));
    assert_eq!(
        t(&mut map, range(!0xfffu64, PAGE_SIZE)),
        Err(Error::Overflow)
    );
    assert_eq!(t(&mut map, range(!0xfffu64, 0)), Err(Error::OutOfRange));
    assert_eq!(
        map.state(HostPhysAddr::new(BASE - 1)),
        Err(Error::OutOfRange)
    );
    assert_eq!(
        map.state(HostPhysAddr::new(BASE + 8 * PAGE_SIZE)),
        Err(Error::OutOfRange)
    );
    assert_eq!(
        map.state(HostPhysAddr::new(BASE + 123)),
        Ok(PageState::Host)
    );
    // Zero-length ranges inside the map are accepted and do nothing.
    t(&mut map, pages(8, 0)).unwrap();
    assert_eq!(map.census().count(StateKind::Host), 8);
}

#[test]
fn failed_transition_changes_nothing() {
    let mut st = vec![Entry::default(); 8];
    let mut map = PageMap::new(&mut st, pages(0, 8), PageState::Host).unwrap();
    map.set_range(pages(5, 1), PageState::Firmware).unwrap();
    let before = map.census();
    assert_eq!(
        map.convert_begin(pages(0, 8)),
        Err(Error::WrongState {
            addr: HostPhysAddr::new(BASE + 5 * PAGE_SIZE),
            found: PageState::Firmware
        })
    );
    assert_eq!(map.census(), before);
    assert_eq!(map.pages_in_state(PageState::Host).count(), 7);
}

#[test]
fn queries() {
    let mut st = vec![Entry::default(); 64];
    let mut map = PageMap::new(&mut st, pages(0, 64), PageState::Host).unwrap();
    map.set_range(pages(0, 3), PageState::Hypervisor).unwrap();
    map.set_range(pages(10, 1), PageState::Firmware).unwrap();
    let runs: Vec<_> = map.runs().collect();
    assert_eq!(
        runs,
        vec![
            (pages(0, 3), PageState::Hypervisor),
            (pages(3, 7), PageState::Host),
            (pages(10, 1), PageState::Firmware),
            (pages(11, 53), PageState::Host),
        ]
    );
    assert_eq!(
        map.find_run(PageState::Host, 7, PageSize::Size4K),
        Some(pages(3, 7))
    );
    assert_eq!(
        map.find_run(PageState::Host, 8, PageSize::Size4K),
        Some(pages(11, 8))
    );
    assert_eq!(map.find_run(PageState::Host, 4, PageSize::Size2M), None);
    assert_eq!(map.find_run(PageState::Host, 0, PageSize::Size4K), None);
    assert_eq!(map.find_run(PageState::Host, 65, PageSize::Size4K), None);
    assert_eq!(
        map.find_run(PageState::Converted, 1, PageSize::Size4K),
        None
    );
    let hyp: Vec<_> = map.pages_in_state(PageState::Hypervisor).collect();
    assert_eq!(
        hyp,
        vec![pages(0, 1).start, pages(1, 1).start, pages(2, 1).start]
    );

    // A 2 MiB-aligned map to exercise alignment.
    let mut st = vec![Entry::default(); 1024];
    let mut map = PageMap::new(&mut st, pages(0, 1024), PageState::Host).unwrap();
    map.set_range(pages(1, 1), PageState::Firmware).unwrap();
    assert_eq!(
        map.find_run(PageState::Host, 1, PageSize::Size2M),
        Some(pages(0, 1))
    );
    assert_eq!(
        map.find_run(PageState::Host, 2, PageSize::Size2M),
        Some(pages(512, 2))
    );
    assert_eq!(
        map.find_run(PageState::Host, 512, PageSize::Size2M),
        Some(pages(512, 512))
    );
    assert_eq!(map.find_run(PageState::Host, 513, PageSize::Size2M), None);
}

// ----- model-based property test ------------------------------------------

const NPAGES: u64 = 48;

#[derive(Clone, Debug)]
enum Op {
    Set(HostRange, PageState),
    Transition(HostRange, PageState, PageState),
    ConvertBegin(HostRange),
    ConvertComplete(HostRange),
    Assign(HostRange, TvmId, TvmPageKind),
    Release(HostRange, TvmId),
    Scrub(HostRange),
    ReclaimBegin(HostRange),
    ReclaimComplete(HostRange),
    Reclaim(HostRange),
    Share(HostRange, TvmId),
    Unshare(HostRange, TvmId),
    ReleaseTvm(TvmId),
}

fn arb_tvm() -> impl Strategy<Value = TvmId> {
    prop_oneof![4 => 0u32..3, 1 => Just(TvmId::MAX)].prop_map(tvm)
}

fn arb_state() -> impl Strategy<Value = PageState> {
    prop_oneof![
        1 => Just(PageState::Firmware),
        1 => Just(PageState::Hypervisor),
        3 => Just(PageState::Host),
        2 => Just(PageState::ConvertPending),
        2 => Just(PageState::Converted),
        1 => (arb_tvm(), proptest::sample::select(TvmPageKind::ALL.to_vec())).prop_map(|(i, k)| PageState::Tvm(i, k)),
        1 => arb_tvm().prop_map(PageState::Shared),
        1 => Just(PageState::Released),
        1 => Just(PageState::Reclaiming),
    ]
}

fn arb_range() -> impl Strategy<Value = HostRange> {
    prop_oneof![
        // Mostly in-range, page-aligned ranges (some spilling out).
        8 => (0u64..NPAGES + 2, 0u64..12).prop_map(|(s, n)| pages(s, n)),
        // Below the base.
        1 => (1u64..4, 0u64..8).prop_map(|(b, n)| range(BASE - b * PAGE_SIZE, n * PAGE_SIZE)),
        // Misaligned start or length.
        1 => (0u64..NPAGES, 1u64..PAGE_SIZE, 0u64..4)
            .prop_map(|(s, off, n)| range(BASE + s * PAGE_SIZE + off, n * PAGE_SIZE)),
        1 => (0u64..NPAGES, 1u64..PAGE_SIZE).prop_map(|(s, off)| range(BASE + s * PAGE_SIZE, off)),
        // Overflowing u64 and arbitrary garbage.
        1 => (0u64..NPAGES, 1u64..16).prop_map(|(s, k)| range(BASE + s * PAGE_SIZE, u64::MAX - k * PAGE_SIZE + 1)),
        1 => (any::<u64>(), any::<u64>()).prop_map(|(s, l)| range(s, l)),
        1 => (0u64..8).prop_map(|k| range(u64::MAX - k * PAGE_SIZE - 0xfff, (k + 2) * PAGE_SIZE)),
    ]
}

fn arb_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (arb_range(), arb_state()).prop_map(|(r, s)| Op::Set(r, s)),
        (arb_range(), arb_state(), arb_state()).prop_map(|(r, f, t)| Op::Transition(r, f, t)),
        arb_range().prop_map(Op::ConvertBegin),
        arb_range().prop_map(Op::ConvertComplete),
        (
            arb_range(),
            arb_tvm(),
            proptest::sample::select(TvmPageKind::ALL.to_vec())
        )
            .prop_map(|(r, i, k)| Op::Assign(r, i, k)),
        (arb_range(), arb_tvm()).prop_map(|(r, i)| Op::Release(r, i)),
        arb_range().prop_map(Op::Scrub),
        arb_range().prop_map(Op::ReclaimBegin),
        arb_range().prop_map(Op::ReclaimComplete),
        arb_range().prop_map(Op::Reclaim),
        (arb_range(), arb_tvm()).prop_map(|(r, i)| Op::Share(r, i)),
        (arb_range(), arb_tvm()).prop_map(|(r, i)| Op::Unshare(r, i)),
        arb_tvm().prop_map(Op::ReleaseTvm),
    ]
}

/// The reference: one state per page in a Vec, checked with u128 maths.
struct Model {
    pages: Vec<PageState>,
}

impl Model {
    fn span(&self, r: HostRange) -> Result<(usize, usize), Error> {
        let start = r.start.bits() as u128;
        let end = start + r.len as u128;
        if end > u64::MAX as u128 {
            return Err(Error::Overflow);
        }
        if !start.is_multiple_of(4096) || !r.len.is_multiple_of(4096) {
            return Err(Error::Misaligned);
        }
        let lo = BASE as u128;
        let hi = lo + self.pages.len() as u128 * 4096;
        if start < lo || end > hi {
            return Err(Error::OutOfRange);
        }
        Ok((((start - lo) / 4096) as usize, (r.len / 4096) as usize))
    }

    fn apply(
        &mut self,
        r: HostRange,
        accept: impl Fn(PageState) -> bool,
        to: PageState,
    ) -> Result<(), Error> {
        let (first, n) = self.span(r)?;
        for i in first..first + n {
            if !accept(self.pages[i]) {
                return Err(Error::WrongState {
                    addr: HostPhysAddr::new(BASE + i as u64 * 4096),
                    found: self.pages[i],
                });
            }
        }
        for p in &mut self.pages[first..first + n] {
            *p = to;
        }
        Ok(())
    }

    fn step(&mut self, op: &Op) -> Result<Option<TvmRelease>, Error> {
        use PageState::*;
        let eq = |s: PageState| move |x: PageState| x == s;
        match *op {
            Op::Set(r, s) => self.apply(r, |_| true, s),
            Op::Transition(r, f, t) => self.apply(r, eq(f), t),
            Op::ConvertBegin(r) => self.apply(r, eq(Host), ConvertPending),
            Op::ConvertComplete(r) => self.apply(r, eq(ConvertPending), Converted),
            Op::Assign(r, i, k) => self.apply(r, eq(Converted), Tvm(i, k)),
            Op::Release(r, i) => self.apply(r, |x| matches!(x, Tvm(o, _) if o == i), Released),
            Op::Scrub(r) => self.apply(r, eq(Released), Converted),
            Op::ReclaimBegin(r) => self.apply(r, eq(Converted), Reclaiming),
            Op::ReclaimComplete(r) => self.apply(r, eq(Reclaiming), Host),
            Op::Reclaim(r) => self.apply(r, eq(Converted), Host),
            Op::Share(r, i) => self.apply(r, eq(Host), Shared(i)),
            Op::Unshare(r, i) => self.apply(r, eq(Shared(i)), Host),
            Op::ReleaseTvm(i) => {
                let mut rel = TvmRelease::default();
                for p in &mut self.pages {
                    match *p {
                        Tvm(o, _) if o == i => {
                            *p = Released;
                            rel.released += 1;
                        }
                        Shared(o) if o == i => {
                            *p = Host;
                            rel.unshared += 1;
                        }
                        _ => {}
                    }
                }
                return Ok(Some(rel));
            }
        }
        .map(|()| None)
    }
}

fn real_step(map: &mut PageMap<'_>, op: &Op) -> Result<Option<TvmRelease>, Error> {
    match *op {
        Op::Set(r, s) => map.set_range(r, s),
        Op::Transition(r, f, t) => map.transition(r, f, t),
        Op::ConvertBegin(r) => map.convert_begin(r),
        Op::ConvertComplete(r) => map.convert_complete(r),
        Op::Assign(r, i, k) => map.assign_to_tvm(r, i, k),
        Op::Release(r, i) => map.release_from_tvm(r, i),
        Op::Scrub(r) => map.scrub_complete(r),
        Op::ReclaimBegin(r) => map.reclaim_begin(r),
        Op::ReclaimComplete(r) => map.reclaim_complete(r),
        Op::Reclaim(r) => map.reclaim(r),
        Op::Share(r, i) => map.share_with_tvm(r, i),
        Op::Unshare(r, i) => map.unshare_from_tvm(r, i),
        Op::ReleaseTvm(i) => return Ok(Some(map.release_tvm(i))),
    }
    .map(|()| None)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn matches_model(initial in arb_state(), ops in proptest::collection::vec(arb_op(), 1..80)) {
        let mut storage = vec![Entry::default(); NPAGES as usize + 3];
        let mut map = PageMap::new(&mut storage, pages(0, NPAGES), initial).unwrap();
        let mut model = Model { pages: vec![initial; NPAGES as usize] };
        for op in &ops {
            let before: Vec<PageState> = model.pages.clone();
            let want = model.step(op);
            let got = real_step(&mut map, op);
            prop_assert_eq!(got, want, "op {:?}", op);
            if got.is_err() {
                // Failed operations change nothing (checked on the model,
                // which is then compared to the map).
                prop_assert_eq!(&model.pages, &before);
            }
            // Each page has exactly the model's state.
            for (i, s) in model.pages.iter().enumerate() {
                let a = HostPhysAddr::new(BASE + i as u64 * PAGE_SIZE);
                prop_assert_eq!(map.state(a), Ok(*s));
                prop_assert_eq!(map.state(HostPhysAddr::new(a.bits() + 0xfff)), Ok(*s));
            }
            let census = map.census();
            prop_assert!(census.is_balanced());
            prop_assert_eq!(census.total(), NPAGES);
            prop_assert_eq!(census, Census::recount(model.pages.iter().copied()));
            // The runs tile the map exactly.
            let mut next = BASE;
            for (r, s) in map.runs() {
                prop_assert_eq!(r.start.bits(), next);
                let i = ((next - BASE) / PAGE_SIZE) as usize;
                let n = (r.len / PAGE_SIZE) as usize;
                prop_assert!(model.pages[i..i + n].iter().all(|p| *p == s));
                next = r.end().bits();
            }
            prop_assert_eq!(next, BASE + NPAGES * PAGE_SIZE);
        }
        // The storage past the map is untouched.
        prop_assert_eq!(storage[NPAGES as usize], Entry::default());
    }

    #[test]
    fn find_run_agrees_with_scan(
        ops in proptest::collection::vec(arb_op(), 0..30),
        want in arb_state(),
        n in 1u64..6,
        align in proptest::sample::select(vec![PageSize::Size4K, PageSize::Size2M]),
    ) {
        let mut storage = vec![Entry::default(); NPAGES as usize];
        let mut map = PageMap::new(&mut storage, pages(0, NPAGES), PageState::Host).unwrap();
        for op in &ops {
            let _ = real_step(&mut map, op);
        }
        let expect = (0..=NPAGES.saturating_sub(n))
            .map(|s| pages(s, n))
            .filter(|r| r.start.is_aligned(align))
            .find(|r| (0..n).all(|k| map.state(HostPhysAddr::new(r.start.bits() + k * PAGE_SIZE)) == Ok(want)));
        prop_assert_eq!(map.find_run(want, n, align), expect);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Bounded steps end where one `release_tvm` does, change at most
    /// `max_pages` pages each, and report exactly the pages they changed.
    #[test]
    fn release_steps_match_release_tvm(
        ops in proptest::collection::vec(arb_op(), 0..60),
        target in 1u32..4,
        max_scan in 1usize..20,
        max_pages in 1usize..6,
    ) {
        let id = tvm(target);
        let mut a = vec![Entry::default(); NPAGES as usize];
        let mut b = vec![Entry::default(); NPAGES as usize];
        let mut one = PageMap::new(&mut a, pages(0, NPAGES), PageState::Host).unwrap();
        let mut steps = PageMap::new(&mut b, pages(0, NPAGES), PageState::Host).unwrap();
        for op in &ops {
            let _ = real_step(&mut one, op);
            let _ = real_step(&mut steps, op);
        }
        let want = one.release_tvm(id);
        let mut got = TvmRelease::default();
        let mut cursor = 0;
        let mut calls = 0;
        loop {
            calls += 1;
            prop_assert!(calls <= 4 * NPAGES as usize + 4, "release steps do not end");
            match steps.release_tvm_step(id, &mut cursor, max_scan, max_pages) {
                ReleaseStep::Done => break,
                ReleaseStep::Scanned => {}
                ReleaseStep::Released(r) => {
                    prop_assert!(r.len / PAGE_SIZE <= max_pages as u64 && r.len > 0);
                    for k in 0..r.len / PAGE_SIZE {
                        let a = HostPhysAddr::new(r.start.bits() + k * PAGE_SIZE);
                        prop_assert_eq!(steps.state(a), Ok(PageState::Released));
                    }
                    got.released += r.len / PAGE_SIZE;
                }
                ReleaseStep::Unshared(r) => {
                    prop_assert!(r.len / PAGE_SIZE <= max_pages as u64 && r.len > 0);
                    got.unshared += r.len / PAGE_SIZE;
                }
            }
        }
        prop_assert_eq!(got, want);
        for i in 0..NPAGES {
            let a = HostPhysAddr::new(BASE + i * PAGE_SIZE);
            prop_assert_eq!(steps.state(a), one.state(a));
        }
        prop_assert_eq!(steps.census(), one.census());
    }
}
