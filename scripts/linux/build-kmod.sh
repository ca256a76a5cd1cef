#!/usr/bin/env bash
# make kmod: drivers/salus-tsm as an out-of-tree module of the pinned Debian
# riscv64 kernel (the `make linux` one), cross-compiled here.
# Output (under $LINUX_BUILD, default build/linux):
#   kmod/salus-tsm.ko  the module (unsigned: loading it taints the kernel OE)
#   kbuild/            the kernel's build tree, unpacked from Debian packages
#                      of the kernel's own upload (debs.sh kernel ...):
#                      linux-headers-<abi>-riscv64 + -common, and the build
#                      helpers of linux-kbuild-<abi> (amd64); made again only
#                      when those packages change
#
# Debian's amd64 modpost (modpost.real-lsb-64) needs glibc 2.38, newer than
# Debian 12's, so it is rebuilt here with the host's gcc from the same
# upload's linux-source (scripts/mod only), its device table offsets taken
# from the riscv64 headers with the cross compiler, as Kbuild does.
# The headers name riscv64-linux-gnu-gcc-14; Debian 12's cross gcc 12
# (CROSS_CC, scripts/setup.sh installs it) builds the module: Debian's
# kernel Makefile turns off the compiler version check. Module BTF is off
# (Debian 12's pahole is too old for this kernel's).
#
# The sources modpost needs are kept in $SALUS_CACHE/linux-source-mod/.
# Environment (all optional): LINUX_BUILD, KMOD_SRC (drivers/salus-tsm),
# CROSS_CC (riscv64-linux-gnu-gcc), HOSTCC (gcc), SALUS_CACHE (debs.sh).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
export LINUX_BUILD=${LINUX_BUILD:-build/linux}
mkdir -p "$LINUX_BUILD"
LB=$(cd "$LINUX_BUILD" && pwd)
SRC=${KMOD_SRC:-$REPO/drivers/salus-tsm}
NAME=salus-tsm
KB=$LB/kbuild
OUT=$LB/kmod
CROSS_CC=${CROSS_CC:-riscv64-linux-gnu-gcc}
HOSTCC=${HOSTCC:-gcc}

die() { echo "kmod: $*" >&2; exit 1; }
command -v "$CROSS_CC" >/dev/null 2>&1 ||
    die "no $CROSS_CC: run 'make setup' (apt-get install gcc-riscv64-linux-gnu)"
command -v "$HOSTCC" >/dev/null 2>&1 || die "no host C compiler $HOSTCC (apt-get install gcc)"
[ -f "$SRC/Kbuild" ] || [ -f "$SRC/Makefile" ] || die "$SRC has no Kbuild"

# The highest GLIBC_2.N symbol version FILE needs (N), 0 for none.
glibc_need() {
    objdump -T "$1" 2>/dev/null | sed -n 's/.*GLIBC_2\.\([0-9]*\).*/\1/p' | sort -n | tail -1 | grep . || echo 0
}
host_glibc=$(getconf GNU_LIBC_VERSION | sed -n 's/^glibc 2\.\([0-9]*\).*/\1/p')
[ -n "$host_glibc" ] || die "cannot tell the host's glibc version (getconf GNU_LIBC_VERSION)"

# Unset make's own variables: the outer make's command line (QEMU=, CPU=,
# ...) must not reach the kernel's Makefile.
kmake() {
    env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL -u MAKEOVERRIDES make -s -C "$kdir" \
        ARCH=riscv CROSS_COMPILE=riscv64-linux-gnu- CC="$CROSS_CC" HOSTCC="$HOSTCC" \
        CONFIG_DEBUG_INFO_BTF_MODULES= "$@"
}

# ---- the kernel's build tree ------------------------------------------------
debs=$("$HERE/debs.sh" kernel headers common kbuild source)
read -r deb_headers deb_common deb_kbuild deb_source <<<"$(echo $debs)"
stamp=$(for d in $debs; do basename "$d"; done)
kdir=
if [ "$(cat "$KB/stamp" 2>/dev/null)" = "$stamp" ]; then
    kdir=$(ls -d "$KB"/root/usr/src/linux-headers-*-riscv64 2>/dev/null | head -1)
fi
if [ -z "$kdir" ]; then
    echo "kmod: unpacking the kernel's build tree into $KB" >&2
    rm -rf "$KB"
    mkdir -p "$KB/root"
    for d in "$deb_headers" "$deb_common" "$deb_kbuild"; do dpkg-deb -x "$d" "$KB/root"; done
    kdir=$(ls -d "$KB"/root/usr/src/linux-headers-*-riscv64 2>/dev/null | head -1)
    [ -n "$kdir" ] || die "no usr/src/linux-headers-*-riscv64 in $deb_headers"
    # The riscv64 headers' Makefile includes the -common tree by its
    # installed path (/usr/src/...): point it at ours.
    sed -i "s|^include /usr/src/|include $KB/root/usr/src/|" "$kdir/Makefile"
    grep -q "^include $KB/root/usr/src/linux-headers-.*-common/Makefile" "$kdir/Makefile" ||
        die "unexpected $kdir/Makefile: $(head -3 "$kdir/Makefile")"
    helpers=$(readlink -f "$kdir/scripts")
    [ -x "$helpers/mod/modpost" ] || die "no scripts/mod/modpost in $deb_kbuild"

    # modpost from the same upload's source: scripts/mod, the headers it
    # includes by relative path, and scripts/include. Unpacking them reads
    # the whole 1.4 GB tarball, so the few files are kept beside the cached
    # .deb (in $SALUS_CACHE) for the next clone.
    echo "kmod: rebuilding modpost from ${deb_source##*/} (host glibc 2.$host_glibc)" >&2
    cache=$(dirname "$(dirname "$deb_source")")/linux-source-mod
    src=$cache/$(basename "$deb_source" .deb)
    if [ ! -f "$src/scripts/mod/modpost.c" ]; then
        mkdir -p "$cache"
        tmp=$(mktemp -d "$cache/.tmp.XXXXXX")
        dpkg-deb --fsys-tarfile "$deb_source" | tar -xO --wildcards './usr/src/linux-source-*.tar.xz' |
            xz -dc -T2 | tar -x -C "$tmp" --strip-components=1 --wildcards \
                '*/scripts/mod' '*/scripts/include' '*/include/linux/mod_devicetable.h' \
                '*/include/linux/license.h' '*/include/linux/module_symbol.h'
        [ -f "$tmp/scripts/mod/modpost.c" ] || { rm -rf "$tmp"; die "no scripts/mod/modpost.c in ${deb_source##*/}"; }
        rm -rf "$src"
        mv "$tmp" "$src"
    fi
    gen=$KB/modpost
    mkdir -p "$gen/offsets"
    # devicetable-offsets.h: the struct layouts of mod_devicetable.h for the
    # target, from the cross compiler's assembly (Kbuild's own way).
    cp "$src/scripts/mod/devicetable-offsets.c" "$gen/offsets/"
    : > "$gen/offsets/Kbuild"
    kmake M="$gen/offsets" devicetable-offsets.s
    {
        echo "#ifndef __DEVICETABLE_OFFSETS_H__"
        echo "#define __DEVICETABLE_OFFSETS_H__"
        awk '/\.ascii "->[A-Za-z_]/ {
            s = $0; sub(/^[^"]*"->/, "", s); sub(/".*$/, "", s)
            split(s, w, " "); v = w[2]; gsub(/^[$#]+/, "", v)
            printf "#define %s %s\n", w[1], v }' "$gen/offsets/devicetable-offsets.s"
        echo "#endif"
    } > "$gen/devicetable-offsets.h"
    [ "$(grep -c '^#define' "$gen/devicetable-offsets.h")" -gt 100 ] ||
        die "devicetable-offsets.h came out nearly empty"
    # elfconfig.h: the target's ELF class, read from a cross-compiled object.
    "$HOSTCC" -O2 -o "$gen/mk_elfconfig" "$src/scripts/mod/mk_elfconfig.c"
    "$CROSS_CC" -c -o "$gen/empty.o" "$src/scripts/mod/empty.c"
    "$gen/mk_elfconfig" < "$gen/empty.o" > "$gen/elfconfig.h"
    "$HOSTCC" -O2 -std=gnu11 -Wall -I"$gen" -I"$src/scripts/include" -o "$gen/modpost" \
        "$src/scripts/mod/modpost.c" "$src/scripts/mod/file2alias.c" \
        "$src/scripts/mod/sumversion.c" "$src/scripts/mod/symsearch.c"
    # Debian's modpost is a wrapper that runs modpost.real-<lsb|msb>-<32|64>
    # for the target's ELF kind: riscv64 is lsb-64.
    cp "$gen/modpost" "$helpers/mod/modpost.real-lsb-64"

    # What the module build runs must work on this glibc; the rest of the
    # helpers that do not are for other targets or BTF.
    for h in basic/fixdep mod/modpost mod/modpost.real-lsb-64; do
        [ "$(glibc_need "$helpers/$h")" -le "$host_glibc" ] ||
            die "$helpers/$h needs glibc 2.$(glibc_need "$helpers/$h") (host: 2.$host_glibc)"
    done
    unused=
    while read -r f; do
        if [ "$(glibc_need "$f")" -gt "$host_glibc" ]; then unused+=" ${f#"$helpers"/../}"; fi
    done < <(find "$helpers/.." -type f -perm -u+x)
    [ -z "$unused" ] ||
        echo "kmod: note: not used for riscv64 modules without BTF, and need a newer glibc:$unused" >&2
    echo "$stamp" > "$KB/stamp"
fi
kver=$(cat "$kdir/include/config/kernel.release")
if [ -f "$LB/kernel.release" ] && [ "$(cat "$LB/kernel.release")" != "$kver" ]; then
    die "the headers are for $kver but $LB holds kernel $(cat "$LB/kernel.release") (the pins moved?): rm $LB/Image and make again"
fi

# ---- the module ---------------------------------------------------------------
# Built in a copy (Kbuild writes its objects next to the sources), without
# what an in-tree build may have left there.
rm -rf "$OUT/src"
mkdir -p "$OUT/src"
tar -C "$SRC" -c --exclude='*.o' --exclude='*.ko' --exclude='*.mod' --exclude='*.mod.c' \
    --exclude='.*.cmd' --exclude=Module.symvers --exclude=modules.order . | tar -C "$OUT/src" -x
kmake M="$OUT/src" -j"$(nproc)" modules
ko=$OUT/src/$NAME.ko
[ -f "$ko" ] || die "no $NAME.ko built"
magic=$(strings -n 8 "$ko" | sed -n 's/^vermagic=//p' | head -1)
case "$magic" in
    "$kver "*) ;;
    *) die "$NAME.ko has vermagic '$magic', the kernel is $kver" ;;
esac
# Without debug info, as Debian installs its modules (~600 KiB -> ~10).
riscv64-linux-gnu-strip --strip-debug -o "$OUT/$NAME.ko.tmp" "$ko"
mv "$OUT/$NAME.ko.tmp" "$OUT/$NAME.ko"
echo "kmod: $OUT/$NAME.ko (for $kver, $(du -h "$OUT/$NAME.ko" | cut -f1))"
