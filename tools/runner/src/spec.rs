//! Test expectations from the `comment:` decl tags of `bpf_misc.h`.
//!
//! The parsers here are pure: `btf_tags` pulls the strings out of an object,
//! this module turns one program's strings into a [`ProgRole`].
//!
//! Besides our own tags this reads the `_unpriv` ones of the kernel's
//! bpf_misc.h (`__success_unpriv`, `__failure_unpriv`, `__msg_unpriv`,
//! `__retval_unpriv`), so that upstream verifier selftests run unchanged: a
//! program carrying them yields a second test, `<name> @unpriv`, loaded
//! without CAP_SYS_ADMIN/CAP_NET_ADMIN/CAP_PERFMON/CAP_BPF as test_loader does.

use anyhow::{anyhow, bail, Context, Result};

const TAG_PREFIX: &str = "comment:";

/// Expected verdict of the program load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    Success,
    Failure,
}

/// With which privileges the program is loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// As the runner runs (root, all capabilities).
    Priv,
    /// test_loader's `@unpriv` variant: the effective capabilities
    /// CAP_SYS_ADMIN, CAP_NET_ADMIN, CAP_PERFMON and CAP_BPF dropped for the
    /// load. Skipped while the kernel forbids unprivileged BPF.
    Unpriv,
}

/// Appended to the name of the [`Mode::Unpriv`] test, as test_loader does.
pub const UNPRIV_SUFFIX: &str = " @unpriv";

/// One annotated test: a program and what its load must produce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestSpec {
    /// Program (function) name in the object.
    pub prog_name: String,
    /// `<object stem>/<description or program name>`, plus
    /// [`UNPRIV_SUFFIX`] for the unprivileged variant.
    pub name: String,
    pub mode: Mode,
    pub expect: Expect,
    /// `__msg` texts in source order.
    pub msgs: Vec<String>,
    /// Verifier log level used for the load (already adjusted, see
    /// [`effective_log_level`]).
    pub log_level: u32,
    /// `__flag`s ORed together.
    pub prog_flags: u32,
    /// `__retval`, as the low 32 bits of r0.
    pub retval: Option<i32>,
}

/// What a program of an object is for the runner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProgRole {
    /// One test per mode the tags ask for: the privileged one first, then
    /// the `@unpriv` one.
    Tests(Vec<TestSpec>),
    /// `__runtime_only`: loaded by a Rust runtime test.
    RuntimeOnly,
    /// `__auxiliary`: a program another test uses (a callback target, a
    /// program to attach), not a test of its own. It must say so: a program
    /// without any tag is a test whose annotation was forgotten, and is
    /// reported as [`ProgRole::Invalid`].
    Auxiliary,
    /// The tags contradict each other; reported as a failed test `name`.
    Invalid { name: String, error: String },
}

/// The tags of one program, before validation.
#[derive(Debug, Default)]
struct RawTags {
    success: bool,
    failure: bool,
    runtime_only: bool,
    auxiliary: bool,
    msgs: Vec<(u64, String)>,
    log_level: Option<u32>,
    prog_flags: u32,
    retval: Option<i32>,
    description: Option<String>,
    success_unpriv: bool,
    failure_unpriv: bool,
    msgs_unpriv: Vec<(u64, String)>,
    retval_unpriv: Option<i32>,
}

/// Test name for a program: `<object stem>/<description or program name>`.
pub fn test_name(object_stem: &str, prog_name: &str, description: Option<&str>) -> String {
    format!("{}/{}", object_stem, description.unwrap_or(prog_name))
}

/// Classifies program `prog_name` of object `object_stem` from the decl tag
/// strings attached to its FUNC. Strings without the `comment:` prefix are
/// not ours and are ignored.
pub fn classify(object_stem: &str, prog_name: &str, tags: &[String]) -> ProgRole {
    let mut raw = RawTags::default();
    let mut errors = Vec::new();
    let mut any_tag = false;
    for tag in tags {
        if let Some(body) = tag.strip_prefix(TAG_PREFIX) {
            any_tag = true;
            if let Err(e) = apply_tag(&mut raw, body) {
                errors.push(format!("{e:#}"));
            }
        }
    }
    let name = test_name(object_stem, prog_name, raw.description.as_deref());
    if !any_tag {
        // A program without annotation would otherwise silently not be a
        // test: a forgotten __success must not shrink the suite.
        return ProgRole::Invalid {
            name,
            error: format!(
                "program '{prog_name}' has no test annotation: mark it __success, __failure or \
                 __runtime_only, or __auxiliary if it is not a test of its own"
            ),
        };
    }
    let priv_expect = verdict(raw.success, raw.failure, "", &mut errors);
    let unpriv_verdict = verdict(
        raw.success_unpriv,
        raw.failure_unpriv,
        "_unpriv",
        &mut errors,
    );
    let has_priv_expectations = !raw.msgs.is_empty() || raw.retval.is_some();
    let has_unpriv =
        unpriv_verdict.is_some() || !raw.msgs_unpriv.is_empty() || raw.retval_unpriv.is_some();
    let is_test = priv_expect.is_some() || has_unpriv;
    if raw.auxiliary {
        if is_test || raw.runtime_only {
            errors.push(
                "__auxiliary together with __success/__failure/__runtime_only (or their _unpriv forms)"
                    .to_string(),
            );
        } else if has_priv_expectations || raw.log_level.is_some() || raw.prog_flags != 0 {
            errors.push("__auxiliary with __msg/__log_level/__flag/__retval".to_string());
        } else if errors.is_empty() {
            return ProgRole::Auxiliary;
        }
    } else if raw.runtime_only {
        if is_test {
            errors.push(
                "__runtime_only together with __success/__failure (or their _unpriv forms)"
                    .to_string(),
            );
        } else if has_priv_expectations || raw.log_level.is_some() || raw.prog_flags != 0 {
            // They would be silently ignored: the runtime test loads it.
            errors.push("__runtime_only with __msg/__log_level/__flag/__retval".to_string());
        } else if errors.is_empty() {
            return ProgRole::RuntimeOnly;
        }
    } else if !is_test {
        // A forgotten __success/__failure must not turn a test into an
        // auxiliary program that never runs.
        errors.push("expectation tags without __success or __failure".to_string());
    } else if priv_expect.is_none() && has_priv_expectations {
        // test_loader would imply __success here; a test of ours says what
        // it expects, and a typo must not make it a different test.
        errors.push("__msg/__retval without __success or __failure".to_string());
    }

    let mut specs = Vec::new();
    if let Some(expect) = priv_expect {
        if expect == Expect::Failure && raw.retval.is_some() {
            errors.push("__retval on a __failure test: a rejected program cannot run".to_string());
        }
        specs.push(mode_spec(
            Mode::Priv,
            name.clone(),
            prog_name,
            &raw,
            expect,
            raw.msgs.clone(),
            raw.retval,
            &mut errors,
        ));
    }
    if has_unpriv {
        // What the unprivileged load does not state itself it inherits from
        // the privileged one, as in test_loader.
        match unpriv_verdict.or(priv_expect) {
            None => errors.push(
                "__msg_unpriv/__retval_unpriv without __success_unpriv, __failure_unpriv, __success or __failure"
                    .to_string(),
            ),
            Some(expect) => {
                let msgs = if raw.msgs_unpriv.is_empty() {
                    raw.msgs.clone()
                } else {
                    raw.msgs_unpriv.clone()
                };
                let retval = match (raw.retval_unpriv, expect) {
                    (Some(_), Expect::Failure) => {
                        errors.push(
                            "__retval_unpriv on a test that fails unprivileged: a rejected program cannot run"
                                .to_string(),
                        );
                        None
                    }
                    (Some(v), Expect::Success) => Some(v),
                    // An inherited __retval is only run when the unprivileged
                    // load is expected to succeed.
                    (None, Expect::Success) => raw.retval,
                    (None, Expect::Failure) => None,
                };
                specs.push(mode_spec(
                    Mode::Unpriv,
                    format!("{name}{UNPRIV_SUFFIX}"),
                    prog_name,
                    &raw,
                    expect,
                    msgs,
                    retval,
                    &mut errors,
                ));
            }
        }
    }

    if !errors.is_empty() {
        return ProgRole::Invalid {
            name,
            error: format!(
                "invalid test spec of program '{prog_name}': {}",
                errors.join("; ")
            ),
        };
    }
    ProgRole::Tests(specs)
}

/// The verdict `__success{suffix}`/`__failure{suffix}` ask for, if any.
fn verdict(success: bool, failure: bool, suffix: &str, errors: &mut Vec<String>) -> Option<Expect> {
    match (success, failure) {
        (true, true) => {
            errors.push(format!("both __success{suffix} and __failure{suffix}"));
            None
        }
        (true, false) => Some(Expect::Success),
        (false, true) => Some(Expect::Failure),
        (false, false) => None,
    }
}

/// The test of one mode; problems go to `errors`, prefixed for `@unpriv`.
#[allow(clippy::too_many_arguments)]
fn mode_spec(
    mode: Mode,
    name: String,
    prog_name: &str,
    raw: &RawTags,
    expect: Expect,
    mut msgs: Vec<(u64, String)>,
    retval: Option<i32>,
    errors: &mut Vec<String>,
) -> TestSpec {
    let prefix = match mode {
        Mode::Priv => "",
        Mode::Unpriv => "@unpriv: ",
    };
    let log_level = match effective_log_level(expect, !msgs.is_empty(), raw.log_level) {
        Ok(level) => level,
        Err(e) => {
            errors.push(format!("{prefix}{e}"));
            0
        }
    };
    msgs.sort_by_key(|(counter, _)| *counter);
    let msgs: Vec<String> = msgs.into_iter().map(|(_, text)| text).collect();
    if let Err(e) = crate::matcher::validate(&msgs) {
        errors.push(format!("{prefix}{e:#}"));
    }
    TestSpec {
        prog_name: prog_name.to_string(),
        name,
        mode,
        expect,
        msgs,
        log_level,
        prog_flags: raw.prog_flags,
        retval,
    }
}

fn apply_tag(raw: &mut RawTags, body: &str) -> Result<()> {
    match body {
        "test_expect_success" => raw.success = true,
        "test_expect_failure" => raw.failure = true,
        "test_runtime_only" => raw.runtime_only = true,
        // bpf_misc.h of the kernel has both; an auxiliary program is one in
        // every mode.
        "test_auxiliary" | "test_auxiliary_unpriv" => raw.auxiliary = true,
        "test_expect_success_unpriv" => raw.success_unpriv = true,
        "test_expect_failure_unpriv" => raw.failure_unpriv = true,
        _ => {
            let (key, value) = body
                .split_once('=')
                .ok_or_else(|| anyhow!("unknown tag 'comment:{body}'"))?;
            match key {
                "test_expect_msg" => raw.msgs.push(parse_msg(value, body)?),
                "test_expect_msg_unpriv" => raw.msgs_unpriv.push(parse_msg(value, body)?),
                "test_log_level" => {
                    let level = parse_int(value)
                        .ok()
                        .and_then(|v| u32::try_from(v).ok())
                        .ok_or_else(|| anyhow!("__log_level '{value}' is not a level"))?;
                    raw.log_level = Some(level);
                }
                "test_prog_flags" => raw.prog_flags |= parse_prog_flags(value)?,
                "test_retval" => raw.retval = Some(parse_retval(value)?),
                "test_retval_unpriv" => raw.retval_unpriv = Some(parse_retval(value)?),
                "test_description" => raw.description = Some(value.to_string()),
                _ => bail!("unknown tag 'comment:{body}'"),
            }
        }
    }
    Ok(())
}

/// `<__COUNTER__>=<text>` of a `__msg`/`__msg_unpriv`: the counter restores
/// source order, which the BTF does not keep.
fn parse_msg(value: &str, body: &str) -> Result<(u64, String)> {
    let (counter, text) = value
        .split_once('=')
        .ok_or_else(|| anyhow!("__msg tag without counter: 'comment:{body}'"))?;
    let counter = counter
        .parse::<u64>()
        .with_context(|| format!("__msg counter '{counter}'"))?;
    Ok((counter, text.to_string()))
}

/// Log level for the load. A `__failure` test with `__msg` gets at least 1 so
/// that the kernel writes the log on the first try. A `__success` test with
/// `__msg` must ask for a level itself: at level 0 a successful load produces
/// no log at all, so its messages could never match.
pub fn effective_log_level(expect: Expect, has_msgs: bool, tag: Option<u32>) -> Result<u32> {
    match (expect, has_msgs, tag) {
        (Expect::Failure, true, level) => Ok(level.unwrap_or(0).max(1)),
        (Expect::Success, true, None | Some(0)) => {
            bail!("__success with __msg needs __log_level(1 or 2): a load that succeeds at level 0 writes no verifier log")
        }
        (_, _, level) => Ok(level.unwrap_or(0)),
    }
}

/// Parses a C integer literal as written in a tag: decimal, `0x` hex, a leading
/// `-`/`+`, an optional `U`/`L` suffix. Octal is not used in our tags and a
/// leading zero is read as decimal.
pub fn parse_int(text: &str) -> Result<i64> {
    let t = text.trim();
    let (negative, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, t[1..].trim_start()),
        Some(b'+') => (false, t[1..].trim_start()),
        _ => (false, t),
    };
    let digits = digits.trim_end_matches(['u', 'U', 'l', 'L']);
    let magnitude = if let Some(hex) = digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
    {
        u64::from_str_radix(hex, 16)
    } else {
        digits.parse::<u64>()
    }
    .with_context(|| format!("'{text}' is not an integer"))?;
    let magnitude =
        i64::try_from(magnitude).with_context(|| format!("'{text}' is out of range"))?;
    Ok(if negative { -magnitude } else { magnitude })
}

/// Errno names accepted in `__retval(-ENAME)`. Values are the generic Linux
/// ones, the same on x86_64 and arm64.
const ERRNOS: &[(&str, i32)] = &[
    ("EPERM", libc::EPERM),
    ("ENOENT", libc::ENOENT),
    ("ESRCH", libc::ESRCH),
    ("EINTR", libc::EINTR),
    ("EIO", libc::EIO),
    ("E2BIG", libc::E2BIG),
    ("EBADF", libc::EBADF),
    ("EAGAIN", libc::EAGAIN),
    ("ENOMEM", libc::ENOMEM),
    ("EACCES", libc::EACCES),
    ("EFAULT", libc::EFAULT),
    ("EBUSY", libc::EBUSY),
    ("EEXIST", libc::EEXIST),
    ("ENODEV", libc::ENODEV),
    ("EINVAL", libc::EINVAL),
    ("ENOSPC", libc::ENOSPC),
    ("ERANGE", libc::ERANGE),
    ("EDEADLK", libc::EDEADLK),
    ("ENOSYS", libc::ENOSYS),
    ("EOPNOTSUPP", libc::EOPNOTSUPP),
    ("ETIMEDOUT", libc::ETIMEDOUT),
    // Kernel-internal, not in userspace headers (include/linux/errno.h).
    ("ENOTSUPP", 524),
];

/// Looks up an errno name such as `EDEADLK`.
pub fn errno_value(name: &str) -> Option<i32> {
    ERRNOS.iter().find(|(n, _)| *n == name).map(|&(_, v)| v)
}

/// Parses `__retval(V)`: an integer literal or `±ENAME`, compared later as the
/// low 32 bits of r0, so `0xffffffff` and `-1` are the same value.
pub fn parse_retval(text: &str) -> Result<i32> {
    let t = text.trim();
    let (negative, rest) = match t.strip_prefix('-') {
        Some(rest) => (true, rest.trim_start()),
        None => (false, t.strip_prefix('+').unwrap_or(t).trim_start()),
    };
    if rest.starts_with('E') {
        let value = errno_value(rest)
            .ok_or_else(|| anyhow!("__retval '{text}': unknown errno name '{rest}'"))?;
        return Ok(if negative { -value } else { value });
    }
    let value = parse_int(t).with_context(|| format!("__retval '{text}'"))?;
    if !(i64::from(i32::MIN)..=i64::from(u32::MAX)).contains(&value) {
        bail!("__retval '{text}' does not fit in 32 bits");
    }
    // Truncation to the low 32 bits is the point: r0 is compared as a u32/i32.
    Ok(value as u32 as i32)
}

/// BPF_PROG_LOAD flags by name, as `__flag(NAME)` stringifies them.
const PROG_FLAGS: &[(&str, u32)] = &[
    ("BPF_F_STRICT_ALIGNMENT", libbpf_sys::BPF_F_STRICT_ALIGNMENT),
    ("BPF_F_ANY_ALIGNMENT", libbpf_sys::BPF_F_ANY_ALIGNMENT),
    ("BPF_F_TEST_RND_HI32", libbpf_sys::BPF_F_TEST_RND_HI32),
    ("BPF_F_TEST_STATE_FREQ", libbpf_sys::BPF_F_TEST_STATE_FREQ),
    ("BPF_F_SLEEPABLE", libbpf_sys::BPF_F_SLEEPABLE),
    ("BPF_F_XDP_HAS_FRAGS", libbpf_sys::BPF_F_XDP_HAS_FRAGS),
    (
        "BPF_F_TEST_REG_INVARIANTS",
        libbpf_sys::BPF_F_TEST_REG_INVARIANTS,
    ),
];

/// Parses one `__flag(F)`: a flag name, a number, or several joined by `|`.
pub fn parse_prog_flags(text: &str) -> Result<u32> {
    let mut flags = 0;
    for part in text.split('|').map(str::trim) {
        let value = match PROG_FLAGS.iter().find(|(n, _)| *n == part) {
            Some(&(_, v)) => v,
            None if part.starts_with("BPF_") => bail!("__flag '{text}': unknown flag '{part}'"),
            None => parse_int(part)
                .ok()
                .and_then(|v| u32::try_from(v).ok())
                .ok_or_else(|| {
                    anyhow!("__flag '{text}': '{part}' is neither a flag name nor a number")
                })?,
        };
        flags |= value;
    }
    Ok(flags)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn test_specs(role: ProgRole) -> Vec<TestSpec> {
        match role {
            ProgRole::Tests(specs) => specs,
            other => panic!("expected tests, got {other:?}"),
        }
    }

    /// The one (privileged) test of a program without `_unpriv` tags.
    fn test_spec(role: ProgRole) -> TestSpec {
        let mut specs = test_specs(role);
        assert_eq!(specs.len(), 1, "{specs:?}");
        let spec = specs.remove(0);
        assert_eq!(spec.mode, Mode::Priv);
        spec
    }

    #[test]
    fn success_with_defaults() {
        let spec = test_spec(classify(
            "obj",
            "prog",
            &tags(&["comment:test_expect_success"]),
        ));
        assert_eq!(spec.name, "obj/prog");
        assert_eq!(spec.prog_name, "prog");
        assert_eq!(spec.expect, Expect::Success);
        assert!(spec.msgs.is_empty());
        assert_eq!(spec.log_level, 0);
        assert_eq!(spec.prog_flags, 0);
        assert_eq!(spec.retval, None);
    }

    #[test]
    fn failure_msgs_sorted_by_counter_and_level_raised() {
        let spec = test_spec(classify(
            "obj",
            "prog",
            &tags(&[
                "comment:test_expect_msg=12=second = with equals",
                "comment:test_expect_failure",
                "comment:test_expect_msg=3=first",
                "comment:test_expect_msg=100=third",
            ]),
        ));
        assert_eq!(spec.expect, Expect::Failure);
        assert_eq!(spec.msgs, vec!["first", "second = with equals", "third"]);
        assert_eq!(spec.log_level, 1, "a __failure test with __msg needs a log");
    }

    #[test]
    fn explicit_log_level_kept() {
        let spec = test_spec(classify(
            "o",
            "p",
            &tags(&[
                "comment:test_expect_failure",
                "comment:test_log_level=2",
                "comment:test_expect_msg=0=x",
            ]),
        ));
        assert_eq!(spec.log_level, 2);
        let spec = test_spec(classify(
            "o",
            "p",
            &tags(&["comment:test_expect_success", "comment:test_log_level=2"]),
        ));
        assert_eq!(spec.log_level, 2);
        let spec = test_spec(classify("o", "p", &tags(&["comment:test_expect_failure"])));
        assert_eq!(spec.log_level, 0);
    }

    #[test]
    fn success_with_msg_needs_log_level() {
        match classify(
            "o",
            "p",
            &tags(&["comment:test_expect_success", "comment:test_expect_msg=1=x"]),
        ) {
            ProgRole::Invalid { name, error } => {
                assert_eq!(name, "o/p");
                assert!(error.contains("__log_level"), "{error}");
            }
            other => panic!("{other:?}"),
        }
        let spec = test_spec(classify(
            "o",
            "p",
            &tags(&[
                "comment:test_expect_success",
                "comment:test_expect_msg=1=x",
                "comment:test_log_level=2",
            ]),
        ));
        assert_eq!(spec.msgs, vec!["x"]);
    }

    #[test]
    fn description_flags_retval() {
        let spec = test_spec(classify(
            "locks",
            "prog",
            &tags(&[
                "comment:test_expect_success",
                "comment:test_description=nested lock: rejected",
                "comment:test_prog_flags=BPF_F_TEST_STATE_FREQ",
                "comment:test_prog_flags=BPF_F_STRICT_ALIGNMENT",
                "comment:test_retval=-EDEADLK",
            ]),
        ));
        assert_eq!(spec.name, "locks/nested lock: rejected");
        assert_eq!(spec.prog_name, "prog");
        assert_eq!(spec.prog_flags, 8 | 1);
        assert_eq!(spec.retval, Some(-35));
    }

    #[test]
    fn roles_without_tests() {
        assert_eq!(
            classify("o", "p", &tags(&["comment:test_auxiliary"])),
            ProgRole::Auxiliary
        );
        assert_eq!(
            classify(
                "o",
                "p",
                &tags(&["comment:test_auxiliary", "comment:test_description=d"])
            ),
            ProgRole::Auxiliary
        );
        assert_eq!(
            classify("o", "p", &tags(&["comment:test_runtime_only"])),
            ProgRole::RuntimeOnly
        );
        assert_eq!(
            classify(
                "o",
                "p",
                &tags(&["comment:test_runtime_only", "comment:test_description=d"])
            ),
            ProgRole::RuntimeOnly
        );
    }

    /// A program without annotation is a forgotten test, not an auxiliary
    /// one: it fails, under its name, and says how to fix it.
    #[test]
    fn unannotated_program_is_an_error() {
        for t in [&[][..], &["other:tag"][..]] {
            match classify("o", "p", &tags(t)) {
                ProgRole::Invalid { name, error } => {
                    assert_eq!(name, "o/p");
                    assert!(error.contains("no test annotation"), "{error}");
                    assert!(error.contains("__auxiliary"), "{error}");
                }
                other => panic!("{t:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn contradictions_are_invalid() {
        for bad in [
            &["comment:test_expect_success", "comment:test_expect_failure"][..],
            &["comment:test_runtime_only", "comment:test_expect_success"][..],
            &["comment:test_expect_success", "comment:test_retval=EBOGUS"][..],
            &[
                "comment:test_expect_success",
                "comment:test_prog_flags=BPF_F_BOGUS",
            ][..],
            &["comment:test_expect_success", "comment:test_expect_msg=x"][..],
            &["comment:test_expect_success", "comment:test_log_level=high"][..],
            &["comment:test_expect_success", "comment:test_xlated=r0 = 1"][..],
            &["comment:test_expect_sucess"][..],
            &["comment:test_auxiliary", "comment:test_expect_success"][..],
            &["comment:test_auxiliary", "comment:test_runtime_only"][..],
            &["comment:test_auxiliary", "comment:test_expect_msg=1=x"][..],
            &[
                "comment:test_expect_failure",
                "comment:test_expect_msg=1=bad {{[}}",
            ][..],
            // A typo'd expectation on its own must not turn the program
            // into a silent non-test.
            &["comment:test_retval=1"][..],
            &["comment:test_description=x"][..],
            &["comment:test_expect_failure", "comment:test_retval=0"][..],
            &["comment:test_runtime_only", "comment:test_retval=1"][..],
        ] {
            match classify("o", "p", &tags(bad)) {
                ProgRole::Invalid { error, .. } => assert!(error.contains("'p'"), "{error}"),
                other => panic!("{bad:?} gave {other:?}"),
            }
        }
    }

    #[test]
    fn unpriv_variant_of_upstream_spin_lock_test1() {
        // verifier_spin_lock.c: __success __failure_unpriv __msg_unpriv("")
        // __retval(0).
        let specs = test_specs(classify(
            "upstream_verifier_spin_lock",
            "spin_lock_test1_success",
            &tags(&[
                "comment:test_description=spin_lock: test1 success",
                "comment:test_expect_success",
                "comment:test_expect_failure_unpriv",
                "comment:test_expect_msg_unpriv=0=",
                "comment:test_retval=0",
            ]),
        ));
        assert_eq!(specs.len(), 2, "{specs:?}");
        let (privileged, unpriv) = (&specs[0], &specs[1]);
        assert_eq!(
            privileged.name,
            "upstream_verifier_spin_lock/spin_lock: test1 success"
        );
        assert_eq!(privileged.mode, Mode::Priv);
        assert_eq!(privileged.expect, Expect::Success);
        assert_eq!(privileged.retval, Some(0));
        assert!(privileged.msgs.is_empty());
        assert_eq!(privileged.log_level, 0);
        assert_eq!(
            unpriv.name,
            "upstream_verifier_spin_lock/spin_lock: test1 success @unpriv"
        );
        assert_eq!(unpriv.prog_name, "spin_lock_test1_success");
        assert_eq!(unpriv.mode, Mode::Unpriv);
        assert_eq!(unpriv.expect, Expect::Failure);
        assert_eq!(unpriv.msgs, [""]);
        assert_eq!(unpriv.log_level, 1, "a rejection with __msg needs a log");
        assert_eq!(
            unpriv.retval, None,
            "an inherited __retval never runs a rejected load"
        );
    }

    #[test]
    fn unpriv_inherits_what_it_does_not_state() {
        let specs = test_specs(classify(
            "o",
            "p",
            &tags(&[
                "comment:test_expect_failure",
                "comment:test_expect_msg=1=x",
                "comment:test_expect_msg_unpriv=2=",
                "comment:test_log_level=2",
                "comment:test_prog_flags=BPF_F_TEST_STATE_FREQ",
            ]),
        ));
        // __msg_unpriv alone makes the @unpriv variant, verdict inherited.
        assert_eq!(specs[1].expect, Expect::Failure);
        assert_eq!(specs[1].msgs, [""]);
        assert_eq!((specs[1].log_level, specs[1].prog_flags), (2, 8));

        let specs = test_specs(classify(
            "o",
            "p",
            &tags(&[
                "comment:test_expect_failure",
                "comment:test_expect_msg=1=x",
                "comment:test_expect_failure_unpriv",
            ]),
        ));
        assert_eq!(specs[1].msgs, ["x"], "priv __msg inherited");
        assert_eq!(specs[1].log_level, 1);

        let specs = test_specs(classify(
            "o",
            "p",
            &tags(&[
                "comment:test_expect_success",
                "comment:test_retval=3",
                "comment:test_expect_success_unpriv",
            ]),
        ));
        assert_eq!(specs[1].retval, Some(3), "priv __retval inherited");

        let specs = test_specs(classify(
            "o",
            "p",
            &tags(&[
                "comment:test_expect_success",
                "comment:test_retval=3",
                "comment:test_retval_unpriv=-EPERM",
            ]),
        ));
        assert_eq!(specs[1].expect, Expect::Success);
        assert_eq!((specs[0].retval, specs[1].retval), (Some(3), Some(-1)));
    }

    #[test]
    fn unpriv_only_test() {
        let specs = test_specs(classify(
            "o",
            "p",
            &tags(&[
                "comment:test_expect_failure_unpriv",
                "comment:test_expect_msg_unpriv=4=R1 pointer arithmetic",
            ]),
        ));
        assert_eq!(specs.len(), 1, "{specs:?}");
        assert_eq!(specs[0].mode, Mode::Unpriv);
        assert_eq!(specs[0].name, "o/p @unpriv");
        assert_eq!(specs[0].msgs, ["R1 pointer arithmetic"]);
    }

    #[test]
    fn unpriv_contradictions_are_invalid() {
        for (bad, why) in [
            (
                &["comment:test_expect_msg_unpriv=1=x"][..],
                "without __success_unpriv",
            ),
            (
                &[
                    "comment:test_expect_success_unpriv",
                    "comment:test_expect_failure_unpriv",
                ][..],
                "both __success_unpriv and __failure_unpriv",
            ),
            (
                &[
                    "comment:test_expect_failure_unpriv",
                    "comment:test_retval_unpriv=1",
                ][..],
                "__retval_unpriv",
            ),
            (
                &[
                    "comment:test_expect_success_unpriv",
                    "comment:test_expect_msg_unpriv=1=x",
                ][..],
                "@unpriv: __success with __msg",
            ),
            (
                &[
                    "comment:test_expect_msg=1=x",
                    "comment:test_expect_failure_unpriv",
                ][..],
                "__msg/__retval without __success or __failure",
            ),
            (
                &[
                    "comment:test_runtime_only",
                    "comment:test_expect_failure_unpriv",
                ][..],
                "__runtime_only",
            ),
            (
                &[
                    "comment:test_expect_success",
                    "comment:test_retval_unpriv=zero",
                ][..],
                "__retval",
            ),
            (
                &[
                    "comment:test_expect_failure_unpriv",
                    "comment:test_expect_msg_unpriv=x",
                ][..],
                "counter",
            ),
        ] {
            match classify("o", "p", &tags(bad)) {
                ProgRole::Invalid { name, error } => {
                    assert_eq!(name, "o/p");
                    assert!(error.contains(why), "{bad:?}: {error}");
                }
                other => panic!("{bad:?} gave {other:?}"),
            }
        }
    }

    #[test]
    fn retval_forms() {
        assert_eq!(parse_retval("0").unwrap(), 0);
        assert_eq!(parse_retval("42").unwrap(), 42);
        assert_eq!(parse_retval("-1").unwrap(), -1);
        assert_eq!(parse_retval("0xffffffff").unwrap(), -1);
        assert_eq!(parse_retval("0x10").unwrap(), 16);
        assert_eq!(parse_retval("0X7fffffff").unwrap(), i32::MAX);
        assert_eq!(parse_retval("-2147483648").unwrap(), i32::MIN);
        assert_eq!(parse_retval("1U").unwrap(), 1);
        assert_eq!(parse_retval("-EDEADLK").unwrap(), -libc::EDEADLK);
        assert_eq!(parse_retval("-ETIMEDOUT").unwrap(), -libc::ETIMEDOUT);
        assert_eq!(parse_retval("-EINVAL").unwrap(), -22);
        assert_eq!(parse_retval("-EPERM").unwrap(), -1);
        assert_eq!(parse_retval("EPERM").unwrap(), 1);
        assert_eq!(parse_retval("- ENOTSUPP").unwrap(), -524);
        assert!(parse_retval("0x100000000").is_err());
        assert!(parse_retval("-2147483649").is_err());
        assert!(parse_retval("-EWHATEVER").is_err());
        assert!(parse_retval("POINTER_VALUE").is_err());
        assert!(parse_retval("").is_err());
    }

    #[test]
    fn errno_values_are_linux_generic() {
        assert_eq!(errno_value("EDEADLK"), Some(35));
        assert_eq!(errno_value("ETIMEDOUT"), Some(110));
        assert_eq!(errno_value("EINVAL"), Some(22));
        assert_eq!(errno_value("EPERM"), Some(1));
        assert_eq!(errno_value("edeadlk"), None);
    }

    #[test]
    fn flag_forms() {
        assert_eq!(parse_prog_flags("BPF_F_TEST_STATE_FREQ").unwrap(), 8);
        assert_eq!(parse_prog_flags("BPF_F_STRICT_ALIGNMENT").unwrap(), 1);
        assert_eq!(parse_prog_flags("BPF_F_ANY_ALIGNMENT").unwrap(), 2);
        assert_eq!(parse_prog_flags("BPF_F_SLEEPABLE").unwrap(), 16);
        assert_eq!(parse_prog_flags("BPF_F_TEST_REG_INVARIANTS").unwrap(), 128);
        assert_eq!(
            parse_prog_flags("BPF_F_ANY_ALIGNMENT | BPF_F_TEST_STATE_FREQ").unwrap(),
            10
        );
        assert_eq!(parse_prog_flags("8").unwrap(), 8);
        assert_eq!(parse_prog_flags("0x12").unwrap(), 18);
        assert!(parse_prog_flags("BPF_F_NOPE").is_err());
        assert!(parse_prog_flags("-1").is_err());
        assert!(parse_prog_flags("sleepable").is_err());
    }

    #[test]
    fn ints() {
        assert_eq!(parse_int(" 12 ").unwrap(), 12);
        assert_eq!(parse_int("-0x20").unwrap(), -32);
        assert_eq!(parse_int("+7").unwrap(), 7);
        assert!(parse_int("1.5").is_err());
        assert!(parse_int("0x").is_err());
    }
}
