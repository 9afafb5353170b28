//! One pipeline run at a time per cache: two kernel builds at once would
//! corrupt the shared build trees (and starve a 2-core machine), and two VM
//! runs would write the same results directory. Held until the process exits.

use std::fs::File;
use std::os::fd::AsRawFd;

use anyhow::{Context, Result};

use crate::paths::Paths;

pub struct PipelineLock {
    _file: File,
}

pub fn acquire(paths: &Paths) -> Result<PipelineLock> {
    let path = paths.cache.join("pipeline.lock");
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    // SAFETY: flock() on a descriptor we own; LOCK_NB only makes it fail
    // instead of blocking.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        println!(
            "    another pipeline run holds {}; waiting for it",
            path.display()
        );
        // SAFETY: as above, blocking this time.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(std::io::Error::last_os_error()).context("locking the pipeline");
        }
    }
    Ok(PipelineLock { _file: file })
}
