//! test_progs-style console output and `results.json`.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use serde::Serialize;

/// How a test ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    Pass,
    Fail(String),
    Skip(String),
}

#[derive(Debug, Clone, Serialize)]
pub struct TestRecord {
    pub name: String,
    /// "pass", "fail" or "skip".
    pub result: &'static str,
    pub duration_ms: u64,
    pub message: String,
}

#[derive(Debug, Serialize)]
struct Results<'a> {
    kernel: &'a str,
    arch: &'a str,
    modules: &'a [String],
    tests: &'a [TestRecord],
    passed: usize,
    failed: usize,
    skipped: usize,
}

/// Exit codes, as test_progs uses them.
pub mod exit {
    pub const ALL_PASSED: i32 = 0;
    pub const FAILED: i32 = 1;
    pub const NO_TEST: i32 = 2;
    pub const SETUP_ERROR: i32 = 3;
}

/// `OUT/logs/` file name of a test: `/` would make subdirectories.
pub fn log_file_name(test_name: &str) -> String {
    format!("{}.log", test_name.replace('/', "__"))
}

/// The result line of test number `num`.
pub fn result_line(num: usize, name: &str, status: &Status) -> String {
    let verdict = match status {
        Status::Pass => "OK".to_string(),
        Status::Fail(_) => "FAIL".to_string(),
        Status::Skip(reason) => format!("SKIP ({reason})"),
    };
    format!("#{num:<7} {name}:{verdict}")
}

/// Failure detail under a FAIL line, indented.
pub fn indent(text: &str) -> String {
    text.lines().map(|l| format!("    {l}\n")).collect()
}

/// Collects results as tests finish and prints their lines.
#[derive(Debug, Default)]
pub struct Reporter {
    records: Vec<TestRecord>,
    passed: usize,
    failed: usize,
    skipped: usize,
}

impl Reporter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records and prints one finished test.
    pub fn record(&mut self, name: &str, status: Status, duration: Duration) {
        let num = self.records.len() + 1;
        println!("{}", result_line(num, name, &status));
        let (result, message) = match status {
            Status::Pass => {
                self.passed += 1;
                ("pass", String::new())
            }
            Status::Fail(msg) => {
                self.failed += 1;
                print!("{}", indent(&msg));
                ("fail", msg)
            }
            Status::Skip(reason) => {
                self.skipped += 1;
                ("skip", reason)
            }
        };
        self.records.push(TestRecord {
            name: name.to_string(),
            result,
            duration_ms: u64::try_from(duration.as_millis()).unwrap_or(u64::MAX),
            message,
        });
    }

    pub fn records(&self) -> &[TestRecord] {
        &self.records
    }

    /// The closing line, exactly `N passed, N failed, N skipped`.
    pub fn summary_line(&self) -> String {
        format!(
            "{} passed, {} failed, {} skipped",
            self.passed, self.failed, self.skipped
        )
    }

    /// 1 if anything failed, 2 if nothing passed or failed (an all-skipped
    /// run tested nothing), else 0.
    pub fn exit_code(&self) -> i32 {
        if self.failed > 0 {
            exit::FAILED
        } else if self.passed == 0 {
            exit::NO_TEST
        } else {
            exit::ALL_PASSED
        }
    }

    pub fn write_json(&self, path: &Path, kernel: &str, modules: &[String]) -> Result<()> {
        let results = Results {
            kernel,
            arch: std::env::consts::ARCH,
            modules,
            tests: &self.records,
            passed: self.passed,
            failed: self.failed,
            skipped: self.skipped,
        };
        let text = serde_json::to_string_pretty(&results).context("serializing results")?;
        std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))
    }
}

/// `uname -r` of the running kernel.
pub fn kernel_release() -> String {
    // SAFETY: utsname is plain data; uname fills it.
    let mut uts: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: uts is a valid, writable utsname.
    if unsafe { libc::uname(&mut uts) } != 0 {
        return "unknown".into();
    }
    // SAFETY: the kernel NUL-terminates release within the array.
    unsafe { std::ffi::CStr::from_ptr(uts.release.as_ptr()) }
        .to_string_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_look_like_test_progs() {
        assert_eq!(result_line(1, "a/b", &Status::Pass), "#1       a/b:OK");
        assert_eq!(
            result_line(12, "a/b", &Status::Fail("x".into())),
            "#12      a/b:FAIL"
        );
        assert_eq!(
            result_line(3, "r/t", &Status::Skip("no module".into())),
            "#3       r/t:SKIP (no module)"
        );
        assert_eq!(indent("one\ntwo"), "    one\n    two\n");
    }

    #[test]
    fn log_names_flatten_slashes() {
        assert_eq!(log_file_name("obj/prog"), "obj__prog.log");
        assert_eq!(
            log_file_name("runtime/spin_lock_exact_total"),
            "runtime__spin_lock_exact_total.log"
        );
    }

    #[test]
    fn counts_summary_and_exit_codes() {
        let mut r = Reporter::new();
        assert_eq!(r.exit_code(), exit::NO_TEST);
        r.record("a", Status::Skip("why".into()), Duration::from_millis(1));
        assert_eq!(r.exit_code(), exit::NO_TEST, "skips alone test nothing");
        r.record("b", Status::Pass, Duration::from_millis(2));
        assert_eq!(r.exit_code(), exit::ALL_PASSED);
        r.record("c", Status::Fail("bad".into()), Duration::from_millis(3));
        assert_eq!(r.exit_code(), exit::FAILED);
        assert_eq!(r.summary_line(), "1 passed, 1 failed, 1 skipped");
    }

    #[test]
    fn json_shape() {
        let mut r = Reporter::new();
        r.record("o/p", Status::Fail("why".into()), Duration::from_millis(5));
        r.record("o/q", Status::Pass, Duration::from_millis(6));
        let dir = std::env::temp_dir().join(format!("bpf-runner-json-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("results.json");
        r.write_json(&path, "6.12.117", &["bpf_rqspinlock".into()])
            .unwrap();
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(v["kernel"], "6.12.117");
        assert_eq!(v["arch"], std::env::consts::ARCH);
        assert_eq!(v["modules"][0], "bpf_rqspinlock");
        assert_eq!(v["passed"], 1);
        assert_eq!(v["failed"], 1);
        assert_eq!(v["skipped"], 0);
        assert_eq!(v["tests"][0]["name"], "o/p");
        assert_eq!(v["tests"][0]["result"], "fail");
        assert_eq!(v["tests"][0]["duration_ms"], 5);
        assert_eq!(v["tests"][0]["message"], "why");
        assert_eq!(v["tests"][1]["result"], "pass");
    }
}
