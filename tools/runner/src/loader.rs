//! Running one annotated test the way test_loader does: open the object
//! afresh, load only the program under test with the requested log level and
//! flags (for an `@unpriv` test with BPF capabilities dropped, or skipped
//! where the kernel forbids unprivileged BPF), then check verdict, `__msg`s
//! and `__retval`.

mod unpriv;

pub use unpriv::allow_unpriv_bpf;

use std::fmt::Write as _;
use std::path::Path;

use crate::libbpf::{self, Object};
use crate::matcher;
use crate::report::Status;
use crate::spec::{Expect, Mode, TestSpec};

/// Verifier log buffer per load. Large: level 2 logs of the lock tests run
/// to megabytes, and a full buffer makes the kernel fail the load (ENOSPC).
pub const LOG_BUF_SIZE: usize = 16 << 20;
/// Zeroed packet handed to BPF_PROG_TEST_RUN for `__retval`, as in test_loader.
pub const TEST_DATA_LEN: usize = 64;
/// Lines of verifier log quoted in a failure message.
pub const LOG_TAIL_LINES: usize = 30;

/// The outcome of one test and the log to keep for it.
#[derive(Debug)]
pub struct TestRun {
    pub status: Status,
    pub log: String,
}

/// "Invalid argument (os error 22)".
fn errno_text(errno: i32) -> String {
    std::io::Error::from_raw_os_error(errno).to_string()
}

/// Failure detail: what went wrong, then libbpf's own words and the end of
/// the verifier log, which is where a rejection is explained.
fn failure(summary: String, libbpf_msgs: &str, verifier_log: &str) -> Status {
    let mut msg = summary;
    let libbpf_msgs = libbpf_msgs.trim_end();
    if !libbpf_msgs.is_empty() {
        let _ = write!(
            msg,
            "\nlibbpf:\n{}",
            matcher::tail_lines(libbpf_msgs, LOG_TAIL_LINES)
        );
    }
    if verifier_log.trim().is_empty() {
        msg.push_str("\nverifier log: (empty)");
    } else {
        let _ = write!(
            msg,
            "\nverifier log (last {LOG_TAIL_LINES} lines):\n{}",
            matcher::tail_lines(verifier_log, LOG_TAIL_LINES)
        );
    }
    Status::Fail(msg)
}

/// The log file's content: the verifier log, then libbpf's messages.
fn full_log(verifier_log: &str, libbpf_msgs: &str) -> String {
    format!("{verifier_log}\n--- libbpf messages ---\n{libbpf_msgs}")
}

/// Runs `spec` from the object file `object`.
pub fn run_test(object: &Path, spec: &TestSpec) -> TestRun {
    if spec.mode == Mode::Unpriv {
        match unpriv::disabled_reason() {
            Ok(None) => {}
            Ok(Some(reason)) => {
                return TestRun {
                    log: format!("skipped: {reason}\n"),
                    status: Status::Skip(reason),
                }
            }
            Err(e) => {
                let msg = format!("{e:#}");
                return TestRun {
                    log: msg.clone(),
                    status: Status::Fail(msg),
                };
            }
        }
    }
    libbpf::take_messages();
    let mut obj = match Object::open(object) {
        Ok(obj) => obj,
        Err(e) => {
            let msgs = libbpf::take_messages();
            return TestRun {
                status: failure(format!("{e:#}"), &msgs, ""),
                log: full_log("", &msgs),
            };
        }
    };
    if let Err(e) = obj.select_program(
        &spec.prog_name,
        spec.log_level,
        spec.prog_flags,
        LOG_BUF_SIZE,
    ) {
        let msgs = libbpf::take_messages();
        return TestRun {
            status: failure(format!("preparing the load: {e:#}"), &msgs, ""),
            log: full_log("", &msgs),
        };
    }
    let loaded = match load(&mut obj, spec.mode) {
        Ok(loaded) => loaded,
        Err(e) => {
            let msgs = libbpf::take_messages();
            return TestRun {
                status: failure(format!("{e:#}"), &msgs, ""),
                log: full_log("", &msgs),
            };
        }
    };
    let vlog = obj.log(&spec.prog_name);
    let mut msgs = libbpf::take_messages();
    if loaded.is_err() && vlog.trim().is_empty() {
        if let Some(reason) = missing_prog_type(&obj, &spec.prog_name) {
            return TestRun {
                log: full_log(&format!("skipped: {reason}"), &msgs),
                status: Status::Skip(reason),
            };
        }
    }
    let status = check(&obj, spec, loaded, &vlog, &mut msgs);
    TestRun {
        status,
        log: full_log(&vlog, &msgs),
    }
}

/// Why the kernel cannot load program `prog` at all, if its program type is
/// one the kernel was built without (e.g. cgroup_skb without
/// CONFIG_CGROUP_BPF): then the load fails with EINVAL before the verifier,
/// and the test cannot say anything about the verifier. Asked only after such
/// a failure, so a verifier rejection is never turned into a skip.
fn missing_prog_type(obj: &Object, prog: &str) -> Option<String> {
    let prog_type = obj.prog_type(prog).ok()?;
    // SAFETY: a probe load of a trivial program; NULL opts are allowed.
    let supported = unsafe { libbpf_sys::libbpf_probe_bpf_prog_type(prog_type, std::ptr::null()) };
    if supported != 0 {
        // Supported (1), or the probe itself failed (<0): not our case.
        return None;
    }
    // SAFETY: libbpf returns NULL or a static C string.
    let name = unsafe { libbpf_sys::libbpf_bpf_prog_type_str(prog_type) };
    let name = if name.is_null() {
        format!("#{prog_type}")
    } else {
        // SAFETY: non-NULL, NUL-terminated, static.
        unsafe { std::ffi::CStr::from_ptr(name) }
            .to_string_lossy()
            .into_owned()
    };
    Some(format!(
        "the kernel was built without BPF program type {name} (libbpf probe)"
    ))
}

/// Loads `obj`, without the BPF capabilities for [`Mode::Unpriv`]. They are
/// back before the result is checked: as in test_loader, `__retval` runs
/// with full capabilities. The outer error is a capability problem, the
/// inner one the load's errno.
fn load(obj: &mut Object, mode: Mode) -> anyhow::Result<Result<(), i32>> {
    match mode {
        Mode::Priv => Ok(obj.load()),
        Mode::Unpriv => {
            // Maps a program uses must be ones an unprivileged user may
            // create (test_loader turns off autocreate for the others);
            // otherwise the load fails before the verifier and the test
            // fails as "no verifier log", loudly.
            let caps = unpriv::DroppedCaps::drop_bpf_caps()?;
            let loaded = obj.load();
            caps.restore()?;
            Ok(loaded)
        }
    }
}

fn check(
    obj: &Object,
    spec: &TestSpec,
    loaded: Result<(), i32>,
    vlog: &str,
    msgs: &mut String,
) -> Status {
    match (spec.expect, loaded) {
        (Expect::Success, Err(errno)) => {
            let mut summary = format!(
                "expected the load to succeed, it failed: {}",
                errno_text(errno)
            );
            if errno == libc::ENOSPC && vlog.len() + 1 >= LOG_BUF_SIZE {
                let _ = write!(
                    summary,
                    " (the verifier log filled the {} MiB buffer)",
                    LOG_BUF_SIZE >> 20
                );
            }
            return failure(summary, msgs, vlog);
        }
        (Expect::Failure, Ok(())) => {
            return failure(
                "expected the verifier to reject the program, it was accepted".into(),
                msgs,
                vlog,
            );
        }
        (Expect::Failure, Err(errno)) if vlog.trim().is_empty() => {
            // libbpf retries a failed load at log level 1, so a verifier
            // rejection always leaves a log. No log means the load failed
            // before the verifier (missing kfunc BTF, map creation, ...),
            // which must not count as the expected rejection.
            return failure(
                format!(
                    "expected a verifier rejection, but the load failed without a verifier log: {}",
                    errno_text(errno)
                ),
                msgs,
                vlog,
            );
        }
        _ => {}
    }

    match matcher::check_msgs(vlog, &spec.msgs) {
        Ok(Ok(_)) => {}
        Ok(Err(mismatch)) => return failure(mismatch.to_string(), "", vlog),
        Err(e) => return failure(format!("{e:#}"), "", vlog),
    }

    if let (Some(expected), Expect::Success) = (spec.retval, spec.expect) {
        match run_once(obj, &spec.prog_name) {
            Ok(actual) if actual == expected => {}
            Ok(actual) => {
                return Status::Fail(format!(
                    "retval: expected {expected} ({:#x}), got {actual} ({:#x})",
                    expected as u32, actual as u32
                ))
            }
            Err(e) => {
                msgs.push_str(&libbpf::take_messages());
                return failure(
                    format!("running the program for __retval: {e:#}"),
                    msgs,
                    vlog,
                );
            }
        }
    }
    Status::Pass
}

/// One BPF_PROG_TEST_RUN over 64 zero bytes; syscall programs take no data.
fn run_once(obj: &Object, prog: &str) -> anyhow::Result<i32> {
    let fd = obj.prog_fd(prog)?;
    let data = [0u8; TEST_DATA_LEN];
    let data_in = if obj.prog_type(prog)? == libbpf_sys::BPF_PROG_TYPE_SYSCALL {
        None
    } else {
        Some(&data[..])
    };
    let out = libbpf::test_run(fd, data_in, 1)?;
    // r0 is compared on its low 32 bits.
    Ok(out.retval as i32)
}
