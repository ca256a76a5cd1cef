#!/usr/bin/env python3
"""Build the Salus Linux host initramfs (a gzip'd newc cpio) from unpacked
Debian riscv64 packages and the kernel's modules tree.

No root, no cpio tool and no riscv64 toolchain needed: ELF files (DT_NEEDED
of dropbear, .modinfo of the kernel modules) are read here, device nodes are
written straight into the archive, and the output is reproducible (sorted
entries, mtime 0, gzip without timestamp).
"""

import argparse
import gzip
import lzma
import os
import struct
import sys

MULTIARCH = "riscv64-linux-gnu"


def die(msg):
    sys.exit(f"mkinitramfs: {msg}")


# ---- ELF ------------------------------------------------------------------

class Elf:
    """The little of ELF64 little-endian needed here: sections by name,
    DT_NEEDED and the program interpreter."""

    def __init__(self, data, what):
        if data[:4] != b"\x7fELF":
            die(f"{what}: not an ELF file")
        if data[4] != 2 or data[5] != 1:
            die(f"{what}: not ELF64 little-endian")
        self.data = data
        self.what = what
        (self.machine,) = struct.unpack_from("<H", data, 18)
        phoff, shoff = struct.unpack_from("<QQ", data, 32)
        phentsize, phnum, shentsize, shnum, shstrndx = struct.unpack_from("<HHHHH", data, 54)
        self.phdrs = [struct.unpack_from("<IIQQQQQQ", data, phoff + i * phentsize) for i in range(phnum)]
        raw = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize) for i in range(shnum)]
        self.sections = {}
        if raw:
            stroff = raw[shstrndx][4]
            for sh in raw:
                self.sections[self._cstr(stroff + sh[0])] = sh

    def _cstr(self, off):
        end = self.data.index(b"\0", off)
        return self.data[off:end].decode()

    def section(self, name):
        sh = self.sections.get(name)
        if sh is None:
            return None
        off, size = sh[4], sh[5]
        return self.data[off:off + size]

    def interp(self):
        for p_type, _f, off, _v, _p, filesz, _m, _a in self.phdrs:
            if p_type == 3:  # PT_INTERP
                return self.data[off:off + filesz].rstrip(b"\0").decode()
        return None

    def needed(self):
        dyn = self.sections.get(".dynamic")
        dynstr = self.sections.get(".dynstr")
        if dyn is None or dynstr is None:
            return []
        out = []
        for i in range(dyn[5] // 16):
            tag, val = struct.unpack_from("<qQ", self.data, dyn[4] + i * 16)
            if tag == 0:
                break
            if tag == 1:  # DT_NEEDED
                out.append(self._cstr(dynstr[4] + val))
        return out

    def modinfo(self):
        raw = self.section(".modinfo")
        if raw is None:
            die(f"{self.what}: no .modinfo section")
        info = {}
        for item in raw.split(b"\0"):
            if b"=" in item:
                k, v = item.decode(errors="replace").split("=", 1)
                info.setdefault(k, []).append(v)
        return info


# ---- cpio (newc) ----------------------------------------------------------

class Cpio:
    def __init__(self):
        self.entries = {}  # path -> (mode, data, rdev)

    def add(self, path, mode, data=b"", rdev=(0, 0)):
        path = path.strip("/")
        parent = os.path.dirname(path)
        if parent and parent not in self.entries:
            self.dir(parent)
        self.entries[path] = (mode, data, rdev)

    def dir(self, path, perm=0o755):
        self.add(path, 0o040000 | perm)

    def file(self, path, data, perm=0o644):
        self.add(path, 0o100000 | perm, data)

    def symlink(self, path, target):
        self.add(path, 0o120000 | 0o777, target.encode())

    def chardev(self, path, major, minor, perm=0o600):
        self.add(path, 0o020000 | perm, b"", (major, minor))

    def exists(self, path):
        return path.strip("/") in self.entries

    def pack(self):
        out = bytearray()
        ino = 1

        def entry(name, mode, data, rdev, nlink):
            nonlocal ino
            nameb = name.encode() + b"\0"
            hdr = "070701" + "".join(f"{x:08x}" for x in (
                ino, mode, 0, 0, nlink, 0, len(data), 0, 0, rdev[0], rdev[1], len(nameb), 0))
            ino += 1
            out.extend(hdr.encode() + nameb)
            out.extend(b"\0" * (-len(out) % 4))
            out.extend(data)
            out.extend(b"\0" * (-len(out) % 4))

        for path in sorted(self.entries):
            mode, data, rdev = self.entries[path]
            entry(path, mode, data, rdev, 2 if mode & 0o040000 else 1)
        entry("TRAILER!!!", 0, b"", (0, 0), 1)
        return bytes(out)


# ---- packages ----------------------------------------------------------------

def resolve_in(root, path, depth=0):
    """Follow symlinks of `path` (absolute in the package tree) inside `root`."""
    if depth > 16:
        die(f"symlink loop at {path}")
    cur = "/"
    parts = [p for p in path.split("/") if p]
    for i, part in enumerate(parts):
        nxt = os.path.join(cur, part)
        host = root + nxt
        if os.path.islink(host):
            target = os.readlink(host)
            base = target if target.startswith("/") else os.path.normpath(os.path.join(cur, target))
            rest = "/".join(parts[i + 1:])
            return resolve_in(root, os.path.join(base, rest) if rest else base, depth + 1)
        cur = nxt
    return cur


def libdirs():
    return [f"/usr/lib/{MULTIARCH}", "/usr/lib", f"/lib/{MULTIARCH}", "/lib"]


def add_binary(cpio, root, path, dest=None, seen=None):
    """Add an ELF from the package tree plus, recursively, its interpreter and
    DT_NEEDED libraries (installed under /usr/lib/<multiarch>)."""
    seen = set() if seen is None else seen
    real = resolve_in(root, path)
    host = root + real
    if not os.path.isfile(host):
        die(f"{path} is not in the unpacked packages ({root})")
    with open(host, "rb") as f:
        data = f.read()
    elf = Elf(data, path)
    if elf.machine != 243:
        die(f"{path}: not a RISC-V ELF (e_machine {elf.machine})")
    cpio.file(dest or path, data, 0o755)
    interp = elf.interp()
    if interp and interp not in seen:
        base = os.path.basename(interp)
        seen.update((interp, base))
        add_binary(cpio, root, f"/usr/lib/{MULTIARCH}/{base}", seen=seen)
        # Debian's loader path /lib/ld-linux-*.so.1 -> usr/lib/ (merged /usr).
        cpio.symlink(f"usr/lib/{base}", f"{MULTIARCH}/{base}")
    for lib in elf.needed():
        if lib in seen:
            continue
        seen.add(lib)
        for d in libdirs():
            if os.path.lexists(f"{root}{d}/{lib}"):
                add_binary(cpio, root, f"{d}/{lib}", dest=f"/usr/lib/{MULTIARCH}/{lib}", seen=seen)
                break
        else:
            die(f"{path} needs {lib}, which no pinned package provides "
                "(add its package to ROOTFS_DEBS in versions.env, or run make linux-pin)")


# ---- kernel modules ---------------------------------------------------------

def module_index(moddir):
    idx = {}
    for dirpath, _dirs, files in os.walk(os.path.join(moddir, "kernel")):
        for f in files:
            for ext in (".ko.xz", ".ko.zst", ".ko.gz", ".ko"):
                if f.endswith(ext):
                    idx[f[:-len(ext)].replace("-", "_")] = os.path.join(dirpath, f)
                    break
    return idx


def read_module(path):
    if path.endswith(".ko.xz"):
        with lzma.open(path) as f:
            return f.read()
    if path.endswith(".ko.gz"):
        with gzip.open(path) as f:
            return f.read()
    if path.endswith(".ko.zst"):
        die(f"{path}: zstd modules are not supported")
    with open(path, "rb") as f:
        return f.read()


def builtin_modules(moddir):
    names = set()
    try:
        with open(os.path.join(moddir, "modules.builtin")) as f:
            for line in f:
                base = os.path.basename(line.strip())
                if base.endswith(".ko"):
                    names.add(base[:-3].replace("-", "_"))
    except FileNotFoundError:
        pass
    return names


def modules_in_order(moddir, wanted):
    """The wanted modules and everything they depend on (`depends=` and
    `softdep=pre:` of .modinfo), dependencies first."""
    idx = module_index(moddir)
    builtin = builtin_modules(moddir)
    order, state, blobs = [], {}, {}

    def visit(name, optional=False):
        name = name.replace("-", "_")
        if name in builtin or state.get(name) == "done":
            return
        if state.get(name) == "active":
            die(f"module dependency cycle at {name}")
        if name not in idx:
            if optional:
                return
            die(f"module {name} is neither in {moddir} nor built in")
        state[name] = "active"
        data = read_module(idx[name])
        info = Elf(data, idx[name]).modinfo()
        for dep in ",".join(info.get("depends", [])).split(","):
            if dep:
                visit(dep)
        for soft in info.get("softdep", []):
            words = soft.split()
            if words and words[0] == "pre:":
                for dep in words[1:]:
                    if dep == "post:":
                        break
                    visit(dep, optional=True)
        state[name] = "done"
        blobs[name] = (os.path.relpath(idx[name], moddir), data)
        order.append(name)

    for w in wanted:
        visit(w)
    return order, blobs


# ---- the image ----------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--debs-root", required=True, help="the pinned packages unpacked together")
    ap.add_argument("--moddir", required=True, help="lib/modules/<kver> of the kernel")
    ap.add_argument("--modules", required=True, help="comma-separated modules to load at boot")
    ap.add_argument("--init", required=True)
    ap.add_argument("--udhcpc-script", required=True)
    ap.add_argument("--password-hash", required=True, help="crypt(3) hash of root's password")
    ap.add_argument("--authorized-key", help="public key for /root/.ssh/authorized_keys")
    ap.add_argument("--bin", action="append", default=[],
                    help="a static riscv64 program for /usr/bin (repeatable)")
    ap.add_argument("--extra-module", action="append", default=[],
                    help="an out-of-tree module (.ko) of this kernel for "
                    "/usr/lib/modules/<kver>/extra/ (repeatable; /init loads it)")
    ap.add_argument("--file", action="append", default=[], metavar="DEST=SRC",
                    help="a data file to put at DEST in the image (repeatable)")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()

    root = os.path.abspath(a.debs_root)
    kver = os.path.basename(os.path.normpath(a.moddir))
    c = Cpio()
    # Merged-/usr layout, like Debian.
    for d in ("usr/bin", "usr/sbin", f"usr/lib/{MULTIARCH}", "dev", "proc", "sys", "run",
              "etc/dropbear", "etc/salus", "mnt", "var/log"):
        c.dir(d)
    c.dir("tmp", 0o1777)
    c.dir("root", 0o700)
    for link in ("bin", "sbin", "lib"):
        c.symlink(link, f"usr/{link}")
    c.symlink("var/run", "../run")
    c.chardev("dev/console", 5, 1)
    c.chardev("dev/null", 1, 3, 0o666)

    with open(a.init, "rb") as f:
        c.file("init", f.read(), 0o755)
    with open(a.udhcpc_script, "rb") as f:
        c.file("usr/share/udhcpc/default.script", f.read(), 0o755)

    # busybox-static: the applet links are made by /init (busybox --install).
    add_binary(c, root, "/usr/bin/busybox")
    c.symlink("usr/bin/sh", "busybox")
    # dropbear and its shared libraries (DT_NEEDED, recursively).
    seen = set()
    add_binary(c, root, "/usr/sbin/dropbear", seen=seen)
    add_binary(c, root, "/usr/bin/dropbearkey", seen=seen)

    for b in a.bin:
        with open(b, "rb") as f:
            data = f.read()
        elf = Elf(data, b)
        if elf.machine != 243:
            die(f"{b}: not a RISC-V ELF (e_machine {elf.machine})")
        if elf.interp() or elf.needed():
            die(f"{b}: not a static program (it needs {elf.interp() or elf.needed()})")
        c.file("usr/bin/" + os.path.basename(b), data, 0o755)

    for spec in a.file:
        dest, sep, src = spec.partition("=")
        if not sep or not dest.strip("/") or not src:
            die(f"--file {spec}: expected DEST=SRC")
        with open(src, "rb") as f:
            c.file(dest, f.read())

    c.file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n")
    c.file("etc/group", b"root:x:0:\ntty:x:5:\n")
    c.file("etc/shadow", f"root:{a.password_hash}:19000:0:99999:7:::\n".encode(), 0o600)
    c.file("etc/shells", b"/bin/sh\n/usr/bin/sh\n")
    c.file("etc/nsswitch.conf", b"passwd: files\ngroup: files\nshadow: files\nhosts: files dns\n")
    c.file("etc/hostname", b"salus-host\n")
    c.file("etc/hosts", b"127.0.0.1 localhost salus-host\n")
    c.file("etc/profile", b"export PATH=/usr/sbin:/usr/bin:/sbin:/bin\n"
           b"export PS1='\\h:\\w\\$ '\n")
    if a.authorized_key:
        with open(a.authorized_key, "rb") as f:
            key = f.read()
        c.dir("root/.ssh", 0o700)
        c.file("root/.ssh/authorized_keys", key, 0o600)

    wanted = [m for m in a.modules.split(",") if m]
    order, blobs = modules_in_order(a.moddir, wanted)
    paths = []
    for name in order:
        rel, data = blobs[name]
        rel = rel.rsplit(".ko", 1)[0] + ".ko"
        dest = f"usr/lib/modules/{kver}/{rel}"
        c.file(dest, data)
        paths.append("/" + dest)
    c.file("etc/salus/modules", ("\n".join(paths) + "\n").encode())

    # Our own modules: built against this kernel (vermagic says so).
    for ko in a.extra_module:
        data = read_module(ko)
        magic = Elf(data, ko).modinfo().get("vermagic", [""])[0]
        if magic.split(" ")[0] != kver:
            die(f"{ko} is built for kernel '{magic.split(' ')[0]}', not {kver} "
                "(rebuild it for this kernel, or leave it out)")
        name = os.path.basename(ko).rsplit(".ko", 1)[0]
        c.file(f"usr/lib/modules/{kver}/extra/{name}.ko", data)

    raw = c.pack()
    tmp = a.out + ".tmp"
    with open(tmp, "wb") as f:
        with gzip.GzipFile(fileobj=f, mode="wb", compresslevel=9, mtime=0, filename="") as gz:
            gz.write(raw)
    os.replace(tmp, a.out)
    print(f"mkinitramfs: {a.out}: {len(c.entries)} entries, {len(raw) // 1024} KiB cpio, "
          f"{os.path.getsize(a.out) // 1024} KiB gzip; modules in load order: {' '.join(order)}")


if __name__ == "__main__":
    main()
