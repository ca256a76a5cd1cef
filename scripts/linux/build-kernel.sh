#!/usr/bin/env bash
# make linux: the pinned Debian riscv64 kernel package, unpacked.
# Output (under $LINUX_BUILD, default build/linux):
#   Image              the uncompressed kernel Image (boot/vmlinux-* in the
#                      package: a flat Image with the EFI stub header, which
#                      QEMU's -kernel and guest-loader take as is)
#   modules/<kver>/    the kernel's modules tree (.ko.xz as Debian ships them)
#   config, System.map, kernel.release
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/versions.env"
export LINUX_BUILD=${LINUX_BUILD:-build/linux}
deb=$("$HERE/debs.sh" kernel image)
out=$LINUX_BUILD
tmp=$(mktemp -d "$out/.kernel.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
dpkg-deb -x "$deb" "$tmp"
img=$(ls "$tmp"/boot/vmlinux-* 2>/dev/null | head -1 || true)
[ -n "$img" ] || { echo "linux: no boot/vmlinux-* in $deb" >&2; exit 1; }
kver=${img##*/vmlinux-}
# RISC-V Image header: "RISCV\0\0\0" at 0x30, "RSC\x05" at 0x38.
magic=$(dd if="$img" bs=1 skip=56 count=4 2>/dev/null | od -An -c | tr -d ' ')
[ "$magic" = 'RSC005' ] || { echo "linux: $img is not a RISC-V Image (magic '$magic')" >&2; exit 1; }
moddir=
for d in "$tmp/usr/lib/modules/$kver" "$tmp/lib/modules/$kver"; do
    [ -d "$d" ] && { moddir=$d; break; }
done
[ -n "$moddir" ] || { echo "linux: no modules tree for $kver in $deb" >&2; exit 1; }
rm -rf "$out/modules"
mkdir -p "$out/modules"
mv "$moddir" "$out/modules/$kver"
cp "$tmp/boot/config-$kver" "$out/config"
cp "$tmp/boot/System.map-$kver" "$out/System.map" 2>/dev/null || true
echo "$kver" > "$out/kernel.release"
# The Image last: make uses it as the target's timestamp.
cp "$img" "$out/Image.tmp" && mv "$out/Image.tmp" "$out/Image"
echo "linux: $out/Image (${deb##*/}, $(du -h "$out/Image" | cut -f1)), modules in $out/modules/$kver"
