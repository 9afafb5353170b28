// SPDX-License-Identifier: GPL-2.0

//! The queue's two ways out: a deadlock found by the head keeps the queue
//! and passes the head role on; a timeout at the head tears the whole queue
//! down, every waiter behind it leaving with -ETIMEDOUT (they have no
//! deadline of their own).
//!
//! Its own test binary, and the tests take turns (`SERIAL`): they measure
//! deadlines of a few hundred milliseconds.

#![cfg(not(loom))]

mod common;

use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use common::{assert_cpu_idle, unlock, wait_word, PENDING, TAIL};
use rqspinlock_host::platform::HostPlatform as P;
use rqspinlock_host::rqspinlock::{LockError, RqSpinLock, DEF_TIMEOUT_NS, HEAD_TIMEOUT_NS};

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Slack for a loaded 2-core host on top of a deadline.
const SLACK: Duration = Duration::from_millis(700);

/// An attempt's result, how long it took, and when it ended.
type Attempt = (Result<(), LockError>, Duration, Instant);

/// Spawns a thread that tries `lock` once (releasing it if taken) and waits
/// until the lock word shows it arrived (`arrived`).
fn waiter<'s>(
    s: &'s thread::Scope<'s, '_>,
    lock: &'s RqSpinLock,
    arrived: impl Fn(u32) -> bool,
) -> thread::ScopedJoinHandle<'s, Attempt> {
    let before = lock.value();
    let t = s.spawn(move || {
        let start = Instant::now();
        let res = lock.lock::<P>();
        let took = start.elapsed();
        if res.is_ok() {
            unlock(lock);
        }
        assert_cpu_idle();
        (res, took, start + took)
    });
    wait_word(lock, "showing the new waiter", |v| {
        v != before && arrived(v)
    });
    t
}

/// ABBA found by the queue head of B: T1 holds A and heads B's queue, with
/// T3 queued behind it; the main thread holds B and waits for A as a
/// waiter that runs no checks (behind A's pending waiter and head), so only
/// T1 can find the cycle. T1 must fail with -EDEADLK at once and hand the
/// head role to T3, which then gets B: the queue survives the deadlock
/// (upstream "Disable queue destruction for deadlocks"). Tearing the queue
/// down instead would make T3 fail with -ETIMEDOUT.
#[test]
fn deadlock_at_the_head_keeps_the_queue() {
    let _s = serial();
    let a = RqSpinLock::new();
    let b = RqSpinLock::new();
    b.lock::<P>().unwrap();
    let (t1, t3, pend_b, pend_a, head_a, ours) = thread::scope(|s| {
        // B: owner (us), pending waiter, then T1 as head, T3 behind.
        let pend_b = waiter(s, &b, |v| v & PENDING != 0);
        let (a_held_tx, a_held) = std::sync::mpsc::channel();
        let t1_before = b.value();
        let (a, b) = (&a, &b);
        let t1 = s.spawn(move || {
            a.lock::<P>().unwrap();
            a_held_tx.send(()).unwrap();
            let start = Instant::now();
            let res = b.lock::<P>();
            let took = start.elapsed();
            if res.is_ok() {
                unlock(b);
            }
            unlock(a);
            assert_cpu_idle();
            (res, took, start + took)
        });
        a_held.recv().unwrap();
        let t1_tail = wait_word(b, "with T1 queued", |v| v != t1_before && v & TAIL != 0) & TAIL;
        let t3 = waiter(s, b, move |v| v & TAIL != t1_tail);
        // A: T1 owns it; a pending waiter and a head (both check, but hold
        // nothing the others want), then us, checking nothing.
        let pend_a = waiter(s, a, |v| v & PENDING != 0);
        let head_a = waiter(s, a, |v| v & TAIL != 0);
        let start = Instant::now();
        let res = a.lock::<P>();
        let ours = (res, start.elapsed(), Instant::now());
        if res.is_ok() {
            unlock(a);
        }
        unlock(b);
        let j = |t: thread::ScopedJoinHandle<'_, Attempt>| t.join().unwrap();
        (j(t1), j(t3), j(pend_b), j(pend_a), j(head_a), ours)
    });
    assert_eq!(t1.0, Err(LockError::Abba), "T1 (head of B): {t1:?}");
    assert!(
        t1.1 < Duration::from_nanos(DEF_TIMEOUT_NS),
        "T1 found the deadlock only after {:?}",
        t1.1
    );
    assert_eq!(t3.0, Ok(()), "T3 behind T1: {t3:?}");
    for (who, r) in [
        ("B's pending waiter", pend_b),
        ("A's pending waiter", pend_a),
    ] {
        assert_eq!(r.0, Ok(()), "{who}: {r:?}");
    }
    assert_eq!(head_a.0, Ok(()), "A's head: {head_a:?}");
    assert_eq!(ours.0, Ok(()), "us behind A's head: {ours:?}");
    assert_eq!((a.value(), b.value()), (0, 0));
    assert_cpu_idle();
}

/// A stuck owner: the pending waiter times out after its deadline, the
/// head after its own, and every waiter behind the head leaves with it:
/// not before the head's deadline (they have none of their own) and not
/// much after (the teardown passes along the queue at once).
#[test]
fn timeout_at_the_head_tears_the_queue_down() {
    let _s = serial();
    let lock = RqSpinLock::new();
    lock.lock::<P>().unwrap();
    let mut head_start = None;
    let results: Vec<Attempt> = thread::scope(|s| {
        let mut ws = vec![waiter(s, &lock, |v| v & PENDING != 0)];
        for i in 0..3 {
            if i == 0 {
                head_start = Some(Instant::now());
            }
            ws.push(waiter(s, &lock, |v| v & TAIL != 0));
        }
        ws.into_iter().map(|w| w.join().unwrap()).collect()
    });
    let pending = Duration::from_nanos(DEF_TIMEOUT_NS);
    let head = Duration::from_nanos(HEAD_TIMEOUT_NS);
    let (res, took, _) = results[0];
    assert_eq!(res, Err(LockError::Timeout), "the pending waiter: {took:?}");
    assert!(
        took >= pending && took <= pending + SLACK,
        "the pending waiter left after {took:?}, expected {pending:?}..{:?}",
        pending + SLACK
    );
    // The head started (and armed its deadline) after `head_start`; it and
    // the waiters behind it end together, measured from there.
    let head_start = head_start.expect("the head was started");
    for (i, (res, _, end)) in results.iter().enumerate().skip(1) {
        let since = end.duration_since(head_start);
        assert_eq!(*res, Err(LockError::Timeout), "waiter {i}: {since:?}");
        assert!(
            since >= head && since <= head + SLACK,
            "waiter {i} left {since:?} after the head started, expected {head:?}..{:?}",
            head + SLACK
        );
    }
    // Torn down completely: only our locked byte is left.
    assert_eq!(lock.value(), 1);
    unlock(&lock);
    assert_eq!(lock.value(), 0);
    assert_cpu_idle();
}
