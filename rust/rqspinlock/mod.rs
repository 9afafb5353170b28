// SPDX-License-Identifier: GPL-2.0

//! Resilient queued spin lock (rqspinlock), the algorithm alone.
//!
//! A qspinlock (an MCS queue squeezed into a 32-bit word) that cannot hang:
//! the pending waiter and the queue head wait with deadlines, and waiters
//! look for AA deadlocks (this CPU already holds the lock) and ABBA
//! deadlocks (another CPU holds the lock and waits for one we hold) through
//! per-CPU tables of held locks. On failure `lock()` returns [`LockError`]
//! and the caller must cope; BPF programs branch on the kfunc's return
//! value.
//!
//! The algorithm is upstream's `kernel/bpf/rqspinlock.c` in its latest form
//! (Linux 6.15 plus every later fix through 6.19), by Kumar Kartikeya
//! Dwivedi and Alexei Starovoitov, on top of the qspinlock of Waiman Long
//! and Peter Zijlstra. That file carries these notices, which apply to the
//! algorithm this code follows:
//!
//! ```text
//! (C) Copyright 2013-2015 Hewlett-Packard Development Company, L.P.
//! (C) Copyright 2013-2014,2018 Red Hat, Inc.
//! (C) Copyright 2015 Intel Corp.
//! (C) Copyright 2015 Hewlett-Packard Enterprise Development LP
//! (C) Copyright 2024-2025 Meta Platforms, Inc. and affiliates.
//! Authors: Waiman Long, Peter Zijlstra, Kumar Kartikeya Dwivedi
//! ```
//!
//! Where it differs, and why:
//!
//! - **Every access to the word is 32 bits wide** (upstream: byte and
//!   halfword stores and exchanges). Rust defines no mixed-size atomics on
//!   one location; this is qspinlock's own `_Q_PENDING_BITS != 8` shape
//!   (`word`).
//! - **Unlock and `set_locked()` are atomic read-modify-writes** (upstream:
//!   byte stores). A 32-bit store would overwrite a concurrent tail or
//!   pending update (`word`).
//! - **Unlock removes the lock's own held-table entry, wherever it is**
//!   (upstream: clears the top entry). Rust callers may drop guards out of
//!   order; LIFO unlocks take the same path as upstream (`held`).
//! - **The AA check past [`NR_HELD`] locks checks every stored entry**
//!   (upstream: skips the last slot). The attempt itself is not stored
//!   then; runtime test `res_lock_held_overflow` (slot 30).
//! - **`xchg_tail()`, `next` and the ABBA check's read of a remote count
//!   are acquire/release** (upstream: relaxed, ordered by address
//!   dependencies). The Rust memory model has no consume ordering.
//!
//! The source uses only `core` (no allocation, no `kernel` crate): the
//! crate that includes it provides a module `rqspinlock_sync` next to it,
//! with the atomics (`AtomicU32`, `AtomicUsize`, `AtomicPtr`, `fence`,
//! `Ordering`) and `compiler_barrier()`, and a [`Platform`]. The kernel
//! module gives it `core`'s atomics and per-CPU memory.
//!
//! Module map: `word` (lock word layout and atomics), `held` (held-locks
//! table, AA/ABBA), `mcs` (queue nodes), `timeout` (deadlines), `slowpath`
//! (contended path), `lock` (the lock type and its guard), `platform` (the
//! trait).

#![deny(unsafe_op_in_unsafe_fn)]

use super::rqspinlock_sync as sync;

mod error;
mod held;
mod lock;
mod mcs;
mod platform;
mod slowpath;
mod timeout;
mod word;

pub use error::LockError;
pub use held::{HeldLocks, NR_HELD};
pub use lock::{Guard, RqSpinLock};
pub use mcs::{McsNode, McsNodes};
pub use platform::{CpuState, Platform, ThisCpu};
pub use timeout::{ABBA_INTERVAL_NS, DEF_TIMEOUT_NS, HEAD_TIMEOUT_NS};
pub use word::{MAX_CPUS, MAX_NODES};
