//! The toolchain a kernel build uses: its versions go into the build key, and
//! its environment is set for every kbuild invocation.

use std::path::Path;
use std::process::Command;

use xshell::{cmd, Shell};

use crate::arch::Arch;
use crate::paths::Paths;

/// One line per tool; part of the build key so a toolchain upgrade rebuilds.
pub fn versions(sh: &Shell) -> String {
    let mut out = String::new();
    for (tool, arg) in [
        ("rustc", "-V"),
        ("clang", "--version"),
        ("bindgen", "--version"),
        ("pahole", "--version"),
    ] {
        let v = cmd!(sh, "{tool} {arg}")
            .quiet()
            .ignore_stderr()
            .read()
            .unwrap_or_else(|_| "missing".into());
        out.push_str(tool);
        out.push(' ');
        out.push_str(v.lines().next().unwrap_or(""));
        out.push('\n');
    }
    out
}

/// libclang that matches the kernel's clang (14 on bookworm). bindgen would
/// otherwise pick the newest installed libclang (19, pulled in by clang-19),
/// which rejects clang 14's flags ("unknown argument:
/// '-enable-trivial-auto-var-init-zero-knowing-it-will-be-removed-from-clang'").
const LIBCLANG_14: &str = "/usr/lib/llvm-14/lib";

/// A `make` command for kbuild with our toolchain settings.
pub fn kbuild(paths: &Paths, src: &Path) -> Command {
    let mut make = Command::new("make");
    make.arg("-C").arg(src).arg("LLVM=1").arg("CC=ccache clang");
    make.env("CCACHE_DIR", paths.ccache());
    // With debug info, ccache hashes the working directory (the O= dir), so
    // the main, mutant and stock-verifier builds would never share a hit.
    // Only DWARF's comp_dir then names another build dir; BTF does not use it.
    make.env("CCACHE_NOHASHDIR", "1");
    if std::env::var_os("LIBCLANG_PATH").is_none() && Path::new(LIBCLANG_14).exists() {
        make.env("LIBCLANG_PATH", LIBCLANG_14);
    }
    make
}

/// `make O=<obj> ARCH=<arch> -jN <target>` of the tree `src`: how every
/// kernel build of the pipeline (main, mutant, bisect) is run.
pub fn kbuild_target(paths: &Paths, src: &Path, obj: &Path, arch: Arch, target: &str) -> Command {
    let mut make = kbuild(paths, src);
    make.arg(format!("O={}", obj.display()))
        .arg(format!("ARCH={}", arch.kbuild()))
        .arg(jobs())
        .arg(target);
    make
}

/// `-jN` for this machine.
pub fn jobs() -> String {
    let n = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    format!("-j{n}")
}
