//! `xtask selftests`: the BPF objects (clang-19, with BTF so the expectation
//! tags survive), the test-only kernel module, and the in-VM runner.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::arch::Arch;
use crate::intree;
use crate::kernel::{self, Built};
use crate::paths::Paths;
use crate::stage::{run_logged, Stage};
use crate::toolchain;

/// What a VM run needs besides the kernel.
pub struct Selftests {
    /// Directory with the `*.bpf.o` files.
    pub objs: PathBuf,
    /// Modules to load in order: the product module (unless it is built
    /// in), then the test module.
    pub modules: Vec<PathBuf>,
    /// The in-kernel lock benchmark (`selftests/testmod/bpf_rqspin_bench.c`),
    /// for `make vmbench` only: its init runs the benchmark, so it is never
    /// among [`Self::modules`], which every VM run loads. `None` for a kernel
    /// without the series' lock API (`NOPATCHES=1`), where the module builds
    /// but has nothing to measure.
    pub bench_module: Option<PathBuf>,
    pub runner: PathBuf,
}

pub fn build(paths: &Paths, kernel: &Built) -> Result<Selftests> {
    let stage = Stage::start("selftests");
    let dir = paths.selftest_build(kernel.arch);
    let objs = dir.join("progs");
    let _ = std::fs::remove_dir_all(&objs);
    std::fs::create_dir_all(&objs)?;
    let log = dir.join("build.log");
    let _ = std::fs::remove_file(&log);
    let n = build_bpf_objects(paths, kernel, &objs, &log)?
        + crate::upstream::build_objects(paths, kernel, &objs, &log)?;
    let (testmod, bench) = build_testmod(paths, kernel, &dir, &log)?;
    let runner = build_runner(paths, kernel.arch, &log)?;
    stage.done(format!(
        "{n} BPF object(s), test and benchmark modules, runner"
    ));
    Ok(Selftests {
        objs,
        modules: kernel.module().into_iter().chain([testmod]).collect(),
        bench_module: has_res_lock_api(&kernel.src).then_some(bench),
        runner,
    })
}

/// Whether the kernel source has the series' lock API (the verifier patches
/// define `KF_RES_SPIN_LOCK_API` in `include/linux/btf.h`). Without it the
/// benchmark module compiles to a stub whose init fails.
fn has_res_lock_api(src: &Path) -> bool {
    std::fs::read_to_string(src.join("include/linux/btf.h"))
        .is_ok_and(|h| h.contains("#define KF_RES_SPIN_LOCK_API"))
}

/// Our objects: those in [`intree::INTREE_OBJECTS`] from the kernel tree,
/// where the series' selftests patch put them (see [`intree`]), the others
/// from `selftests/progs`. Each becomes `<stem>.bpf.o` either way.
fn build_bpf_objects(paths: &Paths, kernel: &Built, objs: &Path, log: &Path) -> Result<usize> {
    let progs = paths.repo.join("selftests/progs");
    let mut sources: Vec<PathBuf> = std::fs::read_dir(&progs)
        .with_context(|| format!("listing {}", progs.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "c"))
        .collect();
    sources.sort();
    if sources.is_empty() {
        bail!("no BPF programs in {}", progs.display());
    }
    let mut n = 0;
    for c in &sources {
        let stem = c.file_stem().unwrap().to_string_lossy();
        if intree::INTREE_OBJECTS.contains(&stem.as_ref()) {
            continue;
        }
        compile_bpf(
            paths,
            kernel,
            &[],
            c,
            &objs.join(format!("{stem}.bpf.o")),
            log,
        )?;
        n += 1;
    }
    Ok(n + intree::build_objects(paths, kernel, objs, log)?)
}

/// Builds `selftests/testmod` out of tree (`M=`) against the built kernel,
/// from a copy so the repository stays clean. Returns the test module and
/// the benchmark module; the latter links against the product module's
/// exported lock functions, which modpost finds in the kernel build's
/// `Module.symvers` (or vmlinux, when the product is built in).
fn build_testmod(
    paths: &Paths,
    kernel: &Built,
    dir: &Path,
    log: &Path,
) -> Result<(PathBuf, PathBuf)> {
    let from = paths.repo.join("selftests/testmod");
    let to = dir.join("testmod");
    std::fs::create_dir_all(&to)?;
    for entry in std::fs::read_dir(&from).with_context(|| format!("listing {}", from.display()))? {
        let p = entry?.path();
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        if name == "Kbuild" || name.ends_with(".c") || name.ends_with(".h") {
            let dest = to.join(&name);
            // Only copy what changed, so kbuild does not rebuild needlessly.
            if std::fs::read(&dest).ok() != std::fs::read(&p).ok() {
                std::fs::copy(&p, &dest)?;
            }
        }
    }
    // An external module's BTF is split BTF on top of vmlinux's, but kbuild
    // does not relink it when vmlinux changes (the .ko depends on vmlinux
    // only in KBUILD_BUILTIN builds). A stale .ko then fails to load
    // (-EINVAL from kfunc registration): drop it when the kernel changed.
    let stamp = to.join(".rqspin-kernel-key");
    if crate::key::read_stamp(&stamp).as_deref() != Some(kernel.key.as_str()) {
        for entry in std::fs::read_dir(&to)? {
            let p = entry?.path();
            if p.extension().is_some_and(|e| e == "ko") {
                std::fs::remove_file(&p)?;
            }
        }
    }
    let mut make = toolchain::kbuild(paths, &kernel.src);
    make.arg(format!("O={}", kernel.obj.display()))
        .arg(format!("ARCH={}", kernel.arch.kbuild()))
        .arg(format!("M={}", to.display()))
        .arg("modules");
    let mlog = dir.join("testmod.log");
    let _ = std::fs::remove_file(&mlog);
    run_logged(make, &mlog, "building the test modules")?;
    kernel::check_btf_ids(&mlog)?;
    let _ = std::fs::copy(&mlog, log);
    let kos = ["bpf_rqspin_testmod.ko", "bpf_rqspin_bench.ko"].map(|k| to.join(k));
    for ko in &kos {
        if !ko.exists() {
            bail!("{} was not built", ko.display());
        }
    }
    crate::key::write_stamp(&stamp, &kernel.key)?;
    let [testmod, bench] = kos;
    Ok((testmod, bench))
}

fn build_runner(paths: &Paths, arch: Arch, log: &Path) -> Result<PathBuf> {
    if arch != Arch::host() {
        return crate::cross::build_runner(paths, arch, log);
    }
    let manifest = paths.repo.join("tools/Cargo.toml");
    let mut cargo = Command::new("cargo");
    cargo
        .arg("build")
        .arg("--release")
        .arg("-q")
        .arg("-p")
        .arg("bpf-runner")
        .arg("--manifest-path")
        .arg(&manifest);
    run_logged(cargo, log, "building bpf-runner")?;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| paths.repo.join("tools/target"));
    Ok(target.join("release/bpf-runner"))
}

/// Compiles one BPF program with clang-19: BTF on (`-g`, the expectation
/// tags live there), warnings are errors, and the UAPI headers of the tree
/// under test rather than the host's. `first` goes before our own include
/// directory (the upstream tests use their tree's `bpf_misc.h`).
pub fn compile_bpf(
    paths: &Paths,
    kernel: &Built,
    first: &[PathBuf],
    src: &Path,
    out: &Path,
    log: &Path,
) -> Result<()> {
    let mut includes: Vec<PathBuf> = first.to_vec();
    includes.push(paths.repo.join("selftests/include"));
    includes.push(kernel.src.join("tools/include/uapi"));
    let clang = bpf_clang(kernel.arch, &includes, src, out);
    run_logged(clang, log, &format!("compiling {}", src.display()))
}

/// clang-19 compiling one BPF program for `arch` with the pipeline's
/// flags, `includes` searched first, then the arch's multiarch headers.
pub fn bpf_clang(arch: Arch, includes: &[PathBuf], src: &Path, out: &Path) -> Command {
    let mut clang = Command::new("clang-19");
    clang
        .args(["-g", "-O2", "--target=bpf", "-mcpu=v3", "-Wall", "-Werror"])
        .arg(arch.bpf_target_define());
    for dir in includes {
        clang.arg(format!("-I{}", dir.display()));
    }
    clang
        .arg(format!("-I{}", arch.multiarch_include()))
        .arg("-c")
        .arg(src)
        .arg("-o")
        .arg(out);
    clang
}
