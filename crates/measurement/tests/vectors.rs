//! SHA-384 known answers (FIPS 180-4 / NIST examples) for both backends,
//! cross-checks against the `sha2` crate, and the measurement rules.

use measurement::{
    compress, sha384, Backend, Measurement, Primitives, Sha384, SoftPrimitives, BLOCK_LEN, IV384,
};
use proptest::prelude::*;
use sha2::Digest;

const BACKENDS: [Backend; 2] = [Backend::Portable, Backend::Zknh];

fn hex(s: &str) -> [u8; 48] {
    let mut out = [0u8; 48];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap();
    }
    out
}

fn reference(data: &[u8]) -> [u8; 48] {
    let mut out = [0u8; 48];
    out.copy_from_slice(sha2::Sha384::digest(data).as_slice());
    out
}

#[test]
fn empty() {
    let want = hex("38b060a751ac96384cd9327eb1b1e36a21fdb71114be07434c0cc7bf63f6e1da274edebfe76f65fbd51ad2f14898b95b");
    for b in BACKENDS {
        assert_eq!(sha384(b, b""), want, "{b:?}");
    }
}

#[test]
fn abc() {
    let want = hex("cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed8086072ba1e7cc2358baeca134c825a7");
    for b in BACKENDS {
        assert_eq!(sha384(b, b"abc"), want, "{b:?}");
    }
}

#[test]
fn two_block_896_bit_message() {
    let msg = b"abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu";
    assert_eq!(msg.len() * 8, 896);
    let want = hex("09330c33f71147e83d192fc782cd1b4753111b173b3b05d22fa08086e3b0f712fcc7c71a557e2db966c3e9fa91746039");
    for b in BACKENDS {
        assert_eq!(sha384(b, msg), want, "{b:?}");
    }
}

#[test]
fn one_million_a() {
    let want = hex("9d0e1809716474cb086e834e310a4a1ced149e9c00f248527972cec5704c2a5b07b8b3dc38ecc4ebae97ddd87f3d8985");
    let chunk = [b'a'; 1000];
    for b in BACKENDS {
        let mut h = Sha384::new(b);
        for _ in 0..1000 {
            h.update(&chunk);
        }
        assert_eq!(h.finalize(), want, "{b:?}");
    }
}

#[test]
fn every_padding_boundary_matches_sha2() {
    let data: Vec<u8> = (0..600u32).map(|i| (i * 131 + 7) as u8).collect();
    for len in 0..=data.len() {
        let want = reference(&data[..len]);
        for b in BACKENDS {
            assert_eq!(sha384(b, &data[..len]), want, "{b:?} len {len}");
        }
    }
}

#[test]
#[allow(clippy::manual_rotate)] // spelled out on purpose: independent of `rotate_right`
fn soft_primitives_match_fips_definitions() {
    // sigma functions on a few patterns, against the spelled-out formulas.
    for x in [0u64, 1, u64::MAX, 0x0123_4567_89ab_cdef, 1 << 63] {
        let rotr = |x: u64, n: u32| (x >> n) | (x << (64 - n));
        assert_eq!(SoftPrimitives::sig0(x), rotr(x, 1) ^ rotr(x, 8) ^ (x >> 7));
        assert_eq!(
            SoftPrimitives::sig1(x),
            rotr(x, 19) ^ rotr(x, 61) ^ (x >> 6)
        );
        assert_eq!(
            SoftPrimitives::sum0(x),
            rotr(x, 28) ^ rotr(x, 34) ^ rotr(x, 39)
        );
        assert_eq!(
            SoftPrimitives::sum1(x),
            rotr(x, 14) ^ rotr(x, 18) ^ rotr(x, 41)
        );
    }
}

#[test]
fn measurement_rules() {
    let page: Vec<u8> = (0..4096u32).map(|i| (i ^ (i >> 8)) as u8).collect();
    let page: &[u8; 4096] = page.as_slice().try_into().unwrap();
    let gpa = 0x8020_3000u64;
    for b in BACKENDS {
        let mut m = Measurement::new(b);
        assert_eq!(m.value(), &[0u8; 48]);
        m.extend_page(gpa, page);
        let mut input = vec![0u8; 48];
        input.extend_from_slice(&gpa.to_le_bytes());
        input.extend_from_slice(page);
        let after_page = reference(&input);
        assert_eq!(m.value(), &after_page, "{b:?}");

        m.extend_finalize(0x8020_0000, 0x8220_0000);
        let mut input = after_page.to_vec();
        input.extend_from_slice(&0x8020_0000u64.to_le_bytes());
        input.extend_from_slice(&0x8220_0000u64.to_le_bytes());
        assert_eq!(m.value(), &reference(&input), "{b:?}");

        let mut r = Measurement::new(b);
        r.extend(b"abc");
        let mut input = vec![0u8; 48];
        input.extend_from_slice(b"abc");
        assert_eq!(r.value(), &reference(&input));
    }
    // Order matters: two pages in the other order give another value.
    let mut x = Measurement::new(Backend::Portable);
    x.extend_page(0, page);
    x.extend_page(4096, page);
    let mut y = Measurement::new(Backend::Zknh);
    y.extend_page(4096, page);
    y.extend_page(0, page);
    assert_ne!(x, y);
}

proptest! {
    #[test]
    fn backends_agree_with_sha2_on_split_input(
        data in proptest::collection::vec(any::<u8>(), 0..1200),
        cuts in proptest::collection::vec(any::<usize>(), 0..4),
    ) {
        let want = reference(&data);
        for b in BACKENDS {
            let mut h = Sha384::new(b);
            let mut rest = &data[..];
            for c in &cuts {
                let n = c % (rest.len() + 1);
                h.update(&rest[..n]);
                rest = &rest[n..];
            }
            h.update(rest);
            prop_assert_eq!(h.finalize(), want);
        }
    }

    #[test]
    fn generic_compression_matches_sha2(raw in proptest::collection::vec(any::<u8>(), 128..=512), st in any::<[u64; 8]>()) {
        let (blocks, _) = raw.as_chunks::<BLOCK_LEN>();
        let mut a = st;
        let mut b = st;
        compress::<SoftPrimitives>(&mut a, blocks);
        sha2::block_api::compress512(&mut b, blocks);
        prop_assert_eq!(a, b);
        let mut c = IV384;
        let mut d = IV384;
        Backend::Zknh.compress(&mut c, blocks);
        Backend::Portable.compress(&mut d, blocks);
        prop_assert_eq!(c, d);
    }
}
