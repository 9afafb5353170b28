// SPDX-License-Identifier: GPL-2.0

//! Why a lock attempt failed.

/// The reason a resilient lock attempt gave up. The lock is not held.
///
/// Mainline reports the first three as `-EDEADLK` and the last as
/// `-ETIMEDOUT` ([`LockError::to_errno`]); the kinds are kept apart so that
/// the module can count and report each one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockError {
    /// AA: this CPU already holds (or is already attempting) the lock, found
    /// in its held-locks table.
    Aa,
    /// ABBA: another CPU holds the lock and waits for one this CPU holds.
    Abba,
    /// An NMI that is not the first waiter on its CPU, or a context without
    /// a free MCS node, found the lock taken: it tries once and does not
    /// queue behind a context it may have interrupted.
    Busy,
    /// The owner (or the waiter ahead of us) did not let go in time, or the
    /// queue we were in was torn down by a head that timed out.
    Timeout,
}

impl LockError {
    /// Whether mainline calls it a deadlock (`-EDEADLK`).
    pub const fn is_deadlock(self) -> bool {
        !matches!(self, LockError::Timeout)
    }

    /// The negative errno the kfuncs return: `-EDEADLK` (-35) or
    /// `-ETIMEDOUT` (-110), the values on x86 and arm64.
    pub const fn to_errno(self) -> i32 {
        if self.is_deadlock() {
            -35
        } else {
            -110
        }
    }
}
