#!/usr/bin/env bash
# Idempotent machine setup: the Rust toolchain/target, QEMU >= 9.2,
# Debian's riscv64 cross gcc (the Linux initramfs's test programs and
# salus-tsm.ko) and the host tools `make kmod` runs.
# As root it installs what is missing; otherwise it prints the commands.
set -euo pipefail
QEMU_BIN=${QEMU_BIN:-qemu-system-riscv64}
MIN_QEMU_MAJOR=9
MIN_QEMU_MINOR=2

need_root() {
    echo "setup: $1 needs root. Run these commands, then retry:" >&2
    shift
    for c in "$@"; do echo "    $c" >&2; done
    exit 1
}

# Rust: rust-toolchain.toml pins the version; rustup installs it on first use.
if ! command -v rustup >/dev/null 2>&1; then
    echo "setup: rustup is missing; install it from https://rustup.rs" >&2
    exit 1
fi
# Install the pinned toolchain with its target and components (llvm-tools
# gives llvm-objcopy) even where rustup's auto-install is switched off.
# riscv64gc-unknown-linux-gnu builds salus-vmm (the host's VMM, `make vmm`).
if ! rustup component list --installed 2>/dev/null | grep -q '^llvm-tools' ||
   ! rustup target list --installed 2>/dev/null | grep -q riscv64gc-unknown-none-elf ||
   ! rustup target list --installed 2>/dev/null | grep -q riscv64gc-unknown-linux-gnu; then
    rustup toolchain install
fi

qemu_ok() {
    command -v "$QEMU_BIN" >/dev/null 2>&1 || return 1
    local v
    v=$("$QEMU_BIN" --version | sed -n 's/.*version \([0-9]*\)\.\([0-9]*\).*/\1 \2/p' | head -1)
    set -- $v
    [ -n "${1:-}" ] || return 1
    [ "$1" -gt $MIN_QEMU_MAJOR ] || { [ "$1" -eq $MIN_QEMU_MAJOR ] && [ "$2" -ge $MIN_QEMU_MINOR ]; }
}

if ! qemu_ok; then
    if [ "$QEMU_BIN" != qemu-system-riscv64 ]; then
        echo "setup: QEMU=$QEMU_BIN is missing or older than $MIN_QEMU_MAJOR.$MIN_QEMU_MINOR" >&2
        exit 1
    fi
    src=/etc/apt/sources.list.d/bookworm-backports.sources
    cmds=()
    if grep -q 'VERSION_CODENAME=bookworm' /etc/os-release 2>/dev/null; then
        if ! grep -rqs bookworm-backports /etc/apt/sources.list /etc/apt/sources.list.d/; then
            cmds+=("printf 'Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' > $src")
        fi
        cmds+=("apt-get update" "DEBIAN_FRONTEND=noninteractive apt-get install -y -t bookworm-backports qemu-system-misc")
    else
        cmds+=("apt-get update" "DEBIAN_FRONTEND=noninteractive apt-get install -y qemu-system-misc")
    fi
    if [ "$(id -u)" -ne 0 ]; then
        need_root "installing QEMU >= $MIN_QEMU_MAJOR.$MIN_QEMU_MINOR" "${cmds[@]}"
    fi
    echo "setup: installing QEMU (>= $MIN_QEMU_MAJOR.$MIN_QEMU_MINOR)"
    for c in "${cmds[@]}"; do bash -c "$c"; done
    qemu_ok || { echo "setup: QEMU still missing or too old after install" >&2; exit 1; }
fi
# Debian's riscv64 cross compiler: the initramfs's own static programs
# (scripts/linux/salus-load.c) and the linker of salus-vmm (.cargo/config.toml).
if ! command -v riscv64-linux-gnu-gcc >/dev/null 2>&1 ||
   [ ! -e /usr/riscv64-linux-gnu/lib/libc.a ]; then
    cmds=("apt-get update" "DEBIAN_FRONTEND=noninteractive apt-get install -y gcc-riscv64-linux-gnu libc6-dev-riscv64-cross")
    if [ "$(id -u)" -ne 0 ]; then
        need_root "installing the riscv64 cross compiler" "${cmds[@]}"
    fi
    echo "setup: installing gcc-riscv64-linux-gnu"
    for c in "${cmds[@]}"; do bash -c "$c"; done
fi
# What `make kmod` runs on the host: gcc (modpost is rebuilt), make,
# objdump/strings (binutils), xz (the kernel source tarball); dtc for the
# Linux TVM's device tree (make linux-tvm-bundle).
missing=()
for t in gcc:gcc make:make objdump:binutils strings:binutils xz:xz-utils dtc:device-tree-compiler; do
    command -v "${t%%:*}" >/dev/null 2>&1 || missing+=("${t#*:}")
done
if [ "${#missing[@]}" -gt 0 ]; then
    cmds=("apt-get update" "DEBIAN_FRONTEND=noninteractive apt-get install -y $(printf '%s\n' "${missing[@]}" | sort -u | tr '\n' ' ')")
    if [ "$(id -u)" -ne 0 ]; then
        need_root "installing the kernel module build's host tools" "${cmds[@]}"
    fi
    echo "setup: installing ${missing[*]}"
    for c in "${cmds[@]}"; do bash -c "$c"; done
fi
exit 0
