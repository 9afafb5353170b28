// SPDX-License-Identifier: GPL-2.0
/*
 * The BPF-facing side of bpf_rqspinlock.
 *
 * Rust compilation units get no BTF on 6.12 (pahole --lang_exclude=rust), and
 * a kfunc is found by its BTF id, so every kfunc is a C wrapper here that
 * calls into the Rust core (rqspinlock_rs.rs). The types BPF programs see
 * are defined here for the same reason. This file also wraps the kernel
 * macros and inlines the Rust side needs (per-CPU access, preemption, IRQs).
 *
 * Every kfunc here carries KF_SPIN_LOCK: none sleeps, none takes a lock
 * other than the resilient lock (which cannot deadlock: it fails instead),
 * and each runs in bounded time.
 */
#include <linux/bpf.h>
#include <linux/btf.h>
#include <linux/btf_ids.h>
#include <linux/build_bug.h>
#include <linux/hardirq.h>
#include <linux/module.h>
#include <linux/percpu.h>
#include <linux/preempt.h>
#include <linux/irqflags.h>
#include <linux/timekeeping.h>

#include "rqspinlock_glue.h"

/*
 * A kernel without "bpf: Add KF_SPIN_LOCK flag for kfuncs under
 * bpf_spin_lock" has no such flag: the kfuncs then register without it, and
 * its verifier refuses them under a lock (as it refuses every module kfunc
 * there). The selftests run once that way to show the difference.
 */
#ifndef KF_SPIN_LOCK
#define KF_SPIN_LOCK 0
#endif

/* The lock word, embedded in a map value; zero means unlocked. */
struct bpf_rqspin_lock {
	u32 val;
};

/*
 * Proof that a lock is held. The verifier tracks it as an acquired
 * reference, so every path must release it exactly once. The Rust core owns
 * these (per-CPU slots); BPF programs may read but not write them.
 */
struct bpf_rqspin_guard {
	struct bpf_rqspin_lock *lock;
	/* Saved by this attempt; the outermost irqsave guard restores. */
	unsigned long irq_flags;
	u32 slot;
	u32 irqsave;
};

__bpf_kfunc_start_defs();

/**
 * bpf_rqspin_ktime_get_ns() - CLOCK_MONOTONIC in ns, callable under a lock
 *
 * NMI-safe (ktime_get_mono_fast_ns()), so a program can time its own
 * critical section; bpf_ktime_get_ns() is a helper and refused there.
 *
 * Return: nanoseconds since boot.
 */
__bpf_kfunc u64 bpf_rqspin_ktime_get_ns(void)
{
	return rqspin_rs_ktime_get_ns();
}

/**
 * bpf_rqspin_stat_add() - add to a per-CPU statistics slot
 * @slot: slot number, 0..15; others are ignored
 * @delta: value to add
 *
 * Return: the new value of this CPU's slot (0 for an invalid slot).
 */
__bpf_kfunc u64 bpf_rqspin_stat_add(u32 slot, u64 delta)
{
	return rqspin_rs_stat_add(slot, delta);
}

/**
 * bpf_rqspin_stat_sum() - sum of a statistics slot over all CPUs
 * @slot: slot number, 0..15
 *
 * Return: the sum (0 for an invalid slot).
 */
__bpf_kfunc u64 bpf_rqspin_stat_sum(u32 slot)
{
	return rqspin_rs_stat_sum(slot);
}

/**
 * bpf_rqspin_lock() - take a resilient queued spin lock
 * @lock: the lock word, in a map value
 *
 * Disables preemption while the lock is held.
 *
 * Return: a guard to pass to bpf_rqspin_unlock(), or NULL if the lock was
 * not taken: bpf_rqspin_last_error() then says -EDEADLK or -ETIMEDOUT.
 */
__bpf_kfunc struct bpf_rqspin_guard *bpf_rqspin_lock(struct bpf_rqspin_lock *lock)
{
	return rqspin_rs_lock(lock, false);
}

/**
 * bpf_rqspin_lock_irqsave() - take the lock with local interrupts disabled
 * @lock: the lock word, in a map value
 *
 * Return: as bpf_rqspin_lock().
 */
__bpf_kfunc struct bpf_rqspin_guard *bpf_rqspin_lock_irqsave(struct bpf_rqspin_lock *lock)
{
	return rqspin_rs_lock(lock, true);
}

/**
 * bpf_rqspin_unlock() - release a lock taken by bpf_rqspin_lock*()
 * @guard: the guard bpf_rqspin_lock*() returned
 *
 * Restores interrupts if the guard came from bpf_rqspin_lock_irqsave().
 */
__bpf_kfunc void bpf_rqspin_unlock(struct bpf_rqspin_guard *guard)
{
	rqspin_rs_unlock(guard);
}

/**
 * bpf_rqspin_unlock_irqrestore() - release a lock taken with irqsave
 * @guard: the guard bpf_rqspin_lock_irqsave() returned
 */
__bpf_kfunc void bpf_rqspin_unlock_irqrestore(struct bpf_rqspin_guard *guard)
{
	rqspin_rs_unlock(guard);
}

/**
 * bpf_rqspin_last_error() - why this CPU's last lock attempt failed
 *
 * Kept per interrupt context level, so a program in an interrupt that takes a
 * lock does not overwrite the reason of the context it interrupted.
 *
 * Return: 0, -EDEADLK, -ETIMEDOUT, or -EINVAL for a misaligned lock word.
 */
__bpf_kfunc int bpf_rqspin_last_error(void)
{
	return rqspin_rs_last_error();
}

__bpf_kfunc_end_defs();

BTF_KFUNCS_START(rqspin_kfunc_ids)
BTF_ID_FLAGS(func, bpf_rqspin_ktime_get_ns, KF_SPIN_LOCK)
BTF_ID_FLAGS(func, bpf_rqspin_stat_add, KF_SPIN_LOCK)
BTF_ID_FLAGS(func, bpf_rqspin_stat_sum, KF_SPIN_LOCK)
/*
 * KF_TRUSTED_ARGS on the lock kfuncs: the lock argument is checked as plain
 * memory, where the verifier would otherwise accept NULL and maybe-NULL map
 * value pointers. Alignment it does not check; the Rust side refuses a
 * misaligned word with -EINVAL.
 */
BTF_ID_FLAGS(func, bpf_rqspin_lock, KF_ACQUIRE | KF_RET_NULL | KF_TRUSTED_ARGS | KF_SPIN_LOCK)
BTF_ID_FLAGS(func, bpf_rqspin_lock_irqsave,
	     KF_ACQUIRE | KF_RET_NULL | KF_TRUSTED_ARGS | KF_SPIN_LOCK)
BTF_ID_FLAGS(func, bpf_rqspin_unlock, KF_RELEASE | KF_SPIN_LOCK)
BTF_ID_FLAGS(func, bpf_rqspin_unlock_irqrestore, KF_RELEASE | KF_SPIN_LOCK)
BTF_ID_FLAGS(func, bpf_rqspin_last_error, KF_SPIN_LOCK)
BTF_KFUNCS_END(rqspin_kfunc_ids)

/* Program types that can take a bpf_spin_lock on 6.12. */
static const enum bpf_prog_type rqspin_prog_types[] = {
	BPF_PROG_TYPE_SCHED_CLS,
	BPF_PROG_TYPE_SCHED_ACT,
	BPF_PROG_TYPE_XDP,
	BPF_PROG_TYPE_CGROUP_SKB,
	BPF_PROG_TYPE_TRACING,
	BPF_PROG_TYPE_SYSCALL,
	BPF_PROG_TYPE_STRUCT_OPS,
};

/*
 * Refuse at load time (the verifier says "calling kernel function ... is not
 * allowed"):
 * - sleepable programs: they may be preempted and may fault, and this lock
 *   disables preemption while held;
 * - program types we did not register for but that share a registration
 *   hook with one we did (TRACING's hook also serves TRACEPOINT, PERF_EVENT
 *   and LSM; CGROUP_SKB's serves every CGROUP_* type).
 */
static int rqspin_kfunc_filter(const struct bpf_prog *prog, u32 kfunc_id)
{
	int i;

	if (!btf_id_set8_contains(&rqspin_kfunc_ids, kfunc_id))
		return 0;
	if (prog->sleepable)
		return -EACCES;
	for (i = 0; i < ARRAY_SIZE(rqspin_prog_types); i++)
		if (prog->type == rqspin_prog_types[i])
			return 0;
	return -EACCES;
}

static const struct btf_kfunc_id_set rqspin_kfunc_set = {
	.owner = THIS_MODULE,
	.set = &rqspin_kfunc_ids,
	.filter = rqspin_kfunc_filter,
};

/* Called from the Rust module's init. */
int rqspin_c_register_kfuncs(void)
{
	int i, err;

	BUILD_BUG_ON(sizeof(struct bpf_rqspin_lock) != sizeof(u32));
	/* The Rust side asserts the same layout (rqspinlock_rs.rs, Guard). */
	BUILD_BUG_ON(sizeof(struct bpf_rqspin_guard) != 24);
	BUILD_BUG_ON(offsetof(struct bpf_rqspin_guard, slot) != 16);
	if (rqspin_rs_guard_size() != sizeof(struct bpf_rqspin_guard))
		return -EINVAL;
	for (i = 0; i < ARRAY_SIZE(rqspin_prog_types); i++) {
		err = register_btf_kfunc_id_set(rqspin_prog_types[i], &rqspin_kfunc_set);
		if (err)
			return err;
	}
	return 0;
}

/* Kernel macros and inlines, for the Rust side. */

int rqspin_c_cpu(void)
{
	return raw_smp_processor_id();
}

unsigned int rqspin_c_nr_cpu_ids(void)
{
	return nr_cpu_ids;
}

bool rqspin_c_cpu_possible(unsigned int cpu)
{
	return cpu < nr_cpu_ids && cpu_possible(cpu);
}

void __percpu *rqspin_c_alloc_percpu(size_t size, size_t align)
{
	return __alloc_percpu(size, align);
}

void rqspin_c_free_percpu(void __percpu *ptr)
{
	free_percpu(ptr);
}

void *rqspin_c_per_cpu_ptr(void __percpu *ptr, unsigned int cpu)
{
	return per_cpu_ptr(ptr, cpu);
}

void rqspin_c_preempt_disable(void)
{
	preempt_disable();
}

void rqspin_c_preempt_enable(void)
{
	preempt_enable();
}

unsigned long rqspin_c_irq_save(void)
{
	unsigned long flags;

	local_irq_save(flags);
	return flags;
}

void rqspin_c_irq_restore(unsigned long flags)
{
	local_irq_restore(flags);
}

u64 rqspin_c_clock_ns(void)
{
	return ktime_get_mono_fast_ns();
}

void rqspin_c_cpu_relax(void)
{
	cpu_relax();
}

bool rqspin_c_in_nmi(void)
{
	return in_nmi();
}

unsigned int rqspin_c_ctx_level(void)
{
	return interrupt_context_level();
}
