//! The kernel source tree the pipeline patches and builds: Debian's
//! `linux-source-6.12` unpacked into the cache, or a copy of the user's
//! `KDIR`. Either way it becomes a git tree whose first commit is tagged
//! `base`, so the series can be re-applied with `git am` and mailed with
//! `git format-patch base..`.
//!
//! The user's `KDIR` itself is never written to.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use xshell::{cmd, Shell};

use crate::key::Key;
use crate::paths::Paths;
use crate::stage::Stage;

const DEBIAN_TARBALL: &str = "/usr/src/linux-source-6.12.tar.xz";

/// `VERSION.PATCHLEVEL.SUBLEVEL` read from a tree's top-level Makefile.
pub fn kernel_version(tree: &Path) -> Result<(u32, u32, u32)> {
    let makefile = tree.join("Makefile");
    let text = std::fs::read_to_string(&makefile).with_context(|| {
        format!(
            "{} is not a kernel tree: no readable Makefile",
            tree.display()
        )
    })?;
    let field = |name: &str| -> Option<u32> {
        text.lines().find_map(|l| {
            l.strip_prefix(name)?
                .trim_start()
                .strip_prefix('=')?
                .trim()
                .parse()
                .ok()
        })
    };
    match (field("VERSION"), field("PATCHLEVEL"), field("SUBLEVEL")) {
        (Some(v), Some(p), Some(s)) => Ok((v, p, s)),
        // An O= build directory: its Makefile includes the source tree's.
        _ if text.lines().any(|l| l.starts_with("include ")) => {
            let inc = text
                .lines()
                .find_map(|l| l.strip_prefix("include "))
                .unwrap_or("")
                .trim();
            let parent = Path::new(inc).parent().filter(|p| *p != tree);
            match parent {
                Some(p) => kernel_version(p),
                None => bail!("{} is not a kernel tree", tree.display()),
            }
        }
        _ => bail!(
            "{} is not a kernel tree: its Makefile has no VERSION/PATCHLEVEL/SUBLEVEL",
            tree.display()
        ),
    }
}

/// Fails unless `tree` is a 6.12.y kernel source tree.
pub fn require_6_12(tree: &Path) -> Result<(u32, u32, u32)> {
    let v = kernel_version(tree)?;
    if (v.0, v.1) != (6, 12) {
        bail!(
            "{} is Linux {}.{}.{}, but this series is for 6.12.y",
            tree.display(),
            v.0,
            v.1,
            v.2
        );
    }
    Ok(v)
}

/// Returns the git source tree in the cache, creating it if needed.
pub fn prepare(sh: &Shell, paths: &Paths, kdir: Option<&Path>) -> Result<PathBuf> {
    let stage = Stage::start("source");
    let (src, origin) = match kdir {
        Some(kdir) => (from_kdir(sh, paths, kdir)?, kdir.display().to_string()),
        None => (from_tarball(sh, paths)?, DEBIAN_TARBALL.to_string()),
    };
    let v = require_6_12(&src)?;
    reproducible_base(sh, &src)?;
    stage.done(format!(
        "Linux {}.{}.{} from {origin} at {}",
        v.0,
        v.1,
        v.2,
        src.display()
    ));
    Ok(src)
}

fn from_tarball(sh: &Shell, paths: &Paths) -> Result<PathBuf> {
    let tarball = Path::new(DEBIAN_TARBALL);
    if !tarball.exists() {
        bail!("{DEBIAN_TARBALL} is missing: run `make deps` (apt-get install linux-source-6.12) or pass KDIR=");
    }
    // The plain sha256 of the tarball, so the name says which tarball it is.
    let key = tarball_sha256(paths, tarball)?;
    let src = paths
        .cache
        .join("src")
        .join(format!("linux-{}", &key[..12]));
    if has_base(&src) {
        return Ok(src);
    }
    let tmp = paths.cache.join("src").join(format!(".unpack-{key}"));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp)?;
    println!("    unpacking {DEBIAN_TARBALL} (key {key})");
    cmd!(sh, "tar -C {tmp} -xf {tarball}")
        .run()
        .context("unpacking the kernel tarball")?;
    let _ = std::fs::remove_dir_all(&src);
    std::fs::rename(tmp.join("linux-source-6.12"), &src)
        .context("tarball did not contain linux-source-6.12/")?;
    let _ = std::fs::remove_dir_all(&tmp);
    init_git(sh, &src, "Linux 6.12 base (Debian linux-source-6.12)")?;
    Ok(src)
}

/// Copies the user's tree (sources only) into the cache. Keyed by its path and
/// version; `RQSPIN_RESYNC=1` refreshes an existing copy.
fn from_kdir(sh: &Shell, paths: &Paths, kdir: &Path) -> Result<PathBuf> {
    if !kdir.is_dir() {
        bail!("KDIR={} is not a directory", kdir.display());
    }
    let kdir = kdir.canonicalize()?;
    let v = require_6_12(&kdir)?;
    let key = Key::new("kdir")
        .str(&kdir.to_string_lossy())
        .str(&format!("{v:?}"))
        .hex();
    let src = paths.cache.join("src").join(format!("kdir-{}", &key[..12]));
    if has_base(&src) && std::env::var_os("RQSPIN_RESYNC").is_none() {
        return Ok(src);
    }
    let _ = std::fs::remove_dir_all(&src);
    std::fs::create_dir_all(&src)?;
    println!("    copying sources of {} (key {key})", kdir.display());
    let from = format!("{}/", kdir.display());
    // Build products and the user's own config stay behind: we build out of
    // tree with our own config, and kbuild refuses an O= build from a source
    // tree that has been configured in place.
    cmd!(
        sh,
        "rsync -a --exclude=.git --exclude=*.o --exclude=*.ko --exclude=*.a --exclude=.*.cmd
         --exclude=/.config* --exclude=/vmlinux* --exclude=/System.map --exclude=/Module.symvers
         --exclude=/modules.* --exclude=/include/config --exclude=/include/generated
         --exclude=/arch/*/include/generated --exclude=/rust/*.rmeta --exclude=/scripts/basic/fixdep
         {from} {src}"
    )
    .run()
    .context("copying KDIR")?;
    cmd!(sh, "make -s -C {src} mrproper")
        .run()
        .context("cleaning the copy of KDIR")?;
    init_git(
        sh,
        &src,
        &format!("Linux {}.{}.{} base (from KDIR)", v.0, v.1, v.2),
    )?;
    Ok(src)
}

/// sha256 of the tarball, remembered by size and mtime (hashing 150 MB on
/// every run would cost seconds).
fn tarball_sha256(paths: &Paths, tarball: &Path) -> Result<String> {
    let meta = std::fs::metadata(tarball)?;
    let mtime = meta
        .modified()?
        .duration_since(std::time::UNIX_EPOCH)?
        .as_nanos();
    let id = format!("{}:{}:{}", tarball.display(), meta.len(), mtime);
    let memo = paths.cache.join("src").join("tarball.sha256");
    if let Some(line) = crate::key::read_stamp(&memo) {
        if let Some(sha) = line.strip_prefix(&format!("{id} ")) {
            return Ok(sha.to_string());
        }
    }
    let sha = crate::key::file_sha256(tarball)?;
    std::fs::create_dir_all(memo.parent().unwrap())?;
    crate::key::write_stamp(&memo, &format!("{id} {sha}"))?;
    Ok(sha)
}

fn has_base(src: &Path) -> bool {
    src.join(".git/refs/tags/base").exists()
}

/// Who "authored" the base commit: not a person, the import itself.
const BASE_AUTHOR: &str = "base tree import";

/// Makes the base tree one commit, tagged `base`. The commit must be the
/// same on every machine that imports the same tarball, because the mailed
/// series names it (`base-commit:`) and `make series-check` regenerates the
/// series elsewhere: so no person's identity and no wall-clock date, but
/// the tree's own date (its top-level Makefile's mtime, from the tarball).
fn init_git(sh: &Shell, src: &Path, msg: &str) -> Result<()> {
    let _dir = sh.push_dir(src);
    cmd!(sh, "git init -q -b upstream").run()?;
    // Debian's tarball ships a .gitignore that ignores everything at the top
    // level ("/*"), so the pristine tree must be added with -f.
    cmd!(sh, "git add -A -f").quiet().ignore_stdout().run()?;
    let tree = cmd!(sh, "git write-tree").quiet().read()?;
    let commit = base_commit(sh, src, &tree, msg)?;
    cmd!(sh, "git update-ref refs/heads/upstream {commit}").run()?;
    cmd!(sh, "git tag base {commit}").run()?;
    Ok(())
}

fn base_commit(sh: &Shell, src: &Path, tree: &str, msg: &str) -> Result<String> {
    let mtime = std::fs::metadata(src.join("Makefile"))?
        .modified()?
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let date = format!("@{mtime} +0000");
    let commit = cmd!(
        sh,
        "git -c user.name={BASE_AUTHOR} -c user.email= commit-tree {tree} -m {msg}"
    )
    .env("GIT_AUTHOR_DATE", &date)
    .env("GIT_COMMITTER_DATE", &date)
    .quiet()
    .read()
    .context("committing the base tree")?;
    Ok(commit)
}

/// Caches made before the base commit was reproducible carry a commit by an
/// invented identity with the import's wall-clock date: re-create it (same
/// tree, so nothing in the work tree changes).
fn reproducible_base(sh: &Shell, src: &Path) -> Result<()> {
    let _dir = sh.push_dir(src);
    let author = cmd!(sh, "git log -1 --format=%an refs/tags/base")
        .quiet()
        .read()?;
    if author == BASE_AUTHOR {
        return Ok(());
    }
    let spec = "refs/tags/base^{tree}";
    let tree = cmd!(sh, "git rev-parse {spec}").quiet().read()?;
    let msg = cmd!(sh, "git log -1 --format=%B refs/tags/base")
        .quiet()
        .read()?;
    let commit = base_commit(sh, src, &tree, msg.trim())?;
    cmd!(sh, "git tag -f base {commit}")
        .quiet()
        .ignore_stdout()
        .run()?;
    println!("    base commit re-created reproducibly: {commit}");
    Ok(())
}

/// A git worktree of `src` at `<src>-<name>` on the base commit, created once.
pub fn worktree(sh: &Shell, src: &Path, name: &str) -> Result<PathBuf> {
    let mut dir = src.as_os_str().to_owned();
    dir.push(format!("-{name}"));
    let dir = PathBuf::from(dir);
    if !dir.join(".git").exists() {
        let _d = sh.push_dir(src);
        cmd!(sh, "git worktree add -q --detach {dir} refs/tags/base")
            .run()
            .context("creating a worktree")?;
    }
    Ok(dir)
}
