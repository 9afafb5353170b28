// SPDX-License-Identifier: GPL-2.0

//! What the std tests share.

#![allow(dead_code)]

use std::time::{Duration, Instant};

use rqspinlock_host::platform::{current_state, HostPlatform as P};
use rqspinlock_host::rqspinlock::RqSpinLock;

/// Pending bit of the lock word.
pub(crate) const PENDING: u32 = 1 << 8;
/// Tail bits of the lock word.
pub(crate) const TAIL: u32 = 0xffff_0000;

/// This thread's CPU holds nothing and uses no MCS node.
pub(crate) fn assert_cpu_idle() {
    let state = current_state();
    assert_eq!(state.held().count(), 0, "held-locks table not empty");
    assert_eq!(state.nesting(), 0, "MCS node count not restored");
}

/// Releases `lock`, which this thread took.
pub(crate) fn unlock(lock: &RqSpinLock) {
    // SAFETY: every caller took `lock` successfully on this thread before.
    unsafe { lock.unlock::<P>() }
}

/// Waits until `cond` holds for the lock word, for at most 2 s (the lock's
/// own deadlines are shorter, so a test that needs longer is broken), and
/// returns the word that satisfied it.
pub(crate) fn wait_word(lock: &RqSpinLock, what: &str, cond: impl Fn(u32) -> bool) -> u32 {
    let start = Instant::now();
    loop {
        let v = lock.value();
        if cond(v) {
            return v;
        }
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "lock word {:#010x}: never {what}",
            lock.value()
        );
        std::thread::yield_now();
    }
}

/// The MCS node index a tail in `word` names.
pub(crate) fn tail_idx(word: u32) -> u32 {
    (word >> 16) & 3
}
