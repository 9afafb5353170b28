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
    judge_total(&r, count, expected)?;
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

/// The counter verdict: no attempt failed and the count is exactly
/// `expected`.
fn judge_total(r: &RlResult, count: u64, expected: u64) -> Result<()> {
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
        "count is {count}, expected exactly {expected} ({} increments lost)",
        expected as i128 - count as i128
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

/// Checkpoints of `rl_irqsave` (bit i of `aux`: interrupts off at i).
const IRQ_CHECKPOINTS: u64 = 7;
/// Off inside the irqsave regions only: after the irqsave lock (1), after
/// the failed AA attempt with the outer lock still held (2), in the plain
/// lock nested inside (3), in the second irqsave region (5). On before the
/// first lock (0) and after each irqrestore (4, 6).
const IRQS_OFF_EXPECTED: u64 = 1 << 1 | 1 << 2 | 1 << 3 | 1 << 5;

/// `runtime/res_lock_irqsave`: the irqsave pair end to end: interrupts are
/// off exactly inside the irqsave regions (a test-module kfunc reads
/// `irqs_disabled()` at seven checkpoints), AA is detected at once with the
/// irqsave variant, a plain lock nests inside, the lock works afterwards,
/// and two CPUs counting under the irqsave lock lose nothing and fail
/// never. Breaks if the pair does not exclude (lost increments), if the AA
/// check misses the irqsave path (timeout), if irqsave leaves interrupts on
/// or irqrestore (or a failed irqsave attempt) leaves them off (the
/// checkpoint mask). The saved flags are opaque to programs (the verifier
/// refuses reads of the slot), so their value is not checked here.
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
    ctx.log(&format!(
        "interrupts off at checkpoints {:#09b} of {} (bit i = checkpoint i), expected {IRQS_OFF_EXPECTED:#09b}",
        r.aux, r.aux2
    ));
    ensure!(
        r.aux2 == IRQ_CHECKPOINTS && r.aux == IRQS_OFF_EXPECTED,
        "interrupts off at checkpoints {:#09b} over {} checkpoints, expected {IRQS_OFF_EXPECTED:#09b} over {IRQ_CHECKPOINTS}: \
         off inside the irqsave regions (1, 2, 3, 5) and on outside them (0, 4, 6)",
        r.aux,
        r.aux2
    );
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::res_lock::ETIMEDOUT;

    #[test]
    fn exact_count_without_failures_passes() {
        judge_total(&RlResult::default(), 40000, 40000).unwrap();
    }

    /// One timed-out attempt fails the run even when the count is right.
    #[test]
    fn a_timeout_fails() {
        let r = RlResult {
            timedout: 1,
            err: ETIMEDOUT,
            ns: 250_000_000,
            ..RlResult::default()
        };
        let e = judge_total(&r, 40000, 40000).unwrap_err();
        assert!(e.to_string().contains("-ETIMEDOUT"), "{e}");
    }

    #[test]
    fn a_lost_increment_fails() {
        let e = judge_total(&RlResult::default(), 39999, 40000).unwrap_err();
        assert!(e.to_string().contains("1 increments lost"), "{e}");
    }
}
