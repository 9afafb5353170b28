// SPDX-License-Identifier: GPL-2.0

//! The one place the algorithm takes its atomics from.
//!
//! The kernel and plain host builds use `core`'s atomics. The host crate's
//! model-checking build (`--cfg loom`, never set by Kbuild) swaps in loom's
//! instrumented atomics so that every load, store and RMW below becomes a
//! scheduling point loom can permute.

#[cfg(not(loom))]
pub(crate) use core::sync::atomic::{fence, AtomicU32, AtomicU64, AtomicUsize, Ordering};

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{fence, AtomicU32, AtomicU64, AtomicUsize, Ordering};

/// Compiler-only barrier, the equivalent of the C `barrier()`.
///
/// The per-CPU state is shared between a context and the interrupts/NMIs that
/// nest on top of it on the same CPU. Those run "inside" the interrupted
/// instruction stream, so only the compiler can reorder accesses against them;
/// no hardware fence is needed, but the compiler must not sink a store past
/// this point (e.g. the held-table count increment past the entry write).
#[inline(always)]
pub(crate) fn compiler_barrier() {
    // loom threads are not interrupts and loom has no compiler fence: every
    // loom atomic access is already a sequenced scheduling point.
    #[cfg(not(loom))]
    core::sync::atomic::compiler_fence(Ordering::SeqCst);
}
