//! External servers (`compare --external NAME='COMMAND ... {port}'`): any
//! program that echoes over TCP as a row beside the styles. What differs
//! from a style's server lives here: the flag's value, the command with a
//! free loopback port filled in, readiness (the port accepts a connection,
//! where a style prints a listening line), the tail of its stderr for a
//! failure's reason, and what a clean stop is for a server that prints no
//! summary. Starting, pinning, the cgroup, sampling and stopping are the
//! styles' own ([`crate::compare::servers`]).

use std::io::Read;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::process::{ChildStderr, Command, ExitStatus};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::compare::model::ExternalServer;

/// The placeholder of the port in the command.
pub const PORT: &str = "{port}";
/// How long a command has to accept connections on its port.
pub const READY_LIMIT: Duration = Duration::from_secs(10);
/// How long it has to end after SIGTERM before it gets SIGKILL: a foreign
/// server owes us no summary, only to stop when asked.
pub const STOP_GRACE: Duration = Duration::from_secs(2);
/// Ports tried when another program takes the one picked (see
/// [`free_port`]).
pub const PORT_ATTEMPTS: usize = 3;
/// Bytes of its stderr kept: enough for the last lines of a failure.
const TAIL_BYTES: usize = 4096;
/// Lines of that tail a failure's reason quotes.
const TAIL_LINES: usize = 5;

/// Parses one `--external` value: `NAME=COMMAND`, COMMAND holding
/// `{port}`, NAME a word that is not a style's (styles and their variants
/// are rows of their own).
pub fn parse_external(s: &str) -> Result<ExternalServer, String> {
    let (name, command) = s.split_once('=').ok_or_else(|| {
        format!("{s:?}: want NAME='COMMAND ... {PORT}' (e.g. socat='socat TCP-LISTEN:{PORT},reuseaddr,fork PIPE')")
    })?;
    let (name, command) = (name.trim(), command.trim());
    let word = name.len() <= 40
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
    if !word {
        return Err(format!(
            "{name:?}: a NAME is up to 40 letters, digits, '.', '_' or '-', starting with a letter or digit"
        ));
    }
    if name == "all" || crate::compare::variant::Variant::parse(name).is_ok() {
        return Err(format!(
            "{name:?} is a style's name: give the external server a name of its own"
        ));
    }
    if !command.contains(PORT) {
        return Err(format!(
            "{name}: the command has no {PORT}, so it cannot be told where to listen: {command:?}"
        ));
    }
    Ok(ExternalServer {
        name: name.into(),
        command: command.into(),
    })
}

/// The command line run for `ext` on `port`.
pub fn command_line(ext: &ExternalServer, port: u16) -> String {
    ext.command.replace(PORT, &port.to_string())
}

/// The process for `line`: through `sh -c`, so the command means what it
/// means typed at a shell (quotes, `VAR=x cmd`, `cd dir && ./server`,
/// pipes). It is the user's own command line, so a shell adds nothing
/// they could not run anyway, and what is filled in is digits only. The
/// shell may stay as the parent of the server (dash does not `exec` the
/// last command): the process group, the cgroup and the sampler's
/// process tree all take in its children, and a command that starts with
/// `exec` leaves no shell at all.
pub fn shell(line: &str) -> Command {
    let mut cmd = Command::new("sh");
    cmd.arg("-c").arg(line);
    cmd
}

/// A port nobody uses, on any address: bound at 0 (not listened on), read,
/// closed. Between the close and the server's own bind another program
/// may be given the same port (the kernel hands ports out of one range);
/// that window is a few milliseconds and loadgen opens no connection in
/// it. When it happens the server fails to bind and exits, which
/// [`port_taken`] then tells apart from a command that fails on its own,
/// and the start is tried again on another port ([`PORT_ATTEMPTS`]).
/// The wildcard address makes the port free for a server that binds
/// 127.0.0.1 and for one that binds every address alike.
pub fn free_port() -> std::io::Result<u16> {
    let socket = unbound_socket()?;
    socket.bind(&SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)).into())?;
    socket
        .local_addr()?
        .as_socket()
        .map(|a| a.port())
        .ok_or_else(|| std::io::Error::other("not an IP socket"))
}

/// Whether some socket holds `port` now: binding it on every address,
/// without SO_REUSEADDR, fails.
pub fn port_taken(port: u16) -> bool {
    let addr = SocketAddr::from((Ipv4Addr::UNSPECIFIED, port));
    unbound_socket()
        .and_then(|s| s.bind(&addr.into()))
        .is_err_and(|e| e.kind() == std::io::ErrorKind::AddrInUse)
}

fn unbound_socket() -> std::io::Result<socket2::Socket> {
    socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
}

/// How the wait for a command to listen ended.
#[derive(Debug)]
pub enum Ready {
    Listening,
    /// It ended first, with this status.
    Exited(ExitStatus),
    /// Neither within the limit.
    TimedOut,
}

/// Waits until `addr` accepts a TCP connection, the process ends
/// (`ended` says so, without reaping it) or `limit` passes. Polled: a port
/// gives no signal when something starts listening on it.
pub fn wait_ready(
    addr: SocketAddr,
    limit: Duration,
    mut ended: impl FnMut() -> Option<ExitStatus>,
) -> Ready {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = ended() {
            return Ready::Exited(status);
        }
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ready::Listening;
        }
        if Instant::now() >= deadline {
            return Ready::TimedOut;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// "status 3", or "signal 15 (SIGTERM)".
pub fn describe(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("status {code}"),
        (None, Some(sig)) => format!("signal {sig} ({})", signal_name(sig)),
        (None, None) => status.to_string(),
    }
}

/// A signal's name, "SIGTERM"; its number where it has none.
pub fn signal_name(sig: i32) -> String {
    nix::sys::signal::Signal::try_from(sig)
        .map(|s| s.as_str().to_string())
        .unwrap_or_else(|_| sig.to_string())
}

/// Whether an external server that ended after our SIGTERM, on its own
/// within [`STOP_GRACE`], stopped cleanly, and if not, why. It owes us no
/// summary line; dying of the SIGTERM, or exiting 0 or 143 (128 + 15,
/// what shells and the JVM report for it) is a normal end.
pub fn judge_stop(code: Option<i32>, signal: Option<i32>) -> Result<(), String> {
    const SIGTERM: i32 = libc::SIGTERM;
    match (code, signal) {
        (Some(0 | 143), _) | (None, Some(SIGTERM)) => Ok(()),
        (Some(code), _) => Err(format!("exited {code} on SIGTERM")),
        (None, Some(sig)) => Err(format!(
            "ended by signal {sig} ({}) on SIGTERM",
            signal_name(sig)
        )),
        (None, None) => Err("ended without a status".into()),
    }
}

/// The last few KiB of a process's stderr, read as it comes (so that the
/// process never blocks on a full pipe) and quoted in a failure's reason.
#[derive(Clone, Default)]
pub struct StderrTail {
    bytes: Arc<Mutex<Vec<u8>>>,
    /// The pipe closed: every process holding it is gone.
    closed: Arc<AtomicBool>,
}

impl StderrTail {
    /// Reads `pipe` on a thread of its own until it closes.
    pub fn collect(pipe: Option<ChildStderr>) -> StderrTail {
        let tail = StderrTail::default();
        let Some(pipe) = pipe else {
            tail.closed.store(true, Ordering::Release);
            return tail;
        };
        let (sink, closed) = (Arc::clone(&tail.bytes), Arc::clone(&tail.closed));
        std::thread::spawn(move || {
            let mut pipe = pipe;
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = pipe.read(&mut buf) {
                if let Ok(mut kept) = sink.lock() {
                    kept.extend_from_slice(&buf[..n]);
                    let over = kept.len().saturating_sub(TAIL_BYTES);
                    kept.drain(..over);
                }
            }
            closed.store(true, Ordering::Release);
        });
        tail
    }

    /// Its last lines joined with "; ", or "no output on stderr".
    pub fn text(&self) -> String {
        let kept = self.bytes.lock().map(|b| b.clone()).unwrap_or_default();
        let text = String::from_utf8_lossy(&kept);
        let lines: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        if lines.is_empty() {
            return "no output on stderr".into();
        }
        lines[lines.len().saturating_sub(TAIL_LINES)..].join("; ")
    }

    /// Waits (bounded) for the last of what a process that has ended
    /// wrote: the pipe closes once every process holding it is gone.
    pub fn settle(&self) {
        let deadline = Instant::now() + Duration::from_millis(500);
        while !self.closed.load(Ordering::Acquire) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_parse_and_bad_ones_say_why() {
        let e = parse_external("socat=socat TCP-LISTEN:{port},reuseaddr,fork PIPE").unwrap();
        assert_eq!(e.name, "socat");
        assert_eq!(e.row(), "socat (external)");
        assert_eq!(
            command_line(&e, 4242),
            "socat TCP-LISTEN:4242,reuseaddr,fork PIPE"
        );
        let e = parse_external("go-echo = ./echo -addr 127.0.0.1:{port}").unwrap();
        assert_eq!(
            (e.name.as_str(), e.command.as_str()),
            ("go-echo", "./echo -addr 127.0.0.1:{port}")
        );
        for (bad, says) in [
            ("socat", "want NAME="),
            ("socat=socat TCP-LISTEN:7000 PIPE", "no {port}"),
            ("epoll=socat TCP-LISTEN:{port} PIPE", "a style's name"),
            ("tasks:current_thread=x {port}", "letters, digits"),
            ("all=x {port}", "a style's name"),
            ("=x {port}", "letters, digits"),
            ("my echo=x {port}", "letters, digits"),
        ] {
            let e = parse_external(bad).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn a_foreign_server_stops_cleanly_on_sigterm_whatever_its_convention() {
        assert!(judge_stop(None, Some(libc::SIGTERM)).is_ok());
        assert!(judge_stop(Some(0), None).is_ok());
        assert!(judge_stop(Some(143), None).is_ok());
        assert_eq!(
            judge_stop(Some(1), None).unwrap_err(),
            "exited 1 on SIGTERM"
        );
        assert!(
            judge_stop(None, Some(libc::SIGSEGV))
                .unwrap_err()
                .contains("SIGSEGV")
        );
    }

    #[test]
    fn a_port_in_use_is_seen_as_taken() {
        // Once dropped, an ephemeral port can be taken at once by another
        // process's connect (a comparison churning beside the tests did, in
        // CI): each of up to 5 ports must be seen taken while held, and at
        // least one seen free once let go.
        let mut seen_free = false;
        for _ in 0..5 {
            let held = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
            let port = held.local_addr().unwrap().port();
            assert!(port_taken(port), "{port} is held");
            drop(held);
            if !port_taken(port) {
                seen_free = true;
                break;
            }
        }
        assert!(seen_free, "a port let go was never seen free");
        assert_ne!(free_port().unwrap(), 0);
    }
}
