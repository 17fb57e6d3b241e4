//! `epoll`: the reference, the same echo service straight on the system
//! calls: `epoll_create1`, `epoll_ctl`, `epoll_wait`, `accept4`, `read`,
//! `write`, no framework in between, as a hand-written C server would be.
//!
//! It is the in-project stand-in for what the machine can do, so every
//! other style can be read as a ratio to it. It is `reactor` without mio:
//! one edge-triggered loop per `--workers` thread on the shared listener,
//! connections in a table indexed by their fd (the kernel hands out the
//! lowest free fd, so the table stays dense), an eventfd to wake the loop
//! for shutdown. The echo itself is the shared state machine of
//! [`crate::runtime::echo`], over the sockets' plain `read`/`write`, so the styles
//! differ only in how they wait.
//!
//! Lean as a C server: one `read` and one `write` per message plus a share
//! of `epoll_wait`. A read that comes back shorter than the buffer took all
//! the kernel had, and any byte that arrives later raises a new edge, so the
//! loop does not read again to find EAGAIN (what tokio does on Linux; mio's
//! portable rule, which `reactor` keeps, is to read until WouldBlock). That
//! read was a third of the calls: 3.06–3.13 per message before, 2.06–2.11
//! after, as many as the C server in `benches/c/epoll_echo.c`
//! (`benches/c/syscalls_per_message.sh`, 20 and 1,000 connections, no
//! quota). Two reads do not end at a short read: one that filled the buffer
//! (more may wait) and any after the peer hung up (EPOLLRDHUP: the EOF
//! behind the data raises no further edge); `tests/conformance/edges.rs`
//! holds every style to both.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::time::Instant;

use crate::runtime::accept::{AcceptErrors, AcceptReady, Mode, admit};
use crate::runtime::echo::{Drive, EchoConn, EchoStream};
use crate::runtime::idle::{Deadlines, wait_for, poll_millis};
use crate::runtime::server::{Ctx, Runner, ServerError, make_loops, run_loops, spawn_runner};

/// Reads per connection per turn before it goes to the back of the queue.
const BUDGET: usize = 16;
const MAX_EVENTS: usize = 1024;
/// `epoll_event.u64` of the listener and of the shutdown eventfd; every
/// other value is a connection's fd.
const LISTENER: u64 = u64::MAX;
const WAKE: u64 = u64::MAX - 1;

pub(crate) fn start(ctx: Ctx, listener: TcpListener) -> Result<Runner, ServerError> {
    listener
        .set_nonblocking(true)
        .map_err(ServerError::io("making the listener non-blocking"))?;
    let loops = make_loops(&ctx, listener, |copy| {
        Loop::new(ctx.clone(), copy).map_err(ServerError::io("setting up epoll"))
    })?;
    spawn_runner(&ctx.clone(), move || {
        run_loops(&ctx, loops, |mut lp| lp.run(), "waiting in epoll_wait")
    })
}

fn cvt(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// A connection's socket as the loop reads it: reads answer WouldBlock
/// without a system call once a short read drained the socket, until the
/// next edge says there is more.
struct Edge {
    stream: TcpStream,
    /// Bytes may be waiting: an edge came and no read since came up short.
    readable: bool,
    /// The peer hung up: read on to the EOF, short reads or not.
    hung_up: bool,
}

impl Edge {
    /// Takes in what one `epoll_wait` event says of the socket.
    fn on_event(&mut self, events: u32) {
        let ended = (libc::EPOLLRDHUP | libc::EPOLLHUP | libc::EPOLLERR) as u32;
        if events & (libc::EPOLLIN as u32 | ended) != 0 {
            self.readable = true;
        }
        if events & ended != 0 {
            self.hung_up = true;
        }
    }
}

impl Read for Edge {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if !self.readable {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let read = self.stream.read(buf);
        match &read {
            Ok(n) if *n > 0 && *n < buf.len() && !self.hung_up => self.readable = false,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.readable = false,
            _ => {}
        }
        read
    }
}

impl Write for Edge {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.stream.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl AsRawFd for Edge {
    fn as_raw_fd(&self) -> RawFd {
        self.stream.as_raw_fd()
    }
}

impl EchoStream for Edge {
    fn shutdown_write(&self) -> io::Result<()> {
        self.stream.shutdown(Shutdown::Write)
    }
}

struct Conn {
    echo: EchoConn<Edge>,
    /// In the run-again queue already.
    queued: bool,
}

struct Loop {
    ctx: Ctx,
    epfd: OwnedFd,
    wake: Arc<OwnedFd>,
    listener: TcpListener,
    /// Indexed by fd.
    conns: Vec<Option<Conn>>,
    again: Vec<RawFd>,
    scratch: Vec<u8>,
    accept_errors: AcceptErrors,
    accept_paused_until: Option<Instant>,
    /// `--idle-timeout`'s deadlines, by descriptor.
    idle: Option<Deadlines>,
}

impl Loop {
    fn new(ctx: Ctx, listener: TcpListener) -> io::Result<Loop> {
        // SAFETY: plain system calls; each returned fd is checked and then
        // owned by exactly one OwnedFd.
        let epfd = unsafe { OwnedFd::from_raw_fd(cvt(libc::epoll_create1(libc::EPOLL_CLOEXEC))?) };
        // SAFETY: as above.
        let wake = unsafe {
            OwnedFd::from_raw_fd(cvt(libc::eventfd(
                0,
                libc::EFD_CLOEXEC | libc::EFD_NONBLOCK,
            ))?)
        };
        let lp = Loop {
            scratch: vec![0u8; ctx.config.buffer_size],
            accept_errors: AcceptErrors::for_ctx(&ctx),
            accept_paused_until: None,
            idle: Deadlines::new(ctx.config.idle_timeout),
            ctx,
            epfd,
            wake: Arc::new(wake),
            listener,
            conns: Vec::new(),
            again: Vec::new(),
        };
        lp.add(
            lp.listener.as_raw_fd(),
            libc::EPOLLIN | libc::EPOLLET,
            LISTENER,
        )?;
        lp.add(lp.wake.as_raw_fd(), libc::EPOLLIN, WAKE)?;
        let wake = Arc::clone(&lp.wake);
        lp.ctx.shutdown.on_trigger(move || {
            let one = 1u64.to_ne_bytes();
            // SAFETY: writes 8 bytes from a live buffer to the eventfd, which
            // the Arc keeps open. A failed wake leaves the loop to notice at
            // its next event.
            let _ = unsafe { libc::write(wake.as_raw_fd(), one.as_ptr().cast(), one.len()) };
        });
        Ok(lp)
    }

    fn add(&self, fd: RawFd, events: libc::c_int, data: u64) -> io::Result<()> {
        let mut event = libc::epoll_event {
            events: events as u32,
            u64: data,
        };
        // SAFETY: `event` is a valid epoll_event for the duration of the call.
        cvt(unsafe { libc::epoll_ctl(self.epfd.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut event) })
            .map(drop)
    }

    fn run(&mut self) -> io::Result<()> {
        let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; MAX_EVENTS];
        while !self.ctx.shutdown.is_stopping() {
            let timeout_ms = if !self.again.is_empty() {
                0
            } else {
                poll_millis(wait_for([
                    self.accept_paused_until,
                    self.idle.as_ref().and_then(Deadlines::next_due),
                ]))
            };
            // SAFETY: the buffer holds MAX_EVENTS events and outlives the call.
            let n = unsafe {
                libc::epoll_wait(
                    self.epfd.as_raw_fd(),
                    events.as_mut_ptr(),
                    MAX_EVENTS as libc::c_int,
                    timeout_ms,
                )
            };
            let n = match cvt(n) {
                Ok(n) => n as usize,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            self.ctx.stats.woke(n);
            for event in &events[..n] {
                match event.u64 {
                    WAKE => {}
                    LISTENER => self.accept_all(),
                    fd => self.serve(fd as RawFd, event.events),
                }
            }
            if self
                .accept_paused_until
                .is_some_and(|t| Instant::now() >= t)
            {
                self.accept_all();
            }
            for fd in std::mem::take(&mut self.again) {
                if let Some(Some(conn)) = self.conns.get_mut(fd as usize) {
                    conn.queued = false;
                    // Still readable: it stopped at the budget, not at a short read.
                    self.serve(fd, 0);
                }
            }
            self.close_idle();
        }
        // Dropping the table closes every connection.
        self.conns.clear();
        Ok(())
    }

    /// Closes the connections idle past `--idle-timeout` (closing the
    /// descriptor also takes it out of the epoll set).
    fn close_idle(&mut self) {
        let Some(idle) = self.idle.as_mut() else {
            return;
        };
        let conns = &self.conns;
        let expired = idle.expire(Instant::now(), |fd, serial| {
            conns
                .get(fd)
                .and_then(Option::as_ref)
                .filter(|c| c.echo.serial() == serial)
                .and_then(|c| c.echo.active_as_of())
        });
        for fd in expired {
            self.conns[fd] = None;
            self.ctx.stats.idle_closed();
        }
    }

    /// Moves what `fd` has to move; `events` is what `epoll_wait` reported
    /// for it (0 on a turn from the run-again queue).
    fn serve(&mut self, fd: RawFd, events: u32) {
        let Some(Some(conn)) = self.conns.get_mut(fd as usize) else {
            return;
        };
        conn.echo.stream.on_event(events);
        let work = self.ctx.config.work();
        match conn
            .echo
            .drive(&mut self.scratch, work, &self.ctx.stats, BUDGET)
        {
            Ok(Drive::Idle | Drive::Progressed) => {}
            Ok(Drive::Budget) => {
                if !conn.queued {
                    conn.queued = true;
                    self.again.push(fd);
                }
            }
            Ok(Drive::Done) => self.conns[fd as usize] = None,
            Err(_) => {
                self.ctx.stats.conn_error();
                // Closing the fd removes it from the epoll set.
                self.conns[fd as usize] = None;
            }
        }
    }

    fn accept_all(&mut self) {
        self.accept_paused_until = self.accept_ready(usize::MAX);
    }

    fn on_accepted(&mut self, stream: TcpStream) {
        let ctx = &self.ctx;
        let Some((stream, guard)) = admit(ctx, stream, Mode::AsAccepted) else {
            return;
        };
        let fd = stream.as_raw_fd();
        let events = libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLRDHUP | libc::EPOLLET;
        if self.add(fd, events, fd as u64).is_err() {
            ctx.stats.conn_failed();
            return;
        }
        let slot = fd as usize;
        if self.conns.len() <= slot {
            self.conns.resize_with(slot + 1, || None);
        }
        // Data that arrived before registration is reported as a first
        // edge, so nothing is lost by waiting for it.
        let edge = Edge {
            stream,
            readable: false,
            hung_up: false,
        };
        let echo = EchoConn::new(edge, guard, self.idle.is_some());
        if let (Some(idle), Some(since)) = (self.idle.as_mut(), echo.last_active()) {
            idle.watch(slot, echo.serial(), since);
        }
        self.conns[slot] = Some(Conn {
            echo,
            queued: false,
        });
    }
}

impl AcceptReady for Loop {
    type Stream = TcpStream;

    fn try_accept(&mut self) -> io::Result<TcpStream> {
        // SAFETY: null address arguments are allowed; the returned fd is
        // checked and then owned by one TcpStream.
        let fd = cvt(unsafe {
            libc::accept4(
                self.listener.as_raw_fd(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            )
        })?;
        // SAFETY: a fresh fd from accept4, owned by nothing else.
        Ok(unsafe { TcpStream::from_raw_fd(fd) })
    }

    fn accept_errors(&mut self) -> &mut AcceptErrors {
        &mut self.accept_errors
    }

    fn accepted(&mut self, stream: TcpStream) {
        self.on_accepted(stream);
    }
}
