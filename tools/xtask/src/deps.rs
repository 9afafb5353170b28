//! `xtask deps`: installs what the pipeline needs, only what is missing.
//!
//! Debian bookworm packages, plus three things apt does not have in a usable
//! version: the `rust-src` component (the kernel compiles `core` from it),
//! `bindgen-cli` (bookworm's bindgen 0.60 is older than 6.12's minimum 0.65.1)
//! and virtme-ng (PyPI).

use std::path::Path;

use anyhow::{bail, Context, Result};
use xshell::{cmd, Shell};

use crate::stage::Stage;

/// Packages for building the kernel with `LLVM=1` (clang 14 is bookworm's
/// `clang`), BPF objects (clang-19, bpftool for vmlinux.h), BTF (pahole), the
/// runner (libelf, zlib) and the guest (udev, busybox, kmod).
const APT_PACKAGES: &[&str] = &[
    "bc",
    "bison",
    "flex",
    "cpio",
    "kmod",
    "rsync",
    "make",
    "libelf-dev",
    "libssl-dev",
    "zlib1g-dev",
    "pkg-config",
    "ccache",
    "clang",
    "lld",
    "llvm",
    "libclang-14-dev",
    "clang-19",
    "llvm-19",
    "lld-19",
    "dwarves",
    "libbpf-dev",
    // vmlinux.h for the upstream selftests (upstream.rs).
    "bpftool",
    "udev",
    "busybox-static",
    "linux-source-6.12",
    // arm64 guests: the runner's cross linker and C compiler (rootfs.rs and
    // cross.rs fetch the arm64 packages themselves), and qemu-user to check
    // that the cross-built runner starts before an emulated boot.
    "gcc-aarch64-linux-gnu",
    "qemu-user-static",
    // make series-check: checkpatch.pl --codespell reads codespell's
    // dictionary and runs spdxcheck.py (ply, GitPython); git send-email mails the
    // series to a local stub server.
    "codespell",
    "python3-ply",
    "python3-git",
    "git-email",
];

/// QEMU from bookworm conflicts with the preinstalled backported `qemu-utils`
/// on these machines; installing them together with this pin resolves it.
const QEMU_PACKAGES: &[&str] = &[
    "qemu-system-x86",
    "qemu-system-arm",
    "qemu-utils=1:7.2+dfsg-7+deb12u18+b3",
];

/// The oldest bindgen 6.12's `scripts/min-tool-version.sh` accepts.
const BINDGEN_MIN: (u32, u32, u32) = (0, 65, 1);

pub fn run(sh: &Shell) -> Result<()> {
    let stage = Stage::start("deps");
    let mut did = Vec::new();

    let missing: Vec<&str> = APT_PACKAGES
        .iter()
        .copied()
        .filter(|p| !dpkg_installed(sh, p))
        .collect();
    let need_qemu = !Path::new("/usr/bin/qemu-system-x86_64").exists()
        || !Path::new("/usr/bin/qemu-system-aarch64").exists();
    if !missing.is_empty() || need_qemu {
        require_root(&missing)?;
        cmd!(sh, "apt-get update -q")
            .run()
            .context("apt-get update")?;
        if !missing.is_empty() {
            let pkgs = &missing;
            cmd!(sh, "apt-get install -y -q {pkgs...}")
                .env("DEBIAN_FRONTEND", "noninteractive")
                .run()
                .context("apt-get install")?;
            did.push(format!("apt packages ({})", missing.len()));
        }
        if need_qemu {
            cmd!(
                sh,
                "apt-get install -y -q --allow-downgrades {QEMU_PACKAGES...}"
            )
            .env("DEBIAN_FRONTEND", "noninteractive")
            .run()
            .context("installing QEMU (with the qemu-utils pin)")?;
            did.push("qemu".into());
        }
    }

    let sysroot = cmd!(sh, "rustc --print sysroot")
        .quiet()
        .read()
        .context("running rustc")?;
    if !Path::new(&sysroot)
        .join("lib/rustlib/src/rust/library/core/src/lib.rs")
        .exists()
    {
        cmd!(sh, "rustup component add rust-src")
            .run()
            .context("adding rust-src")?;
        did.push("rust-src".into());
    }

    if !bindgen_ok(sh) {
        cmd!(sh, "cargo install --locked bindgen-cli")
            .run()
            .context("cargo install bindgen-cli")?;
        did.push("bindgen-cli".into());
    }

    let vng = crate::vm::vng();
    if cmd!(sh, "{vng} --version")
        .quiet()
        .ignore_stdout()
        .ignore_stderr()
        .run()
        .is_err()
    {
        cmd!(sh, "python3 -m pip install -q virtme-ng")
            .run()
            .context("pip install virtme-ng")?;
        did.push("virtme-ng".into());
    }

    stage.done(if did.is_empty() {
        "everything present".to_string()
    } else {
        format!("installed {}", did.join(", "))
    });
    Ok(())
}

fn dpkg_installed(sh: &Shell, pkg: &str) -> bool {
    let format = "-f=${Status}";
    cmd!(sh, "dpkg-query -W {format} {pkg}")
        .quiet()
        .ignore_stderr()
        .read()
        .map(|s| s.contains("install ok installed"))
        .unwrap_or(false)
}

fn require_root(missing: &[&str]) -> Result<()> {
    // SAFETY: geteuid() has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        bail!(
            "missing packages and not root: run `sudo apt-get install {}` (and qemu-system-x86 \
             qemu-system-arm) or rerun as root",
            missing.join(" ")
        );
    }
    Ok(())
}

fn bindgen_ok(sh: &Shell) -> bool {
    let Ok(out) = cmd!(sh, "bindgen --version").quiet().ignore_stderr().read() else {
        return false;
    };
    parse_version(&out).is_some_and(|v| v >= BINDGEN_MIN)
}

/// The first `a.b.c` in `s`.
pub fn parse_version(s: &str) -> Option<(u32, u32, u32)> {
    s.split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .filter_map(|w| {
            let mut it = w.split('.').map(|n| n.parse::<u32>().ok());
            Some((it.next()??, it.next()??, it.next().flatten().unwrap_or(0)))
        })
        .next()
}

#[cfg(test)]
mod tests {
    use super::parse_version;

    #[test]
    fn versions() {
        assert_eq!(parse_version("bindgen 0.73.2"), Some((0, 73, 2)));
        assert_eq!(parse_version("bindgen 0.60.1\n"), Some((0, 60, 1)));
        assert_eq!(parse_version("virtme-ng 1.42"), Some((1, 42, 0)));
        assert_eq!(parse_version("none"), None);
    }
}
