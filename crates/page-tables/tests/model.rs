//! Property tests: random map / map_range / unmap_4k / unmap_range sequences
//! (some under an allocation budget) checked against a model after every op.

mod common;

use common::{check_translate, leaves_to_runs, walk_all, Model, TestMemory};
use hyp_addr::{GuestPhysAddr, HostPhysAddr, PageSize};
use page_tables::{Error, GStageMode, GStageTable, PageTableMemory, Perms};
use proptest::prelude::*;

const G: u64 = 1 << 30;
const M2: u64 = 1 << 21;
const K4: u64 = 1 << 12;
/// 4 GiB window straddling the 512 GiB boundary: crosses Sv39x4 root
/// entries and an Sv48x4 root entry.
const WINDOW_BASE: u64 = (512 * G) - 2 * G;
const WINDOW_LEN: u64 = 4 * G;
const HPA_BASE: u64 = 0x80_0000_0000;

#[derive(Clone, Debug)]
enum Op {
    Map {
        off: u64,
        hpa_off: u64,
        size: PageSize,
        perms: Perms,
    },
    MapRange {
        off: u64,
        len: u64,
        delta: u64,
        perms: Perms,
    },
    /// `target`: pick a page inside an existing mapping instead of `off`.
    Unmap4k {
        off: u64,
        target: Option<(usize, u64)>,
    },
    UnmapRange {
        off: u64,
        len: u64,
        target: Option<(usize, u64)>,
    },
}

#[derive(Clone, Debug)]
struct Step {
    op: Op,
    /// Allocation budget during the op (`None`: unlimited).
    budget: Option<usize>,
    /// Extra window offsets to translate after the op.
    samples: Vec<u64>,
}

fn index9() -> impl Strategy<Value = u64> {
    prop_oneof![Just(0u64), Just(1), Just(511), 0..512u64]
}

/// A 4K-aligned offset in the window, biased towards 2M/1G boundaries.
fn offset() -> impl Strategy<Value = u64> {
    (0..WINDOW_LEN / G, index9(), index9()).prop_map(|(g, m, p)| g * G + m * M2 + p * K4)
}

fn length() -> impl Strategy<Value = u64> {
    prop_oneof![
        3 => (1..4u64).prop_map(|n| n * K4),
        3 => (1..1500u64).prop_map(|n| n * K4),
        3 => (1..4u64).prop_map(|n| n * M2),
        3 => (1..4u64, 0..3u64).prop_map(|(n, k)| n * M2 + k * K4),
        1 => Just(G),
        1 => Just(G + M2 + K4),
        1 => Just(2 * G),
        1 => Just(2 * G + M2),
    ]
}

fn perms() -> impl Strategy<Value = Perms> {
    prop_oneof![
        6 => prop_oneof![Just(Perms::RW), Just(Perms::RWX), Just(Perms::RX), Just(Perms::R)],
        1 => Just(Perms { read: false, write: false, exec: true }),
        1 => Just(Perms { read: false, write: true, exec: false }),
        1 => Just(Perms::default()),
    ]
}

fn size() -> impl Strategy<Value = PageSize> {
    prop_oneof![
        3 => Just(PageSize::Size4K),
        2 => Just(PageSize::Size2M),
        1 => Just(PageSize::Size1G),
    ]
}

/// HPA minus GPA offset: identity-like, or misaligned by various amounts.
fn delta() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(0u64),
        (1..4u64).prop_map(|n| n * G),
        (1..4u64).prop_map(|n| n * M2),
        (1..600u64).prop_map(|n| n * K4),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => (offset(), 0..64 * G, size(), perms()).prop_map(|(off, h, size, perms)| {
            let b = size.bytes();
            Op::Map { off: off / b * b, hpa_off: h / b * b, size, perms }
        }),
        3 => (offset(), length(), delta(), perms(), 0..8u8).prop_map(|(off, len, delta, perms, k)| {
            // GiB-sized ranges of 4K leaves (a thousand tables) are slow to
            // check: keep them, but rare.
            let delta = if len >= G && k != 0 { delta / M2 * M2 } else { delta };
            Op::MapRange { off, len, delta, perms }
        }),
        2 => (offset(), target()).prop_map(|(off, target)| Op::Unmap4k { off, target }),
        3 => (offset(), length(), target())
            .prop_map(|(off, len, target)| Op::UnmapRange { off, len, target }),
    ]
}

fn target() -> impl Strategy<Value = Option<(usize, u64)>> {
    prop_oneof![1 => Just(None), 3 => (any::<usize>(), any::<u64>()).prop_map(Some)]
}

/// Resolves an unmap target: a page inside an existing mapping (sometimes
/// rounded down to 2M), and for ranges a length that mostly stays mapped.
fn resolve(model: &Model, off: u64, len: u64, target: Option<(usize, u64)>) -> (u64, u64) {
    let Some((i, sel)) = target else {
        return (off, clip(off, len));
    };
    let Some((start, n)) = model.nth_run(i) else {
        return (off, clip(off, len));
    };
    let mut page = start + sel % n;
    if sel & (1 << 63) != 0 && (page & !511) >= start {
        page &= !511;
    }
    let run_end = (start + n) << 12;
    let gpa = page << 12;
    let len = if sel & (1 << 62) != 0 {
        len.min(run_end - gpa)
    } else {
        len
    };
    let off = gpa - WINDOW_BASE;
    (off, clip(off, len))
}

fn step() -> impl Strategy<Value = Step> {
    (
        op(),
        prop_oneof![3 => Just(None), 1 => (0..3usize).prop_map(Some)],
        prop::collection::vec(0..WINDOW_LEN, 4),
    )
        .prop_map(|(op, budget, samples)| Step {
            op,
            budget,
            samples,
        })
}

fn clip(off: u64, len: u64) -> u64 {
    len.min(WINDOW_LEN - off)
}

/// Largest leaf map_range may use at `gpa` for the request.
fn expected_leaf(gpa: u64, start: u64, end: u64, delta: u64) -> PageSize {
    for s in [PageSize::Size1G, PageSize::Size2M] {
        let b = s.bytes();
        let block = gpa & !(b - 1);
        if block >= start && block + b <= end && delta.is_multiple_of(b) {
            return s;
        }
    }
    PageSize::Size4K
}

fn run(mode: GStageMode, steps: Vec<Step>) {
    let mut mem = TestMemory::new();
    let mut pt = GStageTable::new(&mut mem, mode).unwrap();
    let mut model = Model::default();
    for step in steps {
        let before = mem.snapshot();
        mem.budget = step.budget;
        let limited = step.budget.is_some();
        // (result, expected, range touched)
        let (result, expected, range): (Result<(), Error>, Result<(), Error>, (u64, u64)) =
            match step.op {
                Op::Map {
                    off,
                    hpa_off,
                    size,
                    perms,
                } => {
                    let gpa = WINDOW_BASE + off;
                    let n = size.base_pages();
                    let hpa = HPA_BASE + hpa_off;
                    let expected = if !perms.is_valid_leaf() {
                        Err(Error::InvalidPerms)
                    } else if model.any_mapped(gpa >> 12, n) {
                        Err(Error::AlreadyMapped)
                    } else {
                        Ok(())
                    };
                    let r = pt.map(
                        &mut mem,
                        GuestPhysAddr::new(gpa),
                        HostPhysAddr::new(hpa),
                        size,
                        perms,
                    );
                    if r.is_ok() {
                        model.insert(gpa >> 12, n, hpa >> 12, perms);
                        let t = pt.translate(&mem, GuestPhysAddr::new(gpa)).unwrap();
                        assert_eq!(t.size, size);
                    }
                    (r, expected, (gpa, gpa + size.bytes()))
                }
                Op::MapRange {
                    off,
                    len,
                    delta,
                    perms,
                } => {
                    let len = clip(off, len);
                    let gpa = WINDOW_BASE + off;
                    let hpa = HPA_BASE + off + delta;
                    let expected = if !perms.is_valid_leaf() {
                        Err(Error::InvalidPerms)
                    } else if model.any_mapped(gpa >> 12, len >> 12) {
                        Err(Error::AlreadyMapped)
                    } else {
                        Ok(())
                    };
                    let r = pt.map_range(
                        &mut mem,
                        GuestPhysAddr::new(gpa),
                        HostPhysAddr::new(hpa),
                        len,
                        perms,
                    );
                    if r.is_ok() {
                        model.insert(gpa >> 12, len >> 12, hpa >> 12, perms);
                        let end = gpa + len;
                        // Largest leaves: at the ends, at each 2M boundary
                        // (up to a few) and at the 1G boundaries.
                        let mut probes = vec![gpa, end - K4];
                        let mut a = gpa.next_multiple_of(M2);
                        while a < end && probes.len() < 40 {
                            probes.push(a);
                            a += M2;
                        }
                        let mut a = gpa.next_multiple_of(G);
                        while a < end {
                            probes.push(a);
                            a += G;
                        }
                        for p in probes {
                            let t = pt.translate(&mem, GuestPhysAddr::new(p)).unwrap();
                            assert_eq!(
                                t.size,
                                expected_leaf(p, gpa, end, delta),
                                "leaf size at {p:#x} for map_range({gpa:#x}, len {len:#x}, delta {delta:#x})"
                            );
                        }
                        // And exhaustively via the leaves themselves.
                        for l in walk_all(&mem, &pt).0 {
                            if l.gpa >= gpa && l.gpa < end {
                                assert_eq!(l.size, expected_leaf(l.gpa, gpa, end, delta));
                            }
                        }
                    }
                    (r, expected, (gpa, gpa + len))
                }
                Op::Unmap4k { off, target } => {
                    let (off, _) = resolve(&model, off, K4, target);
                    let gpa = WINDOW_BASE + off;
                    let want = model.lookup(gpa >> 12);
                    let r = pt.unmap_4k(&mut mem, GuestPhysAddr::new(gpa));
                    if let Ok(h) = r {
                        assert_eq!(Some(h.bits() >> 12), want.map(|w| w.0));
                        model.remove(gpa >> 12, 1);
                    }
                    let expected = if want.is_some() {
                        Ok(())
                    } else {
                        Err(Error::NotMapped)
                    };
                    (r.map(|_| ()), expected, (gpa, gpa + K4))
                }
                Op::UnmapRange { off, len, target } => {
                    let (off, len) = resolve(&model, off, len, target);
                    let gpa = WINDOW_BASE + off;
                    let expected = if model.all_mapped(gpa >> 12, len >> 12) {
                        Ok(())
                    } else {
                        Err(Error::NotMapped)
                    };
                    let r = pt.unmap_range(&mut mem, GuestPhysAddr::new(gpa), len);
                    if r.is_ok() {
                        model.remove(gpa >> 12, len >> 12);
                    }
                    (r, expected, (gpa, gpa + len))
                }
            };
        mem.budget = None;

        match (&result, &expected) {
            (Ok(()), Ok(())) => {}
            (Err(Error::OutOfTables), Ok(()) | Err(Error::AlreadyMapped)) if limited => {}
            (Err(a), Err(b)) if a == b => {}
            _ => panic!("{:?}: got {result:?}, expected {expected:?}", step.op),
        }
        if result.is_err() {
            assert!(
                mem.snapshot() == before,
                "{:?} failed with {result:?} but changed the tables",
                step.op
            );
        }

        // Whole state equals the model; no leaked or empty tables.
        let (leaves, tables) = walk_all(&mem, &pt);
        assert_eq!(
            leaves_to_runs(&leaves),
            model.normalized(),
            "after {:?}",
            step.op
        );
        assert_eq!(tables, mem.live_tables(), "table pages leaked");

        // Sampled translations.
        let (s, e) = range;
        for a in [s, e - K4, s.wrapping_sub(K4), e, s + 0x123, e - 1] {
            check_translate(&mem, &pt, &model, a);
        }
        for off in &step.samples {
            check_translate(&mem, &pt, &model, WINDOW_BASE + off);
        }
    }
    let allocs = mem.total_allocs;
    pt.destroy(&mut mem);
    assert_eq!(
        mem.live_tables(),
        0,
        "destroy left tables ({allocs} allocated)"
    );
    assert!(mem.pages.is_empty());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn sv39x4_matches_model(steps in prop::collection::vec(step(), 1..16)) {
        run(GStageMode::Sv39x4, steps);
    }

    #[test]
    fn sv48x4_matches_model(steps in prop::collection::vec(step(), 1..16)) {
        run(GStageMode::Sv48x4, steps);
    }
}

/// Sanity check of the model itself.
#[test]
fn model_remove_splits_runs() {
    let mut m = Model::default();
    m.insert(10, 10, 100, Perms::RW);
    m.remove(12, 3);
    assert_eq!(m.lookup(11), Some((101, Perms::RW)));
    assert_eq!(m.lookup(12), None);
    assert_eq!(m.lookup(15), Some((105, Perms::RW)));
    assert!(m.all_mapped(15, 5));
    assert!(!m.all_mapped(11, 2));
    assert!(m.any_mapped(0, 11));
    assert!(!m.any_mapped(12, 3));
    let _ = TestMemory::new().alloc_table(4096);
}
