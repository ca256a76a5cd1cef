//! Links the self-test at 0x80200000 (where OpenSBI enters S-mode payloads
//! on QEMU `virt`).
fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap();
    println!("cargo:rustc-link-arg=-T{dir}/link.ld");
    println!("cargo:rerun-if-changed=link.ld");
}
