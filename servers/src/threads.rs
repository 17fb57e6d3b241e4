//! `threads`: synchronous blocking I/O, one OS thread per connection.
//!
//! The oldest model and the simplest code: a blocking accept loop hands each
//! connection to a thread of its own, which blocks in `read` and `write`. The
//! kernel schedules and preempts the threads, so a client that makes its
//! thread compute cannot starve the others. The price is one kernel task and
//! one stack per connection, and a context switch per wake-up.

use std::net::TcpListener;
use std::sync::Arc;
use std::thread;

use crate::accept::{AcceptAction, AcceptErrors};
use crate::config::DEFAULT_THREAD_STACK;
use crate::echo::echo_blocking;
use crate::listener::{configure_accepted, wake_acceptors};
use crate::server::{Ctx, Runner, ServerError, spawn_runner};
use crate::shutdown::{CLOSE_BUDGET, ConnRegistry, report_stragglers};

pub(crate) fn start(ctx: Ctx, listener: TcpListener) -> Result<Runner, ServerError> {
    listener
        .set_nonblocking(false)
        .map_err(ServerError::io("making the listener blocking"))?;
    let listener = Arc::new(listener);
    let waker = Arc::clone(&listener);
    ctx.shutdown.on_trigger(move || wake_acceptors(&*waker));
    spawn_runner(&ctx.clone(), move || {
        accept_loop(&ctx, &listener);
        Ok(())
    })
}

fn accept_loop(ctx: &Ctx, listener: &TcpListener) {
    let registry = ConnRegistry::new();
    let mut errors = AcceptErrors::new(Arc::clone(&ctx.stats), "threads");
    let stack = ctx.config.stack_size.unwrap_or(DEFAULT_THREAD_STACK);
    let mut spawn_failures = 0u64;
    while !ctx.shutdown.is_stopping() {
        let stream = match listener.accept() {
            Ok((stream, _)) => stream,
            Err(e) => {
                if ctx.shutdown.is_stopping() {
                    break;
                }
                if let AcceptAction::BackOff(wait) = errors.on_error(&e) {
                    thread::sleep(wait);
                }
                continue;
            }
        };
        errors.on_success();
        // Past --max-conns the stream is dropped here: closed at once.
        let Some(guard) = ctx.stats.admit(ctx.config.max_conns) else {
            continue;
        };
        if configure_accepted(&stream, ctx.config.nodelay).is_err() {
            ctx.stats.conn_failed();
            continue;
        }
        let mut conn = registry.track(stream);
        let (buffer_size, work, stats) = (
            ctx.config.buffer_size,
            ctx.config.work(),
            Arc::clone(&ctx.stats),
        );
        let spawned = thread::Builder::new()
            .name("threads-conn".into())
            .stack_size(stack)
            .spawn(move || {
                let _guard = guard;
                if echo_blocking(&mut *conn, buffer_size, work, &stats).is_err() {
                    stats.conn_error();
                }
            });
        if let Err(e) = spawned {
            // Out of threads (EAGAIN) or memory: this connection is closed
            // (the closure and its stream were dropped), the server goes on.
            ctx.stats.conn_failed();
            spawn_failures += 1;
            if spawn_failures == 1 {
                eprintln!(
                    "servers[threads]: cannot start a connection thread: {e} (counted as conn_errors)"
                );
            }
        }
    }
    registry.close_all();
    report_stragglers("threads", registry.wait_empty(CLOSE_BUDGET));
}
