//! Debian packages of a foreign architecture (arm64 on an x86_64 host),
//! fetched with a private apt and unpacked without running anything.
//!
//! The apt state (package lists, an empty dpkg status, the downloads) lives
//! in the build cache, so the host's dpkg is never touched: no `dpkg
//! --add-architecture`, nothing installed. The host's own sources are used,
//! because those are the mirrors this machine can reach. Packages are
//! unpacked with `dpkg-deb --fsys-tarfile | tar`, not installed: maintainer
//! scripts would have to run arm64 binaries, which this host cannot do
//! without binfmt_misc. The few things those scripts would have done for us
//! are done by the callers.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

use crate::arch::Arch;
use crate::paths::Paths;
use crate::stage::run_logged;

/// A private apt for one foreign architecture.
pub struct ForeignApt {
    dir: PathBuf,
    arch: &'static str,
}

impl ForeignApt {
    /// Prepares `<cache>/apt-<arch>/` and refreshes its package lists (a few
    /// seconds; done once per build of something new, not per run).
    pub fn open(paths: &Paths, arch: Arch, log: &Path) -> Result<ForeignApt> {
        let apt = ForeignApt {
            dir: paths.cache.join(format!("apt-{}", arch.name())),
            arch: debian_arch(arch),
        };
        for d in ["state/lists/partial", "cache/archives/partial", "prefs.d"] {
            fs::create_dir_all(apt.dir.join(d))
                .with_context(|| format!("creating {}", apt.dir.join(d).display()))?;
        }
        // An empty dpkg status: apt resolves the full dependency closure as
        // for an empty system.
        let status = apt.dir.join("status");
        if !status.exists() {
            fs::write(&status, "").with_context(|| format!("creating {}", status.display()))?;
        }
        run_logged(
            apt.apt_get("update"),
            log,
            &format!("apt-get update for {}", apt.arch),
        )?;
        Ok(apt)
    }

    /// `apt-get` pointed at our state instead of the host's.
    fn apt_get(&self, sub: &str) -> Command {
        let d = &self.dir;
        let mut c = Command::new("apt-get");
        for (k, v) in [
            ("Dir::State", d.join("state").display().to_string()),
            ("Dir::State::status", d.join("status").display().to_string()),
            ("Dir::Cache", d.join("cache").display().to_string()),
            // Host pins are about host packages.
            ("Dir::Etc::Preferences", "/dev/null".into()),
            (
                "Dir::Etc::PreferencesParts",
                d.join("prefs.d").display().to_string(),
            ),
            ("APT::Architecture", self.arch.into()),
            ("APT::Architectures::", self.arch.into()),
            ("APT::Install-Recommends", "false".into()),
            // Only what we ask for and its dependencies, not every
            // Essential: yes package of the archive.
            ("pkgCacheGen::Essential", "none".into()),
            ("Acquire::Languages", "none".into()),
            // Our state is not the system's: no dpkg lock to take.
            ("Debug::NoLocking", "1".into()),
            // The cache is root's; apt's `_apt` user could not write it.
            ("APT::Sandbox::User", "root".into()),
        ] {
            c.arg("-o").arg(format!("{k}={v}"));
        }
        c.args(["-q", "-y", sub]);
        c
    }

    /// Downloads `packages` and everything they depend on into `dest`.
    pub fn download_closure(&self, packages: &[&str], dest: &Path, log: &Path) -> Result<()> {
        fs::create_dir_all(dest.join("partial"))?;
        let mut c = self.apt_get("install");
        c.arg("--download-only")
            .arg("-o")
            .arg(format!("Dir::Cache::archives={}", dest.display()))
            .args(packages);
        run_logged(c, log, "resolving and downloading packages")
    }

    /// Downloads exactly `packages` (no dependencies) into `dest`.
    pub fn download_exact(&self, packages: &[&str], dest: &Path, log: &Path) -> Result<()> {
        fs::create_dir_all(dest)?;
        let mut c = self.apt_get("download");
        c.args(packages).current_dir(dest);
        run_logged(c, log, "downloading packages")
    }
}

/// dpkg's name of an architecture.
pub fn debian_arch(arch: Arch) -> &'static str {
    match arch {
        Arch::X86_64 => "amd64",
        Arch::Arm64 => "arm64",
    }
}

/// The `.deb` files in `dir`, sorted.
pub fn debs_in(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut debs: Vec<PathBuf> = fs::read_dir(dir)
        .with_context(|| format!("listing {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "deb"))
        .collect();
    debs.sort();
    if debs.is_empty() {
        bail!("no packages were downloaded to {}", dir.display());
    }
    Ok(debs)
}

/// Creates the merged-/usr layout (`/bin -> usr/bin`, ...) that bookworm
/// expects and that debootstrap would have made; unpacking must follow these
/// links rather than replace them (see [`unpack`]).
pub fn merged_usr(root: &Path) -> Result<()> {
    for d in ["bin", "sbin", "lib"] {
        fs::create_dir_all(root.join("usr").join(d))?;
        let link = root.join(d);
        if link.symlink_metadata().is_err() {
            std::os::unix::fs::symlink(format!("usr/{d}"), &link)
                .with_context(|| format!("creating {}", link.display()))?;
        }
    }
    Ok(())
}

/// Unpacks the file tree of `deb` into `root`. `dpkg-deb -x` would replace the
/// merged-/usr symlinks with directories; GNU tar keeps them with
/// `--keep-directory-symlink`.
pub fn unpack(deb: &Path, root: &Path) -> Result<()> {
    let mut dpkg = Command::new("dpkg-deb")
        .arg("--fsys-tarfile")
        .arg(deb)
        .stdout(Stdio::piped())
        .spawn()
        .context("starting dpkg-deb")?;
    let tar = Command::new("tar")
        .args(["-x", "--keep-directory-symlink", "--same-owner", "-p", "-C"])
        .arg(root)
        .stdin(dpkg.stdout.take().unwrap())
        .status()
        .context("starting tar")?;
    let dpkg = dpkg.wait()?;
    if !dpkg.success() || !tar.success() {
        bail!(
            "unpacking {} into {} failed (dpkg-deb {dpkg}, tar {tar})",
            deb.display(),
            root.display()
        );
    }
    Ok(())
}

/// Rewrites absolute symlinks below `root` as relative ones inside `root`, so
/// the tree works from the host too (a sysroot for the linker; `libz.so ->
/// /lib/...` would otherwise point at the host's libz).
pub fn relativize_symlinks(root: &Path) -> Result<usize> {
    let mut n = 0;
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).with_context(|| format!("listing {}", dir.display()))? {
            let entry = entry?;
            let path = entry.path();
            let ty = entry.file_type()?;
            if ty.is_dir() {
                stack.push(path);
            } else if ty.is_symlink() {
                let target = fs::read_link(&path)?;
                if let Ok(inside) = target.strip_prefix("/") {
                    let depth = path.strip_prefix(root).unwrap().components().count() - 1;
                    let rel = Path::new(&"../".repeat(depth)).join(inside);
                    fs::remove_file(&path)?;
                    std::os::unix::fs::symlink(&rel, &path)
                        .with_context(|| format!("relinking {}", path.display()))?;
                    n += 1;
                }
            }
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absolute_links_become_relative() {
        let root = std::env::temp_dir().join(format!("xtask-debs-test-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        fs::create_dir_all(root.join("usr/lib/x")).unwrap();
        fs::write(root.join("usr/lib/x/libz.so.1"), "").unwrap();
        merged_usr(&root).unwrap();
        std::os::unix::fs::symlink("/lib/x/libz.so.1", root.join("usr/lib/x/libz.so")).unwrap();
        assert_eq!(relativize_symlinks(&root).unwrap(), 1);
        assert_eq!(
            fs::read_link(root.join("usr/lib/x/libz.so")).unwrap(),
            Path::new("../../../lib/x/libz.so.1")
        );
        assert!(root.join("usr/lib/x/libz.so").exists());
        fs::remove_dir_all(&root).unwrap();
    }
}
