// SPDX-License-Identifier: GPL-2.0
/*
 * The bpf_spin_lock rules of a stock Linux 6.12 verifier, one program per
 * rule. These must hold on an unpatched 6.12 kernel and keep holding once
 * the KF_SPIN_LOCK patch is applied: the patch only widens which kfuncs may
 * be called under the lock, nothing here calls a kfunc.
 *
 * Messages are quoted from kernel/bpf/verifier.c of 6.12.117. Two of them
 * are not what the rule's name suggests:
 *  - a second bpf_spin_lock() while holding one never reaches
 *    process_spin_lock()'s "Locking two bpf_spin_locks are not allowed":
 *    do_check() refuses every helper but bpf_spin_unlock() first, with
 *    "function calls are not allowed while holding a lock";
 *  - BPF_EXIT with the lock held is reported as "bpf_spin_unlock is
 *    missing", and only for the exit of the main program: a static subprog
 *    may return with the lock held (the caller then owns it).
 *
 * The failing programs are written in assembly so that the instruction the
 * rule is about is exactly where the comment says; the successful ones that
 * run are in C and return a value that depends on what they stored.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "bpf_misc.h"

struct lock_val {
	struct bpf_spin_lock lock;	/* offset 0 */
	int cnt;			/* offset 4 */
	long sum;			/* offset 8 */
};

/* Two elements, so that two distinct locks of the same map exist. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, int);
	__type(value, struct lock_val);
} basic_locks SEC(".maps");

/*
 * Adds 5 to cnt under the lock and reads cnt back after the unlock: the
 * helper call makes the compiler reload it, so the result is what memory
 * holds, not a constant folded at compile time.
 */
SEC("tc")
__description("spin_lock basic: lock, update, unlock")
__success __retval(5)
int basic_lock_update_unlock(struct __sk_buff *ctx)
{
	struct lock_val *v;
	int key = 0, before, after;

	v = bpf_map_lookup_elem(&basic_locks, &key);
	if (!v)
		return 0;
	bpf_spin_lock(&v->lock);
	before = v->cnt;
	v->cnt = before + 5;
	v->sum += before;
	bpf_spin_unlock(&v->lock);
	after = v->cnt;
	return after - before;
}

/*
 * Not inlined: the point is a BPF-to-BPF call inside the region. A single
 * argument, so that clang has no constant argument to propagate and drop
 * from the call.
 */
static __noinline int add_three_locked(struct lock_val *v)
{
	v->cnt += 3;
	return v->cnt;
}

/* 6.12 lets static subprogs run under the lock (only global ones are
 * refused, in check_func_call()).
 */
SEC("tc")
__description("spin_lock basic: static subprog call under the lock")
__success __retval(3)
int basic_static_subprog_under_lock(struct __sk_buff *ctx)
{
	struct lock_val *v;
	int key = 0, before, after;

	v = bpf_map_lookup_elem(&basic_locks, &key);
	if (!v)
		return 0;
	bpf_spin_lock(&v->lock);
	before = v->cnt;
	after = add_three_locked(v);
	bpf_spin_unlock(&v->lock);
	return after - before;
}

static __noinline void take_lock(struct lock_val *v)
{
	bpf_spin_lock(&v->lock);
}

/* The subprog returns with the lock held; its caller unlocks. Accepted:
 * do_check() only reports a held lock at the exit of frame 0.
 */
SEC("tc")
__description("spin_lock basic: lock in static subprog, unlock in caller")
__success __retval(2)
int basic_lock_in_subprog_unlock_in_caller(struct __sk_buff *ctx)
{
	struct lock_val *v;
	int key = 0, before, after;

	v = bpf_map_lookup_elem(&basic_locks, &key);
	if (!v)
		return 0;
	take_lock(v);
	before = v->cnt;
	v->cnt = before + 2;
	bpf_spin_unlock(&v->lock);
	after = v->cnt;
	return after - before;
}

/* The taken branch (cnt > 10) exits with the lock held. */
SEC("tc")
__description("spin_lock basic: unlock missing on one path")
__failure __msg("bpf_spin_unlock is missing")
__naked void basic_missing_unlock_one_path(void)
{
	asm volatile ("					\
	r1 = 0;						\
	*(u32 *)(r10 - 4) = r1;				\
	r2 = r10;					\
	r2 += -4;					\
	r1 = %[basic_locks] ll;				\
	call %[bpf_map_lookup_elem];			\
	if r0 != 0 goto l0_%=;				\
	exit;						\
l0_%=:	r6 = r0;					\
	r1 = r0;					\
	call %[bpf_spin_lock];				\
	r0 = *(u32 *)(r6 + 4);				\
	if r0 > 10 goto l1_%=;				\
	r1 = r6;					\
	call %[bpf_spin_unlock];			\
	r0 = 0;						\
l1_%=:	exit;						\
"	:
	: __imm(bpf_map_lookup_elem),
	  __imm(bpf_spin_lock),
	  __imm(bpf_spin_unlock),
	  __imm_addr(basic_locks)
	: __clobber_all);
}

/* Returns with the lock held, like take_lock() above. */
static __naked __noinline __attribute__((used))
void basic_lock_r1(void)
{
	asm volatile ("					\
	call %[bpf_spin_lock];				\
	r0 = 0;						\
	exit;						\
"	:
	: __imm(bpf_spin_lock)
	: __clobber_all);
}

/* The subprog's exit is accepted, the main program's is not. */
SEC("tc")
__description("spin_lock basic: lock in static subprog, caller never unlocks")
__failure __msg("bpf_spin_unlock is missing")
__naked void basic_subprog_lock_never_unlocked(void)
{
	asm volatile ("					\
	r1 = 0;						\
	*(u32 *)(r10 - 4) = r1;				\
	r2 = r10;					\
	r2 += -4;					\
	r1 = %[basic_locks] ll;				\
	call %[bpf_map_lookup_elem];			\
	if r0 != 0 goto l0_%=;				\
	exit;						\
l0_%=:	r1 = r0;					\
	call basic_lock_r1;				\
	r0 = 1;						\
	exit;						\
"	:
	: __imm(bpf_map_lookup_elem),
	  __imm_addr(basic_locks)
	: __clobber_all);
}

SEC("tc")
__description("spin_lock basic: unlock without lock")
__failure __msg("bpf_spin_unlock without taking a lock")
__naked void basic_unlock_without_lock(void)
{
	asm volatile ("					\
	r1 = 0;						\
	*(u32 *)(r10 - 4) = r1;				\
	r2 = r10;					\
	r2 += -4;					\
	r1 = %[basic_locks] ll;				\
	call %[bpf_map_lookup_elem];			\
	if r0 != 0 goto l0_%=;				\
	exit;						\
l0_%=:	r1 = r0;					\
	call %[bpf_spin_unlock];			\
	r0 = 0;						\
	exit;						\
"	:
	: __imm(bpf_map_lookup_elem),
	  __imm(bpf_spin_unlock),
	  __imm_addr(basic_locks)
	: __clobber_all);
}

/* The second bpf_spin_lock() is a helper call under a lock: refused by
 * do_check() before process_spin_lock() could say "Locking two ...".
 */
SEC("tc")
__description("spin_lock basic: double lock")
__failure __log_level(1)
__msg("call bpf_spin_lock#93")
__msg("call bpf_spin_lock#93")
__msg("function calls are not allowed while holding a lock")
__naked void basic_double_lock(void)
{
	asm volatile ("					\
	r1 = 0;						\
	*(u32 *)(r10 - 4) = r1;				\
	r2 = r10;					\
	r2 += -4;					\
	r1 = %[basic_locks] ll;				\
	call %[bpf_map_lookup_elem];			\
	if r0 != 0 goto l0_%=;				\
	exit;						\
l0_%=:	r6 = r0;					\
	r1 = r0;					\
	call %[bpf_spin_lock];				\
	r1 = r6;					\
	call %[bpf_spin_lock];				\
	r1 = r6;					\
	call %[bpf_spin_unlock];			\
	r0 = 0;						\
	exit;						\
"	:
	: __imm(bpf_map_lookup_elem),
	  __imm(bpf_spin_lock),
	  __imm(bpf_spin_unlock),
	  __imm_addr(basic_locks)
	: __clobber_all);
}

SEC("tc")
__description("spin_lock basic: helper call under the lock")
__failure __log_level(1)
__msg("call bpf_get_prandom_u32#7")
__msg("function calls are not allowed while holding a lock")
__naked void basic_helper_under_lock(void)
{
	asm volatile ("					\
	r1 = 0;						\
	*(u32 *)(r10 - 4) = r1;				\
	r2 = r10;					\
	r2 += -4;					\
	r1 = %[basic_locks] ll;				\
	call %[bpf_map_lookup_elem];			\
	if r0 != 0 goto l0_%=;				\
	exit;						\
l0_%=:	r6 = r0;					\
	r1 = r0;					\
	call %[bpf_spin_lock];				\
	call %[bpf_get_prandom_u32];			\
	*(u32 *)(r6 + 4) = r0;				\
	r1 = r6;					\
	call %[bpf_spin_unlock];			\
	r0 = 0;						\
	exit;						\
"	:
	: __imm(bpf_map_lookup_elem),
	  __imm(bpf_spin_lock),
	  __imm(bpf_spin_unlock),
	  __imm(bpf_get_prandom_u32),
	  __imm_addr(basic_locks)
	: __clobber_all);
}

/* Lock element 0, unlock element 1: same map, different reg->id. */
SEC("tc")
__description("spin_lock basic: unlock of a different element's lock")
__failure __msg("bpf_spin_unlock of different lock")
__naked void basic_unlock_different_lock(void)
{
	asm volatile ("					\
	r1 = 0;						\
	*(u32 *)(r10 - 4) = r1;				\
	r2 = r10;					\
	r2 += -4;					\
	r1 = %[basic_locks] ll;				\
	call %[bpf_map_lookup_elem];			\
	if r0 != 0 goto l0_%=;				\
	exit;						\
l0_%=:	r6 = r0;					\
	r1 = 1;						\
	*(u32 *)(r10 - 8) = r1;				\
	r2 = r10;					\
	r2 += -8;					\
	r1 = %[basic_locks] ll;				\
	call %[bpf_map_lookup_elem];			\
	if r0 != 0 goto l1_%=;				\
	exit;						\
l1_%=:	r7 = r0;					\
	r1 = r6;					\
	call %[bpf_spin_lock];				\
	r1 = r7;					\
	call %[bpf_spin_unlock];			\
	r0 = 0;						\
	exit;						\
"	:
	: __imm(bpf_map_lookup_elem),
	  __imm(bpf_spin_lock),
	  __imm(bpf_spin_unlock),
	  __imm_addr(basic_locks)
	: __clobber_all);
}

/* A load of the lock word itself, while holding it. */
SEC("tc")
__description("spin_lock basic: direct load of the lock field")
__failure __msg("bpf_spin_lock cannot be accessed directly by load/store")
__naked void basic_direct_load_of_lock(void)
{
	asm volatile ("					\
	r1 = 0;						\
	*(u32 *)(r10 - 4) = r1;				\
	r2 = r10;					\
	r2 += -4;					\
	r1 = %[basic_locks] ll;				\
	call %[bpf_map_lookup_elem];			\
	if r0 != 0 goto l0_%=;				\
	exit;						\
l0_%=:	r6 = r0;					\
	r1 = r0;					\
	call %[bpf_spin_lock];				\
	r0 = *(u32 *)(r6 + 0);				\
	r1 = r6;					\
	call %[bpf_spin_unlock];			\
	r0 = 0;						\
	exit;						\
"	:
	: __imm(bpf_map_lookup_elem),
	  __imm(bpf_spin_lock),
	  __imm(bpf_spin_unlock),
	  __imm_addr(basic_locks)
	: __clobber_all);
}

/* LD_ABS can end the program at run time, so it is refused in the region.
 * r6 holds the skb as LD_ABS requires, the map value lives in r7.
 */
SEC("tc")
__description("spin_lock basic: LD_ABS under the lock")
__failure __msg("BPF_LD_[ABS|IND] cannot be used inside bpf_spin_lock-ed region")
__naked void basic_ld_abs_under_lock(void)
{
	asm volatile ("					\
	r6 = r1;					\
	r1 = 0;						\
	*(u32 *)(r10 - 4) = r1;				\
	r2 = r10;					\
	r2 += -4;					\
	r1 = %[basic_locks] ll;				\
	call %[bpf_map_lookup_elem];			\
	if r0 != 0 goto l0_%=;				\
	exit;						\
l0_%=:	r7 = r0;					\
	r1 = r0;					\
	call %[bpf_spin_lock];				\
	r0 = *(u8 *)skb[0];				\
	r1 = r7;					\
	call %[bpf_spin_unlock];			\
	r0 = 0;						\
	exit;						\
"	:
	: __imm(bpf_map_lookup_elem),
	  __imm(bpf_spin_lock),
	  __imm(bpf_spin_unlock),
	  __imm_addr(basic_locks)
	: __clobber_all);
}

/* The argument points at cnt (offset 4), not at the lock (offset 0). */
SEC("tc")
__description("spin_lock basic: lock pointer at the wrong offset")
__failure __msg("off 4 doesn't point to 'struct bpf_spin_lock' that is at 0")
__naked void basic_lock_wrong_offset(void)
{
	asm volatile ("					\
	r1 = 0;						\
	*(u32 *)(r10 - 4) = r1;				\
	r2 = r10;					\
	r2 += -4;					\
	r1 = %[basic_locks] ll;				\
	call %[bpf_map_lookup_elem];			\
	if r0 != 0 goto l0_%=;				\
	exit;						\
l0_%=:	r6 = r0;					\
	r1 = r0;					\
	r1 += 4;					\
	call %[bpf_spin_lock];				\
	r1 = r6;					\
	r1 += 4;					\
	call %[bpf_spin_unlock];			\
	r0 = 0;						\
	exit;						\
"	:
	: __imm(bpf_map_lookup_elem),
	  __imm(bpf_spin_lock),
	  __imm(bpf_spin_unlock),
	  __imm_addr(basic_locks)
	: __clobber_all);
}

char _license[] SEC("license") = "GPL";
