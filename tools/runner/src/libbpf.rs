//! Small safe layer over the raw libbpf API of `libbpf-sys`: objects, their
//! programs and maps, BPF_PROG_TEST_RUN, map lookups, and capture of
//! libbpf's own messages (which explain failures that happen before the
//! verifier runs, e.g. an unresolved kfunc).

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use anyhow::{anyhow, bail, Context, Result};

/// Libbpf's messages since the last [`take_messages`].
static MESSAGES: Mutex<String> = Mutex::new(String::new());
static ECHO: AtomicBool = AtomicBool::new(false);

extern "C" {
    // The va_list comes in as an opaque pointer: on x86_64 it is a pointer to
    // __va_list_tag, on aarch64 the 32-byte va_list struct is passed by
    // reference, so a pointer is right on both (as libbpf-rs does it).
    fn vsnprintf(buf: *mut c_char, size: usize, fmt: *const c_char, ap: *mut c_void) -> c_int;
}

unsafe extern "C" fn print_cb(
    level: libbpf_sys::libbpf_print_level,
    fmt: *const c_char,
    ap: *mut c_void,
) -> c_int {
    // libbpf's DEBUG level narrates every relocation; only verbose runs echo it.
    let echo = ECHO.load(Ordering::Relaxed);
    if level == libbpf_sys::LIBBPF_DEBUG && !echo {
        return 0;
    }
    let mut buf = [0 as c_char; 8192];
    // SAFETY: buf is writable for its length; fmt/ap come from libbpf.
    let n = unsafe { vsnprintf(buf.as_mut_ptr(), buf.len(), fmt, ap) };
    if n < 0 {
        return n;
    }
    // SAFETY: vsnprintf NUL-terminates within buf.
    let text = unsafe { CStr::from_ptr(buf.as_ptr()) }.to_string_lossy();
    if echo {
        eprint!("{text}");
    }
    if level != libbpf_sys::LIBBPF_DEBUG {
        if let Ok(mut m) = MESSAGES.lock() {
            m.push_str(&text);
        }
    }
    n
}

type RawPrintFn =
    unsafe extern "C" fn(libbpf_sys::libbpf_print_level, *const c_char, *mut c_void) -> c_int;
type SysPrintFn = unsafe extern "C" fn(
    libbpf_sys::libbpf_print_level,
    *const c_char,
    *mut libbpf_sys::__va_list_tag,
) -> c_int;

/// Routes libbpf's messages into the capture buffer (and to stderr if
/// `echo`). Without this libbpf prints every expected load failure itself.
pub fn capture_messages(echo: bool) {
    ECHO.store(echo, Ordering::Relaxed);
    // SAFETY: both types are pointers to C functions with the same ABI; the
    // last argument is a pointer either way (see the vsnprintf comment).
    let cb = unsafe { std::mem::transmute::<RawPrintFn, SysPrintFn>(print_cb) };
    // SAFETY: registering a callback that lives for the whole program.
    unsafe { libbpf_sys::libbpf_set_print(Some(cb)) };
}

/// Returns and clears libbpf's messages captured so far.
pub fn take_messages() -> String {
    MESSAGES
        .lock()
        .map(|mut m| std::mem::take(&mut *m))
        .unwrap_or_default()
}

/// `Err` with the errno of a negative libbpf/syscall-wrapper return value.
fn check(ret: c_int, what: impl FnOnce() -> String) -> Result<c_int> {
    if ret < 0 {
        Err(std::io::Error::from_raw_os_error(-ret)).with_context(what)
    } else {
        Ok(ret)
    }
}

fn cstr(text: &str) -> Result<CString> {
    CString::new(text).with_context(|| format!("name with a NUL byte: {text:?}"))
}

/// An opened BPF object file. Closing it (drop) unloads its programs and maps.
pub struct Object {
    ptr: NonNull<libbpf_sys::bpf_object>,
    /// Verifier log buffers handed to libbpf; the heap blocks stay put when
    /// the Vec moves, so the pointers libbpf keeps remain valid until drop.
    log_bufs: Vec<(String, Vec<u8>)>,
}

impl Object {
    /// Opens (parses, does not load) `path`.
    pub fn open(path: &Path) -> Result<Self> {
        let c_path = CString::new(path.as_os_str().as_bytes()).context("path with a NUL byte")?;
        // SAFETY: valid C string; NULL opts means defaults.
        let ptr = unsafe { libbpf_sys::bpf_object__open_file(c_path.as_ptr(), std::ptr::null()) };
        match NonNull::new(ptr) {
            Some(ptr) => Ok(Self {
                ptr,
                log_bufs: Vec::new(),
            }),
            None => Err(std::io::Error::last_os_error()).with_context(|| {
                format!(
                    "libbpf cannot open {}: {}",
                    path.display(),
                    take_messages().trim_end()
                )
            }),
        }
    }

    fn raw(&self) -> *mut libbpf_sys::bpf_object {
        self.ptr.as_ptr()
    }

    fn programs(&self) -> Vec<*mut libbpf_sys::bpf_program> {
        let mut progs = Vec::new();
        let mut prev = std::ptr::null_mut();
        loop {
            // SAFETY: the object is open; prev is NULL or one of its programs.
            let next = unsafe { libbpf_sys::bpf_object__next_program(self.raw(), prev) };
            if next.is_null() {
                return progs;
            }
            progs.push(next);
            prev = next;
        }
    }

    fn prog_name(prog: *const libbpf_sys::bpf_program) -> String {
        // SAFETY: prog belongs to a live object; libbpf returns a C string.
        unsafe { CStr::from_ptr(libbpf_sys::bpf_program__name(prog)) }
            .to_string_lossy()
            .into_owned()
    }

    /// Program names in the object's order.
    pub fn program_names(&self) -> Vec<String> {
        self.programs()
            .into_iter()
            .map(|p| Self::prog_name(p))
            .collect()
    }

    fn program(&self, name: &str) -> Result<*mut libbpf_sys::bpf_program> {
        let c_name = cstr(name)?;
        // SAFETY: object open, valid C string.
        let prog =
            unsafe { libbpf_sys::bpf_object__find_program_by_name(self.raw(), c_name.as_ptr()) };
        if prog.is_null() {
            bail!("no program '{name}' in the object");
        }
        Ok(prog)
    }

    /// The object's `.BTF`, if it has one.
    pub(crate) fn btf(&self) -> Option<*const libbpf_sys::btf> {
        // SAFETY: object open; the BTF is owned by the object.
        let btf = unsafe { libbpf_sys::bpf_object__btf(self.raw()) };
        (!btf.is_null()).then_some(btf as *const _)
    }

    /// File descriptor of the object's BTF in the kernel (after a
    /// successful [`Self::load`]); it stays valid while the object lives.
    pub fn btf_fd(&self) -> Result<RawFd> {
        let btf = self.btf().context("the object has no .BTF")?;
        // SAFETY: btf is owned by the live object.
        check(unsafe { libbpf_sys::btf__fd(btf) }, || {
            "the object's BTF is not loaded into the kernel".into()
        })
    }

    /// Id of the type `name` of BTF kind `kind` (`libbpf_sys::BTF_KIND_*`)
    /// in the object's BTF; the same id in its kernel copy ([`Self::btf_fd`]).
    pub fn btf_type_id(&self, name: &str, kind: u32) -> Result<u32> {
        let btf = self.btf().context("the object has no .BTF")?;
        let c_name = cstr(name)?;
        // SAFETY: btf is owned by the live object; valid C string.
        let id = unsafe { libbpf_sys::btf__find_by_name_kind(btf, c_name.as_ptr(), kind) };
        check(id, || {
            format!("type '{name}' (BTF kind {kind}) not in the object's BTF")
        })
        .map(|id| id as u32)
    }

    /// Makes map `name` use the existing map `fd` instead of creating its
    /// own (libbpf's reuse_fd); before [`Self::load`].
    pub fn reuse_map_fd(&mut self, name: &str, fd: RawFd) -> Result<()> {
        let c_name = cstr(name)?;
        // SAFETY: object open, valid C string.
        let map = unsafe { libbpf_sys::bpf_object__find_map_by_name(self.raw(), c_name.as_ptr()) };
        if map.is_null() {
            bail!("no map '{name}' in the object");
        }
        // SAFETY: map belongs to this (not yet loaded) object; libbpf dups fd.
        check(unsafe { libbpf_sys::bpf_map__reuse_fd(map, fd) }, || {
            format!("reuse_fd({name})")
        })?;
        Ok(())
    }

    /// Makes `name` the only program that loads, with the given verifier log
    /// level, extra program flags (ORed into the ones libbpf derived from the
    /// section, e.g. sleepable) and a log buffer of `log_size` bytes.
    pub fn select_program(
        &mut self,
        name: &str,
        log_level: u32,
        extra_flags: u32,
        log_size: usize,
    ) -> Result<()> {
        let target = self.program(name)?;
        for prog in self.programs() {
            // SAFETY: prog belongs to this (not yet loaded) object.
            check(
                unsafe { libbpf_sys::bpf_program__set_autoload(prog, prog == target) },
                || format!("set_autoload({})", Self::prog_name(prog)),
            )?;
        }
        // SAFETY: target belongs to this object, which is not loaded yet.
        unsafe {
            check(
                libbpf_sys::bpf_program__set_log_level(target, log_level),
                || "set_log_level".into(),
            )?;
            let flags = libbpf_sys::bpf_program__flags(target) | extra_flags;
            check(libbpf_sys::bpf_program__set_flags(target, flags), || {
                "set_flags".into()
            })?;
        }
        if log_size > 0 {
            let mut buf = vec![0u8; log_size];
            // SAFETY: buf's heap block lives in self.log_bufs until drop.
            check(
                unsafe {
                    libbpf_sys::bpf_program__set_log_buf(
                        target,
                        buf.as_mut_ptr().cast(),
                        buf.len() as _,
                    )
                },
                || "set_log_buf".into(),
            )?;
            self.log_bufs.retain(|(n, _)| n != name);
            self.log_bufs.push((name.to_string(), buf));
        }
        Ok(())
    }

    /// Makes program `name` load too, after [`Self::select_program`] chose
    /// another one (for tests that run several programs over shared maps),
    /// with its own log buffer of `log_size` bytes.
    pub fn also_load(&mut self, name: &str, log_level: u32, log_size: usize) -> Result<()> {
        let prog = self.program(name)?;
        // SAFETY: prog belongs to this (not yet loaded) object.
        unsafe {
            check(libbpf_sys::bpf_program__set_autoload(prog, true), || {
                format!("set_autoload({name})")
            })?;
            check(
                libbpf_sys::bpf_program__set_log_level(prog, log_level),
                || "set_log_level".into(),
            )?;
        }
        if log_size > 0 {
            let mut buf = vec![0u8; log_size];
            // SAFETY: buf's heap block lives in self.log_bufs until drop.
            check(
                unsafe {
                    libbpf_sys::bpf_program__set_log_buf(
                        prog,
                        buf.as_mut_ptr().cast(),
                        buf.len() as _,
                    )
                },
                || "set_log_buf".into(),
            )?;
            self.log_bufs.retain(|(n, _)| n != name);
            self.log_bufs.push((name.to_string(), buf));
        }
        Ok(())
    }

    /// Loads the object into the kernel: `Err(errno)` on failure (the details
    /// are in the verifier log and in libbpf's messages).
    pub fn load(&mut self) -> std::result::Result<(), i32> {
        // SAFETY: object open and not loaded yet (libbpf refuses a reload).
        let ret = unsafe { libbpf_sys::bpf_object__load(self.raw()) };
        if ret < 0 {
            Err(-ret)
        } else {
            Ok(())
        }
    }

    /// The verifier log written into the buffer set for program `name`.
    pub fn log(&self, name: &str) -> String {
        self.log_bufs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, buf)| {
                let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
                String::from_utf8_lossy(&buf[..end]).into_owned()
            })
            .unwrap_or_default()
    }

    /// File descriptor of loaded program `name`.
    pub fn prog_fd(&self, name: &str) -> Result<RawFd> {
        let prog = self.program(name)?;
        // SAFETY: prog belongs to this object.
        check(unsafe { libbpf_sys::bpf_program__fd(prog) }, || {
            format!("program '{name}' is not loaded")
        })
    }

    /// Program type of `name` (as libbpf derived it from the section).
    pub fn prog_type(&self, name: &str) -> Result<libbpf_sys::bpf_prog_type> {
        let prog = self.program(name)?;
        // SAFETY: prog belongs to this object.
        Ok(unsafe { libbpf_sys::bpf_program__type(prog) })
    }

    /// Map `name` of the loaded object.
    pub fn map(&self, name: &str) -> Result<Map> {
        let c_name = cstr(name)?;
        // SAFETY: object open, valid C string.
        let map = unsafe { libbpf_sys::bpf_object__find_map_by_name(self.raw(), c_name.as_ptr()) };
        if map.is_null() {
            bail!("no map '{name}' in the object");
        }
        // SAFETY: map belongs to this object.
        let (fd, key_size, value_size) = unsafe {
            (
                libbpf_sys::bpf_map__fd(map),
                libbpf_sys::bpf_map__key_size(map),
                libbpf_sys::bpf_map__value_size(map),
            )
        };
        let fd = check(fd, || format!("map '{name}' is not created"))?;
        Ok(Map {
            name: name.to_string(),
            fd,
            key_size: key_size as usize,
            value_size: value_size as usize,
        })
    }
}

impl Drop for Object {
    fn drop(&mut self) {
        // SAFETY: we own the object; nothing borrows it past self.
        unsafe { libbpf_sys::bpf_object__close(self.raw()) };
    }
}

/// A created map: its fd stays valid while its [`Object`] lives.
#[derive(Debug, Clone)]
pub struct Map {
    pub name: String,
    pub fd: RawFd,
    pub key_size: usize,
    pub value_size: usize,
}

impl Map {
    /// A key of the wrong size would make the kernel read past it.
    fn check_key(&self, key: &[u8]) -> Result<()> {
        if key.len() != self.key_size {
            bail!(
                "map '{}': key of {} bytes, the map's keys have {}",
                self.name,
                key.len(),
                self.key_size
            );
        }
        Ok(())
    }

    /// BPF_MAP_LOOKUP_ELEM with `flags` (e.g. BPF_F_LOCK). Not for per-CPU maps.
    pub fn lookup(&self, key: &[u8], flags: u64) -> Result<Vec<u8>> {
        self.check_key(key)?;
        let mut value = vec![0u8; self.value_size];
        // SAFETY: key and value are exactly the map's key and value sizes.
        let ret = unsafe {
            libbpf_sys::bpf_map_lookup_elem_flags(
                self.fd,
                key.as_ptr().cast(),
                value.as_mut_ptr().cast(),
                flags,
            )
        };
        check(ret, || format!("lookup in map '{}'", self.name))?;
        Ok(value)
    }
}

impl Map {
    /// BPF_MAP_UPDATE_ELEM with `flags` (e.g. BPF_ANY). Not for per-CPU maps.
    pub fn update(&self, key: &[u8], value: &[u8], flags: u64) -> Result<()> {
        if key.len() != self.key_size || value.len() != self.value_size {
            bail!(
                "map '{}': update with a {}-byte key and a {}-byte value, the map has {} and {}",
                self.name,
                key.len(),
                value.len(),
                self.key_size,
                self.value_size
            );
        }
        // SAFETY: key and value are exactly the map's key and value sizes.
        let ret = unsafe {
            libbpf_sys::bpf_map_update_elem(
                self.fd,
                key.as_ptr().cast(),
                value.as_ptr().cast(),
                flags,
            )
        };
        check(ret, || format!("update of map '{}'", self.name))?;
        Ok(())
    }

    /// BPF_MAP_DELETE_ELEM.
    pub fn delete(&self, key: &[u8]) -> Result<()> {
        self.check_key(key)?;
        // SAFETY: key is exactly the map's key size.
        let ret = unsafe { libbpf_sys::bpf_map_delete_elem(self.fd, key.as_ptr().cast()) };
        check(ret, || format!("delete from map '{}'", self.name))?;
        Ok(())
    }
}

/// What [`map_create`] asks for; BTF ids are 0 for "none".
#[derive(Debug, Clone, Copy, Default)]
pub struct MapSpec {
    pub map_type: libbpf_sys::bpf_map_type,
    pub key_size: u32,
    pub value_size: u32,
    pub max_entries: u32,
    pub map_flags: u32,
    pub map_extra: u64,
    pub btf_fd: RawFd,
    pub btf_key_type_id: u32,
    pub btf_value_type_id: u32,
}

/// BPF_MAP_CREATE: the new map's fd, or the errno the kernel refused it
/// with (as a plain number: tests compare it).
pub fn map_create(name: &str, spec: &MapSpec) -> std::result::Result<OwnedFd, i32> {
    let c_name = CString::new(name).map_err(|_| libc::EINVAL)?;
    let opts = libbpf_sys::bpf_map_create_opts {
        sz: std::mem::size_of::<libbpf_sys::bpf_map_create_opts>() as _,
        btf_fd: u32::try_from(spec.btf_fd).unwrap_or(0),
        btf_key_type_id: spec.btf_key_type_id,
        btf_value_type_id: spec.btf_value_type_id,
        map_flags: spec.map_flags,
        map_extra: spec.map_extra,
        ..Default::default()
    };
    // SAFETY: valid C string and opts for the duration of the call.
    let fd = unsafe {
        libbpf_sys::bpf_map_create(
            spec.map_type,
            c_name.as_ptr(),
            spec.key_size,
            spec.value_size,
            spec.max_entries,
            &opts,
        )
    };
    if fd < 0 {
        Err(-fd)
    } else {
        // SAFETY: a new fd that nothing else owns.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    }
}

/// BPF_MAP_FREEZE: `Err(errno)` if refused.
pub fn map_freeze(fd: RawFd) -> std::result::Result<(), i32> {
    // SAFETY: plain syscall wrapper on an fd.
    let ret = unsafe { libbpf_sys::bpf_map_freeze(fd) };
    if ret < 0 {
        Err(-ret)
    } else {
        Ok(())
    }
}

/// BTF written type by type (libbpf's btf__add_*), for types a loadable
/// object cannot hold; freed (and its kernel fd closed) on drop.
pub struct BtfBuilder {
    ptr: NonNull<libbpf_sys::btf>,
}

impl BtfBuilder {
    pub fn new() -> Result<Self> {
        // SAFETY: no arguments; NULL on failure.
        let ptr = unsafe { libbpf_sys::btf__new_empty() };
        NonNull::new(ptr)
            .map(|ptr| Self { ptr })
            .ok_or_else(|| anyhow!("btf__new_empty failed"))
    }

    fn id(ret: c_int, what: impl FnOnce() -> String) -> Result<u32> {
        check(ret, what).map(|id| id as u32)
    }

    /// An unsigned integer type of `size` bytes.
    pub fn add_int(&mut self, name: &str, size: usize) -> Result<u32> {
        let c_name = cstr(name)?;
        // SAFETY: live btf, valid C string.
        let ret =
            unsafe { libbpf_sys::btf__add_int(self.ptr.as_ptr(), c_name.as_ptr(), size as _, 0) };
        Self::id(ret, || format!("btf__add_int({name})"))
    }

    /// A struct of `size` bytes; its members follow with [`Self::add_field`].
    pub fn add_struct(&mut self, name: &str, size: u32) -> Result<u32> {
        let c_name = cstr(name)?;
        // SAFETY: live btf, valid C string.
        let ret = unsafe { libbpf_sys::btf__add_struct(self.ptr.as_ptr(), c_name.as_ptr(), size) };
        Self::id(ret, || format!("btf__add_struct({name})"))
    }

    /// A member of the struct added last, at `byte_offset`.
    pub fn add_field(&mut self, name: &str, type_id: u32, byte_offset: u32) -> Result<()> {
        let c_name = cstr(name)?;
        // SAFETY: live btf, valid C string.
        let ret = unsafe {
            libbpf_sys::btf__add_field(
                self.ptr.as_ptr(),
                c_name.as_ptr(),
                type_id as c_int,
                byte_offset * 8,
                0,
            )
        };
        check(ret, || format!("btf__add_field({name})"))?;
        Ok(())
    }

    /// BPF_BTF_LOAD: the kernel's fd of this BTF, or the errno it was
    /// refused with. The fd belongs to the builder.
    pub fn load(&mut self) -> std::result::Result<RawFd, i32> {
        // SAFETY: live btf.
        let ret = unsafe { libbpf_sys::btf__load_into_kernel(self.ptr.as_ptr()) };
        if ret < 0 {
            return Err(-ret);
        }
        // SAFETY: live btf, loaded just now.
        Ok(unsafe { libbpf_sys::btf__fd(self.ptr.as_ptr()) })
    }
}

impl Drop for BtfBuilder {
    fn drop(&mut self) {
        // SAFETY: we own the btf; btf__free closes its kernel fd.
        unsafe { libbpf_sys::btf__free(self.ptr.as_ptr()) };
    }
}

/// What one BPF_PROG_TEST_RUN call returned.
#[derive(Debug, Clone, Copy)]
pub struct TestRunOutput {
    /// r0, as the kernel reports it (32 bits).
    pub retval: u32,
    /// Average run time in ns over the repetitions.
    pub duration_ns: u32,
}

/// BPF_PROG_TEST_RUN: `data_in` is the packet (None for program types that
/// take no data, e.g. syscall), `repeat` runs it that many times in the kernel.
pub fn test_run(prog_fd: RawFd, data_in: Option<&[u8]>, repeat: u32) -> Result<TestRunOutput> {
    let repeat = c_int::try_from(repeat).map_err(|_| anyhow!("repeat {repeat} is too large"))?;
    let mut data_out = vec![0u8; data_in.map_or(0, |d| d.len() * 4)];
    let mut opts = libbpf_sys::bpf_test_run_opts {
        sz: std::mem::size_of::<libbpf_sys::bpf_test_run_opts>() as _,
        repeat,
        ..Default::default()
    };
    if let Some(data) = data_in {
        opts.data_in = data.as_ptr().cast();
        opts.data_size_in = u32::try_from(data.len()).context("data_in too large")?;
        // Room for programs that grow the packet, as test_loader allows.
        opts.data_out = data_out.as_mut_ptr().cast();
        opts.data_size_out = u32::try_from(data_out.len()).context("data_out too large")?;
    }
    // SAFETY: opts points at buffers that outlive the call.
    let ret = unsafe { libbpf_sys::bpf_prog_test_run_opts(prog_fd, &mut opts) };
    check(ret, || "BPF_PROG_TEST_RUN".to_string())?;
    Ok(TestRunOutput {
        retval: opts.retval,
        duration_ns: opts.duration,
    })
}
