//! `bpf-runner --bench`: what a lock + unlock pair costs a BPF program,
//! bpf_res_spin_lock() (the resilient lock of the bpf_rqspinlock module,
//! mainline's API) against bpf_spin_lock(), and the irqsave variant. A
//! benchmark, not a test: it prints numbers and fails only if it cannot
//! measure.
//!
//! The programs (`selftests/progs/bench_lock.c`) share one shape: look up,
//! lock, increment, unlock. `bench_empty` is that shape without the lock; its
//! time is subtracted from the others, which leaves the lock and unlock
//! alone. Each lock kind has a map of its own (a value may hold only one
//! lock), both one-element arrays of 16-byte values. Every program runs `REPEAT` times in the kernel per
//! BPF_PROG_TEST_RUN; the rounds are interleaved across programs so that
//! drift (host load, frequency) hits all of them alike, and the median round
//! is reported.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{ensure, Context, Result};

use crate::runtime::support::{load_programs, test_run, test_run_parallel};
use crate::runtime::Ctx;

const OBJECT: &str = "bench_lock.bpf.o";
const BASELINE: &str = "bench_empty";
const SPIN: &str = "bench_spin_lock";
const RES: &str = "bench_res_spin_lock";
const RES_IRQ: &str = "bench_res_spin_lock_irqsave";
const PROGRAMS: [&str; 4] = [BASELINE, SPIN, RES, RES_IRQ];
/// Programs also measured with two CPUs on the same lock.
const CONTENDED: [&str; 2] = [SPIN, RES];

const REPEAT: u32 = 100_000;
const ROUNDS: usize = 7;
const CONTENDED_ROUNDS: usize = 5;

/// Where the guest says which clock it runs on; kvm-clock means KVM.
const CLOCKSOURCE: &str = "/sys/devices/system/clocksource/clocksource0/current_clocksource";

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The accelerator label: what the host said, else a guess from the clock
/// source (only KVM gives the guest kvm-clock).
fn accel_label(accel: Option<&str>, clocksource: &str) -> String {
    match accel {
        Some(a) => a.to_string(),
        None if clocksource == "kvm-clock" => "kvm (guessed from the clock source)".into(),
        None => "TCG? (not kvm-clock; pass --accel to say)".into(),
    }
}

/// Runs the benchmark and returns the report to print.
pub fn run(objs: &Path, accel: Option<&str>) -> Result<String> {
    let mut ctx = Ctx::new(objs, &[]);
    let obj = load_programs(&mut ctx, OBJECT, &PROGRAMS)
        .with_context(|| format!("loading the benchmark programs of {OBJECT}"))?;
    let fds = PROGRAMS
        .iter()
        .map(|p| obj.fd(p))
        .collect::<Result<Vec<_>>>()?;

    // Warm-up: caches, the JIT image, the CPU's clock.
    for &fd in &fds {
        let out = test_run(fd, REPEAT / 10)?;
        ensure!(
            out.retval == 0,
            "a benchmark program returned {}",
            out.retval
        );
    }
    let mut per_prog: Vec<Vec<f64>> = vec![Vec::new(); PROGRAMS.len()];
    for _ in 0..ROUNDS {
        for (i, &fd) in fds.iter().enumerate() {
            let out = test_run(fd, REPEAT)?;
            ensure!(
                out.retval == 0,
                "{} returned {} (2: the lock failed)",
                PROGRAMS[i],
                out.retval
            );
            per_prog[i].push(f64::from(out.duration_ns));
        }
    }
    let ns: Vec<f64> = per_prog.into_iter().map(median).collect();
    let base = ns[0];

    let mut contended = Vec::new();
    for name in CONTENDED {
        let fd = obj.fd(name)?;
        let mut rounds = Vec::new();
        for _ in 0..CONTENDED_ROUNDS {
            let runs = test_run_parallel(fd, 2, REPEAT / 10)?;
            ensure!(
                runs.iter().all(|r| r.retval == 0),
                "{name} failed under contention"
            );
            let mean =
                runs.iter().map(|r| f64::from(r.duration_ns)).sum::<f64>() / runs.len() as f64;
            rounds.push(mean);
        }
        contended.push((name, median(rounds)));
    }

    let clocksource = std::fs::read_to_string(CLOCKSOURCE)
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into());
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut out = String::new();
    let _ = writeln!(
        out,
        "bpf-runner bench: lock + unlock from BPF (BPF_PROG_TEST_RUN, repeat {REPEAT}, median of {ROUNDS} rounds)"
    );
    let _ = writeln!(
        out,
        "accel: {}   clocksource: {clocksource}   cpus: {cpus}   kernel: {}",
        accel_label(accel, &clocksource),
        crate::report::kernel_release()
    );
    let _ = writeln!(
        out,
        "{:<28} {:>10} {:>18}",
        "program", "ns/run", "lock+unlock ns/op"
    );
    for (name, &t) in PROGRAMS.iter().zip(&ns) {
        let op = if *name == BASELINE {
            "(baseline)".to_string()
        } else {
            format!("{:.1}", (t - base).max(0.0))
        };
        let _ = writeln!(out, "{name:<28} {t:>10.1} {op:>18}");
    }
    let spin = (ns[1] - base).max(0.0);
    let res = (ns[2] - base).max(0.0);
    if spin > 0.0 {
        let _ = writeln!(
            out,
            "ratio bpf_res_spin_lock / bpf_spin_lock: {:.2}x",
            res / spin
        );
    } else {
        let _ = writeln!(
            out,
            "ratio: bpf_spin_lock measured at or below the baseline"
        );
    }
    let _ = writeln!(out, "contended, 2 CPUs on one lock (mean ns/run of the two threads, median of {CONTENDED_ROUNDS} rounds of {}):", REPEAT / 10);
    for (name, t) in &contended {
        let _ = writeln!(out, "{name:<28} {t:>10.1}");
    }
    if !accel.is_some_and(|a| a.eq_ignore_ascii_case("kvm")) && clocksource != "kvm-clock" {
        let _ = writeln!(
            out,
            "note: under TCG every instruction is emulated; compare ratios, not absolute times"
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 3.0, 2.0]), 3.0);
    }

    #[test]
    fn accel_label_prefers_the_host() {
        assert_eq!(accel_label(Some("tcg"), "kvm-clock"), "tcg");
        assert!(accel_label(None, "kvm-clock").starts_with("kvm"));
        assert!(accel_label(None, "tsc").starts_with("TCG?"));
    }
}
