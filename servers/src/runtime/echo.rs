//! The echo itself, written once for every style.
//!
//! Two shapes of the same service:
//! - [`echo_blocking`] for styles whose connection code blocks (a thread,
//!   a coroutine, a process per connection): read a chunk, write it all
//!   back, repeat. Back-pressure is free: while `write_all` waits for a peer
//!   that does not read, nothing more is read from it.
//! - [`EchoConn::drive`] for event-driven styles (one loop, many sockets):
//!   a small state machine over a non-blocking socket. It reads into the
//!   loop's shared scratch buffer and keeps only what the peer did not take
//!   yet (never more than one buffer); while anything is pending it does
//!   not read. An idle connection therefore costs no buffer at all.
//!
//! Half-close: EOF from the peer means "send back what is pending, then shut
//! down the write side", so a client that shuts its write side gets every
//! byte back followed by EOF.

use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::time::{Duration, Instant};

use crate::runtime::config::Config;
use crate::runtime::idle::{BlockingStream, is_timeout};
use crate::runtime::stats::{ConnGuard, Stats};

/// A socket the echo can run on: reads, writes and a half-close.
pub trait EchoStream: Read + Write + AsRawFd {
    fn shutdown_write(&self) -> io::Result<()>;
}

impl EchoStream for std::net::TcpStream {
    fn shutdown_write(&self) -> io::Result<()> {
        self.shutdown(std::net::Shutdown::Write)
    }
}

impl EchoStream for mio::net::TcpStream {
    fn shutdown_write(&self) -> io::Result<()> {
        self.shutdown(std::net::Shutdown::Write)
    }
}

impl EchoStream for may::net::TcpStream {
    fn shutdown_write(&self) -> io::Result<()> {
        self.shutdown(std::net::Shutdown::Write)
    }
}

/// Spends `work` of real CPU time: the `--work-us` knob. A busy loop, not a
/// sleep, so that cooperative styles show what CPU-bound work does to their
/// neighbours.
pub fn burn(work: Duration) {
    if work.is_zero() {
        return;
    }
    let start = Instant::now();
    let mut x = 0u64;
    while start.elapsed() < work {
        for _ in 0..64 {
            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
    }
}

/// Size of a connection's first read, in the styles that give a connection
/// its buffer only once it speaks: small and on the stack, so that a
/// connection that never speaks never gets its full buffer.
pub(crate) const FIRST_READ: usize = 512;

/// Serves one connection with blocking reads and writes until the peer
/// closes its write side (then half-closes ours) or an error ends it.
pub fn echo_blocking<S: EchoStream>(
    stream: &mut S,
    buffer_size: usize,
    work: Duration,
    stats: &Stats,
) -> io::Result<()> {
    let mut first = [0u8; FIRST_READ];
    let first_len = FIRST_READ.min(buffer_size);
    let n = read_retry(stream, &mut first[..first_len])?;
    if n > 0 {
        burn(work);
        stream.write_all(&first[..n])?;
        stats.echoed(n);
        // The peer has spoken: now it gets its full buffer.
        let mut buf = vec![0u8; buffer_size];
        loop {
            let n = read_retry(stream, &mut buf)?;
            if n == 0 {
                break;
            }
            burn(work);
            stream.write_all(&buf[..n])?;
            stats.echoed(n);
        }
    }
    finish_half_close(stream)
}

/// What a connection is served with, taken from the config once (the
/// blocking styles and tasks).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Serving {
    pub buffer_size: usize,
    pub work: Duration,
    /// `--idle-timeout`.
    pub idle: Option<Duration>,
}

impl Serving {
    pub(crate) fn of(config: &Config) -> Serving {
        Serving {
            buffer_size: config.buffer_size,
            work: config.work(),
            idle: config.idle_timeout,
        }
    }

    /// Serves one connection to its end, counting how it ended: a read or
    /// write that waited out `--idle-timeout` is an idle close, any other
    /// error a connection error. The socket's own timeouts do the waiting
    /// ([`BlockingStream`]), so nothing else runs for it.
    pub(crate) fn echo<S: EchoStream + BlockingStream>(
        &self,
        stream: &mut S,
        stats: &Stats,
    ) -> Ending {
        if let Some(limit) = self.idle
            && stream.set_idle_timeout(limit).is_err()
        {
            stats.conn_error();
            return Ending::Error;
        }
        match echo_blocking(stream, self.buffer_size, self.work, stats) {
            Ok(()) => Ending::Closed,
            Err(e) if self.idle.is_some() && is_timeout(&e) => {
                stats.idle_closed();
                Ending::Idle
            }
            Err(_) => {
                stats.conn_error();
                Ending::Error
            }
        }
    }
}

/// How a blocking connection ended (counted already).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ending {
    Closed,
    Idle,
    Error,
}

fn read_retry<R: Read>(r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match r.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

fn finish_half_close<S: EchoStream>(stream: &S) -> io::Result<()> {
    match stream.shutdown_write() {
        // The peer may have closed completely already: nothing left to tell it.
        Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(()),
        other => other,
    }
}

/// What one [`EchoConn::drive`] call achieved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Drive {
    /// Waiting for the socket (read or write would block); nothing was done.
    Idle,
    /// Did some work, now waiting for the socket.
    Progressed,
    /// Stopped at the budget with more possibly ready: call again soon.
    Budget,
    /// The peer half-closed and everything was sent back: close it.
    Done,
}

/// True when the kernel holds bytes from the peer not read yet (FIONREAD);
/// false when it cannot tell (then only the clock decides).
fn has_unread(fd: RawFd) -> bool {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int through the pointer, which points to
    // `n`; `fd` is the connection's socket, open while its owner lives.
    let rc = unsafe { libc::ioctl(fd, libc::FIONREAD, &mut n) };
    rc == 0 && n > 0
}

/// One connection of an event-driven style.
pub struct EchoConn<S> {
    pub stream: S,
    /// Bytes read but not yet taken by the peer; allocated on first need.
    pending: Vec<u8>,
    sent: usize,
    read_closed: bool,
    /// With `--idle-timeout`: when a byte last moved (see
    /// [`crate::runtime::idle`]); `None` when idle timeouts are off, so the
    /// benchmarks pay no clock read.
    last_active: Option<Instant>,
    serial: u64,
    _guard: ConnGuard,
}

impl<S: EchoStream> EchoConn<S> {
    /// A connection to serve; `track_idle` stamps its activity for
    /// `--idle-timeout`.
    pub fn new(stream: S, guard: ConnGuard, track_idle: bool) -> Self {
        EchoConn {
            stream,
            pending: Vec::new(),
            sent: 0,
            read_closed: false,
            last_active: track_idle.then(Instant::now),
            serial: crate::runtime::idle::next_serial(),
            _guard: guard,
        }
    }

    /// When a byte last moved (or the connection opened), if tracked.
    pub fn last_active(&self) -> Option<Instant> {
        self.last_active
    }

    /// As [`EchoConn::last_active`], but now while bytes the peer sent wait
    /// unread: what an idle check asks, since the loop may have been held up
    /// (descheduled) between its wait and the check.
    pub fn active_as_of(&self) -> Option<Instant> {
        let at = self.last_active?;
        Some(if has_unread(self.stream.as_raw_fd()) {
            Instant::now()
        } else {
            at
        })
    }

    /// This connection's number, unique in the process.
    pub fn serial(&self) -> u64 {
        self.serial
    }

    /// True once the connection has been idle for `limit` at `now`, with
    /// no byte from the peer waiting unread.
    pub fn idle_for(&self, limit: Duration, now: Instant) -> bool {
        self.last_active.is_some_and(|at| now >= at + limit) && !has_unread(self.stream.as_raw_fd())
    }

    /// Moves bytes until the socket would block, the peer is done, or
    /// `budget` reads were made (so one busy peer cannot hold the loop).
    /// `scratch` is the loop's shared read buffer; its length bounds what one
    /// connection may hold.
    pub fn drive(
        &mut self,
        scratch: &mut [u8],
        work: Duration,
        stats: &Stats,
        budget: usize,
    ) -> io::Result<Drive> {
        let drive = self.drive_inner(scratch, work, stats, budget);
        if let Some(at) = self.last_active.as_mut()
            && !matches!(drive, Ok(Drive::Idle))
        {
            *at = Instant::now();
        }
        drive
    }

    fn drive_inner(
        &mut self,
        scratch: &mut [u8],
        work: Duration,
        stats: &Stats,
        budget: usize,
    ) -> io::Result<Drive> {
        let mut progressed = false;
        let waiting = |progressed| {
            if progressed {
                Drive::Progressed
            } else {
                Drive::Idle
            }
        };
        for _ in 0..budget {
            // Flush what the peer has not taken yet; while anything is pending
            // nothing more is read (back-pressure instead of buffering).
            while self.sent < self.pending.len() {
                match self.stream.write(&self.pending[self.sent..]) {
                    Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                    Ok(n) => {
                        self.sent += n;
                        stats.echoed(n);
                        progressed = true;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        return Ok(waiting(progressed));
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            self.pending.clear();
            self.sent = 0;
            if self.read_closed {
                finish_half_close(&self.stream)?;
                return Ok(Drive::Done);
            }
            match self.stream.read(scratch) {
                Ok(0) => {
                    self.read_closed = true;
                    progressed = true;
                }
                Ok(n) => {
                    progressed = true;
                    burn(work);
                    self.echo_chunk(&scratch[..n], stats)?;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(waiting(progressed)),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(Drive::Budget)
    }

    /// Writes a chunk straight from the scratch buffer; keeps the remainder
    /// if the peer's window is full.
    fn echo_chunk(&mut self, mut chunk: &[u8], stats: &Stats) -> io::Result<()> {
        while !chunk.is_empty() {
            match self.stream.write(chunk) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    stats.echoed(n);
                    chunk = &chunk[n..];
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.pending.extend_from_slice(chunk);
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// True while bytes wait for the peer to read.
    pub fn has_pending(&self) -> bool {
        self.sent < self.pending.len()
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::net::{TcpListener, TcpStream};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use super::EchoConn;
    use crate::runtime::stats::Stats;

    /// A connection whose bytes wait unread in the kernel is not idle, however
    /// long ago the loop last stamped it: a loop held up between its wait
    /// and its idle check (a descheduled thread on a busy machine) would
    /// otherwise close a peer that is talking to it.
    #[test]
    fn a_connection_with_unread_bytes_is_never_idle() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut peer = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (served, _) = listener.accept().unwrap();
        let guard = Arc::new(Stats::new()).admit(None).expect("admitted");
        let conn = EchoConn::new(served, guard, true);
        // A limit of zero: only unread bytes keep it from being idle.
        assert!(conn.idle_for(Duration::ZERO, Instant::now()));
        peer.write_all(b"x").unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while conn.idle_for(Duration::ZERO, Instant::now()) {
            assert!(
                Instant::now() < deadline,
                "the byte sent 5 s ago never counted as activity"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        let later = Instant::now() + Duration::from_secs(3600);
        assert!(!conn.idle_for(Duration::from_secs(1), later));
        assert!(
            conn.active_as_of()
                .is_some_and(|at| at + Duration::from_secs(1) > Instant::now())
        );
    }
}
