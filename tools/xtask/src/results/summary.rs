//! The machine-readable part of `docs/results.md`: per architecture the
//! test names, verdicts and counts, and the mutants' verdicts. It is
//! embedded in the page as a fenced JSON block between two markers, so that
//! `make results-check` reads the page back without parsing prose, and
//! compared with what the last runs wrote. Timings and benchmark figures are
//! left out on purpose: they change on every run without the page being
//! wrong about the suite.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use super::inputs::{Inputs, Source};

const BEGIN: &str = "<!-- results-check summary: begin -->";
const END: &str = "<!-- results-check summary: end -->";
/// At most this many names per difference in a stale message; the rest are
/// counted.
const SHOWN: usize = 5;

/// One architecture's selftest run, as the check compares it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Suite {
    pub passed: usize,
    pub failed: usize,
    pub skipped: usize,
    /// Test name to verdict (`pass`, `fail`, `skip`).
    pub tests: BTreeMap<String, String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// Architecture name to its run; architectures without a report are
    /// absent.
    pub selftests: BTreeMap<String, Suite>,
    /// Mutant name to verdict; `None` when `make mutants` has not run.
    pub mutants: Option<BTreeMap<String, String>>,
    /// Check name to verdict; `None` when `make series-check` has not run.
    #[serde(default)]
    pub series: Option<BTreeMap<String, String>>,
}

impl Summary {
    pub fn from_inputs(inputs: &Inputs) -> Summary {
        let selftests = inputs
            .arches
            .iter()
            .filter_map(|a| {
                let r = &a.report.as_ref()?.value;
                Some((
                    a.arch.name().to_string(),
                    Suite {
                        passed: r.passed,
                        failed: r.failed,
                        skipped: r.skipped,
                        tests: r
                            .tests
                            .iter()
                            .map(|t| (t.name.clone(), t.result.clone()))
                            .collect(),
                    },
                ))
            })
            .collect();
        let mutants = inputs.mutants.as_ref().map(|m| {
            m.value
                .mutants
                .iter()
                .map(|e| (e.mutant.clone(), e.verdict().to_string()))
                .collect()
        });
        let series = inputs.series.as_ref().map(|s| {
            s.value
                .tests
                .iter()
                .map(|t| (t.name.clone(), t.result.clone()))
                .collect()
        });
        Summary {
            selftests,
            mutants,
            series,
        }
    }

    /// The block the page embeds (last on the page): markers around a
    /// fenced JSON block. Non-ASCII characters, `<` and `>` are written as
    /// `\u` escapes, which JSON allows in strings, the only place they can
    /// occur: the page stays ASCII and no test name can fake a marker.
    pub fn embed(&self) -> String {
        let json = serde_json::to_string_pretty(self).expect("a summary serializes");
        let mut ascii = String::with_capacity(json.len());
        for c in json.chars() {
            if c.is_ascii() && c != '<' && c != '>' {
                ascii.push(c);
            } else {
                for unit in c.encode_utf16(&mut [0; 2]) {
                    ascii.push_str(&format!("\\u{unit:04x}"));
                }
            }
        }
        format!("{BEGIN}\n\n```json\n{ascii}\n```\n\n{END}\n")
    }

    /// The summary embedded in `page`: the last begin marker (prose above
    /// it may quote a marker in a test name; the JSON cannot) and the end
    /// marker after it.
    pub fn parse(page: &str) -> Result<Summary> {
        let start = page
            .rfind(BEGIN)
            .with_context(|| format!("it has no machine-readable summary (`{BEGIN}`)"))?
            + BEGIN.len();
        let Some(len) = page[start..].find(END) else {
            bail!("its summary has no end marker (`{END}`)");
        };
        let block = page[start..start + len].trim();
        let json = block
            .strip_prefix("```json")
            .and_then(|b| b.strip_suffix("```"))
            .context("its summary is not a fenced JSON block")?;
        serde_json::from_str(json).context("its summary is not valid JSON")
    }
}

/// Why `page` (the committed summary) does not describe `now` (the files
/// just written); empty when it does.
pub fn differences(page: &Summary, now: &Summary) -> Vec<String> {
    let mut out = Vec::new();
    let arches: BTreeSet<&String> = page.selftests.keys().chain(now.selftests.keys()).collect();
    for arch in arches {
        let source = Source::report(arch);
        match (page.selftests.get(arch), now.selftests.get(arch)) {
            (Some(_), None) => out.push(format!(
                "the page lists {arch}, but {} is missing (run `{}`)",
                source.path, source.target
            )),
            (None, Some(_)) => out.push(format!(
                "{} exists, but the page has no {arch} results",
                source.path
            )),
            (Some(p), Some(n)) => suite_differences(arch, p, n, &mut out),
            (None, None) => {}
        }
    }
    optional_differences(
        "mutants",
        "mutant",
        &Source::mutants(),
        &page.mutants,
        &now.mutants,
        &mut out,
    );
    optional_differences(
        "series checks",
        "check",
        &Source::series(),
        &page.series,
        &now.series,
        &mut out,
    );
    out
}

/// A part of the page that only exists when its file does (mutants, series
/// checks): present on one side only, or its verdicts differ.
fn optional_differences(
    what: &str,
    item: &str,
    source: &Source,
    page: &Option<BTreeMap<String, String>>,
    now: &Option<BTreeMap<String, String>>,
    out: &mut Vec<String>,
) {
    match (page, now) {
        (Some(_), None) => out.push(format!(
            "the page lists {what}, but {} is missing (run `{}`)",
            source.path, source.target
        )),
        (None, Some(_)) => out.push(format!(
            "{} exists, but the page has no {what}",
            source.path
        )),
        (Some(p), Some(n)) => map_differences(what, item, p, n, out),
        (None, None) => {}
    }
}

fn suite_differences(arch: &str, page: &Suite, now: &Suite, out: &mut Vec<String>) {
    let counts = |s: &Suite| (s.passed, s.failed, s.skipped);
    if counts(page) != counts(now) {
        out.push(format!(
            "{arch}: the run has {} passed, {} failed, {} skipped; the page says {} passed, {} failed, {} skipped",
            now.passed, now.failed, now.skipped, page.passed, page.failed, page.skipped
        ));
    }
    map_differences(
        &format!("{arch} tests"),
        "test",
        &page.tests,
        &now.tests,
        out,
    );
}

/// Names only in the run, only on the page, and with another verdict.
fn map_differences(
    what: &str,
    noun: &str,
    page: &BTreeMap<String, String>,
    now: &BTreeMap<String, String>,
    out: &mut Vec<String>,
) {
    let added: Vec<&str> = now
        .keys()
        .filter(|k| !page.contains_key(*k))
        .map(String::as_str)
        .collect();
    let gone: Vec<&str> = page
        .keys()
        .filter(|k| !now.contains_key(*k))
        .map(String::as_str)
        .collect();
    let changed: Vec<String> = now
        .iter()
        .filter_map(|(k, v)| {
            let was = page.get(k)?;
            (was != v).then(|| format!("{k} ({was} on the page, {v} now)"))
        })
        .collect();
    if !added.is_empty() {
        out.push(format!(
            "{what}: {} {noun}(s) not on the page: {}",
            added.len(),
            shorten(&added)
        ));
    }
    if !gone.is_empty() {
        out.push(format!(
            "{what}: {} {noun}(s) on the page did not run: {}",
            gone.len(),
            shorten(&gone)
        ));
    }
    if !changed.is_empty() {
        let changed: Vec<&str> = changed.iter().map(String::as_str).collect();
        out.push(format!(
            "{what}: {} verdict(s) changed: {}",
            changed.len(),
            shorten(&changed)
        ));
    }
}

fn shorten(names: &[&str]) -> String {
    let mut s = names
        .iter()
        .take(SHOWN)
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > SHOWN {
        s.push_str(&format!(" and {} more", names.len() - SHOWN));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn suite(tests: &[(&str, &str)]) -> Suite {
        let count = |v: &str| tests.iter().filter(|t| t.1 == v).count();
        Suite {
            passed: count("pass"),
            failed: count("fail"),
            skipped: count("skip"),
            tests: tests
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn embedded_summary_parses_back_and_stays_ascii() {
        let mut s = Summary::default();
        s.selftests.insert(
            "x86_64".into(),
            suite(&[("a/b -- c", "pass"), ("a/\u{e9}", "skip"), (END, "pass")]),
        );
        s.mutants = Some(BTreeMap::from([("m".to_string(), "killed".to_string())]));
        let page = format!("# page\n\nprose\n\n{}\nmore prose\n", s.embed());
        assert!(page.is_ascii(), "{page}");
        assert_eq!(Summary::parse(&page).unwrap(), s);
        assert!(Summary::parse("# no summary\n").is_err());
    }

    #[test]
    fn differences_name_what_changed() {
        let page = suite(&[("a", "pass"), ("b", "skip"), ("c", "pass")]);
        let now = suite(&[("a", "pass"), ("b", "pass"), ("d", "pass")]);
        let mut out = Vec::new();
        suite_differences("x86_64", &page, &now, &mut out);
        let text = out.join("\n");
        assert!(
            text.contains("the run has 3 passed, 0 failed, 0 skipped"),
            "{text}"
        );
        assert!(text.contains("1 test(s) not on the page: `d`"), "{text}");
        assert!(
            text.contains("1 test(s) on the page did not run: `c`"),
            "{text}"
        );
        assert!(text.contains("`b (skip on the page, pass now)`"), "{text}");
    }

    #[test]
    fn long_lists_are_shortened() {
        let names = ["a", "b", "c", "d", "e", "f", "g"];
        assert_eq!(shorten(&names), "`a`, `b`, `c`, `d`, `e` and 2 more");
    }
}
