// SPDX-License-Identifier: GPL-2.0

//! Host [`Platform`]s: one OS thread (or loom thread) is one "CPU".
//!
//! - std build: [`MAX_HOST_CPUS`] states, allocated once. A thread gets a
//!   free CPU id on its first lock operation and gives it back when it
//!   exits, so tests running in parallel never share a CPU. The clock is
//!   [`std::time::Instant`]. [`HostPlatform`] yields to the OS scheduler in
//!   `relax()` (tests oversubscribe 2 cores); [`SpinPlatform`] only issues
//!   the spin-loop hint (benchmarks).
//! - loom build: per-execution states from `loom::lazy_static!`, CPU ids set
//!   explicitly by each model thread with [`set_cpu`], and a per-thread
//!   logical clock that advances by [`LOOM_TICK_NS`] in every `relax()`, so
//!   deadlines fire after a handful of scheduling points.
//!
//! **Interrupts.** A real CPU can be interrupted anywhere, and the handler
//! runs on the same CPU, on top of the interrupted context, to completion.
//! [`raise_interrupt`] arms a handler on the calling thread; the next
//! `relax()` of a lock operation on that thread runs it there, as an
//! interrupt (or NMI) arriving while the CPU spins would. The handler may
//! take locks itself: it shares the CPU's held table and MCS nodes with the
//! context it interrupted, which is what the tests of nesting need.

use std::cell::{Cell, RefCell};

use crate::rqspinlock::{CpuState, Platform, ThisCpu};

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

/// An interrupt handler armed by [`raise_interrupt`].
type Handler = Box<dyn FnOnce()>;

#[cfg(not(loom))]
mod imp {
    use super::{CpuState, MAX_HOST_CPUS};
    use std::cell::Cell;
    use std::sync::{LazyLock, Mutex};
    use std::time::Instant;

    static STATES: LazyLock<Box<[CpuState]>> =
        LazyLock::new(|| (0..MAX_HOST_CPUS).map(|_| CpuState::new()).collect());

    /// Free CPU ids, lowest handed out first.
    static FREE: LazyLock<Mutex<Vec<u32>>> =
        LazyLock::new(|| Mutex::new((0..MAX_HOST_CPUS).rev().collect()));

    /// Owns a CPU id for the lifetime of its thread.
    struct CpuSlot(u32);

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
        /// This thread's CPU, cached: the benchmark's fast path reads it.
        static CPU: Cell<Option<(u32, &'static CpuState)>> = const { Cell::new(None) };
        static SLOT: std::cell::RefCell<Option<CpuSlot>> = const { std::cell::RefCell::new(None) };
    }

    #[inline]
    pub(super) fn this_cpu() -> (u32, &'static CpuState) {
        match CPU.with(Cell::get) {
            Some(cpu) => cpu,
            None => assign(),
        }
    }

    #[cold]
    fn assign() -> (u32, &'static CpuState) {
        let id = FREE
            .lock()
            .expect("cpu pool poisoned")
            .pop()
            .expect("more live lock-using threads than MAX_HOST_CPUS");
        let cpu = (id, state(id).expect("pool ids are in range"));
        CPU.with(|c| c.set(Some(cpu)));
        SLOT.with(|s| *s.borrow_mut() = Some(CpuSlot(id)));
        cpu
    }

    pub(super) fn state(cpu: u32) -> Option<&'static CpuState> {
        STATES.get(usize::try_from(cpu).ok()?)
    }

    pub(super) fn now_ns() -> u64 {
        static START: LazyLock<Instant> = LazyLock::new(Instant::now);
        u64::try_from(START.elapsed().as_nanos()).unwrap_or(u64::MAX)
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

    #[inline]
    pub(super) fn this_cpu() -> (u32, &'static CpuState) {
        let id = CPU
            .with(Cell::get)
            .expect("loom model thread did not call set_cpu()");
        (id, state(id).expect("set_cpu() checks the range"))
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

#[cfg(not(loom))]
thread_local! {
    static IRQ: RefCell<Option<(bool, Handler)>> = const { RefCell::new(None) };
    static IN_NMI: Cell<bool> = const { Cell::new(false) };
}

#[cfg(loom)]
loom::thread_local! {
    static IRQ: RefCell<Option<(bool, Handler)>> = RefCell::new(None);
    static IN_NMI: Cell<bool> = Cell::new(false);
}

/// Arms `handler` as an interrupt (`nmi`: a non-maskable one) of the
/// calling thread's CPU: the next `relax()` of a lock operation on this
/// thread runs it, once, with [`Platform::in_nmi`] saying `nmi` meanwhile.
pub fn raise_interrupt(nmi: bool, handler: impl FnOnce() + 'static) {
    IRQ.with(|irq| *irq.borrow_mut() = Some((nmi, Box::new(handler))));
}

/// Whether an interrupt armed by [`raise_interrupt`] has not run yet.
pub fn interrupt_pending() -> bool {
    IRQ.with(|irq| irq.borrow().is_some())
}

/// Runs the armed interrupt handler, if any, as the CPU would on its way
/// through a waiting loop.
fn deliver_interrupt() {
    let Some((nmi, handler)) = IRQ.with(|irq| irq.borrow_mut().take()) else {
        return;
    };
    let outer = IN_NMI.with(|n| n.replace(nmi));
    handler();
    IN_NMI.with(|n| n.set(outer));
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
    imp::this_cpu().0
}

/// The per-CPU state of the current thread's CPU.
pub fn current_state() -> &'static CpuState {
    imp::this_cpu().1
}

#[inline]
fn this_cpu() -> ThisCpu {
    let (id, state) = imp::this_cpu();
    // SAFETY: `state` is `imp::state(id)`, which every platform here returns
    // from `cpu_state(id)`, and a thread keeps its id for its whole life.
    unsafe { ThisCpu::new(id, state) }
}

/// Thread-per-CPU platform whose `relax()` delivers armed interrupts and
/// yields to the scheduler.
#[cfg(not(loom))]
pub struct HostPlatform;

/// The loom platform: `relax()` delivers armed interrupts, then is a loom
/// yield that also advances this thread's logical clock by `TICK_NS`. A
/// smaller tick gives the deadlock checks more scheduling points before a
/// deadline fires.
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
// owning thread exits, between lock operations). An interrupt handler runs
// on the thread it interrupts, to completion, so contexts sharing an id
// nest. `state()` returns distinct elements of a slice that lives until
// the process exits, and `None` outside it; ids are `< nr_cpus() <=
// MAX_CPUS`.
#[cfg(not(loom))]
unsafe impl Platform for HostPlatform {
    /// Every relax is a `yield_now()` syscall, far slower than
    /// `cpu_relax()`: check the clock more often so the 1 ms ABBA cadence
    /// and the deadlines keep their meaning.
    const SPINS_PER_CHECK: u32 = 1 << 6;

    #[inline]
    fn this_cpu() -> ThisCpu {
        this_cpu()
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
        deliver_interrupt();
        std::hint::spin_loop();
        std::thread::yield_now();
    }

    fn in_nmi() -> bool {
        IN_NMI.with(Cell::get)
    }
}

// SAFETY: each model thread sets a distinct id with `set_cpu()` before its
// first lock operation and keeps it; interrupt handlers nest on their
// thread as above. `state()` returns distinct elements of a per-execution
// static that outlives the model's threads, and `None` outside it.
#[cfg(loom)]
unsafe impl<const TICK_NS: u64> Platform for TickPlatform<TICK_NS> {
    /// Check on every spin: the logical clock only moves in `relax()`.
    const SPINS_PER_CHECK: u32 = 1;

    #[inline]
    fn this_cpu() -> ThisCpu {
        this_cpu()
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
        deliver_interrupt();
        imp::tick(TICK_NS);
        loom::thread::yield_now();
    }

    fn in_nmi() -> bool {
        IN_NMI.with(Cell::get)
    }
}

/// Like [`HostPlatform`] but `relax()` only spins (`cpu_relax()`) and no
/// interrupts are delivered, for benchmarks where every thread has a core
/// of its own.
#[cfg(not(loom))]
pub struct SpinPlatform;

// SAFETY: identical CPU identity and per-CPU state as `HostPlatform`, whose
// safety argument applies unchanged; only `relax()` differs.
#[cfg(not(loom))]
unsafe impl Platform for SpinPlatform {
    #[inline]
    fn this_cpu() -> ThisCpu {
        this_cpu()
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
