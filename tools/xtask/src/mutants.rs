//! `xtask mutants`: proves that the lock-pruning suites catch unsound
//! pruning. Each mutant of `tools/mutants/mutants.list` skips one lock-state
//! comparison of `kernel/bpf/verifier.c`. A mutant is killed when a
//! `__failure` program of the suites, which the real verifier rejects, loads
//! on it: the only way a weaker comparison shows is a path pruned that should
//! have been verified. Any other failure (a broken object, a `*_safe`
//! program refused) means the mutant broke more than pruning: it is
//! *broken*, not killed, and fails the run.
//!
//! All mutants live in one kernel (mutant schemata): `tools/mutants/
//! schema.patch` guards each comparison with `MUTANT(n)`, a test of the
//! `bpf_verifier_mutant` kernel parameter, which the guest sets before each
//! run of the suites. So one incremental build and one boot serve them all.
//! With the parameter at 0 the schema kernel must pass the suites too.
//!
//! The schema kernel is built in its own `O=` directory, so the kernel that
//! `vmtest` tests never carries it, even after an interrupted run. The patch
//! is applied to the shared source tree only while the pipeline lock is held,
//! and undone with the original mtime, so the main build does not see a
//! change.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{bail, Context, Result};
use serde::Serialize;
use xshell::Shell;

use crate::kernel::{self, Built, Options};
use crate::paths::Paths;
use crate::report::{self, TestResult};
use crate::selftests::{self, Selftests};
use crate::stage::{run_logged, Stage};
use crate::toolchain;
use crate::vm::{self, Outcome, Vm};

/// The suites the mutants are run against.
const SUITE: &[&str] = &["verifier_lock_prune/*", "verifier_res_lock_prune/*"];
const VERIFIER: &str = "kernel/bpf/verifier.c";
/// Where the schema kernel takes the mutant to apply.
const KNOB: &str = "/sys/module/kernel/parameters/bpf_verifier_mutant";
/// The runner's failure text for a `__failure` program that loaded.
const ACCEPTED: &str = "expected the verifier to reject the program, it was accepted";

/// One line of `mutants.list`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mutant {
    /// The value of `bpf_verifier_mutant` that applies it.
    pub knob: u32,
    pub name: String,
    /// What it removes.
    pub what: String,
}

#[derive(Serialize)]
struct MutantResult {
    mutant: String,
    knob: u32,
    removes: String,
    /// `killed`, `survived` or `broken` (see [`Verdict`]).
    verdict: Verdict,
    killing_tests: Vec<String>,
    tests_run: usize,
    /// Failures that are not kills: any makes the mutant broken.
    other_failures: Vec<String>,
}

/// What a run of the suites says of one mutant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum Verdict {
    /// A `__failure` program loaded, and nothing else failed.
    Killed,
    /// Every test passed: the suites cannot tell this verifier from ours.
    Survived,
    /// Something other than a `__failure` program failed (a `*_safe`
    /// program refused, an object that did not load, no tests at all): the
    /// mutant is not a weaker pruning, so it proves nothing either way.
    Broken,
}

pub fn run(sh: &Shell, paths: &Paths, opts: &Options) -> Result<i32> {
    let mutants = read_list(&paths.repo.join("tools/mutants/mutants.list"))?;
    let built = kernel::build(sh, paths, opts)?;
    let tests = selftests::build(paths, &built)?;
    let out = paths.out_arch(opts.arch).join("mutants");
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out)?;

    // The suites must pass on the real verifier, or "killed" means nothing.
    let stage = Stage::start("mutants: baseline (the series' kernel)");
    let product: Vec<PathBuf> = built.module().into_iter().collect();
    let base = run_suites(
        &built.image(),
        &product,
        &tests,
        &[None],
        &out.join("baseline"),
    )?
    .pop()
    .unwrap_or_default();
    require_all_pass("the series' kernel", &base)?;
    stage.done(format!("{} tests pass", base.len()));

    let stage = Stage::start("mutants: schema kernel build");
    let obj = mutant_obj(paths, &built)?;
    build_schema(
        paths,
        &built,
        &obj,
        &paths.repo.join("tools/mutants/schema.patch"),
        &out.join("schema-build.log"),
    )?;
    stage.done(format!("built in {}", obj.display()));

    let stage = Stage::start(format!("mutants: {} mutants in one boot", mutants.len()));
    // The schema kernel's own build of the module, against its vmlinux.
    let module: Vec<PathBuf> = product
        .iter()
        .map(|_| {
            obj.join(crate::series::MODULE_DIR)
                .join("bpf_rqspinlock.ko")
        })
        .collect();
    let knobs: Vec<Option<u32>> = std::iter::once(Some(0))
        .chain(mutants.iter().map(|m| Some(m.knob)))
        .collect();
    let mut runs = run_suites(
        &obj.join(built.arch.image()),
        &module,
        &tests,
        &knobs,
        &out.join("schema"),
    )?;
    let unmutated = runs.remove(0);
    require_all_pass("the schema kernel with no mutant", &unmutated)?;
    stage.done(format!("{} runs", runs.len() + 1));

    let results: Vec<MutantResult> = mutants
        .iter()
        .zip(runs)
        .map(|(m, res)| judge(m, &res))
        .collect();
    report_results(&results, base.len(), &out)?;
    let killed = results
        .iter()
        .filter(|r| r.verdict == Verdict::Killed)
        .count();
    println!("{} passed, {} failed", killed, results.len() - killed);
    Ok(if killed == results.len() && !results.is_empty() {
        0
    } else {
        1
    })
}

/// Kills are `__failure` programs that loaded; everything else that failed
/// is reported separately.
fn judge(m: &Mutant, res: &[TestResult]) -> MutantResult {
    let failed = res.iter().filter(|t| t.result == "fail");
    let (kills, others): (Vec<&TestResult>, Vec<&TestResult>) =
        failed.partition(|t| t.message.contains(ACCEPTED));
    let verdict = if !others.is_empty() || res.is_empty() {
        Verdict::Broken
    } else if kills.is_empty() {
        Verdict::Survived
    } else {
        Verdict::Killed
    };
    MutantResult {
        mutant: m.name.clone(),
        knob: m.knob,
        removes: m.what.clone(),
        verdict,
        killing_tests: kills.iter().map(|t| t.name.clone()).collect(),
        tests_run: res.len(),
        other_failures: others.iter().map(|t| t.name.clone()).collect(),
    }
}

fn require_all_pass(what: &str, res: &[TestResult]) -> Result<()> {
    let failed: Vec<&str> = res
        .iter()
        .filter(|t| t.result != "pass")
        .map(|t| t.name.as_str())
        .collect();
    if res.is_empty() || !failed.is_empty() {
        bail!(
            "the pruning suites do not pass on {what} ({} tests; not passing: {failed:?})",
            res.len()
        );
    }
    Ok(())
}

fn report_results(results: &[MutantResult], baseline: usize, out: &Path) -> Result<()> {
    let mut table = format!("\n{:<28} {:<8} killing tests\n", "mutant", "verdict");
    for r in results {
        let _ = writeln!(
            table,
            "{:<28} {:<8} {}",
            r.mutant,
            match r.verdict {
                Verdict::Killed => "killed",
                Verdict::Survived => "SURVIVED",
                Verdict::Broken => "BROKEN",
            },
            r.killing_tests.join(", ")
        );
        if !r.other_failures.is_empty() {
            let _ = writeln!(
                table,
                "{:<28} broken: these failed without being a kill: {}",
                "",
                r.other_failures.join(", ")
            );
        }
    }
    print!("{table}");
    let killed = results
        .iter()
        .filter(|r| r.verdict == Verdict::Killed)
        .count();
    let score = if results.is_empty() {
        0.0
    } else {
        100.0 * killed as f64 / results.len() as f64
    };
    println!(
        "mutation score: {killed}/{} ({score:.0}%), baseline: {baseline} tests pass",
        results.len()
    );
    let path = out.join("mutants.json");
    std::fs::write(
        &path,
        serde_json::to_string_pretty(&serde_json::json!({
            "date": crate::provenance::now_utc(),
            "command": crate::provenance::command_line(),
            "suite": SUITE, "baseline_tests": baseline, "mutants": results,
            "killed": killed, "score_percent": score,
        }))? + "\n",
    )?;
    println!("report: {}", path.display());
    Ok(())
}

/// Parses `mutants.list`: `<knob> <name> <what it removes>` per line, `#`
/// comments. Knobs must be distinct and non-zero (0 means no mutant).
pub fn read_list(path: &Path) -> Result<Vec<Mutant>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    parse_list(&text).with_context(|| format!("in {}", path.display()))
}

fn parse_list(text: &str) -> Result<Vec<Mutant>> {
    let mut out: Vec<Mutant> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut parts = line.splitn(3, char::is_whitespace);
        let (Some(knob), Some(name), Some(what)) = (parts.next(), parts.next(), parts.next())
        else {
            bail!("line {}: expected `<knob> <name> <what it removes>`", i + 1);
        };
        let knob: u32 = knob
            .parse()
            .with_context(|| format!("line {}: knob {knob:?}", i + 1))?;
        if knob == 0 || out.iter().any(|m| m.knob == knob || m.name == name) {
            bail!(
                "line {}: knob {knob} or name {name} is 0 or repeated",
                i + 1
            );
        }
        out.push(Mutant {
            knob,
            name: name.to_string(),
            what: what.trim().to_string(),
        });
    }
    if out.is_empty() {
        bail!("no mutants listed");
    }
    Ok(out)
}

/// The mutant build directory: a build directory of its own, built from the
/// same source tree with the same `.config`. Not a copy of the main one:
/// copying an `O=` directory makes kbuild relink objtool (its build records
/// absolute paths) and every object depends on objtool, so a copy rebuilds
/// everything. Kept across runs, it rebuilds only what changed, like the
/// main one.
fn mutant_obj(paths: &Paths, built: &Built) -> Result<PathBuf> {
    let obj = paths
        .kernel_obj(built.arch)
        .with_file_name(format!("{}-mutant", built.arch.name()));
    std::fs::create_dir_all(&obj)?;
    let config = std::fs::read(built.obj.join(".config"))?;
    if std::fs::read(obj.join(".config")).ok().as_deref() != Some(config.as_slice()) {
        std::fs::write(obj.join(".config"), &config)?;
    }
    Ok(obj)
}

/// Restores verifier.c (contents and mtime) when dropped.
struct Restore {
    file: PathBuf,
    contents: Vec<u8>,
    mtime: SystemTime,
}

impl Drop for Restore {
    fn drop(&mut self) {
        if std::fs::write(&self.file, &self.contents).is_ok() {
            if let Ok(f) = std::fs::File::options().write(true).open(&self.file) {
                let _ = f.set_modified(self.mtime);
            }
        }
    }
}

/// Builds the schema kernel. The patched verifier.c keeps the mtime of the
/// last schema build, so an unchanged series rebuilds nothing.
fn build_schema(paths: &Paths, built: &Built, obj: &Path, patch: &Path, log: &Path) -> Result<()> {
    let file = built.src.join(VERIFIER);
    let _restore = Restore {
        contents: std::fs::read(&file)?,
        mtime: std::fs::metadata(&file)?.modified()?,
        file: file.clone(),
    };
    let mut apply = std::process::Command::new("patch");
    apply
        .current_dir(&built.src)
        .args([
            "-p1",
            "--forward",
            "--fuzz=0",
            "--no-backup-if-mismatch",
            "-i",
        ])
        .arg(patch);
    run_logged(apply, log, &format!("applying {}", patch.display()))?;
    // Same contents as at the last schema build: give it that build's mtime,
    // so make does not recompile verifier.c for nothing.
    let stamp = obj.join(".rqspin-schema-verifier");
    let patched = std::fs::read(&file)?;
    if std::fs::read(&stamp).ok().as_deref() == Some(patched.as_slice()) {
        if let Ok(mtime) = std::fs::metadata(&stamp).and_then(|m| m.modified()) {
            std::fs::File::options()
                .write(true)
                .open(&file)?
                .set_modified(mtime)?;
        }
    }
    let make = toolchain::kbuild_target(paths, &built.src, obj, built.arch, "all");
    run_logged(make, log, "building the schema kernel")?;
    std::fs::write(&stamp, &patched)?;
    let mtime = std::fs::metadata(&file)?.modified()?;
    std::fs::File::options()
        .write(true)
        .open(&stamp)?
        .set_modified(mtime)?;
    Ok(())
}

/// Boots `image` once and runs the suites once per knob value (`None`: leave
/// the parameter alone, for a kernel without it). Returns the results of
/// each run, in order.
fn run_suites(
    image: &Path,
    modules: &[PathBuf],
    tests: &Selftests,
    knobs: &[Option<u32>],
    out: &Path,
) -> Result<Vec<Vec<TestResult>>> {
    let guest = vm::guest_dir(out);
    let _ = std::fs::remove_dir_all(&guest);
    std::fs::create_dir_all(&guest)?;
    let console = out.join("console.log");
    let script = guest.join("run-suites.sh");
    std::fs::write(&script, guest_script(tests, modules, knobs, &guest))?;
    let vm = Vm {
        arch: crate::arch::Arch::host(),
        image,
        cpus: 2,
        memory: "1G",
        kvm: false,
        rwdir: &guest,
        console: &console,
        root: None,
    };
    let command = vec!["/bin/sh".to_string(), script.display().to_string()];
    let (outcome, _) = vm.run(&command, vm::deadline(false), "    | ")?;
    match outcome {
        Outcome::Exited(0) => {}
        Outcome::Exited(c) => bail!(
            "the guest script exited {c}: a runner setup error or no way to set the mutant (console: {})",
            console.display()
        ),
        Outcome::Panicked => bail!("the guest panicked (console: {})", console.display()),
        Outcome::TimedOut(d) => bail!("guest timed out after {} s", d.as_secs()),
    }
    let mut text = std::fs::read_to_string(&console).unwrap_or_default();
    let mut all = Vec::new();
    for i in 0..knobs.len() {
        let dir = guest.join(format!("run{i}"));
        text.push_str(&std::fs::read_to_string(dir.join("dmesg.txt")).unwrap_or_default());
        all.push(report::read_guest_results(&dir.join("results.json"))?.tests);
    }
    let splats = crate::splat::find_splats(&text);
    if !splats.is_empty() {
        bail!(
            "kernel splat during the mutant runs:\n    {}",
            splats.join("\n    ")
        );
    }
    Ok(all)
}

/// The guest side: for each knob value, set the parameter and run the
/// suites into `run<i>/`. The runner exits 0 or 1 for passed or failed
/// tests; anything else stops the script with that code.
fn guest_script(
    tests: &Selftests,
    modules: &[PathBuf],
    knobs: &[Option<u32>],
    guest: &Path,
) -> String {
    let mut runner = format!("{} --objs {}", tests.runner.display(), tests.objs.display());
    for m in modules {
        let _ = write!(runner, " --module {}", m.display());
    }
    for f in SUITE {
        let _ = write!(runner, " --filter '{f}'");
    }
    let mut s = String::from("#!/bin/sh\n# Written by xtask mutants.\n");
    for (i, knob) in knobs.iter().enumerate() {
        if let Some(n) = knob {
            let _ = writeln!(
                s,
                "echo {n} > {KNOB} || {{ echo 'cannot set {KNOB}' >&2; exit 3; }}"
            );
        }
        let _ = writeln!(
            s,
            "{runner} --out {}\nrc=$?\n[ $rc -le 1 ] || exit $rc",
            guest.join(format!("run{i}")).display()
        );
    }
    s.push_str("exit 0\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_parses() {
        let m = parse_list("# c\n1 a-b removes x\n\n2 c the y  compare\n").unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!(m[1].knob, 2);
        assert_eq!(m[1].name, "c");
        assert_eq!(m[1].what, "the y  compare");
    }

    #[test]
    fn list_refuses_bad_lines() {
        assert!(parse_list("").is_err());
        assert!(parse_list("0 a x\n").is_err());
        assert!(parse_list("1 a x\n1 b y\n").is_err());
        assert!(parse_list("1 a x\n2 a y\n").is_err());
        assert!(parse_list("x a y\n").is_err());
        assert!(parse_list("1 a\n").is_err());
    }

    #[test]
    fn kills_are_accepted_failures_only() {
        let m = Mutant {
            knob: 1,
            name: "m".into(),
            what: "w".into(),
        };
        let t = |name: &str, result: &str, message: &str| TestResult {
            name: name.into(),
            result: result.into(),
            duration_ms: 0.0,
            message: message.into(),
        };
        let r = judge(
            &m,
            &[
                t("a_unsafe", "fail", ACCEPTED),
                t("b_safe", "fail", "expected the load to succeed"),
                t("c", "pass", ""),
            ],
        );
        // A safe program refused next to a kill: broken, not killed.
        assert_eq!(r.verdict, Verdict::Broken);
        assert_eq!(r.killing_tests, ["a_unsafe"]);
        assert_eq!(r.other_failures, ["b_safe"]);
        let r = judge(&m, &[t("b_safe", "fail", "object broken")]);
        assert_eq!(r.verdict, Verdict::Broken);
        // A mutant that broke the boot or the build runs no test.
        assert_eq!(judge(&m, &[]).verdict, Verdict::Broken);
        let r = judge(&m, &[t("a_unsafe", "fail", ACCEPTED), t("c", "pass", "")]);
        assert_eq!(r.verdict, Verdict::Killed);
        let r = judge(&m, &[t("a_unsafe", "pass", ""), t("c", "pass", "")]);
        assert_eq!(r.verdict, Verdict::Survived);
    }
}
