//! `process`: one forked process per connection (inetd, classic Apache).
//!
//! The parent only accepts: for each connection it forks a child that
//! serves it with the blocking echo loop and exits when the peer is done.
//! Each connection gets a whole address space of its own, so a crash or a
//! CPU-heavy client touches nobody else, and the kernel schedules the
//! children like threads. The price is a `fork` per connection (page tables
//! copied, copy-on-write faults after) and a process per client.
//!
//! The parent waits on the listener and on one pidfd per child in one epoll
//! loop (mio): a pidfd becomes readable when its child exits, and the child
//! is reaped then, which is when the connection stops counting as open
//! (`--max-conns` counts children). It reaps only its own children, by pid,
//! so it never steals another part of the process's exit statuses.
//!
//! Counters a child makes (bytes echoed, errors) reach the parent's summary
//! through the shared mapping [`crate::runtime::stats`] keeps them in. Memory per
//! connection is the children's: `loadgen` sums the proportional set size
//! (PSS) over the process tree, so pages the children share copy-on-write
//! with the parent are counted once, not once per child.

use std::io;
use std::net::TcpStream as StdStream;
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token};
use slab::Slab;

use crate::runtime::accept::{AcceptErrors, AcceptReady, Mode, admit};
use crate::runtime::echo::{Ending, Serving};
use crate::runtime::fork::{self, Child, exited_cleanly};
use crate::runtime::log::log;
use crate::runtime::poller;
use crate::runtime::server::{Ctx, Runner, ServerError, spawn_runner};
use crate::runtime::shutdown::CLOSE_BUDGET;
use crate::runtime::stats::ConnGuard;

const LISTENER: Token = Token(usize::MAX - 1);
const WAKER: Token = Token(usize::MAX - 2);
/// Connections accepted (each a fork) per turn of the loop.
const ACCEPT_BUDGET: usize = 32;

pub(crate) fn start(ctx: Ctx, listener: std::net::TcpListener) -> Result<Runner, ServerError> {
    if !ctx.stats.is_shared() {
        return Err(ServerError::Io {
            what: "setting up counters the children share",
            source: io::Error::other("no shared memory mapping could be made"),
        });
    }
    listener
        .set_nonblocking(true)
        .map_err(ServerError::io("making the listener non-blocking"))?;
    let mut listener = TcpListener::from_std(listener);
    let poll = Poll::new().map_err(ServerError::io("setting up the parent's epoll loop"))?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)
        .map_err(ServerError::io("watching the listener"))?;
    poller::wake_on_shutdown(&poll, WAKER, &ctx.shutdown)
        .map_err(ServerError::io("setting up the shutdown waker"))?;
    spawn_runner(&ctx.clone(), move || {
        let mut parent = Parent {
            accept_errors: AcceptErrors::for_ctx(&ctx),
            ctx,
            poll,
            listener,
            children: Slab::new(),
            paused_until: None,
            fork_failures: 0,
            unwatched: 0,
        };
        let result = parent.run();
        parent.stop_children();
        result.map_err(ServerError::io("waiting for connections and children"))
    })
}

/// A connection's child, and its place in the count of open connections.
struct Served {
    child: Child,
    _guard: ConnGuard,
}

struct Parent {
    ctx: Ctx,
    poll: Poll,
    listener: TcpListener,
    children: Slab<Served>,
    accept_errors: AcceptErrors,
    paused_until: Option<Instant>,
    fork_failures: u64,
    /// Children without a pidfd, found by scanning (see [`fork::Child`]).
    unwatched: usize,
}

impl Parent {
    fn run(&mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(1024);
        while !self.ctx.shutdown.is_stopping() {
            let timeout = self
                .paused_until
                .map(|until| until.saturating_duration_since(Instant::now()));
            let timeout = fork::wait_timeout(timeout, self.unwatched > 0);
            poller::wait(&mut self.poll, &mut events, timeout)?;
            for event in events.iter() {
                match event.token() {
                    WAKER => {}
                    LISTENER => self.accept_all(),
                    Token(key) => self.on_child_exit(key),
                }
            }
            // Edge-triggered: after a back-off nothing re-announces the
            // connections still in the backlog.
            if self.paused_until.is_some_and(|t| Instant::now() >= t) {
                self.accept_all();
            }
            if self.unwatched > 0 {
                let unwatched: Vec<usize> = self
                    .children
                    .iter()
                    .filter(|(_, s)| s.child.pidfd.is_none())
                    .map(|(key, _)| key)
                    .collect();
                for key in unwatched {
                    self.on_child_exit(key);
                }
            }
        }
        Ok(())
    }

    /// Accepts until the backlog is empty, or [`ACCEPT_BUDGET`] forks were
    /// made: then it comes back after the loop's next turn (a zero-length
    /// pause), so a steady stream of new connections cannot keep the parent
    /// from reaping the children that exited meanwhile.
    fn accept_all(&mut self) {
        self.paused_until = self.accept_ready(ACCEPT_BUDGET);
    }

    /// Forks the child that serves `stream`; the parent's copy of the
    /// socket is closed as soon as the child has its own.
    fn serve(&mut self, stream: StdStream) {
        let ctx = &self.ctx;
        let Some((stream, guard)) = admit(ctx, stream, Mode::AsAccepted) else {
            return;
        };
        let (stats, serving) = (Arc::clone(&ctx.stats), Serving::of(&ctx.config));
        let fd = stream.as_raw_fd();
        let spawned = fork::spawn(&[fd], move || {
            let mut stream = stream;
            // The accepted socket shares the listener's non-blocking mode.
            let ready = fork::shut_down_on_sigterm(stream.as_raw_fd())
                .and_then(|()| stream.set_nonblocking(false));
            if ready.is_err() {
                stats.conn_error();
                return 1;
            }
            // Counted in the shared counters by `echo`; the exit code tells
            // the parent whether the child ended as it should.
            match serving.echo(&mut stream, &stats) {
                Ending::Closed | Ending::Idle => 0,
                Ending::Error => 1,
            }
        });
        let child = match spawned {
            Ok(child) => child,
            Err(e) => {
                // Out of processes or memory: this connection is closed
                // (the closure, and with it the socket, was dropped).
                ctx.stats.conn_failed();
                self.fork_failures += 1;
                if self.fork_failures == 1 {
                    log!(
                        "servers[process]: cannot fork for a connection: {e}{} (counted as conn_errors)",
                        crate::runtime::limits::what_ran_out()
                    );
                }
                return;
            }
        };
        let entry = self.children.vacant_entry();
        let token = Token(entry.key());
        match child.watch(self.poll.registry(), token) {
            Ok(true) => {}
            Ok(false) => self.unwatched += 1,
            Err(e) => {
                // Without its pidfd watched the child could not be reaped in
                // time; end it now rather than leak it.
                log!("servers[process]: cannot watch a child ({e}); ending it");
                fork::stop_all(std::iter::once(&child), Duration::ZERO);
                ctx.stats.conn_failed();
                return;
            }
        }
        entry.insert(Served {
            child,
            _guard: guard,
        });
    }

    fn on_child_exit(&mut self, key: usize) {
        let Some(served) = self.children.get(key) else {
            return;
        };
        let Some(status) = served.child.try_reap() else {
            return;
        };
        let served = self.children.remove(key);
        served.child.unwatch(self.poll.registry());
        if served.child.pidfd.is_none() {
            self.unwatched -= 1;
        }
        // Exit code 1 was counted by the child itself; a signal or a panic
        // was not.
        if !exited_cleanly(&status) && !matches!(status, nix::sys::wait::WaitStatus::Exited(_, 1)) {
            self.ctx.stats.conn_error();
        }
    }

    /// SIGTERM to every child (their connections close as they exit),
    /// SIGKILL to any left after the budget; all reaped.
    fn stop_children(&mut self) {
        let killed = fork::stop_all(self.children.iter().map(|(_, s)| &s.child), CLOSE_BUDGET);
        if killed > 0 {
            log!("servers[process]: {killed} child(ren) killed after the shutdown budget");
        }
        self.children.clear();
    }
}

impl AcceptReady for Parent {
    type Stream = StdStream;

    fn try_accept(&mut self) -> io::Result<StdStream> {
        let (stream, _) = self.listener.accept()?;
        // SAFETY: the fd comes from a stream we own and give up.
        Ok(unsafe { StdStream::from_raw_fd(stream.into_raw_fd()) })
    }

    fn accept_errors(&mut self) -> &mut AcceptErrors {
        &mut self.accept_errors
    }

    fn accepted(&mut self, stream: StdStream) {
        self.serve(stream);
    }
}
