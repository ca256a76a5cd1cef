#!/usr/bin/env bash
# Builds the bare-metal measurement self-test for riscv64 and runs it under
# QEMU (virt, OpenSBI, Zknh + Zbb, -icount shift=0 so `instret` counts
# exactly). Exit status 0 when every check passed.
#
#   crates/measurement/riscv-selftest/run.sh            # release build
#   PROFILE=dev crates/measurement/riscv-selftest/run.sh
#
# Honours CARGO_TARGET_DIR (default: <repo>/target/measurement-selftest)
# and QEMU (default: qemu-system-riscv64). Needs the riscv64gc-unknown-none-elf
# target (rust-toolchain.toml) and qemu-system-riscv64 with its OpenSBI.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"
profile="${PROFILE:-release}"
target=riscv64gc-unknown-none-elf
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$repo/target/measurement-selftest}"
qemu="${QEMU:-qemu-system-riscv64}"

cd "$here"
cargo build --locked --target "$target" --profile "$profile"
case "$profile" in dev) outdir=debug ;; *) outdir="$profile" ;; esac
elf="$CARGO_TARGET_DIR/$target/$outdir/measurement-riscv-selftest"

log="$(mktemp)"
trap 'rm -f "$log"' EXIT
set +e
timeout 600 "$qemu" -M virt -cpu rv64,zknh=true,zbb=true -smp 1 -m 256M \
    -icount shift=0 -bios default -kernel "$elf" -nographic \
    -monitor none -serial stdio </dev/null 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e

if [ "$status" -ne 0 ]; then
    echo "measurement self-test: QEMU exited with status $status" >&2
    exit 1
fi
if grep -q '^SELFTEST: PASS' "$log" && grep -Eq '^[0-9]+ passed, 0 failed' "$log"; then
    exit 0
fi
echo "measurement self-test: FAILED" >&2
exit 1
