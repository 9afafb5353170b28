//! Cache keys: a short hash over everything that goes into a build step, so an
//! unchanged input is never rebuilt and a changed one is.

use std::path::Path;

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};

#[derive(Default)]
pub struct Key(Sha256);

impl Key {
    pub fn new(domain: &str) -> Key {
        let mut key = Key::default();
        key.str(domain);
        key
    }

    pub fn str(&mut self, s: &str) -> &mut Self {
        self.0.update((s.len() as u64).to_le_bytes());
        self.0.update(s.as_bytes());
        self
    }

    /// Adds a file's name and contents.
    pub fn file(&mut self, path: &Path) -> Result<&mut Self> {
        let data = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        self.str(&path.file_name().unwrap_or_default().to_string_lossy());
        self.0.update((data.len() as u64).to_le_bytes());
        self.0.update(&data);
        Ok(self)
    }

    /// Adds every regular file below `dir` (sorted, names relative to `dir`)
    /// whose name passes `keep`.
    pub fn tree(&mut self, dir: &Path, keep: &dyn Fn(&Path) -> bool) -> Result<&mut Self> {
        for path in walk(dir)? {
            if keep(&path) {
                let rel = path.strip_prefix(dir).unwrap_or(&path);
                self.str(&rel.to_string_lossy());
                self.file(&path)?;
            }
        }
        Ok(self)
    }

    /// The first 16 hex digits of the digest.
    pub fn hex(&self) -> String {
        let digest = self.0.clone().finalize();
        digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
    }
}

/// All regular files below `dir`, sorted.
pub fn walk(dir: &Path) -> Result<Vec<std::path::PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).with_context(|| format!("listing {}", d.display()))? {
            let entry = entry?;
            let ty = entry.file_type()?;
            if ty.is_dir() {
                stack.push(entry.path());
            } else if ty.is_file() {
                out.push(entry.path());
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Reads a stamp file written by [`write_stamp`]; `None` if absent.
pub fn read_stamp(path: &Path) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
}

pub fn write_stamp(path: &Path, key: &str) -> Result<()> {
    std::fs::write(path, format!("{key}\n")).with_context(|| format!("writing {}", path.display()))
}

/// Hex sha256 of a file's contents (what `sha256sum` prints).
pub fn file_sha256(path: &Path) -> Result<String> {
    let mut file =
        std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher).with_context(|| format!("reading {}", path.display()))?;
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}
