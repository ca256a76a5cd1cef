//! The Linux TVM bundle (docs/linux-tvm.md): one file with everything a
//! host measures into the Linux TVM, and the TVM's fixed guest-physical
//! layout. `scripts/linux-tvm/build-bundle.py` writes it; tellus
//! (`linux-tvm` mode) and salus-vmm read it with [`parse`], so both hosts
//! build the same TVM from the same bytes.
//!
//! Header (little-endian, at offset 0):
//!
//! | offset | field |
//! |---|---|
//! | 0 | magic `"SALUSTVM"` |
//! | 8 | u32 version = 3 |
//! | 12 | u32 count = 5 |
//! | 16 + 16 i | part i: u64 offset, u64 size (kernel, initrd, dtb, shim, dtb_aia) |
//!
//! `dtb_aia` is the same device tree with an IMSIC (one interrupt file per
//! vCPU at [`IMSIC_GPA`]): a host that can bind the vCPUs to IMSIC guest
//! files (COVI) measures it instead of `dtb`.
//!
//! Every part starts at a 2 MiB-aligned offset after the header (so a host
//! can measure 2 MiB pages straight out of the file) and lies inside it.
#![no_std]
#![forbid(unsafe_code)]

use core::fmt;

pub const MAGIC: &[u8; 8] = b"SALUSTVM";
pub const VERSION: u32 = 3;
pub const PARTS: usize = 5;
/// Bytes of header [`parse`] needs.
pub const HEADER_LEN: usize = 16 + 16 * PARTS;
/// Part offsets are multiples of this (and the header takes the first).
pub const ALIGN: u64 = 2 << 20;
const PAGE: u64 = 4096;

/// Guest RAM: the only confidential memory region.
pub const RAM_BASE: u64 = 0x8000_0000;
pub const RAM_SIZE: u64 = 256 << 20;
/// The boot shim: the TVM's entry point.
pub const SHIM_GPA: u64 = RAM_BASE;
/// The shim is measured code that runs before the kernel; it stays small.
pub const SHIM_MAX: u64 = 64 << 10;
/// The kernel Image (RAM + 2 MiB, where Linux wants it).
pub const KERNEL_GPA: u64 = RAM_BASE + ALIGN;
/// The initramfs, up to the device tree.
pub const INITRD_GPA: u64 = RAM_BASE + RAM_SIZE - (64 << 20);
/// The device tree: the entry argument (a1 when the shim starts).
pub const DTB_GPA: u64 = RAM_BASE + RAM_SIZE - ALIGN;
/// The ns16550a the device tree declares (the shim registers it as MMIO).
pub const UART_GPA: u64 = 0x1000_0000;
pub const UART_SIZE: u64 = PAGE;
/// vCPUs the device tree describes.
pub const VCPUS: u64 = 2;
/// With `dtb_aia`: vCPU k's IMSIC file is the page at `IMSIC_GPA + k * 4 KiB`
/// (`init_tvm_aia`: one hart index bit, no guest bits, group shift 24).
pub const IMSIC_GPA: u64 = 0x2800_0000;
pub const IMSIC_HART_BITS: u32 = 1;

// The layout's places do not overlap, stay in RAM, and the UART is not RAM.
const _: () = assert!(SHIM_GPA + SHIM_MAX <= KERNEL_GPA);
const _: () = assert!(KERNEL_GPA < INITRD_GPA && INITRD_GPA < DTB_GPA);
const _: () = assert!(DTB_GPA + ALIGN == RAM_BASE + RAM_SIZE);
const _: () = assert!(UART_GPA + UART_SIZE <= RAM_BASE);
const _: () = assert!(IMSIC_GPA >= UART_GPA + UART_SIZE);
const _: () = assert!(IMSIC_GPA + (PAGE << IMSIC_HART_BITS) <= RAM_BASE);

/// One part: where it is in the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Part {
    pub offset: u64,
    pub size: u64,
}

impl Part {
    pub const fn end(&self) -> u64 {
        self.offset + self.size
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bundle {
    pub kernel: Part,
    pub initrd: Part,
    pub dtb: Part,
    pub shim: Part,
    pub dtb_aia: Part,
}

/// One part and where it goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Load {
    pub what: &'static str,
    pub part: Part,
    pub gpa: u64,
}

impl Bundle {
    /// The parts in the order a host measures them, with their GPAs; `aia`:
    /// the device tree with the IMSIC.
    pub fn loads(&self, aia: bool) -> [Load; 4] {
        let l = |what, part, gpa| Load { what, part, gpa };
        [
            l("shim", self.shim, SHIM_GPA),
            l("kernel", self.kernel, KERNEL_GPA),
            l("initrd", self.initrd, INITRD_GPA),
            if aia {
                l("dtb (IMSIC)", self.dtb_aia, DTB_GPA)
            } else {
                l("dtb", self.dtb, DTB_GPA)
            },
        ]
    }

    /// Whether the 4 KiB page at `gpa` holds part of a load.
    pub fn measured(&self, gpa: u64, aia: bool) -> bool {
        self.loads(aia)
            .iter()
            .any(|l| gpa >= l.gpa && gpa < l.gpa + l.part.size.div_ceil(PAGE) * PAGE)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// Fewer than [`HEADER_LEN`] bytes.
    Short(u64),
    BadMagic,
    Version {
        version: u32,
        count: u32,
    },
    /// Part `index` is not 2 MiB aligned, empty, overlaps the header or
    /// runs past the file's end.
    BadPart {
        index: usize,
        part: Part,
    },
    /// Part `what` does not fit its place in the layout (at most `max`).
    TooBig {
        what: &'static str,
        size: u64,
        max: u64,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Error::Short(n) => write!(f, "{n} bytes: too short for a Linux TVM bundle"),
            Error::BadMagic => write!(f, "not a Linux TVM bundle (no SALUSTVM magic)"),
            Error::Version { version, count } => write!(
                f,
                "bundle version {version} with {count} parts (this build reads version {VERSION} with {PARTS}: rebuild it with `make linux-tvm-bundle`)"
            ),
            Error::BadPart { index, part } => write!(
                f,
                "bundle part {index} at offset {:#x}, {} bytes: must be non-empty, 2 MiB aligned, after the header and inside the file",
                part.offset, part.size
            ),
            Error::TooBig { what, size, max } => {
                write!(f, "the {what} is {size} bytes, more than its {max} in the TVM's layout")
            }
        }
    }
}

fn u32_at(h: &[u8], o: usize) -> u32 {
    let mut b = [0; 4];
    b.copy_from_slice(&h[o..o + 4]);
    u32::from_le_bytes(b)
}

fn u64_at(h: &[u8], o: usize) -> u64 {
    let mut b = [0; 8];
    b.copy_from_slice(&h[o..o + 8]);
    u64::from_le_bytes(b)
}

/// Reads the header at the start of a bundle of `file_len` bytes and
/// checks every part against the file and against the layout.
pub fn parse(header: &[u8], file_len: u64) -> Result<Bundle, Error> {
    if header.len() < HEADER_LEN || file_len < HEADER_LEN as u64 {
        return Err(Error::Short(file_len.min(header.len() as u64)));
    }
    if &header[..8] != MAGIC {
        return Err(Error::BadMagic);
    }
    let (version, count) = (u32_at(header, 8), u32_at(header, 12));
    if version != VERSION || count as usize != PARTS {
        return Err(Error::Version { version, count });
    }
    let mut parts = [Part { offset: 0, size: 0 }; PARTS];
    for (index, p) in parts.iter_mut().enumerate() {
        let part = Part {
            offset: u64_at(header, 16 + 16 * index),
            size: u64_at(header, 24 + 16 * index),
        };
        let inside = part
            .offset
            .checked_add(part.size)
            .is_some_and(|e| e <= file_len);
        if part.size == 0 || part.offset < ALIGN || !part.offset.is_multiple_of(ALIGN) || !inside {
            return Err(Error::BadPart { index, part });
        }
        *p = part;
    }
    let b = Bundle {
        kernel: parts[0],
        initrd: parts[1],
        dtb: parts[2],
        shim: parts[3],
        dtb_aia: parts[4],
    };
    for (what, size, max) in [
        ("shim", b.shim.size, SHIM_MAX),
        ("kernel", b.kernel.size, INITRD_GPA - KERNEL_GPA),
        ("initrd", b.initrd.size, DTB_GPA - INITRD_GPA),
        ("dtb", b.dtb.size, RAM_BASE + RAM_SIZE - DTB_GPA),
        ("dtb_aia", b.dtb_aia.size, RAM_BASE + RAM_SIZE - DTB_GPA),
    ] {
        if size > max {
            return Err(Error::TooBig { what, size, max });
        }
    }
    Ok(b)
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec::Vec;

    fn header(version: u32, parts: &[(u64, u64)]) -> Vec<u8> {
        let mut h = MAGIC.to_vec();
        h.extend_from_slice(&version.to_le_bytes());
        h.extend_from_slice(&(parts.len() as u32).to_le_bytes());
        for &(o, s) in parts {
            h.extend_from_slice(&o.to_le_bytes());
            h.extend_from_slice(&s.to_le_bytes());
        }
        h
    }

    const GOOD: [(u64, u64); 5] = [
        (ALIGN, 30 << 20),
        (ALIGN * 17, 3 << 20),
        (ALIGN * 19, 2000),
        (ALIGN * 20, 20 << 10),
        (ALIGN * 21, 2300),
    ];
    const LEN: u64 = ALIGN * 22;

    #[test]
    fn a_good_bundle_and_its_loads() {
        let b = parse(&header(VERSION, &GOOD), LEN).unwrap();
        assert_eq!(
            b.kernel,
            Part {
                offset: ALIGN,
                size: 30 << 20
            }
        );
        assert_eq!(b.shim.size, 20 << 10);
        let l = b.loads(false);
        assert_eq!(l.map(|l| l.what), ["shim", "kernel", "initrd", "dtb"]);
        assert_eq!(
            l.map(|l| l.gpa),
            [SHIM_GPA, KERNEL_GPA, INITRD_GPA, DTB_GPA]
        );
        let a = b.loads(true);
        assert_eq!(a[3].part.size, 2300);
        assert_eq!(a[3].gpa, DTB_GPA);
        assert!(b.measured(SHIM_GPA, false) && b.measured(SHIM_GPA + (20 << 10) - 1, false));
        assert!(!b.measured(SHIM_GPA + (20 << 10), true));
        assert!(b.measured(DTB_GPA, false) && !b.measured(DTB_GPA + PAGE, false));
        assert!(b.measured(DTB_GPA, true) && !b.measured(DTB_GPA + PAGE, true));
        assert!(!b.measured(RAM_BASE + (100 << 20), false));
    }

    #[test]
    fn short_magic_and_version() {
        let h = header(VERSION, &GOOD);
        assert_eq!(
            parse(&h[..HEADER_LEN - 1], LEN),
            Err(Error::Short(HEADER_LEN as u64 - 1))
        );
        assert_eq!(parse(&h, 10), Err(Error::Short(10)));
        let mut bad = h.clone();
        bad[0] = b'X';
        assert_eq!(parse(&bad, LEN), Err(Error::BadMagic));
        assert_eq!(
            parse(&header(2, &GOOD[..4]), LEN),
            Err(Error::Short(LEN.min(80)))
        );
        let mut old = header(2, &GOOD);
        assert_eq!(
            parse(&old, LEN),
            Err(Error::Version {
                version: 2,
                count: 5
            })
        );
        old[8] = VERSION as u8;
        old[12] = 4;
        assert_eq!(
            parse(&old, LEN),
            Err(Error::Version {
                version: VERSION,
                count: 4
            })
        );
    }

    #[test]
    fn every_bad_part_is_refused() {
        let cases: [(usize, (u64, u64)); 7] = [
            (0, (0, 100)),                      // the header's block
            (1, (ALIGN * 17 + 4096, 100)),      // unaligned
            (2, (ALIGN * 19, 0)),               // empty
            (4, (ALIGN * 21, ALIGN + 1)),       // past the end
            (3, (u64::MAX - ALIGN + 1, ALIGN)), // wraps
            (0, (LEN, 1)),                      // starts at the end
            (1, (ALIGN * 30, 1)),               // beyond the file
        ];
        for (index, (o, s)) in cases {
            let mut parts = GOOD;
            parts[index] = (o, s);
            assert_eq!(
                parse(&header(VERSION, &parts), LEN),
                Err(Error::BadPart {
                    index,
                    part: Part { offset: o, size: s }
                }),
                "part {index} at {o:#x} size {s:#x}"
            );
        }
    }

    #[test]
    fn parts_must_fit_the_layout() {
        let big = 1u64 << 40;
        for (index, what, max) in [
            (3, "shim", SHIM_MAX),
            (0, "kernel", INITRD_GPA - KERNEL_GPA),
            (1, "initrd", DTB_GPA - INITRD_GPA),
            (2, "dtb", ALIGN),
            (4, "dtb_aia", ALIGN),
        ] {
            let mut parts = GOOD;
            parts[index].1 = max;
            assert!(
                parse(&header(VERSION, &parts), big).is_ok(),
                "{what} at its max"
            );
            parts[index].1 = max + 1;
            assert_eq!(
                parse(&header(VERSION, &parts), big),
                Err(Error::TooBig {
                    what,
                    size: max + 1,
                    max
                })
            );
        }
    }

    #[test]
    fn errors_say_what_is_wrong() {
        let e = parse(&header(1, &GOOD), LEN).unwrap_err();
        let s = std::format!("{e}");
        assert!(
            s.contains("version 1") && s.contains("make linux-tvm-bundle"),
            "{s}"
        );
    }
}
