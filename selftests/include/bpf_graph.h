/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The few BPF graph (allocated object + linked list) kfuncs of Linux 6.12
 * that the selftests use, declared here so that the tests do not need
 * vmlinux.h or the kernel's bpf_experimental.h.
 *
 * The graph API is what 6.12 already lets a program call while it holds a
 * bpf_spin_lock (is_bpf_graph_api_kfunc() in kernel/bpf/verifier.c): the
 * KF_SPIN_LOCK patch must keep allowing it. bpf_obj_new_impl() and
 * bpf_obj_drop_impl() are NOT graph API kfuncs in 6.12: they must be called
 * outside the locked region.
 *
 * Include after <linux/bpf.h> (struct bpf_list_head/bpf_list_node) and
 * <bpf/bpf_helpers.h>, <bpf/bpf_core_read.h>.
 */
#ifndef __BPF_GRAPH_H__
#define __BPF_GRAPH_H__

/*
 * Tells the verifier, through a BTF decl tag on a bpf_list_head, which
 * struct the list holds and through which bpf_list_node member.
 */
#define __contains(name, node) \
	__attribute__((btf_decl_tag("contains:" #name ":" #node)))

/*
 * A list head and the bpf_spin_lock that guards it are hidden globals in a
 * ".bss.<name>" section of their own, e.g.
 *
 *	struct bpf_spin_lock lock SEC(".bss.list") __hidden;
 *	struct bpf_list_head head SEC(".bss.list") __hidden __contains(foo, node);
 *
 * libbpf turns each such section into its own array map, so the lock and the
 * list head share one map value: the verifier requires the lock that guards
 * a list head to live in the same value. Hidden visibility matters too:
 * libbpf then treats the variables as static and creates the map without
 * BPF_F_MMAPABLE. It would otherwise try to mmap it, which 6.12 refuses for
 * any value holding such fields (bpf_map_mmap(): -ENOTSUPP), and the whole
 * object would fail to load.
 */

/*
 * @local_type_id is a BTF id of this program's BTF, filled in by
 * bpf_core_type_id_local(). @meta is rewritten by the verifier.
 */
void *bpf_obj_new_impl(__u64 local_type_id, void *meta) __ksym;
void bpf_obj_drop_impl(void *kptr, void *meta) __ksym;

/* @meta and @off are rewritten by the verifier. 0, or -EINVAL if @node was
 * already in a list (the node is then freed by the kernel).
 */
int bpf_list_push_front_impl(struct bpf_list_head *head,
			     struct bpf_list_node *node,
			     void *meta, __u64 off) __ksym;
int bpf_list_push_back_impl(struct bpf_list_head *head,
			    struct bpf_list_node *node,
			    void *meta, __u64 off) __ksym;
/* NULL when the list is empty; otherwise an owning reference to the node. */
struct bpf_list_node *bpf_list_pop_front(struct bpf_list_head *head) __ksym;
struct bpf_list_node *bpf_list_pop_back(struct bpf_list_head *head) __ksym;

#define bpf_obj_new(type) \
	((type *)bpf_obj_new_impl(bpf_core_type_id_local(type), NULL))
#define bpf_obj_drop(kptr) bpf_obj_drop_impl(kptr, NULL)
#define bpf_list_push_front(head, node) \
	bpf_list_push_front_impl(head, node, NULL, 0)
#define bpf_list_push_back(head, node) \
	bpf_list_push_back_impl(head, node, NULL, 0)

#endif /* __BPF_GRAPH_H__ */
