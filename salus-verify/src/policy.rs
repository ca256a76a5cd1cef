//! What a relying party checks once the chain verifies.
#![forbid(unsafe_code)]

use cove_evidence::{verify, Claims, PlatformState};

#[derive(Clone, Debug, Default)]
pub struct Policy {
    pub anchor: [u8; 32],
    pub challenge: Vec<u8>,
    /// (register index, expected value).
    pub initial: Vec<(u64, Vec<u8>)>,
    pub allow_debug: bool,
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The claims if the evidence verifies and satisfies `p`, else why not.
pub fn check(evidence: &[u8], p: &Policy) -> Result<Claims, String> {
    let c = verify(evidence, &p.anchor).map_err(|e| e.to_string())?;
    match c.platform.state {
        PlatformState::Secured => {}
        PlatformState::Debug if p.allow_debug => {}
        PlatformState::Debug => {
            return Err("the platform is in debug state (a stand-in root of trust): --allow-debug-platform to accept it".into())
        }
        s => return Err(format!("the platform state is {s:?}")),
    }
    if c.tvm.challenge != p.challenge {
        return Err(format!(
            "the challenge is {}, expected {}",
            hex(&c.tvm.challenge),
            hex(&p.challenge)
        ));
    }
    for (i, want) in &p.initial {
        match c.tvm.initial.iter().find(|(k, _)| k == i) {
            Some((_, got)) if got == want => {}
            Some((_, got)) => {
                return Err(format!(
                    "initial register {i} is {}, the reference value is {}",
                    hex(got),
                    hex(want)
                ))
            }
            None => return Err(format!("no initial register {i} in the evidence")),
        }
    }
    Ok(c)
}

/// The claims, one per line.
pub fn describe(c: &Claims) -> String {
    let mut s = String::new();
    s += &format!("platform key {}\n", hex(&c.platform.public_key));
    s += &format!(
        "platform manufacturer {:?}, state {:?}\n",
        c.platform.manufacturer, c.platform.state
    );
    for sw in c.platform.sw.iter().chain(&c.tsm.sw) {
        s += &format!(
            "component {} svn {} measurement {}\n",
            sw.kind,
            sw.svn,
            hex(&sw.measurement)
        );
    }
    s += &format!("tsm key {}\n", hex(&c.tsm.public_key));
    s += &format!("tvm challenge {}\n", hex(&c.tvm.challenge));
    s += &format!("tvm public key {}\n", hex(&c.tvm.public_key));
    for (i, v) in c.tvm.initial.iter().chain(&c.tvm.runtime) {
        s += &format!("tvm register {i} {}\n", hex(v));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use cove_evidence::{encode, PlatformClaims, SwComponent, TsmClaims, TvmClaims};
    use ed25519_dalek::SigningKey;

    fn key(b: u8) -> SigningKey {
        SigningKey::from_bytes(&[b; 32])
    }

    fn evidence(state: PlatformState, nonce: u8) -> Vec<u8> {
        let c = Claims {
            platform: PlatformClaims {
                public_key: key(2).verifying_key().to_bytes(),
                manufacturer: "test".into(),
                state,
                sw: vec![SwComponent {
                    kind: "fw".into(),
                    measurement: vec![1; 48],
                    svn: "1".into(),
                }],
            },
            tsm: TsmClaims {
                public_key: key(3).verifying_key().to_bytes(),
                sw: vec![],
            },
            tvm: TvmClaims {
                challenge: vec![nonce; 32],
                identity: vec![0; 64],
                public_key: vec![9; 32],
                initial: vec![(0, vec![0x10; 48]), (1, vec![0x11; 48])],
                runtime: vec![],
            },
        };
        encode(&c, &key(1), &key(2), &key(3))
    }

    fn policy() -> Policy {
        Policy {
            anchor: key(1).verifying_key().to_bytes(),
            challenge: vec![7; 32],
            initial: vec![(0, vec![0x10; 48]), (1, vec![0x11; 48])],
            allow_debug: false,
        }
    }

    #[test]
    fn accepts_what_matches() {
        assert!(check(&evidence(PlatformState::Secured, 7), &policy()).is_ok());
    }

    #[test]
    fn rejects_each_mismatch() {
        let e = check(&evidence(PlatformState::Secured, 8), &policy()).unwrap_err();
        assert!(e.contains("challenge"), "{e}");
        let mut p = policy();
        p.initial[1].1[0] ^= 1;
        let e = check(&evidence(PlatformState::Secured, 7), &p).unwrap_err();
        assert!(e.contains("initial register 1"), "{e}");
        p = policy();
        p.initial.push((5, vec![0; 48]));
        assert!(check(&evidence(PlatformState::Secured, 7), &p)
            .unwrap_err()
            .contains("no initial register 5"));
        p = policy();
        p.anchor = key(4).verifying_key().to_bytes();
        assert!(check(&evidence(PlatformState::Secured, 7), &p)
            .unwrap_err()
            .contains("signature"));
        let mut bad = evidence(PlatformState::Secured, 7);
        let n = bad.len();
        bad[n / 2] ^= 0x80;
        assert!(check(&bad, &policy()).is_err());
    }

    #[test]
    fn debug_platform_only_when_allowed() {
        let e = check(&evidence(PlatformState::Debug, 7), &policy()).unwrap_err();
        assert!(e.contains("--allow-debug-platform"), "{e}");
        let mut p = policy();
        p.allow_debug = true;
        assert!(check(&evidence(PlatformState::Debug, 7), &p).is_ok());
        assert!(check(&evidence(PlatformState::Recovery, 7), &p).is_err());
    }
}
