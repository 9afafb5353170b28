// SPDX-License-Identifier: GPL-2.0

//! The lock type: fast path, unlock, and a guard for Rust callers.

use core::marker::PhantomData;

use super::error::LockError;
use super::platform::{Platform, ThisCpu};
use super::slowpath::slowpath;
use super::sync::{compiler_barrier, AtomicU32, Ordering};
use super::word::LockWord;

/// A resilient queued spin lock over a 32-bit word.
///
/// [`lock`](Self::lock) either takes the lock or fails with [`LockError`]
/// after detecting an AA or ABBA deadlock, or after a timeout (0.25 s as the
/// pending waiter, 0.5 s as the queue head; see `slowpath` for the bound on
/// a whole attempt).
///
/// `repr(transparent)` over the `u32` of `struct bpf_res_spin_lock`, and
/// `Sync` because every access to the word is atomic.
#[repr(transparent)]
pub struct RqSpinLock {
    word: LockWord,
}

impl RqSpinLock {
    /// An unlocked lock.
    pub fn new() -> Self {
        Self {
            word: LockWord::new(),
        }
    }

    /// Views an atomic word (e.g. the `val` of a `struct bpf_res_spin_lock`)
    /// as a lock. Every access through the result is atomic, so the word
    /// stays a valid `AtomicU32`; the lock is only correct if nothing but
    /// this type writes the word while it is in use.
    pub fn from_atomic(word: &AtomicU32) -> &Self {
        let word = LockWord::from_atomic(word);
        // SAFETY: `RqSpinLock` is `repr(transparent)` over `LockWord`.
        unsafe { &*(word as *const LockWord).cast::<Self>() }
    }

    /// The address that identifies this lock in held-lock tables.
    fn addr(&self) -> usize {
        self as *const Self as usize
    }

    /// Acquires the lock on the CPU [`Platform::this_cpu`] names (upstream
    /// `res_spin_lock()`). See [`Self::lock_on`].
    #[inline]
    pub fn lock<P: Platform>(&self) -> Result<(), LockError> {
        self.lock_on::<P>(P::this_cpu())
    }

    /// Acquires the lock on `cpu`, the CPU the caller runs on.
    ///
    /// The caller must keep the CPU stable until the matching unlock or
    /// until this returns an error (in the kernel: preemption disabled); see
    /// [`Platform`].
    ///
    /// # Errors
    ///
    /// [`LockError::Aa`] or [`LockError::Abba`] on a detected deadlock,
    /// [`LockError::Busy`] when an NMI (or a context without a free MCS
    /// node) finds the lock contended, [`LockError::Timeout`] when the owner
    /// did not release in time. The
    /// lock is not held after an error.
    #[inline]
    pub fn lock_on<P: Platform>(&self, cpu: ThisCpu) -> Result<(), LockError> {
        let lock = self.addr();
        // The entry goes in before the first try, so that the whole attempt
        // is visible to AA checks of nested contexts on this CPU (an NMI
        // hitting between a successful exchange and a later entry write
        // would otherwise miss the AA and spin until the timeout).
        cpu.state.held.grab(lock);
        // The entry must be in place before the exchange for a nested
        // context on this CPU: keep the compiler from sinking the slot
        // store below it (an acquire does not stop earlier stores).
        compiler_barrier();
        match self.word.try_lock_fast() {
            Ok(()) => Ok(()),
            Err(val) => slowpath::<P>(&self.word, lock, val, cpu),
        }
    }

    /// Releases the lock (upstream `res_spin_unlock()`). See
    /// [`Self::unlock_on`].
    ///
    /// # Safety
    ///
    /// As for [`Self::unlock_on`], with the CPU [`Platform::this_cpu`]
    /// names.
    #[inline]
    pub unsafe fn unlock<P: Platform>(&self) {
        // SAFETY: the caller's contract is ours.
        unsafe { self.unlock_on(P::this_cpu()) }
    }

    /// Releases the lock taken on `cpu`.
    ///
    /// Order as upstream since Nov 2025: release the word first, then drop
    /// the held-table entry. Dropping the entry first would let an NMI
    /// arriving between the two see the lock taken but not in the table,
    /// miss the AA and spin until the timeout; this way it sees either a
    /// free lock or the entry (a harmless spurious AA).
    ///
    /// # Safety
    ///
    /// The calling context holds the lock, taken by a successful `lock` on
    /// `cpu` with the same platform, and has not released it yet.
    #[inline]
    pub unsafe fn unlock_on(&self, cpu: ThisCpu) {
        self.word.unlock();
        // The word is free before the entry goes (see above): keep the
        // compiler from hoisting the entry's stores above the release.
        compiler_barrier();
        cpu.state.held.remove(self.addr());
    }

    /// Acquires the lock and returns a guard that releases it when dropped.
    ///
    /// # Errors
    ///
    /// As [`Self::lock_on`].
    #[inline]
    pub fn guard<P: Platform>(&self) -> Result<Guard<'_>, LockError> {
        let cpu = P::this_cpu();
        self.lock_on::<P>(cpu)?;
        // INVARIANT: the lock was just taken on `cpu`.
        Ok(Guard {
            lock: self,
            cpu,
            _not_send: PhantomData,
        })
    }

    /// The current raw word, for diagnostics and tests.
    pub fn value(&self) -> u32 {
        self.word.load(Ordering::Relaxed)
    }
}

impl Default for RqSpinLock {
    fn default() -> Self {
        Self::new()
    }
}

/// A held [`RqSpinLock`], released when dropped.
///
/// Neither `Send` nor `Sync`: it is bound to the CPU the lock was taken on,
/// whose held-locks table records it.
///
/// # Invariants
///
/// `lock` is held, taken on `cpu`.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct Guard<'a> {
    lock: &'a RqSpinLock,
    cpu: ThisCpu,
    _not_send: PhantomData<*mut ()>,
}

impl Drop for Guard<'_> {
    fn drop(&mut self) {
        // SAFETY: by the type invariant the lock is held, taken on `cpu`,
        // and only this drop releases it.
        unsafe { self.lock.unlock_on(self.cpu) };
    }
}
