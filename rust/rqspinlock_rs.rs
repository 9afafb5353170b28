// SPDX-License-Identifier: GPL-2.0

//! bpf_rqspinlock: a resilient queued spin lock for BPF programs, and small
//! kfuncs that are safe to call while a `bpf_spin_lock` is held.
//!
//! The lock algorithm lives in [`rqspinlock`] and knows nothing of the
//! kernel; this file gives it a [`Platform`] (per-CPU memory from
//! `alloc_percpu()`, `ktime_get_mono_fast_ns()`, `cpu_relax()`) and
//! implements the kfuncs, which `rqspinlock_kfuncs.c` exposes to BPF (Rust
//! functions get no BTF on 6.12, so the kfunc symbols must be C).
//!
//! A BPF program holds a lock through a *guard*: a per-CPU slot that records
//! the lock and the saved interrupt state. The verifier tracks the guard as
//! an acquired reference (`KF_ACQUIRE | KF_RET_NULL`, released by
//! `KF_RELEASE`), so every path of a program releases every guard exactly
//! once, and a failed attempt (NULL) cannot be released at all.

use core::cell::UnsafeCell;
use core::ffi::c_void;
use core::sync::atomic::{AtomicI32, AtomicPtr, AtomicU64, Ordering};

use kernel::prelude::*;

pub mod rqspinlock;

use rqspinlock::{CpuState, LockError, Platform, RqSpinLock};

module! {
    type: RqSpinLockModule,
    name: "bpf_rqspinlock",
    author: "rqspin-bpf developers",
    description: "Resilient queued spin lock and lock-safe kfuncs for BPF",
    license: "GPL",
}

/// The kernel functions, macros and inlines this module needs, wrapped in C
/// by `rqspinlock_kfuncs.c` (an out-of-tree-capable module cannot add to
/// `rust/helpers`).
mod ffi {
    use core::ffi::{c_int, c_uint, c_ulong, c_void};

    extern "C" {
        pub(crate) fn rqspin_c_register_kfuncs() -> c_int;
        pub(crate) fn rqspin_c_cpu() -> c_int;
        pub(crate) fn rqspin_c_nr_cpu_ids() -> c_uint;
        pub(crate) fn rqspin_c_cpu_possible(cpu: c_uint) -> bool;
        pub(crate) fn rqspin_c_alloc_percpu(size: usize, align: usize) -> *mut c_void;
        pub(crate) fn rqspin_c_free_percpu(ptr: *mut c_void);
        pub(crate) fn rqspin_c_per_cpu_ptr(ptr: *mut c_void, cpu: c_uint) -> *mut c_void;
        pub(crate) fn rqspin_c_preempt_disable();
        pub(crate) fn rqspin_c_preempt_enable();
        pub(crate) fn rqspin_c_irq_save() -> c_ulong;
        pub(crate) fn rqspin_c_irq_restore(flags: c_ulong);
        pub(crate) fn rqspin_c_clock_ns() -> u64;
        pub(crate) fn rqspin_c_cpu_relax();
        pub(crate) fn rqspin_c_in_nmi() -> bool;
    }
}

/// Statistics slots per CPU for `bpf_rqspin_stat_add()`.
const NR_STATS: usize = 16;

/// Guard slots per CPU: one per lock a CPU can hold at once through BPF.
/// More than the 31 tracked locks, so that exceeding the held-locks table
/// (which the algorithm handles by timing out) is reachable from BPF.
const NR_GUARDS: usize = 64;

/// `struct bpf_rqspin_guard` of `rqspinlock_kfuncs.c`; the C side checks at
/// init that both agree on the size.
#[repr(C)]
pub struct Guard {
    /// The lock word this guard holds.
    lock: *mut u32,
    /// Interrupt state to restore on unlock, if `irqsave != 0`.
    irq_flags: core::ffi::c_ulong,
    /// Index of this guard in its CPU's slots.
    slot: u32,
    /// Whether the lock was taken with local interrupts disabled.
    irqsave: u32,
}

/// Everything this module keeps per CPU.
///
/// # Invariants
///
/// All-zero bytes are a valid value (what `alloc_percpu()` returns). Bit `i`
/// of `guards_used` is set exactly while `guards[i]` belongs to a lock held
/// on this CPU; only that holder accesses the slot.
#[repr(C)]
struct PerCpu {
    lock: CpuState,
    guards: [UnsafeCell<Guard>; NR_GUARDS],
    guards_used: AtomicU64,
    last_error: AtomicI32,
    stats: [AtomicU64; NR_STATS],
}

/// Base of the per-CPU [`PerCpu`] area; set once in init before the kfuncs
/// are registered, freed in drop after the last user is gone.
static PERCPU: AtomicPtr<c_void> = AtomicPtr::new(core::ptr::null_mut());

/// The [`PerCpu`] of `cpu`, or `None` for an id that is not a possible CPU
/// (ids may come from a lock word a BPF program scribbled on).
fn per_cpu(cpu: u32) -> Option<&'static PerCpu> {
    let base = PERCPU.load(Ordering::Acquire);
    // SAFETY: `rqspin_c_cpu_possible()` accepts any value.
    if base.is_null() || !unsafe { ffi::rqspin_c_cpu_possible(cpu) } {
        return None;
    }
    // SAFETY: `base` is a live `alloc_percpu()` area sized for `PerCpu` and
    // `cpu` is a possible CPU, so `per_cpu_ptr()` gives that CPU's copy.
    let ptr = unsafe { ffi::rqspin_c_per_cpu_ptr(base, cpu) };
    // SAFETY: the area stays allocated until the module is unloaded, which
    // cannot happen while a kfunc runs (a program using our kfuncs holds a
    // reference on the module); all-zero is a valid `PerCpu` (invariant) and
    // all shared mutation goes through atomics or guard slots owned per the
    // invariant.
    Some(unsafe { &*ptr.cast::<PerCpu>() })
}

fn this_cpu_id() -> u32 {
    // SAFETY: `raw_smp_processor_id()` has no preconditions.
    unsafe { ffi::rqspin_c_cpu() as u32 }
}

/// The kernel environment of the lock algorithm.
struct KernelPlatform;

// SAFETY: The lock kfuncs disable preemption before `lock()` and enable it
// after `unlock()` (or after a failed `lock()`), so `cpu()` is stable for
// each operation; contexts sharing a CPU id nest (task, softirq, hardirq,
// NMI). `cpu_state()` returns the fixed per-CPU copy for possible CPUs and
// `None` for anything else, and the memory lives as long as the module.
unsafe impl Platform for KernelPlatform {
    // As upstream: x86 re-reads a pending->locked hand-over 512 times.
    #[cfg(CONFIG_X86)]
    const PENDING_LOOPS: u32 = 1 << 9;

    fn cpu() -> u32 {
        this_cpu_id()
    }

    fn nr_cpus() -> u32 {
        // SAFETY: reads `nr_cpu_ids`, which is fixed after boot.
        unsafe { ffi::rqspin_c_nr_cpu_ids() }
    }

    fn cpu_state(cpu: u32) -> Option<&'static CpuState> {
        per_cpu(cpu).map(|p| &p.lock)
    }

    fn now_ns() -> u64 {
        // SAFETY: `ktime_get_mono_fast_ns()` is safe in any context.
        unsafe { ffi::rqspin_c_clock_ns() }
    }

    fn relax() {
        // SAFETY: `cpu_relax()` has no preconditions.
        unsafe { ffi::rqspin_c_cpu_relax() }
    }

    fn in_nmi() -> bool {
        // SAFETY: `in_nmi()` reads the preempt count of this CPU.
        unsafe { ffi::rqspin_c_in_nmi() }
    }
}

impl PerCpu {
    /// Claims a free guard slot. Interrupts on this CPU may claim slots
    /// concurrently; the atomic bit operations keep the claims distinct.
    fn claim_guard(&self) -> Option<usize> {
        let mut used = self.guards_used.load(Ordering::Relaxed);
        loop {
            let slot = (!used).trailing_zeros() as usize;
            if slot >= NR_GUARDS {
                return None;
            }
            match self.guards_used.compare_exchange_weak(
                used,
                used | (1 << slot),
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Some(slot),
                Err(now) => used = now,
            }
        }
    }

    fn release_guard(&self, slot: usize) {
        self.guards_used.fetch_and(!(1u64 << slot), Ordering::Relaxed);
    }
}

/// Takes `lock` for a BPF program and returns its guard, or null with the
/// reason stored for `bpf_rqspin_last_error()`.
///
/// # Safety
///
/// `lock` points to 4 bytes of memory, 4-byte aligned, that stay valid while
/// the calling program runs (the verifier passes a map value pointer checked
/// against `sizeof(struct bpf_rqspin_lock)`).
#[no_mangle]
pub unsafe extern "C" fn rqspin_rs_lock(lock: *mut u32, irqsave: bool) -> *mut Guard {
    // Preemption stays off while the lock is held: a holder that is preempted
    // would make every waiter time out, and the per-CPU guard and held-locks
    // table must stay on one CPU.
    // SAFETY: balanced by `preempt_enable()` on failure or in unlock.
    unsafe { ffi::rqspin_c_preempt_disable() };
    let flags = if irqsave {
        // SAFETY: balanced by `local_irq_restore()` on failure or in unlock.
        unsafe { ffi::rqspin_c_irq_save() }
    } else {
        0
    };
    let fail = |cpu: Option<&PerCpu>, err: LockError| {
        if let Some(cpu) = cpu {
            cpu.last_error.store(err.to_errno(), Ordering::Relaxed);
        }
        if irqsave {
            // SAFETY: restores what `irq_save()` above returned.
            unsafe { ffi::rqspin_c_irq_restore(flags) };
        }
        // SAFETY: balances the `preempt_disable()` above.
        unsafe { ffi::rqspin_c_preempt_enable() };
        core::ptr::null_mut()
    };
    let Some(cpu) = per_cpu(this_cpu_id()) else {
        return fail(None, LockError::Deadlock);
    };
    // More locks held on this CPU than there are guards: report it as a
    // deadlock, as upstream does when it runs out of queue nodes.
    let Some(slot) = cpu.claim_guard() else {
        return fail(Some(cpu), LockError::Deadlock);
    };
    // SAFETY: the caller guarantees `lock` is valid and aligned for the
    // program's run; Rust code only accesses it atomically.
    let rq = unsafe { RqSpinLock::from_ptr(lock) };
    if let Err(err) = rq.lock::<KernelPlatform>() {
        cpu.release_guard(slot);
        return fail(Some(cpu), err);
    }
    cpu.last_error.store(0, Ordering::Relaxed);
    let guard = cpu.guards[slot].get();
    // INVARIANT: the slot was claimed above, so only this holder writes it.
    // SAFETY: `guard` points into this CPU's live per-CPU area.
    unsafe {
        guard.write(Guard {
            lock,
            irq_flags: flags,
            slot: slot as u32,
            irqsave: irqsave as u32,
        })
    };
    guard
}

/// Releases the lock a guard holds, restores interrupts if the guard saved
/// them, and frees the guard.
///
/// # Safety
///
/// `guard` was returned by [`rqspin_rs_lock`] on this CPU and not released
/// since (the verifier's reference tracking guarantees it for BPF callers).
#[no_mangle]
pub unsafe extern "C" fn rqspin_rs_unlock(guard: *mut Guard) {
    // SAFETY: per the contract the guard is live and owned by the caller;
    // copy it out before the slot is freed and can be reused by an interrupt.
    let g = unsafe { guard.read() };
    // SAFETY: `g.lock` was valid when locked and the program still runs.
    let rq = unsafe { RqSpinLock::from_ptr(g.lock) };
    // SAFETY: the lock was taken by this CPU (preemption is still off) and
    // has not been released.
    unsafe { rq.unlock::<KernelPlatform>() };
    if let Some(cpu) = per_cpu(this_cpu_id()) {
        cpu.release_guard(g.slot as usize);
    }
    if g.irqsave != 0 {
        // SAFETY: restores the state saved when this lock was taken.
        unsafe { ffi::rqspin_c_irq_restore(g.irq_flags) };
    }
    // SAFETY: balances the `preempt_disable()` of `rqspin_rs_lock()`.
    unsafe { ffi::rqspin_c_preempt_enable() };
}

/// `bpf_rqspin_last_error()`: this CPU's last lock outcome.
#[no_mangle]
pub extern "C" fn rqspin_rs_last_error() -> i32 {
    per_cpu(this_cpu_id()).map_or(0, |c| c.last_error.load(Ordering::Relaxed))
}

/// `bpf_rqspin_ktime_get_ns()`.
#[no_mangle]
pub extern "C" fn rqspin_rs_ktime_get_ns() -> u64 {
    KernelPlatform::now_ns()
}

/// `bpf_rqspin_stat_add()`: atomic, because a program in an interrupt on
/// this CPU may add to the same slot.
#[no_mangle]
pub extern "C" fn rqspin_rs_stat_add(slot: u32, delta: u64) -> u64 {
    let Some(stat) = per_cpu(this_cpu_id()).and_then(|c| c.stats.get(slot as usize)) else {
        return 0;
    };
    stat.fetch_add(delta, Ordering::Relaxed).wrapping_add(delta)
}

/// `bpf_rqspin_stat_sum()`.
#[no_mangle]
pub extern "C" fn rqspin_rs_stat_sum(slot: u32) -> u64 {
    if slot as usize >= NR_STATS {
        return 0;
    }
    (0..KernelPlatform::nr_cpus())
        .filter_map(per_cpu)
        .map(|c| c.stats[slot as usize].load(Ordering::Relaxed))
        .fold(0u64, u64::wrapping_add)
}

/// `sizeof(struct bpf_rqspin_guard)` as Rust sees it, checked by the C side.
#[no_mangle]
pub extern "C" fn rqspin_rs_guard_size() -> usize {
    core::mem::size_of::<Guard>()
}

struct RqSpinLockModule;

impl kernel::Module for RqSpinLockModule {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let size = core::mem::size_of::<PerCpu>();
        // SAFETY: plain allocation; returns zeroed memory or null.
        let base = unsafe { ffi::rqspin_c_alloc_percpu(size, core::mem::align_of::<PerCpu>()) };
        if base.is_null() {
            return Err(ENOMEM);
        }
        PERCPU.store(base, Ordering::Release);
        // SAFETY: the per-CPU area the kfuncs use is in place.
        let err = unsafe { ffi::rqspin_c_register_kfuncs() };
        if err != 0 {
            PERCPU.store(core::ptr::null_mut(), Ordering::Release);
            // SAFETY: registration failed, so no kfunc can be using `base`.
            unsafe { ffi::rqspin_c_free_percpu(base) };
            return Err(Error::from_errno(err));
        }
        pr_info!("kfuncs registered ({size} bytes of per-CPU state)\n");
        Ok(RqSpinLockModule)
    }
}

impl Drop for RqSpinLockModule {
    fn drop(&mut self) {
        let base = PERCPU.swap(core::ptr::null_mut(), Ordering::AcqRel);
        if !base.is_null() {
            // SAFETY: the module is going away, so no program can call our
            // kfuncs any more (each one held a reference on the module).
            unsafe { ffi::rqspin_c_free_percpu(base) };
        }
    }
}
