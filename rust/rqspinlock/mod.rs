// SPDX-License-Identifier: GPL-2.0

//! Resilient queued spin lock (rqspinlock), the algorithm alone.
//!
//! A qspinlock (MCS queue squeezed into a 32-bit word) that cannot hang: every
//! waiting loop is bounded (the bounds and their one caveat, time stolen from
//! queued CPUs by interrupts, NMIs or a hypervisor, are spelled out in
//! `slowpath`), and waiters look for AA deadlocks (this CPU
//! already holds the lock) and ABBA deadlocks (another CPU holds the lock and
//! waits for one we hold) through per-CPU tables of held locks. On failure
//! `lock()` returns [`LockError`] and the caller must cope; BPF programs
//! branch on the kfunc's return value. The algorithm follows upstream
//! `kernel/bpf/rqspinlock.c` in its latest form; see `slowpath` for the
//! differences forced by a lock word that BPF programs can write.
//!
//! This module uses only `core` (no allocation, no `kernel` crate) so that
//! the same source builds
//!
//! - in the `bpf_rqspinlock` kernel module, as `pub mod rqspinlock;` in
//!   `rust/rqspinlock_rs.rs`, with a [`Platform`] backed by per-CPU memory,
//!   `ktime_get_mono_fast_ns()` and `cpu_relax()`;
//! - on the host, in `tools/rqspinlock-host`, through
//!   `#[path = "../../../rust/rqspinlock/mod.rs"] pub mod rqspinlock;`, with
//!   thread-per-CPU platforms for std tests, loom models and a benchmark.
//!   Only that crate sets `cfg(rqspin_bench)`, which adds the unbounded
//!   [`QueuedSpinLock`] the benchmark compares against.
//!
//! Everything that depends on the environment is behind [`Platform`].
//! Nothing reachable from a lock word can panic: every index derived from
//! the word is range-checked and arithmetic is wrapping or saturating.
//!
//! Module map: `word` (lock word layout and atomics), `held` (held-locks
//! table, AA/ABBA), `mcs` (queue nodes), `timeout` (deadlines), `slowpath`
//! (contended path), `lock` (public types), `platform` (the trait),
//! `sync` (where the atomics come from: `core`, or loom under `cfg(loom)`).

#![deny(unsafe_op_in_unsafe_fn)]
// `cfg(loom)` and `cfg(rqspin_bench)` are only ever set by the host crate,
// which declares them; a build that checks cfg names without knowing them
// (Kbuild) must stay quiet.
#![allow(unexpected_cfgs)]

mod error;
mod held;
mod lock;
mod mcs;
mod platform;
mod slowpath;
mod sync;
mod timeout;
mod word;

pub use error::LockError;
pub use held::{HeldLocks, NR_HELD};
#[cfg(rqspin_bench)]
pub use lock::QueuedSpinLock;
pub use lock::RqSpinLock;
pub use mcs::{McsNode, McsNodes};
pub use platform::{CpuState, DelayPoint, Platform};
pub use timeout::{ABBA_INTERVAL_NS, DEF_TIMEOUT_NS, HEAD_TIMEOUT_NS, NON_HEAD_ABORT_NS};
pub use word::{MAX_CPUS, MAX_NODES};
