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
pub mod bench_covi;
pub mod calls;
pub mod covi_host;
pub mod ctx;
pub mod harts;
pub mod host;
pub mod linux_tvm;
pub mod nacl;
pub mod pool;
pub mod run;
pub mod tests;

#[path = "../../../guestvm/src/protocol.rs"]
pub mod proto;

pub use calls::*;
pub use covi_host::*;
pub use harts::*;
pub use host::*;
pub use nacl::*;
pub use pool::*;
pub use run::*;

/// Code for a TVM that exits on every run, cheaply and always the same
/// way: `lui a7, 0x08000; 1: ecall; j 1b` (a forwarded ecall, EID
/// 0x0800_0000; a fault would do only inside the TVM's region, since a GPA
/// outside every region faults back into the TVM).
pub const EXIT_LOOP_CODE: [u32; 4] = [0x0800_08b7, 0x0000_0073, 0xffdf_f06f, 0];

/// `EXIT_LOOP_CODE` as the u64 words of a code page.
pub fn exit_loop_words() -> [u64; 2] {
    let c = EXIT_LOOP_CODE;
    [
        c[0] as u64 | (c[1] as u64) << 32,
        c[2] as u64 | (c[3] as u64) << 32,
    ]
}

/// The guestvm image tellus loads (see build.rs).
pub static GUESTVM: &[u8] = include_bytes!(env!("TELLUS_GUESTVM_BIN"));
