//! The VM benchmark's results file. `bpf-runner --bench` writes `bench.json`
//! into the guest's results directory; `make vmbench` keeps it as
//! `out/<arch>/bench.json`, stamped with the date and the command, which the
//! guest does not know, so that `make results` can cite it.

use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

/// The file's name, in the guest's directory and in `out/<arch>/`.
pub const FILE: &str = "bench.json";

/// One program's median (the runner's `bench::ProgramTime`).
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct ProgramTime {
    pub name: String,
    pub ns_per_run: f64,
    pub lock_unlock_ns: Option<f64>,
}

/// What the runner measured (its `bench::Bench`; the fixture
/// `tools/runner/tests/fixtures/bench.json` pins the format on both sides).
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Measured {
    pub kernel: String,
    pub accel: String,
    pub clocksource: String,
    pub cpus: usize,
    pub repeat: u32,
    pub rounds: usize,
    pub programs: Vec<ProgramTime>,
    pub ratio_res_over_spin: Option<f64>,
    pub contended_repeat: u32,
    pub contended_rounds: usize,
    pub contended: Vec<ProgramTime>,
    pub emulated: bool,
    /// The in-kernel benchmark; absent from files of runs without it.
    #[serde(default)]
    pub in_kernel: Option<InKernel>,
}

/// One figure per lock in ps per lock+unlock pair (the runner's
/// `bench::kernel::LockPair`).
#[derive(Clone, Copy, Debug, Deserialize, Serialize)]
pub struct LockPair {
    /// The Rust lock, through bpf_res_spin_lock().
    pub res: u64,
    /// raw_spinlock_t.
    pub raw: u64,
}

impl LockPair {
    /// Rust lock over raw_spinlock_t; `None` if raw measured 0 ps.
    pub fn ratio(&self) -> Option<f64> {
        (self.raw > 0).then(|| self.res as f64 / self.raw as f64)
    }
}

/// The in-kernel benchmark module's figures (the runner's
/// `bench::kernel::KernelBench`): loops in the kernel, no system call per
/// operation.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct InKernel {
    pub cpus: u32,
    pub iters: u32,
    pub rounds: u32,
    pub contended_iters: u32,
    pub uncontended_ps: LockPair,
    /// Every CPU on one lock: wall time over all pairs.
    pub contended_ps: LockPair,
    pub res_failures: u64,
    /// raw_spin_lock() carries lockdep or spinlock debugging checks.
    pub raw_lock_debug: bool,
}

/// `out/<arch>/bench.json`: the runner's figures plus their provenance.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct VmBench {
    pub date: String,
    pub command: String,
    #[serde(flatten)]
    pub measured: Measured,
}

/// Reads the runner's `from` and writes it, stamped, to `to`. A run that
/// exited 0 without the file is an error: the benchmark said it measured.
pub fn save(from: &Path, to: &Path) -> Result<()> {
    stamp(
        from,
        to,
        crate::provenance::now_utc(),
        crate::provenance::command_line(),
    )
}

fn stamp(from: &Path, to: &Path, date: String, command: String) -> Result<()> {
    let text = std::fs::read_to_string(from)
        .with_context(|| format!("the runner wrote no {}", from.display()))?;
    let measured: Measured =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", from.display()))?;
    let bench = VmBench {
        date,
        command,
        measured,
    };
    std::fs::write(to, serde_json::to_string_pretty(&bench)? + "\n")
        .with_context(|| format!("writing {}", to.display()))?;
    println!("benchmark results: {}", to.display());
    Ok(())
}

/// The runner's own test writes this file from its `Bench`; reading it here
/// proves the two sides agree on the format.
#[cfg(test)]
pub const RUNNER_FIXTURE: &str = include_str!("../../runner/tests/fixtures/bench.json");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_runners_file_is_stamped_and_read_back() {
        let dir = std::env::temp_dir().join(format!("xtask-vmbench-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (from, to) = (dir.join("guest.json"), dir.join(FILE));
        assert!(stamp(&from, &to, "d".into(), "c".into())
            .unwrap_err()
            .to_string()
            .contains("wrote no"));
        std::fs::write(&from, RUNNER_FIXTURE).unwrap();
        stamp(
            &from,
            &to,
            "2026-11-28T05:42:10Z".into(),
            "xtask vmbench --arch x86_64".into(),
        )
        .unwrap();
        let back: VmBench = serde_json::from_str(&std::fs::read_to_string(&to).unwrap()).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(back.date, "2026-11-28T05:42:10Z");
        assert_eq!(back.command, "xtask vmbench --arch x86_64");
        assert_eq!(back.measured.ratio_res_over_spin, Some(2.0));
        assert_eq!(back.measured.programs.len(), 4);
        assert_eq!(back.measured.programs[0].lock_unlock_ns, None);
        assert_eq!(back.measured.contended[1].ns_per_run, 1500.0);
        assert!(back.measured.emulated);
        let k = back.measured.in_kernel.unwrap();
        assert_eq!((k.cpus, k.rounds, k.contended_iters), (2, 5, 20_000));
        assert_eq!(k.uncontended_ps.ratio(), Some(0.75));
        assert_eq!(k.contended_ps.ratio(), Some(1.5));
        assert!(k.raw_lock_debug);
    }

    /// Files of runs before the in-kernel benchmark existed still load.
    #[test]
    fn in_kernel_is_optional() {
        let mut v: serde_json::Value = serde_json::from_str(RUNNER_FIXTURE).unwrap();
        v.as_object_mut().unwrap().remove("in_kernel");
        let m: Measured = serde_json::from_value(v).unwrap();
        assert!(m.in_kernel.is_none());
    }
}
