// SPDX-License-Identifier: GPL-2.0

//! Cost of resilience: the resilient queued lock against the same queued
//! lock without held-table, deadlines and deadlock checks, and against a
//! plain test-and-test-and-set lock, uncontended and with two threads, all
//! measured side by side in one run.
//!
//! `cargo run -p rqspinlock-host --release --bin bench [-- [--json PATH --date DATE] [ITERATIONS]]`
//!
//! With `--json PATH` (`make bench` passes `out/bench/host.json`) the table
//! is also written as JSON, with the date and the command, for
//! `make results`.
//!
//! Every thread is a "CPU" of [`SpinPlatform`] (waiting spins with the pause
//! hint, like `cpu_relax()`). Rounds alternate between the locks and the
//! median round is reported, so drift on a shared machine hits all alike.

use std::cell::UnsafeCell;
use std::hint::spin_loop;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Barrier;
use std::thread;
use std::time::Instant;

use rqspinlock_host::platform::SpinPlatform as P;
use rqspinlock_host::qspinlock::QueuedSpinLock;
use rqspinlock_host::rqspinlock::RqSpinLock;

/// Rounds per configuration; the median is reported.
const ROUNDS: usize = 5;

/// A lock under test plus the counter it protects.
trait BenchLock: Sync {
    const NAME: &'static str;
    fn new() -> Self;
    /// Lock, bump the counter, unlock.
    fn bump(&self);
    fn count(&self) -> u64;
}

/// Counter cell protected by the lock next to it.
struct Cell(UnsafeCell<u64>);

// SAFETY: only accessed while holding the lock it is paired with.
unsafe impl Sync for Cell {}

impl Cell {
    fn new() -> Self {
        Self(UnsafeCell::new(0))
    }

    /// # Safety
    ///
    /// The caller holds the lock protecting this counter.
    unsafe fn bump(&self) {
        // SAFETY: exclusive access by the caller's contract.
        unsafe { *self.0.get() += 1 }
    }

    fn get(&self) -> u64 {
        // SAFETY: read after all benchmark threads are joined.
        unsafe { *self.0.get() }
    }
}

struct Resilient(RqSpinLock, Cell);

impl BenchLock for Resilient {
    const NAME: &'static str = "rqspinlock (resilient)";

    fn new() -> Self {
        Self(RqSpinLock::new(), Cell::new())
    }

    fn bump(&self) {
        // No nesting and the owner never stalls: errors would be a bug.
        self.0
            .lock::<P>()
            .expect("uncontested resilient lock failed");
        // SAFETY: we hold the lock.
        unsafe {
            self.1.bump();
            self.0.unlock::<P>();
        }
    }

    fn count(&self) -> u64 {
        self.1.get()
    }
}

struct Queued(QueuedSpinLock, Cell);

impl BenchLock for Queued {
    const NAME: &'static str = "queued (no resilience)";

    fn new() -> Self {
        Self(QueuedSpinLock::new(), Cell::new())
    }

    fn bump(&self) {
        self.0.lock();
        // SAFETY: we hold the lock.
        unsafe { self.1.bump() };
        self.0.unlock();
    }

    fn count(&self) -> u64 {
        self.1.get()
    }
}

struct Tas(AtomicU32, Cell);

impl BenchLock for Tas {
    const NAME: &'static str = "test-and-set";

    fn new() -> Self {
        Self(AtomicU32::new(0), Cell::new())
    }

    fn bump(&self) {
        while self
            .0
            .compare_exchange_weak(0, 1, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            while self.0.load(Ordering::Relaxed) != 0 {
                spin_loop();
            }
        }
        // SAFETY: we hold the lock.
        unsafe { self.1.bump() };
        self.0.store(0, Ordering::Release);
    }

    fn count(&self) -> u64 {
        self.1.get()
    }
}

/// Picoseconds per operation for `threads` threads doing `iters` each.
fn run<L: BenchLock>(threads: usize, iters: u64) -> u64 {
    let lock = L::new();
    let barrier = Barrier::new(threads + 1);
    let elapsed = thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                barrier.wait();
                for _ in 0..iters {
                    lock.bump();
                }
            });
        }
        barrier.wait();
        let start = Instant::now();
        // Scope end joins the workers.
        start
    });
    let nanos = elapsed.elapsed().as_nanos();
    let ops = threads as u64 * iters;
    assert_eq!(lock.count(), ops, "{}: lost increments", L::NAME);
    u64::try_from(nanos * 1000 / u128::from(ops.max(1))).unwrap_or(u64::MAX)
}

fn median(mut v: Vec<u64>) -> u64 {
    v.sort_unstable();
    v[v.len() / 2]
}

fn fmt_ps(ps: u64) -> String {
    format!("{}.{:02}", ps / 1000, ps % 1000 / 10)
}

fn fmt_ratio(num: u64, den: u64) -> String {
    format!("{}x", fmt_ratio_number(num, den))
}

/// `num / den` to two decimals, truncated, as a JSON number.
fn fmt_ratio_number(num: u64, den: u64) -> String {
    let milli = num * 1000 / den.max(1);
    format!("{}.{:02}", milli / 1000, milli % 1000 / 10)
}

/// One line of the table: medians in picoseconds per operation.
struct Row {
    threads: usize,
    resilient: u64,
    queued: u64,
    tas: u64,
}

/// What was asked of this run: `[--json PATH --date DATE] [ITERATIONS]`.
struct Args {
    iters: u64,
    json: Option<PathBuf>,
    /// When the run started (UTC, RFC 3339), recorded in the JSON. The
    /// caller says it (`make bench` passes `date -u`): this crate takes no
    /// dependencies and does not format dates itself.
    date: Option<String>,
}

fn parse_args(args: &[String]) -> Args {
    let mut parsed = Args {
        iters: 2_000_000,
        json: None,
        date: None,
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        if arg == "--json" {
            parsed.json = Some(PathBuf::from(it.next().expect("--json needs a path")));
        } else if arg == "--date" {
            parsed.date = Some(it.next().expect("--date needs a date").clone());
        } else {
            parsed.iters = arg.parse().expect("ITERATIONS must be a number");
        }
    }
    parsed
}

fn main() {
    let argv: Vec<String> = std::env::args().collect();
    let args = parse_args(&argv[1..]);
    let iters = args.iters;
    let cores = thread::available_parallelism().map_or(1, |n| n.get());
    println!("rqspinlock benchmark: {iters} lock/unlock pairs per thread, median of {ROUNDS} rounds, {cores} cores");
    if cores < 2 {
        println!(
            "note: fewer than 2 cores, the 2-thread numbers measure preemption, not contention"
        );
    }
    println!();
    println!(
        "{:<10} {:>12} {:>12} {:>12} {:>14} {:>14}",
        "threads", "resilient", "queued", "tas", "resil/queued", "tas/queued"
    );
    let mut rows = Vec::new();
    for threads in [1usize, 2] {
        let (mut r, mut q, mut t) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..ROUNDS {
            r.push(run::<Resilient>(threads, iters));
            q.push(run::<Queued>(threads, iters));
            t.push(run::<Tas>(threads, iters));
        }
        let row = Row {
            threads,
            resilient: median(r),
            queued: median(q),
            tas: median(t),
        };
        println!(
            "{:<10} {:>9} ns {:>9} ns {:>9} ns {:>14} {:>14}",
            threads,
            fmt_ps(row.resilient),
            fmt_ps(row.queued),
            fmt_ps(row.tas),
            fmt_ratio(row.resilient, row.queued),
            fmt_ratio(row.tas, row.queued)
        );
        rows.push(row);
    }
    println!();
    println!(
        "ns/op = wall time / total lock+unlock pairs (with 2 threads: throughput, not latency)."
    );
    println!(
        "locks: {}, {}, {}.",
        Resilient::NAME,
        Queued::NAME,
        Tas::NAME
    );
    if let Some(path) = &args.json {
        let command = command_line(&argv);
        let date = args
            .date
            .as_deref()
            .expect("--json needs --date (UTC, e.g. `date -u +%Y-%m-%dT%H:%M:%SZ`)");
        let run = RunInfo {
            date,
            command: &command,
            iters,
            cores,
        };
        write_json(path, &to_json(&run, &rows));
    }
}

/// Who ran what, when, on how many cores: the header of the JSON.
struct RunInfo<'a> {
    date: &'a str,
    command: &'a str,
    iters: u64,
    cores: usize,
}

fn write_json(path: &Path, json: &str) {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
    }
    std::fs::write(path, json).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    println!("results: {}", path.display());
}

/// The results as JSON for `make results` (docs/results.md): raw ns per
/// operation and the ratios of the table, each measured side by side in
/// this run. Written by hand because this crate has no dependencies (it is
/// the kernel's lock algorithm), and the format is a handful of numbers.
fn to_json(run: &RunInfo<'_>, rows: &[Row]) -> String {
    let mut s = String::from("{\n");
    s += &format!("  \"date\": {},\n", json_str(run.date));
    s += &format!("  \"command\": {},\n", json_str(run.command));
    s += &format!("  \"iterations\": {},\n", run.iters);
    s += &format!("  \"rounds\": {ROUNDS},\n");
    s += &format!("  \"cores\": {},\n", run.cores);
    s += &format!(
        "  \"locks\": {{\"resilient\": {}, \"queued\": {}, \"tas\": {}}},\n",
        json_str(Resilient::NAME),
        json_str(Queued::NAME),
        json_str(Tas::NAME)
    );
    s += "  \"rows\": [\n";
    for (i, r) in rows.iter().enumerate() {
        s += &format!(
            "    {{\"threads\": {}, \"ns_per_op\": {{\"resilient\": {}, \"queued\": {}, \"tas\": {}}}, \
             \"resilient_over_queued\": {}, \"tas_over_queued\": {}}}{}\n",
            r.threads,
            fmt_ps(r.resilient),
            fmt_ps(r.queued),
            fmt_ps(r.tas),
            fmt_ratio_number(r.resilient, r.queued),
            fmt_ratio_number(r.tas, r.queued),
            if i + 1 < rows.len() { "," } else { "" }
        );
    }
    s += "  ]\n}\n";
    s
}

/// A JSON string literal.
fn json_str(text: &str) -> String {
    let mut s = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => s += "\\\"",
            '\\' => s += "\\\\",
            // Control characters, and anything not ASCII as UTF-16 units,
            // so the file (and the page made from it) stays ASCII.
            c if c.is_ascii_control() || !c.is_ascii() => {
                for unit in c.encode_utf16(&mut [0; 2]) {
                    s += &format!("\\u{unit:04x}");
                }
            }
            c => s.push(c),
        }
    }
    s.push('"');
    s
}

/// The program name without its directory, and the arguments: how this run
/// can be repeated.
fn command_line(argv: &[String]) -> String {
    let program = argv
        .first()
        .and_then(|p| Path::new(p).file_name())
        .map_or_else(|| "bench".into(), |n| n.to_string_lossy().into_owned());
    std::iter::once(program)
        .chain(argv.iter().skip(1).cloned())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The file xtask's tests read as this benchmark's output: the two
    /// sides agree on the format through it.
    #[test]
    fn json_matches_the_fixture() {
        let rows = [
            Row {
                threads: 1,
                resilient: 11_970,
                queued: 5_000,
                tas: 2_190,
            },
            Row {
                threads: 2,
                resilient: 90_600,
                queued: 108_200,
                tas: 3_590,
            },
        ];
        let run = RunInfo {
            date: "2026-11-28T05:42:10Z",
            command: "bench --json out/bench/host.json",
            iters: 1000,
            cores: 2,
        };
        assert_eq!(
            to_json(&run, &rows),
            include_str!("../../tests/fixtures/bench.json"),
            "the JSON changed: update tests/fixtures/bench.json and xtask's reader"
        );
        assert_eq!(json_str("a\"\\"), r#""a\"\\""#);
        assert_eq!(
            json_str("a\u{e9}\u{1f512}\n"),
            r#""a\u00e9\ud83d\udd12\u000a""#
        );
    }

    #[test]
    fn arguments_and_dates() {
        let a = parse_args(&[
            "--json".into(),
            "out/x.json".into(),
            "--date".into(),
            "2000-02-29T12:34:56Z".into(),
            "10".into(),
        ]);
        assert_eq!(
            (a.iters, a.json.as_deref(), a.date.as_deref()),
            (
                10,
                Some(Path::new("out/x.json")),
                Some("2000-02-29T12:34:56Z")
            )
        );
        assert_eq!(parse_args(&[]).iters, 2_000_000);
        assert_eq!(
            command_line(&["/t/release/bench".into(), "--json".into(), "a".into()]),
            "bench --json a"
        );
    }
}
