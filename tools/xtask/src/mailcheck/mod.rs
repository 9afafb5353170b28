//! Checks a directory of `git format-patch` files the way a kernel developer
//! would before mailing them: `checkpatch.pl --strict --codespell`, ASCII-only
//! files, and a real `git send-email` run against a stub SMTP server on
//! 127.0.0.1 that records what it is sent.
//!
//! [`mod@checkpatch`] runs checkpatch.pl and the ASCII-only check,
//! [`mod@send_email`] mails the patches with `git send-email` (its module
//! documentation says how that run is kept from reaching a real mail server
//! or waiting for a user) and compares what arrived with the files, and
//! [`smtp_stub`] is the server it mails to.

mod checkpatch;
mod send_email;
mod smtp_stub;

pub use checkpatch::{ascii_only, checkpatch};
pub use send_email::send_email;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context, Result};

use crate::series::COVER_LETTER;

/// The result of one check over a patch set: a line per patch plus a summary a user can read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckReport {
    pub ok: bool,
    pub summary: String,
    pub details: String,
}

/// Whether `path` is the cover letter `git format-patch --cover-letter`
/// writes.
fn is_cover_letter(path: &Path) -> bool {
    path.file_name().is_some_and(|n| n == COVER_LETTER)
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .unwrap_or(path.as_os_str())
        .to_string_lossy()
        .into_owned()
}

/// A directory under the system temp dir, removed (with its contents) on drop.
struct TempDir {
    path: PathBuf,
}

impl TempDir {
    fn new(what: &str) -> Result<TempDir> {
        static COUNT: AtomicUsize = AtomicUsize::new(0);
        let n = COUNT.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("xtask-{what}-{}-{n}", std::process::id()));
        if path.exists() {
            std::fs::remove_dir_all(&path)
                .with_context(|| format!("removing stale {}", path.display()))?;
        }
        std::fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(TempDir { path })
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// The header fields of a message or patch file, in order, with folded
/// lines joined the way send-email joins them (line break and leading
/// white space become one space). A leading mbox "From " line is skipped.
pub(crate) fn mail_headers(text: &str) -> Vec<(String, String)> {
    let mut headers: Vec<(String, String)> = Vec::new();
    let mut lines = text
        .lines()
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .peekable();
    if lines.peek().is_some_and(|l| l.starts_with("From ")) {
        lines.next();
    }
    for line in lines {
        if line.trim().is_empty() {
            break;
        }
        if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = headers.last_mut() {
                value.push(' ');
                value.push_str(line.trim_start());
            }
        } else if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_string(), value.trim().to_string()));
        }
    }
    headers
}

/// The first value of header `name` (case-insensitive).
pub(crate) fn header(headers: &[(String, String)], name: &str) -> Option<String> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.clone())
}
