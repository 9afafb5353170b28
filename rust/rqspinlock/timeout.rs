// SPDX-License-Identifier: GPL-2.0

//! Deadline bookkeeping for the waiting loops (upstream `struct
//! rqspinlock_timeout`, `check_timeout()` and the `RES_*_TIMEOUT` macros).
//!
//! Reading the clock on every spin would be wasteful, so a waiting loop calls
//! [`Deadline::check`] on every iteration and the real check runs on the
//! first call and then every [`Platform::SPINS_PER_CHECK`] calls. On the first
//! real check of a waiting period the AA check runs immediately (upstream
//! "Perform AA checks immediately") and the deadline is armed; later checks
//! fail with [`LockError::Timeout`] past the deadline and run the ABBA check
//! at most once per millisecond.
//!
//! All arithmetic is integer nanoseconds; nothing here can panic.

use super::error::LockError;
use super::held::{abba_deadlock, HeldLocks};
use super::platform::Platform;
use super::word::LockWord;

/// Time one critical section may take (upstream `RES_DEF_TIMEOUT`, 0.25 s).
///
/// The pending waiter waits this long for the owner.
pub const DEF_TIMEOUT_NS: u64 = 250_000_000;

/// The queue head waits twice as long: both the owner and a pending waiter
/// may be ahead of it.
pub const HEAD_TIMEOUT_NS: u64 = 2 * DEF_TIMEOUT_NS;

/// Minimum spacing of ABBA checks (upstream `NSEC_PER_MSEC`).
pub const ABBA_INTERVAL_NS: u64 = 1_000_000;

/// Deadline state of one lock attempt.
pub(crate) struct Deadline {
    /// Absolute deadline, valid once `armed`.
    end: u64,
    /// Length of the current waiting period.
    duration: u64,
    /// Time of the last ABBA check (or of arming).
    last_abba: u64,
    /// Spins since the attempt started; a real check runs when it is a
    /// multiple of `P::SPINS_PER_CHECK` (so also on the very first call).
    spin: u32,
    /// Whether `end` has been set for the current waiting period.
    armed: bool,
}

impl Deadline {
    /// `RES_INIT_TIMEOUT`: the first check of the attempt runs at once.
    pub(crate) fn new() -> Self {
        Self {
            end: 0,
            duration: 0,
            last_abba: 0,
            spin: 0,
            armed: false,
        }
    }

    /// `RES_RESET_TIMEOUT`: start a new waiting period of `duration` ns.
    ///
    /// The spin counter is deliberately not reset (upstream neither): the
    /// next real check comes on the usual cadence.
    pub(crate) fn reset(&mut self, duration: u64) {
        self.armed = false;
        self.duration = duration;
    }

    /// Whether a real check is due on this spin; advances the counter.
    pub(crate) fn due<P: Platform>(&mut self) -> bool {
        // A mask rather than `%`: cheap, and `is_multiple_of()` is newer
        // than the kernel's minimum rustc.
        let due = self.spin & (P::SPINS_PER_CHECK.max(1) - 1) == 0;
        self.spin = self.spin.wrapping_add(1);
        due
    }

    /// `RES_CHECK_TIMEOUT`: amortised deadline + deadlock check while waiting
    /// for `lock` to clear the bits in `mask`.
    pub(crate) fn check<P: Platform>(
        &mut self,
        word: &LockWord,
        lock: usize,
        mask: u32,
        cpu: u32,
        held: &HeldLocks,
    ) -> Result<(), LockError> {
        if !self.due::<P>() {
            return Ok(());
        }
        if !self.armed {
            if held.holds_below_top(lock) {
                return Err(LockError::Aa);
            }
            self.arm::<P>();
            return Ok(());
        }
        let now = P::now_ns();
        if now > self.end {
            return Err(LockError::Timeout);
        }
        if now > self.last_abba.saturating_add(ABBA_INTERVAL_NS) {
            self.last_abba = now;
            if abba_deadlock::<P>(word, lock, mask, cpu, held) {
                return Err(LockError::Abba);
            }
        }
        Ok(())
    }

    fn arm<P: Platform>(&mut self) {
        let now = P::now_ns();
        self.last_abba = now;
        self.end = now.saturating_add(self.duration);
        self.armed = true;
    }
}
