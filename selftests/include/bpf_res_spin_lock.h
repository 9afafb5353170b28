/* SPDX-License-Identifier: GPL-2.0 */
/*
 * struct bpf_res_spin_lock and the resilient spin lock kfuncs, declared the
 * way mainline's bpf_experimental.h declares them: weak kfunc externs, so
 * that a program can test for them with bpf_ksym_exists().
 *
 * For programs built on the UAPI <linux/bpf.h>, as the verifier_*.c tests
 * are, rather than on vmlinux.h: bpf_experimental.h includes vmlinux.h,
 * whose types clash with the UAPI header's. struct bpf_res_spin_lock is not
 * UAPI (include/linux/bpf.h defines it), so it is defined here. Staying on
 * the UAPI header keeps these programs independent of the BTF of the kernel
 * they are built against: a kernel without struct bpf_res_spin_lock has a
 * vmlinux.h without it, and the preprocessor cannot test for a struct.
 *
 * Include after <linux/bpf.h> and <bpf/bpf_helpers.h>.
 */
#ifndef __BPF_RES_SPIN_LOCK_H__
#define __BPF_RES_SPIN_LOCK_H__

#ifndef __VMLINUX_H__
/* A map value or bpf_obj_new() object may hold one; zero is unlocked. */
struct bpf_res_spin_lock {
	__u32 val;
};
#endif

/* 0 with the lock held, or -EDEADLK / -ETIMEDOUT without it. */
int bpf_res_spin_lock(struct bpf_res_spin_lock *lock) __ksym __weak;
void bpf_res_spin_unlock(struct bpf_res_spin_lock *lock) __ksym __weak;
/* As above, with local interrupts disabled while the lock is held. */
int bpf_res_spin_lock_irqsave(struct bpf_res_spin_lock *lock,
			      unsigned long *flags__irq_flag) __ksym __weak;
void bpf_res_spin_unlock_irqrestore(struct bpf_res_spin_lock *lock,
				    unsigned long *flags__irq_flag) __ksym __weak;

#endif /* __BPF_RES_SPIN_LOCK_H__ */
