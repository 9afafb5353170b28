//! Where things live: the repository, the build cache outside it, and the
//! results directory.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::arch::Arch;

/// Fixed locations of one pipeline run.
pub struct Paths {
    /// The repository checkout (two levels above this crate).
    pub repo: PathBuf,
    /// Build trees, ccache and downloads: `$RQSPIN_CACHE`, else
    /// `$XDG_CACHE_HOME/rqspin-bpf`, else `~/.cache/rqspin-bpf`. Kept outside
    /// the repository so fresh clones on the same machine reuse it.
    pub cache: PathBuf,
    /// Reports and guest output: `<repo>/out`.
    pub out: PathBuf,
}

impl Paths {
    pub fn discover() -> Result<Self> {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../..")
            .canonicalize()
            .context("locating the repository root")?;
        let cache = match std::env::var_os("RQSPIN_CACHE") {
            Some(dir) => PathBuf::from(dir),
            None => {
                let base = std::env::var_os("XDG_CACHE_HOME")
                    .map(PathBuf::from)
                    .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
                    .context("neither RQSPIN_CACHE, XDG_CACHE_HOME nor HOME is set")?;
                base.join("rqspin-bpf")
            }
        };
        std::fs::create_dir_all(&cache)
            .with_context(|| format!("creating cache directory {}", cache.display()))?;
        let out = repo.join("out");
        Ok(Paths { repo, cache, out })
    }

    /// Kernel build output (`O=`) for one architecture.
    pub fn kernel_obj(&self, arch: Arch) -> PathBuf {
        self.cache.join("build").join(arch.name())
    }

    /// Selftest objects and the test module for one architecture.
    pub fn selftest_build(&self, arch: Arch) -> PathBuf {
        self.cache
            .join("build")
            .join(format!("{}-selftests", arch.name()))
    }

    /// Results of the last run for one architecture.
    pub fn out_arch(&self, arch: Arch) -> PathBuf {
        self.out.join(arch.name())
    }

    pub fn ccache(&self) -> PathBuf {
        self.cache.join("ccache")
    }
}
