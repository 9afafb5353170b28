//! Cross-building bpf-runner for a foreign-architecture guest.
//!
//! rustup cannot fetch another target's prebuilt std here, but the rust-src
//! component (which the kernel build needs anyway) is installed, so std is
//! built from source with `-Zbuild-std` (`RUSTC_BOOTSTRAP=1` allows the
//! unstable flag on a stable toolchain). The C side is Debian's cross gcc,
//! with libelf and zlib for the target unpacked from arm64 packages into a
//! small sysroot in the cache (see [`crate::debs`]); libbpf itself is built
//! by libbpf-sys from its vendored copy, as on the host.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::arch::Arch;
use crate::debs::{self, ForeignApt};
use crate::key::Key;
use crate::paths::Paths;
use crate::stage::run_logged;

/// What the runner links against, as target packages: headers and `.so`
/// links from the -dev packages, and the shared objects themselves, including
/// libelf's own dependency libzstd, which the linker must see to check
/// libelf.so. Exactly these are unpacked, no dependencies: the C library
/// comes from the cross toolchain.
const SYSROOT_PACKAGES: &[&str] = &["libelf-dev", "libelf1", "zlib1g-dev", "zlib1g", "libzstd1"];

/// Rust target triple for the runner.
fn rust_target(arch: Arch) -> &'static str {
    match arch {
        Arch::X86_64 => "x86_64-unknown-linux-gnu",
        Arch::Arm64 => "aarch64-unknown-linux-gnu",
    }
}

/// GNU triple: the cross tools' prefix and the multiarch directory name.
fn gnu_triple(arch: Arch) -> &'static str {
    match arch {
        Arch::X86_64 => "x86_64-linux-gnu",
        Arch::Arm64 => "aarch64-linux-gnu",
    }
}

/// Builds bpf-runner for `arch` and returns the binary.
pub fn build_runner(paths: &Paths, arch: Arch, log: &Path) -> Result<PathBuf> {
    let gnu = gnu_triple(arch);
    let gcc = format!("{gnu}-gcc");
    if Command::new(&gcc).arg("--version").output().is_err() {
        bail!("{gcc} is missing (package gcc-{gnu}): run `make deps`");
    }
    let sysroot = sysroot(paths, arch, log)?;
    let libdir = sysroot.join("usr/lib").join(gnu);
    let target = rust_target(arch);
    let env_target = target.replace('-', "_");
    let target_dir = paths
        .cache
        .join("build")
        .join(format!("{}-runner", arch.name()));

    let mut cargo = Command::new("cargo");
    cargo
        .args([
            "build",
            "--release",
            "-q",
            "-p",
            "bpf-runner",
            "--target",
            target,
        ])
        .args(["-Zbuild-std=std,panic_abort", "--manifest-path"])
        .arg(paths.repo.join("tools/Cargo.toml"))
        .arg("--target-dir")
        .arg(&target_dir)
        .env("RUSTC_BOOTSTRAP", "1")
        .env(
            format!("CARGO_TARGET_{}_LINKER", env_target.to_uppercase()),
            &gcc,
        )
        // libelf.so.1 needs libz and libzstd; the linker finds them only
        // with -rpath-link (they are not in the cross toolchain's paths).
        .env(
            format!("CARGO_TARGET_{}_RUSTFLAGS", env_target.to_uppercase()),
            format!("-C link-arg=-Wl,-rpath-link,{}", libdir.display()),
        )
        .env(format!("CC_{env_target}"), &gcc)
        .env(format!("AR_{env_target}"), format!("{gnu}-ar"))
        // libbpf's headers need libelf.h, gelf.h and zlib.h of the target.
        .env(
            "LIBBPF_SYS_EXTRA_CFLAGS",
            format!("-I{}", sysroot.join("usr/include").display()),
        )
        .env(format!("LIBBPF_SYS_LIBRARY_PATH_{env_target}"), &libdir)
        // libbpf's Makefile asks pkg-config for libelf/zlib flags: the
        // target's .pc files, not the host's.
        .env("PKG_CONFIG_LIBDIR", libdir.join("pkgconfig"))
        .env("PKG_CONFIG_SYSROOT_DIR", &sysroot);
    run_logged(
        cargo,
        log,
        &format!("cross-building bpf-runner for {target}"),
    )?;
    let runner = target_dir.join(target).join("release/bpf-runner");
    if !runner.is_file() {
        bail!("cargo succeeded but {} is missing", runner.display());
    }
    Ok(runner)
}

/// `<cache>/cross/<arch>-sysroot-<key>/`: the target's libelf and zlib.
fn sysroot(paths: &Paths, arch: Arch, log: &Path) -> Result<PathBuf> {
    let key = Key::new("sysroot-v1")
        .str(arch.name())
        .str(&SYSROOT_PACKAGES.join(" "))
        .hex();
    let base = paths.cache.join("cross");
    let root = base.join(format!("{}-sysroot-{key}", arch.name()));
    if root.join(".complete").exists() {
        return Ok(root);
    }
    println!(
        "    unpacking {} libelf/zlib into {}",
        arch.name(),
        root.display()
    );
    let tmp = base.join(format!("{}-sysroot-{key}.tmp", arch.name()));
    let _ = fs::remove_dir_all(&tmp);
    let downloads = tmp.join(".debs");
    let apt = ForeignApt::open(paths, arch, log)?;
    apt.download_exact(SYSROOT_PACKAGES, &downloads, log)?;
    debs::merged_usr(&tmp)?;
    for deb in debs::debs_in(&downloads)? {
        debs::unpack(&deb, &tmp)?;
    }
    fs::remove_dir_all(&downloads)?;
    // zlib1g-dev's libz.so points at /lib/...: make it point into the sysroot.
    debs::relativize_symlinks(&tmp)?;
    fs::write(tmp.join(".complete"), format!("{key}\n"))?;
    fs::rename(&tmp, &root)
        .with_context(|| format!("moving {} to {}", tmp.display(), root.display()))?;
    Ok(root)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Cross-builds the real runner into the build cache; needs crates.io
    /// (std's dependencies) and the Debian mirror.
    /// `cargo test -p xtask -- --ignored arm64_runner`
    #[test]
    #[ignore = "cross-builds bpf-runner (minutes)"]
    fn arm64_runner() {
        let paths = Paths::discover().unwrap();
        let log = paths.cache.join("cross-runner-test.log");
        let _ = fs::remove_file(&log);
        let runner = build_runner(&paths, Arch::Arm64, &log).unwrap();
        let head = fs::read(&runner).unwrap();
        // ELF, 64-bit, e_machine EM_AARCH64 (183).
        assert_eq!(&head[..5], b"\x7fELF\x02");
        assert_eq!(u16::from_le_bytes([head[18], head[19]]), 183);
    }
}
