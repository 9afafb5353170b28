/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The kfuncs of the bpf_rqspinlock module (CONFIG_BPF_RQSPINLOCK_RS) besides
 * the lock itself, whose API is mainline's (bpf_res_spin_lock.h): small
 * helpers for critical sections. Each carries KF_SPIN_LOCK: it may be called
 * while a bpf_spin_lock or a bpf_res_spin_lock is held.
 *
 * Also the unflagged module kfunc the tests call under a lock to see it
 * refused: bpf_kfunc_call_test4() of bpf_testmod, declared here because
 * bpf_testmod_kfunc.h needs vmlinux.h and these programs use <linux/bpf.h>.
 *
 * Include after <linux/bpf.h> and <bpf/bpf_helpers.h>.
 */
#ifndef __BPF_RQSPINLOCK_H__
#define __BPF_RQSPINLOCK_H__

/* CLOCK_MONOTONIC in ns, NMI-safe (ktime_get_mono_fast_ns()). */
__ksym __u64 bpf_rqspin_ktime_get_ns(void);

/* Adds @delta to per-CPU statistics slot @slot (slots 0..15; others are
 * ignored) and returns the new value of this CPU's slot.
 */
__ksym __u64 bpf_rqspin_stat_add(__u32 slot, __u64 delta);

/* Sum of @slot over all possible CPUs. */
__ksym __u64 bpf_rqspin_stat_sum(__u32 slot);

/* bpf_testmod: returns a + b + c + d. No KF_SPIN_LOCK: refused under a lock. */
__ksym long bpf_kfunc_call_test4(signed char a, short b, int c, long d);

#endif /* __BPF_RQSPINLOCK_H__ */
