//! `runtime/res_lock_map_types`: the map types, flags and value layouts
//! that may hold a bpf_res_spin_lock, and what such a map refuses, match
//! mainline's rules.

use std::os::fd::{AsRawFd, RawFd};

use anyhow::{ensure, Result};

use super::{errno_of, OBJECT};
use crate::libbpf::{self, BtfBuilder, Map, MapSpec, Object};
use crate::loader::{LOG_BUF_SIZE, LOG_TAIL_LINES};
use crate::matcher::tail_lines;
use crate::runtime::support::{load_programs, test_run};
use crate::runtime::{Ctx, Outcome, Verdict};

/// The kernel's internal "operation not supported" (include/linux/errno.h),
/// which mmap() and BPF_MAP_FREEZE return for maps with special fields.
const ENOTSUPP: i32 = 524;

/// How a map of one type with a lock in its value came out.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Creation {
    Accepted,
    Refused(i32),
    /// The same map without a lock was refused too: the type is not built
    /// into this kernel (or takes other parameters); says nothing about locks.
    Unsupported(i32),
}

fn errno_label(e: i32) -> String {
    let name = match e {
        libc::EPERM => "EPERM",
        libc::ENOENT => "ENOENT",
        libc::E2BIG => "E2BIG",
        libc::ENOMEM => "ENOMEM",
        libc::EACCES => "EACCES",
        libc::EBUSY => "EBUSY",
        libc::EINVAL => "EINVAL",
        libc::EOPNOTSUPP => "EOPNOTSUPP",
        ENOTSUPP => "ENOTSUPP (524)",
        _ => return format!("errno {e}"),
    };
    name.to_string()
}

/// Key of a probed map type.
#[derive(Debug, Clone, Copy)]
enum Key {
    U32,
    U64,
    /// Keyless (bloom filter).
    Keyless,
}

/// One row of the map-type table.
struct TypeCase {
    label: &'static str,
    map_type: libbpf_sys::bpf_map_type,
    key: Key,
    max_entries: u32,
    flags: u32,
    /// Mainline accepts a bpf_res_spin_lock in this type's values.
    accepted: bool,
    /// Built whenever BPF_SYSCALL is (no config option of its own).
    always_built: bool,
}

const fn case(
    label: &'static str,
    map_type: libbpf_sys::bpf_map_type,
    key: Key,
    max_entries: u32,
    flags: u32,
    accepted: bool,
    always_built: bool,
) -> TypeCase {
    TypeCase {
        label,
        map_type,
        key,
        max_entries,
        flags,
        accepted,
        always_built,
    }
}

/// Mainline's rule (kernel/bpf/syscall.c, map_check_btf()): a
/// bpf_res_spin_lock, like a bpf_spin_lock, only in HASH, ARRAY and the
/// cgroup, socket, inode, task and cgrp storages; -EOPNOTSUPP elsewhere.
#[rustfmt::skip]
fn type_cases() -> Vec<TypeCase> {
    use libbpf_sys::*;
    const NP: u32 = BPF_F_NO_PREALLOC;
    // label, type, key, max_entries, flags, mainline accepts, always built
    vec![
        case("HASH", BPF_MAP_TYPE_HASH, Key::U32, 4, 0, true, true),
        case("HASH+NO_PREALLOC", BPF_MAP_TYPE_HASH, Key::U32, 4, NP, true, true),
        case("ARRAY", BPF_MAP_TYPE_ARRAY, Key::U32, 4, 0, true, true),
        case("PERCPU_HASH", BPF_MAP_TYPE_PERCPU_HASH, Key::U32, 4, 0, false, true),
        case("PERCPU_ARRAY", BPF_MAP_TYPE_PERCPU_ARRAY, Key::U32, 4, 0, false, true),
        case("LRU_HASH", BPF_MAP_TYPE_LRU_HASH, Key::U32, 4, 0, false, true),
        case("LRU_PERCPU_HASH", BPF_MAP_TYPE_LRU_PERCPU_HASH, Key::U32, 4, 0, false, true),
        case("BLOOM_FILTER", BPF_MAP_TYPE_BLOOM_FILTER, Key::Keyless, 4, 0, false, true),
        case("CGROUP_STORAGE", BPF_MAP_TYPE_CGROUP_STORAGE, Key::U64, 0, 0, true, false),
        case("PERCPU_CGROUP_STORAGE", BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE, Key::U64, 0, 0, false, false),
        case("SK_STORAGE", BPF_MAP_TYPE_SK_STORAGE, Key::U32, 0, NP, true, false),
        case("INODE_STORAGE", BPF_MAP_TYPE_INODE_STORAGE, Key::U32, 0, NP, true, false),
        case("TASK_STORAGE", BPF_MAP_TYPE_TASK_STORAGE, Key::U32, 0, NP, true, true),
        case("CGRP_STORAGE", BPF_MAP_TYPE_CGRP_STORAGE, Key::U32, 0, NP, true, false),
    ]
}

/// The BTF ids `runtime/res_lock_map_types` creates maps with, from the
/// loaded object's BTF.
struct Ids {
    btf_fd: RawFd,
    u32_key: u32,
    u64_key: u32,
    /// `struct rl_elem`: one bpf_res_spin_lock, 16 bytes.
    one_lock: u32,
    /// `struct rl_owner`: no lock, 16 bytes (the control).
    no_lock: u32,
    /// `struct rl_two_locks`: two bpf_res_spin_locks, 16 bytes.
    two_locks: u32,
    /// `struct rl_lock_array`: an array of two, 16 bytes.
    lock_array: u32,
}

const VALUE_SIZE: u32 = 16;

fn spec_for(ids: &Ids, c: &TypeCase, value_type: u32) -> MapSpec {
    let (key_size, key_id) = match c.key {
        Key::U32 => (4, ids.u32_key),
        Key::U64 => (8, ids.u64_key),
        Key::Keyless => (0, 0),
    };
    MapSpec {
        map_type: c.map_type,
        key_size,
        value_size: VALUE_SIZE,
        max_entries: c.max_entries,
        map_flags: c.flags,
        map_extra: 0,
        btf_fd: ids.btf_fd,
        btf_key_type_id: key_id,
        btf_value_type_id: value_type,
    }
}

/// A one-element u32-keyed ARRAY of 16-byte values of BTF type `value_type`.
fn array_spec(ids: &Ids, value_type: u32, flags: u32) -> MapSpec {
    MapSpec {
        map_type: libbpf_sys::BPF_MAP_TYPE_ARRAY,
        key_size: 4,
        value_size: VALUE_SIZE,
        max_entries: 1,
        map_flags: flags,
        map_extra: 0,
        btf_fd: ids.btf_fd,
        btf_key_type_id: ids.u32_key,
        btf_value_type_id: value_type,
    }
}

/// mmap() of the first page of map `fd`, read-only and shared; unmapped
/// again at once.
fn try_mmap(fd: RawFd) -> std::result::Result<(), i32> {
    // SAFETY: sysconf has no preconditions.
    let page = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096);
    // SAFETY: a fresh shared mapping of an fd; nothing else refers to it, and
    // it is unmapped before returning.
    unsafe {
        let p = libc::mmap(
            std::ptr::null_mut(),
            page,
            libc::PROT_READ,
            libc::MAP_SHARED,
            fd,
            0,
        );
        if p == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0));
        }
        libc::munmap(p, page);
    }
    Ok(())
}

fn show(r: &std::result::Result<(), i32>) -> String {
    match r {
        Ok(()) => "ok".into(),
        Err(e) => format!("refused {}", errno_label(*e)),
    }
}

/// Loads `rl_mt_lock_target` with `rl_mt_target` replaced by map `fd`:
/// `Ok(prog_fd, object)` or the verifier log of the refusal.
fn load_against(ctx: &mut Ctx, fd: RawFd) -> Result<std::result::Result<(RawFd, Object), String>> {
    const PROG: &str = "rl_mt_lock_target";
    let path = ctx.objs_dir.join(OBJECT);
    libbpf::take_messages();
    let mut obj = Object::open(&path)?;
    obj.select_program(PROG, 0, 0, LOG_BUF_SIZE)?;
    obj.reuse_map_fd("rl_mt_target", fd)?;
    let loaded = obj.load();
    let vlog = obj.log(PROG);
    let msgs = libbpf::take_messages();
    ctx.log(&format!(
        "loading {OBJECT}/{PROG} against map fd {fd}:\n{}\n--- libbpf messages ---\n{msgs}",
        tail_lines(&vlog, LOG_TAIL_LINES)
    ));
    Ok(match loaded {
        Ok(()) => Ok((obj.prog_fd(PROG)?, obj)),
        Err(_) => Err(vlog),
    })
}

/// `runtime/res_lock_map_types`: which maps may hold a bpf_res_spin_lock,
/// and what such a map refuses.
///
/// Every map type is created twice from user space with BTF ids of the
/// loaded object: with a value holding one lock, and (the control) with a
/// lock-free value of the same size. If the control fails too, the type is
/// not built into this kernel: logged as such, never counted for the rule.
/// The table goes to the log, one `map_type NAME: ...` line per type.
///
/// Also pinned down, as mainline behaves (kernel/bpf/syscall.c, btf.c):
/// - ARRAY with BPF_F_MMAPABLE: created, but mmap() and BPF_MAP_FREEZE fail
///   with ENOTSUPP (524); the lock-free control maps and freezes fine;
/// - BPF_F_RDONLY_PROG: EACCES (the control is created);
/// - BPF_F_LOCK lookups and updates: EINVAL (BPF_F_LOCK takes a
///   bpf_spin_lock only);
/// - a value with two bpf_res_spin_locks, or an array of them: the BTF
///   parser's -E2BIG/-EINVAL is NOT returned by BPF_MAP_CREATE (mainline
///   keeps the error as the map's field record and creates the map); the
///   lock is refused where it is used: the verifier says "has no valid
///   bpf_res_spin_lock" (the one-lock control loads and runs);
/// - a value with a bpf_spin_lock and a bpf_res_spin_lock: its BTF is
///   refused by BPF_BTF_LOAD with EINVAL (structs holding a bpf_spin_lock
///   are parsed at load), so no map can be created with it.
///
/// Breaks if the patched kernel admits the lock in another map type or
/// refuses it in one of mainline's, or if any of the above changes.
pub fn map_types(ctx: &mut Ctx) -> Outcome {
    let obj = load_programs(ctx, OBJECT, &["rl_mt_lock_target"])?;
    let o = obj.object();
    let ids = Ids {
        btf_fd: o.btf_fd()?,
        u32_key: o.btf_type_id("__u32", libbpf_sys::BTF_KIND_TYPEDEF)?,
        u64_key: o.btf_type_id("__u64", libbpf_sys::BTF_KIND_TYPEDEF)?,
        one_lock: o.btf_type_id("rl_elem", libbpf_sys::BTF_KIND_STRUCT)?,
        no_lock: o.btf_type_id("rl_owner", libbpf_sys::BTF_KIND_STRUCT)?,
        two_locks: o.btf_type_id("rl_two_locks", libbpf_sys::BTF_KIND_STRUCT)?,
        lock_array: o.btf_type_id("rl_lock_array", libbpf_sys::BTF_KIND_STRUCT)?,
    };
    let mut wrong: Vec<String> = Vec::new();

    // 1. The map-type table.
    let mut unsupported = 0;
    for c in type_cases() {
        let control = libbpf::map_create("mt_control", &spec_for(&ids, &c, ids.no_lock));
        let locked = libbpf::map_create("mt_lock", &spec_for(&ids, &c, ids.one_lock));
        let got = match (&control, &locked) {
            (Err(e), _) => Creation::Unsupported(*e),
            (Ok(_), Ok(_)) => Creation::Accepted,
            (Ok(_), Err(e)) => Creation::Refused(*e),
        };
        let line = match &got {
            Creation::Accepted => format!("map_type {}: accepted", c.label),
            Creation::Refused(e) => format!("map_type {}: refused {}", c.label, errno_label(*e)),
            Creation::Unsupported(e) => format!(
                "map_type {}: not supported by this kernel (the control without a lock was refused: {}; with the lock: {})",
                c.label,
                errno_label(*e),
                match &locked {
                    Ok(_) => "accepted".to_string(),
                    Err(e) => format!("refused {}", errno_label(*e)),
                }
            ),
        };
        ctx.log(&line);
        let want = if c.accepted {
            Creation::Accepted
        } else {
            Creation::Refused(libc::EOPNOTSUPP)
        };
        match got {
            Creation::Unsupported(_) if c.always_built => wrong.push(format!(
                "{line}: this type is built whenever BPF is, so the test's parameters are wrong"
            )),
            Creation::Unsupported(_) => unsupported += 1,
            got if got != want => wrong.push(format!(
                "{line}, mainline: {}",
                if c.accepted {
                    "accepted".to_string()
                } else {
                    "refused EOPNOTSUPP".to_string()
                }
            )),
            _ => {}
        }
    }
    ctx.log(&format!(
        "map types not built into this kernel: {unsupported} (not counted for the rule)"
    ));

    // 2. An mmapable array: created, but neither mmap() nor freeze.
    let with_lock = mmap_and_freeze(ctx, "mt_mmap", &ids, ids.one_lock, "with a lock");
    let control = mmap_and_freeze(
        ctx,
        "mt_mmap_ctl",
        &ids,
        ids.no_lock,
        "without a lock (control)",
    );
    match with_lock {
        Err(e) => wrong.push(format!(
            "ARRAY+MMAPABLE with a lock: creation refused {}, mainline creates it",
            errno_label(e)
        )),
        Ok((mmap, freeze)) if mmap != Err(ENOTSUPP) || freeze != Err(ENOTSUPP) => {
            wrong.push(format!(
                "ARRAY+MMAPABLE with a lock: mmap {}, freeze {}; mainline refuses both with ENOTSUPP (524)",
                show(&mmap),
                show(&freeze)
            ))
        }
        Ok(_) => {}
    }
    match control {
        Err(e) => wrong.push(format!(
            "ARRAY+MMAPABLE control: creation refused {}",
            errno_label(e)
        )),
        Ok((mmap, freeze)) if mmap.is_err() || freeze.is_err() => wrong.push(format!(
            "ARRAY+MMAPABLE control: mmap {}, freeze {}: both must work without a lock",
            show(&mmap),
            show(&freeze)
        )),
        Ok(_) => {}
    }

    // 3. Read-only for programs: the lock would be unusable.
    let rdonly = libbpf::map_create(
        "mt_rdonly",
        &array_spec(&ids, ids.one_lock, libbpf_sys::BPF_F_RDONLY_PROG),
    );
    let rdonly_ctl = libbpf::map_create(
        "mt_rdonly_ctl",
        &array_spec(&ids, ids.no_lock, libbpf_sys::BPF_F_RDONLY_PROG),
    );
    ctx.log(&format!(
        "ARRAY+RDONLY_PROG: with a lock {}, without (control) {}",
        show(&rdonly.as_ref().map(|_| ()).map_err(|e| *e)),
        show(&rdonly_ctl.as_ref().map(|_| ()).map_err(|e| *e))
    ));
    if rdonly.as_ref().err() != Some(&libc::EACCES) || rdonly_ctl.is_err() {
        wrong.push("ARRAY+RDONLY_PROG: expected EACCES with a lock and a created control".into());
    }

    // 4. BPF_F_LOCK works with a bpf_spin_lock only.
    match libbpf::map_create("mt_flock", &spec_for(&ids, &type_cases()[0], ids.one_lock)) {
        Err(e) => wrong.push(format!("HASH with a lock: refused {}", errno_label(e))),
        Ok(fd) => {
            let map = Map {
                name: "mt_flock".into(),
                fd: fd.as_raw_fd(),
                key_size: 4,
                value_size: VALUE_SIZE as usize,
            };
            let key = 0u32.to_ne_bytes();
            let flock = libbpf_sys::BPF_F_LOCK as u64;
            let upd = map
                .update(&key, &[0u8; VALUE_SIZE as usize], flock)
                .map_err(|e| errno_of(&e).unwrap_or(0));
            let look = map
                .lookup(&key, flock)
                .map(|_| ())
                .map_err(|e| errno_of(&e).unwrap_or(0));
            ctx.log(&format!(
                "HASH with a lock: BPF_F_LOCK update {}, BPF_F_LOCK lookup {}",
                show(&upd),
                show(&look)
            ));
            if upd != Err(libc::EINVAL) || look != Err(libc::EINVAL) {
                wrong.push(format!(
                    "BPF_F_LOCK on a bpf_res_spin_lock value: update {}, lookup {}; mainline refuses both with EINVAL",
                    show(&upd),
                    show(&look)
                ));
            }
        }
    }

    // 5. Two locks, or an array of them, in one value: created, unusable.
    for (what, value_type, accepted_by_verifier) in [
        ("one bpf_res_spin_lock (control)", ids.one_lock, true),
        ("two bpf_res_spin_locks", ids.two_locks, false),
        ("an array of two bpf_res_spin_locks", ids.lock_array, false),
    ] {
        let fd = match libbpf::map_create("mt_value", &array_spec(&ids, value_type, 0)) {
            Ok(fd) => fd,
            Err(e) => {
                let line = format!(
                    "value with {what}: BPF_MAP_CREATE refused {}",
                    errno_label(e)
                );
                ctx.log(&line);
                wrong.push(format!("{line}; mainline creates the map"));
                continue;
            }
        };
        let verdict = match load_against(ctx, fd.as_raw_fd())? {
            Ok((prog_fd, _obj)) => {
                let ret = test_run(prog_fd, 1)?.retval;
                ctx.log(&format!(
                    "value with {what}: BPF_MAP_CREATE accepted; a program locking it loads, runs, returns {ret}"
                ));
                if ret != 0 {
                    wrong.push(format!("value with {what}: the program returned {ret}"));
                }
                true
            }
            Err(vlog) => {
                let said = vlog.contains("has no valid bpf_res_spin_lock");
                ctx.log(&format!(
                    "value with {what}: BPF_MAP_CREATE accepted; a program locking it is refused{}",
                    if said {
                        ": \"has no valid bpf_res_spin_lock\""
                    } else {
                        " (see the verifier log above)"
                    }
                ));
                if !accepted_by_verifier && !said {
                    wrong.push(format!(
                        "value with {what}: refused without \"has no valid bpf_res_spin_lock\""
                    ));
                }
                false
            }
        };
        if verdict != accepted_by_verifier {
            wrong.push(format!(
                "value with {what}: the verifier {} the lock, expected it to {}",
                if verdict { "accepted" } else { "refused" },
                if accepted_by_verifier {
                    "accept"
                } else {
                    "refuse"
                }
            ));
        }
    }

    // 6. Both kinds of lock in one value: its BTF does not load.
    let both = both_locks_btf(true)?;
    let plain = both_locks_btf(false)?;
    ctx.log(&format!(
        "value with a bpf_spin_lock and a bpf_res_spin_lock: BPF_BTF_LOAD {}; the same BTF with the two locks in separate structs (control): {}",
        show(&both),
        show(&plain)
    ));
    if both != Err(libc::EINVAL) || plain.is_err() {
        wrong.push(format!(
            "both lock kinds in one value: BTF load {}, control {}; expected EINVAL and ok",
            show(&both),
            show(&plain)
        ));
    }

    ensure!(
        wrong.is_empty(),
        "{} differences from mainline's rules:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    Ok(Verdict::Pass)
}

/// Loads a small BTF with `struct bpf_spin_lock`, `struct bpf_res_spin_lock`
/// and, if `both`, a 16-byte struct holding one of each; otherwise two
/// structs holding one each. No loadable object can carry the first (its
/// BTF would not load), hence built here.
fn both_locks_btf(both: bool) -> Result<std::result::Result<(), i32>> {
    let mut b = BtfBuilder::new()?;
    let u32_id = b.add_int("unsigned int", 4)?;
    let u64_id = b.add_int("unsigned long long", 8)?;
    let spin = b.add_struct("bpf_spin_lock", 4)?;
    b.add_field("val", u32_id, 0)?;
    let res = b.add_struct("bpf_res_spin_lock", 4)?;
    b.add_field("val", u32_id, 0)?;
    if both {
        b.add_struct("rl_both_locks", 16)?;
        b.add_field("a", spin, 0)?;
        b.add_field("b", res, 4)?;
        b.add_field("data", u64_id, 8)?;
    } else {
        b.add_struct("rl_spin_only", 16)?;
        b.add_field("a", spin, 0)?;
        b.add_field("data", u64_id, 8)?;
        b.add_struct("rl_res_only", 16)?;
        b.add_field("b", res, 0)?;
        b.add_field("data", u64_id, 8)?;
    }
    Ok(b.load().map(|_| ()))
}

/// What mmap() and BPF_MAP_FREEZE said: `Ok` or the errno.
type MmapFreeze = (std::result::Result<(), i32>, std::result::Result<(), i32>);

/// Creates a `BPF_F_MMAPABLE` array of `value` and tries mmap() and
/// BPF_MAP_FREEZE on it, logging both outcomes.
fn mmap_and_freeze(
    ctx: &mut Ctx,
    name: &str,
    ids: &Ids,
    value: u32,
    what: &str,
) -> std::result::Result<MmapFreeze, i32> {
    let fd = libbpf::map_create(name, &array_spec(ids, value, libbpf_sys::BPF_F_MMAPABLE))?;
    let mmap = try_mmap(fd.as_raw_fd());
    let freeze = libbpf::map_freeze(fd.as_raw_fd());
    ctx.log(&format!(
        "ARRAY+MMAPABLE {what}: created; mmap {}; BPF_MAP_FREEZE {}",
        show(&mmap),
        show(&freeze)
    ));
    Ok((mmap, freeze))
}
