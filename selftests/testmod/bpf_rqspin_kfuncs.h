/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The lock kfuncs of bpf_rqspinlock (rust/rqspinlock_kfuncs.c), which it
 * exports for kernel test code. No kernel header declares them: in this
 * series the lock comes from a module, and only struct bpf_res_spin_lock is
 * in linux/bpf.h.
 */
#ifndef _BPF_RQSPIN_KFUNCS_H
#define _BPF_RQSPIN_KFUNCS_H

struct bpf_res_spin_lock;

int bpf_res_spin_lock(struct bpf_res_spin_lock *lock);
void bpf_res_spin_unlock(struct bpf_res_spin_lock *lock);

#endif /* _BPF_RQSPIN_KFUNCS_H */
