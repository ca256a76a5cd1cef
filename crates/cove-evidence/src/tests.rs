extern crate std;

use super::*;
use proptest::prelude::*;

fn key(b: u8) -> SigningKey {
    SigningKey::from_bytes(&[b; 32])
}

fn claims() -> Claims {
    let sw = |k: &str, m: u8| SwComponent {
        kind: k.to_string(),
        measurement: alloc::vec![m; 48],
        svn: "1".to_string(),
    };
    Claims {
        platform: PlatformClaims {
            public_key: key(2).verifying_key().to_bytes(),
            manufacturer: "salus on QEMU".to_string(),
            state: PlatformState::Debug,
            sw: alloc::vec![sw("firmware", 0x11)],
        },
        tsm: TsmClaims {
            public_key: key(3).verifying_key().to_bytes(),
            sw: alloc::vec![sw("salus", 0x22)],
        },
        tvm: TvmClaims {
            challenge: alloc::vec![0xaa; 64],
            identity: alloc::vec![0; 64],
            public_key: alloc::vec![0x55; 32],
            initial: alloc::vec![(0, alloc::vec![1; 48]), (1, alloc::vec![2; 48])],
            runtime: (2..6).map(|i| (i, alloc::vec![0; 48])).collect(),
        },
    }
}

fn evidence() -> Vec<u8> {
    encode(&claims(), &key(1), &key(2), &key(3))
}

fn anchor() -> [u8; 32] {
    key(1).verifying_key().to_bytes()
}

#[test]
fn round_trip() {
    assert_eq!(verify(&evidence(), &anchor()), Ok(claims()));
}

#[test]
fn a_different_anchor_or_a_wrong_signer_is_refused() {
    assert_eq!(
        verify(&evidence(), &key(9).verifying_key().to_bytes()),
        Err(Error::BadSignature("platform"))
    );
    // The TSM token signed by someone else than the platform key.
    let e = encode(&claims(), &key(1), &key(7), &key(3));
    assert_eq!(verify(&e, &anchor()), Err(Error::BadSignature("tsm")));
    let e = encode(&claims(), &key(1), &key(2), &key(7));
    assert_eq!(verify(&e, &anchor()), Err(Error::BadSignature("tvm")));
}

#[test]
fn every_flipped_byte_is_refused() {
    let good = evidence();
    for i in 0..good.len() {
        let mut bad = good.clone();
        bad[i] ^= 0x01;
        assert!(
            verify(&bad, &anchor()).is_err(),
            "byte {i} of {}",
            good.len()
        );
    }
}

#[test]
fn every_truncation_is_refused() {
    let good = evidence();
    for n in 0..good.len() {
        assert!(verify(&good[..n], &anchor()).is_err(), "{n} bytes");
    }
}

proptest! {
    #[test]
    fn random_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = verify(&b, &anchor());
    }
}
