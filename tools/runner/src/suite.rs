//! The list of tests: one per annotated program of every `*.bpf.o` in the
//! objects directory (sorted by file name, programs in object order), then the
//! runtime tests. Problems found while building the list (an object libbpf
//! cannot open, contradicting tags) become failing entries, so they show up
//! in the results instead of vanishing.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::btf_tags::function_comment_tags;
use crate::libbpf::Object;
use crate::runtime::{self, RuntimeTest};
use crate::spec::{classify, ProgRole, TestSpec};

pub const OBJECT_SUFFIX: &str = ".bpf.o";

/// One entry of the run.
#[derive(Debug, Clone)]
pub enum TestCase {
    /// A program with `__success`/`__failure` (one entry per mode, see
    /// [`crate::spec::Mode`]).
    Annotated {
        object: PathBuf,
        spec: TestSpec,
    },
    /// Reported as a failure without running anything.
    Broken {
        name: String,
        error: String,
    },
    Runtime(&'static RuntimeTest),
}

impl TestCase {
    pub fn name(&self) -> String {
        match self {
            TestCase::Annotated { spec, .. } => spec.name.clone(),
            TestCase::Broken { name, .. } => name.clone(),
            TestCase::Runtime(t) => t.full_name(),
        }
    }
}

/// `foo` for `.../foo.bpf.o`.
pub fn object_stem(path: &Path) -> Option<&str> {
    path.file_name()?.to_str()?.strip_suffix(OBJECT_SUFFIX)
}

/// The `*.bpf.o` files of `dir`, sorted by name.
pub fn object_files(dir: &Path) -> Result<Vec<PathBuf>> {
    if !dir.is_dir() {
        bail!("objects directory {} does not exist", dir.display());
    }
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry
            .with_context(|| format!("reading {}", dir.display()))?
            .path();
        if object_stem(&path).is_some_and(|s| !s.is_empty()) && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// Tests of one object file.
pub fn object_tests(path: &Path) -> Vec<TestCase> {
    let stem = object_stem(path).unwrap_or("?").to_string();
    let broken = |error: String| {
        vec![TestCase::Broken {
            name: format!("{stem}/object"),
            error,
        }]
    };
    let obj = match Object::open(path) {
        Ok(obj) => obj,
        Err(e) => return broken(format!("{e:#}")),
    };
    let tags = function_comment_tags(&obj);
    if tags.values().all(|t| t.is_empty()) {
        // Most likely built without -g (no decl tags): one clear failure
        // for the object rather than one per program.
        return broken(format!(
            "{}: no program carries a test annotation (built without -g?)",
            path.display()
        ));
    }
    let mut tests = Vec::new();
    let mut runtime_only = 0;
    for prog in obj.program_names() {
        let prog_tags = tags.get(&prog).map(Vec::as_slice).unwrap_or_default();
        match classify(&stem, &prog, prog_tags) {
            ProgRole::Tests(specs) => {
                tests.extend(specs.into_iter().map(|spec| TestCase::Annotated {
                    object: path.to_path_buf(),
                    spec,
                }))
            }
            ProgRole::Invalid { name, error } => tests.push(TestCase::Broken { name, error }),
            ProgRole::RuntimeOnly => runtime_only += 1,
            ProgRole::Auxiliary => {}
        }
    }
    if tests.is_empty() && runtime_only == 0 {
        // Most likely built without -g (no decl tags): do not let the whole
        // object pass by running nothing.
        return broken(format!(
            "{}: no program is marked __success, __failure or __runtime_only (built without -g?)",
            path.display()
        ));
    }
    tests
}

/// Everything to run from `objs_dir`, before filtering. Later entries whose
/// name repeats an earlier one become failures: their results and logs would
/// otherwise overwrite each other.
pub fn collect(objs_dir: &Path) -> Result<Vec<TestCase>> {
    let mut all = Vec::new();
    for path in object_files(objs_dir)? {
        all.extend(object_tests(&path));
    }
    all.extend(runtime::TESTS.iter().map(TestCase::Runtime));

    let mut seen = HashSet::new();
    for case in &mut all {
        let name = case.name();
        if !seen.insert(name.clone()) {
            *case = TestCase::Broken {
                error: format!(
                    "duplicate test name '{name}' (give the program a distinct __description)"
                ),
                name: format!("{name} (duplicate)"),
            };
        }
    }
    Ok(all)
}
