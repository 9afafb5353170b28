//! Mails the patches with a real `git send-email` run against the stub SMTP
//! server of [`super::smtp_stub`], and compares what it received with the
//! files.
//!
//! The `git send-email` run is the one that needs care: it must never reach a
//! real mail server and must never wait for an answer from a user.
//!
//! - Mail server: the child gets no system or global git config
//!   (`GIT_CONFIG_NOSYSTEM`, `GIT_CONFIG_GLOBAL=/dev/null`, a temporary
//!   `HOME`, no `GIT_CONFIG_PARAMETERS`/`GIT_CONFIG_COUNT` and a working
//!   directory outside any repository), so no `sendemail.*` setting of the
//!   user (`smtpServer`, `sendmailCmd`, `identity`, `annotate`, `toCmd`,
//!   `assume8bitEncoding`, ...) can redirect or alter the run, and
//!   `--smtp-server` names the stub explicitly. The dry run must show every
//!   message going to `Server: 127.0.0.1` before the real send starts.
//! - Prompts: stdin is /dev/null, but send-email's `Term::ReadLine` opens
//!   /dev/tty when there is one, so a prompt would still wait for the user at
//!   a terminal. `GIT_SEND_EMAIL_NOTTY=1` makes it use stdin and stdout; a
//!   prompt then reads end-of-file and send-email silently takes the
//!   default answer (for the 8-bit prompt: "UTF-8"). That is why the output is
//!   searched for prompt texts, and why non-ASCII files fail this check on
//!   their own: format-patch declares 8-bit messages itself, so git mails
//!   those without asking anything.
//! - Time: the child runs in its own process group and is killed, with
//!   send-email's Perl child, after a deadline.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::fmt::Write as _;
use std::io::Read;
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{anyhow, ensure, Context, Result};
use xshell::{cmd, Shell};

use super::smtp_stub::{Received, StubServer};
use super::{ascii_only, file_name, header, is_cover_letter, mail_headers, CheckReport, TempDir};

/// How long one `git send-email` run (dry or real) may take; a handful of
/// messages to a local server takes about a second.
const SEND_DEADLINE: Duration = Duration::from_secs(120);
/// send-email's questions (git 2.39 and 2.47, untranslated: the child runs
/// with `LC_ALL=C`). With stdin closed each of them is answered with its
/// default, so seeing one means git decided something nobody was asked about.
const PROMPTS: &[&str] = &[
    "Which 8bit encoding should I declare",
    "To whom should the emails be sent",
    "Message-ID to be used as In-Reply-To",
    "What to do with this address?",
    "Send this email?",
    "Do you really want to send",
    "Are you sure you want to use",
];

/// Mails `patches` (in order, cover letter first) with `git send-email` to a local stub SMTP
/// server this function starts on 127.0.0.1, with stdin closed so that any prompt fails instead of
/// waiting. First a `--dry-run` (its stdout is `details` when all is well), then the real send.
///
/// summary: "git send-email: 7 of 7 messages accepted by the stub server (127.0.0.1:PORT), no
/// prompt", or that count followed by ": FAILED" and one "  - problem" line per problem.
///
/// ok only when: the dry run shows every message going to the stub; git send-email exited 0
/// within [`SEND_DEADLINE`]; it printed no prompt; the stub received exactly one message per file,
/// each with the file's Subject, sent to every To/Cc address of the file and to `to`; and every
/// file is ASCII-only (8-bit mail is not papered over with `--8bit-encoding`).
pub fn send_email(sh: &Shell, patches: &[PathBuf], to: &str) -> Result<CheckReport> {
    let (report, _received) = send_and_check(sh, patches, to, SEND_DEADLINE)?;
    Ok(report)
}

/// [`send_email`], also returning what the stub received (for the tests).
fn send_and_check(
    sh: &Shell,
    patches: &[PathBuf],
    to: &str,
    deadline: Duration,
) -> Result<(CheckReport, Vec<Received>)> {
    ensure!(!patches.is_empty(), "git send-email: no patches to mail");
    let paths = mail_order(sh, patches);
    let files: Vec<MailFile> = paths
        .iter()
        .map(|p| MailFile::read(p))
        .collect::<Result<_>>()?;
    let ascii = ascii_only(&paths)?;
    let work = TempDir::new("mailcheck")?;
    let sender = &files[0].from;
    let no_smtp_auth = has_no_smtp_auth(sh, &work.path, sender)?;

    let stub = StubServer::start()?;
    let addr = stub.addr;
    let child = |dry_run: bool| {
        let args = send_email_args(addr, sender, to, no_smtp_auth, dry_run, &files);
        let command = isolated_git(sh, &args, &work.path, sender);
        run_with_deadline(command, deadline)
    };
    let dry = match child(true) {
        Ok(dry) => dry,
        Err(e) => {
            stub.stop()?;
            return Err(e);
        }
    };
    let mut problems = Vec::new();
    let gate = dry_run_problem(&dry, files.len(), addr, deadline);
    let real = match &gate {
        Some(problem) => {
            problems.push(format!("{problem}; real send skipped"));
            None
        }
        None => Some(child(false)),
    };
    let log = stub.stop()?;
    let real = real.transpose()?;

    match &real {
        Some(real) => {
            problems.extend(exit_problem("git send-email", real, deadline));
            problems.extend(prompt_problems(&real.stdout));
        }
        None => problems.extend(prompt_problems(&dry.stdout)),
    }
    problems.extend(log.errors.iter().map(|e| format!("stub server: {e}")));
    problems.extend(message_problems(&files, &log.messages, to));
    if !ascii.ok {
        let lines: Vec<&str> = ascii.details.lines().collect();
        let more = match lines.len() {
            n if n > 3 => format!("; and {} more", n - 3),
            _ => String::new(),
        };
        problems.push(format!(
            "non-ASCII bytes (git mails them as 8-bit): {}{more}",
            lines[..lines.len().min(3)].join("; ")
        ));
    }

    let accepted = format!(
        "{} of {} messages accepted by the stub server ({addr})",
        log.messages.len(),
        files.len()
    );
    let report = if problems.is_empty() {
        CheckReport {
            ok: true,
            summary: format!("git send-email: {accepted}, no prompt"),
            details: dry.stdout,
        }
    } else {
        let mut details = String::from("problems:\n");
        for p in &problems {
            writeln!(details, "  - {p}")?;
        }
        if let Some(real) = &real {
            writeln!(details, "---- git send-email stdout ----\n{}", real.stdout)?;
            writeln!(details, "---- git send-email stderr ----\n{}", real.stderr)?;
        }
        writeln!(
            details,
            "---- git send-email --dry-run stdout ----\n{}",
            dry.stdout
        )?;
        writeln!(
            details,
            "---- git send-email --dry-run stderr ----\n{}",
            dry.stderr
        )?;
        let mut summary = format!("git send-email: {accepted}: FAILED\n");
        for p in &problems {
            writeln!(summary, "  - {p}")?;
        }
        CheckReport {
            ok: false,
            summary,
            details,
        }
    };
    Ok((report, log.messages))
}

/// `patches` as absolute paths (the child runs elsewhere), the cover letter
/// first and the rest in the order given.
fn mail_order(sh: &Shell, patches: &[PathBuf]) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = patches.iter().map(|p| sh.current_dir().join(p)).collect();
    files.sort_by_key(|p| !is_cover_letter(p));
    files
}

/// Whether this git's send-email has `--no-smtp-auth` (2.39 and later do):
/// with it, no configured or default mechanism makes git try to log in.
/// Asked in the same isolated environment as the sends, so that a user's
/// broken `sendemail.*` setting cannot make it look missing.
fn has_no_smtp_auth(sh: &Shell, work: &Path, sender: &str) -> Result<bool> {
    let args = ["send-email", "-h"].map(OsString::from);
    // `-h` prints the usage to stdout and exits 1.
    let help = run_with_deadline(isolated_git(sh, &args, work, sender), SEND_DEADLINE)
        .context("running `git send-email -h`")?;
    ensure!(
        help.stdout.contains("--smtp-server"),
        "`git send-email` is not available (install git-email; `make deps` does): {}",
        help.stderr.trim()
    );
    Ok(help.stdout.contains("--no-smtp-auth"))
}

/// The `git send-email` arguments. Every one that decides where mail goes is
/// explicit; the paths are absolute, so none of them can be taken for an
/// option or (with `--no-format-patch`) a revision range.
fn send_email_args(
    stub: SocketAddr,
    from: &str,
    to: &str,
    no_smtp_auth: bool,
    dry_run: bool,
    files: &[MailFile],
) -> Vec<OsString> {
    let mut args: Vec<OsString> = [
        "send-email".to_string(),
        "--confirm=never".into(),
        "--no-format-patch".into(),
        "--no-annotate".into(),
        format!("--smtp-server={}", stub.ip()),
        format!("--smtp-server-port={}", stub.port()),
        // "none" rather than an empty value: Getopt::Long does not take
        // `--smtp-encryption=` as an empty string but passes it on as an
        // argument for git format-patch, which then fails.
        "--smtp-encryption=none".into(),
        // Otherwise send-email guesses a domain for EHLO by asking DNS and
        // by connecting to an MTA on localhost:25.
        "--smtp-domain=localhost".into(),
        format!("--from={from}"),
        format!("--to={to}"),
    ]
    .into_iter()
    .map(OsString::from)
    .collect();
    if no_smtp_auth {
        args.push("--no-smtp-auth".into());
    }
    if dry_run {
        args.push("--dry-run".into());
    }
    args.extend(files.iter().map(|f| f.path.clone().into_os_string()));
    args
}

/// `git {args}` in `work` with none of the user's git configuration and no
/// terminal; see the module documentation for why each setting is there.
/// The identity variables replace user.name/user.email, which send-email
/// reads (strictly: an empty name is an error) even when `--from` is given.
fn isolated_git(sh: &Shell, args: &[OsString], work: &Path, sender: &str) -> Command {
    let (name, email) = split_address(sender);
    let name = match name {
        "" => email.split('@').next().unwrap_or(email),
        name => name,
    };
    let ceiling = work.parent().unwrap_or(work);
    let mut command: Command = cmd!(sh, "git {args...}").into();
    for var in [
        "GIT_CONFIG_PARAMETERS",
        "GIT_CONFIG_COUNT",
        "GIT_CONFIG",
        "GIT_DIR",
        "GIT_WORK_TREE",
        "GIT_INDEX_FILE",
        "XDG_CONFIG_HOME",
        "LANGUAGE",
    ] {
        command.env_remove(var);
    }
    command
        .current_dir(work)
        .env("HOME", work)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CEILING_DIRECTORIES", ceiling)
        .env("GIT_SEND_EMAIL_NOTTY", "1")
        .env("TERM", "dumb")
        .env("LC_ALL", "C")
        .env("GIT_AUTHOR_NAME", name)
        .env("GIT_AUTHOR_EMAIL", email)
        .env("GIT_COMMITTER_NAME", name)
        .env("GIT_COMMITTER_EMAIL", email);
    command
}

/// A finished (or killed) child process and what it printed.
#[derive(Debug)]
struct Finished {
    /// None: killed at the deadline.
    status: Option<ExitStatus>,
    stdout: String,
    stderr: String,
}

/// Runs `command` with stdin closed and its output collected; kills its
/// whole process group if it has not finished after `deadline` (`git`
/// starts send-email as a child, which would survive killing `git` alone).
fn run_with_deadline(mut command: Command, deadline: Duration) -> Result<Finished> {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut child = command
        .spawn()
        .with_context(|| format!("starting {:?}", command.get_program()))?;
    let program = command.get_program().to_string_lossy().into_owned();
    let stdout = collect(child.stdout.take());
    let stderr = collect(child.stderr.take());
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child
            .try_wait()
            .with_context(|| format!("waiting for {program}"))?
        {
            break Some(status);
        }
        if start.elapsed() >= deadline {
            let pgid = child.id() as i32;
            // SAFETY: killpg() only sends a signal; pgid is the group created
            // for this child above.
            unsafe { libc::killpg(pgid, libc::SIGKILL) };
            child.wait().with_context(|| format!("reaping {program}"))?;
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Ok(Finished {
        status,
        stdout: joined(stdout)?,
        stderr: joined(stderr)?,
    })
}

/// Reads a child's pipe to the end in a thread (so that neither pipe can
/// fill up and block the child while the other is read).
fn collect<R: Read + Send + 'static>(pipe: Option<R>) -> JoinHandle<std::io::Result<Vec<u8>>> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        if let Some(mut pipe) = pipe {
            pipe.read_to_end(&mut bytes)?;
        }
        Ok(bytes)
    })
}

fn joined(reader: JoinHandle<std::io::Result<Vec<u8>>>) -> Result<String> {
    let bytes = reader
        .join()
        .map_err(|_| anyhow!("output reader thread panicked"))?
        .context("reading a child's output")?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// Why the dry run does not allow the real send, if it does not: it failed,
/// or it does not show each message going to the stub over SMTP.
fn dry_run_problem(
    dry: &Finished,
    files: usize,
    stub: SocketAddr,
    deadline: Duration,
) -> Option<String> {
    if let Some(problem) = exit_problem("git send-email --dry-run", dry, deadline) {
        return Some(problem);
    }
    let servers: Vec<&str> = dry
        .stdout
        .lines()
        .filter_map(|l| l.strip_prefix("Server: "))
        .collect();
    let stub_ip = stub.ip().to_string();
    if dry.stdout.lines().any(|l| l.starts_with("Sendmail: ")) {
        return Some("the dry run mails through a sendmail command, not the stub".into());
    }
    if servers.len() != files || servers.iter().any(|s| *s != stub_ip) {
        return Some(format!(
            "the dry run does not send each of the {files} messages to the stub \
             (Server: lines: {servers:?})"
        ));
    }
    None
}

/// A failed, signalled or timed-out run, said in words.
fn exit_problem(what: &str, run: &Finished, deadline: Duration) -> Option<String> {
    match run.status {
        None => Some(format!(
            "{what} did not finish within {} s and was killed",
            deadline.as_secs()
        )),
        Some(s) if !s.success() => {
            let last = run.stderr.lines().rev().find(|l| !l.trim().is_empty());
            Some(format!(
                "{what} failed ({s}): {}",
                last.unwrap_or("no message")
            ))
        }
        Some(_) => None,
    }
}

/// The prompts send-email printed (and answered itself with the default).
fn prompt_problems(stdout: &str) -> Vec<String> {
    PROMPTS
        .iter()
        .filter(|p| stdout.contains(*p))
        .map(|p| format!("git send-email prompted \"{p} ...\" (answered with its default)"))
        .collect()
}

/// Compares what the stub received with the files: one message per file,
/// in order, same Subject, every To/Cc address of the file and `to` among
/// the envelope recipients.
fn message_problems(files: &[MailFile], messages: &[Received], to: &str) -> Vec<String> {
    let mut problems = Vec::new();
    if messages.len() != files.len() {
        problems.push(format!(
            "the stub received {} messages for {} files",
            messages.len(),
            files.len()
        ));
    }
    let to = addresses(to);
    for (file, message) in files.iter().zip(messages) {
        let name = file_name(&file.path);
        let headers = mail_headers(&message.data);
        let subject = header(&headers, "Subject").unwrap_or_default();
        if subject != file.subject {
            problems.push(format!(
                "{name}: mailed with Subject {subject:?}, the file has {:?}",
                file.subject
            ));
        }
        let rcpt: BTreeSet<String> = message
            .rcpt_to
            .iter()
            .map(|r| r.to_ascii_lowercase())
            .collect();
        let missing: Vec<&String> = file
            .recipients
            .iter()
            .chain(&to)
            .filter(|a| !rcpt.contains(&a.to_ascii_lowercase()))
            .collect();
        if !missing.is_empty() {
            problems.push(format!(
                "{name}: not sent to {missing:?} (RCPT TO: {:?})",
                message.rcpt_to
            ));
        }
    }
    problems
}

/// What send-email needs to know of a patch file, and what is checked
/// against the message the stub receives for it.
#[derive(Debug)]
struct MailFile {
    path: PathBuf,
    /// Unfolded, as it is in the file (RFC 2047 encoding and all).
    subject: String,
    from: String,
    /// The addresses of the file's To: and Cc: headers.
    recipients: Vec<String>,
}

impl MailFile {
    fn read(path: &Path) -> Result<MailFile> {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let text = String::from_utf8_lossy(&bytes);
        let headers = mail_headers(&text);
        let what = "not a git format-patch file?";
        let subject = header(&headers, "Subject")
            .with_context(|| format!("{}: no Subject: header ({what})", path.display()))?;
        let from = header(&headers, "From")
            .with_context(|| format!("{}: no From: header ({what})", path.display()))?;
        let recipients = headers
            .iter()
            .filter(|(name, _)| name.eq_ignore_ascii_case("To") || name.eq_ignore_ascii_case("Cc"))
            .flat_map(|(_, value)| addresses(value))
            .collect();
        Ok(MailFile {
            path: path.to_path_buf(),
            subject,
            from,
            recipients,
        })
    }
}

/// The addresses of an address-list header value: `a@b, "Last, First"
/// <c@d>, Name <e@f>` gives a@b, c@d, e@f.
fn addresses(value: &str) -> Vec<String> {
    let mut items = Vec::new();
    let mut current = String::new();
    let (mut quoted, mut angle) = (false, false);
    for c in value.chars() {
        match c {
            '"' => quoted = !quoted,
            '<' if !quoted => angle = true,
            '>' if !quoted => angle = false,
            ',' if !quoted && !angle => {
                items.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    items.push(current);
    items
        .iter()
        .map(|item| split_address(item).1.to_string())
        .filter(|a| !a.is_empty())
        .collect()
}

/// `Name <addr>` as (name, addr); a bare address as ("", addr).
fn split_address(item: &str) -> (&str, &str) {
    let item = item.trim();
    match (item.rfind('<'), item.rfind('>')) {
        (Some(open), Some(close)) if open < close => (
            item[..open].trim().trim_matches('"'),
            item[open + 1..close].trim(),
        ),
        _ => ("", item),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mailcheck::smtp_stub::path_argument;

    #[test]
    fn deadline_kills_the_whole_group() {
        // The background sleep keeps the pipes open: only killing the group
        // (not just `sh`) lets the output readers finish.
        let mut command = Command::new("sh");
        command.args(["-c", "echo started; sleep 30 & sleep 30"]);
        let start = Instant::now();
        let run = run_with_deadline(command, Duration::from_millis(300)).unwrap();
        assert!(start.elapsed() < Duration::from_secs(10));
        assert!(run.status.is_none());
        assert_eq!(run.stdout, "started\n");
        assert_eq!(
            exit_problem("x", &run, Duration::from_secs(120)).unwrap(),
            "x did not finish within 120 s and was killed"
        );
    }

    #[test]
    fn dry_run_must_point_at_the_stub() {
        use std::os::unix::process::ExitStatusExt;
        let stub: SocketAddr = "127.0.0.1:2525".parse().unwrap();
        let dry = |stdout: &str| Finished {
            status: Some(ExitStatus::from_raw(0)),
            stdout: stdout.to_string(),
            stderr: String::new(),
        };
        let d = Duration::from_secs(1);
        let ok = "Dry-OK. Log says:\nServer: 127.0.0.1\nMAIL FROM:<a@b.c>\n";
        assert_eq!(dry_run_problem(&dry(&ok.repeat(2)), 2, stub, d), None);
        assert!(dry_run_problem(&dry(ok), 2, stub, d).is_some());
        let other = "Server: smtp.example.com\n";
        assert!(dry_run_problem(&dry(&format!("{ok}{other}")), 2, stub, d).is_some());
        let sendmail = "Sendmail: /usr/sbin/sendmail -i a@b.c\n";
        assert!(dry_run_problem(&dry(&format!("{ok}{ok}{sendmail}")), 2, stub, d).is_some());
        let failed = Finished {
            status: Some(ExitStatus::from_raw(25 << 8)),
            ..dry(&ok.repeat(2))
        };
        assert!(dry_run_problem(&failed, 2, stub, d).is_some());
    }

    #[test]
    fn headers_and_addresses() {
        let text = "From 123 Mon Sep 17 00:00:00 2001\nFrom: A U\n <a@example.com>\n\
                    Subject: [PATCH 1/2] a long\n subject\nCc: \"Last, First\" <lf@example.com>,\n\
                    \tb@example.com\n\nCc: body@example.com\n";
        let h = mail_headers(text);
        assert_eq!(header(&h, "from").unwrap(), "A U <a@example.com>");
        assert_eq!(header(&h, "Subject").unwrap(), "[PATCH 1/2] a long subject");
        assert_eq!(
            addresses(&header(&h, "Cc").unwrap()),
            ["lf@example.com", "b@example.com"]
        );
        assert_eq!(
            split_address("A U <a@example.com>"),
            ("A U", "a@example.com")
        );
        assert_eq!(path_argument(" <a@b.c> SIZE=12"), "a@b.c");
    }

    /// A shell for a throwaway git repository: fixed identity and none of
    /// the user's configuration (signing, hooks).
    fn repo_shell(dir: &Path) -> Shell {
        let sh = Shell::new().unwrap();
        sh.change_dir(dir);
        for (k, v) in [
            ("GIT_CONFIG_NOSYSTEM", "1"),
            ("GIT_CONFIG_GLOBAL", "/dev/null"),
            ("GIT_AUTHOR_NAME", "A U Thor"),
            ("GIT_AUTHOR_EMAIL", "author@example.com"),
            ("GIT_COMMITTER_NAME", "A U Thor"),
            ("GIT_COMMITTER_EMAIL", "author@example.com"),
        ] {
            sh.set_var(k, v);
        }
        cmd!(sh, "git init -q .").quiet().run().unwrap();
        sh
    }

    /// Commits `contents` to `file` with `message`.
    fn commit(sh: &Shell, file: &str, contents: &str, message: &str) {
        sh.write_file(file, contents).unwrap();
        cmd!(sh, "git add {file}").quiet().run().unwrap();
        cmd!(sh, "git commit -q -m {message}")
            .quiet()
            .run()
            .unwrap();
    }

    /// `git format-patch` of the last `n` commits into `out`, sorted.
    fn format_patch(sh: &Shell, n: usize, extra: &[&str], out: &Path) -> Vec<PathBuf> {
        let range = format!("-{n}");
        cmd!(sh, "git format-patch -q {extra...} {range} -o {out}")
            .quiet()
            .run()
            .unwrap();
        let mut files: Vec<PathBuf> = std::fs::read_dir(out)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        files
    }

    /// Inserts `line` into the header block of `file`, after the Subject.
    fn add_header(file: &Path, line: &str) {
        let text = std::fs::read_to_string(file).unwrap();
        let (head, rest) = text.split_once("\n\n").unwrap();
        std::fs::write(file, format!("{head}\n{line}\n\n{rest}")).unwrap();
    }

    /// A cover letter and two patches in `dir/out`, made in `dir/repo`;
    /// the second patch has a folded Subject and a folded two-address Cc.
    fn series(dir: &Path) -> (Shell, Vec<PathBuf>) {
        let repo = dir.join("repo");
        std::fs::create_dir(&repo).unwrap();
        let sh = repo_shell(&repo);
        commit(&sh, "a.txt", "a\n", "init");
        commit(
            &sh,
            "a.txt",
            "a\nb\n",
            "Add b\n\nThe b line.\n\nSigned-off-by: A U Thor <author@example.com>",
        );
        commit(
            &sh,
            "a.txt",
            "a\nb\nc\n",
            "Add c with a rather long subject line that is folded\n\n\
             The c line.\n\nSigned-off-by: A U Thor <author@example.com>",
        );
        let files = format_patch(&sh, 2, &["--cover-letter"], &dir.join("out"));
        assert_eq!(files.len(), 3);
        let cover = std::fs::read_to_string(&files[0])
            .unwrap()
            .replace("*** SUBJECT HERE ***", "Add b and c")
            .replace("*** BLURB HERE ***", "Two lines.");
        std::fs::write(&files[0], cover).unwrap();
        let second = std::fs::read_to_string(&files[2])
            .unwrap()
            .replace(" line that is folded\n", "\n line that is folded\n");
        std::fs::write(&files[2], second).unwrap();
        add_header(
            &files[2],
            "Cc: Reviewer One <r1@example.org>,\n\t\"Two, Reviewer\" <r2@example.org>",
        );
        (sh, files)
    }

    #[test]
    fn send_email_end_to_end() {
        let dir = TempDir::new("mailcheck-test").unwrap();
        let (sh, files) = series(&dir.path);
        // Given out of order: the cover letter still goes first.
        let given = [files[1].clone(), files[0].clone(), files[2].clone()];
        let start = Instant::now();
        let (report, received) =
            send_and_check(&sh, &given, "List <list@example.net>", SEND_DEADLINE).unwrap();
        assert!(report.ok, "{}\n{}", report.summary, report.details);
        assert!(
            report.summary.starts_with(
                "git send-email: 3 of 3 messages accepted by the stub server (127.0.0.1:"
            ) && report.summary.ends_with("), no prompt"),
            "{}",
            report.summary
        );
        assert!(report
            .details
            .contains("Dry-OK. Log says:\nServer: 127.0.0.1\n"));
        assert!(start.elapsed() < Duration::from_secs(60));

        assert_eq!(received.len(), 3);
        let subjects: Vec<String> = received
            .iter()
            .map(|m| header(&mail_headers(&m.data), "Subject").unwrap())
            .collect();
        assert_eq!(
            subjects,
            [
                "[PATCH 0/2] Add b and c",
                "[PATCH 1/2] Add b",
                "[PATCH 2/2] Add c with a rather long subject line that is folded",
            ]
        );
        for m in &received {
            assert_eq!(m.mail_from, "author@example.com");
        }
        let rcpt = |i: usize| -> BTreeSet<&str> {
            received[i].rcpt_to.iter().map(String::as_str).collect()
        };
        let base = ["list@example.net", "author@example.com"];
        assert_eq!(rcpt(0), BTreeSet::from(base));
        assert_eq!(rcpt(1), BTreeSet::from(base));
        assert_eq!(
            rcpt(2),
            BTreeSet::from([base[0], base[1], "r1@example.org", "r2@example.org"])
        );
    }

    /// None of the user's git configuration reaches send-email: settings
    /// that would redirect the mail (a sendmail command, another server,
    /// an identity), add recipients, prompt (confirm, annotate) or paper
    /// over 8-bit mail, from ~/.gitconfig, `-c` and `GIT_CONFIG_COUNT`.
    #[test]
    fn send_email_ignores_user_git_config() {
        let dir = TempDir::new("mailcheck-test").unwrap();
        let (sh, files) = series(&dir.path);
        let global = dir.path.join("gitconfig");
        std::fs::write(
            &global,
            "[sendemail]\n\
             \tsmtpServer = /bin/false\n\
             \tsendmailCmd = false\n\
             \tsmtpServerPort = 1\n\
             \tsmtpEncryption = tls\n\
             \tassume8bitEncoding = UTF-8\n\
             \tannotate = true\n\
             \tconfirm = always\n\
             \tbcc = hidden@example.com\n\
             \tidentity = work\n\
             [sendemail \"work\"]\n\
             \tsmtpServer = smtp.example.com\n",
        )
        .unwrap();
        sh.set_var("GIT_CONFIG_GLOBAL", &global);
        sh.set_var(
            "GIT_CONFIG_PARAMETERS",
            "'sendemail.cc'='hidden2@example.com'",
        );
        sh.set_var("GIT_CONFIG_COUNT", "1");
        sh.set_var("GIT_CONFIG_KEY_0", "sendemail.smtpserver");
        sh.set_var("GIT_CONFIG_VALUE_0", "/bin/false");

        let (report, received) =
            send_and_check(&sh, &files, "list@example.net", SEND_DEADLINE).unwrap();
        assert!(report.ok, "{}\n{}", report.summary, report.details);
        assert_eq!(received.len(), 3);
        for m in &received {
            assert!(!m.rcpt_to.iter().any(|r| r.starts_with("hidden")), "{m:?}");
        }
    }

    /// An unedited cover letter: send-email refuses it (exit 25) already in
    /// the dry run, so nothing is sent.
    #[test]
    fn send_email_fails_on_template_cover_letter() {
        let dir = TempDir::new("mailcheck-test").unwrap();
        let (sh, files) = series(&dir.path);
        let template = std::fs::read_to_string(&files[0])
            .unwrap()
            .replace("Add b and c", "*** SUBJECT HERE ***");
        std::fs::write(&files[0], template).unwrap();
        let (report, received) =
            send_and_check(&sh, &files, "list@example.net", SEND_DEADLINE).unwrap();
        assert!(!report.ok);
        assert!(received.is_empty());
        assert!(
            report.summary.contains(
                "  - git send-email --dry-run failed (exit status: 25): has the template subject"
            ) && report.summary.contains("real send skipped"),
            "{}",
            report.summary
        );
    }

    /// A patch whose diff adds a non-ASCII line: format-patch declares no
    /// encoding (it only looks at the commit message), so send-email asks
    /// "Which 8bit encoding should I declare [UTF-8]?". With stdin closed it
    /// reads end-of-file, takes UTF-8, adds a Content-Type and sends: git
    /// exits 0. The check must fail anyway, and quickly.
    #[test]
    fn send_email_fails_on_undeclared_8bit() {
        let dir = TempDir::new("mailcheck-test").unwrap();
        let repo = dir.path.join("repo");
        std::fs::create_dir(&repo).unwrap();
        let sh = repo_shell(&repo);
        commit(&sh, "a.txt", "a\n", "init");
        commit(&sh, "a.txt", "a\ncaf\u{e9}\n", "Add a word");
        let files = format_patch(&sh, 1, &[], &dir.path.join("out"));
        let text = std::fs::read_to_string(&files[0]).unwrap();
        assert!(!text.contains("Content-Transfer-Encoding"), "{text}");

        let start = Instant::now();
        let (report, received) =
            send_and_check(&sh, &files, "list@example.net", SEND_DEADLINE).unwrap();
        assert!(start.elapsed() < Duration::from_secs(60));
        assert!(!report.ok);
        // What git did: prompted, answered itself, mailed it as UTF-8.
        assert!(report
            .details
            .contains("Which 8bit encoding should I declare [UTF-8]?"));
        assert!(
            report.summary.starts_with(
                "git send-email: 1 of 1 messages accepted by the stub server (127.0.0.1:"
            ),
            "{}",
            report.summary
        );
        assert!(
            report.summary.contains(
                ": FAILED\n  - git send-email prompted \"Which 8bit encoding should I declare ...\""
            ),
            "{}",
            report.summary
        );
        assert!(report.details.contains("non-ASCII bytes"));
        assert_eq!(received.len(), 1);
        let headers = mail_headers(&received[0].data);
        assert_eq!(
            header(&headers, "Content-Type").unwrap(),
            "text/plain; charset=UTF-8"
        );
    }

    /// A non-ASCII commit message body: format-patch declares UTF-8 and 8bit
    /// itself, so send-email mails it without a prompt; only our ASCII check
    /// makes the check fail.
    #[test]
    fn send_email_fails_on_declared_8bit() {
        let dir = TempDir::new("mailcheck-test").unwrap();
        let repo = dir.path.join("repo");
        std::fs::create_dir(&repo).unwrap();
        let sh = repo_shell(&repo);
        commit(&sh, "a.txt", "a\n", "init");
        // Not in the subject: format-patch writes that RFC 2047-encoded,
        // in ASCII.
        commit(&sh, "a.txt", "a\nb\n", "Add b\n\nFor Jos\u{e9}.");
        let files = format_patch(&sh, 1, &[], &dir.path.join("out"));
        let text = std::fs::read_to_string(&files[0]).unwrap();
        assert!(text.contains("Content-Transfer-Encoding: 8bit"), "{text}");

        let (report, received) =
            send_and_check(&sh, &files, "list@example.net", SEND_DEADLINE).unwrap();
        assert!(!report.ok);
        assert!(!report.details.contains("prompted"), "{}", report.details);
        assert!(
            report.summary.contains(": FAILED\n  - non-ASCII bytes"),
            "{}",
            report.summary
        );
        assert_eq!(received.len(), 1);
    }
}
