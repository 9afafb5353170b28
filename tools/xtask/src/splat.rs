//! The kernel-splat gate: finds the lines of the guest's console log and
//! dmesg that say the kernel complained, on x86_64 and arm64.
//!
//! A green run of the selftests proves little if the kernel warned, lockdep
//! found a deadlock or RCU stalled along the way: the tests only see what
//! their programs return. So every report the kernel can print fails the
//! run, and each kind of report is one entry of [`PATTERNS`] with the exact
//! wording of the 6.12 source (cited next to it) and a real example line
//! that the tests feed back through [`find_splats`].
//!
//! Each pattern must match at the start of a message: after what printk and
//! klogctl put in front of it (`<4>`, `[    2.345678]`, `[    T42]`) and
//! nothing else. Matching anywhere in a line instead would count boot banners
//! and notices that merely mention a checker (`Lock dependency validator`,
//! `RCU CPU stall warnings timeout set to`, `Spectre V2 : WARNING: ...`,
//! a user program's `general protection fault`). The console and dmesg hold
//! nothing but kernel messages (the runner's output goes elsewhere), and
//! dmesg has each message cleanly on its own line even if the serial console
//! ran two together.

use std::sync::OnceLock;

use regex::RegexSet;

/// One kind of kernel report.
pub struct Pattern {
    /// A short name, for the tests and for whoever reads the table.
    #[cfg_attr(not(test), allow(dead_code))]
    pub kind: &'static str,
    /// The message, as a regex matched right after [`PREFIX`].
    pub re: &'static str,
    /// A line the kernel prints, which the tests require to be found: the
    /// proof that `re` matches what the kernel really says.
    #[cfg_attr(not(test), allow(dead_code))]
    pub example: &'static str,
}

/// What may come before a message: the `<level>` of klogctl and `dmesg -r`,
/// the `[  time]` of `CONFIG_PRINTK_TIME` and the `[  T42]` / `[   C1]` of
/// `CONFIG_PRINTK_CALLER` (kernel/printk/printk.c, info_print_prefix()).
const PREFIX: &str = r"^(?:<\d+>)?\s*(?:\[\s*\d+\.\d+\]\s*)?(?:\[\s*[TC]\d+\]\s*)?\s*";

/// Every report the kernel prints on x86_64 and arm64 that fails a run.
/// Several overlap (a lockdep banner is also a `WARNING:` line): the specific
/// entries say what the report was, the generic ones catch wordings not
/// listed, so that a new report in the kernel does not slip through.
pub const PATTERNS: &[Pattern] = &[
    // --- WARN() and friends ---
    // kernel/panic.c, __warn(): "WARNING: CPU: %d PID: %d at %s:%d %pS".
    Pattern {
        kind: "warn_cpu_pid",
        re: r"WARNING: CPU: \d+ PID: \d+ at ",
        example: "WARNING: CPU: 1 PID: 42 at kernel/bpf/verifier.c:21042 do_check_common+0x1c/0x30",
    },
    // Any other WARNING: banner at the start of a message: lockdep's
    // (kernel/locking/lockdep.c), kernel/workqueue.c, the x86 unwinder
    // (arch/x86/kernel/unwind_orc.c) and arm64 boot checks
    // (arch/arm64/kernel/setup.c). A pr_fmt prefix in front ("Spectre V2 :
    // WARNING: ...", arch/x86/kernel/cpu/bugs.c) makes it a notice, not this.
    Pattern {
        kind: "warning",
        re: r"WARNING:",
        example: "WARNING: Flushing system-wide workqueues will be prohibited in near future.",
    },
    // include/asm-generic/bug.h, CUT_HERE: opens WARN(), BUG() and UBSAN.
    Pattern {
        kind: "cut_here",
        re: r"------------\[ cut here \]------------",
        example: "------------[ cut here ]------------",
    },
    // kernel/panic.c, print_oops_end_marker(); lib/ubsan.c prints it
    // without the number.
    Pattern {
        kind: "end_trace",
        re: r"---\[ end trace(?: [0-9a-f]+)? \]---",
        example: "---[ end trace 0000000000000000 ]---",
    },
    // lib/refcount.c, REFCOUNT_WARN(): "refcount_t: " str ".".
    Pattern {
        kind: "refcount",
        re: r"refcount_t: ",
        example: "refcount_t: underflow; use-after-free.",
    },
    // lib/list_debug.c, CHECK_DATA_CORRUPTION() messages.
    Pattern {
        kind: "list_corruption",
        re: r"list_(?:add|del) corruption|list_add double add",
        example: "list_del corruption, ffff888004f1e0c8->next is LIST_POISON1 (dead000000000100)",
    },
    // --- BUG() and BUG: reports ---
    // lib/bug.c, report_bug(): "kernel BUG at %s:%u!", or "Kernel BUG at
    // %pB [verbose debug info unavailable]" without CONFIG_DEBUG_BUGVERBOSE.
    Pattern {
        kind: "kernel_bug",
        re: r"[Kk]ernel BUG at ",
        example: "kernel BUG at kernel/bpf/helpers.c:345!",
    },
    // Any "BUG: " report, also behind a pr_fmt prefix ("watchdog: BUG:"):
    // kernel/sched/core.c, mm/, lib/smp_processor_id.c,
    // kernel/locking/spinlock_debug.c, kernel/workqueue.c, KASAN, KCSAN...
    Pattern {
        kind: "bug",
        re: r"(?:[\w./-]+: )?BUG: ",
        example: "BUG: using smp_processor_id() in preemptible [00000000] code: bpf-runner/123",
    },
    // arch/x86/mm/fault.c, show_fault_oops().
    Pattern {
        kind: "x86_page_fault",
        re: r"BUG: (?:unable to handle page fault for address|kernel NULL pointer dereference, address): ",
        example: "BUG: unable to handle page fault for address: ffffc90000a3b000",
    },
    // mm/page_alloc.c bad_page(), mm/memory.c print_bad_pte(),
    // mm/filemap.c page_cache_delete().
    Pattern {
        kind: "bad_page",
        re: r"BUG: Bad page (?:state|map|cache)",
        example: "BUG: Bad page state in process bpf-runner  pfn:10a2b",
    },
    // --- Oopses and panics ---
    // arch/x86/kernel/dumpstack.c, __die_header(): "Oops: %s: %04lx [#%d]"
    // (6.12; older kernels printed "Oops: %04lx [#%d]").
    Pattern {
        kind: "oops",
        re: r"Oops: .*\[#\d+\]",
        example: "Oops: Oops: 0002 [#1] PREEMPT SMP NOPTI",
    },
    // arch/arm64/kernel/traps.c, __die(): "Internal error: %s: %016lx [#%d]".
    Pattern {
        kind: "arm64_internal_error",
        re: r"Internal error: .*\[#\d+\]",
        example: "Internal error: Oops: 0000000096000005 [#1] PREEMPT SMP",
    },
    // kernel/panic.c, panic(): "Kernel panic - not syncing: %s" and its
    // "---[ end Kernel panic - not syncing: %s ]---".
    Pattern {
        kind: "panic",
        re: r"(?:---\[ end )?Kernel panic - not syncing",
        example: "Kernel panic - not syncing: Fatal exception in interrupt",
    },
    // arch/x86/kernel/traps.c, GPFSTR, printed through __die_header() in
    // 6.12 ("Oops: general protection fault, ..."), alone before it.
    Pattern {
        kind: "general_protection_fault",
        re: r"(?:Oops: )?(?:segment-related )?general protection fault",
        example: "Oops: general protection fault, probably for non-canonical address 0xdffffc0000000002: 0000 [#1] PREEMPT SMP KASAN NOPTI",
    },
    // arch/x86/kernel/traps.c, exc_double_fault().
    Pattern {
        kind: "x86_double_fault",
        re: r"PANIC: double fault",
        example: "PANIC: double fault, error_code: 0x0",
    },
    // arch/arm64/mm/fault.c, die_kernel_fault():
    // "Unable to handle kernel %s at virtual address %016lx".
    Pattern {
        kind: "arm64_unable_to_handle",
        re: r"Unable to handle kernel ",
        example: "Unable to handle kernel paging request at virtual address dead000000000108",
    },
    // arch/arm64/kernel/traps.c, arm64_serror_panic().
    Pattern {
        kind: "arm64_serror",
        re: r"SError Interrupt on CPU\d+",
        example: "SError Interrupt on CPU1, code 0x00000000be000011 -- SError",
    },
    // arch/arm64/kernel/traps.c, panic_bad_stack().
    Pattern {
        kind: "arm64_stack_overflow",
        re: r"Insufficient stack space to handle exception!",
        example: "Insufficient stack space to handle exception!",
    },
    // kernel/exit.c, make_task_dead(): an oops while dying from one.
    Pattern {
        kind: "recursive_fault",
        re: r"Fixing recursive fault but reboot is needed!",
        example: "Fixing recursive fault but reboot is needed!",
    },
    // arch/x86/kernel/dumpstack.c show_trace_log_lvl() "Call Trace:";
    // arch/arm64/kernel/stacktrace.c dump_backtrace() "Call trace:". Every
    // dump_stack() prints it, whatever asked for the stack.
    Pattern {
        kind: "call_trace",
        re: r"Call [Tt]race:",
        example: "Call Trace:",
    },
    // --- lockdep (kernel/locking/lockdep.c unless said otherwise) ---
    Pattern {
        kind: "lockdep_circular",
        re: r"WARNING: possible circular locking dependency detected",
        example: "WARNING: possible circular locking dependency detected",
    },
    Pattern {
        kind: "lockdep_recursive",
        re: r"WARNING: possible recursive locking detected",
        example: "WARNING: possible recursive locking detected",
    },
    Pattern {
        kind: "lockdep_inconsistent",
        re: r"WARNING: inconsistent lock state",
        example: "WARNING: inconsistent lock state",
    },
    Pattern {
        kind: "lockdep_irq_inversion",
        re: r"WARNING: possible irq lock inversion dependency detected",
        example: "WARNING: possible irq lock inversion dependency detected",
    },
    // print_bad_irq_dependency(): "WARNING: %s-safe -> %s-unsafe lock order
    // detected", with HARDIRQ, SOFTIRQ or their -READ forms.
    Pattern {
        kind: "lockdep_irq_lock_order",
        re: r"WARNING: [A-Z-]+-safe -> [A-Z-]+-unsafe lock order detected",
        example: "WARNING: HARDIRQ-safe -> HARDIRQ-unsafe lock order detected",
    },
    Pattern {
        kind: "lockdep_bad_unlock_balance",
        re: r"WARNING: bad unlock balance detected!",
        example: "WARNING: bad unlock balance detected!",
    },
    Pattern {
        kind: "lockdep_bad_contention",
        re: r"WARNING: bad contention detected!",
        example: "WARNING: bad contention detected!",
    },
    Pattern {
        kind: "lockdep_held_lock_freed",
        re: r"WARNING: held lock freed!",
        example: "WARNING: held lock freed!",
    },
    Pattern {
        kind: "lockdep_held_returning_to_user",
        re: r"WARNING: lock held when returning to user space!",
        example: "WARNING: lock held when returning to user space!",
    },
    // print_held_locks_bug(), from debug_check_no_locks_held() at task
    // exit: "WARNING: %s/%d still has locks held!".
    Pattern {
        kind: "lockdep_held_at_exit",
        re: r"WARNING: .+/\d+ still has locks held!",
        example: "WARNING: bpf-runner/123 still has locks held!",
    },
    Pattern {
        kind: "lockdep_suspicious_rcu",
        re: r"WARNING: suspicious RCU usage",
        example: "WARNING: suspicious RCU usage",
    },
    Pattern {
        kind: "lockdep_nested_not_taken",
        re: r"WARNING: Nested lock was not taken",
        example: "WARNING: Nested lock was not taken",
    },
    Pattern {
        kind: "lockdep_chain_key_collision",
        re: r"WARNING: chain_key collision",
        example: "WARNING: chain_key collision",
    },
    // print_lock_invalid_wait_context().
    Pattern {
        kind: "lockdep_invalid_wait_context",
        re: r"\[ BUG: Invalid wait context \]",
        example: "[ BUG: Invalid wait context ]",
    },
    // debug_show_all_locks(), lockdep_print_held_locks() callers.
    Pattern {
        kind: "lockdep_turned_off",
        re: r"INFO: lockdep is turned off\.",
        example: "INFO: lockdep is turned off.",
    },
    // print_lockdep_off(), look_up_lock_class(), assign_lock_key(): lockdep
    // gave up, so the rest of the run went unchecked.
    Pattern {
        kind: "lockdep_validator_off",
        re: r"turning off the locking correctness validator\.",
        example: "turning off the locking correctness validator.",
    },
    // include/linux/debug_locks.h: WARN(1, "DEBUG_LOCKS_WARN_ON(%s)");
    // kernel/locking/rwsem.c: "DEBUG_RWSEMS_WARN_ON(%s): ...".
    Pattern {
        kind: "debug_locks_warn_on",
        re: r"DEBUG_(?:LOCKS|RWSEMS)_WARN_ON\(",
        example: "DEBUG_LOCKS_WARN_ON(!irqs_disabled())",
    },
    // print_lockdep_off("BUG: MAX_..._too low!") callers.
    Pattern {
        kind: "lockdep_limit",
        re: r"BUG: MAX_[A-Z_]+ too low!",
        example: "BUG: MAX_LOCKDEP_CHAINS too low!",
    },
    // look_up_lock_class().
    Pattern {
        kind: "lockdep_invalid_subclass",
        re: r"BUG: looking up invalid subclass: \d+",
        example: "BUG: looking up invalid subclass: 8",
    },
    // assign_lock_key().
    Pattern {
        kind: "lockdep_non_static_key",
        re: r"INFO: trying to register non-static key\.",
        example: "INFO: trying to register non-static key.",
    },
    // lockdep_init_map_type().
    Pattern {
        kind: "lockdep_key_not_registered",
        re: r"BUG: key [0-9a-f]+ has not been registered!",
        example: "BUG: key ffff888004f1e0c8 has not been registered!",
    },
    // kernel/panic.c, add_taint() with LOCKDEP_NOW_UNRELIABLE: lockdep is off
    // for the rest of the run.
    Pattern {
        kind: "lockdep_off_by_taint",
        re: r"Disabling lock debugging due to kernel taint",
        example: "Disabling lock debugging due to kernel taint",
    },
    // --- sanitizers ---
    // mm/kasan/report.c, print_error_description(): "BUG: KASAN: %s in %pS";
    // report_async(): "BUG: KASAN: invalid-access".
    Pattern {
        kind: "kasan",
        re: r"BUG: KASAN: ",
        example: "BUG: KASAN: slab-use-after-free in bpf_rqspin_testmod_lock+0x1c/0x30 [bpf_rqspin_testmod]",
    },
    // mm/kasan/report.c, kasan_non_canonical_hook() (x86 GPF).
    Pattern {
        kind: "kasan_non_canonical",
        re: r"KASAN: .+ in range \[",
        example: "KASAN: null-ptr-deref in range [0x0000000000000000-0x0000000000000007]",
    },
    // lib/ubsan.c, ubsan_prologue(): "UBSAN: %s in %s:%d:%d"; with
    // CONFIG_UBSAN_TRAP arch/x86/kernel/traps.c prints "traps: UBSAN: %s at
    // %pS" (arm64 dies with "Internal error: UBSAN: ...").
    Pattern {
        kind: "ubsan",
        re: r"(?:traps: )?UBSAN: ",
        example: "UBSAN: array-index-out-of-bounds in kernel/bpf/helpers.c:123:45",
    },
    // kernel/kcsan/report.c, print_report(): "BUG: KCSAN: %s in %ps / %ps".
    Pattern {
        kind: "kcsan",
        re: r"BUG: KCSAN: ",
        example: "BUG: KCSAN: data-race in bpf_res_spin_lock / bpf_res_spin_unlock",
    },
    // --- RCU (kernel/rcu/tree.c's pr_fmt is "rcu: ") ---
    // kernel/rcu/tree_stall.h, print_other_cpu_stall(): "INFO: %s detected
    // stalls on CPUs/tasks:"; check_cpu_stall(): "INFO: %s detected stall,
    // but suppressed full report due to a stuck CSD-lock.".
    Pattern {
        kind: "rcu_stall",
        re: r"(?:rcu: )?INFO: \S+ detected stalls?(?: on CPUs/tasks|, but suppressed)",
        example: "rcu: INFO: rcu_preempt detected stalls on CPUs/tasks:",
    },
    // kernel/rcu/tree_stall.h, print_cpu_stall().
    Pattern {
        kind: "rcu_self_detected_stall",
        re: r"(?:rcu: )?INFO: \S+ self-detected stall on CPU",
        example: "rcu: INFO: rcu_sched self-detected stall on CPU",
    },
    // kernel/rcu/tree_exp.h, synchronize_rcu_expedited_stall().
    Pattern {
        kind: "rcu_expedited_stall",
        re: r"(?:rcu: )?INFO: \S+ detected expedited stalls",
        example: "rcu: INFO: rcu_preempt detected expedited stalls on CPUs/tasks: { 1-... } 21002 jiffies s: 125 root: 0x2/.",
    },
    // kernel/rcu/tasks.h (built into update.c, no pr_fmt).
    Pattern {
        kind: "rcu_tasks_stall",
        re: r"INFO: rcu_tasks\w* detected stalls",
        example: "INFO: rcu_tasks detected stalls on tasks:",
    },
    // kernel/rcu/tree_stall.h, rcu_check_gp_kthread_starvation() and
    // rcu_check_gp_kthread_expired_fqs_timer().
    Pattern {
        kind: "rcu_kthread_starved",
        re: r"(?:rcu: )?\S+ kthread (?:starved for|timer wakeup didn't happen for) \d+ jiffies!",
        example: "rcu: rcu_preempt kthread starved for 10502 jiffies! g2345 f0x0 RCU_GP_WAIT_FQS(5) ->state=0x0 ->cpu=1",
    },
    // --- lockups and hangs ---
    // kernel/watchdog.c (pr_fmt "watchdog: "), watchdog_timer_fn().
    Pattern {
        kind: "soft_lockup",
        re: r"(?:watchdog: )?BUG: soft lockup - CPU#\d+ stuck for \d+s!",
        example: "watchdog: BUG: soft lockup - CPU#0 stuck for 22s! [bpf-runner:123]",
    },
    // kernel/watchdog.c, watchdog_hardlockup_check() (6.12; before 6.5 it
    // was kernel/watchdog_hld.c with pr_fmt "NMI watchdog: ").
    Pattern {
        kind: "hard_lockup",
        re: r"(?:(?:NMI )?watchdog: )?Watchdog detected hard LOCKUP on cpu \d+",
        example: "watchdog: Watchdog detected hard LOCKUP on cpu 1",
    },
    // kernel/workqueue.c, wq_watchdog_timer_fn().
    Pattern {
        kind: "workqueue_lockup",
        re: r"BUG: workqueue lockup - pool",
        example: "BUG: workqueue lockup - pool cpus=0 node=0 flags=0x0 nice=0 stuck for 31s!",
    },
    // kernel/hung_task.c, check_hung_task().
    Pattern {
        kind: "hung_task",
        re: r"INFO: task .+:\d+ blocked for more than \d+ seconds\.",
        example: "INFO: task bpf-runner:123 blocked for more than 120 seconds.",
    },
    // --- sleeping in atomic context (kernel/sched/core.c) ---
    // __might_resched().
    Pattern {
        kind: "sleep_in_atomic",
        re: r"BUG: sleeping function called from invalid context at ",
        example: "BUG: sleeping function called from invalid context at kernel/locking/mutex.c:585",
    },
    // __schedule_bug().
    Pattern {
        kind: "scheduling_while_atomic",
        re: r"BUG: scheduling while atomic: ",
        example: "BUG: scheduling while atomic: bpf-runner/123/0x00000002",
    },
];

/// The patterns, compiled once, each anchored behind [`PREFIX`].
fn set() -> &'static RegexSet {
    static SET: OnceLock<RegexSet> = OnceLock::new();
    SET.get_or_init(|| {
        RegexSet::new(PATTERNS.iter().map(|p| format!("{PREFIX}(?:{})", p.re)))
            .expect("splat patterns are valid")
    })
}

/// Messages that start like a report but are configuration notices: each
/// is matched as a whole message behind [`PREFIX`], so a report that merely
/// begins the same way still counts.
const NOT_REPORTS: &[&str] = &[
    // arch/arm64/kernel/proton-pack.c, unpriv_ebpf_notify(): printed when
    // kernel.unprivileged_bpf_disabled goes to 0 on a CPU the Spectre-BHB
    // mitigation does not cover. The runner sets it to 0 on purpose, so that
    // the @unpriv variants of the verifier tests run, as in mainline's CI.
    r"WARNING: Unprivileged eBPF is enabled, data leaks possible via Spectre v2 BHB attacks!",
];

fn not_reports() -> &'static RegexSet {
    static SET: OnceLock<RegexSet> = OnceLock::new();
    SET.get_or_init(|| {
        RegexSet::new(
            NOT_REPORTS
                .iter()
                .map(|m| format!("{PREFIX}{}$", regex::escape(m))),
        )
        .expect("notice patterns are valid")
    })
}

/// Splat lines in `text` (each once, trimmed, in order).
pub fn find_splats(text: &str) -> Vec<String> {
    let set = set();
    let mut out: Vec<String> = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if set.is_match(line) && !not_reports().is_match(line) && !out.iter().any(|l| l == line) {
            out.push(line.to_string());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{find_splats, set, PATTERNS};

    /// A boot of this project's x86_64 kernel that passed: the lines of the
    /// console log and dmesg of a green run that mention a checker, a lock or
    /// a failure, as they were (the console's with their CRLF ends).
    const CLEAN_X86_64: &str = include_str!("splat/clean_x86_64.log");
    /// The same for arm64.
    const CLEAN_ARM64: &str = include_str!("splat/clean_arm64.log");

    /// The prefixes a message can have in the console log and dmesg.
    const PREFIXES: &[&str] = &[
        "",
        "[    2.345678] ",
        "<4>",
        "<4>[    2.345678] ",
        "[    2.345678][    T1] ",
        "[     C1] ",
    ];

    /// The kinds of the patterns that match `line`.
    fn kinds(line: &str) -> Vec<&'static str> {
        set()
            .matches(line.trim())
            .into_iter()
            .map(|i| PATTERNS[i].kind)
            .collect()
    }

    /// `line` is a splat, and one of kind `kind`.
    fn assert_splat(kind: &str, line: &str) {
        assert!(
            PATTERNS.iter().any(|p| p.kind == kind),
            "no pattern of kind {kind}"
        );
        assert_eq!(
            find_splats(line),
            vec![line.trim().to_string()],
            "{kind}: not found: {line:?}"
        );
        assert!(
            kinds(line).contains(&kind),
            "{kind}: {line:?} is matched only as {:?}",
            kinds(line)
        );
    }

    fn assert_clean(text: &str) {
        let found = find_splats(text);
        assert!(found.is_empty(), "clean lines taken for splats: {found:?}");
    }

    #[test]
    fn every_example_is_found_by_its_own_pattern() {
        for p in PATTERNS {
            assert!(!p.re.starts_with('^'), "{}: PREFIX anchors it", p.kind);
            assert!(p.example.is_ascii(), "{}: example not ASCII", p.kind);
            for prefix in PREFIXES {
                assert_splat(p.kind, &format!("{prefix}{}", p.example));
            }
        }
    }

    #[test]
    fn kinds_are_unique() {
        for (i, p) in PATTERNS.iter().enumerate() {
            assert!(
                PATTERNS[..i].iter().all(|q| q.kind != p.kind),
                "{} twice",
                p.kind
            );
        }
    }

    #[test]
    fn warn_reports_are_splats() {
        assert_splat(
            "warn_cpu_pid",
            "[    2.345678] WARNING: CPU: 1 PID: 42 at kernel/bpf/x.c:1 f+0x1/0x2",
        );
        // arch/x86/kernel/unwind_orc.c, orc_warn().
        assert_splat(
            "warning",
            "WARNING: stack going in the wrong direction? at bpf_prog_1234+0x5/0x10",
        );
        assert_splat("cut_here", "<4>------------[ cut here ]------------");
        // lib/ubsan.c, ubsan_epilogue().
        assert_splat("end_trace", "---[ end trace ]---");
        assert_splat("refcount", "refcount_t: saturated; leaking memory.");
        assert_splat("refcount", "refcount_t: addition on 0; use-after-free.");
        assert_splat(
            "list_corruption",
            "list_add corruption. next->prev should be prev (ffff888004f1e0c8), but was 0000000000000000. (next=ffff888004f1e0d8).",
        );
        assert_splat(
            "list_corruption",
            "list_add double add: new=ffff888004f1e0c8, prev=ffff888004f1e0c8, next=ffff888004f1e0d8.",
        );
    }

    #[test]
    fn bug_reports_are_splats() {
        assert_splat("kernel_bug", "kernel BUG at mm/slub.c:456!");
        assert_splat(
            "kernel_bug",
            "Kernel BUG at bpf_obj_free_fields+0x1c/0x30 [verbose debug info unavailable]",
        );
        // kernel/locking/spinlock_debug.c, spin_dump().
        assert_splat("bug", "BUG: spinlock bad magic on CPU#0, swapper/0/1");
        // arch/x86/kernel/traps.c, handle_stack_overflow().
        assert_splat(
            "bug",
            "BUG: TASK stack guard page was hit at ffffc90000a3bff8 (stack is ffffc90000a3c000..ffffc90000a40000)",
        );
        assert_splat(
            "x86_page_fault",
            "BUG: kernel NULL pointer dereference, address: 0000000000000008",
        );
        assert_splat(
            "bad_page",
            "BUG: Bad page map in process bpf-runner  pte:8000000103c00025 pmd:10a2b067",
        );
    }

    #[test]
    fn oopses_and_panics_are_splats() {
        // The x86 oops header before 6.12 (the brief's wording).
        assert_splat("oops", "Oops: 0000 [#1] PREEMPT SMP");
        assert_splat("oops", "Oops: invalid opcode: 0000 [#1] PREEMPT SMP NOPTI");
        assert_splat(
            "general_protection_fault",
            "general protection fault: 0000 [#1] SMP",
        );
        assert_splat(
            "general_protection_fault",
            "Oops: segment-related general protection fault: 0000 [#1] PREEMPT SMP NOPTI",
        );
        assert_splat("panic", "Kernel panic - not syncing: Fatal exception");
        assert_splat(
            "panic",
            "---[ end Kernel panic - not syncing: Fatal exception ]---",
        );
        assert_splat(
            "panic",
            "Kernel panic - not syncing: softlockup: hung tasks",
        );
        assert_splat("call_trace", "[   12.345678] Call Trace:");
    }

    #[test]
    fn arm64_reports_are_splats() {
        assert_splat("call_trace", "Call trace:");
        assert_splat("call_trace", "<4>[   12.345678] Call trace:");
        assert_splat(
            "arm64_internal_error",
            "Internal error: Oops - BUG: 00000000f2000800 [#1] PREEMPT SMP",
        );
        assert_splat(
            "arm64_internal_error",
            "Internal error: UBSAN: array index out of bounds: 00000000f2005512 [#1] PREEMPT SMP",
        );
        assert_splat(
            "arm64_unable_to_handle",
            "Unable to handle kernel paging request at virtual address dead000000000108",
        );
        assert_splat(
            "arm64_unable_to_handle",
            "Unable to handle kernel NULL pointer dereference at virtual address 0000000000000008",
        );
        assert_splat(
            "arm64_unable_to_handle",
            "Unable to handle kernel execution of user memory at virtual address 0000aaaab0a1c000",
        );
        // arm64's WARN() goes through the same __warn().
        assert_splat(
            "warn_cpu_pid",
            "WARNING: CPU: 0 PID: 1 at kernel/x.c:1 f+0x1c/0x30",
        );
        // arch/arm64/kernel/setup.c, setup_arch().
        assert_splat(
            "warning",
            "WARNING: x1-x3 nonzero in violation of boot protocol:",
        );
        assert_splat(
            "arm64_serror",
            "SError Interrupt on CPU0, code 0x00000000bf000000 -- SError",
        );
    }

    #[test]
    fn lockdep_reports_are_splats() {
        // A whole report: banner, stack, nothing from the lines in between.
        let report = "\
[   10.000001] ======================================================
[   10.000002] WARNING: possible circular locking dependency detected
[   10.000003] 6.12.117+ #5 Not tainted
[   10.000004] ------------------------------------------------------
[   10.000005] bpf-runner/123 is trying to acquire lock:
[   10.000006] ffff888004f1e0c8 (&lock_b){+.+.}-{2:2}, at: f+0x1c/0x30
[   10.000007]
[   10.000008] but task is already holding lock:
[   10.000009] stack backtrace:
[   10.000010] Call Trace:
[   10.000011]  <TASK>
[   10.000012]  dump_stack_lvl+0x5d/0x80
";
        assert_eq!(
            find_splats(report),
            [
                "[   10.000002] WARNING: possible circular locking dependency detected",
                "[   10.000010] Call Trace:",
            ]
        );
        assert_splat(
            "lockdep_irq_lock_order",
            "WARNING: SOFTIRQ-safe -> SOFTIRQ-unsafe lock order detected",
        );
        assert_splat(
            "lockdep_irq_lock_order",
            "WARNING: HARDIRQ-READ-safe -> HARDIRQ-READ-unsafe lock order detected",
        );
        assert_splat(
            "lockdep_held_at_exit",
            "WARNING: kworker/0:1/12 still has locks held!",
        );
        assert_splat("lockdep_limit", "BUG: MAX_LOCKDEP_KEYS too low!");
        assert_splat("lockdep_limit", "<7>BUG: MAX_STACK_TRACE_ENTRIES too low!");
        assert_splat("lockdep_limit", "BUG: MAX_LOCK_DEPTH too low!");
        assert_splat(
            "debug_locks_warn_on",
            "DEBUG_RWSEMS_WARN_ON(sem->magic != sem): count = 0x0, magic = 0x0, owner = 0x0, curr 0xffff888004f1e0c8, list empty",
        );
        // Every lockdep banner is also a generic WARNING: line.
        for p in PATTERNS.iter().filter(|p| p.kind.starts_with("lockdep_")) {
            if p.example.starts_with("WARNING: ") {
                assert!(kinds(p.example).contains(&"warning"), "{}", p.kind);
            }
        }
    }

    #[test]
    fn sanitizer_reports_are_splats() {
        assert_splat("kasan", "BUG: KASAN: invalid-access");
        assert_splat(
            "kasan",
            "[   12.345678] BUG: KASAN: stack-out-of-bounds in f+0x1c/0x30",
        );
        assert_splat(
            "ubsan",
            "UBSAN: shift-out-of-bounds in kernel/bpf/verifier.c:1234:5",
        );
        assert_splat(
            "ubsan",
            "traps: UBSAN: array index out of bounds at f+0x1c/0x30",
        );
        assert_splat("kcsan", "BUG: KCSAN: assert: race in f+0x1c/0x30");
        assert_splat(
            "kcsan",
            "BUG: KCSAN: data-race in rqspinlock_acquire / rqspinlock_release",
        );
    }

    #[test]
    fn rcu_stalls_are_splats() {
        assert_splat(
            "rcu_stall",
            "rcu: INFO: rcu_sched detected stalls on CPUs/tasks:",
        );
        assert_splat(
            "rcu_stall",
            "rcu: INFO: rcu_preempt detected stall, but suppressed full report due to a stuck CSD-lock.",
        );
        assert_splat(
            "rcu_expedited_stall",
            "rcu: INFO: rcu_preempt detected expedited stalls, but suppressed full report due to a stuck CSD-lock.",
        );
        assert_splat(
            "rcu_tasks_stall",
            "INFO: rcu_tasks_trace detected stalls on tasks:",
        );
        assert_splat(
            "rcu_tasks_stall",
            "INFO: rcu_tasks_trace detected stalls? (Late IPI?)",
        );
        assert_splat(
            "rcu_kthread_starved",
            "rcu: rcu_preempt kthread timer wakeup didn't happen for 2501 jiffies! g2345 f0x0 RCU_GP_WAIT_FQS(5) ->state=0x402",
        );
    }

    #[test]
    fn lockups_and_hung_tasks_are_splats() {
        assert_splat(
            "soft_lockup",
            "[   50.123456] watchdog: BUG: soft lockup - CPU#1 stuck for 26s! [swapper/1:0]",
        );
        // Before 6.5 (kernel/watchdog_hld.c); the brief's wording.
        assert_splat(
            "hard_lockup",
            "NMI watchdog: Watchdog detected hard LOCKUP on cpu 1",
        );
        assert_splat(
            "hung_task",
            "INFO: task kworker/u4:2:57 blocked for more than 241 seconds.",
        );
    }

    #[test]
    fn sleeping_in_atomic_context_is_a_splat() {
        assert_splat(
            "sleep_in_atomic",
            "<3>BUG: sleeping function called from invalid context at include/linux/sched/mm.h:321",
        );
        assert_splat(
            "scheduling_while_atomic",
            "BUG: scheduling while atomic: swapper/0/0/0x00000002",
        );
    }

    #[test]
    fn splats_keep_their_shape() {
        // Each line once, trimmed, in the order seen.
        let log = "[    1.0] ok\n\
                   [    2.0] WARNING: CPU: 1 PID: 42 at kernel/bpf/x.c:1 f+0x1/0x2  \r\n\
                   [    3.0] watchdog: BUG: soft lockup - CPU#0 stuck for 22s! [x:1]\n\
                   Call Trace:\n\
                   [    4.0] rcu: INFO: rcu_preempt detected stalls on CPUs/tasks:\n\
                   Call Trace:\n";
        assert_eq!(
            find_splats(log),
            [
                "[    2.0] WARNING: CPU: 1 PID: 42 at kernel/bpf/x.c:1 f+0x1/0x2",
                "[    3.0] watchdog: BUG: soft lockup - CPU#0 stuck for 22s! [x:1]",
                "Call Trace:",
                "[    4.0] rcu: INFO: rcu_preempt detected stalls on CPUs/tasks:",
            ]
        );
    }

    #[test]
    fn clean_x86_64_boot_is_not_a_splat() {
        assert!(CLEAN_X86_64.contains("Lock dependency validator"));
        assert_clean(CLEAN_X86_64);
    }

    #[test]
    fn clean_arm64_boot_is_not_a_splat() {
        assert!(CLEAN_ARM64.contains("Lock dependency validator"));
        assert_clean(CLEAN_ARM64);
    }

    #[test]
    fn debug_kernel_banners_are_not_splats() {
        for line in [
            // kernel/locking/lockdep.c, lockdep_init().
            "Lock dependency validator: Copyright (c) 2006 Red Hat, Inc., Ingo Molnar",
            "... MAX_LOCKDEP_SUBCLASSES:  8",
            "... MAX_LOCK_DEPTH:          48",
            " memory used by lock dependency info: 6429 kB",
            // Printed by x86 kernels before 4.15 (not in 6.12).
            "lockdep: fixing up alternatives.",
            // arch/arm64/mm/kasan_init.c, arch/x86/mm/kasan_init_64.c.
            "kasan: KernelAddressSanitizer initialized (generic)",
            "kasan: KernelAddressSanitizer initialized",
            // kernel/kcsan/core.c, kernel/kcsan/selftest.c.
            "kcsan: enabled early",
            "kcsan: strict mode configured",
            "kcsan: selftest: 3/3 tests passed",
            // kernel/rcu/tree_plugin.h (pr_fmt "rcu: ") and kernel/rcu/update.c
            // (none); the brief's "rcu: " form of the latter too.
            "rcu: \tRCU lockdep checking is enabled.",
            "\tRCU CPU stall warnings timeout set to 21 (rcu_cpu_stall_timeout).",
            "rcu: \tRCU CPU stall warnings timeout set to 21 (rcu_cpu_stall_timeout).",
            "\tTasks-RCU CPU stall warnings timeout set to 600000 (rcu_task_stall_timeout).",
            "Running RCU synchronous self tests",
            // kernel/watchdog_perf.c (pr_fmt "NMI watchdog: "), kernel/watchdog.c
            // (pr_fmt "watchdog: ").
            "NMI watchdog: Perf NMI watchdog permanently disabled",
            "NMI watchdog: Enabled. Permanently consumes one hw-PMU counter.",
            "watchdog: Delayed init of the lockup detector failed: -19",
            "watchdog: Hard watchdog permanently disabled",
            "watchdog: NMI not fully supported",
            "watchdog: Disabling watchdog on nohz_full cores by default",
            // kernel/time/clocksource.c.
            "clocksource: Long readout interval, skipping watchdog check: cs_nsec: 1108675362 wd_nsec: 1108662340",
            // kernel/module/main.c: our test module is out of tree.
            "bpf_rqspin_testmod: loading out-of-tree module taints kernel.",
        ] {
            for prefix in PREFIXES {
                assert_clean(&format!("{prefix}{line}"));
            }
        }
    }

    #[test]
    fn notices_that_are_not_reports_are_not_splats() {
        for line in [
            // arch/x86/kernel/cpu/bugs.c: a configuration notice behind a
            // pr_fmt prefix, not a WARNING: banner.
            "Spectre V2 : WARNING: Unprivileged eBPF is enabled with eIBRS on, data leaks possible via Spectre v2 BHB attacks!",
            // arch/x86/kernel/traps.c, show_signal(): a user program's fault;
            // a crashed runner fails the run by its exit code.
            "traps: bpf-runner[123] general protection fault ip:55d0c0a01234 sp:7ffd5e6f7a80 error:0 in bpf-runner[55d0c0a00000+200000]",
            // arch/x86/kernel/nmi.c, nmi_check_duration(); slow under TCG.
            "INFO: NMI handler (perf_event_nmi_handler) took too long to run: 1.234 msecs",
            // kernel/time/hrtimer.c, hrtimer_interrupt().
            "hrtimer: interrupt took 1234567 ns",
            // kernel/time/clocksource.c, clocksource_watchdog().
            "clocksource: timekeeping watchdog on CPU1: Marking clocksource 'tsc' as unstable because the skew is too large:",
            // arch/x86/pci/acpi.c (pr_fmt "PCI: ").
            "PCI: Using host bridge windows from ACPI; if necessary, use \"pci=nocrs\" and report a bug",
            // arch/arm64/kernel/proton-pack.c: NOT_REPORTS.
            "[    3.141592] WARNING: Unprivileged eBPF is enabled, data leaks possible via Spectre v2 BHB attacks!",
        ] {
            assert_clean(line);
        }
        // Only that whole message: a report that begins like it counts.
        assert_eq!(
            find_splats("WARNING: Unprivileged eBPF is enabled, data leaks possible via Spectre v2 BHB attacks! and more").len(),
            1
        );
    }
}
