//! Where the guest finds the runner, the BPF objects and the modules, and
//! where it writes its results.
//!
//! A guest of the host's architecture boots on the host's own root, so it
//! uses everything where it was built and writes into the results directory
//! at its host path. A foreign guest has a root of its own
//! ([`crate::rootfs`]) and sees only the results directory, mounted at
//! [`GUEST_MOUNT`]; the pieces are copied into it before the boot.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::arch::Arch;
use crate::paths::Paths;
use crate::rootfs::{self, GUEST_MOUNT};
use crate::selftests::Selftests;

/// The guest root for `arch`: `None` means the host's own root.
pub fn root_for(paths: &Paths, arch: Arch) -> Result<Option<PathBuf>> {
    if arch == Arch::host() {
        Ok(None)
    } else {
        rootfs::ensure(paths, arch).map(Some)
    }
}

/// The selftests and the results directory as paths in the guest. `results`
/// is the host directory that the VM shares read-write.
pub fn stage(
    arch: Arch,
    tests: &Selftests,
    results: &Path,
    root: Option<&Path>,
) -> Result<(Selftests, PathBuf)> {
    let Some(root) = root else {
        return Ok((
            Selftests {
                objs: tests.objs.clone(),
                modules: tests.modules.clone(),
                bench_module: tests.bench_module.clone(),
                runner: tests.runner.clone(),
            },
            results.to_path_buf(),
        ));
    };
    let guest = Path::new(GUEST_MOUNT);
    let bin = results.join("bin");
    let progs = results.join("progs");
    let mods = results.join("modules");
    for d in [&bin, &progs, &mods] {
        let _ = fs::remove_dir_all(d);
        fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
    }
    copy(&tests.runner, &bin.join("bpf-runner"))?;
    smoke_test(arch, &tests.runner, root)?;
    for entry in
        fs::read_dir(&tests.objs).with_context(|| format!("listing {}", tests.objs.display()))?
    {
        let p = entry?.path();
        if p.extension().is_some_and(|e| e == "o") {
            copy(&p, &progs.join(p.file_name().unwrap()))?;
        }
    }
    let to_guest = |m: &Path| -> Result<PathBuf> {
        let name = m.file_name().context("module path without a file name")?;
        copy(m, &mods.join(name))?;
        Ok(guest.join("modules").join(name))
    };
    let modules = tests
        .modules
        .iter()
        .map(|m| to_guest(m))
        .collect::<Result<Vec<_>>>()?;
    // Copied for every run, loaded only by vmbench (`--kernel-bench`).
    let bench_module = tests.bench_module.as_deref().map(to_guest).transpose()?;
    Ok((
        Selftests {
            objs: guest.join("progs"),
            modules,
            bench_module,
            runner: guest.join("bin/bpf-runner"),
        },
        guest.to_path_buf(),
    ))
}

fn copy(from: &Path, to: &Path) -> Result<()> {
    fs::copy(from, to)
        .map(|_| ())
        .with_context(|| format!("copying {} to {}", from.display(), to.display()))
}

/// Starts the cross-built runner under qemu-user with the guest root's
/// libraries: a missing library or a wrong-architecture binary shows up here
/// in a second instead of after a minutes-long emulated boot. BPF needs the
/// guest kernel, so only `--version` runs.
fn smoke_test(arch: Arch, runner: &Path, root: &Path) -> Result<()> {
    let qemu = match arch {
        Arch::X86_64 => "qemu-x86_64-static",
        Arch::Arm64 => "qemu-aarch64-static",
    };
    let out = match Command::new(qemu)
        .arg("-L")
        .arg(root)
        .arg(runner)
        .arg("--version")
        .output()
    {
        Ok(out) => out,
        Err(e) => {
            println!("    note: {qemu} not runnable ({e}); the runner is first started in the VM");
            return Ok(());
        }
    };
    if !out.status.success() {
        bail!(
            "{} does not start on the guest root {} under {qemu}: {}{}",
            runner.display(),
            root.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    println!(
        "    {} starts on the guest root (qemu-user): {}",
        runner.display(),
        String::from_utf8_lossy(&out.stdout).trim()
    );
    Ok(())
}
