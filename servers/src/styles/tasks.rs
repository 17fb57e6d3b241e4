//! `tasks`: async/await on tokio, one task per connection.
//!
//! The reactor's callbacks, hidden behind futures: each connection is
//! written as straight-line code (`read().await`, `write_all().await`), and
//! the compiler turns it into the state machine the reactor style writes by
//! hand. Tasks run on a work-stealing multi-threaded runtime
//! (`--workers N`, default one per CPU) or, with `--workers 0`, on a single
//! current-thread runtime. Scheduling is cooperative: a task only yields at
//! an `.await`, so CPU-bound work (`--work-us`) holds its worker thread.

use std::io;
use std::net::TcpListener as StdListener;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::{Builder, Runtime};
use tokio::sync::watch;

use crate::runtime::accept::{AcceptAction, AcceptErrors, Mode, admit};
use crate::runtime::config::available_cpus;
use crate::runtime::echo::{FIRST_READ, Serving, burn};
use crate::runtime::server::{Ctx, Runner, ServerError, spawn_runner};
use crate::runtime::shutdown::CLOSE_BUDGET;
use crate::runtime::stats::{ConnGuard, Stats};

pub(crate) fn start(ctx: Ctx, listener: StdListener) -> Result<Runner, ServerError> {
    let runtime = build_runtime(ctx.config.workers.unwrap_or_else(available_cpus))
        .map_err(ServerError::io("building the tokio runtime"))?;
    // tokio needs the socket non-blocking before it adopts it.
    listener
        .set_nonblocking(true)
        .map_err(ServerError::io("making the listener non-blocking"))?;
    let listener = {
        let _entered = runtime.enter();
        TcpListener::from_std(listener)
            .map_err(ServerError::io("registering the listener with tokio"))?
    };
    let (stop_tx, stop_rx) = watch::channel(false);
    ctx.shutdown.on_trigger(move || {
        let _ = stop_tx.send(true);
    });
    spawn_runner(&ctx.clone(), move || {
        runtime.block_on(accept_loop(ctx, listener, stop_rx));
        // Dropping the runtime drops every connection task at its next
        // `.await`, which closes its socket.
        runtime.shutdown_timeout(CLOSE_BUDGET);
        Ok(())
    })
}

fn build_runtime(workers: usize) -> std::io::Result<Runtime> {
    let mut builder = if workers == 0 {
        Builder::new_current_thread()
    } else {
        let mut b = Builder::new_multi_thread();
        b.worker_threads(workers);
        b
    };
    builder.enable_all().thread_name("tasks-worker").build()
}

async fn accept_loop(ctx: Ctx, listener: TcpListener, mut stop: watch::Receiver<bool>) {
    let mut errors = AcceptErrors::for_ctx(&ctx);
    loop {
        let accepted = tokio::select! {
            biased;
            _ = stop.changed() => return,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                if let AcceptAction::BackOff(wait) = errors.on_error(&e) {
                    tokio::select! {
                        _ = stop.changed() => return,
                        _ = tokio::time::sleep(wait) => {}
                    }
                }
                continue;
            }
        };
        errors.on_success();
        let Some((stream, guard)) = admit(&ctx, stream, Mode::AsAccepted) else {
            continue;
        };
        tokio::spawn(serve(stream, guard, Serving::of(&ctx.config)));
    }
}

async fn serve(mut stream: TcpStream, guard: ConnGuard, serving: Serving) {
    let stats = guard.stats();
    match echo(&mut stream, serving, stats).await {
        Ok(()) => {}
        Err(e) if serving.idle.is_some() && e.kind() == io::ErrorKind::TimedOut => {
            stats.idle_closed()
        }
        Err(_) => stats.conn_error(),
    }
}

/// Awaits one read or write, for at most `--idle-timeout` when it is set
/// (then `TimedOut`): the task's own timer, in tokio's timer wheel.
async fn within<T>(
    idle: Option<Duration>,
    op: impl Future<Output = io::Result<T>>,
) -> io::Result<T> {
    match idle {
        None => op.await,
        Some(limit) => tokio::time::timeout(limit, op)
            .await
            .unwrap_or_else(|_| Err(io::ErrorKind::TimedOut.into())),
    }
}

async fn echo(stream: &mut TcpStream, serving: Serving, stats: &Stats) -> io::Result<()> {
    let Serving {
        buffer_size,
        work,
        idle,
    } = serving;
    // Wait for the peer to speak before giving it a buffer, so an idle
    // connection costs only its task. Readiness can be spurious (tokio
    // reports a fresh socket ready once), so the first read goes into a
    // small buffer inside the task and only real data earns the full one.
    let first = loop {
        within(idle, stream.readable()).await?;
        let mut small = [0u8; FIRST_READ];
        match stream.try_read(&mut small) {
            Ok(n) => break (small, n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        }
    };
    if first.1 > 0 {
        burn(work);
        within(idle, stream.write_all(&first.0[..first.1])).await?;
        stats.echoed(first.1);
        let mut buf = vec![0u8; buffer_size];
        loop {
            let n = within(idle, stream.read(&mut buf)).await?;
            if n == 0 {
                break;
            }
            burn(work);
            within(idle, stream.write_all(&buf[..n])).await?;
            stats.echoed(n);
        }
    }
    // Half-close: everything was sent back; now our side says EOF too.
    match stream.shutdown().await {
        Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(()),
        other => other,
    }
}
