//! `runtime/res_lock_stalled_holder`: a waiter on a lock held too long gives
//! up with -ETIMEDOUT at its own deadline, and the lock works afterwards.

use std::time::{Duration, Instant};

use anyhow::{bail, ensure};

use super::{
    errno_name, ms, nanos, needs_two_cpus, run_once_guarded, set_cfg, RlResult, CFG_STALL_HOLD_NS,
    ETIMEDOUT, FAST_BOUND, HANG_LIMIT, HEAD_TIMEOUT, OBJECT, PENDING_TIMEOUT, RES_STALL_HOLD,
    RES_STALL_WAIT, STALL_HOLD,
};
use crate::runtime::support::{load_programs, recv_within, spawn_pinned, test_run};
use crate::runtime::{Ctx, Outcome, Verdict};

/// `runtime/res_lock_stalled_holder`: CPU 0 holds the lock for
/// [`STALL_HOLD`] (1.5 s, a may_goto busy loop under the lock); the attempt
/// on CPU 1 gives up with -ETIMEDOUT after its own pending timeout while the
/// lock is still held, and succeeds afterwards. Breaks if the waiter's
/// timeout is missing (it would wait the whole hold and then get the lock),
/// or off (outside [`PENDING_TIMEOUT`]..[`HEAD_TIMEOUT`], bounds that come
/// from the lock, not from the hold), or if the lock stays broken after.
pub fn stalled_holder(ctx: &mut Ctx) -> Outcome {
    if let Some(skip) = needs_two_cpus() {
        return Ok(skip);
    }
    let obj = load_programs(ctx, OBJECT, &["rl_stall_holder", "rl_stall_wait"])?;
    let res = obj.map("rl_res")?;
    let cfg = obj.map("rl_cfg")?;
    set_cfg(&cfg, CFG_STALL_HOLD_NS, nanos(STALL_HOLD))?;
    let holder_fd = obj.fd("rl_stall_holder")?;
    let wait_fd = obj.fd("rl_stall_wait")?;

    let holder = spawn_pinned(0, move || test_run(holder_fd, 1));
    // The holder publishes t_start once it has the lock.
    let start = Instant::now();
    loop {
        if RlResult::read(&res, RES_STALL_HOLD)?.t_start != 0 {
            break;
        }
        if start.elapsed() > HANG_LIMIT {
            bail!("the holder did not take the lock within {HANG_LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let waiter = spawn_pinned(1, move || test_run(wait_fd, 1));
    let wait_ret = recv_within(&waiter, HANG_LIMIT, "the waiter")??.retval;
    let hold_ret = recv_within(&holder, HANG_LIMIT, "the holder")??.retval;
    let h = RlResult::read(&res, RES_STALL_HOLD)?;
    let w = RlResult::read(&res, RES_STALL_WAIT)?;
    let held = h.t_end.saturating_sub(h.t_start);
    let waited = w.t_end.saturating_sub(w.t_start);
    ctx.log(&format!(
        "holder: retval {hold_ret}, held {} ({} may_goto rounds{}); waiter: retval {wait_ret}, {} after {}",
        ms(held),
        h.aux,
        if h.budget_out != 0 { ", budget ran out" } else { "" },
        errno_name(w.err),
        ms(waited)
    ));
    ensure!(
        hold_ret == 0 && h.ok == 1,
        "the holder failed: retval {hold_ret}, {h:?}"
    );
    ensure!(
        h.budget_out == 0,
        "the holder's may_goto budget ran out after {} rounds and {}: raise DELAY_ITERS in runtime_res_lock.c",
        h.aux,
        ms(held)
    );
    ensure!(
        held >= nanos(STALL_HOLD),
        "the holder held the lock only {}, expected {STALL_HOLD:?}",
        ms(held)
    );
    ensure!(wait_ret == 0, "rl_stall_wait returned {wait_ret}");
    ensure!(
        w.ok == 0,
        "the waiter got the lock after {} instead of timing out",
        ms(waited)
    );
    ensure!(
        w.err == ETIMEDOUT,
        "the waiter failed with {}, expected -ETIMEDOUT",
        errno_name(w.err)
    );
    ensure!(
        (nanos(PENDING_TIMEOUT)..nanos(HEAD_TIMEOUT)).contains(&waited),
        "the waiter gave up after {}, expected {PENDING_TIMEOUT:?}..{HEAD_TIMEOUT:?} (its own deadline as the pending waiter)",
        ms(waited)
    );
    ensure!(
        w.t_start >= h.t_start && w.t_end <= h.t_end,
        "the waiter's attempt [{}, {}] is not inside the hold [{}, {}]",
        w.t_start,
        w.t_end,
        h.t_start,
        h.t_end
    );
    ctx.log(&format!("stalled-holder timeout: {}", ms(waited)));

    let ret = run_once_guarded(wait_fd, "rl_stall_wait after the hold")?;
    let w2 = RlResult::read(&res, RES_STALL_WAIT)?;
    ensure!(
        ret == 0 && w2.ok == 1 && w2.failures() == w.failures(),
        "after the holder released, the lock could not be taken ({w2:?})"
    );
    ensure!(
        w2.t_end - w2.t_start < nanos(FAST_BOUND),
        "after the holder released, taking the free lock took {}",
        ms(w2.t_end - w2.t_start)
    );
    Ok(Verdict::Pass)
}
