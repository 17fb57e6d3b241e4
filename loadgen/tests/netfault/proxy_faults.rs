//! Faults made by the proxy between loadgen and each style (in this
//! process, on 127.0.0.1; no root needed): every style at once, each with
//! its own server and proxy.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use loadgen::{RunResult, RunSpec};
use servers::Style;

use crate::common::{in_process, run};
use crate::proxy::{self, Fault};
use crate::{echo_once, no_errors, table};

/// What one style did through the proxy.
struct Through {
    style: Style,
    result: RunResult,
    resets: u64,
    /// A fresh client, straight to the server, after the run.
    afterwards: Result<(), String>,
    took: Duration,
}

/// Runs `spec` through a proxy with `fault` to a server of every style, all
/// at once; every run must end within `limit`. Prints the figures under
/// `title`.
fn every_style(title: &str, fault: Fault, spec: RunSpec, limit: Duration) -> Vec<Through> {
    let _alone = crate::alone();
    let (tx, rx) = mpsc::channel();
    for &style in Style::ALL {
        let (tx, spec) = (tx.clone(), spec.clone());
        std::thread::spawn(move || {
            let server = in_process(style);
            let proxy = proxy::start(server.local_addr(), fault);
            let started = Instant::now();
            let result = run(&RunSpec {
                addr: proxy.addr,
                ..spec
            });
            let took = started.elapsed();
            let _ = tx.send(Through {
                style,
                result,
                resets: proxy.resets.load(Ordering::Relaxed),
                afterwards: echo_once(server.local_addr(), 4096),
                took,
            });
        });
    }
    drop(tx);
    let deadline = Instant::now() + limit;
    let mut done: Vec<Through> = (0..Style::ALL.len())
        .map(|_| {
            let left = deadline.saturating_duration_since(Instant::now());
            rx.recv_timeout(left)
                .unwrap_or_else(|e| panic!("not every style's run ended within {limit:?}: {e}"))
        })
        .collect();
    done.sort_by_key(|t| Style::ALL.iter().position(|s| *s == t.style));
    table(title, &results(&done));
    done
}

fn spec(conns: usize, size: usize, duration: Duration) -> RunSpec {
    RunSpec {
        addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        conns,
        size,
        warmup: Duration::from_millis(200),
        duration,
        timeout: Duration::from_secs(5),
        ..RunSpec::default()
    }
}

fn results(done: &[Through]) -> Vec<(Style, RunResult)> {
    done.iter().map(|t| (t.style, t.result.clone())).collect()
}

/// Every run clean: ok, no error, every byte right, and the server still
/// serves a fresh client.
fn clean(done: &[Through]) {
    no_errors(&results(done));
    for t in done {
        let r = &t.result;
        assert!(r.outcome.ok, "{}: {:?}", t.style, r.outcome.reasons);
        assert_eq!(
            t.afterwards,
            Ok(()),
            "{}: a fresh client afterwards",
            t.style
        );
    }
}

/// Each chunk held 20 ms each way: every round trip takes at least 40 ms,
/// and every byte still comes back as sent.
#[test]
fn a_delay_shows_in_every_round_trip() {
    let delay = Duration::from_millis(20);
    let done = every_style(
        "proxy: 20 ms delay each way (closed loop, 5 conns, 1 s)",
        Fault::Delay(delay),
        spec(5, 64, Duration::from_secs(1)),
        Duration::from_secs(30),
    );
    clean(&done);
    for t in &done {
        // The histogram rounds within 0.1%; the proxy sleeps at least 2 x 20 ms.
        assert!(
            t.result.latency_us.p50 >= 39_900,
            "{}: round trip p50 {} us under a 2 x 20 ms delay",
            t.style,
            t.result.latency_us.p50
        );
    }
}

/// Every byte its own segment, both ways: the server reads each 512-byte
/// message in pieces, loadgen reads each echo in pieces; every style must
/// put them together right.
#[test]
fn one_byte_segments_are_echoed_whole() {
    let done = every_style(
        "proxy: 1-byte segments (closed loop, 512 B, 4 conns, 1 s)",
        Fault::Bytes,
        spec(4, 512, Duration::from_secs(1)),
        Duration::from_secs(30),
    );
    clean(&done);
}

/// Nothing forwarded for 1.5 s in the middle of the run: the closed loop
/// shows it in its longest stall and its max, and the run ends on time.
#[test]
fn a_stall_shows_in_the_longest_stall_and_the_run_ends() {
    let len = Duration::from_millis(1500);
    let run_for = Duration::from_secs(3);
    let done = every_style(
        "proxy: 1.5 s stall (closed loop, 5 conns, 3 s)",
        Fault::Stall {
            at: Duration::from_millis(700),
            len,
        },
        spec(5, 64, run_for),
        Duration::from_secs(40),
    );
    clean(&done);
    for t in &done {
        let r = &t.result;
        assert!(
            r.fairness.longest_stall_ms >= 1300.0 && r.latency_us.max >= 1_300_000,
            "{}: longest stall {} ms, max {} us",
            t.style,
            r.fairness.longest_stall_ms,
            r.latency_us.max
        );
        assert!(
            t.took < run_for + Duration::from_secs(10),
            "{}: took {:?}",
            t.style,
            t.took
        );
    }
}

/// Each connection reset (RST) 10 bytes into its 21st message: loadgen counts one reset
/// per connection and fails the run; the server drops the broken
/// connections and serves a fresh client as before.
#[test]
fn a_reset_mid_stream_is_counted_and_the_server_goes_on() {
    let conns = 5;
    let done = every_style(
        "proxy: reset 10 bytes into the 21st message (closed loop, 5 conns)",
        Fault::ResetAfter(64 * 20 + 10),
        spec(conns, 64, Duration::from_secs(1)),
        Duration::from_secs(30),
    );
    for t in &done {
        let r = &t.result;
        assert_eq!(t.resets, conns as u64, "{}: resets made", t.style);
        assert_eq!(
            (r.errors.reset, r.errors.total()),
            (conns as u64, conns as u64),
            "{}: {}",
            t.style,
            r.errors.describe()
        );
        assert!(
            !r.outcome.ok,
            "{}: a run whose connections were reset is not ok",
            t.style
        );
        assert_eq!(
            t.afterwards,
            Ok(()),
            "{}: a fresh client afterwards",
            t.style
        );
    }
}
