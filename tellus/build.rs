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
    embed_guestvm(&dir);
}

/// tellus embeds guestvm (the confidential test guest) and loads it into a
/// TVM as measured pages. `GUESTVM_BIN` names the raw image; by default it
/// is `../build/guestvm.bin` (what `make guestvm` writes; `make tellus`
/// builds guestvm first).
fn embed_guestvm(dir: &std::path::Path) {
    println!("cargo:rerun-if-env-changed=GUESTVM_BIN");
    let bin = match env::var_os("GUESTVM_BIN") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => dir.join("../build/guestvm.bin"),
    };
    if !bin.is_file() {
        if env::var("CARGO_CFG_TARGET_ARCH").as_deref() != Ok("riscv64") {
            // Host-side checks of tellus do not need the guest image.
            let empty = PathBuf::from(env::var("OUT_DIR").unwrap()).join("guestvm-empty.bin");
            std::fs::write(&empty, []).unwrap();
            println!("cargo:rustc-env=TELLUS_GUESTVM_BIN={}", empty.display());
            return;
        }
        panic!(
            "tellus embeds guestvm, but {} does not exist: run `make guestvm` first \
             (`make tellus` does), or set GUESTVM_BIN to a raw guestvm image",
            bin.display()
        );
    }
    let bin = bin.canonicalize().unwrap_or(bin);
    println!("cargo:rerun-if-changed={}", bin.display());
    println!("cargo:rustc-env=TELLUS_GUESTVM_BIN={}", bin.display());
}
