// SPDX-License-Identifier: GPL-2.0
/*
 * Resilient-lock guards and verifier state pruning (Linux 6.12).
 *
 * A guard returned by bpf_rqspin_lock*() is an acquired reference
 * (KF_ACQUIRE | KF_RET_NULL): the verifier tracks it in the frame's refs[]
 * and compares it in refsafe() (count, then check_ids() per entry) and,
 * through the register holding it, in regsafe() (regs_exact() with
 * check_ids() on ref_obj_id). The verifier does not know which lock a guard
 * belongs to, so "guard of lock A vs guard of lock B" is a state difference
 * it may (and should) prune.
 *
 * Same skeleton as verifier_lock_prune.c: the not-taken branch is verified
 * first and checkpointed at "meet" (BPF_F_TEST_STATE_FREQ), the branch path
 * second; the *_unsafe programs are wrong on the second path only, the
 * *_safe siblings are right and, with __msg("N: safe"), prove the prune at
 * "meet" (N counted from the asm, ld_imm64 = 2 insns, checked against
 * llvm-objdump-19 -d).
 *
 * Needs the bpf_rqspinlock kfuncs registered for BPF_PROG_TYPE_SCHED_CLS.
 * guard_inside_vs_outside_* also call them while a bpf_spin_lock is held, so
 * they need patches/0001 (KF_SPIN_LOCK) on top of 6.12; on a plain 6.12 they
 * fail with "function calls are not allowed while holding a lock".
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "bpf_misc.h"
#include "bpf_rqspinlock.h"

/* clang emits no BTF FUNC record for a kfunc that only inline assembly
 * calls, and libbpf needs one to resolve the call. This function, which no
 * program calls, makes clang emit them.
 */
void __kfunc_btf_root(void)
{
	bpf_rqspin_unlock(bpf_rqspin_lock(0));
}

/* Offsets used in the asm below: sl 0, a 4, b 8. */
struct rq_val {
	struct bpf_spin_lock sl;
	struct bpf_rqspin_lock a;
	struct bpf_rqspin_lock b;
	int cnt;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, int);
	__type(value, struct rq_val);
} rq_map SEC(".maps");

/* r6 = &rq_map[0]; on failure jump to l_exit_%= (r0 is NULL == 0 there).
 * 9 insns (ld_imm64 = 2).
 */
#define LOOKUP_TO_R6						\
	"r1 = 0;"						\
	"*(u32 *)(r10 - 4) = r1;"				\
	"r2 = r10;"						\
	"r2 += -4;"						\
	"r1 = %[rq_map] ll;"					\
	"call %[bpf_map_lookup_elem];"				\
	"if r0 == 0 goto l_exit_%=;"				\
	"r6 = r0;"

/* ------------------------------------------------------------------------
 * 1. Guard held vs not held at the meeting point.
 * ------------------------------------------------------------------------
 *
 * The first path holds no guard; the second holds one whose only pointer
 * (r7) is dead after meet (it was never written on the first path). The
 * old state has no refs, so only the acquired_refs count in refsafe()
 * tells the states apart.
 */
SEC("tc")
__description("rqspin_prune: guard leaked on the second path")
__failure __msg("Unreleased reference id=")
__flag(BPF_F_TEST_STATE_FREQ)
__naked void guard_leak_unsafe(void)
{
	asm volatile (
	LOOKUP_TO_R6
	"call %[bpf_get_prandom_u32];"
	"if r0 == 0 goto l_second_%=;"
	"goto l_meet_%=;"
"l_second_%=:"
	"r1 = r6;"
	"r1 += 4;"
	"call %[bpf_rqspin_lock];"
	"if r0 == 0 goto l_exit_%=;"
	"r7 = r0;"
	/* missing: bpf_rqspin_unlock(r7) */
"l_meet_%=:"
	"r0 = 0;"
"l_exit_%=:"
	"exit;"
	:
	: __imm(bpf_get_prandom_u32),
	  __imm(bpf_map_lookup_elem),
	  __imm(bpf_rqspin_lock),
	  __imm_addr(rq_map)
	: __clobber_all);
}

/* insns: 0-8 lookup, 9 call, 10 if, 11 goto, 12-13 r1 (l_second), 14 call,
 * 15 if, 16 r7, 17 r1, 18 call unlock, 19 = l_meet.
 */
SEC("tc")
__description("rqspin_prune: guard released on the second path")
__success __log_level(2) __msg("19: safe")
__flag(BPF_F_TEST_STATE_FREQ)
__naked void guard_leak_safe(void)
{
	asm volatile (
	LOOKUP_TO_R6
	"call %[bpf_get_prandom_u32];"
	"if r0 == 0 goto l_second_%=;"
	"goto l_meet_%=;"
"l_second_%=:"
	"r1 = r6;"
	"r1 += 4;"
	"call %[bpf_rqspin_lock];"
	"if r0 == 0 goto l_exit_%=;"
	"r7 = r0;"
	"r1 = r7;"
	"call %[bpf_rqspin_unlock];"
"l_meet_%=:"
	"r0 = 0;"
"l_exit_%=:"
	"exit;"
	:
	: __imm(bpf_get_prandom_u32),
	  __imm(bpf_map_lookup_elem),
	  __imm(bpf_rqspin_lock),
	  __imm(bpf_rqspin_unlock),
	  __imm_addr(rq_map)
	: __clobber_all);
}

/* ------------------------------------------------------------------------
 * 2. Guard held vs NULL (failed lock) at the meeting point; guard of lock A
 *    vs guard of lock B.
 * ------------------------------------------------------------------------
 *
 * The classic misuse: unlock even when bpf_rqspin_lock() failed. The first
 * path has a guard in r7, the second the NULL scalar in r7 (its reference
 * was dropped by the NULL check). regsafe() sees the type change and refsafe()
 * the count change, so the second path is verified and the release refuses
 * the NULL (KF_RELEASE implies trusted args).
 */
SEC("tc")
__description("rqspin_prune: unlock after a failed bpf_rqspin_lock")
__failure __msg("Possibly NULL pointer passed to trusted arg0")
__flag(BPF_F_TEST_STATE_FREQ)
__naked void guard_null_unlock_unsafe(void)
{
	asm volatile (
	LOOKUP_TO_R6
	"r1 = r6;"
	"r1 += 4;"
	"call %[bpf_rqspin_lock];"
	"r7 = r0;"
	"if r7 == 0 goto l_second_%=;"
	"goto l_meet_%=;"
"l_second_%=:"
	/* lock A failed: nothing held, r7 == NULL */
"l_meet_%=:"
	"r1 = r7;"
	"call %[bpf_rqspin_unlock];"
	"r0 = 0;"
"l_exit_%=:"
	"exit;"
	:
	: __imm(bpf_map_lookup_elem),
	  __imm(bpf_rqspin_lock),
	  __imm(bpf_rqspin_unlock),
	  __imm_addr(rq_map)
	: __clobber_all);
}

/* Safe sibling: when lock A fails, the second path takes lock B instead.
 * At meet both states hold one guard in r7 (ref ids g1 vs g2, a consistent
 * mapping), so the second path is pruned: the verifier does not, and need
 * not, know which lock a guard came from.
 * insns: 0-8 lookup, 9-10 r1, 11 call, 12 r7, 13 if, 14 goto,
 * 15-16 r1 (l_second), 17 call, 18 if, 19 r7, 20 = l_meet.
 */
SEC("tc")
__description("rqspin_prune: guard of lock A or of lock B, then unlock")
__success __log_level(2) __msg("20: safe")
__flag(BPF_F_TEST_STATE_FREQ)
__naked void guard_a_vs_b_safe(void)
{
	asm volatile (
	LOOKUP_TO_R6
	"r1 = r6;"
	"r1 += 4;"
	"call %[bpf_rqspin_lock];"
	"r7 = r0;"
	"if r7 == 0 goto l_second_%=;"
	"goto l_meet_%=;"
"l_second_%=:"
	"r1 = r6;"
	"r1 += 8;"
	"call %[bpf_rqspin_lock];"
	"if r0 == 0 goto l_exit_%=;"
	"r7 = r0;"
"l_meet_%=:"
	"r1 = r7;"
	"call %[bpf_rqspin_unlock];"
	"r0 = 0;"
"l_exit_%=:"
	"exit;"
	:
	: __imm(bpf_map_lookup_elem),
	  __imm(bpf_rqspin_lock),
	  __imm(bpf_rqspin_unlock),
	  __imm_addr(rq_map)
	: __clobber_all);
}

/* ------------------------------------------------------------------------
 * 3. Guard acquired inside vs outside a bpf_spin_lock region.
 * ------------------------------------------------------------------------
 *
 * First path: bpf_spin_lock(sl), then guard A inside the region. Second
 * path: guard A first, then bpf_spin_lock(sl). Both meet holding sl (same
 * active_lock {rq_map, id(r6)}) and one guard in r7, and release both after
 * meet. The first path's non-NULL state is pushed by "if r7 != 0" and
 * popped (and checkpointed at meet) before the second path is popped.
 */
SEC("tc")
__description("rqspin_prune: guard inside the region, or outside plus a leaked inner guard")
__failure __msg("Unreleased reference id=")
__flag(BPF_F_TEST_STATE_FREQ)
__naked void guard_inside_vs_outside_unsafe(void)
{
	asm volatile (
	LOOKUP_TO_R6
	"call %[bpf_get_prandom_u32];"
	"if r0 == 0 goto l_second_%=;"
	"r1 = r6;"
	"call %[bpf_spin_lock];"
	"r1 = r6;"
	"r1 += 4;"
	"call %[bpf_rqspin_lock];"
	"r7 = r0;"
	"if r7 != 0 goto l_meet_%=;"
	"r1 = r6;"
	"call %[bpf_spin_unlock];"
	"goto l_exit_%=;"
"l_second_%=:"
	"r1 = r6;"
	"r1 += 4;"
	"call %[bpf_rqspin_lock];"
	"r7 = r0;"
	"if r7 == 0 goto l_exit_%=;"
	"r1 = r6;"
	"call %[bpf_spin_lock];"
	/* a second guard, on lock B, taken inside the region and leaked:
	 * at meet this state has refs {A, B}, the checkpoint only {A}
	 */
	"r1 = r6;"
	"r1 += 8;"
	"call %[bpf_rqspin_lock];"
	"if r0 == 0 goto l_meet_%=;"
	"r8 = r0;"
"l_meet_%=:"
	"r1 = r7;"
	"call %[bpf_rqspin_unlock];"
	"r1 = r6;"
	"call %[bpf_spin_unlock];"
"l_exit_%=:"
	"r0 = 0;"
	"exit;"
	:
	: __imm(bpf_get_prandom_u32),
	  __imm(bpf_map_lookup_elem),
	  __imm(bpf_spin_lock),
	  __imm(bpf_spin_unlock),
	  __imm(bpf_rqspin_lock),
	  __imm(bpf_rqspin_unlock),
	  __imm_addr(rq_map)
	: __clobber_all);
}

/* insns: 0-8 lookup, 9 call, 10 if, 11 r1, 12 lock, 13-14 r1, 15 call,
 * 16 r7, 17 if, 18 r1, 19 unlock, 20 goto, 21-22 r1 (l_second), 23 call,
 * 24 r7, 25 if, 26 r1, 27 lock, 28 = l_meet.
 */
SEC("tc")
__description("rqspin_prune: guard inside or outside the bpf_spin_lock region")
__success __log_level(2) __msg("28: safe")
__flag(BPF_F_TEST_STATE_FREQ)
__naked void guard_inside_vs_outside_safe(void)
{
	asm volatile (
	LOOKUP_TO_R6
	"call %[bpf_get_prandom_u32];"
	"if r0 == 0 goto l_second_%=;"
	"r1 = r6;"
	"call %[bpf_spin_lock];"
	"r1 = r6;"
	"r1 += 4;"
	"call %[bpf_rqspin_lock];"
	"r7 = r0;"
	"if r7 != 0 goto l_meet_%=;"
	"r1 = r6;"
	"call %[bpf_spin_unlock];"
	"goto l_exit_%=;"
"l_second_%=:"
	"r1 = r6;"
	"r1 += 4;"
	"call %[bpf_rqspin_lock];"
	"r7 = r0;"
	"if r7 == 0 goto l_exit_%=;"
	"r1 = r6;"
	"call %[bpf_spin_lock];"
"l_meet_%=:"
	"r1 = r7;"
	"call %[bpf_rqspin_unlock];"
	"r1 = r6;"
	"call %[bpf_spin_unlock];"
"l_exit_%=:"
	"r0 = 0;"
	"exit;"
	:
	: __imm(bpf_get_prandom_u32),
	  __imm(bpf_map_lookup_elem),
	  __imm(bpf_spin_lock),
	  __imm(bpf_spin_unlock),
	  __imm(bpf_rqspin_lock),
	  __imm(bpf_rqspin_unlock),
	  __imm_addr(rq_map)
	: __clobber_all);
}

char _license[] SEC("license") = "GPL";
