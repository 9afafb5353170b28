//! Puts our series on top of the base tree: every file in `patches/` with
//! `git am`, then the module (`rust/` + `Kconfig`) as a commit that adds it
//! under `kernel/bpf/rqspinlock_rs/`. What is built and tested is therefore
//! exactly what `git format-patch base..series` mails.
//!
//! Re-applying rewrites files; to keep rebuilds incremental, files whose
//! contents did not change get their old modification times back.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{bail, Context, Result};
use xshell::{cmd, Shell};

use crate::key::{self, Key};
use crate::paths::Paths;
use crate::stage::Stage;

/// Where the module lives in the kernel tree.
pub const MODULE_DIR: &str = "kernel/bpf/rqspinlock_rs";
/// The pristine tree (a tag; the branch `series` carries our commits).
pub const BASE: &str = "refs/tags/base";
/// The commit message of the module's commit.
const MODULE_MSG: &str = "rust/series-commit.txt";
/// What bindgen reads for the `kernel` crate's `bindings`: the module's C
/// half is declared there, so the Rust half calls it through prototypes
/// generated from the C header instead of hand-written ones that can drift.
const BINDINGS_HELPER: &str = "rust/bindings/bindings_helper.h";

/// The patch files, sorted.
pub fn patch_files(paths: &Paths) -> Result<Vec<PathBuf>> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(paths.repo.join("patches"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "patch"))
        .collect();
    out.sort();
    Ok(out)
}

/// Module sources: what is copied into the tree and hashed into the key.
fn is_module_source(p: &Path) -> bool {
    let name = p.file_name().unwrap_or_default().to_string_lossy();
    name == "Kbuild"
        || [".rs", ".c", ".h"].iter().any(|e| name.ends_with(e)) && !name.ends_with(".mod.c")
}

/// The key of everything the series consists of.
pub fn key(paths: &Paths, skip_patches: bool) -> Result<String> {
    let mut k = Key::new("series");
    if skip_patches {
        k.str("no-patches");
    } else {
        for p in patch_files(paths)? {
            k.file(&p)?;
        }
    }
    k.tree(&paths.repo.join("rust"), &is_module_source)?;
    k.file(&paths.repo.join("Kconfig"))?;
    k.file(&paths.repo.join(MODULE_MSG))?;
    Ok(k.hex())
}

/// Applies the series to `src` unless it is already there. With
/// `skip_patches` only the module is added (to show what the stock verifier
/// does with our programs).
pub fn apply(sh: &Shell, paths: &Paths, src: &Path, skip_patches: bool) -> Result<String> {
    let stage = Stage::start("series");
    let key = key(paths, skip_patches)?;
    // In a worktree .git is a file; keep the stamp next to the tree instead.
    let stamp = src.with_extension("series-key");
    if key::read_stamp(&stamp).as_deref() == Some(key.as_str()) {
        stage.done(format!("unchanged (key {key})"));
        return Ok(key);
    }
    let _dir = sh.push_dir(src);
    let old_head = cmd!(sh, "git rev-parse HEAD").quiet().read()?;
    let touched = changed_files(sh, BASE, &old_head)?;
    let mtimes: HashMap<String, SystemTime> = touched
        .iter()
        .filter_map(|f| {
            Some((
                f.clone(),
                std::fs::metadata(src.join(f)).ok()?.modified().ok()?,
            ))
        })
        .collect();

    let _ = cmd!(sh, "git am --abort")
        .quiet()
        .ignore_stderr()
        .ignore_status()
        .run();
    // Branch names are shared between worktrees: one branch per flavour.
    let branch = if skip_patches {
        "series-nopatches"
    } else {
        "series"
    };
    cmd!(sh, "git checkout -q -f -B {branch} {BASE}").run()?;
    let ident = [
        "-c",
        "user.name=rqspin-bpf developers",
        "-c",
        "user.email=dev@rqspin-bpf.invalid",
    ];
    let mut applied = 0;
    if !skip_patches {
        for patch in patch_files(paths)? {
            let name = patch
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .to_string();
            let out = cmd!(sh, "git {ident...} am -q --3way {patch}")
                .quiet()
                .ignore_status()
                .output()?;
            if !out.status.success() {
                let _ = cmd!(sh, "git am --abort")
                    .quiet()
                    .ignore_stderr()
                    .ignore_status()
                    .run();
                bail!(
                    "patch {name} does not apply to {}:\n{}{}",
                    src.display(),
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            applied += 1;
        }
    }
    install_module(sh, paths, src)?;
    let msg = paths.repo.join(MODULE_MSG);
    cmd!(
        sh,
        "git add -f -A {MODULE_DIR} kernel/bpf/Kconfig kernel/bpf/Makefile {BINDINGS_HELPER}"
    )
    .run()?;
    cmd!(sh, "git {ident...} commit -q -F {msg}").run()?;

    // Files that ended up with the same contents as before get their old
    // mtime back, so make does not rebuild what did not change.
    let new_head = cmd!(sh, "git rev-parse HEAD").quiet().read()?;
    let really_changed = changed_files(sh, &old_head, &new_head)?;
    let mut kept = 0;
    for (file, mtime) in &mtimes {
        if !really_changed.contains(file) {
            if let Ok(f) = std::fs::File::options().write(true).open(src.join(file)) {
                if f.set_modified(*mtime).is_ok() {
                    kept += 1;
                }
            }
        }
    }
    key::write_stamp(&stamp, &key)?;
    stage.done(format!(
        "{applied} patch(es) + module applied, {} file(s) changed, {kept} kept their mtime (key {key})",
        really_changed.len()
    ));
    Ok(key)
}

fn changed_files(sh: &Shell, from: &str, to: &str) -> Result<Vec<String>> {
    let out = cmd!(sh, "git diff --name-only {from} {to}")
        .quiet()
        .read()?;
    Ok(out.lines().map(str::to_string).collect())
}

/// Copies the module into `MODULE_DIR` and hooks it into kbuild and into
/// the `kernel` crate's bindings.
fn install_module(sh: &Shell, paths: &Paths, src: &Path) -> Result<()> {
    let from = paths.repo.join("rust");
    let to = src.join(MODULE_DIR);
    let _ = std::fs::remove_dir_all(&to);
    for file in key::walk(&from)? {
        if !is_module_source(&file) {
            continue;
        }
        let rel = file.strip_prefix(&from)?;
        let dest = to.join(rel);
        std::fs::create_dir_all(dest.parent().unwrap())?;
        std::fs::copy(&file, &dest).with_context(|| format!("copying {}", file.display()))?;
    }
    std::fs::copy(paths.repo.join("Kconfig"), to.join("Kconfig"))?;
    append_once(
        &src.join("kernel/bpf/Kconfig"),
        &format!("source \"{MODULE_DIR}/Kconfig\""),
        Some("endmenu"),
    )?;
    append_once(
        &src.join("kernel/bpf/Makefile"),
        "obj-$(CONFIG_BPF_RQSPINLOCK_RS) += rqspinlock_rs/",
        None,
    )?;
    append_once(
        &src.join(BINDINGS_HELPER),
        &format!("#include \"../../{MODULE_DIR}/rqspinlock_glue.h\""),
        Some("/* `bindgen` gets confused"),
    )?;
    let _ = sh;
    Ok(())
}

/// Adds `line` to `file` unless present: before the last line that starts
/// with `before` (followed by a blank line), or at the end.
fn append_once(file: &Path, line: &str, before: Option<&str>) -> Result<()> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    if text.lines().any(|l| l == line) {
        return Ok(());
    }
    let mut lines: Vec<&str> = text.lines().collect();
    match before.and_then(|b| lines.iter().rposition(|l| l.starts_with(b))) {
        Some(at) => lines.splice(at..at, [line, ""]).for_each(drop),
        None => lines.push(line),
    }
    std::fs::write(file, lines.join("\n") + "\n")?;
    Ok(())
}
