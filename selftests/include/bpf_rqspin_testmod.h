/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Kfuncs of this project's test module bpf_rqspin_testmod
 * (selftests/testmod/) that only the runtime tests use. Not part of the
 * kernel's selftests (the verifier tests there run without this module), so
 * not in the series either.
 *
 * The module also provides bpf_kfunc_call_test4(), a stand-in for
 * bpf_testmod's kfunc of that name (declared in bpf_rqspinlock.h), which the
 * kernel's test_progs has loaded and our runner does not.
 *
 * Include after <linux/bpf.h> and <bpf/bpf_helpers.h>.
 */
#ifndef __BPF_RQSPIN_TESTMOD_H__
#define __BPF_RQSPIN_TESTMOD_H__

/* 1 if interrupts are off on this CPU, else 0. KF_SPIN_LOCK: callable in a
 * critical section, to show what the irqsave variants do there.
 */
__u32 bpf_rqspin_test_irqs_disabled(void) __ksym;

#endif /* __BPF_RQSPIN_TESTMOD_H__ */
