//! The VM benchmark's results file. `bpf-runner --bench` writes `bench.json`
//! into the guest's results directory; `make vmbench` keeps it as
//! `out/<arch>/bench.json`, stamped with the date and the command, which the
//! guest does not know, so that `make results` can cite it.

use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

/// The file's name, in the guest's directory and in `out/<arch>/`.
pub const FILE: &str = "bench.json";

/// What the runner measured, and the in-kernel part of it (the format
/// both sides share, crate `runner-shared`).
pub use runner_shared::bench::{Bench as Measured, KernelBench as InKernel, LockPair};

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
