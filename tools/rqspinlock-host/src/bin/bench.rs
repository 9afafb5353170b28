// SPDX-License-Identifier: GPL-2.0

//! Cost of resilience: the resilient queued lock against the same queued
//! lock without held-table, deadlines and deadlock checks, and against a
//! plain test-and-test-and-set lock, uncontended and with two threads, all
//! measured side by side in one run.
//!
//! `cargo run -p rqspinlock-host --release --bin bench [-- ITERATIONS]`
//!
//! Every thread is a "CPU" of [`SpinPlatform`] (waiting spins with the pause
//! hint, like `cpu_relax()`). Rounds alternate between the locks and the
//! median round is reported, so drift on a shared machine hits all alike.

use std::cell::UnsafeCell;
use std::hint::spin_loop;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Barrier;
use std::thread;
use std::time::Instant;

use rqspinlock_host::platform::SpinPlatform as P;
use rqspinlock_host::rqspinlock::{QueuedSpinLock, RqSpinLock};

/// Rounds per configuration; the median is reported.
const ROUNDS: usize = 5;

/// A lock under test plus the counter it protects.
trait BenchLock: Sync {
    const NAME: &'static str;
    fn new() -> Self;
    /// Lock, bump the counter, unlock.
    fn bump(&self);
    fn count(&self) -> u64;
}

/// Counter cell protected by the lock next to it.
struct Cell(UnsafeCell<u64>);

// SAFETY: only accessed while holding the lock it is paired with.
unsafe impl Sync for Cell {}

impl Cell {
    fn new() -> Self {
        Self(UnsafeCell::new(0))
    }

    /// # Safety
    ///
    /// The caller holds the lock protecting this counter.
    unsafe fn bump(&self) {
        // SAFETY: exclusive access by the caller's contract.
        unsafe { *self.0.get() += 1 }
    }

    fn get(&self) -> u64 {
        // SAFETY: read after all benchmark threads are joined.
        unsafe { *self.0.get() }
    }
}

struct Resilient(RqSpinLock, Cell);

impl BenchLock for Resilient {
    const NAME: &'static str = "rqspinlock (resilient)";

    fn new() -> Self {
        Self(RqSpinLock::new(), Cell::new())
    }

    fn bump(&self) {
        // No nesting and the owner never stalls: errors would be a bug.
        self.0
            .lock::<P>()
            .expect("uncontested resilient lock failed");
        // SAFETY: we hold the lock.
        unsafe {
            self.1.bump();
            self.0.unlock::<P>();
        }
    }

    fn count(&self) -> u64 {
        self.1.get()
    }
}

struct Queued(QueuedSpinLock, Cell);

impl BenchLock for Queued {
    const NAME: &'static str = "queued (no resilience)";

    fn new() -> Self {
        Self(QueuedSpinLock::new(), Cell::new())
    }

    fn bump(&self) {
        self.0.lock::<P>();
        // SAFETY: we hold the lock.
        unsafe {
            self.1.bump();
            self.0.unlock();
        }
    }

    fn count(&self) -> u64 {
        self.1.get()
    }
}

struct Tas(AtomicU32, Cell);

impl BenchLock for Tas {
    const NAME: &'static str = "test-and-set";

    fn new() -> Self {
        Self(AtomicU32::new(0), Cell::new())
    }

    fn bump(&self) {
        while self
            .0
            .compare_exchange_weak(0, 1, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            while self.0.load(Ordering::Relaxed) != 0 {
                spin_loop();
            }
        }
        // SAFETY: we hold the lock.
        unsafe { self.1.bump() };
        self.0.store(0, Ordering::Release);
    }

    fn count(&self) -> u64 {
        self.1.get()
    }
}

/// Picoseconds per operation for `threads` threads doing `iters` each.
fn run<L: BenchLock>(threads: usize, iters: u64) -> u64 {
    let lock = L::new();
    let barrier = Barrier::new(threads + 1);
    let elapsed = thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                barrier.wait();
                for _ in 0..iters {
                    lock.bump();
                }
            });
        }
        barrier.wait();
        let start = Instant::now();
        // Scope end joins the workers.
        start
    });
    let nanos = elapsed.elapsed().as_nanos();
    let ops = threads as u64 * iters;
    assert_eq!(lock.count(), ops, "{}: lost increments", L::NAME);
    u64::try_from(nanos * 1000 / u128::from(ops.max(1))).unwrap_or(u64::MAX)
}

fn median(mut v: Vec<u64>) -> u64 {
    v.sort_unstable();
    v[v.len() / 2]
}

fn fmt_ps(ps: u64) -> String {
    format!("{}.{:02}", ps / 1000, ps % 1000 / 10)
}

fn fmt_ratio(num: u64, den: u64) -> String {
    let milli = num * 1000 / den.max(1);
    format!("{}.{:02}x", milli / 1000, milli % 1000 / 10)
}

fn main() {
    let iters: u64 = std::env::args()
        .nth(1)
        .map(|a| a.parse().expect("ITERATIONS must be a number"))
        .unwrap_or(2_000_000);
    let cores = thread::available_parallelism().map_or(1, |n| n.get());
    println!("rqspinlock benchmark: {iters} lock/unlock pairs per thread, median of {ROUNDS} rounds, {cores} cores");
    if cores < 2 {
        println!(
            "note: fewer than 2 cores, the 2-thread numbers measure preemption, not contention"
        );
    }
    println!();
    println!(
        "{:<10} {:>12} {:>12} {:>12} {:>14} {:>14}",
        "threads", "resilient", "queued", "tas", "resil/queued", "tas/queued"
    );
    for threads in [1usize, 2] {
        let (mut r, mut q, mut t) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..ROUNDS {
            r.push(run::<Resilient>(threads, iters));
            q.push(run::<Queued>(threads, iters));
            t.push(run::<Tas>(threads, iters));
        }
        let (r, q, t) = (median(r), median(q), median(t));
        println!(
            "{:<10} {:>9} ns {:>9} ns {:>9} ns {:>14} {:>14}",
            threads,
            fmt_ps(r),
            fmt_ps(q),
            fmt_ps(t),
            fmt_ratio(r, q),
            fmt_ratio(t, q)
        );
    }
    println!();
    println!(
        "ns/op = wall time / total lock+unlock pairs (with 2 threads: throughput, not latency)."
    );
    println!(
        "locks: {}, {}, {}.",
        Resilient::NAME,
        Queued::NAME,
        Tas::NAME
    );
}
