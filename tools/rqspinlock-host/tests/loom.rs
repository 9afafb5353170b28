// SPDX-License-Identifier: GPL-2.0

//! loom models of the lock (2–4 threads, bounded preemptions).
//!
//! Run from `tools/` with
//! `RUSTFLAGS="--cfg loom" cargo test -p rqspinlock-host --release --test loom`.
//!
//! loom (rather than shuttle) because it explores weak-memory reorderings of
//! the acquire/release pairs, not only interleavings, and handles the spin
//! loops: every wait calls `Platform::relax()`, which is a loom yield, and
//! the logical clock advancing there makes the deadlines fire after a few
//! scheduling points, so each execution is finite. Time-outs are therefore
//! legitimate outcomes in these models; the properties checked hold for every
//! outcome.

/// Without `--cfg loom` this file only reports, visibly, that its models
/// did not run.
#[cfg(not(loom))]
#[test]
#[ignore = "loom models: RUSTFLAGS=\"--cfg loom\" cargo test -p rqspinlock-host --release --test loom"]
fn loom_models_need_cfg_loom() {}

#[cfg(loom)]
#[path = "loom/models.rs"]
mod models;
