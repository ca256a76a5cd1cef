//! Deterministic tests: boot-time cost, huge leaves, errors, raw encodings.

mod common;

use common::{walk_all, TestMemory};
use hyp_addr::{GuestPhysAddr, HostPhysAddr, PageSize};
use page_tables::{
    Error, GStageMode, GStageTable, PageTableMemory, Perms, Pte, PTE_A, PTE_D, PTE_R, PTE_U, PTE_V,
    PTE_W, PTE_X,
};

const G: u64 = 1 << 30;
const M2: u64 = 1 << 21;
const K4: u64 = 1 << 12;

fn gpa(a: u64) -> GuestPhysAddr {
    GuestPhysAddr::new(a)
}
fn hpa(a: u64) -> HostPhysAddr {
    HostPhysAddr::new(a)
}

fn setup(mode: GStageMode) -> (TestMemory, GStageTable) {
    let mut mem = TestMemory::new();
    let pt = GStageTable::new(&mut mem, mode).unwrap();
    (mem, pt)
}

fn size_at(mem: &TestMemory, pt: &GStageTable, a: u64) -> Option<PageSize> {
    pt.translate(mem, gpa(a)).map(|t| t.size)
}

#[test]
fn boot_identity_2g_touches_few_tables() {
    for (mode, tables) in [(GStageMode::Sv39x4, 1), (GStageMode::Sv48x4, 2)] {
        let (mut mem, mut pt) = setup(mode);
        pt.map_range(
            &mut mem,
            gpa(0x8000_0000),
            hpa(0x8000_0000),
            2 * G,
            Perms::RWX,
        )
        .unwrap();
        assert_eq!(mem.total_allocs, tables, "{mode:?}");
        assert!(mem.writes <= 3, "{mode:?}: {} writes", mem.writes);
        assert!(mem.reads.get() <= 6, "{mode:?}: {} reads", mem.reads.get());
        assert_eq!(size_at(&mem, &pt, 0x8000_0000), Some(PageSize::Size1G));
        assert_eq!(size_at(&mem, &pt, 0xffff_ffff), Some(PageSize::Size1G));
        assert_eq!(size_at(&mem, &pt, 0x1_0000_0000), None);
        assert_eq!(size_at(&mem, &pt, 0x7fff_f000), None);
        pt.destroy(&mut mem);
        assert_eq!(mem.live_tables(), 0);

        // 2M-aligned start (e.g. RAM after the hypervisor image): 1G leaf in
        // the middle, 2M leaves at both ends, two extra tables.
        let (mut mem, mut pt) = setup(mode);
        let start = 0x8020_0000;
        pt.map_range(&mut mem, gpa(start), hpa(start), 2 * G, Perms::RWX)
            .unwrap();
        assert_eq!(mem.total_allocs, tables + 2, "{mode:?}");
        assert!(mem.writes < 520, "{mode:?}: {} writes", mem.writes);
        assert!(mem.reads.get() < 530, "{mode:?}: {} reads", mem.reads.get());
        assert_eq!(size_at(&mem, &pt, start), Some(PageSize::Size2M));
        assert_eq!(size_at(&mem, &pt, 0xc000_0000), Some(PageSize::Size1G));
        assert_eq!(
            size_at(&mem, &pt, start + 2 * G - K4),
            Some(PageSize::Size2M)
        );
        let t = pt.translate(&mem, gpa(0x9234_5678)).unwrap();
        assert_eq!(t.hpa, hpa(0x9234_5678));
        assert_eq!(t.perms, Perms::RWX);
        pt.destroy(&mut mem);
        assert_eq!(mem.live_tables(), 0);
    }
}

#[test]
fn misaligned_hpa_falls_back_to_small_leaves() {
    let (mut mem, mut pt) = setup(GStageMode::Sv39x4);
    // HPA 4K-misaligned relative to GPA: only 4K leaves are possible.
    pt.map_range(
        &mut mem,
        gpa(0x8000_0000),
        hpa(0x9000_1000),
        4 * M2,
        Perms::RW,
    )
    .unwrap();
    assert_eq!(size_at(&mem, &pt, 0x8000_0000), Some(PageSize::Size4K));
    assert_eq!(mem.total_allocs, 1 + 1 + 4);
    // Same 2M alignment: 2M leaves.
    pt.map_range(
        &mut mem,
        gpa(0x4000_0000),
        hpa(0x9020_0000),
        4 * M2,
        Perms::RW,
    )
    .unwrap();
    assert_eq!(size_at(&mem, &pt, 0x4060_0000), Some(PageSize::Size2M));
    assert_eq!(
        pt.translate(&mem, gpa(0x4060_0010)).unwrap().hpa,
        hpa(0x9080_0010)
    );
}

#[test]
fn leaf_and_pointer_bits() {
    let (mut mem, mut pt) = setup(GStageMode::Sv39x4);
    pt.map(
        &mut mem,
        gpa(0x8000_1000),
        hpa(0x1234_5000),
        PageSize::Size4K,
        Perms::RW,
    )
    .unwrap();
    let root = pt.root().bits();
    let l2 = Pte::from_bits(mem.read_pte(hpa(root + 2 * 8)));
    assert_eq!(l2.bits() & 0x3ff, PTE_V);
    let l1 = Pte::from_bits(mem.read_pte(l2.addr()));
    assert_eq!(l1.bits() & 0x3ff, PTE_V);
    let leaf = mem.read_pte(hpa(l1.addr().bits() + 8));
    assert_eq!(
        leaf,
        (0x12345 << 10) | PTE_V | PTE_R | PTE_W | PTE_U | PTE_A | PTE_D
    );
    pt.map(
        &mut mem,
        gpa(0x8000_2000),
        hpa(0x2000),
        PageSize::Size4K,
        Perms::RX,
    )
    .unwrap();
    let leaf = mem.read_pte(hpa(l1.addr().bits() + 16));
    assert_eq!(leaf & 0x3ff, PTE_V | PTE_R | PTE_X | PTE_U | PTE_A | PTE_D);
}

#[test]
fn x4_root_uses_two_extra_gpa_bits() {
    let (mut mem, mut pt) = setup(GStageMode::Sv39x4);
    assert_eq!(pt.root().bits() % 16384, 0);
    let a = (1 << 40) | (5 << 30);
    pt.map(
        &mut mem,
        gpa(a),
        hpa(0x4000_0000),
        PageSize::Size1G,
        Perms::R,
    )
    .unwrap();
    let e = Pte::from_bits(mem.read_pte(hpa(pt.root().bits() + 1029 * 8)));
    assert!(e.is_leaf());
    assert_eq!(e.addr(), hpa(0x4000_0000));
    // Highest GPA of Sv39x4.
    let top = (1 << 41) - G;
    pt.map(&mut mem, gpa(top), hpa(0), PageSize::Size1G, Perms::R)
        .unwrap();
    assert!(Pte::from_bits(mem.read_pte(hpa(pt.root().bits() + 2047 * 8))).is_leaf());
    assert_eq!(
        pt.translate(&mem, gpa((1 << 41) - 1)).unwrap().hpa,
        hpa(G - 1)
    );
    assert_eq!(pt.translate(&mem, gpa(1 << 41)), None);

    let (mut mem, mut pt) = setup(GStageMode::Sv48x4);
    let a = (1 << 49) | (3 << 39);
    pt.map(
        &mut mem,
        gpa(a),
        hpa(0x4000_0000),
        PageSize::Size1G,
        Perms::R,
    )
    .unwrap();
    let e = Pte::from_bits(mem.read_pte(hpa(pt.root().bits() + 1027 * 8)));
    assert!(e.is_table());
}

#[test]
fn hgatp_of_real_table() {
    let (_mem, pt) = setup(GStageMode::Sv48x4);
    let h = pt.hgatp(7);
    assert_eq!(h >> 60, 9);
    assert_eq!((h >> 44) & 0x3fff, 7);
    assert_eq!((h & ((1 << 44) - 1)) << 12, pt.root().bits());
}

#[test]
fn giant_leaf_split_by_unmap_4k() {
    let (mut mem, mut pt) = setup(GStageMode::Sv48x4);
    let base = 512 * G;
    let target = 1024 * G;
    pt.map(
        &mut mem,
        gpa(base),
        hpa(target),
        PageSize::Size512G,
        Perms::RWX,
    )
    .unwrap();
    assert_eq!(size_at(&mem, &pt, base + 77 * G), Some(PageSize::Size512G));
    let victim = base + 3 * G + 5 * M2 + 7 * K4;
    let allocs = mem.total_allocs;
    assert_eq!(
        pt.unmap_4k(&mut mem, gpa(victim)),
        Ok(hpa(target + 3 * G + 5 * M2 + 7 * K4))
    );
    assert_eq!(mem.total_allocs, allocs + 3);
    assert_eq!(pt.translate(&mem, gpa(victim)), None);
    assert_eq!(size_at(&mem, &pt, base), Some(PageSize::Size1G));
    assert_eq!(size_at(&mem, &pt, base + 3 * G), Some(PageSize::Size2M));
    assert_eq!(size_at(&mem, &pt, victim - K4), Some(PageSize::Size4K));
    assert_eq!(size_at(&mem, &pt, victim + K4), Some(PageSize::Size4K));
    let t = pt.translate(&mem, gpa(victim + K4 + 9)).unwrap();
    assert_eq!(t.hpa, hpa(target + 3 * G + 5 * M2 + 8 * K4 + 9));
    assert_eq!(t.perms, Perms::RWX);
    let (leaves, _) = walk_all(&mem, &pt);
    assert_eq!(leaves.len(), 511 + 511 + 511);
    // Mapping the hole again works; the rest is AlreadyMapped.
    pt.map(&mut mem, gpa(victim), hpa(0), PageSize::Size4K, Perms::R)
        .unwrap();
    assert_eq!(
        pt.map(
            &mut mem,
            gpa(victim + K4),
            hpa(0),
            PageSize::Size4K,
            Perms::R
        ),
        Err(Error::AlreadyMapped)
    );
    // Removing everything frees every table but the root.
    pt.unmap_range(&mut mem, gpa(base), 512 * G).unwrap();
    assert_eq!(mem.live_tables(), 1);
    assert_eq!(walk_all(&mem, &pt).0.len(), 0);

    let (mut mem, mut pt) = setup(GStageMode::Sv39x4);
    assert_eq!(
        pt.map(&mut mem, gpa(0), hpa(0), PageSize::Size512G, Perms::RW),
        Err(Error::OutOfRange)
    );
}

#[test]
fn split_out_of_tables_changes_nothing() {
    let (mut mem, mut pt) = setup(GStageMode::Sv39x4);
    pt.map(&mut mem, gpa(G), hpa(4 * G), PageSize::Size1G, Perms::RW)
        .unwrap();
    let before = mem.snapshot();
    // Needs two tables (1G -> 2M -> 4K).
    for budget in 0..2 {
        mem.budget = Some(budget);
        assert_eq!(
            pt.unmap_4k(&mut mem, gpa(G + M2 + K4)),
            Err(Error::OutOfTables)
        );
        assert!(mem.snapshot() == before);
        // A range whose two ends each need splitting.
        mem.budget = Some(budget + 1);
        assert_eq!(
            pt.unmap_range(&mut mem, gpa(G + K4), G - 2 * K4),
            Err(Error::OutOfTables)
        );
        assert!(mem.snapshot() == before);
    }
    mem.budget = Some(2);
    assert_eq!(
        pt.unmap_4k(&mut mem, gpa(G + M2 + K4)),
        Ok(hpa(4 * G + M2 + K4))
    );
    mem.budget = None;
    pt.destroy(&mut mem);
    assert_eq!(mem.live_tables(), 0);
}

#[test]
fn map_range_rolls_back() {
    let (mut mem, mut pt) = setup(GStageMode::Sv48x4);
    pt.map(
        &mut mem,
        gpa(0x4010_0000),
        hpa(0),
        PageSize::Size4K,
        Perms::R,
    )
    .unwrap();
    let before = mem.snapshot();
    // Maps 1 GiB of 2M leaves below, then hits the existing page.
    assert_eq!(
        pt.map_range(&mut mem, gpa(0), hpa(0), G + M2, Perms::RW),
        Err(Error::AlreadyMapped)
    );
    assert!(mem.snapshot() == before);
    // Runs out of tables half way.
    mem.budget = Some(1);
    assert_eq!(
        pt.map_range(&mut mem, gpa(0x8000_0000 - K4), hpa(0), 4 * K4, Perms::RW),
        Err(Error::OutOfTables)
    );
    mem.budget = None;
    assert!(mem.snapshot() == before);
}

#[test]
fn argument_errors() {
    let (mut mem, mut pt) = setup(GStageMode::Sv39x4);
    let rw = Perms::RW;
    let wo = Perms {
        read: false,
        write: true,
        exec: false,
    };
    assert_eq!(
        pt.map(&mut mem, gpa(0), hpa(0), PageSize::Size4K, wo),
        Err(Error::InvalidPerms)
    );
    assert_eq!(
        pt.map_range(&mut mem, gpa(0), hpa(0), K4, Perms::default()),
        Err(Error::InvalidPerms)
    );
    assert_eq!(
        pt.map(&mut mem, gpa(M2 + K4), hpa(0), PageSize::Size2M, rw),
        Err(Error::Misaligned)
    );
    assert_eq!(
        pt.map(&mut mem, gpa(M2), hpa(K4), PageSize::Size2M, rw),
        Err(Error::Misaligned)
    );
    assert_eq!(
        pt.map_range(&mut mem, gpa(0), hpa(0), 100, rw),
        Err(Error::Misaligned)
    );
    assert_eq!(
        pt.map_range(&mut mem, gpa(0x10), hpa(0), K4, rw),
        Err(Error::Misaligned)
    );
    assert_eq!(pt.unmap_4k(&mut mem, gpa(0x10)), Err(Error::Misaligned));
    assert_eq!(pt.unmap_range(&mut mem, gpa(0), 10), Err(Error::Misaligned));
    assert_eq!(
        pt.map(&mut mem, gpa(1 << 41), hpa(0), PageSize::Size4K, rw),
        Err(Error::OutOfRange)
    );
    assert_eq!(
        pt.map_range(&mut mem, gpa((1 << 41) - K4), hpa(0), 2 * K4, rw),
        Err(Error::OutOfRange)
    );
    assert_eq!(
        pt.map_range(&mut mem, gpa(0), hpa((1 << 56) - K4), 2 * K4, rw),
        Err(Error::OutOfRange)
    );
    assert_eq!(
        pt.map_range(&mut mem, gpa(u64::MAX - 0xfff), hpa(0), K4, rw),
        Err(Error::OutOfRange)
    );
    assert_eq!(pt.unmap_4k(&mut mem, gpa(1 << 41)), Err(Error::OutOfRange));
    assert_eq!(pt.unmap_4k(&mut mem, gpa(0)), Err(Error::NotMapped));
    assert_eq!(pt.map_range(&mut mem, gpa(0), hpa(0), 0, rw), Ok(()));
    assert_eq!(pt.unmap_range(&mut mem, gpa(0), 0), Ok(()));
    // Partial overlap with a huge leaf, and a huge leaf over a table.
    pt.map(&mut mem, gpa(G), hpa(G), PageSize::Size1G, rw)
        .unwrap();
    assert_eq!(
        pt.map(&mut mem, gpa(G + M2), hpa(0), PageSize::Size4K, rw),
        Err(Error::AlreadyMapped)
    );
    pt.map(&mut mem, gpa(2 * G + M2), hpa(0), PageSize::Size4K, rw)
        .unwrap();
    assert_eq!(
        pt.map(&mut mem, gpa(2 * G), hpa(0), PageSize::Size1G, rw),
        Err(Error::AlreadyMapped)
    );
    // Unmap with a hole in the middle.
    assert_eq!(
        pt.unmap_range(&mut mem, gpa(G), G + 2 * M2),
        Err(Error::NotMapped)
    );
    assert_eq!(pt.unmap_range(&mut mem, gpa(G), G), Ok(()));
    assert_eq!(pt.unmap_4k(&mut mem, gpa(2 * G + M2)), Ok(hpa(0)));
    assert_eq!(mem.live_tables(), 1);
    pt.destroy(&mut mem);
    assert_eq!(mem.live_tables(), 0);
}

#[test]
fn new_out_of_tables() {
    let mut mem = TestMemory::new();
    mem.budget = Some(0);
    assert_eq!(
        GStageTable::new(&mut mem, GStageMode::Sv39x4),
        Err(Error::OutOfTables)
    );
}

#[test]
fn unmapped_span_skips_only_unmapped_memory() {
    for mode in [GStageMode::Sv39x4, GStageMode::Sv48x4] {
        let (mut mem, mut pt) = setup(mode);
        // One 4K page at 5G + 8K and a 2M leaf at 7G.
        pt.map(
            &mut mem,
            gpa(5 * G + 2 * K4),
            hpa(0x9000_0000),
            PageSize::Size4K,
            Perms::RW,
        )
        .unwrap();
        pt.map(
            &mut mem,
            gpa(7 * G),
            hpa(0xa000_0000),
            PageSize::Size2M,
            Perms::RW,
        )
        .unwrap();
        // Mapped addresses have no span.
        assert_eq!(pt.unmapped_span(&mem, gpa(5 * G + 2 * K4 + 8)), None);
        assert_eq!(pt.unmapped_span(&mem, gpa(7 * G + M2 - 1)), None);
        // Next to the 4K page: only the neighbouring 4K page is known empty.
        assert_eq!(pt.unmapped_span(&mem, gpa(5 * G)), Some(K4));
        // Elsewhere in the same 2M table region: up to the next 4K boundary.
        assert_eq!(
            pt.unmapped_span(&mem, gpa(5 * G + 3 * K4 + 16)),
            Some(K4 - 16)
        );
        // In a 1G region with no table at all: the rest of that gigabyte.
        assert_eq!(pt.unmapped_span(&mem, gpa(6 * G + M2)), Some(G - M2));
        // Scanning [4G, 8G) by spans visits every mapped page and never
        // skips over one, in a handful of steps.
        let (mut a, mut steps, mut mapped) = (4 * G, 0, 0);
        while a < 8 * G {
            match pt.unmapped_span(&mem, gpa(a)) {
                Some(s) => {
                    assert!(s > 0);
                    for probe in [a, a + s - 1] {
                        assert!(
                            pt.translate(&mem, gpa(probe)).is_none(),
                            "{probe:#x} mapped"
                        );
                    }
                    a += s;
                }
                None => {
                    mapped += 1;
                    a += K4;
                }
            }
            steps += 1;
        }
        assert_eq!(mapped, 1 + (M2 / K4));
        // One step per empty gigabyte, per empty 2M slot of a populated
        // gigabyte, per 4K slot of a populated 2M table, and per mapped 4K:
        // 1 + (512 + 511) + 1 + (512 + 511).
        assert_eq!(steps, 2048);
    }
}

#[test]
fn tables_needed_matches_what_map_allocates() {
    use hyp_addr::{GuestPhysAddr, HostPhysAddr, PageSize};
    use page_tables::{GStageMode, GStageTable, Perms};
    let mut mem = common::TestMemory::new();
    let mut t = GStageTable::new(&mut mem, GStageMode::Sv48x4).unwrap();
    let cases: [(u64, u64, PageSize); 5] = [
        (0x8000_0000, 0x3000, PageSize::Size4K),
        // Crosses a 2 MiB boundary: a second leaf table.
        (0x801f_f000, 0x2000, PageSize::Size4K),
        (0x1_0000_0000, 0x40_0000, PageSize::Size2M),
        (
            0x4000_0000_0000 - 0x40_0000_0000,
            0x4000_0000,
            PageSize::Size1G,
        ),
        (0x8000_3000, 0x1000, PageSize::Size4K),
    ];
    for (gpa, len, size) in cases {
        let need = t
            .tables_needed(&mem, GuestPhysAddr::new(gpa), len, size)
            .unwrap();
        let before = mem.live_tables();
        let mut off = 0;
        while off < len {
            t.map(
                &mut mem,
                GuestPhysAddr::new(gpa + off),
                HostPhysAddr::new(0x10_0000_0000 + off),
                size,
                Perms::RW,
            )
            .unwrap();
            off += size.bytes();
        }
        assert_eq!(
            (mem.live_tables() - before) as u64,
            need,
            "gpa {gpa:#x} len {len:#x}"
        );
        assert_eq!(
            t.tables_needed(&mem, GuestPhysAddr::new(gpa), len, size),
            Err(page_tables::Error::AlreadyMapped)
        );
    }
}

#[test]
fn split_tables_needed_matches_unmap() {
    use hyp_addr::{GuestPhysAddr, HostPhysAddr};
    use page_tables::{GStageMode, GStageTable, Perms};
    let mut mem = common::TestMemory::new();
    let mut t = GStageTable::new(&mut mem, GStageMode::Sv39x4).unwrap();
    t.map_range(
        &mut mem,
        GuestPhysAddr::new(0x4000_0000),
        HostPhysAddr::new(0x4000_0000),
        0x4000_0000,
        Perms::RW,
    )
    .unwrap();
    // Inside a 1 GiB leaf at a 4K boundary: two new tables.
    let b = GuestPhysAddr::new(0x4000_3000);
    assert_eq!(t.split_tables_needed(&mem, b), 2);
    // At a 2 MiB boundary: one.
    assert_eq!(
        t.split_tables_needed(&mem, GuestPhysAddr::new(0x4020_0000)),
        1
    );
    // Aligned to the leaf or unmapped: none.
    assert_eq!(
        t.split_tables_needed(&mem, GuestPhysAddr::new(0x4000_0000)),
        0
    );
    assert_eq!(t.split_tables_needed(&mem, GuestPhysAddr::new(0x1000)), 0);
    let before = mem.live_tables();
    t.unmap_range(&mut mem, b, 0x1000).unwrap();
    assert_eq!(mem.live_tables() - before, 2);
}
