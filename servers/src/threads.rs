//! `threads`: synchronous blocking I/O, one OS thread per connection.
//!
//! The oldest model and the simplest code: a blocking accept loop hands each
//! connection to a thread of its own, which blocks in `read` and `write`. The
//! kernel schedules and preempts the threads, so a client that makes its
//! thread compute cannot starve the others. The price is one kernel task and
//! one stack per connection, and a context switch per wake-up.

use std::io;
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use crate::blocking::{Acceptor, accept_loop, serve};
use crate::config::DEFAULT_THREAD_STACK;
use crate::listener::wake_acceptors;
use crate::server::{Ctx, Runner, ServerError, spawn_runner};
use crate::shutdown::{CLOSE_BUDGET, ConnRegistry, Tracked, report_stragglers};
use crate::stats::ConnGuard;

pub(crate) fn start(ctx: Ctx, listener: TcpListener) -> Result<Runner, ServerError> {
    listener
        .set_nonblocking(false)
        .map_err(ServerError::io("making the listener blocking"))?;
    let listener = Arc::new(listener);
    let waker = Arc::clone(&listener);
    ctx.shutdown.on_trigger(move || wake_acceptors(&*waker));
    spawn_runner(&ctx.clone(), move || {
        run(&ctx, &listener);
        Ok(())
    })
}

struct Threads<'a> {
    listener: &'a TcpListener,
    stack: usize,
}

impl Acceptor for Threads<'_> {
    type Stream = TcpStream;
    const UNIT: &'static str = "thread";

    fn accept(&self) -> io::Result<TcpStream> {
        self.listener.accept().map(|(stream, _)| stream)
    }

    fn pause(&self, wait: Duration) {
        thread::sleep(wait);
    }

    fn set_nodelay(stream: &TcpStream) -> io::Result<()> {
        stream.set_nodelay(true)
    }

    fn start(&self, conn: Tracked<TcpStream>, guard: ConnGuard, ctx: &Ctx) -> io::Result<()> {
        let (buffer_size, work) = (ctx.config.buffer_size, ctx.config.work());
        thread::Builder::new()
            .name("threads-conn".into())
            .stack_size(self.stack)
            .spawn(move || serve(conn, guard, buffer_size, work))
            .map(drop)
    }
}

fn run(ctx: &Ctx, listener: &TcpListener) {
    let registry = ConnRegistry::new();
    let acceptor = Threads {
        listener,
        stack: ctx.config.stack_size.unwrap_or(DEFAULT_THREAD_STACK),
    };
    accept_loop(ctx, &acceptor, &registry);
    registry.close_all();
    report_stragglers("threads", registry.wait_empty(CLOSE_BUDGET));
}
