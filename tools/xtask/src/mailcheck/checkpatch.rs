//! `scripts/checkpatch.pl --strict --codespell` of a kernel tree over the
//! patches (with codespell's dictionary found explicitly), and the check
//! that every patch file is ASCII-only.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, ensure, Context, Result};
use xshell::{cmd, Shell};

use super::{file_name, is_cover_letter, CheckReport};

/// checkpatch's result line of a clean patch starts with this.
const CHECKPATCH_CLEAN: &str = "total: 0 errors, 0 warnings, 0 checks,";
/// Where checkpatch looks for codespell's dictionary by default.
const CHECKPATCH_DEFAULT_DICTIONARY: &str = "/usr/share/codespell/dictionary.txt";
/// The dictionary inside codespell's Python package (what checkpatch's own
/// `python3 -c 'import codespell_lib'` lookup would find).
const CODESPELL_LIB_DICTIONARY: &str = "codespell_lib/data/dictionary.txt";

/// Runs `scripts/checkpatch.pl --strict --codespell --codespellfile=<dict>` of the kernel tree `src`
/// (run with `src` as working directory so checkpatch finds the tree) over every file in `patches`
/// (cover letter `0000-cover-letter.patch` excluded: checkpatch does not check cover letters).
/// ok only when every patch has "total: 0 errors, 0 warnings, 0 checks". summary: one line per patch
/// "NNNN-name.patch: total: 0 errors, 0 warnings, 0 checks, N lines checked".
/// details: checkpatch's full output for each patch, under a header line naming it.
pub fn checkpatch(sh: &Shell, src: &Path, patches: &[PathBuf]) -> Result<CheckReport> {
    let dictionary = codespell_dictionary(sh)?;
    let src = sh.current_dir().join(src);
    let script = src.join("scripts/checkpatch.pl");
    ensure!(
        script.is_file(),
        "{} not found: {} is not a kernel tree",
        script.display(),
        src.display()
    );
    // Resolved (like `src`) before changing directory: relative paths are
    // relative to the shell's directory, not the tree's.
    let patches: Vec<PathBuf> = patches
        .iter()
        .filter(|p| !is_cover_letter(p))
        .map(|p| sh.current_dir().join(p))
        .collect();
    ensure!(!patches.is_empty(), "checkpatch: no patches to check");
    let mut codespell_file = OsString::from("--codespellfile=");
    codespell_file.push(&dictionary);

    let _tree = sh.push_dir(&src);
    let mut report = CheckReport {
        ok: true,
        summary: String::new(),
        details: String::new(),
    };
    for patch in &patches {
        // Debian's python3 first: checkpatch runs scripts/spdxcheck.py,
        // which needs python3-ply (make deps), and another python3 may come
        // first on PATH.
        let path = format!("/usr/bin:{}", std::env::var("PATH").unwrap_or_default());
        let output = cmd!(sh, "{script} --strict --codespell {codespell_file} {patch}")
            .env("PATH", path)
            .ignore_status()
            .quiet()
            .output()
            .with_context(|| format!("running checkpatch.pl on {}", patch.display()))?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        let result = checkpatch_total(&stdout);
        // A helper of checkpatch that crashed (spdxcheck.py) checked
        // nothing: the patch is not shown clean.
        let stderr = String::from_utf8_lossy(&output.stderr);
        let crashed = stderr.contains("Traceback");
        let clean = !crashed && result.is_some_and(|t| t.starts_with(CHECKPATCH_CLEAN));
        if crashed {
            writeln!(
                report.details,
                "---- checkpatch helper crashed on {} ----\n{stderr}",
                file_name(patch)
            )?;
        }
        let name = file_name(patch);
        match result {
            Some(total) => writeln!(report.summary, "{name}: {total}")?,
            None => writeln!(
                report.summary,
                "{name}: no result from checkpatch ({})",
                output.status
            )?,
        }
        if crashed {
            writeln!(
                report.summary,
                "{name}: a helper script of checkpatch crashed"
            )?;
        }
        report.ok &= clean;
        writeln!(report.details, "---- checkpatch {name} ----")?;
        report.details.push_str(&stdout);
        report
            .details
            .push_str(&String::from_utf8_lossy(&output.stderr));
    }
    Ok(report)
}

/// checkpatch's "total: ..." line (one per checked file).
fn checkpatch_total(output: &str) -> Option<&str> {
    output.lines().find(|l| l.starts_with("total: "))
}

/// The codespell dictionary: checkpatch's default /usr/share/codespell/dictionary.txt if present,
/// else the Debian `codespell` package's file, found with `dpkg -L codespell`.
///
/// checkpatch's own fallback asks `python3` for `codespell_lib`, which finds
/// nothing when the `python3` on PATH is not Debian's (pyenv, venvs) even
/// though the package is installed; hence the explicit `--codespellfile`.
fn codespell_dictionary(sh: &Shell) -> Result<PathBuf> {
    let default = Path::new(CHECKPATCH_DEFAULT_DICTIONARY);
    if default.is_file() {
        return Ok(default.to_path_buf());
    }
    let hint = "install Debian's codespell package (`make deps` does)";
    let listing = cmd!(sh, "dpkg -L codespell")
        .ignore_status()
        .quiet()
        .output()
        .with_context(|| {
            format!("no {CHECKPATCH_DEFAULT_DICTIONARY} and cannot run dpkg: {hint}")
        })?;
    ensure!(
        listing.status.success(),
        "no codespell dictionary: {CHECKPATCH_DEFAULT_DICTIONARY} does not exist and \
         `dpkg -L codespell` failed ({}): {hint}",
        String::from_utf8_lossy(&listing.stderr).trim()
    );
    String::from_utf8_lossy(&listing.stdout)
        .lines()
        .map(PathBuf::from)
        .find(|p| p.ends_with(CODESPELL_LIB_DICTIONARY) && p.is_file())
        .ok_or_else(|| {
            anyhow!(
                "no codespell dictionary: neither {CHECKPATCH_DEFAULT_DICTIONARY} nor a \
                 .../{CODESPELL_LIB_DICTIONARY} of the codespell package exists: {hint}"
            )
        })
}

/// Every patch file must be ASCII-only (git send-email prompts for an encoding otherwise) -
/// report file, line number and the offending line.
///
/// summary: one line per file, followed for a file with non-ASCII bytes by
/// its offending lines (`  line N: text`); details: `path:N: text` per
/// offending line.
pub fn ascii_only(patches: &[PathBuf]) -> Result<CheckReport> {
    let mut report = CheckReport {
        ok: true,
        summary: String::new(),
        details: String::new(),
    };
    for patch in patches {
        let bytes = std::fs::read(patch).with_context(|| format!("reading {}", patch.display()))?;
        let lines = non_ascii_lines(&bytes);
        let name = file_name(patch);
        if lines.is_empty() {
            writeln!(report.summary, "{name}: ASCII only")?;
            continue;
        }
        report.ok = false;
        writeln!(
            report.summary,
            "{name}: {} line(s) with non-ASCII bytes",
            lines.len()
        )?;
        for (number, text) in lines {
            writeln!(report.summary, "  line {number}: {text}")?;
            writeln!(report.details, "{}:{number}: {text}", patch.display())?;
        }
    }
    Ok(report)
}

/// The 1-based numbers and (lossily decoded) text of the lines of `bytes`
/// that contain a byte outside ASCII.
fn non_ascii_lines(bytes: &[u8]) -> Vec<(usize, String)> {
    bytes
        .split(|&b| b == b'\n')
        .enumerate()
        .filter(|(_, line)| !line.is_ascii())
        .map(|(i, line)| {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            (i + 1, String::from_utf8_lossy(line).into_owned())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mailcheck::{TempDir, COVER_LETTER};

    #[test]
    fn ascii_only_flags_non_ascii_line() {
        let dir = TempDir::new("mailcheck-test").unwrap();
        let clean = dir.path.join("0001-clean.patch");
        let dirty = dir.path.join("0002-dirty.patch");
        std::fs::write(&clean, "Subject: clean\n\nok\n").unwrap();
        std::fs::write(&dirty, "Subject: dirty\n\nJos\u{e9} wrote\r\nfine\n").unwrap();
        let report = ascii_only(&[clean.clone(), dirty.clone()]).unwrap();
        assert!(!report.ok);
        assert_eq!(
            report.summary,
            "0001-clean.patch: ASCII only\n\
             0002-dirty.patch: 1 line(s) with non-ASCII bytes\n  \
             line 3: Jos\u{e9} wrote\n"
        );
        assert_eq!(
            report.details,
            format!("{}:3: Jos\u{e9} wrote\n", dirty.display())
        );
        assert!(ascii_only(&[clean]).unwrap().ok);
    }

    #[test]
    fn codespell_dictionary_is_found() {
        let sh = Shell::new().unwrap();
        match codespell_dictionary(&sh) {
            Ok(dict) => assert!(dict.is_file(), "{}", dict.display()),
            Err(e) => {
                assert!(format!("{e:#}").contains("codespell"), "{e:#}");
                eprintln!("skipped: {e:#}");
            }
        }
    }

    /// A 6.12 tree from `RQSPIN_KSRC` (`make unit-test` sets it), or None.
    fn kernel_tree() -> Option<PathBuf> {
        let tree = PathBuf::from(std::env::var_os("RQSPIN_KSRC")?);
        tree.join("scripts/checkpatch.pl").is_file().then_some(tree)
    }

    /// A patch changing a comment of kernel/bpf/verifier.c with the commit
    /// message `body`.
    fn kernel_patch(body: &str) -> String {
        format!(
            "From 1111111111111111111111111111111111111111 Mon Sep 17 00:00:00 2001\n\
             From: A U Thor <author@example.com>\n\
             Date: Mon, 1 Jan 2024 00:00:00 +0000\n\
             Subject: [PATCH] bpf: Reword a comment\n\
             \n\
             {body}\n\
             \n\
             Signed-off-by: A U Thor <author@example.com>\n\
             ---\n \
             kernel/bpf/verifier.c | 2 +-\n \
             1 file changed, 1 insertion(+), 1 deletion(-)\n\
             \n\
             diff --git a/kernel/bpf/verifier.c b/kernel/bpf/verifier.c\n\
             index 1111111..2222222 100644\n\
             --- a/kernel/bpf/verifier.c\n\
             +++ b/kernel/bpf/verifier.c\n\
             @@ -1,3 +1,3 @@\n \
             // SPDX-License-Identifier: GPL-2.0-only\n\
             -/* Copyright (c) 2011-2014 PLUMgrid, http://plumgrid.com\n\
             +/* Copyright (c) 2011-2014 PLUMgrid, https://plumgrid.com\n \
             * Copyright (c) 2016 Facebook\n\
             -- \n\
             2.39.5\n\
             \n"
        )
    }

    #[test]
    fn checkpatch_reports_misspelling() {
        let Some(tree) = kernel_tree() else {
            eprintln!(
                "checkpatch_reports_misspelling: skipped, RQSPIN_KSRC does not name a kernel tree \
                 with scripts/checkpatch.pl (`make unit-test` sets it)"
            );
            return;
        };
        let dir = TempDir::new("mailcheck-test").unwrap();
        let cover = dir.path.join(COVER_LETTER);
        let good = dir.path.join("0001-bpf-Reword-a-comment.patch");
        let typo = dir.path.join("0002-bpf-Reword-a-comment.patch");
        std::fs::write(
            &cover,
            "Subject: [PATCH 0/2] *** SUBJECT HERE ***\n\nnot a patch\n",
        )
        .unwrap();
        std::fs::write(
            &good,
            kernel_patch("Use https for the PLUMgrid address in the header."),
        )
        .unwrap();
        std::fs::write(
            &typo,
            kernel_patch("Use https for the PLUMgrid adress in the header."),
        )
        .unwrap();

        let sh = Shell::new().unwrap();
        let report = checkpatch(&sh, &tree, &[cover, good, typo]).unwrap();
        eprintln!("{}\n{}", report.summary, report.details);
        assert!(!report.ok);
        let lines: Vec<&str> = report.summary.lines().collect();
        assert_eq!(lines.len(), 2, "{}", report.summary);
        assert!(
            lines[0].starts_with(
                "0001-bpf-Reword-a-comment.patch: total: 0 errors, 0 warnings, 0 checks, "
            ) && lines[0].ends_with(" lines checked"),
            "{}",
            lines[0]
        );
        assert!(
            lines[1].starts_with(
                "0002-bpf-Reword-a-comment.patch: total: 0 errors, 1 warnings, 0 checks, "
            ),
            "{}",
            lines[1]
        );
        assert!(
            report
                .details
                .contains("WARNING: 'adress' may be misspelled - perhaps 'address'?"),
            "{}",
            report.details
        );
        assert!(report
            .details
            .contains("---- checkpatch 0001-bpf-Reword-a-comment.patch ----\n"));
        assert!(!report.details.contains(COVER_LETTER), "{}", report.details);
    }
}
