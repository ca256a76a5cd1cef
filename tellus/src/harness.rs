//! The test harness: every test prints `TEST: name`, then `PASS: name` or
//! `FAIL: name: reason`. `T` collects a test's failed checks; `check!` and
//! `check_err!` are the checks every test group uses.

use core::fmt;
use core::sync::atomic::Ordering::*;

use crate::arch;
use crate::console::Msg;
use crate::platform::Platform;
use crate::{CURRENT, FAILED, PASSED};

/// `check` that `cond` holds, else fail the test with the message.
macro_rules! check {
    ($t:expr, $cond:expr, $($arg:tt)*) => {
        $t.check($cond, format_args!($($arg)*))
    };
}

/// `check` that an SBI call returned exactly `error`. The last argument is
/// a format string with its arguments, or any `Display` value.
macro_rules! check_err {
    ($t:expr, $ret:expr, $want:expr, $fmt:literal $($arg:tt)*) => {{
        let r: ::sbi_abi::SbiRet = $ret;
        let want: i64 = $want;
        $t.check(
            r.error == want,
            format_args!("{}: error {} (want {})", format_args!($fmt $($arg)*), r.error, want),
        )
    }};
    ($t:expr, $ret:expr, $want:expr, $what:expr) => {
        check_err!($t, $ret, $want, "{}", $what)
    };
}

/// Per-test state: collects failed checks and an optional PASS note.
pub struct T {
    pub(crate) fails: u32,
    first: Msg,
    note: Msg,
}

impl T {
    pub(crate) fn check(&mut self, ok: bool, args: fmt::Arguments) -> bool {
        if !ok {
            if self.fails == 0 {
                self.first = Msg::from_args(args);
            } else {
                println!("  also: {}", args);
            }
            self.fails += 1;
        }
        ok
    }
    pub(crate) fn note(&mut self, args: fmt::Arguments) {
        self.note = Msg::from_args(args);
    }
}

pub fn run_one(name: &'static str, p: &Platform, f: impl FnOnce(&mut T, &Platform)) {
    *CURRENT.lock() = name;
    println!("TEST: {name}");
    let mut t = T {
        fails: 0,
        first: Msg::new(),
        note: Msg::new(),
    };
    f(&mut t, p);
    // Leave a clean interrupt state for the next test.
    arch::interrupts_disable();
    arch::sie_clear(arch::STIP | arch::SSIP);
    if t.fails == 0 {
        PASSED.fetch_add(1, Relaxed);
        if t.note.is_empty() {
            println!("PASS: {name}");
        } else {
            println!("PASS: {name} ({})", t.note);
        }
    } else {
        FAILED.fetch_add(1, Relaxed);
        if t.fails > 1 {
            println!("FAIL: {name}: {} (+{} more)", t.first, t.fails - 1);
        } else {
            println!("FAIL: {name}: {}", t.first);
        }
    }
    *CURRENT.lock() = "tellus";
}
