//! The policy of Salus's per-hart timer multiplexer: every user of the one
//! HS-level timer (`stimecmp`, or the firmware's SBI timer without Sstc)
//! keeps a deadline per [`Source`]; the hardware is always programmed with
//! the earliest one, and an S-timer interrupt reports the sources whose
//! deadline passed. No hardware access here: Salus applies [`Program`].
//!
//! A deadline of [`NEVER`] means "not armed". A deadline `d` has expired at
//! time `now` when `d <= now`, which is when the hardware raises STIP.

#![no_std]
#![forbid(unsafe_code)]

/// The "not armed" deadline (also what the hardware is given when no source
/// is armed).
pub const NEVER: u64 = u64::MAX;

/// Users of the HS timer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Source {
    /// The host vCPU's timer, emulated by Salus without Sstc.
    HostVtimer = 0,
    /// The host's `vstimecmp` while a TVM runs on the hart (Sstc): the
    /// host's deadline must preempt the TVM.
    HostPreempt = 1,
    /// The IOMMU fault-queue drain (boot hart).
    IommuDrain = 2,
    /// Reserved: a bound on U-mode tasks.
    UTask = 3,
}

impl Source {
    pub const COUNT: usize = 4;
    pub const ALL: [Source; Source::COUNT] = [
        Source::HostVtimer,
        Source::HostPreempt,
        Source::IommuDrain,
        Source::UTask,
    ];
    fn bit(self) -> u8 {
        1 << self as u8
    }
}

/// A set of sources (those that fired).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sources(u8);

impl Sources {
    pub const EMPTY: Sources = Sources(0);

    pub fn contains(self, s: Source) -> bool {
        self.0 & s.bit() != 0
    }
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
    pub fn with(self, s: Source) -> Sources {
        Sources(self.0 | s.bit())
    }
    pub fn iter(self) -> impl Iterator<Item = Source> {
        Source::ALL.into_iter().filter(move |s| self.contains(*s))
    }
}

/// What the caller must write to the hardware timer after an operation:
/// `Some(deadline)` when the earliest deadline differs from what the
/// hardware holds, `None` when the hardware is already right.
pub type Program = Option<u64>;

/// One hart's deadlines and what its hardware timer was last given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mux {
    deadlines: [u64; Source::COUNT],
    programmed: u64,
}

impl Default for Mux {
    fn default() -> Self {
        Mux::new()
    }
}

impl Mux {
    /// Nothing armed; the hardware is assumed to hold [`NEVER`] (Salus
    /// writes that at hart init).
    pub const fn new() -> Mux {
        Mux {
            deadlines: [NEVER; Source::COUNT],
            programmed: NEVER,
        }
    }

    /// The deadline of `s` ([`NEVER`] if not armed).
    pub fn deadline(&self, s: Source) -> u64 {
        self.deadlines[s as usize]
    }

    /// The earliest armed deadline, [`NEVER`] if none.
    pub fn next(&self) -> u64 {
        let d = &self.deadlines;
        d[0].min(d[1]).min(d[2].min(d[3]))
    }

    /// What the hardware was last given.
    pub fn programmed(&self) -> u64 {
        self.programmed
    }

    fn reprogram(&mut self) -> Program {
        let next = self.next();
        if next == self.programmed {
            return None;
        }
        self.programmed = next;
        Some(next)
    }

    /// Arms (or re-arms) `s` for `deadline` ([`NEVER`] disarms).
    pub fn set(&mut self, s: Source, deadline: u64) -> Program {
        self.deadlines[s as usize] = deadline;
        self.reprogram()
    }

    /// Disarms `s`.
    pub fn cancel(&mut self, s: Source) -> Program {
        self.set(s, NEVER)
    }

    /// On the S-timer interrupt at time `now`: disarms and returns every
    /// source whose deadline passed, and the deadline the hardware must get
    /// next. That deadline is always returned (even if unchanged): the
    /// interrupt is pending until the hardware is written again.
    pub fn expired(&mut self, now: u64) -> (Sources, u64) {
        let mut fired = Sources::EMPTY;
        for s in Source::ALL {
            let d = &mut self.deadlines[s as usize];
            if *d != NEVER && *d <= now {
                *d = NEVER;
                fired = fired.with(s);
            }
        }
        self.programmed = self.next();
        (fired, self.programmed)
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use proptest::prelude::*;
    use std::vec::Vec;

    #[test]
    fn empty_programs_never() {
        let mut m = Mux::new();
        assert_eq!(m.next(), NEVER);
        assert_eq!(m.cancel(Source::IommuDrain), None);
        assert_eq!(m.expired(123), (Sources::EMPTY, NEVER));
    }

    #[test]
    fn earliest_wins_and_hardware_written_only_on_change() {
        let mut m = Mux::new();
        assert_eq!(m.set(Source::IommuDrain, 500), Some(500));
        assert_eq!(m.set(Source::HostPreempt, 900), None);
        assert_eq!(m.set(Source::HostPreempt, 100), Some(100));
        assert_eq!(m.cancel(Source::HostPreempt), Some(500));
        assert_eq!(m.programmed(), 500);
    }

    /// Finding 13: a TVM run arms and cancels the host's preemption
    /// deadline; the drain deadline must survive and be what the hardware
    /// holds afterwards (before the multiplexer, the run wrote NEVER).
    #[test]
    fn drain_survives_preempt_set_and_cancel() {
        let mut m = Mux::new();
        m.set(Source::IommuDrain, 1_000);
        for host in [10, 1_000, 5_000, NEVER] {
            m.set(Source::HostPreempt, host);
            assert_eq!(m.programmed(), host.min(1_000));
            m.cancel(Source::HostPreempt);
            assert_eq!(m.deadline(Source::IommuDrain), 1_000);
            assert_eq!(m.programmed(), 1_000);
        }
    }

    /// A TVM-time interrupt for the drain alone reports only the drain.
    #[test]
    fn internal_expiry_is_not_the_hosts() {
        let mut m = Mux::new();
        m.set(Source::IommuDrain, 100);
        m.set(Source::HostPreempt, 200);
        let (fired, next) = m.expired(150);
        assert!(fired.contains(Source::IommuDrain));
        assert!(!fired.contains(Source::HostPreempt));
        assert_eq!(next, 200);
        let (fired, next) = m.expired(200);
        assert_eq!(fired.iter().collect::<Vec<_>>(), [Source::HostPreempt]);
        assert_eq!(next, NEVER);
    }

    #[derive(Clone, Debug)]
    enum Op {
        Set(usize, u64),
        Cancel(usize),
        Expired(u64),
    }

    fn op() -> impl Strategy<Value = Op> {
        let deadline = prop_oneof![0u64..1_000, Just(NEVER), any::<u64>()];
        prop_oneof![
            (0..Source::COUNT, deadline).prop_map(|(s, d)| Op::Set(s, d)),
            (0..Source::COUNT).prop_map(Op::Cancel),
            (0u64..1_200).prop_map(Op::Expired),
        ]
    }

    proptest! {
        /// Against a plain model: the hardware always holds the earliest
        /// armed deadline, a `Program` is returned exactly when that
        /// changes, expiry fires exactly the passed deadlines and leaves
        /// the others untouched.
        #[test]
        fn matches_model(ops in proptest::collection::vec(op(), 0..64)) {
            let mut m = Mux::new();
            let mut model = [NEVER; Source::COUNT];
            let mut hw = NEVER;
            for o in ops {
                match o {
                    Op::Set(..) | Op::Cancel(_) => {
                        let (s, d) = match o {
                            Op::Set(s, d) => (s, d),
                            Op::Cancel(s) => (s, NEVER),
                            Op::Expired(_) => unreachable!(),
                        };
                        model[s] = d;
                        let p = if d == NEVER && s % 2 == 0 {
                            m.cancel(Source::ALL[s])
                        } else {
                            m.set(Source::ALL[s], d)
                        };
                        let want = *model.iter().min().unwrap();
                        prop_assert_eq!(p, (want != hw).then_some(want));
                        hw = want;
                    }
                    Op::Expired(now) => {
                        let (fired, next) = m.expired(now);
                        for (i, d) in model.iter_mut().enumerate() {
                            let passed = *d != NEVER && *d <= now;
                            prop_assert_eq!(fired.contains(Source::ALL[i]), passed);
                            if passed {
                                *d = NEVER;
                            }
                        }
                        hw = *model.iter().min().unwrap();
                        prop_assert_eq!(next, hw);
                        prop_assert!(next == NEVER || next > now);
                    }
                }
                for (i, d) in model.iter().enumerate() {
                    prop_assert_eq!(m.deadline(Source::ALL[i]), *d);
                }
                prop_assert_eq!(m.programmed(), hw);
            }
        }
    }
}
