//! Bisectability: every prefix of the mailed series applies with `git am`
//! and builds, as a maintainer who bisects through it will need.
//!
//! The committed `patches/` files themselves are applied to the base with
//! `git am` (in the mail worktree), and each prefix is checked out in the
//! main x86_64 tree and built incrementally in the main build directory
//! with its configuration (module `=m`), from the longest
//! prefix to the shortest: each step rebuilds only what its patch changes,
//! and the objects of the full series, which the main build just made,
//! come back from ccache when the tree is restored at the end. Building in
//! a tree of its own would cost a whole cold kernel build first.
//!
//! A prefix whose kernel inputs (every file but `tools/`, `Documentation/`
//! and MAINTAINERS) were built before with the same configuration is not
//! built again: the verdict of a tree cannot change. The main build's own
//! tree counts as built, so the last prefixes (the module and the
//! selftests, which change no kernel input) cost nothing.
//!
//! While a prefix is checked out, the main tree is not the series: the
//! stamps that let the next `make vmtest` skip applying and building are
//! removed first and put back only after the series is restored and
//! rebuilt, so an interrupted run costs a rebuild, never a wrong kernel.
//! When every prefix was built before, the main tree is not touched.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use xshell::{cmd, Shell};

use crate::arch::Arch;
use crate::author::Author;
use crate::kernel::Built;
use crate::paths::Paths;
use crate::stage::run_logged;
use crate::toolchain;

/// The verdict on one prefix.
pub struct Prefix {
    /// `0003-bpf-...patch`: the last patch of the prefix.
    pub patch: String,
    /// `None` when it applied and built; otherwise why not.
    pub error: Option<String>,
    /// Seconds the build took; `None` when that tree was built before.
    pub seconds: Option<u64>,
}

/// Paths a kernel build does not read.
fn is_kernel_input(path: &str) -> bool {
    !(path.starts_with("tools/") || path.starts_with("Documentation/") || path == "MAINTAINERS")
}

/// A name for a commit's kernel inputs and the configuration.
fn input_key(sh: &Shell, commit: &str, config_sha: &str) -> Result<String> {
    let listing = cmd!(sh, "git ls-tree -r {commit}").quiet().read()?;
    let mut k = crate::key::Key::new("bisect");
    for line in listing.lines() {
        if line.split('\t').nth(1).is_some_and(is_kernel_input) {
            k.str(line);
        }
    }
    k.str(config_sha);
    Ok(k.hex())
}

/// Applies `patches` (format-patch files, cover letter excluded) to the
/// base of the main tree of `built` and builds every prefix.
pub fn run(
    sh: &Shell,
    paths: &Paths,
    built: &Built,
    am_tree: &Path,
    patches: &[PathBuf],
    author: &Author,
) -> Result<Vec<Prefix>> {
    let (src, obj) = (&built.src, &built.obj);
    let config = obj.join(".config");
    let config_text =
        std::fs::read(&config).with_context(|| format!("reading {}", config.display()))?;
    let config_sha = crate::key::file_sha256(&config)?;
    let stamps = obj.join(".rqspin-bisect");
    std::fs::create_dir_all(&stamps)?;
    let _d = sh.push_dir(src);
    let series = cmd!(sh, "git rev-parse HEAD").quiet().read()?;
    let built_key = stamps.join(input_key(sh, &series, &config_sha)?);
    std::fs::write(&built_key, "the main build")?;

    // The patches are applied in another worktree of the same repository,
    // so the main tree is only touched when a prefix must be built.
    let mut results = Vec::new();
    let commits = {
        let _am = sh.push_dir(am_tree);
        apply(sh, patches, author, &mut results)?
    };
    let series_stamp = src.with_extension("series-key");
    let build_stamp = obj.join(".rqspin-build-key");
    let saved: Vec<(PathBuf, Option<String>)> = [&series_stamp, &build_stamp]
        .iter()
        .map(|p| (p.to_path_buf(), std::fs::read_to_string(p).ok()))
        .collect();
    let mut touched = false;
    for (name, commit) in commits.iter().rev() {
        let stamp = stamps.join(input_key(sh, commit, &config_sha)?);
        if stamp.exists() {
            println!("    {name}: its kernel inputs were built before");
            results.push(Prefix {
                patch: name.clone(),
                error: None,
                seconds: None,
            });
            continue;
        }
        if !touched {
            // From here on the tree is not the series until restore()
            // succeeds: without the stamps, an interrupted run costs the
            // next one a rebuild, never a wrong kernel.
            for (p, _) in &saved {
                let _ = std::fs::remove_file(p);
            }
            touched = true;
        }
        cmd!(sh, "git checkout -q -f {commit}").quiet().run()?;
        std::fs::write(&config, &config_text)?;
        let t = Instant::now();
        let log = obj.with_extension(format!("bisect-{}.log", &name[..4]));
        let error = build(paths, src, obj, &log).err().map(|e| format!("{e:#}"));
        let seconds = t.elapsed().as_secs();
        println!(
            "    {name}: {} in {seconds} s (log {})",
            if error.is_none() { "built" } else { "FAILED" },
            log.display()
        );
        if error.is_none() {
            std::fs::write(&stamp, "")?;
        }
        results.push(Prefix {
            patch: name.clone(),
            error,
            seconds: Some(seconds),
        });
    }
    results.reverse();
    if touched {
        restore(sh, paths, src, obj, &series, &config_text, &saved)?;
    }
    Ok(results)
}

/// `git am`s the patches on a branch from the base; returns each patch's
/// name and commit. A patch that does not apply ends the list with its
/// verdict in `results`.
fn apply(
    sh: &Shell,
    patches: &[PathBuf],
    author: &Author,
    results: &mut Vec<Prefix>,
) -> Result<Vec<(String, String)>> {
    let _ = cmd!(sh, "git am --abort")
        .quiet()
        .ignore_stderr()
        .ignore_status()
        .run();
    cmd!(sh, "git checkout -q -f -B bisect refs/tags/base")
        .quiet()
        .run()?;
    let mut commits = Vec::new();
    for patch in patches {
        let name = patch.file_name().unwrap().to_string_lossy().into_owned();
        let mut am = cmd!(sh, "git am -q {patch}").quiet().ignore_status();
        for (k, v) in author.git_env() {
            am = am.env(k, v);
        }
        let out = am.output()?;
        if !out.status.success() {
            let _ = cmd!(sh, "git am --abort").quiet().ignore_status().run();
            results.push(Prefix {
                patch: name,
                error: Some(format!(
                    "does not apply with git am: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                )),
                seconds: None,
            });
            break;
        }
        commits.push((name, cmd!(sh, "git rev-parse HEAD").quiet().read()?));
    }
    Ok(commits)
}

/// Puts the series and its configuration back, rebuilds what the prefixes
/// changed, and only then the stamps.
fn restore(
    sh: &Shell,
    paths: &Paths,
    src: &Path,
    obj: &Path,
    series: &str,
    config: &[u8],
    saved: &[(PathBuf, Option<String>)],
) -> Result<()> {
    cmd!(sh, "git checkout -q -f -B series {series}")
        .quiet()
        .run()?;
    std::fs::write(obj.join(".config"), config)?;
    let t = Instant::now();
    let log = obj.with_extension("bisect-restore.log");
    build(paths, src, obj, &log).context("rebuilding the series after the bisect builds")?;
    println!(
        "    the series restored and rebuilt in {} s",
        t.elapsed().as_secs()
    );
    for (p, text) in saved {
        if let Some(text) = text {
            std::fs::write(p, text)?;
        }
    }
    Ok(())
}

/// `olddefconfig` (a prefix may lack a symbol the configuration sets; it
/// is dropped, as it would be for anyone building that commit), then the
/// same `make all` as the main build.
fn build(paths: &Paths, tree: &Path, obj: &Path, log: &Path) -> Result<()> {
    let _ = std::fs::remove_file(log);
    for target in ["olddefconfig", "all"] {
        let make = toolchain::kbuild_target(paths, tree, obj, Arch::X86_64, target);
        run_logged(make, log, &format!("make {target}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::is_kernel_input;

    /// The selftests and MAINTAINERS patches change no kernel input, so a
    /// prefix that ends with them builds the same kernel as the one before.
    #[test]
    fn kernel_inputs() {
        assert!(is_kernel_input("kernel/bpf/verifier.c"));
        assert!(is_kernel_input("include/linux/bpf.h"));
        assert!(!is_kernel_input("tools/testing/selftests/bpf/config"));
        assert!(!is_kernel_input("Documentation/bpf/kfuncs.rst"));
        assert!(!is_kernel_input("MAINTAINERS"));
    }
}
