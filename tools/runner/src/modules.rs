//! Loading the kernel modules under test. A module loaded without BTF (e.g.
//! built against a vmlinux without BTF, or pahole too old) registers no usable
//! kfuncs, and every test that calls one would fail with a confusing libbpf
//! error; checking /sys/kernel/btf here turns that into one clear setup error.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};

/// Name the kernel gives the module of `path`: the file name up to the first
/// dot, with `-` turned into `_`.
pub fn module_name(path: &Path) -> Result<String> {
    let file = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| anyhow!("{}: not a module file name", path.display()))?;
    let stem = file.split('.').next().unwrap_or_default();
    if stem.is_empty() {
        bail!("{}: not a module file name", path.display());
    }
    Ok(stem.replace('-', "_"))
}

/// finit_module(2) of `path`, without parameters. The module's init has run
/// when this returns; its error is the init's (or the loader's).
fn finit_module(path: &Path) -> Result<(), std::io::Error> {
    let file = File::open(path)?;
    // SAFETY: valid fd, empty NUL-terminated parameter string, no flags.
    let ret = unsafe { libc::syscall(libc::SYS_finit_module, file.as_raw_fd(), c"".as_ptr(), 0) };
    if ret != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Loads `path` with finit_module(2) (an already loaded module is fine) and
/// checks that its BTF is there. Returns the module name.
pub fn load_module(path: &Path) -> Result<String> {
    let name = module_name(path)?;
    if let Err(err) = finit_module(path) {
        if err.raw_os_error() != Some(libc::EEXIST) {
            return Err(err).with_context(|| format!("finit_module({})", path.display()));
        }
    }
    let btf = Path::new("/sys/kernel/btf").join(&name);
    if !btf.exists() {
        bail!(
            "module {name} loaded without BTF: its kfuncs are unusable ({} missing)",
            btf.display()
        );
    }
    Ok(name)
}

/// Loads `path` so that its init runs now, for a module whose init does the
/// work (the in-kernel benchmark): unlike [`load_module`], a copy left
/// loaded by an earlier run is unloaded first, since finit_module(2) would
/// return EEXIST without running the init again. No BTF is needed. Returns
/// the module name.
pub fn run_module_init(path: &Path) -> Result<String> {
    let name = module_name(path)?;
    if Path::new("/sys/module").join(&name).exists() {
        unload_module(&name).context("unloading the copy of an earlier run")?;
    }
    finit_module(path).with_context(|| format!("finit_module({})", path.display()))?;
    Ok(name)
}

/// delete_module(2) with O_NONBLOCK: fails at once (EWOULDBLOCK) instead of
/// waiting when the module is still in use.
pub fn unload_module(name: &str) -> Result<()> {
    let cname = std::ffi::CString::new(name)
        .with_context(|| format!("module name {name:?} holds a NUL byte"))?;
    // SAFETY: NUL-terminated name that outlives the call; O_NONBLOCK is a
    // flag the syscall takes.
    let ret = unsafe { libc::syscall(libc::SYS_delete_module, cname.as_ptr(), libc::O_NONBLOCK) };
    if ret != 0 {
        return Err(std::io::Error::last_os_error())
            .with_context(|| format!("delete_module({name})"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(
            module_name(Path::new("/x/bpf_rqspinlock.ko")).unwrap(),
            "bpf_rqspinlock"
        );
        assert_eq!(
            module_name(Path::new("bpf-rqspin-testmod.ko")).unwrap(),
            "bpf_rqspin_testmod"
        );
        assert_eq!(module_name(Path::new("m.ko.xz")).unwrap(), "m");
        assert!(module_name(Path::new("/")).is_err());
        assert!(module_name(Path::new(".ko")).is_err());
    }
}
