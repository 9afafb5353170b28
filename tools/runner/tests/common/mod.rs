//! What the host tests share: where a 6.12 kernel source tree is.

use std::path::{Path, PathBuf};
use std::sync::LazyLock;

/// A 6.12 kernel source tree: `$RQSPIN_KSRC`, else the one the pipeline
/// unpacks into its cache (`make test` runs `make vmtest` first), else the
/// developers' reference copy.
pub fn ksrc() -> String {
    if let Ok(p) = std::env::var("RQSPIN_KSRC") {
        return p;
    }
    let home = std::env::var("HOME").unwrap_or_default();
    let cache = Path::new(&home).join(".cache/rqspin-bpf");
    let mut trees: Vec<PathBuf> = std::fs::read_dir(cache.join("src"))
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    trees.retain(|p| p.join("tools/include/uapi/linux/bpf.h").exists());
    trees.sort();
    trees
        .into_iter()
        .next()
        .unwrap_or_else(|| cache.join("ref/linux-source-6.12"))
        .display()
        .to_string()
}

/// The tree's UAPI headers, for compiling BPF programs.
pub static KERNEL_UAPI: LazyLock<String> =
    LazyLock::new(|| format!("{}/tools/include/uapi", ksrc()));
