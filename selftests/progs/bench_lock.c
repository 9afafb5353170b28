// SPDX-License-Identifier: GPL-2.0
/*
 * Programs for `bpf-runner --bench` (tools/runner/src/bench.rs): the cost
 * of a lock + unlock pair from BPF, bpf_res_spin_lock() against
 * bpf_spin_lock(). Not tests, hence __runtime_only.
 *
 * All programs have the same shape: look up the element, lock, increment a
 * counter, unlock. bench_empty does the lookup and the increment without a
 * lock; its time is the baseline the runner subtracts, so what remains is
 * the lock and unlock alone (plus, for the kfuncs, the call itself).
 *
 * A map value may hold one lock of either kind, not both, so each kind has
 * its own map; both are one-element arrays of 16-byte values, so their
 * lookups cost the same and the baseline fits both.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "bpf_misc.h"
#include "bpf_res_spin_lock.h"

struct bench_spin_val {
	struct bpf_spin_lock lock;
	__u32 pad;
	__u64 count;
};

struct bench_res_val {
	struct bpf_res_spin_lock lock;
	__u32 pad;
	__u64 count;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct bench_spin_val);
} bench_spin_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct bench_res_val);
} bench_res_map SEC(".maps");

static __always_inline struct bench_spin_val *spin_lookup(void)
{
	__u32 key = 0;

	return bpf_map_lookup_elem(&bench_spin_map, &key);
}

static __always_inline struct bench_res_val *res_lookup(void)
{
	__u32 key = 0;

	return bpf_map_lookup_elem(&bench_res_map, &key);
}

SEC("tc")
__runtime_only
int bench_empty(struct __sk_buff *skb)
{
	struct bench_res_val *v = res_lookup();

	if (!v)
		return 1;
	v->count++;
	return 0;
}

SEC("tc")
__runtime_only
int bench_spin_lock(struct __sk_buff *skb)
{
	struct bench_spin_val *v = spin_lookup();

	if (!v)
		return 1;
	bpf_spin_lock(&v->lock);
	v->count++;
	bpf_spin_unlock(&v->lock);
	return 0;
}

SEC("tc")
__runtime_only
int bench_res_spin_lock(struct __sk_buff *skb)
{
	struct bench_res_val *v = res_lookup();

	if (!v)
		return 1;
	if (bpf_res_spin_lock(&v->lock))
		return 2;
	v->count++;
	bpf_res_spin_unlock(&v->lock);
	return 0;
}

SEC("tc")
__runtime_only
int bench_res_spin_lock_irqsave(struct __sk_buff *skb)
{
	struct bench_res_val *v = res_lookup();
	unsigned long flags;

	if (!v)
		return 1;
	if (bpf_res_spin_lock_irqsave(&v->lock, &flags))
		return 2;
	v->count++;
	bpf_res_spin_unlock_irqrestore(&v->lock, &flags);
	return 0;
}

char _license[] SEC("license") = "GPL";
