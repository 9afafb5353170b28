// SPDX-License-Identifier: GPL-2.0

//! bpf_rqspinlock: the resilient queued spin lock behind the
//! `bpf_res_spin_lock()` kfuncs, and small kfuncs that are safe to call while
//! a lock is held.
//!
//! The lock algorithm lives in [`rqspinlock`] and knows nothing of the
//! kernel; this file gives it a [`Platform`] (per-CPU memory from
//! `alloc_percpu()`, `ktime_get_mono_fast_ns()`, `cpu_relax()`) and
//! implements the Rust half of the kfuncs, which `rqspinlock_kfuncs.c`
//! exposes to BPF (Rust functions get no BTF on 6.12, so the kfunc symbols
//! must be C).
//!
//! The kfuncs are mainline's: `bpf_res_spin_lock()` returns 0 or the error,
//! and the verifier (patched to know `struct bpf_res_spin_lock` and the
//! kfuncs, `KF_RES_SPIN_LOCK_API`) makes every program test the result,
//! release each lock it took exactly once, in reverse order, and never write
//! the lock word. The C wrappers disable preemption (and interrupts for the
//! irqsave variants) around the calls into this file.

use core::ffi::{c_int, c_void};
use core::sync::atomic::{AtomicPtr, AtomicU64, Ordering};

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
    use core::ffi::{c_int, c_uint, c_void};

    extern "C" {
        pub(crate) fn rqspin_c_register_kfuncs() -> c_int;
        pub(crate) fn rqspin_c_cpu() -> c_int;
        pub(crate) fn rqspin_c_nr_cpu_ids() -> c_uint;
        pub(crate) fn rqspin_c_cpu_possible(cpu: c_uint) -> bool;
        pub(crate) fn rqspin_c_alloc_percpu(size: usize, align: usize) -> *mut c_void;
        pub(crate) fn rqspin_c_free_percpu(ptr: *mut c_void);
        pub(crate) fn rqspin_c_per_cpu_ptr(ptr: *mut c_void, cpu: c_uint) -> *mut c_void;
        pub(crate) fn rqspin_c_clock_ns() -> u64;
        pub(crate) fn rqspin_c_cpu_relax();
        pub(crate) fn rqspin_c_in_nmi() -> bool;
    }
}

/// Statistics slots per CPU for `bpf_rqspin_stat_add()`.
const NR_STATS: usize = 16;

/// Everything this module keeps per CPU.
///
/// # Invariants
///
/// All-zero bytes are a valid value (what `alloc_percpu()` returns), and all
/// shared mutation goes through atomics.
#[repr(C)]
struct PerCpu {
    lock: CpuState,
    stats: [AtomicU64; NR_STATS],
}

/// Base of the per-CPU [`PerCpu`] area; set once in init before the kfuncs
/// are registered, freed in drop after the last user is gone.
static PERCPU: AtomicPtr<c_void> = AtomicPtr::new(core::ptr::null_mut());

/// The [`PerCpu`] of `cpu`, or `None` for an id that is not a possible CPU.
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
    // reference on the module); all-zero is a valid `PerCpu` and all shared
    // mutation goes through atomics (type invariant).
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

/// The errno a failed attempt reports, from the kernel's own headers.
fn errno(err: LockError) -> c_int {
    let code = match err {
        LockError::Deadlock => kernel::bindings::EDEADLK,
        LockError::Timeout => kernel::bindings::ETIMEDOUT,
    };
    -(code as c_int)
}

/// `bpf_res_spin_lock()` and its irqsave variant, without the preemption
/// and interrupt handling the C wrappers do: takes the lock, or returns
/// `-EDEADLK` or `-ETIMEDOUT` without it.
///
/// # Safety
///
/// - `lock` points to the `val` of a `struct bpf_res_spin_lock` that stays
///   valid while the calling program runs: the verifier passes only the lock
///   field of a map value or allocated object, which is 4-byte aligned
///   (`btf_field_type_align()`), and the program keeps a reference on it.
/// - Only this module writes the word: the verifier rejects direct loads and
///   stores to the field, and the map code never copies over it.
/// - Preemption is disabled until the matching [`rqspin_rs_unlock`], or
///   until this returns an error.
#[no_mangle]
pub unsafe extern "C" fn rqspin_rs_lock(lock: *mut u32) -> c_int {
    // SAFETY: `lock` is aligned, valid for the program's run and written only
    // through this type (see the function's safety section).
    let rq = unsafe { RqSpinLock::from_ptr(lock) };
    match rq.lock::<KernelPlatform>() {
        Ok(()) => 0,
        Err(err) => errno(err),
    }
}

/// `bpf_res_spin_unlock()` and its irqrestore variant, without the
/// preemption and interrupt handling.
///
/// # Safety
///
/// The calling context holds `lock`, taken by [`rqspin_rs_lock`] on this CPU
/// (preemption has been disabled since), and has not released it: the
/// verifier allows an unlock only of the last lock the program took and
/// still holds.
#[no_mangle]
pub unsafe extern "C" fn rqspin_rs_unlock(lock: *mut u32) {
    // SAFETY: as for `rqspin_rs_lock()`, `lock` is a valid, aligned lock
    // word that only this module writes.
    let rq = unsafe { RqSpinLock::from_ptr(lock) };
    // SAFETY: this context holds the lock (see the function's safety
    // section).
    unsafe { rq.unlock::<KernelPlatform>() };
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

/// The module: owns the per-CPU area; registers the kfuncs on load.
struct RqSpinLockModule;

impl kernel::Module for RqSpinLockModule {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        if KernelPlatform::nr_cpus() > rqspinlock::MAX_CPUS {
            // The lock word's tail cannot name every CPU.
            return Err(EINVAL);
        }
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
