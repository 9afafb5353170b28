// SPDX-License-Identifier: GPL-2.0

//! The loom models; see the parent file for how to run them.

use loom::cell::UnsafeCell;

use loom::sync::Arc;
use loom::thread;

use rqspinlock_host::platform::{raise_interrupt, set_cpu, HostPlatform as P, TickPlatform};
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

/// 20 ms per relax: a waiter gets about a dozen ABBA checks before its
/// 0.25 s deadline, so a deadline can only win if the other thread was
/// preempted that many times, which the preemption bound rules out.
type Fine = TickPlatform<20_000_000>;

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

    /// One locked increment. The owner never stalls (its critical section
    /// does not spin) and the preemption bound keeps any thread from being
    /// held up for the dozens of relaxes a deadline takes with [`Fine`]'s
    /// tick, so every contended attempt must get the lock: a model that
    /// accepted timeouts here would pass with a lock that never hands over.
    fn bump(&self) {
        let res = self.lock.lock::<Fine>();
        assert_eq!(res, Ok(()), "a contended attempt failed");
        // SAFETY: we hold the lock; loom checks the claim.
        self.value.with_mut(|v| unsafe { *v += 1 });
        // SAFETY: acquired just above on this thread.
        unsafe { self.lock.unlock::<Fine>() };
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
                    (0..rounds).for_each(|_| c.bump());
                })
            })
            .collect();
        (0..rounds).for_each(|_| c.bump());
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(c.value(), threads * rounds, "lost or duplicated increment");
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
    exclusion(3, 1, 1);
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
        assert_eq!(lock.lock::<P>(), Err(LockError::Aa));
        // SAFETY: the first lock() succeeded.
        unsafe { lock.unlock::<P>() };
        assert_eq!(lock.value(), 0);
    });
}

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
            .filter(|r| **r == Err(LockError::Abba))
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

/// Proof that the exclusion models can fail: a waiter whose owner does
/// stall (it relaxes inside its critical section, as if interrupted for
/// longer than any deadline) must time out; the assertion in
/// [`Counter::bump`] would then fire. Here the timeout is the expected
/// outcome.
#[test]
fn stalled_owner_makes_the_waiter_time_out() {
    check(1, || {
        set_cpu(0);
        let lock = Arc::new(RqSpinLock::new());
        lock.lock::<P>().unwrap();
        let w = {
            let lock = lock.clone();
            thread::spawn(move || {
                set_cpu(1);
                lock.lock::<P>()
            })
        };
        assert_eq!(w.join().unwrap(), Err(LockError::Timeout));
        // The pending waiter cleared its bit on the way out.
        assert_eq!(lock.value(), 1);
        // SAFETY: taken at the start of the model.
        unsafe { lock.unlock::<P>() };
    });
}

/// A stuck owner with a pending waiter and a queue head behind it: both
/// time out, the head resets the tail, and the word is clean once the
/// owner lets go.
#[test]
fn timed_out_queue_drains() {
    let runs = check(2, || {
        set_cpu(0);
        let lock = Arc::new(RqSpinLock::new());
        lock.lock::<P>().unwrap();
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
        assert_eq!(lock.value(), 1, "tail or pending left behind");
        // SAFETY: taken at the start of the model.
        unsafe { lock.unlock::<P>() };
        assert_eq!(lock.value(), 0);
    });
    assert_branched(runs);
}

/// Same-CPU nesting: CPU 1 waits for A (held by CPU 0) and is interrupted
/// while it spins; the handler takes B, which CPU 0 also contends for. The
/// handler's entry sits on top of the interrupted attempt in CPU 1's table
/// and goes away again; every attempt succeeds and both tables end empty.
#[test]
fn interrupt_nests_on_a_waiting_cpu() {
    let runs = check(2, || {
        set_cpu(0);
        let a = Arc::new(RqSpinLock::new());
        let b = Arc::new(RqSpinLock::new());
        a.lock::<Fine>().unwrap();
        let t = {
            let (a, b) = (a.clone(), b.clone());
            thread::spawn(move || {
                set_cpu(1);
                raise_interrupt(false, move || {
                    assert_eq!(b.lock::<Fine>(), Ok(()));
                    // SAFETY: taken just above, in this handler.
                    unsafe { b.unlock::<Fine>() };
                });
                let res = a.lock::<Fine>();
                if res.is_ok() {
                    // SAFETY: taken just above.
                    unsafe { a.unlock::<Fine>() };
                }
                let state = rqspinlock_host::platform::current_state();
                assert_eq!((state.held().count(), state.nesting()), (0, 0));
                res
            })
        };
        assert_eq!(b.lock::<Fine>(), Ok(()));
        // SAFETY: taken just above; A since the start.
        unsafe {
            b.unlock::<Fine>();
            a.unlock::<Fine>();
        }
        assert_eq!(t.join().unwrap(), Ok(()));
        assert_eq!((a.value(), b.value()), (0, 0));
    });
    assert_branched(runs);
}

/// Out-of-order unlock: CPU 0 takes A then B and releases A first, while
/// CPU 1 takes A then B too. No attempt may fail (there is no cycle, and a
/// stale entry for A in CPU 0's table would fake one), and both tables end
/// empty.
#[test]
fn out_of_order_unlock() {
    let runs = check(2, || {
        let a = Arc::new(RqSpinLock::new());
        let b = Arc::new(RqSpinLock::new());
        let run = |cpu: u32, a: Arc<RqSpinLock>, b: Arc<RqSpinLock>| {
            set_cpu(cpu);
            assert_eq!(a.lock::<Fine>(), Ok(()));
            assert_eq!(b.lock::<Fine>(), Ok(()));
            // SAFETY: both taken above, released once each, A first.
            unsafe {
                a.unlock::<Fine>();
                b.unlock::<Fine>();
            }
            let state = rqspinlock_host::platform::current_state();
            assert_eq!((state.held().count(), state.nesting()), (0, 0));
        };
        let t = {
            let (a, b) = (a.clone(), b.clone());
            thread::spawn(move || run(1, a, b))
        };
        run(0, a.clone(), b.clone());
        t.join().unwrap();
        assert_eq!((a.value(), b.value()), (0, 0));
    });
    assert_branched(runs);
}
