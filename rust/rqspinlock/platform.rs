// SPDX-License-Identifier: GPL-2.0

//! What the algorithm needs from its environment.

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
    /// The initial state (all zero).
    #[cfg(not(loom))]
    pub const fn new() -> Self {
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

    /// The initial state (all zero).
    #[cfg(loom)]
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

    /// Number of MCS node slots reserved on this CPU (0 when no slow path
    /// runs on it; a slot skipped because its node is abandoned counts).
    pub fn nesting(&self) -> u32 {
        self.nodes[0].nesting()
    }
}

impl Default for CpuState {
    fn default() -> Self {
        Self::new()
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
/// - **Stable CPU**: [`Platform::cpu`] returns the same id for the whole
///   duration of a `lock()` or `unlock()` call, i.e. the caller cannot
///   migrate (in the kernel: preemption, or interrupts, are disabled).
/// - **Exclusive, nested use of a CPU id**: two contexts that run
///   concurrently never have the same id, except that a context may be
///   interrupted by another one with the same id which then runs to
///   completion before the interrupted one resumes (interrupts and NMIs).
/// - **Stable per-CPU state**: for every `cpu < nr_cpus()` that is a valid
///   id, [`Platform::cpu_state`] returns `Some`, always the same object, and
///   that object is not shared with any other id; for `cpu == cpu()` it
///   returns `Some`. The returned memory stays valid (and is not reused for
///   anything else) until no lock operation can run any more; for a kernel
///   module that is after the last BPF program using the kfuncs is gone.
/// - [`Platform::cpu`] `< nr_cpus() <= MAX_CPUS`.
///
/// The clock and `relax` carry no safety requirement, but timeouts are only
/// as good as the clock: it must be monotonic on each CPU, roughly
/// consistent across CPUs (the time bounds documented in `slowpath` assume
/// it; mutual exclusion never depends on it, as only times read on one CPU
/// are compared), and callable in any context the lock is used in (NMI
/// included). [`Platform::cpu_state`] must be callable from NMI context too:
/// it runs inside every waiting loop.
pub unsafe trait Platform {
    /// Bounded number of re-reads while a pending→locked hand-over is in
    /// flight (upstream `_Q_PENDING_LOOPS`: 1 generically, 512 on x86).
    const PENDING_LOOPS: u32 = 1;

    /// Waiting loops consult the clock (and the deadlock checks) on their
    /// first spin and then once every this many spins (upstream: every 64K
    /// spins via the wrapping `u16 spin`). Must be a power of two (it is used
    /// as a mask); 0 is treated as 1. Model checkers set it to 1.
    const SPINS_PER_CHECK: u32 = 1 << 16;

    /// Id of the CPU we run on (`raw_smp_processor_id()`).
    fn cpu() -> u32;

    /// One more than the largest valid CPU id (`nr_cpu_ids`). The ABBA check
    /// scans `0..nr_cpus()`, and tails naming larger ids are ignored.
    fn nr_cpus() -> u32;

    /// The per-CPU state of `cpu`, or `None` if `cpu` is not a possible CPU.
    ///
    /// Called with ids decoded from untrusted lock words: it must accept any
    /// `u32` and return `None` for ids it does not know (including all ids
    /// `>= nr_cpus()`), never index out of bounds.
    fn cpu_state(cpu: u32) -> Option<&'static CpuState>;

    /// Monotonic time in nanoseconds, NMI-safe (`ktime_get_mono_fast_ns()`).
    fn now_ns() -> u64;

    /// Pause inside a waiting loop (`cpu_relax()`).
    fn relax();

    /// Whether we run in NMI context (`in_nmi()`). An NMI that is not the
    /// first slow-path waiter on its CPU only tries the lock once.
    fn in_nmi() -> bool;

    /// Test hook, called at points where a real CPU can be held up for an
    /// arbitrary time (an interrupt, an NMI, a hypervisor preempting the
    /// vCPU), so that host tests can provoke the races that follow. The
    /// kernel keeps the empty default, which compiles to nothing.
    #[inline(always)]
    fn delay_point(_point: DelayPoint) {}
}

/// Where [`Platform::delay_point`] is called.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DelayPoint {
    /// The MCS node is initialised for this lock, the tail not yet published.
    BeforePublish,
    /// The tail is published (`xchg_tail()` done), not yet linked behind the
    /// predecessor.
    AfterPublish,
}
