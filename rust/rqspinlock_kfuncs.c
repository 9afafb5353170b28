// SPDX-License-Identifier: GPL-2.0
/*
 * The BPF-facing side of bpf_rqspinlock.
 *
 * Rust compilation units get no BTF on 6.12 (pahole --lang_exclude=rust), and
 * a kfunc is found by its BTF id, so every kfunc is a C wrapper here that
 * calls into the Rust core (rqspinlock_rs.rs). This file also wraps the
 * kernel macros and inlines the Rust side needs (per-CPU access, clock).
 *
 * The lock kfuncs are mainline's (kernel/bpf/rqspinlock.c, Linux 6.15), with
 * the same names, prototypes and behaviour, registered with
 * KF_RES_SPIN_LOCK_API so that the verifier gives them mainline's rules. The
 * lock word is struct bpf_res_spin_lock of linux/bpf.h, a special BTF field
 * the verifier and the map code protect: BPF programs and user space cannot
 * write it, so the Rust core owns every write to it.
 *
 * The clock and statistics kfuncs carry KF_SPIN_LOCK: they never sleep,
 * take no lock and run in bounded time, so a program may call them while
 * it holds a lock.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/atomic.h>
#include <linux/bpf.h>
#include <linux/btf.h>
#include <linux/btf_ids.h>
#include <linux/build_bug.h>
#include <linux/errno.h>
#include <linux/hardirq.h>
#include <linux/irqflags.h>
#include <linux/minmax.h>
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/percpu.h>
#include <linux/preempt.h>
#include <linux/printk.h>
#include <linux/ratelimit.h>
#include <linux/sysfs.h>
#include <linux/timekeeping.h>

#include "rqspinlock_glue.h"

/*
 * A kernel without this series' verifier patches knows neither struct
 * bpf_res_spin_lock nor KF_RES_SPIN_LOCK_API. Its verifier does not know
 * the rules of the lock kfuncs, so they are left out there: a program could
 * otherwise write the lock word, skip the result or leave a lock held. The
 * other kfuncs register without KF_SPIN_LOCK, and such a verifier refuses
 * them under a lock, as it refuses every module kfunc there (NOPATCHES=1
 * builds show that).
 */
#ifndef KF_SPIN_LOCK
#define KF_SPIN_LOCK 0
#endif

/*
 * The Rust core's per-CPU state (MCS nodes, held-locks table, statistics),
 * allocated by rqspin_c_percpu_init() from the Rust module's init. The lock
 * kfuncs hand this CPU's copy and id to the Rust core, so that its fast path
 * makes no further call. They run with preemption disabled, so raw_cpu_ptr()
 * is right, and unlike this_cpu_ptr() it is never a call (CONFIG_DEBUG_PREEMPT
 * checks through debug_smp_processor_id()).
 */
static void __percpu *rqspin_percpu;

/* Failed acquisitions since boot (or load), per kind (RQSPIN_*). */
static atomic_long_t rqspin_violations[RQSPIN_NR_KINDS];

static const char *const rqspin_kind_names[RQSPIN_NR_KINDS] = {
	"AA deadlock", "ABBA deadlock", "busy (NMI or no queue node)", "timeout",
};

/*
 * /sys/module/bpf_rqspinlock/parameters/violations, read-only: one line per
 * kind, "<kind> <count>", in RQSPIN_* order.
 */
static int rqspin_violations_get(char *buf, const struct kernel_param *kp)
{
	static const char *const keys[RQSPIN_NR_KINDS] = {
		"aa", "abba", "busy", "timeout",
	};
	int i, len = 0;

	for (i = 0; i < RQSPIN_NR_KINDS; i++)
		len += sysfs_emit_at(buf, len, "%s %ld\n", keys[i],
				     atomic_long_read(&rqspin_violations[i]));
	return len;
}

static const struct kernel_param_ops rqspin_violations_ops = {
	.get = rqspin_violations_get,
};
module_param_cb(violations, &rqspin_violations_ops, NULL, 0444);
MODULE_PARM_DESC(violations, "failed lock acquisitions per kind (read-only)");

/* Ten reports per five seconds, whatever floods them. */
static DEFINE_RATELIMIT_STATE(rqspin_report_rs, 5 * HZ, 10);

/*
 * Counts a failed acquisition and reports it: which kind, the lock, the
 * program (its JIT symbol, bpf_prog_<tag>_<name>, from the kfunc's return
 * address) and the locks this CPU holds, as mainline prints them to the
 * program's stderr stream since 6.17 (6.12 has no such stream). Addresses
 * are hashed (%p) like every kernel pointer in the log; the lock's hash
 * matches its entry in the held list.
 */
static noinline void rqspin_report(void *lock, int kind, bool irqsave,
				   void *local, void *caller)
{
	unsigned long held[RQSPIN_NR_HELD];
	char list[RQSPIN_NR_HELD * 19 + 1];
	u32 cnt, i, shown;
	int len = 0;

	if (WARN_ON_ONCE(kind < 1 || kind > RQSPIN_NR_KINDS))
		return;
	atomic_long_inc(&rqspin_violations[kind - 1]);
	if (!__ratelimit(&rqspin_report_rs))
		return;
	cnt = rqspin_rs_held(local, held, ARRAY_SIZE(held));
	shown = min_t(u32, cnt, ARRAY_SIZE(held));
	list[0] = '\0';
	for (i = 0; i < shown; i++)
		len += scnprintf(list + len, sizeof(list) - len, " %p",
				 (void *)held[i]);
	pr_warn("%s for bpf_res_spin_lock%s, lock %p, prog %pS, CPU %d holds %u:%s\n",
		rqspin_kind_names[kind - 1], irqsave ? "_irqsave" : "", lock,
		caller, raw_smp_processor_id(), cnt, list);
}

/* The errno a failed acquisition of @kind returns, as mainline's. */
static int rqspin_errno(int kind)
{
	return kind == RQSPIN_TIMEOUT ? -ETIMEDOUT : -EDEADLK;
}

__bpf_kfunc_start_defs();

#ifdef KF_RES_SPIN_LOCK_API

/**
 * bpf_res_spin_lock() - take a resilient queued spin lock
 * @lock: the lock, a field of a map value or of a bpf_obj_new() object
 *
 * Preemption stays disabled while the lock is held: a holder that is
 * preempted would make every waiter time out, and the per-CPU held-locks
 * table must stay on one CPU.
 *
 * Return: 0 with the lock held; -EDEADLK on an AA or ABBA deadlock, or
 * -ETIMEDOUT when the lock was not released in time, without the lock.
 */
__bpf_kfunc int bpf_res_spin_lock(struct bpf_res_spin_lock *lock)
{
	void *local;
	int ret;

	preempt_disable();
	local = raw_cpu_ptr(rqspin_percpu);
	ret = rqspin_rs_lock(&lock->val, local, raw_smp_processor_id());
	if (unlikely(ret)) {
		rqspin_report(lock, ret, false, local,
			      __builtin_return_address(0));
		preempt_enable();
		return rqspin_errno(ret);
	}
	return 0;
}

/* Kernel test and benchmark modules take the lock as BPF programs do. */
EXPORT_SYMBOL_GPL(bpf_res_spin_lock);

/**
 * bpf_res_spin_unlock() - release a lock taken by bpf_res_spin_lock()
 * @lock: the lock
 */
__bpf_kfunc void bpf_res_spin_unlock(struct bpf_res_spin_lock *lock)
{
	rqspin_rs_unlock(&lock->val, raw_cpu_ptr(rqspin_percpu),
			 raw_smp_processor_id());
	preempt_enable();
}

/* As bpf_res_spin_lock(): for kernel test and benchmark modules. */
EXPORT_SYMBOL_GPL(bpf_res_spin_unlock);

/**
 * bpf_res_spin_lock_irqsave() - take the lock with local interrupts disabled
 * @lock: the lock
 * @flags__irq_flag: where to save the interrupt state, on the program's stack
 *
 * Return: as bpf_res_spin_lock(). On failure interrupts are restored and
 * @flags__irq_flag is not written.
 */
__bpf_kfunc int bpf_res_spin_lock_irqsave(struct bpf_res_spin_lock *lock,
					  unsigned long *flags__irq_flag)
{
	unsigned long flags;
	void *local;
	int ret;

	preempt_disable();
	local_irq_save(flags);
	local = raw_cpu_ptr(rqspin_percpu);
	ret = rqspin_rs_lock(&lock->val, local, raw_smp_processor_id());
	if (unlikely(ret)) {
		rqspin_report(lock, ret, true, local,
			      __builtin_return_address(0));
		local_irq_restore(flags);
		preempt_enable();
		return rqspin_errno(ret);
	}
	*flags__irq_flag = flags;
	return 0;
}

/**
 * bpf_res_spin_unlock_irqrestore() - release a lock taken with irqsave
 * @lock: the lock
 * @flags__irq_flag: the state bpf_res_spin_lock_irqsave() saved for it
 *
 * The verifier allows only the flags saved by this lock's irqsave here, and
 * only once the locks taken after it are released.
 */
__bpf_kfunc void bpf_res_spin_unlock_irqrestore(struct bpf_res_spin_lock *lock,
						unsigned long *flags__irq_flag)
{
	rqspin_rs_unlock(&lock->val, raw_cpu_ptr(rqspin_percpu),
			 raw_smp_processor_id());
	local_irq_restore(*flags__irq_flag);
	preempt_enable();
}

#endif /* KF_RES_SPIN_LOCK_API */

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
	return ktime_get_mono_fast_ns();
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
	return rqspin_rs_stat_add(raw_cpu_ptr(rqspin_percpu), slot, delta);
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

__bpf_kfunc_end_defs();

BTF_KFUNCS_START(rqspin_kfunc_ids)
#ifdef KF_RES_SPIN_LOCK_API
BTF_ID_FLAGS(func, bpf_res_spin_lock, KF_RES_SPIN_LOCK_API)
BTF_ID_FLAGS(func, bpf_res_spin_unlock, KF_RES_SPIN_LOCK_API)
BTF_ID_FLAGS(func, bpf_res_spin_lock_irqsave, KF_RES_SPIN_LOCK_API)
BTF_ID_FLAGS(func, bpf_res_spin_unlock_irqrestore, KF_RES_SPIN_LOCK_API)
#endif
BTF_ID_FLAGS(func, bpf_rqspin_ktime_get_ns, KF_SPIN_LOCK)
BTF_ID_FLAGS(func, bpf_rqspin_stat_add, KF_SPIN_LOCK)
BTF_ID_FLAGS(func, bpf_rqspin_stat_sum, KF_SPIN_LOCK)
BTF_KFUNCS_END(rqspin_kfunc_ids)

/*
 * Every program type, as in mainline: the verifier decides where the lock
 * may be used (the map types that may hold it, and no socket filter or
 * tracing program may use such a map).
 */
static const struct btf_kfunc_id_set rqspin_kfunc_set = {
	.owner = THIS_MODULE,
	.set = &rqspin_kfunc_ids,
};

/* Called from the Rust module's init. */
int rqspin_c_register_kfuncs(void)
{
#ifdef KF_RES_SPIN_LOCK_API
	/* The Rust core treats the field as its lock word (RqSpinLock). */
	BUILD_BUG_ON(sizeof(struct bpf_res_spin_lock) != sizeof(u32));
	BUILD_BUG_ON(__alignof__(struct bpf_res_spin_lock) != __alignof__(u32));
#endif

	return register_btf_kfunc_id_set(BPF_PROG_TYPE_UNSPEC, &rqspin_kfunc_set);
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

int rqspin_c_percpu_init(size_t size, size_t align)
{
	rqspin_percpu = __alloc_percpu(size, align);
	return rqspin_percpu ? 0 : -ENOMEM;
}

void rqspin_c_percpu_free(void)
{
	free_percpu(rqspin_percpu);
	rqspin_percpu = NULL;
}

void *rqspin_c_per_cpu_ptr(unsigned int cpu)
{
	if (!rqspin_percpu || cpu >= nr_cpu_ids || !cpu_possible(cpu))
		return NULL;
	return per_cpu_ptr(rqspin_percpu, cpu);
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
