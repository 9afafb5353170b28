// SPDX-License-Identifier: GPL-2.0

//! Host [`Platform`]s: one OS thread (or loom thread) is one "CPU".
//!
//! - std build: a static array of [`CpuState`] for [`MAX_HOST_CPUS`] CPUs. A
//!   thread gets a free CPU id on its first lock operation and gives it back
//!   when it exits, so tests running in parallel never share a CPU. The
//!   clock is [`std::time::Instant`]. [`HostPlatform`] yields to the OS
//!   scheduler in `relax()` (tests oversubscribe 2 cores); [`SpinPlatform`]
//!   only issues the spin-loop hint (benchmarks).
//! - loom build: per-execution state from `loom::lazy_static!`, CPU ids set
//!   explicitly by each model thread with [`set_cpu`], and a per-thread
//!   logical clock that advances by [`LOOM_TICK_NS`] in every `relax()`, so
//!   timeouts fire after a handful of scheduling points.

use crate::rqspinlock::{CpuState, Platform};

/// Number of CPUs the host platforms provide.
#[cfg(not(loom))]
pub const MAX_HOST_CPUS: u32 = 64;

/// Number of CPUs the loom platform provides (kept small: the ABBA check
/// scans all of them, and every read is a loom scheduling point).
#[cfg(loom)]
pub const MAX_HOST_CPUS: u32 = 4;

/// Logical time that passes in one `relax()` under loom: the pending
/// waiter's 0.25 s deadline expires after 3 relaxes, the head's after 6.
#[cfg(loom)]
pub const LOOM_TICK_NS: u64 = 100_000_000;

#[cfg(not(loom))]
mod imp {
    use super::{CpuState, MAX_HOST_CPUS};
    use std::cell::Cell;
    use std::sync::{Mutex, OnceLock};
    use std::time::Instant;

    static STATES: [CpuState; MAX_HOST_CPUS as usize] =
        [const { CpuState::new() }; MAX_HOST_CPUS as usize];

    /// Free CPU ids; ids are handed out lowest first.
    static FREE: Mutex<Vec<u32>> = Mutex::new(Vec::new());
    static FREE_INIT: OnceLock<()> = OnceLock::new();

    /// Owns a CPU id for the lifetime of its thread.
    pub(super) struct CpuSlot(pub(super) u32);

    impl Drop for CpuSlot {
        fn drop(&mut self) {
            // A thread that exits (e.g. a failing test panics) with locks
            // still recorded would hand a dirty table to the next thread
            // and fail unrelated tests: retire such an id instead.
            let clean = state(self.0).is_some_and(|s| s.held().count() == 0 && s.nesting() == 0);
            if let (true, Ok(mut free)) = (clean, FREE.lock()) {
                free.push(self.0);
            }
        }
    }

    thread_local! {
        pub(super) static CPU: Cell<Option<u32>> = const { Cell::new(None) };
        static SLOT: std::cell::RefCell<Option<CpuSlot>> = const { std::cell::RefCell::new(None) };
    }

    pub(super) fn cpu() -> u32 {
        if let Some(cpu) = CPU.with(Cell::get) {
            return cpu;
        }
        FREE_INIT.get_or_init(|| {
            let mut free = FREE.lock().expect("cpu pool poisoned");
            free.extend((0..MAX_HOST_CPUS).rev());
        });
        let cpu = FREE
            .lock()
            .expect("cpu pool poisoned")
            .pop()
            .expect("more live lock-using threads than MAX_HOST_CPUS");
        CPU.with(|c| c.set(Some(cpu)));
        SLOT.with(|s| *s.borrow_mut() = Some(CpuSlot(cpu)));
        cpu
    }

    pub(super) fn state(cpu: u32) -> Option<&'static CpuState> {
        STATES.get(usize::try_from(cpu).ok()?)
    }

    pub(super) fn now_ns() -> u64 {
        static START: OnceLock<Instant> = OnceLock::new();
        let start = *START.get_or_init(Instant::now);
        u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }
}

#[cfg(loom)]
mod imp {
    use super::{CpuState, MAX_HOST_CPUS};
    use std::cell::Cell;

    loom::lazy_static! {
        static ref STATES: Vec<CpuState> = (0..MAX_HOST_CPUS).map(|_| CpuState::new()).collect();
    }

    loom::thread_local! {
        pub(super) static CPU: Cell<Option<u32>> = Cell::new(None);
        static CLOCK: Cell<u64> = Cell::new(1);
    }

    pub(super) fn cpu() -> u32 {
        CPU.with(Cell::get)
            .expect("loom model thread did not call set_cpu()")
    }

    pub(super) fn state(cpu: u32) -> Option<&'static CpuState> {
        STATES.get(usize::try_from(cpu).ok()?)
    }

    pub(super) fn now_ns() -> u64 {
        CLOCK.with(Cell::get)
    }

    pub(super) fn tick(ns: u64) {
        CLOCK.with(|c| c.set(c.get() + ns));
    }
}

/// Binds the current (loom) thread to `cpu`. Every model thread, including
/// the main one, must call this before its first lock operation.
#[cfg(loom)]
pub fn set_cpu(cpu: u32) {
    assert!(cpu < MAX_HOST_CPUS);
    imp::CPU.with(|c| c.set(Some(cpu)));
}

/// The CPU id the current thread runs as (assigned on first use).
pub fn current_cpu() -> u32 {
    imp::cpu()
}

/// The per-CPU state of the current thread's CPU.
pub fn current_state() -> &'static CpuState {
    imp::state(imp::cpu()).expect("current cpu id is always in range")
}

/// Thread-per-CPU platform whose `relax()` yields to the scheduler.
#[cfg(not(loom))]
pub struct HostPlatform;

/// The loom platform: `relax()` is a loom yield that also advances this
/// thread's logical clock by `TICK_NS`. A smaller tick gives the deadlock
/// checks more scheduling points before a deadline fires.
#[cfg(loom)]
pub struct TickPlatform<const TICK_NS: u64>;

/// The default loom platform.
#[cfg(loom)]
pub type HostPlatform = TickPlatform<LOOM_TICK_NS>;

/// Under loom there is no separate spinning platform (the benchmark only
/// compiles there, it is not meant to run under the model checker).
#[cfg(loom)]
pub type SpinPlatform = HostPlatform;

// SAFETY: a thread keeps its CPU id for its whole life and no two live
// threads share one (ids come from a pool and return to it only when the
// owning thread exits). Thread exit happens between lock operations, so the
// id is stable during each of them. `state()` returns distinct elements of a
// static array and `None` for every id outside it;
// `cpu() < nr_cpus() <= MAX_CPUS`.
#[cfg(not(loom))]
unsafe impl Platform for HostPlatform {
    /// Every relax is a `yield_now()` syscall, far slower than
    /// `cpu_relax()`: check the clock more often so the 1 ms ABBA cadence
    /// and the deadlines keep their meaning.
    const SPINS_PER_CHECK: u32 = 1 << 6;

    fn cpu() -> u32 {
        imp::cpu()
    }

    fn nr_cpus() -> u32 {
        MAX_HOST_CPUS
    }

    fn cpu_state(cpu: u32) -> Option<&'static CpuState> {
        imp::state(cpu)
    }

    fn now_ns() -> u64 {
        imp::now_ns()
    }

    fn relax() {
        std::hint::spin_loop();
        std::thread::yield_now();
    }

    fn in_nmi() -> bool {
        false
    }
}

// SAFETY: each model thread sets a distinct id with `set_cpu()` before its
// first lock operation and keeps it. `state()` returns distinct elements of
// a per-execution static that outlives the model's threads, and `None` for
// every id outside it; `cpu() < nr_cpus() <= MAX_CPUS`.
#[cfg(loom)]
unsafe impl<const TICK_NS: u64> Platform for TickPlatform<TICK_NS> {
    /// Check on every spin: the logical clock only moves in `relax()`.
    const SPINS_PER_CHECK: u32 = 1;

    fn cpu() -> u32 {
        imp::cpu()
    }

    fn nr_cpus() -> u32 {
        MAX_HOST_CPUS
    }

    fn cpu_state(cpu: u32) -> Option<&'static CpuState> {
        imp::state(cpu)
    }

    fn now_ns() -> u64 {
        imp::now_ns()
    }

    fn relax() {
        imp::tick(TICK_NS);
        loom::thread::yield_now();
    }

    fn in_nmi() -> bool {
        false
    }
}

/// Like [`HostPlatform`] but `relax()` only spins (`cpu_relax()`), for
/// benchmarks where every thread has a core of its own.
#[cfg(not(loom))]
pub struct SpinPlatform;

// SAFETY: identical CPU identity and per-CPU state as `HostPlatform`, whose
// safety argument applies unchanged; only `relax()` differs.
#[cfg(not(loom))]
unsafe impl Platform for SpinPlatform {
    fn cpu() -> u32 {
        imp::cpu()
    }

    fn nr_cpus() -> u32 {
        MAX_HOST_CPUS
    }

    fn cpu_state(cpu: u32) -> Option<&'static CpuState> {
        imp::state(cpu)
    }

    fn now_ns() -> u64 {
        imp::now_ns()
    }

    fn relax() {
        std::hint::spin_loop();
    }

    fn in_nmi() -> bool {
        false
    }
}
