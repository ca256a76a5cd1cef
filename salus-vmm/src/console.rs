//! The TVM's console: bytes from DBCN console_write / write_byte assembled
//! into lines, printed as they complete.
#![forbid(unsafe_code)]

/// Longest line kept before it is printed anyway.
pub const MAX_LINE: usize = 4096;

#[derive(Default)]
pub struct LineBuf {
    buf: Vec<u8>,
    pub lines: u64,
    pub passed: u64,
    pub failed: u64,
}

impl LineBuf {
    /// Adds `bytes`; returns the lines they completed (without '\n';
    /// invalid UTF-8 replaced, '\r' before '\n' dropped).
    pub fn push(&mut self, bytes: &[u8]) -> Vec<String> {
        let mut out = Vec::new();
        for &b in bytes {
            if b == b'\n' {
                out.push(self.take());
            } else {
                self.buf.push(b);
                if self.buf.len() >= MAX_LINE {
                    out.push(self.take());
                }
            }
        }
        out
    }

    /// The partial line, if any (at shutdown).
    pub fn flush(&mut self) -> Option<String> {
        (!self.buf.is_empty()).then(|| self.take())
    }

    fn take(&mut self) -> String {
        if self.buf.last() == Some(&b'\r') {
            self.buf.pop();
        }
        let line = String::from_utf8_lossy(&self.buf).into_owned();
        self.buf.clear();
        self.lines += 1;
        if line.starts_with("PASS: ") {
            self.passed += 1;
        } else if line.starts_with("FAIL: ") {
            self.failed += 1;
        }
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_across_writes() {
        let mut l = LineBuf::default();
        assert!(l.push(b"TEST: a").is_empty());
        assert_eq!(l.push(b"\nPASS: a\nFA"), vec!["TEST: a", "PASS: a"]);
        assert_eq!(l.push(b"IL: b: why\r\n"), vec!["FAIL: b: why"]);
        assert_eq!(l.push(b"\n"), vec![""]);
        assert_eq!((l.lines, l.passed, l.failed), (4, 1, 1));
        assert_eq!(l.flush(), None);
        l.push(b"tail");
        assert_eq!(l.flush().as_deref(), Some("tail"));
    }

    #[test]
    fn long_and_binary_lines() {
        let mut l = LineBuf::default();
        let long = vec![b'x'; MAX_LINE + 10];
        let out = l.push(&long);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].len(), MAX_LINE);
        assert_eq!(l.flush().unwrap().len(), 10);
        assert_eq!(l.push(&[0xff, b'a', b'\n']), vec!["\u{fffd}a"]);
    }
}
