//! test_loader's unprivileged mode for the `@unpriv` tests: they run only
//! when the kernel allows unprivileged BPF, and then load with the
//! capabilities that make a caller privileged for BPF dropped.

use anyhow::{Context, Result};

const UNPRIV_SYSCTL: &str = "/proc/sys/kernel/unprivileged_bpf_disabled";

/// Why `@unpriv` tests cannot run here, or `None` if they can. The rules are
/// test_loader's (`get_unpriv_disabled()`): the sysctl must be 0, and with
/// `mitigations=off` the verifier accepts programs for unprivileged users that
/// the expectations say it rejects. test_loader's third rule, BPF_F_ANY_ALIGNMENT
/// on an arch without efficient unaligned access, never applies on x86_64 and
/// arm64.
pub fn disabled_reason() -> Result<Option<String>> {
    let value = std::fs::read_to_string(UNPRIV_SYSCTL)
        .with_context(|| format!("reading {UNPRIV_SYSCTL} to decide on the @unpriv test"))?;
    let value = value.trim();
    if value != "0" {
        return Ok(Some(format!(
            "unprivileged BPF is disabled (kernel.unprivileged_bpf_disabled={value})"
        )));
    }
    let cmdline = std::fs::read_to_string("/proc/cmdline").context("reading /proc/cmdline")?;
    Ok(mitigations_off(&cmdline).then(|| {
        "mitigations=off: the verifier does not restrict unprivileged programs as the test expects"
            .to_string()
    }))
}

/// Sets `kernel.unprivileged_bpf_disabled` to 0. The kernel allows that
/// from 2 (`CONFIG_BPF_UNPRIV_DEFAULT_OFF`, the default) but not from 1,
/// which holds until the next boot.
pub fn allow_unpriv_bpf() -> Result<()> {
    std::fs::write(UNPRIV_SYSCTL, "0").with_context(|| {
        let now = std::fs::read_to_string(UNPRIV_SYSCTL).unwrap_or_default();
        format!(
            "enabling unprivileged BPF for the @unpriv tests: writing 0 to {UNPRIV_SYSCTL} \
             (now {}; 1 cannot be changed before a reboot)",
            now.trim()
        )
    })
}

fn mitigations_off(cmdline: &str) -> bool {
    cmdline
        .split_whitespace()
        .any(|arg| arg == "mitigations=off")
}

// linux/capability.h; libc has neither the numbers nor capget/capset.
const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;
const CAP_NET_ADMIN: u32 = 12;
const CAP_SYS_ADMIN: u32 = 21;
const CAP_PERFMON: u32 = 38;
const CAP_BPF: u32 = 39;
/// test_loader's `drop_capabilities()` set.
const DROPPED: [u32; 4] = [CAP_SYS_ADMIN, CAP_NET_ADMIN, CAP_PERFMON, CAP_BPF];

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

/// Version 3 capability sets come as two of these: bits 0-31, then 32-63.
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

fn capget() -> Result<[CapData; 2]> {
    let mut header = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let mut data = [CapData::default(); 2];
    // SAFETY: header and a two-element data array, as version 3 requires.
    let ret = unsafe { libc::syscall(libc::SYS_capget, &mut header, data.as_mut_ptr()) };
    if ret != 0 {
        return Err(std::io::Error::last_os_error()).context("capget");
    }
    Ok(data)
}

fn capset(data: &[CapData; 2]) -> Result<()> {
    let mut header = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    // SAFETY: as in capget; the kernel only reads data.
    let ret = unsafe { libc::syscall(libc::SYS_capset, &mut header, data.as_ptr()) };
    if ret != 0 {
        return Err(std::io::Error::last_os_error()).context("capset");
    }
    Ok(())
}

/// `caps` with [`DROPPED`] cleared from the effective set. Permitted stays,
/// so that the restore is allowed.
fn without_dropped(mut caps: [CapData; 2]) -> [CapData; 2] {
    for cap in DROPPED {
        caps[(cap / 32) as usize].effective &= !(1 << (cap % 32));
    }
    caps
}

/// The effective set with [`DROPPED`] cleared; [`Self::restore`] (or drop)
/// puts it back. Capabilities are per thread, and the loads happen on the
/// thread that holds this.
pub struct DroppedCaps {
    saved: [CapData; 2],
    restored: bool,
}

impl DroppedCaps {
    pub fn drop_bpf_caps() -> Result<Self> {
        let saved = capget()?;
        capset(&without_dropped(saved))
            .context("dropping CAP_SYS_ADMIN, CAP_NET_ADMIN, CAP_PERFMON, CAP_BPF")?;
        Ok(Self {
            saved,
            restored: false,
        })
    }

    /// Restores the capabilities; checked, unlike the fallback in drop.
    pub fn restore(mut self) -> Result<()> {
        self.restored = true;
        capset(&self.saved).context("restoring the dropped capabilities")
    }
}

impl Drop for DroppedCaps {
    fn drop(&mut self) {
        if !self.restored {
            let _ = capset(&self.saved);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mitigations_off_is_a_whole_argument() {
        assert!(mitigations_off("console=ttyS0 mitigations=off quiet\n"));
        assert!(!mitigations_off("console=ttyS0 mitigations=auto"));
        assert!(!mitigations_off("xmitigations=off"));
    }

    /// Capabilities are per thread, so this does not disturb other tests.
    #[test]
    fn drop_and_restore_on_this_thread() {
        let before = capget().unwrap();
        let caps = DroppedCaps::drop_bpf_caps().unwrap();
        let during = capget().unwrap();
        for cap in DROPPED {
            let word = (cap / 32) as usize;
            assert_eq!(during[word].effective & (1 << (cap % 32)), 0, "cap {cap}");
        }
        assert_eq!(during[0].permitted, before[0].permitted);
        caps.restore().unwrap();
        let after = capget().unwrap();
        assert_eq!(
            (after[0].effective, after[1].effective),
            (before[0].effective, before[1].effective)
        );
    }

    #[test]
    fn dropped_bits_land_in_the_right_word() {
        let data = without_dropped(
            [CapData {
                effective: u32::MAX,
                permitted: u32::MAX,
                inheritable: 0,
            }; 2],
        );
        assert_eq!(data[0].effective, !((1 << 21) | (1 << 12)));
        assert_eq!(data[1].effective, !((1 << 6) | (1 << 7)));
        assert_eq!(
            data[0].permitted,
            u32::MAX,
            "permitted stays, for the restore"
        );
    }
}
