//! `prefork`: a master process and N forked worker processes, each an epoll
//! reactor on the one shared listener (Nginx's master/workers, Apache's
//! prefork MPM).
//!
//! The master binds, forks `--workers` workers (default one per CPU) and
//! then only supervises: it watches each worker through a pidfd and forks a
//! replacement when one dies (a worker that keeps dying at start-up is
//! restarted with a growing delay, so a broken worker cannot turn into a
//! fork storm). Each worker runs the `reactor` style's event loop on its
//! inherited copy of the listener; the kernel hands each new connection to
//! one of the workers waiting in `accept`. A crash takes down only the
//! connections of that worker. On SIGTERM (shutdown) the master sends
//! SIGTERM to every worker, which closes their connections, and reaps them.
//!
//! Workers count in counters of their own that also add to the server's
//! (shared memory, see [`crate::runtime::stats`]), so `--max-conns` holds across all
//! workers and the master can forget the open connections of a worker that
//! died with them.

use std::io;
use std::net::TcpListener;
use std::os::fd::{AsRawFd, FromRawFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::{Events, Poll, Token};

use crate::runtime::config::{Config, available_cpus};
use crate::runtime::fork::{self, Child};
use crate::runtime::log::log;
use crate::runtime::poller;
use crate::styles::reactor;
use crate::runtime::server::{Ctx, Runner, ServerError, spawn_runner};
use crate::runtime::shutdown::{CLOSE_BUDGET, Shutdown};
use crate::runtime::stats::Stats;

const WAKER: Token = Token(usize::MAX - 1);
/// A worker that dies sooner than this after its start counts as a crash
/// loop: its replacement waits, twice as long each time.
const QUICK_DEATH: Duration = Duration::from_secs(1);
const FIRST_RESTART_DELAY: Duration = Duration::from_millis(100);
const MAX_RESTART_DELAY: Duration = Duration::from_secs(5);

pub(crate) fn start(ctx: Ctx, listener: TcpListener) -> Result<Runner, ServerError> {
    if !ctx.stats.is_shared() {
        return Err(ServerError::Io {
            what: "setting up counters the workers share",
            source: io::Error::other("no shared memory mapping could be made"),
        });
    }
    let workers = ctx.config.workers.unwrap_or_else(available_cpus).max(1);
    let poll = Poll::new().map_err(ServerError::io("setting up the master's epoll loop"))?;
    poller::wake_on_shutdown(&poll, WAKER, &ctx.shutdown)
        .map_err(ServerError::io("setting up the shutdown waker"))?;
    let (started_tx, started_rx) = std::sync::mpsc::channel();
    let runner = spawn_runner(&ctx.clone(), move || {
        // Workers are forked here, on the thread that lives as long as they
        // do (their PR_SET_PDEATHSIG is tied to it).
        let mut master = Master {
            slots: (0..workers).map(|_| Slot::default()).collect(),
            ctx,
            poll,
            listener,
        };
        let started = master.start_workers();
        let ok = started.is_ok();
        let _ = started_tx.send(started);
        let result = if ok { master.run() } else { Ok(()) };
        master.stop_workers();
        result.map_err(ServerError::io("supervising the workers"))
    })?;
    // `start` returns once every worker is forked (or with the reason one
    // could not be), so the listening line means workers are there to serve.
    match started_rx.recv() {
        Ok(Ok(())) => Ok(runner),
        Ok(Err(source)) => {
            let _ = runner.join();
            Err(ServerError::Io {
                what: "forking the worker processes",
                source,
            })
        }
        Err(_) => Err(match runner.join() {
            Ok(Err(e)) => e,
            _ => ServerError::Panicked("prefork"),
        }),
    }
}

#[derive(Default)]
struct Slot {
    worker: Option<Worker>,
    /// Deaths in a row soon after start.
    quick_deaths: u32,
    restart_at: Option<Instant>,
}

struct Worker {
    child: Child,
    stats: Arc<Stats>,
    started: Instant,
}

struct Master {
    ctx: Ctx,
    poll: Poll,
    listener: TcpListener,
    slots: Vec<Slot>,
}

impl Master {
    fn start_workers(&mut self) -> io::Result<()> {
        for i in 0..self.slots.len() {
            self.start_worker(i)?;
        }
        Ok(())
    }

    fn run(&mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(64);
        while !self.ctx.shutdown.is_stopping() {
            let next_restart = self.slots.iter().filter_map(|s| s.restart_at).min();
            let timeout = next_restart.map(|t| t.saturating_duration_since(Instant::now()));
            let scanning = self
                .slots
                .iter()
                .any(|s| s.worker.as_ref().is_some_and(|w| w.child.pidfd.is_none()));
            let timeout = fork::wait_timeout(timeout, scanning);
            poller::wait(&mut self.poll, &mut events, timeout)?;
            for event in events.iter() {
                if event.token() != WAKER {
                    self.on_worker_exit(event.token().0);
                }
            }
            if scanning {
                for i in 0..self.slots.len() {
                    self.on_worker_exit(i);
                }
            }
            let now = Instant::now();
            for i in 0..self.slots.len() {
                if self.slots[i].restart_at.is_some_and(|t| now >= t)
                    && !self.ctx.shutdown.is_stopping()
                {
                    self.slots[i].restart_at = None;
                    if let Err(e) = self.start_worker(i) {
                        log!("servers[prefork]: cannot fork worker {i}: {e}; trying again");
                        self.schedule_restart(i, now);
                    }
                }
            }
        }
        Ok(())
    }

    /// Forks worker `i`: a reactor on the shared listener, until killed.
    fn start_worker(&mut self, i: usize) -> io::Result<()> {
        let stats = Arc::new(Stats::child_of(&self.ctx.stats));
        let worker_ctx = Ctx {
            name: self.ctx.name,
            config: Config {
                workers: Some(1),
                ..self.ctx.config.clone()
            },
            stats: Arc::clone(&stats),
            // A fresh one: the master's holds wakers of the master's loop.
            shutdown: Shutdown::new(),
        };
        let fd = self.listener.as_raw_fd();
        let child = fork::spawn(&[fd], move || {
            // SAFETY: `fd` is the listener the child inherited and kept; the
            // child's copy of the master's `TcpListener` is never dropped
            // (the child ends in `_exit`), so this is its only owner.
            let listener = unsafe { TcpListener::from_raw_fd(fd) };
            if let Err(e) = fork::stop_on_sigterm(&worker_ctx.shutdown) {
                log!("servers[prefork]: worker {i}: cannot catch SIGTERM: {e}");
                return 1;
            }
            match reactor::run_on_this_thread(worker_ctx, listener) {
                Ok(()) => 0,
                Err(e) => {
                    log!("servers[prefork]: worker {i}: {e}");
                    1
                }
            }
        })?;
        // Without a pidfd the master scans for the worker's exit instead.
        child.watch(self.poll.registry(), Token(i))?;
        self.slots[i].worker = Some(Worker {
            child,
            stats,
            started: Instant::now(),
        });
        Ok(())
    }

    fn on_worker_exit(&mut self, i: usize) {
        let Some(worker) = self.slots.get(i).and_then(|s| s.worker.as_ref()) else {
            return;
        };
        let Some(status) = worker.child.try_reap() else {
            return;
        };
        let Some(worker) = self.slots[i].worker.take() else {
            return;
        };
        worker.child.unwatch(self.poll.registry());
        // Its connections died with it.
        let open = worker.stats.snapshot().active;
        self.ctx.stats.forget_open(open);
        if self.ctx.shutdown.is_stopping() {
            return;
        }
        log!(
            "servers[prefork]: worker {i} (pid {}) ended ({status:?}) with {open} connection(s); starting another",
            worker.child.pid
        );
        let now = Instant::now();
        if now.duration_since(worker.started) < QUICK_DEATH {
            self.schedule_restart(i, now);
        } else {
            self.slots[i].quick_deaths = 0;
            if let Err(e) = self.start_worker(i) {
                log!("servers[prefork]: cannot fork worker {i}: {e}; trying again");
                self.schedule_restart(i, now);
            }
        }
    }

    fn schedule_restart(&mut self, i: usize, now: Instant) {
        let slot = &mut self.slots[i];
        let delay = FIRST_RESTART_DELAY
            .saturating_mul(1 << slot.quick_deaths.min(10))
            .min(MAX_RESTART_DELAY);
        slot.quick_deaths += 1;
        slot.restart_at = Some(now + delay);
    }

    fn stop_workers(&mut self) {
        let killed = fork::stop_all(
            self.slots
                .iter()
                .filter_map(|s| s.worker.as_ref().map(|w| &w.child)),
            CLOSE_BUDGET,
        );
        if killed > 0 {
            log!("servers[prefork]: {killed} worker(s) killed after the shutdown budget");
        }
        for slot in &mut self.slots {
            if let Some(worker) = slot.worker.take() {
                self.ctx.stats.forget_open(worker.stats.snapshot().active);
            }
        }
    }
}
