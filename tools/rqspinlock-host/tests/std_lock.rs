// SPDX-License-Identifier: GPL-2.0

//! Behaviour tests with real threads and the real clock (one thread = one
//! CPU). Run with `cargo test -p rqspinlock-host`.

#![cfg(not(loom))]

use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Barrier;
use std::thread;
use std::time::{Duration, Instant};

use rqspinlock_host::platform::{current_state, HostPlatform as P};
use rqspinlock_host::rqspinlock::{LockError, RqSpinLock, NR_HELD};

/// Data protected by a lock in a test.
struct Protected<T>(UnsafeCell<T>);

// SAFETY: the tests only touch the contents while holding the lock that
// protects them (checked by an "inside" flag as well).
unsafe impl<T: Send> Sync for Protected<T> {}

impl<T> Protected<T> {
    fn get(&self) -> *mut T {
        self.0.get()
    }
}

/// This thread's CPU holds nothing and uses no MCS node.
fn assert_cpu_idle() {
    let state = current_state();
    assert_eq!(state.held().count(), 0, "held-locks table not empty");
    assert_eq!(state.nesting(), 0, "MCS node count not restored");
}

fn unlock(lock: &RqSpinLock) {
    // SAFETY: every caller took `lock` successfully on this thread before.
    unsafe { lock.unlock::<P>() }
}

#[test]
fn stress_counter_is_exact() {
    const THREADS: usize = 6;
    const ITERS: u64 = 20_000;
    let lock = RqSpinLock::new();
    let counter = Protected(UnsafeCell::new(0u64));
    let inside = AtomicBool::new(false);

    let timeouts: u64 = thread::scope(|s| {
        let workers: Vec<_> = (0..THREADS)
            .map(|_| {
                s.spawn(|| {
                    let mut done = 0;
                    let mut timeouts = 0;
                    while done < ITERS {
                        match lock.lock::<P>() {
                            Ok(()) => {
                                assert!(!inside.swap(true, Ordering::Relaxed), "two owners");
                                // SAFETY: we hold `lock`.
                                unsafe { *counter.get() += 1 };
                                inside.store(false, Ordering::Relaxed);
                                unlock(&lock);
                                done += 1;
                            }
                            // A single lock cannot deadlock; a descheduled
                            // owner on an oversubscribed host can time out.
                            Err(e) => {
                                assert_eq!(e, LockError::Timeout);
                                timeouts += 1;
                            }
                        }
                    }
                    assert_cpu_idle();
                    timeouts
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).sum()
    });

    // SAFETY: all threads are joined.
    assert_eq!(unsafe { *counter.get() }, THREADS as u64 * ITERS);
    assert_eq!(lock.value(), 0, "lock word not back to 0");
    assert!(timeouts < 100, "{timeouts} timeouts under plain contention");
}

#[test]
fn aa_is_detected_immediately() {
    let lock = RqSpinLock::new();
    lock.lock::<P>().unwrap();
    let start = Instant::now();
    assert_eq!(lock.lock::<P>(), Err(LockError::Aa));
    let elapsed = start.elapsed();
    assert!(elapsed < Duration::from_millis(50), "AA took {elapsed:?}");
    // The failed attempt left the word and our table as they were.
    assert_eq!(lock.value(), 1);
    assert_eq!(current_state().held().count(), 1);
    unlock(&lock);
    assert_eq!(lock.value(), 0);
    assert_cpu_idle();
}

#[test]
fn abba_across_two_threads_is_detected() {
    for round in 0..20 {
        let a = RqSpinLock::new();
        let b = RqSpinLock::new();
        let barrier = Barrier::new(2);
        let start = Instant::now();
        let take = |first: &RqSpinLock, second: &RqSpinLock| {
            first.lock::<P>().unwrap();
            barrier.wait();
            let res = second.lock::<P>();
            if res.is_ok() {
                unlock(second);
            }
            unlock(first);
            assert_cpu_idle();
            res
        };
        let (ab, ba) = thread::scope(|s| {
            let t1 = s.spawn(|| take(&a, &b));
            let t2 = s.spawn(|| take(&b, &a));
            (t1.join().unwrap(), t2.join().unwrap())
        });
        let elapsed = start.elapsed();
        assert!(
            ab == Err(LockError::Abba) || ba == Err(LockError::Abba),
            "round {round}: no deadlock reported: {ab:?} {ba:?}"
        );
        for r in [ab, ba] {
            assert_ne!(r, Err(LockError::Timeout), "round {round}: timed out");
        }
        assert!(
            elapsed < Duration::from_millis(200),
            "round {round}: {elapsed:?}"
        );
        assert_eq!((a.value(), b.value()), (0, 0));
    }
}

#[test]
fn untracked_held_lock_times_out() {
    const LOCKS: usize = NR_HELD + 3;
    let locks: Vec<RqSpinLock> = (0..LOCKS).map(|_| RqSpinLock::new()).collect();
    for l in &locks {
        l.lock::<P>().unwrap();
    }
    assert_eq!(current_state().held().count(), LOCKS as u32);

    // Entry NR_HELD + 1 is beyond the table: AA cannot see it, only the
    // pending waiter's 0.25 s deadline ends the attempt.
    let untracked = &locks[NR_HELD + 1];
    let start = Instant::now();
    assert_eq!(untracked.lock::<P>(), Err(LockError::Timeout));
    let elapsed = start.elapsed();
    assert!(
        elapsed >= Duration::from_millis(200) && elapsed <= Duration::from_secs(2),
        "timeout after {elapsed:?}"
    );
    // A tracked one is still an immediate AA.
    assert_eq!(locks[3].lock::<P>(), Err(LockError::Aa));
    // So is the one in the table's last slot: past NR_HELD the attempt is
    // not stored, so that slot is a held lock, not the attempt.
    let start = Instant::now();
    assert_eq!(locks[NR_HELD - 1].lock::<P>(), Err(LockError::Aa));
    assert!(
        start.elapsed() < Duration::from_millis(100),
        "last slot AA took {:?}",
        start.elapsed()
    );

    for l in locks.iter().rev() {
        unlock(l);
    }
    assert_cpu_idle();
    assert!(locks.iter().all(|l| l.value() == 0));
}

#[test]
fn stalled_holder_makes_waiters_time_out_then_lock_recovers() {
    const WAITERS: usize = 3;
    let lock = RqSpinLock::new();
    lock.lock::<P>().unwrap();

    let results: Vec<(Result<(), LockError>, Duration)> = thread::scope(|s| {
        let waiters: Vec<_> = (0..WAITERS)
            .map(|_| {
                s.spawn(|| {
                    let start = Instant::now();
                    let res = lock.lock::<P>();
                    let elapsed = start.elapsed();
                    assert_cpu_idle();
                    (res, elapsed)
                })
            })
            .collect();
        waiters.into_iter().map(|w| w.join().unwrap()).collect()
    });

    for (res, elapsed) in &results {
        assert_eq!(*res, Err(LockError::Timeout));
        assert!(
            *elapsed >= Duration::from_millis(200),
            "gave up after {elapsed:?}"
        );
        assert!(
            *elapsed <= Duration::from_secs(2),
            "gave up after {elapsed:?}"
        );
    }
    // The queue was torn down completely: tail and pending are 0, only our
    // locked byte is left.
    assert_eq!(lock.value(), 1);

    unlock(&lock);
    assert_eq!(lock.value(), 0);
    // And the lock works again, contended too.
    thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                for _ in 0..1000 {
                    lock.lock::<P>().unwrap();
                    unlock(&lock);
                }
                assert_cpu_idle();
            });
        }
    });
    assert_eq!(lock.value(), 0);
    assert_cpu_idle();
}

#[test]
fn out_of_order_unlock_leaves_no_stale_entry() {
    let a = RqSpinLock::new();
    let b = RqSpinLock::new();
    let addr = |l: &RqSpinLock| l as *const RqSpinLock as usize;
    let held = current_state().held();

    a.lock::<P>().unwrap();
    b.lock::<P>().unwrap();
    unlock(&a);
    assert_eq!(held.count(), 1);
    assert!(
        !held.contains(addr(&a)),
        "stale entry for the unlocked lock"
    );
    assert!(held.contains(addr(&b)), "entry of the still-held lock lost");

    // No false AA on the released lock, and a real AA on the held one.
    let start = Instant::now();
    a.lock::<P>().unwrap();
    assert!(start.elapsed() < Duration::from_millis(50));
    assert_eq!(b.lock::<P>(), Err(LockError::Aa));

    // Out of order once more: table [b, a] -> [a].
    unlock(&b);
    assert_eq!(held.count(), 1);
    assert!(held.contains(addr(&a)) && !held.contains(addr(&b)));
    unlock(&a);
    assert_cpu_idle();
    assert!(!held.contains(addr(&a)));
    assert_eq!((a.value(), b.value()), (0, 0));
}
