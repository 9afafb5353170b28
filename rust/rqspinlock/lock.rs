// SPDX-License-Identifier: GPL-2.0

//! Public lock types: fast paths and unlock.

use super::error::LockError;
use super::platform::Platform;
use super::slowpath::slowpath;
use super::word::LockWord;

/// A resilient queued spin lock over a 32-bit word.
///
/// `lock()` either takes the lock or fails with [`LockError`] after detecting
/// an AA/ABBA deadlock or after a timeout (0.25 s as the pending waiter,
/// 0.5 s as the queue head, 1 s behind another waiter; an attempt returns
/// within about 1.75 s plus the time CPUs queued ahead of it are held up by
/// interrupts, NMIs or a hypervisor). The word may be overwritten by
/// untrusted code at any time; that can break mutual exclusion for this lock
/// and make attempts time out, but never panics, never indexes out of
/// bounds, never loosens those time bounds and never disturbs the queues of
/// other locks (see the module docs of `slowpath`).
///
/// `repr(transparent)` over the `u32` of `struct bpf_res_spin_lock`.
#[repr(transparent)]
pub struct RqSpinLock {
    word: LockWord,
}

impl RqSpinLock {
    /// An unlocked lock.
    #[cfg(not(loom))]
    pub const fn new() -> Self {
        Self {
            word: LockWord::new(),
        }
    }

    /// An unlocked lock.
    #[cfg(loom)]
    pub fn new() -> Self {
        Self {
            word: LockWord::new(),
        }
    }

    /// Views an existing 32-bit word (e.g. a `struct bpf_res_spin_lock`) as a
    /// lock.
    ///
    /// # Safety
    ///
    /// - `ptr` is non-null, 4-byte aligned and valid for reads and writes for
    ///   `'a`.
    /// - For `'a`, all accesses to the word by Rust code go through atomic
    ///   operations (this type or `AtomicU32`). Plain 32-bit stores by BPF
    ///   programs are tolerated the way the kernel tolerates racing
    ///   `WRITE_ONCE()`s: the algorithm treats any value as possible.
    #[cfg(not(loom))]
    pub unsafe fn from_ptr<'a>(ptr: *mut u32) -> &'a Self {
        // SAFETY: the caller guarantees `ptr` is aligned and valid for `'a`
        // with only atomic accesses, which is `AtomicU32::from_ptr`'s contract.
        let atomic = unsafe { super::sync::AtomicU32::from_ptr(ptr) };
        let word = LockWord::from_atomic(atomic);
        // SAFETY: `RqSpinLock` is `repr(transparent)` over `LockWord`.
        unsafe { &*(word as *const LockWord).cast::<Self>() }
    }

    /// The address that identifies this lock in held-lock tables.
    fn addr(&self) -> usize {
        self as *const Self as usize
    }

    /// Acquires the lock (upstream `res_spin_lock()`).
    ///
    /// The caller must keep the CPU stable until the matching
    /// [`unlock`](Self::unlock) or until this returns an error (in the
    /// kernel: preemption disabled); see [`Platform`].
    ///
    /// # Errors
    ///
    /// [`LockError::Deadlock`] on a detected AA or ABBA deadlock, or when an
    /// NMI (or a context without a free MCS node) finds the lock contended;
    /// [`LockError::Timeout`] when the owner did not release in time. The
    /// lock is not held after an error.
    #[inline]
    pub fn lock<P: Platform>(&self) -> Result<(), LockError> {
        let lock = self.addr();
        let cpu = P::cpu();
        let Some(state) = P::cpu_state(cpu) else {
            // Broken platform contract: no per-CPU state to queue or to
            // track deadlocks with. Do the one thing that needs neither.
            return if self.word.trylock() {
                Ok(())
            } else {
                Err(LockError::Deadlock)
            };
        };
        // The entry goes in before the first try, so that the whole attempt
        // is visible to AA checks of nested contexts on this CPU (an NMI
        // hitting between a successful cmpxchg and a later entry write would
        // otherwise miss the AA and spin until the timeout).
        state.held.grab(lock);
        match self.word.try_lock_fast() {
            Ok(()) => Ok(()),
            Err(val) => slowpath::<P, true>(&self.word, lock, val, cpu, state),
        }
    }

    /// Releases the lock (upstream `res_spin_unlock()`).
    ///
    /// Order as upstream since Nov 2025: release the word first, then drop
    /// the held-table entry, then the count. Dropping the entry first would
    /// let an NMI arriving between the two see the lock taken but not in the
    /// table, miss the AA and spin until the timeout; this way it sees either
    /// a free lock or the entry (a harmless spurious AA).
    ///
    /// Out-of-order unlocking is supported: this lock's own entry is removed,
    /// wherever it sits (see `HeldLocks::remove`).
    ///
    /// # Safety
    ///
    /// The calling context must hold the lock, taken by a successful
    /// [`lock`](Self::lock) with the same platform on the same CPU, and must
    /// not have released it yet.
    #[inline]
    pub unsafe fn unlock<P: Platform>(&self) {
        self.word.unlock();
        if let Some(state) = P::cpu_state(P::cpu()) {
            state.held.remove(self.addr());
        }
    }

    /// The current raw word (for diagnostics and tests).
    pub fn value(&self) -> u32 {
        self.word.load(super::sync::Ordering::Relaxed)
    }

    /// Overwrites the raw word, exactly as a BPF program can.
    ///
    /// Never needed for correct use; it exists so tests can check that
    /// arbitrary words are survived.
    pub fn store_raw(&self, val: u32) {
        self.word.store_raw(val)
    }
}

impl Default for RqSpinLock {
    fn default() -> Self {
        Self::new()
    }
}

/// The same queued spin lock without the resilience: no held-locks table, no
/// deadlines, no deadlock detection; `lock()` cannot fail and may spin
/// forever. Shares the MCS nodes and the slow path with [`RqSpinLock`]; it
/// exists to measure what the resilience costs. Not for words untrusted code
/// can write.
///
/// Only in the host's benchmark build (`cfg(rqspin_bench)`, set by
/// `tools/rqspinlock-host/build.rs`): the kernel module never contains it.
#[cfg(rqspin_bench)]
#[repr(transparent)]
pub struct QueuedSpinLock {
    word: LockWord,
}

#[cfg(rqspin_bench)]
impl QueuedSpinLock {
    /// An unlocked lock.
    #[cfg(not(loom))]
    pub const fn new() -> Self {
        Self {
            word: LockWord::new(),
        }
    }

    /// An unlocked lock.
    #[cfg(loom)]
    pub fn new() -> Self {
        Self {
            word: LockWord::new(),
        }
    }

    /// Acquires the lock (`queued_spin_lock()`).
    ///
    /// As for [`RqSpinLock::lock`], the CPU must stay stable until the
    /// matching unlock.
    #[inline]
    pub fn lock<P: Platform>(&self) {
        let Err(val) = self.word.try_lock_fast() else {
            return;
        };
        let lock = self as *const Self as usize;
        let cpu = P::cpu();
        match P::cpu_state(cpu) {
            Some(state) => {
                // Cannot fail without resilience.
                let _ = slowpath::<P, false>(&self.word, lock, val, cpu, state);
            }
            None => {
                while !self.word.trylock() {
                    P::relax();
                }
            }
        }
    }

    /// Releases the lock.
    ///
    /// # Safety
    ///
    /// The calling context must hold the lock.
    #[inline]
    pub unsafe fn unlock(&self) {
        self.word.unlock();
    }

    /// The current raw word.
    pub fn value(&self) -> u32 {
        self.word.load(super::sync::Ordering::Relaxed)
    }
}

#[cfg(rqspin_bench)]
impl Default for QueuedSpinLock {
    fn default() -> Self {
        Self::new()
    }
}
