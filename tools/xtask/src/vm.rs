//! Boots a kernel with virtme-ng and runs one command in it, under a
//! deadline. vng has no timeout of its own, and its SIGTERM handler exits
//! without killing QEMU, so the whole process group is killed instead.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::arch::Arch;

/// How to boot.
pub struct Vm<'a> {
    pub arch: Arch,
    pub image: &'a Path,
    pub cpus: u32,
    pub memory: &'a str,
    /// Use KVM (only where a probe showed that it boots this kind of kernel).
    pub kvm: bool,
    /// Writable in the guest; everything else of the host root is read-only.
    pub rwdir: &'a Path,
    /// Where the guest console (kernel log) goes.
    pub console: &'a Path,
    /// The guest's root filesystem; `None` boots on the host's own root
    /// (read-only). A foreign architecture needs one ([`crate::rootfs`]);
    /// `rwdir` is then mounted at [`crate::rootfs::GUEST_MOUNT`].
    pub root: Option<&'a Path>,
}

/// How a guest run ended.
pub enum Outcome {
    /// The guest command's exit code, as vng returned it.
    Exited(i32),
    /// vng returned 255: the kernel panicked or the exit code was lost.
    Panicked,
    TimedOut(Duration),
}

impl Vm<'_> {
    /// The vng command line, without the guest command.
    pub fn vng_args(&self) -> Vec<String> {
        let mut args = vec![
            "--run".to_string(),
            self.image.display().to_string(),
            "--cpus".into(),
            self.cpus.to_string(),
            "--memory".into(),
            self.memory.into(),
            "--user".into(),
            "root".into(),
            match self.root {
                None => format!("--rwdir={}", self.rwdir.display()),
                Some(_) => format!(
                    "--rwdir={}={}",
                    crate::rootfs::GUEST_MOUNT,
                    self.rwdir.display()
                ),
            },
            // Kernel messages on stderr, which we save as the console log.
            "--verbose".into(),
            // Boot messages go to the serial console; also mirror warnings.
            "--append".into(),
            "panic=-1 softlockup_panic=0 printk.devkmsg=on".into(),
        ];
        if !self.kvm {
            args.push("--disable-kvm".into());
        }
        if self.arch != Arch::host() {
            args.push("--arch".into());
            args.push(self.arch.name().into());
        }
        if let Some(root) = self.root {
            args.push("--root".into());
            args.push(root.display().to_string());
            // The root's static busybox, for when vng builds an initramfs
            // (the host's is x86_64).
            args.push("--busybox".into());
            args.push(crate::rootfs::busybox(root).display().to_string());
        }
        if self.arch == Arch::Arm64 && !self.kvm {
            // vng's TCG default is a Cortex-A57 (ARMv8.0). `max` has the
            // newer features an arm64 kernel and JIT use; pauth-impdef swaps
            // QEMU's slow architected pointer-auth hash for a cheap one.
            args.push("--qemu-opts=-cpu max,pauth-impdef=on".into());
        }
        args
    }

    /// Runs `command` in the guest, echoing its stdout (prefixed) as it comes.
    pub fn run(
        &self,
        command: &[String],
        deadline: Duration,
        echo_prefix: &str,
    ) -> Result<(Outcome, String)> {
        let mut cmd = Command::new(vng());
        cmd.args(self.vng_args()).arg("--").args(command);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // A new process group, so QEMU dies with vng at the deadline.
        cmd.process_group(0);
        let mut child = cmd
            .spawn()
            .context("starting vng (is virtme-ng installed? run `make deps`)")?;
        let pgid = child.id() as i32;
        let _reaper = GuestGroup::register(pgid);

        let stdout = child.stdout.take().unwrap();
        let prefix = echo_prefix.to_string();
        let out_thread = std::thread::spawn(move || {
            let mut all = String::new();
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                println!("{prefix}{line}");
                let _ = std::io::stdout().flush();
                all.push_str(&line);
                all.push('\n');
            }
            all
        });
        let stderr = child.stderr.take().unwrap();
        let mut console = File::create(self.console)
            .with_context(|| format!("creating {}", self.console.display()))?;
        let err_thread = std::thread::spawn(move || {
            let _ = std::io::copy(&mut BufReader::new(stderr), &mut console);
        });

        let start = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait()? {
                break Some(status);
            }
            if start.elapsed() >= deadline {
                // SAFETY: killpg() only sends a signal; pgid is the group we
                // created for the child above.
                unsafe { libc::killpg(pgid, libc::SIGKILL) };
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(200));
        };
        let stdout = out_thread.join().unwrap_or_default();
        let _ = err_thread.join();
        let outcome = match status {
            None => Outcome::TimedOut(deadline),
            Some(s) => match s.code() {
                Some(255) => Outcome::Panicked,
                Some(c) => Outcome::Exited(c),
                None => Outcome::Panicked,
            },
        };
        Ok((outcome, stdout))
    }
}

/// Deadline for a whole guest run: TCG is ~10-50x slower than KVM.
pub fn deadline(kvm: bool) -> Duration {
    if let Some(s) = std::env::var("VMTEST_TIMEOUT")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        return Duration::from_secs(s);
    }
    Duration::from_secs(if kvm { 300 } else { 1200 })
}

/// The guest's results directory on the host.
pub fn guest_dir(out: &Path) -> PathBuf {
    out.join("guest")
}

/// The vng executable: on PATH, else in the scripts directory of the python3
/// that `make deps` installed it with.
pub fn vng() -> PathBuf {
    let on_path = std::env::var_os("PATH")
        .map(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join("vng"))
                .find(|p| p.is_file())
        })
        .unwrap_or_default();
    if let Some(p) = on_path {
        return p;
    }
    let scripts = Command::new("python3")
        .args([
            "-c",
            "import sysconfig; print(sysconfig.get_path('scripts'))",
        ])
        .output()
        .ok()
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()).join("vng"));
    scripts
        .filter(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from("vng"))
}

/// The process group of the running guest, killed if we are terminated
/// (SIGINT, SIGTERM, SIGHUP): vng and QEMU run in their own group so that
/// the deadline can kill them, which also means they would outlive us.
static GUEST_PGID: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

struct GuestGroup;

impl GuestGroup {
    fn register(pgid: i32) -> GuestGroup {
        GUEST_PGID.store(pgid, std::sync::atomic::Ordering::SeqCst);
        for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
            // SAFETY: installs an async-signal-safe handler (it only calls
            // killpg() and _exit()).
            unsafe {
                libc::signal(
                    sig,
                    on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t,
                )
            };
        }
        GuestGroup
    }
}

impl Drop for GuestGroup {
    fn drop(&mut self) {
        GUEST_PGID.store(0, std::sync::atomic::Ordering::SeqCst);
    }
}

extern "C" fn on_signal(sig: libc::c_int) {
    let pgid = GUEST_PGID.load(std::sync::atomic::Ordering::SeqCst);
    // SAFETY: killpg() and _exit() are async-signal-safe.
    unsafe {
        if pgid > 0 {
            libc::killpg(pgid, libc::SIGKILL);
        }
        libc::_exit(128 + sig);
    }
}
