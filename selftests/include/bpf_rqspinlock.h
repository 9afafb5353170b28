/* SPDX-License-Identifier: GPL-2.0 */
/*
 * BPF-side declarations of this project's own kfuncs: the lock-safe helpers
 * of the bpf_rqspinlock module (rust/, CONFIG_BPF_RQSPINLOCK_RS) and the
 * kfunc of the selftest module bpf_rqspin_testmod (selftests/testmod/).
 * The lock itself has mainline's API: see bpf_experimental.h.
 *
 * Every kfunc of bpf_rqspinlock carries KF_SPIN_LOCK: it may be called while
 * a lock is held (patches/). Of the test module's kfuncs only
 * bpf_rqspin_test_irqs_disabled() does.
 */
#ifndef __BPF_RQSPINLOCK_H__
#define __BPF_RQSPINLOCK_H__

#ifndef __ksym
#define __ksym __attribute__((section(".ksyms")))
#endif

/* --- bpf_rqspinlock: lock-safe helpers for critical sections ------------- */

/* CLOCK_MONOTONIC in ns, NMI-safe (ktime_get_mono_fast_ns()). */
extern __u64 bpf_rqspin_ktime_get_ns(void) __ksym;

/* Adds @delta to per-CPU statistics slot @slot (slots 0..15; others are
 * ignored) and returns the new value of this CPU's slot.
 */
extern __u64 bpf_rqspin_stat_add(__u32 slot, __u64 delta) __ksym;

/* Sum of @slot over all possible CPUs. */
extern __u64 bpf_rqspin_stat_sum(__u32 slot) __ksym;

/* --- bpf_rqspin_testmod (selftests only) --------------------------------- */

/* Returns @x + 1. Registered WITHOUT KF_SPIN_LOCK: refused under a lock. */
extern __u64 bpf_rqspin_test_unflagged(__u64 x) __ksym;

/* 1 if interrupts are off on this CPU, else 0. KF_SPIN_LOCK: callable in a
 * critical section, to show what the irqsave variants do there.
 */
extern __u32 bpf_rqspin_test_irqs_disabled(void) __ksym;

#endif /* __BPF_RQSPINLOCK_H__ */
