//! The knobs every style understands, with the defaults the CLI documents.

use std::time::Duration;

/// Default per-connection buffer: the most a connection holds in memory.
pub const DEFAULT_BUFFER_SIZE: usize = 16 * 1024;
/// Default stack for a connection thread (the echo loop is shallow;
/// the buffer is on the heap).
pub const DEFAULT_THREAD_STACK: usize = 128 * 1024;
/// Default stack for a connection coroutine: `may`'s own
/// default (0x1000 words), whose stacks it pools and reuses.
pub const DEFAULT_COROUTINE_STACK: usize = 0x1000 * std::mem::size_of::<usize>();

/// Server configuration shared by all styles. Fields a style does not use are
/// ignored by it (for example `poll_sleep_us`, which only the busy-polling style reads).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Connections past this many open ones are closed at once and counted.
    pub max_conns: Option<usize>,
    /// Per-connection buffer; bounds memory per connection: a peer that does
    /// not read stops being read from instead of being buffered.
    pub buffer_size: usize,
    /// Workers: how many of the style's units run side by side (event
    /// loops, rings, runtime or scheduler workers, worker processes, pool
    /// threads; each style says which, and `servers --help` lists them).
    /// `None` = the style's default.
    pub workers: Option<usize>,
    /// Stack size for a connection thread or coroutine; `None` = style default.
    pub stack_size: Option<usize>,
    /// Set TCP_NODELAY on accepted sockets.
    pub nodelay: bool,
    /// Microseconds of real CPU (a busy loop) spent per chunk received.
    pub work_us: u64,
    /// Busy-polling only: sleep this long when a full pass found nothing to do
    /// (0 = spin, the honest cost of the style).
    pub poll_sleep_us: u64,
    /// Close a connection that moved no byte in either direction for this
    /// long (counted as `idle_closed`); `None` = never (the default, so
    /// benchmarks measure the styles, not a timer).
    pub idle_timeout: Option<Duration>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_conns: None,
            buffer_size: DEFAULT_BUFFER_SIZE,
            workers: None,
            stack_size: None,
            nodelay: false,
            work_us: 0,
            poll_sleep_us: 0,
            idle_timeout: None,
        }
    }
}

impl Config {
    pub(crate) fn work(&self) -> Duration {
        Duration::from_micros(self.work_us)
    }
}

/// Number of CPUs this process may run on (its affinity mask), at least 1.
pub fn available_cpus() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}
