// SPDX-License-Identifier: GPL-2.0

//! MCS queue nodes, [`MAX_NODES`] per CPU (task, softirq, hardirq, NMI),
//! as upstream's `struct mcs_spinlock` in `rqnodes[]`.

use core::ptr;

use super::sync::{AtomicPtr, AtomicU32, Ordering};
use super::word::MAX_NODES;

/// `locked` value a predecessor writes to make its successor the head
/// (`arch_mcs_spin_unlock_contended()`).
pub(crate) const HEAD_VAL: u32 = 1;
/// `locked` value a timed-out head writes to tear the queue down
/// (`RES_TIMEOUT_VAL`).
pub(crate) const TIMEOUT_VAL: u32 = 2;

/// One MCS queue node.
///
/// # Invariants
///
/// - `next` is null or points to a node inside a
///   [`CpuState`](super::CpuState) handed out by the platform, which
///   outlives every lock operation.
/// - `locked` is 0 while the waiter owning the node waits behind a
///   predecessor, then [`HEAD_VAL`] or [`TIMEOUT_VAL`], written once by
///   that predecessor.
/// - `count` is only used in a CPU's first node: the number of nodes the
///   slow paths running on that CPU (nested in each other) have taken.
///
/// All-zero bytes are a valid idle node.
#[repr(C)]
pub struct McsNode {
    next: AtomicPtr<McsNode>,
    locked: AtomicU32,
    count: AtomicU32,
}

/// The nodes of one CPU.
pub type McsNodes = [McsNode; MAX_NODES];

impl McsNode {
    /// An idle node.
    pub fn new() -> Self {
        Self {
            next: AtomicPtr::new(ptr::null_mut()),
            locked: AtomicU32::new(0),
            count: AtomicU32::new(0),
        }
    }

    /// Prepares the node for a new wait: `node->locked = 0; node->next =
    /// NULL`. Relaxed: the releasing `xchg_tail()` publishes both.
    pub(crate) fn init(&self) {
        self.locked.store(0, Ordering::Relaxed);
        self.next.store(ptr::null_mut(), Ordering::Relaxed);
    }

    /// `WRITE_ONCE(prev->next, node)`: links `succ` behind this node.
    ///
    /// Release, paired with the acquire in [`Self::next`]: the successor's
    /// `init()` must come before the signal this node's owner will write
    /// into it, or the signal could be overwritten by the initial 0. C gets
    /// that from the address dependency of `next->locked` on `next`; the
    /// Rust memory model needs the pair (free on x86, one `stlr`/`ldar` on
    /// arm64, on the slow path only).
    pub(crate) fn link(&self, succ: &McsNode) {
        self.next
            .store(succ as *const McsNode as *mut McsNode, Ordering::Release);
    }

    /// The successor, if one has linked yet (`READ_ONCE(node->next)`).
    pub(crate) fn next(&self) -> Option<&McsNode> {
        let next = self.next.load(Ordering::Acquire);
        // SAFETY: a non-null `next` points to a node inside per-CPU state
        // that outlives every lock operation (type invariant).
        unsafe { next.as_ref() }
    }

    /// `arch_mcs_spin_lock_contended()`'s load: 0 while we wait, then the
    /// predecessor's signal.
    ///
    /// Acquire: pairs with the predecessor's release in [`Self::signal`],
    /// so the head role comes after everything the predecessor did.
    pub(crate) fn signalled(&self) -> u32 {
        self.locked.load(Ordering::Acquire)
    }

    /// `arch_mcs_spin_unlock_contended()` (`HEAD_VAL`) or the teardown's
    /// `WRITE_ONCE(next->locked, RES_TIMEOUT_VAL)`: the last write into the
    /// successor's node.
    pub(crate) fn signal(&self, val: u32) {
        self.locked.store(val, Ordering::Release);
    }

    /// `node->count` of a CPU's first node.
    pub(crate) fn count(&self) -> u32 {
        self.count.load(Ordering::Relaxed)
    }

    /// Sets `node->count` of a CPU's first node. Only the owning CPU writes
    /// it, and a context nesting on top restores the value before it
    /// returns, so a load and a store make the `++`/`--` of upstream.
    pub(crate) fn set_count(&self, count: u32) {
        self.count.store(count, Ordering::Relaxed);
    }
}

impl Default for McsNode {
    fn default() -> Self {
        Self::new()
    }
}
