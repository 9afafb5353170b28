//! `make unit-test`: the host tests of every crate of the workspace. The
//! tests that compile BPF objects or read the kernel's selftests need a 6.12
//! tree; they get the pipeline's own (the source stage, as `make vmtest`
//! prepares it) through `RQSPIN_KSRC`, so a fresh clone needs no tree that
//! only some machine has. Each crate runs even when an earlier one fails,
//! and the summary names the failed ones.

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
    println!(
        "unit-test: {} crate(s) passed, {} failed{}",
        crates.len() - failed.len(),
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
