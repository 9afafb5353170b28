//! `runtime/res_lock_exact_total` and `_irqsave`: the lock, plain and
//! irqsave, excludes: two CPUs counting under it lose no increment and never
//! fail (and the irqsave pair detects AA at once).

use anyhow::{ensure, Result};

use super::{
    errno_name, ms, nanos, run_once_guarded, RlResult, EDEADLK, EL_COUNTER, EL_COUNTER_IRQ,
    FAST_BOUND, OBJECT, RES_COUNTER, RES_COUNTER_IRQ, RES_IRQ,
};
use crate::runtime::support::{load_programs, lookup, read_u64, test_run_parallel};
use crate::runtime::{Ctx, Outcome, Verdict};

/// Two threads × `REPEAT` increments of element `el` under the lock by
/// `prog`; the total must be exact and no attempt may fail.
fn counter_total(ctx: &mut Ctx, prog: &str, el: u32, slot: u32) -> Result<()> {
    const THREADS: usize = 2;
    const REPEAT: u32 = 20000;

    let obj = load_programs(ctx, OBJECT, &[prog])?;
    let fd = obj.fd(prog)?;
    let res = obj.map("rl_res")?;
    let locks = obj.map("rl_locks")?;
    let count_of = || -> Result<u64> { read_u64(&lookup(&locks, el)?, 8) };
    ensure!(count_of()? == 0, "count is not 0 before the run");
    let runs = test_run_parallel(fd, THREADS, REPEAT)?;
    for (i, run) in runs.iter().enumerate() {
        ctx.log(&format!(
            "thread {i}: {REPEAT} runs, {} ns/run, last retval {}",
            run.duration_ns, run.retval
        ));
    }
    let r = RlResult::read(&res, slot)?;
    let count = count_of()?;
    let expected = THREADS as u64 * u64::from(REPEAT);
    ctx.log(&format!(
        "count = {count}, failed attempts = {} ({} -ETIMEDOUT, {} -EDEADLK, {} other; longest {}), expected {expected} and none",
        r.failures(),
        r.timedout,
        r.deadlk,
        r.other,
        ms(r.max_ns)
    ));
    // Sections are a few hundred ns: no waiter comes near the pending
    // timeout, and without nesting no deadlock exists.
    ensure!(
        r.failures() == 0,
        "{} attempts failed (last {} after {}), expected none",
        r.failures(),
        errno_name(r.err),
        ms(r.ns)
    );
    ensure!(
        count == expected,
        "count is {count} after {THREADS} threads x {REPEAT} runs, expected exactly {expected} ({} increments lost)",
        expected as i128 - count as i128
    );
    // The lock is free afterwards: one more run increments once.
    let ret = run_once_guarded(fd, &format!("{prog} after the run"))?;
    let after = count_of()?;
    ensure!(
        ret == 0 && after == expected + 1,
        "one more run after the test: retval {ret}, count {after}, expected {}",
        expected + 1
    );
    Ok(())
}

/// `runtime/res_lock_exact_total`: no increment is lost under the lock and
/// no attempt fails. Breaks if mutual exclusion fails (lost increments make
/// the total short) or if an uncontended-enough attempt fails at all.
pub fn exact_total(ctx: &mut Ctx) -> Outcome {
    counter_total(ctx, "rl_counter", EL_COUNTER, RES_COUNTER)?;
    Ok(Verdict::Pass)
}

/// `runtime/res_lock_irqsave`: the irqsave pair end to end: AA is detected
/// at once with the irqsave variant, a plain lock nests inside, the lock
/// works afterwards, and two CPUs counting under the irqsave lock lose
/// nothing and fail never. Breaks if the pair does not exclude (lost
/// increments), if the AA check misses the irqsave path (timeout), or if
/// interrupts are not restored (the kernel warns on the return to user
/// space: splat gate). The saved flags are opaque to programs now (the
/// verifier refuses reads of the slot), so their value is not checked here.
pub fn irqsave(ctx: &mut Ctx) -> Outcome {
    let obj = load_programs(ctx, OBJECT, &["rl_irqsave"])?;
    let res = obj.map("rl_res")?;
    let ret = run_once_guarded(obj.fd("rl_irqsave")?, "rl_irqsave")?;
    let r = RlResult::read(&res, RES_IRQ)?;
    ctx.log(&format!(
        "retval {ret}; irqsave AA: {} after {}",
        errno_name(r.err),
        ms(r.ns)
    ));
    ensure!(ret == 0, "rl_irqsave stopped at step {ret}");
    ensure!(r.err == EDEADLK, "AA with irqsave: {}", errno_name(r.err));
    ensure!(
        r.ns < nanos(FAST_BOUND),
        "AA with irqsave took {}, expected < {FAST_BOUND:?}",
        ms(r.ns)
    );
    ensure!(r.ok == 1, "the lock could not be taken again: {r:?}");
    drop(obj);
    counter_total(ctx, "rl_counter_irqsave", EL_COUNTER_IRQ, RES_COUNTER_IRQ)?;
    Ok(Verdict::Pass)
}
