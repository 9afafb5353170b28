//! Runtime tests: Rust functions that load a `__runtime_only` program and
//! drive it (BPF_PROG_TEST_RUN from several threads, map reads, ...). They run
//! after the annotated tests; a new one is a function plus a line in
//! [`TESTS`]. Shared plumbing lives in [`support`].

pub mod res_lock;
pub mod spin_lock;
pub mod support;
pub mod without_module;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use crate::report::Status;

/// What a runtime test reports besides failing (an `Err`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    /// Not applicable here, with the reason; never for a missing kfunc or
    /// object, which are failures.
    Skip(String),
}

pub type Outcome = anyhow::Result<Verdict>;

/// State handed to a runtime test.
#[derive(Debug)]
pub struct Ctx {
    /// The `--objs` directory.
    pub objs_dir: PathBuf,
    /// The `--module` files, loaded before the tests ran.
    pub modules: Vec<PathBuf>,
    log: String,
}

impl Ctx {
    pub fn new(objs_dir: &Path, modules: &[PathBuf]) -> Self {
        Self {
            objs_dir: objs_dir.to_path_buf(),
            modules: modules.to_vec(),
            log: String::new(),
        }
    }

    /// Appends to the test's log file (OUT/logs/runtime__<name>.log).
    pub fn log(&mut self, text: &str) {
        self.log.push_str(text);
        if !text.ends_with('\n') {
            self.log.push('\n');
        }
    }
}

/// One registered runtime test.
#[derive(Debug)]
pub struct RuntimeTest {
    pub name: &'static str,
    pub run: fn(&mut Ctx) -> Outcome,
}

impl RuntimeTest {
    /// `runtime/<name>`.
    pub fn full_name(&self) -> String {
        format!("runtime/{}", self.name)
    }
}

/// All runtime tests, in run order.
pub static TESTS: &[RuntimeTest] = &[
    RuntimeTest {
        name: "spin_lock_exact_total",
        run: spin_lock::exact_total,
    },
    RuntimeTest {
        name: "res_lock_aa",
        run: res_lock::aa,
    },
    RuntimeTest {
        name: "res_lock_abba",
        run: res_lock::abba,
    },
    RuntimeTest {
        name: "res_lock_held_overflow",
        run: res_lock::held_overflow,
    },
    RuntimeTest {
        name: "res_lock_stalled_holder",
        run: res_lock::stalled_holder,
    },
    RuntimeTest {
        name: "res_lock_exact_total",
        run: res_lock::exact_total,
    },
    RuntimeTest {
        name: "res_lock_irqsave",
        run: res_lock::irqsave,
    },
    RuntimeTest {
        name: "res_lock_user_update",
        run: res_lock::user_update,
    },
    RuntimeTest {
        name: "res_lock_violations",
        run: res_lock::violations,
    },
    RuntimeTest {
        name: "res_lock_map_types",
        run: res_lock::map_types,
    },
    // Last: it unloads the module (and loads it again).
    RuntimeTest {
        name: "res_lock_without_module",
        run: without_module::res_lock_without_module,
    },
];

/// Runs `test`; a panic is a failure, not the end of the whole run.
pub fn run(test: &RuntimeTest, objs_dir: &Path, modules: &[PathBuf]) -> (Status, String) {
    let mut ctx = Ctx::new(objs_dir, modules);
    let result = catch_unwind(AssertUnwindSafe(|| (test.run)(&mut ctx)));
    let status = match result {
        Ok(Ok(Verdict::Pass)) => Status::Pass,
        Ok(Ok(Verdict::Skip(reason))) => Status::Skip(reason),
        Ok(Err(e)) => Status::Fail(format!("{e:#}")),
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "non-string panic".into());
            Status::Fail(format!("panicked: {what}"))
        }
    };
    (status, ctx.log)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn passes(_: &mut Ctx) -> Outcome {
        Ok(Verdict::Pass)
    }
    fn skips(_: &mut Ctx) -> Outcome {
        Ok(Verdict::Skip("not here".into()))
    }
    fn fails(ctx: &mut Ctx) -> Outcome {
        ctx.log("some detail");
        anyhow::bail!("count was 9999")
    }
    fn panics(_: &mut Ctx) -> Outcome {
        panic!("boom")
    }

    #[test]
    fn outcomes_map_to_statuses() {
        let dir = Path::new("/nonexistent");
        let t = |run| RuntimeTest { name: "t", run };
        assert_eq!(run(&t(passes), dir, &[]).0, Status::Pass);
        assert_eq!(run(&t(skips), dir, &[]).0, Status::Skip("not here".into()));
        let (status, log) = run(&t(fails), dir, &[]);
        assert_eq!(status, Status::Fail("count was 9999".into()));
        assert_eq!(log, "some detail\n");
        assert_eq!(
            run(&t(panics), dir, &[]).0,
            Status::Fail("panicked: boom".into())
        );
    }

    #[test]
    fn names_are_unique_and_prefixed() {
        let mut names: Vec<String> = TESTS.iter().map(RuntimeTest::full_name).collect();
        assert!(names.iter().all(|n| n.starts_with("runtime/")));
        names.sort();
        names.dedup();
        assert_eq!(names.len(), TESTS.len());
    }

    #[test]
    fn missing_object_is_a_clear_failure() {
        let test = TESTS
            .iter()
            .find(|t| t.name == "spin_lock_exact_total")
            .unwrap();
        match run(test, Path::new("/nonexistent-objs"), &[]).0 {
            Status::Fail(msg) => assert!(msg.contains("runtime_spin_lock.bpf.o"), "{msg}"),
            other => panic!("{other:?}"),
        }
    }
}
