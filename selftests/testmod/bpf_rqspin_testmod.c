// SPDX-License-Identifier: GPL-2.0
/*
 * Test-only module for the selftests.
 *
 * bpf_kfunc_call_test4() is registered WITHOUT KF_SPIN_LOCK. The
 * selftests use it to check that the verifier still refuses unflagged module
 * kfuncs inside a bpf_spin_lock-ed region, while accepting the flagged ones
 * of bpf_rqspinlock, and that the kfunc itself works outside the region. It
 * stands in for the kfunc of that name of the kernel's bpf_testmod
 * (tools/testing/selftests/bpf/bpf_testmod/), with its prototype and result:
 * the kernel's test_progs runs the same programs (kf_spin_lock.c,
 * res_spin_lock.c) with bpf_testmod loaded, our runner with this module.
 *
 * bpf_rqspin_test_irqs_disabled() carries KF_SPIN_LOCK so that a program can
 * ask inside a critical section whether interrupts are off there, which is
 * what bpf_res_spin_lock_irqsave() promises and no BPF instruction can see.
 */
#include <linux/bpf.h>
#include <linux/btf.h>
#include <linux/btf_ids.h>
#include <linux/init.h>
#include <linux/irqflags.h>
#include <linux/module.h>

/* A kernel without the series has no KF_SPIN_LOCK: register it plain. */
#ifndef KF_SPIN_LOCK
#define KF_SPIN_LOCK 0
#endif

__bpf_kfunc_start_defs();

/* As bpf_testmod's: the sum lets a test tell a real call from an untouched
 * register.
 */
__bpf_kfunc long bpf_kfunc_call_test4(signed char a, short b, int c, long d)
{
	return (long)a + (long)b + (long)c + d;
}

/* 1 if interrupts are disabled on this CPU, else 0. */
__bpf_kfunc u32 bpf_rqspin_test_irqs_disabled(void)
{
	return irqs_disabled() ? 1 : 0;
}

__bpf_kfunc_end_defs();

/* No KF_SPIN_LOCK on purpose: this is the negative control. */
BTF_KFUNCS_START(bpf_rqspin_testmod_kfunc_ids)
BTF_ID_FLAGS(func, bpf_kfunc_call_test4)
BTF_ID_FLAGS(func, bpf_rqspin_test_irqs_disabled, KF_SPIN_LOCK)
BTF_KFUNCS_END(bpf_rqspin_testmod_kfunc_ids)

static const struct btf_kfunc_id_set bpf_rqspin_testmod_kfunc_set = {
	.owner = THIS_MODULE,
	.set = &bpf_rqspin_testmod_kfunc_ids,
};

static int __init bpf_rqspin_testmod_init(void)
{
	int ret;

	ret = register_btf_kfunc_id_set(BPF_PROG_TYPE_SCHED_CLS,
					&bpf_rqspin_testmod_kfunc_set);
	ret = ret ?: register_btf_kfunc_id_set(BPF_PROG_TYPE_XDP,
					       &bpf_rqspin_testmod_kfunc_set);
	ret = ret ?: register_btf_kfunc_id_set(BPF_PROG_TYPE_SYSCALL,
					       &bpf_rqspin_testmod_kfunc_set);
	if (ret)
		pr_err("bpf_rqspin_testmod: kfunc registration failed: %d\n",
		       ret);
	return ret;
}

/*
 * Nothing to undo: the kfunc sets belong to this module's BTF, which the BPF
 * core drops when the module goes away.
 */
static void __exit bpf_rqspin_testmod_exit(void)
{
}

module_init(bpf_rqspin_testmod_init);
module_exit(bpf_rqspin_testmod_exit);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("BPF rqspinlock selftests: test-only kfuncs");
