//! CoVE attestation evidence as Salus will emit it (attestation.adoc,
//! "Evidence Format"; the labels the spec leaves TBD are fixed in
//! [`label`] and docs/cove-abi-choices.md):
//!
//! ```text
//! evidence = { 266 (EAT submodules) => { "platform" => token,
//!                                         "tsm"      => token,
//!                                         "tvm"      => token } }
//! token    = #6.18(COSE_Sign1 [protected {alg: EdDSA}, {}, payload, signature])
//! payload  = #6.61(claims map)   (a CWT)
//! ```
//!
//! The platform token is signed by the root key (the trust anchor) and
//! carries the platform key; the TSM token is signed by the platform key
//! and carries the TSM key; the TVM token is signed by the TSM key and
//! carries the challenge. [`verify`] checks the whole chain from the
//! anchor and returns the claims; it never panics on any input.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use ciborium::value::{Integer, Value};
use coset::{iana, CoseSign1, CoseSign1Builder, HeaderBuilder, TaggedCborSerializable};
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};

/// Claim labels. 10 and 265/266 are EAT's (the spec names them); the
/// others are TBD in the spec: Salus uses private-use labels.
pub mod label {
    pub const SUBMODULES: i64 = 266;
    pub const PROFILE: i64 = 265;
    pub const NONCE: i64 = 10;
    pub const PLATFORM_PUBLIC_KEY: i64 = -70_000;
    pub const PLATFORM_MANUFACTURER_ID: i64 = -70_001;
    pub const PLATFORM_STATE: i64 = -70_002;
    pub const PLATFORM_SW_COMPONENTS: i64 = -70_003;
    pub const TSM_PUBLIC_KEY: i64 = -70_010;
    pub const TSM_SW_COMPONENTS: i64 = -70_011;
    pub const TVM_IDENTITY: i64 = -70_020;
    pub const TVM_PUBLIC_KEY: i64 = -70_021;
    pub const TVM_INITIAL_MEASUREMENTS: i64 = -70_022;
    pub const TVM_RUNTIME_MEASUREMENTS: i64 = -70_023;
}

/// The EAT profile the spec names.
pub const PROFILE: &str = "https://riscv.org/TBD";
/// CWT tag.
const CWT_TAG: u64 = 61;

/// Platform states (attestation.adoc, "Platform State Claim").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlatformState {
    NotConfigured = 1,
    Secured = 2,
    Debug = 3,
    Recovery = 4,
}

/// A measured software component (type, SHA-384 measurement, SVN).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SwComponent {
    pub kind: String,
    pub measurement: Vec<u8>,
    pub svn: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlatformClaims {
    pub public_key: [u8; 32],
    pub manufacturer: String,
    pub state: PlatformState,
    pub sw: Vec<SwComponent>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TsmClaims {
    pub public_key: [u8; 32],
    pub sw: Vec<SwComponent>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TvmClaims {
    pub challenge: Vec<u8>,
    pub identity: Vec<u8>,
    pub public_key: Vec<u8>,
    /// (register index, value).
    pub initial: Vec<(u64, Vec<u8>)>,
    pub runtime: Vec<(u64, Vec<u8>)>,
}

/// The verified evidence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claims {
    pub platform: PlatformClaims,
    pub tsm: TsmClaims,
    pub tvm: TvmClaims,
}

/// Why evidence was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// Not well-formed CBOR / COSE, or a claim of the wrong type.
    Malformed(&'static str),
    /// A required claim is missing.
    Missing(&'static str),
    /// A signature does not verify with the key of the layer below.
    BadSignature(&'static str),
    /// The token's algorithm is not EdDSA.
    Algorithm(&'static str),
}

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Error::Malformed(w) => write!(f, "malformed {w}"),
            Error::Missing(w) => write!(f, "missing claim: {w}"),
            Error::BadSignature(w) => write!(f, "the {w} token's signature does not verify"),
            Error::Algorithm(w) => write!(f, "the {w} token is not signed with EdDSA"),
        }
    }
}

fn int(v: i64) -> Value {
    Value::Integer(Integer::from(v))
}

fn sw_value(c: &SwComponent) -> Value {
    Value::Map(alloc::vec![
        (int(1), Value::Text(c.kind.clone())),
        (int(2), Value::Bytes(c.measurement.clone())),
        (int(3), Value::Text(c.svn.clone())),
        (int(6), Value::Text("sha-384".to_string())),
    ])
}

fn regs_value(regs: &[(u64, Vec<u8>)]) -> Value {
    Value::Array(
        regs.iter()
            .map(|(i, v)| {
                Value::Map(alloc::vec![
                    (int(1), Value::Integer(Integer::from(*i))),
                    (int(2), Value::Bytes(v.clone())),
                ])
            })
            .collect(),
    )
}

fn cwt(map: Vec<(Value, Value)>) -> Vec<u8> {
    let mut out = Vec::new();
    // Writing into a Vec cannot fail.
    let _ = ciborium::into_writer(
        &Value::Tag(CWT_TAG, alloc::boxed::Box::new(Value::Map(map))),
        &mut out,
    );
    out
}

fn sign(payload: Vec<u8>, key: &SigningKey) -> Value {
    let protected = HeaderBuilder::new()
        .algorithm(iana::Algorithm::EdDSA)
        .build();
    let sign1 = CoseSign1Builder::new()
        .protected(protected)
        .payload(payload)
        .create_signature(b"", |tbs| key.sign(tbs).to_bytes().to_vec())
        .build();
    Value::Tag(
        coset::CoseSign1::TAG,
        alloc::boxed::Box::new(coset::AsCborValue::to_cbor_value(sign1).unwrap_or(Value::Null)),
    )
}

pub fn platform_payload(c: &PlatformClaims) -> Vec<u8> {
    cwt(alloc::vec![
        (int(label::PROFILE), Value::Text(PROFILE.to_string())),
        (
            int(label::PLATFORM_PUBLIC_KEY),
            Value::Bytes(c.public_key.to_vec())
        ),
        (
            int(label::PLATFORM_MANUFACTURER_ID),
            Value::Text(c.manufacturer.clone())
        ),
        (int(label::PLATFORM_STATE), int(c.state as i64)),
        (
            int(label::PLATFORM_SW_COMPONENTS),
            Value::Array(c.sw.iter().map(sw_value).collect()),
        ),
    ])
}

pub fn tsm_payload(c: &TsmClaims) -> Vec<u8> {
    cwt(alloc::vec![
        (
            int(label::TSM_PUBLIC_KEY),
            Value::Bytes(c.public_key.to_vec())
        ),
        (
            int(label::TSM_SW_COMPONENTS),
            Value::Array(c.sw.iter().map(sw_value).collect())
        ),
    ])
}

pub fn tvm_payload(c: &TvmClaims) -> Vec<u8> {
    cwt(alloc::vec![
        (int(label::NONCE), Value::Bytes(c.challenge.clone())),
        (int(label::TVM_IDENTITY), Value::Bytes(c.identity.clone())),
        (
            int(label::TVM_PUBLIC_KEY),
            Value::Bytes(c.public_key.clone())
        ),
        (int(label::TVM_INITIAL_MEASUREMENTS), regs_value(&c.initial)),
        (int(label::TVM_RUNTIME_MEASUREMENTS), regs_value(&c.runtime)),
    ])
}

/// The evidence: each token signed by the key of the layer below (`root`
/// signs the platform token, `platform` the TSM's, `tsm` the TVM's).
pub fn encode(
    claims: &Claims,
    root: &SigningKey,
    platform: &SigningKey,
    tsm: &SigningKey,
) -> Vec<u8> {
    let sub = Value::Map(alloc::vec![
        (
            Value::Text("platform".to_string()),
            sign(platform_payload(&claims.platform), root)
        ),
        (
            Value::Text("tsm".to_string()),
            sign(tsm_payload(&claims.tsm), platform)
        ),
        (
            Value::Text("tvm".to_string()),
            sign(tvm_payload(&claims.tvm), tsm)
        ),
    ]);
    let mut out = Vec::new();
    let _ = ciborium::into_writer(
        &Value::Map(alloc::vec![(int(label::SUBMODULES), sub)]),
        &mut out,
    );
    out
}

// ---- decoding and verification ----------------------------------------------

fn as_i64(v: &Value) -> Option<i64> {
    match v {
        Value::Integer(i) => i64::try_from(*i).ok(),
        _ => None,
    }
}

fn get(map: &[(Value, Value)], key: i64) -> Option<&Value> {
    map.iter()
        .find(|(k, _)| as_i64(k) == Some(key))
        .map(|(_, v)| v)
}

fn bytes(map: &[(Value, Value)], key: i64, what: &'static str) -> Result<Vec<u8>, Error> {
    match get(map, key) {
        Some(Value::Bytes(b)) => Ok(b.clone()),
        Some(_) => Err(Error::Malformed(what)),
        None => Err(Error::Missing(what)),
    }
}

fn text(map: &[(Value, Value)], key: i64, what: &'static str) -> Result<String, Error> {
    match get(map, key) {
        Some(Value::Text(t)) => Ok(t.clone()),
        Some(_) => Err(Error::Malformed(what)),
        None => Err(Error::Missing(what)),
    }
}

fn key32(map: &[(Value, Value)], key: i64, what: &'static str) -> Result<[u8; 32], Error> {
    bytes(map, key, what)?
        .try_into()
        .map_err(|_| Error::Malformed(what))
}

fn sw_list(
    map: &[(Value, Value)],
    key: i64,
    what: &'static str,
) -> Result<Vec<SwComponent>, Error> {
    let Some(Value::Array(items)) = get(map, key) else {
        return Err(Error::Missing(what));
    };
    items
        .iter()
        .map(|i| match i {
            Value::Map(m) => Ok(SwComponent {
                kind: text(m, 1, what)?,
                measurement: bytes(m, 2, what)?,
                svn: text(m, 3, what)?,
            }),
            _ => Err(Error::Malformed(what)),
        })
        .collect()
}

fn regs(
    map: &[(Value, Value)],
    key: i64,
    what: &'static str,
) -> Result<Vec<(u64, Vec<u8>)>, Error> {
    let Some(Value::Array(items)) = get(map, key) else {
        return Err(Error::Missing(what));
    };
    items
        .iter()
        .map(|i| match i {
            Value::Map(m) => {
                let idx = get(m, 1).and_then(as_i64).ok_or(Error::Malformed(what))?;
                Ok((
                    u64::try_from(idx).map_err(|_| Error::Malformed(what))?,
                    bytes(m, 2, what)?,
                ))
            }
            _ => Err(Error::Malformed(what)),
        })
        .collect()
}

/// Checks a token's signature with `key` and returns its claims map.
fn open(
    token: &Value,
    key: &VerifyingKey,
    what: &'static str,
) -> Result<Vec<(Value, Value)>, Error> {
    let inner = match token {
        Value::Tag(t, v) if *t == CoseSign1::TAG => (**v).clone(),
        _ => return Err(Error::Malformed(what)),
    };
    let sign1 = <CoseSign1 as coset::AsCborValue>::from_cbor_value(inner)
        .map_err(|_| Error::Malformed(what))?;
    if sign1.protected.header.alg
        != Some(coset::RegisteredLabelWithPrivate::Assigned(
            iana::Algorithm::EdDSA,
        ))
    {
        return Err(Error::Algorithm(what));
    }
    sign1
        .verify_signature(b"", |sig, tbs| {
            let sig = Signature::from_slice(sig).map_err(|_| ())?;
            key.verify(tbs, &sig).map_err(|_| ())
        })
        .map_err(|_| Error::BadSignature(what))?;
    let payload = sign1.payload.ok_or(Error::Missing(what))?;
    match ciborium::from_reader::<Value, _>(payload.as_slice()) {
        Ok(Value::Tag(CWT_TAG, m)) => match *m {
            Value::Map(m) => Ok(m),
            _ => Err(Error::Malformed(what)),
        },
        _ => Err(Error::Malformed(what)),
    }
}

fn vk(b: &[u8; 32], what: &'static str) -> Result<VerifyingKey, Error> {
    VerifyingKey::from_bytes(b).map_err(|_| Error::Malformed(what))
}

/// Verifies the chain from the root key `anchor` and returns every claim.
/// Policy (the challenge, reference values, the platform state) is the
/// caller's.
pub fn verify(evidence: &[u8], anchor: &[u8; 32]) -> Result<Claims, Error> {
    let top: Value = ciborium::from_reader(evidence).map_err(|_| Error::Malformed("evidence"))?;
    let Value::Map(top) = top else {
        return Err(Error::Malformed("evidence"));
    };
    let Some(Value::Map(sub)) = get(&top, label::SUBMODULES) else {
        return Err(Error::Missing("submodules (266)"));
    };
    let token = |name: &'static str| {
        sub.iter()
            .find(|(k, _)| matches!(k, Value::Text(t) if t == name))
            .map(|(_, v)| v)
            .ok_or(Error::Missing(name))
    };
    let p = open(token("platform")?, &vk(anchor, "trust anchor")?, "platform")?;
    if text(&p, label::PROFILE, "profile")? != PROFILE {
        return Err(Error::Malformed("profile"));
    }
    let state = match get(&p, label::PLATFORM_STATE).and_then(as_i64) {
        Some(1) => PlatformState::NotConfigured,
        Some(2) => PlatformState::Secured,
        Some(3) => PlatformState::Debug,
        Some(4) => PlatformState::Recovery,
        _ => return Err(Error::Malformed("platform state")),
    };
    let platform = PlatformClaims {
        public_key: key32(&p, label::PLATFORM_PUBLIC_KEY, "platform public key")?,
        manufacturer: text(&p, label::PLATFORM_MANUFACTURER_ID, "platform manufacturer")?,
        state,
        sw: sw_list(&p, label::PLATFORM_SW_COMPONENTS, "platform sw components")?,
    };
    let t = open(
        token("tsm")?,
        &vk(&platform.public_key, "platform public key")?,
        "tsm",
    )?;
    let tsm = TsmClaims {
        public_key: key32(&t, label::TSM_PUBLIC_KEY, "tsm public key")?,
        sw: sw_list(&t, label::TSM_SW_COMPONENTS, "tsm sw components")?,
    };
    let v = open(
        token("tvm")?,
        &vk(&tsm.public_key, "tsm public key")?,
        "tvm",
    )?;
    let tvm = TvmClaims {
        challenge: bytes(&v, label::NONCE, "challenge")?,
        identity: bytes(&v, label::TVM_IDENTITY, "tvm identity")?,
        public_key: bytes(&v, label::TVM_PUBLIC_KEY, "tvm public key")?,
        initial: regs(&v, label::TVM_INITIAL_MEASUREMENTS, "initial measurements")?,
        runtime: regs(&v, label::TVM_RUNTIME_MEASUREMENTS, "runtime measurements")?,
    };
    Ok(Claims { platform, tsm, tvm })
}

#[cfg(test)]
mod tests;
