/* SPDX-License-Identifier: GPL-2.0 */
/*
 * BPF-side declarations of the kfuncs of the bpf_rqspinlock module
 * (rust/, CONFIG_BPF_RQSPINLOCK_RS) and of the selftest module
 * bpf_rqspin_testmod (selftests/testmod/).
 *
 * Every kfunc of bpf_rqspinlock carries KF_SPIN_LOCK: it may be called while
 * a bpf_spin_lock is held (patches/0001). The test module's kfunc does not.
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

/* --- bpf_rqspinlock: the resilient queued spin lock ---------------------- */

/* Embed in a map value; zero means unlocked. */
struct bpf_rqspin_lock {
	__u32 val;
};

/* Proof that a lock is held; released only by bpf_rqspin_unlock*(). The
 * module owns it (per-CPU slots); programs may read it. Declared in full
 * because libbpf refuses a kfunc prototype whose return type is only a
 * forward declaration where the kernel's BTF has the struct.
 */
struct bpf_rqspin_guard {
	struct bpf_rqspin_lock *lock;
	unsigned long irq_flags;
	__u32 slot;
	__u32 irqsave;
};

/* KF_ACQUIRE | KF_RET_NULL | KF_SPIN_LOCK. NULL when the lock was not taken:
 * bpf_rqspin_last_error() says why (-EDEADLK or -ETIMEDOUT).
 */
extern struct bpf_rqspin_guard *bpf_rqspin_lock(struct bpf_rqspin_lock *lock) __ksym;
/* KF_RELEASE | KF_SPIN_LOCK. */
extern void bpf_rqspin_unlock(struct bpf_rqspin_guard *guard) __ksym;
/* As above, with local interrupts disabled while the lock is held. */
extern struct bpf_rqspin_guard *bpf_rqspin_lock_irqsave(struct bpf_rqspin_lock *lock) __ksym;
extern void bpf_rqspin_unlock_irqrestore(struct bpf_rqspin_guard *guard) __ksym;
/* Why this CPU's last bpf_rqspin_lock*() failed: 0, -EDEADLK or -ETIMEDOUT. */
extern int bpf_rqspin_last_error(void) __ksym;

/* --- bpf_rqspin_testmod (selftests only) --------------------------------- */

/* Returns @x + 1. Registered WITHOUT KF_SPIN_LOCK: refused under a lock. */
extern __u64 bpf_rqspin_test_unflagged(__u64 x) __ksym;

#endif /* __BPF_RQSPINLOCK_H__ */
