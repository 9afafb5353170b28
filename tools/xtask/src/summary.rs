//! `xtask summary`: the last line of `make test` in CI, `N passed, N failed`,
//! over everything the run wrote: the selftests of each arch and the
//! mutants. Result files older than the run (`--since`) do not count, so a
//! run that stopped early cannot borrow an earlier run's figures, and a
//! failed `make test` (`--status`) counts as one failure more, whatever it
//! stopped on.

use std::path::Path;
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result};

use clap::ValueEnum;

use crate::arch::Arch;
use crate::paths::Paths;
use crate::results::Source;

/// The files a `make test` writes, with what each one counts: the paths
/// `make results` reads them from.
fn files() -> Vec<(String, Kind)> {
    Arch::value_variants()
        .iter()
        .map(|arch| (Source::report(arch.name()).path, Kind::Report))
        .chain(std::iter::once((Source::mutants().path, Kind::Mutants)))
        .chain(std::iter::once((Source::series().path, Kind::Report)))
        .collect()
}

#[derive(Clone, Copy)]
enum Kind {
    /// Selftests: `passed` and `failed` of a report.
    Report,
    /// Mutants: killed ones pass, the others fail.
    Mutants,
}

/// Prints one line per file and the total. It succeeds whatever the counts:
/// the caller keeps the run's own exit status (make would print an error
/// line after the total otherwise, and the total must be the last line).
pub fn run(paths: &Paths, since: Option<u64>, status: i32) -> Result<()> {
    let since = since.map(|s| SystemTime::UNIX_EPOCH + Duration::from_secs(s));
    let (mut passed, mut failed) = (0, 0);
    for (file, kind) in files() {
        let path = paths.repo.join(&file);
        match counts(&path, kind, since)? {
            Some((p, f)) => {
                println!("{file}: {p} passed, {f} failed");
                passed += p;
                failed += f;
            }
            None => println!("{file}: not written by this run"),
        }
    }
    if status != 0 {
        println!("make test: exited {status}, counted as one failure");
        failed += 1;
    }
    println!("{passed} passed, {failed} failed");
    Ok(())
}

/// The counts of one file, or `None` if it is missing or older than `since`.
fn counts(path: &Path, kind: Kind, since: Option<SystemTime>) -> Result<Option<(u64, u64)>> {
    let Ok(meta) = std::fs::metadata(path) else {
        return Ok(None);
    };
    if let Some(since) = since {
        if meta.modified()? < since {
            return Ok(None);
        }
    }
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let v: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    Ok(Some(from_json(&v, kind)))
}

fn from_json(v: &serde_json::Value, kind: Kind) -> (u64, u64) {
    match kind {
        Kind::Report => (
            v["passed"].as_u64().unwrap_or(0),
            // A report without a count is not a pass.
            v["failed"].as_u64().unwrap_or(1),
        ),
        Kind::Mutants => {
            let all = v["mutants"].as_array().map_or(0, Vec::len) as u64;
            let killed = v["killed"].as_u64().unwrap_or(0);
            (killed, all.saturating_sub(killed).max(u64::from(all == 0)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_come_from_the_files() {
        let report = serde_json::json!({"passed": 170, "failed": 2, "skipped": 1});
        assert_eq!(from_json(&report, Kind::Report), (170, 2));
        let mutants = serde_json::json!({"mutants": [{}, {}, {}], "killed": 2});
        assert_eq!(from_json(&mutants, Kind::Mutants), (2, 1));
        // Files without counts never read as green.
        assert_eq!(from_json(&serde_json::json!({}), Kind::Report), (0, 1));
        assert_eq!(from_json(&serde_json::json!({}), Kind::Mutants), (0, 1));
    }

    #[test]
    fn files_older_than_the_run_do_not_count() {
        let dir = std::env::temp_dir().join(format!("xtask-summary-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("report.json");
        std::fs::write(&path, r#"{"passed": 3, "failed": 0}"#).unwrap();
        assert_eq!(counts(&path, Kind::Report, None).unwrap(), Some((3, 0)));
        let later = SystemTime::now() + Duration::from_secs(60);
        assert_eq!(counts(&path, Kind::Report, Some(later)).unwrap(), None);
        assert_eq!(
            counts(&dir.join("missing.json"), Kind::Report, None).unwrap(),
            None
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
