//! Puts our series on top of the base tree, as the commits that
//! `make series` mails:
//!
//! 1. the verifier and BTF patches: the files of `patches/` that touch
//!    nothing the generated commits own (they are edited as patches);
//! 2. the module: `rust/`, `Kconfig` and the kbuild hooks under
//!    `kernel/bpf/rqspinlock_rs/`, with its MAINTAINERS entry
//!    (message: `rust/series-commit.txt`);
//! 3. the selftests in the kernel's layout (`crate::intree`), which are the
//!    files the runner builds its verifier tests from
//!    (message: `selftests/series-commit.txt`).
//!
//! Every commit has one author and date ([`Author`]); a source patch's own
//! `From:`, `Date:` and `Signed-off-by:` lines are not kept, because the
//! series is signed off by whoever writes it out.
//!
//! Re-applying rewrites files; to keep rebuilds incremental, files whose
//! contents did not change get their old modification times back.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{bail, Context, Result};
use xshell::{cmd, Shell};

use crate::author::Author;
use crate::key::{self, Key};
use crate::paths::Paths;
use crate::stage::Stage;

/// Where the module lives in the kernel tree.
pub const MODULE_DIR: &str = "kernel/bpf/rqspinlock_rs";
/// The pristine tree (a tag; the branch `series` carries our commits).
pub const BASE: &str = "refs/tags/base";
/// The commit message of the module's commit.
const MODULE_MSG: &str = "rust/series-commit.txt";
/// The commit message of the selftests' commit.
const SELFTESTS_MSG: &str = "selftests/series-commit.txt";
/// The MAINTAINERS entry the module's commit adds (`@AUTHOR@` is the author).
const MAINTAINERS_ENTRY: &str = "tools/series/maintainers.txt";
/// What bindgen reads for the `kernel` crate's `bindings`: the module's C
/// half is declared there, so the Rust half calls it through prototypes
/// generated from the C header instead of hand-written ones that can drift.
const BINDINGS_HELPER: &str = "rust/bindings/bindings_helper.h";
/// The cover letter in `patches/`, which is not a patch to apply.
pub const COVER_LETTER: &str = "0000-cover-letter.patch";
/// Paths the generated commits own. A file of `patches/` that touches one
/// of them is written by `make series`, not a source.
const GENERATED: &[&str] = &[MODULE_DIR, crate::intree::SELFTESTS, "MAINTAINERS"];

/// The files of a series directory, sorted (cover letter first).
pub fn files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("listing {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "patch"))
        .collect();
    out.sort();
    Ok(out)
}

/// Every patch file of `patches/`, sorted, without the cover letter.
pub fn patch_files(paths: &Paths) -> Result<Vec<PathBuf>> {
    let mut out = files(&paths.repo.join("patches"))?;
    out.retain(|p| !p.ends_with(COVER_LETTER));
    Ok(out)
}

/// The files a patch changes (its `diff --git a/... b/...` lines).
fn touched(text: &str) -> Vec<&str> {
    text.lines()
        .filter_map(|l| l.strip_prefix("diff --git a/"))
        .filter_map(|l| l.split_once(" b/").map(|(a, _)| a))
        .collect()
}

/// Whether a patch is one that `make series` writes from other sources.
fn is_generated(text: &str) -> bool {
    touched(text)
        .iter()
        .any(|f| GENERATED.iter().any(|g| f.starts_with(g)))
}

/// The patches of `patches/` that are sources: the verifier and BTF ones.
pub fn source_patches(paths: &Paths) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in patch_files(paths)? {
        let text =
            std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))?;
        if !is_generated(&text) {
            out.push(p);
        }
    }
    Ok(out)
}

/// Module sources: what is copied into the tree and hashed into the key.
fn is_module_source(p: &Path) -> bool {
    let name = p.file_name().unwrap_or_default().to_string_lossy();
    name == "Kbuild"
        || [".rs", ".c", ".h"].iter().any(|e| name.ends_with(e)) && !name.ends_with(".mod.c")
}

/// The key of everything the series consists of.
pub fn key(paths: &Paths, skip_patches: bool, author: &Author) -> Result<String> {
    let mut k = Key::new("series-v2");
    // The author is in the tree (MAINTAINERS); the date is only in the
    // commits, and a new date alone rebuilds nothing.
    k.str(&author.ident());
    if skip_patches {
        k.str("no-patches");
    } else {
        for p in source_patches(paths)? {
            k.file(&p)?;
        }
    }
    k.tree(&paths.repo.join("rust"), &is_module_source)?;
    k.tree(&paths.repo.join("selftests"), &|_| true)?;
    for f in ["Kconfig", MODULE_MSG, SELFTESTS_MSG, MAINTAINERS_ENTRY] {
        k.file(&paths.repo.join(f))?;
    }
    Ok(k.hex())
}

/// Who the build trees' commits are by: the author of the committed series,
/// else the user's git identity. Build trees are never mailed; this only
/// keeps their commits identical to the ones `make series` writes.
pub fn build_author(sh: &Shell, paths: &Paths) -> Result<Author> {
    if let Some(first) = patch_files(paths)?.first() {
        if let Some(a) = Author::from_patch(first)? {
            return Ok(a);
        }
    }
    Author::from_git_config(sh).context("patches/ names no author to commit the series as")
}

/// Applies the series to `src` unless it is already there. With
/// `skip_patches` the verifier patches are left out (to show what the stock
/// verifier does with our programs); the module and the selftests are
/// still added.
pub fn apply(sh: &Shell, paths: &Paths, src: &Path, skip_patches: bool) -> Result<String> {
    let stage = Stage::start("series");
    let author = build_author(sh, paths)?;
    let key = key(paths, skip_patches, &author)?;
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

    // Branch names are shared between worktrees: one branch per flavour.
    let branch = if skip_patches {
        "series-nopatches"
    } else {
        "series"
    };
    let commits = commit_series(sh, paths, src, branch, &author, skip_patches)?;

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
        "{commits} commit(s) applied, {} file(s) changed, {kept} kept their mtime (key {key})",
        really_changed.len()
    ));
    Ok(key)
}

/// Makes `branch` in `src` the base plus the series' commits, by `author`.
/// Returns the number of commits.
pub fn commit_series(
    sh: &Shell,
    paths: &Paths,
    src: &Path,
    branch: &str,
    author: &Author,
    skip_patches: bool,
) -> Result<usize> {
    let _dir = sh.push_dir(src);
    let _ = cmd!(sh, "git am --abort")
        .quiet()
        .ignore_stderr()
        .ignore_status()
        .run();
    cmd!(sh, "git checkout -q -f -B {branch} {BASE}")
        .quiet()
        .run()?;
    let mut commits = 0;
    if !skip_patches {
        for patch in source_patches(paths)? {
            commit_patch(sh, src, &patch, author)?;
            commits += 1;
        }
    }
    install_module(paths, src, author)?;
    cmd!(
        sh,
        "git add -f -A {MODULE_DIR} kernel/bpf/Kconfig kernel/bpf/Makefile {BINDINGS_HELPER} MAINTAINERS"
    )
    .quiet()
    .run()?;
    commit(sh, &message_file(paths, MODULE_MSG)?, author)?;
    let added = install_selftests(sh, paths, src)?;
    let entry = message_file(paths, MAINTAINERS_ENTRY)?;
    let title = entry.lines().next().unwrap_or_default();
    let file = src.join("MAINTAINERS");
    let text =
        std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
    std::fs::write(&file, crate::maintainers::add_files(&text, title, &added)?)?;
    cmd!(sh, "git add -f -A {GENERATED...}").quiet().run()?;
    commit(sh, &message_file(paths, SELFTESTS_MSG)?, author)?;
    Ok(commits + 2)
}

fn message_file(paths: &Paths, rel: &str) -> Result<String> {
    let path = paths.repo.join(rel);
    std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))
}

/// Commits the index with `message` as `author`.
fn commit(sh: &Shell, message: &str, author: &Author) -> Result<()> {
    let mut c = cmd!(sh, "git commit -q --allow-empty-message --no-verify -F -").stdin(message);
    for (k, v) in author.git_env() {
        c = c.env(k, v);
    }
    c.quiet().run().context("committing")?;
    Ok(())
}

/// Applies one source patch and commits it with its message, minus the
/// identity of whoever wrote the file out last (`Signed-off-by:`).
fn commit_patch(sh: &Shell, src: &Path, patch: &Path, author: &Author) -> Result<()> {
    let name = patch.file_name().unwrap_or_default().to_string_lossy();
    let tmp = src.join(".git").join("rqspin-mailinfo");
    let tmp = if tmp.parent().is_some_and(|p| p.is_dir()) {
        tmp
    } else {
        // A worktree: .git is a file.
        src.with_extension("mailinfo")
    };
    std::fs::create_dir_all(&tmp)?;
    let (msg, diff) = (tmp.join("msg"), tmp.join("diff"));
    let mbox = std::fs::read_to_string(patch)?;
    let info = cmd!(sh, "git mailinfo {msg} {diff}")
        .stdin(&mbox)
        .quiet()
        .read()
        .with_context(|| format!("reading {name} with git mailinfo"))?;
    let subject = info
        .lines()
        .find_map(|l| l.strip_prefix("Subject: "))
        .with_context(|| format!("{name} has no Subject"))?;
    let body = std::fs::read_to_string(&msg)?;
    let out = cmd!(sh, "git apply --index {diff}")
        .quiet()
        .ignore_status()
        .output()?;
    if !out.status.success() {
        bail!(
            "patch {name} does not apply to {}:\n{}",
            src.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    commit(
        sh,
        &format!("{subject}\n\n{}", strip_signoffs(&body)),
        author,
    )
}

/// The message without `Signed-off-by:` trailers.
fn strip_signoffs(body: &str) -> String {
    let kept: Vec<&str> = body
        .lines()
        .filter(|l| !l.starts_with("Signed-off-by:"))
        .collect();
    kept.join("\n").trim_end().to_string() + "\n"
}

fn changed_files(sh: &Shell, from: &str, to: &str) -> Result<Vec<String>> {
    let out = cmd!(sh, "git diff --name-only {from} {to}")
        .quiet()
        .read()?;
    Ok(out.lines().map(str::to_string).collect())
}

/// Copies the module into `MODULE_DIR`, hooks it into kbuild and into the
/// `kernel` crate's bindings, and adds its MAINTAINERS entry.
fn install_module(paths: &Paths, src: &Path, author: &Author) -> Result<()> {
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
    let entry = message_file(paths, MAINTAINERS_ENTRY)?.replace("@AUTHOR@", &author.ident());
    let file = src.join("MAINTAINERS");
    let text =
        std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
    std::fs::write(&file, crate::maintainers::add_entry(&text, &entry)?)?;
    Ok(())
}

/// Writes the selftests' files into the tree; returns the ones that are new
/// (the base tree does not have them).
fn install_selftests(sh: &Shell, paths: &Paths, src: &Path) -> Result<Vec<String>> {
    let base = |path: &str| -> Result<Option<String>> {
        let spec = format!("{BASE}:{path}");
        let out = cmd!(sh, "git show {spec}")
            .quiet()
            .ignore_status()
            .ignore_stderr()
            .output()?;
        Ok(out
            .status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned()))
    };
    let mut added = Vec::new();
    for f in crate::intree::selftest_files(&paths.repo, &base)? {
        if base(&f.path)?.is_none() {
            added.push(f.path.clone());
        }
        let dest = src.join(&f.path);
        std::fs::create_dir_all(dest.parent().unwrap())?;
        std::fs::write(&dest, &f.contents)
            .with_context(|| format!("writing {}", dest.display()))?;
    }
    Ok(added)
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

#[cfg(test)]
mod tests {
    use super::{is_generated, strip_signoffs};

    /// A patch is a source unless it touches what make series writes.
    #[test]
    fn generated_patches_are_known_by_their_files() {
        let verifier = "diff --git a/kernel/bpf/verifier.c b/kernel/bpf/verifier.c\n";
        let module = "diff --git a/MAINTAINERS b/MAINTAINERS\n\
                      diff --git a/kernel/bpf/rqspinlock_rs/Kbuild b/kernel/bpf/rqspinlock_rs/Kbuild\n";
        let tests = "diff --git a/tools/testing/selftests/bpf/config b/tools/testing/selftests/bpf/config\n";
        assert!(!is_generated(verifier));
        assert!(is_generated(module));
        assert!(is_generated(tests));
    }

    /// Whoever writes the series signs it off; an old sign-off goes.
    #[test]
    fn signoffs_are_dropped() {
        let body = "Why.\n\nLink: https://x/\nSigned-off-by: A <a@x>\n";
        assert_eq!(strip_signoffs(body), "Why.\n\nLink: https://x/\n");
    }
}
