//! `polling`: synchronous non-blocking I/O, with no readiness API at all.
//!
//! One thread owns every socket, all non-blocking, and keeps asking each in
//! turn "anything for me?": the listener for new connections, then every
//! connection for bytes to read or room to write. Nothing tells it which
//! socket is ready, so each pass costs a system call per socket whether or
//! not anything happened, and when nothing happens it asks again at once.
//! With the default `--poll-sleep-us 0` it spins (yielding the CPU to any
//! other runnable thread, but never sleeping), so the style burns a full core
//! even with no clients: that cost is the lesson, shown rather than hidden.
//! A sleep between idle passes trades that CPU for latency.

use std::io;
use std::net::{TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use crate::runtime::accept::{AcceptErrors, AcceptReady, Mode, admit};
use crate::runtime::echo::{Drive, EchoConn};
use crate::runtime::server::{Ctx, Runner, ServerError, spawn_runner};

/// Reads per connection per pass, so a busy peer cannot hold the pass.
const BUDGET: usize = 4;

pub(crate) fn start(ctx: Ctx, listener: TcpListener) -> Result<Runner, ServerError> {
    listener
        .set_nonblocking(true)
        .map_err(ServerError::io("making the listener non-blocking"))?;
    spawn_runner(&ctx.clone(), move || {
        Polling {
            errors: AcceptErrors::for_ctx(&ctx),
            ctx,
            listener,
            conns: Vec::new(),
            accepted_any: false,
        }
        .run();
        Ok(())
    })
}

struct Polling {
    ctx: Ctx,
    listener: TcpListener,
    conns: Vec<EchoConn<TcpStream>>,
    errors: AcceptErrors,
    /// A connection arrived in this pass.
    accepted_any: bool,
}

impl Polling {
    fn run(&mut self) {
        let idle_sleep = Duration::from_micros(self.ctx.config.poll_sleep_us);
        let work = self.ctx.config.work();
        let mut accept_paused_until: Option<Instant> = None;
        let mut scratch = vec![0u8; self.ctx.config.buffer_size];
        // The loop checks the flag on every pass, so shutdown needs no waker.
        let idle = self.ctx.config.idle_timeout;
        while !self.ctx.shutdown.is_stopping() {
            self.accepted_any = false;
            if accept_paused_until.is_none_or(|until| Instant::now() >= until) {
                // Asks the listener for connections until it has none.
                accept_paused_until = self.accept_ready(usize::MAX);
            }
            let mut busy = self.accepted_any;
            // One clock read per pass, and only with --idle-timeout: the
            // pass visits every connection anyway, so that is where idle
            // ones are found.
            let now = idle.map(|_| Instant::now());
            let mut i = 0;
            while i < self.conns.len() {
                match self.conns[i].drive(&mut scratch, work, &self.ctx.stats, BUDGET) {
                    Ok(Drive::Idle)
                        if idle
                            .zip(now)
                            .is_some_and(|(limit, now)| self.conns[i].idle_for(limit, now)) =>
                    {
                        self.conns.swap_remove(i);
                        self.ctx.stats.idle_closed();
                        busy = true;
                    }
                    Ok(Drive::Idle) => i += 1,
                    Ok(Drive::Progressed | Drive::Budget) => {
                        busy = true;
                        i += 1;
                    }
                    Ok(Drive::Done) => {
                        self.conns.swap_remove(i);
                        busy = true;
                    }
                    Err(_) => {
                        self.ctx.stats.conn_error();
                        self.conns.swap_remove(i);
                        busy = true;
                    }
                }
            }
            if !busy {
                if idle_sleep.is_zero() {
                    thread::yield_now();
                } else {
                    thread::sleep(idle_sleep);
                }
            }
        }
        // Dropping the connections closes them.
    }
}

impl AcceptReady for Polling {
    type Stream = TcpStream;

    fn try_accept(&mut self) -> io::Result<TcpStream> {
        self.listener.accept().map(|(stream, _)| stream)
    }

    fn accept_errors(&mut self) -> &mut AcceptErrors {
        &mut self.errors
    }

    fn accepted(&mut self, stream: TcpStream) {
        self.accepted_any = true;
        if let Some((stream, guard)) = admit(&self.ctx, stream, Mode::NonBlocking) {
            let track_idle = self.ctx.config.idle_timeout.is_some();
            self.conns.push(EchoConn::new(stream, guard, track_idle));
        }
    }
}
