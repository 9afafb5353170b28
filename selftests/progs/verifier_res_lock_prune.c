// SPDX-License-Identifier: GPL-2.0
/*
 * Resilient spin locks and verifier state pruning.
 *
 * The verifier keeps the bpf_res_spin_lock()s a program holds in
 * bpf_verifier_state.res_locks, in the order they were taken, each with the
 * (ptr, id) of its lock and the id of the IRQ state its irqsave variant
 * saved; the saved state itself is a STACK_IRQ_FLAG stack slot carrying the
 * same id. states_equal() must compare all of it (res_locks_equal(),
 * stacksafe()), or a path holding other locks than the explored one is
 * pruned and the program is accepted although that path exits with a lock
 * held, or unlocks or restores the wrong thing.
 *
 * Same skeleton as verifier_lock_prune.c: the not-taken branch is verified
 * first and checkpointed at "meet" (BPF_F_TEST_STATE_FREQ), the branch path
 * second. Each *_unsafe program is wrong on the second path only, and is
 * rejected for that reason by the real verifier; a verifier that misses the
 * comparison the comment names prunes the second path at "meet" and accepts
 * it. Each *_safe sibling is right on both paths and proves with
 * __msg("N: safe") that the prune at "meet" does happen (N counted from the
 * asm, ld_imm64 = 2 insns, checked against llvm-objdump -d).
 *
 * Every lock attempt forks a failure path (r0 < 0, lock not taken), which
 * jumps to l_exit_%= after releasing what it holds.
 *
 * Needs the kfuncs of bpf_rqspinlock (CONFIG_BPF_RQSPINLOCK_RS).
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "bpf_misc.h"
#include "bpf_res_spin_lock.h"
#include "bpf_graph.h"

/* clang emits no BTF FUNC record for a kfunc that only inline assembly
 * calls, and libbpf needs one to resolve the call. This function, which no
 * program calls, makes clang emit them.
 */
void __kfunc_btf_root(void)
{
	unsigned long flags;

	if (!bpf_res_spin_lock(0))
		bpf_res_spin_unlock(0);
	if (!bpf_res_spin_lock_irqsave(0, &flags))
		bpf_res_spin_unlock_irqrestore(0, &flags);
}

/* Global locks, each in a data section of its own: (ptr = its map, id 0). */
struct bpf_res_spin_lock prune_a SEC(".bss.prune_a") __hidden;
struct bpf_res_spin_lock prune_b SEC(".bss.prune_b") __hidden;

struct prune_val {
	struct bpf_res_spin_lock lock;
	int cnt;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, int);
	__type(value, struct prune_val);
} prune_map SEC(".maps");

/* Branch: the not-taken (first) path, then l_second_%=. 3 insns. */
#define BRANCH								\
	"call %[bpf_get_prandom_u32];"					\
	"if r0 == 0 goto l_second_%=;"					\
	"r0 = 0;"

/* Lock/unlock a global lock. 3 insns each (ld_imm64 = 2). */
#define LOCK(l)		"r1 = %[" #l "] ll; call %[bpf_res_spin_lock];"
#define UNLOCK(l)	"r1 = %[" #l "] ll; call %[bpf_res_spin_unlock];"
/* irqsave/irqrestore with the flags at r10 + off. 5 insns each. */
#define LOCK_IRQ(l, off)						\
	"r1 = %[" #l "] ll; r2 = r10; r2 += " #off ";"			\
	"call %[bpf_res_spin_lock_irqsave];"
#define UNLOCK_IRQ(l, off)						\
	"r1 = %[" #l "] ll; r2 = r10; r2 += " #off ";"			\
	"call %[bpf_res_spin_unlock_irqrestore];"

/* ------------------------------------------------------------------------
 * 1. How many locks are held (res_locks_equal(): active_res_locks).
 * ------------------------------------------------------------------------
 *
 * The first path holds no lock at meet, the second holds prune_a. Only the
 * count tells the states apart: with the old state's zero entries there is
 * nothing else to compare.
 */
SEC("tc")
__description("res_lock_prune: lock held on the second path only")
__failure __msg("BPF_EXIT instruction in main prog cannot be used inside bpf_spin_lock-ed region")
__flag(BPF_F_TEST_STATE_FREQ)
__naked void count_unsafe(void)
{
	asm volatile (BRANCH
	"goto l_meet_%=;"
"l_second_%=:\n"
	LOCK(prune_a)
	"if w0 != 0 goto l_exit_%=;"
	/* missing: UNLOCK(prune_a) */
"l_meet_%=:\n"
	"r0 = 0;"
"l_exit_%=:\n"
	"exit;"
	:
	: __imm(bpf_get_prandom_u32),
	  __imm(bpf_res_spin_lock),
	  __imm_addr(prune_a)
	: __clobber_all);
}

/* insns: 0 call, 1 if, 2 r0, 3 goto, 4-5 ld (l_second), 6 call, 7 if,
 * 8-9 ld, 10 call, 11 = l_meet.
 */
SEC("tc")
__description("res_lock_prune: lock released on the second path")
__success __log_level(2) __msg("11: safe")
__flag(BPF_F_TEST_STATE_FREQ)
__naked void count_safe(void)
{
	asm volatile (BRANCH
	"goto l_meet_%=;"
"l_second_%=:\n"
	LOCK(prune_a)
	"if w0 != 0 goto l_exit_%=;"
	UNLOCK(prune_a)
"l_meet_%=:\n"
	"r0 = 0;"
"l_exit_%=:\n"
	"exit;"
	:
	: __imm(bpf_get_prandom_u32),
	  __imm(bpf_res_spin_lock),
	  __imm(bpf_res_spin_unlock),
	  __imm_addr(prune_a)
	: __clobber_all);
}

/* ------------------------------------------------------------------------
 * 2. Which lock is held (res_locks_equal(): ptr).
 * ------------------------------------------------------------------------
 *
 * Global locks have id 0; prune_a and prune_b differ only in their map.
 */
SEC("tc")
__description("res_lock_prune: lock A on the first path, lock B on the second")
__failure __msg("bpf_res_spin_unlock of different lock")
__flag(BPF_F_TEST_STATE_FREQ)
__naked void which_lock_unsafe(void)
{
	asm volatile (BRANCH
	LOCK(prune_a)
	"if w0 != 0 goto l_exit_%=;"
	"goto l_meet_%=;"
"l_second_%=:\n"
	LOCK(prune_b)
	"if w0 != 0 goto l_exit_%=;"
"l_meet_%=:\n"
	UNLOCK(prune_a)
	"r0 = 0;"
"l_exit_%=:\n"
	"exit;"
	:
	: __imm(bpf_get_prandom_u32),
	  __imm(bpf_res_spin_lock),
	  __imm(bpf_res_spin_unlock),
	  __imm_addr(prune_a),
	  __imm_addr(prune_b)
	: __clobber_all);
}

/* insns: 0 call, 1 if, 2 r0, 3-4 ld, 5 call, 6 if, 7 goto, 8-9 ld
 * (l_second), 10 call, 11 if, 12 = l_meet.
 */
SEC("tc")
__description("res_lock_prune: lock A on both paths")
__success __log_level(2) __msg("12: safe")
__flag(BPF_F_TEST_STATE_FREQ)
__naked void which_lock_safe(void)
{
	asm volatile (BRANCH
	LOCK(prune_a)
	"if w0 != 0 goto l_exit_%=;"
	"goto l_meet_%=;"
"l_second_%=:\n"
	LOCK(prune_a)
	"if w0 != 0 goto l_exit_%=;"
"l_meet_%=:\n"
	UNLOCK(prune_a)
	"r0 = 0;"
"l_exit_%=:\n"
	"exit;"
	:
	: __imm(bpf_get_prandom_u32),
	  __imm(bpf_res_spin_lock),
	  __imm(bpf_res_spin_unlock),
	  __imm_addr(prune_a)
	: __clobber_all);
}

/* ------------------------------------------------------------------------
 * 3. In which order (res_locks_equal(): ptr, entry by entry).
 * ------------------------------------------------------------------------
 *
 * Both paths hold both locks; the order decides which unlock comes next.
 */
SEC("tc")
__description("res_lock_prune: A then B on the first path, B then A on the second")
__failure __msg("bpf_res_spin_unlock cannot be out of order")
__flag(BPF_F_TEST_STATE_FREQ)
__naked void order_unsafe(void)
{
	asm volatile (BRANCH
	LOCK(prune_a)
	"if w0 != 0 goto l_exit_%=;"
	LOCK(prune_b)
	"if w0 != 0 goto l_fail_a_%=;"
	"goto l_meet_%=;"
"l_second_%=:\n"
	LOCK(prune_b)
	"if w0 != 0 goto l_exit_%=;"
	LOCK(prune_a)
	"if w0 != 0 goto l_fail_b_%=;"
"l_meet_%=:\n"
	UNLOCK(prune_b)
	UNLOCK(prune_a)
	"r0 = 0;"
	"exit;"
"l_fail_a_%=:\n"
	UNLOCK(prune_a)
	"r0 = 0;"
	"exit;"
"l_fail_b_%=:\n"
	UNLOCK(prune_b)
"l_exit_%=:\n"
	"r0 = 0;"
	"exit;"
	:
	: __imm(bpf_get_prandom_u32),
	  __imm(bpf_res_spin_lock),
	  __imm(bpf_res_spin_unlock),
	  __imm_addr(prune_a),
	  __imm_addr(prune_b)
	: __clobber_all);
}

/* insns: 0 call, 1 if, 2 r0, 3-4 ld, 5 call, 6 if, 7-8 ld, 9 call, 10 if,
 * 11 goto, 12-13 ld (l_second), 14 call, 15 if, 16-17 ld, 18 call, 19 if,
 * 20 = l_meet.
 */
SEC("tc")
__description("res_lock_prune: A then B on both paths")
__success __log_level(2) __msg("20: safe")
__flag(BPF_F_TEST_STATE_FREQ)
__naked void order_safe(void)
{
	asm volatile (BRANCH
	LOCK(prune_a)
	"if w0 != 0 goto l_exit_%=;"
	LOCK(prune_b)
	"if w0 != 0 goto l_fail_a_%=;"
	"goto l_meet_%=;"
"l_second_%=:\n"
	LOCK(prune_a)
	"if w0 != 0 goto l_exit_%=;"
	LOCK(prune_b)
	"if w0 != 0 goto l_fail_a_%=;"
"l_meet_%=:\n"
	UNLOCK(prune_b)
	UNLOCK(prune_a)
	"r0 = 0;"
	"exit;"
"l_fail_a_%=:\n"
	UNLOCK(prune_a)
"l_exit_%=:\n"
	"r0 = 0;"
	"exit;"
	:
	: __imm(bpf_get_prandom_u32),
	  __imm(bpf_res_spin_lock),
	  __imm(bpf_res_spin_unlock),
	  __imm_addr(prune_a),
	  __imm_addr(prune_b)
	: __clobber_all);
}

/* ------------------------------------------------------------------------
 * 4. Which element (res_locks_equal(): check_ids() on id).
 * ------------------------------------------------------------------------
 *
 * Two elements of one map: same ptr, ids from two lookups. r6 and r7 hold
 * both elements on both paths; the first path locks r6's, the second r7's,
 * and after meet the program unlocks r6's. Without the id comparison only
 * r6 itself is compared (same id on both paths) and the paths look alike.
 */
#define LOOKUP_R6_R7							\
	"r1 = 0;"							\
	"*(u32 *)(r10 - 4) = r1;"					\
	"r2 = r10;"							\
	"r2 += -4;"							\
	"r1 = %[prune_map] ll;"						\
	"call %[bpf_map_lookup_elem];"					\
	"if r0 == 0 goto l_exit_%=;"					\
	"r6 = r0;"							\
	"r1 = 1;"							\
	"*(u32 *)(r10 - 4) = r1;"					\
	"r2 = r10;"							\
	"r2 += -4;"							\
	"r1 = %[prune_map] ll;"						\
	"call %[bpf_map_lookup_elem];"					\
	"if r0 == 0 goto l_exit_%=;"					\
	"r7 = r0;"

SEC("tc")
__description("res_lock_prune: element 0 locked on the first path, element 1 on the second")
__failure __msg("bpf_res_spin_unlock of different lock")
__flag(BPF_F_TEST_STATE_FREQ)
__naked void which_element_unsafe(void)
{
	asm volatile (LOOKUP_R6_R7
	BRANCH
	"r1 = r6;"
	"call %[bpf_res_spin_lock];"
	"if w0 != 0 goto l_exit_%=;"
	"goto l_meet_%=;"
"l_second_%=:\n"
	"r1 = r7;"
	"call %[bpf_res_spin_lock];"
	"if w0 != 0 goto l_exit_%=;"
"l_meet_%=:\n"
	"r1 = r6;"
	"call %[bpf_res_spin_unlock];"
	"r0 = 0;"
"l_exit_%=:\n"
	"exit;"
	:
	: __imm(bpf_get_prandom_u32),
	  __imm(bpf_res_spin_lock),
	  __imm(bpf_res_spin_unlock),
	  __imm(bpf_map_lookup_elem),
	  __imm_addr(prune_map)
	: __clobber_all);
}

/* insns: 0-17 lookups, 18 call, 19 if, 20 r0, 21 r1, 22 call, 23 if,
 * 24 goto, 25 r1 (l_second), 26 call, 27 if, 28 = l_meet.
 */
SEC("tc")
__description("res_lock_prune: element 0 locked on both paths")
__success __log_level(2) __msg("28: safe")
__flag(BPF_F_TEST_STATE_FREQ)
__naked void which_element_safe(void)
{
	asm volatile (LOOKUP_R6_R7
	BRANCH
	"r1 = r6;"
	"call %[bpf_res_spin_lock];"
	"if w0 != 0 goto l_exit_%=;"
	"goto l_meet_%=;"
"l_second_%=:\n"
	"r1 = r6;"
	"call %[bpf_res_spin_lock];"
	"if w0 != 0 goto l_exit_%=;"
"l_meet_%=:\n"
	"r1 = r6;"
	"call %[bpf_res_spin_unlock];"
	"r0 = 0;"
"l_exit_%=:\n"
	"exit;"
	:
	: __imm(bpf_get_prandom_u32),
	  __imm(bpf_res_spin_lock),
	  __imm(bpf_res_spin_unlock),
	  __imm(bpf_map_lookup_elem),
	  __imm_addr(prune_map)
	: __clobber_all);
}

/* ------------------------------------------------------------------------
 * 5. Which lock saved IRQ state (res_locks_equal(): check_ids() on irq_id).
 * ------------------------------------------------------------------------
 *
 * Both paths hold A then B and have saved IRQ state at fp-8; on the first
 * path A saved it, on the second B. Locks and stack slot look alike unless
 * the irq ids of the lock entries are compared.
 */
SEC("tc")
__description("res_lock_prune: A irqsave on the first path, B irqsave on the second")
__failure __msg("bpf_res_spin_unlock of different lock")
__flag(BPF_F_TEST_STATE_FREQ)
__naked void which_irqsave_unsafe(void)
{
	asm volatile (BRANCH
	LOCK_IRQ(prune_a, -8)
	"if w0 != 0 goto l_exit_%=;"
	LOCK(prune_b)
	"if w0 != 0 goto l_fail_a_irq_%=;"
	"goto l_meet_%=;"
"l_second_%=:\n"
	LOCK(prune_a)
	"if w0 != 0 goto l_exit_%=;"
	LOCK_IRQ(prune_b, -8)
	"if w0 != 0 goto l_fail_a_%=;"
"l_meet_%=:\n"
	UNLOCK(prune_b)
	UNLOCK_IRQ(prune_a, -8)
	"r0 = 0;"
	"exit;"
"l_fail_a_irq_%=:\n"
	UNLOCK_IRQ(prune_a, -8)
	"r0 = 0;"
	"exit;"
"l_fail_a_%=:\n"
	UNLOCK(prune_a)
"l_exit_%=:\n"
	"r0 = 0;"
	"exit;"
	:
	: __imm(bpf_get_prandom_u32),
	  __imm(bpf_res_spin_lock),
	  __imm(bpf_res_spin_unlock),
	  __imm(bpf_res_spin_lock_irqsave),
	  __imm(bpf_res_spin_unlock_irqrestore),
	  __imm_addr(prune_a),
	  __imm_addr(prune_b)
	: __clobber_all);
}

/* insns: 0 call, 1 if, 2 r0, 3-7 irqsave A, 8 if, 9-11 lock B, 12 if,
 * 13 goto, 14-18 irqsave A (l_second), 19 if, 20-22 lock B, 23 if,
 * 24 = l_meet.
 */
SEC("tc")
__description("res_lock_prune: A irqsave on both paths")
__success __log_level(2) __msg("24: safe")
__flag(BPF_F_TEST_STATE_FREQ)
__naked void which_irqsave_safe(void)
{
	asm volatile (BRANCH
	LOCK_IRQ(prune_a, -8)
	"if w0 != 0 goto l_exit_%=;"
	LOCK(prune_b)
	"if w0 != 0 goto l_fail_a_irq_%=;"
	"goto l_meet_%=;"
"l_second_%=:\n"
	LOCK_IRQ(prune_a, -8)
	"if w0 != 0 goto l_exit_%=;"
	LOCK(prune_b)
	"if w0 != 0 goto l_fail_a_irq_%=;"
"l_meet_%=:\n"
	UNLOCK(prune_b)
	UNLOCK_IRQ(prune_a, -8)
	"r0 = 0;"
	"exit;"
"l_fail_a_irq_%=:\n"
	UNLOCK_IRQ(prune_a, -8)
"l_exit_%=:\n"
	"r0 = 0;"
	"exit;"
	:
	: __imm(bpf_get_prandom_u32),
	  __imm(bpf_res_spin_lock),
	  __imm(bpf_res_spin_unlock),
	  __imm(bpf_res_spin_lock_irqsave),
	  __imm(bpf_res_spin_unlock_irqrestore),
	  __imm_addr(prune_a),
	  __imm_addr(prune_b)
	: __clobber_all);
}

/* ------------------------------------------------------------------------
 * 6. Which slot holds whose IRQ state (stacksafe(): STACK_IRQ_FLAG ids).
 * ------------------------------------------------------------------------
 *
 * Both paths take A then B with irqsave, into fp-8 and fp-16: the first
 * path saves A's state at fp-8, the second at fp-16. The lock entries look
 * alike; only the ids in the stack slots tell whose state each slot holds.
 */
SEC("tc")
__description("res_lock_prune: irq flags of A and B in swapped slots")
__failure __msg("cannot restore irq state out of order")
__flag(BPF_F_TEST_STATE_FREQ)
__naked void irq_slots_unsafe(void)
{
	asm volatile (BRANCH
	LOCK_IRQ(prune_a, -8)
	"if w0 != 0 goto l_exit_%=;"
	LOCK_IRQ(prune_b, -16)
	"if w0 != 0 goto l_fail_a8_%=;"
	"goto l_meet_%=;"
"l_second_%=:\n"
	LOCK_IRQ(prune_a, -16)
	"if w0 != 0 goto l_exit_%=;"
	LOCK_IRQ(prune_b, -8)
	"if w0 != 0 goto l_fail_a16_%=;"
"l_meet_%=:\n"
	UNLOCK_IRQ(prune_b, -16)
	UNLOCK_IRQ(prune_a, -8)
	"r0 = 0;"
	"exit;"
"l_fail_a8_%=:\n"
	UNLOCK_IRQ(prune_a, -8)
	"r0 = 0;"
	"exit;"
"l_fail_a16_%=:\n"
	UNLOCK_IRQ(prune_a, -16)
"l_exit_%=:\n"
	"r0 = 0;"
	"exit;"
	:
	: __imm(bpf_get_prandom_u32),
	  __imm(bpf_res_spin_lock_irqsave),
	  __imm(bpf_res_spin_unlock_irqrestore),
	  __imm_addr(prune_a),
	  __imm_addr(prune_b)
	: __clobber_all);
}

/* insns: 0 call, 1 if, 2 r0, 3-7 irqsave A, 8 if, 9-13 irqsave B, 14 if,
 * 15 goto, 16-20 irqsave A (l_second), 21 if, 22-26 irqsave B, 27 if,
 * 28 = l_meet.
 */
SEC("tc")
__description("res_lock_prune: irq flags of A and B in the same slots")
__success __log_level(2) __msg("28: safe")
__flag(BPF_F_TEST_STATE_FREQ)
__naked void irq_slots_safe(void)
{
	asm volatile (BRANCH
	LOCK_IRQ(prune_a, -8)
	"if w0 != 0 goto l_exit_%=;"
	LOCK_IRQ(prune_b, -16)
	"if w0 != 0 goto l_fail_a8_%=;"
	"goto l_meet_%=;"
"l_second_%=:\n"
	LOCK_IRQ(prune_a, -8)
	"if w0 != 0 goto l_exit_%=;"
	LOCK_IRQ(prune_b, -16)
	"if w0 != 0 goto l_fail_a8_%=;"
"l_meet_%=:\n"
	UNLOCK_IRQ(prune_b, -16)
	UNLOCK_IRQ(prune_a, -8)
	"r0 = 0;"
	"exit;"
"l_fail_a8_%=:\n"
	UNLOCK_IRQ(prune_a, -8)
"l_exit_%=:\n"
	"r0 = 0;"
	"exit;"
	:
	: __imm(bpf_get_prandom_u32),
	  __imm(bpf_res_spin_lock_irqsave),
	  __imm(bpf_res_spin_unlock_irqrestore),
	  __imm_addr(prune_a),
	  __imm_addr(prune_b)
	: __clobber_all);
}

char _license[] SEC("license") = "GPL";
