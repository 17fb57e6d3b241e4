//! `coroutines`: stackful coroutines on `may`, one per connection.
//!
//! The code reads like the `threads` style (it calls the same blocking echo
//! loop), but `may`'s sockets park the coroutine instead of the thread: a
//! read that would block switches, in user space, to another coroutine on
//! the same worker, and an epoll loop wakes it when the socket is ready. A
//! coroutine costs a small stack instead of a kernel thread. Scheduling is
//! cooperative: a coroutine that computes (`--work-us`) without doing I/O
//! never yields, and the others on its worker wait.
//!
//! `may`'s scheduler is process-wide: `--workers` takes effect for the first
//! coroutines server a process starts (one per process in normal use).

use std::io;
use std::net::TcpListener as StdListener;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, IntoRawFd};
use std::sync::{Arc, Once};
use std::time::Duration;

use may::coroutine;
use may::net::{TcpListener, TcpStream};

use crate::runtime::blocking::{BlockingListener, accept_loop, close_connections, serve};
use crate::runtime::echo::Serving;
use crate::runtime::config::available_cpus;
use crate::runtime::listener::wake_acceptors;
use crate::runtime::server::{Ctx, Runner, ServerError, spawn_runner};
use crate::runtime::shutdown::ConnRegistry;

static CONFIGURE: Once = Once::new();

pub(crate) fn start(ctx: Ctx, listener: StdListener) -> Result<Runner, ServerError> {
    let workers = ctx.config.workers.unwrap_or_else(available_cpus).max(1);
    CONFIGURE.call_once(|| {
        // Pinning would override the CPU set the user (or `loadgen compare`)
        // gave the server.
        may::config().set_workers(workers).set_worker_pin(false);
    });
    let listener = adopt_listener(listener)?;
    let waker = Arc::clone(&listener);
    ctx.shutdown.on_trigger(move || {
        // SAFETY: the Arc keeps the listener, and so its fd, open for as long
        // as this closure exists.
        let fd = unsafe { BorrowedFd::borrow_raw(waker.as_raw_fd()) };
        wake_acceptors(&fd);
    });
    spawn_runner(&ctx.clone(), move || {
        let registry = ConnRegistry::new();
        let acceptor = {
            let (ctx, registry) = (ctx.clone(), Arc::clone(&registry));
            // SAFETY: `may` requires that a coroutine not block its worker
            // thread in std I/O or hold thread-locals across a switch; the
            // accept loop only uses `may`'s own sockets and sleep.
            unsafe {
                coroutine::Builder::new()
                    .name("coroutines-accept".into())
                    .spawn(move || accept_connections(&ctx, &listener, &registry))
            }
            .map_err(ServerError::io("spawning the accept coroutine"))?
        };
        acceptor
            .join()
            .map_err(|_| ServerError::Panicked(ctx.name))?;
        // Waiting happens on this OS thread, not in a coroutine, so the
        // workers stay free to run the connections down.
        close_connections(&ctx, &registry);
        Ok(())
    })
}

/// Hands a std listener to `may`, whose constructor panics (rather than
/// failing) when it cannot register the socket.
fn adopt_listener(listener: StdListener) -> Result<Arc<TcpListener>, ServerError> {
    listener
        .set_nonblocking(true)
        .map_err(ServerError::io("making the listener non-blocking"))?;
    let fd = listener.into_raw_fd();
    // SAFETY: `fd` was just released by a std listener, so it is an open,
    // listening TCP socket owned by nobody else.
    let adopted = std::panic::catch_unwind(|| unsafe { TcpListener::from_raw_fd(fd) });
    adopted.map(Arc::new).map_err(|_| ServerError::Io {
        what: "registering the listener with may",
        source: std::io::Error::other("may could not register the socket"),
    })
}

impl BlockingListener for TcpListener {
    type Stream = TcpStream;

    fn accept_stream(&self) -> io::Result<TcpStream> {
        self.accept().map(|(stream, _)| stream)
    }

    fn pause(&self, wait: Duration) {
        // Parks this coroutine only; its worker goes on serving connections.
        coroutine::sleep(wait);
    }
}

fn accept_connections(ctx: &Ctx, listener: &TcpListener, registry: &Arc<ConnRegistry>) {
    let stack_words = ctx
        .config
        .stack_size
        .map(|bytes| bytes / std::mem::size_of::<usize>());
    let serving = Serving::of(&ctx.config);
    accept_loop(ctx, listener, registry, "coroutine", |conn, guard| {
        let mut builder = coroutine::Builder::new();
        if let Some(words) = stack_words {
            builder = builder.stack_size(words);
        }
        // SAFETY: as for the acceptor: the connection coroutine only does I/O
        // through `may`'s socket and touches no thread-locals.
        unsafe { builder.spawn(move || serve(conn, guard, serving)) }.map(drop)
    });
}
