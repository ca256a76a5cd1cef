#!/usr/bin/env bash
# Boot the Linux host image directly on QEMU (no Salus) and check it:
# SALUS-INIT-READY with nproc = NCPU, eth0 has an address, SSH (key auth)
# runs `uname -a; nproc`, the virtio-blk and NVMe disks are /dev/vda and
# /dev/nvme0n1 and read back what the host wrote into them.
# This is the baseline that `make bench` compares Salus against.
#
#   boot-bare.sh            the full check; exit 0 when all of it passed
#   boot-bare.sh --bench    boot with salus.bench: time to SALUS-BENCH-BOOTED
#                           and to QEMU's exit (the guest powers off at once)
#   boot-bare.sh --run      boot interactively on this terminal (no timeout;
#                           Ctrl-A X quits), SSH on 127.0.0.1:SSH_PORT
#
# Environment (all optional): QEMU_BIN, LINUX_IMAGE, LINUX_INITRD, NCPU (2),
# MEM_SIZE (2048), SSH_PORT (7722; another free port if that one is taken),
# BOOT_TIMEOUT (300 s), BARE_E1000E=1 (add an e1000e NIC as eth1),
# LINUX_BUILD (build/linux), BARE_LOG (the serial log, default
# $LINUX_BUILD/boot-bare.log).
set -euo pipefail
LINUX_BUILD=${LINUX_BUILD:-build/linux}
QEMU_BIN=${QEMU_BIN:-qemu-system-riscv64}
IMAGE=${LINUX_IMAGE:-$LINUX_BUILD/Image}
INITRD=${LINUX_INITRD:-$LINUX_BUILD/initramfs.cpio.gz}
NCPU=${NCPU:-2}
MEM=${MEM_SIZE:-2048}
TIMEOUT=${BOOT_TIMEOUT:-300}
LOG=${BARE_LOG:-$LINUX_BUILD/boot-bare.log}
KEY=$LINUX_BUILD/ssh/id_ed25519
case "${1:-}" in
    --bench) MODE=bench ;;
    --run) MODE=run ;;
    '') MODE=check ;;
    *) echo "usage: boot-bare.sh [--bench | --run]" >&2; exit 2 ;;
esac

fail() { echo "boot-bare: FAIL: $*" >&2; exit 1; }
trap 'echo "boot-bare: FAIL: line $LINENO: \"$BASH_COMMAND\" exited $?" >&2' ERR
for f in "$IMAGE" "$INITRD"; do [ -f "$f" ] || fail "missing $f (make linux rootfs)"; done

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
PORT=${SSH_PORT:-7722}
if ! port_free "$PORT"; then
    PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
fi

# Two small raw disks, each starting with a marker the guest must read back.
mkdisk() {
    truncate -s 64M "$1"
    printf '%s' "$2" | dd of="$1" conv=notrunc status=none
}
mkdisk "$LINUX_BUILD/disk.img" SALUS-VDA-OK
mkdisk "$LINUX_BUILD/nvme.img" SALUS-NVME-OK

append="console=ttyS0 earlycon=sbi"
[ $MODE = bench ] && append="$append salus.bench"
args=(-M virt,aia=aplic-imsic -cpu rv64 -smp "$NCPU" -m "$MEM" -nographic -bios default
      -kernel "$IMAGE" -initrd "$INITRD" -append "$append"
      -device virtio-net-pci,netdev=n0
      -netdev "user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:$PORT-:22"
      -drive "file=$LINUX_BUILD/disk.img,if=none,id=d0,format=raw" -device virtio-blk-pci,drive=d0
      -drive "file=$LINUX_BUILD/nvme.img,if=none,id=d1,format=raw" -device nvme,serial=salus0,drive=d1)
if [ "${BARE_E1000E:-0}" = 1 ]; then
    args+=(-device e1000e,netdev=n1 -netdev user,id=n1,restrict=on,net=10.0.3.0/24)
fi

echo "boot-bare: $QEMU_BIN ${args[*]}" >&2
if [ $MODE = run ]; then
    echo "boot-bare: ssh -i $KEY -p $PORT root@127.0.0.1 (password: root)" >&2
    exec "$QEMU_BIN" "${args[@]}"
fi
# Empty the log now: the background job below opens it only later, and
# wait_for must not see the previous run's lines.
: > "$LOG"
start=$(date +%s.%N)
timeout "$TIMEOUT" "$QEMU_BIN" "${args[@]}" </dev/null >"$LOG" 2>&1 &
QPID=$!
cleanup() {
    if kill -0 "$QPID" 2>/dev/null; then
        kill "$QPID" 2>/dev/null || true
        wait "$QPID" 2>/dev/null || true
    fi
}
trap cleanup EXIT

elapsed() { echo "$(date +%s.%N) $start" | awk '{ printf "%.2f", $1 - $2 }'; }

# Wait for a line in the serial log; fail if QEMU exits first.
wait_for() {
    while ! grep -q "$1" "$LOG" 2>/dev/null; do
        kill -0 "$QPID" 2>/dev/null || { tail -20 "$LOG" >&2; fail "QEMU exited before '$1'"; }
        sleep 0.1
    done
}

if [ $MODE = bench ]; then
    wait_for SALUS-BENCH-BOOTED
    t_boot=$(elapsed)
    rc=0
    wait "$QPID" || rc=$?
    t_exit=$(elapsed)
    [ $rc -eq 0 ] || fail "QEMU exited with $rc after SALUS-BENCH-BOOTED"
    echo "bench: linux_bare_boot_booted $t_boot s"
    echo "bench: linux_bare_boot_poweroff $t_exit s"
    exit 0
fi

wait_for SALUS-INIT-READY
t_ready=$(elapsed)
ready=$(grep -a SALUS-INIT-READY "$LOG" | tail -1 | tr -d '\r')
echo "boot-bare: $ready (after $t_ready s)"
case "$ready" in *"nproc=$NCPU "*) ;; *) fail "nproc is not $NCPU" ;; esac
eth0=$(echo "$ready" | sed -n 's/.* eth0=\([^ ]*\).*/\1/p')
case "$eth0" in ''|none) fail "eth0 has no address" ;; esac

[ -f "$KEY" ] || fail "no test key $KEY (make rootfs makes it)"
command -v ssh >/dev/null || fail "no ssh client (apt-get install openssh-client)"
ssh_() {
    ssh -i "$KEY" -p "$PORT" -o BatchMode=yes -o StrictHostKeyChecking=no \
        -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -o ConnectTimeout=60 \
        root@127.0.0.1 "$@"
}
: > "$LOG.ssh"
out=""
for _ in 1 2 3 4 5; do
    if out=$(ssh_ 'uname -a; nproc; for d in vda nvme0n1; do
            [ -b /dev/$d ] && echo "disk $d $(cat /sys/block/$d/size) $(head -c 16 /dev/$d | tr -d "\0")"; done' 2>>"$LOG.ssh"); then
        break
    fi
    out=""
    sleep 2
done
t_ssh=$(elapsed)
[ -n "$out" ] || fail "ssh -p $PORT root@127.0.0.1 did not work (see $LOG.ssh and $LOG)"
echo "$out" | sed 's/^/boot-bare: guest: /'
echo "$out" | grep -q '^Linux .* riscv64' || fail "uname -a did not answer"
[ "$(echo "$out" | sed -n 2p)" = "$NCPU" ] || fail "nproc over ssh is not $NCPU"
echo "$out" | grep -q '^disk vda 131072 SALUS-VDA-OK' || fail "/dev/vda missing or unreadable"
echo "$out" | grep -q '^disk nvme0n1 131072 SALUS-NVME-OK' || fail "/dev/nvme0n1 missing or unreadable"
if [ "${BARE_E1000E:-0}" = 1 ]; then
    echo "$ready" | grep -q ' eth1=[0-9]' || fail "eth1 (e1000e) has no address"
fi

ssh_ 'poweroff -f' >/dev/null 2>&1 || true
for _ in $(seq 50); do kill -0 "$QPID" 2>/dev/null || break; sleep 0.1; done
echo "boot-bare: OK: init ready after $t_ready s, ssh done after $t_ssh s (port $PORT, log $LOG)"
echo "bench: linux_bare_init_ready $t_ready s"
