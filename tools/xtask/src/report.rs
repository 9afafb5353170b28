//! Turns a guest run into the final verdict: the runner's results, the
//! kernel-splat gate over the console and dmesg, a JSON report, and the
//! summary line.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

/// One test's result, as the runner writes it and the report keeps it.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct TestResult {
    pub name: String,
    pub result: String,
    #[serde(default)]
    pub duration_ms: f64,
    #[serde(default)]
    pub message: String,
}

/// The runner's `results.json` (only the fields we read).
#[derive(Debug, Deserialize)]
pub struct GuestResults {
    #[serde(default)]
    pub kernel: String,
    pub tests: Vec<TestResult>,
}

/// The report written to `out/<arch>/report.json`.
#[derive(Debug, Serialize)]
pub struct Report {
    pub arch: String,
    /// When the report was written (UTC, RFC 3339) and by which command:
    /// `docs/results.md` cites both for every figure it takes from here.
    pub date: String,
    pub command: String,
    pub kernel_release: String,
    pub kernel_image: PathBuf,
    pub modules: Vec<PathBuf>,
    pub build_key: String,
    pub accel: String,
    pub guest_outcome: String,
    pub vm_seconds: f64,
    pub console_log: PathBuf,
    pub dmesg: PathBuf,
    pub splats: Vec<String>,
    pub tests: Vec<TestResult>,
    pub passed: usize,
    pub failed: usize,
    pub skipped: usize,
}

/// KUnit's result for a suite run at boot (the `kernel` crate's Rust
/// doctests, `CONFIG_RUST_KERNEL_DOCTESTS`): `Some((passed, failed))` from
/// the last `# Totals:` line of `suite`, or `None` if the suite never
/// reported.
pub fn kunit_totals(console: &str, suite: &str) -> Option<(u32, u32)> {
    let mut in_suite = false;
    let mut totals = None;
    for line in console.lines() {
        if line.contains(&format!("# Subtest: {suite}")) {
            in_suite = true;
        } else if in_suite && line.contains("# Totals: pass:") {
            let field = |name: &str| -> Option<u32> {
                let rest = line.split(name).nth(1)?;
                rest.split(|c: char| !c.is_ascii_digit())
                    .next()?
                    .parse()
                    .ok()
            };
            totals = Some((field("pass:")?, field("fail:")?));
            in_suite = false;
        }
    }
    totals
}

pub fn read_guest_results(path: &Path) -> Result<GuestResults> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

impl Report {
    pub fn count(&mut self) {
        self.passed = self.tests.iter().filter(|t| t.result == "pass").count();
        self.failed = self.tests.iter().filter(|t| t.result == "fail").count();
        self.skipped = self.tests.iter().filter(|t| t.result == "skip").count();
    }

    pub fn write(&self, path: &Path) -> Result<()> {
        std::fs::write(path, serde_json::to_string_pretty(self)? + "\n")
            .with_context(|| format!("writing {}", path.display()))
    }

    pub fn summary_line(&self) -> String {
        format!(
            "{} passed, {} failed, {} skipped",
            self.passed, self.failed, self.skipped
        )
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn kunit_totals_are_read() {
        let log =
            "[ 1.0]     # Subtest: rust_doctests_kernel\n[ 1.1]     ok 1 rust_doctest_kernel_x\n\
                   [ 2.0]     # rust_doctests_kernel: pass:113 fail:1 skip:0 total:114\n\
                   [ 2.0]     # Totals: pass:113 fail:1 skip:0 total:114\n";
        assert_eq!(
            super::kunit_totals(log, "rust_doctests_kernel"),
            Some((113, 1))
        );
        assert_eq!(super::kunit_totals(log, "other"), None);
    }
}
