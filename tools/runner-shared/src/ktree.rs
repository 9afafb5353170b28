// SPDX-License-Identifier: GPL-2.0

//! Where the host tests of both crates find a 6.12 kernel source tree.

use std::path::{Path, PathBuf};

/// `$RQSPIN_KSRC` (`make unit-test` sets it to the tree its source stage
/// prepares), else the first tree the pipeline unpacked into its cache
/// (`$RQSPIN_CACHE`, default `~/.cache/rqspin-bpf`) that has `marker`.
/// Panics with what to run when there is none: a test that needs a tree
/// must not pass without one.
pub fn kernel_tree(marker: &str) -> PathBuf {
    if let Some(p) = std::env::var_os("RQSPIN_KSRC") {
        return p.into();
    }
    let cache = std::env::var_os("RQSPIN_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(&std::env::var_os("HOME").unwrap_or_default()).join(".cache/rqspin-bpf")
        });
    let mut trees: Vec<PathBuf> = std::fs::read_dir(cache.join("src"))
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    trees.retain(|p| p.join(marker).exists());
    trees.sort();
    trees.into_iter().next().unwrap_or_else(|| {
        panic!(
            "no 6.12 source tree in {}: run `make unit-test` (it prepares one) or set RQSPIN_KSRC",
            cache.join("src").display()
        )
    })
}
