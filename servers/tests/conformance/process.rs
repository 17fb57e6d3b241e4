//! The `servers` binary as users run it: the listening line, signals,
//! limits, memory under a client that never reads, and bad input.

use std::io::Write;
use std::net::{Shutdown, TcpStream};
use std::os::unix::process::CommandExt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use servers::Style;

use crate::for_each_style;
use crate::support::{
    IO_TIMEOUT, connect, round_trip, rss_bytes, servers_bin, spawn, spawn_cmd, summary_field,
    terminate,
};

/// SIGTERM with a client connected: exit 0, one summary line on stderr.
#[test]
fn sigterm_exits_zero_with_summary() {
    for_each_style(|style| {
        let server = spawn(style, &[]);
        let mut client = connect(server.addr);
        assert_eq!(round_trip(&mut client, b"ping"), b"ping");
        let (status, stderr, took) = terminate(server);
        assert!(
            status.success(),
            "{style}: exit status {status}, stderr: {stderr}"
        );
        let summaries = stderr.lines().filter(|l| l.starts_with("summary ")).count();
        assert_eq!(summaries, 1, "{style}: one summary line in {stderr:?}");
        assert!(
            stderr.contains(&format!("summary style={style} ")),
            "{style}: {stderr}"
        );
        assert_eq!(
            summary_field(&stderr, "accepted"),
            Some(1),
            "{style}: {stderr}"
        );
        assert_eq!(
            summary_field(&stderr, "bytes_echoed"),
            Some(4),
            "{style}: {stderr}"
        );
        // The 2 s budget is the server's own; a loaded CI box gets slack here.
        assert!(
            took < Duration::from_secs(5),
            "{style}: took {took:?} to exit"
        );
    });
}

/// A client writes 64 MiB and never reads. The server stops reading from it
/// (back-pressure) instead of buffering: its RSS stays under baseline +
/// 32 MiB, and another client is still echoed promptly.
#[test]
fn slow_reader_is_bounded_and_does_not_stall_others() {
    const TOTAL: u64 = 64 << 20;
    const RSS_BOUND: u64 = 32 << 20;
    for_each_style(|style| {
        let server = spawn(style, &[]);
        let mut warm = connect(server.addr);
        assert_eq!(round_trip(&mut warm, b"warm-up"), b"warm-up");
        let baseline = rss_bytes(server.pid);

        let hog = connect(server.addr);
        hog.set_write_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        let written = Arc::new(AtomicU64::new(0));
        let (stalled_tx, stalled_rx) = mpsc::channel();
        let writer = {
            let (mut hog, written) = (hog.try_clone().unwrap(), Arc::clone(&written));
            std::thread::spawn(move || {
                let chunk = vec![0x5Au8; 64 * 1024];
                while written.load(Ordering::Relaxed) < TOTAL {
                    match hog.write(&chunk) {
                        Ok(n) => written.fetch_add(n as u64, Ordering::Relaxed),
                        // A write that times out: the server stopped reading.
                        Err(_) => break,
                    };
                }
                let _ = stalled_tx.send(());
            })
        };
        stalled_rx
            .recv_timeout(Duration::from_secs(60))
            .expect("writer stalls or finishes within 60 s");
        let sent = written.load(Ordering::Relaxed);
        let rss = rss_bytes(server.pid);

        let started = Instant::now();
        let mut other = connect(server.addr);
        assert_eq!(
            round_trip(&mut other, b"still there?"),
            b"still there?",
            "{style}"
        );
        let other_rtt = started.elapsed();

        writer.join().unwrap();
        let _ = hog.shutdown(Shutdown::Both);
        assert!(
            sent < TOTAL,
            "{style}: the server took all {TOTAL} bytes from a peer that never reads"
        );
        assert!(
            rss < baseline + RSS_BOUND,
            "{style}: RSS {} MiB > baseline {} MiB + 32 MiB",
            rss >> 20,
            baseline >> 20
        );
        assert!(
            other_rtt < IO_TIMEOUT,
            "{style}: other client waited {other_rtt:?}"
        );
        eprintln!(
            "{style}: slow reader pushed {} KiB before stalling; RSS {} KiB (baseline {} KiB); other client echoed in {other_rtt:?}",
            sent >> 10,
            rss >> 10,
            baseline >> 10
        );
    });
}

/// With RLIMIT_NOFILE at 64, 200 clients overrun the fd table (of each
/// worker process too: `prefork` has one per CPU, each with 64): accept fails
/// with EMFILE, is counted, and the server backs off and keeps serving.
#[test]
fn emfile_is_survived() {
    for_each_style(|style| {
        let mut cmd = servers_bin();
        cmd.arg(style.name()).args(["--addr", "127.0.0.1:0"]);
        // SAFETY: only async-signal-safe work between fork and exec: one
        // setrlimit call, no allocation.
        unsafe {
            cmd.pre_exec(|| {
                use nix::sys::resource::{Resource, setrlimit};
                setrlimit(Resource::RLIMIT_NOFILE, 64, 64).map_err(std::io::Error::from)
            });
        }
        let server = spawn_cmd(style, cmd);
        let mut clients: Vec<TcpStream> = (0..200).map(|_| connect(server.addr)).collect();
        for c in clients.iter_mut() {
            // Some are served, the rest wait in the backlog.
            let _ = c.write_all(b"x");
        }
        // Keep every client open until the server has run out of fds: it
        // says so once per burst of accept errors.
        assert!(
            server.wait_stderr("accept failed", Duration::from_secs(20)),
            "{style}: no accept error logged with 200 clients and 64 fds"
        );
        // The first client is certainly accepted: its echo proves the server
        // is serving while over its fd limit.
        assert_eq!(
            {
                let mut b = [0u8; 1];
                std::io::Read::read_exact(&mut clients[0], &mut b).map(|_| b[0])
            }
            .ok(),
            Some(b'x'),
            "{style}: first client echoed"
        );
        drop(clients);
        // Freed fds: the server must come back and serve a new client.
        let deadline = Instant::now() + IO_TIMEOUT;
        let echoed = loop {
            let mut c = connect(server.addr);
            c.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
            let ok = c.write_all(b"again").is_ok() && {
                let mut b = [0u8; 5];
                std::io::Read::read_exact(&mut c, &mut b).is_ok() && &b == b"again"
            };
            if ok || Instant::now() >= deadline {
                break ok;
            }
        };
        let (status, stderr, _) = terminate(server);
        assert!(
            echoed,
            "{style}: serving again after EMFILE; stderr: {stderr}"
        );
        assert!(status.success(), "{style}: exit {status}; stderr: {stderr}");
        let accept_errors = summary_field(&stderr, "accept_errors").unwrap_or(0);
        assert!(accept_errors > 0, "{style}: EMFILE was counted: {stderr}");
    });
}

#[test]
fn listening_line_for_tasks_on_port_zero() {
    // `spawn` checks the line's address, style and pid.
    let server = spawn(Style::Tasks, &[]);
    assert!(server.addr.ip().is_loopback());
}

#[test]
fn list_prints_every_style() {
    let out = servers_bin().arg("list").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    for style in Style::ALL {
        assert!(
            text.lines().any(|l| l.starts_with(style.name())),
            "{style} in {text}"
        );
    }
}

/// Bad input exits 2 with a message naming the flag.
#[test]
fn bad_cli_input_names_the_flag() {
    let cases: &[(&[&str], &str)] = &[
        (&["threads", "--backlog", "lots"], "--backlog"),
        (&["threads", "--buffer-size", "0"], "--buffer-size"),
        (&["reactor", "--workers", "many"], "--workers"),
        (&["tasks", "--addr", "not-an-address"], "--addr"),
        (&["coroutines", "--stack-size", "12"], "--stack-size"),
        (&["polling", "--max-conns", "0"], "--max-conns"),
        (&["threads", "--no-such-flag"], "--no-such-flag"),
        (&["fibers"], "fibers"),
    ];
    for (args, flag) in cases {
        let out = servers_bin().args(*args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains(flag),
            "{args:?}: message names {flag}: {stderr}"
        );
    }
}

/// A port already in use is a clear error naming --addr, exit 1, no panic.
#[test]
fn address_in_use_is_a_clear_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = servers_bin()
        .args(["threads", "--addr", &addr])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("--addr") && stderr.contains(&addr),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}
