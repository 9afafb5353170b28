//! The files `make results` reads: where each lives, which make target
//! writes it, and the fields the page shows. A missing file is `None` (the
//! page says "not run"); a file that exists but does not parse is an error,
//! because that is a broken run, not an absent one.

use std::path::Path;

use anyhow::{Context, Result};
use clap::ValueEnum;
use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::arch::Arch;
use crate::report::TestResult;
use crate::vmbench::{self, VmBench};

/// `make mutants` runs on the host's architecture by default; its results
/// are the x86_64 ones the project publishes.
pub const MUTANTS_ARCH: Arch = Arch::X86_64;

/// Where a result file lives (relative to the repository, as the page shows
/// it) and the make target that writes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Source {
    pub path: String,
    pub target: String,
}

impl Source {
    pub fn report(arch: &str) -> Source {
        Source {
            path: format!("out/{arch}/report.json"),
            target: match arch {
                "x86_64" => "make vmtest".into(),
                "arm64" => "make vmtest-arm64".into(),
                other => format!("make vmtest ARCH={other}"),
            },
        }
    }

    pub fn vm_bench(arch: Arch) -> Source {
        Source {
            path: format!("out/{}/{}", arch.name(), vmbench::FILE),
            target: match arch {
                Arch::X86_64 => "make vmbench".into(),
                other => format!("make vmbench ARCH={}", other.name()),
            },
        }
    }

    pub fn mutants() -> Source {
        Source {
            path: format!("out/{}/mutants/mutants.json", MUTANTS_ARCH.name()),
            target: "make mutants".into(),
        }
    }

    pub fn series() -> Source {
        Source {
            path: "out/series/report.json".into(),
            target: "make series-check".into(),
        }
    }

    pub fn host_bench() -> Source {
        Source {
            path: "out/bench/host.json".into(),
            target: "make bench".into(),
        }
    }
}

/// A file's contents with where, when and how it was written.
#[derive(Clone, Debug)]
pub struct Loaded<T> {
    pub value: T,
    pub source: Source,
    /// The recorded date; for files written before dates were recorded, the
    /// file's modification time, marked as such.
    pub date: String,
    /// The recorded command, if the file has one.
    pub command: Option<String>,
}

/// `out/<arch>/report.json` (the fields the page uses; see report.rs).
#[derive(Clone, Debug, Deserialize)]
pub struct ArchReport {
    pub kernel_release: String,
    pub accel: String,
    pub vm_seconds: f64,
    #[serde(default)]
    pub guest_outcome: String,
    #[serde(default)]
    pub splats: Vec<String>,
    pub tests: Vec<TestResult>,
    pub passed: usize,
    pub failed: usize,
    pub skipped: usize,
}

impl ArchReport {
    /// The run's closing line, as `xtask vmtest` prints it.
    pub fn summary_line(&self) -> String {
        format!(
            "{} passed, {} failed, {} skipped",
            self.passed, self.failed, self.skipped
        )
    }
}

/// `out/series/report.json` (see seriescheck.rs).
#[derive(Clone, Debug, Deserialize)]
pub struct SeriesReport {
    pub author: String,
    pub prefix: String,
    pub files: usize,
    pub tests: Vec<TestResult>,
    pub passed: usize,
    pub failed: usize,
}

/// `out/<arch>/mutants/mutants.json` (see mutants.rs `report_results`).
#[derive(Clone, Debug, Deserialize)]
pub struct Mutants {
    #[serde(default)]
    pub suite: Vec<String>,
    #[serde(default)]
    pub baseline_tests: usize,
    pub mutants: Vec<MutantEntry>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct MutantEntry {
    pub mutant: String,
    pub knob: u32,
    #[serde(default)]
    pub removes: String,
    /// `killed`, `survived` or `broken`; files written before the verdict
    /// existed have only `killed`.
    #[serde(default)]
    verdict: Option<String>,
    #[serde(default)]
    killed: Option<bool>,
    #[serde(default)]
    pub killing_tests: Vec<String>,
    #[serde(default)]
    pub other_failures: Vec<String>,
}

impl MutantEntry {
    pub fn verdict(&self) -> &str {
        match (&self.verdict, self.killed) {
            (Some(v), _) => v,
            (None, Some(true)) => "killed",
            (None, Some(false)) => "survived",
            (None, None) => "unknown",
        }
    }
}

/// `out/bench/host.json` (written by rqspinlock-host's `bench --json`).
#[derive(Clone, Debug, Deserialize)]
pub struct HostBench {
    pub iterations: u64,
    pub rounds: usize,
    pub cores: usize,
    pub locks: HostLocks<String>,
    pub rows: Vec<HostRow>,
}

/// One figure (or name) per lock of the host benchmark.
#[derive(Clone, Debug, Deserialize)]
pub struct HostLocks<T> {
    pub resilient: T,
    pub queued: T,
    pub tas: T,
}

#[derive(Clone, Debug, Deserialize)]
pub struct HostRow {
    pub threads: usize,
    pub ns_per_op: HostLocks<f64>,
    pub resilient_over_queued: f64,
    pub tas_over_queued: f64,
}

/// What one architecture's runs left.
#[derive(Clone, Debug)]
pub struct ArchInputs {
    pub arch: Arch,
    pub report: Option<Loaded<ArchReport>>,
    pub vm_bench: Option<Loaded<VmBench>>,
}

/// Everything the page is made of.
#[derive(Clone, Debug)]
pub struct Inputs {
    /// Every architecture the pipeline knows, in its order.
    pub arches: Vec<ArchInputs>,
    pub mutants: Option<Loaded<Mutants>>,
    pub series: Option<Loaded<SeriesReport>>,
    pub host_bench: Option<Loaded<HostBench>>,
}

impl Inputs {
    /// Reads what exists under `repo` (the files live in `repo/out`).
    pub fn load(repo: &Path) -> Result<Inputs> {
        let mut arches = Vec::new();
        for &arch in Arch::value_variants() {
            arches.push(ArchInputs {
                arch,
                report: load(repo, Source::report(arch.name()))?,
                vm_bench: load(repo, Source::vm_bench(arch))?,
            });
        }
        Ok(Inputs {
            arches,
            mutants: load(repo, Source::mutants())?,
            series: load(repo, Source::series())?,
            host_bench: load(repo, Source::host_bench())?,
        })
    }
}

/// Reads `source` if it exists. `date` and `command` are taken from the
/// file's top level whatever its type, so every reader gets them alike.
fn load<T: DeserializeOwned>(repo: &Path, source: Source) -> Result<Option<Loaded<T>>> {
    let path = repo.join(&source.path);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let json: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    let field = |name: &str| json.get(name).and_then(|v| v.as_str()).map(String::from);
    let date = match field("date") {
        Some(date) => date,
        None => {
            let mtime = std::fs::metadata(&path)?.modified()?;
            format!(
                "{} (file time; the file records no date)",
                crate::provenance::utc_rfc3339(mtime)
            )
        }
    };
    let command = field("command");
    let value = T::deserialize(json).with_context(|| format!("reading {}", path.display()))?;
    Ok(Some(Loaded {
        value,
        source,
        date,
        command,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_and_new_mutant_verdicts() {
        let old: MutantEntry =
            serde_json::from_str(r#"{"mutant": "m", "knob": 1, "killed": false}"#).unwrap();
        assert_eq!(old.verdict(), "survived");
        let new: MutantEntry =
            serde_json::from_str(r#"{"mutant": "m", "knob": 1, "verdict": "broken"}"#).unwrap();
        assert_eq!(new.verdict(), "broken");
    }

    /// rqspinlock-host's `bench --json` writes exactly this file (its test
    /// compares), so reading it here pins the format on both sides.
    #[test]
    fn the_host_benchmark_file_is_read() {
        let text = include_str!("../../../rqspinlock-host/tests/fixtures/bench.json");
        let b: HostBench = serde_json::from_str(text).unwrap();
        assert_eq!((b.iterations, b.rounds, b.cores), (1000, 5, 2));
        assert_eq!(b.rows[1].threads, 2);
        assert_eq!(b.rows[0].ns_per_op.queued, 5.0);
        assert_eq!(b.rows[0].resilient_over_queued, 2.39);
        assert_eq!(b.locks.tas, "test-and-set");
    }

    #[test]
    fn missing_files_are_none_and_dates_fall_back_to_the_file_time() {
        let dir = std::env::temp_dir().join(format!("xtask-inputs-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("out/bench")).unwrap();
        let inputs = Inputs::load(&dir).unwrap();
        assert!(inputs.arches.iter().all(|a| a.report.is_none()));
        assert!(inputs.mutants.is_none() && inputs.host_bench.is_none());
        let host = include_str!("../../../rqspinlock-host/tests/fixtures/bench.json");
        std::fs::write(dir.join("out/bench/host.json"), host).unwrap();
        std::fs::write(
            dir.join("out/bench/undated.json"),
            r#"{"iterations": 1, "rounds": 1, "cores": 1, "rows": [],
               "locks": {"resilient": "r", "queued": "q", "tas": "t"}}"#,
        )
        .unwrap();
        let inputs = Inputs::load(&dir).unwrap();
        let host = inputs.host_bench.unwrap();
        assert_eq!(host.date, "2026-11-28T05:42:10Z");
        assert_eq!(
            host.command.as_deref(),
            Some("bench --json out/bench/host.json")
        );
        let undated: Loaded<HostBench> = load(
            &dir,
            Source {
                path: "out/bench/undated.json".into(),
                target: "make bench".into(),
            },
        )
        .unwrap()
        .unwrap();
        assert!(undated
            .date
            .ends_with("(file time; the file records no date)"));
        assert_eq!(undated.command, None);
        std::fs::write(dir.join("out/bench/host.json"), "{ broken").unwrap();
        assert!(Inputs::load(&dir).is_err(), "a broken file is an error");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
