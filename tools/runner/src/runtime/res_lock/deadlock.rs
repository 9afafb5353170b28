//! `runtime/res_lock_aa`, `_abba` and `_held_overflow`: a deadlock on the
//! resilient lock is reported as -EDEADLK at once, by the AA and ABBA checks
//! and by the held table up to its last slot, and as -ETIMEDOUT past it.

use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};

use super::{
    errno_name, ms, nanos, needs_two_cpus, run_once_guarded, set_cfg, RlResult,
    CFG_OVERFLOW_TARGET, EDEADLK, ETIMEDOUT, FAST_BOUND, HANG_LIMIT, HEAD_TIMEOUT, NR_HELD,
    NR_HOLD, NR_MANY, OBJECT, PENDING_TIMEOUT, RES_AA, RES_ABBA_AB, RES_ABBA_BA, RES_OVERFLOW,
};
use crate::runtime::support::{load_programs, recv_within, spawn_pinned, test_run, LoadedObject};
use crate::runtime::{Ctx, Outcome, Verdict};

/// `runtime/res_lock_aa`: locking a lock this CPU already holds, through a
/// second lookup of the same element, fails at once with -EDEADLK, and the
/// lock works again afterwards. Breaks if the AA check is gone (the attempt
/// then spins for the 0.25 s timeout and returns -ETIMEDOUT: both the errno
/// and the [`FAST_BOUND`] fail) or if the lock can be taken twice (retval 3).
pub fn aa(ctx: &mut Ctx) -> Outcome {
    const RUNS: u32 = 5;

    let obj = load_programs(ctx, OBJECT, &["rl_aa"])?;
    let fd = obj.fd("rl_aa")?;
    let res = obj.map("rl_res")?;
    let mut worst = 0;
    for run in 0..RUNS {
        let ret = run_once_guarded(fd, "rl_aa")?;
        let r = RlResult::read(&res, RES_AA)?;
        ctx.log(&format!(
            "run {run}: retval {ret}, second attempt {} after {}",
            errno_name(r.err),
            ms(r.ns)
        ));
        ensure!(
            ret == 0,
            "run {run}: rl_aa returned {ret} (3: the lock was taken twice; 2/4: a free lock could not be taken)"
        );
        ensure!(
            r.err == EDEADLK,
            "run {run}: the second attempt failed with {}, expected -EDEADLK",
            errno_name(r.err)
        );
        ensure!(
            r.ns < nanos(FAST_BOUND),
            "run {run}: AA detection took {}, expected < {FAST_BOUND:?}",
            ms(r.ns)
        );
        worst = worst.max(r.ns);
    }
    let r = RlResult::read(&res, RES_AA)?;
    let runs = u64::from(RUNS);
    ensure!(
        r.runs == runs && r.deadlk == runs && r.ok == runs && r.other == 0 && r.timedout == 0,
        "counters: {r:?}, expected {RUNS} runs, {RUNS} deadlocks and {RUNS} clean re-locks"
    );
    ctx.log(&format!(
        "AA detection time: worst {} over {RUNS} runs",
        ms(worst)
    ));
    Ok(Verdict::Pass)
}

/// `runtime/res_lock_abba`: CPU 0 runs A→B, CPU 1 runs B→A until a second
/// lock (taken while holding the first) reports -EDEADLK or the budget ends.
/// Breaks if the ABBA check is gone: each deadlock then lasts the 0.25 s
/// timeout and ends in -ETIMEDOUT, which is refused here, and no -EDEADLK
/// is ever seen on a second lock. A failure of the FIRST lock is counted
/// apart and never taken for a detection. A lock that hangs fails the hang
/// limit; one left held fails the solo runs at the end.
pub fn abba(ctx: &mut Ctx) -> Outcome {
    if let Some(skip) = needs_two_cpus() {
        return Ok(skip);
    }
    let obj = load_programs(ctx, OBJECT, &["rl_abba_ab", "rl_abba_ba"])?;
    let res = obj.map("rl_res")?;
    let run = provoke_abba(&obj)?;
    let (runs_ab, runs_ba, first_seen, start) =
        (run.runs_ab, run.runs_ba, run.first_seen, run.start);
    let ab = RlResult::read(&res, RES_ABBA_AB)?;
    let ba = RlResult::read(&res, RES_ABBA_BA)?;
    for (name, r, runs) in [
        ("A->B (CPU 0)", &ab, runs_ab),
        ("B->A (CPU 1)", &ba, runs_ba),
    ] {
        ctx.log(&format!(
            "{name}: {} runs, {} ok; second lock: {} -EDEADLK, {} -ETIMEDOUT, {} other; \
             first lock: {} -EDEADLK, {} -ETIMEDOUT, {} other; last ABBA detection {}, longest {}",
            runs,
            r.ok,
            r.deadlk,
            r.timedout,
            r.other,
            r.first_deadlk,
            r.first_timedout,
            r.first_other,
            ms(r.aux),
            ms(r.aux2)
        ));
        ensure!(
            r.runs == runs,
            "{name}: the program counted {} runs, the runner made {}",
            r.runs,
            runs
        );
        ensure!(
            r.runs == r.ok + r.failures() + r.first_failures(),
            "{name}: {} runs but {} ok + {} failed second locks + {} failed first locks: an attempt went uncounted",
            r.runs,
            r.ok,
            r.failures(),
            r.first_failures()
        );
    }
    match first_seen {
        Some(t) => ctx.log(&format!(
            "first -EDEADLK seen after {:.2} s",
            t.as_secs_f64()
        )),
        None => ctx.log(&format!("no -EDEADLK within {ABBA_BUDGET:?}")),
    }
    judge_abba(&ab, &ba, start.elapsed())?;

    // Afterwards both locks are free: each order alone takes both.
    for (prog, slot) in [("rl_abba_ab", RES_ABBA_AB), ("rl_abba_ba", RES_ABBA_BA)] {
        let before = RlResult::read(&res, slot)?;
        let ret = run_once_guarded(obj.fd(prog)?, &format!("{prog} alone"))?;
        let after = RlResult::read(&res, slot)?;
        ensure!(
            ret == 0 && after.ok == before.ok + 1,
            "{prog} alone after the test did not take both locks (retval {ret}, {after:?})"
        );
    }
    Ok(Verdict::Pass)
}

/// How long [`provoke_abba`] tries before it gives up.
const ABBA_BUDGET: Duration = Duration::from_secs(20);

/// What [`provoke_abba`] did.
pub(super) struct AbbaRun {
    /// Program runs each side made.
    pub(super) runs_ab: u64,
    pub(super) runs_ba: u64,
    /// When the first -EDEADLK showed up, after `start`.
    pub(super) first_seen: Option<Duration>,
    pub(super) start: Instant,
}

/// Runs `rl_abba_ab` on CPU 0 and `rl_abba_ba` on CPU 1 (programs of
/// `obj`) until a second lock reported -EDEADLK (and half a second more, to
/// collect a few detection times) or [`ABBA_BUDGET`] ran out. The programs
/// count their outcomes in `rl_res`.
pub(super) fn provoke_abba(obj: &LoadedObject) -> Result<AbbaRun> {
    /// Small batches: a batch ends only when both its runs are done, and the
    /// stop flag is checked between batches.
    const REPEAT: u32 = 200;
    /// After the first deadlock, keep going this long to collect a few
    /// detection times.
    const EXTRA: Duration = Duration::from_millis(500);

    let res = obj.map("rl_res")?;
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let spawn = |cpu: usize, fd: RawFd| {
        let stop = Arc::clone(&stop);
        spawn_pinned(cpu, move || -> Result<u64> {
            let mut batches = 0;
            while !stop.load(Ordering::Relaxed) && start.elapsed() < ABBA_BUDGET {
                let out = test_run(fd, REPEAT)?;
                ensure!(out.retval == 0, "program returned {}", out.retval);
                batches += 1;
            }
            Ok(batches)
        })
    };
    let before =
        RlResult::read(&res, RES_ABBA_AB)?.deadlk + RlResult::read(&res, RES_ABBA_BA)?.deadlk;
    let rx_ab = spawn(0, obj.fd("rl_abba_ab")?);
    let rx_ba = spawn(1, obj.fd("rl_abba_ba")?);

    let mut first_seen: Option<Duration> = None;
    while start.elapsed() < ABBA_BUDGET {
        std::thread::sleep(Duration::from_millis(20));
        let found =
            RlResult::read(&res, RES_ABBA_AB)?.deadlk + RlResult::read(&res, RES_ABBA_BA)?.deadlk;
        if found > before {
            let at = *first_seen.get_or_insert(start.elapsed());
            if start.elapsed() >= at + EXTRA {
                break;
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    let batches_ab = recv_within(&rx_ab, HANG_LIMIT, "the A->B thread")?.context("A->B thread")?;
    let batches_ba = recv_within(&rx_ba, HANG_LIMIT, "the B->A thread")?.context("B->A thread")?;
    Ok(AbbaRun {
        runs_ab: batches_ab * u64::from(REPEAT),
        runs_ba: batches_ba * u64::from(REPEAT),
        first_seen,
        start,
    })
}

/// The ABBA verdict from both programs' counters after `elapsed`: only
/// -EDEADLK on a SECOND lock counts as a detection, nothing may time out or
/// fail otherwise, and every detection is quicker than the pending timeout.
fn judge_abba(ab: &RlResult, ba: &RlResult, elapsed: Duration) -> Result<()> {
    ensure!(
        ab.other + ba.other + ab.first_other + ba.first_other == 0,
        "lock attempts failed with an unexpected error (last second-lock error: A->B {}, B->A {})",
        errno_name(ab.err),
        errno_name(ba.err)
    );
    // With the ABBA check every deadlock is broken within milliseconds, so
    // no attempt (on either lock) waits out the pending timeout.
    ensure!(
        ab.timedout + ba.timedout + ab.first_timedout + ba.first_timedout == 0,
        "{} second-lock and {} first-lock attempts ended in -ETIMEDOUT: a deadlock was left to the {PENDING_TIMEOUT:?} timeout",
        ab.timedout + ba.timedout,
        ab.first_timedout + ba.first_timedout
    );
    ensure!(
        ab.deadlk + ba.deadlk > 0,
        "no ABBA deadlock was reported as -EDEADLK on a second lock in {:.1} s ({} runs got both locks; {} first-lock -EDEADLK do not count)",
        elapsed.as_secs_f64(),
        ab.ok + ba.ok,
        ab.first_deadlk + ba.first_deadlk
    );
    // The check runs every 1 ms (ABBA_INTERVAL_NS) once a waiter waits; a
    // detection as late as the pending timeout would mean it fired by luck.
    let longest = ab.aux2.max(ba.aux2);
    ensure!(
        longest < nanos(PENDING_TIMEOUT),
        "an ABBA detection took {}, as long as the {PENDING_TIMEOUT:?} timeout",
        ms(longest)
    );
    Ok(())
}

/// `runtime/res_lock_held_overflow`: with 34 locks held (one per element of
/// `rl_many`, released last in first out), re-locking one the 31-entry
/// table remembers is an immediate -EDEADLK (the table's last slot, index
/// 30, included), re-locking one it does not (the 32nd and later) ends in
/// -ETIMEDOUT after the pending timeout, and a lock not held is taken.
/// Breaks if the table overflows badly (a wrong errno, a crash or a splat),
/// if the timeout is gone (the attempt would spin forever: hang limit) or off
/// (outside [`PENDING_TIMEOUT`]..[`HEAD_TIMEOUT`]), if the AA check skips
/// the last slot (index 30 times out), or if the releases leave a lock
/// taken or the table dirty (rl_many_each after every run).
pub fn held_overflow(ctx: &mut Ctx) -> Outcome {
    let obj = load_programs(ctx, OBJECT, &["rl_overflow", "rl_many_each"])?;
    let res = obj.map("rl_res")?;
    let cfg = obj.map("rl_cfg")?;
    let overflow = obj.fd("rl_overflow")?;
    let many_each = obj.fd("rl_many_each")?;

    // (target, expected result): a remembered lock, the untracked ones, the
    // table's last slot, remembered ones again to show the table came back
    // clean, and one not held at all.
    let plan: [(u32, i64); 7] = [
        (5, EDEADLK),
        (NR_HELD, ETIMEDOUT),
        (NR_HOLD - 1, ETIMEDOUT),
        (NR_HELD - 1, EDEADLK),
        (NR_HELD - 2, EDEADLK),
        (0, EDEADLK),
        (NR_HOLD, 0),
    ];
    let mut prev = RlResult::read(&res, RES_OVERFLOW)?;
    for (target, want) in plan {
        set_cfg(&cfg, CFG_OVERFLOW_TARGET, u64::from(target))?;
        let ret = run_once_guarded(overflow, &format!("rl_overflow (target {target})"))?;
        let r = RlResult::read(&res, RES_OVERFLOW)?;
        let place = if target >= NR_HOLD {
            "not held"
        } else if target == NR_HELD - 1 {
            "in the held table's last slot"
        } else if target < NR_HELD {
            "in the held table"
        } else {
            "beyond the held table"
        };
        let outcome = if r.ok > prev.ok {
            "taken".to_string()
        } else {
            format!("{} after {}", errno_name(r.err), ms(r.ns))
        };
        ctx.log(&format!(
            "holding {NR_HOLD} locks, lock {target} again ({place}): {outcome}"
        ));
        ensure!(
            ret == 0,
            "target {target}: rl_overflow returned {ret} (100 + i: lock i of {NR_HOLD} could not be taken; 200 + i: element i missing)"
        );
        if want == 0 {
            ensure!(
                r.ok == prev.ok + 1 && r.failures() == prev.failures(),
                "target {target} (not held): the lock was not taken ({r:?})"
            );
        } else {
            ensure!(
                r.failures() == prev.failures() + 1 && r.ok == prev.ok,
                "target {target}: the re-lock did not fail exactly once ({r:?})"
            );
            ensure!(
                r.err == want,
                "target {target} ({place}): the re-lock failed with {}, expected {}",
                errno_name(r.err),
                errno_name(want)
            );
            if want == ETIMEDOUT {
                // A lone waiter on a held lock is the pending waiter: it gives
                // up at its own deadline, never before, and well before the
                // head's.
                ensure!(
                    (nanos(PENDING_TIMEOUT)..nanos(HEAD_TIMEOUT)).contains(&r.ns),
                    "target {target}: timed out after {}, expected {PENDING_TIMEOUT:?}..{HEAD_TIMEOUT:?}",
                    ms(r.ns)
                );
            } else {
                ensure!(
                    r.ns < nanos(FAST_BOUND),
                    "target {target}: the AA detection took {}, expected < {FAST_BOUND:?}",
                    ms(r.ns)
                );
            }
        }
        let n = run_once_guarded(many_each, "rl_many_each")?;
        ensure!(
            n == NR_MANY,
            "target {target}: afterwards only {n} of {NR_MANY} locks could be taken one by one"
        );
        prev = r;
    }
    Ok(Verdict::Pass)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A run where A->B saw one ABBA deadlock on its second lock, found in
    /// 2 ms, and everything else went through.
    fn detected() -> (RlResult, RlResult) {
        let ab = RlResult {
            runs: 1000,
            ok: 999,
            deadlk: 1,
            err: EDEADLK,
            aux2: 2_000_000,
            ..RlResult::default()
        };
        let ba = RlResult {
            runs: 1000,
            ok: 1000,
            ..RlResult::default()
        };
        (ab, ba)
    }

    #[test]
    fn abba_detected_passes() {
        let (ab, ba) = detected();
        judge_abba(&ab, &ba, Duration::from_secs(1)).unwrap();
    }

    /// A deadlock left to the timeout fails, on either lock.
    #[test]
    fn abba_timeout_fails() {
        let (mut ab, ba) = detected();
        ab.timedout = 1;
        let e = judge_abba(&ab, &ba, Duration::from_secs(1)).unwrap_err();
        assert!(e.to_string().contains("-ETIMEDOUT"), "{e}");
        let (ab, mut ba) = detected();
        ba.first_timedout = 1;
        assert!(judge_abba(&ab, &ba, Duration::from_secs(1)).is_err());
    }

    /// -EDEADLK on the first lock is not an ABBA detection.
    #[test]
    fn abba_first_lock_deadlock_does_not_count() {
        let (mut ab, ba) = detected();
        ab.deadlk = 0;
        ab.first_deadlk = 3;
        let e = judge_abba(&ab, &ba, Duration::from_secs(1)).unwrap_err();
        assert!(
            e.to_string().contains("first-lock -EDEADLK do not count"),
            "{e}"
        );
    }

    /// A detection as slow as the pending timeout is luck, not the check.
    #[test]
    fn abba_slow_detection_fails() {
        let (mut ab, ba) = detected();
        ab.aux2 = nanos(PENDING_TIMEOUT);
        assert!(judge_abba(&ab, &ba, Duration::from_secs(1)).is_err());
    }
}
