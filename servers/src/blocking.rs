//! The accept loop of the styles whose connection code blocks (`threads`,
//! `coroutines`, `pool`): accept, admit against `--max-conns`, register the
//! socket for shutdown, and hand it to a thread or coroutine of its own (or
//! to the pool's queue). The styles differ only in how they accept, pause
//! and start a connection.

use std::io;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::Duration;

use crate::accept::{AcceptAction, AcceptErrors};
use crate::echo::{EchoStream, echo_blocking};
use crate::server::Ctx;
use crate::shutdown::{ConnRegistry, Tracked};
use crate::stats::ConnGuard;

/// What a blocking style plugs into [`accept_loop`].
pub(crate) trait Acceptor {
    type Stream: EchoStream + AsRawFd + Send + 'static;
    /// What runs one connection, for messages ("thread", "coroutine").
    const UNIT: &'static str;

    fn accept(&self) -> io::Result<Self::Stream>;
    /// Waits without holding up the style's other work.
    fn pause(&self, wait: Duration);
    fn set_nodelay(stream: &Self::Stream) -> io::Result<()>;
    /// Starts serving `conn` on its own thread or coroutine; on failure the
    /// connection (moved into the attempt) has been closed.
    fn start(&self, conn: Tracked<Self::Stream>, guard: ConnGuard, ctx: &Ctx) -> io::Result<()>;
}

/// Accepts until shutdown. Connections stay in `registry` until they end.
pub(crate) fn accept_loop<A: Acceptor>(ctx: &Ctx, acceptor: &A, registry: &Arc<ConnRegistry>) {
    let style = ctx.style.name();
    let mut errors = AcceptErrors::new(Arc::clone(&ctx.stats), style);
    let mut start_failures = 0u64;
    while !ctx.shutdown.is_stopping() {
        let stream = match acceptor.accept() {
            Ok(stream) => stream,
            Err(e) => {
                if ctx.shutdown.is_stopping() {
                    break;
                }
                if let AcceptAction::BackOff(wait) = errors.on_error(&e) {
                    acceptor.pause(wait);
                }
                continue;
            }
        };
        errors.on_success();
        // Past --max-conns the stream is dropped here: closed at once.
        let Some(guard) = ctx.stats.admit(ctx.config.max_conns) else {
            continue;
        };
        if ctx.config.nodelay && A::set_nodelay(&stream).is_err() {
            ctx.stats.conn_failed();
            continue;
        }
        if let Err(e) = acceptor.start(registry.track(stream), guard, ctx) {
            // Out of threads (EAGAIN) or memory: this connection is closed,
            // the server goes on.
            ctx.stats.conn_failed();
            start_failures += 1;
            if start_failures == 1 {
                crate::log::log!(
                    "servers[{style}]: cannot start a connection {}: {e} (counted as conn_errors)",
                    A::UNIT
                );
            }
        }
    }
}

/// The body of a connection's thread or coroutine.
pub(crate) fn serve<S: EchoStream + AsRawFd>(
    mut conn: Tracked<S>,
    guard: ConnGuard,
    buffer_size: usize,
    work: Duration,
) {
    if echo_blocking(&mut *conn, buffer_size, work, guard.stats()).is_err() {
        guard.stats().conn_error();
    }
}
