// SPDX-License-Identifier: GPL-2.0
/*
 * Lock state and verifier state pruning (Linux 6.12, plain bpf_spin_lock).
 *
 * Every test below has the same skeleton:
 *
 *	if <unknown> goto second
 *	<first path>		; verified FIRST (the not-taken branch goes first,
 *	goto meet		;  the branch target is pushed on the stack)
 * second:
 *	<second path>		; verified SECOND
 * meet:			; prune point (jump target); with
 *	<common tail>		; BPF_F_TEST_STATE_FREQ a checkpoint is stored
 *				; here when the first path arrives
 *
 * The two paths reach "meet" with states that differ in exactly one part of
 * the lock state. In each *_unsafe program the second path is the wrong one,
 * so a verifier whose states_equal() forgets that part of the lock state
 * prunes it at "meet" and wrongly accepts the program. Each *_safe sibling has
 * the same shape but a correct second path; it must be accepted, and where it
 * carries __msg("N: safe") it also proves that the second path was pruned at
 * "meet" (insn N), so a verifier that is too strict fails it.
 *
 * How N is derived: N is the index of the first insn after the "meet" label,
 * counted from the program's first insn, where "r = imm ll" (ld_imm64) takes
 * two slots. For programs with a subprog or callback, libbpf appends the
 * subprog's code after the main program, so its insns are numbered from
 * len(main). The numbers were counted from the asm and cross-checked with
 * llvm-objdump -d on the object; VERIFY-IN-VM marks the ones that depend on
 * libbpf's subprog placement, which only a load can confirm.
 *
 * Each *_unsafe program is accepted by a verifier whose states_equal() lacks
 * the one comparison its comment names.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include "bpf_misc.h"

/* Declared here rather than via a shared header so that this file depends on
 * nothing but the kernel's 6.12 kfuncs.
 */
void *bpf_obj_new_impl(__u64 local_type_id, void *meta) __ksym;
void bpf_obj_drop_impl(void *kptr, void *meta) __ksym;

/* clang emits no BTF FUNC record for a kfunc that only inline assembly
 * calls, and libbpf needs one to resolve the call. This function, which no
 * program calls, makes clang emit them.
 */
void __kfunc_btf_root(void)
{
	bpf_obj_drop_impl(bpf_obj_new_impl(0, 0), 0);
}

/* The lock is at offset 4 in both the map value and the allocated object, so
 * every "rX += 4" before a lock call below points at it.
 */
struct val {
	int cnt;
	struct bpf_spin_lock l;
};

struct lk_node {
	int data;
	struct bpf_spin_lock l;
};

/* Two elements (keys 0 and 1) give two map-value pointers with different
 * reg->id, i.e. two different active_lock.id values for the same map.
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, int);
	__type(value, struct val);
} map_a SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, int);
	__type(value, struct val);
} map_b SEC(".maps");

/* Global locks: each section becomes its own single-element array map. A
 * pointer made by ld_imm64 to a global has reg->id == 0 (check_ld_imm()), so
 * locking it sets active_lock = { .ptr = that map, .id = 0 }: two global locks
 * differ ONLY in active_lock.ptr.
 */
/* Hidden, so the BTF linkage is static and libbpf does not try to mmap the
 * map: 6.12 refuses mmap for a map that holds a bpf_spin_lock (-ENOTSUPP).
 */
struct bpf_spin_lock glock_a SEC(".bss.A") __hidden;
struct bpf_spin_lock glock_b SEC(".bss.B") __hidden;

/* r6 = &map_a[0], r7 = &map_a[1]; on a failed lookup jump to l_exit_%=,
 * which every user defines as "r0 = 0; exit". 18 insns (ld_imm64 = 2).
 */
#define LOOKUP_X_Y_TO_R6_R7					\
	"r1 = 0;"						\
	"*(u32 *)(r10 - 4) = r1;"				\
	"r1 = 1;"						\
	"*(u32 *)(r10 - 8) = r1;"				\
	"r2 = r10;"						\
	"r2 += -4;"						\
	"r1 = %[map_a] ll;"					\
	"call %[bpf_map_lookup_elem];"				\
	"if r0 == 0 goto l_exit_%=;"				\
	"r6 = r0;"						\
	"r2 = r10;"						\
	"r2 += -8;"						\
	"r1 = %[map_a] ll;"					\
	"call %[bpf_map_lookup_elem];"				\
	"if r0 == 0 goto l_exit_%=;"				\
	"r7 = r0;"

/* ------------------------------------------------------------------------
 * 1. Lock held vs not held.
 * ------------------------------------------------------------------------
 */

/* First path holds glock_a at meet, second holds nothing; both unlock
 * glock_a after meet. Both states have active_lock.id == 0, so only the
 * active_lock.ptr comparison (old A, cur NULL) tells them apart.
 */
SEC("tc")
__description("lock_prune: global lock held first, not held second")
__failure __msg("bpf_spin_unlock without taking a lock")
__flag(BPF_F_TEST_STATE_FREQ)
__naked void held_vs_not_global_unsafe(void)
{
	asm volatile ("call %[bpf_get_prandom_u32];"
	"if r0 == 0 goto l_second_%=;"
	"r1 = %[glock_a] ll;"
	"call %[bpf_spin_lock];"
	"goto l_meet_%=;"
"l_second_%=:\n"
	/* no lock taken */
	"r0 = 0;"
"l_meet_%=:\n"
	"r1 = %[glock_a] ll;"
	"call %[bpf_spin_unlock];"
	"r0 = 0;"
	"exit;"
	:
	: __imm(bpf_get_prandom_u32),
	  __imm(bpf_spin_lock),
	  __imm(bpf_spin_unlock),
	  __imm_addr(glock_a)
	: __clobber_all);
}

/* insns: 0 call, 1 if, 2-3 ld glock_a, 4 call lock, 5 goto, 6-7 ld glock_a
 * (l_second), 8 call lock, 9 = l_meet.
 */
SEC("tc")
__description("lock_prune: global lock held on both paths")
__success __log_level(2) __msg("9: safe")
__flag(BPF_F_TEST_STATE_FREQ)
__naked void held_vs_not_global_safe(void)
{
	asm volatile ("call %[bpf_get_prandom_u32];"
	"if r0 == 0 goto l_second_%=;"
	"r1 = %[glock_a] ll;"
	"call %[bpf_spin_lock];"
	"goto l_meet_%=;"
"l_second_%=:\n"
	"r1 = %[glock_a] ll;"
	"call %[bpf_spin_lock];"
"l_meet_%=:\n"
	"r1 = %[glock_a] ll;"
	"call %[bpf_spin_unlock];"
	"r0 = 0;"
	"exit;"
	:
	: __imm(bpf_get_prandom_u32),
	  __imm(bpf_spin_lock),
	  __imm(bpf_spin_unlock),
	  __imm_addr(glock_a)
	: __clobber_all);
}

/* The other direction: the first path holds nothing, the second path takes
 * glock_a and exits with it. Old {NULL, 0} vs cur {A, 0}: again only
 * active_lock.ptr differs.
 */
SEC("tc")
__description("lock_prune: global lock not held first, held second")
__failure __msg("bpf_spin_unlock is missing")
__flag(BPF_F_TEST_STATE_FREQ)
__naked void not_vs_held_global_unsafe(void)
{
	asm volatile ("call %[bpf_get_prandom_u32];"
	"if r0 == 0 goto l_second_%=;"
	"goto l_meet_%=;"
"l_second_%=:\n"
	"r1 = %[glock_a] ll;"
	"call %[bpf_spin_lock];"
	/* missing: bpf_spin_unlock(&glock_a) */
"l_meet_%=:\n"
	"r0 = 0;"
	"exit;"
	:
	: __imm(bpf_get_prandom_u32),
	  __imm(bpf_spin_lock),
	  __imm_addr(glock_a)
	: __clobber_all);
}

/* insns: 0 call, 1 if, 2 goto, 3-4 ld (l_second), 5 lock, 6-7 ld, 8 unlock,
 * 9 = l_meet.
 */
SEC("tc")
__description("lock_prune: global lock taken and released on the second path")
__success __log_level(2) __msg("9: safe")
__flag(BPF_F_TEST_STATE_FREQ)
__naked void not_vs_held_global_safe(void)
{
	asm volatile ("call %[bpf_get_prandom_u32];"
	"if r0 == 0 goto l_second_%=;"
	"goto l_meet_%=;"
"l_second_%=:\n"
	"r1 = %[glock_a] ll;"
	"call %[bpf_spin_lock];"
	"r1 = %[glock_a] ll;"
	"call %[bpf_spin_unlock];"
"l_meet_%=:\n"
	"r0 = 0;"
	"exit;"
	:
	: __imm(bpf_get_prandom_u32),
	  __imm(bpf_spin_lock),
	  __imm(bpf_spin_unlock),
	  __imm_addr(glock_a)
	: __clobber_all);
}

/* Same with a map value: old {map_a, id(r6)} vs cur {NULL, 0}. Both the ptr
 * and the id-presence comparison see the difference.
 */
SEC("tc")
__description("lock_prune: map value lock held first, not held second")
__failure __msg("bpf_spin_unlock without taking a lock")
__flag(BPF_F_TEST_STATE_FREQ)
__naked void held_vs_not_mapval_unsafe(void)
{
	asm volatile (LOOKUP_X_Y_TO_R6_R7
	"call %[bpf_get_prandom_u32];"
	"if r0 == 0 goto l_second_%=;"
	"r1 = r6;"
	"r1 += 4;"
	"call %[bpf_spin_lock];"
	"goto l_meet_%=;"
"l_second_%=:\n"
	"r0 = 0;"
"l_meet_%=:\n"
	"r1 = r6;"
	"r1 += 4;"
	"call %[bpf_spin_unlock];"
"l_exit_%=:\n"
	"r0 = 0;"
	"exit;"
	:
	: __imm(bpf_get_prandom_u32),
	  __imm(bpf_map_lookup_elem),
	  __imm(bpf_spin_lock),
	  __imm(bpf_spin_unlock),
	  __imm_addr(map_a)
	: __clobber_all);
}

/* insns: 0-17 lookups, 18 call, 19 if, 20-22 lock, 23 goto,
 * 24-26 lock (l_second), 27 = l_meet.
 */
SEC("tc")
__description("lock_prune: map value lock held on both paths")
__success __log_level(2) __msg("27: safe")
__flag(BPF_F_TEST_STATE_FREQ)
__naked void held_vs_not_mapval_safe(void)
{
	asm volatile (LOOKUP_X_Y_TO_R6_R7
	"call %[bpf_get_prandom_u32];"
	"if r0 == 0 goto l_second_%=;"
	"r1 = r6;"
	"r1 += 4;"
	"call %[bpf_spin_lock];"
	"goto l_meet_%=;"
"l_second_%=:\n"
	"r1 = r6;"
	"r1 += 4;"
	"call %[bpf_spin_lock];"
"l_meet_%=:\n"
	"r1 = r6;"
	"r1 += 4;"
	"call %[bpf_spin_unlock];"
"l_exit_%=:\n"
	"r0 = 0;"
	"exit;"
	:
	: __imm(bpf_get_prandom_u32),
	  __imm(bpf_map_lookup_elem),
	  __imm(bpf_spin_lock),
	  __imm(bpf_spin_unlock),
	  __imm_addr(map_a)
	: __clobber_all);
}

/* ------------------------------------------------------------------------
 * 2. Lock on map A vs map B (active_lock.ptr).
 * ------------------------------------------------------------------------
 */

/* glock_a and glock_b live in different maps (.bss.A, .bss.B) and both have
 * id 0, and the unlock pointer is made after meet: nothing but
 * active_lock.ptr differs between the two states.
 */
SEC("tc")
__description("lock_prune: global lock A first, global lock B second")
__failure __msg("bpf_spin_unlock of different lock")
__flag(BPF_F_TEST_STATE_FREQ)
__naked void map_a_vs_map_b_global_unsafe(void)
{
	asm volatile ("call %[bpf_get_prandom_u32];"
	"if r0 == 0 goto l_second_%=;"
	"r1 = %[glock_a] ll;"
	"call %[bpf_spin_lock];"
	"goto l_meet_%=;"
"l_second_%=:\n"
	"r1 = %[glock_b] ll;"
	"call %[bpf_spin_lock];"
"l_meet_%=:\n"
	"r1 = %[glock_a] ll;"
	"call %[bpf_spin_unlock];"
	"r0 = 0;"
	"exit;"
	:
	: __imm(bpf_get_prandom_u32),
	  __imm(bpf_spin_lock),
	  __imm(bpf_spin_unlock),
	  __imm_addr(glock_a),
	  __imm_addr(glock_b)
	: __clobber_all);
}

/* Same shape, both paths lock glock_b and unlock glock_b. Insns as in
 * held_vs_not_global_safe: l_meet = 9.
 */
SEC("tc")
__description("lock_prune: global lock B on both paths")
__success __log_level(2) __msg("9: safe")
__flag(BPF_F_TEST_STATE_FREQ)
__naked void map_a_vs_map_b_global_safe(void)
{
	asm volatile ("call %[bpf_get_prandom_u32];"
	"if r0 == 0 goto l_second_%=;"
	"r1 = %[glock_b] ll;"
	"call %[bpf_spin_lock];"
	"goto l_meet_%=;"
"l_second_%=:\n"
	"r1 = %[glock_b] ll;"
	"call %[bpf_spin_lock];"
"l_meet_%=:\n"
	"r1 = %[glock_b] ll;"
	"call %[bpf_spin_unlock];"
	"r0 = 0;"
	"exit;"
	:
	: __imm(bpf_get_prandom_u32),
	  __imm(bpf_spin_lock),
	  __imm(bpf_spin_unlock),
	  __imm_addr(glock_b)
	: __clobber_all);
}

/* Map values of map_a and map_b: r6 = &map_a[0], r7 = &map_b[0]. The first
 * path locks r6, the second r7; both unlock r6. The states differ in
 * active_lock.ptr and in the id mapping (id(r6) locked vs id(r7) locked).
 */
SEC("tc")
__description("lock_prune: map_a value first, map_b value second")
__failure __msg("bpf_spin_unlock of different lock")
__flag(BPF_F_TEST_STATE_FREQ)
__naked void map_a_vs_map_b_mapval_unsafe(void)
{
	asm volatile ("r1 = 0;"
	"*(u32 *)(r10 - 4) = r1;"
	"r2 = r10;"
	"r2 += -4;"
	"r1 = %[map_a] ll;"
	"call %[bpf_map_lookup_elem];"
	"if r0 == 0 goto l_exit_%=;"
	"r6 = r0;"
	"r2 = r10;"
	"r2 += -4;"
	"r1 = %[map_b] ll;"
	"call %[bpf_map_lookup_elem];"
	"if r0 == 0 goto l_exit_%=;"
	"r7 = r0;"
	"call %[bpf_get_prandom_u32];"
	"if r0 == 0 goto l_second_%=;"
	"r1 = r6;"
	"r1 += 4;"
	"call %[bpf_spin_lock];"
	"goto l_meet_%=;"
"l_second_%=:\n"
	"r1 = r7;"
	"r1 += 4;"
	"call %[bpf_spin_lock];"
"l_meet_%=:\n"
	"r1 = r6;"
	"r1 += 4;"
	"call %[bpf_spin_unlock];"
"l_exit_%=:\n"
	"r0 = 0;"
	"exit;"
	:
	: __imm(bpf_get_prandom_u32),
	  __imm(bpf_map_lookup_elem),
	  __imm(bpf_spin_lock),
	  __imm(bpf_spin_unlock),
	  __imm_addr(map_a),
	  __imm_addr(map_b)
	: __clobber_all);
}

/* insns: 0-15 lookups (16 insns), 16 call, 17 if, 18-20 lock, 21 goto,
 * 22-24 lock (l_second), 25 = l_meet.
 */
SEC("tc")
__description("lock_prune: map_a value on both paths (map_b looked up too)")
__success __log_level(2) __msg("25: safe")
__flag(BPF_F_TEST_STATE_FREQ)
__naked void map_a_vs_map_b_mapval_safe(void)
{
	asm volatile ("r1 = 0;"
	"*(u32 *)(r10 - 4) = r1;"
	"r2 = r10;"
	"r2 += -4;"
	"r1 = %[map_a] ll;"
	"call %[bpf_map_lookup_elem];"
	"if r0 == 0 goto l_exit_%=;"
	"r6 = r0;"
	"r2 = r10;"
	"r2 += -4;"
	"r1 = %[map_b] ll;"
	"call %[bpf_map_lookup_elem];"
	"if r0 == 0 goto l_exit_%=;"
	"r7 = r0;"
	"call %[bpf_get_prandom_u32];"
	"if r0 == 0 goto l_second_%=;"
	"r1 = r6;"
	"r1 += 4;"
	"call %[bpf_spin_lock];"
	"goto l_meet_%=;"
"l_second_%=:\n"
	"r1 = r6;"
	"r1 += 4;"
	"call %[bpf_spin_lock];"
"l_meet_%=:\n"
	"r1 = r6;"
	"r1 += 4;"
	"call %[bpf_spin_unlock];"
"l_exit_%=:\n"
	"r0 = 0;"
	"exit;"
	:
	: __imm(bpf_get_prandom_u32),
	  __imm(bpf_map_lookup_elem),
	  __imm(bpf_spin_lock),
	  __imm(bpf_spin_unlock),
	  __imm_addr(map_a),
	  __imm_addr(map_b)
	: __clobber_all);
}

/* ------------------------------------------------------------------------
 * 3. Two elements of one map (active_lock.id and reg->id).
 * ------------------------------------------------------------------------
 */

/* r6 = &map_a[0] (id a), r7 = &map_a[1] (id b). The first path locks r6, the
 * second r7, both unlock r6. At meet: old lock a, r6 a; cur lock b, r6 a.
 * check_ids(a, b) on active_lock.id, then check_ids(a, a) for r6 conflicts.
 * Drop either the active_lock.id check_ids() (r6 alone maps a->a) or the
 * map-value check_ids() in regsafe() (lock alone maps a->b) and the states
 * look equal.
 */
SEC("tc")
__description("lock_prune: element 0 locked first, element 1 second")
__failure __msg("bpf_spin_unlock of different lock")
__flag(BPF_F_TEST_STATE_FREQ)
__naked void two_elems_unsafe(void)
{
	asm volatile (LOOKUP_X_Y_TO_R6_R7
	"call %[bpf_get_prandom_u32];"
	"if r0 == 0 goto l_second_%=;"
	"r1 = r6;"
	"r1 += 4;"
	"call %[bpf_spin_lock];"
	"goto l_meet_%=;"
"l_second_%=:\n"
	"r1 = r7;"
	"r1 += 4;"
	"call %[bpf_spin_lock];"
"l_meet_%=:\n"
	"r1 = r6;"
	"r1 += 4;"
	"call %[bpf_spin_unlock];"
"l_exit_%=:\n"
	"r0 = 0;"
	"exit;"
	:
	: __imm(bpf_get_prandom_u32),
	  __imm(bpf_map_lookup_elem),
	  __imm(bpf_spin_lock),
	  __imm(bpf_spin_unlock),
	  __imm_addr(map_a)
	: __clobber_all);
}

/* Safe sibling: the second path locks the element it later unlocks, r7. The
 * states cannot be pruned (old unlocks r6, cur r7), so this one only checks
 * that the program is accepted; held_vs_not_mapval_safe and
 * remap_consistent_safe cover the "prune happened" side.
 */
SEC("tc")
__description("lock_prune: element 0 or element 1, each unlocked itself")
__success
__flag(BPF_F_TEST_STATE_FREQ)
__naked void two_elems_safe(void)
{
	asm volatile (LOOKUP_X_Y_TO_R6_R7
	"call %[bpf_get_prandom_u32];"
	"if r0 == 0 goto l_second_%=;"
	"r1 = r6;"
	"r1 += 4;"
	"call %[bpf_spin_lock];"
	"r1 = r6;"
	"r1 += 4;"
	"call %[bpf_spin_unlock];"
	"goto l_exit_%=;"
"l_second_%=:\n"
	"r1 = r7;"
	"r1 += 4;"
	"call %[bpf_spin_lock];"
	"r1 = r7;"
	"r1 += 4;"
	"call %[bpf_spin_unlock];"
"l_exit_%=:\n"
	"r0 = 0;"
	"exit;"
	:
	: __imm(bpf_get_prandom_u32),
	  __imm(bpf_map_lookup_elem),
	  __imm(bpf_spin_lock),
	  __imm(bpf_spin_unlock),
	  __imm_addr(map_a)
	: __clobber_all);
}

/* ------------------------------------------------------------------------
 * 4. Id remapping: consistent (must prune) vs inconsistent (must not).
 * ------------------------------------------------------------------------
 */

/* First path: lock r7 (id b), r8 = r7. Second path: lock r6 (id a),
 * r8 = r6. Both unlock r8. Old: lock b, r8 b; cur: lock a, r8 a. The
 * mapping b->a is consistent, so a correct verifier prunes at meet. A
 * verifier that compares lock ids with != instead of check_ids() does not.
 * insns: 0-17 lookups, 18 call, 19 if, 20-22 lock r7, 23 r8 = r7, 24 goto,
 * 25-27 lock r6 (l_second), 28 r8 = r6, 29 = l_meet.
 */
SEC("tc")
__description("lock_prune: consistent id remapping is pruned")
__success __log_level(2) __msg("29: safe")
__flag(BPF_F_TEST_STATE_FREQ)
__naked void remap_consistent_safe(void)
{
	asm volatile (LOOKUP_X_Y_TO_R6_R7
	"call %[bpf_get_prandom_u32];"
	"if r0 == 0 goto l_second_%=;"
	"r1 = r7;"
	"r1 += 4;"
	"call %[bpf_spin_lock];"
	"r8 = r7;"
	"goto l_meet_%=;"
"l_second_%=:\n"
	"r1 = r6;"
	"r1 += 4;"
	"call %[bpf_spin_lock];"
	"r8 = r6;"
"l_meet_%=:\n"
	"r1 = r8;"
	"r1 += 4;"
	"call %[bpf_spin_unlock];"
"l_exit_%=:\n"
	"r0 = 0;"
	"exit;"
	:
	: __imm(bpf_get_prandom_u32),
	  __imm(bpf_map_lookup_elem),
	  __imm(bpf_spin_lock),
	  __imm(bpf_spin_unlock),
	  __imm_addr(map_a)
	: __clobber_all);
}

/* Second path: lock r6 (id a) but r8 = r7 (id b). Old: lock b, r8 b; cur:
 * lock a, r8 b. check_ids(b, a) for the lock, then check_ids(b, b) for r8
 * conflicts, so no prune. Without either check_ids() the states look equal.
 */
SEC("tc")
__description("lock_prune: inconsistent id remapping is not pruned")
__failure __msg("bpf_spin_unlock of different lock")
__flag(BPF_F_TEST_STATE_FREQ)
__naked void remap_inconsistent_unsafe(void)
{
	asm volatile (LOOKUP_X_Y_TO_R6_R7
	"call %[bpf_get_prandom_u32];"
	"if r0 == 0 goto l_second_%=;"
	"r1 = r7;"
	"r1 += 4;"
	"call %[bpf_spin_lock];"
	"r8 = r7;"
	"goto l_meet_%=;"
"l_second_%=:\n"
	"r1 = r6;"
	"r1 += 4;"
	"call %[bpf_spin_lock];"
	"r8 = r7;"
"l_meet_%=:\n"
	"r1 = r8;"
	"r1 += 4;"
	"call %[bpf_spin_unlock];"
"l_exit_%=:\n"
	"r0 = 0;"
	"exit;"
	:
	: __imm(bpf_get_prandom_u32),
	  __imm(bpf_map_lookup_elem),
	  __imm(bpf_spin_lock),
	  __imm(bpf_spin_unlock),
	  __imm_addr(map_a)
	: __clobber_all);
}

/* ------------------------------------------------------------------------
 * 5. Map-value reg->id in regsafe(): unlock through another element.
 * ------------------------------------------------------------------------
 */

/* Both paths lock r6 (id a). The unlock goes through r3: r3 = r6 on the
 * first path, r3 = r7 (id b, the other element) on the second. r6 is read
 * after the unlock, so it is live and pins a->a in the idmap: with the
 * active_lock.id check_ids() removed, r3 maps a->b and r6 then conflicts,
 * so this program does not depend on that check. Only the check_ids() on
 * map-value regs in regsafe() rejects it.
 */
SEC("tc")
__description("lock_prune: unlock through a pointer to another element")
__failure __msg("bpf_spin_unlock of different lock")
__flag(BPF_F_TEST_STATE_FREQ)
__naked void regsafe_map_value_id_unsafe(void)
{
	asm volatile (LOOKUP_X_Y_TO_R6_R7
	"call %[bpf_get_prandom_u32];"
	"r9 = r0;"
	"r1 = r6;"
	"r1 += 4;"
	"call %[bpf_spin_lock];"
	"r3 = r6;"
	"if r9 == 0 goto l_second_%=;"
	"goto l_meet_%=;"
"l_second_%=:\n"
	"r3 = r7;"
"l_meet_%=:\n"
	"r1 = r3;"
	"r1 += 4;"
	"call %[bpf_spin_unlock];"
	"r0 = *(u32 *)(r6 + 0);"
"l_exit_%=:\n"
	"r0 = 0;"
	"exit;"
	:
	: __imm(bpf_get_prandom_u32),
	  __imm(bpf_map_lookup_elem),
	  __imm(bpf_spin_lock),
	  __imm(bpf_spin_unlock),
	  __imm_addr(map_a)
	: __clobber_all);
}

/* insns: 0-17 lookups, 18 call, 19 r9 = r0, 20-22 lock, 23 r3 = r6, 24 if,
 * 25 goto, 26 r3 = r6 (l_second), 27 = l_meet.
 */
SEC("tc")
__description("lock_prune: unlock through a copy of the locked pointer")
__success __log_level(2) __msg("27: safe")
__flag(BPF_F_TEST_STATE_FREQ)
__naked void regsafe_map_value_id_safe(void)
{
	asm volatile (LOOKUP_X_Y_TO_R6_R7
	"call %[bpf_get_prandom_u32];"
	"r9 = r0;"
	"r1 = r6;"
	"r1 += 4;"
	"call %[bpf_spin_lock];"
	"r3 = r6;"
	"if r9 == 0 goto l_second_%=;"
	"goto l_meet_%=;"
"l_second_%=:\n"
	"r3 = r6;"
"l_meet_%=:\n"
	"r1 = r3;"
	"r1 += 4;"
	"call %[bpf_spin_unlock];"
	"r0 = *(u32 *)(r6 + 0);"
"l_exit_%=:\n"
	"r0 = 0;"
	"exit;"
	:
	: __imm(bpf_get_prandom_u32),
	  __imm(bpf_map_lookup_elem),
	  __imm(bpf_spin_lock),
	  __imm(bpf_spin_unlock),
	  __imm_addr(map_a)
	: __clobber_all);
}

/* ------------------------------------------------------------------------
 * 6. Global lock vs map value (ptr and id presence both differ).
 * ------------------------------------------------------------------------
 */

SEC("tc")
__description("lock_prune: global lock first, map value lock second")
__failure __msg("bpf_spin_unlock of different lock")
__flag(BPF_F_TEST_STATE_FREQ)
__naked void global_vs_mapval_unsafe(void)
{
	asm volatile (LOOKUP_X_Y_TO_R6_R7
	"call %[bpf_get_prandom_u32];"
	"if r0 == 0 goto l_second_%=;"
	"r1 = %[glock_a] ll;"
	"call %[bpf_spin_lock];"
	"goto l_meet_%=;"
"l_second_%=:\n"
	"r1 = r6;"
	"r1 += 4;"
	"call %[bpf_spin_lock];"
"l_meet_%=:\n"
	"r1 = %[glock_a] ll;"
	"call %[bpf_spin_unlock];"
"l_exit_%=:\n"
	"r0 = 0;"
	"exit;"
	:
	: __imm(bpf_get_prandom_u32),
	  __imm(bpf_map_lookup_elem),
	  __imm(bpf_spin_lock),
	  __imm(bpf_spin_unlock),
	  __imm_addr(map_a),
	  __imm_addr(glock_a)
	: __clobber_all);
}

/* insns: 0-17 lookups, 18 call, 19 if, 20-21 ld, 22 lock, 23 goto,
 * 24-25 ld (l_second), 26 lock, 27 = l_meet.
 */
SEC("tc")
__description("lock_prune: global lock on both paths (map value looked up)")
__success __log_level(2) __msg("27: safe")
__flag(BPF_F_TEST_STATE_FREQ)
__naked void global_vs_mapval_safe(void)
{
	asm volatile (LOOKUP_X_Y_TO_R6_R7
	"call %[bpf_get_prandom_u32];"
	"if r0 == 0 goto l_second_%=;"
	"r1 = %[glock_a] ll;"
	"call %[bpf_spin_lock];"
	"goto l_meet_%=;"
"l_second_%=:\n"
	"r1 = %[glock_a] ll;"
	"call %[bpf_spin_lock];"
"l_meet_%=:\n"
	"r1 = %[glock_a] ll;"
	"call %[bpf_spin_unlock];"
"l_exit_%=:\n"
	"r0 = 0;"
	"exit;"
	:
	: __imm(bpf_get_prandom_u32),
	  __imm(bpf_map_lookup_elem),
	  __imm(bpf_spin_lock),
	  __imm(bpf_spin_unlock),
	  __imm_addr(map_a),
	  __imm_addr(glock_a)
	: __clobber_all);
}

/* The reverse order: map value first, global second, unlock the map value. */
SEC("tc")
__description("lock_prune: map value lock first, global lock second")
__failure __msg("bpf_spin_unlock of different lock")
__flag(BPF_F_TEST_STATE_FREQ)
__naked void mapval_vs_global_unsafe(void)
{
	asm volatile (LOOKUP_X_Y_TO_R6_R7
	"call %[bpf_get_prandom_u32];"
	"if r0 == 0 goto l_second_%=;"
	"r1 = r6;"
	"r1 += 4;"
	"call %[bpf_spin_lock];"
	"goto l_meet_%=;"
"l_second_%=:\n"
	"r1 = %[glock_a] ll;"
	"call %[bpf_spin_lock];"
"l_meet_%=:\n"
	"r1 = r6;"
	"r1 += 4;"
	"call %[bpf_spin_unlock];"
"l_exit_%=:\n"
	"r0 = 0;"
	"exit;"
	:
	: __imm(bpf_get_prandom_u32),
	  __imm(bpf_map_lookup_elem),
	  __imm(bpf_spin_lock),
	  __imm(bpf_spin_unlock),
	  __imm_addr(map_a),
	  __imm_addr(glock_a)
	: __clobber_all);
}

/* ------------------------------------------------------------------------
 * 7. Same map, lock id 0 vs lock id != 0 (the !!id presence comparison).
 * ------------------------------------------------------------------------
 *
 * active_lock.ptr must be equal and only the old (first) state may have
 * id 0: when old.id != 0 and cur.id == 0, check_ids() refuses it by itself.
 * libbpf gives no map pointer for a global-data map, so the id-0 pointer
 * comes from bpf_for_each_map_elem(): the callback's value argument (R3) is
 * PTR_TO_MAP_VALUE with id 0 (map_set_for_each_callback_args()), while a
 * lookup in the same map through the callback's R1 returns id != 0.
 */

/* r6 = value arg (id 0), r7 = lookup(map_a, 0) (id n). First path locks r6,
 * second path locks r7, both unlock r6. Old {map_a, 0} vs cur {map_a, n}.
 */
__naked __noinline __used
static long presence_cb_unsafe(void)
{
	asm volatile ("r6 = r3;"
	"r2 = 0;"
	"*(u32 *)(r10 - 4) = r2;"
	"r2 = r10;"
	"r2 += -4;"
	"call %[bpf_map_lookup_elem];"
	"if r0 == 0 goto l_exit_%=;"
	"r7 = r0;"
	"call %[bpf_get_prandom_u32];"
	"if r0 == 0 goto l_second_%=;"
	"r1 = r6;"
	"r1 += 4;"
	"call %[bpf_spin_lock];"
	"goto l_meet_%=;"
"l_second_%=:\n"
	"r1 = r7;"
	"r1 += 4;"
	"call %[bpf_spin_lock];"
"l_meet_%=:\n"
	"r1 = r6;"
	"r1 += 4;"
	"call %[bpf_spin_unlock];"
"l_exit_%=:\n"
	"r0 = 0;"
	"exit;"
	:
	: __imm(bpf_get_prandom_u32),
	  __imm(bpf_map_lookup_elem),
	  __imm(bpf_spin_lock),
	  __imm(bpf_spin_unlock)
	: __clobber_all);
}

__naked __noinline __used
static long presence_cb_safe(void)
{
	asm volatile ("r6 = r3;"
	"r2 = 0;"
	"*(u32 *)(r10 - 4) = r2;"
	"r2 = r10;"
	"r2 += -4;"
	"call %[bpf_map_lookup_elem];"
	"if r0 == 0 goto l_exit_%=;"
	"r7 = r0;"
	"call %[bpf_get_prandom_u32];"
	"if r0 == 0 goto l_second_%=;"
	"r1 = r6;"
	"r1 += 4;"
	"call %[bpf_spin_lock];"
	"goto l_meet_%=;"
"l_second_%=:\n"
	"r1 = r6;"
	"r1 += 4;"
	"call %[bpf_spin_lock];"
"l_meet_%=:\n"
	"r1 = r6;"
	"r1 += 4;"
	"call %[bpf_spin_unlock];"
"l_exit_%=:\n"
	"r0 = 0;"
	"exit;"
	:
	: __imm(bpf_get_prandom_u32),
	  __imm(bpf_map_lookup_elem),
	  __imm(bpf_spin_lock),
	  __imm(bpf_spin_unlock)
	: __clobber_all);
}

/* r9 is left out of the clobbers so that the compiler has a register for
 * the callback address; it emits "r9 = <cb> ll" (2 insns) before the asm.
 */
SEC("tc")
__description("lock_prune: value arg (id 0) first, looked-up value second")
__failure __msg("bpf_spin_unlock of different lock")
__flag(BPF_F_TEST_STATE_FREQ)
__naked void id_presence_unsafe(void)
{
	asm volatile ("r2 = %[presence_cb_unsafe];"
	"r1 = %[map_a] ll;"
	"r3 = 0;"
	"r4 = 0;"
	"call %[bpf_for_each_map_elem];"
	"r0 = 0;"
	"exit;"
	:
	: __imm_ptr(presence_cb_unsafe),
	  __imm(bpf_for_each_map_elem),
	  __imm_addr(map_a)
	: "r0", "r1", "r2", "r3", "r4", "r5", "r6", "r7", "r8", "memory");
}

/* main: 0-1 r9 = cb ll, 2 r2 = r9, 3-4 r1 = map_a ll, 5 r3, 6 r4, 7 call,
 * 8 r0, 9 exit: 10 insns, so the callback starts at 10. In the callback:
 * 0 r6, 1 r2, 2 st, 3 r2, 4 r2, 5 call, 6 if, 7 r7, 8 call, 9 if,
 * 10-12 lock, 13 goto, 14-16 lock (l_second), 17 = l_meet -> 10 + 17 = 27.
 */
SEC("tc")
__description("lock_prune: value arg (id 0) locked on both paths")
__success __log_level(2) __msg("27: safe") /* VERIFY-IN-VM */
__flag(BPF_F_TEST_STATE_FREQ)
__naked void id_presence_safe(void)
{
	asm volatile ("r2 = %[presence_cb_safe];"
	"r1 = %[map_a] ll;"
	"r3 = 0;"
	"r4 = 0;"
	"call %[bpf_for_each_map_elem];"
	"r0 = 0;"
	"exit;"
	:
	: __imm_ptr(presence_cb_safe),
	  __imm(bpf_for_each_map_elem),
	  __imm_addr(map_a)
	: "r0", "r1", "r2", "r3", "r4", "r5", "r6", "r7", "r8", "memory");
}

/* ------------------------------------------------------------------------
 * 8. Allocated objects (active_lock.ptr = prog BTF).
 * ------------------------------------------------------------------------
 *
 * bpf_obj_new() needs the local type id as a constant. It cannot be an "i"
 * operand of inline asm (it is a CO-RE relocation), so these programs are
 * not __naked: the compiler emits exactly one "r9 = <type id> ll" (insns
 * 0-1, CO-RE local_type_id relocation) for the "r" operand, then the asm,
 * which ends in exit. r9 is callee-saved, so it survives the calls.
 */
#define OBJ_NEW_TWO_TO_R6_R7					\
	"r1 = r9;"						\
	"r2 = 0;"						\
	"call %[bpf_obj_new_impl];"				\
	"if r0 == 0 goto l_exit_%=;"				\
	"r6 = r0;"						\
	"r1 = r9;"						\
	"r2 = 0;"						\
	"call %[bpf_obj_new_impl];"				\
	"if r0 != 0 goto l_have_%=;"				\
	"r1 = r6;"						\
	"r2 = 0;"						\
	"call %[bpf_obj_drop_impl];"				\
	"goto l_exit_%=;"					\
"l_have_%=:\n"							\
	"r7 = r0;"

#define OBJ_DROP_R6_R7						\
	"r1 = r6;"						\
	"r2 = 0;"						\
	"call %[bpf_obj_drop_impl];"				\
	"r1 = r7;"						\
	"r2 = 0;"						\
	"call %[bpf_obj_drop_impl];"

#define OBJ_CLOBBERS "r0", "r1", "r2", "r3", "r4", "r5", "r6", "r7", "r8", "memory"

/* Two objects: r6 (id a), r7 (id b). First path locks r6, second r7, both
 * unlock r6. Object registers are compared by regs_exact(), which keeps
 * its check_ids() even when the map-value one in regsafe() is removed, so
 * this program isolates the check_ids() on active_lock.id.
 */
SEC("tc")
__description("lock_prune: object A locked first, object B second")
__failure __msg("bpf_spin_unlock of different lock")
__flag(BPF_F_TEST_STATE_FREQ)
int two_objs_unsafe(void *ctx)
{
	asm volatile (OBJ_NEW_TWO_TO_R6_R7
	"call %[bpf_get_prandom_u32];"
	"if r0 == 0 goto l_second_%=;"
	"r1 = r6;"
	"r1 += 4;"
	"call %[bpf_spin_lock];"
	"goto l_meet_%=;"
"l_second_%=:\n"
	"r1 = r7;"
	"r1 += 4;"
	"call %[bpf_spin_lock];"
"l_meet_%=:\n"
	"r1 = r6;"
	"r1 += 4;"
	"call %[bpf_spin_unlock];"
	OBJ_DROP_R6_R7
"l_exit_%=:\n"
	"r0 = 0;"
	"exit;"
	:
	: [tid]"r"(bpf_core_type_id_local(struct lk_node)),
	  __imm(bpf_obj_new_impl),
	  __imm(bpf_obj_drop_impl),
	  __imm(bpf_get_prandom_u32),
	  __imm(bpf_spin_lock),
	  __imm(bpf_spin_unlock)
	: OBJ_CLOBBERS);
	__builtin_unreachable();
}

/* insns: 0-1 r9 = tid ll, 2-15 OBJ_NEW_TWO (14, r7 = r0 at 15), 16 call,
 * 17 if, 18-20 lock, 21 goto, 22-24 lock (l_second), 25 = l_meet.
 */
SEC("tc")
__description("lock_prune: object A locked on both paths")
__success __log_level(2) __msg("25: safe")
__flag(BPF_F_TEST_STATE_FREQ)
int two_objs_safe(void *ctx)
{
	asm volatile (OBJ_NEW_TWO_TO_R6_R7
	"call %[bpf_get_prandom_u32];"
	"if r0 == 0 goto l_second_%=;"
	"r1 = r6;"
	"r1 += 4;"
	"call %[bpf_spin_lock];"
	"goto l_meet_%=;"
"l_second_%=:\n"
	"r1 = r6;"
	"r1 += 4;"
	"call %[bpf_spin_lock];"
"l_meet_%=:\n"
	"r1 = r6;"
	"r1 += 4;"
	"call %[bpf_spin_unlock];"
	OBJ_DROP_R6_R7
"l_exit_%=:\n"
	"r0 = 0;"
	"exit;"
	:
	: [tid]"r"(bpf_core_type_id_local(struct lk_node)),
	  __imm(bpf_obj_new_impl),
	  __imm(bpf_obj_drop_impl),
	  __imm(bpf_get_prandom_u32),
	  __imm(bpf_spin_lock),
	  __imm(bpf_spin_unlock)
	: OBJ_CLOBBERS);
	__builtin_unreachable();
}

/* Object (ptr = prog BTF) vs map value (ptr = map_a): r6 = object,
 * r7 = &map_a[0]. First path locks the object, second the map value, both
 * unlock the object.
 */
SEC("tc")
__description("lock_prune: object lock first, map value lock second")
__failure __msg("bpf_spin_unlock of different lock")
__flag(BPF_F_TEST_STATE_FREQ)
int obj_vs_mapval_unsafe(void *ctx)
{
	asm volatile ("r1 = r9;"
	"r2 = 0;"
	"call %[bpf_obj_new_impl];"
	"if r0 == 0 goto l_exit_%=;"
	"r6 = r0;"
	"r1 = 0;"
	"*(u32 *)(r10 - 4) = r1;"
	"r2 = r10;"
	"r2 += -4;"
	"r1 = %[map_a] ll;"
	"call %[bpf_map_lookup_elem];"
	"if r0 != 0 goto l_have_%=;"
	"r1 = r6;"
	"r2 = 0;"
	"call %[bpf_obj_drop_impl];"
	"goto l_exit_%=;"
"l_have_%=:\n"
	"r7 = r0;"
	"call %[bpf_get_prandom_u32];"
	"if r0 == 0 goto l_second_%=;"
	"r1 = r6;"
	"r1 += 4;"
	"call %[bpf_spin_lock];"
	"goto l_meet_%=;"
"l_second_%=:\n"
	"r1 = r7;"
	"r1 += 4;"
	"call %[bpf_spin_lock];"
"l_meet_%=:\n"
	"r1 = r6;"
	"r1 += 4;"
	"call %[bpf_spin_unlock];"
	"r1 = r6;"
	"r2 = 0;"
	"call %[bpf_obj_drop_impl];"
"l_exit_%=:\n"
	"r0 = 0;"
	"exit;"
	:
	: [tid]"r"(bpf_core_type_id_local(struct lk_node)),
	  __imm(bpf_obj_new_impl),
	  __imm(bpf_obj_drop_impl),
	  __imm(bpf_get_prandom_u32),
	  __imm(bpf_map_lookup_elem),
	  __imm(bpf_spin_lock),
	  __imm(bpf_spin_unlock),
	  __imm_addr(map_a)
	: OBJ_CLOBBERS);
	__builtin_unreachable();
}

/* insns: 0-1 tid, 2 r1, 3 r2, 4 call, 5 if, 6 r6, 7 r1, 8 st, 9 r2, 10 r2,
 * 11-12 ld map_a, 13 call, 14 if, 15-18 drop + goto, 19 r7 (l_have),
 * 20 call, 21 if, 22-24 lock, 25 goto, 26-28 lock (l_second), 29 = l_meet.
 */
SEC("tc")
__description("lock_prune: object lock on both paths (map value looked up)")
__success __log_level(2) __msg("29: safe")
__flag(BPF_F_TEST_STATE_FREQ)
int obj_vs_mapval_safe(void *ctx)
{
	asm volatile ("r1 = r9;"
	"r2 = 0;"
	"call %[bpf_obj_new_impl];"
	"if r0 == 0 goto l_exit_%=;"
	"r6 = r0;"
	"r1 = 0;"
	"*(u32 *)(r10 - 4) = r1;"
	"r2 = r10;"
	"r2 += -4;"
	"r1 = %[map_a] ll;"
	"call %[bpf_map_lookup_elem];"
	"if r0 != 0 goto l_have_%=;"
	"r1 = r6;"
	"r2 = 0;"
	"call %[bpf_obj_drop_impl];"
	"goto l_exit_%=;"
"l_have_%=:\n"
	"r7 = r0;"
	"call %[bpf_get_prandom_u32];"
	"if r0 == 0 goto l_second_%=;"
	"r1 = r6;"
	"r1 += 4;"
	"call %[bpf_spin_lock];"
	"goto l_meet_%=;"
"l_second_%=:\n"
	"r1 = r6;"
	"r1 += 4;"
	"call %[bpf_spin_lock];"
"l_meet_%=:\n"
	"r1 = r6;"
	"r1 += 4;"
	"call %[bpf_spin_unlock];"
	"r1 = r6;"
	"r2 = 0;"
	"call %[bpf_obj_drop_impl];"
"l_exit_%=:\n"
	"r0 = 0;"
	"exit;"
	:
	: [tid]"r"(bpf_core_type_id_local(struct lk_node)),
	  __imm(bpf_obj_new_impl),
	  __imm(bpf_obj_drop_impl),
	  __imm(bpf_get_prandom_u32),
	  __imm(bpf_map_lookup_elem),
	  __imm(bpf_spin_lock),
	  __imm(bpf_spin_unlock),
	  __imm_addr(map_a)
	: OBJ_CLOBBERS);
	__builtin_unreachable();
}

/* ------------------------------------------------------------------------
 * 9. Acquired references (refsafe()): an extra, unreachable reference.
 * ------------------------------------------------------------------------
 *
 * The first path holds no reference at meet; the second holds one object
 * whose only pointer (r6) is dead after meet. Only the acquired_refs count
 * in refsafe() tells the states apart (the old state has no refs, so there
 * is no id to compare, and r6 is not live in the old state).
 * The NULL branch of bpf_obj_new() jumps straight to the exit insn so that
 * "N: safe" in the safe sibling comes from the non-NULL path only.
 */
SEC("tc")
__description("lock_prune: object reference leaked on the second path")
__failure __msg("Unreleased reference id=")
__flag(BPF_F_TEST_STATE_FREQ)
int obj_ref_leak_unsafe(void *ctx)
{
	asm volatile ("call %[bpf_get_prandom_u32];"
	"if r0 == 0 goto l_second_%=;"
	"goto l_meet_%=;"
"l_second_%=:\n"
	"r1 = r9;"
	"r2 = 0;"
	"call %[bpf_obj_new_impl];"
	"if r0 == 0 goto l_exit_%=;"
	"r6 = r0;"
	/* missing: bpf_obj_drop(r6) */
"l_meet_%=:\n"
	"r0 = 0;"
"l_exit_%=:\n"
	"exit;"
	:
	: [tid]"r"(bpf_core_type_id_local(struct lk_node)),
	  __imm(bpf_obj_new_impl),
	  __imm(bpf_get_prandom_u32)
	: OBJ_CLOBBERS);
	__builtin_unreachable();
}

/* insns: 0-1 tid, 2 call, 3 if, 4 goto, 5 r1 (l_second), 6 r2, 7 call,
 * 8 if, 9 r6, 10 r1, 11 r2, 12 call drop, 13 = l_meet.
 */
SEC("tc")
__description("lock_prune: object reference dropped on the second path")
__success __log_level(2) __msg("13: safe")
__flag(BPF_F_TEST_STATE_FREQ)
int obj_ref_leak_safe(void *ctx)
{
	asm volatile ("call %[bpf_get_prandom_u32];"
	"if r0 == 0 goto l_second_%=;"
	"goto l_meet_%=;"
"l_second_%=:\n"
	"r1 = r9;"
	"r2 = 0;"
	"call %[bpf_obj_new_impl];"
	"if r0 == 0 goto l_exit_%=;"
	"r6 = r0;"
	"r1 = r6;"
	"r2 = 0;"
	"call %[bpf_obj_drop_impl];"
"l_meet_%=:\n"
	"r0 = 0;"
"l_exit_%=:\n"
	"exit;"
	:
	: [tid]"r"(bpf_core_type_id_local(struct lk_node)),
	  __imm(bpf_obj_new_impl),
	  __imm(bpf_obj_drop_impl),
	  __imm(bpf_get_prandom_u32)
	: OBJ_CLOBBERS);
	__builtin_unreachable();
}

/* ------------------------------------------------------------------------
 * 10. Meeting point inside a bounded loop.
 * ------------------------------------------------------------------------
 *
 * regsafe_map_value_id_* in a loop of 3 iterations. The counter r8 is
 * precise (the loop condition is decided on a known r8), so checkpoints of
 * different iterations do not match each other; within one iteration the
 * two paths meet with equal r8. r6 is read after the loop so that it is
 * live at meet in every iteration, the last one included (it pins a->a,
 * as in regsafe_map_value_id_unsafe).
 */
SEC("tc")
__description("lock_prune: bounded loop, unlock through another element")
__failure __msg("bpf_spin_unlock of different lock")
__flag(BPF_F_TEST_STATE_FREQ)
__naked void loop_unsafe(void)
{
	asm volatile (LOOKUP_X_Y_TO_R6_R7
	"r8 = 0;"
"l_loop_%=:\n"
	"call %[bpf_get_prandom_u32];"
	"r9 = r0;"
	"r1 = r6;"
	"r1 += 4;"
	"call %[bpf_spin_lock];"
	"r3 = r6;"
	"if r9 == 0 goto l_second_%=;"
	"goto l_meet_%=;"
"l_second_%=:\n"
	"r3 = r7;"
"l_meet_%=:\n"
	"r1 = r3;"
	"r1 += 4;"
	"call %[bpf_spin_unlock];"
	"r8 += 1;"
	"if r8 < 3 goto l_loop_%=;"
	"r0 = *(u32 *)(r6 + 0);"
"l_exit_%=:\n"
	"r0 = 0;"
	"exit;"
	:
	: __imm(bpf_get_prandom_u32),
	  __imm(bpf_map_lookup_elem),
	  __imm(bpf_spin_lock),
	  __imm(bpf_spin_unlock),
	  __imm_addr(map_a)
	: __clobber_all);
}

/* insns: 0-17 lookups, 18 r8 = 0, 19 call (l_loop), 20 r9, 21-23 lock,
 * 24 r3 = r6, 25 if, 26 goto, 27 r3 = r6 (l_second), 28 = l_meet.
 */
SEC("tc")
__description("lock_prune: bounded loop, unlock through the locked element")
__success __log_level(2) __msg("28: safe")
__flag(BPF_F_TEST_STATE_FREQ)
__naked void loop_safe(void)
{
	asm volatile (LOOKUP_X_Y_TO_R6_R7
	"r8 = 0;"
"l_loop_%=:\n"
	"call %[bpf_get_prandom_u32];"
	"r9 = r0;"
	"r1 = r6;"
	"r1 += 4;"
	"call %[bpf_spin_lock];"
	"r3 = r6;"
	"if r9 == 0 goto l_second_%=;"
	"goto l_meet_%=;"
"l_second_%=:\n"
	"r3 = r6;"
"l_meet_%=:\n"
	"r1 = r3;"
	"r1 += 4;"
	"call %[bpf_spin_unlock];"
	"r8 += 1;"
	"if r8 < 3 goto l_loop_%=;"
	"r0 = *(u32 *)(r6 + 0);"
"l_exit_%=:\n"
	"r0 = 0;"
	"exit;"
	:
	: __imm(bpf_get_prandom_u32),
	  __imm(bpf_map_lookup_elem),
	  __imm(bpf_spin_lock),
	  __imm(bpf_spin_unlock),
	  __imm_addr(map_a)
	: __clobber_all);
}

/* ------------------------------------------------------------------------
 * 11. Meeting point inside a bpf_loop() callback.
 * ------------------------------------------------------------------------
 *
 * two_elems_* inside the callback frame (frame 1); the lock state lives in
 * bpf_verifier_state, not in the frame, and is compared the same way.
 */
__naked __noinline __used
static long loop_cb_unsafe(void)
{
	asm volatile (LOOKUP_X_Y_TO_R6_R7
	"call %[bpf_get_prandom_u32];"
	"if r0 == 0 goto l_second_%=;"
	"r1 = r6;"
	"r1 += 4;"
	"call %[bpf_spin_lock];"
	"goto l_meet_%=;"
"l_second_%=:\n"
	"r1 = r7;"
	"r1 += 4;"
	"call %[bpf_spin_lock];"
"l_meet_%=:\n"
	"r1 = r6;"
	"r1 += 4;"
	"call %[bpf_spin_unlock];"
"l_exit_%=:\n"
	"r0 = 0;"
	"exit;"
	:
	: __imm(bpf_get_prandom_u32),
	  __imm(bpf_map_lookup_elem),
	  __imm(bpf_spin_lock),
	  __imm(bpf_spin_unlock),
	  __imm_addr(map_a)
	: __clobber_all);
}

__naked __noinline __used
static long loop_cb_safe(void)
{
	asm volatile (LOOKUP_X_Y_TO_R6_R7
	"call %[bpf_get_prandom_u32];"
	"if r0 == 0 goto l_second_%=;"
	"r1 = r6;"
	"r1 += 4;"
	"call %[bpf_spin_lock];"
	"goto l_meet_%=;"
"l_second_%=:\n"
	"r1 = r6;"
	"r1 += 4;"
	"call %[bpf_spin_lock];"
"l_meet_%=:\n"
	"r1 = r6;"
	"r1 += 4;"
	"call %[bpf_spin_unlock];"
"l_exit_%=:\n"
	"r0 = 0;"
	"exit;"
	:
	: __imm(bpf_get_prandom_u32),
	  __imm(bpf_map_lookup_elem),
	  __imm(bpf_spin_lock),
	  __imm(bpf_spin_unlock),
	  __imm_addr(map_a)
	: __clobber_all);
}

SEC("tc")
__description("lock_prune: bpf_loop callback, element 0 first, element 1 second")
__failure __msg("bpf_spin_unlock of different lock")
__flag(BPF_F_TEST_STATE_FREQ)
__naked void bpf_loop_cb_unsafe(void)
{
	asm volatile ("r2 = %[loop_cb_unsafe];"
	"r1 = 2;"
	"r3 = 0;"
	"r4 = 0;"
	"call %[bpf_loop];"
	"r0 = 0;"
	"exit;"
	:
	: __imm_ptr(loop_cb_unsafe),
	  __imm(bpf_loop)
	: "r0", "r1", "r2", "r3", "r4", "r5", "r6", "r7", "r8", "memory");
}

/* main: 0-1 r9 = cb ll, 2 r2 = r9, 3 r1, 4 r3, 5 r4, 6 call, 7 r0, 8 exit:
 * 9 insns. Callback: 0-17 lookups, 18 call, 19 if, 20-22 lock, 23 goto,
 * 24-26 lock (l_second), 27 = l_meet -> 9 + 27 = 36.
 */
SEC("tc")
__description("lock_prune: bpf_loop callback, element 0 on both paths")
__success __log_level(2) __msg("36: safe") /* VERIFY-IN-VM */
__flag(BPF_F_TEST_STATE_FREQ)
__naked void bpf_loop_cb_safe(void)
{
	asm volatile ("r2 = %[loop_cb_safe];"
	"r1 = 2;"
	"r3 = 0;"
	"r4 = 0;"
	"call %[bpf_loop];"
	"r0 = 0;"
	"exit;"
	:
	: __imm_ptr(loop_cb_safe),
	  __imm(bpf_loop)
	: "r0", "r1", "r2", "r3", "r4", "r5", "r6", "r7", "r8", "memory");
}

/* ------------------------------------------------------------------------
 * 12. Meeting point inside a static subprog called with the lock held.
 * ------------------------------------------------------------------------
 *
 * 6.12 allows calls to static subprogs while a bpf_spin_lock is held. The
 * caller locks r6 (&map_a[0], id a) and calls the subprog with r1 = r6,
 * r2 = r7 (&map_a[1], id b), r3 = unknown. The subprog picks r4 = r1 on the
 * first path and r4 = r2 on the second, meets, and unlocks r4. The caller
 * reads r6 after the call, so frame 0's r6 pins a->a (frames are compared
 * with one idmap): only regsafe()'s map-value check_ids() on frame 1's r4
 * rejects the second path.
 */
__naked __noinline __used
static long unlock_chosen_unsafe(void)
{
	asm volatile ("r4 = r1;"
	"if r3 == 0 goto l_second_%=;"
	"goto l_meet_%=;"
"l_second_%=:\n"
	"r4 = r2;"
"l_meet_%=:\n"
	"r1 = r4;"
	"r1 += 4;"
	"call %[bpf_spin_unlock];"
	"r0 = 0;"
	"exit;"
	:
	: __imm(bpf_spin_unlock)
	: __clobber_all);
}

__naked __noinline __used
static long unlock_chosen_safe(void)
{
	asm volatile ("r4 = r1;"
	"if r3 == 0 goto l_second_%=;"
	"goto l_meet_%=;"
"l_second_%=:\n"
	"r4 = r1;"
"l_meet_%=:\n"
	"r1 = r4;"
	"r1 += 4;"
	"call %[bpf_spin_unlock];"
	"r0 = 0;"
	"exit;"
	:
	: __imm(bpf_spin_unlock)
	: __clobber_all);
}

SEC("tc")
__description("lock_prune: static subprog unlocks through another element")
__failure __msg("bpf_spin_unlock of different lock")
__flag(BPF_F_TEST_STATE_FREQ)
__naked void subprog_unsafe(void)
{
	asm volatile (LOOKUP_X_Y_TO_R6_R7
	"call %[bpf_get_prandom_u32];"
	"r9 = r0;"
	"r1 = r6;"
	"r1 += 4;"
	"call %[bpf_spin_lock];"
	"r1 = r6;"
	"r2 = r7;"
	"r3 = r9;"
	"call unlock_chosen_unsafe;"
	"r0 = *(u32 *)(r6 + 0);"
"l_exit_%=:\n"
	"r0 = 0;"
	"exit;"
	:
	: __imm(bpf_get_prandom_u32),
	  __imm(bpf_map_lookup_elem),
	  __imm(bpf_spin_lock),
	  __imm_addr(map_a)
	: __clobber_all);
}

/* main: 0-17 lookups, 18 call, 19 r9, 20-22 lock, 23 r1, 24 r2, 25 r3,
 * 26 call, 27 load, 28 r0 = 0, 29 exit: 30 insns. Subprog: 0 r4, 1 if,
 * 2 goto, 3 r4 = r1 (l_second), 4 = l_meet -> 30 + 4 = 34.
 */
SEC("tc")
__description("lock_prune: static subprog unlocks through the locked element")
__success __log_level(2) __msg("34: safe") /* VERIFY-IN-VM */
__flag(BPF_F_TEST_STATE_FREQ)
__naked void subprog_safe(void)
{
	asm volatile (LOOKUP_X_Y_TO_R6_R7
	"call %[bpf_get_prandom_u32];"
	"r9 = r0;"
	"r1 = r6;"
	"r1 += 4;"
	"call %[bpf_spin_lock];"
	"r1 = r6;"
	"r2 = r7;"
	"r3 = r9;"
	"call unlock_chosen_safe;"
	"r0 = *(u32 *)(r6 + 0);"
"l_exit_%=:\n"
	"r0 = 0;"
	"exit;"
	:
	: __imm(bpf_get_prandom_u32),
	  __imm(bpf_map_lookup_elem),
	  __imm(bpf_spin_lock),
	  __imm_addr(map_a)
	: __clobber_all);
}

char _license[] SEC("license") = "GPL";
