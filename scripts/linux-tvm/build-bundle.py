#!/usr/bin/env python3
"""Builds the Linux TVM bundle (docs/linux-tvm.md): a tiny initramfs
(busybox-static + /init + /etc/tvm-check), the TVM's device tree (tvm.dts
with the initrd's GPAs filled in, compiled by dtc) and the bundle file

    0   magic b"SALUSTVM"
    8   u32 version (2)
    12  u32 count (4)
    16  kernel: u64 offset, u64 size
    32  initrd: u64 offset, u64 size
    48  dtb:    u64 offset, u64 size
    64  shim:   u64 offset, u64 size

(little-endian; offsets from the bundle's start, each 2 MiB aligned so the
host can measure 2 MiB pages straight from it). crates/tvm-bundle reads it
(tellus and salus-vmm); the layout constants below are its.

Usage: build-bundle.py --image Image --shim tvm-shim.bin --busybox-deb DEB --out-dir DIR [--bootargs-extra ARGS]
Writes DIR/bundle.bin, DIR/initramfs.cpio.gz, DIR/tvm.dtb, DIR/tvm-check.md5.
"""

import argparse
import gzip
import hashlib
import os
import struct
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "linux"))
from mkinitramfs import Cpio  # noqa: E402

RAM_BASE = 0x8000_0000
RAM_SIZE = 256 << 20
KERNEL_GPA = RAM_BASE + (2 << 20)
INITRD_GPA = RAM_BASE + RAM_SIZE - (64 << 20)
DTB_GPA = RAM_BASE + RAM_SIZE - (2 << 20)
ALIGN = 2 << 20
MAGIC = b"SALUSTVM"
VERSION = 3
SHIM_MAX = 64 << 10
# vCPU k's IMSIC file at IMSIC_GPA + k * 4 KiB (crates/tvm-bundle).
IMSIC_GPA = 0x2800_0000
IMSIC_NODE = """		imsics@28000000 {
			compatible = "qemu,imsics", "riscv,imsics";
			reg = <0x0 0x28000000 0x0 0x2000>;
			interrupts-extended = <&cpu0_intc 9>, <&cpu1_intc 9>;
			interrupt-controller;
			#interrupt-cells = <0>;
			msi-controller;
			riscv,num-ids = <255>;
		};
"""


def initramfs(busybox_deb, init):
    with tempfile.TemporaryDirectory() as d:
        subprocess.run(["dpkg-deb", "-x", busybox_deb, d], check=True)
        bb = None
        for p in ("usr/bin/busybox", "bin/busybox"):
            if os.path.isfile(os.path.join(d, p)):
                bb = open(os.path.join(d, p), "rb").read()
        if bb is None:
            sys.exit("build-bundle: no busybox in " + busybox_deb)
    c = Cpio()
    for dd in ("bin", "proc", "sys", "dev", "etc", "tmp", "root"):
        c.dir(dd)
    c.chardev("dev/console", 5, 1)
    c.chardev("dev/null", 1, 3, 0o666)
    c.file("bin/busybox", bb, 0o755)
    c.symlink("bin/sh", "busybox")
    c.file("init", open(init, "rb").read(), 0o755)
    # A file whose checksum the TVM prints: the test compares it with ours.
    check = b"".join(b"salus tvm check line %04d\n" % i for i in range(200))
    c.file("etc/tvm-check", check)
    return gzip.compress(c.pack(), mtime=0), hashlib.md5(check).hexdigest()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--image", required=True)
    ap.add_argument("--shim", required=True, help="tvm-shim.bin (make tvm-shim)")
    ap.add_argument("--busybox-deb", required=True)
    ap.add_argument("--out-dir", required=True)
    ap.add_argument("--bootargs-extra", default="", help="appended to the kernel command line (e.g. salus.shell)")
    a = ap.parse_args()
    os.makedirs(a.out_dir, exist_ok=True)
    kernel = open(a.image, "rb").read()
    shim = open(a.shim, "rb").read()
    if not 0 < len(shim) <= SHIM_MAX:
        sys.exit(f"build-bundle: shim of {len(shim)} bytes (1..{SHIM_MAX})")
    rd, md5 = initramfs(a.busybox_deb, os.path.join(HERE, "init"))
    if INITRD_GPA + len(rd) > DTB_GPA:
        sys.exit(f"build-bundle: initramfs of {len(rd)} bytes does not fit below the DTB")
    # The kernel's effective size (Image header, image_size at +16) must
    # end below the initrd.
    (image_size,) = struct.unpack_from("<Q", kernel, 16)
    if KERNEL_GPA + max(image_size, len(kernel)) > INITRD_GPA:
        sys.exit(f"build-bundle: kernel of {image_size} bytes overlaps the initrd")
    dts = open(os.path.join(HERE, "tvm.dts")).read()
    dts = dts.replace("@INITRD_START@", hex(INITRD_GPA)).replace("@INITRD_END@", hex(INITRD_GPA + len(rd)))
    dts = dts.replace("@BOOTARGS_EXTRA@", (" " + a.bootargs_extra) if a.bootargs_extra else "")

    def compile_dts(name, text):
        dts_out = os.path.join(a.out_dir, name + ".dts")
        dtb_out = os.path.join(a.out_dir, name + ".dtb")
        open(dts_out, "w").write(text)
        subprocess.run(["dtc", "-q", "-I", "dts", "-O", "dtb", "-o", dtb_out, dts_out], check=True)
        return open(dtb_out, "rb").read()

    dtb = compile_dts("tvm", dts.replace("@ISA_AIA@", "").replace("@IMSIC@\n", ""))
    dtb_aia = compile_dts("tvm-aia", dts.replace("@ISA_AIA@", "_ssaia").replace("@IMSIC@\n", IMSIC_NODE))

    parts = [kernel, rd, dtb, shim, dtb_aia]
    out = bytearray(ALIGN)
    hdr = bytearray(MAGIC + struct.pack("<II", VERSION, len(parts)))
    for p in parts:
        off = len(out)
        hdr += struct.pack("<QQ", off, len(p))
        out += p
        out += b"\0" * (-len(out) % ALIGN)
    out[: len(hdr)] = hdr
    open(os.path.join(a.out_dir, "initramfs.cpio.gz"), "wb").write(rd)
    open(os.path.join(a.out_dir, "tvm-check.md5"), "w").write(md5 + "\n")
    open(os.path.join(a.out_dir, "bundle.bin"), "wb").write(out)
    print(f"linux-tvm: bundle {len(out) >> 20} MiB: kernel {len(kernel)}, initrd {len(rd)}, dtb {len(dtb)}, shim {len(shim)} bytes")


if __name__ == "__main__":
    main()
