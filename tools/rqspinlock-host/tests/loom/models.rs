// SPDX-License-Identifier: GPL-2.0

//! The loom models; see the parent file for how to run them.

use loom::cell::UnsafeCell;

use loom::sync::Arc;
use loom::thread;

use rqspinlock_host::platform::{set_cpu, HostPlatform as P, TickPlatform};
use rqspinlock_host::rqspinlock::{LockError, RqSpinLock};

/// Runs `f` under loom with at most `preemptions` preemptions per execution
/// and returns the number of executions explored (also printed), so models
/// can check that they really branched.
fn check(preemptions: usize, f: impl Fn() + Sync + Send + 'static) -> usize {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let runs = std::sync::Arc::new(AtomicUsize::new(0));
    let counter = runs.clone();
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(preemptions);
    builder.check(move || {
        counter.fetch_add(1, Ordering::Relaxed);
        f()
    });
    let runs = runs.load(Ordering::Relaxed);
    println!("{runs} executions explored");
    runs
}

/// Checks that a concurrent model explored more than a trivial schedule.
fn assert_branched(runs: usize) {
    assert!(
        runs > 10,
        "only {runs} executions: the model stopped branching"
    );
}

/// A lock and the counter it protects; loom's `UnsafeCell` reports any
/// access that is not ordered by the lock.
struct Counter {
    lock: RqSpinLock,
    value: UnsafeCell<u32>,
}

impl Counter {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            lock: RqSpinLock::new(),
            value: UnsafeCell::new(0),
        })
    }

    /// One locked increment; returns whether it happened.
    fn bump(&self) -> bool {
        match self.lock.lock::<P>() {
            Ok(()) => {
                // SAFETY: we hold the lock; loom checks the claim.
                self.value.with_mut(|v| unsafe { *v += 1 });
                // SAFETY: acquired just above on this thread.
                unsafe { self.lock.unlock::<P>() };
                true
            }
            Err(e) => {
                // One lock, no nesting: only a timeout is possible.
                assert_eq!(e, LockError::Timeout);
                false
            }
        }
    }

    fn value(&self) -> u32 {
        // SAFETY: called after all threads are joined.
        self.value.with(|v| unsafe { *v })
    }
}

fn exclusion(threads: u32, rounds: u32, preemptions: usize) {
    let runs = check(preemptions, move || {
        set_cpu(0);
        let c = Counter::new();
        let handles: Vec<_> = (1..threads)
            .map(|cpu| {
                let c = c.clone();
                thread::spawn(move || {
                    set_cpu(cpu);
                    (0..rounds).map(|_| u32::from(c.bump())).sum::<u32>()
                })
            })
            .collect();
        let mut done = (0..rounds).map(|_| u32::from(c.bump())).sum::<u32>();
        for h in handles {
            done += h.join().unwrap();
        }
        assert_eq!(c.value(), done, "lost or duplicated increment");
        assert_eq!(c.lock.value(), 0, "lock word not clean");
    });
    assert_branched(runs);
}

#[test]
fn mutual_exclusion_two_threads() {
    exclusion(2, 2, 3);
}

#[test]
fn mutual_exclusion_three_threads() {
    exclusion(3, 1, 2);
}

/// Four contenders: owner, pending waiter, queue head and a non-head waiter
/// linked behind it, so the MCS hand-over runs.
#[test]
fn mutual_exclusion_four_threads() {
    exclusion(4, 1, 1);
}

#[test]
fn aa_is_detected() {
    check(2, || {
        set_cpu(0);
        let lock = RqSpinLock::new();
        lock.lock::<P>().unwrap();
        assert_eq!(lock.lock::<P>(), Err(LockError::Deadlock));
        // SAFETY: the first lock() succeeded.
        unsafe { lock.unlock::<P>() };
        assert_eq!(lock.value(), 0);
    });
}

/// 20 ms per relax: a waiter gets about a dozen ABBA checks before its
/// 0.25 s deadline, so a deadline can only win if the other thread was
/// preempted that many times, which the preemption bound rules out.
type Fine = TickPlatform<20_000_000>;

#[test]
fn abba_is_detected() {
    let runs = check(2, || {
        let a = Arc::new(RqSpinLock::new());
        let b = Arc::new(RqSpinLock::new());
        let take = |cpu: u32, first: Arc<RqSpinLock>, second: Arc<RqSpinLock>| {
            set_cpu(cpu);
            first.lock::<Fine>().unwrap();
            let res = second.lock::<Fine>();
            // SAFETY: each unlock matches a successful lock() above.
            unsafe {
                if res.is_ok() {
                    second.unlock::<Fine>();
                }
                first.unlock::<Fine>();
            }
            res
        };
        let t = {
            let (a, b) = (a.clone(), b.clone());
            thread::spawn(move || take(1, b, a))
        };
        let ab = take(0, a.clone(), b.clone());
        let ba = t.join().unwrap();
        // If the two attempts overlapped, at least one saw the cycle;
        // otherwise both succeeded one after the other. Never a timeout.
        let deadlocks = [ab, ba]
            .iter()
            .filter(|r| **r == Err(LockError::Deadlock))
            .count();
        assert!(
            deadlocks >= 1 || (ab.is_ok() && ba.is_ok()),
            "ABBA not detected: {ab:?} {ba:?}"
        );
        assert!(!matches!(ab, Err(LockError::Timeout)), "{ab:?}");
        assert!(!matches!(ba, Err(LockError::Timeout)), "{ba:?}");
        assert_eq!((a.value(), b.value()), (0, 0));
    });
    assert_branched(runs);
}

#[test]
fn timed_out_queue_drains() {
    // The owner (main thread) and a stuck pending waiter (simulated by the
    // pending bit) never go away, so both waiters must queue, the head must
    // time out and tear the queue down, and the tail must end up 0.
    const OWNER_AND_PENDING: u32 = 0x101;
    let runs = check(2, || {
        set_cpu(0);
        let lock = Arc::new(RqSpinLock::new());
        lock.lock::<P>().unwrap();
        lock.store_raw(OWNER_AND_PENDING);
        let waiters: Vec<_> = (1..3)
            .map(|cpu| {
                let lock = lock.clone();
                thread::spawn(move || {
                    set_cpu(cpu);
                    lock.lock::<P>()
                })
            })
            .collect();
        for w in waiters {
            assert_eq!(w.join().unwrap(), Err(LockError::Timeout));
        }
        assert_eq!(lock.value(), OWNER_AND_PENDING, "tail not reset");
        lock.store_raw(1);
        // SAFETY: taken at the start of the model.
        unsafe { lock.unlock::<P>() };
        assert_eq!(lock.value(), 0);
    });
    assert_branched(runs);
}
