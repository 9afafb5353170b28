//! `runtime/res_lock_user_update`: user-space updates, lookups and deletes
//! of a locked element neither write nor leak its lock bytes, while programs
//! on two CPUs take turns in its critical section.

use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};

use super::{
    errno_name, errno_of, ms, nanos, needs_two_cpus, run_once_guarded, set_cfg, RlResult,
    CFG_UPD_CONT_NS, CFG_UPD_HOLD_NS, DEF_TIMEOUT_NS, FAST_BOUND, HANG_LIMIT, OBJECT,
    RES_UPD_ARRAY_CONT, RES_UPD_ARRAY_HOLDER, RES_UPD_HASH_CONT, RES_UPD_HASH_HOLDER,
    RES_UPD_PROBE, STATE_ARRAY, STATE_HASH,
};
use crate::libbpf::Map;
use crate::runtime::support::{
    load_programs, lookup, read_u64, recv_within, spawn_pinned, test_run, LoadedObject,
};
use crate::runtime::{Ctx, Outcome, Verdict};

/// Which map `runtime/res_lock_user_update` storms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum UpdMap {
    Array,
    Hash,
}

impl UpdMap {
    fn label(self) -> &'static str {
        match self {
            Self::Array => "ARRAY",
            Self::Hash => "HASH",
        }
    }
    fn map(self) -> &'static str {
        match self {
            Self::Array => "rl_upd_array",
            Self::Hash => "rl_upd_hash",
        }
    }
    fn holder(self) -> &'static str {
        match self {
            Self::Array => "rl_upd_array_holder",
            Self::Hash => "rl_upd_hash_holder",
        }
    }
    fn contender(self) -> &'static str {
        match self {
            Self::Array => "rl_upd_array_contender",
            Self::Hash => "rl_upd_hash_contender",
        }
    }
    fn probe(self) -> &'static str {
        match self {
            Self::Array => "rl_upd_probe_array",
            Self::Hash => "rl_upd_probe_hash",
        }
    }
    fn slots(self) -> (u32, u32) {
        match self {
            Self::Array => (RES_UPD_ARRAY_HOLDER, RES_UPD_ARRAY_CONT),
            Self::Hash => (RES_UPD_HASH_HOLDER, RES_UPD_HASH_CONT),
        }
    }
    fn state(self) -> u32 {
        match self {
            Self::Array => STATE_ARRAY,
            Self::Hash => STATE_HASH,
        }
    }
}

/// `struct rl_upd_state`: (sections in progress, sections started).
fn upd_state(map: &Map, slot: u32) -> Result<(u64, u64)> {
    let v = lookup(map, slot)?;
    Ok((read_u64(&v, 0)?, read_u64(&v, 8)?))
}

/// A value for `rl_upd_*` whose lock bytes are all ones and whose other
/// bytes are garbage that changes with `i`.
fn scribbled_value(size: usize, i: u64) -> Vec<u8> {
    let mut v: Vec<u8> = (0..size)
        .map(|b| (i as u8).wrapping_mul(31).wrapping_add(b as u8) ^ 0xa5)
        .collect();
    v[..4].fill(0xff);
    v
}
/// What the user-space thread of `runtime/res_lock_user_update` did.
#[derive(Debug, Default)]
struct UserStats {
    updates: u64,
    /// Updates that began and ended inside one critical section.
    while_held: u64,
    readbacks: u64,
    /// Readbacks whose lock bytes were not 0.
    bad_readbacks: u64,
    deletes: u64,
    errors: u64,
    first_problem: Option<String>,
}

impl UserStats {
    fn problem(&mut self, what: String) {
        self.errors += 1;
        self.first_problem.get_or_insert(what);
    }
}

/// The user-space side of the storm: overwrites element 0 with a value whose
/// lock bytes are 0xff as fast as it can, reads it back, and for the hash
/// map also deletes and re-inserts it, until `stop`.
fn user_storm(kind: UpdMap, data: &Map, state: &Map, stop: &AtomicBool) -> Result<UserStats> {
    /// The hash element is deleted and re-inserted every this many updates.
    const DELETE_EVERY: u64 = 16;
    let mut s = UserStats::default();
    let key = 0u32.to_ne_bytes();
    let mut i = 0u64;
    while !stop.load(Ordering::Relaxed) {
        i += 1;
        let value = scribbled_value(data.value_size, i);
        let before = upd_state(state, kind.state())?;
        match data.update(&key, &value, libbpf_sys::BPF_ANY as u64) {
            Ok(()) => s.updates += 1,
            Err(e) => s.problem(format!("update {i}: {e:#}")),
        }
        let after = upd_state(state, kind.state())?;
        // Somebody held a lock of the map before and after the update, and
        // no section started in between: the same section spanned it.
        if before.0 > 0 && after.0 > 0 && before.1 == after.1 {
            s.while_held += 1;
        }
        match data.lookup(&key, 0) {
            Ok(v) => {
                s.readbacks += 1;
                if v[..4] != [0; 4] {
                    s.bad_readbacks += 1;
                    s.first_problem
                        .get_or_insert(format!("readback {i}: lock bytes {:02x?}", &v[..4]));
                }
            }
            Err(e) => s.problem(format!("lookup {i}: {e:#}")),
        }
        if kind == UpdMap::Hash && i.is_multiple_of(DELETE_EVERY) {
            match data.delete(&key) {
                Ok(()) => s.deletes += 1,
                Err(e) => s.problem(format!("delete {i}: {e:#}")),
            }
            match data.lookup(&key, 0) {
                Err(e) if errno_of(&e) == Some(libc::ENOENT) => {}
                Err(e) => s.problem(format!("lookup after delete {i}: {e:#}")),
                Ok(_) => s.problem(format!("lookup after delete {i}: element still there")),
            }
            if let Err(e) = data.update(&key, &value, libbpf_sys::BPF_NOEXIST as u64) {
                s.problem(format!("re-insert {i}: {e:#}"));
            }
        }
    }
    Ok(s)
}

/// One timed attempt on the storm's element from `probe`: it must be taken
/// within [`FAST_BOUND`].
fn probe_free(ctx: &mut Ctx, fd: RawFd, res: &Map, what: &str) -> Result<()> {
    let before = RlResult::read(res, RES_UPD_PROBE)?;
    let ret = run_once_guarded(fd, what)?;
    let r = RlResult::read(res, RES_UPD_PROBE)?;
    ctx.log(&format!(
        "probe {what}: retval {ret}, {} after {}",
        if r.ok > before.ok {
            "taken".to_string()
        } else {
            errno_name(r.err)
        },
        ms(r.ns)
    ));
    ensure!(
        ret == 0 && r.ok == before.ok + 1,
        "{what}: the lock was not free (retval {ret}: 1 no element, 2 failed with {} after {})",
        errno_name(r.err),
        ms(r.ns)
    );
    ensure!(
        r.ns < nanos(FAST_BOUND),
        "{what}: taking the free lock took {}, expected < {FAST_BOUND:?}",
        ms(r.ns)
    );
    Ok(())
}

/// The storm on one map; see [`user_update`].
fn storm(ctx: &mut Ctx, obj: &LoadedObject, kind: UpdMap) -> Result<()> {
    /// How long the three threads run.
    const DURATION: Duration = Duration::from_secs(2);
    /// The contender sleeps this long between attempts, so that the
    /// user-space thread on its CPU gets to run while the holder holds.
    const CONTENDER_GAP: Duration = Duration::from_millis(5);
    /// Sections each side must complete at least (about 40 holder sections
    /// of 50 ms fit in [`DURATION`]).
    const MIN_SECTIONS: u64 = 5;

    let label = kind.label();
    let data = obj.map(kind.map())?;
    let state = obj.map("rl_upd_state")?;
    let res = obj.map("rl_res")?;
    let probe = obj.fd(kind.probe())?;
    if kind == UpdMap::Hash {
        data.update(
            &0u32.to_ne_bytes(),
            &scribbled_value(data.value_size, 0),
            libbpf_sys::BPF_NOEXIST as u64,
        )
        .context("inserting the hash element")?;
    }

    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let runner = |cpu: usize, fd: RawFd, gap: Duration| {
        let stop = Arc::clone(&stop);
        spawn_pinned(cpu, move || -> Result<u64> {
            let mut runs = 0;
            while !stop.load(Ordering::Relaxed) && start.elapsed() < DURATION {
                let out = test_run(fd, 1)?;
                ensure!(
                    out.retval == 0,
                    "run {runs} returned {} (1: lookup failed, 3: owner map full)",
                    out.retval
                );
                runs += 1;
                std::thread::sleep(gap);
            }
            Ok(runs)
        })
    };
    let holder = runner(0, obj.fd(kind.holder())?, Duration::ZERO);
    let contender = runner(1, obj.fd(kind.contender())?, CONTENDER_GAP);
    let user = {
        let (stop, data, state) = (Arc::clone(&stop), data.clone(), state.clone());
        spawn_pinned(1, move || user_storm(kind, &data, &state, &stop))
    };
    while start.elapsed() < DURATION {
        std::thread::sleep(Duration::from_millis(20));
    }
    stop.store(true, Ordering::Relaxed);
    let holder_runs = recv_within(&holder, HANG_LIMIT, "the holder")?.context("holder")?;
    let cont_runs = recv_within(&contender, HANG_LIMIT, "the contender")?.context("contender")?;
    let u = recv_within(&user, HANG_LIMIT, "the user-space thread")?.context("user thread")?;

    let (hs, cs) = kind.slots();
    let h = RlResult::read(&res, hs)?;
    let c = RlResult::read(&res, cs)?;
    let (holders, gen) = upd_state(&state, kind.state())?;
    ctx.log(&format!(
        "{label}: user space: {} updates ({} inside a critical section), {} readbacks ({} with non-zero lock bytes), {} deletes, {} errors{}",
        u.updates,
        u.while_held,
        u.readbacks,
        u.bad_readbacks,
        u.deletes,
        u.errors,
        u.first_problem
            .as_ref()
            .map(|p| format!(" (first problem: {p})"))
            .unwrap_or_default()
    ));
    for (role, r, runs) in [
        ("holder (CPU 0)", &h, holder_runs),
        ("contender (CPU 1)", &c, cont_runs),
    ] {
        ctx.log(&format!(
            "{label} {role}: {runs} runs, {} element not found, {} attempts, {} sections, \
             {} -EDEADLK, {} -ETIMEDOUT, {} other, {} owner violations, longest section {}, longest failed attempt {}",
            r.not_found,
            r.attempts,
            r.ok,
            r.deadlk,
            r.timedout,
            r.other,
            r.violations,
            ms(r.max_hold_ns),
            ms(r.max_ns)
        ));
    }
    ctx.log(&format!(
        "{label}: {gen} sections in all, {holders} in progress at the end"
    ));

    for (role, r, runs) in [("holder", &h, holder_runs), ("contender", &c, cont_runs)] {
        ensure!(
            r.runs == runs,
            "{label} {role}: the program counted {} runs, the runner made {runs}",
            r.runs
        );
        ensure!(
            r.runs == r.not_found + r.attempts && r.attempts == r.ok + r.failures(),
            "{label} {role}: {} runs = {} not found + {} attempts, {} attempts = {} taken + {} failed does not add up: an attempt was lost",
            r.runs,
            r.not_found,
            r.attempts,
            r.attempts,
            r.ok,
            r.failures()
        );
        ensure!(
            kind == UpdMap::Hash || r.not_found == 0,
            "{label} {role}: an array element was not found"
        );
        // One lock per program and a hold far below the pending timeout:
        // neither a deadlock nor another error can happen. A -ETIMEDOUT
        // needs a holder stalled for the pending timeout (a vCPU
        // descheduled by a busy host); it is counted and logged above.
        ensure!(
            r.deadlk == 0 && r.other == 0,
            "{label} {role}: attempts failed with -EDEADLK ({}) or another error ({}; last {})",
            r.deadlk,
            r.other,
            errno_name(r.err)
        );
        ensure!(
            r.violations == 0,
            "{label} {role}: {} times another side was inside the critical section of the same lock word: mutual exclusion broken",
            r.violations
        );
        ensure!(
            r.budget_out == 0,
            "{label} {role}: a hold loop ran out of may_goto budget"
        );
        ensure!(
            r.ok >= MIN_SECTIONS,
            "{label} {role}: only {} sections in {DURATION:?}, expected at least {MIN_SECTIONS}",
            r.ok
        );
    }
    ensure!(
        u.errors == 0,
        "{label}: {} user-space map operations failed (first: {})",
        u.errors,
        u.first_problem.as_deref().unwrap_or("?")
    );
    ensure!(
        u.bad_readbacks == 0,
        "{label}: {} lookups returned non-zero lock bytes (first: {})",
        u.bad_readbacks,
        u.first_problem.as_deref().unwrap_or("?")
    );
    ensure!(
        u.updates > 0 && u.while_held > 0,
        "{label}: {} updates, {} of them while a lock was held: the storm did not overlap the critical sections",
        u.updates,
        u.while_held
    );
    ensure!(
        holders == 0,
        "{label}: {holders} sections still in progress after the threads stopped"
    );
    if kind == UpdMap::Array {
        let owner = read_u64(&lookup(&obj.map("rl_owner_array")?, 0)?, 0)?;
        ensure!(owner == 0, "{label}: owner {owner} left behind");
    }

    // After the storm: the element as user space left it (lock bytes written
    // as 0xff) has a free lock; so does one replaced or re-inserted now.
    probe_free(ctx, probe, &res, &format!("{label} after the storm"))?;
    let key = 0u32.to_ne_bytes();
    let value = scribbled_value(data.value_size, u64::MAX);
    data.update(&key, &value, libbpf_sys::BPF_ANY as u64)?;
    probe_free(ctx, probe, &res, &format!("{label} after one more update"))?;
    if kind == UpdMap::Hash {
        data.delete(&key)?;
        data.update(&key, &value, libbpf_sys::BPF_NOEXIST as u64)?;
        probe_free(
            ctx,
            probe,
            &res,
            &format!("{label} after delete and re-insert"),
        )?;
    }
    Ok(())
}

/// `runtime/res_lock_user_update`: user space overwrites a locked element
/// while programs on two CPUs take turns in its critical section.
///
/// A holder program (CPU 0) keeps the lock of element 0 for 50 ms per run
/// (a may_goto loop), a contender (CPU 1) takes it for 1 ms with gaps, and a
/// user-space thread (CPU 1, in the contender's gaps) updates the element
/// with lock bytes 0xff and garbage elsewhere, reads it back, and for the
/// hash map deletes and re-inserts it. Ownership lives in maps user space
/// never writes: one record for the array element, one per element memory
/// for the hash (an update replaces a hash element, and a holder of the
/// old element's lock does not exclude a taker of the new one's; they are
/// different lock words).
///
/// Breaks if an update writes the lock bytes: zeros would let the contender
/// in while the holder holds (owner violation), ones would leave the lock
/// taken (the probes after the storm time out). Breaks if a lookup leaks the
/// lock bytes, if an attempt goes uncounted, or if the storm never overlaps
/// a critical section (then nothing was tested).
pub fn user_update(ctx: &mut Ctx) -> Outcome {
    /// The holder's section: a fifth of the pending timeout
    /// (`DEF_TIMEOUT_NS`), so a waiting contender never times out because
    /// of the hold alone.
    const HOLD: Duration = Duration::from_nanos(DEF_TIMEOUT_NS / 5);
    /// The contender's section, a fiftieth of the holder's.
    const CONT_HOLD: Duration = Duration::from_nanos(DEF_TIMEOUT_NS / 5 / 50);

    if let Some(skip) = needs_two_cpus() {
        return Ok(skip);
    }
    let obj = load_programs(
        ctx,
        OBJECT,
        &[
            "rl_upd_array_holder",
            "rl_upd_array_contender",
            "rl_upd_probe_array",
            "rl_upd_hash_holder",
            "rl_upd_hash_contender",
            "rl_upd_probe_hash",
        ],
    )?;
    let cfg = obj.map("rl_cfg")?;
    set_cfg(&cfg, CFG_UPD_HOLD_NS, nanos(HOLD))?;
    set_cfg(&cfg, CFG_UPD_CONT_NS, nanos(CONT_HOLD))?;
    ctx.log(&format!(
        "holder sections {HOLD:?}, contender sections {CONT_HOLD:?}"
    ));
    storm(ctx, &obj, UpdMap::Array)?;
    storm(ctx, &obj, UpdMap::Hash)?;
    Ok(Verdict::Pass)
}
