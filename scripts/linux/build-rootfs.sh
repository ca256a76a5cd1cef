#!/usr/bin/env bash
# make rootfs: the initramfs of the Linux host (busybox, dropbear, modules,
# Salus's own pieces).
# Output: $LINUX_BUILD/initramfs.cpio.gz (default build/linux), and the test
# SSH key pair $LINUX_BUILD/ssh/id_ed25519{,.pub} whose public half is root's
# authorized key in the image (root's password is "root" too).
# Needs the modules tree of `make linux` ($LINUX_BUILD/modules/<kver>), or
# MODDIR=<.../lib/modules/<kver>> for another kernel.
# Salus's pieces, each left out with a note when its file is missing:
#   SALUS_TSM_KO  (default $LINUX_BUILD/kmod/salus-tsm.ko, `make kmod`)
#                 -> /lib/modules/<kver>/extra/salus-tsm.ko, loaded by /init;
#                 empty leaves it out (e.g. for MODDIR= of another kernel)
#   GUESTVM_BIN   (default $LINUX_BUILD/../guestvm.bin, `make guestvm`)
#                 -> /usr/share/salus/guestvm.bin
#   SALUS_VMM     (default $LINUX_BUILD/salus-vmm, a static riscv64 program)
#                 -> /usr/bin/salus-vmm
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/versions.env"
export LINUX_BUILD=${LINUX_BUILD:-build/linux}
# Modules loaded at boot (their dependencies are added and ordered).
MODULES=${LINUX_MODULES:-virtio_blk,virtio_net,nvme,e1000e}
out=$LINUX_BUILD/initramfs.cpio.gz

if [ -z "${MODDIR:-}" ]; then
    kver=$(cat "$LINUX_BUILD/kernel.release" 2>/dev/null) ||
        { echo "rootfs: no $LINUX_BUILD/kernel.release: run 'make linux' first (or set MODDIR)" >&2; exit 1; }
    MODDIR=$LINUX_BUILD/modules/$kver
fi
[ -d "$MODDIR/kernel" ] || { echo "rootfs: $MODDIR is not a modules tree" >&2; exit 1; }

names=$(echo "$ROOTFS_DEBS" | awk 'NF { print $1 }')
# shellcheck disable=SC2086
debs=$("$HERE/debs.sh" fetch $names)
pkgroot=$LINUX_BUILD/rootfs-debs
rm -rf "$pkgroot"
mkdir -p "$pkgroot"
for d in $debs; do dpkg-deb -x "$d" "$pkgroot"; done

# The test key: made once, kept under build/ (never in the repository).
mkdir -p "$LINUX_BUILD/ssh"
key=$LINUX_BUILD/ssh/id_ed25519
keyarg=()
if [ -f "$key.pub" ]; then
    keyarg=(--authorized-key "$key.pub")
elif command -v ssh-keygen >/dev/null 2>&1; then
    ssh-keygen -q -t ed25519 -N '' -C salus-linux-test -f "$key"
    keyarg=(--authorized-key "$key.pub")
else
    echo "rootfs: no ssh-keygen; the image has password login only" >&2
fi
# A fixed salt keeps the image reproducible; the password is "root" anyway.
hash=$(openssl passwd -6 -salt salushost root)

# Our own test programs, static, with Debian's riscv64 cross compiler
# (gcc-riscv64-linux-gnu + libc6-dev-riscv64-cross; scripts/setup.sh).
CROSS_CC=${CROSS_CC:-riscv64-linux-gnu-gcc}
command -v "$CROSS_CC" >/dev/null 2>&1 ||
    { echo "rootfs: no $CROSS_CC: run 'make setup' (apt-get install gcc-riscv64-linux-gnu libc6-dev-riscv64-cross)" >&2; exit 1; }
mkdir -p "$LINUX_BUILD/bin"
"$CROSS_CC" -static -O2 -Wall -Wextra -Werror -pthread -o "$LINUX_BUILD/bin/salus-load" "$HERE/salus-load.c"
# The driver's hostile-user test (drivers/salus-tsm/tests/hostile.c).
"$CROSS_CC" -static -O2 -Wall -Wextra -Werror -pthread -o "$LINUX_BUILD/bin/salus-tsm-hostile" \
    "$HERE/../../drivers/salus-tsm/tests/hostile.c"

salus=()
tsm=${SALUS_TSM_KO-$LINUX_BUILD/kmod/salus-tsm.ko}
if [ -z "$tsm" ]; then
    echo "rootfs: note: SALUS_TSM_KO is empty: no salus-tsm.ko in the image" >&2
elif [ -f "$tsm" ]; then
    salus+=(--extra-module "$tsm")
else
    echo "rootfs: note: no $tsm ('make kmod'): /init will say 'salus-tsm: not in this initramfs'" >&2
fi
guestvm=${GUESTVM_BIN:-$LINUX_BUILD/../guestvm.bin}
if [ -f "$guestvm" ]; then
    salus+=(--file "usr/share/salus/guestvm.bin=$guestvm")
else
    echo "rootfs: note: no $guestvm ('make guestvm'): no /usr/share/salus/guestvm.bin" >&2
fi
vmm=${SALUS_VMM:-$LINUX_BUILD/salus-vmm}
if [ -f "$vmm" ]; then
    salus+=(--bin "$vmm")
else
    echo "rootfs: note: no $vmm (the VMM is not built yet): no /usr/bin/salus-vmm" >&2
fi

python3 "$HERE/mkinitramfs.py" --bin "$LINUX_BUILD/bin/salus-load" --bin "$LINUX_BUILD/bin/salus-tsm-hostile" --debs-root "$pkgroot" --moddir "$MODDIR" \
    --modules "$MODULES" --init "$HERE/init" --udhcpc-script "$HERE/udhcpc.script" \
    --password-hash "$hash" "${keyarg[@]}" "${salus[@]}" --out "$out"
