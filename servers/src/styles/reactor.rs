//! `reactor`: I/O multiplexing with an edge-triggered epoll event loop (mio).
//!
//! One thread waits in `epoll_wait` and the kernel tells it which sockets
//! are ready; the loop dispatches each readiness event to the callbacks of
//! that connection's handler (`on_readable`, `on_writable`), as Nginx,
//! libevent and node.js do. The handler's state lives in a slab keyed by the
//! event's `Token`. Readiness is edge-triggered, so a handler drains its
//! socket until `WouldBlock`; a handler that hits its budget first is queued
//! to run again before the next wait, so one busy peer cannot hold the loop.
//! What it still cannot do is preempt: one slow callback (see `--work-us`)
//! delays every connection on its loop.
//!
//! `--workers N` runs N loops, each on its own thread and epoll instance,
//! all registered on the one shared listener; whichever loop accepts a
//! connection serves it for its whole life.

use std::collections::VecDeque;
use std::io;
use std::time::{Duration, Instant};

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use slab::Slab;

use crate::runtime::accept::{AcceptErrors, AcceptReady, Mode, admit};
use crate::runtime::echo::{Drive, EchoConn};
use crate::runtime::idle::{Deadlines, wait_for};
use crate::runtime::poller;
use crate::runtime::server::{Ctx, Runner, ServerError, make_loops, run_loops, spawn_runner};

const LISTENER: Token = Token(usize::MAX - 1);
const WAKER: Token = Token(usize::MAX - 2);
/// Reads per connection per dispatch before it goes to the back of the queue.
const BUDGET: usize = 16;

pub(crate) fn start(ctx: Ctx, listener: std::net::TcpListener) -> Result<Runner, ServerError> {
    listener
        .set_nonblocking(true)
        .map_err(ServerError::io("making the listener non-blocking"))?;
    let reactors = make_loops(&ctx, listener, |copy| {
        Reactor::new(ctx.clone(), TcpListener::from_std(copy))
            .map_err(ServerError::io("setting up an epoll event loop"))
    })?;
    spawn_runner(&ctx.clone(), move || {
        run_loops(&ctx, reactors, |mut r| r.run(), "waiting for events")
    })
}

/// Runs one event loop on the calling thread until shutdown (or until the
/// process is killed): the whole life of a `prefork` worker process. Accept
/// errors are logged under `ctx`'s style.
pub(crate) fn run_on_this_thread(ctx: Ctx, listener: std::net::TcpListener) -> io::Result<()> {
    listener.set_nonblocking(true)?;
    Reactor::new(ctx, TcpListener::from_std(listener))?.run()
}

/// A connection's handler: the callbacks the loop dispatches readiness to.
struct Connection {
    echo: EchoConn<TcpStream>,
    /// In the run-again queue already.
    queued: bool,
}

/// What a callback tells the loop.
enum Next {
    /// Wait for the next readiness event.
    Wait,
    /// Budget used up with more to do: run again before the next wait.
    Again,
    /// Deregister and close.
    Close,
}

impl Connection {
    fn on_readable(&mut self, lp: &mut LoopState) -> Next {
        self.drive(lp)
    }

    fn on_writable(&mut self, lp: &mut LoopState) -> Next {
        // A writable edge means room freed up: flush, and then read again what
        // back-pressure left in the socket (no new readable edge will come).
        self.drive(lp)
    }

    fn drive(&mut self, lp: &mut LoopState) -> Next {
        match self
            .echo
            .drive(&mut lp.scratch, lp.work, &lp.ctx.stats, BUDGET)
        {
            Ok(Drive::Idle | Drive::Progressed) => Next::Wait,
            Ok(Drive::Budget) => Next::Again,
            Ok(Drive::Done) => Next::Close,
            Err(_) => {
                lp.ctx.stats.conn_error();
                Next::Close
            }
        }
    }
}

/// What every handler of one loop shares.
struct LoopState {
    ctx: Ctx,
    scratch: Vec<u8>,
    work: Duration,
}

struct Reactor {
    poll: Poll,
    listener: TcpListener,
    conns: Slab<Connection>,
    again: VecDeque<Token>,
    accept_errors: AcceptErrors,
    accept_paused_until: Option<Instant>,
    /// `--idle-timeout`'s deadlines, by slab key.
    idle: Option<Deadlines>,
    lp: LoopState,
}

impl Reactor {
    fn new(ctx: Ctx, mut listener: TcpListener) -> io::Result<Reactor> {
        let poll = Poll::new()?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        poller::wake_on_shutdown(&poll, WAKER, &ctx.shutdown)?;
        Ok(Reactor {
            poll,
            listener,
            conns: Slab::new(),
            again: VecDeque::new(),
            accept_errors: AcceptErrors::for_ctx(&ctx),
            accept_paused_until: None,
            idle: Deadlines::new(ctx.config.idle_timeout),
            lp: LoopState {
                scratch: vec![0u8; ctx.config.buffer_size],
                work: ctx.config.work(),
                ctx,
            },
        })
    }

    fn run(&mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(1024);
        while !self.lp.ctx.shutdown.is_stopping() {
            let timeout = if !self.again.is_empty() {
                Some(Duration::ZERO)
            } else {
                wait_for([
                    self.accept_paused_until,
                    self.idle.as_ref().and_then(Deadlines::next_due),
                ])
            };
            poller::wait(&mut self.poll, &mut events, timeout)?;
            let mut n = 0;
            for event in events.iter() {
                n += 1;
                match event.token() {
                    WAKER => {}
                    LISTENER => self.on_acceptable(),
                    // One callback per event: either one drives the whole
                    // state machine, so a second would only repeat the work.
                    token if event.is_readable() || event.is_read_closed() || event.is_error() => {
                        self.dispatch(token, Connection::on_readable)
                    }
                    token if event.is_writable() => self.dispatch(token, Connection::on_writable),
                    _ => {}
                }
            }
            self.lp.ctx.stats.woke(n);
            // Edge-triggered: after a back-off nothing re-announces the
            // connections still waiting in the backlog, so ask again.
            if self
                .accept_paused_until
                .is_some_and(|until| Instant::now() >= until)
            {
                self.on_acceptable();
            }
            for _ in 0..self.again.len() {
                if let Some(token) = self.again.pop_front() {
                    if let Some(conn) = self.conns.get_mut(token.0) {
                        conn.queued = false;
                    }
                    self.dispatch(token, Connection::drive);
                }
            }
            self.close_idle();
        }
        Ok(())
    }

    /// Closes the connections idle past `--idle-timeout`.
    fn close_idle(&mut self) {
        let Some(idle) = self.idle.as_mut() else {
            return;
        };
        let conns = &self.conns;
        let expired = idle.expire(Instant::now(), |key, serial| {
            conns
                .get(key)
                .filter(|c| c.echo.serial() == serial)
                .and_then(|c| c.echo.active_as_of())
        });
        for key in expired {
            let mut conn = self.conns.remove(key);
            let _ = self.poll.registry().deregister(&mut conn.echo.stream);
            self.lp.ctx.stats.idle_closed();
        }
    }

    fn dispatch(&mut self, token: Token, callback: fn(&mut Connection, &mut LoopState) -> Next) {
        // The handler may be gone already (closed earlier in this batch).
        let Some(conn) = self.conns.get_mut(token.0) else {
            return;
        };
        match callback(conn, &mut self.lp) {
            // Queued once at most, or a busy connection would pile up turns.
            Next::Again if !conn.queued => {
                conn.queued = true;
                self.again.push_back(token);
            }
            Next::Wait | Next::Again => {}
            Next::Close => {
                let mut conn = self.conns.remove(token.0);
                // Closing the socket deregisters it; this is for clarity.
                let _ = self.poll.registry().deregister(&mut conn.echo.stream);
            }
        }
    }

    /// The listener's callback: accept until it would block.
    fn on_acceptable(&mut self) {
        self.accept_paused_until = self.accept_ready(usize::MAX);
    }

    fn on_accepted(&mut self, stream: TcpStream) {
        let ctx = &self.lp.ctx;
        let Some((mut stream, guard)) = admit(ctx, stream, Mode::AsAccepted) else {
            return;
        };
        let entry = self.conns.vacant_entry();
        let token = Token(entry.key());
        let registered = self.poll.registry().register(
            &mut stream,
            token,
            Interest::READABLE | Interest::WRITABLE,
        );
        match registered {
            Ok(()) => {
                // epoll reports data that arrived before registration as
                // a first event, so nothing is lost by waiting for it.
                let echo = EchoConn::new(stream, guard, self.idle.is_some());
                if let (Some(idle), Some(since)) = (self.idle.as_mut(), echo.last_active()) {
                    idle.watch(token.0, echo.serial(), since);
                }
                entry.insert(Connection {
                    echo,
                    queued: false,
                });
            }
            Err(_) => ctx.stats.conn_failed(),
        }
    }
}

impl AcceptReady for Reactor {
    type Stream = TcpStream;

    fn try_accept(&mut self) -> io::Result<TcpStream> {
        self.listener.accept().map(|(stream, _)| stream)
    }

    fn accept_errors(&mut self) -> &mut AcceptErrors {
        &mut self.accept_errors
    }

    fn accepted(&mut self, stream: TcpStream) {
        self.on_accepted(stream);
    }
}
