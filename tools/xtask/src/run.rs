//! `vmtest`, `vmshell` and `report`: what the make targets run.

use std::path::Path;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use xshell::Shell;

use crate::kernel::{self, Options};
use crate::paths::Paths;
use crate::report::{self, Report, TestResult};
use crate::selftests::{self, Selftests};
use crate::stage::{print_tail, Stage};
use crate::vm::{self, Outcome, Vm};
use crate::{arch::Arch, guest, kvm};

/// Builds everything, boots, runs the selftests and reports. Returns the exit
/// code for the process: 0 only if every test passed and the kernel did not
/// complain.
/// `make vmbench`: the lock benchmark in the VM (`bpf-runner --bench`):
/// lock+unlock cost of bpf_res_spin_lock vs bpf_spin_lock from BPF, measured
/// side by side in one run, then the in-kernel benchmark module (the Rust
/// lock against raw_spinlock_t, `--kernel-bench`). A benchmark, not a test:
/// it prints numbers.
pub fn vmbench(sh: &Shell, paths: &Paths, opts: &Options) -> Result<i32> {
    run_vm(sh, paths, opts, true)
}

pub fn vmtest(sh: &Shell, paths: &Paths, opts: &Options) -> Result<i32> {
    run_vm(sh, paths, opts, false)
}

fn run_vm(sh: &Shell, paths: &Paths, opts: &Options, bench: bool) -> Result<i32> {
    let built = kernel::build(sh, paths, opts)?;
    let tests = selftests::build(paths, &built)?;
    let out = paths.out_arch(opts.arch);
    let guest = vm::guest_dir(&out);
    let _ = std::fs::remove_dir_all(&guest);
    std::fs::create_dir_all(&guest)?;
    let console = out.join("console.log");
    let image = built.image();
    let root = guest::root_for(paths, opts.arch)?;
    let mut vm = Vm {
        arch: opts.arch,
        image: &image,
        cpus: 2,
        memory: "1G",
        kvm: false,
        rwdir: &guest,
        console: &console,
        root: root.as_deref(),
    };
    vm.kvm = kvm::decide(paths, &vm)?;
    let deadline = vm::deadline(vm.kvm);

    let stage = Stage::start(format!(
        "run ({}, {}, 2 vCPUs, deadline {} s)",
        opts.arch.name(),
        if vm.kvm { "KVM" } else { "TCG" },
        deadline.as_secs()
    ));
    let (in_guest, guest_out) = guest::stage(opts.arch, &tests, &guest, vm.root)?;
    let mut command = runner_command(&in_guest, &guest_out);
    if bench {
        command.extend(bench_args(vm.kvm, in_guest.bench_module.as_deref()));
    }
    let start = Instant::now();
    let (outcome, _stdout) = vm.run(&command, deadline, "")?;
    let vm_seconds = start.elapsed().as_secs_f64();
    let outcome_text = match &outcome {
        Outcome::Exited(c) => format!("exited {c}"),
        Outcome::Panicked => {
            "vng returned 255: kernel panic, or the guest's exit code was lost".into()
        }
        Outcome::TimedOut(d) => format!(
            "guest timed out after {} s (process group killed)",
            d.as_secs()
        ),
    };
    stage.done(&outcome_text);
    if bench {
        // A benchmark prints numbers; it has no tests to report on. Its
        // numbers are kept in out/<arch>/ for `make results`.
        if !matches!(outcome, Outcome::Exited(0)) {
            return Ok(1);
        }
        let file = crate::vmbench::FILE;
        crate::vmbench::save(&guest.join(file), &out.join(file))?;
        return Ok(0);
    }

    let (kernel_release, mut tests_done) = guest_results(&guest.join("results.json"));
    let allowed = crate::skips::read(&paths.repo.join("tools/config/skips.allow"))?;
    for stale in crate::skips::enforce(opts.arch.name(), &allowed, &mut tests_done) {
        println!(
            "    note: tools/config/skips.allow allows `{}` to skip, and it did not",
            stale.pattern
        );
    }
    // The VM itself is a test: it must finish, with the runner's exit code.
    let vm_ok = matches!(outcome, Outcome::Exited(0 | 1));
    if !vm_ok {
        print_tail(&console, 40);
    }
    tests_done.push(verdict("vm/guest_finished", vm_ok, &outcome_text));
    let dmesg = guest.join("dmesg.txt");
    let mut text = std::fs::read_to_string(&console).unwrap_or_default();
    text.push_str(&std::fs::read_to_string(&dmesg).unwrap_or_default());
    tests_done.push(kunit_verdict(&text));
    let splats = crate::splat::find_splats(&text);
    let splat_msg = if splats.is_empty() {
        String::new()
    } else {
        splats.join("\n")
    };
    println!(
        "#{:<7} vm/no_kernel_splats:{}",
        tests_done.len() + 1,
        if splats.is_empty() { "OK" } else { "FAIL" }
    );
    for s in &splats {
        println!("    {s}");
    }
    tests_done.push(verdict(
        "vm/no_kernel_splats",
        splats.is_empty(),
        &splat_msg,
    ));

    let mut rep = Report {
        arch: opts.arch.name().into(),
        date: crate::provenance::now_utc(),
        command: crate::provenance::command_line(),
        kernel_release,
        kernel_image: image.clone(),
        modules: tests.modules.clone(),
        build_key: built.key.clone(),
        accel: if vm.kvm { "kvm".into() } else { "tcg".into() },
        guest_outcome: outcome_text,
        vm_seconds,
        console_log: console.clone(),
        dmesg,
        splats,
        tests: tests_done,
        passed: 0,
        failed: 0,
        skipped: 0,
    };
    rep.count();
    let report_path = out.join("report.json");
    rep.write(&report_path)?;
    println!("report: {}", report_path.display());
    println!("{}", rep.summary_line());
    Ok(if rep.failed == 0 && rep.passed > 0 {
        0
    } else {
        1
    })
}

/// The runner's results and the guest's kernel release. Results that are
/// missing, unreadable or empty are a failed test `vm/results`: a guest
/// that exits 0 without writing them has not shown that anything passed.
fn guest_results(path: &Path) -> (String, Vec<TestResult>) {
    const NAME: &str = "vm/results";
    let failed = |why: String| {
        println!("#{:<7} {NAME}:FAIL ({why})", "-");
        (String::new(), vec![verdict(NAME, false, &why)])
    };
    match report::read_guest_results(path) {
        Err(e) => failed(format!("no results from the guest: {e:#}")),
        Ok(r) if r.tests.is_empty() => failed(format!("{} lists no test", path.display())),
        Ok(r) => (r.kernel, r.tests),
    }
}

/// The kernel crate's Rust doctests run as KUnit at boot; all must pass.
fn kunit_verdict(console: &str) -> TestResult {
    const SUITE: &str = "rust_doctests_kernel";
    let name = "vm/rust_kernel_doctests";
    let (ok, msg) = match report::kunit_totals(console, SUITE) {
        Some((pass, 0)) if pass > 0 => (true, format!("{pass} passed")),
        Some((pass, fail)) => (
            false,
            format!("KUnit {SUITE}: {pass} passed, {fail} failed"),
        ),
        None => (
            false,
            format!("KUnit suite {SUITE} did not report on the console"),
        ),
    };
    println!(
        "#{:<7} {name}:{} ({msg})",
        "-",
        if ok { "OK" } else { "FAIL" }
    );
    verdict(name, ok, &msg)
}

fn verdict(name: &str, ok: bool, message: &str) -> TestResult {
    TestResult {
        name: name.into(),
        result: if ok { "pass" } else { "fail" }.into(),
        duration_ms: 0.0,
        message: if ok { String::new() } else { message.into() },
    }
}

/// The command the guest runs.
fn runner_command(tests: &Selftests, guest: &Path) -> Vec<String> {
    let mut c = vec![
        tests.runner.display().to_string(),
        "--objs".into(),
        tests.objs.display().to_string(),
        "--out".into(),
        guest.display().to_string(),
        // The guest is ours: the @unpriv variants of the verifier tests run.
        "--allow-unpriv-bpf".into(),
    ];
    for m in &tests.modules {
        c.push("--module".into());
        c.push(m.display().to_string());
    }
    if let Ok(filter) = std::env::var("TESTS") {
        for f in filter.split(',').filter(|f| !f.is_empty()) {
            c.push("--filter".into());
            c.push(f.into());
        }
    }
    c
}

/// What `make vmbench` adds to [`runner_command`]: the benchmark mode, the
/// accelerator, and the in-kernel benchmark module when there is one (its
/// guest path), which the runner loads only after the BPF benchmark.
fn bench_args(kvm: bool, bench_module: Option<&Path>) -> Vec<String> {
    let accel = if kvm { "kvm" } else { "tcg" };
    let mut args = vec!["--bench".to_string(), "--accel".to_string(), accel.into()];
    if let Some(m) = bench_module {
        args.push("--kernel-bench".into());
        args.push(m.display().to_string());
    }
    args
}

/// An interactive shell in the VM, with the paths of the selftest pieces
/// printed so they can be run by hand.
pub fn vmshell(sh: &Shell, paths: &Paths, opts: &Options) -> Result<()> {
    let built = kernel::build(sh, paths, opts)?;
    let tests = selftests::build(paths, &built)?;
    let out = paths.out_arch(opts.arch);
    let guest = vm::guest_dir(&out);
    std::fs::create_dir_all(&guest)?;
    let image = built.image();
    let console = out.join("vmshell-console.log");
    let root = guest::root_for(paths, opts.arch)?;
    let mut vm = Vm {
        arch: opts.arch,
        image: &image,
        cpus: 2,
        memory: "1G",
        kvm: false,
        rwdir: &guest,
        console: &console,
        root: root.as_deref(),
    };
    vm.kvm = kvm::decide(paths, &vm)?;
    let mut args = vm.vng_args();
    // Interactive: no console capture.
    args.retain(|a| a != "--verbose");
    let (in_guest, guest_out) = guest::stage(opts.arch, &tests, &guest, vm.root)?;
    let cmdline = runner_command(&in_guest, &guest_out).join(" ");
    println!(
        "In the guest:\n  run all selftests:  {cmdline}\n  load modules only:  insmod {}",
        in_guest
            .modules
            .iter()
            .map(|m| m.display().to_string())
            .collect::<Vec<_>>()
            .join(" && insmod ")
    );
    let status = std::process::Command::new(vm::vng())
        .args(&args)
        .status()
        .context("starting vng")?;
    if !status.success() {
        bail!("vng exited with {status}");
    }
    Ok(())
}

pub fn print_report(paths: &Paths, arch: Arch) -> Result<()> {
    let path = paths.out_arch(arch).join("report.json");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("no report at {}: run make vmtest first", path.display()))?;
    let v: serde_json::Value = serde_json::from_str(&text)?;
    for t in v["tests"].as_array().into_iter().flatten() {
        println!(
            "{:<60} {}",
            t["name"].as_str().unwrap_or(""),
            t["result"].as_str().unwrap_or("")
        );
    }
    println!("report: {}", path.display());
    println!(
        "{} passed, {} failed, {} skipped",
        v["passed"], v["failed"], v["skipped"]
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{bench_args, guest_results, runner_command};
    use crate::selftests::Selftests;
    use std::path::{Path, PathBuf};

    /// The benchmark module goes to the runner only as `--kernel-bench`, and
    /// only in bench mode: the tests load the modules they always loaded.
    #[test]
    fn the_bench_module_is_only_a_bench_argument() {
        let tests = Selftests {
            objs: "/g/progs".into(),
            modules: vec!["/g/m/bpf_rqspinlock.ko".into(), "/g/m/t.ko".into()],
            bench_module: Some(PathBuf::from("/g/m/bpf_rqspin_bench.ko")),
            runner: "/g/bin/bpf-runner".into(),
        };
        let command = runner_command(&tests, Path::new("/g"));
        assert!(!command.iter().any(|a| a.contains("bench")), "{command:?}");
        assert_eq!(command.iter().filter(|a| *a == "--module").count(), 2);
        assert_eq!(
            bench_args(false, tests.bench_module.as_deref()),
            [
                "--bench",
                "--accel",
                "tcg",
                "--kernel-bench",
                "/g/m/bpf_rqspin_bench.ko"
            ]
        );
        assert_eq!(bench_args(true, None), ["--bench", "--accel", "kvm"]);
    }

    fn failed_results(path: &std::path::Path) -> String {
        let (_, tests) = guest_results(path);
        assert_eq!(tests.len(), 1, "{tests:?}");
        assert_eq!(tests[0].name, "vm/results");
        assert_eq!(tests[0].result, "fail");
        tests[0].message.clone()
    }

    /// A guest that wrote no results, garbage, or an empty list fails.
    #[test]
    fn missing_or_bad_results_fail_the_run() {
        let dir = std::env::temp_dir().join(format!("xtask-results-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("results.json");
        let msg = failed_results(&path);
        assert!(msg.contains("no results"), "{msg}");
        std::fs::write(&path, "{ not json").unwrap();
        assert!(failed_results(&path).contains("parsing"));
        std::fs::write(&path, r#"{"kernel": "6.12", "tests": []}"#).unwrap();
        assert!(failed_results(&path).contains("lists no test"));
        std::fs::write(
            &path,
            r#"{"kernel": "6.12", "tests": [{"name": "a", "result": "pass"}]}"#,
        )
        .unwrap();
        let (kernel, tests) = guest_results(&path);
        assert_eq!((kernel.as_str(), tests.len()), ("6.12", 1));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
