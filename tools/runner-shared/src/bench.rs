// SPDX-License-Identifier: GPL-2.0

//! The results of `bpf-runner --bench`, as `bench.json`: the runner writes
//! them in the guest, xtask reads them on the host (`make vmbench`, `make
//! results`).

use serde::{Deserialize, Serialize};

/// One BPF program's median time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProgramTime {
    pub name: String,
    /// Median ns per BPF_PROG_TEST_RUN repetition.
    pub ns_per_run: f64,
    /// `ns_per_run` minus the baseline's: the lock and unlock alone. `None`
    /// for the baseline itself and for the contended runs.
    pub lock_unlock_ns: Option<f64>,
}

/// What one benchmark run measured.
///
/// Not `deny_unknown_fields`: xtask flattens it into the stamped file next
/// to the date and the command, which serde does not allow together.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Bench {
    pub kernel: String,
    /// The accelerator: what the host said, or a guess.
    pub accel: String,
    pub clocksource: String,
    pub cpus: usize,
    /// Repetitions per BPF_PROG_TEST_RUN and rounds (the median is kept).
    pub repeat: u32,
    pub rounds: usize,
    /// Uncontended, the baseline first.
    pub programs: Vec<ProgramTime>,
    /// bpf_res_spin_lock's lock+unlock cost over bpf_spin_lock's, measured
    /// side by side; `None` when bpf_spin_lock measured at or below the
    /// baseline (no ratio to take).
    pub ratio_res_over_spin: Option<f64>,
    pub contended_repeat: u32,
    pub contended_rounds: usize,
    /// Two CPUs on one lock: mean ns per run of the two threads.
    pub contended: Vec<ProgramTime>,
    /// Not under KVM: every instruction is emulated, only ratios mean
    /// anything.
    pub emulated: bool,
    /// The in-kernel benchmark, `None` without it. Files written before it
    /// existed lack the field: it defaults to `None`.
    #[serde(default)]
    pub in_kernel: Option<KernelBench>,
}

/// One figure for each lock, in picoseconds per lock+unlock pair.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockPair {
    /// The Rust lock, through bpf_res_spin_lock()/bpf_res_spin_unlock().
    pub res: u64,
    /// The qspinlock of a raw_spinlock_t, taken as raw_spin_lock() does
    /// without lockdep and spinlock debugging.
    pub raw: u64,
}

impl LockPair {
    /// Rust lock over raw_spinlock_t; `None` when raw measured 0 ps (no
    /// ratio to take).
    pub fn ratio(&self) -> Option<f64> {
        (self.raw > 0).then(|| self.res as f64 / self.raw as f64)
    }
}

/// The in-kernel benchmark module's line, field for field: the JSON object
/// `bpf_rqspin_bench` prints, kept in `bench.json` unchanged as
/// `in_kernel`. Unknown fields are refused so that a module and a runner
/// that disagree fail loudly instead of dropping a figure.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KernelBench {
    /// Threads in the contended runs, one per online CPU.
    pub cpus: u32,
    /// Uncontended pairs per round.
    pub iters: u32,
    /// Rounds per figure; each figure is the median.
    pub rounds: u32,
    /// Contended pairs per thread and round.
    pub contended_iters: u32,
    /// One CPU, no other lock user.
    pub uncontended_ps: LockPair,
    /// All CPUs on one lock: wall time over all pairs (throughput).
    pub contended_ps: LockPair,
    /// Failed bpf_res_spin_lock() calls; the module refuses to load with
    /// any, so a parsed line has 0.
    pub res_failures: u64,
    /// raw_spin_lock() carries lockdep or CONFIG_DEBUG_SPINLOCK checks in
    /// this kernel (the Rust lock does not), which makes it slower than the
    /// bare qspinlock the benchmark measures.
    pub raw_lock_debug: bool,
}
