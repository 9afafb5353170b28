//! Stage banners with elapsed time, and commands whose output goes to a log
//! that is shown (its tail) only when they fail.

use std::fs::File;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{bail, Context, Result};

/// A named pipeline stage; prints its name on start and its duration on end.
pub struct Stage {
    name: String,
    start: Instant,
}

impl Stage {
    pub fn start(name: impl Into<String>) -> Stage {
        let name = name.into();
        println!("==> {name}");
        Stage {
            name,
            start: Instant::now(),
        }
    }

    pub fn done(self, detail: impl AsRef<str>) {
        println!(
            "<== {}: {} ({:.1} s)",
            self.name,
            detail.as_ref(),
            self.start.elapsed().as_secs_f64()
        );
    }
}

/// Runs `cmd` with stdout and stderr appended to `log`. On failure prints the
/// last lines of the log and returns an error that names `what` and the log.
pub fn run_logged(mut cmd: Command, log: &Path, what: &str) -> Result<()> {
    let file = File::options()
        .create(true)
        .append(true)
        .open(log)
        .with_context(|| format!("opening log {}", log.display()))?;
    let status = cmd
        .stdin(Stdio::null())
        .stdout(file.try_clone()?)
        .stderr(file)
        .status()
        .with_context(|| format!("{what}: cannot start {:?}", cmd.get_program()))?;
    if !status.success() {
        print_tail(log, 40);
        bail!("{what} failed ({status}); full log: {}", log.display());
    }
    Ok(())
}

/// Prints the last `n` lines of a text file, indented.
pub fn print_tail(path: &Path, n: usize) {
    let Ok(text) = std::fs::read_to_string(path) else {
        return;
    };
    let lines: Vec<&str> = text.lines().collect();
    println!(
        "---- last {} lines of {} ----",
        n.min(lines.len()),
        path.display()
    );
    for line in &lines[lines.len().saturating_sub(n)..] {
        println!("    {line}");
    }
    println!("----");
}
