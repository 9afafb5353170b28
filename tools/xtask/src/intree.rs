//! The series' selftests patch: our verifier tests as selftests of the
//! kernel's own (`tools/testing/selftests/bpf`). Each object becomes a
//! program under `progs/`, copied byte for byte from `selftests/progs/`,
//! with a `prog_tests/` file that runs it with `RUN_TESTS()`; the headers it
//! needs that 6.12 lacks go under `progs/`, and the options it needs into
//! the selftests' `config`. [`selftest_files`] gives the files; series.rs
//! commits them.
//!
//! One source: our runner runs what the tree holds. [`build_objects`]
//! compiles the in-tree objects from the tree under test, the way the
//! selftests Makefile compiles `progs/*.c`, and refuses a tree whose copy is
//! missing (the series was not applied) or differs from the repository's.
//!
//! Which objects are in tree ([`INTREE_OBJECTS`]): the verifier tests of the
//! series, `kf_spin_lock` (KF_SPIN_LOCK), `res_spin_lock` (mainline's
//! resilient lock API, rules and messages), `verifier_res_lock_prune` and
//! `verifier_lock_prune` (the lock state in `states_equal()`, resilient and
//! plain). Out of tree stay `verifier_spin_lock_basic`, which tests the
//! stock 6.12 rules the tree's own `verifier_spin_lock.c` covers, and the
//! runtime objects (`runtime_*.c`, `bench_lock.c`), which need our runner
//! and our test module.
//!
//! The in-tree tests need no module of ours: their unflagged module kfunc is
//! `bpf_kfunc_call_test4()`, which the tree's `bpf_testmod` provides to
//! test_progs and our `bpf_rqspin_testmod` provides to our runner (same
//! name, prototype and result), and `CONFIG_BPF_RQSPINLOCK_RS=y` puts the
//! lock's kfuncs in vmlinux.
//!
//! Headers: `#include "bpf_misc.h"` in a tree's progs file is the tree's
//! `progs/bpf_misc.h` ([`TREE_HEADERS`]; the same tag strings as ours, which
//! stays for the out-of-tree objects and adds `__runtime_only`). Every other
//! quoted include of an in-tree object is a header of `selftests/include`,
//! shipped as `progs/<name>`; none may share a name with a file of the base
//! tree's selftests (`"bpf_experimental.h"` in a progs file is the tree's,
//! which includes vmlinux.h).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, ensure, Context, Result};

use crate::arch::Arch;
use crate::kernel::Built;
use crate::paths::Paths;
use crate::stage::run_logged;

/// The kernel's BPF selftests directory.
pub const SELFTESTS: &str = "tools/testing/selftests/bpf";

/// Which objects of selftests/progs are in-tree selftests (the verifier
/// tests), as opposed to our runtime-only objects (runtime_*.c,
/// bench_lock.c) that need our own runner/test module.
pub const INTREE_OBJECTS: &[&str] = &[
    "kf_spin_lock",
    "res_spin_lock",
    "verifier_lock_prune",
    "verifier_res_lock_prune",
];

/// Headers of `selftests/include` whose name the in-tree objects resolve to
/// the tree's own file: ours is for the objects out of tree only.
pub const TREE_HEADERS: &[&str] = &["bpf_misc.h"];

/// What the selftests' `config` must say for the in-tree objects, each line
/// replacing the option's line or inserted in the file's sorted order.
/// - `BPF_RQSPINLOCK_RS` (built in): the lock's kfuncs, and the flagged
///   ones, in vmlinux, with no module to load;
/// - `RUST`: the module is Rust (its Kconfig: `depends on ... RUST`);
/// - `MODVERSIONS` off: 6.12's `RUST` depends on `!MODVERSIONS`.
///
/// The module's other dependencies are already in the file (`BPF_SYSCALL`,
/// `BPF_JIT`, `DEBUG_INFO_BTF`) or on by default (`DEBUG_INFO_BTF_MODULES`).
pub const CONFIG_OPTIONS: &[&str] = &[
    "CONFIG_BPF_RQSPINLOCK_RS=y",
    "CONFIG_RUST=y",
    "# CONFIG_MODVERSIONS is not set",
];

/// One file of the selftests patch: its path in the kernel tree and its contents.
pub struct TreeFile {
    pub path: String,
    pub contents: Vec<u8>,
}

/// The files of the series' selftests patch, in the kernel's layout under
/// tools/testing/selftests/bpf/: progs/<obj>.c copied byte for byte from selftests/progs/,
/// the headers they need that 6.12 lacks, prog_tests/<obj>.c using RUN_TESTS(<obj>),
/// and the `config` fragment with the options they need added (sorted like the file is).
/// `base` returns a file's contents in the pristine tree (for files the patch modifies, like `config`).
pub fn selftest_files(
    repo: &Path,
    base: &dyn Fn(&str) -> Result<Option<String>>,
) -> Result<Vec<TreeFile>> {
    let resolved = resolve(repo)?;
    let exists = |path: &str| -> Result<bool> {
        Ok(base(path)
            .with_context(|| format!("reading {path} of the base tree"))?
            .is_some())
    };
    for name in &resolved.from_tree {
        ensure!(
            exists(&format!("{SELFTESTS}/progs/{name}"))?
                || exists(&format!("{SELFTESTS}/{name}"))?,
            "an in-tree object includes \"{name}\", which is neither a header of \
             selftests/include nor a file of the base tree's {SELFTESTS}"
        );
    }
    let mut files = Vec::new();
    for (path, src) in &resolved.shipped {
        ensure!(
            !exists(path)?,
            "{path} already exists in the base tree: ours needs another name"
        );
        let name = path.rsplit('/').next().unwrap_or(path);
        if name.ends_with(".h") {
            ensure!(
                !exists(&format!("{SELFTESTS}/{name}"))?,
                "{SELFTESTS}/{name} exists in the base tree: our progs/{name} would shadow it \
                 for every progs file; ours needs another name"
            );
        }
        let contents = std::fs::read(src).with_context(|| format!("reading {}", src.display()))?;
        files.push(TreeFile {
            path: path.clone(),
            contents,
        });
    }
    for obj in INTREE_OBJECTS {
        let path = format!("{SELFTESTS}/prog_tests/{obj}.c");
        ensure!(!exists(&path)?, "{path} already exists in the base tree");
        files.push(TreeFile {
            path,
            contents: prog_test(obj).into_bytes(),
        });
    }
    let path = format!("{SELFTESTS}/config");
    let config = base(&path)
        .with_context(|| format!("reading {path} of the base tree"))?
        .with_context(|| format!("the base tree has no {path}"))?;
    files.push(TreeFile {
        contents: patch_config(&config, CONFIG_OPTIONS).into_bytes(),
        path,
    });
    for f in &files {
        ensure!(
            f.contents.is_ascii(),
            "{} is not ASCII (the kernel's selftests are)",
            f.path
        );
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(files)
}

/// The files of the patch that come from the repository: (path in the
/// tree, file in the repository), `progs/<obj>.c` and our headers.
pub fn intree_sources(repo: &Path) -> Result<Vec<(String, PathBuf)>> {
    Ok(resolve(repo)?.shipped)
}

/// The in-tree objects' quoted includes, resolved.
struct Resolved {
    /// (path in the tree, file in the repository), sorted by path.
    shipped: Vec<(String, PathBuf)>,
    /// Headers the objects get from the tree.
    from_tree: BTreeSet<String>,
}

fn resolve(repo: &Path) -> Result<Resolved> {
    let progs = repo.join("selftests/progs");
    let include = repo.join("selftests/include");
    let mut shipped = Vec::new();
    let mut from_tree = BTreeSet::new();
    // (includer, header)
    let mut pending: Vec<(PathBuf, String)> = Vec::new();
    for obj in INTREE_OBJECTS {
        let src = progs.join(format!("{obj}.c"));
        let text =
            std::fs::read_to_string(&src).with_context(|| format!("reading {}", src.display()))?;
        pending.extend(quoted_includes(&text).into_iter().map(|h| (src.clone(), h)));
        shipped.push((format!("{SELFTESTS}/progs/{obj}.c"), src));
    }
    let mut seen = BTreeSet::new();
    while let Some((from, name)) = pending.pop() {
        if !seen.insert(name.clone()) {
            continue;
        }
        ensure!(
            !name.contains('/'),
            "{} includes \"{name}\": an in-tree object's headers must be files of progs/",
            from.display()
        );
        let ours = include.join(&name);
        if TREE_HEADERS.contains(&name.as_str()) || !ours.is_file() {
            from_tree.insert(name);
            continue;
        }
        let text = std::fs::read_to_string(&ours)
            .with_context(|| format!("reading {}", ours.display()))?;
        pending.extend(
            quoted_includes(&text)
                .into_iter()
                .map(|h| (ours.clone(), h)),
        );
        shipped.push((format!("{SELFTESTS}/progs/{name}"), ours));
    }
    shipped.sort();
    Ok(Resolved { shipped, from_tree })
}

/// The names in `#include "..."` lines.
fn quoted_includes(source: &str) -> Vec<String> {
    source
        .lines()
        .filter_map(|l| {
            let rest = l.trim_start().strip_prefix('#')?.trim_start();
            let rest = rest.strip_prefix("include")?.trim_start();
            let rest = rest.strip_prefix('"')?;
            Some(rest.split_once('"')?.0.to_string())
        })
        .collect()
}

/// `prog_tests/<obj>.c`: runs every program of the object through
/// test_loader, as e.g. prog_tests/async_stack_depth.c does.
pub fn prog_test(obj: &str) -> String {
    format!(
        "// SPDX-License-Identifier: GPL-2.0\n\
         #include <test_progs.h>\n\
         \n\
         #include \"{obj}.skel.h\"\n\
         \n\
         void test_{obj}(void)\n\
         {{\n\
         \tRUN_TESTS({obj});\n\
         }}\n"
    )
}

/// `config` with each of `options` in it: an option the file already sets
/// gets its line replaced, a new one goes between the last option before it
/// and the first after it in sort order (the file is sorted by name, with a
/// few exceptions; the first such gap wins).
fn patch_config(config: &str, options: &[&str]) -> String {
    let mut lines: Vec<String> = config.lines().map(str::to_string).collect();
    for opt in options {
        let Some(name) = option_name(opt) else {
            continue;
        };
        if let Some(i) = lines.iter().position(|l| option_name(l) == Some(name)) {
            lines[i] = opt.to_string();
            continue;
        }
        let after = |i: usize| option_name(&lines[i]).is_some_and(|n| n > name);
        let before = |i: usize| i == 0 || option_name(&lines[i - 1]).is_none_or(|n| n < name);
        let at = (0..lines.len())
            .find(|&i| after(i) && before(i))
            .or_else(|| (0..lines.len()).find(|&i| after(i)))
            .unwrap_or(lines.len());
        lines.insert(at, opt.to_string());
    }
    let mut out = lines.join("\n");
    out.push('\n');
    out
}

/// `CONFIG_X` of `CONFIG_X=v` or `# CONFIG_X is not set`; `None` for other
/// lines.
fn option_name(line: &str) -> Option<&str> {
    let line = line.trim();
    let opt = match line.strip_prefix("# ") {
        Some(rest) => rest.strip_suffix(" is not set")?,
        None => line.split_once('=')?.0,
    };
    (opt.starts_with("CONFIG_") && !opt.contains(char::is_whitespace)).then_some(opt)
}

/// Compiles the in-tree objects from `kernel.src` into `objs` (as
/// `<obj>.bpf.o`, the names test names come from); returns how many.
/// Fails unless the tree holds the repository's copy of every file they
/// are built from.
pub fn build_objects(paths: &Paths, kernel: &Built, objs: &Path, log: &Path) -> Result<usize> {
    for (path, repo_file) in intree_sources(&paths.repo)? {
        let in_tree = kernel.src.join(&path);
        let ours = std::fs::read(&repo_file)
            .with_context(|| format!("reading {}", repo_file.display()))?;
        match std::fs::read(&in_tree) {
            Ok(theirs) if theirs == ours => {}
            Ok(_) => bail!(
                "{} differs from {}: the tree's copy is stale (the selftests patch of the \
                 series was applied from other sources); re-apply the series",
                in_tree.display(),
                repo_file.display()
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
                "{} is missing: the in-tree selftests are built from the kernel tree, and the \
                 series (its selftests patch) is not applied to {}",
                in_tree.display(),
                kernel.src.display()
            ),
            Err(e) => return Err(e).with_context(|| format!("reading {}", in_tree.display())),
        }
    }
    let include = paths.selftest_build(kernel.arch).join("intree");
    std::fs::create_dir_all(&include).with_context(|| format!("creating {}", include.display()))?;
    crate::upstream::vmlinux_h(kernel, &include.join("vmlinux.h"))?;
    for obj in INTREE_OBJECTS {
        let out = objs.join(format!("{obj}.bpf.o"));
        let clang = clang(&kernel.src, &include, kernel.arch, obj, &out);
        run_logged(
            clang,
            log,
            &format!("compiling {obj} from {SELFTESTS}/progs"),
        )?;
    }
    Ok(INTREE_OBJECTS.len())
}

/// clang-19 on `<src>/SELFTESTS/progs/<obj>.c` with the selftests
/// Makefile's include order for progs (`BPF_CFLAGS`): the file's own
/// directory (quoted includes), `include` (where the Makefile puts
/// vmlinux.h), the selftests directory (`bpf_experimental.h`), the tree's
/// UAPI headers, then the system's (`asm/types.h`, and libbpf's headers,
/// as for every object of ours). Code generation as in
/// [`crate::selftests::compile_bpf`]: `-g` keeps the tags.
fn clang(src: &Path, include: &Path, arch: Arch, obj: &str, out: &Path) -> Command {
    let selftests = src.join(SELFTESTS);
    let includes = [
        include.to_path_buf(),
        selftests.clone(),
        src.join("tools/include/uapi"),
    ];
    let source = selftests.join("progs").join(format!("{obj}.c"));
    let mut clang = crate::selftests::bpf_clang(arch, &includes, &source, out);
    clang.arg("-Wno-compare-distinct-pointer-types");
    clang
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, HashMap};

    use super::*;

    fn repo() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../..")
            .canonicalize()
            .unwrap()
    }

    /// A base tree with the files `selftest_files` reads.
    fn fake_base(files: &[(&str, &str)]) -> impl Fn(&str) -> Result<Option<String>> {
        let files: HashMap<String, String> = files
            .iter()
            .map(|(p, c)| (p.to_string(), c.to_string()))
            .collect();
        move |path: &str| Ok(files.get(path).cloned())
    }

    const CONFIG: &str = "\
CONFIG_BPF=y
CONFIG_BPF_LSM=y
CONFIG_BPF_STREAM_PARSER=y
# CONFIG_BPF_UNPRIV_DEFAULT_OFF is not set
CONFIG_MODVERSIONS=y
CONFIG_RC_CORE=y
CONFIG_SECURITY=y
CONFIG_CRYPTO_AES=y
";

    fn minimal_base() -> impl Fn(&str) -> Result<Option<String>> {
        fake_base(&[
            (&format!("{SELFTESTS}/config"), CONFIG),
            (
                &format!("{SELFTESTS}/progs/bpf_misc.h"),
                "/* the tree's */\n",
            ),
            (
                &format!("{SELFTESTS}/bpf_experimental.h"),
                "#include <vmlinux.h>\n",
            ),
        ])
    }

    fn paths_of(files: &[TreeFile]) -> Vec<&str> {
        files.iter().map(|f| f.path.as_str()).collect()
    }

    #[test]
    fn the_patch_has_programs_tests_headers_and_config() {
        let repo = repo();
        let files = selftest_files(&repo, &minimal_base()).unwrap();
        let mut want = vec![format!("{SELFTESTS}/config")];
        for obj in INTREE_OBJECTS {
            want.push(format!("{SELFTESTS}/prog_tests/{obj}.c"));
            want.push(format!("{SELFTESTS}/progs/{obj}.c"));
        }
        for h in ["bpf_graph.h", "bpf_res_spin_lock.h", "bpf_rqspinlock.h"] {
            want.push(format!("{SELFTESTS}/progs/{h}"));
        }
        want.sort();
        assert_eq!(paths_of(&files), want);
        // Byte for byte what our runner's objects are built from.
        for f in &files {
            let rel = f.path.strip_prefix(&format!("{SELFTESTS}/")).unwrap();
            let ours = if let Some(name) = rel.strip_prefix("progs/") {
                if name.ends_with(".h") {
                    repo.join("selftests/include").join(name)
                } else {
                    repo.join("selftests/progs").join(name)
                }
            } else {
                continue;
            };
            assert_eq!(f.contents, std::fs::read(&ours).unwrap(), "{}", f.path);
        }
        // Our bpf_misc.h (with __runtime_only) and the testmod-only header
        // stay out of the patch.
        assert!(!files.iter().any(|f| f.path.ends_with("/bpf_misc.h")));
        assert!(!files.iter().any(|f| f.path.contains("testmod")));
    }

    #[test]
    fn runtime_objects_stay_out_of_tree() {
        let repo = repo();
        let mut all: Vec<String> = std::fs::read_dir(repo.join("selftests/progs"))
            .unwrap()
            .filter_map(|e| {
                let p = e.ok()?.path();
                (p.extension()? == "c")
                    .then(|| p.file_stem().unwrap().to_string_lossy().to_string())
            })
            .collect();
        all.sort();
        for obj in INTREE_OBJECTS {
            assert!(
                all.contains(&obj.to_string()),
                "{obj} is not in selftests/progs"
            );
            let src =
                std::fs::read_to_string(repo.join(format!("selftests/progs/{obj}.c"))).unwrap();
            assert!(!src.contains("__runtime_only"), "{obj} is a runtime object");
        }
        for obj in &all {
            if obj.starts_with("runtime_") || obj == "bench_lock" {
                assert!(!INTREE_OBJECTS.contains(&obj.as_str()), "{obj}");
            }
        }
    }

    #[test]
    fn prog_tests_file_runs_the_object() {
        assert_eq!(
            prog_test("kf_spin_lock"),
            "// SPDX-License-Identifier: GPL-2.0\n\
             #include <test_progs.h>\n\
             \n\
             #include \"kf_spin_lock.skel.h\"\n\
             \n\
             void test_kf_spin_lock(void)\n\
             {\n\
             \tRUN_TESTS(kf_spin_lock);\n\
             }\n"
        );
    }

    #[test]
    fn config_options_go_in_sorted_order() {
        let patched = patch_config(CONFIG, CONFIG_OPTIONS);
        assert_eq!(
            patched,
            "\
CONFIG_BPF=y
CONFIG_BPF_LSM=y
CONFIG_BPF_RQSPINLOCK_RS=y
CONFIG_BPF_STREAM_PARSER=y
# CONFIG_BPF_UNPRIV_DEFAULT_OFF is not set
# CONFIG_MODVERSIONS is not set
CONFIG_RC_CORE=y
CONFIG_RUST=y
CONFIG_SECURITY=y
CONFIG_CRYPTO_AES=y
"
        );
        // Idempotent, and an option at either end finds its place.
        assert_eq!(patch_config(&patched, CONFIG_OPTIONS), patched);
        assert_eq!(
            patch_config("CONFIG_B=y\nCONFIG_C=y\n", &["CONFIG_A=y", "CONFIG_D=m"]),
            "CONFIG_A=y\nCONFIG_B=y\nCONFIG_C=y\nCONFIG_D=m\n"
        );
    }

    #[test]
    fn option_names() {
        assert_eq!(option_name("CONFIG_RUST=y"), Some("CONFIG_RUST"));
        assert_eq!(
            option_name("# CONFIG_MODVERSIONS is not set"),
            Some("CONFIG_MODVERSIONS")
        );
        assert_eq!(option_name("# a comment"), None);
        assert_eq!(option_name(""), None);
    }

    #[test]
    fn includes_are_found() {
        let src = "#include <linux/bpf.h>\n#include \"bpf_misc.h\"\n  # include \"a.h\" /* x */\n";
        assert_eq!(quoted_includes(src), ["bpf_misc.h", "a.h"]);
    }

    #[test]
    fn clashes_with_the_base_tree_are_refused() {
        let config = format!("{SELFTESTS}/config");
        let misc = format!("{SELFTESTS}/progs/bpf_misc.h");
        for clash in [
            format!("{SELFTESTS}/progs/bpf_graph.h"),
            format!("{SELFTESTS}/bpf_rqspinlock.h"),
            format!("{SELFTESTS}/progs/kf_spin_lock.c"),
            format!("{SELFTESTS}/prog_tests/res_spin_lock.c"),
        ] {
            let base = fake_base(&[(&config, CONFIG), (&misc, ""), (&clash, "")]);
            let err = selftest_files(&repo(), &base).err().map(|e| e.to_string());
            assert!(err.is_some_and(|e| e.contains("base tree")), "{clash}");
        }
        // Without the tree's bpf_misc.h the objects' include has nothing to
        // resolve to.
        let base = fake_base(&[(&config, CONFIG)]);
        assert!(selftest_files(&repo(), &base).is_err());
    }

    /// A 6.12 source tree (see `runner_shared::ktree`).
    fn kernel_tree() -> PathBuf {
        runner_shared::ktree::kernel_tree(&format!("{SELFTESTS}/progs/bpf_misc.h"))
    }

    /// The pristine tree: the tree's `base` tag when it is the pipeline's
    /// git tree (which may carry the series, this patch included), else
    /// the files as they are.
    struct BaseTree {
        tree: PathBuf,
        git: bool,
    }

    impl BaseTree {
        fn new() -> Self {
            let tree = kernel_tree();
            let git = Command::new("git")
                .arg("-C")
                .arg(&tree)
                .args(["rev-parse", "-q", "--verify", "refs/tags/base"])
                .output()
                .is_ok_and(|o| o.status.success());
            BaseTree { tree, git }
        }

        fn read(&self, path: &str) -> Result<Option<String>> {
            if !self.git {
                return match std::fs::read_to_string(self.tree.join(path)) {
                    Ok(s) => Ok(Some(s)),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                    Err(e) => Err(e.into()),
                };
            }
            let out = Command::new("git")
                .arg("-C")
                .arg(&self.tree)
                .args(["cat-file", "blob", &format!("refs/tags/base:{path}")])
                .output()?;
            Ok(out
                .status
                .success()
                .then(|| String::from_utf8_lossy(&out.stdout).into_owned()))
        }

        /// The files under `dir` that contain `text`.
        fn grep(&self, text: &str, dir: &str) -> Vec<String> {
            if self.git {
                let out = Command::new("git")
                    .arg("-C")
                    .arg(&self.tree)
                    .args(["grep", "-l", "-F", "-e", text, "refs/tags/base", "--", dir])
                    .output()
                    .unwrap();
                // 1: no match.
                assert!(out.status.code().is_some_and(|c| c <= 1), "git grep");
                return String::from_utf8(out.stdout)
                    .unwrap()
                    .lines()
                    .map(|l| l.strip_prefix("refs/tags/base:").unwrap_or(l).to_string())
                    .collect();
            }
            self.files(dir)
                .into_iter()
                .filter(|p| {
                    std::fs::read(self.tree.join(p))
                        .is_ok_and(|b| String::from_utf8_lossy(&b).contains(text))
                })
                .collect()
        }

        /// Every file under `dir`, relative to the tree.
        fn files(&self, dir: &str) -> Vec<String> {
            if self.git {
                let out = Command::new("git")
                    .arg("-C")
                    .arg(&self.tree)
                    .args(["ls-tree", "-r", "--name-only", "refs/tags/base", "--", dir])
                    .output()
                    .unwrap();
                assert!(out.status.success());
                return String::from_utf8(out.stdout)
                    .unwrap()
                    .lines()
                    .map(str::to_string)
                    .collect();
            }
            crate::key::walk(&self.tree.join(dir))
                .unwrap()
                .into_iter()
                .map(|p| {
                    p.strip_prefix(&self.tree)
                        .unwrap()
                        .to_string_lossy()
                        .to_string()
                })
                .collect()
        }
    }

    #[test]
    fn the_patch_fits_the_6_12_tree() {
        let base = BaseTree::new();
        let files = selftest_files(&repo(), &|p| base.read(p)).unwrap();
        // Only the config is modified; everything else is new.
        for f in &files {
            let existing = base.read(&f.path).unwrap();
            assert_eq!(
                existing.is_some(),
                f.path.ends_with("/config"),
                "{}",
                f.path
            );
        }
        let config = files.iter().find(|f| f.path.ends_with("/config")).unwrap();
        let config = std::str::from_utf8(&config.contents).unwrap();
        for opt in CONFIG_OPTIONS {
            assert_eq!(config.lines().filter(|l| l == opt).count(), 1, "{opt}");
        }
        // Every other line of the file is kept, in order.
        let old = base.read(&format!("{SELFTESTS}/config")).unwrap().unwrap();
        let kept: Vec<&str> = config
            .lines()
            .filter(|l| !CONFIG_OPTIONS.contains(l))
            .collect();
        let old: Vec<&str> = old
            .lines()
            .filter(|l| option_name(l) != Some("CONFIG_MODVERSIONS"))
            .collect();
        assert_eq!(kept, old);
        // Sorted where they went: each new option between its neighbours.
        let lines: Vec<&str> = config.lines().collect();
        for opt in ["CONFIG_BPF_RQSPINLOCK_RS=y", "CONFIG_RUST=y"] {
            let i = lines.iter().position(|l| *l == opt).unwrap();
            let name = option_name(opt).unwrap();
            assert!(option_name(lines[i - 1]).unwrap() < name, "{opt}");
            assert!(option_name(lines[i + 1]).unwrap() > name, "{opt}");
        }
    }

    /// No header of ours, shipped or not, shares a name with a file of the
    /// 6.12 selftests, except those the in-tree objects take from the tree;
    /// no test function of ours is one 6.12 already has.
    #[test]
    fn no_name_clashes_with_the_6_12_selftests() {
        let base = BaseTree::new();
        let theirs = base.files(SELFTESTS);
        assert!(theirs.iter().any(|p| p.ends_with("/progs/bpf_misc.h")));
        let names: BTreeSet<&str> = theirs
            .iter()
            .map(|p| p.rsplit('/').next().unwrap())
            .collect();
        for entry in std::fs::read_dir(repo().join("selftests/include")).unwrap() {
            let name = entry.unwrap().file_name().to_string_lossy().to_string();
            if TREE_HEADERS.contains(&name.as_str()) {
                assert!(names.contains(name.as_str()), "{name}");
            } else {
                assert!(
                    !names.contains(name.as_str()),
                    "{name} is a file of {SELFTESTS}"
                );
            }
        }
        for obj in INTREE_OBJECTS {
            for name in [format!("{obj}.c"), format!("{obj}.skel.h")] {
                assert!(!names.contains(name.as_str()), "{name}");
            }
            // test_progs collects `void test_X(void)` and `void serial_test_X(void)`.
            let func = format!("test_{obj}(void)");
            let found = base.grep(&func, &format!("{SELFTESTS}/prog_tests"));
            assert!(found.is_empty(), "{found:?} define {func}");
        }
    }

    /// The decl-tag macros the in-tree objects use mean the same in the
    /// tree's bpf_misc.h as in ours.
    #[test]
    fn tags_are_the_trees() {
        let base = BaseTree::new();
        let theirs = base
            .read(&format!("{SELFTESTS}/progs/bpf_misc.h"))
            .unwrap()
            .unwrap();
        let ours = std::fs::read_to_string(repo().join("selftests/include/bpf_misc.h")).unwrap();
        let theirs = defines(&theirs);
        let ours = defines(&ours);
        let mut used = BTreeSet::new();
        for obj in INTREE_OBJECTS {
            let src =
                std::fs::read_to_string(repo().join(format!("selftests/progs/{obj}.c"))).unwrap();
            for (name, body) in &ours {
                if body.contains("btf_decl_tag") && contains_word(&src, name) {
                    used.insert(name.clone());
                }
            }
        }
        assert!(used.contains("__msg") && used.contains("__failure"));
        for name in &used {
            assert_eq!(theirs.get(name), ours.get(name), "{name}");
        }
    }

    /// `#define NAME...` -> body with whitespace collapsed (parameters are
    /// part of the name).
    fn defines(header: &str) -> BTreeMap<String, String> {
        header
            .lines()
            .filter_map(|l| {
                let rest = l.trim_start().strip_prefix("#define")?.trim_start();
                let end = rest.find(|c: char| c.is_whitespace()).unwrap_or(rest.len());
                let (name, body) = rest.split_at(end);
                let name = name.split('(').next().unwrap().to_string();
                let body = body.split_whitespace().collect::<Vec<_>>().join(" ");
                Some((name, body))
            })
            .collect()
    }

    fn contains_word(text: &str, word: &str) -> bool {
        text.match_indices(word).any(|(i, _)| {
            let ok = |c: Option<char>| !c.is_some_and(|c| c.is_alphanumeric() || c == '_');
            ok(text[..i].chars().next_back()) && ok(text[i + word.len()..].chars().next())
        })
    }

    /// The module's Kconfig dependencies, and RUST's, hold in the patched
    /// config wherever the config decides them (options it does not name
    /// keep their defaults, or depend on the toolchain).
    #[test]
    fn config_meets_the_dependencies() {
        let base = BaseTree::new();
        let files = selftest_files(&repo(), &|p| base.read(p)).unwrap();
        let config = files.iter().find(|f| f.path.ends_with("/config")).unwrap();
        let config = std::str::from_utf8(&config.contents).unwrap();
        // Some(true) for =y/=m, Some(false) for "is not set" or =n, None if
        // the config does not name it.
        let set = |sym: &str| -> Option<bool> {
            config.lines().find_map(|l| {
                let name = option_name(l)?;
                (name.strip_prefix("CONFIG_") == Some(sym))
                    .then(|| l.ends_with("=y") || l.ends_with("=m"))
            })
        };
        let kconfig = std::fs::read_to_string(repo().join("Kconfig")).unwrap();
        let symbol = kconfig
            .lines()
            .find_map(|l| l.strip_prefix("config "))
            .unwrap();
        assert_eq!(set(symbol), Some(true), "CONFIG_{symbol}");
        let init = base.read("init/Kconfig").unwrap().unwrap();
        let rust = init.split("\nconfig RUST\n").nth(1).unwrap();
        let rust = rust.split("\nconfig ").next().unwrap();
        let mut checked = 0;
        for deps in [kconfig.as_str(), rust] {
            for line in deps.lines() {
                let Some(expr) = line.trim().strip_prefix("depends on ") else {
                    continue;
                };
                if expr.contains('(') {
                    continue;
                }
                for conj in expr.split("&&") {
                    let alts: Vec<&str> = conj.split("||").map(str::trim).collect();
                    let judged: Vec<Option<bool>> = alts
                        .iter()
                        .map(|a| match a.strip_prefix('!') {
                            Some(sym) if is_symbol(sym) => set(sym).map(|v| !v),
                            None if is_symbol(a) => set(a),
                            _ => None,
                        })
                        .collect();
                    // Decided by the config only if every alternative is.
                    if judged.iter().all(Option::is_some) {
                        checked += 1;
                        assert!(
                            judged.contains(&Some(true)),
                            "`depends on {expr}`: `{conj}` does not hold"
                        );
                    }
                }
            }
        }
        // BPF_SYSCALL, BPF_JIT, RUST, DEBUG_INFO_BTF; !MODVERSIONS.
        assert!(checked >= 5, "{checked}");
    }

    fn is_symbol(s: &str) -> bool {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
    }

    /// Each in-tree object compiles from a tree laid out as the patch lays
    /// it out, with the selftests' include order and the tree's bpf_misc.h,
    /// and carries exactly the tags it has when built as our other objects
    /// are (our bpf_misc.h).
    #[test]
    fn intree_objects_build_with_the_trees_headers() {
        let base = BaseTree::new();
        let repo = repo();
        let dir = std::env::temp_dir().join(format!("xtask-intree-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let tree = dir.join("tree");
        let progs = tree.join(SELFTESTS).join("progs");
        std::fs::create_dir_all(&progs).unwrap();
        std::fs::create_dir_all(tree.join("tools/include")).unwrap();
        let real = base.tree.join("tools/include/uapi");
        std::os::unix::fs::symlink(&real, tree.join("tools/include/uapi")).unwrap();
        let misc = format!("{SELFTESTS}/progs/bpf_misc.h");
        std::fs::write(tree.join(&misc), base.read(&misc).unwrap().unwrap()).unwrap();
        for f in selftest_files(&repo, &|p| base.read(p)).unwrap() {
            let dest = tree.join(&f.path);
            std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
            std::fs::write(dest, f.contents).unwrap();
        }
        let include = dir.join("include");
        std::fs::create_dir_all(&include).unwrap();
        for obj in INTREE_OBJECTS {
            let intree = dir.join(format!("{obj}.bpf.o"));
            succeeds(clang(&tree, &include, Arch::X86_64, obj, &intree), obj);
            let ours = dir.join(format!("{obj}.ours.bpf.o"));
            let ours_cmd = crate::selftests::bpf_clang(
                Arch::X86_64,
                &[repo.join("selftests/include"), real.clone()],
                &repo.join(format!("selftests/progs/{obj}.c")),
                &ours,
            );
            succeeds(ours_cmd, obj);
            let (a, b) = (tags(&intree), tags(&ours));
            assert!(!a.is_empty(), "{obj}: no tags");
            assert_eq!(a, b, "{obj}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Runs `command`; a failure fails the test with its stderr.
    fn succeeds(mut command: Command, what: &str) {
        let out = command.output().expect("starting a tool");
        assert!(
            out.status.success(),
            "{what}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn tags(obj: &Path) -> BTreeMap<String, Vec<String>> {
        let out = Command::new("bpftool")
            .args(["-j", "btf", "dump", "file"])
            .arg(obj)
            .output()
            .expect("running bpftool");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let dump: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        crate::upstream::func_tags(&dump).unwrap()
    }
}
