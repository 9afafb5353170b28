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
use core::sync::atomic::{
    compiler_fence, AtomicI32, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering,
};

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
        pub(crate) fn rqspin_c_ctx_level() -> c_uint;
    }
}

/// Statistics slots per CPU for `bpf_rqspin_stat_add()`.
const NR_STATS: usize = 16;

/// Guard slots per CPU: one per lock a CPU can hold at once through BPF.
/// More than the 31 tracked locks, so that exceeding the held-locks table
/// (which the algorithm handles by timing out) is reachable from BPF.
const NR_GUARDS: usize = 64;

/// Interrupt context levels (`interrupt_context_level()`: task, softirq,
/// hardirq, NMI), each with its own `last_error`.
const NR_CTX_LEVELS: usize = 4;

/// `struct bpf_rqspin_guard` of `rqspinlock_kfuncs.c`. Both sides assert the
/// layout at compile time, and init checks that they agree on the size.
#[repr(C)]
pub struct Guard {
    /// The lock word this guard holds.
    lock: *mut u32,
    /// Interrupt state saved by this attempt (the outermost irqsave guard
    /// of the CPU restores its own; see [`PerCpu::irq_exit`]).
    irq_flags: core::ffi::c_ulong,
    /// Index of this guard in its CPU's slots.
    slot: u32,
    /// Whether the lock was taken with local interrupts disabled.
    irqsave: u32,
}

const _: () = assert!(core::mem::size_of::<Guard>() == 24);
const _: () = assert!(core::mem::offset_of!(Guard, slot) == 16);

/// Everything this module keeps per CPU.
///
/// # Invariants
///
/// All-zero bytes are a valid value (what `alloc_percpu()` returns). Bit `i`
/// of `guards_used` is set from the start of a lock attempt until the lock
/// is released (or the attempt failed); only that attempt's context
/// accesses `guards[i]`. `irq_depth` counts the irqsave guards held on this
/// CPU; while it is non-zero, `irq_outer` holds the interrupt state saved by
/// the outermost one.
#[repr(C)]
struct PerCpu {
    lock: CpuState,
    guards: [UnsafeCell<Guard>; NR_GUARDS],
    guards_used: AtomicU64,
    irq_depth: AtomicU32,
    irq_outer: AtomicUsize,
    last_error: [AtomicI32; NR_CTX_LEVELS],
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

/// The id of the CPU we run on. Stable for the caller: the lock kfuncs run
/// with preemption disabled, the others with migration disabled (as every
/// BPF program does).
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
        // SAFETY: reads `nr_cpu_ids`, which is fixed after boot; no
        // preconditions.
        unsafe { ffi::rqspin_c_nr_cpu_ids() }
    }

    fn cpu_state(cpu: u32) -> Option<&'static CpuState> {
        per_cpu(cpu).map(|p| &p.lock)
    }

    fn now_ns() -> u64 {
        // SAFETY: `ktime_get_mono_fast_ns()` has no preconditions and is
        // NMI-safe, so it is callable in every context the lock runs in.
        unsafe { ffi::rqspin_c_clock_ns() }
    }

    fn relax() {
        // SAFETY: `cpu_relax()` has no preconditions and is callable in any
        // context.
        unsafe { ffi::rqspin_c_cpu_relax() }
    }

    fn in_nmi() -> bool {
        // SAFETY: `in_nmi()` has no preconditions and is callable in any
        // context; it only reads the preempt count.
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

    /// Frees a slot claimed by [`Self::claim_guard`].
    fn release_guard(&self, slot: usize) {
        let bit = 1u64.checked_shl(slot as u32).unwrap_or(0);
        self.guards_used.fetch_and(!bit, Ordering::Relaxed);
    }

    /// Records an irqsave acquisition; `flags` is what `local_irq_save()`
    /// returned for it.
    ///
    /// Guards may be released out of order (the 6.12 verifier does not
    /// enforce LIFO for kfunc references), so each guard cannot restore its
    /// own saved state: releasing the outer one first would turn interrupts
    /// back on while the inner lock is held, and the inner one would then
    /// leave them off. Instead only the last irqsave guard released restores,
    /// and it restores the state saved by the first one taken.
    ///
    /// Interrupts are off from here on, so only NMIs can run in between, and
    /// they leave `irq_depth` as they found it. The compiler fences keep the
    /// depth and the saved state in the order that makes that true.
    fn irq_enter(&self, flags: usize) {
        let depth = self.irq_depth.load(Ordering::Relaxed);
        self.irq_depth.store(depth + 1, Ordering::Relaxed);
        compiler_fence(Ordering::SeqCst);
        if depth == 0 {
            self.irq_outer.store(flags, Ordering::Relaxed);
        }
    }

    /// Undoes [`Self::irq_enter`]; restores interrupts if this was the last
    /// irqsave guard of the CPU.
    fn irq_exit(&self) {
        // Read the state first: once the depth is 0 an NMI may store its own.
        let outer = self.irq_outer.load(Ordering::Relaxed);
        compiler_fence(Ordering::SeqCst);
        let depth = self.irq_depth.load(Ordering::Relaxed).saturating_sub(1);
        self.irq_depth.store(depth, Ordering::Relaxed);
        if depth == 0 {
            // SAFETY: restores the state saved by the outermost
            // `local_irq_save()` of this CPU, whose lock is now released.
            unsafe { ffi::rqspin_c_irq_restore(outer as core::ffi::c_ulong) };
        }
    }

    /// `last_error` of the interrupt context we run in.
    fn last_error(&self) -> &AtomicI32 {
        // SAFETY: `interrupt_context_level()` only reads the preempt count.
        let level = unsafe { ffi::rqspin_c_ctx_level() } as usize;
        &self.last_error[level.min(NR_CTX_LEVELS - 1)]
    }
}

/// The errno a failed attempt reports, from the kernel's own headers.
fn errno(err: LockError) -> i32 {
    let code = match err {
        LockError::Deadlock => kernel::bindings::EDEADLK,
        LockError::Timeout => kernel::bindings::ETIMEDOUT,
    };
    -(code as i32)
}

/// Takes `lock` for a BPF program and returns its guard, or null with the
/// reason stored for `bpf_rqspin_last_error()`.
///
/// # Safety
///
/// `lock` is null or points to 4 bytes of memory that stay valid while the
/// calling program runs: the verifier checks the argument as memory of
/// `sizeof(struct bpf_rqspin_lock)` (a map value, in practice) and, with
/// `KF_TRUSTED_ARGS`, refuses NULL. Alignment is checked here.
#[no_mangle]
pub unsafe extern "C" fn rqspin_rs_lock(lock: *mut u32, irqsave: bool) -> *mut Guard {
    let Some(cpu) = per_cpu(this_cpu_id()) else {
        return core::ptr::null_mut();
    };
    if lock.is_null() || (lock as usize) % core::mem::align_of::<u32>() != 0 {
        // An atomic access to a misaligned word is undefined behaviour in
        // Rust, a split-lock trap on x86 and a fault on arm64.
        cpu.last_error()
            .store(kernel::error::code::EINVAL.to_errno(), Ordering::Relaxed);
        return core::ptr::null_mut();
    }
    // Preemption stays off while the lock is held: a holder that is preempted
    // would make every waiter time out, and the per-CPU guard and held-locks
    // table must stay on one CPU.
    // SAFETY: balanced by `preempt_enable()` on failure or in unlock.
    unsafe { ffi::rqspin_c_preempt_disable() };
    // Re-read: we may have been migrated before preemption was disabled.
    let Some(cpu) = per_cpu(this_cpu_id()) else {
        // SAFETY: balances the `preempt_disable()` above.
        unsafe { ffi::rqspin_c_preempt_enable() };
        return core::ptr::null_mut();
    };
    let flags = if irqsave {
        // SAFETY: balanced by `irq_exit()` on failure or in unlock.
        let flags = unsafe { ffi::rqspin_c_irq_save() };
        cpu.irq_enter(flags as usize);
        flags
    } else {
        0
    };
    let fail = |err: LockError| {
        cpu.last_error().store(errno(err), Ordering::Relaxed);
        if irqsave {
            cpu.irq_exit();
        }
        // SAFETY: balances the `preempt_disable()` above.
        unsafe { ffi::rqspin_c_preempt_enable() };
        core::ptr::null_mut()
    };
    // More locks held on this CPU than there are guards: report it as a
    // deadlock, as upstream does when it runs out of queue nodes.
    let Some(slot) = cpu.claim_guard() else {
        return fail(LockError::Deadlock);
    };
    // SAFETY: `lock` is non-null, aligned and valid for the program's run
    // (see the function's safety section); Rust only accesses it atomically.
    let rq = unsafe { RqSpinLock::from_ptr(lock) };
    if let Err(err) = rq.lock::<KernelPlatform>() {
        cpu.release_guard(slot);
        return fail(err);
    }
    cpu.last_error().store(0, Ordering::Relaxed);
    let guard = cpu.guards[slot].get();
    // INVARIANT: the slot was claimed above and stays claimed until unlock,
    // so only this holder writes it.
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

/// Releases the lock a guard holds, restores interrupts if this was the
/// CPU's last irqsave guard, and frees the guard.
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
    // SAFETY: `g.lock` was checked non-null and aligned when locked, and the
    // program that holds the guard still runs, so the memory is valid.
    let rq = unsafe { RqSpinLock::from_ptr(g.lock) };
    // SAFETY: the lock was taken on this CPU (preemption has been off since)
    // and has not been released: the guard is released exactly once.
    unsafe { rq.unlock::<KernelPlatform>() };
    if let Some(cpu) = per_cpu(this_cpu_id()) {
        cpu.release_guard(g.slot as usize);
        if g.irqsave != 0 {
            cpu.irq_exit();
        }
    }
    // SAFETY: balances the `preempt_disable()` of `rqspin_rs_lock()`.
    unsafe { ffi::rqspin_c_preempt_enable() };
}

/// `bpf_rqspin_last_error()`: the last lock outcome of this CPU, in the
/// current interrupt context.
#[no_mangle]
pub extern "C" fn rqspin_rs_last_error() -> i32 {
    per_cpu(this_cpu_id()).map_or(0, |c| c.last_error().load(Ordering::Relaxed))
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

/// The module: owns the per-CPU area; registers the kfuncs on load.
struct RqSpinLockModule;

impl kernel::Module for RqSpinLockModule {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let size = core::mem::size_of::<PerCpu>();
        // SAFETY: plain allocation; returns zeroed memory or null.
        let base = unsafe { ffi::rqspin_c_alloc_percpu(size, core::mem::align_of::<PerCpu>()) };
        if base.is_null() {
            return Err(ENOMEM);
        }
        if KernelPlatform::nr_cpus() > rqspinlock::MAX_CPUS {
            // The lock word's tail cannot name every CPU.
            // SAFETY: nothing uses `base` yet.
            unsafe { ffi::rqspin_c_free_percpu(base) };
            return Err(EINVAL);
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
