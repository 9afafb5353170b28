// SPDX-License-Identifier: GPL-2.0
/*
 * Runtime test programs for the runtime/rqspin_* tests of tools/runner
 * (tools/runner/src/runtime/rqspin.rs). The runner drives them with
 * BPF_PROG_TEST_RUN, from threads pinned to CPU 0 and CPU 1, and reads what
 * they measured from the rq_res map; none is a verifier test on its own,
 * hence __runtime_only.
 *
 * Every program measures its own lock attempts with
 * bpf_rqspin_ktime_get_ns() (which is callable while locks are held), so
 * the times the runner checks are the kernel's, not the syscall's.
 *
 * The layouts of struct rq_result and of the map keys are mirrored in
 * rqspin.rs; change both together.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "bpf_misc.h"
#include "bpf_rqspinlock.h"

#define EDEADLK		35
#define ETIMEDOUT	110

/* Elements of rq_locks, one (or two) per test. */
#define EL_AA		0
#define EL_ABBA_A	1
#define EL_ABBA_B	2
#define EL_STALL	3
#define EL_COUNTER	4
#define EL_OOO_A	5
#define EL_OOO_B	6
#define EL_IRQ		7
#define EL_IRQ_OTHER	8
#define EL_COUNTER_IRQ	9
#define NR_EL		10

/* Slots of rq_res. */
#define RES_AA		0
#define RES_ABBA_AB	1
#define RES_ABBA_BA	2
#define RES_OVERFLOW	3
#define RES_STALL_HOLD	4
#define RES_STALL_WAIT	5
#define RES_COUNTER	6
#define RES_SCRIBBLE	7
#define RES_OOO		8
#define RES_IRQ		9
#define RES_COUNTER_IRQ	10
#define NR_RES		11

/* Slots of rq_cfg. */
#define CFG_OVERFLOW_TARGET	0
#define CFG_STALL_HOLD_NS	1
#define NR_CFG			2

/* Locks held at once by rq_overflow: more than the 31 the held table
 * remembers (rust/rqspinlock/held.rs, NR_HELD).
 */
#define NR_HOLD		34
#define NR_MANY		40

struct rq_elem {
	struct bpf_rqspin_lock lock;
	__u32 pad;
	__u64 count;
};

/* What a program saw; every field is u64 (offset = 8 * index). */
struct rq_result {
	__s64 err;	/* 0: last error seen */
	__u64 ns;	/* 1: duration of the last failed attempt */
	__u64 max_ns;	/* 2: longest failed attempt */
	__u64 ok;	/* 3: successful attempts */
	__u64 deadlk;	/* 4: attempts that failed with -EDEADLK */
	__u64 timedout;	/* 5: attempts that failed with -ETIMEDOUT */
	__u64 other;	/* 6: any other failure (a bug) */
	__u64 t_start;	/* 7: start of a measured interval */
	__u64 t_end;	/* 8: end of it */
	__u64 aux;	/* 9: test specific */
	__u64 aux2;	/* 10: test specific */
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, NR_EL);
	__type(key, __u32);
	__type(value, struct rq_elem);
} rq_locks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, NR_RES);
	__type(key, __u32);
	__type(value, struct rq_result);
} rq_res SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, NR_CFG);
	__type(key, __u32);
	__type(value, __u64);
} rq_cfg SEC(".maps");

struct rq_many_val {
	struct bpf_rqspin_lock l[NR_MANY];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct rq_many_val);
} rq_many SEC(".maps");

/* The lock word userspace scribbles on (runtime/rqspin_scribble). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct rq_elem);
} rq_scribble SEC(".maps");

static __always_inline struct rq_elem *elem(__u32 key)
{
	return bpf_map_lookup_elem(&rq_locks, &key);
}

static __always_inline struct rq_result *res(__u32 key)
{
	return bpf_map_lookup_elem(&rq_res, &key);
}

static __always_inline __u64 cfg(__u32 key)
{
	__u64 *v = bpf_map_lookup_elem(&rq_cfg, &key);

	return v ? *v : 0;
}

static __always_inline __u64 now(void)
{
	return bpf_rqspin_ktime_get_ns();
}

/* Counts a failed attempt that took @ns; several CPUs may share @r. */
static __always_inline void count_failure(struct rq_result *r, __u64 ns)
{
	int err = bpf_rqspin_last_error();

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

/* A busy loop the compiler keeps: @n register additions. */
static __always_inline void spin_delay(int n)
{
	__u64 x = 0;
	int i;

	for (i = 0; i < n; i++)
		asm volatile("%0 += 1" : "+r"(x));
}

/*
 * runtime/rqspin_aa: the same lock twice on one CPU. The second attempt must
 * fail at once with -EDEADLK (the AA check runs on the first check of the
 * wait); without it, it would spin until the 0.25 s timeout. Returns 0 when
 * the sequence ran as expected, else where it went wrong.
 */
SEC("tc")
__runtime_only
int rq_aa(struct __sk_buff *skb)
{
	struct bpf_rqspin_guard *g1, *g2;
	struct rq_elem *e = elem(EL_AA);
	struct rq_result *r = res(RES_AA);
	__u64 t0, t1;

	if (!e || !r)
		return 1;
	g1 = bpf_rqspin_lock(&e->lock);
	if (!g1) {
		r->err = bpf_rqspin_last_error();
		return 2;
	}
	t0 = now();
	g2 = bpf_rqspin_lock(&e->lock);
	t1 = now();
	if (g2) {
		/* Taken twice: mutual exclusion is broken. */
		bpf_rqspin_unlock(g2);
		bpf_rqspin_unlock(g1);
		return 3;
	}
	count_failure(r, t1 - t0);
	bpf_rqspin_unlock(g1);

	/* The failed attempt left nothing behind: the lock works again. */
	g1 = bpf_rqspin_lock(&e->lock);
	if (!g1)
		return 4;
	__sync_fetch_and_add(&r->ok, 1);
	bpf_rqspin_unlock(g1);
	return 0;
}

/*
 * runtime/rqspin_abba: CPU 0 runs rq_abba_ab (A then B), CPU 1 rq_abba_ba
 * (B then A). When each holds its first lock and waits for the second, the
 * ABBA check (every 1 ms) must fail one of them with -EDEADLK; the delay
 * between the two locks makes that likely.
 */
static __always_inline int abba(__u32 first, __u32 second, __u32 slot)
{
	struct bpf_rqspin_guard *g1, *g2;
	struct rq_elem *a = elem(first);
	struct rq_elem *b = elem(second);
	struct rq_result *r = res(slot);
	__u64 t0, t1;

	if (!a || !b || !r)
		return 1;
	t0 = now();
	g1 = bpf_rqspin_lock(&a->lock);
	t1 = now();
	if (!g1) {
		count_failure(r, t1 - t0);
		return 0;
	}
	a->count++;
	spin_delay(64);
	t0 = now();
	g2 = bpf_rqspin_lock(&b->lock);
	t1 = now();
	if (!g2) {
		count_failure(r, t1 - t0);
		if (bpf_rqspin_last_error() == -EDEADLK) {
			/* aux: the last ABBA detection time */
			r->aux = t1 - t0;
			if (t1 - t0 > r->aux2)
				r->aux2 = t1 - t0;
		}
		bpf_rqspin_unlock(g1);
		return 0;
	}
	b->count++;
	__sync_fetch_and_add(&r->ok, 1);
	bpf_rqspin_unlock(g2);
	bpf_rqspin_unlock(g1);
	return 0;
}

SEC("tc")
__runtime_only
int rq_abba_ab(struct __sk_buff *skb)
{
	return abba(EL_ABBA_A, EL_ABBA_B, RES_ABBA_AB);
}

SEC("tc")
__runtime_only
int rq_abba_ba(struct __sk_buff *skb)
{
	return abba(EL_ABBA_B, EL_ABBA_A, RES_ABBA_BA);
}

/*
 * runtime/rqspin_held_overflow: hold NR_HOLD (34) locks, more than the 31
 * the held table remembers, then try lock number rq_cfg[CFG_OVERFLOW_TARGET]
 * again. A remembered one (index < 31) is an AA deadlock found at once; one
 * beyond the table is invisible to the check and only the timeout ends the
 * attempt (-ETIMEDOUT after 0.25 s). Everything is released in reverse
 * order on every path. Returns 0, or 100 + i if lock i could not be taken.
 */
#define TAKE(i)							\
	do {							\
		g##i = bpf_rqspin_lock(&m->l[i]);		\
		if (!g##i) {					\
			ret = 100 + (i);			\
			goto out_##i;				\
		}						\
	} while (0)

SEC("tc")
__runtime_only
int rq_overflow(struct __sk_buff *skb)
{
	struct bpf_rqspin_guard *g0, *g1, *g2, *g3, *g4, *g5, *g6, *g7, *g8,
		*g9, *g10, *g11, *g12, *g13, *g14, *g15, *g16, *g17, *g18,
		*g19, *g20, *g21, *g22, *g23, *g24, *g25, *g26, *g27, *g28,
		*g29, *g30, *g31, *g32, *g33, *gt;
	struct rq_result *r = res(RES_OVERFLOW);
	struct rq_many_val *m;
	__u32 key = 0, target;
	__u64 t0, t1;
	int ret = 0;

	m = bpf_map_lookup_elem(&rq_many, &key);
	if (!m || !r)
		return 1;
	target = cfg(CFG_OVERFLOW_TARGET);
	if (target >= NR_MANY)
		return 2;

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
	gt = bpf_rqspin_lock(&m->l[target]);
	t1 = now();
	if (gt) {
		/* Only possible for a target we do not hold. */
		__sync_fetch_and_add(&r->ok, 1);
		bpf_rqspin_unlock(gt);
	} else {
		count_failure(r, t1 - t0);
	}

	/* Reverse order; out_N is entered when TAKE(N) failed, with locks
	 * 0..N-1 held.
	 */
	bpf_rqspin_unlock(g33);
out_33:
	bpf_rqspin_unlock(g32);
out_32:
	bpf_rqspin_unlock(g31);
out_31:
	bpf_rqspin_unlock(g30);
out_30:
	bpf_rqspin_unlock(g29);
out_29:
	bpf_rqspin_unlock(g28);
out_28:
	bpf_rqspin_unlock(g27);
out_27:
	bpf_rqspin_unlock(g26);
out_26:
	bpf_rqspin_unlock(g25);
out_25:
	bpf_rqspin_unlock(g24);
out_24:
	bpf_rqspin_unlock(g23);
out_23:
	bpf_rqspin_unlock(g22);
out_22:
	bpf_rqspin_unlock(g21);
out_21:
	bpf_rqspin_unlock(g20);
out_20:
	bpf_rqspin_unlock(g19);
out_19:
	bpf_rqspin_unlock(g18);
out_18:
	bpf_rqspin_unlock(g17);
out_17:
	bpf_rqspin_unlock(g16);
out_16:
	bpf_rqspin_unlock(g15);
out_15:
	bpf_rqspin_unlock(g14);
out_14:
	bpf_rqspin_unlock(g13);
out_13:
	bpf_rqspin_unlock(g12);
out_12:
	bpf_rqspin_unlock(g11);
out_11:
	bpf_rqspin_unlock(g10);
out_10:
	bpf_rqspin_unlock(g9);
out_9:
	bpf_rqspin_unlock(g8);
out_8:
	bpf_rqspin_unlock(g7);
out_7:
	bpf_rqspin_unlock(g6);
out_6:
	bpf_rqspin_unlock(g5);
out_5:
	bpf_rqspin_unlock(g4);
out_4:
	bpf_rqspin_unlock(g3);
out_3:
	bpf_rqspin_unlock(g2);
out_2:
	bpf_rqspin_unlock(g1);
out_1:
	bpf_rqspin_unlock(g0);
out_0:
	return ret;
}

/* Locks and unlocks each of the NR_MANY locks on its own; returns how many
 * were taken (NR_MANY when all are free and the held table is clean).
 */
SEC("tc")
__runtime_only
int rq_many_each(struct __sk_buff *skb)
{
	struct bpf_rqspin_guard *g;
	struct rq_many_val *m;
	__u32 key = 0;
	int i, n = 0;

	m = bpf_map_lookup_elem(&rq_many, &key);
	if (!m)
		return -1;
	for (i = 0; i < NR_MANY; i++) {
		g = bpf_rqspin_lock(&m->l[i]);
		if (!g)
			continue;
		n++;
		bpf_rqspin_unlock(g);
	}
	return n;
}

/*
 * runtime/rqspin_stalled_holder: rq_stall_holder (CPU 0) takes the lock and
 * keeps it for rq_cfg[CFG_STALL_HOLD_NS] ns, busy-waiting with bpf_loop()
 * (allowed: the verifier only sees a reference, not a lock). rq_stall_wait
 * (CPU 1), started once the holder has published t_start, must give up with
 * -ETIMEDOUT while the holder still holds the lock.
 */
struct stall_ctx {
	__u64 end;
};

static int stall_cb(__u32 i, void *data)
{
	struct stall_ctx *c = data;

	return now() >= c->end;
}

SEC("tc")
__runtime_only
int rq_stall_holder(struct __sk_buff *skb)
{
	struct bpf_rqspin_guard *g;
	struct rq_elem *e = elem(EL_STALL);
	struct rq_result *r = res(RES_STALL_HOLD);
	struct stall_ctx c;
	int k;

	if (!e || !r)
		return 1;
	g = bpf_rqspin_lock(&e->lock);
	if (!g) {
		r->err = bpf_rqspin_last_error();
		return 2;
	}
	r->t_start = now();
	c.end = r->t_start + cfg(CFG_STALL_HOLD_NS);
	/* bpf_loop() runs at most 8M iterations per call and stops early
	 * once the hold time has passed; 64 calls cover 1.5 s even at
	 * 3 ns per iteration.
	 */
	for (k = 0; k < 64; k++) {
		bpf_loop(1 << 23, stall_cb, &c, 0);
		if (now() >= c.end)
			break;
	}
	r->t_end = now();
	r->aux = k;
	__sync_fetch_and_add(&r->ok, 1);
	bpf_rqspin_unlock(g);
	return 0;
}

SEC("tc")
__runtime_only
int rq_stall_wait(struct __sk_buff *skb)
{
	struct bpf_rqspin_guard *g;
	struct rq_elem *e = elem(EL_STALL);
	struct rq_result *r = res(RES_STALL_WAIT);
	__u64 t0, t1;

	if (!e || !r)
		return 1;
	t0 = now();
	g = bpf_rqspin_lock(&e->lock);
	t1 = now();
	r->t_start = t0;
	r->t_end = t1;
	if (!g) {
		count_failure(r, t1 - t0);
		return 0;
	}
	__sync_fetch_and_add(&r->ok, 1);
	bpf_rqspin_unlock(g);
	return 0;
}

/*
 * runtime/rqspin_exact_total and the counter half of runtime/rqspin_irqsave:
 * a load, a delay, a store under the lock (as runtime_spin_lock.c), so that
 * without mutual exclusion increments get lost. A failed attempt is counted,
 * never silently dropped.
 */
static __always_inline int counter(__u32 el, __u32 slot, int irqsave)
{
	struct bpf_rqspin_guard *g;
	struct rq_elem *e = elem(el);
	struct rq_result *r = res(slot);
	__u64 count, t0;

	if (!e || !r)
		return 1;
	t0 = now();
	g = irqsave ? bpf_rqspin_lock_irqsave(&e->lock) : bpf_rqspin_lock(&e->lock);
	if (!g) {
		count_failure(r, now() - t0);
		return 2;
	}
	count = e->count;
	spin_delay(32);
	e->count = count + 1;
	if (irqsave)
		bpf_rqspin_unlock_irqrestore(g);
	else
		bpf_rqspin_unlock(g);
	return 0;
}

SEC("tc")
__runtime_only
int rq_counter(struct __sk_buff *skb)
{
	return counter(EL_COUNTER, RES_COUNTER, 0);
}

SEC("tc")
__runtime_only
int rq_counter_irqsave(struct __sk_buff *skb)
{
	return counter(EL_COUNTER_IRQ, RES_COUNTER_IRQ, 1);
}

/*
 * runtime/rqspin_scribble: one attempt on whatever word userspace wrote into
 * rq_scribble. Returns 0 if the lock was taken (and released), 1 if the
 * attempt failed; the error and the time are in rq_res[RES_SCRIBBLE].
 */
SEC("tc")
__runtime_only
int rq_scribble_lock(struct __sk_buff *skb)
{
	struct bpf_rqspin_guard *g;
	struct rq_result *r = res(RES_SCRIBBLE);
	struct rq_elem *e;
	__u32 key = 0;
	__u64 t0, t1;

	e = bpf_map_lookup_elem(&rq_scribble, &key);
	if (!e || !r)
		return -1;
	r->err = 0;
	t0 = now();
	g = bpf_rqspin_lock(&e->lock);
	t1 = now();
	r->ns = t1 - t0;
	if (!g) {
		r->err = bpf_rqspin_last_error();
		return 1;
	}
	bpf_rqspin_unlock(g);
	return 0;
}

/*
 * runtime/rqspin_out_of_order: lock A, lock B, unlock A (not LIFO), then
 *  - B again must be an AA deadlock at once: B's entry survived A's removal;
 *  - A again must succeed: A's entry is gone, no false AA;
 * then unlock B before A (out of order again). Run several times: the first
 * lock of A in each new run must succeed. Returns 0, or the failing step.
 */
SEC("tc")
__runtime_only
int rq_ooo(struct __sk_buff *skb)
{
	struct bpf_rqspin_guard *ga, *gb, *g;
	struct rq_elem *a = elem(EL_OOO_A);
	struct rq_elem *b = elem(EL_OOO_B);
	struct rq_result *r = res(RES_OOO);
	__u64 t0, t1;

	if (!a || !b || !r)
		return 1;
	ga = bpf_rqspin_lock(&a->lock);
	if (!ga) {
		count_failure(r, 0);
		return 2;
	}
	gb = bpf_rqspin_lock(&b->lock);
	if (!gb) {
		count_failure(r, 0);
		bpf_rqspin_unlock(ga);
		return 3;
	}
	bpf_rqspin_unlock(ga);

	t0 = now();
	g = bpf_rqspin_lock(&b->lock);
	t1 = now();
	if (g) {
		bpf_rqspin_unlock(g);
		bpf_rqspin_unlock(gb);
		return 4;
	}
	count_failure(r, t1 - t0);
	if (bpf_rqspin_last_error() != -EDEADLK) {
		bpf_rqspin_unlock(gb);
		return 5;
	}

	t0 = now();
	ga = bpf_rqspin_lock(&a->lock);
	t1 = now();
	r->aux = t1 - t0;
	if (!ga) {
		r->aux2 = bpf_rqspin_last_error();
		bpf_rqspin_unlock(gb);
		return 6;
	}
	bpf_rqspin_unlock(gb);
	bpf_rqspin_unlock(ga);
	__sync_fetch_and_add(&r->ok, 1);
	return 0;
}

/*
 * runtime/rqspin_irqsave: the irqsave pair end to end. The guard records
 * that it saved the interrupt state and what the state was (the runner
 * checks that interrupts were on before); an AA attempt with the irqsave
 * variant is detected; a plain lock nests inside; the lock works afterwards.
 * Returns 0, or the failing step.
 */
SEC("tc")
__runtime_only
int rq_irqsave(struct __sk_buff *skb)
{
	struct bpf_rqspin_guard *g, *g2, *g3;
	struct rq_elem *e = elem(EL_IRQ);
	struct rq_elem *o = elem(EL_IRQ_OTHER);
	struct rq_result *r = res(RES_IRQ);

	if (!e || !o || !r)
		return 1;
	g = bpf_rqspin_lock_irqsave(&e->lock);
	if (!g) {
		r->err = bpf_rqspin_last_error();
		return 2;
	}
	r->aux = g->irqsave;
	r->aux2 = g->irq_flags;

	g2 = bpf_rqspin_lock_irqsave(&e->lock);
	if (g2) {
		bpf_rqspin_unlock_irqrestore(g2);
		bpf_rqspin_unlock_irqrestore(g);
		return 3;
	}
	r->err = bpf_rqspin_last_error();

	g3 = bpf_rqspin_lock(&o->lock);
	if (!g3) {
		bpf_rqspin_unlock_irqrestore(g);
		return 4;
	}
	/* t_start: the nested plain guard's irqsave flag, must be 0 */
	r->t_start = g3->irqsave;
	bpf_rqspin_unlock(g3);
	bpf_rqspin_unlock_irqrestore(g);

	g = bpf_rqspin_lock_irqsave(&e->lock);
	if (!g)
		return 5;
	__sync_fetch_and_add(&r->ok, 1);
	bpf_rqspin_unlock_irqrestore(g);
	return 0;
}

char _license[] SEC("license") = "GPL";
