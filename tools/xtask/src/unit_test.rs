//! `make unit-test`: the host tests of every crate of the workspace. The
//! tests that compile BPF objects or read the kernel's selftests need a 6.12
//! tree; they get the pipeline's own (the source stage, as `make vmtest`
//! prepares it) through `RQSPIN_KSRC`, so a fresh clone needs no tree that
//! only some machine has. Each crate runs even when an earlier one fails,
//! and the summary names the failed ones.
//!
//! The lock algorithm's std tests also run as aarch64 code under qemu-user,
//! twice: built for ARMv8.0 without LSE, so every atomic read-modify-write
//! is a load-exclusive/store-exclusive loop (what an arm64 kernel without
//! LSE runs), and with LSE atomics. On x86_64 each of them is one locked
//! instruction; only these runs exercise the other code shapes.

use std::process::Command;

use anyhow::{Context, Result};
use serde::Deserialize;
use xshell::Shell;

use crate::paths::Paths;
use crate::source;
use crate::stage::Stage;

#[derive(Deserialize)]
struct Metadata {
    packages: Vec<Package>,
}

#[derive(Deserialize)]
struct Package {
    name: String,
}

/// Runs `cargo test -p <crate>` for each workspace member; returns the exit
/// code (0 only if every crate passed).
pub fn run(sh: &Shell, paths: &Paths) -> Result<i32> {
    let tree = source::prepare(sh, paths, None)?;
    let manifest = paths.repo.join("tools/Cargo.toml");
    let crates = members(&manifest)?;
    let mut failed = Vec::new();
    for name in &crates {
        let stage = Stage::start(format!("unit tests: {name}"));
        let status = Command::new(cargo())
            .args(["test", "-q", "--manifest-path"])
            .arg(&manifest)
            .args(["-p", name])
            .env("RQSPIN_KSRC", &tree)
            .status()
            .with_context(|| format!("running cargo test -p {name}"))?;
        if status.success() {
            stage.done("passed");
        } else {
            stage.done(format!("FAILED ({status})"));
            failed.push(name.as_str());
        }
    }
    let mut runs = crates.len();
    for arm in AARCH64_RUNS {
        runs += 1;
        let stage = Stage::start(format!("unit tests: rqspinlock-host, {}", arm.name));
        if run_aarch64(paths, &manifest, arm)? {
            stage.done("passed");
        } else {
            stage.done("FAILED");
            failed.push(arm.name);
        }
    }
    println!(
        "unit-test: {} run(s) passed, {} failed{}",
        runs - failed.len(),
        failed.len(),
        if failed.is_empty() {
            String::new()
        } else {
            format!(": {}", failed.join(", "))
        }
    );
    Ok(if failed.is_empty() { 0 } else { 1 })
}

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

/// The workspace's crates, from `cargo metadata` (no crate list to keep in
/// sync by hand).
fn members(manifest: &std::path::Path) -> Result<Vec<String>> {
    let out = Command::new(cargo())
        .args(["metadata", "-q", "--no-deps", "--format-version", "1"])
        .arg("--manifest-path")
        .arg(manifest)
        .output()
        .context("running cargo metadata")?;
    anyhow::ensure!(
        out.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: Metadata = serde_json::from_slice(&out.stdout).context("parsing cargo metadata")?;
    let mut names: Vec<String> = meta.packages.into_iter().map(|p| p.name).collect();
    names.sort();
    Ok(names)
}

/// One aarch64 run of the lock algorithm's std tests.
struct Aarch64Run {
    name: &'static str,
    /// The CPU qemu-user emulates.
    cpu: &'static str,
    /// `-C target-feature` for the build.
    features: &'static str,
}

const AARCH64_RUNS: &[Aarch64Run] = &[
    Aarch64Run {
        name: "aarch64 LL/SC (ARMv8.0, no LSE)",
        cpu: "cortex-a57",
        features: "-outline-atomics,-lse",
    },
    Aarch64Run {
        name: "aarch64 LSE atomics",
        cpu: "max",
        features: "+lse",
    },
];

/// Builds the rqspinlock-host tests for aarch64 (std from rust-src, as the
/// cross-built runner) and runs them under qemu-user; `Ok(false)` if a test
/// failed.
fn run_aarch64(paths: &Paths, manifest: &std::path::Path, arm: &Aarch64Run) -> Result<bool> {
    const TARGET: &str = "aarch64-unknown-linux-gnu";
    const ENV: &str = "AARCH64_UNKNOWN_LINUX_GNU";
    let target_dir = paths
        .cache
        .join("build")
        .join(format!("host-tests-{TARGET}-{}", arm.cpu));
    let status = Command::new(cargo())
        .args(["test", "-q", "-Zbuild-std", "--target", TARGET])
        .arg("--manifest-path")
        .arg(manifest)
        .args(["-p", "rqspinlock-host"])
        .arg("--target-dir")
        .arg(&target_dir)
        // -Zbuild-std on a stable toolchain, as in `cross`.
        .env("RUSTC_BOOTSTRAP", "1")
        .env(
            format!("CARGO_TARGET_{ENV}_LINKER"),
            "aarch64-linux-gnu-gcc",
        )
        .env(
            format!("CARGO_TARGET_{ENV}_RUNNER"),
            format!(
                "qemu-aarch64-static -cpu {} -L /usr/aarch64-linux-gnu",
                arm.cpu
            ),
        )
        .env(
            format!("CARGO_TARGET_{ENV}_RUSTFLAGS"),
            format!("-C target-feature={}", arm.features),
        )
        .status()
        .with_context(|| {
            format!(
                "running the aarch64 tests ({}): needs aarch64-linux-gnu-gcc and \
                 qemu-aarch64-static (make deps)",
                arm.name
            )
        })?;
    Ok(status.success())
}
