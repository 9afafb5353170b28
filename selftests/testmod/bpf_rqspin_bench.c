// SPDX-License-Identifier: GPL-2.0
/*
 * In-kernel lock benchmark: the resilient lock of bpf_rqspinlock, taken
 * through bpf_res_spin_lock() as BPF programs take it, against the kernel's
 * raw_spinlock_t (a qspinlock), measured side by side in one run. The loops
 * run in the kernel, so no system call sits between two lock operations (the
 * BPF benchmark of bpf-runner --bench pays one per BPF_PROG_TEST_RUN).
 *
 * Uncontended: rounds of @iters lock+unlock pairs on the CPU that loads the
 * module, the two locks alternating. Contended: one kthread bound to each
 * online CPU, all released at once by a start flag, each doing
 * @contended_iters lock, increment of a shared counter, unlock; the wall time
 * from the release to the last finisher, over all pairs, is the cost of a
 * pair in throughput. Each figure is the median of @rounds rounds, in
 * picoseconds per pair: under KVM a pair takes a few nanoseconds, and whole
 * nanoseconds would hide the difference.
 *
 * Module init runs the benchmark, prints one line "bpf_rqspin_bench: {JSON}"
 * for bpf-runner --bench to read from the kernel log, and returns 0; the
 * runner unloads the module afterwards. A failed bpf_res_spin_lock() or a
 * lost increment makes init fail with -EIO: the figures would be wrong.
 *
 * Under TCG every instruction is emulated, so only the ratios mean anything.
 * The baseline is the qspinlock inside a raw_spinlock_t, taken the way
 * raw_spin_lock() takes it without lockdep and CONFIG_DEBUG_SPINLOCK:
 * preempt_disable() + arch_spin_lock(). The resilient lock has no such
 * checks, and the test kernels enable them; "raw_lock_debug" in the line
 * says whether raw_spin_lock() itself would have paid for them here.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/atomic.h>
#include <linux/bpf.h>
#include <linux/btf.h>
#include <linux/cache.h>
#include <linux/completion.h>
#include <linux/cpu.h>
#include <linux/cpumask.h>
#include <linux/err.h>
#include <linux/init.h>
#include <linux/kthread.h>
#include <linux/math64.h>
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/preempt.h>
#include <linux/sched.h>
#include <linux/slab.h>
#include <linux/sort.h>
#include <linux/spinlock.h>
#include <linux/timekeeping.h>
#include <linux/wait.h>

#include "bpf_rqspin_kfuncs.h"

static unsigned int iters = 200000;
module_param(iters, uint, 0444);
MODULE_PARM_DESC(iters, "Uncontended lock+unlock pairs per round (200000)");

static unsigned int rounds = 5;
module_param(rounds, uint, 0444);
MODULE_PARM_DESC(rounds, "Rounds per figure; the median is reported (5)");

static unsigned int contended_iters = 20000;
module_param(contended_iters, uint, 0444);
MODULE_PARM_DESC(contended_iters,
		 "Contended lock+unlock pairs per CPU and round (20000)");

/* Bounds the time init takes and the arrays of the medians. */
#define BENCH_MAX_ROUNDS 101

#ifdef KF_RES_SPIN_LOCK_API

static int cmp_u64(const void *a, const void *b)
{
	u64 x = *(const u64 *)a;
	u64 y = *(const u64 *)b;

	return x < y ? -1 : x > y;
}

static u64 median(u64 *v, unsigned int n)
{
	sort(v, n, sizeof(*v), cmp_u64, NULL);
	return v[n / 2];
}

enum bench_lock {
	BENCH_RES,
	BENCH_RAW,
	BENCH_NR_LOCKS,
};

/* Each lock on a cache line of its own, zero (unlocked) to begin with. */
static struct bpf_res_spin_lock bench_rlock ____cacheline_aligned;
static raw_spinlock_t bench_qlock ____cacheline_aligned =
	__RAW_SPIN_LOCK_UNLOCKED(bench_qlock);

/* raw_spin_lock() and raw_spin_unlock() without the debug checks. */
static __always_inline void q_lock(void)
{
	preempt_disable();
	arch_spin_lock(&bench_qlock.raw_lock);
}

static __always_inline void q_unlock(void)
{
	arch_spin_unlock(&bench_qlock.raw_lock);
	preempt_enable();
}

/* Failed bpf_res_spin_lock() calls, over the whole run; there must be none. */
static atomic_t res_failures;

/* Uncontended: one round on this CPU; returns ps per lock+unlock pair. */
static u64 uncontended_round(enum bench_lock lock, unsigned int n)
{
	unsigned int i;
	u64 start, ns;

	/* bpf_res_spin_lock() runs with preemption off, as in a BPF program. */
	preempt_disable();
	start = ktime_get_ns();
	if (lock == BENCH_RES) {
		for (i = 0; i < n; i++) {
			if (unlikely(bpf_res_spin_lock(&bench_rlock))) {
				atomic_inc(&res_failures);
				continue;
			}
			bpf_res_spin_unlock(&bench_rlock);
		}
	} else {
		for (i = 0; i < n; i++) {
			q_lock();
			q_unlock();
		}
	}
	ns = ktime_get_ns() - start;
	preempt_enable();
	return div_u64(ns * 1000, n);
}

/* One contended round: the threads of all CPUs on one lock. */
struct bench_run {
	enum bench_lock lock;
	/* Threads that wait for @go, and those not finished yet. */
	atomic_t ready;
	atomic_t running;
	atomic_t go;
	wait_queue_head_t ready_wq;
	/* Completed by the last finisher, after it wrote @end_ns. */
	struct completion done;
	u64 end_ns;
	/* Incremented under the lock: a lost update shows a broken lock. */
	u64 counter ____cacheline_aligned;
};

static struct bench_run bench_run;

static void contended_res(struct bench_run *run)
{
	unsigned int i;

	for (i = 0; i < contended_iters; i++) {
		if (unlikely(bpf_res_spin_lock(&bench_rlock))) {
			atomic_inc(&res_failures);
			continue;
		}
		run->counter++;
		bpf_res_spin_unlock(&bench_rlock);
	}
}

static void contended_raw(struct bench_run *run)
{
	unsigned int i;

	for (i = 0; i < contended_iters; i++) {
		q_lock();
		run->counter++;
		q_unlock();
	}
}

static int bench_thread(void *arg)
{
	struct bench_run *run = arg;

	atomic_inc(&run->ready);
	wake_up(&run->ready_wq);
	/* Spin, not sleep: a wake-up would start the threads far apart. */
	while (!atomic_read_acquire(&run->go)) {
		cond_resched();
		cpu_relax();
	}
	if (run->lock == BENCH_RES)
		contended_res(run);
	else
		contended_raw(run);
	if (atomic_dec_and_test(&run->running)) {
		run->end_ns = ktime_get_ns();
		complete(&run->done);
	}
	/*
	 * Wait for kthread_stop(): the thread must not run module code once
	 * init returned, and the runner unloads the module right after.
	 */
	for (;;) {
		set_current_state(TASK_INTERRUPTIBLE);
		if (kthread_should_stop())
			break;
		schedule();
	}
	__set_current_state(TASK_RUNNING);
	return 0;
}

/*
 * Runs one contended round with a thread on each online CPU (the caller
 * holds cpus_read_lock(), @tasks has room for them all). Stores ps per pair
 * of throughput in @ps and the threads' number in @cpus.
 */
static int contended_round(enum bench_lock lock, struct task_struct **tasks,
			   unsigned int *cpus, u64 *ps)
{
	struct bench_run *run = &bench_run;
	unsigned int cpu, i, n = 0;
	u64 start, expected;
	int ret = 0;

	/* No thread of an earlier round is left: start afresh. */
	run->lock = lock;
	atomic_set(&run->ready, 0);
	atomic_set(&run->go, 0);
	init_waitqueue_head(&run->ready_wq);
	init_completion(&run->done);
	run->counter = 0;

	/* All threads exist before any runs: a failure stops them unwoken. */
	for_each_online_cpu(cpu) {
		struct task_struct *t;

		t = kthread_create_on_cpu(bench_thread, run, cpu,
					  "rqspin_bench/%u");
		if (IS_ERR(t)) {
			ret = PTR_ERR(t);
			pr_err("creating the thread of CPU %u: %d\n", cpu, ret);
			goto stop;
		}
		tasks[n++] = t;
	}
	atomic_set(&run->running, n);
	for (i = 0; i < n; i++)
		wake_up_process(tasks[i]);
	wait_event(run->ready_wq, atomic_read(&run->ready) == n);

	start = ktime_get_ns();
	atomic_set_release(&run->go, 1);
	wait_for_completion(&run->done);

	expected = (u64)n * contended_iters;
	if (run->counter != expected) {
		pr_err("%s: counter %llu after %u threads x %u pairs (%d failed locks)\n",
		       lock == BENCH_RES ? "res" : "raw", run->counter, n,
		       contended_iters, atomic_read(&res_failures));
		ret = -EIO;
		goto stop;
	}
	*ps = div64_u64((run->end_ns - start) * 1000, expected);
	*cpus = n;
stop:
	for (i = 0; i < n; i++)
		kthread_stop(tasks[i]);
	return ret;
}

/* Medians in ps per pair, indexed by enum bench_lock. */
struct bench_result {
	unsigned int cpus;
	u64 uncontended[BENCH_NR_LOCKS];
	u64 contended[BENCH_NR_LOCKS];
};

static int bench_contended(u64 *samples, struct bench_result *res)
{
	struct task_struct **tasks;
	unsigned int r, k;
	int ret = 0;

	tasks = kcalloc(nr_cpu_ids, sizeof(*tasks), GFP_KERNEL);
	if (!tasks)
		return -ENOMEM;
	/* The threads are per CPU: no CPU may come or go meanwhile. */
	cpus_read_lock();
	for (r = 0; r < rounds && !ret; r++) {
		/* Alternate which lock goes first, so that order cancels. */
		for (k = 0; k < BENCH_NR_LOCKS && !ret; k++) {
			enum bench_lock lock = (r + k) % BENCH_NR_LOCKS;

			ret = contended_round(lock, tasks, &res->cpus,
					      &samples[lock * rounds + r]);
		}
	}
	cpus_read_unlock();
	kfree(tasks);
	if (ret)
		return ret;
	for (k = 0; k < BENCH_NR_LOCKS; k++)
		res->contended[k] = median(&samples[k * rounds], rounds);
	return 0;
}

static void bench_uncontended(u64 *samples, struct bench_result *res)
{
	unsigned int r, k;

	/* Warm-up, not kept: caches, branch predictors, TCG's translations. */
	for (k = 0; k < BENCH_NR_LOCKS; k++)
		uncontended_round(k, iters / 10 + 1);
	for (r = 0; r < rounds; r++) {
		for (k = 0; k < BENCH_NR_LOCKS; k++) {
			enum bench_lock lock = (r + k) % BENCH_NR_LOCKS;

			samples[lock * rounds + r] = uncontended_round(lock, iters);
		}
		cond_resched();
	}
	for (k = 0; k < BENCH_NR_LOCKS; k++)
		res->uncontended[k] = median(&samples[k * rounds], rounds);
}

static int bench_run_all(void)
{
	struct bench_result res = {};
	int failures, ret;
	u64 *samples;

	samples = kcalloc(BENCH_NR_LOCKS * rounds, sizeof(*samples),
			  GFP_KERNEL);
	if (!samples)
		return -ENOMEM;
	atomic_set(&res_failures, 0);
	bench_uncontended(samples, &res);
	ret = bench_contended(samples, &res);
	kfree(samples);
	if (ret)
		return ret;

	failures = atomic_read(&res_failures);
	pr_info("{\"cpus\":%u,\"iters\":%u,\"rounds\":%u,\"contended_iters\":%u,\"uncontended_ps\":{\"res\":%llu,\"raw\":%llu},\"contended_ps\":{\"res\":%llu,\"raw\":%llu},\"res_failures\":%d,\"raw_lock_debug\":%s}\n",
		res.cpus, iters, rounds, contended_iters,
		res.uncontended[BENCH_RES], res.uncontended[BENCH_RAW],
		res.contended[BENCH_RES], res.contended[BENCH_RAW], failures,
		IS_ENABLED(CONFIG_LOCKDEP) || IS_ENABLED(CONFIG_DEBUG_SPINLOCK) ?
		"true" : "false");
	if (failures) {
		pr_err("bpf_res_spin_lock() failed %d times\n", failures);
		return -EIO;
	}
	return 0;
}

#else /* !KF_RES_SPIN_LOCK_API */

/* A kernel without the series (NOPATCHES=1) has no resilient lock. */
static int bench_run_all(void)
{
	pr_err("this kernel has no struct bpf_res_spin_lock: nothing to measure\n");
	return -EOPNOTSUPP;
}

#endif /* KF_RES_SPIN_LOCK_API */

static int __init bpf_rqspin_bench_init(void)
{
	if (!iters || !contended_iters || !rounds ||
	    rounds > BENCH_MAX_ROUNDS) {
		pr_err("iters and contended_iters must be > 0, rounds 1..%d\n",
		       BENCH_MAX_ROUNDS);
		return -EINVAL;
	}
	return bench_run_all();
}

/* Nothing to undo: init stopped its threads before it returned. */
static void __exit bpf_rqspin_bench_exit(void)
{
}

module_init(bpf_rqspin_bench_init);
module_exit(bpf_rqspin_bench_exit);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("BPF rqspinlock: in-kernel benchmark against raw_spinlock_t");
