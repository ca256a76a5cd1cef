#!/usr/bin/env bash
# Debian packages through a PRIVATE apt root under build/linux/apt.
# The system's apt setup (sources, keys, lists, cache, dpkg status) is never
# read or written: APT_CONFIG points apt at a config of our own whose Dir is
# the private root, so even /etc/apt/apt.conf.d is not consulted.
# Architectures: riscv64 (the host images) and amd64 (only linux-kbuild-*,
# the kernel's build helpers, which run on the build machine).
#
#   debs.sh update           refresh the package lists (trixie main)
#   debs.sh fetch NAME...    print the path of each pinned rootfs .deb (see
#                            versions.env), downloading it if not cached and
#                            checking its sha256
#   debs.sh kernel ROLE...   the same for the kernel's packages, which move
#                            together (ROLE: image headers common kbuild
#                            source); resolves the whole set first
#   debs.sh pin              rewrite versions.env with the archive's current
#                            versions (kernel: resolves linux-image-riscv64)
#
# Downloads are cached outside the clone, in $SALUS_CACHE/debs (default
# ~/.cache/salus/debs), and used again only when their sha256 is the pinned
# one. What a build used is recorded in build/linux/debs.lock.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
VERSIONS=$HERE/versions.env
# shellcheck source=versions.env
. "$VERSIONS"
LINUX_BUILD=$(mkdir -p "${LINUX_BUILD:-build/linux}" && cd "${LINUX_BUILD:-build/linux}" && pwd)
ROOT=$LINUX_BUILD/apt
LOCK=$LINUX_BUILD/debs.lock
if [ -z "${SALUS_CACHE:-}" ]; then
    if [ -n "${XDG_CACHE_HOME:-}" ]; then SALUS_CACHE=$XDG_CACHE_HOME/salus
    elif [ -n "${HOME:-}" ]; then SALUS_CACHE=$HOME/.cache/salus
    else SALUS_CACHE=$LINUX_BUILD/cache; fi
fi
DEBS=$SALUS_CACHE/debs
KEYRING=${DEBIAN_KEYRING:-/usr/share/keyrings/debian-archive-keyring.gpg}
# The architecture of the kernel's build helpers (they run here).
HOST_ARCH=amd64

die() { echo "linux/debs: $*" >&2; exit 1; }

setup_root() {
    mkdir -p "$ROOT/etc/apt/apt.conf.d" "$ROOT/etc/apt/preferences.d" \
        "$ROOT/etc/apt/sources.list.d" "$ROOT/etc/apt/trusted.gpg.d" \
        "$ROOT/var/lib/apt/lists/partial" "$ROOT/var/cache/apt/archives/partial" \
        "$ROOT/var/lib/dpkg" "$DEBS"
    [ -f "$ROOT/var/lib/dpkg/status" ] || : > "$ROOT/var/lib/dpkg/status"
    [ -r "$KEYRING" ] || die "missing $KEYRING (apt-get install debian-archive-keyring)"
    # The trixie archive key must be in the keyring; otherwise say so
    # rather than silently trusting an unsigned archive.
    if command -v gpg >/dev/null 2>&1 &&
       ! gpg --no-default-keyring --show-keys "$KEYRING" 2>/dev/null | grep -q "($SUITE_NUMBER/$SUITE)"; then
        die "$KEYRING has no key for $SUITE; update debian-archive-keyring"
    fi
    cat > "$ROOT/apt.conf" <<CONF
Dir "$ROOT/";
Dir::State::status "$ROOT/var/lib/dpkg/status";
APT::Architecture "riscv64";
APT::Architectures { "riscv64"; "$HOST_ARCH"; };
APT::Sandbox::User "root";
APT::Get::AllowUnauthenticated "false";
Acquire::Languages "none";
Acquire::IndexTargets::deb::DEP-11::DefaultEnabled "false";
Acquire::IndexTargets::deb::DEP-11-icons::DefaultEnabled "false";
Acquire::IndexTargets::deb::DEP-11-icons-hidpi::DefaultEnabled "false";
Acquire::IndexTargets::deb::CNF::DefaultEnabled "false";
Acquire::Retries "3";
Acquire::GzipIndexes "true";
Acquire::CompressionTypes::Order { "gz"; };
CONF
    local src="deb [arch=riscv64,$HOST_ARCH signed-by=$KEYRING] $MIRROR $SUITE main"
    # New sources (e.g. an architecture added): the lists are stale.
    if [ "$(cat "$ROOT/etc/apt/sources.list" 2>/dev/null)" != "$src" ]; then
        echo "$src" > "$ROOT/etc/apt/sources.list"
        rm -f "$ROOT/updated"
    fi
}

apt_() { APT_CONFIG=$ROOT/apt.conf "$@"; }

update() {
    setup_root
    echo "linux/debs: updating $SUITE riscv64+$HOST_ARCH package lists in $ROOT" >&2
    apt_ apt-get -q update >&2 || die "apt-get update failed (is $MIRROR reachable?)"
    touch "$ROOT/updated"
}

# Lists are refreshed when missing or older than a day.
ensure_lists() {
    setup_root
    if [ -z "$(find "$ROOT/updated" -mmin -1440 2>/dev/null)" ]; then update; fi
}

sha_of() { sha256sum "$1" | cut -d' ' -f1; }

# A package is named NAME or NAME:ARCH (riscv64 unless said: :all for
# architecture-independent packages, :amd64 for the build helpers).
arch_of() { case $1 in *:*) echo "${1##*:}" ;; *) echo riscv64 ;; esac; }
deb_path() { echo "$DEBS/${1%%:*}_$(echo "$2" | tr ':' '+')_$(arch_of "$1").deb"; }
# Is the cached file of SPEC VERSION there with sha256 SHA?
cached() { local f; f=$(deb_path "$1" "$2"); [ -n "$3" ] && [ -f "$f" ] && [ "$(sha_of "$f")" = "$3" ]; }

# Does the archive (our lists) have this version of the package?
# (apt-cache show exits 0 for a missing version too: look at its output;
# grep reads all of it, no early exit that pipefail would see as SIGPIPE.)
has_version() { apt_ apt-cache show "$1=$2" 2>/dev/null | grep '^Package:' >/dev/null; }

field() { apt_ apt-cache show "$1=$2" 2>/dev/null | sed -n "s/^$3: //p" | head -1; }

candidate() { apt_ apt-cache policy "$1" 2>/dev/null | sed -n 's/^ *Candidate: //p'; }

# The lock file: one line per package the builds used (name version sha256
# how), the newest fetch of a name wins; "fallback" marks a version that is
# not the pin.
lock_write() { # AWK-FILTER [LINE]
    local tmp
    tmp=$(mktemp "$LOCK.XXXXXX")
    {
        echo "# Debian packages the builds in $LINUX_BUILD used (scripts/linux/debs.sh):"
        echo "# name[:arch] version sha256 pinned|fallback"
        { grep -v '^#' "$LOCK" 2>/dev/null | awk "$1" || true; [ -z "${2:-}" ] || echo "$2"; } | sort
    } > "$tmp"
    chmod 644 "$tmp"
    mv "$tmp" "$LOCK"
}
lock_record() { lock_write "\$1 != \"$1\"" "$1 $2 $3 $4"; }

# Print the cached .deb of SPEC=VERSION, downloading it first unless the
# cache has it with sha256 SHA (empty: the sha256 the archive's signed
# index gives), and record it in the lock file as HOW.
fetch_exact() {
    local spec=$1 version=$2 sha=$3 how=$4 file tmp got
    file=$(deb_path "$spec" "$version")
    if [ -z "$sha" ]; then
        ensure_lists
        sha=$(field "$spec" "$version" SHA256)
    fi
    if ! cached "$spec" "$version" "$sha"; then
        ensure_lists
        tmp=$(mktemp -d "$DEBS/.dl.XXXXXX")
        (cd "$tmp" && apt_ apt-get -q download "$spec=$version" >&2) ||
            { rm -rf "$tmp"; die "download of $spec $version failed"; }
        got=$(ls "$tmp"/*.deb)
        if [ -n "$sha" ] && [ "$(sha_of "$got")" != "$sha" ]; then
            rm -rf "$tmp"
            die "sha256 of $spec $version is not the pinned $sha (run 'make linux-pin' if the archive rebuilt it)"
        fi
        sha=$(sha_of "$got")
        mv "$got" "$file"
        rm -rf "$tmp"
    fi
    lock_record "$spec" "$version" "$sha" "$how"
    echo "$file"
}

# ---- rootfs packages: each pinned on its own --------------------------------

# The pinned "VERSION SHA256" of a rootfs package, from versions.env.
pinned() {
    echo "$ROOTFS_DEBS" | awk -v n="$1" '$1 == n { print $2, $3; found=1 } END { exit !found }' ||
        die "$1 is not pinned in $VERSIONS"
}

fetch_one() {
    local name=$1 version sha
    read -r version sha <<<"$(pinned "$name")"
    if ! cached "$name" "$version" "$sha"; then
        ensure_lists
        if ! has_version "$name" "$version"; then update; fi
        if ! has_version "$name" "$version"; then
            # Debian keeps only the current version of each package in
            # $SUITE. Use what the archive has now -- apt checks it against
            # the signed index -- and say how to record it as the new pin.
            local old="$name $version"
            version=$(candidate "$name")
            [ -n "$version" ] && [ "$version" != "(none)" ] ||
                die "pinned $old is no longer in Debian $SUITE and nothing replaces it"
            echo "linux/debs: warning: pinned $old is no longer in Debian $SUITE; using $name $version." >&2
            echo "  Record it with 'make linux-pin' and commit scripts/linux/versions.env." >&2
            fetch_exact "$name" "$version" "" fallback
            return
        fi
    fi
    fetch_exact "$name" "$version" "$sha" pinned
}

# ---- the kernel's packages: one set, one version ----------------------------
# The kernel image (its modules are in it), its headers (riscv64 + common),
# the build helpers (linux-kbuild, $HOST_ARCH) and linux-source (modpost is
# rebuilt from it) all come from one upload of Debian's `linux` source
# package: they are pinned, used and moved together.

# The pinned set: "ROLE SPEC VERSION SHA256" lines.
kernel_pins() {
    echo "image $KERNEL_PKG $KERNEL_VERSION $KERNEL_SHA256"
    echo "$KERNEL_DEBS" | awk 'NF { print $1, $2, $3, $4 }'
}

# The archive's set for kernel package KPKG (linux-image-ABI-riscv64) at
# version KVER: "ROLE SPEC VERSION SHA256" lines, from the archive's index.
kernel_set() {
    local kpkg=$1 kver=$2 abi headers common kbuild source role spec v
    abi=${kpkg#linux-image-}
    abi=${abi%-riscv64}
    headers=linux-headers-$abi-riscv64
    has_version "$headers" "$kver" || die "the archive has no $headers $kver to go with $kpkg"
    common=$(apt_ apt-cache depends "$headers=$kver" | sed -n 's/^ *Depends: \(linux-headers-[^ :]*-common\).*$/\1/p' | head -1)
    kbuild=$(apt_ apt-cache depends "$headers=$kver" | sed -n 's/^ *Depends: \(linux-kbuild-[^ :]*\).*$/\1/p' | head -1)
    source=linux-source-$(echo "$abi" | cut -d. -f1,2)
    [ -n "$common" ] && [ -n "$kbuild" ] || die "cannot find the common headers and kbuild of $headers $kver"
    while read -r role spec; do
        v=$kver
        # A binNMU of the kernel (+bN) leaves the others at the source version.
        has_version "$spec" "$v" || v=${kver%+b[0-9]*}
        has_version "$spec" "$v" || die "the archive has no $spec $kver to go with $kpkg (mid-update? try again later)"
        echo "$role $spec $v $(field "$spec" "$v" SHA256)"
    done <<SET
image $kpkg
headers $headers
common $common:all
kbuild $kbuild:$HOST_ARCH
source $source:all
SET
}

# The archive's current kernel package (what linux-image-riscv64 depends on).
current_kernel() {
    apt_ apt-cache depends linux-image-riscv64 |
        sed -n 's/^ *Depends: \(linux-image-[0-9].*-riscv64\)$/\1/p' | head -1
}

# The set to use ("ROLE SPEC VERSION SHA256 HOW" lines): the pins when
# every one of them is cached or in the archive; else the archive's current
# kernel and its packages, all of them, with a warning (never a kernel of
# one version with headers of another).
resolve_kernel() {
    local role spec version sha missing pass kpkg kver all=1
    while read -r role spec version sha; do
        cached "$spec" "$version" "$sha" || { all=0; break; }
    done < <(kernel_pins)
    if [ "$all" = 1 ]; then kernel_pins | sed 's/$/ pinned/'; return; fi
    ensure_lists
    for pass in 1 2; do
        missing=""
        while read -r role spec version sha; do
            cached "$spec" "$version" "$sha" || has_version "$spec" "$version" || missing+=" $spec=$version"
        done < <(kernel_pins)
        if [ -z "$missing" ]; then kernel_pins | sed 's/$/ pinned/'; return; fi
        [ "$pass" = 2 ] || update
    done
    kpkg=$(current_kernel)
    [ -n "$kpkg" ] || die "pinned kernel packages are gone ($missing) and linux-image-riscv64 resolves to nothing"
    kver=$(candidate "$kpkg")
    echo "linux/debs: warning: pinned kernel packages are no longer in Debian $SUITE:$missing" >&2
    echo "  Using the archive's $kpkg $kver with its headers, kbuild and source (all of them)." >&2
    echo "  Record it with 'make linux-pin' and commit scripts/linux/versions.env." >&2
    kernel_set "$kpkg" "$kver" | sed 's/$/ fallback/'
}

# Print the .deb of each ROLE (image headers common kbuild source) of the
# resolved kernel set.
fetch_kernel() {
    local set want role spec version sha how found
    set=$(resolve_kernel)
    [ -n "$set" ] || exit 1
    # Lock entries of another kernel set are stale now.
    lock_write "$(echo "$set" | awk 'BEGIN { printf "$1 !~ /^linux-(image|headers|kbuild|source)-/" }
        { printf " || $1 == \"%s\"", $2 }')"
    for want in "$@"; do
        found=""
        while read -r role spec version sha how; do
            [ "$role" = "$want" ] || continue
            found=1
            fetch_exact "$spec" "$version" "$sha" "$how"
        done <<<"$set"
        [ -n "$found" ] || die "no kernel package with role $want (image headers common kbuild source)"
    done
}

pin() {
    update
    local kpkg kver kset
    kpkg=$(current_kernel)
    [ -n "$kpkg" ] || die "cannot resolve linux-image-riscv64 to a versioned kernel package"
    kver=$(candidate "$kpkg")
    kset=$(kernel_set "$kpkg" "$kver")
    [ -n "$kset" ] || exit 1
    # The rootfs packages: busybox-static, dropbear-bin and what dropbear-bin
    # depends on (its shared libraries come from these), riscv64 only.
    local names name ver sha rows="" out
    names=$( { echo busybox-static; apt_ apt-cache depends --recurse --no-recommends --no-suggests \
        --no-conflicts --no-breaks --no-replaces --no-enhances dropbear-bin | grep -v '^ '; } |
        grep -v ':' | sort -u)
    for name in $names; do
        ver=$(candidate "$name")
        sha=$(field "$name" "$ver" SHA256)
        rows+="$name $ver $sha"$'\n'
    done
    out=$(mktemp)
    {
        sed -n '1,/^# ---- pins/p' "$VERSIONS"
        echo "$kset" | awk '$1 == "image" { print "KERNEL_PKG=" $2; print "KERNEL_VERSION=" $3; print "KERNEL_SHA256=" $4 }'
        echo "# The kernel's build packages (same upload): role name[:arch] version sha256"
        echo "KERNEL_DEBS=\""
        echo "$kset" | awk '$1 != "image"'
        echo "\""
        echo "# name version sha256"
        echo "ROOTFS_DEBS=\""
        printf '%s' "$rows"
        echo "\""
    } > "$out"
    chmod 644 "$out"
    mv "$out" "$VERSIONS"
    echo "linux/debs: pinned $kpkg $kver (with its headers, kbuild and source) and $(echo "$names" | wc -w) rootfs packages in $VERSIONS" >&2
}

cmd=${1:-}
shift || true
# One debs.sh at a time per build tree (make -j may run the kernel's and
# the module's builds side by side).
exec 9>"$LINUX_BUILD/.debs.lock"
flock 9
case "$cmd" in
    update) update ;;
    fetch) setup_root; for n in "$@"; do fetch_one "$n"; done ;;
    kernel) setup_root; fetch_kernel "$@" ;;
    pin) pin ;;
    *) die "usage: debs.sh update | fetch NAME... | kernel ROLE... | pin" ;;
esac
