// SPDX-License-Identifier: GPL-2.0
/*
 * Runtime test program for runtime/spin_lock_exact_total in tools/runner:
 * two user threads run this program 20000 times each with BPF_PROG_TEST_RUN,
 * and the runner checks that not a single increment was lost. The program
 * is not a verifier test by itself, hence __runtime_only.
 *
 * The increment is a load, a short busy loop, then a store, so that without
 * mutual exclusion the two threads' updates overlap and get lost almost every
 * run (a bare "count++" is one instruction and rarely races, so the test could
 * pass on a broken lock).
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "bpf_misc.h"

struct counter_val {
	struct bpf_spin_lock lock;
	__u64 count;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct counter_val);
} counter SEC(".maps");

SEC("tc")
__runtime_only
int spin_lock_counter(struct __sk_buff *skb)
{
	struct counter_val *val;
	__u32 key = 0;
	__u64 count;
	int i;

	val = bpf_map_lookup_elem(&counter, &key);
	if (!val)
		return 0;

	bpf_spin_lock(&val->lock);
	count = val->count;
	for (i = 0; i < 32; i++)
		asm volatile("%0 += 0" : "+r"(count));
	val->count = count + 1;
	bpf_spin_unlock(&val->lock);
	return 0;
}

char _license[] SEC("license") = "GPL";
