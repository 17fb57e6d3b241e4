//! `--idle-timeout` in every style: an idle connection is closed after the
//! limit (not before), an active one never is, and a crowd of slowloris
//! connections (one byte, then nothing) neither keeps a fresh client waiting
//! nor holds the server's resources for good.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use servers::{Config, Style};

use crate::for_each_style;
use crate::support::{IO_TIMEOUT, connect, raise_fd_limit, round_trip, start, wait_until};

/// Waits for EOF (or a reset) on a connection the server should close;
/// returns when it came, or fails after `limit`.
fn closed_within(stream: &mut TcpStream, limit: Duration) -> Result<(), String> {
    stream.set_read_timeout(Some(limit)).unwrap();
    let mut buf = [0u8; 64];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return Ok(()),
            // The echo of what this client sent before going quiet.
            Ok(_) => continue,
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return Ok(()),
            // A signal (the forking styles' SIGCHLD) is no answer.
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(format!("not closed: {e}")),
        }
    }
}

#[test]
fn an_idle_connection_is_closed_after_the_limit_and_an_active_one_never() {
    const LIMIT: Duration = Duration::from_secs(1);
    const SLACK: Duration = Duration::from_secs(2);
    for_each_style(|style| {
        let server = start(
            style,
            Config {
                idle_timeout: Some(LIMIT),
                ..Config::default()
            },
        );
        let addr = server.local_addr();
        let opened = Instant::now();
        let mut idle = connect(addr);
        let watcher = thread::spawn(move || {
            let closed = closed_within(&mut idle, LIMIT + SLACK);
            (closed, opened.elapsed())
        });
        // Active: a byte every tenth of the limit, for two and a half limits.
        let mut active = connect(addr);
        let mut pings = 0u32;
        while opened.elapsed() < LIMIT * 5 / 2 {
            assert_eq!(
                round_trip(&mut active, &[pings as u8]),
                [pings as u8],
                "{style}"
            );
            pings += 1;
            thread::sleep(LIMIT / 10);
        }
        let (closed, after) = watcher.join().expect("watcher");
        closed.unwrap_or_else(|e| panic!("{style}: idle connection after {after:?}: {e}"));
        assert!(
            after >= LIMIT,
            "{style}: idle connection closed early, after {after:?}"
        );
        assert_eq!(
            round_trip(&mut active, b"still here"),
            b"still here",
            "{style}: the active connection was kept"
        );
        assert!(
            wait_until(IO_TIMEOUT, || server.summary().idle_closed == 1),
            "{style}: idle_closed = {} (want 1)",
            server.summary().idle_closed
        );
        drop(active);
        let summary = server.shutdown().expect("clean shutdown");
        assert_eq!(summary.idle_closed, 1, "{style}");
        assert_eq!(summary.conn_errors, 0, "{style}: {summary}");
    });
}

#[test]
fn slowloris_connections_do_not_keep_a_fresh_client_waiting() {
    const CROWD: usize = 3_000;
    let limit = raise_fd_limit();
    assert!(
        limit >= 6_500,
        "this test needs 6,500 fds (client and in-process server), have {limit}"
    );
    for_each_style(|style| {
        // `pool` serves `--workers` connections at a time, each until it
        // closes: the crowd holds every worker until its connections time
        // out, CROWD / workers of them in turn, so the pool's limit is short
        // and the fresh client is served once the crowd has timed out.
        // Every other style serves it while the crowd is still open.
        let idle_limit = match style {
            Style::Pool => Duration::from_millis(50),
            _ => Duration::from_secs(2),
        };
        let server = start(
            style,
            Config {
                idle_timeout: Some(idle_limit),
                ..Config::default()
            },
        );
        let addr = server.local_addr();
        let started = Instant::now();
        let mut crowd: Vec<TcpStream> = (0..CROWD)
            .map(|i| {
                let mut c = connect(addr);
                c.write_all(&[i as u8])
                    .unwrap_or_else(|e| panic!("{style}: slowloris {i}: {e}"));
                c
            })
            .collect();
        let bound = IO_TIMEOUT + idle_limit * (CROWD as u32 / 16);
        let mut fresh = connect(addr);
        fresh.set_read_timeout(Some(bound)).unwrap();
        assert_eq!(
            round_trip(&mut fresh, b"served despite the crowd"),
            b"served despite the crowd",
            "{style}"
        );
        if style != Style::Pool {
            assert!(
                server.summary().idle_closed < CROWD as u64,
                "{style}: the fresh client was only served after the whole crowd timed out ({:?})",
                started.elapsed()
            );
        }
        // It closes (it would time out too while the crowd is watched).
        drop(fresh);
        // Every slowloris connection is closed, and its resources go.
        for (i, c) in crowd.iter_mut().enumerate() {
            closed_within(c, bound).unwrap_or_else(|e| panic!("{style}: slowloris {i}: {e}"));
        }
        drop(crowd);
        assert!(
            wait_until(IO_TIMEOUT, || server.summary().idle_closed == CROWD as u64),
            "{style}: idle_closed = {} of {CROWD}",
            server.summary().idle_closed
        );
        assert!(
            wait_until(IO_TIMEOUT, || server.summary().active == 0),
            "{style}: {} connections still counted open",
            server.summary().active
        );
        server.shutdown().expect("clean shutdown");
    });
}

/// Off unless asked: a connection that says nothing for longer than any
/// limit a test would use is still served.
#[test]
fn without_the_flag_nothing_is_closed_for_being_idle() {
    assert_eq!(Config::default().idle_timeout, None);
    for_each_style(|style| {
        let server = start(style, Config::default());
        let mut quiet = connect(server.local_addr());
        quiet
            .set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        let mut buf = [0u8; 1];
        let early = loop {
            match quiet.read(&mut buf) {
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                other => break other,
            }
        };
        assert!(
            matches!(&early, Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)),
            "{style}: a quiet connection was closed: {early:?}"
        );
        quiet.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        assert_eq!(round_trip(&mut quiet, b"late"), b"late", "{style}");
        assert_eq!(server.summary().idle_closed, 0, "{style}");
    });
}
