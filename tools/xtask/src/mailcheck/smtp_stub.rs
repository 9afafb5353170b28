//! A stub SMTP server on 127.0.0.1 for the `git send-email` check: it
//! accepts every message and keeps it, with its envelope, for the check to
//! compare with the patch files.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};

/// The stub server gives up on a client that says nothing for this long, so
/// a stuck client cannot keep it (and so [`StubServer::stop`]) waiting.
const SMTP_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// One message as the stub server received it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Received {
    pub(super) mail_from: String,
    pub(super) rcpt_to: Vec<String>,
    /// The message (headers and body) with dot-stuffing undone, CRLF kept.
    pub(super) data: String,
}

/// What the stub server saw over its lifetime.
#[derive(Debug, Default)]
pub(super) struct StubLog {
    pub(super) messages: Vec<Received>,
    /// Connections that ended abnormally (timeout, reset, EOF inside DATA).
    pub(super) errors: Vec<String>,
}

/// A minimal SMTP server on 127.0.0.1 that accepts every message and keeps
/// it: enough of RFC 5321 for Net::SMTP (what send-email uses).
pub(super) struct StubServer {
    pub(super) addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: JoinHandle<StubLog>,
}

impl StubServer {
    /// Listens on an ephemeral port and serves connections, one at a time
    /// (send-email opens them one after the other), in a thread.
    pub(super) fn start() -> Result<StubServer> {
        let listener =
            TcpListener::bind(("127.0.0.1", 0)).context("binding the stub SMTP server")?;
        let addr = listener.local_addr().context("stub SMTP server address")?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("smtp-stub".into())
            .spawn(move || serve(&listener, &flag))
            .context("starting the stub SMTP server thread")?;
        Ok(StubServer { addr, stop, thread })
    }

    /// Stops accepting and returns everything received. The accept loop
    /// blocks in accept(), so a connection of our own wakes it up.
    pub(super) fn stop(self) -> Result<StubLog> {
        self.stop.store(true, Ordering::SeqCst);
        // Fails only if the thread is already gone, and then join() says why.
        let _ = TcpStream::connect(self.addr);
        self.thread
            .join()
            .map_err(|_| anyhow!("the stub SMTP server thread panicked"))
    }
}

fn serve(listener: &TcpListener, stop: &AtomicBool) -> StubLog {
    let mut log = StubLog::default();
    for conn in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        match conn
            .map_err(anyhow::Error::from)
            .and_then(|s| session(s, &mut log.messages))
        {
            Ok(()) => {}
            Err(e) => log.errors.push(format!("{e:#}")),
        }
    }
    log
}

/// The envelope of the message being received.
#[derive(Default)]
struct Envelope {
    mail_from: Option<String>,
    rcpt_to: Vec<String>,
}

/// One SMTP connection: replies to commands until QUIT or end of input;
/// each completed DATA is appended to `messages`.
fn session(stream: TcpStream, messages: &mut Vec<Received>) -> Result<()> {
    stream.set_read_timeout(Some(SMTP_READ_TIMEOUT))?;
    stream.set_write_timeout(Some(SMTP_READ_TIMEOUT))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut out = stream;
    reply(&mut out, "220 127.0.0.1 xtask mailcheck stub ESMTP")?;
    let mut envelope = Envelope::default();
    while let Some(line) = read_line(&mut reader)? {
        let line = String::from_utf8_lossy(&line).into_owned();
        let upper = line.to_ascii_uppercase();
        let verb = upper.split_whitespace().next().unwrap_or_default();
        match verb {
            "EHLO" => reply(&mut out, "250-127.0.0.1 hello\r\n250-8BITMIME\r\n250 HELP")?,
            "HELO" => reply(&mut out, "250 127.0.0.1 hello")?,
            "MAIL" if upper.starts_with("MAIL FROM:") => {
                envelope = Envelope {
                    mail_from: Some(path_argument(&line["MAIL FROM:".len()..])),
                    rcpt_to: Vec::new(),
                };
                reply(&mut out, "250 OK")?;
            }
            "RCPT" if upper.starts_with("RCPT TO:") => {
                if envelope.mail_from.is_none() {
                    reply(&mut out, "503 MAIL first")?;
                } else {
                    envelope
                        .rcpt_to
                        .push(path_argument(&line["RCPT TO:".len()..]));
                    reply(&mut out, "250 OK")?;
                }
            }
            "DATA" => {
                if envelope.rcpt_to.is_empty() {
                    reply(&mut out, "503 RCPT first")?;
                    continue;
                }
                reply(&mut out, "354 end with <CRLF>.<CRLF>")?;
                let data = read_data(&mut reader)?;
                let envelope = std::mem::take(&mut envelope);
                messages.push(Received {
                    mail_from: envelope.mail_from.unwrap_or_default(),
                    rcpt_to: envelope.rcpt_to,
                    data,
                });
                reply(&mut out, "250 OK queued")?;
            }
            "RSET" => {
                envelope = Envelope::default();
                reply(&mut out, "250 OK")?;
            }
            "NOOP" => reply(&mut out, "250 OK")?,
            "QUIT" => {
                reply(&mut out, "221 bye")?;
                return Ok(());
            }
            _ => reply(&mut out, "502 command not implemented")?,
        }
    }
    Ok(())
}

fn reply(out: &mut TcpStream, text: &str) -> Result<()> {
    out.write_all(format!("{text}\r\n").as_bytes())
        .context("writing an SMTP reply")
}

/// One line without its CRLF (or LF); None at end of input.
fn read_line(reader: &mut impl BufRead) -> Result<Option<Vec<u8>>> {
    let mut line = Vec::new();
    if reader
        .read_until(b'\n', &mut line)
        .context("reading an SMTP command")?
        == 0
    {
        return Ok(None);
    }
    while line.last().is_some_and(|&b| b == b'\n' || b == b'\r') {
        line.pop();
    }
    Ok(Some(line))
}

/// The message text after DATA, up to the line holding only ".", with the
/// leading dot of dot-stuffed lines removed (RFC 5321 4.5.2).
fn read_data(reader: &mut impl BufRead) -> Result<String> {
    let mut data = Vec::new();
    loop {
        let mut line = Vec::new();
        let n = reader
            .read_until(b'\n', &mut line)
            .context("reading message data")?;
        if n == 0 {
            bail!("connection closed inside DATA");
        }
        if line == b".\r\n" || line == b".\n" {
            return Ok(String::from_utf8_lossy(&data).into_owned());
        }
        let line = line.strip_prefix(b".").unwrap_or(&line);
        data.extend_from_slice(line);
    }
}

/// The address of a MAIL FROM/RCPT TO argument: `<a@b> SIZE=1` gives a@b.
pub(super) fn path_argument(arg: &str) -> String {
    let arg = arg.trim();
    match arg.strip_prefix('<') {
        Some(rest) => rest.split('>').next().unwrap_or_default().to_string(),
        None => arg
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mailcheck::{header, mail_headers};

    /// A tiny SMTP client: sends `line` and returns the complete reply.
    fn say(reader: &mut BufReader<TcpStream>, out: &mut TcpStream, line: &str) -> String {
        out.write_all(format!("{line}\r\n").as_bytes()).unwrap();
        read_reply(reader)
    }

    /// Reads one (possibly multi-line) SMTP reply.
    fn read_reply(reader: &mut BufReader<TcpStream>) -> String {
        let mut all = String::new();
        loop {
            let mut line = String::new();
            assert!(reader.read_line(&mut line).unwrap() > 0, "server closed");
            all.push_str(&line);
            if line.as_bytes().get(3) == Some(&b' ') {
                return all;
            }
        }
    }

    fn connect(addr: SocketAddr) -> (BufReader<TcpStream>, TcpStream) {
        let stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        (BufReader::new(stream.try_clone().unwrap()), stream)
    }

    #[test]
    fn stub_smtp_round_trip() {
        let stub = StubServer::start().unwrap();
        let (mut r, mut w) = connect(stub.addr);
        assert!(read_reply(&mut r).starts_with("220 "));
        let ehlo = say(&mut r, &mut w, "EHLO client.example");
        assert!(ehlo.starts_with("250-") && ehlo.lines().last().unwrap().starts_with("250 "));
        assert!(say(&mut r, &mut w, "NOOP").starts_with("250"));
        assert!(say(&mut r, &mut w, "DATA").starts_with("503"));
        assert!(say(&mut r, &mut w, "MAIL FROM:<me@example.com> SIZE=100").starts_with("250"));
        assert!(say(&mut r, &mut w, "RCPT TO:<a@example.com>").starts_with("250"));
        assert!(say(&mut r, &mut w, "rcpt to:<B@example.com>").starts_with("250"));
        assert!(say(&mut r, &mut w, "DATA").starts_with("354"));
        let reply = say(
            &mut r,
            &mut w,
            "Subject: one\r\n\r\n..a stuffed line\r\nbody\r\n.",
        );
        assert!(reply.starts_with("250"), "{reply}");
        // A second message in the same connection, after a RSET.
        assert!(say(&mut r, &mut w, "MAIL FROM:<x@example.com>").starts_with("250"));
        assert!(say(&mut r, &mut w, "RSET").starts_with("250"));
        assert!(say(&mut r, &mut w, "MAIL FROM:<me@example.com>").starts_with("250"));
        assert!(say(&mut r, &mut w, "RCPT TO:<c@example.com>").starts_with("250"));
        assert!(say(&mut r, &mut w, "DATA").starts_with("354"));
        assert!(say(&mut r, &mut w, "Subject: two\r\n\r\nx\r\n.").starts_with("250"));
        assert!(say(&mut r, &mut w, "BOGUS").starts_with("502"));
        assert!(say(&mut r, &mut w, "QUIT").starts_with("221"));
        // Another connection, without QUIT.
        let (mut r, mut w) = connect(stub.addr);
        read_reply(&mut r);
        assert!(say(&mut r, &mut w, "HELO client").starts_with("250 "));
        say(&mut r, &mut w, "MAIL FROM:<me@example.com>");
        say(&mut r, &mut w, "RCPT TO:<d@example.com>");
        say(&mut r, &mut w, "DATA");
        assert!(say(&mut r, &mut w, "Subject: three\r\n\r\n.").starts_with("250"));
        drop((r, w));

        let log = stub.stop().unwrap();
        assert!(log.errors.is_empty(), "{:?}", log.errors);
        let m = &log.messages;
        assert_eq!(m.len(), 3);
        assert_eq!(m[0].mail_from, "me@example.com");
        assert_eq!(m[0].rcpt_to, ["a@example.com", "B@example.com"]);
        assert_eq!(m[0].data, "Subject: one\r\n\r\n.a stuffed line\r\nbody\r\n");
        assert_eq!(m[1].rcpt_to, ["c@example.com"]);
        assert_eq!(header(&mail_headers(&m[1].data), "subject").unwrap(), "two");
        assert_eq!(m[2].rcpt_to, ["d@example.com"]);
        assert_eq!(m[2].data, "Subject: three\r\n\r\n");
    }
}
