//! `runtime/res_lock_without_module`: a program that uses the resilient lock
//! while the bpf_rqspinlock module, which provides its kfuncs, is not loaded
//! must fail to load with an error that names the missing kfunc, and load
//! once the module is back.
//!
//! The program is declared the way mainline's programs declare the kfuncs
//! (weak `__ksym` externs, as in mainline's `bpf_experimental.h`; ours are in
//! `selftests/include/bpf_res_spin_lock.h`): libbpf cannot resolve them,
//! poisons the calls, and rewrites the verifier's complaint about the poisoned
//! call into "kfunc '...' is referenced but wasn't resolved". A program that
//! would load anyway, or fail for another reason, fails this test.

use std::ffi::CString;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use super::support::load_program;
use super::{Ctx, Outcome, Verdict};
use crate::modules::{load_module, module_name};

/// The module that provides `bpf_res_spin_lock()` and friends.
const MODULE: &str = "bpf_rqspinlock";
/// A program whose only module kfuncs are the lock's (weak externs).
const OBJECT: &str = "verifier_res_lock_prune.bpf.o";
const PROG: &str = "count_safe";
/// libbpf's message for a weak kfunc extern it could not resolve.
const UNRESOLVED: &str = "kfunc 'bpf_res_spin_lock' is referenced but wasn't resolved";

pub fn res_lock_without_module(ctx: &mut Ctx) -> Outcome {
    if !Path::new("/sys/kernel/btf").join(MODULE).exists() {
        return Ok(Verdict::Skip(format!(
            "{MODULE} is built into this kernel (CONFIG_BPF_RQSPINLOCK_RS=y), so it cannot be \
             absent; the x86_64 run builds it as a module and runs this test"
        )));
    }
    let ko = ctx
        .modules
        .iter()
        .find(|p| module_name(p).is_ok_and(|n| n == MODULE))
        .cloned()
        .with_context(|| format!("{MODULE} is loaded, but no --module names its .ko"))?;

    // Everything the earlier tests loaded is closed, so nothing holds it.
    unload(MODULE)?;
    ctx.log(&format!("{MODULE} unloaded"));
    let without = load_program(ctx, OBJECT, PROG);
    // Put the module back before judging, whatever happened.
    load_module(&ko).with_context(|| format!("loading {MODULE} again"))?;
    ctx.log(&format!("{MODULE} loaded again"));

    match without {
        Ok(_) => bail!("{OBJECT}/{PROG} loaded although {MODULE} was not loaded"),
        Err(e) => {
            let text = format!("{e:#}");
            if !text.contains(UNRESOLVED) {
                bail!("{OBJECT}/{PROG} failed to load without {MODULE}, but not with \"{UNRESOLVED}\":\n{text}");
            }
        }
    }
    load_program(ctx, OBJECT, PROG)
        .with_context(|| format!("{OBJECT}/{PROG} once {MODULE} is back"))?;
    Ok(Verdict::Pass)
}

/// How long freed programs may keep the module referenced: a program drops
/// its module BTF references only once it is freed, after an RCU grace
/// period, not when its last file descriptor is closed.
const UNLOAD_WAIT: Duration = Duration::from_secs(10);

/// delete_module(2). A module in use fails with EWOULDBLOCK (O_NONBLOCK);
/// that is retried until [`UNLOAD_WAIT`], for programs still being freed.
fn unload(name: &str) -> Result<()> {
    let cname = CString::new(name)?;
    let start = Instant::now();
    loop {
        // SAFETY: a valid NUL-terminated name and plain flags.
        let ret =
            unsafe { libc::syscall(libc::SYS_delete_module, cname.as_ptr(), libc::O_NONBLOCK) };
        if ret == 0 {
            return Ok(());
        }
        let err = std::io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::EWOULDBLOCK) || start.elapsed() > UNLOAD_WAIT {
            return Err(err).with_context(|| {
                format!(
                    "delete_module({name}) after {:.1} s: is a program still using it?",
                    start.elapsed().as_secs_f64()
                )
            });
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
