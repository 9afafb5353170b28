//! Host tests on real objects: build BPF C with clang-19 (the pipeline's
//! command line) and check what the runner reads out of them. Nothing here
//! loads BPF, so it runs on any host; without clang-19 it fails loudly.

use std::path::{Path, PathBuf};
use std::process::Command;

use bpf_runner::spec::{Expect, TestSpec};
use bpf_runner::suite::{self, TestCase};

mod common;
use common::KERNEL_UAPI;

const CLANG: &str = "clang-19";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repo root")
}

/// A fresh directory under the cargo target dir for this test.
fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Compiles `src` into `out` as the pipeline does (`debug` = the `-g` that
/// emits the decl tags).
fn build_bpf(src: &Path, out: &Path, debug: bool) {
    let found = Command::new(CLANG).arg("--version").output();
    assert!(
        found.is_ok_and(|o| o.status.success()),
        "{CLANG} is required to build the BPF test objects (apt-get install clang-19)"
    );
    assert!(
        Path::new(KERNEL_UAPI.as_str()).is_dir(),
        "kernel uapi headers missing at {} (a 6.12 tree: run make unit-test, which prepares one, or set RQSPIN_KSRC)",
        *KERNEL_UAPI
    );
    let include = repo_root().join("selftests/include");
    let mut cmd = Command::new(CLANG);
    if debug {
        cmd.arg("-g");
    }
    cmd.args(["-O2", "--target=bpf", "-mcpu=v3", "-D__TARGET_ARCH_x86"])
        .arg(format!("-I{}", include.display()))
        .arg(format!("-I{}", *KERNEL_UAPI))
        .arg("-I/usr/include/x86_64-linux-gnu")
        .arg("-c")
        .arg(src)
        .arg("-o")
        .arg(out);
    let output = cmd.output().expect("running clang-19");
    assert!(
        output.status.success(),
        "{CLANG} failed on {}:\n{}",
        src.display(),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tagged.c")
}

fn specs(cases: &[TestCase]) -> Vec<&TestSpec> {
    cases
        .iter()
        .map(|c| match c {
            TestCase::Annotated { spec, .. } => spec,
            other => panic!("expected only annotated tests, got {other:?}"),
        })
        .collect()
}

#[test]
fn fixture_tags_are_read_from_btf() {
    let dir = scratch("fixture_tags");
    let obj = dir.join("tagged.bpf.o");
    build_bpf(&fixture(), &obj, true);

    let cases = suite::object_tests(&obj);
    let specs = specs(&cases);
    let names: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
    // Object order; the auxiliary and runtime-only programs are not tests.
    assert_eq!(
        names,
        [
            "tagged/returns seven",
            "tagged/null_deref",
            "tagged/flags_and_level"
        ]
    );

    let ret_seven = specs[0];
    assert_eq!(ret_seven.prog_name, "ret_seven");
    assert_eq!(ret_seven.expect, Expect::Success);
    assert_eq!(ret_seven.retval, Some(7));
    assert_eq!(ret_seven.log_level, 0);
    assert!(ret_seven.msgs.is_empty());

    let null_deref = specs[1];
    assert_eq!(null_deref.expect, Expect::Failure);
    assert_eq!(
        null_deref.msgs,
        ["0: (b7) r0 = 0", "{{R[0-9]}} invalid mem access 'scalar'"]
    );
    assert_eq!(null_deref.log_level, 1);
    assert_eq!(null_deref.retval, None);

    let flags = specs[2];
    assert_eq!(flags.expect, Expect::Success);
    assert_eq!(flags.log_level, 2);
    assert_eq!(
        flags.prog_flags,
        8 | 1,
        "BPF_F_TEST_STATE_FREQ | BPF_F_STRICT_ALIGNMENT"
    );
    assert_eq!(flags.msgs, ["processed {{[0-9]+}} insns"]);
    assert_eq!(flags.retval, Some(-35));
}

#[test]
fn runtime_spin_lock_object_has_no_annotated_test() {
    let dir = scratch("runtime_spin_lock");
    let obj = dir.join("runtime_spin_lock.bpf.o");
    build_bpf(
        &repo_root().join("selftests/progs/runtime_spin_lock.c"),
        &obj,
        true,
    );

    // __runtime_only: neither a test nor a broken entry.
    let cases = suite::object_tests(&obj);
    assert!(cases.is_empty(), "{cases:?}");
    let all = suite::collect(&dir).unwrap();
    let names: Vec<String> = all.iter().map(TestCase::name).collect();
    assert_eq!(names, runtime_names());
}

/// Every registered runtime test, in run order.
fn runtime_names() -> Vec<String> {
    bpf_runner::runtime::TESTS
        .iter()
        .map(|t| t.full_name())
        .collect()
}

/// The resilient-lock runtime and benchmark objects build, their programs
/// are no tests of their own, and every program the Rust side loads by name
/// exists.
#[test]
fn res_lock_runtime_objects_build_and_hold_the_named_programs() {
    let dir = scratch("res_lock_objects");
    for stem in ["runtime_res_lock", "bench_lock"] {
        build_bpf(
            &repo_root().join(format!("selftests/progs/{stem}.c")),
            &dir.join(format!("{stem}.bpf.o")),
            true,
        );
        let cases = suite::object_tests(&dir.join(format!("{stem}.bpf.o")));
        assert!(cases.is_empty(), "{stem}: {cases:?}");
    }
    let named = [
        (
            "runtime_res_lock",
            &[
                "rl_aa",
                "rl_abba_ab",
                "rl_abba_ba",
                "rl_overflow",
                "rl_many_each",
                "rl_stall_holder",
                "rl_stall_wait",
                "rl_counter",
                "rl_counter_irqsave",
                "rl_irqsave",
                "rl_upd_array_holder",
                "rl_upd_array_contender",
                "rl_upd_hash_holder",
                "rl_upd_hash_contender",
                "rl_upd_probe_array",
                "rl_upd_probe_hash",
                "rl_mt_lock_target",
            ][..],
        ),
        (
            "bench_lock",
            &[
                "bench_empty",
                "bench_spin_lock",
                "bench_res_spin_lock",
                "bench_res_spin_lock_irqsave",
            ][..],
        ),
    ];
    for (stem, wanted) in named {
        let progs = bpf_runner::libbpf::Object::open(&dir.join(format!("{stem}.bpf.o")))
            .unwrap()
            .program_names();
        for p in wanted {
            assert!(
                progs.iter().any(|n| n == p),
                "{stem}: {p} missing from {progs:?}"
            );
        }
    }
    // runtime/res_lock_map_types looks these types up in the object's BTF;
    // the two-lock ones reach it only through an uncalled function.
    let obj = bpf_runner::libbpf::Object::open(&dir.join("runtime_res_lock.bpf.o")).unwrap();
    for (name, kind) in [
        ("__u32", libbpf_sys::BTF_KIND_TYPEDEF),
        ("__u64", libbpf_sys::BTF_KIND_TYPEDEF),
        ("rl_elem", libbpf_sys::BTF_KIND_STRUCT),
        ("rl_owner", libbpf_sys::BTF_KIND_STRUCT),
        ("rl_two_locks", libbpf_sys::BTF_KIND_STRUCT),
        ("rl_lock_array", libbpf_sys::BTF_KIND_STRUCT),
    ] {
        obj.btf_type_id(name, kind)
            .unwrap_or_else(|e| panic!("{name}: {e:#}"));
    }
}

/// mainline's API object: every program is an annotated test named after
/// its description.
#[test]
fn res_spin_lock_object_holds_only_annotated_tests() {
    let dir = scratch("res_spin_lock_object");
    let obj = dir.join("res_spin_lock.bpf.o");
    build_bpf(
        &repo_root().join("selftests/progs/res_spin_lock.c"),
        &obj,
        true,
    );
    let cases = suite::object_tests(&obj);
    let specs = specs(&cases);
    assert!(!specs.is_empty());
    assert!(
        specs
            .iter()
            .all(|s| s.name.starts_with("res_spin_lock/res_spin_lock: ")),
        "{specs:?}"
    );
}

#[test]
fn object_without_debug_info_is_a_failure_not_a_silent_pass() {
    let dir = scratch("no_debug_info");
    let obj = dir.join("tagged.bpf.o");
    build_bpf(&fixture(), &obj, false);
    match suite::object_tests(&obj).as_slice() {
        [TestCase::Broken { name, error }] => {
            assert_eq!(name, "tagged/object");
            assert!(error.contains("-g"), "{error}");
        }
        other => panic!("{other:?}"),
    }
}

/// A program without annotation next to an annotated one is a forgotten
/// test: a failure named after it, while the annotated one still runs.
#[test]
fn unannotated_program_is_a_failure() {
    let dir = scratch("forgotten");
    let obj = dir.join("forgotten.bpf.o");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/forgotten.c");
    build_bpf(&src, &obj, true);
    let cases = suite::object_tests(&obj);
    assert_eq!(cases.len(), 2, "{cases:?}");
    assert!(
        matches!(&cases[0], TestCase::Annotated { spec, .. } if spec.name == "forgotten/annotated"),
        "{cases:?}"
    );
    match &cases[1] {
        TestCase::Broken { name, error } => {
            assert_eq!(name, "forgotten/forgotten");
            assert!(error.contains("no test annotation"), "{error}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn unreadable_object_is_a_failure() {
    let dir = scratch("garbage");
    let obj = dir.join("junk.bpf.o");
    std::fs::write(&obj, b"not an ELF file").unwrap();
    match suite::object_tests(&obj).as_slice() {
        [TestCase::Broken { name, error }] => {
            assert_eq!(name, "junk/object");
            assert!(error.contains("junk.bpf.o"), "{error}");
        }
        other => panic!("{other:?}"),
    }
}

fn runner(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_bpf-runner"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().expect("exit code"),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn list_and_filter_on_built_objects() {
    let dir = scratch("list");
    build_bpf(&fixture(), &dir.join("tagged.bpf.o"), true);
    build_bpf(
        &repo_root().join("selftests/progs/runtime_spin_lock.c"),
        &dir.join("runtime_spin_lock.bpf.o"),
        true,
    );
    std::fs::write(dir.join("ignored.o"), b"not a .bpf.o").unwrap();
    let objs = dir.to_str().unwrap();

    let (code, stdout, stderr) = runner(&["--objs", objs, "--list"]);
    assert_eq!(code, 0, "{stderr}");
    let mut expected: Vec<String> = [
        "tagged/returns seven",
        "tagged/null_deref",
        "tagged/flags_and_level",
    ]
    .map(String::from)
    .to_vec();
    expected.extend(runtime_names());
    assert_eq!(stdout.lines().collect::<Vec<_>>(), expected);

    let (code, stdout, _) = runner(&[
        "--objs",
        objs,
        "--list",
        "--filter",
        "tagged/*_*",
        "--filter",
        "runtime/spin*",
    ]);
    assert_eq!(code, 0);
    assert_eq!(
        stdout.lines().collect::<Vec<_>>(),
        [
            "tagged/null_deref",
            "tagged/flags_and_level",
            "runtime/spin_lock_exact_total"
        ]
    );
}

#[test]
fn setup_errors_exit_3() {
    let (code, _, stderr) = runner(&[
        "--objs",
        "/nonexistent/objs",
        "--out",
        "/tmp/unused",
        "--list",
    ]);
    assert_eq!(code, 3);
    assert!(stderr.contains("/nonexistent/objs"), "{stderr}");
    // Bad usage is a setup error too, not clap's 2 (= "no test ran").
    let (code, _, _) = runner(&["--objs", "/tmp", "--bogus"]);
    assert_eq!(code, 3);
    let (code, _, _) = runner(&["--objs", "/tmp"]);
    assert_eq!(code, 3, "--out is required without --list");
}
