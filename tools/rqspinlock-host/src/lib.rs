// SPDX-License-Identifier: GPL-2.0

//! Host build of the rqspinlock algorithm in `rust/rqspinlock/`.
//!
//! The kernel module compiles that directory as a module of its own crate;
//! this crate compiles the very same files (through `#[path]`) against
//! host platforms where every OS thread plays one CPU, so the algorithm can
//! be model-checked, stress-tested and benchmarked without a kernel.
//!
//! # Running
//!
//! From `tools/`:
//!
//! - std tests (stress, AA/ABBA, timeouts, scribbled words, out-of-order
//!   unlock, queue races provoked through `Platform::delay_point`, time
//!   bounds of long queues): `cargo test -p rqspinlock-host`
//! - loom models (2–3 threads, bounded preemptions, < 60 s):
//!   `RUSTFLAGS="--cfg loom" cargo test -p rqspinlock-host --release --test loom`
//! - benchmark (resilient vs plain queued vs test-and-set lock):
//!   `cargo run -p rqspinlock-host --release --bin bench`
//!
//! Without `--cfg loom` the loom test file compiles to nothing; with it, only
//! the loom tests run (the std tests need real threads and clocks).

#[path = "../../../rust/rqspinlock/mod.rs"]
pub mod rqspinlock;

pub mod platform;
