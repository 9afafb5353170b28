// SPDX-License-Identifier: GPL-2.0
/*
 * Programs for `bpf-runner --bench` (tools/runner/src/bench.rs): the cost
 * of a lock + unlock pair from BPF, bpf_rqspin_lock() against
 * bpf_spin_lock(). Not tests, hence __runtime_only.
 *
 * All programs have the same shape: look up the element, lock, increment a
 * counter, unlock. bench_empty does the lookup and the increment without a
 * lock; its time is the baseline the runner subtracts, so what remains is
 * the lock and unlock alone (plus, for the kfuncs, the call itself).
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "bpf_misc.h"
#include "bpf_rqspinlock.h"

struct bench_val {
	struct bpf_spin_lock sl;
	struct bpf_rqspin_lock rq;
	__u64 count;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct bench_val);
} bench_map SEC(".maps");

static __always_inline struct bench_val *bench_lookup(void)
{
	__u32 key = 0;

	return bpf_map_lookup_elem(&bench_map, &key);
}

SEC("tc")
__runtime_only
int bench_empty(struct __sk_buff *skb)
{
	struct bench_val *v = bench_lookup();

	if (!v)
		return 1;
	v->count++;
	return 0;
}

SEC("tc")
__runtime_only
int bench_spin_lock(struct __sk_buff *skb)
{
	struct bench_val *v = bench_lookup();

	if (!v)
		return 1;
	bpf_spin_lock(&v->sl);
	v->count++;
	bpf_spin_unlock(&v->sl);
	return 0;
}

SEC("tc")
__runtime_only
int bench_rqspin_lock(struct __sk_buff *skb)
{
	struct bpf_rqspin_guard *g;
	struct bench_val *v = bench_lookup();

	if (!v)
		return 1;
	g = bpf_rqspin_lock(&v->rq);
	if (!g)
		return 2;
	v->count++;
	bpf_rqspin_unlock(g);
	return 0;
}

SEC("tc")
__runtime_only
int bench_rqspin_lock_irqsave(struct __sk_buff *skb)
{
	struct bpf_rqspin_guard *g;
	struct bench_val *v = bench_lookup();

	if (!v)
		return 1;
	g = bpf_rqspin_lock_irqsave(&v->rq);
	if (!g)
		return 2;
	v->count++;
	bpf_rqspin_unlock_irqrestore(g);
	return 0;
}

char _license[] SEC("license") = "GPL";
