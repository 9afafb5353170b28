// SPDX-License-Identifier: GPL-2.0

//! The contended path: pending bit, MCS queue, deadlock and timeout handling.
//!
//! This is upstream `resilient_queued_spin_lock_slowpath()` in its latest
//! form, step for step: the held-lock entry is grabbed before the fast path
//! (by the caller), the AA check runs before queueing, NMIs that are not the
//! first waiter on their CPU and contexts without a free node try the lock
//! once, a deadlock found at the head hands the head role on and keeps the
//! queue (resetting the tail when nobody is behind), and a timeout at the
//! head tears the queue down in FIFO order, every waiter returning
//! `-ETIMEDOUT`. The state diagram, as `(tail, pending, locked)`:
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
//! **Why no wait here is endless.** The pending waiter and the head each
//! wait for the owner (and the pending waiter) with a deadline:
//! [`DEF_TIMEOUT_NS`] and [`HEAD_TIMEOUT_NS`]. A waiter behind the head has
//! no deadline of its own: it waits for its predecessor, which becomes the
//! head (and then has one) or tears the queue down when it times out, as
//! upstream. The two remaining waits are for a successor to link, which it
//! does right after its `xchg_tail()`, and for a pending->locked hand-over,
//! bounded by [`Platform::PENDING_LOOPS`]. So an attempt returns within the
//! head's deadline plus the time the waiters ahead of it spend reaching the
//! head, unless a CPU queued ahead is itself held up (by an interrupt, an
//! NMI or a hypervisor) between its steps: that part is MCS's, and
//! upstream's.
//!
//! **Deadlock checks** run inside the deadline checks (see `timeout`): AA at
//! the first check of each waiting period, ABBA at most once per
//! millisecond after that.

use super::error::LockError;
use super::mcs::{McsNode, HEAD_VAL, TIMEOUT_VAL};
use super::platform::{Platform, ThisCpu};
use super::sync::{compiler_barrier, Ordering};
use super::timeout::{Deadline, DEF_TIMEOUT_NS, HEAD_TIMEOUT_NS};
use super::word::{
    decode_tail, encode_tail, LockWord, LOCKED_MASK, LOCKED_PENDING_MASK, MAX_NODES, PENDING_MASK,
    PENDING_VAL, TAIL_MASK,
};

/// Acquires the lock after the fast path saw `val`.
///
/// The caller has pushed `lock` onto `cpu`'s held table; on error the entry
/// has been popped again.
#[inline(never)]
#[cold]
pub(crate) fn slowpath<P: Platform>(
    word: &LockWord,
    lock: usize,
    mut val: u32,
    cpu: ThisCpu,
) -> Result<(), LockError> {
    let mut ts = Deadline::new();

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

    // If we observe any contention, queue; else trylock or become pending.
    if val & !LOCKED_MASK == 0 {
        if let Some(res) = pending::<P>(word, lock, cpu, &mut ts) {
            return res;
        }
    }

    // Do not queue if this CPU is already attempting (or holding) the lock
    // further down. Besides the obvious AA this matters for NMIs: an NMI
    // that interrupted the owner or the pending waiter, which are logically
    // part of the queue, would otherwise wait for a head that cannot run
    // until the NMI returns.
    let held = &cpu.state.held;
    if held.holds_below_top(lock) {
        held.release_top();
        return Err(LockError::Aa);
    }

    // `idx = node->count++`.
    let first = &cpu.state.nodes[0];
    let idx = first.count();
    first.set_count(idx + 1);
    let res = queue::<P>(word, lock, cpu, idx as usize, &mut ts);
    // `__this_cpu_dec(count)`, after every access to the node: the compiler
    // must not sink one below the point where a nested context on this CPU
    // may take the node again.
    compiler_barrier();
    first.set_count(idx);
    if res.is_err() {
        held.release_top();
    }
    res
}

/// Trylock or become the pending waiter: `0,0,* -> 0,1,* -> 0,0,1`.
///
/// Returns `None` if contention showed up and we must queue instead.
fn pending<P: Platform>(
    word: &LockWord,
    lock: usize,
    cpu: ThisCpu,
    ts: &mut Deadline,
) -> Option<Result<(), LockError>> {
    let val = word.fetch_set_pending_acquire();

    // If we observe contention, there is a concurrent locker. Undo and
    // queue; our setting of pending might have made the n,0,0 -> 0,0,0
    // transition of a head fail, and it now waits for a successor, which
    // will be us.
    if val & !LOCKED_MASK != 0 {
        // Undo pending if we set it.
        if val & PENDING_MASK == 0 {
            word.clear_pending();
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
        ts.reset(DEF_TIMEOUT_NS);
        while word.load(Ordering::Acquire) & LOCKED_MASK != 0 {
            if let Err(e) = ts.check::<P>(word, lock, LOCKED_MASK, cpu.id, &cpu.state.held) {
                // We own the pending bit: clear it so the lock returns to
                // a valid state once the stuck owner is gone.
                //
                // *,1,* -> *,0,*
                word.clear_pending();
                cpu.state.held.release_top();
                return Some(Err(e));
            }
            P::relax();
        }
    }

    // Take ownership and clear the pending bit: 0,1,0 -> 0,0,1.
    word.clear_pending_set_locked();
    Some(Ok(()))
}

/// The MCS queue part, with node index `idx` reserved on this CPU.
fn queue<P: Platform>(
    word: &LockWord,
    lock: usize,
    cpu: ThisCpu,
    idx: usize,
    ts: &mut Deadline,
) -> Result<(), LockError> {
    // Four nodes suffice unless NMIs nest; and an NMI that queued behind
    // the context it interrupted could never be served. Either way, try the
    // lock once and do not spin: under contention a spinning trylock would
    // be treated unfairly for lack of queueing (upstream's reasoning).
    let Some(node) = cpu
        .state
        .nodes
        .get(idx)
        .filter(|_| !(P::in_nmi() && idx > 0))
    else {
        return if word.trylock() {
            Ok(())
        } else {
            Err(LockError::Busy)
        };
    };

    // The count increment must come before the node initialisation: an
    // interrupt in between would otherwise take the same node and its
    // writes would be lost to ours.
    compiler_barrier();
    node.init();

    // We touched a (possibly) cold cache line in the per-CPU nodes; try
    // once more in the hope the owner let go meanwhile.
    if word.trylock() {
        return Ok(());
    }

    // Publish the new tail: p,*,* -> n,*,*. Its release orders `init()`
    // before anyone can find the node (see `xchg_tail()`).
    let tail = encode_tail(cpu.id, idx);
    let old = word.xchg_tail(tail);

    // If there was a previous node, link behind it and wait to become the
    // head of the queue.
    let mut next = None;
    if let Some(prev) = decode_tail(old & TAIL_MASK).and_then(node_of::<P>) {
        prev.link(node);
        // `arch_mcs_spin_lock_contended()`: no deadline here; the waiters
        // ahead of us each end up as the head, which has one.
        let signal = loop {
            let signal = node.signalled();
            if signal != 0 {
                break signal;
            }
            P::relax();
        };
        if signal == TIMEOUT_VAL {
            // The head timed out: leave, and make the waiter behind us
            // leave too.
            tear_down::<P>(word, node, tail);
            return Err(LockError::Timeout);
        }
        next = node.next();
    }

    // We are the head: wait for the owner and the pending waiter to go
    // away: *,x,y -> *,0,0.
    //
    // This must be an acquire load matching the unlock's release:
    // `set_locked()` below is relaxed and implies no barrier.
    //
    // Twice the default timeout: both an owner and a pending waiter may be
    // ahead of us, each entitled to one critical section.
    ts.reset(HEAD_TIMEOUT_NS);
    let waited = loop {
        let val = word.load(Ordering::Acquire);
        if val & LOCKED_PENDING_MASK == 0 {
            break Ok(val);
        }
        if let Err(e) = ts.check::<P>(word, lock, LOCKED_PENDING_MASK, cpu.id, &cpu.state.held) {
            break Err(e);
        }
        P::relax();
    };
    let val = match waited {
        Ok(val) => val,
        Err(LockError::Timeout) => {
            tear_down::<P>(word, node, tail);
            return Err(LockError::Timeout);
        }
        Err(deadlock) => {
            // A deadlock involves us, not the waiters behind us: keep the
            // queue and pass the head role on. With nobody behind us, reset
            // the tail instead; without that we would wait for a successor
            // that never comes.
            let next = match next {
                Some(next) => next,
                None if word.try_cmpxchg_tail(tail, 0) => return Err(deadlock),
                None => wait_next::<P>(node),
            };
            next.signal(HEAD_VAL);
            return Err(deadlock);
        }
    };

    // Claim the lock:
    //
    // n,0,0 -> 0,0,1 : lock, uncontended
    // *,*,0 -> *,*,1 : lock, contended
    //
    // If we are the only one queued (the tail is ours) and nobody is
    // pending, clear the tail and take the lock in one go. Pending is clear
    // in `val` (that is what we waited for), so a concurrent pending setter
    // makes this exchange fail, then finds our tail and queues behind us.
    if val & TAIL_MASK == tail && word.try_claim_uncontended(val) {
        return Ok(());
    }

    // Somebody is queued behind us, or set pending and will queue: take the
    // lock, then pass the head role to our successor.
    word.set_locked();
    let next = match next {
        Some(next) => next,
        None => wait_next::<P>(node),
    };
    next.signal(HEAD_VAL);
    Ok(())
}

/// The node a tail names (`decode_tail()`).
///
/// Every tail in a word was published by [`LockWord::xchg_tail`] with a CPU
/// the platform gave us, so the platform knows it; a `None` here would be a
/// broken [`Platform`] contract, and the waiter then proceeds as the head.
fn node_of<P: Platform>(tail: super::word::Tail) -> Option<&'static McsNode> {
    P::cpu_state(tail.cpu).and_then(|state| state.nodes.get(tail.idx))
}

/// `smp_cond_load_relaxed(&node->next, VAL)`: the successor that moved the
/// tail past us links right after its `xchg_tail()`.
fn wait_next<P: Platform>(node: &McsNode) -> &McsNode {
    loop {
        if let Some(next) = node.next() {
            return next;
        }
        P::relax();
    }
}

/// Leaves a timed-out queue (upstream `waitq_timeout`).
///
/// The whole queue is torn down in FIFO order: if we are the last waiter we
/// reset the tail (n,*,* -> 0,*,*), otherwise we tell our successor to time
/// out too, and it repeats this. Owner and pending bits are not touched.
/// Tearing down everything avoids per-waiter timeouts and unlinking waiters
/// from the middle of the queue.
fn tear_down<P: Platform>(word: &LockWord, node: &McsNode, tail: u32) {
    if !word.try_cmpxchg_tail(tail, 0) {
        wait_next::<P>(node).signal(TIMEOUT_VAL);
    }
}

/// Compile-time check that node indices fit the tail's two bits.
const _: () = assert!(MAX_NODES == 4);
