//! Helpers shared by runtime tests: load one program of an object, run it
//! with BPF_PROG_TEST_RUN (also from several threads at once), read maps.

use std::os::fd::RawFd;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::Duration;

use anyhow::{bail, Context, Result};

use super::Ctx;
use crate::libbpf::{self, Map, Object, TestRunOutput};
use crate::loader::{LOG_BUF_SIZE, LOG_TAIL_LINES, TEST_DATA_LEN};
use crate::matcher::tail_lines;

/// A loaded program and the object that owns it (dropping it unloads both
/// the program and its maps).
pub struct LoadedProgram {
    obj: Object,
    pub name: String,
    pub fd: RawFd,
}

impl LoadedProgram {
    /// Map `name` of the program's object.
    pub fn map(&self, name: &str) -> Result<Map> {
        self.obj.map(name)
    }

    /// BPF_PROG_TEST_RUN over a zeroed 64-byte packet, `repeat` times.
    pub fn test_run(&self, repeat: u32) -> Result<TestRunOutput> {
        test_run(self.fd, repeat)
    }
}

/// Loads program `prog` of `<objs>/<object_file>` alone. A failure (missing
/// object, missing kfunc, verifier rejection) comes back as an error that says
/// why, with libbpf's messages and the end of the verifier log.
pub fn load_program(ctx: &mut Ctx, object_file: &str, prog: &str) -> Result<LoadedProgram> {
    let path = ctx.objs_dir.join(object_file);
    if !path.is_file() {
        bail!(
            "object {object_file} not found in {}",
            ctx.objs_dir.display()
        );
    }
    libbpf::take_messages();
    let mut obj = Object::open(&path)?;
    // Level 0: libbpf retries a failed load at level 1 into the same buffer,
    // so a rejection still explains itself.
    obj.select_program(prog, 0, 0, LOG_BUF_SIZE)
        .with_context(|| format!("{object_file}: program {prog}"))?;
    let loaded = obj.load();
    let vlog = obj.log(prog);
    let msgs = libbpf::take_messages();
    ctx.log(&format!(
        "loading {object_file}/{prog}:\n{vlog}\n--- libbpf messages ---\n{msgs}"
    ));
    if let Err(errno) = loaded {
        bail!(
            "loading {object_file}/{prog} failed: {}\nlibbpf:\n{}\nverifier log (last {LOG_TAIL_LINES} lines):\n{}",
            std::io::Error::from_raw_os_error(errno),
            tail_lines(msgs.trim_end(), LOG_TAIL_LINES),
            tail_lines(&vlog, LOG_TAIL_LINES)
        );
    }
    let fd = obj.prog_fd(prog)?;
    Ok(LoadedProgram {
        obj,
        name: prog.to_string(),
        fd,
    })
}

/// Several programs of one object, loaded together so that they share the
/// object's maps. Dropping it unloads them all.
pub struct LoadedObject {
    obj: Object,
    fds: Vec<(String, RawFd)>,
}

impl LoadedObject {
    /// File descriptor of program `name`, which must be one of those loaded.
    pub fn fd(&self, name: &str) -> Result<RawFd> {
        self.fds
            .iter()
            .find(|(n, _)| n == name)
            .map(|&(_, fd)| fd)
            .with_context(|| format!("program {name} was not loaded"))
    }

    /// Map `name` of the object.
    pub fn map(&self, name: &str) -> Result<Map> {
        self.obj.map(name)
    }

    /// The loaded object itself (its BTF, for instance).
    pub fn object(&self) -> &Object {
        &self.obj
    }
}

/// Loads programs `progs` of `<objs>/<object_file>` (and no other program of
/// it). Errors as [`load_program`]; the verifier log of every program goes
/// to the test's log.
pub fn load_programs(ctx: &mut Ctx, object_file: &str, progs: &[&str]) -> Result<LoadedObject> {
    let path = ctx.objs_dir.join(object_file);
    if !path.is_file() {
        bail!(
            "object {object_file} not found in {}",
            ctx.objs_dir.display()
        );
    }
    let (first, rest) = progs.split_first().context("no program to load")?;
    libbpf::take_messages();
    let mut obj = Object::open(&path)?;
    obj.select_program(first, 0, 0, LOG_BUF_SIZE)
        .with_context(|| format!("{object_file}: program {first}"))?;
    for prog in rest {
        obj.also_load(prog, 0, LOG_BUF_SIZE)
            .with_context(|| format!("{object_file}: program {prog}"))?;
    }
    let loaded = obj.load();
    let msgs = libbpf::take_messages();
    let mut vlogs = String::new();
    for prog in progs {
        let vlog = obj.log(prog);
        ctx.log(&format!("loading {object_file}/{prog}:\n{vlog}"));
        vlogs.push_str(&format!(
            "--- {prog} ---\n{}\n",
            tail_lines(&vlog, LOG_TAIL_LINES)
        ));
    }
    ctx.log(&format!("--- libbpf messages ---\n{msgs}"));
    if let Err(errno) = loaded {
        bail!(
            "loading {object_file} ({}) failed: {}\nlibbpf:\n{}\nverifier logs (last {LOG_TAIL_LINES} lines each):\n{vlogs}",
            progs.join(", "),
            std::io::Error::from_raw_os_error(errno),
            tail_lines(msgs.trim_end(), LOG_TAIL_LINES),
        );
    }
    let fds = progs
        .iter()
        .map(|p| Ok((p.to_string(), obj.prog_fd(p)?)))
        .collect::<Result<Vec<_>>>()?;
    Ok(LoadedObject { obj, fds })
}

/// Runs `f` on a new thread pinned to CPU `cpu` (see [`pin_to_cpu`]) and
/// returns the channel its result arrives on. The thread is detached: if the
/// kernel never returns from a BPF_PROG_TEST_RUN, [`recv_within`] reports it
/// instead of the whole runner hanging in a join.
pub fn spawn_pinned<T, F>(cpu: usize, f: F) -> Receiver<T>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        pin_to_cpu(cpu);
        let _ = tx.send(f());
    });
    rx
}

/// The result of a [`spawn_pinned`] thread, or an error if it did not come
/// within `limit` (`what` names the work in the message).
pub fn recv_within<T>(rx: &Receiver<T>, limit: Duration, what: &str) -> Result<T> {
    match rx.recv_timeout(limit) {
        Ok(v) => Ok(v),
        Err(RecvTimeoutError::Timeout) => bail!(
            "{what} did not return within {limit:?}: the kernel is spinning (or a lock hangs)"
        ),
        Err(RecvTimeoutError::Disconnected) => bail!("{what}: the thread panicked"),
    }
}

/// BPF_PROG_TEST_RUN of `prog_fd` over a zeroed 64-byte packet, `repeat`
/// times in the kernel.
pub fn test_run(prog_fd: RawFd, repeat: u32) -> Result<TestRunOutput> {
    libbpf::test_run(prog_fd, Some(&[0u8; TEST_DATA_LEN]), repeat)
}

/// Runs [`test_run`] from `threads` threads at once and returns each
/// thread's result in thread order.
///
/// The threads spin until all of them are running and then start together: a
/// run of 5000 repetitions takes only ~150 us, less than a futex wake-up, so
/// with a sleeping barrier the runs would hardly overlap and a broken lock
/// would go unnoticed.
pub fn test_run_parallel(
    prog_fd: RawFd,
    threads: usize,
    repeat: u32,
) -> Result<Vec<TestRunOutput>> {
    let ready = AtomicUsize::new(0);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|i| {
                let ready = &ready;
                s.spawn(move || {
                    pin_to_cpu(i);
                    ready.fetch_add(1, Ordering::AcqRel);
                    while ready.load(Ordering::Acquire) < threads {
                        std::hint::spin_loop();
                    }
                    test_run(prog_fd, repeat)
                })
            })
            .collect();
        handles
            .into_iter()
            .enumerate()
            .map(|(i, h)| match h.join() {
                Ok(r) => r.with_context(|| format!("thread {i}")),
                Err(_) => bail!("thread {i} panicked"),
            })
            .collect()
    })
}

/// Best effort: puts the calling thread on CPU `index` modulo the CPUs it
/// may use, so that parallel runs land on different CPUs instead of taking
/// turns on one.
pub fn pin_to_cpu(index: usize) {
    // SAFETY: cpu_set_t is plain data; the libc calls get valid pointers.
    unsafe {
        let mut allowed: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut allowed) != 0 {
            return;
        }
        let cpus: Vec<usize> = (0..libc::CPU_SETSIZE as usize)
            .filter(|&c| libc::CPU_ISSET(c, &allowed))
            .collect();
        if cpus.is_empty() {
            return;
        }
        let mut one: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpus[index % cpus.len()], &mut one);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &one);
    }
}

/// Value at `key` of an array or hash map keyed by u32.
pub fn lookup(map: &Map, key: u32) -> Result<Vec<u8>> {
    map.lookup(&key.to_ne_bytes(), 0)
}

/// Value at `key` of an array or hash map keyed by u32, read with
/// BPF_F_LOCK so that a value holding a bpf_spin_lock is read consistently.
pub fn lookup_locked(map: &Map, key: u32) -> Result<Vec<u8>> {
    map.lookup(&key.to_ne_bytes(), libbpf_sys::BPF_F_LOCK as u64)
}

/// Writes `value` at `key` of an array or hash map keyed by u32.
pub fn update(map: &Map, key: u32, value: &[u8]) -> Result<()> {
    map.update(&key.to_ne_bytes(), value, libbpf_sys::BPF_ANY as u64)
}

/// Native-endian u64 at `offset` of a map value.
pub fn read_u64(value: &[u8], offset: usize) -> Result<u64> {
    let bytes = value.get(offset..offset + 8).with_context(|| {
        format!(
            "value of {} bytes has no u64 at offset {offset}",
            value.len()
        )
    })?;
    Ok(u64::from_ne_bytes(bytes.try_into().expect("8 bytes")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_u64_bounds() {
        let mut v = vec![0u8; 16];
        v[8..].copy_from_slice(&10_000u64.to_ne_bytes());
        assert_eq!(read_u64(&v, 8).unwrap(), 10_000);
        assert_eq!(read_u64(&v, 0).unwrap(), 0);
        assert!(read_u64(&v, 9).is_err());
    }
}
