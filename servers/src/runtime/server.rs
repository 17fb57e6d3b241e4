//! What a running style is given and what it returns: the [`Ctx`] every
//! style gets, the [`Runner`] thread each one starts, the helpers for styles
//! that run one loop per `--workers`, and the [`ServerHandle`] that stops a
//! server. It names no style: [`launch`] takes the style's own `start` (the
//! dispatch lives in `crate::styles`), and the handle is generic over the
//! style type.

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::thread::JoinHandle;

use crate::runtime::config::Config;
use crate::runtime::log::log;
use crate::runtime::shutdown::Shutdown;
use crate::runtime::stats::{Stats, Summary};

/// Why a server could not start or did not stop cleanly.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("{what}: {source}")]
    Io {
        what: &'static str,
        #[source]
        source: io::Error,
    },
    /// A style's thread panicked; the style's name.
    #[error("{0} server thread panicked")]
    Panicked(&'static str),
}

impl ServerError {
    pub(crate) fn io(what: &'static str) -> impl FnOnce(io::Error) -> ServerError {
        move |source| ServerError::Io { what, source }
    }
}

/// What every style gets: its configuration and the shared pieces.
#[derive(Clone)]
pub(crate) struct Ctx {
    /// The running style's name: for thread names and log lines.
    pub name: &'static str,
    pub config: Config,
    pub stats: Arc<Stats>,
    pub shutdown: Arc<Shutdown>,
}

/// The thread that runs a style until shutdown, returned by each style's
/// `start`.
pub(crate) type Runner = JoinHandle<Result<(), ServerError>>;

/// Spawns a named thread that runs a style's main loop.
pub(crate) fn spawn_runner(
    ctx: &Ctx,
    f: impl FnOnce() -> Result<(), ServerError> + Send + 'static,
) -> Result<Runner, ServerError> {
    std::thread::Builder::new()
        .name(format!("{}-main", ctx.name))
        .spawn(f)
        .map_err(ServerError::io("spawning the server thread"))
}

/// Sets up one event loop per `--workers` (default 1), each with its own
/// copy of the listener, all here in `start`, so that set-up errors reach
/// its caller. The counterpart of [`run_loops`].
pub(crate) fn make_loops<L>(
    ctx: &Ctx,
    listener: TcpListener,
    mut make: impl FnMut(TcpListener) -> Result<L, ServerError>,
) -> Result<Vec<L>, ServerError> {
    let workers = ctx.config.workers.unwrap_or(1).max(1);
    let mut loops = Vec::with_capacity(workers);
    for _ in 0..workers {
        let copy = listener
            .try_clone()
            .map_err(ServerError::io("sharing the listener with a loop"))?;
        loops.push(make(copy)?);
    }
    Ok(loops)
}

/// Runs one event loop per worker until all have returned: the first on
/// the calling (runner) thread, the others on threads of their own. A loop
/// whose thread cannot be started is left out, with a log line. Shared by
/// the styles with `--workers N` loops on one listener.
pub(crate) fn run_loops<L: Send + 'static>(
    ctx: &Ctx,
    mut loops: Vec<L>,
    run: fn(L) -> io::Result<()>,
    what: &'static str,
) -> Result<(), ServerError> {
    if loops.is_empty() {
        return Ok(());
    }
    let first = loops.remove(0);
    let style = ctx.name;
    let others: Vec<_> = loops
        .into_iter()
        .enumerate()
        .filter_map(|(i, lp)| {
            std::thread::Builder::new()
                .name(format!("{style}-{}", i + 1))
                .spawn(move || run(lp))
                .map_err(|e| {
                    log!(
                        "servers[{style}]: cannot start loop {}: {e}; running with fewer",
                        i + 1
                    )
                })
                .ok()
        })
        .collect();
    let mut result = run(first);
    for handle in others {
        let joined = handle.join().map_err(|_| ServerError::Panicked(style))?;
        result = result.and(joined);
    }
    result.map_err(ServerError::io(what))
}

/// Starts a style serving connections from `listener` (which the caller
/// bound, see [`crate::runtime::listener::bind`]): builds its [`Ctx`] and
/// runs `start`, the style's own set-up. Returns once the server is set up;
/// connections queued on the listener are served from then on.
pub(crate) fn launch<S: Copy>(
    style: S,
    name: &'static str,
    config: Config,
    listener: TcpListener,
    start: impl FnOnce(Ctx, TcpListener) -> Result<Runner, ServerError>,
) -> Result<ServerHandle<S>, ServerError> {
    let local_addr = listener
        .local_addr()
        .map_err(ServerError::io("reading the listener's address"))?;
    let ctx = Ctx {
        name,
        config,
        stats: Arc::new(Stats::default()),
        shutdown: Shutdown::new(),
    };
    let runner = start(ctx.clone(), listener)?;
    Ok(ServerHandle {
        style,
        name,
        local_addr,
        stats: ctx.stats,
        shutdown: ctx.shutdown,
        runner: Some(runner),
    })
}

/// A running server of style `S` (`crate::Style`, which names the type
/// `crate::ServerHandle`). Dropping it stops it, like
/// [`shutdown`](Self::shutdown).
pub struct ServerHandle<S> {
    style: S,
    name: &'static str,
    local_addr: SocketAddr,
    stats: Arc<Stats>,
    shutdown: Arc<Shutdown>,
    runner: Option<Runner>,
}

impl<S> ServerHandle<S> {
    /// The address the server listens on (the real port when bound to `:0`).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    pub fn style(&self) -> S
    where
        S: Copy,
    {
        self.style
    }

    /// The counters so far.
    pub fn summary(&self) -> Summary {
        self.stats.snapshot()
    }

    /// True if the server stopped by itself (it should not: a failure).
    pub fn is_finished(&self) -> bool {
        self.runner.as_ref().is_none_or(|r| r.is_finished())
    }

    /// Stops accepting, closes every connection, waits for the style's
    /// threads, and returns the final counters.
    pub fn shutdown(mut self) -> Result<Summary, ServerError> {
        self.stop()?;
        Ok(self.stats.snapshot())
    }

    fn stop(&mut self) -> Result<(), ServerError> {
        self.shutdown.trigger();
        match self.runner.take() {
            Some(runner) => runner
                .join()
                .map_err(|_| ServerError::Panicked(self.name))?,
            None => Ok(()),
        }
    }
}

impl<S> Drop for ServerHandle<S> {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            eprintln!("servers[{}]: {e}", self.name);
        }
    }
}
