//! The runner reads an upstream, test_loader-annotated object: the kernel's
//! own verifier_spin_lock.c, built against its own bpf_misc.h (as xtask's
//! upstream.rs builds it), gives one test per privileged expectation and one
//! `@unpriv` test per `_unpriv` one, and nothing is reported as broken.
//! Host only (clang-19 and the 6.12 reference tree), nothing is loaded.

use std::path::Path;
use std::process::Command;

use bpf_runner::spec::{Expect, Mode, TestSpec};
use bpf_runner::suite::{self, TestCase};

mod common;
use common::{ksrc, KERNEL_UAPI};

static SELFTESTS: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| format!("{}/tools/testing/selftests/bpf", ksrc()));

#[test]
fn upstream_verifier_spin_lock_tags() {
    let progs = Path::new(SELFTESTS.as_str()).join("progs");
    assert!(
        progs.join("bpf_misc.h").is_file(),
        "the 6.12 kernel tree is missing at {} (run make unit-test, which prepares one, or set RQSPIN_KSRC)",
        *SELFTESTS
    );
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("upstream_tags");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let obj = dir.join("upstream_verifier_spin_lock.bpf.o");
    let output = Command::new("clang-19")
        .args(["-g", "-O2", "--target=bpf", "-mcpu=v3", "-Wall", "-Werror"])
        .arg("-D__TARGET_ARCH_x86")
        .arg(format!("-I{}", progs.display()))
        .arg(format!("-I{}", *KERNEL_UAPI))
        .arg("-I/usr/include/x86_64-linux-gnu")
        .arg("-c")
        .arg(progs.join("verifier_spin_lock.c"))
        .arg("-o")
        .arg(&obj)
        .output()
        .expect("running clang-19");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    let cases = suite::object_tests(&obj);
    let specs: Vec<&TestSpec> = cases
        .iter()
        .map(|c| match c {
            TestCase::Annotated { spec, .. } => spec,
            other => panic!("{other:?}"),
        })
        .collect();
    let privileged: Vec<&&TestSpec> = specs.iter().filter(|s| s.mode == Mode::Priv).collect();
    let unpriv: Vec<&&TestSpec> = specs.iter().filter(|s| s.mode == Mode::Unpriv).collect();
    assert_eq!(privileged.len(), 13, "{specs:#?}");
    assert_eq!(unpriv.len(), 11, "{specs:#?}");
    assert!(unpriv.iter().all(|s| s.expect == Expect::Failure
        && s.name.ends_with(" @unpriv")
        && s.msgs == [""]
        && s.retval.is_none()));

    // Object order, the @unpriv variant right after its privileged test.
    assert_eq!(
        specs[0].name,
        "upstream_verifier_spin_lock/spin_lock: test1 success"
    );
    assert_eq!(
        (specs[0].expect, specs[0].retval),
        (Expect::Success, Some(0))
    );
    assert_eq!(
        specs[1].name,
        "upstream_verifier_spin_lock/spin_lock: test1 success @unpriv"
    );
    let regsafe = specs
        .iter()
        .find(|s| {
            s.name
                .ends_with("regsafe() check_ids() similar id mappings")
        })
        .unwrap();
    assert_eq!(regsafe.msgs, ["29: safe"]);
    assert_eq!((regsafe.log_level, regsafe.prog_flags), (2, 8));
    let ld_abs = specs
        .iter()
        .filter(|s| s.name.contains("test11 ld_abs under lock"))
        .count();
    assert_eq!(ld_abs, 1, "no _unpriv tags, no @unpriv test");
}
