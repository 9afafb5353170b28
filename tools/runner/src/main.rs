//! bpf-runner: see the library docs (`lib.rs`). This file wires the steps:
//! modules, test list, running, reporting, exit code.

use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Parser;

use bpf_runner::cli::Args;
use bpf_runner::filter::Filter;
use bpf_runner::report::{exit, kernel_release, log_file_name, Reporter, Status};
use bpf_runner::suite::{self, TestCase};
use bpf_runner::{bench, dmesg, libbpf, loader, modules, runtime};

fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(args) => args,
        Err(e) => {
            // clap would exit 2, which here means "no test ran".
            let code = if e.use_stderr() { exit::SETUP_ERROR } else { 0 };
            let _ = e.print();
            return ExitCode::from(code as u8);
        }
    };
    let code = match run(&args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("bpf-runner: setup error: {e:#}");
            if let Some(out) = &args.out {
                save_dmesg(out);
            }
            exit::SETUP_ERROR
        }
    };
    ExitCode::from(code as u8)
}

fn run(args: &Args) -> Result<i32> {
    libbpf::capture_messages(args.verbose);
    if args.bench {
        return run_bench(args);
    }
    let filter = Filter::new(args.filters.clone());
    let cases: Vec<TestCase> = suite::collect(&args.objs)?
        .into_iter()
        .filter(|c| filter.selects(&c.name()))
        .collect();

    if args.list {
        for case in &cases {
            println!("{}", case.name());
        }
        return Ok(exit::ALL_PASSED);
    }

    let out = args.out.as_deref().context("--out is required")?;
    let logs = out.join("logs");
    std::fs::create_dir_all(&logs).with_context(|| format!("creating {}", logs.display()))?;

    if args.allow_unpriv_bpf {
        loader::allow_unpriv_bpf()?;
    }
    let mut module_names = Vec::new();
    for path in &args.modules {
        module_names.push(modules::load_module(path)?);
    }

    let mut reporter = Reporter::new();
    for case in &cases {
        let name = case.name();
        let start = Instant::now();
        let (status, log) = match case {
            TestCase::Annotated { object, spec } => {
                let run = loader::run_test(object, spec);
                (run.status, run.log)
            }
            TestCase::Broken { error, .. } => (Status::Fail(error.clone()), error.clone()),
            TestCase::Runtime(test) => runtime::run(test, &args.objs, &args.modules),
        };
        let elapsed = start.elapsed();
        let log_path = logs.join(log_file_name(&name));
        if let Err(e) = std::fs::write(&log_path, &log) {
            eprintln!("bpf-runner: writing {}: {e}", log_path.display());
        }
        if args.verbose {
            eprintln!("log: {}", log_path.display());
        }
        reporter.record(&name, status, elapsed);
    }

    reporter.write_json(&out.join("results.json"), &kernel_release(), &module_names)?;
    save_dmesg(out);
    println!("{}", reporter.summary_line());
    Ok(reporter.exit_code())
}

/// `--bench`: load the modules, measure, print, and with `--out` write
/// `bench.json` for the host's `make results`. A benchmark that cannot
/// measure is a setup error; slow numbers are not an error. The in-kernel
/// benchmark (`--kernel-bench`) runs last, so that its threads on every CPU
/// do not overlap the BPF measurements.
fn run_bench(args: &Args) -> Result<i32> {
    for path in &args.modules {
        modules::load_module(path)?;
    }
    let mut results = bench::run(&args.objs, args.accel.as_deref())?;
    if let Some(ko) = &args.kernel_bench {
        results.in_kernel = Some(bench::kernel::run(ko)?);
    }
    print!("{}", bench::render(&results));
    if let Some(out) = &args.out {
        std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
        bench::write_json(&results, &out.join(bench::JSON_FILE))?;
    }
    Ok(exit::ALL_PASSED)
}

/// Best effort: a missing kernel log must not hide the test results.
fn save_dmesg(out: &Path) {
    let path = out.join("dmesg.txt");
    let result = dmesg::read_kernel_log().and_then(|log| {
        std::fs::write(&path, log).with_context(|| format!("writing {}", path.display()))
    });
    if let Err(e) = result {
        eprintln!("bpf-runner: saving the kernel log: {e:#}");
    }
}
