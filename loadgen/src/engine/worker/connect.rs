//! The connect phase of a worker: its connections opened in order, idle
//! ones first, paced by `--connect-rate` or by a cap on pending connects;
//! each completion recorded (connect latency), each failure counted by kind.

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Interest, Token};
use socket2::{Domain, Protocol, Socket, Type};

use crate::engine::worker::{Conn, State, Worker};
use crate::results::record;

/// Pending connects per worker when no --connect-rate is given: enough to
/// open thousands per second, few enough not to flood the server's backlog
/// with our own burst and measure that instead.
const MAX_PENDING_CONNECTS: usize = 256;

impl Worker<'_> {
    pub(super) fn open_due(&mut self, now: Instant) {
        while let Some(&id) = self.to_open.front() {
            if self.fd_exhausted {
                break;
            }
            match self.spec.connect_rate {
                Some(rate) => {
                    let at = self.began + Duration::from_secs_f64(id as f64 / rate);
                    if at > now {
                        return;
                    }
                }
                None if self.pending_connects >= MAX_PENDING_CONNECTS => return,
                None => {}
            }
            self.to_open.pop_front();
            self.open(id, now);
        }
        if self.fd_exhausted && !self.to_open.is_empty() {
            // Connections never attempted: counted, reported, not waited for.
            self.out.errors.fd_limit += self.to_open.len() as u64;
            self.to_open.clear();
        }
    }

    /// Starts connecting connection `id`; returns its slab key.
    pub(super) fn open(&mut self, id: u32, now: Instant) -> Option<usize> {
        self.out.attempted += 1;
        let spec = self.spec;
        let target: SocketAddr = spec.addr;
        let socket = match Socket::new(
            Domain::for_address(target),
            Type::STREAM,
            Some(Protocol::TCP),
        ) {
            Ok(s) => s,
            Err(e) => {
                self.connect_failed(&e);
                return None;
            }
        };
        let setup = socket
            .set_nonblocking(true)
            .and_then(|()| socket.set_tcp_nodelay(true));
        if let Err(e) = setup {
            self.connect_failed(&e);
            return None;
        }
        if !spec.source_ips.is_empty() {
            let ip = spec.source_ips[id as usize % spec.source_ips.len()];
            if let Err(e) = socket.bind(&SocketAddr::new(ip, 0).into()) {
                self.connect_failed(&e);
                return None;
            }
        }
        self.syscalls += 1;
        match socket.connect(&target.into()) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
            Err(e) => {
                self.connect_failed(&e);
                return None;
            }
        }
        let mut stream = TcpStream::from_std(socket.into());
        let entry = self.conns.vacant_entry();
        let key = entry.key();
        if let Err(e) = self.poll.registry().register(
            &mut stream,
            Token(key),
            Interest::READABLE | Interest::WRITABLE,
        ) {
            self.connect_failed(&e);
            return None;
        }
        let active = (id as usize).checked_sub(spec.idle);
        self.active_conns += usize::from(active.is_some());
        entry.insert(Conn {
            id,
            active,
            stream,
            state: State::Connecting,
            connect_started: now,
            established: now,
            asked: None,
            replied: false,
            sent: 0,
            recv: 0,
            due: 0,
            inflight: VecDeque::new(),
            first_due: now,
            completed: 0,
            last_completion: None,
            longest_stall: Duration::ZERO,
        });
        self.pending_connects += 1;
        Some(key)
    }

    fn connect_failed(&mut self, e: &io::Error) {
        match e.raw_os_error() {
            Some(libc::EMFILE | libc::ENFILE) => {
                self.out.errors.fd_limit += 1;
                if !self.fd_exhausted {
                    self.fd_exhausted = true;
                    note!(
                        "loadgen: out of file descriptors after {} connections (open-files limit {}): \
                         raise `ulimit -n` or ask for fewer --conns/--idle",
                        self.conns.len(),
                        nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
                            .map(|(s, _)| s)
                            .unwrap_or(0)
                    );
                }
            }
            Some(libc::ECONNREFUSED) => self.out.errors.refused += 1,
            Some(libc::ETIMEDOUT) => self.out.errors.connect_timeout += 1,
            Some(libc::EADDRNOTAVAIL | libc::EADDRINUSE) => self.out.errors.addr_unavailable += 1,
            Some(libc::ECONNRESET | libc::EPIPE | libc::ECONNABORTED) => self.out.errors.reset += 1,
            _ => self.out.errors.other += 1,
        }
    }

    pub(super) fn on_connect_ready(&mut self, key: usize, now: Instant) {
        let conn = &mut self.conns[key];
        let outcome = match conn.stream.take_error() {
            Ok(Some(e)) | Err(e) => Err(e),
            Ok(None) => match conn.stream.peer_addr() {
                Ok(_) => Ok(()),
                // Not connected yet: a spurious wake-up.
                Err(e) if e.kind() == io::ErrorKind::NotConnected => return,
                Err(e) => Err(e),
            },
        };
        self.pending_connects -= 1;
        match outcome {
            Ok(()) => {
                conn.state = State::Open;
                conn.established = now;
                record(
                    &mut self.out.histograms.connect.0,
                    now - conn.connect_started,
                );
                self.out.established += 1;
                self.control.established.fetch_add(1, Relaxed);
                if let Some(&start) = self.control.start.get() {
                    // A late connect (another worker was faster): join in.
                    self.start_conn(key, start);
                }
            }
            Err(e) => {
                self.remove(key);
                self.connect_failed(&e);
            }
        }
    }
}
