//! `runtime/spin_lock_exact_total`: the baseline for the lock tests. Two
//! threads run a program that increments a counter under bpf_spin_lock; if
//! mutual exclusion holds, no increment is lost and the total is exact.

use anyhow::{ensure, Result};

use super::support::{load_program, lookup_locked, read_u64, test_run_parallel};
use super::{Ctx, Outcome, Verdict};

const OBJECT: &str = "runtime_spin_lock.bpf.o";
const PROG: &str = "spin_lock_counter";
const MAP: &str = "counter";
const THREADS: usize = 2;
const REPEAT: u32 = 20000;
/// struct counter_val { struct bpf_spin_lock lock; __u64 count; }: the u32
/// lock, padding, then the u64 at offset 8.
const VALUE_SIZE: usize = 16;
const COUNT_OFFSET: usize = 8;

fn read_count(map: &crate::libbpf::Map) -> Result<u64> {
    ensure!(
        map.value_size == VALUE_SIZE,
        "map '{MAP}' has {}-byte values, expected {VALUE_SIZE} (struct counter_val changed?)",
        map.value_size
    );
    read_u64(&lookup_locked(map, 0)?, COUNT_OFFSET)
}

pub fn exact_total(ctx: &mut Ctx) -> Outcome {
    let prog = load_program(ctx, OBJECT, PROG)?;
    let map = prog.map(MAP)?;
    let before = read_count(&map)?;
    ensure!(before == 0, "count is {before} before any run, expected 0");

    let runs = test_run_parallel(prog.fd, THREADS, REPEAT)?;
    for (i, run) in runs.iter().enumerate() {
        ensure!(
            run.retval == 0,
            "thread {i}: program returned {}, expected 0",
            run.retval
        );
        ctx.log(&format!(
            "thread {i}: {REPEAT} runs, {} ns/run",
            run.duration_ns
        ));
    }

    let expected = THREADS as u64 * u64::from(REPEAT);
    let count = read_count(&map)?;
    ctx.log(&format!("count = {count}, expected {expected}"));
    ensure!(
        count == expected,
        "count is {count} after {THREADS} threads x {REPEAT} runs, expected exactly {expected} ({} increments lost)",
        expected as i128 - count as i128
    );
    Ok(Verdict::Pass)
}
