// SPDX-License-Identifier: GPL-2.0

//! The contended path: pending bit, MCS queue, deadlock and timeout handling.
//!
//! This follows upstream `resilient_queued_spin_lock_slowpath()` in its
//! latest form (entry grabbed before the attempt, AA before queueing, single
//! trylock for NMIs and when out of nodes, deadlock at the head hands over and
//! keeps the queue, timeout tears the queue down in FIFO order). The state
//! diagram, as `(tail, pending, locked)`:
//!
//! ```text
//!              fast     :    slow                                  :    unlock
//!                       :                                          :
//! uncontended  (0,0,0) -:--> (0,0,1) ------------------------------:--> (*,*,0)
//!                       :       | ^--------.------.             /  :
//!                       :       v           \      \            |  :
//! pending               :    (0,1,1) +--> (0,1,0)   \           |  :
//!                       :       | ^--'              |           |  :
//!                       :       v                   |           |  :
//! uncontended           :    (n,x,y) +--> (n,0,0) --'           |  :
//!   queue               :       | ^--'                          |  :
//!                       :       v                               |  :
//! contended             :    (*,x,y) +--> (*,0,0) ---> (*,0,1) -'  :
//!   queue               :         ^--'                             :
//! ```
//!
//! Additions for a lock word that BPF programs can overwrite (none of them
//! changes the behaviour for an intact word):
//!
//! - A tail that does not decode to a known CPU's node, that names our own
//!   node, or whose node is not queued on this lock is ignored: we proceed as
//!   if we were first in the queue, where the head's deadline bounds the wait.
//! - A non-head waiter periodically checks that its predecessor is still in
//!   the use it linked behind. If the predecessor moved on without signalling
//!   (it gave up waiting for us to link, or it was never really queued), we
//!   become the head ourselves. As a last resort, a non-head wait longer than
//!   any legitimate one ([`non_head_cap_ns`]) also makes us the head; that is
//!   only reachable through a scribbled word (e.g. two waiters linked behind
//!   each other) and may then break mutual exclusion on that one lock, which
//!   its program already gave up by writing the word.
//! - Every wait for a successor to link is bounded by [`DEF_TIMEOUT_NS`];
//!   giving up is safe because the successor then sees us retired and
//!   becomes the head (above).
//!
//! `RES == false` compiles the same queue without the held-locks table,
//! deadlines and deadlock checks: the plain qspinlock, for benchmarking.

use super::error::LockError;
use super::mcs::{McsNode, Use, TIMEOUT_VAL};
use super::platform::{CpuState, Platform};
use super::sync::Ordering;
use super::timeout::{Deadline, DEF_TIMEOUT_NS, HEAD_TIMEOUT_NS};
use super::word::{
    decode_tail, encode_tail, LockWord, LOCKED_MASK, LOCKED_PENDING_MASK, MAX_NODES, PENDING_MASK,
    PENDING_VAL, TAIL_MASK,
};

/// Everything one slow-path call works on.
struct Attempt<'a> {
    word: &'a LockWord,
    /// Address of the lock: the key in held tables and node owner fields.
    lock: usize,
    cpu: u32,
    state: &'static CpuState,
    ts: Deadline,
}

/// Acquires the lock after the fast path saw `val`.
///
/// With `RES`, the caller has pushed the lock onto this CPU's held table; on
/// error the entry has been popped again. Without `RES` it never fails.
#[inline(never)]
#[cold]
pub(crate) fn slowpath<P: Platform, const RES: bool>(
    word: &LockWord,
    lock: usize,
    mut val: u32,
    cpu: u32,
    state: &'static CpuState,
) -> Result<(), LockError> {
    let mut a = Attempt {
        word,
        lock,
        cpu,
        state,
        ts: Deadline::new(),
    };

    // Wait for an in-progress pending->locked hand-over, with a bounded
    // number of spins so that we guarantee forward progress.
    //
    // 0,1,0 -> 0,0,1
    //
    // Relaxed: the value only steers which path we take; every path
    // re-reads the word with the ordering it needs.
    if val == PENDING_VAL {
        let mut cnt = P::PENDING_LOOPS;
        loop {
            val = word.load(Ordering::Relaxed);
            if val != PENDING_VAL || cnt == 0 {
                break;
            }
            cnt -= 1;
            P::relax();
        }
    }

    // Any contention (pending or tail set): queue.
    if val & !LOCKED_MASK == 0 {
        if let Some(res) = pending::<P, RES>(&mut a) {
            return res;
        }
    }
    queue::<P, RES>(&mut a)
}

/// Trylock or become the pending waiter: `0,0,* -> 0,1,* -> 0,0,1`.
///
/// Returns `None` if contention showed up and we must queue instead.
fn pending<P: Platform, const RES: bool>(a: &mut Attempt<'_>) -> Option<Result<(), LockError>> {
    let val = a.word.fetch_set_pending_acquire();

    // Contention appeared: a concurrent locker. Undo and queue; our setting
    // of pending might have made the n,0,0 -> 0,0,0 transition of a head
    // fail, and it now waits for a successor, which will be us.
    if val & !LOCKED_MASK != 0 {
        // Undo pending only if we set it.
        if val & PENDING_MASK == 0 {
            a.word.clear_pending();
        }
        return None;
    }

    // We are pending; wait for the owner to go away: 0,1,1 -> *,1,0.
    //
    // This wait must be an acquire load matching the owner's release in
    // unlock: `clear_pending_set_locked()` below is relaxed and implies no
    // barrier, so this load is what orders our critical section after the
    // previous one.
    if val & LOCKED_MASK != 0 {
        a.ts.reset(DEF_TIMEOUT_NS);
        while a.word.load(Ordering::Acquire) & LOCKED_MASK != 0 {
            if RES {
                if let Err(e) =
                    a.ts.check::<P>(a.word, a.lock, LOCKED_MASK, a.cpu, &a.state.held)
                {
                    // We own the pending bit: clear it so the lock returns
                    // to a valid state once the stuck owner is gone.
                    //
                    // *,1,* -> *,0,*
                    a.word.clear_pending();
                    a.state.held.release_top();
                    return Some(Err(e));
                }
            }
            P::relax();
        }
    }

    // Take ownership and clear the pending bit: 0,1,0 -> 0,0,1.
    a.word.clear_pending_set_locked();
    Some(Ok(()))
}

/// The MCS queue part.
fn queue<P: Platform, const RES: bool>(a: &mut Attempt<'_>) -> Result<(), LockError> {
    // Do not queue if this lock is already held (or attempted) further down
    // on this CPU. Besides the obvious AA, this matters for NMIs: an NMI that
    // interrupted the owner or the pending waiter would otherwise queue and
    // wait for a head that cannot run until the NMI returns.
    if RES && a.state.held.holds_below_top(a.lock) {
        a.state.held.release_top();
        return Err(LockError::Deadlock);
    }

    let first = &a.state.nodes[0];
    let idx = first.enter();
    let res = queue_with_node::<P, RES>(a, idx);
    first.exit();
    if RES && res.is_err() {
        a.state.held.release_top();
    }
    res
}

/// Fallback without a usable MCS node: one trylock, no spinning (upstream:
/// "under contention, such a trylock spinning will likely be treated
/// unfairly due to lack of queueing"). The plain lock has no failure path
/// and spins.
fn without_node<P: Platform, const RES: bool>(word: &LockWord) -> Result<(), LockError> {
    if RES {
        return if word.trylock() {
            Ok(())
        } else {
            Err(LockError::Deadlock)
        };
    }
    while !word.trylock() {
        P::relax();
    }
    Ok(())
}

fn queue_with_node<P: Platform, const RES: bool>(
    a: &mut Attempt<'_>,
    idx: usize,
) -> Result<(), LockError> {
    // Four nodes suffice unless NMIs nest (or the platform misreports its
    // CPU); then, and for an NMI that is not the first waiter on this CPU,
    // only try the lock once: an NMI that queued behind the context it
    // interrupted could never be served.
    let (Some(tail), Some(node)) = (encode_tail(a.cpu, idx), a.state.nodes.get(idx)) else {
        return without_node::<P, RES>(a.word);
    };
    if RES && idx > 0 && P::in_nmi() {
        return without_node::<P, RES>(a.word);
    }

    // The count was raised in `queue()` before we touch the node, so a
    // nested context picks the next node instead of clobbering this one.
    node.init(a.lock);
    let res = queued::<P, RES>(a, node, tail);
    // Every signal to a successor has been written by now; see `retire()`.
    node.retire();
    res
}

/// How a non-head wait ended.
enum Turn {
    /// We are the head now.
    Head,
    /// The head timed out and is tearing the queue down.
    Timeout,
}

fn queued<P: Platform, const RES: bool>(
    a: &mut Attempt<'_>,
    node: &'static McsNode,
    tail: u32,
) -> Result<(), LockError> {
    // We touched a (possibly) cold cache line in the per-CPU nodes; try once
    // more in the hope the owner let go meanwhile.
    if a.word.trylock() {
        return Ok(());
    }

    // Publish the new tail: p,*,* -> n,*,*. Its release orders `init()`
    // before anyone can find the node (see `xchg_tail()`).
    let old = a.word.xchg_tail(tail);

    let mut next = None;
    if old & TAIL_MASK != 0 {
        if let Some((prev, seen)) = link_behind_prev::<P>(a, old, node) {
            match wait_turn::<P, RES>(node, prev, seen) {
                Turn::Head => {}
                Turn::Timeout => {
                    leave_queue::<P, RES>(a.word, node, tail);
                    return Err(LockError::Timeout);
                }
            }
            // A successor may have linked while we waited: read it now to
            // save a wait later.
            next = node.next();
        }
    }

    // We are the head: wait for the owner and the pending waiter to go away.
    //
    // *,x,y -> *,0,0
    //
    // This must be an acquire load matching the unlock's release (and the
    // pending waiter's, via its own unlock): `set_locked()` below is
    // relaxed and implies no barrier.
    //
    // Twice the default timeout: both an owner and a pending waiter may be
    // ahead of us, each entitled to one critical section.
    a.ts.reset(HEAD_TIMEOUT_NS);
    let mut ret = Ok(());
    let val = loop {
        let val = a.word.load(Ordering::Acquire);
        if val & LOCKED_PENDING_MASK == 0 {
            break val;
        }
        if RES {
            if let Err(e) =
                a.ts.check::<P>(a.word, a.lock, LOCKED_PENDING_MASK, a.cpu, &a.state.held)
            {
                ret = Err(e);
                break val;
            }
        }
        P::relax();
    };

    match ret {
        Ok(()) => {}
        Err(LockError::Deadlock) => {
            // A deadlock involves us, not the waiters behind us: keep the
            // queue and pass the head role on, so they get their chance.
            if next.is_none() {
                // Nobody behind us: reset the tail and leave (without this
                // we would wait for a successor that never comes).
                if a.word.try_cmpxchg_tail(tail, 0) {
                    return ret;
                }
                next = wait_next::<P, RES>(node);
            }
            if let Some(next) = next {
                next.make_head();
            }
            return ret;
        }
        Err(LockError::Timeout) => {
            leave_queue::<P, RES>(a.word, node, tail);
            return ret;
        }
    }

    // Claim the lock:
    //
    // n,0,0 -> 0,0,1 : lock, uncontended
    // *,*,0 -> *,*,1 : lock, contended
    //
    // If we are the only one queued (tail is ours) and nobody is pending,
    // clear the tail and take the lock in one go. Pending is clear in `val`
    // (that is what we waited for), so a concurrent pending setter makes this
    // cmpxchg fail and then finds our tail and queues behind us.
    if val & TAIL_MASK == tail && a.word.try_claim_uncontended(val) {
        return Ok(());
    }

    // Somebody queued behind us (or set pending and will queue): take the
    // lock, then pass the head role to our successor.
    a.word.set_locked();
    if next.is_none() {
        next = wait_next::<P, RES>(node);
    }
    if let Some(next) = next {
        next.make_head();
    }
    Ok(())
}

/// Finds, validates and links behind the node the old tail names.
///
/// Returns `None` (proceed as head) if the tail is garbage: it names no
/// known CPU's node, names our own node, or names a node not queued on this
/// lock, or that node already has a successor.
fn link_behind_prev<P: Platform>(
    a: &Attempt<'_>,
    old: u32,
    node: &'static McsNode,
) -> Option<(&'static McsNode, Use)> {
    let t = decode_tail(old)?;
    if t.cpu >= P::nr_cpus() {
        return None;
    }
    let prev = P::cpu_state(t.cpu)?.nodes.get(t.idx)?;
    if core::ptr::eq(prev, node) {
        return None;
    }
    // Acquire (inside `current_use()`): pairs with the release in the
    // predecessor's `init()`; for a legitimate predecessor our acquiring
    // `xchg_tail()` already synchronised with its releasing one.
    let seen = prev.current_use();
    if seen.lock != a.lock {
        return None;
    }
    // Link @node into the wait queue.
    prev.link(node, seen).then_some((prev, seen))
}

/// Upper bound of any legitimate non-head wait.
///
/// Each waiter ahead of us gets at most one head period ([`HEAD_TIMEOUT_NS`])
/// before it either takes the lock or times out and tears the queue down,
/// and there are at most `nr_cpus * MAX_NODES` of them.
pub(crate) fn non_head_cap_ns<P: Platform>() -> u64 {
    (P::nr_cpus() as u64)
        .saturating_mul(MAX_NODES as u64)
        .saturating_add(1)
        .saturating_mul(HEAD_TIMEOUT_NS)
}

/// Waits until the predecessor makes us head or tells us to time out
/// (`arch_mcs_spin_lock_contended()`).
///
/// As upstream, a non-head waiter has no timeout of its own: the head's
/// deadline bounds the whole queue, and leaving from the middle would need
/// unlinking. Only the RES safety net (a retired predecessor, or the
/// [`non_head_cap_ns`] bound no legitimate wait reaches) ends the wait early,
/// and then by making us head, never by leaving the queue.
fn wait_turn<P: Platform, const RES: bool>(node: &McsNode, prev: &McsNode, seen: Use) -> Turn {
    let mut cap = Deadline::new();
    cap.reset(non_head_cap_ns::<P>());
    loop {
        // Acquire: pairs with the predecessor's release in `make_head()`.
        match node.signal() {
            0 => {}
            TIMEOUT_VAL => return Turn::Timeout,
            _ => return Turn::Head,
        }
        if RES && cap.due::<P>() && (!prev.still(seen) || cap.past::<P>()) {
            // The predecessor retired without signalling us (or the wait is
            // impossibly long). It writes any signal before `retire()`'s
            // release, and `still()` acquired that, so re-reading tells a
            // signal that raced with the check from a real orphan.
            return match node.signal() {
                TIMEOUT_VAL => Turn::Timeout,
                _ => Turn::Head,
            };
        }
        P::relax();
    }
}

/// Waits for the successor that moved the tail past us to link.
///
/// The successor links right after its `xchg_tail()`, so this is short; it
/// is still bounded (RES only) because a scribbled tail can make us wait for
/// a successor that does not exist. A real successor that links after we
/// gave up finds us retired and becomes head by itself.
fn wait_next<P: Platform, const RES: bool>(node: &McsNode) -> Option<&'static McsNode> {
    let mut dl = Deadline::new();
    dl.reset(DEF_TIMEOUT_NS);
    loop {
        // Acquire (inside `next()`): pairs with the successor's release in
        // `link()`, so its node initialisation is visible before we write
        // into the node.
        if let Some(next) = node.next() {
            return Some(next);
        }
        if RES && dl.expired::<P>() {
            return None;
        }
        P::relax();
    }
}

/// Leaves a timed-out queue (upstream `waitq_timeout`).
///
/// The whole queue is torn down in FIFO order: if we are the last waiter we
/// reset the tail (n,*,* -> 0,*,*), otherwise we tell our successor to time
/// out too, and it repeats this. Owner and pending bits are not touched.
/// Tearing down everything avoids per-waiter timeouts and the unlinking of
/// waiters from the middle of the queue.
fn leave_queue<P: Platform, const RES: bool>(word: &LockWord, node: &McsNode, tail: u32) {
    if !word.try_cmpxchg_tail(tail, 0) {
        if let Some(next) = wait_next::<P, RES>(node) {
            next.signal_timeout();
        }
    }
}
