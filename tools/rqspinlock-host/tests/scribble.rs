// SPDX-License-Identifier: GPL-2.0

//! Lock words overwritten with arbitrary values, as a BPF program can do in
//! our 6.12 port. Every attempt must return within its deadlines (no panic,
//! no hang, no out-of-bounds node), and the lock must work again once the
//! word is reset. Mutual exclusion is not checked: scribbling forfeits it.
//!
//! Its own test binary, so no other test shares the per-CPU nodes that
//! garbage tails may name.

#![cfg(not(loom))]

use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use rqspinlock_host::platform::{current_cpu, current_state, HostPlatform as P, MAX_HOST_CPUS};
use rqspinlock_host::rqspinlock::{LockError, RqSpinLock, MAX_CPUS};

/// Longest a single attempt may take: head deadline (0.5 s) plus slack for
/// an oversubscribed 2-core host.
const BOUND: Duration = Duration::from_millis(1500);

/// Tail bits naming node `idx` of `cpu`, as the lock encodes them.
fn tail(cpu: u32, idx: u32) -> u32 {
    ((cpu + 1) << 18) | (idx << 16)
}

/// xorshift32: deterministic garbage without extra crates.
struct Rng(u32);

impl Rng {
    fn next(&mut self) -> u32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 17;
        self.0 ^= self.0 << 5;
        self.0
    }
}

/// One attempt on a scribbled word; returns how long it took.
fn attempt(lock: &RqSpinLock) -> Duration {
    attempt_result(lock).1
}

/// One attempt: whether it took the lock (released again at once), and
/// how long it took.
fn attempt_result(lock: &RqSpinLock) -> (Result<(), LockError>, Duration) {
    let start = Instant::now();
    let res = lock.lock::<P>();
    if res.is_ok() {
        // SAFETY: just acquired on this thread.
        unsafe { lock.unlock::<P>() };
    }
    (res, start.elapsed())
}

/// What an attempt on word `v` must return, where that is defined: a word
/// with the locked or the pending byte set and no tail names an owner or a
/// pending waiter that never goes away, so the attempt waits it out and
/// times out (it is on no CPU's held table: no deadlock to see). With a
/// garbage tail the outcome depends on which node the tail names and what
/// that node does meanwhile: only the bound is checked.
fn expected(v: u32) -> Option<Result<(), LockError>> {
    (v & 0xffff != 0 && v >> 16 == 0).then_some(Err(LockError::Timeout))
}

fn assert_cpu_idle() {
    let state = current_state();
    assert_eq!(state.held().count(), 0, "held-locks table not empty");
    assert_eq!(state.nesting(), 0, "MCS node count not restored");
}

#[test]
fn crafted_words_return_within_bound() {
    // Each value on its own lock and thread, all at once, to keep the run
    // short (most of them wait out a deadline).
    let values = |own: u32| -> Vec<u32> {
        vec![
            1,                                  // held, never released
            0x100,                              // pending, never cleared
            0xff00,                             // garbage pending byte
            0xffff,                             // both bytes
            0x1_0000,                           // idx without a CPU
            0x3_0000,                           // idx 3 without a CPU
            u32::MAX,                           // everything
            tail(MAX_CPUS - 1, 3),              // largest encodable CPU
            tail(MAX_HOST_CPUS, 0),             // first unknown CPU
            tail(own, 0),                       // our own node
            tail(own, 0) | 1,                   // our own node, held
            tail(MAX_HOST_CPUS - 1, 2),         // a known, idle node
            tail(MAX_HOST_CPUS - 1, 2) | 0x101, // same, plus owner/pending
            tail(own, 3) | 0x100,               // our own last node, pending
        ]
    };
    let count = values(0).len();
    thread::scope(|s| {
        for i in 0..count {
            s.spawn(move || {
                let lock = RqSpinLock::new();
                let v = values(current_cpu())[i];
                lock.store_raw(v);
                let (res, took) = attempt_result(&lock);
                assert!(took <= BOUND, "word {v:#010x}: took {took:?}");
                if let Some(want) = expected(v) {
                    assert_eq!(res, want, "word {v:#010x}");
                }
                assert_cpu_idle();
                // Reset, and the lock is fine again.
                lock.store_raw(0);
                let took = attempt(&lock);
                assert!(took < Duration::from_millis(50), "after reset: {took:?}");
                assert_eq!(lock.value(), 0, "word {v:#010x}");
                assert_cpu_idle();
            });
        }
    });
}

#[test]
fn random_words_under_contention() {
    const LOCKS: usize = 3;
    const LOCKERS: usize = 2;
    const SCRIBBLE_FOR: Duration = Duration::from_millis(1500);
    let locks: Vec<RqSpinLock> = (0..LOCKS).map(|_| RqSpinLock::new()).collect();
    let stop = AtomicBool::new(false);

    thread::scope(|s| {
        for (n, lock) in locks.iter().enumerate() {
            let stop = &stop;
            for _ in 0..LOCKERS {
                s.spawn(move || {
                    let mut attempts = 0u32;
                    while !stop.load(Ordering::Relaxed) {
                        let took = attempt(lock);
                        assert!(took <= BOUND, "lock {n}: attempt took {took:?}");
                        attempts += 1;
                    }
                    assert_cpu_idle();
                    attempts
                });
            }
            s.spawn(move || {
                let mut rng = Rng(0x9e37_79b9 ^ (n as u32 + 1));
                let start = Instant::now();
                while start.elapsed() < SCRIBBLE_FOR {
                    let mut v = rng.next();
                    // Bias half of the values towards tails naming real
                    // nodes, where the interesting races are.
                    if v & 1 == 0 {
                        v = (v & 0xffff) | tail(v % MAX_HOST_CPUS, (v >> 8) & 3);
                    }
                    lock.store_raw(v);
                    thread::sleep(Duration::from_millis(u64::from(v % 20)));
                }
            });
        }
        // Stop the lockers after the scribblers are done and the words are
        // reset; their last attempts still see leftovers of the garbage.
        s.spawn(|| {
            thread::sleep(SCRIBBLE_FOR + Duration::from_millis(100));
            for l in &locks {
                l.store_raw(0);
            }
            thread::sleep(Duration::from_millis(1200));
            stop.store(true, Ordering::Relaxed);
        });
    });

    // Every waiter has returned. Whatever state the queues were left in,
    // after a reset the locks work again.
    for lock in &locks {
        lock.store_raw(0);
        lock.lock::<P>().expect("lock unusable after scribbling");
        // SAFETY: just acquired.
        unsafe { lock.unlock::<P>() };
        assert_eq!(lock.value(), 0);
    }
    assert_cpu_idle();
}

/// A program clears the pending byte (and the locked byte, and writes a
/// tail) while a pending waiter waits. Upstream's `clear_pending_set_locked`
/// is `fetch_add(1 - PENDING)`, which then borrows from the tail bits; the
/// tail must survive untouched and the pending byte must be clear.
#[test]
fn cleared_pending_byte_does_not_corrupt_tail() {
    let lock = RqSpinLock::new();
    let garbage = tail(MAX_HOST_CPUS - 1, 2);
    lock.lock::<P>().unwrap();
    let seen = thread::scope(|s| {
        let waiter = s.spawn(|| {
            let res = lock.lock::<P>().map(|()| lock.value());
            if res.is_ok() {
                // SAFETY: just acquired on this thread.
                unsafe { lock.unlock::<P>() };
            }
            assert_cpu_idle();
            res
        });
        let start = Instant::now();
        while lock.value() != 0x101 {
            assert!(
                start.elapsed() < Duration::from_secs(1),
                "no pending waiter"
            );
            thread::yield_now();
        }
        // "Unlock" by scribbling: locked and pending cleared, a tail set.
        lock.store_raw(garbage);
        waiter.join().unwrap()
    });
    assert_eq!(seen, Ok(garbage | 1), "word inside the critical section");
    // Our own held-table entry is still there; drop it.
    // SAFETY: this thread took the lock above (the scribble released it).
    unsafe { lock.unlock::<P>() };
    assert_eq!(lock.value(), garbage);
    lock.store_raw(0);
    assert_cpu_idle();
}
