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
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crate::accept::{AcceptAction, AcceptErrors};
use crate::echo::{Drive, EchoConn};
use crate::listener::configure_accepted;
use crate::server::{Ctx, Runner, ServerError, spawn_runner};

/// Reads per connection per pass, so a busy peer cannot hold the pass.
const BUDGET: usize = 4;

pub(crate) fn start(ctx: Ctx, listener: TcpListener) -> Result<Runner, ServerError> {
    listener
        .set_nonblocking(true)
        .map_err(ServerError::io("making the listener non-blocking"))?;
    spawn_runner(&ctx.clone(), move || {
        run(&ctx, &listener);
        Ok(())
    })
}

fn run(ctx: &Ctx, listener: &TcpListener) {
    let idle_sleep = Duration::from_micros(ctx.config.poll_sleep_us);
    let work = ctx.config.work();
    let mut errors = AcceptErrors::new(Arc::clone(&ctx.stats), "polling");
    let mut accept_paused_until: Option<Instant> = None;
    let mut conns: Vec<EchoConn<TcpStream>> = Vec::new();
    let mut scratch = vec![0u8; ctx.config.buffer_size];
    // The loop checks the flag on every pass, so shutdown needs no waker.
    while !ctx.shutdown.is_stopping() {
        let mut busy = false;
        if accept_paused_until.is_none_or(|until| Instant::now() >= until) {
            accept_paused_until = None;
            busy |= accept_ready(
                ctx,
                listener,
                &mut errors,
                &mut accept_paused_until,
                &mut conns,
            );
        }
        let mut i = 0;
        while i < conns.len() {
            match conns[i].drive(&mut scratch, work, &ctx.stats, BUDGET) {
                Ok(Drive::Idle) => i += 1,
                Ok(Drive::Progressed | Drive::Budget) => {
                    busy = true;
                    i += 1;
                }
                Ok(Drive::Done) => {
                    conns.swap_remove(i);
                    busy = true;
                }
                Err(_) => {
                    ctx.stats.conn_error();
                    conns.swap_remove(i);
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

/// Asks the listener for connections until it has none. Returns whether any
/// arrived.
fn accept_ready(
    ctx: &Ctx,
    listener: &TcpListener,
    errors: &mut AcceptErrors,
    paused_until: &mut Option<Instant>,
    conns: &mut Vec<EchoConn<TcpStream>>,
) -> bool {
    let mut any = false;
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                errors.on_success();
                any = true;
                let Some(guard) = ctx.stats.admit(ctx.config.max_conns) else {
                    continue;
                };
                let setup = stream
                    .set_nonblocking(true)
                    .and_then(|()| configure_accepted(&stream, ctx.config.nodelay));
                match setup {
                    Ok(()) => conns.push(EchoConn::new(stream, guard)),
                    Err(_) => ctx.stats.conn_failed(),
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return any,
            Err(e) => match errors.on_error(&e) {
                AcceptAction::Retry => {}
                AcceptAction::BackOff(wait) => {
                    *paused_until = Some(Instant::now() + wait);
                    return any;
                }
            },
        }
    }
}
