// SPDX-License-Identifier: GPL-2.0
/*
 * Mainline's resilient spin lock API on 6.12: struct bpf_res_spin_lock and
 * the bpf_res_spin_lock*() kfuncs, declared exactly as mainline declares them
 * (bpf_res_spin_lock.h), with the verdicts and verifier messages of mainline.
 *
 * The cases of mainline's own tests (progs/res_spin_lock_fail.c and the
 * irqsave ones of progs/irq.c) are covered here in our own programs, each
 * with the message mainline checks, followed by every other misuse a
 * program can write, one program each.
 *
 * Needs the kfuncs of bpf_rqspinlock (CONFIG_BPF_RQSPINLOCK_RS) and, for the
 * unflagged-kfunc case, bpf_kfunc_call_test4() of bpf_testmod: libbpf
 * resolves every kfunc extern of this object at load time, so without them
 * no program loads.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include "bpf_misc.h"
#include "bpf_res_spin_lock.h"
#include "bpf_rqspinlock.h"
#include "bpf_graph.h"

struct res_val {
	struct bpf_res_spin_lock lock;	/* offset 0 */
	int cnt;			/* offset 4 */
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, int);
	__type(value, struct res_val);
} res_map SEC(".maps");

/* A value without a resilient lock. */
struct plain_val {
	struct bpf_spin_lock lock;
	int cnt;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, int);
	__type(value, struct plain_val);
} plain_map SEC(".maps");

/* Empty: the tail call is refused at load, it never runs. */
struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} res_jmp_table SEC(".maps");

/*
 * Global locks, one per data section: a map value holds at most one, and
 * each ".bss.<name>" section becomes a map of its own (see bpf_graph.h for
 * why they are hidden).
 */
struct bpf_res_spin_lock lock_a SEC(".bss.res_a") __hidden;
struct bpf_res_spin_lock lock_b SEC(".bss.res_b") __hidden;
/* A data section without a lock. */
int no_lock_here SEC(".bss.res_none") __hidden;
/* Declared the way mainline's selftests declare their global locks. */
struct bpf_res_spin_lock lock_c __hidden SEC(".data.C");

/*
 * A list next to a resilient lock, in one value. 6.12 keeps requiring a
 * bpf_spin_lock for a bpf_list_head (see btf_parse_fields()): mainline lets a
 * bpf_res_spin_lock protect it, but then warns and leaks the nodes each
 * time such a value is freed. Here the value has no valid special fields,
 * and the lock cannot be taken.
 */
struct res_node {
	int data;
	struct bpf_list_node node;
};

struct bpf_res_spin_lock res_list_lock SEC(".bss.res_list") __hidden;
struct bpf_list_head res_list_head SEC(".bss.res_list") __hidden __contains(res_node, node);

/* An object type without a lock. */
struct nolock_obj {
	int data;
};

static __always_inline struct res_val *res_lookup(int key)
{
	return bpf_map_lookup_elem(&res_map, &key);
}

/* ------------------------------------------------------------------------
 * Accepted
 * ------------------------------------------------------------------------
 */

/* The pattern every user writes. Returns 1 if the section ran under the lock. */
SEC("tc")
__description("res_spin_lock: lock, test the result, unlock")
__success __retval(1)
int res_lock_unlock(struct __sk_buff *ctx)
{
	struct res_val *v = res_lookup(0);
	int before, after;

	if (!v)
		return 0;
	if (bpf_res_spin_lock(&v->lock))
		return 2;
	before = v->cnt;
	v->cnt = before + 1;
	after = v->cnt;
	bpf_res_spin_unlock(&v->lock);
	return after - before;
}

SEC("tc")
__description("res_spin_lock: irqsave, test the result, irqrestore")
__success __retval(1)
int res_lock_irqsave_restore(struct __sk_buff *ctx)
{
	struct res_val *v = res_lookup(0);
	unsigned long flags;
	int before, after;

	if (!v)
		return 0;
	if (bpf_res_spin_lock_irqsave(&v->lock, &flags))
		return 2;
	before = v->cnt;
	v->cnt = before + 1;
	after = v->cnt;
	bpf_res_spin_unlock_irqrestore(&v->lock, &flags);
	return after - before;
}

/* Two locks, released in reverse order; the failure of the inner one
 * releases only the outer one (mainline: res_spin_lock_ooo).
 */
SEC("tc")
__description("res_spin_lock: nested locks released last in, first out")
__success __retval(0)
int res_lock_nested_lifo(struct __sk_buff *ctx)
{
	struct res_val *a = res_lookup(1), *b = res_lookup(2);

	if (!a || !b)
		return 1;
	if (bpf_res_spin_lock(&a->lock))
		return 2;
	if (bpf_res_spin_lock(&b->lock)) {
		bpf_res_spin_unlock(&a->lock);
		return 3;
	}
	bpf_res_spin_unlock(&b->lock);
	bpf_res_spin_unlock(&a->lock);
	return 0;
}

/* The same with irqsave (mainline: res_spin_lock_ooo_irq). */
SEC("tc")
__description("res_spin_lock: nested irqsave locks released last in, first out")
__success __retval(0)
int res_lock_nested_irq_lifo(struct __sk_buff *ctx)
{
	struct res_val *a = res_lookup(1), *b = res_lookup(2);
	unsigned long fa, fb;

	if (!a || !b)
		return 1;
	if (bpf_res_spin_lock_irqsave(&a->lock, &fa))
		return 2;
	if (bpf_res_spin_lock_irqsave(&b->lock, &fb)) {
		bpf_res_spin_unlock_irqrestore(&a->lock, &fa);
		return 3;
	}
	bpf_res_spin_unlock_irqrestore(&b->lock, &fb);
	bpf_res_spin_unlock_irqrestore(&a->lock, &fa);
	return 0;
}

/* Global locks in data sections, nested, plain and irqsave mixed. */
SEC("tc")
__description("res_spin_lock: global locks, plain inside irqsave")
__success __retval(0)
int res_lock_globals_mixed(struct __sk_buff *ctx)
{
	unsigned long flags;

	if (bpf_res_spin_lock_irqsave(&lock_a, &flags))
		return 1;
	if (bpf_res_spin_lock(&lock_b)) {
		bpf_res_spin_unlock_irqrestore(&lock_a, &flags);
		return 2;
	}
	bpf_res_spin_unlock(&lock_b);
	bpf_res_spin_unlock_irqrestore(&lock_a, &flags);
	return 0;
}

/* A global declared as mainline's selftests do (__hidden, .data.C). */
SEC("tc")
__description("res_spin_lock: global lock in its own .data section")
__success __retval(0)
int res_lock_data_section(struct __sk_buff *ctx)
{
	if (bpf_res_spin_lock(&lock_c))
		return 1;
	bpf_res_spin_unlock(&lock_c);
	return 0;
}

/* Testing the 32-bit result, as compilers do, is exact: the failure path
 * never reaches the unlock.
 */
SEC("tc")
__description("res_spin_lock: 32-bit signed test of the result")
__success __retval(0)
__naked void res_lock_result_tested_32bit(void)
{
	asm volatile ("r1 = %[lock_a] ll;"
	"call %[bpf_res_spin_lock];"
	"if w0 s< 0 goto l0_%=;"
	"r1 = %[lock_a] ll;"
	"call %[bpf_res_spin_unlock];"
"l0_%=:\n"
	"r0 = 0;"
	"exit;"
	:
	: __imm(bpf_res_spin_lock),
	  __imm(bpf_res_spin_unlock),
	  __imm_addr(lock_a)
	: __clobber_all);
}

/* A resilient lock may be taken while a bpf_spin_lock is held (it is a
 * lock kfunc, allowed in the region) and released before it.
 */
SEC("tc")
__description("res_spin_lock: inside a bpf_spin_lock region")
__success __retval(0)
int res_lock_in_spin_lock_region(struct __sk_buff *ctx)
{
	struct res_val *v = res_lookup(0);
	struct plain_val *p;
	int key = 0, ret = 0;

	p = bpf_map_lookup_elem(&plain_map, &key);
	if (!v || !p)
		return 1;
	bpf_spin_lock(&p->lock);
	if (bpf_res_spin_lock(&v->lock))
		ret = 2;
	else
		bpf_res_spin_unlock(&v->lock);
	bpf_spin_unlock(&p->lock);
	return ret;
}

/* KF_SPIN_LOCK kfuncs may be called under the lock. */
SEC("tc")
__description("res_spin_lock: KF_SPIN_LOCK kfunc under the lock")
__success __retval(1)
int res_lock_flagged_kfunc(struct __sk_buff *ctx)
{
	struct res_val *v = res_lookup(0);
	__u64 t1, t2;

	if (!v)
		return 0;
	if (bpf_res_spin_lock(&v->lock))
		return 2;
	t1 = bpf_rqspin_ktime_get_ns();
	t2 = bpf_rqspin_ktime_get_ns();
	bpf_res_spin_unlock(&v->lock);
	return t2 >= t1;
}

static __noinline int bump_locked(struct res_val *v)
{
	v->cnt += 3;
	return v->cnt;
}

/* Static subprogs share the lock state of their caller. */
SEC("tc")
__description("res_spin_lock: static subprog under the lock")
__success __retval(3)
int res_lock_static_subprog(struct __sk_buff *ctx)
{
	struct res_val *v = res_lookup(0);
	int before, after;

	if (!v)
		return 0;
	if (bpf_res_spin_lock(&v->lock))
		return 4;
	before = v->cnt;
	after = bump_locked(v);
	bpf_res_spin_unlock(&v->lock);
	return after - before;
}

/* Two lookups of one key are two pointers with distinct ids: the verifier
 * cannot tell that they are the same lock, so it accepts taking both, and
 * the lock detects the AA deadlock at run time (mainline:
 * res_spin_lock_test). Returns the second attempt's error.
 */
SEC("tc")
__description("res_spin_lock: same element looked up twice, AA found at run time")
__success __retval(-35)
int res_lock_aa_at_runtime(struct __sk_buff *ctx)
{
	struct res_val *a = res_lookup(3), *b = res_lookup(3);
	int ret;

	if (!a || !b)
		return 1;
	if (bpf_res_spin_lock(&a->lock))
		return 2;
	ret = bpf_res_spin_lock(&b->lock);
	if (!ret)
		bpf_res_spin_unlock(&b->lock);
	bpf_res_spin_unlock(&a->lock);
	return ret;
}

/* ------------------------------------------------------------------------
 * Rejected: the cases of mainline's res_spin_lock_fail.c and irq.c
 * ------------------------------------------------------------------------
 */

/* The lock must be a map value or allocated object field. */
SEC("tc")
__description("res_spin_lock: lock on the stack")
__failure __msg("arg#0 doesn't point to map value or allocated object")
int res_lock_arg_stack(struct __sk_buff *ctx)
{
	struct bpf_res_spin_lock l = {};

	if (bpf_res_spin_lock(&l))
		return 0;
	bpf_res_spin_unlock(&l);
	return 0;
}

/* A value not tested for NULL is not yet a map value. */
SEC("tc")
__description("res_spin_lock: map value not tested for NULL")
__failure __msg("arg#0 doesn't point to map value or allocated object")
__naked void res_lock_arg_maybe_null(void)
{
	asm volatile ("r1 = 0;"
	"*(u32 *)(r10 - 4) = r1;"
	"r2 = r10;"
	"r2 += -4;"
	"r1 = %[res_map] ll;"
	"call %[bpf_map_lookup_elem];"
	"r1 = r0;"
	"call %[bpf_res_spin_lock];"
	"r0 = 0;"
	"exit;"
	:
	: __imm(bpf_map_lookup_elem),
	  __imm(bpf_res_spin_lock),
	  __imm_addr(res_map)
	: __clobber_all);
}

SEC("tc")
__description("res_spin_lock: same lock twice")
__failure __msg("Acquiring the same lock again, AA deadlock detected")
int res_lock_aa(struct __sk_buff *ctx)
{
	struct res_val *v = res_lookup(0);

	if (!v)
		return 0;
	if (bpf_res_spin_lock(&v->lock))
		return 0;
	if (!bpf_res_spin_lock(&v->lock))
		bpf_res_spin_unlock(&v->lock);
	bpf_res_spin_unlock(&v->lock);
	return 0;
}

/* Only the path where the first attempt succeeded relocks. */
SEC("tc")
__description("res_spin_lock: relock on the success path")
__failure __msg("Acquiring the same lock again, AA deadlock detected")
int res_lock_cond_aa(struct __sk_buff *ctx)
{
	struct res_val *v = res_lookup(0);
	int ret;

	if (!v)
		return 0;
	ret = bpf_res_spin_lock(&v->lock);
	if (ret)
		return 0;
	ret = bpf_res_spin_lock(&v->lock);
	if (!ret)
		bpf_res_spin_unlock(&v->lock);
	bpf_res_spin_unlock(&v->lock);
	return 0;
}

SEC("tc")
__description("res_spin_lock: lock a map value, unlock a global")
__failure __msg("bpf_res_spin_unlock of different lock")
int res_lock_mismatch_map_global(struct __sk_buff *ctx)
{
	struct res_val *v = res_lookup(0);

	if (!v)
		return 0;
	if (bpf_res_spin_lock(&v->lock))
		return 0;
	bpf_res_spin_unlock(&lock_a);
	return 0;
}

SEC("tc")
__description("res_spin_lock: lock a global, unlock a map value")
__failure __msg("bpf_res_spin_unlock of different lock")
int res_lock_mismatch_global_map(struct __sk_buff *ctx)
{
	struct res_val *v = res_lookup(0);

	if (!v)
		return 0;
	if (bpf_res_spin_lock(&lock_a))
		return 0;
	bpf_res_spin_unlock(&v->lock);
	return 0;
}

SEC("tc")
__description("res_spin_lock: plain lock, irqrestore unlock")
__failure __msg("bpf_res_spin_unlock of different lock")
int res_lock_irq_mismatch_plain_lock(struct __sk_buff *ctx)
{
	unsigned long flags = 0;

	if (bpf_res_spin_lock(&lock_a))
		return 0;
	bpf_res_spin_unlock_irqrestore(&lock_a, &flags);
	return 0;
}

SEC("tc")
__description("res_spin_lock: irqsave lock, plain unlock")
__failure __msg("bpf_res_spin_unlock of different lock")
int res_lock_irq_mismatch_irqsave_lock(struct __sk_buff *ctx)
{
	unsigned long flags;

	if (bpf_res_spin_lock_irqsave(&lock_a, &flags))
		return 0;
	bpf_res_spin_unlock(&lock_a);
	return 0;
}

SEC("tc")
__description("res_spin_lock: outer lock released first")
__failure __msg("bpf_res_spin_unlock cannot be out of order")
int res_lock_ooo_unlock(struct __sk_buff *ctx)
{
	if (bpf_res_spin_lock(&lock_a))
		return 0;
	if (bpf_res_spin_lock(&lock_b)) {
		bpf_res_spin_unlock(&lock_a);
		return 0;
	}
	bpf_res_spin_unlock(&lock_a);
	bpf_res_spin_unlock(&lock_b);
	return 0;
}

SEC("tc")
__description("res_spin_lock: pointer one byte past the lock")
__failure __msg("off 1 doesn't point to 'struct bpf_res_spin_lock' that is at 0")
int res_lock_bad_off(struct __sk_buff *ctx)
{
	struct res_val *v = res_lookup(0);

	if (!v)
		return 0;
	if (bpf_res_spin_lock((void *)&v->lock + 1))
		return 0;
	bpf_res_spin_unlock((void *)&v->lock + 1);
	return 0;
}

/* The wrong field of the value. */
SEC("tc")
__description("res_spin_lock: pointer to another field of the value")
__failure __msg("off 4 doesn't point to 'struct bpf_res_spin_lock' that is at 0")
int res_lock_wrong_field(struct __sk_buff *ctx)
{
	struct res_val *v = res_lookup(0);

	if (!v)
		return 0;
	if (bpf_res_spin_lock((struct bpf_res_spin_lock *)&v->cnt))
		return 0;
	bpf_res_spin_unlock((struct bpf_res_spin_lock *)&v->cnt);
	return 0;
}

/* A variable offset into a map value. */
SEC("tc")
__description("res_spin_lock: variable offset")
__failure
__msg("R1 doesn't have constant offset. bpf_res_spin_lock has to be at the constant offset")
int res_lock_var_off(struct __sk_buff *ctx)
{
	struct res_val *v = res_lookup(0);
	__u32 off = ctx->len & 4;

	if (!v)
		return 0;
	if (bpf_res_spin_lock((void *)v + off))
		return 0;
	bpf_res_spin_unlock((void *)v + off);
	return 0;
}

/* A map whose value has no resilient lock (it has a bpf_spin_lock). */
SEC("tc")
__description("res_spin_lock: map value without a resilient lock")
__failure __msg("map 'plain_map' has no valid bpf_res_spin_lock")
int res_lock_no_lock_map(struct __sk_buff *ctx)
{
	struct plain_val *p;
	int key = 0;

	p = bpf_map_lookup_elem(&plain_map, &key);
	if (!p)
		return 0;
	if (bpf_res_spin_lock((struct bpf_res_spin_lock *)&p->lock))
		return 0;
	bpf_res_spin_unlock((struct bpf_res_spin_lock *)&p->lock);
	return 0;
}

/* A global in a data section without a lock. */
SEC("tc")
__description("res_spin_lock: data section without a lock")
__failure __msg("map '{{[^']*}}' has no valid bpf_res_spin_lock")
int res_lock_no_lock_global(struct __sk_buff *ctx)
{
	if (bpf_res_spin_lock((struct bpf_res_spin_lock *)&no_lock_here))
		return 0;
	bpf_res_spin_unlock((struct bpf_res_spin_lock *)&no_lock_here);
	return 0;
}

SEC("tc")
__description("res_spin_lock: allocated object without a lock")
__failure __msg("local 'kptr' has no valid bpf_res_spin_lock")
int res_lock_no_lock_kptr(struct __sk_buff *ctx)
{
	struct nolock_obj *o = bpf_obj_new(typeof(*o));

	if (!o)
		return 0;
	if (bpf_res_spin_lock((struct bpf_res_spin_lock *)o)) {
		bpf_obj_drop(o);
		return 0;
	}
	bpf_res_spin_unlock((struct bpf_res_spin_lock *)o);
	bpf_obj_drop(o);
	return 0;
}

/* Each lock must restore the state it saved (mainline: irq.c,
 * irq_ooo_lock_cond_inv).
 */
SEC("tc")
__description("res_spin_lock: irq flags of two locks swapped")
__failure
__msg("cannot restore irq state out of order, expected id={{[0-9]+ acquired at insn_idx=[0-9]+}}")
int res_lock_irq_flags_swapped(struct __sk_buff *ctx)
{
	unsigned long f1, f2;

	if (bpf_res_spin_lock_irqsave(&lock_a, &f1))
		return 0;
	if (bpf_res_spin_lock_irqsave(&lock_b, &f2)) {
		bpf_res_spin_unlock_irqrestore(&lock_a, &f1);
		return 0;
	}
	bpf_res_spin_unlock_irqrestore(&lock_b, &f1);
	bpf_res_spin_unlock_irqrestore(&lock_a, &f2);
	return 0;
}

/* Refused on 6.12, accepted by mainline: see res_list_head above. */
SEC("tc")
__description("res_spin_lock: protects a bpf_list_head (refused on 6.12)")
__failure __msg("has no valid bpf_res_spin_lock")
int res_lock_protects_list(struct __sk_buff *ctx)
{
	struct bpf_list_node *ln;
	struct res_node *n;
	int data;

	n = bpf_obj_new(typeof(*n));
	if (!n)
		return 1;
	n->data = 7;
	if (bpf_res_spin_lock(&res_list_lock)) {
		bpf_obj_drop(n);
		return 2;
	}
	bpf_list_push_front(&res_list_head, &n->node);
	ln = bpf_list_pop_front(&res_list_head);
	bpf_res_spin_unlock(&res_list_lock);
	if (!ln)
		return 3;
	n = container_of(ln, struct res_node, node);
	data = n->data;
	bpf_obj_drop(n);
	return data;
}

/* ------------------------------------------------------------------------
 * Rejected: every other misuse
 * ------------------------------------------------------------------------
 */

SEC("tc")
__description("res_spin_lock: unlock without lock")
__failure __msg("bpf_res_spin_unlock without taking a lock")
int res_lock_unlock_without_lock(struct __sk_buff *ctx)
{
	bpf_res_spin_unlock(&lock_a);
	return 0;
}

/* The result says whether the lock is held: the failure path must not
 * unlock.
 */
SEC("tc")
__description("res_spin_lock: result ignored, unlock on the failure path")
__failure __msg("bpf_res_spin_unlock without taking a lock")
int res_lock_result_ignored(struct __sk_buff *ctx)
{
	bpf_res_spin_lock(&lock_a);
	bpf_res_spin_unlock(&lock_a);
	return 0;
}

/* The result is an int: the upper half of R0 is not the sign extension of
 * the error (it is zero on x86-64 and arm64), so a 64-bit signed test
 * cannot tell failure from success, and the failure path reaches the
 * unlock. Mainline accepts this program, and unlocks a lock it does not
 * hold whenever taking it fails.
 */
SEC("tc")
__description("res_spin_lock: 64-bit signed test of the int result")
__failure __msg("bpf_res_spin_unlock without taking a lock")
__naked void res_lock_result_tested_64bit(void)
{
	asm volatile ("r1 = %[lock_a] ll;"
	"call %[bpf_res_spin_lock];"
	"if r0 s< 0 goto l0_%=;"
	"r1 = %[lock_a] ll;"
	"call %[bpf_res_spin_unlock];"
"l0_%=:\n"
	"r0 = 0;"
	"exit;"
	:
	: __imm(bpf_res_spin_lock),
	  __imm(bpf_res_spin_unlock),
	  __imm_addr(lock_a)
	: __clobber_all);
}

SEC("tc")
__description("res_spin_lock: exit with the lock held")
__failure __msg("BPF_EXIT instruction in main prog cannot be used inside bpf_spin_lock-ed region")
int res_lock_exit_held(struct __sk_buff *ctx)
{
	if (bpf_res_spin_lock(&lock_a))
		return 0;
	return 1;
}

SEC("tc")
__description("res_spin_lock: helper call under the lock")
__failure __msg("function calls are not allowed while holding a lock")
int res_lock_helper_under_lock(struct __sk_buff *ctx)
{
	__u64 t;

	if (bpf_res_spin_lock(&lock_a))
		return 0;
	t = bpf_ktime_get_ns();
	bpf_res_spin_unlock(&lock_a);
	return t & 1;
}

SEC("tc")
__description("res_spin_lock: tail call under the lock")
__failure __msg("function calls are not allowed while holding a lock")
int res_lock_tail_call_under_lock(struct __sk_buff *ctx)
{
	if (bpf_res_spin_lock(&lock_a))
		return 0;
	bpf_tail_call(ctx, &res_jmp_table, 0);
	bpf_res_spin_unlock(&lock_a);
	return 0;
}

SEC("tc")
__description("res_spin_lock: unflagged module kfunc under the lock")
__failure __msg("function calls are not allowed while holding a lock")
int res_lock_unflagged_kfunc_under_lock(struct __sk_buff *ctx)
{
	__u64 r;

	if (bpf_res_spin_lock(&lock_a))
		return 0;
	r = bpf_kfunc_call_test4(0, 0, 0, 1);
	bpf_res_spin_unlock(&lock_a);
	return r;
}

__noinline int res_global_subprog(int x)
{
	return x + 1;
}

SEC("tc")
__description("res_spin_lock: global function call under the lock")
__failure __msg("global function calls are not allowed while holding a lock")
int res_lock_global_call_under_lock(struct __sk_buff *ctx)
{
	int r;

	if (bpf_res_spin_lock(&lock_a))
		return 0;
	r = res_global_subprog(ctx->len);
	bpf_res_spin_unlock(&lock_a);
	return r;
}

SEC("tc")
__description("res_spin_lock: load from the lock word")
__failure __msg("bpf_res_spin_lock cannot be accessed directly by load/store")
int res_lock_direct_load(struct __sk_buff *ctx)
{
	struct res_val *v = res_lookup(0);

	if (!v)
		return 0;
	return v->lock.val;
}

SEC("tc")
__description("res_spin_lock: store to the lock word")
__failure __msg("bpf_res_spin_lock cannot be accessed directly by load/store")
int res_lock_direct_store(struct __sk_buff *ctx)
{
	struct res_val *v = res_lookup(0);

	if (!v)
		return 0;
	v->lock.val = 0;
	return 0;
}

/* The bpf_spin_lock was taken first, so it is released last. */
SEC("tc")
__description("res_spin_lock: bpf_spin_unlock before the resilient lock inside it")
__failure __msg("bpf_spin_unlock cannot be out of order")
int res_lock_spin_unlock_first(struct __sk_buff *ctx)
{
	struct res_val *v = res_lookup(0);
	struct plain_val *p;
	int key = 0;

	p = bpf_map_lookup_elem(&plain_map, &key);
	if (!v || !p)
		return 0;
	bpf_spin_lock(&p->lock);
	if (bpf_res_spin_lock(&v->lock)) {
		bpf_spin_unlock(&p->lock);
		return 0;
	}
	bpf_spin_unlock(&p->lock);
	bpf_res_spin_unlock(&v->lock);
	return 0;
}

/* The flags of irqrestore must be a slot irqsave wrote. */
SEC("tc")
__description("res_spin_lock: irqrestore with flags never saved")
__failure __msg("expected an initialized irq flag as arg#1")
int res_lock_irq_flag_not_saved(struct __sk_buff *ctx)
{
	unsigned long saved, other = 0;

	if (bpf_res_spin_lock_irqsave(&lock_a, &saved))
		return 0;
	bpf_res_spin_unlock_irqrestore(&lock_a, &other);
	return 0;
}

/* A slot holding saved state cannot be saved into again. */
SEC("tc")
__description("res_spin_lock: irqsave into a slot that holds saved state")
__failure __msg("expected uninitialized irq flag as arg#1")
int res_lock_irq_flag_reused(struct __sk_buff *ctx)
{
	unsigned long flags;

	if (bpf_res_spin_lock_irqsave(&lock_a, &flags))
		return 0;
	if (bpf_res_spin_lock_irqsave(&lock_b, &flags)) {
		bpf_res_spin_unlock_irqrestore(&lock_a, &flags);
		return 0;
	}
	bpf_res_spin_unlock_irqrestore(&lock_b, &flags);
	bpf_res_spin_unlock_irqrestore(&lock_a, &flags);
	return 0;
}

/* The saved state lives on the program's stack only. */
SEC("tc")
__description("res_spin_lock: irq flags in a map value")
__failure __msg("arg#1 doesn't point to an irq flag on stack")
int res_lock_irq_flag_in_map(struct __sk_buff *ctx)
{
	struct res_val *v = res_lookup(0);

	if (!v)
		return 0;
	if (bpf_res_spin_lock_irqsave(&lock_a, (unsigned long *)&v->cnt))
		return 0;
	bpf_res_spin_unlock_irqrestore(&lock_a, (unsigned long *)&v->cnt);
	return 0;
}

/* Writing the saved state makes it unusable: the program cannot make the
 * kernel restore an interrupt state it forged.
 */
SEC("tc")
__description("res_spin_lock: saved irq flags overwritten")
__failure __msg("expected an initialized irq flag as arg#1")
__naked void res_lock_irq_flag_overwritten(void)
{
	asm volatile ("r1 = %[lock_a] ll;"
	"r2 = r10;"
	"r2 += -8;"
	"call %[bpf_res_spin_lock_irqsave];"
	"if w0 != 0 goto l0_%=;"
	"r1 = 0x200;"
	"*(u64 *)(r10 - 8) = r1;"
	"r1 = %[lock_a] ll;"
	"r2 = r10;"
	"r2 += -8;"
	"call %[bpf_res_spin_unlock_irqrestore];"
"l0_%=:\n"
	"r0 = 0;"
	"exit;"
	:
	: __imm(bpf_res_spin_lock_irqsave),
	  __imm(bpf_res_spin_unlock_irqrestore),
	  __imm_addr(lock_a)
	: __clobber_all);
}

/* Socket filters cannot use maps that hold a lock of either kind. */
SEC("socket")
__description("res_spin_lock: socket filter with a lock map")
__failure __msg("socket filter progs cannot use bpf_spin_lock yet")
int res_lock_socket_filter(struct __sk_buff *ctx)
{
	struct res_val *v = res_lookup(0);

	if (!v)
		return 0;
	if (bpf_res_spin_lock(&v->lock))
		return 0;
	bpf_res_spin_unlock(&v->lock);
	return 0;
}

char _license[] SEC("license") = "GPL";
