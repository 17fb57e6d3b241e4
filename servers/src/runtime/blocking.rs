//! The accept loop of the styles whose connection code blocks: accept, admit
//! against `--max-conns`, register the socket for shutdown, and hand it to
//! whatever serves it (a thread or coroutine of its own, or a queue). The
//! styles differ only in their listener and in how they start a connection.

use std::io;
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::Duration;

use crate::runtime::accept::{AcceptAction, AcceptErrors, Mode, admit};
use crate::runtime::echo::{EchoStream, Serving};
use crate::runtime::idle::BlockingStream;
use crate::runtime::listener::wake_acceptors;
use crate::runtime::server::{Ctx, ServerError};
use crate::runtime::shutdown::{CLOSE_BUDGET, ConnRegistry, Tracked, report_stragglers};
use crate::runtime::stats::ConnGuard;

/// A listener whose `accept` blocks its caller (a thread, or a coroutine).
pub(crate) trait BlockingListener {
    type Stream: EchoStream + BlockingStream + AsRawFd + Send + 'static;

    fn accept_stream(&self) -> io::Result<Self::Stream>;
    /// Waits without holding up the style's other work.
    fn pause(&self, wait: Duration);
}

impl BlockingListener for TcpListener {
    type Stream = TcpStream;

    fn accept_stream(&self) -> io::Result<TcpStream> {
        self.accept().map(|(stream, _)| stream)
    }

    fn pause(&self, wait: Duration) {
        std::thread::sleep(wait);
    }
}

/// Makes a std listener blocking, and has shutdown wake the accepts blocked
/// on it.
pub(crate) fn blocking_listener(
    ctx: &Ctx,
    listener: TcpListener,
) -> Result<Arc<TcpListener>, ServerError> {
    listener
        .set_nonblocking(false)
        .map_err(ServerError::io("making the listener blocking"))?;
    let listener = Arc::new(listener);
    let waker = Arc::clone(&listener);
    ctx.shutdown.on_trigger(move || wake_acceptors(&*waker));
    Ok(listener)
}

/// Accepts until shutdown. Connections stay in `registry` until they end.
/// `start` starts serving one connection; on failure the connection (moved
/// into the attempt) has been closed. `unit` names what runs a connection,
/// for messages ("thread", "coroutine").
pub(crate) fn accept_loop<L: BlockingListener>(
    ctx: &Ctx,
    listener: &L,
    registry: &Arc<ConnRegistry>,
    unit: &str,
    mut start: impl FnMut(Tracked<L::Stream>, ConnGuard) -> io::Result<()>,
) {
    let mut errors = AcceptErrors::for_ctx(ctx);
    let mut start_failures = 0u64;
    while !ctx.shutdown.is_stopping() {
        let stream = match listener.accept_stream() {
            Ok(stream) => stream,
            Err(e) => {
                if ctx.shutdown.is_stopping() {
                    break;
                }
                if let AcceptAction::BackOff(wait) = errors.on_error(&e) {
                    listener.pause(wait);
                }
                continue;
            }
        };
        errors.on_success();
        let Some((stream, guard)) = admit(ctx, stream, Mode::AsAccepted) else {
            continue;
        };
        if let Err(e) = start(registry.track(stream), guard) {
            // Out of threads (EAGAIN) or memory: this connection is closed,
            // the server goes on.
            ctx.stats.conn_failed();
            start_failures += 1;
            if start_failures == 1 {
                crate::runtime::log::log!(
                    "servers[{}]: cannot start a connection {unit}: {e}{} (counted as conn_errors)",
                    ctx.name,
                    crate::runtime::limits::what_ran_out()
                );
            }
        }
    }
}

/// Closes every connection still in `registry` and waits for them, up to
/// the shutdown budget.
pub(crate) fn close_connections(ctx: &Ctx, registry: &ConnRegistry) {
    registry.close_all();
    report_stragglers(ctx.name, registry.wait_empty(CLOSE_BUDGET));
}

/// The body of a connection's thread or coroutine.
pub(crate) fn serve<S: EchoStream + BlockingStream + AsRawFd>(
    mut conn: Tracked<S>,
    guard: ConnGuard,
    serving: Serving,
) {
    serving.echo(&mut *conn, guard.stats());
}
