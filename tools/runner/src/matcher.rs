//! `__msg` matching against a verifier log, as test_loader does it: each
//! expected message is searched from where the previous one ended, literal
//! text matches itself and `{{...}}` parts are regular expressions. The
//! regexes are compiled in multi-line mode so that `.`, `^` and `$` behave like
//! POSIX ERE under REG_NEWLINE, which test_loader uses.
//!
//! One rule is stricter than test_loader's plain substring search: a number
//! that begins or ends a `__msg` matches a whole number, so `__msg("9: safe")`
//! names instruction 9 and not 19 or 29 (test_loader would take either).

use anyhow::{Context, Result};
use regex::{Regex, RegexBuilder};

/// One `__msg`, compiled.
#[derive(Debug, Clone)]
pub struct MsgPattern {
    pub text: String,
    regex: Regex,
}

impl MsgPattern {
    pub fn new(text: &str) -> Result<Self> {
        let mut pattern = String::new();
        if text.starts_with(|c: char| c.is_ascii_digit()) {
            pattern.push_str(r"\b");
        }
        let mut rest = text;
        while let Some(open) = rest.find("{{") {
            pattern.push_str(&regex::escape(&rest[..open]));
            let after = &rest[open + 2..];
            let close = after
                .find("}}")
                .with_context(|| format!("__msg \"{text}\": '{{{{' without closing '}}}}'"))?;
            pattern.push_str("(?:");
            pattern.push_str(&after[..close]);
            pattern.push(')');
            rest = &after[close + 2..];
        }
        pattern.push_str(&regex::escape(rest));
        if !rest.is_empty() && rest.ends_with(|c: char| c.is_ascii_digit()) {
            pattern.push_str(r"\b");
        }
        let regex = RegexBuilder::new(&pattern)
            .multi_line(true)
            .build()
            .with_context(|| format!("__msg \"{text}\": bad regex"))?;
        Ok(Self {
            text: text.to_string(),
            regex,
        })
    }
}

/// Compiles every `__msg` of a test; an error names the bad one.
pub fn compile_all(msgs: &[String]) -> Result<Vec<MsgPattern>> {
    msgs.iter().map(|m| MsgPattern::new(m)).collect()
}

/// A message that matched, with where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matched {
    pub text: String,
    /// 1-based line of the log where the match starts.
    pub line: usize,
    pub matched: String,
}

/// The first `__msg` that was not found after the previous matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// 0-based index of the missing message.
    pub index: usize,
    pub expected: String,
    pub matched_before: Vec<Matched>,
    /// Byte offset of the log where the search started.
    pub searched_from: usize,
}

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "__msg #{} not found in the verifier log: \"{}\"",
            self.index + 1,
            self.expected
        )?;
        if self.matched_before.is_empty() {
            write!(f, "\n(no earlier __msg)")?;
        } else {
            write!(f, "\nmatched before it, in order:")?;
            for (i, m) in self.matched_before.iter().enumerate() {
                write!(
                    f,
                    "\n  #{} \"{}\" at log line {}: {}",
                    i + 1,
                    m.text,
                    m.line,
                    m.matched
                )?;
            }
        }
        Ok(())
    }
}

/// Matches `patterns` in order against `log`.
pub fn match_in_order(
    log: &str,
    patterns: &[MsgPattern],
) -> std::result::Result<Vec<Matched>, Mismatch> {
    let mut pos = 0;
    let mut matched = Vec::with_capacity(patterns.len());
    for (index, p) in patterns.iter().enumerate() {
        match p.regex.find_at(log, pos) {
            Some(m) => {
                matched.push(Matched {
                    text: p.text.clone(),
                    line: log[..m.start()].matches('\n').count() + 1,
                    matched: m.as_str().to_string(),
                });
                pos = m.end();
            }
            None => {
                return Err(Mismatch {
                    index,
                    expected: p.text.clone(),
                    matched_before: matched,
                    searched_from: pos,
                })
            }
        }
    }
    Ok(matched)
}

/// Convenience for callers that hold the raw strings: compile, then match.
pub fn check_msgs(
    log: &str,
    msgs: &[String],
) -> Result<std::result::Result<Vec<Matched>, Mismatch>> {
    let patterns = compile_all(msgs)?;
    Ok(match_in_order(log, &patterns))
}

/// The last `n` lines of `log`, for failure reports.
pub fn tail_lines(log: &str, n: usize) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Checks that every `__msg` compiles; used by spec validation so that a bad
/// regex is a spec error rather than a mismatch.
pub fn validate(msgs: &[String]) -> Result<()> {
    compile_all(msgs).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = "0: R1=ctx() R10=fp0\n\
        ; val = bpf_map_lookup_elem(&counter, &key); @ x.c:30\n\
        5: (85) call bpf_map_lookup_elem#1\n\
        12: (85) call bpf_spin_lock#93\n\
        function calls are not allowed while holding a lock\n\
        processed 13 insns (limit 1000000) max_states_per_insn 0\n";

    fn check(log: &str, msgs: &[&str]) -> std::result::Result<Vec<Matched>, Mismatch> {
        let msgs: Vec<String> = msgs.iter().map(|s| s.to_string()).collect();
        check_msgs(log, &msgs).expect("patterns compile")
    }

    #[test]
    fn literal_substrings_in_order() {
        let m = check(
            LOG,
            &["call bpf_spin_lock", "not allowed while holding a lock"],
        )
        .unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].line, 4);
        assert_eq!(m[1].line, 5);
    }

    #[test]
    fn order_matters() {
        let err = check(
            LOG,
            &["not allowed while holding a lock", "call bpf_spin_lock"],
        )
        .unwrap_err();
        assert_eq!(err.index, 1);
        assert_eq!(err.expected, "call bpf_spin_lock");
        assert_eq!(err.matched_before.len(), 1);
        assert_eq!(
            err.matched_before[0].text,
            "not allowed while holding a lock"
        );
        let shown = err.to_string();
        assert!(shown.contains("__msg #2 not found"), "{shown}");
        assert!(shown.contains("at log line 5"), "{shown}");
    }

    #[test]
    fn search_resumes_after_previous_match_end() {
        // The same text twice needs two occurrences.
        assert!(check("abc abc", &["abc", "abc"]).is_ok());
        assert!(check("abc", &["abc", "abc"]).is_err());
        // Overlap is not allowed: the second search starts after "aba".
        assert!(check("aba", &["aba", "a"]).is_err());
    }

    #[test]
    fn literal_regex_metacharacters_are_escaped() {
        assert!(check("R1=ctx() (85) call", &["R1=ctx()", "(85) call"]).is_ok());
        assert!(check("R1=ctxX", &["R1=ctx()"]).is_err());
        assert!(check("a.c", &["a.c"]).is_ok());
        assert!(check("abc", &["a.c"]).is_err());
    }

    #[test]
    fn regex_parts() {
        assert!(check(LOG, &["call bpf_spin_lock#{{[0-9]+}}"]).is_ok());
        assert!(check(LOG, &["call bpf_spin_lock#{{[a-z]+}}"]).is_err());
        assert!(check(LOG, &["processed {{[0-9]+}} insns (limit {{[0-9]+}})"]).is_ok());
        assert!(
            check(LOG, &["{{^}}function calls"]).is_ok(),
            "^ matches at line starts"
        );
        assert!(check(LOG, &["{{^}}calls"]).is_err());
        // `.` does not cross lines (REG_NEWLINE).
        assert!(check(LOG, &["R10=fp0{{.*}}val ="]).is_err());
        // Alternation stays inside its {{}} group.
        assert!(check("x lock y", &["x {{lock|unlock}} y"]).is_ok());
        assert!(check("x unlock", &["x {{lock|unlock}} y"]).is_err());
    }

    /// `N: safe` names instruction N exactly: not 19 for 9, not 90 for 9.
    #[test]
    fn leading_and_trailing_numbers_are_whole() {
        let log = "from 12 to 19: safe\n";
        assert!(check(log, &["9: safe"]).is_err());
        assert!(check(log, &["19: safe"]).is_ok());
        assert!(check("9: safe\n", &["9: safe"]).is_ok());
        assert!(check("from 3 to 9: safe\n", &["9: safe"]).is_ok());
        assert!(check("R9: safe\n", &["9: safe"]).is_err());
        assert!(check("from 12 to 19\n", &["from 12 to 1"]).is_err());
        assert!(check("from 12 to 1\n", &["from 12 to 1"]).is_ok());
        assert!(check("call bpf_spin_lock#93", &["bpf_spin_lock#93"]).is_ok());
        // Inside the text numbers stay substrings, as in test_loader.
        assert!(check("processed 130 insns", &["processed 13"]).is_err());
        assert!(check("x 130 y", &["x 13{{0}} y"]).is_ok());
    }

    #[test]
    fn bad_patterns_are_errors() {
        assert!(MsgPattern::new("a {{[0-9+}}").is_err());
        assert!(MsgPattern::new("a {{ open").is_err());
        assert!(validate(&["fine {{x}}".to_string()]).is_ok());
    }

    #[test]
    fn empty_log_reports_first_msg() {
        let err = check("", &["anything"]).unwrap_err();
        assert_eq!(err.index, 0);
        assert!(err.matched_before.is_empty());
        assert!(check("", &[]).is_ok());
    }

    #[test]
    fn tail() {
        assert_eq!(tail_lines("a\nb\nc\n", 2), "b\nc");
        assert_eq!(tail_lines("a", 30), "a");
        assert_eq!(tail_lines("", 30), "");
    }
}
