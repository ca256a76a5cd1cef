//! Links tellus at its load address (see `tellus.ld`), but only when
//! building for RISC-V so that host-side `cargo check` keeps working.

use std::env;
use std::path::PathBuf;

fn main() {
    let dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let script = dir.join("tellus.ld");
    println!("cargo:rerun-if-changed={}", script.display());
    println!("cargo:rerun-if-changed=build.rs");
    if env::var("CARGO_CFG_TARGET_ARCH").as_deref() == Ok("riscv64") {
        println!("cargo:rustc-link-arg-bins=-T{}", script.display());
    }
}
