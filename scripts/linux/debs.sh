#!/usr/bin/env bash
# Debian riscv64 packages through a PRIVATE apt root under build/linux/apt.
# The system's apt setup (sources, keys, lists, cache, dpkg status) is never
# read or written: APT_CONFIG points apt at a config of our own whose Dir is
# the private root, so even /etc/apt/apt.conf.d is not consulted.
#
#   debs.sh update           refresh the package lists (trixie main, riscv64)
#   debs.sh fetch NAME...    print the path of each pinned .deb (see
#                            versions.env), downloading it if not cached and
#                            checking its sha256
#   debs.sh pin              rewrite versions.env with the archive's current
#                            versions (kernel: resolves linux-image-riscv64)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
VERSIONS=$HERE/versions.env
# shellcheck source=versions.env
. "$VERSIONS"
LINUX_BUILD=$(mkdir -p "${LINUX_BUILD:-build/linux}" && cd "${LINUX_BUILD:-build/linux}" && pwd)
ROOT=$LINUX_BUILD/apt
DEBS=$LINUX_BUILD/debs
KEYRING=${DEBIAN_KEYRING:-/usr/share/keyrings/debian-archive-keyring.gpg}

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
APT::Architectures { "riscv64"; };
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
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
CONF
    echo "deb [arch=riscv64 signed-by=$KEYRING] $MIRROR $SUITE main" > "$ROOT/etc/apt/sources.list"
}

apt_() { APT_CONFIG=$ROOT/apt.conf "$@"; }

update() {
    setup_root
    echo "linux/debs: updating $SUITE riscv64 package lists in $ROOT" >&2
    apt_ apt-get -q update >&2 || die "apt-get update failed (is $MIRROR reachable?)"
    touch "$ROOT/updated"
}

# Lists are refreshed when missing or older than a day.
ensure_lists() {
    setup_root
    if [ -z "$(find "$ROOT/updated" -mmin -1440 2>/dev/null)" ]; then update; fi
}

# The pinned "VERSION SHA256" of a package, from versions.env.
pinned() {
    local name=$1
    if [ "$name" = "$KERNEL_PKG" ]; then echo "$KERNEL_VERSION $KERNEL_SHA256"; return; fi
    echo "$ROOTFS_DEBS" | awk -v n="$name" '$1 == n { print $2, $3; found=1 } END { exit !found }' ||
        die "$name is not pinned in $VERSIONS"
}

sha_of() { sha256sum "$1" | cut -d' ' -f1; }

# apt-cache show NAME=VERSION exits 0 even for a missing version: ask madison.
has_version() {
    # madison right-aligns short versions in their column: trim before comparing.
    apt_ apt-cache madison "$1" 2>/dev/null |
        awk -F'[|]' -v v="$2" '{ gsub(/^[ \t]+|[ \t]+$/, "", $2) } $2 == v { f=1 } END { exit !f }'
}

fetch_one() {
    local name=$1 pin version sha file tmp
    pin=$(pinned "$name")
    read -r version sha <<<"$pin"
    file=$DEBS/${name}_$(echo "$version" | tr ':' '+')_riscv64.deb
    if [ -f "$file" ] && [ "$(sha_of "$file")" = "$sha" ]; then echo "$file"; return; fi
    ensure_lists
    if ! has_version "$name" "$version"; then
        update
        if ! has_version "$name" "$version"; then
            # Debian keeps only the current version of each package in
            # $SUITE (and a new kernel ABI renames the kernel package). Use
            # what the archive has now -- apt checks it against the signed
            # index -- and say how to record it as the new pin.
            local old="$name $version"
            if [ "$name" = "$KERNEL_PKG" ]; then
                name=$(apt_ apt-cache depends linux-image-riscv64 |
                    sed -n 's/^ *Depends: \(linux-image-[0-9].*-riscv64\)$/\1/p' | head -1)
            fi
            version=$(apt_ apt-cache policy "$name" 2>/dev/null | sed -n 's/^ *Candidate: //p')
            [ -n "$name" ] && [ -n "$version" ] && [ "$version" != "(none)" ] ||
                die "pinned $old is no longer in Debian $SUITE and nothing replaces it"
            echo "linux/debs: warning: pinned $old is no longer in Debian $SUITE; using $name $version." >&2
            echo "  Record it with 'make linux-pin' and commit scripts/linux/versions.env." >&2
            sha=""
            file=$DEBS/${name}_$(echo "$version" | tr ':' '+')_riscv64.deb
            if [ -f "$file" ]; then echo "$file"; return; fi
        fi
    fi
    tmp=$(mktemp -d "$DEBS/.dl.XXXXXX")
    (cd "$tmp" && apt_ apt-get -q download "$name=$version" >&2) || { rm -rf "$tmp"; die "download of $name $version failed"; }
    local got
    got=$(ls "$tmp"/*.deb)
    if [ -n "$sha" ] && [ "$(sha_of "$got")" != "$sha" ]; then
        rm -rf "$tmp"
        die "sha256 of $name $version is not the pinned $sha (run 'make linux-pin' if the archive rebuilt it)"
    fi
    mv "$got" "$file"
    rm -rf "$tmp"
    echo "$file"
}

field() { apt_ apt-cache show "$1=$2" | sed -n "s/^$3: //p" | head -1; }

pin() {
    update
    local meta=linux-image-riscv64 kpkg kver ksha out
    kpkg=$(apt_ apt-cache depends "$meta" | sed -n 's/^ *Depends: \(linux-image-[0-9].*-riscv64\)$/\1/p' | head -1)
    [ -n "$kpkg" ] || die "cannot resolve $meta to a versioned kernel package"
    kver=$(apt_ apt-cache policy "$kpkg" | sed -n 's/^ *Candidate: //p')
    ksha=$(field "$kpkg" "$kver" SHA256)
    # The rootfs packages: busybox-static, dropbear-bin and what dropbear-bin
    # depends on (its shared libraries come from these).
    local names name ver sha rows=""
    names=$( { echo busybox-static; apt_ apt-cache depends --recurse --no-recommends --no-suggests \
        --no-conflicts --no-breaks --no-replaces --no-enhances dropbear-bin | grep -v '^ '; } | sort -u)
    for name in $names; do
        ver=$(apt_ apt-cache policy "$name" | sed -n 's/^ *Candidate: //p')
        sha=$(field "$name" "$ver" SHA256)
        rows+="$name $ver $sha"$'\n'
    done
    out=$(mktemp)
    {
        sed -n '1,/^# ---- pins/p' "$VERSIONS"
        echo "KERNEL_PKG=$kpkg"
        echo "KERNEL_VERSION=$kver"
        echo "KERNEL_SHA256=$ksha"
        echo "# name version sha256"
        echo "ROOTFS_DEBS=\""
        printf '%s' "$rows"
        echo "\""
    } > "$out"
    chmod 644 "$out"
    mv "$out" "$VERSIONS"
    echo "linux/debs: pinned $kpkg $kver and $(echo "$names" | wc -w) rootfs packages in $VERSIONS" >&2
}

cmd=${1:-}
shift || true
case "$cmd" in
    update) update ;;
    fetch) setup_root; for n in "$@"; do fetch_one "$n"; done ;;
    pin) pin ;;
    *) die "usage: debs.sh update | fetch NAME... | pin" ;;
esac
