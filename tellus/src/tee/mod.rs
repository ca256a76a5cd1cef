//! tellus as a CoVE host, in layers: `calls` (the COVH/NACL wrappers),
//! `run` (`run_tvm_vcpu`), `nacl` (per-hart shared memory), `harts` (fences
//! and vCPU runs on secondaries), `pool` (host pages carved from free RAM)
//! and `host` (the host side of a TVM run that drives guestvm); all of them
//! are re-exported here.
//!
//! On top of them: `ctx` (the shared context of the TEE tests, attack and
//! fuzz), the tests in `tests` and the benchmarks in `bench`; the
//! randomized mode is `crate::fuzz`, the attack group `crate::attack`.

pub mod bench;
pub mod calls;
pub mod ctx;
pub mod harts;
pub mod host;
pub mod nacl;
pub mod pool;
pub mod run;
pub mod tests;

#[path = "../../../guestvm/src/protocol.rs"]
pub mod proto;

pub use calls::*;
pub use harts::*;
pub use host::*;
pub use nacl::*;
pub use pool::*;
pub use run::*;

/// The guestvm image tellus loads (see build.rs).
pub static GUESTVM: &[u8] = include_bytes!(env!("TELLUS_GUESTVM_BIN"));
