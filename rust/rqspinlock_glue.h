/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The interface between the C and the Rust halves of bpf_rqspinlock.
 *
 * rqspin_rs_*: implemented in Rust (rqspinlock_rs.rs), called by the kfunc
 * wrappers. rqspin_c_*: implemented in C (rqspinlock_kfuncs.c) for kernel
 * macros and inlines that Rust cannot call, declared again on the Rust side
 * in its `ffi` module.
 */
#ifndef _BPF_RQSPINLOCK_GLUE_H
#define _BPF_RQSPINLOCK_GLUE_H

#include <linux/compiler_types.h>
#include <linux/types.h>

int rqspin_rs_lock(u32 *lock);
void rqspin_rs_unlock(u32 *lock);
u64 rqspin_rs_stat_add(u32 slot, u64 delta);
u64 rqspin_rs_stat_sum(u32 slot);

int rqspin_c_register_kfuncs(void);
int rqspin_c_cpu(void);
unsigned int rqspin_c_nr_cpu_ids(void);
bool rqspin_c_cpu_possible(unsigned int cpu);
void __percpu *rqspin_c_alloc_percpu(size_t size, size_t align);
void rqspin_c_free_percpu(void __percpu *ptr);
void *rqspin_c_per_cpu_ptr(void __percpu *ptr, unsigned int cpu);
u64 rqspin_c_clock_ns(void);
void rqspin_c_cpu_relax(void);
bool rqspin_c_in_nmi(void);

#endif /* _BPF_RQSPINLOCK_GLUE_H */
