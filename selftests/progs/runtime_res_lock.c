// SPDX-License-Identifier: GPL-2.0
/*
 * Runtime test programs for the runtime/res_lock_* tests of tools/runner
 * (tools/runner/src/runtime/res_lock.rs): the resilient spin lock of the
 * bpf_rqspinlock module, driven through mainline's API (bpf_experimental.h).
 * The runner runs them with BPF_PROG_TEST_RUN, from threads pinned to CPU 0
 * and CPU 1, and reads what they measured from the rl_res map; none is a
 * verifier test on its own, hence __runtime_only.
 *
 * The verifier's rules shape every program here:
 *  - a map value holds at most one bpf_res_spin_lock, so each lock is an
 *    element of its own (rl_locks, rl_many) and every element a program
 *    locks is looked up, with a helper, before the first lock is taken;
 *  - while a lock is held only KF_SPIN_LOCK kfuncs and the lock kfuncs may
 *    be called: times come from bpf_rqspin_ktime_get_ns(), and everything
 *    called under a lock below is __always_inline;
 *  - the result of every attempt is tested, and only a taken lock is
 *    released, last in first out, on every path;
 *  - holding a lock for a long time is a may_goto loop (can_loop) that
 *    re-reads the clock, not bpf_loop(), which is a helper.
 *
 * Every program measures its own lock attempts with the clock kfunc (the
 * same clock the lock's deadlines use), so the times the runner checks are
 * the kernel's, not the syscall's.
 *
 * The layouts of struct rl_result and friends, and every index below, are
 * mirrored in res_lock.rs; change both together.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "bpf_misc.h"
#include "bpf_res_spin_lock.h"
#include "bpf_rqspinlock.h"
#include "bpf_rqspin_testmod.h"

#define EDEADLK		35
#define ETIMEDOUT	110

/* Elements of rl_locks, one or two per test. */
#define EL_AA		0
#define EL_ABBA_A	1
#define EL_ABBA_B	2
#define EL_STALL	3
#define EL_COUNTER	4
#define EL_IRQ		5
#define EL_IRQ_OTHER	6
#define EL_COUNTER_IRQ	7
#define NR_EL		8

/* Slots of rl_res. */
#define RES_AA			0
#define RES_ABBA_AB		1
#define RES_ABBA_BA		2
#define RES_OVERFLOW		3
#define RES_STALL_HOLD		4
#define RES_STALL_WAIT		5
#define RES_COUNTER		6
#define RES_IRQ			7
#define RES_COUNTER_IRQ		8
#define RES_UPD_ARRAY_HOLDER	9
#define RES_UPD_ARRAY_CONT	10
#define RES_UPD_HASH_HOLDER	11
#define RES_UPD_HASH_CONT	12
#define RES_UPD_PROBE		13
#define NR_RES			14

/* Slots of rl_cfg. */
#define CFG_OVERFLOW_TARGET	0
#define CFG_STALL_HOLD_NS	1
#define CFG_UPD_HOLD_NS		2
#define CFG_UPD_CONT_NS		3
#define NR_CFG			4

/* Slots of rl_upd_state. */
#define STATE_ARRAY	0
#define STATE_HASH	1
#define NR_STATE	2

/* Owner ids of runtime/res_lock_user_update (0: nobody). */
#define OWNER_HOLDER	1
#define OWNER_CONTENDER	2

/* Locks rl_overflow holds at once: more than the 31 the held table
 * remembers (rust/rqspinlock/held.rs, NR_HELD). rl_many has a few more, so
 * that a re-lock target may also be one that is not held.
 */
#define NR_HOLD		34
#define NR_MANY		40

/* Register additions per round of the hold loop (see hold_until()). */
#define DELAY_ITERS	2048

/* One lock per element. */
struct rl_elem {
	struct bpf_res_spin_lock lock;
	__u32 pad;
	__u64 count;
};

/* What a program saw; every field is u64 (offset = 8 * index). */
struct rl_result {
	__s64 err;		/*  0: last error seen */
	__u64 ns;		/*  1: duration of the last failed attempt */
	__u64 max_ns;		/*  2: longest failed attempt */
	__u64 ok;		/*  3: successful attempts (sections run) */
	__u64 deadlk;		/*  4: attempts that failed with -EDEADLK */
	__u64 timedout;		/*  5: attempts that failed with -ETIMEDOUT */
	__u64 other;		/*  6: any other failure (a bug) */
	__u64 t_start;		/*  7: start of a measured interval */
	__u64 t_end;		/*  8: end of it */
	__u64 aux;		/*  9: test specific */
	__u64 aux2;		/* 10: test specific */
	__u64 runs;		/* 11: program runs */
	__u64 attempts;		/* 12: lock attempts (counted before the call) */
	__u64 not_found;	/* 13: runs that found no element to lock */
	__u64 violations;	/* 14: mutual exclusion violations seen */
	__u64 first_deadlk;	/* 15: ABBA: the FIRST lock failed, -EDEADLK */
	__u64 first_timedout;	/* 16: ABBA: the FIRST lock failed, -ETIMEDOUT */
	__u64 first_other;	/* 17: ABBA: the FIRST lock failed otherwise */
	__u64 max_hold_ns;	/* 18: longest critical section */
	__u64 budget_out;	/* 19: a hold loop ran out of may_goto budget */
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, NR_EL);
	__type(key, __u32);
	__type(value, struct rl_elem);
} rl_locks SEC(".maps");

/* runtime/res_lock_held_overflow: one lock per element. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, NR_MANY);
	__type(key, __u32);
	__type(value, struct rl_elem);
} rl_many SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, NR_RES);
	__type(key, __u32);
	__type(value, struct rl_result);
} rl_res SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, NR_CFG);
	__type(key, __u32);
	__type(value, __u64);
} rl_cfg SEC(".maps");

/*
 * runtime/res_lock_user_update. The element whose lock the programs take
 * and user space overwrites: the lock, then bytes user space fills with
 * garbage and no program relies on.
 */
struct rl_upd_val {
	struct bpf_res_spin_lock lock;
	__u32 junk32;
	__u64 junk[3];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct rl_upd_val);
} rl_upd_array SEC(".maps");

/* Preallocated: a replaced or deleted element's memory is reused. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct rl_upd_val);
} rl_upd_hash SEC(".maps");

/* Who is inside the critical section of a lock. User space only reads it.
 * Also the lock-free 16-byte control value of runtime/res_lock_map_types.
 */
struct rl_owner {
	__u64 owner;
	__u64 sections;
};

/* The owner of rl_upd_array's only lock. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct rl_owner);
} rl_owner_array SEC(".maps");

/*
 * The owners of the locks of rl_upd_hash, one per element MEMORY, keyed by
 * its distance to a fixed anchor (see owner_of()). A hash update replaces
 * the element: a holder may still hold the lock of the old element while a
 * contender locks the new one. That is not a violation, they are different
 * locks; the lock excludes per lock word, so ownership is tracked per lock
 * word. Preallocation bounds the memories to max_entries plus one spare per
 * CPU; 64 slots are plenty.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __s64);
	__type(value, struct rl_owner);
} rl_owner_hash SEC(".maps");

/* Published under the lock for user space: is any lock of the map held
 * now, and how many sections have started. User space only reads it.
 */
struct rl_upd_state {
	__u64 holders;		/* 0: sections in progress */
	__u64 gen;		/* 1: sections started */
	__u64 max_hold_ns;	/* 2: longest section */
	__u64 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, NR_STATE);
	__type(key, __u32);
	__type(value, struct rl_upd_state);
} rl_upd_state SEC(".maps");

/*
 * runtime/res_lock_map_types: a map whose fd user space replaces (libbpf
 * reuse_fd) with one it created, to see what the verifier says about that
 * map's value.
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct rl_elem);
} rl_mt_target SEC(".maps");

/* Values runtime/res_lock_map_types creates maps with, 16 bytes like
 * rl_elem. No map of this object may hold them: the map would have no
 * usable lock. rl_btf_types() below puts them into the object's BTF.
 */
struct rl_two_locks {
	struct bpf_res_spin_lock a;
	struct bpf_res_spin_lock b;
	__u64 data;
};

struct rl_lock_array {
	struct bpf_res_spin_lock l[2];
	__u64 data;
};

/* Never called: its signature is what makes clang emit the structs above
 * into .BTF (as __kfunc_btf_root() in verifier_res_lock_prune.c does for
 * kfuncs); pointers in parameters, because a pointer in a struct member
 * would only give a forward declaration. libbpf loads no subprogram that no
 * program calls.
 */
__noinline int rl_btf_types(struct rl_two_locks *two, struct rl_lock_array *array)
{
	return two != 0 && array != 0;
}

/* True until this run's may_goto budget (8M rounds, BPF_MAX_LOOPS) is
 * spent: a loop condition the verifier accepts without bounding the loop
 * itself, and which the lock allows (it is a jump, not a call).
 */
#define can_loop							\
	({								\
		__label__ l_spent, l_more;				\
		int __more = 1;						\
		asm volatile goto("may_goto %l[l_spent]" :::: l_spent);	\
		goto l_more;						\
	l_spent:							\
		__more = 0;						\
	l_more:								\
		__more;							\
	})

static __always_inline struct rl_elem *elem(__u32 key)
{
	return bpf_map_lookup_elem(&rl_locks, &key);
}

static __always_inline struct rl_result *res(__u32 key)
{
	return bpf_map_lookup_elem(&rl_res, &key);
}

static __always_inline __u64 cfg(__u32 key)
{
	__u64 *v = bpf_map_lookup_elem(&rl_cfg, &key);

	return v ? *v : 0;
}

static __always_inline __u64 now(void)
{
	return bpf_rqspin_ktime_get_ns();
}

/* Counts a failed attempt that took @ns; several CPUs may share @r. */
static __always_inline void count_failure(struct rl_result *r, int err, __u64 ns)
{
	r->err = err;
	r->ns = ns;
	if (ns > r->max_ns)
		r->max_ns = ns;
	if (err == -EDEADLK)
		__sync_fetch_and_add(&r->deadlk, 1);
	else if (err == -ETIMEDOUT)
		__sync_fetch_and_add(&r->timedout, 1);
	else
		__sync_fetch_and_add(&r->other, 1);
}

/* A busy loop the compiler keeps: @n register additions, unrolled. */
static __always_inline void spin_delay(int n)
{
	__u64 x = 0;
	int i;

	for (i = 0; i < n; i++)
		asm volatile("%0 += 1" : "+r"(x));
}

/* DELAY_ITERS rounds of a register countdown: a loop in the program text
 * (the verifier walks it, it is bounded by a constant), not unrolled.
 */
static __always_inline void busy_delay(void)
{
	__u64 n;

	asm volatile("%[n] = %[iters];"
		     "l_delay_%=:"
		     "%[n] += -1;"
		     "if %[n] != 0 goto l_delay_%=;"
		     : [n] "=&r"(n)
		     : [iters] "i"(DELAY_ITERS));
}

/*
 * Keeps the CPU busy until the clock reaches @end, the caller holding a
 * lock. Each round reads the clock and spins DELAY_ITERS additions, about
 * 1 us on a current CPU, so the 8M-round budget lasts seconds, several
 * times the longest hold here (1.5 s). Rounds go to r->aux; if the budget
 * runs out first, r->budget_out says so (the hold is then short and the
 * runner fails the test with that reason).
 */
static __always_inline void hold_until(__u64 end, struct rl_result *r)
{
	while (can_loop) {
		if (now() >= end)
			return;
		busy_delay();
		r->aux++;
	}
	r->budget_out = 1;
}

/*
 * runtime/res_lock_aa: the same lock twice on one CPU. Two lookups of one
 * key give two pointers the verifier cannot tell apart from two different
 * locks, so it accepts the second attempt; the lock must fail it at once
 * with -EDEADLK (the AA check runs on the first check of the wait).
 * Without it, the attempt would spin until the 0.25 s timeout. Returns 0
 * when the sequence ran as expected, else where it went wrong.
 */
SEC("tc")
__runtime_only
int rl_aa(struct __sk_buff *skb)
{
	struct rl_elem *a = elem(EL_AA), *b = elem(EL_AA);
	struct rl_result *r = res(RES_AA);
	__u64 t0, t1;
	int err;

	if (!a || !b || !r)
		return 1;
	__sync_fetch_and_add(&r->runs, 1);
	err = bpf_res_spin_lock(&a->lock);
	if (err) {
		r->err = err;
		return 2;
	}
	t0 = now();
	err = bpf_res_spin_lock(&b->lock);
	t1 = now();
	if (!err) {
		/* Taken twice: mutual exclusion is broken. */
		bpf_res_spin_unlock(&b->lock);
		bpf_res_spin_unlock(&a->lock);
		return 3;
	}
	count_failure(r, err, t1 - t0);
	bpf_res_spin_unlock(&a->lock);

	/* The failed attempt left nothing behind: the lock works again. */
	if (bpf_res_spin_lock(&b->lock))
		return 4;
	__sync_fetch_and_add(&r->ok, 1);
	bpf_res_spin_unlock(&b->lock);
	return 0;
}

/*
 * runtime/res_lock_abba: CPU 0 runs rl_abba_ab (A then B), CPU 1 rl_abba_ba
 * (B then A). When each holds its first lock and waits for the second, the
 * ABBA check (every 1 ms) must fail one of them with -EDEADLK; the delay
 * between the two locks makes that likely. Only a failure of the SECOND
 * lock, taken while holding the first, is a detected ABBA deadlock; a
 * failure of the first lock is counted apart (first_*).
 */
static __always_inline int abba(__u32 first, __u32 second, __u32 slot)
{
	struct rl_elem *a = elem(first), *b = elem(second);
	struct rl_result *r = res(slot);
	__u64 t0, t1;
	int err;

	if (!a || !b || !r)
		return 1;
	__sync_fetch_and_add(&r->runs, 1);
	err = bpf_res_spin_lock(&a->lock);
	if (err) {
		if (err == -EDEADLK)
			__sync_fetch_and_add(&r->first_deadlk, 1);
		else if (err == -ETIMEDOUT)
			__sync_fetch_and_add(&r->first_timedout, 1);
		else
			__sync_fetch_and_add(&r->first_other, 1);
		return 0;
	}
	a->count++;
	spin_delay(64);
	t0 = now();
	err = bpf_res_spin_lock(&b->lock);
	t1 = now();
	if (err) {
		count_failure(r, err, t1 - t0);
		if (err == -EDEADLK) {
			/* aux: the last ABBA detection time, aux2: longest */
			r->aux = t1 - t0;
			if (t1 - t0 > r->aux2)
				r->aux2 = t1 - t0;
		}
		bpf_res_spin_unlock(&a->lock);
		return 0;
	}
	b->count++;
	__sync_fetch_and_add(&r->ok, 1);
	bpf_res_spin_unlock(&b->lock);
	bpf_res_spin_unlock(&a->lock);
	return 0;
}

SEC("tc")
__runtime_only
int rl_abba_ab(struct __sk_buff *skb)
{
	return abba(EL_ABBA_A, EL_ABBA_B, RES_ABBA_AB);
}

SEC("tc")
__runtime_only
int rl_abba_ba(struct __sk_buff *skb)
{
	return abba(EL_ABBA_B, EL_ABBA_A, RES_ABBA_BA);
}

/*
 * runtime/res_lock_held_overflow: hold NR_HOLD (34) locks, elements 0..33
 * of rl_many, more than the 31 the held table remembers, then try element
 * rl_cfg[CFG_OVERFLOW_TARGET] again through a lookup of its own (so the
 * verifier sees a lock it does not hold). A remembered one (index < 31,
 * the last slot 30 included) is an AA deadlock found at once; one beyond
 * the table is invisible to the check and only the timeout ends the attempt
 * (-ETIMEDOUT after 0.25 s). Everything is released in reverse order on
 * every path. Returns 0, 200 + i if element i was not found, or 100 + i if
 * lock i could not be taken.
 */
#define LOOKUP(i)							\
	do {								\
		key = (i);						\
		p##i = bpf_map_lookup_elem(&rl_many, &key);		\
		if (!p##i)						\
			return 200 + (i);				\
	} while (0)

#define TAKE(i)								\
	do {								\
		if (bpf_res_spin_lock(&p##i->lock)) {			\
			ret = 100 + (i);				\
			goto out_##i;					\
		}							\
	} while (0)

SEC("tc")
__runtime_only
int rl_overflow(struct __sk_buff *skb)
{
	struct rl_elem *p0, *p1, *p2, *p3, *p4, *p5, *p6, *p7, *p8, *p9,
		*p10, *p11, *p12, *p13, *p14, *p15, *p16, *p17, *p18, *p19,
		*p20, *p21, *p22, *p23, *p24, *p25, *p26, *p27, *p28, *p29,
		*p30, *p31, *p32, *p33, *pt;
	struct rl_result *r = res(RES_OVERFLOW);
	__u32 key, target;
	__u64 t0, t1;
	int ret = 0, err;

	if (!r)
		return 1;
	target = cfg(CFG_OVERFLOW_TARGET);
	if (target >= NR_MANY)
		return 2;
	__sync_fetch_and_add(&r->runs, 1);

	/* Every pointer first: no helper may run once a lock is held. */
	LOOKUP(0);
	LOOKUP(1);
	LOOKUP(2);
	LOOKUP(3);
	LOOKUP(4);
	LOOKUP(5);
	LOOKUP(6);
	LOOKUP(7);
	LOOKUP(8);
	LOOKUP(9);
	LOOKUP(10);
	LOOKUP(11);
	LOOKUP(12);
	LOOKUP(13);
	LOOKUP(14);
	LOOKUP(15);
	LOOKUP(16);
	LOOKUP(17);
	LOOKUP(18);
	LOOKUP(19);
	LOOKUP(20);
	LOOKUP(21);
	LOOKUP(22);
	LOOKUP(23);
	LOOKUP(24);
	LOOKUP(25);
	LOOKUP(26);
	LOOKUP(27);
	LOOKUP(28);
	LOOKUP(29);
	LOOKUP(30);
	LOOKUP(31);
	LOOKUP(32);
	LOOKUP(33);
	key = target;
	pt = bpf_map_lookup_elem(&rl_many, &key);
	if (!pt)
		return 3;

	TAKE(0);
	TAKE(1);
	TAKE(2);
	TAKE(3);
	TAKE(4);
	TAKE(5);
	TAKE(6);
	TAKE(7);
	TAKE(8);
	TAKE(9);
	TAKE(10);
	TAKE(11);
	TAKE(12);
	TAKE(13);
	TAKE(14);
	TAKE(15);
	TAKE(16);
	TAKE(17);
	TAKE(18);
	TAKE(19);
	TAKE(20);
	TAKE(21);
	TAKE(22);
	TAKE(23);
	TAKE(24);
	TAKE(25);
	TAKE(26);
	TAKE(27);
	TAKE(28);
	TAKE(29);
	TAKE(30);
	TAKE(31);
	TAKE(32);
	TAKE(33);

	t0 = now();
	err = bpf_res_spin_lock(&pt->lock);
	t1 = now();
	if (!err) {
		/* Only possible for a target we do not hold. */
		__sync_fetch_and_add(&r->ok, 1);
		bpf_res_spin_unlock(&pt->lock);
	} else {
		count_failure(r, err, t1 - t0);
	}

	/* Reverse order; out_N is entered when TAKE(N) failed, with locks
	 * 0..N-1 held.
	 */
	bpf_res_spin_unlock(&p33->lock);
out_33:
	bpf_res_spin_unlock(&p32->lock);
out_32:
	bpf_res_spin_unlock(&p31->lock);
out_31:
	bpf_res_spin_unlock(&p30->lock);
out_30:
	bpf_res_spin_unlock(&p29->lock);
out_29:
	bpf_res_spin_unlock(&p28->lock);
out_28:
	bpf_res_spin_unlock(&p27->lock);
out_27:
	bpf_res_spin_unlock(&p26->lock);
out_26:
	bpf_res_spin_unlock(&p25->lock);
out_25:
	bpf_res_spin_unlock(&p24->lock);
out_24:
	bpf_res_spin_unlock(&p23->lock);
out_23:
	bpf_res_spin_unlock(&p22->lock);
out_22:
	bpf_res_spin_unlock(&p21->lock);
out_21:
	bpf_res_spin_unlock(&p20->lock);
out_20:
	bpf_res_spin_unlock(&p19->lock);
out_19:
	bpf_res_spin_unlock(&p18->lock);
out_18:
	bpf_res_spin_unlock(&p17->lock);
out_17:
	bpf_res_spin_unlock(&p16->lock);
out_16:
	bpf_res_spin_unlock(&p15->lock);
out_15:
	bpf_res_spin_unlock(&p14->lock);
out_14:
	bpf_res_spin_unlock(&p13->lock);
out_13:
	bpf_res_spin_unlock(&p12->lock);
out_12:
	bpf_res_spin_unlock(&p11->lock);
out_11:
	bpf_res_spin_unlock(&p10->lock);
out_10:
	bpf_res_spin_unlock(&p9->lock);
out_9:
	bpf_res_spin_unlock(&p8->lock);
out_8:
	bpf_res_spin_unlock(&p7->lock);
out_7:
	bpf_res_spin_unlock(&p6->lock);
out_6:
	bpf_res_spin_unlock(&p5->lock);
out_5:
	bpf_res_spin_unlock(&p4->lock);
out_4:
	bpf_res_spin_unlock(&p3->lock);
out_3:
	bpf_res_spin_unlock(&p2->lock);
out_2:
	bpf_res_spin_unlock(&p1->lock);
out_1:
	bpf_res_spin_unlock(&p0->lock);
out_0:
	return ret;
}

/* Locks and unlocks each of the NR_MANY locks on its own; returns how many
 * were taken (NR_MANY when all are free and the held table is clean).
 */
SEC("tc")
__runtime_only
int rl_many_each(struct __sk_buff *skb)
{
	struct rl_elem *e;
	int i, n = 0;
	__u32 key;

	/* The count stays in a register, where the verifier knows its value;
	 * the key's stack slot, passed to a helper, is unknown after each
	 * call, and a loop bounded by it would never end for the verifier.
	 */
	for (i = 0; i < NR_MANY; i++) {
		key = i;
		e = bpf_map_lookup_elem(&rl_many, &key);
		if (!e)
			continue;
		if (bpf_res_spin_lock(&e->lock))
			continue;
		n++;
		bpf_res_spin_unlock(&e->lock);
	}
	return n;
}

/*
 * runtime/res_lock_stalled_holder: rl_stall_holder (CPU 0) takes the lock
 * and keeps it for rl_cfg[CFG_STALL_HOLD_NS] ns, busy in a may_goto loop.
 * rl_stall_wait (CPU 1), started once the holder has published t_start,
 * must give up with -ETIMEDOUT while the holder still holds the lock.
 */
SEC("tc")
__runtime_only
int rl_stall_holder(struct __sk_buff *skb)
{
	struct rl_elem *e = elem(EL_STALL);
	struct rl_result *r = res(RES_STALL_HOLD);
	__u64 hold = cfg(CFG_STALL_HOLD_NS);
	__u64 t;
	int err;

	if (!e || !r)
		return 1;
	__sync_fetch_and_add(&r->runs, 1);
	err = bpf_res_spin_lock(&e->lock);
	if (err) {
		r->err = err;
		return 2;
	}
	t = now();
	r->t_start = t;
	hold_until(t + hold, r);
	r->t_end = now();
	__sync_fetch_and_add(&r->ok, 1);
	bpf_res_spin_unlock(&e->lock);
	return 0;
}

SEC("tc")
__runtime_only
int rl_stall_wait(struct __sk_buff *skb)
{
	struct rl_elem *e = elem(EL_STALL);
	struct rl_result *r = res(RES_STALL_WAIT);
	__u64 t0, t1;
	int err;

	if (!e || !r)
		return 1;
	__sync_fetch_and_add(&r->runs, 1);
	t0 = now();
	err = bpf_res_spin_lock(&e->lock);
	t1 = now();
	r->t_start = t0;
	r->t_end = t1;
	if (err) {
		count_failure(r, err, t1 - t0);
		return 0;
	}
	__sync_fetch_and_add(&r->ok, 1);
	bpf_res_spin_unlock(&e->lock);
	return 0;
}

/*
 * runtime/res_lock_exact_total and the counter half of
 * runtime/res_lock_irqsave: a load, a delay, a store under the lock (as
 * runtime_spin_lock.c), so that without mutual exclusion increments get
 * lost. A failed attempt is counted, never silently dropped (and the test
 * allows none).
 */
SEC("tc")
__runtime_only
int rl_counter(struct __sk_buff *skb)
{
	struct rl_elem *e = elem(EL_COUNTER);
	struct rl_result *r = res(RES_COUNTER);
	__u64 count, t0;
	int err;

	if (!e || !r)
		return 1;
	t0 = now();
	err = bpf_res_spin_lock(&e->lock);
	if (err) {
		count_failure(r, err, now() - t0);
		return 2;
	}
	count = e->count;
	spin_delay(32);
	e->count = count + 1;
	bpf_res_spin_unlock(&e->lock);
	return 0;
}

SEC("tc")
__runtime_only
int rl_counter_irqsave(struct __sk_buff *skb)
{
	struct rl_elem *e = elem(EL_COUNTER_IRQ);
	struct rl_result *r = res(RES_COUNTER_IRQ);
	unsigned long flags;
	__u64 count, t0;
	int err;

	if (!e || !r)
		return 1;
	t0 = now();
	err = bpf_res_spin_lock_irqsave(&e->lock, &flags);
	if (err) {
		count_failure(r, err, now() - t0);
		return 2;
	}
	count = e->count;
	spin_delay(32);
	e->count = count + 1;
	bpf_res_spin_unlock_irqrestore(&e->lock, &flags);
	return 0;
}

/*
 * Bit @i of r->aux records whether interrupts were off at checkpoint @i of
 * rl_irqsave; r->aux2 counts the checkpoints passed.
 */
static __always_inline void irqs_off_at(struct rl_result *r, int i)
{
	r->aux |= (__u64)bpf_rqspin_test_irqs_disabled() << i;
	r->aux2++;
}

/*
 * runtime/res_lock_irqsave: the irqsave pair end to end. An AA attempt
 * with the irqsave variant (second lookup of the same element) is detected
 * at once and leaves its flags slot alone; a plain lock nests inside; the
 * lock works afterwards. Interrupts are off exactly inside the irqsave
 * regions: checkpoints 1, 2, 3 and 5 of r->aux, not 0, 4 and 6 (the runner
 * expects 0x2e over 7 checkpoints). Returns 0, or the failing step.
 */
SEC("tc")
__runtime_only
int rl_irqsave(struct __sk_buff *skb)
{
	struct rl_elem *e = elem(EL_IRQ), *e2 = elem(EL_IRQ);
	struct rl_elem *o = elem(EL_IRQ_OTHER);
	struct rl_result *r = res(RES_IRQ);
	unsigned long f1, f2;
	__u64 t0, t1;
	int err;

	if (!e || !e2 || !o || !r)
		return 1;
	__sync_fetch_and_add(&r->runs, 1);
	r->aux = 0;
	r->aux2 = 0;
	irqs_off_at(r, 0);
	err = bpf_res_spin_lock_irqsave(&e->lock, &f1);
	if (err) {
		r->err = err;
		return 2;
	}
	irqs_off_at(r, 1);
	t0 = now();
	err = bpf_res_spin_lock_irqsave(&e2->lock, &f2);
	t1 = now();
	if (!err) {
		bpf_res_spin_unlock_irqrestore(&e2->lock, &f2);
		bpf_res_spin_unlock_irqrestore(&e->lock, &f1);
		return 3;
	}
	count_failure(r, err, t1 - t0);
	irqs_off_at(r, 2);

	if (bpf_res_spin_lock(&o->lock)) {
		bpf_res_spin_unlock_irqrestore(&e->lock, &f1);
		return 4;
	}
	irqs_off_at(r, 3);
	bpf_res_spin_unlock(&o->lock);
	bpf_res_spin_unlock_irqrestore(&e->lock, &f1);
	irqs_off_at(r, 4);

	if (bpf_res_spin_lock_irqsave(&e2->lock, &f2))
		return 5;
	irqs_off_at(r, 5);
	__sync_fetch_and_add(&r->ok, 1);
	bpf_res_spin_unlock_irqrestore(&e2->lock, &f2);
	irqs_off_at(r, 6);
	return 0;
}

/*
 * runtime/res_lock_user_update: one critical section on the lock of @v.
 * @o is the owner record of that lock word, @st the map's published state.
 * Inside, the owner must be nobody on entry and still @me on exit: anyone
 * else who got in meanwhile either left its own id or cleared it. The
 * section lasts @hold_ns (a may_goto hold loop), while user space keeps
 * overwriting the element, lock bytes included, and reading it back.
 */
static __always_inline int upd_section(struct rl_upd_val *v, struct rl_owner *o,
				       struct rl_upd_state *st, struct rl_result *r,
				       __u64 me, __u64 hold_ns)
{
	__u64 t0, t1, held;
	int err;

	__sync_fetch_and_add(&r->attempts, 1);
	t0 = now();
	err = bpf_res_spin_lock(&v->lock);
	t1 = now();
	if (err) {
		count_failure(r, err, t1 - t0);
		return 0;
	}
	__sync_fetch_and_add(&st->holders, 1);
	__sync_fetch_and_add(&st->gen, 1);
	if (o->owner != 0)
		__sync_fetch_and_add(&r->violations, 1);
	o->owner = me;
	o->sections++;

	hold_until(t1 + hold_ns, r);

	if (o->owner != me)
		__sync_fetch_and_add(&r->violations, 1);
	o->owner = 0;
	held = now() - t1;
	if (held > r->max_hold_ns)
		r->max_hold_ns = held;
	if (held > st->max_hold_ns)
		st->max_hold_ns = held;
	__sync_fetch_and_add(&r->ok, 1);
	__sync_fetch_and_add(&st->holders, -1);
	bpf_res_spin_unlock(&v->lock);
	return 0;
}

static __always_inline int upd_array(__u32 slot, __u64 me, __u32 cfg_slot)
{
	__u32 key = 0, state_key = STATE_ARRAY;
	struct rl_upd_val *v = bpf_map_lookup_elem(&rl_upd_array, &key);
	struct rl_owner *o = bpf_map_lookup_elem(&rl_owner_array, &key);
	struct rl_upd_state *st = bpf_map_lookup_elem(&rl_upd_state, &state_key);
	struct rl_result *r = res(slot);
	__u64 hold_ns = cfg(cfg_slot);

	if (!v || !o || !st || !r)
		return 1;
	__sync_fetch_and_add(&r->runs, 1);
	return upd_section(v, o, st, r, me, hold_ns);
}

/* The owner record of the lock word at @v: keyed by the distance of the
 * element's memory to @anchor, a map value that never moves. Subtracting
 * two pointers gives a plain number to privileged programs (the runner is
 * root). Returns NULL only if the owner map is full.
 */
static __always_inline struct rl_owner *owner_of(struct rl_upd_val *v, void *anchor)
{
	__s64 key = (long)v - (long)anchor;
	struct rl_owner zero = {}, *o;

	o = bpf_map_lookup_elem(&rl_owner_hash, &key);
	if (o)
		return o;
	/* Another CPU may insert it first; then the lookup finds its entry. */
	bpf_map_update_elem(&rl_owner_hash, &key, &zero, BPF_NOEXIST);
	return bpf_map_lookup_elem(&rl_owner_hash, &key);
}

static __always_inline int upd_hash(__u32 slot, __u64 me, __u32 cfg_slot)
{
	__u32 key = 0, state_key = STATE_HASH;
	struct rl_upd_state *st = bpf_map_lookup_elem(&rl_upd_state, &state_key);
	struct rl_result *r = res(slot);
	__u64 hold_ns = cfg(cfg_slot);
	struct rl_upd_val *v;
	struct rl_owner *o;

	if (!st || !r)
		return 1;
	__sync_fetch_and_add(&r->runs, 1);
	v = bpf_map_lookup_elem(&rl_upd_hash, &key);
	if (!v) {
		/* Deleted by user space just now: nothing to lock. */
		__sync_fetch_and_add(&r->not_found, 1);
		return 0;
	}
	o = owner_of(v, st);
	if (!o)
		return 3;
	return upd_section(v, o, st, r, me, hold_ns);
}

SEC("tc")
__runtime_only
int rl_upd_array_holder(struct __sk_buff *skb)
{
	return upd_array(RES_UPD_ARRAY_HOLDER, OWNER_HOLDER, CFG_UPD_HOLD_NS);
}

SEC("tc")
__runtime_only
int rl_upd_array_contender(struct __sk_buff *skb)
{
	return upd_array(RES_UPD_ARRAY_CONT, OWNER_CONTENDER, CFG_UPD_CONT_NS);
}

SEC("tc")
__runtime_only
int rl_upd_hash_holder(struct __sk_buff *skb)
{
	return upd_hash(RES_UPD_HASH_HOLDER, OWNER_HOLDER, CFG_UPD_HOLD_NS);
}

SEC("tc")
__runtime_only
int rl_upd_hash_contender(struct __sk_buff *skb)
{
	return upd_hash(RES_UPD_HASH_CONT, OWNER_CONTENDER, CFG_UPD_CONT_NS);
}

/* One timed attempt on the element's lock, after the storm: it must be
 * free. Returns 0 if taken, 1 if there is no element, 2 if the attempt
 * failed; the error and the time are in rl_res[RES_UPD_PROBE].
 */
static __always_inline int upd_probe(struct rl_upd_val *v)
{
	struct rl_result *r = res(RES_UPD_PROBE);
	__u64 t0, t1;
	int err;

	if (!r)
		return 3;
	if (!v)
		return 1;
	__sync_fetch_and_add(&r->runs, 1);
	t0 = now();
	err = bpf_res_spin_lock(&v->lock);
	t1 = now();
	r->err = err;
	r->ns = t1 - t0;
	if (err)
		return 2;
	__sync_fetch_and_add(&r->ok, 1);
	bpf_res_spin_unlock(&v->lock);
	return 0;
}

SEC("tc")
__runtime_only
int rl_upd_probe_array(struct __sk_buff *skb)
{
	__u32 key = 0;

	return upd_probe(bpf_map_lookup_elem(&rl_upd_array, &key));
}

SEC("tc")
__runtime_only
int rl_upd_probe_hash(struct __sk_buff *skb)
{
	__u32 key = 0;

	return upd_probe(bpf_map_lookup_elem(&rl_upd_hash, &key));
}

/*
 * runtime/res_lock_map_types: locks element 0 of rl_mt_target, whose fd
 * the runner may replace with a map it created. Loads only if that map's
 * value has a usable bpf_res_spin_lock.
 */
SEC("tc")
__runtime_only
int rl_mt_lock_target(struct __sk_buff *skb)
{
	__u32 key = 0;
	struct rl_elem *e = bpf_map_lookup_elem(&rl_mt_target, &key);

	if (!e)
		return 1;
	if (bpf_res_spin_lock(&e->lock))
		return 2;
	e->count++;
	bpf_res_spin_unlock(&e->lock);
	return 0;
}

char _license[] SEC("license") = "GPL";
