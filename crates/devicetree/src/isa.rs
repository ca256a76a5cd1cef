//! RISC-V ISA strings (`riscv,isa`) and extension lists
//! (`riscv,isa-extensions`).

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

/// A set of ISA extensions Salus cares about (a small hand-rolled bit set).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct IsaExtensions(u64);

macro_rules! extensions {
    ($($konst:ident = $bit:expr, $name:literal;)*) => {
        impl IsaExtensions {
            $(pub const $konst: IsaExtensions = IsaExtensions(1 << $bit);)*

            /// Every known extension with its lower-case name.
            pub const KNOWN: &'static [(IsaExtensions, &'static str)] = &[
                $((IsaExtensions::$konst, $name),)*
            ];
        }
    };
}

extensions! {
    I = 0, "i";
    M = 1, "m";
    A = 2, "a";
    F = 3, "f";
    D = 4, "d";
    C = 5, "c";
    H = 6, "h";
    V = 7, "v";
    SSTC = 16, "sstc";
    SSAIA = 17, "ssaia";
    SMAIA = 18, "smaia";
    SVADU = 19, "svadu";
    SVNAPOT = 20, "svnapot";
    SVPBMT = 21, "svpbmt";
    ZICBOM = 22, "zicbom";
    ZICBOZ = 23, "zicboz";
    ZKN = 24, "zkn";
    ZKNH = 25, "zknh";
    ZKND = 26, "zknd";
    ZKNE = 27, "zkne";
    ZBB = 28, "zbb";
    SSCOFPMF = 29, "sscofpmf";
    SMSTATEEN = 30, "smstateen";
    SSSTATEEN = 31, "ssstateen";
    ZICSR = 32, "zicsr";
    ZIFENCEI = 33, "zifencei";
    ZBA = 34, "zba";
    ZBS = 35, "zbs";
    SVINVAL = 36, "svinval";
    ZIHINTPAUSE = 37, "zihintpause";
}

impl IsaExtensions {
    pub const fn empty() -> Self {
        IsaExtensions(0)
    }

    /// Every known extension.
    pub fn all() -> Self {
        Self::KNOWN
            .iter()
            .fold(Self::empty(), |a, (e, _)| a.union(*e))
    }

    pub const fn bits(self) -> u64 {
        self.0
    }

    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    pub const fn union(self, other: Self) -> Self {
        IsaExtensions(self.0 | other.0)
    }

    pub const fn intersection(self, other: Self) -> Self {
        IsaExtensions(self.0 & other.0)
    }

    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn insert(&mut self, other: Self) {
        self.0 |= other.0;
    }

    pub fn remove(&mut self, other: Self) {
        self.0 &= !other.0;
    }

    /// The flag for one extension name (case-insensitive), if known.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::KNOWN
            .iter()
            .find(|(_, n)| n.eq_ignore_ascii_case(name))
            .map(|(e, _)| *e)
    }

    /// Adds `name` and what it implies (Zkn = Zknd + Zkne + Zknh + ...).
    fn add_name(&mut self, name: &str) {
        if let Some(e) = Self::from_name(name) {
            self.insert(e);
        }
        if name.eq_ignore_ascii_case("zkn") || name.eq_ignore_ascii_case("zk") {
            self.insert(
                Self::ZKN
                    .union(Self::ZKND)
                    .union(Self::ZKNE)
                    .union(Self::ZKNH),
            );
        }
        if name.eq_ignore_ascii_case("g") {
            for e in [
                Self::I,
                Self::M,
                Self::A,
                Self::F,
                Self::D,
                Self::ZICSR,
                Self::ZIFENCEI,
            ] {
                self.insert(e);
            }
        }
    }

    /// Names of the extensions in the set.
    pub fn names(self) -> impl Iterator<Item = &'static str> {
        Self::KNOWN
            .iter()
            .filter(move |(e, _)| self.contains(*e))
            .map(|(_, n)| *n)
    }
}

impl fmt::Debug for IsaExtensions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.names()).finish()
    }
}

/// A parsed `riscv,isa` string.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IsaString {
    /// `32`, `64` or `128`.
    pub xlen: u32,
    /// Single-letter extensions in order, lower case (the base `i` or `e`
    /// included).
    pub letters: String,
    /// Multi-letter extensions in order, lower case, version suffix removed.
    pub multi: Vec<String>,
}

/// Strips an explicit version suffix (`<major>p<minor>`, e.g. `zicsr2p0`)
/// from a multi-letter name. Plain trailing digits are part of the name
/// (`sv39`, `zve32x`, `zvl128b`).
fn strip_version(name: &str) -> &str {
    let b = name.as_bytes();
    let mut end = b.len();
    while end > 0 && b[end - 1].is_ascii_digit() {
        end -= 1;
    }
    if end == b.len() || end < 2 || b[end - 1] != b'p' || !b[end - 2].is_ascii_digit() {
        return name;
    }
    end -= 1;
    while end > 0 && b[end - 1].is_ascii_digit() {
        end -= 1;
    }
    if end == 0 {
        name
    } else {
        &name[..end]
    }
}

impl IsaString {
    /// Parses e.g. `rv64imafdch_zicsr_zifencei_sstc`. Case-insensitive.
    /// Single letters follow the base; multi-letter extensions (starting
    /// with `s`, `z` or `x`) run to the next `_`. Version numbers are
    /// skipped.
    pub fn parse(s: &str) -> Option<IsaString> {
        let lower = s.trim().to_ascii_lowercase();
        let rest = lower.strip_prefix("rv")?;
        let digits = rest.bytes().take_while(|b| b.is_ascii_digit()).count();
        let xlen: u32 = rest[..digits].parse().ok()?;
        if !matches!(xlen, 32 | 64 | 128) {
            return None;
        }
        let rest = &rest[digits..];
        let bytes = rest.as_bytes();
        let mut letters = String::new();
        let mut multi = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            let c = bytes[i];
            match c {
                b'_' => i += 1,
                b's' | b'z' | b'x' => {
                    let end = rest[i..].find('_').map_or(bytes.len(), |e| i + e);
                    let name = strip_version(&rest[i..end]);
                    if !name.bytes().all(|b| b.is_ascii_alphanumeric()) {
                        return None;
                    }
                    multi.push(String::from(name));
                    i = end;
                }
                b'a'..=b'z' => {
                    letters.push(c as char);
                    i += 1;
                    // Optional version: digits, optionally `p` digits.
                    let d = bytes[i..].iter().take_while(|b| b.is_ascii_digit()).count();
                    if d > 0 {
                        i += d;
                        if bytes.get(i) == Some(&b'p')
                            && bytes.get(i + 1).is_some_and(|b| b.is_ascii_digit())
                        {
                            i += 1;
                            i += bytes[i..].iter().take_while(|b| b.is_ascii_digit()).count();
                        }
                    }
                }
                _ => return None,
            }
        }
        if letters.is_empty() {
            return None;
        }
        Some(IsaString {
            xlen,
            letters,
            multi,
        })
    }

    /// The known extensions this string names (with `g` expanded).
    pub fn extensions(&self) -> IsaExtensions {
        let mut e = IsaExtensions::empty();
        let mut buf = [0u8; 4];
        for c in self.letters.chars() {
            e.add_name(c.encode_utf8(&mut buf));
        }
        for m in &self.multi {
            e.add_name(m);
        }
        e
    }

    /// Renders the string back (`rv64imafdc_zicsr_...`).
    pub fn render(&self) -> String {
        let mut s = alloc::format!("rv{}{}", self.xlen, self.letters);
        for m in &self.multi {
            s.push('_');
            s.push_str(m);
        }
        s
    }
}

/// Extensions named by a `riscv,isa-extensions` list.
pub fn extensions_from_list<'s>(names: impl IntoIterator<Item = &'s str>) -> IsaExtensions {
    let mut e = IsaExtensions::empty();
    for n in names {
        e.add_name(n);
    }
    e
}

/// True for extensions a guest running in VS-mode must not be told about:
/// the `h` letter, the hypervisor `sh*` and machine-level `sm*` families,
/// and any name in `extra` (case-insensitive).
pub fn is_hypervisor_only(name: &str, extra: &[String]) -> bool {
    let n = name.to_ascii_lowercase();
    n == "h"
        || n.starts_with("sh")
        || n.starts_with("sm")
        || extra.iter().any(|x| x.eq_ignore_ascii_case(&n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_qemu_string() {
        let s = IsaString::parse("rv64imafdch_zicbom_zicboz_zknh_smaia_ssaia_sstc_svadu").unwrap();
        assert_eq!(s.xlen, 64);
        assert_eq!(s.letters, "imafdch");
        assert_eq!(
            s.multi,
            ["zicbom", "zicboz", "zknh", "smaia", "ssaia", "sstc", "svadu"]
        );
        let e = s.extensions();
        for x in [
            IsaExtensions::H,
            IsaExtensions::D,
            IsaExtensions::ZICBOM,
            IsaExtensions::ZKNH,
            IsaExtensions::SMAIA,
            IsaExtensions::SSTC,
        ] {
            assert!(e.contains(x), "{x:?}");
        }
        assert!(!e.contains(IsaExtensions::V));
        assert!(!e.contains(IsaExtensions::ZKND));
    }

    #[test]
    fn versions_case_and_g() {
        let s = IsaString::parse("RV64I2p1M2A2p0FDCV_Zicsr2p0_Zve32x_Sv39").unwrap();
        assert_eq!(s.letters, "imafdcv");
        assert_eq!(s.multi, ["zicsr", "zve32x", "sv39"]);
        let g = IsaString::parse("rv64gc_zkn").unwrap();
        let e = g.extensions();
        assert!(e.contains(
            IsaExtensions::F
                .union(IsaExtensions::ZICSR)
                .union(IsaExtensions::ZKNE)
        ));
        assert_eq!(IsaString::parse("rv64imac_").unwrap().multi.len(), 0);
    }

    #[test]
    fn rejects_garbage() {
        for s in [
            "",
            "rv",
            "rv65imac",
            "x86_64",
            "rv64",
            "rv64i-m",
            "rv64i_zi!csr",
            "rv64é",
        ] {
            assert_eq!(IsaString::parse(s), None, "{s}");
        }
    }

    #[test]
    fn render_round_trip() {
        let s = IsaString::parse("rv64imafdch_zicsr_sstc").unwrap();
        assert_eq!(s.render(), "rv64imafdch_zicsr_sstc");
    }

    #[test]
    fn list_and_filter() {
        let e = extensions_from_list(["i", "m", "h", "sstc", "smstateen", "svnapot"]);
        assert!(e.contains(
            IsaExtensions::H
                .union(IsaExtensions::SMSTATEEN)
                .union(IsaExtensions::SVNAPOT)
        ));
        assert!(is_hypervisor_only("h", &[]));
        assert!(is_hypervisor_only("shgatpa", &[]));
        assert!(is_hypervisor_only("Smaia", &[]));
        assert!(!is_hypervisor_only("sstc", &[]));
        assert!(is_hypervisor_only("sstc", &[String::from("SSTC")]));
    }
}
