//! `make series-check`: the committed `patches/` is the series the sources
//! make, and a maintainer could take it as it is.
//!
//! Each check is a test of `out/series/report.json` (counted by `make
//! summary`):
//! - `series/up_to_date`: regenerated with the committed author, date and
//!   subject prefix, the series is byte for byte what `patches/` holds.
//! - `series/checkpatch`: `checkpatch.pl --strict --codespell` of the base
//!   tree reports no error, warning or check on any patch.
//! - `series/ascii`: no patch needs an encoding prompt.
//! - `series/send_email`: `git send-email` hands every file to a local stub
//!   SMTP server without a prompt, with each file's To/Cc.
//! - `series/bisect/<patch>`: the series up to that patch applies with
//!   `git am` and builds.
//!
//! The outputs a reader wants to see (checkpatch's summary, the `--dry-run`
//! output, the bisect log) are written next to the report.

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};
use xshell::Shell;

use crate::arch::Arch;
use crate::kernel;
use crate::mailcheck;
use crate::patchset;
use crate::paths::Paths;
use crate::series::{self, COVER_LETTER};

/// One check's verdict, in the shape of the VM reports' tests.
struct Check {
    name: String,
    pass: bool,
    message: String,
    duration_ms: u128,
}

impl Check {
    fn new(name: &str, pass: bool, message: String, start: Instant) -> Check {
        let verdict = if pass { "OK  " } else { "FAIL" };
        println!("{verdict} {name}");
        if !pass {
            for line in message.lines().take(40) {
                println!("       {line}");
            }
        }
        Check {
            name: name.to_string(),
            pass,
            message,
            duration_ms: start.elapsed().as_millis(),
        }
    }
}

pub fn run(sh: &Shell, paths: &Paths) -> Result<i32> {
    let out = paths.out.join("series");
    std::fs::create_dir_all(&out)?;
    let mut checks = Vec::new();
    let patches_dir = paths.repo.join("patches");
    let Some(spec) = patchset::committed(paths)? else {
        anyhow::bail!(
            "{} has no {COVER_LETTER}: there is no committed series; run `make series`",
            patches_dir.display()
        );
    };
    let committed = series::files(&patches_dir)?;
    println!(
        "series: {} files by {}, [{} n/m]",
        committed.len(),
        spec.author.ident(),
        spec.prefix
    );

    let t = Instant::now();
    let tree = patchset::worktree(sh, paths)?;
    let regenerated = out.join("regenerated");
    patchset::render(sh, paths, &tree, &spec, &regenerated)?;
    let diff = patchset::differences(&regenerated, &patches_dir)?;
    let message = if diff.is_empty() {
        String::new()
    } else {
        format!(
            "patches/ is not what the sources make; run `make series` and commit. \
             Different: {}\n{}",
            diff.join(", "),
            unified_diff(sh, &patches_dir, &regenerated, &diff)
        )
    };
    checks.push(Check::new("series/up_to_date", diff.is_empty(), message, t));

    let t = Instant::now();
    let report = mailcheck::checkpatch(sh, &tree, &committed)?;
    checks.push(mail_check(
        "series/checkpatch",
        report,
        Some(&out.join("checkpatch.txt")),
        t,
    )?);

    let t = Instant::now();
    let report = mailcheck::ascii_only(&committed)?;
    checks.push(mail_check("series/ascii", report, None, t)?);

    let t = Instant::now();
    let to = "bpf@vger.kernel.org";
    let report = mailcheck::send_email(sh, &committed, to)?;
    let dry_run = out.join("send-email-dry-run.txt");
    checks.push(mail_check("series/send_email", report, Some(&dry_run), t)?);

    // The configuration of the main x86_64 build (built if it is not).
    let built = kernel::build(
        sh,
        paths,
        &kernel::Options {
            arch: Arch::X86_64,
            kdir: None,
            skip_patches: false,
        },
    )?;
    let patches = series::patch_files(paths)?;
    let t = Instant::now();
    let prefixes = crate::bisect::run(sh, paths, &built, &tree, &patches, &spec.author)?;
    let mut log = String::new();
    for p in &prefixes {
        let result = match (&p.error, p.seconds) {
            (None, None) => "applies; its kernel inputs were built before".to_string(),
            (None, Some(s)) => format!("applies, built in {s} s"),
            (Some(e), _) => e.clone(),
        };
        log.push_str(&format!("{}: {result}\n", p.patch));
        let mut check = Check::new(
            &format!("series/bisect/{}", p.patch),
            p.error.is_none(),
            result,
            t,
        );
        // Each prefix's own build time, not the whole bisect's.
        check.duration_ms = u128::from(p.seconds.unwrap_or(0)) * 1000;
        checks.push(check);
    }
    if prefixes.len() < patches.len() {
        checks.push(Check::new(
            "series/bisect/all_prefixes",
            false,
            format!(
                "{} of {} prefixes were tried",
                prefixes.len(),
                patches.len()
            ),
            t,
        ));
    }
    std::fs::write(out.join("bisect.txt"), &log)?;

    let passed = checks.iter().filter(|c| c.pass).count();
    let failed = checks.len() - passed;
    let report = serde_json::json!({
        "date": crate::provenance::now_utc(),
        "command": "make series-check",
        "author": spec.author.ident(),
        "prefix": spec.prefix,
        "files": committed.len(),
        "tests": checks.iter().map(|c| serde_json::json!({
            "name": c.name,
            "result": if c.pass { "pass" } else { "fail" },
            "duration_ms": c.duration_ms,
            "message": c.message,
        })).collect::<Vec<_>>(),
        "passed": passed,
        "failed": failed,
        "skipped": 0,
    });
    let path = out.join("report.json");
    std::fs::write(&path, serde_json::to_string_pretty(&report)?)
        .with_context(|| format!("writing {}", path.display()))?;
    println!("report: {}", path.display());
    println!("{passed} passed, {failed} failed, 0 skipped");
    Ok(i32::from(failed > 0))
}

/// A check of `mailcheck` as a test: its details saved to `details` (the
/// file a reader wants to see), its summary printed and kept as the
/// message.
fn mail_check(
    name: &str,
    report: mailcheck::CheckReport,
    details: Option<&Path>,
    start: Instant,
) -> Result<Check> {
    if let Some(path) = details {
        std::fs::write(path, &report.details)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    let check = Check::new(name, report.ok, report.summary, start);
    println!("{}", indent(&check.message));
    Ok(check)
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The first lines of `diff -u` for the files that differ.
fn unified_diff(sh: &Shell, a: &Path, b: &Path, names: &[String]) -> String {
    let mut out = String::new();
    for n in names {
        let (x, y) = (a.join(n), b.join(n));
        let text = xshell::cmd!(sh, "diff -u {x} {y}")
            .quiet()
            .ignore_status()
            .read()
            .unwrap_or_default();
        out.extend(text.lines().take(30).map(|l| format!("{l}\n")));
    }
    out
}
