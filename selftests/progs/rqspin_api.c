// SPDX-License-Identifier: GPL-2.0
/*
 * The bpf_rqspin_lock() API as the 6.12 verifier sees it: which uses are
 * accepted (and run) and which are refused, with the refusal message.
 *
 * The verifier knows nothing about this lock. It sees a guard returned by a
 * KF_ACQUIRE | KF_RET_NULL kfunc and released by a KF_RELEASE kfunc, so it
 * enforces exactly the reference rules: a guard must be NULL-checked before
 * use, released exactly once on every path, and only a real guard (a
 * referenced PTR_TO_BTF_ID of struct bpf_rqspin_guard) may be released. It
 * does NOT enforce an unlock order (upstream's 6.15 verifier has
 * REF_TYPE_RES_LOCK for that, 6.12 has not): releasing guards out of order
 * is accepted, and the module's held-locks table handles it at runtime
 * (runtime/rqspin_out_of_order proves it).
 *
 * Messages are quoted from kernel/bpf/verifier.c of 6.12.117:
 *   "Possibly NULL pointer passed to trusted arg%d"   check_kfunc_args()
 *   "Unreleased reference id=%d alloc_insn=%d"        check_reference_leak()
 *   "arg#%d pointer type %s %s must point to %sscalar, or struct with scalar"
 *                                                     get_kfunc_ptr_arg_type()
 *   "R%d must be referenced or trusted"               check_kfunc_args()
 *   "calling kernel function %s is not allowed"       check_kfunc_call(),
 *      when our kfunc filter (rust/rqspinlock_kfuncs.c) refuses a sleepable
 *      program.
 *
 * The failing programs that depend on an exact instruction shape are in
 * assembly; the ones that run are in C and return a value that proves the
 * lock was really taken.
 *
 * Needs the bpf_rqspinlock module (kfuncs registered for SCHED_CLS and
 * SYSCALL); rqspin_lock_in_spin_lock_region also needs patches/0001
 * (KF_SPIN_LOCK).
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "bpf_misc.h"
#include "bpf_rqspinlock.h"

/* clang emits no BTF FUNC record for a kfunc that only inline assembly
 * calls; referencing them here makes it emit one so libbpf can resolve them.
 */
void __kfunc_btf_root(void)
{
	bpf_rqspin_unlock(bpf_rqspin_lock(0));
}

/* Offsets used in the asm below: sl 0, a 4, b 8, cnt 12. */
struct api_val {
	struct bpf_spin_lock sl;
	struct bpf_rqspin_lock a;
	struct bpf_rqspin_lock b;
	int cnt;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, int);
	__type(value, struct api_val);
} api_map SEC(".maps");

static __always_inline struct api_val *api_lookup(void)
{
	int key = 0;

	return bpf_map_lookup_elem(&api_map, &key);
}

/* r6 = &api_map[0]; on failure jump to l_exit_%= with r0 == 0.
 * 9 insns (ld_imm64 = 2).
 */
#define LOOKUP_TO_R6						\
	"r1 = 0;"						\
	"*(u32 *)(r10 - 4) = r1;"				\
	"r2 = r10;"						\
	"r2 += -4;"						\
	"r1 = %[api_map] ll;"					\
	"call %[bpf_map_lookup_elem];"				\
	"if r0 == 0 goto l_exit_%=;"				\
	"r6 = r0;"

/* ------------------------------------------------------------------------
 * Accepted
 * ------------------------------------------------------------------------
 */

/*
 * The pattern every user writes. Returns 7 only if the guard names the lock
 * that was passed in and the critical section ran (cnt incremented once).
 */
SEC("tc")
__description("rqspin_api: lock, NULL check, unlock")
__success __retval(7)
int rqspin_lock_check_unlock(struct __sk_buff *ctx)
{
	struct bpf_rqspin_guard *g;
	struct api_val *v = api_lookup();
	int before;

	if (!v)
		return 0;
	before = v->cnt;
	g = bpf_rqspin_lock(&v->a);
	if (!g)
		return bpf_rqspin_last_error();
	if (g->lock != &v->a) {
		bpf_rqspin_unlock(g);
		return 1;
	}
	v->cnt++;
	bpf_rqspin_unlock(g);
	return v->cnt - before == 1 ? 7 : 2;
}

/* The irqsave pair; the guard records that it saved the interrupt state. */
SEC("tc")
__description("rqspin_api: lock_irqsave, NULL check, unlock_irqrestore")
__success __retval(9)
int rqspin_irqsave_pattern(struct __sk_buff *ctx)
{
	struct bpf_rqspin_guard *g;
	struct api_val *v = api_lookup();
	int saved;

	if (!v)
		return 0;
	g = bpf_rqspin_lock_irqsave(&v->b);
	if (!g)
		return bpf_rqspin_last_error();
	saved = g->irqsave;
	v->cnt++;
	bpf_rqspin_unlock_irqrestore(g);
	return saved == 1 ? 9 : 3;
}

/*
 * A resilient lock nested in a bpf_spin_lock region: bpf_rqspin_lock() and
 * bpf_rqspin_unlock() carry KF_SPIN_LOCK (patches/0001), and the guard's
 * reference is independent of the region's lock state. Returns 11 if the
 * inner lock was taken and released inside the region.
 */
SEC("tc")
__description("rqspin_api: rqspin lock inside a bpf_spin_lock region")
__success __retval(11)
int rqspin_lock_in_spin_lock_region(struct __sk_buff *ctx)
{
	struct bpf_rqspin_guard *g;
	struct api_val *v = api_lookup();
	int ret = 4;

	if (!v)
		return 0;
	bpf_spin_lock(&v->sl);
	g = bpf_rqspin_lock(&v->a);
	if (g) {
		v->cnt++;
		bpf_rqspin_unlock(g);
		ret = 11;
	}
	bpf_spin_unlock(&v->sl);
	return ret;
}

/*
 * Lock A, lock B, unlock A, unlock B: accepted by 6.12, whose reference
 * tracking has no notion of order (6.15 would say "bpf_res_spin_unlock
 * cannot be out of order"). The module removes A's held-table entry wherever
 * it sits, so the run is correct too; the retval shows both were held.
 */
SEC("tc")
__description("rqspin_api: two guards released out of order (not LIFO)")
__success __retval(13)
int rqspin_unlock_out_of_order(struct __sk_buff *ctx)
{
	struct bpf_rqspin_guard *ga, *gb;
	struct api_val *v = api_lookup();

	if (!v)
		return 0;
	ga = bpf_rqspin_lock(&v->a);
	if (!ga)
		return 5;
	gb = bpf_rqspin_lock(&v->b);
	if (!gb) {
		bpf_rqspin_unlock(ga);
		return 6;
	}
	bpf_rqspin_unlock(ga);
	bpf_rqspin_unlock(gb);
	return 13;
}

/* ------------------------------------------------------------------------
 * Refused
 * ------------------------------------------------------------------------
 */

/* The guard may be NULL (KF_RET_NULL) and KF_RELEASE implies trusted
 * arguments. The log shows the register as "ptr_or_null_".
 */
SEC("tc")
__description("rqspin_api: unlock without a NULL check")
__failure __log_level(2)
__msg("R1_w=ptr_or_null_bpf_rqspin_guard(")
__msg("Possibly NULL pointer passed to trusted arg0")
__naked void rqspin_unlock_without_null_check(void)
{
	asm volatile (
	LOOKUP_TO_R6
	"r1 = r6;"
	"r1 += 4;"
	"call %[bpf_rqspin_lock];"
	"r1 = r0;"
	"call %[bpf_rqspin_unlock];"
	"r0 = 0;"
"l_exit_%=:"
	"exit;"
	:
	: __imm(bpf_map_lookup_elem),
	  __imm(bpf_rqspin_lock),
	  __imm(bpf_rqspin_unlock),
	  __imm_addr(api_map)
	: __clobber_all);
}

/* Taking the NULL branch and "releasing" what it holds there: the register
 * is the known constant 0, no reference. Same message as above, but here the
 * log shows R1 as a plain zero.
 */
SEC("tc")
__description("rqspin_api: unlock of the NULL a failed lock returned")
__failure __log_level(2)
__msg("R1_w=0")
__msg("Possibly NULL pointer passed to trusted arg0")
__naked void rqspin_unlock_after_failed_lock(void)
{
	asm volatile (
	LOOKUP_TO_R6
	"r1 = r6;"
	"r1 += 4;"
	"call %[bpf_rqspin_lock];"
	"if r0 != 0 goto l_ok_%=;"
	/* lock failed: nothing is held, yet the program "unlocks" */
	"r1 = r0;"
	"call %[bpf_rqspin_unlock];"
	"r0 = 0;"
	"exit;"
"l_ok_%=:"
	"r1 = r0;"
	"call %[bpf_rqspin_unlock];"
	"r0 = 0;"
"l_exit_%=:"
	"exit;"
	:
	: __imm(bpf_map_lookup_elem),
	  __imm(bpf_rqspin_lock),
	  __imm(bpf_rqspin_unlock),
	  __imm_addr(api_map)
	: __clobber_all);
}

/* The guard is released on one path and leaked on the other; the verifier
 * reports the leak at the exit of the leaking path.
 */
SEC("tc")
__description("rqspin_api: unlock missing on one path")
__failure __msg("Unreleased reference id=")
__naked void rqspin_unlock_missing_on_one_path(void)
{
	asm volatile (
	LOOKUP_TO_R6
	"r1 = r6;"
	"r1 += 4;"
	"call %[bpf_rqspin_lock];"
	"if r0 == 0 goto l_exit_%=;"
	"r7 = r0;"
	"call %[bpf_get_prandom_u32];"
	"if r0 == 0 goto l_leak_%=;"
	"r1 = r7;"
	"call %[bpf_rqspin_unlock];"
"l_leak_%=:"
	"r0 = 0;"
"l_exit_%=:"
	"exit;"
	:
	: __imm(bpf_map_lookup_elem),
	  __imm(bpf_get_prandom_u32),
	  __imm(bpf_rqspin_lock),
	  __imm(bpf_rqspin_unlock),
	  __imm_addr(api_map)
	: __clobber_all);
}

/*
 * The first release invalidates every copy of the guard: for a privileged
 * loader (allow_ptr_leaks, as here) they become unknown scalars, so the
 * second release is refused as an argument of the wrong kind. (Without
 * allow_ptr_leaks they would be NOT_INIT and "r1 = r7" itself refused.)
 */
SEC("tc")
__description("rqspin_api: double unlock")
__failure __log_level(2)
__msg("call bpf_rqspin_unlock#")
__msg("R1_w=scalar(id=")
__msg("call bpf_rqspin_unlock#")
__msg("arg#0 pointer type STRUCT bpf_rqspin_guard must point to scalar, or struct with scalar")
__naked void rqspin_double_unlock(void)
{
	asm volatile (
	LOOKUP_TO_R6
	"r1 = r6;"
	"r1 += 4;"
	"call %[bpf_rqspin_lock];"
	"if r0 == 0 goto l_exit_%=;"
	"r7 = r0;"
	"r1 = r7;"
	"call %[bpf_rqspin_unlock];"
	"r1 = r7;"
	"call %[bpf_rqspin_unlock];"
	"r0 = 0;"
"l_exit_%=:"
	"exit;"
	:
	: __imm(bpf_map_lookup_elem),
	  __imm(bpf_rqspin_lock),
	  __imm(bpf_rqspin_unlock),
	  __imm_addr(api_map)
	: __clobber_all);
}

/*
 * A map value pointer is not a guard. The verifier does not get as far as
 * the missing reference: a pointer that is not a PTR_TO_BTF_ID can only
 * stand for memory, and struct bpf_rqspin_guard holds a pointer, so it is
 * not plain memory ("must point to scalar").
 */
SEC("tc")
__description("rqspin_api: unlock of a map value pointer")
__failure __msg("arg#0 pointer type STRUCT bpf_rqspin_guard must point to scalar, or struct with scalar")
__naked void rqspin_unlock_map_value(void)
{
	asm volatile (
	LOOKUP_TO_R6
	"r1 = r6;"
	"call %[bpf_rqspin_unlock];"
	"r0 = 0;"
"l_exit_%=:"
	"exit;"
	:
	: __imm(bpf_map_lookup_elem),
	  __imm(bpf_rqspin_unlock),
	  __imm_addr(api_map)
	: __clobber_all);
}

/* Nor is the lock word itself, even while its lock is held: the program
 * must hand back the guard. The real guard is released afterwards so that
 * the only error is the bad release. Refused as above.
 */
SEC("tc")
__description("rqspin_api: unlock of the lock pointer instead of the guard")
__failure __log_level(1)
__msg("call bpf_rqspin_lock#")
__msg("arg#0 pointer type STRUCT bpf_rqspin_guard must point to scalar, or struct with scalar")
__naked void rqspin_unlock_lock_pointer(void)
{
	asm volatile (
	LOOKUP_TO_R6
	"r1 = r6;"
	"r1 += 4;"
	"call %[bpf_rqspin_lock];"
	"if r0 == 0 goto l_exit_%=;"
	"r7 = r0;"
	"r1 = r6;"
	"r1 += 4;"
	"call %[bpf_rqspin_unlock];"
	"r1 = r7;"
	"call %[bpf_rqspin_unlock];"
	"r0 = 0;"
"l_exit_%=:"
	"exit;"
	:
	: __imm(bpf_map_lookup_elem),
	  __imm(bpf_rqspin_lock),
	  __imm(bpf_rqspin_unlock),
	  __imm_addr(api_map)
	: __clobber_all);
}

/* The lock pointer read back from the guard (guard->lock) is a walked
 * PTR_TO_BTF_ID: untrusted and unreferenced, so a release function may not
 * take it, whatever type it points to.
 */
SEC("tc")
__description("rqspin_api: unlock of the lock pointer read from the guard")
__failure __msg("R1 must be referenced or trusted")
__naked void rqspin_unlock_guard_lock_field(void)
{
	asm volatile (
	LOOKUP_TO_R6
	"r1 = r6;"
	"r1 += 4;"
	"call %[bpf_rqspin_lock];"
	"if r0 == 0 goto l_exit_%=;"
	"r7 = r0;"
	"r1 = *(u64 *)(r7 + 0);"
	"call %[bpf_rqspin_unlock];"
	"r1 = r7;"
	"call %[bpf_rqspin_unlock];"
	"r0 = 0;"
"l_exit_%=:"
	"exit;"
	:
	: __imm(bpf_map_lookup_elem),
	  __imm(bpf_rqspin_lock),
	  __imm(bpf_rqspin_unlock),
	  __imm_addr(api_map)
	: __clobber_all);
}

/*
 * The module's kfunc filter refuses sleepable programs: a sleepable
 * program may be preempted and fault, and the lock disables preemption.
 * The kfuncs are registered for BPF_PROG_TYPE_SYSCALL, so without the
 * filter this program would load. __flag(BPF_F_SLEEPABLE) only makes
 * explicit what libbpf does anyway: it loads every SEC("syscall") program
 * sleepable, so through libbpf no syscall program can use these kfuncs
 * (and there is no non-sleepable syscall twin to compare with here).
 */
SEC("syscall")
__description("rqspin_api: sleepable program may not lock")
__failure __flag(BPF_F_SLEEPABLE)
__msg("calling kernel function bpf_rqspin_lock is not allowed")
int rqspin_syscall_sleepable(void *ctx)
{
	struct bpf_rqspin_guard *g;
	struct api_val *v = api_lookup();

	if (!v)
		return 0;
	g = bpf_rqspin_lock(&v->a);
	if (!g)
		return 14;
	bpf_rqspin_unlock(g);
	return 15;
}

char _license[] SEC("license") = "GPL";
