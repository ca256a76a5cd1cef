//! Salus's lock: a spin lock whose waiters keep serving the remote-fence
//! requests other harts post to them.
//!
//! A hart that waits for another (a remote fence) may hold a lock the
//! other hart is spinning on. Salus never does that on purpose (see
//! docs/security.md), but a spinning hart still acknowledges fences while it
//! waits, so such a wait can never turn into a deadlock.

use crate::hart;

pub use spin::MutexGuard;

pub struct Mutex<T> {
    inner: spin::Mutex<T>,
}

impl<T> Mutex<T> {
    pub const fn new(value: T) -> Self {
        Mutex {
            inner: spin::Mutex::new(value),
        }
    }

    /// Takes the lock, serving this hart's fence requests while it waits.
    pub fn lock(&self) -> MutexGuard<'_, T> {
        if let Some(g) = self.inner.try_lock() {
            return g;
        }
        // Contended: the spin is timed (bench statistics).
        let since = crate::stats::now();
        loop {
            if let Some(g) = self.inner.try_lock() {
                crate::stats::wait_done(crate::stats::LOCK_SPIN, since);
                return g;
            }
            hart::serve_fences_while_waiting();
            core::hint::spin_loop();
        }
    }
}
