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
//! Additions for a lock word that BPF programs can overwrite, and for time
//! bounds upstream does not have (none of them changes who gets the lock for
//! an intact word; they only decide when a waiter gives up):
//!
//! - A tail that does not decode to a known CPU's node, that names our own
//!   node, or whose node is not queued on this lock is ignored: we proceed as
//!   if we were first in the queue, where the head's deadline bounds the wait.
//!
//! - **Bounded wait for the successor, without node reuse races.** Upstream
//!   waits for a successor that moved the tail past us to link, however
//!   long that takes. We give up after [`DEF_TIMEOUT_NS`] (a scribbled tail
//!   can name a successor that does not exist), but then *abandon* the node
//!   instead of ending its use: `next` becomes ABANDONED (see `mcs`), `lock`
//!   and `seq` stay. A late successor S still validates the same use, its
//!   link fails and it proceeds as head, which is right: we are gone and S
//!   is first. The node is reused only after its owner CPU checked that no
//!   CPU is between publishing a tail for that lock and deciding where to
//!   link (`McsNode::may_link_on`, scanned by [`no_linker_on`]); otherwise
//!   the next slow path on that CPU uses the next node index.
//!
//!   Why this is sound: if the tail is still ours when we give up, we reset
//!   it and end the use (nobody can find us any more). Otherwise we abandon
//!   only after a failed, acquiring `try_cmpxchg_tail()` saw the tail move
//!   past ours. For an intact word that read S's exchange or a later RMW in
//!   its release sequence (every update of an intact word is an RMW), and
//!   S sets `linking` (in `init()`) before its releasing `xchg_tail()`. So
//!   S's `linking = 1` happens-before our scan, which sees it unless S
//!   already decided. And no waiter can get our tail after that
//!   observation: the tail never returns to a value it moved away from
//!   until the node is published again, in a new use. While S may still link,
//!   the node is never re-initialised, so S can never link to a new use of
//!   it: a queue cannot gain a cycle or a second head this way. (Without
//!   this, S delayed past our give-up could find the node re-queued on the
//!   same lock behind S itself and link to it: a cycle.)
//!
//! - **Bounded non-head wait.** A waiter behind another one asks for the
//!   queue to be aborted after [`NON_HEAD_ABORT_NS`]: it tags its link in
//!   the predecessor's `next` (a compare-and-exchange that only succeeds
//!   while the predecessor is in the use we linked to, so it never writes
//!   into a retired node). Waiters forward the request to their own
//!   predecessor on their next spin; the head treats it like its own
//!   timeout and tears the queue down in FIFO order, so every waiter gets
//!   `-ETIMEDOUT`. This replaces the former last resort of making a non-head
//!   the head after a long wait, which could break mutual exclusion.
//!
//! - **Cycles.** Links are validated, so every node links to at most one
//!   predecessor and has at most one successor: the queue is a set of paths
//!   and, if a word was scribbled (two waiters handed each other's tails),
//!   cycles. A path always has a head that acts within its deadline; a cycle
//!   has none and the abort request circles forever. Every abort request
//!   carries an origin, the smallest node address of the requesting waiters
//!   behind (each waiter keeps the minimum of its own and its successor's),
//!   so in a cycle the requester with the smallest address eventually sees
//!   its own address come back from its successor: proof of a cycle, as
//!   origins only travel towards the head. Only then does it *detach*
//!   (compare-and-exchange its link in the predecessor to DETACHED) and tear
//!   down the waiters behind it, which are the rest of the cycle. A waiter
//!   on a path never detaches, however slow its predecessor is, so detaching
//!   can never make two heads on an intact word. (A stale origin cannot fake
//!   the proof on an intact word: a node's address can reach its successor
//!   only from a use that queued after that successor, which cannot be
//!   queued ahead of it.)
//!
//! - **Exactly one side wins each hand-off.** A predecessor claims its
//!   successor (compare-and-exchange of its own `next` to CLAIMED) before it
//!   writes the "head" or "time out" signal into the successor's node; the
//!   successor only leaves after a successful detach or after it received a
//!   signal. A successor whose detach lost waits for the signal, which the
//!   claimer stores right after its exchange.
//!
//! **Time bounds.** The pending waiter gives up after [`DEF_TIMEOUT_NS`]; a
//! head after [`HEAD_TIMEOUT_NS`] (or at once when asked to abort), then
//! waits at most [`DEF_TIMEOUT_NS`] for a successor to link; a non-head asks
//! for the abort after [`NON_HEAD_ABORT_NS`], or becomes head before that.
//! Every attempt therefore returns within about `1 s + 0.5 s + 0.25 s`,
//! cycles included, plus the time the CPUs queued ahead of us are held up by
//! interrupts, NMIs or a hypervisor between their steps. That last part is
//! inherited from MCS (and upstream): a waiter cannot leave the middle of a
//! live queue without its neighbours' help, and leaving without it is what
//! breaks mutual exclusion. No other waiting loop (word updates included,
//! see `word`) is unbounded.
//!
//! With a scribbled word, attempts on *that* lock may break mutual exclusion
//! (e.g. two waiters linked behind the same node), but the bounds above
//! still hold, nothing indexes out of bounds, and no node is written after
//! its use ended, so queues of other locks are unaffected.
//!
//! `RES == false` compiles the same queue without the held-locks table,
//! deadlines and deadlock checks: the plain qspinlock, for benchmarking. It
//! exists only in the host's benchmark build (`cfg(rqspin_bench)`); in every
//! other build [`res`] is `true` whatever `RES` says, so the kernel never
//! compiles an unbounded wait.

use super::error::LockError;
use super::mcs::{Finish, McsNode, HEAD_VAL, TIMEOUT_VAL};
use super::platform::{CpuState, DelayPoint, Platform};
use super::sync::{compiler_barrier, Ordering};
use super::timeout::{Deadline, DEF_TIMEOUT_NS, HEAD_TIMEOUT_NS, NON_HEAD_ABORT_NS};
use super::word::{
    decode_tail, encode_tail, LockWord, LOCKED_MASK, LOCKED_PENDING_MASK, MAX_NODES, PENDING_MASK,
    PENDING_VAL, TAIL_MASK,
};

/// Whether this instantiation bounds its waits and checks for deadlocks.
///
/// Always `true` outside the host's benchmark build, so that no build but
/// that one contains the unbounded plain-qspinlock waits.
#[inline(always)]
const fn res<const RES: bool>() -> bool {
    RES || cfg!(not(rqspin_bench))
}

/// Everything one slow-path call works on.
struct Attempt<'a> {
    word: &'a LockWord,
    /// Sequence number of our node's current use (0: no node).
    seq: u32,
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
        seq: 0,
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
        if let Some(res) = pending::<P, RES>(&mut a, val) {
            return res;
        }
    }
    queue::<P, RES>(&mut a)
}

/// Trylock or become the pending waiter: `0,0,* -> 0,1,* -> 0,0,1`.
///
/// Returns `None` if contention showed up and we must queue instead.
fn pending<P: Platform, const RES: bool>(
    a: &mut Attempt<'_>,
    seen: u32,
) -> Option<Result<(), LockError>> {
    // Starved (see `LockWord::update`): queueing is always correct.
    let val = a.word.fetch_set_pending_acquire(seen)?;

    // Contention appeared: a concurrent locker. Undo and queue; our setting
    // of pending might have made the n,0,0 -> 0,0,0 transition of a head
    // fail, and it now waits for a successor, which will be us.
    if val & !LOCKED_MASK != 0 {
        // Undo pending only if we set it. If that starves, the bit stays
        // until the head times out; only a scribbled word can do that.
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
            if res::<RES>() {
                if let Err(e) =
                    a.ts.check::<P>(a.word, a.lock, LOCKED_MASK, a.cpu, &a.state.held)
                {
                    // We own the pending bit: clear it so the lock returns
                    // to a valid state once the stuck owner is gone.
                    //
                    // *,1,* -> *,0,*
                    a.word.clear_pending();
                    if RES {
                        a.state.held.release_top();
                    }
                    return Some(Err(e));
                }
            }
            P::relax();
        }
    }

    // Take ownership and clear the pending bit: 0,1,0 -> 0,0,1.
    if !a.word.clear_pending_set_locked() {
        // Starved by a program storing to the word: we did not take it.
        a.word.clear_pending();
        if RES {
            a.state.held.release_top();
        }
        return Some(Err(LockError::Timeout));
    }
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
    // `idx = node->count++`, skipping abandoned nodes (see the module docs).
    let count = first.count();
    let res = match take_node::<P, RES>(a, count) {
        Some((idx, tail)) => {
            let res = queue_with_node::<P, RES>(a, idx, tail);
            // barrier(), as upstream before `__this_cpu_dec(count)`: the
            // node's last writes (`retire()`) must not sink below the point
            // where a nested context on this CPU may take the node again.
            compiler_barrier();
            first.set_count(count);
            res
        }
        None => {
            first.set_count(count);
            without_node::<P, RES>(a.word)
        }
    };
    if RES && res.is_err() {
        a.state.held.release_top();
    }
    res
}

/// Reserves the first usable node index at or above `count` and returns it
/// with its tail, or `None` to fall back to [`without_node`].
///
/// Four nodes suffice unless NMIs nest (or the platform misreports its
/// CPU); then, and for an NMI that is not the first waiter on this CPU,
/// only try the lock once: an NMI that queued behind the context it
/// interrupted could never be served. Abandoned nodes are reclaimed if no
/// waiter can still link to them, and skipped otherwise.
fn take_node<P: Platform, const RES: bool>(a: &Attempt<'_>, count: u32) -> Option<(usize, u32)> {
    if res::<RES>() && count > 0 && P::in_nmi() {
        return None;
    }
    let first = &a.state.nodes[0];
    let mut idx = count as usize;
    while idx < MAX_NODES {
        // Reserve the index before touching the node, so that a nested
        // context picks a later one instead of clobbering (or reclaiming)
        // this one. barrier(), as upstream between `count++` and the node
        // initialisation: the compiler must not sink the count store below
        // the node accesses.
        first.set_count(idx as u32 + 1);
        compiler_barrier();
        let node = a.state.nodes.get(idx)?;
        if node.is_abandoned() && no_linker_on::<P>(node.current_use().lock) {
            node.reclaim();
        }
        if !node.is_abandoned() {
            return Some((idx, encode_tail(a.cpu, idx)?));
        }
        idx += 1;
    }
    None
}

/// Whether no CPU is between publishing a tail for `lock` and deciding
/// where to link, i.e. no late successor can link to an abandoned node of
/// `lock` any more (see the module docs for why the scan cannot miss one).
/// Runs only when a node was abandoned, which needs a successor that took
/// longer than [`DEF_TIMEOUT_NS`] to link, or a scribbled word.
fn no_linker_on<P: Platform>(lock: usize) -> bool {
    (0..P::nr_cpus())
        .filter_map(P::cpu_state)
        .all(|state| !state.nodes.iter().any(|n| n.may_link_on(lock)))
}

/// Fallback without a usable MCS node: one trylock, no spinning (upstream:
/// "under contention, such a trylock spinning will likely be treated
/// unfairly due to lack of queueing"). The plain lock has no failure path
/// and spins.
fn without_node<P: Platform, const RES: bool>(word: &LockWord) -> Result<(), LockError> {
    if res::<RES>() {
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
    tail: u32,
) -> Result<(), LockError> {
    let Some(node) = a.state.nodes.get(idx) else {
        return without_node::<P, RES>(a.word);
    };
    a.seq = node.init(a.lock);
    let (res, how) = queued::<P, RES>(a, node, tail);
    // `next` is final (or abandoned) on every path of `queued()`, so nobody
    // writes into the node any more.
    node.retire(how);
    res
}

/// How a non-head wait ended.
enum Turn {
    /// We are the head now.
    Head,
    /// The queue is being torn down (the head timed out or was asked to
    /// abort), or we detached from a cycle.
    Timeout,
}

/// The queued attempt proper; also returns how the node's `next` ended.
fn queued<P: Platform, const RES: bool>(
    a: &mut Attempt<'_>,
    node: &'static McsNode,
    tail: u32,
) -> (Result<(), LockError>, Finish) {
    // We touched a (possibly) cold cache line in the per-CPU nodes; try once
    // more in the hope the owner let go meanwhile. The node was never
    // published: nobody can legitimately be linked behind it.
    if a.word.trylock() {
        node.linked();
        return (Ok(()), node.finish(TIMEOUT_VAL, a.seq));
    }

    P::delay_point(DelayPoint::BeforePublish);
    // Publish the new tail: p,*,* -> n,*,*. Its release orders `init()`
    // before anyone can find the node (see `xchg_tail()`).
    let Some(old) = a.word.xchg_tail(tail) else {
        node.linked();
        return (Err(LockError::Timeout), node.finish(TIMEOUT_VAL, a.seq));
    };
    P::delay_point(DelayPoint::AfterPublish);

    let prev = if old & TAIL_MASK != 0 {
        link_behind_prev::<P>(a, old, node)
    } else {
        None
    };
    // Our predecessor may reuse its node from now on (see `no_linker_on`).
    node.linked();
    if let Some(prev) = prev {
        match wait_turn::<P, RES>(node, prev) {
            Turn::Head => {}
            Turn::Timeout => {
                let how = leave_queue::<P, RES>(a, node, tail);
                return (Err(LockError::Timeout), how);
            }
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
        if res::<RES>() {
            // A waiter behind us waited too long: time out now.
            if node.abort_requested() {
                ret = Err(LockError::Timeout);
                break val;
            }
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
            let how = if a.word.try_cmpxchg_tail(tail, 0) {
                // Nobody behind us: the tail is reset, leave (without this
                // we would wait for a successor that never comes).
                node.finish(TIMEOUT_VAL, a.seq)
            } else {
                hand_off::<P, RES>(a, node, tail, HEAD_VAL)
            };
            return (ret, how);
        }
        Err(LockError::Timeout) => {
            return (ret, leave_queue::<P, RES>(a, node, tail));
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
        return (Ok(()), node.finish(TIMEOUT_VAL, a.seq));
    }

    // Somebody queued behind us (or set pending and will queue): take the
    // lock, then pass the head role to our successor.
    if !a.word.set_locked() {
        // Starved by a program storing to the word: give up as a head.
        return (
            Err(LockError::Timeout),
            leave_queue::<P, RES>(a, node, tail),
        );
    }
    (Ok(()), hand_off::<P, RES>(a, node, tail, HEAD_VAL))
}

/// Finds, validates and links behind the node the old tail names.
///
/// Returns `None` (proceed as head) if the tail is garbage: it names no
/// known CPU's node, names our own node, or names a node not queued on this
/// lock; or if that node's use ended (closed or abandoned) or already has a
/// successor.
fn link_behind_prev<P: Platform>(
    a: &Attempt<'_>,
    old: u32,
    node: &'static McsNode,
) -> Option<&'static McsNode> {
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
    prev.link(node, seen).then_some(prev)
}

/// Waits until the predecessor makes us head or tells us to time out
/// (`arch_mcs_spin_lock_contended()`), asking for an abort after
/// [`NON_HEAD_ABORT_NS`] and forwarding the requests of waiters behind us.
///
/// The predecessor always ends its use by claiming us (we then get the
/// signal), unless we detach first, which we do only on proof of a cycle;
/// see the module docs.
fn wait_turn<P: Platform, const RES: bool>(node: &'static McsNode, prev: &'static McsNode) -> Turn {
    let me = node as *const McsNode as usize;
    let mut dl = Deadline::new();
    dl.reset(NON_HEAD_ABORT_NS);
    // Our own abort timer fired.
    let mut raised = false;
    // We tried to tag our link in `prev` (once is enough: if that failed,
    // `prev` already claimed us and the signal is on its way).
    let mut forwarded = false;
    loop {
        // Acquire: pairs with the predecessor's release in `finish()`.
        match node.signal() {
            0 => {}
            TIMEOUT_VAL => return Turn::Timeout,
            _ => return Turn::Head,
        }
        if res::<RES>() {
            if !raised && dl.expired::<P>() {
                raised = true;
                node.lower_origin(me);
            }
            let from_succ = node.successor_origin();
            if let Some(origin) = from_succ {
                node.lower_origin(origin);
            }
            if !forwarded && (raised || from_succ.is_some()) {
                // Release (inside): `prev` sees our origin with the tag.
                prev.request_abort(node);
                forwarded = true;
            }
            // Our own request came back around: we are in a cycle and no
            // head will ever signal us. If the detach loses, `prev` claimed
            // us after all and we wait for its signal.
            if raised && from_succ == Some(me) && prev.detach(node) {
                return Turn::Timeout;
            }
        }
        P::relax();
    }
}

/// Waits for the successor that moved the tail past us to link.
///
/// The successor links right after its `xchg_tail()`, so this is short; it
/// is still bounded because a scribbled tail can make us wait for a
/// successor that does not exist. The caller then abandons the node, which
/// keeps a late successor safe (see the module docs). Returns the last
/// `next` seen, for [`McsNode::abandon`], and whether it is not EMPTY.
fn wait_next<P: Platform, const RES: bool>(node: &McsNode) -> (u64, bool) {
    let mut dl = Deadline::new();
    dl.reset(DEF_TIMEOUT_NS);
    loop {
        let (seen, arrived) = node.successor();
        if arrived || (res::<RES>() && dl.expired::<P>()) {
            return (seen, arrived);
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
fn leave_queue<P: Platform, const RES: bool>(a: &Attempt<'_>, node: &McsNode, tail: u32) -> Finish {
    if a.word.try_cmpxchg_tail(tail, 0) {
        node.finish(TIMEOUT_VAL, a.seq)
    } else {
        hand_off::<P, RES>(a, node, tail, TIMEOUT_VAL)
    }
}

/// Passes `sig` to the successor, waiting (boundedly) for it to link.
///
/// If nobody linked in time, the tail may still be ours: a pending waiter
/// that made our uncontended claim fail queues behind us later. Resetting
/// the tail then ends the use for good, as no successor can find us any
/// more (it will find no tail and be head). Only if the tail moved past us,
/// seen by that failed, acquiring `try_cmpxchg_tail()`, do we abandon the
/// node; that observation is what the abandoned-node scan relies on (see
/// the module docs).
fn hand_off<P: Platform, const RES: bool>(
    a: &Attempt<'_>,
    node: &McsNode,
    tail: u32,
    sig: u32,
) -> Finish {
    let (seen, arrived) = wait_next::<P, RES>(node);
    if !arrived && a.word.try_cmpxchg_tail(tail, 0) {
        return node.finish(sig, a.seq);
    }
    node.abandon(sig, a.seq, seen)
}
