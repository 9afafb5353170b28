//! What the host tests share: where a 6.12 kernel source tree is.

use std::path::{Path, PathBuf};
use std::sync::LazyLock;

/// A 6.12 kernel source tree: `$RQSPIN_KSRC` (`make unit-test` sets it to
/// the tree its source stage prepares), else one the pipeline unpacked into
/// its cache (`$RQSPIN_CACHE`, default `~/.cache/rqspin-bpf`).
pub fn ksrc() -> String {
    if let Ok(p) = std::env::var("RQSPIN_KSRC") {
        return p;
    }
    let cache = std::env::var_os("RQSPIN_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(&std::env::var_os("HOME").unwrap_or_default()).join(".cache/rqspin-bpf")
        });
    let mut trees: Vec<PathBuf> = std::fs::read_dir(cache.join("src"))
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    trees.retain(|p| p.join("tools/include/uapi/linux/bpf.h").exists());
    trees.sort();
    trees
        .into_iter()
        .next()
        .unwrap_or_else(|| {
            panic!(
                "no 6.12 source tree in {}: run `make unit-test` (it prepares one) or set RQSPIN_KSRC",
                cache.join("src").display()
            )
        })
        .display()
        .to_string()
}

/// The tree's UAPI headers, for compiling BPF programs.
pub static KERNEL_UAPI: LazyLock<String> =
    LazyLock::new(|| format!("{}/tools/include/uapi", ksrc()));
