/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The interface between the C and the Rust halves of bpf_rqspinlock.
 *
 * rqspin_rs_*: implemented in Rust (rqspinlock_rs.rs), called by the kfunc
 * wrappers with this CPU's per-CPU state and id (raw_cpu_ptr() and
 * raw_smp_processor_id(), inline in C). rqspin_c_*: implemented in C
 * (rqspinlock_kfuncs.c) for kernel macros and inlines that Rust cannot
 * call. The Rust side sees all of them through bindgen (this header is in
 * rust/bindings/bindings_helper.h), so the two halves cannot disagree.
 */
#ifndef _BPF_RQSPINLOCK_GLUE_H
#define _BPF_RQSPINLOCK_GLUE_H

#include <linux/compiler_types.h>
#include <linux/types.h>

/*
 * What rqspin_rs_lock() returns when it fails (0: the lock is taken). The
 * kfuncs report the first three as -EDEADLK and the last as -ETIMEDOUT, as
 * mainline does, and count each kind apart.
 */
#define RQSPIN_AA	1	/* this CPU holds or attempts the lock already */
#define RQSPIN_ABBA	2	/* another CPU holds it and waits for ours */
#define RQSPIN_BUSY	3	/* NMI or no free queue node, lock taken */
#define RQSPIN_TIMEOUT	4	/* the owner did not let go in time */
#define RQSPIN_NR_KINDS	4

/* Locks a held-locks table remembers (RES_NR_HELD, NR_HELD in Rust). */
#define RQSPIN_NR_HELD	31

int rqspin_rs_lock(u32 *lock, void *this_cpu, unsigned int cpu);
void rqspin_rs_unlock(u32 *lock, void *this_cpu, unsigned int cpu);
u64 rqspin_rs_stat_add(void *this_cpu, u32 slot, u64 delta);
u64 rqspin_rs_stat_sum(u32 slot);
u32 rqspin_rs_held(void *this_cpu, unsigned long *locks, u32 max);

int rqspin_c_register_kfuncs(void);
int rqspin_c_cpu(void);
unsigned int rqspin_c_nr_cpu_ids(void);
int rqspin_c_percpu_init(size_t size, size_t align);
void rqspin_c_percpu_free(void);
void *rqspin_c_per_cpu_ptr(unsigned int cpu);
u64 rqspin_c_clock_ns(void);
void rqspin_c_cpu_relax(void);
bool rqspin_c_in_nmi(void);

#endif /* _BPF_RQSPINLOCK_GLUE_H */
