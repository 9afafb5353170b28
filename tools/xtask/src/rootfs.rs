//! A minimal root filesystem for a foreign-architecture guest.
//!
//! `vng --arch arm64` cannot boot on the host's own root (its binaries are
//! x86_64), so it needs `--root DIR` with an arm64 userland. This one is made
//! only from Debian arm64 packages (see [`crate::debs`]): what vng's bash
//! `virtme-init` runs (bash, coreutils, util-linux, udev for the
//! /dev/virtio-ports links of script mode, kmod), a static busybox, and what
//! the runner links against. It is cached as `<cache>/rootfs/<arch>-<key>/`,
//! the key hashing the package list and this recipe, and built in a
//! temporary directory first so an interrupted build is never used.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::arch::Arch;
use crate::debs::{self, ForeignApt};
use crate::key::Key;
use crate::paths::Paths;
use crate::stage::Stage;

/// Root packages; apt adds their dependencies.
const PACKAGES: &[&str] = &[
    // /etc/os-release and the standard directories.
    "base-files",
    // passwd and group masters (its postinst would copy them to /etc).
    "base-passwd",
    // vng's `init=/bin/sh -c ...` and virtme-init itself.
    "dash",
    "bash",
    "coreutils",
    "util-linux",
    "mount",
    "grep",
    "sed",
    // systemd-udevd and udevadm: script mode waits for the udev-made
    // /dev/virtio-ports/virtme.* links.
    "udev",
    "kmod",
    // vng's initramfs (`--busybox`) and poweroff (no systemd in the guest).
    "busybox-static",
    // bpf-runner: libbpf is linked in statically, libelf and zlib are not.
    "libelf1",
    "zlib1g",
    "libgcc-s1",
];

/// Bump when the steps after unpacking change, so cached roots are rebuilt.
const RECIPE: &str = "rootfs-v2";

/// Where the guest sees the directory shared with the host (runner, BPF
/// objects, modules in; results out). Created in the root, because the guest
/// mounts it over a read-only root and cannot create it.
pub const GUEST_MOUNT: &str = "/rqspin";

/// busybox applets that stand in for packages we leave out.
const BUSYBOX_APPLETS: &[&str] = &["poweroff", "reboot", "ip", "hostname"];

/// The root directory for `arch`, built if it is not cached yet.
pub fn ensure(paths: &Paths, arch: Arch) -> Result<PathBuf> {
    let key = Key::new(RECIPE)
        .str(arch.name())
        .str(&PACKAGES.join(" "))
        .hex();
    let base = paths.cache.join("rootfs");
    let root = base.join(format!("{}-{key}", arch.name()));
    if root.join(".complete").exists() {
        return Ok(root);
    }
    let stage = Stage::start(format!("guest root filesystem ({})", arch.name()));
    fs::create_dir_all(&base)?;
    let tmp = base.join(format!("{}-{key}.tmp", arch.name()));
    let _ = fs::remove_dir_all(&tmp);
    let log = base.join(format!("{}-{key}.log", arch.name()));
    let _ = fs::remove_file(&log);

    let apt = ForeignApt::open(paths, arch, &log)?;
    let downloads = base.join(format!("{}-{key}.debs", arch.name()));
    let _ = fs::remove_dir_all(&downloads);
    apt.download_closure(PACKAGES, &downloads, &log)?;
    let debs = debs::debs_in(&downloads)?;

    debs::merged_usr(&tmp)?;
    for deb in &debs {
        debs::unpack(deb, &tmp)?;
    }
    configure(&tmp)?;
    debs::relativize_symlinks(&tmp)?;
    let manifest: String = debs
        .iter()
        .map(|d| format!("{}\n", d.file_name().unwrap().to_string_lossy()))
        .collect();
    fs::write(tmp.join(".manifest"), manifest)?;
    fs::write(tmp.join(".complete"), format!("{key}\n"))?;
    fs::remove_dir_all(&downloads)?;
    fs::rename(&tmp, &root)
        .with_context(|| format!("moving {} to {}", tmp.display(), root.display()))?;
    prune(&base, arch, &root);
    stage.done(format!(
        "{} packages in {} (log {})",
        debs.len(),
        root.display(),
        log.display()
    ));
    Ok(root)
}

/// Removes the roots (and logs) of other keys for `arch`: a changed package
/// list or recipe makes them unreachable. Best effort; the pipeline lock
/// keeps other runs from using them meanwhile.
fn prune(base: &Path, arch: Arch, keep: &Path) {
    let prefix = format!("{}-", arch.name());
    let keep_log = keep.with_extension("log");
    let Ok(entries) = fs::read_dir(base) else {
        return;
    };
    for p in entries.filter_map(|e| e.ok().map(|e| e.path())) {
        let name = p
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        if !name.starts_with(&prefix) || p == keep || p == keep_log {
            continue;
        }
        let _ = if p.is_dir() {
            fs::remove_dir_all(&p)
        } else {
            fs::remove_file(&p)
        };
    }
}

/// The guest path of the static busybox, for `vng --busybox`.
pub fn busybox(root: &Path) -> PathBuf {
    root.join("usr/bin/busybox")
}

/// What maintainer scripts and debootstrap would have done, as far as the
/// guest needs it, plus the files vng bind-mounts over (they must exist: the
/// root is read-only in the guest).
fn configure(root: &Path) -> Result<()> {
    for (dir, mode) in [
        ("proc", 0o555),
        ("sys", 0o555),
        ("dev", 0o755),
        ("run", 0o755),
        ("tmp", 0o1777),
        ("root", 0o700),
        ("home", 0o755),
        ("mnt", 0o755),
        // vng overlays these with tmpfs and complains when they are missing.
        ("opt", 0o755),
        ("srv", 0o755),
        ("var/tmp", 0o1777),
        ("var/log", 0o755),
        ("usr/lib/modules", 0o755),
        ("etc/lvm", 0o755),
        (GUEST_MOUNT.trim_start_matches('/'), 0o755),
    ] {
        let p = root.join(dir);
        fs::create_dir_all(&p).with_context(|| format!("creating {}", p.display()))?;
        set_mode(&p, mode)?;
    }
    // base-passwd's postinst.
    for f in ["passwd", "group"] {
        let master = root.join(format!("usr/share/base-passwd/{f}.master"));
        fs::copy(&master, root.join("etc").join(f))
            .with_context(|| format!("copying {}", master.display()))?;
    }
    for (f, mode) in [("shadow", 0o640), ("fstab", 0o644), ("sudoers", 0o440)] {
        let p = root.join("etc").join(f);
        if !p.exists() {
            fs::write(&p, "")?;
        }
        set_mode(&p, mode)?;
    }
    // dash's postinst.
    link_if_missing(root, "usr/bin/sh", "dash")?;
    let busybox = busybox(root);
    if !busybox.is_file() {
        bail!("busybox-static did not provide {}", busybox.display());
    }
    for applet in BUSYBOX_APPLETS {
        let in_bin = root.join("usr/bin").join(applet);
        let in_sbin = root.join("usr/sbin").join(applet);
        if in_bin.symlink_metadata().is_err() && in_sbin.symlink_metadata().is_err() {
            link_if_missing(root, &format!("usr/sbin/{applet}"), "../bin/busybox")?;
        }
    }
    for needed in [
        "usr/bin/bash",
        "usr/bin/env",
        "usr/bin/mount",
        "usr/bin/udevadm",
        "usr/lib/systemd/systemd-udevd",
        "usr/sbin/poweroff",
    ] {
        if root.join(needed).symlink_metadata().is_err() {
            bail!("the guest root lacks /{needed}");
        }
    }
    Ok(())
}

fn link_if_missing(root: &Path, link: &str, target: &str) -> Result<()> {
    let p = root.join(link);
    if p.symlink_metadata().is_err() {
        std::os::unix::fs::symlink(target, &p)
            .with_context(|| format!("creating {}", p.display()))?;
    }
    Ok(())
}

fn set_mode(p: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(p, fs::Permissions::from_mode(mode))
        .with_context(|| format!("chmod {mode:o} {}", p.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds (or finds) the real arm64 root in the build cache; needs the
    /// Debian mirror. `cargo test -p xtask -- --ignored arm64_root`
    #[test]
    #[ignore = "downloads Debian packages into the build cache"]
    fn arm64_root() {
        let paths = Paths::discover().unwrap();
        let root = ensure(&paths, Arch::Arm64).unwrap();
        assert!(busybox(&root).is_file());
        assert!(root.join(GUEST_MOUNT.trim_start_matches('/')).is_dir());
    }
}
