//! Upstream lock selftests, built from the tree under test and run by our
//! runner next to our own objects: tests we did not write, so they check the
//! patched verifier against mainline's expectations rather than ours.
//!
//! - `progs/verifier_spin_lock.c`: already annotated (the tree's bpf_misc.h,
//!   with `_unpriv` tags); compiled as it is, into
//!   `upstream_verifier_spin_lock.bpf.o`.
//! - `progs/test_spin_lock_fail.c`: its expectations live in
//!   `prog_tests/spin_lock.c` (`spin_lock_fail_tests[]`: program name and a
//!   POSIX regex the log of a level-1 load must match). A generated wrapper
//!   declares every program of that table with bpf_misc.h tags and then
//!   includes the source; clang puts the tags of a declaration on the
//!   definition that follows, which [`check_tags`] verifies in the object.
//!   Object `upstream_test_spin_lock_fail.bpf.o`.

mod bre;
mod c_table;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

use anyhow::{bail, ensure, Context, Result};

use crate::kernel::Built;
use crate::paths::Paths;

/// Selftest directory of the kernel tree.
const SELFTESTS: &str = "tools/testing/selftests/bpf";
/// Prefix of the object stems, and so of the test names.
const PREFIX: &str = "upstream_";
const FAIL_TABLE: &str = "spin_lock_fail_tests";

/// One row of `spin_lock_fail_tests[]`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Expectation {
    prog: String,
    /// The POSIX basic regex as written upstream.
    regex: String,
    /// The same as a `__msg` of ours.
    msg: String,
}

/// Builds the upstream objects into `objs`; returns how many.
pub fn build_objects(paths: &Paths, kernel: &Built, objs: &Path, log: &Path) -> Result<usize> {
    let selftests = kernel.src.join(SELFTESTS);
    let progs = selftests.join("progs");
    let work = paths.selftest_build(kernel.arch).join("upstream");
    std::fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;

    let stem = format!("{PREFIX}verifier_spin_lock");
    crate::selftests::compile_bpf(
        paths,
        kernel,
        std::slice::from_ref(&progs),
        &progs.join("verifier_spin_lock.c"),
        &objs.join(format!("{stem}.bpf.o")),
        log,
    )?;

    let table_src = selftests.join("prog_tests/spin_lock.c");
    let table = read_table(&table_src)?;
    vmlinux_h(kernel, &work.join("vmlinux.h"))?;
    let fail_src = progs.join("test_spin_lock_fail.c");
    let stem = format!("{PREFIX}test_spin_lock_fail");
    let wrapper = work.join(format!("{stem}.c"));
    std::fs::write(&wrapper, wrapper_source(&fail_src, &table_src, &table))
        .with_context(|| format!("writing {}", wrapper.display()))?;
    let obj = objs.join(format!("{stem}.bpf.o"));
    // progs/ first so that its bpf_misc.h is the one used, then vmlinux.h
    // and bpf_experimental.h (selftests/bpf).
    crate::selftests::compile_bpf(
        paths,
        kernel,
        &[progs, work.clone(), selftests],
        &wrapper,
        &obj,
        log,
    )?;
    check_tags(&obj, &table)?;
    Ok(2)
}

/// `vmlinux.h` of the built kernel, for the CO-RE style upstream programs.
pub(crate) fn vmlinux_h(kernel: &Built, out: &Path) -> Result<()> {
    let vmlinux = kernel.obj.join("vmlinux");
    let output = Command::new("bpftool")
        .args(["btf", "dump", "file"])
        .arg(&vmlinux)
        .args(["format", "c"])
        .output()
        .context("running bpftool (xtask deps installs it)")?;
    if !output.status.success() {
        bail!(
            "bpftool btf dump file {} failed: {}",
            vmlinux.display(),
            String::from_utf8_lossy(&output.stderr).trim_end()
        );
    }
    std::fs::write(out, &output.stdout).with_context(|| format!("writing {}", out.display()))
}

fn read_table(path: &Path) -> Result<Vec<Expectation>> {
    let source =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    parse_table(&source).with_context(|| format!("in {}", path.display()))
}

/// `spin_lock_fail_tests[]` of prog_tests/spin_lock.c.
fn parse_table(source: &str) -> Result<Vec<Expectation>> {
    let rows = c_table::string_rows(source, FAIL_TABLE)?;
    ensure!(!rows.is_empty(), "{FAIL_TABLE}[] is empty");
    let mut seen = BTreeMap::new();
    let mut table = Vec::new();
    for (i, row) in rows.into_iter().enumerate() {
        let [prog, regex]: [String; 2] = row.try_into().map_err(|row: Vec<String>| {
            anyhow::anyhow!("row {} has {} fields, not 2", i + 1, row.len())
        })?;
        ensure!(
            !prog.is_empty()
                && !prog.starts_with(|c: char| c.is_ascii_digit())
                && prog.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "row {}: '{prog}' is not a program name",
            i + 1
        );
        if let Some(first) = seen.insert(prog.clone(), i + 1) {
            bail!("program '{prog}' in rows {first} and {}", i + 1);
        }
        let msg = bre::to_msg(&regex).with_context(|| format!("row {} ({prog})", i + 1))?;
        table.push(Expectation { prog, regex, msg });
    }
    Ok(table)
}

/// A C string literal holding `text`.
fn c_string(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            // Octal, always three digits, so that a following digit cannot
            // extend the escape.
            c if c.is_ascii_control() => {
                let _ = write!(out, "\\{:03o}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The wrapper: one tagged declaration per table row, then the program
/// source. `int name();` has no prototype, so it agrees with whatever
/// parameters the definition has; clang warns about exactly that, hence the
/// pragma.
fn wrapper_source(source: &Path, table_src: &Path, table: &[Expectation]) -> String {
    let mut c = String::new();
    let _ = writeln!(
        c,
        "/* Generated by tools/xtask/src/upstream.rs: the expectations of\n \
         * {FAIL_TABLE}[] in\n \
         * {}\n \
         * (a failed load at log level 1 whose log matches the regex), as\n \
         * bpf_misc.h tags on declarations of the programs of the included file.\n \
         */",
        table_src.display()
    );
    c.push_str("#include \"bpf_misc.h\"\n\n");
    c.push_str("#pragma clang diagnostic push\n");
    c.push_str("#pragma clang diagnostic ignored \"-Wdeprecated-non-prototype\"\n");
    for e in table {
        let _ = writeln!(
            c,
            "/* regex: {} */",
            c_string(&e.regex)
                .replace("*/", "*\\/")
                .replace("/*", "/\\*")
        );
        let _ = writeln!(
            c,
            "int {}() __failure __log_level(1)\n\t__msg({});",
            e.prog,
            c_string(&e.msg)
        );
    }
    c.push_str("#pragma clang diagnostic pop\n\n");
    let _ = writeln!(c, "#include {}", c_string(&source.display().to_string()));
    c
}

/// Every table row's program is in `obj` with exactly the tags the wrapper
/// declared: a program missing from the source, or a clang that does not
/// carry declaration tags over to the definition, must not turn the row into
/// a test that silently never runs.
fn check_tags(obj: &Path, table: &[Expectation]) -> Result<()> {
    let output = Command::new("bpftool")
        .args(["-j", "btf", "dump", "file"])
        .arg(obj)
        .output()
        .context("running bpftool")?;
    if !output.status.success() {
        bail!(
            "bpftool btf dump file {} failed: {}",
            obj.display(),
            String::from_utf8_lossy(&output.stderr).trim_end()
        );
    }
    let dump: serde_json::Value =
        serde_json::from_slice(&output.stdout).context("parsing bpftool's JSON")?;
    let tags = func_tags(&dump)?;
    for e in table {
        let found = tags.get(&e.prog).with_context(|| {
            format!(
                "{}: program '{}' of {FAIL_TABLE}[] is not in the object",
                obj.display(),
                e.prog
            )
        })?;
        let mut found: Vec<String> = found
            .iter()
            .filter_map(|t| t.strip_prefix("comment:"))
            .map(strip_msg_counter)
            .collect();
        found.sort();
        let mut want = vec![
            "test_expect_failure".to_string(),
            "test_log_level=1".to_string(),
            format!("test_expect_msg={}", e.msg),
        ];
        want.sort();
        ensure!(
            found == want,
            "{}: program '{}' carries tags {found:?}, expected {want:?} \
             (clang did not merge the declaration's btf_decl_tags?)",
            obj.display(),
            e.prog
        );
    }
    Ok(())
}

/// `test_expect_msg=<counter>=text` without the counter.
fn strip_msg_counter(tag: &str) -> String {
    match tag
        .strip_prefix("test_expect_msg=")
        .and_then(|rest| rest.split_once('='))
    {
        Some((_, text)) => format!("test_expect_msg={text}"),
        None => tag.to_string(),
    }
}

/// Decl tags on whole functions (`component_idx == -1`) by function name,
/// from `bpftool -j btf dump`.
pub(crate) fn func_tags(dump: &serde_json::Value) -> Result<BTreeMap<String, Vec<String>>> {
    let types = dump["types"]
        .as_array()
        .context("bpftool JSON without 'types'")?;
    let mut funcs = BTreeMap::new();
    for t in types {
        if t["kind"] == "FUNC" {
            if let (Some(id), Some(name)) = (t["id"].as_u64(), t["name"].as_str()) {
                funcs.insert(id, name.to_string());
            }
        }
    }
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for t in types {
        if t["kind"] != "DECL_TAG" || t["component_idx"] != -1 {
            continue;
        }
        let target = t["type_id"].as_u64().and_then(|id| funcs.get(&id));
        if let (Some(func), Some(tag)) = (target, t["name"].as_str()) {
            out.entry(func.clone()).or_default().push(tag.to_string());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPIN_LOCK_C: &str = r#"
static struct {
	const char *prog_name;
	const char *err_msg;
} spin_lock_fail_tests[] = {
	{ "lock_id_global_zero",
	  "; R1_w=map_value(map=.data.A,ks=4,vs=4)\n2: (85) call bpf_this_cpu_ptr#154\n"
	  "R1 type=map_value expected=percpu_ptr_" },
	{ "lock_id_mismatch_kptr_kptr", "bpf_spin_unlock of different lock" },
	{ "lock_id_mapval_preserve",
	  "[0-9]\\+: (bf) r1 = r0                       ;" },
};
"#;

    #[test]
    fn table_rows_become_messages() {
        let table = parse_table(SPIN_LOCK_C).unwrap();
        let progs: Vec<&str> = table.iter().map(|e| e.prog.as_str()).collect();
        assert_eq!(
            progs,
            [
                "lock_id_global_zero",
                "lock_id_mismatch_kptr_kptr",
                "lock_id_mapval_preserve"
            ]
        );
        assert_eq!(
            table[0].msg,
            "; R1_w=map_value(map={{(?s:.)}}data{{(?s:.)}}A,ks=4,vs=4)\n2: (85) call bpf_this_cpu_ptr#154\nR1 type=map_value expected=percpu_ptr_"
        );
        assert_eq!(table[1].msg, "bpf_spin_unlock of different lock");
        assert_eq!(
            table[2].regex,
            "[0-9]\\+: (bf) r1 = r0                       ;"
        );
        assert_eq!(
            table[2].msg,
            "{{[0-9]+}}: (bf) r1 = r0                       ;"
        );
    }

    /// A 6.12 source tree: `$RQSPIN_KSRC` (`make unit-test` sets it to the
    /// tree its source stage prepares), else one the pipeline unpacked into
    /// its cache.
    fn kernel_tree() -> std::path::PathBuf {
        if let Some(p) = std::env::var_os("RQSPIN_KSRC") {
            return p.into();
        }
        let cache = std::env::var_os("RQSPIN_CACHE")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| {
                Path::new(&std::env::var_os("HOME").unwrap_or_default()).join(".cache/rqspin-bpf")
            });
        let mut trees: Vec<std::path::PathBuf> = std::fs::read_dir(cache.join("src"))
            .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        trees.retain(|p| p.join(SELFTESTS).join("prog_tests/spin_lock.c").exists());
        trees.sort();
        trees.into_iter().next().unwrap_or_else(|| {
            panic!(
                "no 6.12 source tree in {}: run `make unit-test` (it prepares one) or set RQSPIN_KSRC",
                cache.join("src").display()
            )
        })
    }

    /// The 6.12 table itself is fully understood (every regex translates).
    #[test]
    fn reference_tree_table_translates() {
        let tree = kernel_tree().join(SELFTESTS);
        let table_src = tree.join("prog_tests/spin_lock.c");
        let table = read_table(&table_src).unwrap();
        assert_eq!(table.len(), 23);
        assert_eq!(table[0].prog, "lock_id_kptr_preserve");
        assert_eq!(table[22].prog, "lock_global_subprog_call2");
        let wrapper = wrapper_source(
            &tree.join("progs/test_spin_lock_fail.c"),
            &table_src,
            &table,
        );
        if let Some(out) = std::env::var_os("UPSTREAM_WRAPPER_OUT") {
            std::fs::write(out, &wrapper).unwrap();
        }
    }

    #[test]
    fn bad_tables_are_errors() {
        for bad in [
            "spin_lock_fail_tests[] = { };",
            "spin_lock_fail_tests[] = { { \"a\" } };",
            "spin_lock_fail_tests[] = { { \"a\", \"x\", \"y\" } };",
            "spin_lock_fail_tests[] = { { \"a b\", \"x\" } };",
            "spin_lock_fail_tests[] = { { \"a\", \"x\" }, { \"a\", \"y\" } };",
            "spin_lock_fail_tests[] = { { \"a\", \"\\\\(x\\\\)\" } };",
        ] {
            assert!(parse_table(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn c_strings_round_trip_through_the_table_parser() {
        let text = "a\\b\"c\nd\te\x01f2{{[0-9]+}}";
        let literal = c_string(text);
        assert_eq!(literal, "\"a\\\\b\\\"c\\nd\\te\\001f2{{[0-9]+}}\"");
        let src = format!("t[] = {{ {{ {literal} }} }};");
        assert_eq!(c_table::string_rows(&src, "t").unwrap(), vec![vec![text]]);
    }

    #[test]
    fn wrapper_declares_then_includes() {
        let table = parse_table(SPIN_LOCK_C).unwrap();
        let c = wrapper_source(
            Path::new("/t/progs/test_spin_lock_fail.c"),
            Path::new("/t/prog_tests/spin_lock.c"),
            &table,
        );
        assert!(c.contains(
            "int lock_id_mismatch_kptr_kptr() __failure __log_level(1)\n\t__msg(\"bpf_spin_unlock of different lock\");"
        ));
        let include = c
            .find("#include \"/t/progs/test_spin_lock_fail.c\"")
            .unwrap();
        let last_decl = c.rfind("__msg(").unwrap();
        assert!(last_decl < include, "declarations must come first");
        assert!(c.find("#include \"bpf_misc.h\"").unwrap() < c.find("__failure").unwrap());
    }

    #[test]
    fn tags_are_found_per_function() {
        let dump = serde_json::json!({"types": [
            {"id": 1, "kind": "INT", "name": "int"},
            {"id": 3, "kind": "FUNC", "name": "p", "type_id": 2},
            {"id": 4, "kind": "DECL_TAG", "name": "comment:test_expect_failure", "type_id": 3, "component_idx": -1},
            {"id": 5, "kind": "DECL_TAG", "name": "comment:test_expect_msg=7=x=y", "type_id": 3, "component_idx": -1},
            {"id": 6, "kind": "DECL_TAG", "name": "arg_tag", "type_id": 3, "component_idx": 0},
            {"id": 7, "kind": "DECL_TAG", "name": "on_var", "type_id": 1, "component_idx": -1},
        ]});
        let tags = func_tags(&dump).unwrap();
        assert_eq!(tags.len(), 1);
        assert_eq!(
            tags["p"],
            [
                "comment:test_expect_failure",
                "comment:test_expect_msg=7=x=y"
            ]
        );
        assert_eq!(
            strip_msg_counter("test_expect_msg=7=x=y"),
            "test_expect_msg=x=y"
        );
        assert_eq!(strip_msg_counter("test_log_level=1"), "test_log_level=1");
    }
}
