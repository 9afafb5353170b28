//! The kernel log, saved next to the results: lockdep splats, rqspinlock
//! timeouts and oopses show up there and nowhere else.

use anyhow::{bail, Result};

const SYSLOG_ACTION_READ_ALL: libc::c_int = 3;
const SYSLOG_ACTION_SIZE_BUFFER: libc::c_int = 10;

/// The whole kernel ring buffer (without consuming it).
pub fn read_kernel_log() -> Result<String> {
    // SAFETY: SIZE_BUFFER takes no buffer.
    let size = unsafe { libc::klogctl(SYSLOG_ACTION_SIZE_BUFFER, std::ptr::null_mut(), 0) };
    if size < 0 {
        bail!(
            "klogctl(SYSLOG_ACTION_SIZE_BUFFER): {}",
            std::io::Error::last_os_error()
        );
    }
    let mut buf = vec![0u8; size as usize];
    // SAFETY: buf is writable for `size` bytes.
    let n = unsafe { libc::klogctl(SYSLOG_ACTION_READ_ALL, buf.as_mut_ptr().cast(), size) };
    if n < 0 {
        bail!(
            "klogctl(SYSLOG_ACTION_READ_ALL): {}",
            std::io::Error::last_os_error()
        );
    }
    buf.truncate(n as usize);
    Ok(String::from_utf8_lossy(&buf).into_owned())
}
