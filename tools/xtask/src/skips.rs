//! The skip allowlist (`tools/config/skips.allow`): a skipped test passes the
//! run only when a line names it, with the reason it may skip. Without the
//! list a dropped config option or a missing tool turns tests into skips and
//! the run stays green while nothing was tested.

use std::path::Path;

use anyhow::{bail, Context, Result};
use runner_shared::glob::glob_match;

use crate::report::TestResult;

/// One line of the allowlist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allowed {
    /// An arch name, or `*` for every arch.
    pub arch: String,
    /// The test name; `*` matches any run of characters.
    pub pattern: String,
    pub why: String,
}

impl Allowed {
    fn covers(&self, arch: &str, test: &str) -> bool {
        (self.arch == "*" || self.arch == arch) && glob_match(&self.pattern, test)
    }
}

/// Reads the allowlist at `path`.
pub fn read(path: &Path) -> Result<Vec<Allowed>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    parse(&text).with_context(|| format!("in {}", path.display()))
}

/// Parses `<arch> | <test name> | <why>` lines; `#` starts a comment line.
pub fn parse(text: &str) -> Result<Vec<Allowed>> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.splitn(3, '|').map(str::trim).collect();
        let [arch, pattern, why] = fields[..] else {
            bail!(
                "line {}: expected `<arch or *> | <test name> | <why>`",
                i + 1
            );
        };
        if arch.is_empty() || pattern.is_empty() || why.is_empty() {
            bail!(
                "line {}: an empty field (every skip needs its reason)",
                i + 1
            );
        }
        out.push(Allowed {
            arch: arch.into(),
            pattern: pattern.into(),
            why: why.into(),
        });
    }
    Ok(out)
}

/// Turns every skip of `tests` that no entry of `allowed` covers into a
/// failure that says how to allow it. Returns the entries that covered no
/// skip of this run (stale, or for another arch), for a note.
pub fn enforce<'a>(
    arch: &str,
    allowed: &'a [Allowed],
    tests: &mut [TestResult],
) -> Vec<&'a Allowed> {
    let mut used = vec![false; allowed.len()];
    for t in tests.iter_mut().filter(|t| t.result == "skip") {
        match allowed.iter().position(|a| a.covers(arch, &t.name)) {
            Some(i) => used[i] = true,
            None => {
                t.result = "fail".into();
                t.message = format!(
                    "unexpected skip ({}): not in tools/config/skips.allow; make the test \
                     run, or add `{arch} | {} | <why>` there",
                    t.message, t.name
                );
            }
        }
    }
    allowed
        .iter()
        .zip(used)
        .filter(|(a, used)| !used && (a.arch == "*" || a.arch == arch))
        .map(|(a, _)| a)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(name: &str, result: &str, message: &str) -> TestResult {
        TestResult {
            name: name.into(),
            result: result.into(),
            duration_ms: 0.0,
            message: message.into(),
        }
    }

    const LIST: &str = "# comment\n\
        arm64 | runtime/res_lock_without_module | built in on arm64\n\
        * | upstream/* @unpriv | no unprivileged BPF\n";

    #[test]
    fn the_committed_list_parses() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/skips.allow");
        let list = read(&path).unwrap();
        assert!(!list.is_empty());
    }

    #[test]
    fn lines_need_three_fields_and_a_reason() {
        assert_eq!(parse(LIST).unwrap().len(), 2);
        assert!(parse("arm64 | t\n").is_err());
        assert!(parse("arm64 | t | \n").is_err());
        assert!(parse(" | t | why\n").is_err());
    }

    /// A skip that no line allows fails the run, and says why it skipped.
    #[test]
    fn unexpected_skip_fails() {
        let list = parse(LIST).unwrap();
        let mut tests = vec![
            result("runtime/res_lock_without_module", "skip", "built in"),
            result(
                "runtime/res_lock_abba",
                "skip",
                "needs 2 CPUs, the runner has 1",
            ),
            result("upstream/test1 @unpriv", "skip", "disabled"),
            result("upstream/test1", "pass", ""),
        ];
        let stale = enforce("x86_64", &list, &mut tests);
        // Allowed on arm64 only.
        assert_eq!(tests[0].result, "fail");
        assert_eq!(tests[1].result, "fail");
        assert!(
            tests[1].message.contains("needs 2 CPUs"),
            "{}",
            tests[1].message
        );
        assert!(
            tests[1].message.contains("skips.allow"),
            "{}",
            tests[1].message
        );
        assert_eq!(tests[2].result, "skip");
        assert_eq!(tests[3].result, "pass");
        assert!(stale.is_empty(), "{stale:?}");
    }

    #[test]
    fn allowed_skip_stays_a_skip_and_unused_lines_are_named() {
        let list = parse(LIST).unwrap();
        let mut tests = vec![result(
            "runtime/res_lock_without_module",
            "skip",
            "built in",
        )];
        let stale = enforce("arm64", &list, &mut tests);
        assert_eq!(tests[0].result, "skip");
        assert_eq!(stale.len(), 1);
        assert_eq!(stale[0].pattern, "upstream/* @unpriv");
    }

    #[test]
    fn glob_matches_whole_names() {
        assert!(glob_match("a/b", "a/b"));
        assert!(!glob_match("a/b", "a/bc"));
        assert!(glob_match("a/*", "a/bc"));
        assert!(glob_match("*@unpriv", "x @unpriv"));
        assert!(!glob_match("*@unpriv", "x @unpriv2"));
        assert!(glob_match("a*b*c", "axxbyyc"));
        assert!(!glob_match("a*b*c", "axxc"));
        assert!(!glob_match("ab*ba", "aba"));
    }
}
