// SPDX-License-Identifier: GPL-2.0

//! What the algorithm needs from its environment.

use core::marker::PhantomData;

use super::held::HeldLocks;
use super::mcs::{McsNode, McsNodes};

/// Everything the lock keeps per CPU: the MCS nodes and the held-locks table.
///
/// Aligned to a cache line so that one CPU's state never shares a line with
/// another's (upstream uses `DEFINE_PER_CPU_ALIGNED` for both parts).
///
/// All-zero bytes are the valid initial state, so zeroed per-CPU memory
/// (`alloc_percpu()` returns zeroed memory) needs no further initialisation.
#[repr(C, align(64))]
pub struct CpuState {
    /// MCS nodes, indexed by nesting level.
    pub(crate) nodes: McsNodes,
    /// Held-locks table.
    pub(crate) held: HeldLocks,
}

impl CpuState {
    /// The initial state (the same as all-zero bytes).
    pub fn new() -> Self {
        Self {
            nodes: [
                McsNode::new(),
                McsNode::new(),
                McsNode::new(),
                McsNode::new(),
            ],
            held: HeldLocks::new(),
        }
    }

    /// This CPU's held-locks table.
    pub fn held(&self) -> &HeldLocks {
        &self.held
    }

    /// Number of MCS nodes the slow paths running on this CPU hold (0 when
    /// none runs).
    pub fn nesting(&self) -> u32 {
        self.nodes[0].count()
    }
}

impl Default for CpuState {
    fn default() -> Self {
        Self::new()
    }
}

/// The CPU a lock operation runs on: its id and its state.
///
/// Neither `Send` nor `Sync`: it names the CPU of the context that made it.
///
/// # Invariants
///
/// `state` is the per-CPU state of CPU `id` of the platform the operation
/// uses, and the operation runs on that CPU from start to end.
#[derive(Clone, Copy)]
pub struct ThisCpu {
    pub(crate) id: u32,
    pub(crate) state: &'static CpuState,
    _not_send: PhantomData<*mut ()>,
}

impl ThisCpu {
    /// Names the CPU the caller runs on.
    ///
    /// # Safety
    ///
    /// `state` is what [`Platform::cpu_state`] returns for `id` on the
    /// platform this value is used with, and the caller runs on CPU `id`
    /// (cannot migrate) until every lock operation it passes this value to
    /// has returned.
    pub unsafe fn new(id: u32, state: &'static CpuState) -> Self {
        // INVARIANT: the caller guarantees both halves.
        Self {
            id,
            state,
            _not_send: PhantomData,
        }
    }

    /// The CPU's id.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The CPU's state.
    pub fn state(&self) -> &'static CpuState {
        self.state
    }
}

/// The environment: CPU identity, per-CPU memory, a clock and a pause hint.
///
/// All functions are associated functions (no `self`), so a lock operation
/// is monomorphised for one platform and costs no indirection.
///
/// # Safety
///
/// The lock's mutual exclusion, which callers rely on to access the data it
/// protects, holds only if implementations guarantee:
///
/// - **Stable CPU**: [`Platform::this_cpu`] names the CPU the caller runs
///   on, and the caller cannot migrate during a lock or unlock call (in the
///   kernel: preemption, or interrupts, are disabled).
/// - **Exclusive, nested use of a CPU id**: two contexts that run
///   concurrently never have the same id, except that a context may be
///   interrupted by another one with the same id which then runs to
///   completion before the interrupted one resumes (interrupts and NMIs).
/// - **Stable per-CPU state**: for every `cpu < nr_cpus()`,
///   [`Platform::cpu_state`] returns `Some`, always the same object, not
///   shared with any other id, and [`Platform::this_cpu`] returns that
///   object for its id. The memory stays valid (and is not reused for
///   anything else) until no lock operation can run any more; for a kernel
///   module that is after the last BPF program using the kfuncs is gone.
/// - `this_cpu().id() < nr_cpus() <= MAX_CPUS`.
///
/// The clock and `relax` carry no safety requirement, but timeouts are only
/// as good as the clock: it must be monotonic on each CPU, roughly
/// consistent across CPUs (mutual exclusion never depends on it, as only
/// times read on one CPU are compared), and callable in any context the
/// lock is used in (NMI included), as must [`Platform::cpu_state`].
pub unsafe trait Platform {
    /// Bounded number of re-reads while a pending->locked hand-over is in
    /// flight (upstream `_Q_PENDING_LOOPS`: 1 generically, 512 on x86).
    const PENDING_LOOPS: u32 = 1;

    /// Waiting loops consult the clock (and the deadlock checks) on their
    /// first spin and then once every this many spins (upstream: every 64K
    /// spins via the wrapping `u16 spin`). Must be a power of two (it is used
    /// as a mask); 0 is treated as 1.
    const SPINS_PER_CHECK: u32 = 1 << 16;

    /// The CPU we run on (`smp_processor_id()`, `this_cpu_ptr()`).
    fn this_cpu() -> ThisCpu;

    /// One more than the largest valid CPU id (`nr_cpu_ids`). The ABBA check
    /// scans `0..nr_cpus()`.
    fn nr_cpus() -> u32;

    /// The per-CPU state of `cpu`, `None` if `cpu` is not a possible CPU.
    fn cpu_state(cpu: u32) -> Option<&'static CpuState>;

    /// Monotonic time in nanoseconds, NMI-safe (`ktime_get_mono_fast_ns()`).
    fn now_ns() -> u64;

    /// Pause inside a waiting loop (`cpu_relax()`).
    fn relax();

    /// Whether we run in NMI context (`in_nmi()`). An NMI that is not the
    /// first slow-path waiter on its CPU only tries the lock once.
    fn in_nmi() -> bool;
}
