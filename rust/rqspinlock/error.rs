// SPDX-License-Identifier: GPL-2.0

//! Why a lock attempt failed.

/// The reason a resilient lock attempt gave up. The lock is not held.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockError {
    /// An AA or ABBA deadlock was detected, or an NMI / nested context found
    /// the lock taken and no MCS node to queue with (`-EDEADLK`).
    Deadlock,
    /// The owner (or the waiter ahead of us) did not let go in time, or the
    /// queue we were in was torn down by a head that timed out (`-ETIMEDOUT`).
    Timeout,
}

impl LockError {
    /// The negative errno the kfuncs return: `-EDEADLK` (-35) or
    /// `-ETIMEDOUT` (-110), the values on x86 and arm64.
    pub const fn to_errno(self) -> i32 {
        match self {
            LockError::Deadlock => -35,
            LockError::Timeout => -110,
        }
    }
}
