//! `pool`: a fixed pool of worker threads and a queue of connections.
//!
//! The classic answer to "one thread per connection costs too much": start
//! `--workers N` threads once (default [`DEFAULT_POOL`]) and let an accept
//! loop put every connection in a queue. A worker takes a connection and
//! serves it, blocking, until the peer closes; only then does it take the
//! next. So at most N connections are served at once, memory and threads
//! stay bounded, and connection N+1 waits in the queue: accepted, counted as
//! open, but not read from until a worker is free. The comparison shows that
//! wait as first-reply latency (and, for connections that never close, as
//! connections that never get a reply).

use std::io;
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};

use crate::runtime::blocking::{accept_loop, blocking_listener, close_connections, serve};
use crate::runtime::echo::Serving;
use crate::runtime::config::DEFAULT_THREAD_STACK;
use crate::runtime::server::{Ctx, Runner, ServerError, spawn_runner};
use crate::runtime::shutdown::{ConnRegistry, Tracked};
use crate::runtime::stats::ConnGuard;

/// Workers when `--workers` is not given: fewer than most of the
/// comparison's connection counts, so the queue shows.
pub const DEFAULT_POOL: usize = 16;

type Job = (Tracked<TcpStream>, ConnGuard);

pub(crate) fn start(ctx: Ctx, listener: TcpListener) -> Result<Runner, ServerError> {
    let listener = blocking_listener(&ctx, listener)?;
    let size = ctx.config.workers.unwrap_or(DEFAULT_POOL).max(1);
    let stack = ctx.config.stack_size.unwrap_or(DEFAULT_THREAD_STACK);
    let (queue, jobs) = channel::<Job>();
    let jobs = Arc::new(Mutex::new(jobs));
    // The whole pool is started here, so a pool that cannot be had is an
    // error at start-up, not a slow failure later.
    let workers = (0..size)
        .map(|i| {
            let (jobs, ctx) = (Arc::clone(&jobs), ctx.clone());
            thread::Builder::new()
                .name(format!("pool-{i}"))
                .stack_size(stack)
                .spawn(move || work(&ctx, &jobs))
                .map_err(ServerError::io("starting the pool's threads"))
        })
        .collect::<Result<Vec<JoinHandle<()>>, _>>()?;
    spawn_runner(&ctx.clone(), move || {
        run(&ctx, &listener, queue, workers);
        Ok(())
    })
}

/// A worker: take the next queued connection, serve it to the end, repeat.
/// Ends when the queue is closed and empty.
fn work(ctx: &Ctx, jobs: &Mutex<Receiver<Job>>) {
    let serving = Serving::of(&ctx.config);
    loop {
        // The lock is held only while waiting for a job, not while serving.
        let job = match jobs.lock() {
            Ok(jobs) => jobs.recv(),
            Err(poisoned) => poisoned.into_inner().recv(),
        };
        match job {
            Ok((conn, guard)) => serve(conn, guard, serving),
            Err(_) => return,
        }
    }
}

fn run(ctx: &Ctx, listener: &TcpListener, queue: Sender<Job>, workers: Vec<JoinHandle<()>>) {
    let registry = ConnRegistry::new();
    accept_loop(ctx, listener, &registry, "queue entry", |conn, guard| {
        queue
            .send((conn, guard))
            .map_err(|_| io::Error::other("every pool worker has stopped"))
    });
    // Queued connections are in the registry too: shutting them down lets
    // the workers run through the rest of the queue at once. Dropping the
    // queue closes it, so the workers then end.
    drop(queue);
    close_connections(ctx, &registry);
    for worker in workers {
        let _ = worker.join();
    }
}
