//! `poll`: level-triggered poll(2) over one vector of `pollfd`, scanned in
//! full on every wake-up: the older synchronous I/O multiplexing
//! (select/poll) that epoll replaced.
//!
//! Like the reactor, one thread sleeps until the kernel says some socket is
//! ready; unlike it, every call hands the kernel the whole list of sockets
//! and gets the whole list back, so each wake-up costs O(connections) in the
//! kernel and again in the loop that looks for the ready ones, even when a
//! single socket spoke. At 10,000 connections that is the difference the
//! comparison shows against `reactor`. Readiness is level-triggered, so a
//! connection that hit its read budget is simply reported again.

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use crate::runtime::accept::{AcceptErrors, AcceptReady, Mode, admit};
use crate::runtime::echo::{Drive, EchoConn};
use crate::runtime::idle::{poll_millis, wait_for};
use crate::runtime::server::{Ctx, Runner, ServerError, spawn_runner};

/// Reads per connection per wake-up.
const BUDGET: usize = 16;
/// Slots of the waker and the listener at the front of the vector.
const WAKER: usize = 0;
const LISTENER: usize = 1;

pub(crate) fn start(ctx: Ctx, listener: TcpListener) -> Result<Runner, ServerError> {
    listener
        .set_nonblocking(true)
        .map_err(ServerError::io("making the listener non-blocking"))?;
    // A socket pair wakes the poll for shutdown: one byte on the other end.
    let (wake_rx, wake_tx) =
        UnixStream::pair().map_err(ServerError::io("creating the shutdown waker"))?;
    wake_rx
        .set_nonblocking(true)
        .map_err(ServerError::io("making the shutdown waker non-blocking"))?;
    wake_tx
        .set_nonblocking(true)
        .map_err(ServerError::io("making the shutdown waker non-blocking"))?;
    ctx.shutdown.on_trigger(move || {
        // A full buffer means a wake-up is already pending.
        let _ = (&wake_tx).write(&[1]);
    });
    spawn_runner(&ctx.clone(), move || {
        Loop::new(ctx, &listener, wake_rx)
            .run()
            .map_err(ServerError::io("waiting in poll(2)"))
    })
}

struct Loop<'a> {
    ctx: Ctx,
    listener: &'a TcpListener,
    waker: UnixStream,
    /// `fds[i + 2]` belongs to `conns[i]`.
    fds: Vec<libc::pollfd>,
    conns: Vec<EchoConn<TcpStream>>,
    scratch: Vec<u8>,
    errors: AcceptErrors,
    accept_paused_until: Option<Instant>,
    /// `--idle-timeout`, and when the least recently active connection
    /// reaches it (poll(2) sleeps no longer).
    idle: Option<Duration>,
    next_idle_check: Option<Instant>,
}

fn pollfd(fd: i32, events: i16) -> libc::pollfd {
    libc::pollfd {
        fd,
        events,
        revents: 0,
    }
}

impl<'a> Loop<'a> {
    fn new(ctx: Ctx, listener: &'a TcpListener, waker: UnixStream) -> Self {
        let fds = vec![
            pollfd(waker.as_raw_fd(), libc::POLLIN),
            pollfd(listener.as_raw_fd(), libc::POLLIN),
        ];
        Loop {
            errors: AcceptErrors::for_ctx(&ctx),
            scratch: vec![0u8; ctx.config.buffer_size],
            idle: ctx.config.idle_timeout,
            next_idle_check: None,
            ctx,
            listener,
            waker,
            fds,
            conns: Vec::new(),
            accept_paused_until: None,
        }
    }

    fn run(&mut self) -> io::Result<()> {
        while !self.ctx.shutdown.is_stopping() {
            let timeout = poll_millis(wait_for([self.accept_paused_until, self.next_idle_check]));
            // SAFETY: `fds` is a live, initialised vector of pollfd and its
            // length is passed with it; poll(2) only writes the revents
            // fields within it.
            let ready = unsafe {
                libc::poll(
                    self.fds.as_mut_ptr(),
                    self.fds.len() as libc::nfds_t,
                    timeout,
                )
            };
            if ready < 0 {
                let err = io::Error::last_os_error();
                if err.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(err);
            }
            self.ctx.stats.woke(ready as usize);
            if self.fds[WAKER].revents != 0 {
                let mut buf = [0u8; 64];
                while matches!((&self.waker).read(&mut buf), Ok(n) if n > 0) {}
                continue;
            }
            if self
                .accept_paused_until
                .is_some_and(|until| Instant::now() >= until)
            {
                self.accept_paused_until = None;
                self.fds[LISTENER].events = libc::POLLIN;
            }
            let listener_ready = self.fds[LISTENER].revents != 0;
            // The full scan: every slot is looked at, ready or not.
            let mut i = self.conns.len();
            while i > 0 {
                i -= 1;
                if self.fds[i + 2].revents != 0 {
                    self.serve(i);
                }
            }
            if listener_ready {
                self.accept_all();
            }
            if self.next_idle_check.is_some_and(|t| Instant::now() >= t) {
                self.close_idle();
            }
        }
        Ok(())
    }

    /// Closes the connections idle past `--idle-timeout`, and notes when
    /// the next one will be: poll(2) visits every connection on every call,
    /// so a scan of the same array is in keeping with the style.
    fn close_idle(&mut self) {
        let Some(limit) = self.idle else {
            return;
        };
        let now = Instant::now();
        let mut oldest: Option<Instant> = None;
        let mut i = self.conns.len();
        while i > 0 {
            i -= 1;
            if self.conns[i].idle_for(limit, now) {
                self.remove(i);
                self.ctx.stats.idle_closed();
            } else if let Some(at) = self.conns[i].last_active() {
                oldest = Some(oldest.map_or(at, |o| o.min(at)));
            }
        }
        self.next_idle_check = oldest.map(|at| at + limit);
    }

    fn serve(&mut self, i: usize) {
        let work = self.ctx.config.work();
        match self.conns[i].drive(&mut self.scratch, work, &self.ctx.stats, BUDGET) {
            Ok(Drive::Done) => self.remove(i),
            Ok(_) => {
                // Level-triggered: wait for room to write while anything is
                // pending, for bytes to read otherwise.
                self.fds[i + 2].events = if self.conns[i].has_pending() {
                    libc::POLLOUT
                } else {
                    libc::POLLIN
                };
            }
            Err(_) => {
                self.ctx.stats.conn_error();
                self.remove(i);
            }
        }
    }

    fn remove(&mut self, i: usize) {
        self.conns.swap_remove(i);
        self.fds.swap_remove(i + 2);
    }

    fn accept_all(&mut self) {
        self.accept_paused_until = self.accept_ready(usize::MAX);
        if self.accept_paused_until.is_some() {
            // Stop watching the listener until the back-off ends
            // (level-triggered, it would report ready at once).
            self.fds[LISTENER].events = 0;
        }
    }
}

impl AcceptReady for Loop<'_> {
    type Stream = TcpStream;

    fn try_accept(&mut self) -> io::Result<TcpStream> {
        self.listener.accept().map(|(stream, _)| stream)
    }

    fn accept_errors(&mut self) -> &mut AcceptErrors {
        &mut self.errors
    }

    fn accepted(&mut self, stream: TcpStream) {
        if let Some((stream, guard)) = admit(&self.ctx, stream, Mode::NonBlocking) {
            self.fds.push(pollfd(stream.as_raw_fd(), libc::POLLIN));
            let conn = EchoConn::new(stream, guard, self.idle.is_some());
            if let (Some(limit), Some(since)) = (self.idle, conn.last_active()) {
                let due = since + limit;
                self.next_idle_check = Some(self.next_idle_check.map_or(due, |t| t.min(due)));
            }
            self.conns.push(conn);
        }
    }
}
