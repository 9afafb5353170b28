/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Test expectations written next to each BPF program, as BTF decl tags.
 *
 * The tag strings are the ones of the kernel's
 * tools/testing/selftests/bpf/progs/bpf_misc.h, so a program written for
 * test_progs' test_loader reads the same here, and our runner
 * (tools/runner) reads them back from the object's .BTF:
 *
 *   __success / __failure    expected verdict of the load
 *   __msg("text")            substring that must appear in the verifier log,
 *                            in the order written; "{{re}}" parts are regexes
 *   __log_level(N)           verifier log level for the load (a __success
 *                            test that checks __msg needs 2)
 *   __flag(F)                extra BPF_PROG_LOAD flag, e.g. BPF_F_TEST_STATE_FREQ
 *   __retval(N)              run once with BPF_PROG_TEST_RUN and compare r0
 *   __description("text")    the test's name, if not the program's
 *   __auxiliary              not a test of its own (another test uses it);
 *                            a program with no tag at all is an error
 *
 * Objects must be built with -g so that clang emits the tags.
 */
#ifndef __BPF_MISC_H__
#define __BPF_MISC_H__

#define XSTR(s) STR(s)
#define STR(s) #s

#define __msg(msg)		__attribute__((btf_decl_tag("comment:test_expect_msg=" XSTR(__COUNTER__) "=" msg)))
#define __failure		__attribute__((btf_decl_tag("comment:test_expect_failure")))
#define __success		__attribute__((btf_decl_tag("comment:test_expect_success")))
#define __description(desc)	__attribute__((btf_decl_tag("comment:test_description=" desc)))
#define __log_level(lvl)	__attribute__((btf_decl_tag("comment:test_log_level="#lvl)))
#define __flag(flag)		__attribute__((btf_decl_tag("comment:test_prog_flags="#flag)))
#define __retval(val)		__attribute__((btf_decl_tag("comment:test_retval="#val)))

/* Runtime-only programs (driven by a Rust test in the runner) carry this
 * instead of an expectation, so the loader does not test them on its own.
 */
#define __runtime_only		__attribute__((btf_decl_tag("comment:test_runtime_only")))

/* A program that is not a test of its own (another test uses it). Every
 * other program must carry an expectation: an unannotated one fails.
 */
#define __auxiliary		__attribute__((btf_decl_tag("comment:test_auxiliary")))

#define __naked			__attribute__((naked))
#define __clobber_all		"r0", "r1", "r2", "r3", "r4", "r5", "r6", "r7", "r8", "r9", "memory"
#define __imm(name)		[name]"i"(name)
#define __imm_const(name, expr)	[name]"i"(expr)
#define __imm_addr(name)	[name]"i"(&name)
#define __imm_ptr(name)		[name]"r"(&name)

#ifndef __used
#define __used __attribute__((used))
#endif

#ifndef __always_inline
#define __always_inline inline __attribute__((always_inline))
#endif

#endif /* __BPF_MISC_H__ */
