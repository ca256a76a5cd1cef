//! Structural validation of a flattened device tree, done before the blob is
//! handed to the `fdt` crate (which assumes well-formed input and panics on
//! many malformed ones).
//!
//! After [`check`] accepts a blob, the `fdt` crate can walk it without
//! hitting any of its panicking paths: every offset and length is in
//! bounds, every name is NUL-terminated UTF-8, properties come before child
//! nodes, nesting is balanced and shallow, and there are no NOP tokens (a
//! blob that has some is rewritten without them).

use alloc::vec::Vec;

use crate::Error;

const MAGIC: u32 = 0xd00d_feed;
const HEADER_LEN: usize = 40;
const BEGIN_NODE: u32 = 1;
const END_NODE: u32 = 2;
const PROP: u32 = 3;
const NOP: u32 = 4;
const END: u32 = 9;
/// Deepest node nesting accepted (root = 1).
pub const MAX_DEPTH: usize = 32;

fn be32(b: &[u8], off: usize) -> Option<u32> {
    let s = b.get(off..off.checked_add(4)?)?;
    Some(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

fn cstr(b: &[u8], off: usize) -> Option<&str> {
    let rest = b.get(off..)?;
    let end = rest.iter().position(|c| *c == 0)?;
    core::str::from_utf8(&rest[..end]).ok()
}

const fn align4(n: usize) -> usize {
    (n + 3) & !3
}

struct Header {
    total: usize,
    off_struct: usize,
    off_strings: usize,
    off_rsv: usize,
    size_strings: usize,
    size_struct: usize,
}

fn header(blob: &[u8]) -> Result<Header, Error> {
    let field = |i: usize| be32(blob, i * 4).ok_or(Error::Truncated);
    if field(0)? != MAGIC {
        return Err(Error::BadMagic);
    }
    let h = Header {
        total: field(1)? as usize,
        off_struct: field(2)? as usize,
        off_strings: field(3)? as usize,
        off_rsv: field(4)? as usize,
        size_strings: field(8)? as usize,
        size_struct: field(9)? as usize,
    };
    let version = field(5)?;
    let last_comp = field(6)?;
    if version < 16 || last_comp > 17 {
        return Err(Error::Malformed("unsupported FDT version"));
    }
    if h.total < HEADER_LEN || h.total > blob.len() {
        return Err(Error::Truncated);
    }
    let within = |off: usize, len: usize| off.checked_add(len).is_some_and(|e| e <= h.total);
    if !within(h.off_struct, h.size_struct)
        || !within(h.off_strings, h.size_strings)
        || !within(h.off_rsv, 0)
        || h.off_struct < HEADER_LEN
        || h.off_strings < HEADER_LEN
        || h.off_rsv < HEADER_LEN
        || !h.off_struct.is_multiple_of(4)
        || !h.off_rsv.is_multiple_of(8)
    {
        return Err(Error::Malformed("header block out of bounds"));
    }
    Ok(h)
}

/// Length in bytes of the memory reservation block, sentinel included.
fn rsv_len(blob: &[u8], h: &Header) -> Result<usize, Error> {
    let mut off = h.off_rsv;
    loop {
        if off.checked_add(16).is_none_or(|e| e > h.total) {
            return Err(Error::Malformed("unterminated memory reservation block"));
        }
        let a = (
            be32(blob, off),
            be32(blob, off + 4),
            be32(blob, off + 8),
            be32(blob, off + 12),
        );
        off += 16;
        if a == (Some(0), Some(0), Some(0), Some(0)) {
            return Ok(off - h.off_rsv);
        }
    }
}

/// Checks `blob`; returns `Some(rewritten)` if NOP tokens had to be
/// removed, `None` if `blob` can be used as is.
pub fn check(blob: &[u8]) -> Result<Option<Vec<u8>>, Error> {
    let h = header(blob)?;
    let rsv = rsv_len(blob, &h)?;
    let st = &blob[h.off_struct..h.off_struct + h.size_struct];
    let strings = &blob[h.off_strings..h.off_strings + h.size_strings];

    // Token walk. `spans` collects the non-NOP byte ranges of the block.
    let mut spans: Vec<(usize, usize)> = Vec::new();
    let mut nops = false;
    let mut depth = 0usize;
    // Whether the current node has had a child yet (no property after one).
    let mut had_child = [false; MAX_DEPTH + 1];
    let mut off = 0usize;
    let mut ended = false;
    while !ended {
        let tok = be32(st, off).ok_or(Error::Malformed("struct block ends without FDT_END"))?;
        let start = off;
        off += 4;
        match tok {
            BEGIN_NODE => {
                let name = cstr(st, off).ok_or(Error::Malformed("bad node name"))?;
                if depth == 0 && (!spans.is_empty() || !name.is_empty()) {
                    return Err(Error::Malformed("root node must come first and be unnamed"));
                }
                if depth > 0 && name.is_empty() {
                    return Err(Error::Malformed("unnamed child node"));
                }
                off += align4(name.len() + 1);
                if depth > 0 {
                    had_child[depth] = true;
                }
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(Error::Malformed("nodes nested too deep"));
                }
                had_child[depth] = false;
            }
            END_NODE => {
                if depth == 0 {
                    return Err(Error::Malformed("unbalanced FDT_END_NODE"));
                }
                depth -= 1;
            }
            PROP => {
                if depth == 0 || had_child[depth] {
                    return Err(Error::Malformed("property outside a node or after a child"));
                }
                let len = be32(st, off).ok_or(Error::Truncated)? as usize;
                let name_off = be32(st, off + 4).ok_or(Error::Truncated)? as usize;
                off += 8;
                if off.checked_add(len).is_none_or(|e| e > st.len()) {
                    return Err(Error::Malformed("property value out of bounds"));
                }
                let name = cstr(strings, name_off).ok_or(Error::Malformed("bad property name"))?;
                if matches!(name, "#address-cells" | "#size-cells") && len < 4 {
                    return Err(Error::Malformed("short #address-cells/#size-cells"));
                }
                off += align4(len);
            }
            NOP => {
                nops = true;
                continue;
            }
            END => {
                if depth != 0 || spans.is_empty() {
                    return Err(Error::Malformed("FDT_END inside a node or empty tree"));
                }
                ended = true;
            }
            _ => return Err(Error::Malformed("unknown token")),
        }
        if off > st.len() {
            return Err(Error::Malformed("token runs past struct block"));
        }
        match spans.last_mut() {
            Some((_, e)) if *e == start => *e = off,
            _ => spans.push((start, off)),
        }
    }
    if !nops {
        return Ok(None);
    }
    // Rebuild: header, reservation block, struct block without NOPs,
    // strings.
    let struct_len: usize = spans.iter().map(|(s, e)| e - s).sum();
    let off_rsv = HEADER_LEN;
    let off_struct = off_rsv + rsv;
    let off_strings = off_struct + struct_len;
    let total = off_strings + strings.len();
    let total32 = u32::try_from(total).map_err(|_| Error::Malformed("FDT too large"))?;
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(&blob[..HEADER_LEN]);
    let mut set =
        |i: usize, v: usize| out[i * 4..i * 4 + 4].copy_from_slice(&(v as u32).to_be_bytes());
    set(1, total32 as usize);
    set(2, off_struct);
    set(3, off_strings);
    set(4, off_rsv);
    set(8, strings.len());
    set(9, struct_len);
    out.extend_from_slice(&blob[h.off_rsv..h.off_rsv + rsv]);
    for (s, e) in spans {
        out.extend_from_slice(&st[s..e]);
    }
    out.extend_from_slice(strings);
    Ok(Some(out))
}
