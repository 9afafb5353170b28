//! `xtask kernel`: source tree, series, config and build, each step skipped
//! when its key says nothing changed.

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use xshell::Shell;

use crate::arch::Arch;
use crate::key::{self, Key};
use crate::paths::Paths;
use crate::stage::{run_logged, Stage};
use crate::{kconfig, series, source, toolchain};

/// A configured and built kernel.
pub struct Built {
    pub arch: Arch,
    pub src: PathBuf,
    pub obj: PathBuf,
    pub key: String,
    /// How the config builds our module, read once from `obj/.config`.
    pub product: ModuleBuild,
}

impl Built {
    pub fn image(&self) -> PathBuf {
        self.obj.join(self.arch.image())
    }

    /// Our product module, built in-tree, or `None` when the config builds
    /// it into vmlinux (`CONFIG_BPF_RQSPINLOCK_RS=y`): its kfuncs are then
    /// vmlinux kfuncs and there is nothing to load.
    pub fn module(&self) -> Option<PathBuf> {
        match self.product {
            ModuleBuild::Loadable => {
                Some(self.obj.join(series::MODULE_DIR).join("bpf_rqspinlock.ko"))
            }
            ModuleBuild::BuiltIn | ModuleBuild::Absent => None,
        }
    }
}

/// How the config of a build directory builds our module.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModuleBuild {
    Loadable,
    BuiltIn,
    Absent,
}

/// Reads `CONFIG_BPF_RQSPINLOCK_RS` from `obj/.config`.
fn module_build(obj: &Path) -> ModuleBuild {
    let config = std::fs::read_to_string(obj.join(".config")).unwrap_or_default();
    config
        .lines()
        .find_map(|l| match l {
            "CONFIG_BPF_RQSPINLOCK_RS=m" => Some(ModuleBuild::Loadable),
            "CONFIG_BPF_RQSPINLOCK_RS=y" => Some(ModuleBuild::BuiltIn),
            _ => None,
        })
        .unwrap_or(ModuleBuild::Absent)
}

pub struct Options<'a> {
    pub arch: Arch,
    pub kdir: Option<&'a Path>,
    /// Build without the verifier patches (the module and the selftests are
    /// still added).
    pub skip_patches: bool,
}

pub fn build(sh: &Shell, paths: &Paths, opts: &Options) -> Result<Built> {
    let mut src = source::prepare(sh, paths, opts.kdir)?;
    if opts.skip_patches {
        // A separate worktree, so the stock-verifier build never touches the
        // main tree (or the mtimes its incremental build relies on).
        src = source::worktree(sh, &src, "nopatches")?;
    }
    let series_key = series::apply(sh, paths, &src, opts.skip_patches)?;
    let obj = obj_dir(paths, opts.arch, &src, opts.skip_patches)?;
    let config_key = kconfig::configure(paths, opts.arch, &src, &obj, &series_key)?;

    let stage = Stage::start(format!("kernel build ({})", opts.arch.name()));
    let key = Key::new("build")
        .str(&series_key)
        .str(&config_key)
        .str(&toolchain::versions(sh))
        .hex();
    let built = Built {
        arch: opts.arch,
        src: src.clone(),
        obj: obj.clone(),
        key: key.clone(),
        product: module_build(&obj),
    };
    let stamp = obj.join(".rqspin-build-key");
    if key::read_stamp(&stamp).as_deref() == Some(key.as_str()) && built.image().exists() {
        stage.done(format!("up to date (key {key})"));
        return Ok(built);
    }
    // One log per build directory (main, stock-verifier, mutant).
    let log = obj.with_extension("build.log");
    let _ = std::fs::remove_file(&log);
    let make = toolchain::kbuild_target(paths, &src, &obj, opts.arch, "all");
    println!(
        "    building into {} (log {})",
        obj.display(),
        log.display()
    );
    run_logged(make, &log, "kernel build")?;
    check_btf_ids(&log)?;
    match (built.product, built.module()) {
        (ModuleBuild::Absent, _) => bail!(
            "kernel built without our module: CONFIG_BPF_RQSPINLOCK_RS is neither m nor y in {}",
            built.obj.join(".config").display()
        ),
        (_, Some(ko)) if !ko.exists() => {
            bail!("kernel built but {} is missing", ko.display())
        }
        _ => {}
    }
    key::write_stamp(&stamp, &key)?;
    stage.done(format!("built {} (key {key})", built.image().display()));
    Ok(built)
}

/// One `O=` directory per arch and source tree flavour. It remembers which
/// source tree it belongs to and is wiped when that changes, because kbuild
/// cannot switch the source tree of an output directory.
fn obj_dir(paths: &Paths, arch: Arch, src: &Path, skip_patches: bool) -> Result<PathBuf> {
    let mut obj = paths.kernel_obj(arch);
    if skip_patches {
        obj.set_file_name(format!("{}-nopatches", arch.name()));
    }
    let owner = obj.join(".rqspin-src");
    let want = src.display().to_string();
    if obj.exists() {
        if let Some(have) = key::read_stamp(&owner) {
            if have != want {
                println!(
                    "    {} was built from {have}; starting it afresh for {want}",
                    obj.display()
                );
                std::fs::remove_dir_all(&obj)?;
            }
        }
    }
    std::fs::create_dir_all(&obj)?;
    key::write_stamp(&owner, &want)?;
    Ok(obj)
}

/// Our kfuncs must all resolve: one whose BTF id did not registers
/// "successfully" but is unusable. Unresolved ids elsewhere (vmlinux has some
/// for options this small config leaves out, e.g. `bpf_crypto_ctx`) are only
/// reported. Compiler warnings in our own files fail too.
pub fn check_btf_ids(log: &Path) -> Result<()> {
    let text = std::fs::read_to_string(log)?;
    let ours = |l: &&str| l.contains("rqspin");
    let unresolved: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("resolve_btfids: unresolved symbol"))
        .collect();
    for l in unresolved.iter().filter(|l| !ours(l)) {
        println!("    note (not ours): {}", l.trim());
    }
    let bad: Vec<&str> = unresolved.iter().copied().filter(ours).collect();
    if !bad.is_empty() {
        bail!(
            "unresolved BTF ids (these kfuncs would be unusable):\n    {}",
            bad.join("\n    ")
        );
    }
    let warnings: Vec<&str> = text
        .lines()
        .filter(|l| (l.contains("warning:") || l.contains("error:")) && ours(l))
        .collect();
    if !warnings.is_empty() {
        bail!(
            "compiler warnings in our module:\n    {}",
            warnings.join("\n    ")
        );
    }
    Ok(())
}
