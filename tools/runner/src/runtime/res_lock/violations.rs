//! `runtime/res_lock_violations`: every failed acquisition is counted per
//! kind in `/sys/module/bpf_rqspinlock/parameters/violations`, and reported
//! in a rate-limited kernel log line that names the kind, the program and
//! how many locks the CPU holds (mainline prints this to the program's
//! stderr stream since 6.17; 6.12 has none). One AA, one timeout and a run
//! of ABBA deadlocks must move exactly their counters, each by the number
//! of failures the programs themselves saw, and each kind must have its
//! line. Breaks if a kind is counted as another, not counted, or not
//! reported.

use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};

use super::deadlock::provoke_abba;
use super::{
    errno_name, needs_two_cpus, run_once_guarded, set_cfg, RlResult, CFG_OVERFLOW_TARGET, EDEADLK,
    ETIMEDOUT, NR_HELD, NR_HOLD, OBJECT, RES_AA, RES_ABBA_AB, RES_ABBA_BA, RES_OVERFLOW,
};
use crate::dmesg::read_kernel_log;
use crate::runtime::support::load_programs;
use crate::runtime::{Ctx, Outcome, Verdict};

const PARAM: &str = "/sys/module/bpf_rqspinlock/parameters/violations";
/// The module's report rate limit is 10 lines per 5 s: waiting out one
/// interval (plus slack) gives this test a fresh burst, whatever the tests
/// before it reported. It reports 2 lines, then ABBA ones.
const REPORT_INTERVAL: Duration = Duration::from_millis(5_500);

/// The counters, in the file's order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Counts {
    aa: u64,
    abba: u64,
    busy: u64,
    timeout: u64,
}

fn parse_counts(text: &str) -> Result<Counts> {
    let mut c = Counts::default();
    for line in text.lines() {
        let (key, value) = line
            .split_once(' ')
            .with_context(|| format!("line {line:?} of {PARAM}"))?;
        let value: u64 = value
            .trim()
            .parse()
            .with_context(|| format!("{key} in {PARAM}"))?;
        match key {
            "aa" => c.aa = value,
            "abba" => c.abba = value,
            "busy" => c.busy = value,
            "timeout" => c.timeout = value,
            _ => bail!("unknown kind {key:?} in {PARAM}"),
        }
    }
    Ok(c)
}

fn read_counts() -> Result<Counts> {
    parse_counts(&std::fs::read_to_string(PARAM).with_context(|| format!("reading {PARAM}"))?)
}

/// The kernel log from the line that contains `marker` on.
fn log_since(marker: &str) -> Result<String> {
    let log = read_kernel_log()?;
    let at = log
        .rfind(marker)
        .with_context(|| format!("the marker {marker:?} is not in the kernel log"))?;
    Ok(log[at..].to_string())
}

/// The first report line of `kind` for program `prog`, if any.
fn report_line<'a>(log: &'a str, kind: &str, prog: &str) -> Option<&'a str> {
    log.lines().find(|l| {
        l.contains("bpf_rqspinlock: ")
            && l.contains(&format!("{kind} for bpf_res_spin_lock"))
            && l.contains(&format!("_{prog}"))
    })
}

pub fn violations(ctx: &mut Ctx) -> Outcome {
    if let Some(skip) = needs_two_cpus() {
        return Ok(skip);
    }
    let obj = load_programs(
        ctx,
        OBJECT,
        &["rl_aa", "rl_overflow", "rl_abba_ab", "rl_abba_ba"],
    )?;
    let res = obj.map("rl_res")?;
    let cfg = obj.map("rl_cfg")?;
    std::thread::sleep(REPORT_INTERVAL);
    let marker = format!("bpf-runner: res_lock_violations {}", std::process::id());
    std::fs::write("/dev/kmsg", &marker).context("writing a marker to /dev/kmsg")?;
    let before = read_counts()?;
    let slots = [RES_AA, RES_OVERFLOW, RES_ABBA_AB, RES_ABBA_BA];
    let mut prev = Vec::new();
    for slot in slots {
        prev.push(RlResult::read(&res, slot)?);
    }

    // One AA: a second lookup of the element the program holds.
    let ret = run_once_guarded(obj.fd("rl_aa")?, "rl_aa")?;
    ensure!(ret == 0, "rl_aa returned {ret}");
    // One timeout: with NR_HOLD locks held, one beyond the held table.
    set_cfg(&cfg, CFG_OVERFLOW_TARGET, u64::from(NR_HELD))?;
    let ret = run_once_guarded(obj.fd("rl_overflow")?, "rl_overflow")?;
    ensure!(ret == 0, "rl_overflow returned {ret}");
    // ABBA deadlocks between two CPUs.
    let run = provoke_abba(&obj)?;
    ensure!(run.first_seen.is_some(), "no ABBA deadlock was provoked");

    let after = read_counts()?;
    let mut now = Vec::new();
    for slot in slots {
        now.push(RlResult::read(&res, slot)?);
    }
    let d = |i: usize, f: fn(&RlResult) -> u64| f(&now[i]) - f(&prev[i]);
    let aa = d(0, |r| r.deadlk);
    let timeout = d(1, |r| r.timedout);
    let abba = (2..4)
        .map(|i| d(i, |r| r.deadlk) + d(i, |r| r.first_deadlk))
        .sum::<u64>();
    let abba_timeouts = (2..4)
        .map(|i| d(i, |r| r.timedout) + d(i, |r| r.first_timedout))
        .sum::<u64>();
    ctx.log(&format!(
        "the programs saw: {aa} AA, {timeout} timeout ({}), {abba} ABBA, {abba_timeouts} ABBA-run timeouts",
        errno_name(now[1].err)
    ));
    ctx.log(&format!("counters before {before:?}, after {after:?}"));
    ensure!(
        aa == 1 && now[0].err == EDEADLK,
        "rl_aa saw {aa} -EDEADLK, expected 1"
    );
    ensure!(
        timeout == 1 && now[1].err == ETIMEDOUT,
        "rl_overflow saw {timeout} -ETIMEDOUT, expected 1"
    );
    let moved = Counts {
        aa: after.aa - before.aa,
        abba: after.abba - before.abba,
        busy: after.busy - before.busy,
        timeout: after.timeout - before.timeout,
    };
    let expected = Counts {
        aa: 1,
        abba,
        busy: 0,
        timeout: 1 + abba_timeouts,
    };
    ensure!(
        moved == expected,
        "the counters moved by {moved:?}, the programs saw {expected:?}"
    );

    let log = log_since(&marker)?;
    for (kind, prog, holds) in [
        ("AA deadlock", "rl_aa", Some(1)),
        ("timeout", "rl_overflow", Some(NR_HOLD)),
        ("ABBA deadlock", "rl_abba_", None),
    ] {
        let line = report_line(&log, kind, prog)
            .with_context(|| format!("no report of {kind} by {prog} in the kernel log"))?;
        ctx.log(&format!("report: {}", line.trim()));
        if let Some(n) = holds {
            ensure!(
                line.contains(&format!("holds {n}:")),
                "the {kind} report does not say the CPU holds {n} locks: {line}"
            );
        }
    }
    Ok(Verdict::Pass)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_parse() {
        let c = parse_counts("aa 3\nabba 4\nbusy 0\ntimeout 7\n").unwrap();
        assert_eq!(
            c,
            Counts {
                aa: 3,
                abba: 4,
                busy: 0,
                timeout: 7
            }
        );
        assert!(parse_counts("aa x\n").is_err());
        assert!(parse_counts("bogus 1\n").is_err());
    }

    #[test]
    fn report_lines_are_found_by_kind_and_program() {
        let log = "<4>[ 1.0] bpf_rqspinlock: AA deadlock for bpf_res_spin_lock, lock 000000001234abcd, \
                   prog bpf_prog_0123456789abcdef_rl_aa+0x5c/0x120, CPU 0 holds 1: 000000001234abcd\n";
        let line = report_line(log, "AA deadlock", "rl_aa").unwrap();
        assert!(line.contains("holds 1:"));
        assert!(report_line(log, "timeout", "rl_aa").is_none());
        assert!(report_line(log, "AA deadlock", "rl_overflow").is_none());
    }
}
