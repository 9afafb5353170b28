// SPDX-License-Identifier: GPL-2.0

//! Per-CPU table of held (and being-acquired) locks, and the AA/ABBA checks.
//!
//! Every lock attempt pushes the lock's address *before* the first try (so
//! the entry covers the whole attempt, as upstream since Nov 2025); a failed
//! attempt pops it, and unlock removes it. The topmost entry is therefore the
//! lock this CPU is currently trying to take, if any, and the entries below
//! it are locks it holds.
//!
//! Only the owning CPU (and interrupts/NMIs nesting on it, which always leave
//! the table as they found it) writes a table; other CPUs read it racily for
//! the ABBA check, so every slot is an atomic and every remote read may be
//! stale. Stale reads may only make a check inconclusive or, in the windows
//! documented below, report a spurious deadlock, which callers must handle
//! anyway; they are never memory-unsafe.

use super::platform::Platform;
use super::sync::{compiler_barrier, fence, AtomicU32, AtomicUsize, Ordering};
use super::word::LockWord;

/// Number of lock addresses the table remembers (upstream `RES_NR_HELD`).
///
/// 31 entries plus the count make the table 256 bytes on 64-bit. Deeper
/// nesting still counts, but the extra locks are invisible to the AA/ABBA
/// checks and only the timeout catches deadlocks on them.
pub const NR_HELD: usize = 31;

/// The per-CPU held-locks table (upstream `struct rqspinlock_held`).
///
/// # Invariants
///
/// - `cnt` is the number of lock attempts and holds on this CPU that have not
///   been undone yet, including ones beyond [`NR_HELD`].
/// - For `i < min(cnt, NR_HELD)`, `locks[i]` is the address of the `i`-th such
///   lock (oldest first), or 0 transiently while an entry is being removed.
/// - Only the owning CPU modifies the table, and nested contexts on that CPU
///   restore `cnt` and the entries they pushed before they return.
///
/// All-zero bytes are the valid empty table.
#[repr(C)]
pub struct HeldLocks {
    cnt: AtomicU32,
    locks: [AtomicUsize; NR_HELD],
}

impl HeldLocks {
    /// An empty table (the same as all-zero bytes).
    pub fn new() -> Self {
        Self {
            cnt: AtomicU32::new(0),
            locks: core::array::from_fn(|_| AtomicUsize::new(0)),
        }
    }

    /// Number of outstanding attempts and holds (may exceed [`NR_HELD`]).
    pub fn count(&self) -> u32 {
        self.cnt.load(Ordering::Relaxed)
    }

    /// The remembered entries, oldest first (a racy snapshot when read by
    /// another CPU; 0 for a slot being changed).
    pub fn entries(&self) -> impl Iterator<Item = usize> + '_ {
        let n = tracked(self.count());
        self.locks.iter().take(n).map(|e| e.load(Ordering::Relaxed))
    }

    /// Whether `lock` appears anywhere in the remembered part of the table.
    pub fn contains(&self, lock: usize) -> bool {
        self.entries().any(|e| e == lock)
    }

    /// Pushes `lock` as the new top entry (upstream `grab_held_lock_entry()`).
    ///
    /// Must be called on the owning CPU.
    #[inline(always)]
    pub(crate) fn grab(&self, lock: usize) {
        // A plain read-modify-write is enough (`this_cpu_inc_return()`): only
        // this CPU writes `cnt`, and an interrupt that nests between the load
        // and the store restores the value before we continue.
        let cnt = self.cnt.load(Ordering::Relaxed).wrapping_add(1);
        self.cnt.store(cnt, Ordering::Relaxed);
        // The count must be raised before the slot is written: otherwise an
        // interrupt in between would push its own entry into the same slot
        // and clear it on the way out, erasing ours. Remote readers may see
        // the two stores in either order; they either do not see the entry
        // yet or see it, both fine.
        compiler_barrier();
        if let Some(slot) = slot_index(cnt).and_then(|i| self.locks.get(i)) {
            // INVARIANT: slot `cnt - 1` now holds the newest attempt.
            slot.store(lock, Ordering::Relaxed);
        }
    }

    /// Pops the top entry after a failed attempt (upstream
    /// `release_held_lock_entry()`).
    pub(crate) fn release_top(&self) {
        let cnt = self.cnt.load(Ordering::Relaxed);
        if cnt == 0 {
            return;
        }
        if let Some(slot) = slot_index(cnt).and_then(|i| self.locks.get(i)) {
            slot.store(0, Ordering::Relaxed);
        }
        // smp_wmb(): the cleared slot must be visible before the decrement.
        // Otherwise the decrement and our next attempt's increment could be
        // seen first while the slot still names the lock we just failed to
        // take, and a remote holder of that lock could wrongly diagnose ABBA
        // against us. Dec/inc may still reorder among themselves; the slot
        // then reads 0 (skipped) or the new lock (correct).
        fence(Ordering::Release);
        // INVARIANT: entry and count removed together for the failed attempt.
        self.cnt.store(cnt - 1, Ordering::Relaxed);
    }

    /// Removes `lock`'s entry on unlock, wherever it is in the table.
    ///
    /// Upstream only clears the top entry because its callers unlock in
    /// reverse order: the verifier enforces that for BPF programs (and does
    /// so on 6.12 with this series), but Rust callers drop their guards in
    /// any order they like. Clearing the top then would leave a released
    /// lock in the table (a false AA on the next attempt) and hide a held
    /// one from the ABBA check. So we search from the top for the most
    /// recent entry of `lock`, shift the entries above it down by one and
    /// clear the old top; for a last-in-first-out unlock the first compare
    /// hits and this is upstream's code. While shifting, an entry may
    /// transiently appear twice, which is harmless: the duplicated lock is
    /// still held. Nested interrupts see a consistent prefix because every
    /// step is a single store and `cnt` only drops at the end.
    ///
    /// If `lock` is not in the remembered part, it is one of the untracked
    /// locks beyond [`NR_HELD`]; then only the count drops, as upstream
    /// does for untracked locks. If the removed entry was tracked while more
    /// than [`NR_HELD`] locks are outstanding, the freed top slot stays 0:
    /// we do not know the untracked lock that would move into it, so that
    /// lock stays invisible to the checks, as it was before.
    ///
    /// Called after the lock word has been released (see `RqSpinLock::unlock`).
    #[inline(always)]
    pub(crate) fn remove(&self, lock: usize) {
        let cnt = self.cnt.load(Ordering::Relaxed);
        // Upstream's case, inline: the lock is the top entry.
        if let Some(top) = slot_index(cnt).and_then(|i| self.locks.get(i)) {
            if top.load(Ordering::Relaxed) == lock {
                top.store(0, Ordering::Relaxed);
                // The slot is cleared before the count drops, for nested
                // interrupts (see below).
                compiler_barrier();
                // INVARIANT: the top entry and the count go together.
                self.cnt.store(cnt - 1, Ordering::Relaxed);
                return;
            }
        }
        self.remove_below_top(cnt, lock);
    }

    /// [`Self::remove`] when `lock` is not the top entry: out of order, or
    /// untracked.
    #[cold]
    #[inline(never)]
    fn remove_below_top(&self, cnt: u32, lock: usize) {
        if cnt == 0 {
            // Unbalanced unlock: nothing to remove, never underflow.
            return;
        }
        if cnt as usize > NR_HELD {
            // The top is untracked. As upstream, only the count drops: a
            // tracked entry of `lock` may belong to a context below us on
            // this CPU (its attempt on `lock`, interrupted before it took
            // the lock, which we then took by the fast path), and erasing
            // it would hide that context's lock from the checks. The cost:
            // an out-of-order unlock of a tracked lock past NR_HELD leaves
            // its entry until the locks above it are released.
            compiler_barrier();
            // INVARIANT: one untracked lock removed, count follows.
            self.cnt.store(cnt - 1, Ordering::Relaxed);
            return;
        }
        let n = tracked(cnt);
        let found = (0..n)
            .rev()
            .find(|&i| self.locks.get(i).map(|e| e.load(Ordering::Relaxed)) == Some(lock));
        if let Some(i) = found {
            for j in i..n.saturating_sub(1) {
                if let (Some(dst), Some(src)) = (self.locks.get(j), self.locks.get(j + 1)) {
                    dst.store(src.load(Ordering::Relaxed), Ordering::Relaxed);
                }
            }
            if let Some(top) = n.checked_sub(1).and_then(|t| self.locks.get(t)) {
                top.store(0, Ordering::Relaxed);
            }
        }
        // Keep the slot writes ahead of the decrement for nested interrupts,
        // which would otherwise reuse the top slot before we cleared it.
        // Remote readers need no hardware fence here: the lock word's release
        // already happened, and the reorderings that remain only produce the
        // stale-entry window upstream has too (a remote CPU that just took
        // `lock` may for a moment see it as "held" here and report a
        // spurious ABBA; the program gets -EDEADLK and retries).
        compiler_barrier();
        // INVARIANT: one entry (or one untracked lock) removed, count follows.
        self.cnt.store(cnt - 1, Ordering::Relaxed);
    }

    /// Whether `lock` is held below the top entry (upstream `check_deadlock_AA()`).
    ///
    /// The top entry is the attempt in progress, i.e. `lock` itself, but only
    /// while the count fits the table: past [`NR_HELD`] the attempt is not
    /// stored, so every stored entry is a held lock and all are checked.
    /// (Upstream skips the last slot there too, and then finds an AA on the
    /// 31st lock only by timing out.)
    pub(crate) fn holds_below_top(&self, lock: usize) -> bool {
        let cnt = self.count() as usize;
        let held = if cnt > NR_HELD {
            NR_HELD
        } else {
            cnt.saturating_sub(1)
        };
        self.locks
            .iter()
            .take(held)
            .any(|e| e.load(Ordering::Relaxed) == lock)
    }
}

impl Default for HeldLocks {
    fn default() -> Self {
        Self::new()
    }
}

/// Number of remembered entries for a count.
fn tracked(cnt: u32) -> usize {
    (cnt as usize).min(NR_HELD)
}

/// Slot of the newest entry for a count, if it is remembered.
fn slot_index(cnt: u32) -> Option<usize> {
    let i = (cnt as usize).checked_sub(1)?;
    (i < NR_HELD).then_some(i)
}

/// ABBA check (upstream `check_deadlock_ABBA()`).
///
/// Looks for a CPU whose attempt (top entry) is a lock we hold while it holds
/// `lock`, the lock we are waiting for. Racy by design: a stale view can only
/// make the check inconclusive, and it is repeated every millisecond until
/// the wait ends or times out. Longer cycles (ABBCCA) are left to the timeout.
///
/// `mask` selects the lock word bits whose clearing means "stop looking, the
/// lock may be ours now"; the check returns `false` then.
pub(crate) fn abba_deadlock<P: Platform>(
    word: &LockWord,
    lock: usize,
    mask: u32,
    this_cpu: u32,
    ours: &HeldLocks,
) -> bool {
    for cpu in 0..P::nr_cpus() {
        // Acquire as upstream's is_lock_released(): if the lock got free we
        // leave the check and let the caller's own acquire wait see it.
        if word.load(Ordering::Acquire) & mask == 0 {
            return false;
        }
        if cpu == this_cpu {
            continue;
        }
        let Some(state) = P::cpu_state(cpu) else {
            continue;
        };
        let theirs = &state.held;
        // Acquire, pairing with the release fence in `release_top()`: a
        // count that shows a new attempt must not come with the slot of
        // the failed attempt before it (C gets this from the address
        // dependency of `locks[cnt - 1]` on `cnt`).
        let real_cnt = theirs.cnt.load(Ordering::Acquire);
        // At least one held lock and one attempt are needed for ABBA; beyond
        // NR_HELD the attempt itself is not in the table.
        if real_cnt < 2 || real_cnt as usize > NR_HELD {
            continue;
        }
        let Some(remote) = slot_index(real_cnt)
            .and_then(|i| theirs.locks.get(i))
            .map(|e| e.load(Ordering::Relaxed))
        else {
            continue;
        };
        if remote == 0 {
            // Raced with a push/pop: inconclusive for this CPU.
            continue;
        }
        if theirs.holds_below_top_n(real_cnt, lock) {
            // They hold what we want. Deadlock iff we hold what they want;
            // otherwise the owner is found and the answer is "not now".
            return ours.holds_below_top(remote);
        }
    }
    false
}

impl HeldLocks {
    /// [`Self::holds_below_top`] for a count read earlier by a remote CPU.
    fn holds_below_top_n(&self, cnt: u32, lock: usize) -> bool {
        self.locks
            .iter()
            .take(tracked(cnt).saturating_sub(1))
            .any(|e| e.load(Ordering::Relaxed) == lock)
    }
}
