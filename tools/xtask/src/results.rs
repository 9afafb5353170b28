//! `xtask results`: writes `docs/results.md` from the files the make targets
//! write under `out/` (selftest reports, mutants, benchmarks), so that no
//! figure in the documentation is typed by hand. `xtask results --check`
//! fails when the committed page does not describe the runs in `out/`:
//! `make test` ends with it, so a suite that changed cannot pass with a page
//! that still shows the old one.
//!
//! [`inputs`] reads the files, [`page`] renders the page, [`summary`] is the
//! machine-readable part the check reads back, [`md`] escapes file text.

mod inputs;
mod md;
mod page;
mod summary;

/// Where each result file lives; `summary` counts the same files.
pub(crate) use inputs::Source;

use anyhow::{anyhow, bail, Context, Result};

use crate::paths::Paths;
use inputs::Inputs;
use summary::Summary;

/// The page, relative to the repository.
pub const PAGE: &str = "docs/results.md";

/// `make results`: (re)writes the page from whatever result files exist.
pub fn write(paths: &Paths) -> Result<()> {
    let inputs = Inputs::load(&paths.repo)?;
    let path = paths.repo.join(PAGE);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(&path, page::render(&inputs))
        .with_context(|| format!("writing {}", path.display()))?;
    let (found, missing) = sources(&inputs);
    println!("wrote {PAGE} from: {}", or_none(&found));
    println!("not run (the page says so): {}", or_none(&missing));
    Ok(())
}

/// `make results-check`: the page in the checkout against the files in
/// `out/`. CI checks a clean clone, where that page is the committed one;
/// locally, a page just regenerated passes before it is committed.
pub fn check(paths: &Paths) -> Result<()> {
    let path = paths.repo.join(PAGE);
    let page = std::fs::read_to_string(&path)
        .map_err(|e| anyhow!("{PAGE} is missing ({e}): run `make results` and commit it"))?;
    let inputs = Inputs::load(&paths.repo)?;
    check_page(&page, &inputs)?;
    println!("{PAGE} describes the runs in out/ (test names, verdicts, counts, mutant verdicts, series checks)");
    Ok(())
}

fn check_page(page: &str, inputs: &Inputs) -> Result<()> {
    let committed = Summary::parse(page)
        .map_err(|e| anyhow!("{PAGE} is stale: {e:#}; run `make results` and commit it"))?;
    let problems = summary::differences(&committed, &Summary::from_inputs(inputs));
    if !problems.is_empty() {
        bail!(
            "{PAGE} is stale: it does not describe the runs in out/:\n  - {}\n\
             run `make results` and commit it",
            problems.join("\n  - ")
        );
    }
    Ok(())
}

/// The result files that exist and those that do not.
fn sources(inputs: &Inputs) -> (Vec<String>, Vec<String>) {
    let mut all: Vec<(String, bool)> = Vec::new();
    for a in &inputs.arches {
        all.push((
            inputs::Source::report(a.arch.name()).path,
            a.report.is_some(),
        ));
    }
    all.push((inputs::Source::mutants().path, inputs.mutants.is_some()));
    all.push((
        inputs::Source::host_bench().path,
        inputs.host_bench.is_some(),
    ));
    for a in &inputs.arches {
        all.push((inputs::Source::vm_bench(a.arch).path, a.vm_bench.is_some()));
    }
    let (found, missing): (Vec<_>, Vec<_>) = all.into_iter().partition(|(_, f)| *f);
    let names = |v: Vec<(String, bool)>| v.into_iter().map(|(p, _)| p).collect();
    (names(found), names(missing))
}

fn or_none(list: &[String]) -> String {
    if list.is_empty() {
        "none".into()
    } else {
        list.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::{Path, PathBuf};

    /// The page `make results` would write for `repo`.
    fn load_and_render(repo: &Path) -> String {
        page::render(&Inputs::load(repo).unwrap())
    }

    /// A scratch repository with result files under `out/`.
    struct Repo(PathBuf);

    impl Repo {
        fn new(name: &str) -> Repo {
            let dir = std::env::temp_dir()
                .join(format!("xtask-results-page-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            Repo(dir)
        }

        fn write(&self, rel: &str, text: &str) {
            let path = self.0.join(rel);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }

        fn remove(&self, rel: &str) {
            std::fs::remove_file(self.0.join(rel)).unwrap();
        }

        /// The check of `page` against the files as they are now.
        fn check(&self, page: &str) -> Result<()> {
            check_page(page, &Inputs::load(&self.0).unwrap())
        }
    }

    impl Drop for Repo {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// A report.json as `xtask vmtest` writes it, counts from the tests.
    fn report(arch: &str, tests: &[(&str, &str, &str)]) -> String {
        let count = |v: &str| tests.iter().filter(|t| t.1 == v).count();
        report_with_counts(arch, tests, count("pass"), count("fail"), count("skip"))
    }

    fn report_with_counts(
        arch: &str,
        tests: &[(&str, &str, &str)],
        passed: usize,
        failed: usize,
        skipped: usize,
    ) -> String {
        let tests: Vec<serde_json::Value> = tests
            .iter()
            .map(|(name, result, message)| {
                serde_json::json!({"name": name, "result": result,
                                   "duration_ms": 1.0, "message": message})
            })
            .collect();
        serde_json::json!({
            "arch": arch, "date": "2026-11-28T05:42:10Z",
            "command": format!("xtask vmtest --arch {arch}"),
            "kernel_release": "6.12.117+", "kernel_image": "/k", "modules": [],
            "build_key": "k", "accel": "tcg", "guest_outcome": "exited 0",
            "vm_seconds": 48.06, "console_log": "/c", "dmesg": "/d", "splats": [],
            "tests": tests, "passed": passed, "failed": failed, "skipped": skipped,
        })
        .to_string()
    }

    const TESTS: &[(&str, &str, &str)] = &[
        (
            "res_spin_lock/res_spin_lock: lock, test the result, unlock",
            "pass",
            "",
        ),
        (
            "upstream/spin_lock: test1 success @unpriv",
            "skip",
            "unprivileged BPF | disabled",
        ),
        ("vm/no_kernel_splats", "pass", ""),
    ];

    const MUTANTS: &str = r#"{"date": "2026-11-28T05:45:00Z",
        "command": "xtask mutants --arch x86_64",
        "suite": ["verifier_lock_prune/*"], "baseline_tests": 45,
        "mutants": [
          {"mutant": "active-lock-ptr", "knob": 1, "removes": "the ptr compare",
           "verdict": "killed", "killing_tests": ["verifier_lock_prune/a"],
           "tests_run": 45, "other_failures": []},
          {"mutant": "res-lock-id", "knob": 8, "removes": "check_ids()",
           "killed": true, "killing_tests": ["verifier_res_lock_prune/b"],
           "tests_run": 45, "other_failures": []}]}"#;

    /// Both arches, mutants and the host benchmark; no VM benchmark.
    fn full_repo(name: &str) -> Repo {
        let repo = Repo::new(name);
        repo.write("out/x86_64/report.json", &report("x86_64", TESTS));
        repo.write("out/arm64/report.json", &report("arm64", &TESTS[..2]));
        repo.write("out/x86_64/mutants/mutants.json", MUTANTS);
        repo.write(
            "out/bench/host.json",
            include_str!("../../rqspinlock-host/tests/fixtures/bench.json"),
        );
        repo
    }

    #[test]
    fn generated_page_passes_its_check() {
        let repo = full_repo("roundtrip");
        let page = load_and_render(&repo.0);
        assert!(page.starts_with(page::HEADER), "{page}");
        assert!(page.is_ascii());
        repo.check(&page).unwrap();
        // Same files, same page: nothing in it depends on when it was made.
        assert_eq!(page, load_and_render(&repo.0));
        for expected in [
            "**2 passed, 0 failed, 1 skipped**",
            "**1 passed, 0 failed, 1 skipped**",
            "written by `make vmtest` (`xtask vmtest --arch x86_64`) at 2026-11-28T05:42:10Z",
            "| `upstream/spin_lock: test1 success @unpriv` | skip | unprivileged BPF \\| disabled |",
            "**2 of 2 mutants killed** (0 survived, 0 broken)",
            "| 1 | 2.39x | 0.43x | 11.97 | 5.00 | 2.19 |",
            "Not run: `out/x86_64/bench.json` does not exist. Run `make vmbench`",
            "Not run: `out/arm64/bench.json` does not exist. Run `make vmbench ARCH=arm64`",
        ] {
            assert!(page.contains(expected), "missing {expected:?} in\n{page}");
        }
    }

    #[test]
    fn vm_benchmark_section_comes_from_the_stamped_file() {
        let repo = full_repo("vmbench");
        let from = repo.0.join("guest-bench.json");
        std::fs::write(&from, crate::vmbench::RUNNER_FIXTURE).unwrap();
        let to = repo.0.join("out/x86_64").join(crate::vmbench::FILE);
        crate::vmbench::save(&from, &to).unwrap();
        let page = load_and_render(&repo.0);
        assert!(
            page.contains("bpf_res_spin_lock / bpf_spin_lock: **2.00x**"),
            "{page}"
        );
        assert!(
            page.contains("| `bench_spin_lock` | 400.0 | 300.0 |"),
            "{page}"
        );
        assert!(
            page.contains("| `bench_res_spin_lock` | 1500.0 |"),
            "{page}"
        );
        assert!(
            page.contains("| uncontended, 200000 pairs per round | 9000 | 12000 | 0.75x |"),
            "{page}"
        );
        assert!(
            page.contains(
                "in the kernel, Rust lock / raw_spinlock_t: 0.75x uncontended, 1.50x contended"
            ),
            "{page}"
        );
        repo.check(&page).unwrap();
    }

    #[test]
    fn renamed_test_fails_the_check() {
        let repo = full_repo("renamed");
        let page = load_and_render(&repo.0);
        let mut tests = TESTS.to_vec();
        tests[0].0 = "res_spin_lock/res_spin_lock: renamed";
        repo.write("out/x86_64/report.json", &report("x86_64", &tests));
        let err = repo.check(&page).unwrap_err().to_string();
        assert!(err.starts_with("docs/results.md is stale"), "{err}");
        assert!(
            err.contains("`res_spin_lock/res_spin_lock: renamed`"),
            "{err}"
        );
        assert!(err.contains("on the page did not run"), "{err}");
        assert!(err.ends_with("run `make results` and commit it"), "{err}");
    }

    #[test]
    fn added_test_fails_the_check() {
        let repo = full_repo("added");
        let page = load_and_render(&repo.0);
        let mut tests = TESTS.to_vec();
        tests.push(("new/test", "pass", ""));
        repo.write("out/arm64/report.json", &report("arm64", &tests));
        let err = repo.check(&page).unwrap_err().to_string();
        assert!(
            err.contains("arm64 tests: 2 test(s) not on the page"),
            "{err}"
        );
    }

    #[test]
    fn changed_count_fails_the_check() {
        let repo = full_repo("count");
        let page = load_and_render(&repo.0);
        repo.write(
            "out/x86_64/report.json",
            &report_with_counts("x86_64", TESTS, 2, 1, 1),
        );
        let err = repo.check(&page).unwrap_err().to_string();
        assert!(
            err.contains("x86_64: the run has 2 passed, 1 failed, 1 skipped; the page says 2 passed, 0 failed, 1 skipped"),
            "{err}"
        );
    }

    #[test]
    fn changed_verdict_fails_the_check() {
        let repo = full_repo("verdict");
        let page = load_and_render(&repo.0);
        repo.write(
            "out/x86_64/mutants/mutants.json",
            &MUTANTS.replace("\"verdict\": \"killed\"", "\"verdict\": \"survived\""),
        );
        let err = repo.check(&page).unwrap_err().to_string();
        assert!(
            err.contains("`active-lock-ptr (killed on the page, survived now)`"),
            "{err}"
        );
    }

    #[test]
    fn missing_report_fails_the_check() {
        let repo = full_repo("missing");
        let page = load_and_render(&repo.0);
        repo.remove("out/arm64/report.json");
        let err = repo.check(&page).unwrap_err().to_string();
        assert!(
            err.contains("the page lists arm64, but out/arm64/report.json is missing (run `make vmtest-arm64`)"),
            "{err}"
        );
        repo.remove("out/x86_64/mutants/mutants.json");
        let err = repo.check(&page).unwrap_err().to_string();
        assert!(err.contains("the page lists mutants, but"), "{err}");
    }

    #[test]
    fn a_report_the_page_does_not_list_fails_the_check() {
        let repo = full_repo("unlisted");
        repo.remove("out/arm64/report.json");
        let page = load_and_render(&repo.0);
        assert!(page
            .contains("Not run: `out/arm64/report.json` does not exist. Run `make vmtest-arm64`"));
        repo.check(&page).unwrap();
        repo.write("out/arm64/report.json", &report("arm64", TESTS));
        let err = repo.check(&page).unwrap_err().to_string();
        assert!(
            err.contains("out/arm64/report.json exists, but the page has no arm64 results"),
            "{err}"
        );
    }

    #[test]
    fn a_page_without_its_summary_fails_the_check() {
        let repo = full_repo("nosummary");
        let err = repo
            .check("# Results\n\n163 passed\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("docs/results.md is stale: it has no machine-readable summary"),
            "{err}"
        );
    }

    #[test]
    fn no_results_at_all_give_a_page_of_not_run_lines() {
        let repo = Repo::new("empty");
        let page = load_and_render(&repo.0);
        // Two selftest runs, mutants, the series, the host bench, two VM benches.
        assert_eq!(page.matches("Not run: ").count(), 7, "{page}");
        repo.check(&page).unwrap();
    }
}
