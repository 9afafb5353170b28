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

/// Loads `path` with finit_module(2) (an already loaded module is fine) and
/// checks that its BTF is there. Returns the module name.
pub fn load_module(path: &Path) -> Result<String> {
    let name = module_name(path)?;
    let file = File::open(path).with_context(|| format!("opening module {}", path.display()))?;
    // SAFETY: valid fd, empty NUL-terminated parameter string, no flags.
    let ret = unsafe { libc::syscall(libc::SYS_finit_module, file.as_raw_fd(), c"".as_ptr(), 0) };
    if ret != 0 {
        let err = std::io::Error::last_os_error();
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
