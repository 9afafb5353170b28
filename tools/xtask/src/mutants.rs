//! `xtask mutants`: proves that the lock-pruning suite catches unsound
//! pruning. Each mutant in `tools/mutants/` removes one lock-state comparison
//! from `kernel/bpf/verifier.c`; the kernel is rebuilt with it and the suite
//! runs in a VM. A mutant is killed when some test fails on it. The suite
//! must also pass, first, on the unmutated kernel.
//!
//! Mutant kernels are built in their own `O=` directory, so the kernel that
//! `vmtest` tests is never a mutant, even after an interrupted run. The mutation is applied to the shared source tree only while the
//! pipeline lock is held, and undone with the original mtime, so the main
//! build does not see a change.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{bail, Result};
use serde::Serialize;
use xshell::Shell;

use crate::kernel::{self, Built, Options};
use crate::paths::Paths;
use crate::report;
use crate::selftests::{self, Selftests};
use crate::stage::{run_logged, Stage};
use crate::toolchain;
use crate::vm::{self, Outcome, Vm};

/// The suite the mutants are run against.
const SUITE: &[&str] = &["verifier_lock_prune/*", "verifier_rqspin_prune/*"];
const VERIFIER: &str = "kernel/bpf/verifier.c";

#[derive(Serialize)]
struct MutantResult {
    mutant: String,
    killed: bool,
    killing_tests: Vec<String>,
    tests_run: usize,
    note: String,
}

pub fn run(sh: &Shell, paths: &Paths, opts: &Options) -> Result<i32> {
    let built = kernel::build(sh, paths, opts)?;
    let tests = selftests::build(paths, &built)?;
    let out = paths.out_arch(opts.arch).join("mutants");
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out)?;

    // The suite must pass on the real verifier, or "killed" means nothing.
    let stage = Stage::start("mutants: baseline (unmutated kernel)");
    let base = run_suite(
        paths,
        &built.image(),
        &tests.modules[..1],
        &tests,
        &out.join("baseline"),
    )?;
    let base_failed: Vec<String> = base
        .iter()
        .filter(|t| t.result != "pass")
        .map(|t| t.name.clone())
        .collect();
    if base.is_empty() || !base_failed.is_empty() {
        stage.done("FAILED");
        bail!(
            "the pruning suite does not pass on the unmutated kernel ({} tests; failing: {:?})",
            base.len(),
            base_failed
        );
    }
    stage.done(format!("{} tests pass", base.len()));

    let obj = mutant_obj(paths, &built)?;
    let mut results = Vec::new();
    for patch in mutant_patches(paths)? {
        let name = patch.file_stem().unwrap().to_string_lossy().to_string();
        let stage = Stage::start(format!("mutant {name}"));
        build_mutant(
            paths,
            &built,
            &obj,
            &patch,
            &out.join(format!("{name}-build.log")),
        )?;
        let image = obj.join(built.arch.image());
        let module = obj
            .join(crate::series::MODULE_DIR)
            .join("bpf_rqspinlock.ko");
        let res = run_suite(paths, &image, &[module], &tests, &out.join(&name))?;
        let killing: Vec<String> = res
            .iter()
            .filter(|t| t.result == "fail")
            .map(|t| t.name.clone())
            .collect();
        let killed = !killing.is_empty();
        stage.done(if killed {
            format!("killed by {} test(s)", killing.len())
        } else {
            "SURVIVED".into()
        });
        results.push(MutantResult {
            mutant: name,
            killed,
            tests_run: res.len(),
            note: if res.is_empty() {
                "no test ran on this mutant".into()
            } else {
                String::new()
            },
            killing_tests: killing,
        });
    }

    println!("\n{:<36} {:<8} killing tests", "mutant", "verdict");
    for r in &results {
        println!(
            "{:<36} {:<8} {}",
            r.mutant,
            if r.killed { "killed" } else { "SURVIVED" },
            r.killing_tests.join(", ")
        );
    }
    let killed = results.iter().filter(|r| r.killed).count();
    let score = if results.is_empty() {
        0.0
    } else {
        100.0 * killed as f64 / results.len() as f64
    };
    println!(
        "mutation score: {killed}/{} ({score:.0}%), baseline: {} tests pass",
        results.len(),
        base.len()
    );
    let path = out.join("mutants.json");
    std::fs::write(
        &path,
        serde_json::to_string_pretty(&serde_json::json!({
            "suite": SUITE, "baseline_tests": base.len(), "mutants": results,
            "killed": killed, "score_percent": score,
        }))? + "\n",
    )?;
    println!("report: {}", path.display());
    println!("{} passed, {} failed", killed, results.len() - killed);
    Ok(if killed == results.len() && !results.is_empty() {
        0
    } else {
        1
    })
}

fn mutant_patches(paths: &Paths) -> Result<Vec<PathBuf>> {
    let dir = paths.repo.join("tools/mutants");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "patch"))
        .collect();
    v.sort();
    if v.is_empty() {
        bail!("no mutants in {}", dir.display());
    }
    Ok(v)
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

fn build_mutant(paths: &Paths, built: &Built, obj: &Path, patch: &Path, log: &Path) -> Result<()> {
    let file = built.src.join(VERIFIER);
    let _restore = Restore {
        contents: std::fs::read(&file)?,
        mtime: std::fs::metadata(&file)?.modified()?,
        file: file.clone(),
    };
    let mut apply = std::process::Command::new("patch");
    apply
        .current_dir(&built.src)
        .args(["-p1", "--forward", "--no-backup-if-mismatch", "-i"])
        .arg(patch);
    run_logged(apply, log, &format!("applying mutant {}", patch.display()))?;
    let mut make = toolchain::kbuild(paths, &built.src);
    make.arg(format!("O={}", obj.display()))
        .arg(format!("ARCH={}", built.arch.kbuild()))
        .arg(toolchain::jobs())
        .arg("all");
    run_logged(make, log, "building the mutant kernel")
}

fn run_suite(
    paths: &Paths,
    image: &Path,
    modules: &[PathBuf],
    tests: &Selftests,
    out: &Path,
) -> Result<Vec<report::TestResult>> {
    let guest = vm::guest_dir(out);
    let _ = std::fs::remove_dir_all(&guest);
    std::fs::create_dir_all(&guest)?;
    let console = out.join("console.log");
    let arch = crate::arch::Arch::host();
    let vm = Vm {
        arch,
        image,
        cpus: 2,
        memory: "1G",
        kvm: false,
        rwdir: &guest,
        console: &console,
        root: None,
    };
    let mut command = vec![
        tests.runner.display().to_string(),
        "--objs".into(),
        tests.objs.display().to_string(),
        "--out".into(),
        guest.display().to_string(),
    ];
    for m in modules {
        command.extend(["--module".into(), m.display().to_string()]);
    }
    for f in SUITE {
        command.extend(["--filter".into(), f.to_string()]);
    }
    let _ = paths;
    let (outcome, _) = vm.run(&command, vm::deadline(false), "    | ")?;
    match outcome {
        Outcome::Exited(0 | 1) => {}
        Outcome::Exited(c) => bail!("the runner exited {c} (console: {})", console.display()),
        Outcome::Panicked => bail!("the guest panicked (console: {})", console.display()),
        Outcome::TimedOut(d) => bail!("guest timed out after {} s", d.as_secs()),
    }
    let mut text = std::fs::read_to_string(&console).unwrap_or_default();
    text.push_str(&std::fs::read_to_string(guest.join("dmesg.txt")).unwrap_or_default());
    let splats = report::find_splats(&text);
    if !splats.is_empty() {
        bail!(
            "kernel splat during the mutant run:\n    {}",
            splats.join("\n    ")
        );
    }
    Ok(report::read_guest_results(&guest.join("results.json"))?.tests)
}
