// SPDX-License-Identifier: GPL-2.0

//! Host build of the rqspinlock algorithm in `rust/rqspinlock/`.
//!
//! The kernel module compiles that directory as a module of its own crate;
//! this crate compiles the very same files (through `#[path]`) against its
//! own atomics ([`rqspinlock_sync`]: `core`'s, or loom's under `--cfg loom`)
//! and host platforms where every OS thread plays one CPU, so the algorithm
//! can be model-checked, stress-tested and benchmarked without a kernel.
//!
//! # Running
//!
//! From `tools/`:
//!
//! - std tests (stress, AA/ABBA, nested contexts and NMIs through
//!   interrupts injected in waiting loops, timeouts, queue teardown, out of
//!   order unlock): `cargo test -p rqspinlock-host`
//! - loom models: `RUSTFLAGS="--cfg loom" cargo test -p rqspinlock-host
//!   --release --test loom`
//! - benchmark (resilient vs plain queued vs test-and-set lock):
//!   `cargo run -p rqspinlock-host --release --bin bench`

/// The atomics the algorithm uses (see `rust/rqspinlock/mod.rs`).
#[cfg(not(loom))]
mod rqspinlock_sync {
    pub(crate) use core::sync::atomic::{fence, AtomicPtr, AtomicU32, AtomicUsize, Ordering};

    /// The C `barrier()`: nested contexts on one CPU see program order.
    #[inline(always)]
    pub(crate) fn compiler_barrier() {
        core::sync::atomic::compiler_fence(Ordering::SeqCst);
    }
}

/// The atomics the algorithm uses, instrumented by loom: every load, store
/// and read-modify-write is a scheduling point loom can permute.
#[cfg(loom)]
mod rqspinlock_sync {
    pub(crate) use loom::sync::atomic::{fence, AtomicPtr, AtomicU32, AtomicUsize, Ordering};

    /// loom threads are not interrupts and every loom access is already a
    /// sequenced scheduling point: nothing to do.
    pub(crate) fn compiler_barrier() {}
}

#[path = "../../../rust/rqspinlock/mod.rs"]
pub mod rqspinlock;

pub mod platform;
pub mod qspinlock;
