//! `bpf-runner --bench --kernel-bench PATH.ko`: the in-kernel benchmark.
//!
//! The module (`selftests/testmod/bpf_rqspin_bench.c`) runs its loops in its
//! init: the Rust lock through bpf_res_spin_lock() against raw_spinlock_t,
//! uncontended on one CPU and with a thread on every online CPU, side by
//! side in one run. No system call sits between two lock operations, which
//! the BPF benchmark cannot avoid. The module reports in the kernel log,
//! one line `bpf_rqspin_bench: {JSON}` ([`KernelBench`]), read back here
//! with klogctl; the runner then unloads the module. Under TCG only the
//! ratios mean anything.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{bail, Context, Result};
pub use runner_shared::bench::{KernelBench, LockPair};

use crate::{dmesg, modules};

/// The module's name, which is also the prefix of its log lines (its
/// `pr_fmt` is `KBUILD_MODNAME ": "`).
pub const MODULE: &str = "bpf_rqspin_bench";

/// The last `bpf_rqspin_bench: {...}` line of `log` (the kernel log as
/// klogctl gives it, `<level>[time] ` before each message), parsed. `None`
/// when there is no such line or the last one does not parse: an older line
/// must not stand in for a run that went wrong.
pub fn parse_log(log: &str) -> Option<KernelBench> {
    let prefix = format!("{MODULE}: {{");
    let line = log.lines().rev().find(|l| l.contains(&prefix))?;
    let start = line.find(&prefix)? + prefix.len() - 1;
    serde_json::from_str(line[start..].trim_end()).ok()
}

/// The module's own lines in `log`, for an error message: they say why its
/// init failed.
fn module_lines(log: &str) -> String {
    let prefix = format!("{MODULE}: ");
    log.lines()
        .filter(|l| l.contains(&prefix))
        .map(|l| format!("\n    {l}"))
        .collect()
}

/// Loads the module at `path`, which measures in its init, reads its result
/// from the kernel log and unloads it. The product module must be loaded
/// already (the benchmark module links against its lock functions).
pub fn run(path: &Path) -> Result<KernelBench> {
    let name = modules::module_name(path)?;
    if name != MODULE {
        bail!(
            "{}: the in-kernel benchmark is module {MODULE}, not {name}",
            path.display()
        );
    }
    let loaded = modules::run_module_init(path);
    let log = dmesg::read_kernel_log().context("reading the in-kernel benchmark's result")?;
    if let Err(e) = loaded {
        return Err(e).with_context(|| {
            format!(
                "the in-kernel benchmark failed; its kernel log lines:{}",
                module_lines(&log)
            )
        });
    }
    // Unload before judging the line: a module left behind would keep its
    // result from being measured again.
    let unloaded = modules::unload_module(MODULE);
    let bench = parse_log(&log).with_context(|| {
        format!(
            "{MODULE} loaded, but the kernel log has no result line of it that parses; \
             its lines:{}",
            module_lines(&log)
        )
    })?;
    unloaded?;
    Ok(bench)
}

/// The table `bpf-runner --bench` prints for the in-kernel benchmark.
pub fn render(b: &KernelBench) -> String {
    let ratio = |p: &LockPair| p.ratio().map_or_else(|| "-".into(), |r| format!("{r:.2}x"));
    let mut out = String::new();
    let _ = writeln!(
        out,
        "in-kernel ({MODULE}): ps per lock+unlock pair, median of {} rounds, {} CPUs",
        b.rounds, b.cpus
    );
    let _ = writeln!(
        out,
        "{:<34} {:>12} {:>16} {:>20}",
        "", "Rust lock", "raw_spinlock_t", "Rust / raw_spinlock"
    );
    for (what, p) in [
        (
            format!("uncontended ({} pairs)", b.iters),
            &b.uncontended_ps,
        ),
        (
            format!("all CPUs ({} x {} pairs)", b.cpus, b.contended_iters),
            &b.contended_ps,
        ),
    ] {
        let _ = writeln!(
            out,
            "{what:<34} {:>12} {:>16} {:>20}",
            p.res,
            p.raw,
            ratio(p)
        );
    }
    if b.raw_lock_debug {
        let _ = writeln!(
            out,
            "note: raw_spin_lock() carries lockdep/spinlock debugging here; the baseline is its qspinlock without them (arch_spin_lock)"
        );
    }
    out
}

/// The figures of the tests' log line, also in `tests/fixtures/bench.json`.
#[cfg(test)]
pub(crate) fn sample() -> KernelBench {
    KernelBench {
        cpus: 2,
        iters: 200_000,
        rounds: 5,
        contended_iters: 20_000,
        uncontended_ps: LockPair {
            res: 9_000,
            raw: 12_000,
        },
        contended_ps: LockPair {
            res: 60_000,
            raw: 40_000,
        },
        res_failures: 0,
        raw_lock_debug: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINE: &str = r#"bpf_rqspin_bench: {"cpus":2,"iters":200000,"rounds":5,"contended_iters":20000,"uncontended_ps":{"res":9000,"raw":12000},"contended_ps":{"res":60000,"raw":40000},"res_failures":0,"raw_lock_debug":true}"#;

    #[test]
    fn the_last_result_line_of_the_log_is_parsed() {
        let older = LINE.replace("\"res\":9000", "\"res\":1");
        let log = format!(
            "<6>[    1.000000] Linux version 6.12\n\
             <6>[   10.000000] {older}\n\
             <6>[   12.500000] {LINE}\n\
             <6>[   12.600000] other: line\n"
        );
        assert_eq!(parse_log(&log), Some(sample()));
        // As `dmesg` prints it, and without a trailing newline.
        assert_eq!(parse_log(&format!("[   12.5] {LINE}")), Some(sample()));
    }

    #[test]
    fn no_line_or_a_broken_last_line_is_none() {
        assert_eq!(parse_log(""), None);
        assert_eq!(parse_log("<6>[ 1.0] bpf_rqspin_bench: nothing\n"), None);
        // An older good line does not stand in for a broken last one.
        let log = format!("{LINE}\n{}\n", &LINE[..LINE.len() - 5]);
        assert_eq!(parse_log(&log), None);
        // A field the runner does not know is a disagreement, not noise.
        let extra = LINE.replace("\"cpus\":2", "\"cpus\":2,\"new\":1");
        assert_eq!(parse_log(&extra), None);
        // The module's error lines are not results.
        let log =
            format!("{LINE}\n<3>[ 2.0] bpf_rqspin_bench: bpf_res_spin_lock() failed 3 times\n");
        assert_eq!(parse_log(&log), Some(sample()));
    }

    #[test]
    fn ratios_and_table() {
        let b = sample();
        assert_eq!(b.uncontended_ps.ratio(), Some(0.75));
        assert_eq!(b.contended_ps.ratio(), Some(1.5));
        assert_eq!(LockPair { res: 1, raw: 0 }.ratio(), None);
        let text = render(&b);
        assert!(text.contains("0.75x") && text.contains("1.50x"), "{text}");
        assert!(text.contains("uncontended (200000 pairs)"), "{text}");
        assert!(text.contains("all CPUs (2 x 20000 pairs)"), "{text}");
        assert!(text.contains("lockdep"), "{text}");
        assert!(text.is_ascii());
    }

    #[test]
    fn module_lines_are_collected_for_errors() {
        let log = "<6>[1] a: b\n<3>[2] bpf_rqspin_bench: counter 3\n";
        assert_eq!(
            module_lines(log),
            "\n    <3>[2] bpf_rqspin_bench: counter 3"
        );
    }
}
