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
//! Unlike qspinlock we never access the word with 8- or 16-bit atomics: Rust
//! (and loom) do not define mixed-size atomic accesses to the same location,
//! so every helper is a 32-bit load, store or read-modify-write. This is the
//! shape qspinlock itself uses when `_Q_PENDING_BITS != 8`. The price is that
//! every read-modify-write is a compare-and-exchange loop and unlock is an
//! RMW instead of a byte store. Every such loop is bounded
//! ([`WORD_RMW_TRIES`]): the word is writable by BPF programs, and on LL/SC
//! machines a program storing to it in a loop could otherwise starve us
//! forever with preemption off. Each caller has a failure path that runs
//! before it published anything; only unlock cannot fail, see
//! [`LockWord::unlock`].
//!
//! The word lives in BPF-writable memory (`struct bpf_res_spin_lock { u32 val; }`)
//! in our 6.12 port, so any value may appear at any time. Nothing here trusts
//! it: [`decode_tail`] only returns indices that are in range for a per-CPU
//! node array, and callers still look the CPU up through the platform, which
//! rejects CPUs it does not know.

use super::sync::{AtomicU32, Ordering};

/// Mask of the `locked` byte.
pub(crate) const LOCKED_MASK: u32 = 0xff;
/// Value of the `locked` byte while the lock is held.
pub(crate) const LOCKED_VAL: u32 = 1;
/// Mask of the `pending` byte.
pub(crate) const PENDING_MASK: u32 = 0xff << 8;
/// The pending bit we set; the rest of the byte is only ever non-zero if the
/// word was scribbled on.
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

/// A decoded, range-checked tail: which CPU's which node is last in the queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Tail {
    /// CPU id, `< MAX_CPUS`. Not yet checked against the platform's CPU count.
    pub(crate) cpu: u32,
    /// Node index, always `< MAX_NODES`.
    pub(crate) idx: usize,
}

/// Encodes `(cpu, idx)` into the tail bits, or `None` if it does not fit.
pub(crate) fn encode_tail(cpu: u32, idx: usize) -> Option<u32> {
    if cpu >= MAX_CPUS || idx >= MAX_NODES {
        return None;
    }
    // Both shifts stay within 32 bits: cpu + 1 <= 2^14 - 1 and idx <= 3.
    Some(((cpu + 1) << TAIL_CPU_OFFSET) | ((idx as u32) << TAIL_IDX_OFFSET))
}

/// Decodes the tail bits of `val`.
///
/// Returns `None` for "no tail" and for tails no [`encode_tail`] call can
/// produce (an index with a zero CPU field), i.e. garbage.
pub(crate) fn decode_tail(val: u32) -> Option<Tail> {
    let cpu_plus_one = val >> TAIL_CPU_OFFSET;
    let cpu = cpu_plus_one.checked_sub(1)?;
    Some(Tail {
        cpu,
        // Masked to two bits, so always a valid index into `[_; MAX_NODES]`.
        idx: ((val & TAIL_IDX_MASK) >> TAIL_IDX_OFFSET) as usize,
    })
}

/// The lock word. All-zero is "unlocked, no waiters".
#[repr(transparent)]
pub(crate) struct LockWord(AtomicU32);

impl LockWord {
    #[cfg(not(loom))]
    pub(crate) const fn new() -> Self {
        Self(AtomicU32::new(0))
    }

    #[cfg(loom)]
    pub(crate) fn new() -> Self {
        Self(AtomicU32::new(0))
    }

    /// Wraps an existing atomic word.
    #[cfg(not(loom))]
    pub(crate) fn from_atomic(word: &AtomicU32) -> &Self {
        // SAFETY: `LockWord` is `repr(transparent)` over `AtomicU32`, so the
        // reference cast keeps size, alignment and validity.
        unsafe { &*(word as *const AtomicU32).cast::<Self>() }
    }

    pub(crate) fn load(&self, order: Ordering) -> u32 {
        self.0.load(order)
    }

    /// Overwrites the whole word, as a BPF program can.
    pub(crate) fn store_raw(&self, val: u32) {
        self.0.store(val, Ordering::Relaxed)
    }

    /// One bounded compare-and-exchange loop on the word.
    ///
    /// `f` maps the current value to the new one, or refuses (`None`). The
    /// loop gives up after [`WORD_RMW_TRIES`] failed attempts: on LL/SC
    /// machines (arm64 without LSE) a BPF program storing to the word in a
    /// loop can make every store-exclusive fail, and we may be spinning with
    /// preemption or interrupts off. Weak exchanges, so that one attempt is
    /// one LL/SC pair and the bound is real (a strong exchange is itself a
    /// retry loop there). The lock's own traffic cannot exhaust the bound:
    /// each failure means another RMW on the word succeeded, and a lock
    /// operation makes at most a handful of them.
    ///
    /// `guess` is the value the caller expects (saves a load when right).
    /// `observe` orders every read of the word that is not a successful
    /// exchange (the first load and failed exchanges).
    fn update(
        &self,
        guess: Option<u32>,
        success: Ordering,
        observe: Ordering,
        mut f: impl FnMut(u32) -> Option<u32>,
    ) -> Update {
        let mut old = match guess {
            Some(v) => v,
            None => self.0.load(observe),
        };
        for _ in 0..WORD_RMW_TRIES {
            let Some(new) = f(old) else {
                return Update::Refused(old);
            };
            match self.0.compare_exchange_weak(old, new, success, observe) {
                Ok(prev) => return Update::Done(prev),
                Err(cur) => old = cur,
            }
        }
        Update::Starved
    }

    /// Fast path `0,0,0 -> 0,0,1`; on failure returns the value seen.
    ///
    /// Acquire on success: everything the previous owner wrote before its
    /// release in [`Self::unlock`] is visible to the critical section. A
    /// starved or spuriously failing exchange reports 0, which the slow
    /// path handles like any other value.
    #[inline(always)]
    pub(crate) fn try_lock_fast(&self) -> Result<(), u32> {
        match self.update(Some(0), Ordering::Acquire, Ordering::Relaxed, |v| {
            (v == 0).then_some(LOCKED_VAL)
        }) {
            Update::Done(_) => Ok(()),
            Update::Refused(v) => Err(v),
            Update::Starved => Err(0),
        }
    }

    /// `queued_spin_trylock()`: one attempt, only on an entirely free word.
    ///
    /// Acquire on success for the same reason as [`Self::try_lock_fast`]. The
    /// plain load first avoids dirtying the line when it is obviously taken.
    pub(crate) fn trylock(&self) -> bool {
        self.0.load(Ordering::Relaxed) == 0 && self.try_lock_fast().is_ok()
    }

    /// `queued_fetch_set_pending_acquire()`; `None` if starved. `seen` is
    /// the value the caller last saw.
    ///
    /// Acquire: if the returned value shows the lock free (`0,0,0 -> 0,1,0`)
    /// we own it right away and must see the previous owner's writes.
    pub(crate) fn fetch_set_pending_acquire(&self, seen: u32) -> Option<u32> {
        match self.update(Some(seen), Ordering::Acquire, Ordering::Relaxed, |v| {
            Some(v | PENDING_VAL)
        }) {
            Update::Done(prev) => Some(prev),
            Update::Refused(_) | Update::Starved => None,
        }
    }

    /// `clear_pending()`: `*,1,* -> *,0,*`; `false` if starved.
    ///
    /// Relaxed: the pending bit carries no data; it only tells later lockers
    /// to queue. Clears the whole byte so a scribbled byte cannot stay stuck.
    pub(crate) fn clear_pending(&self) -> bool {
        if NATIVE_RMW {
            self.0.fetch_and(!PENDING_MASK, Ordering::Relaxed);
            return true;
        }
        matches!(
            self.update(None, Ordering::Relaxed, Ordering::Relaxed, |v| Some(
                v & !PENDING_MASK
            )),
            Update::Done(_)
        )
    }

    /// `clear_pending_set_locked()`: `*,1,0 -> *,0,1`; `false` if starved.
    ///
    /// Relaxed: the acquire load that saw `locked == 0` already ordered the
    /// critical section after the previous owner's release. An exchange
    /// rather than upstream's `fetch_add(1 - PENDING)`: if a program cleared
    /// the pending byte, the add would borrow from the tail bits and corrupt
    /// the tail; this only ever rewrites the locked and pending bytes.
    pub(crate) fn clear_pending_set_locked(&self) -> bool {
        matches!(
            self.update(None, Ordering::Relaxed, Ordering::Relaxed, |v| Some(
                (v & TAIL_MASK) | LOCKED_VAL
            )),
            Update::Done(_)
        )
    }

    /// `set_locked()`: `*,*,0 -> *,*,1` for the head when others are
    /// queued; `false` if starved.
    ///
    /// Relaxed: as in [`Self::clear_pending_set_locked`], the head's acquire
    /// wait already synchronised with the last unlock; while `locked` and
    /// `pending` are both clear and we are head, nobody else sets them.
    pub(crate) fn set_locked(&self) -> bool {
        if NATIVE_RMW {
            self.0.fetch_or(LOCKED_VAL, Ordering::Relaxed);
            return true;
        }
        matches!(
            self.update(None, Ordering::Relaxed, Ordering::Relaxed, |v| Some(
                v | LOCKED_VAL
            )),
            Update::Done(_)
        )
    }

    /// `xchg_tail()`: publish `tail`, keep locked/pending, return the old
    /// word; `None` if starved (nothing was published then).
    ///
    /// Release replaces qspinlock's `smp_wmb()` before the xchg: our node's
    /// initialisation (`locked = 0`, `next`, owner fields) must be visible to
    /// whoever finds the node through this tail. Acquire pairs with the
    /// release of the previous tail's own `xchg_tail`, so the previous
    /// node's owner fields we validate before linking are up to date (C
    /// relies on the address dependency through `decode_tail()` for this;
    /// Rust has no consume ordering). Intervening RMWs (pending, locked
    /// bits) continue the release sequence, so the pairing holds however
    /// many there are.
    pub(crate) fn xchg_tail(&self, tail: u32) -> Option<u32> {
        match self.update(None, Ordering::AcqRel, Ordering::Relaxed, |v| {
            Some((v & !TAIL_MASK) | tail)
        }) {
            Update::Done(prev) => Some(prev),
            Update::Refused(_) | Update::Starved => None,
        }
    }

    /// `try_cmpxchg_tail()`: `tail,*,* -> new_tail,*,*` if the tail is still
    /// `tail`, keeping the locked and pending bits. `false` if the tail is
    /// different or if starved; callers then wait (boundedly) for a
    /// successor, which is their safe choice either way.
    ///
    /// Relaxed on success, as upstream: it only detaches a queue that is
    /// being torn down (timeout or deadlock at the head); no data is
    /// published through it. Acquire when it sees another tail: that
    /// observation synchronises with the successor's `xchg_tail()`, which
    /// the abandoned-node scan relies on (see `slowpath`).
    pub(crate) fn try_cmpxchg_tail(&self, tail: u32, new_tail: u32) -> bool {
        matches!(
            self.update(None, Ordering::Relaxed, Ordering::Acquire, |v| {
                (v & TAIL_MASK == tail).then_some((v & !TAIL_MASK) | new_tail)
            }),
            Update::Done(_)
        )
    }

    /// Head, alone in the queue: `tail,0,0 -> 0,0,1`.
    ///
    /// Relaxed on success, as upstream: the head's acquire wait already
    /// ordered us after the last unlock; failure only means somebody queued
    /// behind us (or we were starved, and take the contended path, which is
    /// always correct). Acquire on failure for the same reason as in
    /// [`Self::try_cmpxchg_tail`].
    pub(crate) fn try_claim_uncontended(&self, seen: u32) -> bool {
        matches!(
            self.update(Some(seen), Ordering::Relaxed, Ordering::Acquire, |v| {
                (v == seen).then_some(LOCKED_VAL)
            }),
            Update::Done(_)
        )
    }

    /// Unlock: `*,*,1 -> *,*,0`.
    ///
    /// Release: the critical section's accesses happen-before the next owner's
    /// acquire (fast path cmpxchg, pending wait or head wait). Upstream uses
    /// `smp_store_release()` on the locked byte; we clear the byte with a
    /// 32-bit exchange (see the module docs) so concurrent tail/pending
    /// updates by waiters are never lost.
    ///
    /// Unlock must complete, so it cannot give up like the others: after
    /// [`WORD_RMW_TRIES`] failed exchanges (only possible while something
    /// stores to the word in a loop, i.e. a scribbled word) it falls back to
    /// one release store of the last value seen with the locked byte
    /// cleared. A single store always completes; it may overwrite a tail or
    /// pending update that raced with it, which only affects this lock,
    /// whose word is being scribbled on anyway.
    pub(crate) fn unlock(&self) {
        if NATIVE_RMW {
            self.0.fetch_and(!LOCKED_MASK, Ordering::Release);
            return;
        }
        let mut last = 0;
        let res = self.update(None, Ordering::Release, Ordering::Relaxed, |v| {
            last = v;
            Some(v & !LOCKED_MASK)
        });
        if !matches!(res, Update::Done(_)) {
            self.0.store(last & !LOCKED_MASK, Ordering::Release);
        }
    }
}

/// Whether an RMW whose result we do not need is one instruction that
/// always completes (x86 `lock and`/`lock or`: the core holds the cache line
/// for the whole operation, so no store can make it fail or retry). Then
/// unlock, `clear_pending()` and `set_locked()` use it directly; elsewhere
/// (LL/SC) they go through the bounded [`LockWord::update`]. Both variants
/// are compiled (and checked) everywhere; the other one is dead code.
const NATIVE_RMW: bool = cfg!(any(target_arch = "x86", target_arch = "x86_64"));

/// Maximum number of failed exchanges in one bounded word update.
pub(crate) const WORD_RMW_TRIES: u32 = 1 << 12;

/// Outcome of [`LockWord::update`].
enum Update {
    /// Exchanged; the previous value.
    Done(u32),
    /// The update function declined this value.
    Refused(u32),
    /// Gave up after [`WORD_RMW_TRIES`] failed exchanges.
    Starved,
}
