//! `threads`: synchronous blocking I/O, one OS thread per connection.
//!
//! The oldest model and the simplest code: a blocking accept loop hands each
//! connection to a thread of its own, which blocks in `read` and `write`. The
//! kernel schedules and preempts the threads, so a client that makes its
//! thread compute cannot starve the others. The price is one kernel task and
//! one stack per connection, and a context switch per wake-up.

use std::net::TcpListener;
use std::thread;

use crate::runtime::blocking::{accept_loop, blocking_listener, close_connections, serve};
use crate::runtime::echo::Serving;
use crate::runtime::config::DEFAULT_THREAD_STACK;
use crate::runtime::server::{Ctx, Runner, ServerError, spawn_runner};
use crate::runtime::shutdown::ConnRegistry;

pub(crate) fn start(ctx: Ctx, listener: TcpListener) -> Result<Runner, ServerError> {
    let listener = blocking_listener(&ctx, listener)?;
    spawn_runner(&ctx.clone(), move || {
        run(&ctx, &listener);
        Ok(())
    })
}

fn run(ctx: &Ctx, listener: &TcpListener) {
    let registry = ConnRegistry::new();
    let stack = ctx.config.stack_size.unwrap_or(DEFAULT_THREAD_STACK);
    let serving = Serving::of(&ctx.config);
    accept_loop(ctx, listener, &registry, "thread", |conn, guard| {
        thread::Builder::new()
            .name("threads-conn".into())
            .stack_size(stack)
            .spawn(move || serve(conn, guard, serving))
            .map(drop)
    });
    close_connections(ctx, &registry);
}
