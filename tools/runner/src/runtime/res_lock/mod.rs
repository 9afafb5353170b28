//! `runtime/res_lock_*`: the resilient lock of the bpf_rqspinlock module at
//! run time, through mainline's API (`bpf_res_spin_lock()` and friends on a
//! `struct bpf_res_spin_lock` map field). The BPF side is
//! `selftests/progs/runtime_res_lock.c`; every program measures its own lock
//! attempts with `bpf_rqspin_ktime_get_ns()` and leaves counters and times in
//! the `rl_res` map, which these tests read and check. Times are the
//! kernel's, so they hold under TCG too (QEMU's virtual clock follows the
//! host's).
//!
//! User space cannot see the lock word: lookups return the value with its
//! special fields zeroed. Whether a lock is free is therefore checked by
//! taking it from BPF, with a time bound.
//!
//! Every time bound below is derived from the constants of the lock
//! ([`PENDING_TIMEOUT`] and friends, which mirror
//! `rust/rqspinlock/timeout.rs`). Each test says in its doc comment how a
//! broken lock would make it fail.

mod deadlock;
mod map_types;
mod stalled_holder;
mod totals;
mod user_update;
mod violations;

pub use deadlock::{aa, abba, held_overflow};
pub use map_types::map_types;
pub use stalled_holder::stalled_holder;
pub use totals::{exact_total, irqsave};
pub use user_update::user_update;
pub use violations::violations;

use std::os::fd::RawFd;
use std::time::Duration;

use anyhow::{ensure, Result};

use super::support::{lookup, read_u64, recv_within, spawn_pinned, test_run, update};
use super::Verdict;
use crate::libbpf::Map;

const OBJECT: &str = "runtime_res_lock.bpf.o";

const EDEADLK: i64 = -(libc::EDEADLK as i64);
const ETIMEDOUT: i64 = -(libc::ETIMEDOUT as i64);

// --- The lock's constants (mirrored, not imported: the runner does not build
// --- the module). Change them together with rust/rqspinlock/.

/// `DEF_TIMEOUT_NS` of rust/rqspinlock/timeout.rs (upstream
/// `RES_DEF_TIMEOUT`): the time one critical section may take.
const DEF_TIMEOUT_NS: u64 = 250_000_000;
/// How long the pending waiter waits for the owner before -ETIMEDOUT
/// (`DEF_TIMEOUT_NS`).
const PENDING_TIMEOUT: Duration = Duration::from_nanos(DEF_TIMEOUT_NS);
/// How long the queue head waits (`HEAD_TIMEOUT_NS` = 2 x `DEF_TIMEOUT_NS`).
const HEAD_TIMEOUT: Duration = Duration::from_nanos(2 * DEF_TIMEOUT_NS);
/// Held-table entries (`NR_HELD`, rust/rqspinlock/held.rs).
const NR_HELD: u32 = 31;

// --- Bounds derived from them.

/// Longest a single attempt takes in these tests, where at most two CPUs
/// contend (rust/rqspinlock/slowpath.rs, "Why no wait here is endless"):
/// the pending waiter gives up after [`PENDING_TIMEOUT`], the queue head
/// after [`HEAD_TIMEOUT`]; a waiter behind the head leaves with it, so the
/// worst is a head that queued behind a pending waiter's wait.
const ATTEMPT_BOUND: Duration = HEAD_TIMEOUT.saturating_add(PENDING_TIMEOUT);
/// A deadlock reported by a check, not by a timeout, comes back long before
/// the first timeout could fire: within a fifth of [`PENDING_TIMEOUT`] (the
/// checks take microseconds; the rest is margin for TCG, where AA took up
/// to 0.23 ms).
const FAST_BOUND: Duration = Duration::from_nanos(DEF_TIMEOUT_NS / 5);
/// How long the stalled holder keeps its lock: three times the longest wait
/// a lone waiter can have ([`HEAD_TIMEOUT`]), so any waiter bounded by the
/// lock's timeouts gives up while the lock is still held.
const STALL_HOLD: Duration = HEAD_TIMEOUT.saturating_mul(3);
/// How long one BPF_PROG_TEST_RUN may take before a test calls it a hang:
/// the longest legitimate single run is the stalled hold plus one attempt
/// ([`ATTEMPT_BOUND`]); five times that (11 s) leaves room for a slow TCG
/// guest and for the ABBA batches, whose 200 runs may each wait for a
/// detection.
const HANG_LIMIT: Duration = STALL_HOLD.saturating_add(ATTEMPT_BOUND).saturating_mul(5);

/// Elements of `rl_locks` (EL_* in the C file).
const EL_COUNTER: u32 = 4;
const EL_COUNTER_IRQ: u32 = 7;

/// Slots of `rl_res` (RES_* in the C file).
const RES_AA: u32 = 0;
const RES_ABBA_AB: u32 = 1;
const RES_ABBA_BA: u32 = 2;
const RES_OVERFLOW: u32 = 3;
const RES_STALL_HOLD: u32 = 4;
const RES_STALL_WAIT: u32 = 5;
const RES_COUNTER: u32 = 6;
const RES_IRQ: u32 = 7;
const RES_COUNTER_IRQ: u32 = 8;
const RES_UPD_ARRAY_HOLDER: u32 = 9;
const RES_UPD_ARRAY_CONT: u32 = 10;
const RES_UPD_HASH_HOLDER: u32 = 11;
const RES_UPD_HASH_CONT: u32 = 12;
const RES_UPD_PROBE: u32 = 13;

/// Slots of `rl_cfg` (CFG_* in the C file).
const CFG_OVERFLOW_TARGET: u32 = 0;
const CFG_STALL_HOLD_NS: u32 = 1;
const CFG_UPD_HOLD_NS: u32 = 2;
const CFG_UPD_CONT_NS: u32 = 3;

/// Slots of `rl_upd_state` (STATE_* in the C file).
const STATE_ARRAY: u32 = 0;
const STATE_HASH: u32 = 1;

/// Elements of `rl_many` and how many of them rl_overflow holds (C file).
const NR_MANY: i32 = 40;
const NR_HOLD: u32 = 34;

/// `struct rl_result`: twenty u64 fields in this order.
#[derive(Debug, Default, Clone, Copy)]
struct RlResult {
    err: i64,
    ns: u64,
    max_ns: u64,
    ok: u64,
    deadlk: u64,
    timedout: u64,
    other: u64,
    t_start: u64,
    t_end: u64,
    aux: u64,
    aux2: u64,
    runs: u64,
    attempts: u64,
    not_found: u64,
    violations: u64,
    first_deadlk: u64,
    first_timedout: u64,
    first_other: u64,
    max_hold_ns: u64,
    budget_out: u64,
}

const RESULT_FIELDS: usize = 20;
const RESULT_SIZE: usize = RESULT_FIELDS * 8;

impl RlResult {
    fn read(map: &Map, slot: u32) -> Result<Self> {
        ensure!(
            map.value_size == RESULT_SIZE,
            "map '{}' has {}-byte values, expected {RESULT_SIZE} (struct rl_result changed?)",
            map.name,
            map.value_size
        );
        let v = lookup(map, slot)?;
        let f = |i: usize| read_u64(&v, 8 * i);
        Ok(Self {
            err: f(0)? as i64,
            ns: f(1)?,
            max_ns: f(2)?,
            ok: f(3)?,
            deadlk: f(4)?,
            timedout: f(5)?,
            other: f(6)?,
            t_start: f(7)?,
            t_end: f(8)?,
            aux: f(9)?,
            aux2: f(10)?,
            runs: f(11)?,
            attempts: f(12)?,
            not_found: f(13)?,
            violations: f(14)?,
            first_deadlk: f(15)?,
            first_timedout: f(16)?,
            first_other: f(17)?,
            max_hold_ns: f(18)?,
            budget_out: f(19)?,
        })
    }

    /// Failed attempts (of the second lock, for ABBA).
    fn failures(&self) -> u64 {
        self.deadlk + self.timedout + self.other
    }

    /// ABBA: failed attempts on the first lock.
    fn first_failures(&self) -> u64 {
        self.first_deadlk + self.first_timedout + self.first_other
    }
}

fn errno_name(err: i64) -> String {
    match err {
        0 => "0".into(),
        EDEADLK => "-EDEADLK".into(),
        ETIMEDOUT => "-ETIMEDOUT".into(),
        e => format!("{e} (unexpected)"),
    }
}

fn ms(ns: u64) -> String {
    format!("{:.3} ms", ns as f64 / 1e6)
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

fn set_cfg(map: &Map, slot: u32, value: u64) -> Result<()> {
    update(map, slot, &value.to_ne_bytes())
}

/// Runs `prog_fd` once on a detached thread and fails if it does not come
/// back within [`HANG_LIMIT`]; returns r0.
fn run_once_guarded(prog_fd: RawFd, what: &str) -> Result<i32> {
    let rx = spawn_pinned(0, move || test_run(prog_fd, 1));
    let out = recv_within(&rx, HANG_LIMIT, what)??;
    Ok(out.retval as i32)
}

/// The CPUs this runner may use; the two-CPU tests need two.
fn cpus_available() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn needs_two_cpus() -> Option<Verdict> {
    (cpus_available() < 2)
        .then(|| Verdict::Skip(format!("needs 2 CPUs, the runner has {}", cpus_available())))
}

/// The errno behind a libbpf wrapper error, if any.
fn errno_of(e: &anyhow::Error) -> Option<i32> {
    e.root_cause()
        .downcast_ref::<std::io::Error>()
        .and_then(std::io::Error::raw_os_error)
}
