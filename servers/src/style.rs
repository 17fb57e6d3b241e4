//! The concurrency styles and the idea each one demonstrates.

use std::fmt;

/// One concurrency style of the echo service.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum Style {
    /// One OS thread per connection, blocking sockets.
    Threads,
    /// One thread asking every non-blocking socket in turn, no readiness API.
    Polling,
    /// An epoll (mio) event loop dispatching readiness to per-connection callbacks.
    Reactor,
    /// The reference: edge-triggered epoll straight on the system calls.
    Epoll,
    /// poll(2) over a vector of every socket, scanned in full on each wake-up.
    Poll,
    /// async/await on tokio, one task per connection.
    Tasks,
    /// Stackful coroutines on `may`, one per connection.
    Coroutines,
    /// Completion-based I/O on io_uring: the kernel does the reads and writes.
    Uring,
    /// A master process and N forked worker processes, each running a reactor.
    Prefork,
    /// One forked process per connection.
    Process,
    /// A fixed pool of threads taking connections from a queue.
    Pool,
}

impl Style {
    /// Every style, in the order reports list them. Tests loop over this, so a
    /// new style gets the whole conformance suite by being added here.
    pub const ALL: &'static [Style] = &[
        Style::Threads,
        Style::Polling,
        Style::Poll,
        Style::Reactor,
        Style::Epoll,
        Style::Tasks,
        Style::Coroutines,
        Style::Uring,
        Style::Prefork,
        Style::Process,
        Style::Pool,
    ];

    /// The style with this command-line name.
    pub fn from_name(name: &str) -> Option<Style> {
        Style::ALL.iter().copied().find(|s| s.name() == name)
    }

    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Style::Threads => "threads",
            Style::Polling => "polling",
            Style::Poll => "poll",
            Style::Reactor => "reactor",
            Style::Epoll => "epoll",
            Style::Tasks => "tasks",
            Style::Coroutines => "coroutines",
            Style::Uring => "uring",
            Style::Prefork => "prefork",
            Style::Process => "process",
            Style::Pool => "pool",
        }
    }

    /// One line on the idea the style demonstrates (printed by `servers list`).
    pub fn idea(self) -> &'static str {
        match self {
            Style::Threads => {
                "synchronous blocking: one OS thread per connection; the kernel preempts, so one busy client cannot starve the others"
            }
            Style::Polling => {
                "synchronous non-blocking: one thread keeps asking every socket \"ready yet?\" and burns CPU doing it, even when idle"
            }
            Style::Poll => {
                "I/O multiplexing the older way: poll(2) over every socket, scanned in full on each wake-up (O(n) per call, the cost epoll removed)"
            }
            Style::Reactor => {
                "I/O multiplexing: one epoll event loop (mio) dispatches readiness to per-connection callbacks, like Nginx, libevent, node.js"
            }
            Style::Epoll => {
                "the reference: the reactor written straight on epoll_wait/accept4/read/write, no framework, as lean as a C server; every style is compared to it"
            }
            Style::Tasks => {
                "async/await on tokio: the callbacks hidden behind futures on a work-stealing runtime; cooperative, so a CPU-heavy task holds its worker"
            }
            Style::Coroutines => {
                "stackful coroutines on may: blocking-looking code, user-space switching; cooperative, so a CPU-heavy coroutine starves its neighbours"
            }
            Style::Uring => {
                "completion-based I/O (proactor) on io_uring: the loop submits reads and writes in batches and the kernel reports them done, data already copied"
            }
            Style::Prefork => {
                "a master forks N worker processes (--workers), each an epoll reactor on the shared listener, like Nginx; the master restarts a worker that dies"
            }
            Style::Process => {
                "one forked process per connection, like inetd or classic Apache: full isolation, a fork and a whole process per client"
            }
            Style::Pool => {
                "a fixed pool of --workers threads (default 16) taking connections from a queue; each serves one connection until it closes, so connection N+1 waits"
            }
        }
    }
}

impl fmt::Display for Style {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
