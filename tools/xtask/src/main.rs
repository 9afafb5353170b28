//! The pipeline behind the top-level Makefile: builds a patched 6.12 kernel
//! with our Rust module, the BPF selftests and the runner, boots the kernel
//! with virtme-ng and reports what the selftests said.

mod arch;
mod author;
mod bisect;
mod cross;
mod debs;
mod deps;
mod guest;
mod intree;
mod kconfig;
mod kernel;
mod key;
mod kvm;
mod lock;
mod mailcheck;
mod maintainers;
mod module;
mod mutants;
mod patchset;
mod paths;
mod provenance;
mod report;
mod results;
mod rootfs;
mod run;
mod selftests;
mod series;
mod seriescheck;
mod skips;
mod source;
mod splat;
mod stage;
mod summary;
mod toolchain;
mod unit_test;
mod upstream;
mod vm;
mod vmbench;

use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand};
use xshell::Shell;

use arch::Arch;
use paths::Paths;

#[derive(Parser)]
#[command(about = "Build and test the BPF resilient-locking series in QEMU")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(clap::Args, Clone)]
struct KernelArgs {
    /// Architecture to build and boot.
    #[arg(long, env = "ARCH", default_value = "x86_64", value_enum)]
    arch: Arch,
    /// A 6.12.y kernel source tree to use instead of Debian's linux-source
    /// (copied into the cache; never modified).
    #[arg(long, env = "KDIR")]
    kdir: Option<PathBuf>,
    /// Build without the verifier patches (shows what the stock verifier does).
    #[arg(long, env = "NOPATCHES")]
    no_patches: bool,
}

#[derive(Subcommand)]
enum Cmd {
    /// Install missing packages and tools (idempotent).
    Deps,
    /// Prepare the source tree, apply the series, configure and build.
    Kernel(KernelArgs),
    /// Build the module out of tree against a built kernel (KDIR, or the
    /// pipeline's own x86_64 build).
    Module {
        #[arg(long, env = "KDIR")]
        kdir: Option<PathBuf>,
    },
    /// Build BPF objects, the test module and the runner.
    Selftests(KernelArgs),
    /// Everything: kernel, selftests, boot, run, report.
    Vmtest(KernelArgs),
    /// The lock benchmark in the VM (a benchmark, not a test).
    Vmbench(KernelArgs),
    /// An interactive vng shell on the built kernel with the selftests at hand.
    Vmshell(KernelArgs),
    /// Print the summary of the last run's report.
    Report {
        #[arg(long, env = "ARCH", default_value = "x86_64", value_enum)]
        arch: Arch,
    },
    /// Build verifier mutants and show that the pruning suite kills each.
    Mutants(KernelArgs),
    /// Write the whole series to patches/ as the user (git identity), signed off.
    Series {
        /// The subject prefix of a newly written series ("[PREFIX n/m]");
        /// default: the committed one, else "RFC PATCH 6.12".
        #[arg(long)]
        subject_prefix: Option<String>,
    },
    /// Check patches/: up to date, checkpatch, send-email, every prefix builds.
    SeriesCheck,
    /// Write docs/results.md from the result files under out/.
    Results {
        /// Write nothing; fail if docs/results.md does not describe the
        /// runs in out/ (test names, verdicts, counts, mutant and series verdicts).
        #[arg(long)]
        check: bool,
    },
    /// The host tests of every crate, with the pipeline's 6.12 tree.
    UnitTest,
    /// CI's last line, `N passed, N failed`, over the result files of a run.
    Summary {
        /// Only files written at or after this time (seconds since the epoch).
        #[arg(long)]
        since: Option<u64>,
        /// The exit status of the run; non-zero counts as one failure.
        #[arg(long, default_value_t = 0)]
        status: i32,
    },
}

fn main() {
    if let Err(err) = real_main() {
        eprintln!("error: {err:#}");
        std::process::exit(1);
    }
}

fn real_main() -> Result<()> {
    let cli = Cli::parse();
    let sh = Shell::new()?;
    let paths = Paths::discover()?;
    let _lock = match cli.cmd {
        Cmd::Deps
        | Cmd::Report { .. }
        | Cmd::Module { .. }
        | Cmd::Results { .. }
        | Cmd::Summary { .. } => None,
        _ => Some(lock::acquire(&paths)?),
    };
    match cli.cmd {
        Cmd::Deps => deps::run(&sh),
        Cmd::Kernel(k) => kernel::build(&sh, &paths, &opts(&k)).map(|_| ()),
        Cmd::Module { kdir } => {
            let kdir = kdir.unwrap_or_else(|| paths.kernel_obj(Arch::X86_64));
            module::build(&paths, &kdir)
        }
        Cmd::Selftests(k) => {
            let built = kernel::build(&sh, &paths, &opts(&k))?;
            selftests::build(&paths, &built).map(|_| ())
        }
        Cmd::Vmtest(k) => {
            let code = run::vmtest(&sh, &paths, &opts(&k))?;
            std::process::exit(code)
        }
        Cmd::Vmbench(k) => {
            let code = run::vmbench(&sh, &paths, &opts(&k))?;
            std::process::exit(code)
        }
        Cmd::Vmshell(k) => run::vmshell(&sh, &paths, &opts(&k)),
        Cmd::Report { arch } => run::print_report(&paths, arch),
        Cmd::Series { subject_prefix } => patchset::write(&sh, &paths, subject_prefix.as_deref()),
        Cmd::SeriesCheck => {
            let code = seriescheck::run(&sh, &paths)?;
            std::process::exit(code)
        }
        Cmd::Results { check: false } => results::write(&paths),
        Cmd::Results { check: true } => results::check(&paths),
        Cmd::Mutants(k) => {
            let code = mutants::run(&sh, &paths, &opts(&k))?;
            std::process::exit(code)
        }
        Cmd::Summary { since, status } => summary::run(&paths, since, status),
        Cmd::UnitTest => {
            let code = unit_test::run(&sh, &paths)?;
            std::process::exit(code)
        }
    }
}

fn opts(k: &KernelArgs) -> kernel::Options<'_> {
    kernel::Options {
        arch: k.arch,
        kdir: k.kdir.as_deref(),
        skip_patches: k.no_patches,
    }
}
