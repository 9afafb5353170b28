// SPDX-License-Identifier: GPL-2.0

//! MCS queue nodes, [`MAX_NODES`] per CPU (task, softirq, hardirq, NMI).
//!
//! Besides upstream's `next`/`locked`/`count`, every node records which lock
//! it queues on and a sequence number bumped on every use. Upstream trusts
//! the tail in the lock word; ours can be scribbled on by a BPF program, so
//! a waiter validates the node a tail names before linking to it.
//!
//! # The `next` word
//!
//! Everything two neighbours in the queue tell each other, except the final
//! "you are head" / "time out" signal, goes through the predecessor's `next`
//! and changes only by compare-and-exchange, so that for every decision
//! exactly one side wins:
//!
//! ```text
//!   EMPTY(seq) --link (succ)--> succ --abort (succ)--> succ|ABORT
//!       |                         |                      |    |
//!       |                     claim (pred)         claim (pred) detach (succ)
//!       |                         v                      v    v
//!       |                      CLAIMED <-----------------'  DETACHED
//!       +--close (pred)--> CLOSED
//!       '--abandon (pred)--> ABANDONED(seq) --reclaim (owner CPU)--> CLOSED
//! ```
//!
//! - Only the waiter that linked a pointer changes it afterwards (abort,
//!   detach), and only the predecessor claims it. A predecessor writes into
//!   its successor's node (`locked`) only after its claim succeeded, and a
//!   successor leaves only after its detach succeeded or after it received
//!   the signal; so no node is ever written after it was retired.
//! - A node's use ends only once `next` is final (CLAIMED, DETACHED, CLOSED
//!   or ABANDONED), and [`McsNode::init`] starts every use with the EMPTY tag
//!   of a new `seq`. A successor that validated an older use can therefore
//!   never link to a newer one: its compare-and-exchange expects the old tag.
//! - ABANDONED keeps the use (and `lock`) alive for a successor that may
//!   still arrive: see `slowpath` for why and for when it is reclaimed.
//!
//! Tags live in the low three bits; nodes are 8-byte aligned, so a pointer
//! never has them set. `next` is a `u64` so that EMPTY and ABANDONED can
//! carry the whole 32-bit `seq` on every architecture.

use super::sync::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use super::word::MAX_NODES;

/// `locked` value meaning "you are the queue head now".
pub(crate) const HEAD_VAL: u32 = 1;
/// `locked` value meaning "the queue timed out, leave" (`RES_TIMEOUT_VAL`).
pub(crate) const TIMEOUT_VAL: u32 = 2;

const TAG_MASK: u64 = 7;
/// A successor's address (tag 0).
const TAG_LINKED: u64 = 0;
/// No successor yet; `seq` in the upper bits.
const TAG_EMPTY: u64 = 1;
/// A successor's address, and it asks us to abort the queue.
const TAG_ABORT: u64 = 2;
/// The use ended while a successor may still arrive; `seq` in the upper bits.
const TAG_ABANDONED: u64 = 3;
/// Final states with no payload.
const CLOSED: u64 = 7;
const CLAIMED: u64 = 15;
const DETACHED: u64 = 23;

/// One MCS queue node.
///
/// # Invariants
///
/// - `next` follows the state machine in the module docs; a value with tag 0
///   or [`TAG_ABORT`] is the address of a node inside a
///   [`CpuState`](super::CpuState) handed out by the platform, which
///   outlives every lock operation.
/// - While a waiter uses the node, `lock` is the address of the lock it
///   queues on; it is 0 while the node is idle. An ABANDONED node keeps its
///   `lock` until it is reclaimed.
/// - `seq` changes (before `lock` is set) every time the node is taken into
///   use.
/// - `linking` is 1 from [`Self::init`] until the waiter has decided whether
///   it links behind the node its `xchg_tail()` returned.
/// - `count` is only used in a CPU's first node: the index of the next node
///   a nested slow path on that CPU may use.
///
/// All-zero bytes are a valid idle node.
#[repr(C, align(8))]
pub struct McsNode {
    next: AtomicU64,
    locked: AtomicU32,
    count: AtomicU32,
    lock: AtomicUsize,
    seq: AtomicU32,
    linking: AtomicU32,
    /// Smallest address of a waiter at or behind this one that asked for an
    /// abort (0: none); see `slowpath::wait_turn()`.
    origin: AtomicUsize,
}

/// Identity of a node's current use: enough to tell "still the waiter I
/// validated" from "idle" or "reused since".
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Use {
    /// Address of the lock the node queues on (0: idle).
    pub(crate) lock: usize,
    /// Sequence number of the use.
    pub(crate) seq: u32,
}

/// What a node's `next` says about its successor.
#[derive(Clone, Copy)]
pub(crate) enum Next {
    /// Nobody has linked yet.
    Empty,
    /// A successor linked; `abort` if it asks for the queue to be aborted.
    Linked { node: &'static McsNode, abort: bool },
    /// Final: nothing more will happen to this use's `next`.
    Final,
}

/// How [`McsNode::finish`] ended the use's `next`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Finish {
    /// We claimed a successor and wrote the signal into its node.
    Signalled,
    /// Nobody linked; nobody can link to this use any more.
    Closed,
    /// The successor left on its own (cycle break).
    Detached,
    /// Nobody linked, but somebody still may: the use stays alive (ABANDONED).
    Abandoned,
}

impl McsNode {
    /// An idle node.
    #[cfg(not(loom))]
    pub const fn new() -> Self {
        Self {
            next: AtomicU64::new(0),
            locked: AtomicU32::new(0),
            count: AtomicU32::new(0),
            lock: AtomicUsize::new(0),
            seq: AtomicU32::new(0),
            linking: AtomicU32::new(0),
            origin: AtomicUsize::new(0),
        }
    }

    /// An idle node.
    #[cfg(loom)]
    pub fn new() -> Self {
        Self {
            next: AtomicU64::new(0),
            locked: AtomicU32::new(0),
            count: AtomicU32::new(0),
            lock: AtomicUsize::new(0),
            seq: AtomicU32::new(0),
            linking: AtomicU32::new(0),
            origin: AtomicUsize::new(0),
        }
    }

    /// The node index the next slow path on this CPU starts looking at
    /// (`node->count`). Only called on a CPU's first node, by that CPU.
    pub(crate) fn count(&self) -> u32 {
        self.count.load(Ordering::Relaxed)
    }

    /// Sets the count. A plain store suffices: only this CPU writes it, and
    /// nested contexts restore the value they found before we continue.
    pub(crate) fn set_count(&self, count: u32) {
        self.count.store(count, Ordering::Relaxed);
    }

    /// Number of nodes reserved on this CPU (for tests and diagnostics).
    pub fn nesting(&self) -> u32 {
        self.count()
    }

    /// Whether the node is ABANDONED, i.e. not available until reclaimed.
    pub(crate) fn is_abandoned(&self) -> bool {
        self.next.load(Ordering::Relaxed) & TAG_MASK == TAG_ABANDONED
    }

    /// Whether a waiter that uses this node for `lock` may still be about to
    /// link behind the node its `xchg_tail()` returned.
    ///
    /// Acquire on `lock` pairs with the release in [`Self::init`], so a
    /// waiter whose `init()` we can see also shows its `linking = 1`; the
    /// acquire on `linking` pairs with [`Self::linked`].
    pub(crate) fn may_link_on(&self, lock: usize) -> bool {
        self.lock.load(Ordering::Acquire) == lock && self.linking.load(Ordering::Acquire) != 0
    }

    /// Ends an ABANDONED use (only the owning CPU, when no waiter can still
    /// link to it; see `slowpath`).
    pub(crate) fn reclaim(&self) {
        let cur = self.next.load(Ordering::Relaxed);
        if cur & TAG_MASK == TAG_ABANDONED
            && self
                .next
                .compare_exchange(cur, CLOSED, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            // INVARIANT: the use is over; idle nodes have `lock == 0`.
            self.lock.store(0, Ordering::Release);
        }
    }

    /// Prepares the node for queueing on the lock at address `lock`.
    ///
    /// `next` is set to the empty tag of the new `seq`, so a waiter that
    /// validated an older use of this node cannot link to the new one (see
    /// [`Self::link`]).
    ///
    /// Plain stores: nobody can reach the node until `LockWord::xchg_tail()`
    /// publishes it, and that RMW is a release.
    pub(crate) fn init(&self, lock: usize) -> u32 {
        let seq = self.seq.load(Ordering::Relaxed).wrapping_add(1);
        self.locked.store(0, Ordering::Relaxed);
        self.origin.store(0, Ordering::Relaxed);
        self.linking.store(1, Ordering::Relaxed);
        self.next.store(tagged(seq, TAG_EMPTY), Ordering::Relaxed);
        // INVARIANT: `seq` changes before `lock` names the new use; the
        // release on `lock` makes a reader that sees the new `lock` also see
        // the new `seq`, `next` and `linking` (see `current_use`).
        self.seq.store(seq, Ordering::Relaxed);
        self.lock.store(lock, Ordering::Release);
        seq
    }

    /// We have decided where (and whether) we link; see [`Self::may_link_on`].
    pub(crate) fn linked(&self) {
        self.linking.store(0, Ordering::Release);
    }

    /// Marks the node idle once this use is completely over.
    ///
    /// Must follow [`Self::linked`] and [`Self::finish`] (or
    /// [`Self::abandon`]): the state machine guarantees that nobody writes
    /// into the node any more. An abandoned node keeps `lock` until
    /// [`Self::reclaim`].
    pub(crate) fn retire(&self, how: Finish) {
        if how != Finish::Abandoned {
            // INVARIANT: idle nodes have `lock == 0`.
            self.lock.store(0, Ordering::Release);
        }
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

    /// Links `succ` behind this node (`WRITE_ONCE(prev->next, node)`) if the
    /// node is still in the use `seen` and has no successor yet.
    ///
    /// Fails if the node was reused since we validated it, if its use ended
    /// (closed or abandoned), or if a scribbled tail made another waiter
    /// link first. Release: `succ`'s initialisation happens-before the
    /// predecessor, which reaches `succ` through this pointer, writes
    /// `succ.locked`; otherwise our `locked = 0` could overwrite its signal.
    pub(crate) fn link(&self, succ: &'static McsNode, seen: Use) -> bool {
        self.next
            .compare_exchange(
                tagged(seen.seq, TAG_EMPTY),
                addr(succ),
                Ordering::Release,
                Ordering::Relaxed,
            )
            .is_ok()
    }

    /// The raw `next` and whether somebody linked or the use ended (i.e.
    /// it is not EMPTY). Acquire pairs with the release in [`Self::link`]
    /// and [`Self::request_abort`].
    pub(crate) fn successor(&self) -> (u64, bool) {
        let v = self.next.load(Ordering::Acquire);
        (v, !matches!(decode(v), Next::Empty))
    }

    /// Whether our successor asks for the queue to be aborted.
    pub(crate) fn abort_requested(&self) -> bool {
        self.next.load(Ordering::Relaxed) & TAG_MASK == TAG_ABORT
    }

    /// Called by `succ`, linked behind us: ask us to abort the queue.
    ///
    /// Only succeeds while `succ` is still linked and unclaimed, i.e. while
    /// this node is in the use `succ` linked to. Release: `succ.origin` is
    /// visible to us once we see the tag.
    pub(crate) fn request_abort(&self, succ: &'static McsNode) -> bool {
        self.next
            .compare_exchange(
                addr(succ),
                addr(succ) | TAG_ABORT,
                Ordering::Release,
                Ordering::Relaxed,
            )
            .is_ok()
    }

    /// Called by `succ` after [`Self::request_abort`]: leave the queue. On
    /// success we will never write into `succ`; on failure we claimed it and
    /// its signal is on the way.
    pub(crate) fn detach(&self, succ: &'static McsNode) -> bool {
        self.next
            .compare_exchange(
                addr(succ) | TAG_ABORT,
                DETACHED,
                Ordering::Relaxed,
                Ordering::Relaxed,
            )
            .is_ok()
    }

    /// The abort origin of our successor, if it asks us to abort.
    ///
    /// The successor cannot leave between the two reads of `next` unless
    /// `next` changes (a detach is final), so a value read while `next` was
    /// unchanged belongs to the successor's current use.
    pub(crate) fn successor_origin(&self) -> Option<usize> {
        let v = self.next.load(Ordering::Acquire);
        let Next::Linked { node, abort: true } = decode(v) else {
            return None;
        };
        let origin = node.origin.load(Ordering::Acquire);
        (self.next.load(Ordering::Acquire) == v && origin != 0).then_some(origin)
    }

    /// Lowers our abort origin to `origin` if that is smaller (only the
    /// owner writes it). Release pairs with [`Self::successor_origin`].
    pub(crate) fn lower_origin(&self, origin: usize) {
        let cur = self.origin.load(Ordering::Relaxed);
        if cur == 0 || origin < cur {
            self.origin.store(origin, Ordering::Release);
        }
    }

    /// Ends this use's `next` (predecessor side): claims a linked successor
    /// and writes `sig` into it, or closes `next` if nobody linked. `seq` is
    /// this use's, as returned by [`Self::init`].
    ///
    /// Bounded: every failed compare-and-exchange means the successor made
    /// one of its at most three moves (link, abort, detach; see the module
    /// docs), and node memory is not writable by BPF programs.
    pub(crate) fn finish(&self, sig: u32, seq: u32) -> Finish {
        self.end(sig, tagged(seq, TAG_EMPTY), CLOSED)
    }

    /// Like [`Self::finish`] but, if nobody linked yet, leaves `next`
    /// ABANDONED instead of CLOSED: a successor may still arrive. `seen` is
    /// the last value [`Self::successor`] returned (a guess that saves a
    /// load; any value is correct).
    pub(crate) fn abandon(&self, sig: u32, seq: u32, seen: u64) -> Finish {
        self.end(sig, seen, tagged(seq, TAG_ABANDONED))
    }

    fn end(&self, sig: u32, mut cur: u64, empty_end: u64) -> Finish {
        loop {
            let (new, succ) = match decode(cur) {
                Next::Empty => (empty_end, None),
                Next::Linked { node, .. } => (CLAIMED, Some(node)),
                // Final values never change, so even a guessed one is
                // current. Only DETACHED can be set by somebody else.
                Next::Final => {
                    return if cur == DETACHED {
                        Finish::Detached
                    } else {
                        Finish::Closed
                    }
                }
            };
            // Acquire: see the successor's initialisation before writing
            // into it (pairs with the release in `link()`).
            match self
                .next
                .compare_exchange(cur, new, Ordering::Acquire, Ordering::Acquire)
            {
                Ok(_) => {
                    let Some(succ) = succ else {
                        return if new == CLOSED {
                            Finish::Closed
                        } else {
                            Finish::Abandoned
                        };
                    };
                    // Release (upstream `smp_store_release()` for the head
                    // hand-over): what we did as head, including owning and
                    // releasing the queue position, is visible to the new
                    // head.
                    succ.locked.store(sig, Ordering::Release);
                    return Finish::Signalled;
                }
                Err(now) => cur = now,
            }
        }
    }

    /// What the predecessor told us (0: nothing yet). Acquire pairs with the
    /// release in [`Self::finish`], ordering the previous owner's critical
    /// section before ours.
    pub(crate) fn signal(&self) -> u32 {
        self.locked.load(Ordering::Acquire)
    }
}

impl Default for McsNode {
    fn default() -> Self {
        Self::new()
    }
}

/// A node's address as stored in `next`.
pub(crate) fn addr(node: &'static McsNode) -> u64 {
    node as *const McsNode as usize as u64
}

/// `seq` and a tag packed into a `next` value.
fn tagged(seq: u32, tag: u64) -> u64 {
    (u64::from(seq) << 3) | tag
}

fn decode(v: u64) -> Next {
    match v & TAG_MASK {
        TAG_EMPTY => Next::Empty,
        TAG_LINKED | TAG_ABORT if v & !TAG_MASK != 0 => {
            let ptr = (v & !TAG_MASK) as usize as *const McsNode;
            // SAFETY: by the type invariant a pointer-tagged `next` is the
            // address of a node in a `CpuState` that lives at least as long
            // as any lock operation, and nodes are only accessed through
            // shared references to their atomics.
            match unsafe { ptr.as_ref() } {
                Some(node) => Next::Linked {
                    node,
                    abort: v & TAG_MASK == TAG_ABORT,
                },
                None => Next::Final,
            }
        }
        // A zeroed, never-used node (0), ABANDONED and the final values.
        _ => Next::Final,
    }
}

/// The per-CPU node array.
pub type McsNodes = [McsNode; MAX_NODES];
