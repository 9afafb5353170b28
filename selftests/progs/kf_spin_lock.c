// SPDX-License-Identifier: GPL-2.0
/*
 * KF_SPIN_LOCK: kfuncs flagged as safe may be called while a bpf_spin_lock
 * is held; everything else keeps the stock 6.12 rules.
 *
 * Needs the flagged kfuncs of bpf_rqspinlock (CONFIG_BPF_RQSPINLOCK_RS) and
 * the unflagged module kfunc bpf_kfunc_call_test4() of bpf_testmod: libbpf
 * resolves every kfunc extern of this object at load time, so without them
 * no program loads.
 *
 * Several refusal tests first make an accepted flagged call and match the
 * log line of the refused instruction before the error ("call NAME#"), so
 * they show that the refusal comes from that instruction and that the
 * flagged call did not drop the lock state. They need __log_level(1):
 * at that level the log keeps every instruction of the failing path.
 *
 * On a 6.12 kernel without KF_SPIN_LOCK (kfuncs present) these programs do
 * not get the outcome written next to them, because the first flagged call
 * under the lock is already refused ("function calls are not allowed while
 * holding a lock": do_check() refuses every kfunc but the graph API):
 *   verdict flips, __success -> load fails:
 *     kf_flagged_ktime_under_lock, kf_flagged_stat_add_under_lock,
 *     kf_flagged_in_static_subprog_under_lock, kf_graph_and_flagged_under_lock
 *   still __failure, but the expected message or log line is missing:
 *     kf_unflagged_after_flagged_under_lock, kf_helper_after_flagged_under_lock,
 *     kf_global_subprog_after_flagged_under_lock,
 *     kf_tail_call_after_flagged_under_lock, kf_exit_after_flagged_in_region
 * Unchanged on both kernels: kf_unflagged_under_lock,
 * kf_unflagged_in_static_subprog_under_lock, kf_unflagged_outside_lock,
 * kf_graph_push_pop_under_lock.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include "bpf_misc.h"
#include "bpf_rqspinlock.h"
#include "bpf_graph.h"

/* A slot no other selftest uses; the tests only rely on differences. */
#define KF_STAT_SLOT	13

struct kf_val {
	struct bpf_spin_lock lock;	/* offset 0 */
	int cnt;			/* offset 4 */
	__u64 stamp;			/* offset 8 */
	__u64 sum;			/* offset 16 */
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, int);
	__type(value, struct kf_val);
} kf_locks SEC(".maps");

/* Left empty: the tail call is refused at load, it never runs. */
struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} kf_jmp_table SEC(".maps");

struct kf_node {
	int data;
	struct bpf_list_node node;
};

/* The lock and the list it guards share the value of the ".bss.kf_list" map. */
struct bpf_spin_lock kf_list_lock SEC(".bss.kf_list") __hidden;
struct bpf_list_head kf_list_head SEC(".bss.kf_list") __hidden __contains(kf_node, node);

static __always_inline struct kf_val *kf_lookup(void)
{
	int key = 0;

	return bpf_map_lookup_elem(&kf_locks, &key);
}

/* Two clock reads inside the region: both calls must be accepted and run. */
SEC("tc")
__description("kf_spin_lock: flagged bpf_rqspin_ktime_get_ns() under the lock")
__success __retval(1)
int kf_flagged_ktime_under_lock(struct __sk_buff *ctx)
{
	struct kf_val *v = kf_lookup();
	__u64 t1, t2;

	if (!v)
		return 0;
	bpf_spin_lock(&v->lock);
	t1 = bpf_rqspin_ktime_get_ns();
	t2 = bpf_rqspin_ktime_get_ns();
	v->stamp = t2;
	bpf_spin_unlock(&v->lock);
	return t1 != 0 && t1 <= t2;
}

/*
 * The region keeps this CPU, so the second add sees the first one's result:
 * the difference is the delta. The sum over all CPUs, read outside the lock,
 * cannot be below this CPU's share.
 */
SEC("tc")
__description("kf_spin_lock: flagged bpf_rqspin_stat_add() under the lock")
__success __retval(7)
int kf_flagged_stat_add_under_lock(struct __sk_buff *ctx)
{
	struct kf_val *v = kf_lookup();
	__u64 before, after;

	if (!v)
		return 0;
	bpf_spin_lock(&v->lock);
	before = bpf_rqspin_stat_add(KF_STAT_SLOT, 0);
	after = bpf_rqspin_stat_add(KF_STAT_SLOT, 7);
	v->sum = after;
	bpf_spin_unlock(&v->lock);
	if (bpf_rqspin_stat_sum(KF_STAT_SLOT) < after)
		return 0;
	return after - before;
}

/* The flag is looked up per call, not per frame: a static subprog run
 * under the lock may use flagged kfuncs too.
 */
static __noinline __u64 kf_stamp_locked(struct kf_val *v)
{
	v->stamp = bpf_rqspin_ktime_get_ns();
	return v->stamp;
}

SEC("tc")
__description("kf_spin_lock: flagged kfunc in a static subprog under the lock")
__success __retval(1)
int kf_flagged_in_static_subprog_under_lock(struct __sk_buff *ctx)
{
	struct kf_val *v = kf_lookup();
	__u64 t;

	if (!v)
		return 0;
	bpf_spin_lock(&v->lock);
	t = kf_stamp_locked(v);
	bpf_spin_unlock(&v->lock);
	return t != 0;
}

/* The negative control: a module kfunc without the flag. */
SEC("tc")
__description("kf_spin_lock: unflagged module kfunc under the lock")
__failure __log_level(1)
__msg("call bpf_kfunc_call_test4#")
__msg("function calls are not allowed while holding a lock")
int kf_unflagged_under_lock(struct __sk_buff *ctx)
{
	struct kf_val *v = kf_lookup();

	if (!v)
		return 0;
	bpf_spin_lock(&v->lock);
	v->sum = bpf_kfunc_call_test4(0, 0, 0, v->sum);
	bpf_spin_unlock(&v->lock);
	return 0;
}

SEC("tc")
__description("kf_spin_lock: unflagged module kfunc after a flagged one")
__failure __log_level(1)
__msg("call bpf_rqspin_ktime_get_ns#")
__msg("call bpf_kfunc_call_test4#")
__msg("function calls are not allowed while holding a lock")
int kf_unflagged_after_flagged_under_lock(struct __sk_buff *ctx)
{
	struct kf_val *v = kf_lookup();

	if (!v)
		return 0;
	bpf_spin_lock(&v->lock);
	v->stamp = bpf_rqspin_ktime_get_ns();
	v->sum = bpf_kfunc_call_test4(0, 0, 0, v->sum);
	bpf_spin_unlock(&v->lock);
	return 0;
}

static __noinline __u64 kf_unflagged_locked(struct kf_val *v)
{
	v->sum = bpf_kfunc_call_test4(0, 0, 0, v->sum);
	return v->sum;
}

/* The lock state is the verifier state's, not the frame's: a static
 * subprog gives no way around the flag.
 */
SEC("tc")
__description("kf_spin_lock: unflagged module kfunc in a static subprog under the lock")
__failure __log_level(1)
__msg("call bpf_kfunc_call_test4#")
__msg("function calls are not allowed while holding a lock")
int kf_unflagged_in_static_subprog_under_lock(struct __sk_buff *ctx)
{
	struct kf_val *v = kf_lookup();
	__u64 r;

	if (!v)
		return 0;
	bpf_spin_lock(&v->lock);
	r = kf_unflagged_locked(v);
	bpf_spin_unlock(&v->lock);
	return r;
}

/* Outside the region the unflagged kfunc is an ordinary kfunc. */
SEC("tc")
__description("kf_spin_lock: unflagged module kfunc outside the lock")
__success __retval(42)
int kf_unflagged_outside_lock(struct __sk_buff *ctx)
{
	return bpf_kfunc_call_test4(41, 0, 0, 1);
}

/* The flag is about kfuncs: helpers stay refused. */
SEC("tc")
__description("kf_spin_lock: helper after a flagged kfunc under the lock")
__failure __log_level(1)
__msg("call bpf_rqspin_ktime_get_ns#")
__msg("call bpf_ktime_get_ns#5")
__msg("function calls are not allowed while holding a lock")
int kf_helper_after_flagged_under_lock(struct __sk_buff *ctx)
{
	struct kf_val *v = kf_lookup();

	if (!v)
		return 0;
	bpf_spin_lock(&v->lock);
	v->stamp = bpf_rqspin_ktime_get_ns();
	v->sum = bpf_ktime_get_ns();
	bpf_spin_unlock(&v->lock);
	return 0;
}

/* Verified on its own, so it cannot know that a lock is held. */
__noinline int kf_global_add_one(int x)
{
	return x + 1;
}

SEC("tc")
__description("kf_spin_lock: global subprog after a flagged kfunc under the lock")
__failure
__msg("global function calls are not allowed while holding a lock")
int kf_global_subprog_after_flagged_under_lock(struct __sk_buff *ctx)
{
	struct kf_val *v = kf_lookup();

	if (!v)
		return 0;
	bpf_spin_lock(&v->lock);
	v->stamp = bpf_rqspin_ktime_get_ns();
	v->cnt = kf_global_add_one(v->cnt);
	bpf_spin_unlock(&v->lock);
	return 0;
}

/*
 * bpf_tail_call is a helper, so do_check() refuses it with the generic
 * message; check_helper_call()'s "tail_call cannot be used inside
 * bpf_spin_lock-ed region" is never reached in 6.12.
 */
SEC("tc")
__description("kf_spin_lock: tail call after a flagged kfunc under the lock")
__failure __log_level(1)
__msg("call bpf_rqspin_ktime_get_ns#")
__msg("call bpf_tail_call#12")
__msg("function calls are not allowed while holding a lock")
int kf_tail_call_after_flagged_under_lock(struct __sk_buff *ctx)
{
	struct kf_val *v = kf_lookup();

	if (!v)
		return 0;
	bpf_spin_lock(&v->lock);
	v->stamp = bpf_rqspin_ktime_get_ns();
	bpf_tail_call(ctx, &kf_jmp_table, 0);
	bpf_spin_unlock(&v->lock);
	return 0;
}

/* 6.12 words BPF_EXIT with the lock held as "bpf_spin_unlock is missing". */
SEC("tc")
__description("kf_spin_lock: exit inside the region after a flagged kfunc")
__failure __msg("bpf_spin_unlock is missing")
__naked void kf_exit_after_flagged_in_region(void)
{
	asm volatile ("r1 = 0;"
	"*(u32 *)(r10 - 4) = r1;"
	"r2 = r10;"
	"r2 += -4;"
	"r1 = %[kf_locks] ll;"
	"call %[bpf_map_lookup_elem];"
	"if r0 != 0 goto l0_%=;"
	"exit;"
"l0_%=:\n"
	"r6 = r0;"
	"r1 = r0;"
	"call %[bpf_spin_lock];"
	"call %[bpf_rqspin_ktime_get_ns];"
	"*(u64 *)(r6 + 8) = r0;"
	"r0 = 0;"
	"exit;"
	:
	: __imm(bpf_map_lookup_elem),
	  __imm(bpf_spin_lock),
	  __imm(bpf_rqspin_ktime_get_ns),
	  __imm_addr(kf_locks)
	: __clobber_all);
}

/*
 * The graph API was allowed under the lock before the flag existed and must
 * stay so. bpf_obj_new()/bpf_obj_drop() are not graph API kfuncs: they run
 * outside the region. Push then pop in one region returns our own node.
 */
SEC("tc")
__description("kf_spin_lock: graph kfuncs under the lock (push, pop)")
__success __retval(42)
int kf_graph_push_pop_under_lock(struct __sk_buff *ctx)
{
	struct bpf_list_node *ln;
	struct kf_node *n;
	int data;

	n = bpf_obj_new(struct kf_node);
	if (!n)
		return 0;
	n->data = 42;
	bpf_spin_lock(&kf_list_lock);
	bpf_list_push_front(&kf_list_head, &n->node);
	ln = bpf_list_pop_front(&kf_list_head);
	bpf_spin_unlock(&kf_list_lock);
	if (!ln)
		return 1;
	n = container_of(ln, struct kf_node, node);
	data = n->data;
	bpf_obj_drop(n);
	return data;
}

/* Graph and flagged kfuncs mixed in one region: 42 + 1 when both ran. */
SEC("tc")
__description("kf_spin_lock: graph and flagged kfuncs in one region")
__success __retval(43)
int kf_graph_and_flagged_under_lock(struct __sk_buff *ctx)
{
	struct bpf_list_node *ln;
	struct kf_node *n;
	__u64 t;
	int data;

	n = bpf_obj_new(struct kf_node);
	if (!n)
		return 0;
	n->data = 42;
	bpf_spin_lock(&kf_list_lock);
	bpf_list_push_front(&kf_list_head, &n->node);
	t = bpf_rqspin_ktime_get_ns();
	ln = bpf_list_pop_front(&kf_list_head);
	bpf_spin_unlock(&kf_list_lock);
	if (!ln)
		return 1;
	n = container_of(ln, struct kf_node, node);
	data = n->data;
	bpf_obj_drop(n);
	return data + (t != 0);
}

char _license[] SEC("license") = "GPL";
