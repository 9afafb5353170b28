//! Whether to use KVM. `/dev/kvm` opening is not enough: on some hosts (a
//! software hypervisor that cannot run a stock kernel) a guest hangs right
//! after the BIOS. So KVM is used only after a probe boot under it finished,
//! and the verdict is cached per host kernel and CPU model.
//!
//! `VMTEST_KVM=yes|no|auto` (default auto) overrides.

use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Result};

use crate::key::{self, Key};
use crate::paths::Paths;
use crate::stage::Stage;
use crate::vm::{Outcome, Vm};

/// A probe boot that has not finished by then counts as "KVM does not work".
const PROBE_DEADLINE: Duration = Duration::from_secs(60);

pub fn decide(paths: &Paths, vm_template: &Vm) -> Result<bool> {
    let mode = std::env::var("VMTEST_KVM").unwrap_or_else(|_| "auto".into());
    match mode.as_str() {
        "no" | "0" => return Ok(false),
        "yes" | "1" => {
            if !dev_kvm_usable() {
                bail!("VMTEST_KVM=yes but /dev/kvm cannot be opened read-write");
            }
            return Ok(true);
        }
        "auto" | "" => {}
        other => bail!("VMTEST_KVM must be yes, no or auto, not {other:?}"),
    }
    if vm_template.arch != crate::arch::Arch::host() {
        return Ok(false);
    }
    if !dev_kvm_usable() {
        println!("    /dev/kvm is not usable: TCG (software emulation)");
        return Ok(false);
    }
    let host = host_identity();
    let stamp = paths
        .cache
        .join(format!("kvm-verdict-{}", Key::new("kvm").str(&host).hex()));
    if let Some(v) = key::read_stamp(&stamp) {
        let ok = v == "works";
        println!(
            "    KVM {} on this host (cached probe, {})",
            if ok {
                "works"
            } else {
                "does not boot our kernel"
            },
            stamp.display()
        );
        return Ok(ok);
    }
    let stage = Stage::start("kvm probe");
    let console = paths.cache.join("kvm-probe-console.log");
    let probe = Vm {
        kvm: true,
        console: &console,
        ..*vm_template
    };
    let (outcome, _) = probe.run(&["true".to_string()], PROBE_DEADLINE, "    probe| ")?;
    let ok = matches!(outcome, Outcome::Exited(0));
    key::write_stamp(&stamp, if ok { "works" } else { "broken" })?;
    stage.done(if ok {
        "KVM boots our kernel: using it".to_string()
    } else {
        format!(
            "KVM did not boot our kernel within {} s: using TCG (console: {})",
            PROBE_DEADLINE.as_secs(),
            console.display()
        )
    });
    Ok(ok)
}

fn dev_kvm_usable() -> bool {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(Path::new("/dev/kvm"))
        .is_ok()
}

fn host_identity() -> String {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .unwrap_or("");
    format!("{}|{}", release.trim(), model)
}
