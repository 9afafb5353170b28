// SPDX-License-Identifier: GPL-2.0

//! Layout of the 32-bit lock word and the atomic operations on it.
//!
//! The layout is the qspinlock one for `NR_CPUS < 16K`
//! (`include/asm-generic/qspinlock_types.h`):
//!
//! ```text
//!  31          18 17  16 15        8 7          0
//! +--------------+------+-----------+------------+
//! |  tail cpu+1  | idx  |  pending  |   locked   |
//! +--------------+------+-----------+------------+
//! ```
//!
//! Only this code writes the word: it is `struct bpf_res_spin_lock`, which
//! the verifier forbids BPF programs to load or store and which map updates
//! never copy. So every value the word holds was written here, and the
//! helpers trust it as mainline's do.
//!
//! Unlike qspinlock we never access the word with 8- or 16-bit atomics: Rust
//! does not define mixed-size atomic accesses to one location (and the model
//! checker cannot express them), so every helper is a 32-bit operation. This
//! is the shape qspinlock takes when `_Q_PENDING_BITS != 8`
//! (`kernel/locking/qspinlock.h`): `clear_pending()` is an atomic and-not,
//! `clear_pending_set_locked()` an atomic add and `xchg_tail()` a
//! compare-and-exchange loop. The two writes that are byte stores in
//! mainline, `set_locked()` and the unlock, are atomic read-modify-writes
//! here so that they cannot overwrite a concurrent tail or pending update.
//! Every read-modify-write that must happen is unconditional (one atomic
//! instruction on x86 and on arm64 with LSE, a store-exclusive loop without
//! LSE, as the kernel's own atomics); only the ones mainline may skip are
//! compare-and-exchanges that can fail.

use super::sync::{AtomicU32, Ordering};

/// Mask of the `locked` byte.
pub(crate) const LOCKED_MASK: u32 = 0xff;
/// Value of the `locked` byte while the lock is held.
pub(crate) const LOCKED_VAL: u32 = 1;
/// Mask of the `pending` byte.
pub(crate) const PENDING_MASK: u32 = 0xff << 8;
/// The pending bit.
pub(crate) const PENDING_VAL: u32 = 1 << 8;
/// `locked` and `pending` together: the head waiter waits for both to clear.
pub(crate) const LOCKED_PENDING_MASK: u32 = LOCKED_MASK | PENDING_MASK;

const TAIL_IDX_OFFSET: u32 = 16;
const TAIL_IDX_MASK: u32 = 0x3 << TAIL_IDX_OFFSET;
const TAIL_CPU_OFFSET: u32 = 18;
const TAIL_CPU_BITS: u32 = 14;
/// Mask of the tail (CPU + node index), the upper half of the word.
pub(crate) const TAIL_MASK: u32 = !LOCKED_PENDING_MASK;

/// Number of MCS nodes per CPU: task, softirq, hardirq and NMI context.
pub const MAX_NODES: usize = 4;

/// Number of CPUs the tail encoding can name (CPU ids `0..MAX_CPUS`).
///
/// The tail stores `cpu + 1` in 14 bits so that `0` means "no tail".
pub const MAX_CPUS: u32 = (1 << TAIL_CPU_BITS) - 1;

/// A decoded tail: which CPU's which node is last in the queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Tail {
    pub(crate) cpu: u32,
    /// Node index, always `< MAX_NODES` (two bits).
    pub(crate) idx: usize,
}

/// `encode_tail()`: the tail bits naming node `idx` of `cpu`.
///
/// The callers pass `cpu < nr_cpus() <= MAX_CPUS` (the [`Platform`]
/// contract) and `idx < MAX_NODES`, so the shifts stay within the word.
///
/// [`Platform`]: super::Platform
pub(crate) fn encode_tail(cpu: u32, idx: usize) -> u32 {
    ((cpu + 1) << TAIL_CPU_OFFSET) | ((idx as u32) << TAIL_IDX_OFFSET)
}

/// `decode_tail()`: the node the tail bits of `val` name, `None` for "no
/// tail". Every tail in a word was made by [`encode_tail`].
pub(crate) fn decode_tail(val: u32) -> Option<Tail> {
    let cpu = (val >> TAIL_CPU_OFFSET).checked_sub(1)?;
    Some(Tail {
        cpu,
        idx: ((val & TAIL_IDX_MASK) >> TAIL_IDX_OFFSET) as usize,
    })
}

/// The lock word. All-zero is "unlocked, no waiters".
#[repr(transparent)]
pub(crate) struct LockWord(AtomicU32);

impl LockWord {
    pub(crate) fn new() -> Self {
        Self(AtomicU32::new(0))
    }

    /// Views an atomic word as a lock word.
    pub(crate) fn from_atomic(word: &AtomicU32) -> &Self {
        // SAFETY: `LockWord` is `repr(transparent)` over `AtomicU32`, so the
        // reference cast keeps size, alignment and validity.
        unsafe { &*(word as *const AtomicU32).cast::<Self>() }
    }

    pub(crate) fn load(&self, order: Ordering) -> u32 {
        self.0.load(order)
    }

    /// Fast path `0,0,0 -> 0,0,1`; on failure returns the value seen.
    ///
    /// Acquire on success: everything the previous owner wrote before its
    /// release in [`Self::unlock`] is visible to the critical section.
    #[inline(always)]
    pub(crate) fn try_lock_fast(&self) -> Result<(), u32> {
        self.0
            .compare_exchange(0, LOCKED_VAL, Ordering::Acquire, Ordering::Relaxed)
            .map(|_| ())
    }

    /// `queued_spin_trylock()`: one attempt, only on an entirely free word.
    ///
    /// The plain load first avoids dirtying the line when it is obviously
    /// taken.
    pub(crate) fn trylock(&self) -> bool {
        self.0.load(Ordering::Relaxed) == 0 && self.try_lock_fast().is_ok()
    }

    /// `queued_fetch_set_pending_acquire()`: `*,*,* -> *,1,*`, returns the
    /// old value.
    ///
    /// Acquire: if the old value shows the lock free (`0,0,0 -> 0,1,0`) we
    /// own it right away and must see the previous owner's writes.
    pub(crate) fn fetch_set_pending_acquire(&self) -> u32 {
        self.0.fetch_or(PENDING_VAL, Ordering::Acquire)
    }

    /// `clear_pending()`: `*,1,* -> *,0,*`.
    ///
    /// Relaxed: the pending bit carries no data; it only tells later lockers
    /// to queue.
    pub(crate) fn clear_pending(&self) {
        self.0.fetch_and(!PENDING_VAL, Ordering::Relaxed);
    }

    /// `clear_pending_set_locked()`: `*,1,0 -> *,0,1`, one atomic add.
    ///
    /// Relaxed: the acquire load that saw `locked == 0` already ordered the
    /// critical section after the previous owner's release. The add cannot
    /// borrow from the tail: the caller owns the pending bit, and nobody
    /// else sets `locked` while it is set.
    pub(crate) fn clear_pending_set_locked(&self) {
        self.0
            .fetch_add(LOCKED_VAL.wrapping_sub(PENDING_VAL), Ordering::Relaxed);
    }

    /// `set_locked()`: `*,*,0 -> *,*,1` for the head when others are
    /// queued.
    ///
    /// Relaxed: as in [`Self::clear_pending_set_locked`], the head's acquire
    /// wait already synchronised with the last unlock; while `locked` and
    /// `pending` are both clear and we are head, nobody else sets them.
    pub(crate) fn set_locked(&self) {
        self.0.fetch_or(LOCKED_VAL, Ordering::Relaxed);
    }

    /// `xchg_tail()`: publish `tail`, keep locked/pending, return the old
    /// word.
    ///
    /// Release replaces qspinlock's `smp_wmb()` before the exchange: our
    /// node's initialisation (`locked = 0`, `next = NULL`) must be visible
    /// to whoever finds the node through this tail. Acquire pairs with the
    /// release of the previous tail's own `xchg_tail()`, so the node we link
    /// behind is initialised when we write its `next` (C relies on the
    /// address dependency through `decode_tail()` for this; Rust has no
    /// consume ordering). Intervening read-modify-writes (pending, locked)
    /// continue the release sequence, so the pairing holds however many
    /// there are.
    pub(crate) fn xchg_tail(&self, tail: u32) -> u32 {
        let mut old = self.0.load(Ordering::Relaxed);
        loop {
            let new = (old & LOCKED_PENDING_MASK) | tail;
            match self
                .0
                .compare_exchange_weak(old, new, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(prev) => return prev,
                Err(cur) => old = cur,
            }
        }
    }

    /// `try_cmpxchg_tail()`: `tail,*,* -> new_tail,*,*` if the tail is still
    /// `tail`, keeping the locked and pending bits; `false` once the tail is
    /// different (somebody queued behind us).
    ///
    /// Relaxed, as upstream: it only detaches a queue that is being torn
    /// down (timeout or deadlock at the head); no data is published through
    /// it. A failure means a successor moved the tail and is about to link.
    pub(crate) fn try_cmpxchg_tail(&self, tail: u32, new_tail: u32) -> bool {
        let mut old = self.0.load(Ordering::Relaxed);
        loop {
            if old & TAIL_MASK != tail {
                return false;
            }
            let new = (old & LOCKED_PENDING_MASK) | new_tail;
            match self
                .0
                .compare_exchange_weak(old, new, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return true,
                Err(cur) => old = cur,
            }
        }
    }

    /// Head, alone in the queue: `tail,0,0 -> 0,0,1` if the word is still
    /// `seen`.
    ///
    /// Relaxed, as upstream: the head's acquire wait already ordered us
    /// after the last unlock; failure only means somebody queued behind us
    /// or set pending (and will queue).
    pub(crate) fn try_claim_uncontended(&self, seen: u32) -> bool {
        self.0
            .compare_exchange(seen, LOCKED_VAL, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    }

    /// Unlock: `*,*,1 -> *,*,0`, one atomic and-not.
    ///
    /// Release: the critical section's accesses happen-before the next
    /// owner's acquire (fast path, pending wait or head wait). Upstream
    /// stores 0 to the locked byte with `smp_store_release()`; a 32-bit
    /// store here would overwrite a concurrent tail or pending update, so
    /// it is a read-modify-write that keeps them.
    #[inline(always)]
    pub(crate) fn unlock(&self) {
        self.0.fetch_and(!LOCKED_MASK, Ordering::Release);
    }
}
