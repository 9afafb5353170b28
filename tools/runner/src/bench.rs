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
//! is reported. The results are printed and, with `--out`, written to
//! `bench.json` there ([`JSON_FILE`]).
//!
//! With `--kernel-bench`, the in-kernel benchmark module runs afterwards
//! ([`kernel`]): the Rust lock against raw_spinlock_t without a system call
//! per operation; its figures become [`Bench::in_kernel`].

pub mod kernel;

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{ensure, Context, Result};
pub use runner_shared::bench::{Bench, ProgramTime};

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

/// File name of the results in `--out`; the host copies it to
/// `out/<arch>/bench.json` for `make results`.
pub const JSON_FILE: &str = "bench.json";

/// Runs the benchmark.
pub fn run(objs: &Path, accel: Option<&str>) -> Result<Bench> {
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
        contended.push(ProgramTime {
            name: name.to_string(),
            ns_per_run: median(rounds),
            lock_unlock_ns: None,
        });
    }

    let clocksource = std::fs::read_to_string(CLOCKSOURCE)
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into());
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let emulated =
        !accel.is_some_and(|a| a.eq_ignore_ascii_case("kvm")) && clocksource != "kvm-clock";
    Ok(Bench {
        kernel: crate::report::kernel_release(),
        accel: accel_label(accel, &clocksource),
        clocksource,
        cpus,
        repeat: REPEAT,
        rounds: ROUNDS,
        ratio_res_over_spin: ratio(&ns),
        programs: program_times(&ns),
        contended_repeat: REPEAT / 10,
        contended_rounds: CONTENDED_ROUNDS,
        contended,
        emulated,
        in_kernel: None,
    })
}

/// [`PROGRAMS`] with their medians `ns`, the baseline subtracted from all
/// but itself.
fn program_times(ns: &[f64]) -> Vec<ProgramTime> {
    let base = ns[0];
    PROGRAMS
        .iter()
        .zip(ns)
        .map(|(name, &t)| ProgramTime {
            name: name.to_string(),
            ns_per_run: t,
            lock_unlock_ns: (*name != BASELINE).then(|| (t - base).max(0.0)),
        })
        .collect()
}

/// bpf_res_spin_lock's cost over bpf_spin_lock's, baseline subtracted.
fn ratio(ns: &[f64]) -> Option<f64> {
    let spin = (ns[1] - ns[0]).max(0.0);
    let res = (ns[2] - ns[0]).max(0.0);
    (spin > 0.0).then(|| res / spin)
}

/// The table `bpf-runner --bench` prints.
pub fn render(this: &Bench) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "bpf-runner bench: lock + unlock from BPF (BPF_PROG_TEST_RUN, repeat {}, median of {} rounds)",
        this.repeat, this.rounds
    );
    let _ = writeln!(
        out,
        "accel: {}   clocksource: {}   cpus: {}   kernel: {}",
        this.accel, this.clocksource, this.cpus, this.kernel
    );
    let _ = writeln!(
        out,
        "{:<28} {:>10} {:>18}",
        "program", "ns/run", "lock+unlock ns/op"
    );
    for p in &this.programs {
        let op = p
            .lock_unlock_ns
            .map_or_else(|| "(baseline)".to_string(), |t| format!("{t:.1}"));
        let _ = writeln!(out, "{:<28} {:>10.1} {op:>18}", p.name, p.ns_per_run);
    }
    match this.ratio_res_over_spin {
        Some(r) => {
            let _ = writeln!(out, "ratio bpf_res_spin_lock / bpf_spin_lock: {r:.2}x");
        }
        None => {
            let _ = writeln!(
                out,
                "ratio: bpf_spin_lock measured at or below the baseline"
            );
        }
    }
    let _ = writeln!(
        out,
        "contended, 2 CPUs on one lock (mean ns/run of the two threads, median of {} rounds of {}):",
        this.contended_rounds, this.contended_repeat
    );
    for p in &this.contended {
        let _ = writeln!(out, "{:<28} {:>10.1}", p.name, p.ns_per_run);
    }
    if let Some(k) = &this.in_kernel {
        out.push_str(&kernel::render(k));
    }
    if this.emulated {
        let _ = writeln!(
            out,
            "note: under TCG every instruction is emulated; compare ratios, not absolute times"
        );
    }
    out
}

/// Writes the results as JSON to `path` (normally `--out`/[`JSON_FILE`]).
pub fn write_json(b: &Bench, path: &Path) -> Result<()> {
    let text = serde_json::to_string_pretty(b).context("serializing the benchmark")?;
    std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 3.0, 2.0]), 3.0);
    }

    /// The figures of `tests/fixtures/bench.json`, which xtask's tests read
    /// too: the file is the contract between the two.
    fn sample() -> Bench {
        let ns = [100.0, 400.0, 700.0, 900.0];
        Bench {
            kernel: "6.12.117+".into(),
            accel: "tcg".into(),
            clocksource: "tsc".into(),
            cpus: 2,
            repeat: REPEAT,
            rounds: ROUNDS,
            programs: program_times(&ns),
            ratio_res_over_spin: ratio(&ns),
            contended_repeat: REPEAT / 10,
            contended_rounds: CONTENDED_ROUNDS,
            contended: vec![
                ProgramTime {
                    name: SPIN.into(),
                    ns_per_run: 1000.0,
                    lock_unlock_ns: None,
                },
                ProgramTime {
                    name: RES.into(),
                    ns_per_run: 1500.0,
                    lock_unlock_ns: None,
                },
            ],
            emulated: true,
            in_kernel: Some(kernel::sample()),
        }
    }

    #[test]
    fn baseline_is_subtracted_and_ratio_taken() {
        let b = sample();
        assert_eq!(b.programs[0].lock_unlock_ns, None);
        assert_eq!(b.programs[1].lock_unlock_ns, Some(300.0));
        assert_eq!(b.programs[2].lock_unlock_ns, Some(600.0));
        assert_eq!(b.ratio_res_over_spin, Some(2.0));
        assert_eq!(ratio(&[100.0, 90.0, 700.0, 900.0]), None);
        let text = render(&b);
        assert!(
            text.contains("ratio bpf_res_spin_lock / bpf_spin_lock: 2.00x"),
            "{text}"
        );
        assert!(text.contains("(baseline)"), "{text}");
        assert!(text.contains("note: under TCG"), "{text}");
        assert!(text.contains("in-kernel (bpf_rqspin_bench)"), "{text}");
        let without = Bench {
            in_kernel: None,
            ..b
        };
        assert!(!render(&without).contains("in-kernel"));
    }

    /// bench.json files from before `in_kernel` existed still parse.
    #[test]
    fn in_kernel_is_optional_in_the_json() {
        let mut v: serde_json::Value =
            serde_json::from_str(include_str!("../tests/fixtures/bench.json")).unwrap();
        v.as_object_mut().unwrap().remove("in_kernel");
        let b: Bench = serde_json::from_value(v).unwrap();
        assert_eq!(b.in_kernel, None);
    }

    #[test]
    fn json_is_written_and_matches_the_fixture() {
        let dir = std::env::temp_dir().join(format!("bpf-runner-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(JSON_FILE);
        write_json(&sample(), &path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        let back: Bench = serde_json::from_str(&text).unwrap();
        assert_eq!(back, sample());
        let fixture = include_str!("../tests/fixtures/bench.json");
        let fixture: serde_json::Value = serde_json::from_str(fixture).unwrap();
        let written: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            written, fixture,
            "the JSON changed: update tests/fixtures/bench.json and xtask's reader"
        );
    }

    #[test]
    fn accel_label_prefers_the_host() {
        assert_eq!(accel_label(Some("tcg"), "kvm-clock"), "tcg");
        assert!(accel_label(None, "kvm-clock").starts_with("kvm"));
        assert!(accel_label(None, "tsc").starts_with("TCG?"));
    }
}
