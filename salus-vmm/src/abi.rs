//! The `/dev/salus-tsm` uapi, mirrored from
//! `drivers/salus-tsm/include/uapi/salus-tsm.h` (THE interface; the test at
//! the bottom parses that header and checks every struct layout, constant
//! and ioctl number here against it).
#![forbid(unsafe_code)]

pub const DEVICE: &str = "/dev/salus-tsm";
pub const ABI_VERSION: u32 = 1;
/// Largest range (bytes) one ioctl handles; larger calls fail with E2BIG.
pub const MAX_CALL_BYTES: u64 = 64 << 20;
/// Page-table pages the driver donates to one TVM, at most.
#[allow(dead_code)] // the driver's business; mirrored for the header check
pub const MAX_PT_PAGES: u64 = 4096;
pub const PAGE_4K: u32 = 0;
pub const PAGE_2M: u32 = 1;
pub const IOC_TYPE: u32 = 0xB5;

pub const SIZE_4K: u64 = 0x1000;
pub const SIZE_2M: u64 = 0x20_0000;

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Info {
    pub abi_version: u32,
    pub tsm_state: u32,
    pub tsm_impl_id: u32,
    pub tsm_version: u32,
    pub tsm_capabilities: u64,
    pub tvm_state_pages: u64,
    pub tvm_max_vcpus: u64,
    pub tvm_vcpu_state_pages: u64,
    pub converted_pages: u64,
    pub shared_pages: u64,
    pub leaked_pages: u64,
    pub live_tvms: u64,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct Create {
    pub tvm_id: u64,
    pub reserved: u64,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct Region {
    pub gpa: u64,
    pub len: u64,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct Measured {
    pub gpa: u64,
    pub uaddr: u64,
    pub len: u64,
    pub page_type: u32,
    pub reserved: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct Zero {
    pub gpa: u64,
    pub len: u64,
    pub page_type: u32,
    pub reserved: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct Shared {
    pub gpa: u64,
    pub uaddr: u64,
    pub len: u64,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct Vcpu {
    pub vcpu_id: u64,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct Finalize {
    pub entry_sepc: u64,
    pub entry_arg: u64,
}

/// Console bytes one DBCN exit carries (`SALUS_TSM_CONSOLE_MAX`).
pub const CONSOLE_MAX: usize = 1024;

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct Run {
    pub vcpu_id: u64,
    pub a0: u64,
    pub a1: u64,
    pub scause: u64,
    pub stval: u64,
    pub htval: u64,
    pub htinst: u64,
    pub gpa: u64,
    pub a: [u64; 8],
    pub resumable: u32,
    pub reserved: u32,
    pub nop_eid: u64,
    pub console: [u8; CONSOLE_MAX],
}

impl Default for Run {
    fn default() -> Self {
        Run {
            vcpu_id: 0,
            a0: 0,
            a1: 0,
            scause: 0,
            stval: 0,
            htval: 0,
            htinst: 0,
            gpa: 0,
            a: [0; 8],
            resumable: 0,
            reserved: 0,
            nop_eid: 0,
            console: [0; CONSOLE_MAX],
        }
    }
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct Error {
    pub sbi_error: i64,
    pub fid: u64,
}

// The asm-generic `_IOC` encoding (riscv64 and x86_64 both use it).
const IOC_WRITE: u32 = 1;
const IOC_READ: u32 = 2;

pub const fn ioc(dir: u32, nr: u32, size: usize) -> u32 {
    (dir << 30) | ((size as u32) << 16) | (IOC_TYPE << 8) | nr
}
const fn ior<T>(nr: u32) -> u32 {
    ioc(IOC_READ, nr, core::mem::size_of::<T>())
}
const fn iow<T>(nr: u32) -> u32 {
    ioc(IOC_WRITE, nr, core::mem::size_of::<T>())
}
const fn iowr<T>(nr: u32) -> u32 {
    ioc(IOC_READ | IOC_WRITE, nr, core::mem::size_of::<T>())
}

pub const GET_INFO: u32 = ior::<Info>(0x00);
pub const CREATE_TVM: u32 = iowr::<Create>(0x01);
pub const ADD_REGION: u32 = iow::<Region>(0x02);
pub const ADD_MEASURED: u32 = iow::<Measured>(0x03);
pub const ADD_ZERO: u32 = iow::<Zero>(0x04);
pub const ADD_SHARED: u32 = iow::<Shared>(0x05);
pub const REMOVE_SHARED: u32 = iow::<Shared>(0x06);
pub const CREATE_VCPU: u32 = iow::<Vcpu>(0x07);
pub const FINALIZE: u32 = iow::<Finalize>(0x08);
pub const RUN_VCPU: u32 = iowr::<Run>(0x09);
pub const LAST_ERROR: u32 = ior::<Error>(0x0a);

/// Linux errno values the header names (identical on every asm-generic
/// architecture, riscv64 and x86_64 included).
pub mod errno {
    pub const EPERM: i32 = 1;
    pub const ENOENT: i32 = 2;
    pub const EINTR: i32 = 4;
    pub const EIO: i32 = 5;
    pub const E2BIG: i32 = 7;
    pub const ENOMEM: i32 = 12;
    pub const EACCES: i32 = 13;
    pub const EFAULT: i32 = 14;
    pub const EBUSY: i32 = 16;
    pub const EEXIST: i32 = 17;
    pub const EINVAL: i32 = 22;
    pub const ENOTTY: i32 = 25;
    pub const ENOSPC: i32 = 28;
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::{offset_of, size_of};
    use std::collections::BTreeMap;

    const HEADER: &str = include_str!("../../drivers/salus-tsm/include/uapi/salus-tsm.h");

    /// (field name, offset, size) of one struct.
    type Layout = Vec<(String, usize, usize)>;

    /// The structs of the header, laid out with the C rules for
    /// `__u32`/`__u64`/`__s64` (naturally aligned) and arrays of them.
    fn c_structs() -> BTreeMap<String, (Layout, usize)> {
        let mut out = BTreeMap::new();
        let mut cur: Option<(String, Layout, usize, usize)> = None;
        for line in HEADER.lines() {
            let line = line.split("/*").next().unwrap().trim();
            if let Some(rest) = line.strip_prefix("struct ") {
                if let Some(name) = rest.strip_suffix(" {") {
                    cur = Some((name.to_string(), Vec::new(), 0, 1));
                    continue;
                }
            }
            let Some((name, fields, off, align)) = cur.as_mut() else {
                continue;
            };
            if line == "};" {
                let size = off.div_ceil(*align) * *align;
                out.insert(name.clone(), (fields.clone(), size));
                cur = None;
                continue;
            }
            // Blank lines and the inside of block comments.
            if line.is_empty() || line.starts_with('*') {
                continue;
            }
            let decl = line.strip_suffix(';').expect("field ends with ;");
            let (ty, field) = decl.split_once(char::is_whitespace).unwrap();
            let elem = match ty {
                "__u8" => 1,
                "__u32" | "__s32" => 4,
                "__u64" | "__s64" => 8,
                t => panic!("unknown type {t}"),
            };
            let field = field.trim();
            let (fname, count) = match field.split_once('[') {
                Some((n, c)) => {
                    let c = c.trim_end_matches(']');
                    let c = defines().get(c).cloned().unwrap_or_else(|| c.to_string());
                    (n, c.parse::<usize>().unwrap())
                }
                None => (field, 1),
            };
            *off = off.div_ceil(elem) * elem;
            fields.push((fname.to_string(), *off, elem * count));
            *off += elem * count;
            *align = (*align).max(elem);
        }
        out
    }

    fn defines() -> BTreeMap<String, String> {
        HEADER
            .lines()
            .filter_map(|l| l.strip_prefix("#define "))
            .filter_map(|l| {
                let (k, v) = l.split_once(char::is_whitespace)?;
                Some((k.to_string(), v.trim().to_string()))
            })
            .collect()
    }

    macro_rules! layout {
        ($t:ty, $($f:ident),*) => {{
            let v: Layout = vec![$((
                stringify!($f).to_string(),
                offset_of!($t, $f),
                {
                    let x: $t = Default::default();
                    core::mem::size_of_val(&x.$f)
                },
            )),*];
            (v, size_of::<$t>())
        }};
    }

    fn rust_structs() -> BTreeMap<String, (Layout, usize)> {
        let mut m = BTreeMap::new();
        let mut put = |n: &str, l| {
            m.insert(format!("salus_tsm_{n}"), l);
        };
        put(
            "info",
            layout!(
                Info,
                abi_version,
                tsm_state,
                tsm_impl_id,
                tsm_version,
                tsm_capabilities,
                tvm_state_pages,
                tvm_max_vcpus,
                tvm_vcpu_state_pages,
                converted_pages,
                shared_pages,
                leaked_pages,
                live_tvms
            ),
        );
        put("create", layout!(Create, tvm_id, reserved));
        put("region", layout!(Region, gpa, len));
        put(
            "measured",
            layout!(Measured, gpa, uaddr, len, page_type, reserved),
        );
        put("zero", layout!(Zero, gpa, len, page_type, reserved));
        put("shared", layout!(Shared, gpa, uaddr, len));
        put("vcpu", layout!(Vcpu, vcpu_id));
        put("finalize", layout!(Finalize, entry_sepc, entry_arg));
        put(
            "run",
            layout!(
                Run, vcpu_id, a0, a1, scause, stval, htval, htinst, gpa, a, resumable, reserved,
                nop_eid, console
            ),
        );
        put("error", layout!(Error, sbi_error, fid));
        m
    }

    #[test]
    fn struct_layouts_match_the_header() {
        let c = c_structs();
        let r = rust_structs();
        assert_eq!(c.len(), 10, "structs in the header: {:?}", c.keys());
        assert_eq!(c, r);
    }

    #[test]
    fn sizes() {
        assert_eq!(size_of::<Info>(), 80);
        assert_eq!(size_of::<Measured>(), 32);
        assert_eq!(size_of::<Zero>(), 24);
        assert_eq!(size_of::<Run>(), 144 + CONSOLE_MAX);
    }

    #[test]
    fn constants_match_the_header() {
        let d = defines();
        assert_eq!(d["SALUS_TSM_DEVICE"], format!("\"{DEVICE}\""));
        assert_eq!(d["SALUS_TSM_ABI_VERSION"], ABI_VERSION.to_string());
        assert_eq!(d["SALUS_TSM_CONSOLE_MAX"], CONSOLE_MAX.to_string());
        assert_eq!(d["SALUS_TSM_MAX_CALL_BYTES"], "(64ULL << 20)");
        assert_eq!(MAX_CALL_BYTES, 64 * 1024 * 1024);
        assert_eq!(d["SALUS_TSM_MAX_PT_PAGES"], MAX_PT_PAGES.to_string());
        assert_eq!(d["SALUS_TSM_PAGE_4K"], PAGE_4K.to_string());
        assert_eq!(d["SALUS_TSM_PAGE_2M"], PAGE_2M.to_string());
        let ioc = d["SALUS_TSM_IOC"].trim_start_matches("0x");
        assert_eq!(u32::from_str_radix(ioc, 16), Ok(IOC_TYPE));
    }

    /// Every `_IOR/_IOW/_IOWR(SALUS_TSM_IOC, nr, struct s)` of the header,
    /// encoded from the header's own struct sizes, equals ours.
    #[test]
    fn ioctl_numbers_match_the_header() {
        let c = c_structs();
        let ours: BTreeMap<&str, u32> = [
            ("GET_INFO", GET_INFO),
            ("CREATE_TVM", CREATE_TVM),
            ("ADD_REGION", ADD_REGION),
            ("ADD_MEASURED", ADD_MEASURED),
            ("ADD_ZERO", ADD_ZERO),
            ("ADD_SHARED", ADD_SHARED),
            ("REMOVE_SHARED", REMOVE_SHARED),
            ("CREATE_VCPU", CREATE_VCPU),
            ("FINALIZE", FINALIZE),
            ("RUN_VCPU", RUN_VCPU),
            ("LAST_ERROR", LAST_ERROR),
        ]
        .into_iter()
        .collect();
        let mut seen = 0;
        for (k, v) in defines() {
            let Some(name) = k.strip_prefix("SALUS_TSM_") else {
                continue;
            };
            let Some((mac, args)) = v.split_once('(') else {
                continue;
            };
            let dir = match mac {
                "_IOR" => IOC_READ,
                "_IOW" => IOC_WRITE,
                "_IOWR" => IOC_READ | IOC_WRITE,
                _ => continue,
            };
            let args: Vec<&str> = args
                .trim_end_matches(')')
                .split(',')
                .map(str::trim)
                .collect();
            assert_eq!(args[0], "SALUS_TSM_IOC");
            let nr = u32::from_str_radix(args[1].trim_start_matches("0x"), 16).unwrap();
            let sname = args[2].strip_prefix("struct ").unwrap();
            let size = c[sname].1;
            assert_eq!(ours[name], ioc(dir, nr, size), "{name}");
            seen += 1;
        }
        assert_eq!(seen, ours.len());
        // Spot-check the encoding itself against values computed by hand.
        assert_eq!(GET_INFO, 0x8050_b500);
        assert_eq!(RUN_VCPU, 0xc490_b509);
        assert_eq!(ADD_ZERO, 0x4018_b504);
    }
}
