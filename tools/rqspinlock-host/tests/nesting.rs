// SPDX-License-Identifier: GPL-2.0

//! Contexts nesting on one CPU: an interrupt or an NMI arriving while the
//! CPU spins in the lock (delivered by the host platform's `relax()`, see
//! `platform::raise_interrupt`) shares the CPU's held table and MCS nodes
//! with the context it interrupted.
//!
//! Its own test binary, and the tests take turns (`SERIAL`): they wait for
//! lock words to reach given states, which busy neighbours would slow down.

#![cfg(not(loom))]

mod common;

use std::sync::{mpsc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::{assert_cpu_idle, tail_idx, unlock, wait_word, PENDING, TAIL};
use rqspinlock_host::platform::{
    current_state, interrupt_pending, raise_interrupt, HostPlatform as P,
};
use rqspinlock_host::rqspinlock::{LockError, RqSpinLock, DEF_TIMEOUT_NS};

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// A deadlock found by a check is reported well before the shortest
/// deadline: a fifth of the pending waiter's.
const FAST: Duration = Duration::from_nanos(DEF_TIMEOUT_NS / 5);

/// What an interrupt handler saw, sent back to the test.
#[derive(Debug)]
struct Seen {
    result: Result<(), LockError>,
    took: Duration,
    held_inside: u32,
    nodes_inside: u32,
}

/// Leaks `lock` so that an interrupt handler (`'static`) can use it.
fn leak(lock: RqSpinLock) -> &'static RqSpinLock {
    Box::leak(Box::new(lock))
}

/// Arms an interrupt (`nmi`: an NMI) on this thread that tries `lock` once,
/// releases it if taken, and reports.
fn interrupt_trying(nmi: bool, lock: &'static RqSpinLock, tx: mpsc::Sender<Seen>) {
    raise_interrupt(nmi, move || {
        let start = Instant::now();
        let result = lock.lock::<P>();
        let took = start.elapsed();
        let state = current_state();
        let seen = Seen {
            result,
            took,
            held_inside: state.held().count(),
            nodes_inside: state.nesting(),
        };
        if result.is_ok() {
            unlock(lock);
        }
        tx.send(seen).unwrap();
    });
}

/// Starts a thread that arms an interrupt trying `target` (see
/// [`interrupt_trying`]) and then tries `l` (releasing it if taken); the
/// interrupt runs once the thread spins on `l`. Returns the thread, which
/// ends with the result of its attempt on `l`, and what the interrupt saw.
fn interrupted_waiter(
    l: &'static RqSpinLock,
    nmi: bool,
    target: &'static RqSpinLock,
) -> (
    thread::JoinHandle<Result<(), LockError>>,
    mpsc::Receiver<Seen>,
) {
    let (tx, rx) = mpsc::channel();
    let t = thread::spawn(move || {
        interrupt_trying(nmi, target, tx);
        let res = l.lock::<P>();
        assert!(!interrupt_pending(), "the interrupt never ran");
        if res.is_ok() {
            unlock(l);
        }
        assert_cpu_idle();
        res
    });
    (t, rx)
}

/// An interrupt on a CPU that is the pending waiter of L takes a free lock
/// M and releases it: its entry sits on top of L's attempt and goes away
/// again; the interrupted attempt then gets L.
#[test]
fn interrupt_takes_another_lock_while_the_cpu_waits() {
    let _s = serial();
    let l = leak(RqSpinLock::new());
    let m = leak(RqSpinLock::new());
    l.lock::<P>().unwrap();
    let (waiter, rx) = interrupted_waiter(l, false, m);
    let seen = rx.recv_timeout(Duration::from_secs(2)).unwrap();
    unlock(l);
    assert_eq!(waiter.join().unwrap(), Ok(()));
    assert_eq!(seen.result, Ok(()), "{seen:?}");
    // L's attempt and M, no MCS node: L's waiter is the pending one.
    assert_eq!((seen.held_inside, seen.nodes_inside), (2, 0), "{seen:?}");
    assert_eq!((l.value(), m.value()), (0, 0));
    assert_cpu_idle();
}

/// An interrupt that tries the very lock its CPU is waiting for is an AA
/// deadlock, reported at once; the interrupted attempt still succeeds.
#[test]
fn interrupt_retrying_the_lock_it_interrupted_is_aa() {
    let _s = serial();
    let l = leak(RqSpinLock::new());
    l.lock::<P>().unwrap();
    let (waiter, rx) = interrupted_waiter(l, false, l);
    let seen = rx.recv_timeout(Duration::from_secs(2)).unwrap();
    unlock(l);
    assert_eq!(waiter.join().unwrap(), Ok(()));
    assert_eq!(seen.result, Err(LockError::Aa), "{seen:?}");
    assert!(seen.took < FAST, "AA took {:?}", seen.took);
    assert_eq!(l.value(), 0);
}

/// Holds `lock` on a thread of its own until told to let go; returns the
/// sender that says so and the thread.
fn holder(lock: &'static RqSpinLock) -> (mpsc::Sender<()>, thread::JoinHandle<()>) {
    let (go, wait) = mpsc::channel::<()>();
    let (ready_tx, ready) = mpsc::channel::<()>();
    let t = thread::spawn(move || {
        lock.lock::<P>().unwrap();
        ready_tx.send(()).unwrap();
        wait.recv().unwrap();
        unlock(lock);
        assert_cpu_idle();
    });
    ready.recv().unwrap();
    (go, t)
}

/// Makes a thread the pending waiter of `lock` (held elsewhere); returns
/// the thread, which ends with the result of its attempt.
fn pending_waiter(lock: &'static RqSpinLock) -> thread::JoinHandle<Result<(), LockError>> {
    let t = thread::spawn(move || {
        let res = lock.lock::<P>();
        if res.is_ok() {
            unlock(lock);
        }
        assert_cpu_idle();
        res
    });
    wait_word(lock, "pending", |v| v & PENDING != 0);
    t
}

/// An NMI on a CPU that is queued on L (so it holds MCS node 0) and that
/// finds M contended must not queue behind a context it may have
/// interrupted: it tries M once and gets -EDEADLK at once (upstream's
/// "Choose trylock fallback for NMI waiters"). A plain interrupt in the same
/// spot queues on M with the CPU's next node and gets it.
#[test]
fn nmi_in_a_queued_waiter_tries_once() {
    let _s = serial();
    for nmi in [true, false] {
        let l = leak(RqSpinLock::new());
        let m = leak(RqSpinLock::new());
        let (free_l, hold_l) = holder(l);
        let (free_m, hold_m) = holder(m);
        let pend_l = pending_waiter(l);
        let pend_m = pending_waiter(m);
        let (queued, rx) = interrupted_waiter(l, nmi, m);
        wait_word(l, "queued", |v| v & TAIL != 0);
        if nmi {
            let seen = rx.recv_timeout(Duration::from_secs(2)).unwrap();
            assert_eq!(seen.result, Err(LockError::Busy), "NMI: {seen:?}");
            assert!(seen.took < FAST, "NMI trylock took {:?}", seen.took);
            free_m.send(()).unwrap();
        } else {
            // The interrupt queues on M behind M's pending waiter; let M go
            // so that it gets it.
            let word = wait_word(m, "queued by the interrupt", |v| v & TAIL != 0);
            // The CPU's node 0 waits on L: the interrupt queued with node 1.
            assert_eq!(tail_idx(word), 1, "word {word:#010x}");
            free_m.send(()).unwrap();
            let seen = rx.recv_timeout(Duration::from_secs(2)).unwrap();
            assert_eq!(seen.result, Ok(()), "IRQ: {seen:?}");
            // L's attempt and M in the table; node 1 given back, node 0
            // still L's.
            assert_eq!((seen.held_inside, seen.nodes_inside), (2, 1), "{seen:?}");
        }
        hold_m.join().unwrap();
        assert_eq!(pend_m.join().unwrap(), Ok(()));
        free_l.send(()).unwrap();
        hold_l.join().unwrap();
        assert_eq!(pend_l.join().unwrap(), Ok(()));
        assert_eq!(queued.join().unwrap(), Ok(()), "nmi={nmi}");
        assert_eq!((l.value(), m.value()), (0, 0));
    }
}
