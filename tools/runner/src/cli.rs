//! Command line of the runner, as the host pipeline (tools/xtask) calls it.

use std::path::PathBuf;

use clap::Parser;

/// Runs the BPF selftests of an objects directory inside the test VM.
#[derive(Debug, Parser)]
#[command(name = "bpf-runner", version)]
pub struct Args {
    /// Directory holding the `*.bpf.o` objects.
    #[arg(long, value_name = "DIR")]
    pub objs: PathBuf,

    /// Kernel module to load (finit_module) before the tests; repeatable,
    /// loaded in the order given.
    #[arg(long = "module", value_name = "PATH.ko")]
    pub modules: Vec<PathBuf>,

    /// Directory for results.json, dmesg.txt and logs/ (bench.json with
    /// --bench).
    #[arg(long, value_name = "DIR", required_unless_present_any = ["list", "bench"])]
    pub out: Option<PathBuf>,

    /// Only run tests whose name matches this glob (`*` is the wildcard);
    /// repeatable, a test runs when any filter matches.
    #[arg(long = "filter", value_name = "GLOB")]
    pub filters: Vec<String>,

    /// Print the selected test names and exit.
    #[arg(long)]
    pub list: bool,

    /// Run the lock benchmark (bench_lock.bpf.o of --objs) instead of the
    /// tests, print its results and exit 0; --filter is ignored, --out (if
    /// given) gets the results as bench.json.
    #[arg(long, conflicts_with = "list")]
    pub bench: bool,

    /// Accelerator the VM runs on (e.g. kvm, tcg), printed with the
    /// benchmark results; without it the clock source is used to guess.
    #[arg(long, value_name = "NAME", requires = "bench")]
    pub accel: Option<String>,

    /// In-kernel benchmark module (bpf_rqspin_bench.ko) to load after the
    /// BPF benchmark: its init measures the Rust lock against raw_spinlock_t
    /// and logs the result, which is read back from the kernel log; the
    /// module is unloaded again. Load the product module with --module.
    #[arg(long, value_name = "PATH.ko", requires = "bench")]
    pub kernel_bench: Option<PathBuf>,

    /// Allow unprivileged BPF (`kernel.unprivileged_bpf_disabled=0`) before
    /// the tests, as mainline's BPF CI does, so that the `@unpriv` variants
    /// run instead of skipping. For a test VM: it lasts until the reboot.
    #[arg(long)]
    pub allow_unpriv_bpf: bool,

    /// Echo libbpf's messages and point at every test's log.
    #[arg(short, long)]
    pub verbose: bool,
}
