/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The resilient spin lock API of Linux 6.15 and later, declared the way
 * mainline's selftests declare it (tools/testing/selftests/bpf/
 * bpf_experimental.h): weak kfunc externs, so that a program can test for
 * them with bpf_ksym_exists(). On 6.12 with this project's series the
 * kfuncs come from the bpf_rqspinlock module, and libbpf finds them in its
 * BTF, so a program written for mainline builds and runs unchanged.
 *
 * struct bpf_res_spin_lock comes from vmlinux.h in mainline programs; these
 * selftests use the UAPI headers instead, so it is defined here unless
 * vmlinux.h was included first.
 */
#ifndef __BPF_EXPERIMENTAL_H__
#define __BPF_EXPERIMENTAL_H__

#ifndef __ksym
#define __ksym __attribute__((section(".ksyms")))
#endif
#ifndef __weak
#define __weak __attribute__((weak))
#endif

#ifndef __VMLINUX_H__
/* A map value or bpf_obj_new() object may hold one; zero is unlocked. */
struct bpf_res_spin_lock {
	__u32 val;
};
#endif

/* 0 with the lock held, or -EDEADLK / -ETIMEDOUT without it. */
extern int bpf_res_spin_lock(struct bpf_res_spin_lock *lock) __ksym __weak;
extern void bpf_res_spin_unlock(struct bpf_res_spin_lock *lock) __ksym __weak;
/* As above, with local interrupts disabled while the lock is held. */
extern int bpf_res_spin_lock_irqsave(struct bpf_res_spin_lock *lock,
				     unsigned long *flags__irq_flag) __ksym __weak;
extern void bpf_res_spin_unlock_irqrestore(struct bpf_res_spin_lock *lock,
					   unsigned long *flags__irq_flag) __ksym __weak;

#endif /* __BPF_EXPERIMENTAL_H__ */
