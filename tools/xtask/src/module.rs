//! `xtask module` (plain `make`): builds our module out of tree against a
//! configured and built kernel, the way kernel developers build modules. The
//! sources are the ones the pipeline puts in-tree under kernel/bpf/.

use std::path::Path;

use anyhow::{bail, Context, Result};

use crate::paths::Paths;
use crate::stage::{run_logged, Stage};
use crate::{kernel, source, toolchain};

pub fn build(paths: &Paths, kdir: &Path) -> Result<()> {
    let stage = Stage::start("module (out of tree)");
    check_kdir(kdir)?;
    let rust = paths.repo.join("rust");
    let log = paths.cache.join("module-build.log");
    let _ = std::fs::remove_file(&log);
    let mut make = toolchain::kbuild(paths, kdir);
    make.arg(format!("M={}", rust.display()))
        // Out of tree there is no Kconfig symbol; say "module" here.
        .arg("CONFIG_BPF_RQSPINLOCK_RS=m")
        .arg(toolchain::jobs())
        .arg("modules");
    run_logged(make, &log, "building the module")?;
    kernel::check_btf_ids(&log)?;
    let ko = rust.join("bpf_rqspinlock.ko");
    if !ko.exists() {
        bail!("{} was not produced", ko.display());
    }
    stage.done(format!("{}", ko.display()));
    Ok(())
}

/// A clear one-line error for every way `KDIR` can be unusable.
pub fn check_kdir(kdir: &Path) -> Result<()> {
    if !kdir.is_dir() {
        bail!("KDIR={} does not exist", kdir.display());
    }
    source::require_6_12(kdir)?;
    let config = kdir.join(".config");
    let config = std::fs::read_to_string(&config).with_context(|| {
        format!(
            "KDIR={} is not configured (no .config); configure and build it first",
            kdir.display()
        )
    })?;
    for (opt, why) in [
        ("CONFIG_RUST=y", "Rust support"),
        ("CONFIG_DEBUG_INFO_BTF=y", "BTF (kfuncs need it)"),
        (
            "CONFIG_DEBUG_INFO_BTF_MODULES=y",
            "module BTF (kfuncs need it)",
        ),
        ("CONFIG_MODULES=y", "loadable modules"),
        ("CONFIG_BPF_SYSCALL=y", "the bpf() syscall"),
    ] {
        if !config.lines().any(|l| l == opt) {
            bail!(
                "KDIR={} was configured without {opt} ({why})",
                kdir.display()
            );
        }
    }
    for (file, why) in [
        ("vmlinux", "module BTF is generated against vmlinux"),
        (
            "rust/libmacros.so",
            "Rust modules need the built `kernel` crate",
        ),
        ("Module.symvers", "modpost needs it"),
    ] {
        if !kdir.join(file).exists() {
            bail!(
                "KDIR={} is not built: {file} is missing ({why}); run make there first",
                kdir.display()
            );
        }
    }
    Ok(())
}
