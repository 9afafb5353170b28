// SPDX-License-Identifier: GPL-2.0

//! MCS queue nodes, [`MAX_NODES`] per CPU (task, softirq, hardirq, NMI).
//!
//! Besides upstream's `next`/`locked`/`count`, every node records which lock
//! it queues on and a sequence number bumped on every use. Upstream trusts
//! the tail in the lock word; ours can be scribbled on by a BPF program, so
//! a waiter validates the node a tail names before linking to it and, while
//! waiting behind it, notices when that node has moved on without handing
//! over (see `slowpath`). Without this a garbage tail could leave a waiter
//! spinning forever behind an idle node, or behind a node queued on another
//! lock.

use core::ptr;

use super::sync::{AtomicPtr, AtomicU32, AtomicUsize, Ordering};
use super::word::MAX_NODES;

/// `locked` value meaning "you are the queue head now".
pub(crate) const HEAD_VAL: u32 = 1;
/// `locked` value meaning "the queue timed out, leave" (`RES_TIMEOUT_VAL`).
pub(crate) const TIMEOUT_VAL: u32 = 2;

/// One MCS queue node.
///
/// # Invariants
///
/// - `next` is null, an odd "empty" tag (see [`empty_tag`]), or points to a
///   node inside a [`CpuState`](super::CpuState) handed out by the platform,
///   which outlives every lock operation. Nodes are at least 8-byte aligned,
///   so a real pointer is never odd.
/// - While a waiter uses the node, `lock` is the address of the lock it
///   queues on; it is 0 while the node is idle.
/// - `seq` changes (before `lock` is set) every time the node is taken into
///   use.
/// - `count` is only used in a CPU's first node: the number of nodes in use
///   on that CPU, i.e. the nesting depth of slow-path waiters.
///
/// All-zero bytes are a valid idle node.
#[repr(C)]
pub struct McsNode {
    next: AtomicPtr<McsNode>,
    locked: AtomicU32,
    count: AtomicU32,
    lock: AtomicUsize,
    seq: AtomicU32,
}

/// Identity of a node's current use: enough to tell "still the waiter I
/// linked behind" from "idle" or "reused since".
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Use {
    /// Address of the lock the node queues on (0: idle).
    pub(crate) lock: usize,
    /// Sequence number of the use.
    pub(crate) seq: u32,
}

impl McsNode {
    /// An idle node.
    #[cfg(not(loom))]
    pub const fn new() -> Self {
        Self {
            next: AtomicPtr::new(ptr::null_mut()),
            locked: AtomicU32::new(0),
            count: AtomicU32::new(0),
            lock: AtomicUsize::new(0),
            seq: AtomicU32::new(0),
        }
    }

    /// An idle node.
    #[cfg(loom)]
    pub fn new() -> Self {
        Self {
            next: AtomicPtr::new(ptr::null_mut()),
            locked: AtomicU32::new(0),
            count: AtomicU32::new(0),
            lock: AtomicUsize::new(0),
            seq: AtomicU32::new(0),
        }
    }

    /// Takes the next node index on this CPU (`idx = node->count++`).
    ///
    /// Only called on a CPU's first node, by that CPU. A plain
    /// read-modify-write suffices: nested contexts restore the count.
    pub(crate) fn enter(&self) -> usize {
        let idx = self.count.load(Ordering::Relaxed);
        self.count.store(idx.wrapping_add(1), Ordering::Relaxed);
        idx as usize
    }

    /// Gives the node index back (`__this_cpu_dec(rqnodes[0].mcs.count)`).
    pub(crate) fn exit(&self) {
        let idx = self.count.load(Ordering::Relaxed);
        self.count.store(idx.wrapping_sub(1), Ordering::Relaxed);
    }

    /// Number of nodes in use on this CPU (for tests and diagnostics).
    pub fn nesting(&self) -> u32 {
        self.count.load(Ordering::Relaxed)
    }

    /// Prepares the node for queueing on the lock at address `lock`.
    ///
    /// `next` is set to the empty tag of the new `seq` rather than null, so a
    /// waiter that validated an older use of this node cannot link to the
    /// new one (see [`Self::link`]).
    ///
    /// Plain stores: nobody can reach the node until [`LockWord::xchg_tail`]
    /// publishes it, and that RMW is a release.
    ///
    /// [`LockWord::xchg_tail`]: super::word::LockWord::xchg_tail
    pub(crate) fn init(&self, lock: usize) {
        let seq = self.seq.load(Ordering::Relaxed).wrapping_add(1);
        self.locked.store(0, Ordering::Relaxed);
        self.next.store(empty_tag(seq), Ordering::Relaxed);
        // INVARIANT: `seq` changes before `lock` names the new use; the
        // release on `lock` makes a reader that sees the new `lock` also see
        // the new `seq` (see `current_use`).
        self.seq.store(seq, Ordering::Relaxed);
        self.lock.store(lock, Ordering::Release);
    }

    /// Marks the node idle once this use is completely over.
    ///
    /// Release: every store of this use (in particular the hand-over or
    /// timeout signal written into the successor) happens-before a
    /// successor's liveness check that observes the node idle, so that
    /// check can re-read its own `locked` and see the signal if there was one.
    pub(crate) fn retire(&self) {
        // INVARIANT: idle nodes have `lock == 0`.
        self.lock.store(0, Ordering::Release);
    }

    /// The node's current use, as seen by another CPU.
    ///
    /// Reads `lock` (acquire) before `seq`, the reverse of [`Self::init`], so
    /// a reuse for the same lock is seen as a changed `seq`.
    pub(crate) fn current_use(&self) -> Use {
        let lock = self.lock.load(Ordering::Acquire);
        let seq = self.seq.load(Ordering::Relaxed);
        Use { lock, seq }
    }

    /// Whether this is the same use, by the same lock, as `seen`.
    pub(crate) fn still(&self, seen: Use) -> bool {
        self.current_use() == seen
    }

    /// Links `succ` behind this node (`WRITE_ONCE(prev->next, node)`) if the
    /// node is still in the use `seen` and has no successor yet.
    ///
    /// A legitimate predecessor is always in the use we saw and has no
    /// successor yet, so the compare-and-exchange from the empty tag always
    /// succeeds for it. It fails when a scribbled tail made two waiters pick
    /// the same node (the second does not cut off the first) or when the
    /// node was reused since we validated it. Release: `succ`'s
    /// initialisation happens-before the predecessor, which reaches `succ`
    /// through this pointer, writes `succ.locked`; otherwise our `locked = 0`
    /// could overwrite its signal.
    pub(crate) fn link(&self, succ: &'static McsNode, seen: Use) -> bool {
        let succ = succ as *const McsNode as *mut McsNode;
        self.next
            .compare_exchange(
                empty_tag(seen.seq),
                succ,
                Ordering::Release,
                Ordering::Relaxed,
            )
            .is_ok()
    }

    /// The successor, if one has linked yet.
    ///
    /// Acquire pairs with the release in [`Self::link`].
    pub(crate) fn next(&self) -> Option<&'static McsNode> {
        let next = self.next.load(Ordering::Acquire);
        if next as usize & 1 != 0 {
            return None;
        }
        // SAFETY: by the type invariant an even `next` is null or points to a
        // node in a `CpuState` that lives at least as long as any lock
        // operation, and nodes are only accessed through shared references to
        // their atomics.
        unsafe { next.as_ref() }
    }

    /// What the predecessor told us (0: nothing yet). Acquire pairs with the
    /// release in [`Self::make_head`], ordering the previous owner's
    /// critical section before ours.
    pub(crate) fn signal(&self) -> u32 {
        self.locked.load(Ordering::Acquire)
    }

    /// `arch_mcs_spin_unlock_contended()`: make this node the queue head.
    ///
    /// Release (upstream `smp_store_release()`): what we did as head,
    /// including owning and releasing the queue position, is visible to the
    /// new head.
    pub(crate) fn make_head(&self) {
        self.locked.store(HEAD_VAL, Ordering::Release);
    }

    /// Tell this node's waiter the queue timed out (`WRITE_ONCE(next->locked,
    /// RES_TIMEOUT_VAL)`).
    ///
    /// Relaxed as upstream: the waiter only needs the value, no data is
    /// published with it. (Our `retire()` release still orders it before the
    /// node looks idle, which the liveness check relies on.)
    pub(crate) fn signal_timeout(&self) {
        self.locked.store(TIMEOUT_VAL, Ordering::Relaxed);
    }
}

impl Default for McsNode {
    fn default() -> Self {
        Self::new()
    }
}

/// The "no successor yet" value of `next` for use `seq`: odd, so never a
/// node address. (A never-used, zeroed node has null, which is never
/// linked to: its `lock` is 0, so validation fails first.)
fn empty_tag(seq: u32) -> *mut McsNode {
    (((seq as usize) << 1) | 1) as *mut McsNode
}

/// The per-CPU node array.
pub type McsNodes = [McsNode; MAX_NODES];
