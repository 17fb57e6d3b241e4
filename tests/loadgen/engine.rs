//! loadgen against every server style, in-process.

use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use loadgen::engine::RunOptions;
use loadgen::{Mode, RunResult, RunSpec};
use servers::{Config, Style};

pub use crate::support::{in_process as server, in_process_with, run, run_with};

/// Held by a test that saturates the CPU (an open loop at an absurd rate)
/// and by the open-loop tests that must keep their schedule to pass: on a
/// small machine the one would make the others fall behind, and fail.
pub static SCHEDULE: Mutex<()> = Mutex::new(());

/// Takes [`SCHEDULE`] (a test that failed holding it does not matter).
pub fn schedule_alone() -> MutexGuard<'static, ()> {
    SCHEDULE.lock().unwrap_or_else(|e| e.into_inner())
}

pub fn spec(addr: std::net::SocketAddr) -> RunSpec {
    RunSpec {
        addr,
        conns: 20,
        duration: Duration::from_millis(400),
        warmup: Duration::from_millis(100),
        timeout: Duration::from_secs(2),
        ..RunSpec::default()
    }
}

#[test]
fn closed_loop_against_every_style() {
    for &style in Style::ALL {
        // A pool serves one connection per worker until it closes: with
        // fewer workers than connections the rest wait, and the run fails
        // (see verdicts.rs). Here it gets one worker per connection.
        let server = match style {
            Style::Pool => in_process_with(
                style,
                Config {
                    workers: Some(20),
                    ..Config::default()
                },
            ),
            _ => server(style),
        };
        let r = run(&spec(server.local_addr()));
        assert!(r.outcome.ok, "{style}: {:?}", r.outcome.reasons);
        assert!(r.messages > 0, "{style}: messages");
        assert_eq!(r.errors.total(), 0, "{style}: {}", r.errors.describe());
        assert_eq!(r.connect.established, 20, "{style}");
        assert_eq!(r.fairness.per_conn.len(), 20, "{style}");
        assert_eq!(
            r.fairness.per_conn.iter().sum::<u64>(),
            r.messages,
            "{style}: per-connection counts add up"
        );
        assert!(
            r.fairness.jain_index > 0.0 && r.fairness.jain_index <= 1.0,
            "{style}"
        );
        assert_eq!(
            r.latency_us.count, r.messages,
            "{style}: one latency per message"
        );
        assert!(
            r.latency_raw_us.is_none(),
            "closed loop has no separate raw latency"
        );
        assert!(
            r.latency_kind.contains("closed loop"),
            "{style}: says it is closed-loop"
        );
        // The server echoed at least what loadgen counted (it also echoed
        // the warm-up and the messages in flight at the end).
        let echoed = server.shutdown().unwrap().bytes_echoed;
        assert!(
            echoed >= r.bytes,
            "{style}: server echoed {echoed} < counted {}",
            r.bytes
        );
    }
}

#[test]
fn pipelined_large_messages_across_threads() {
    let server = server(Style::Tasks);
    let spec = RunSpec {
        size: 4096,
        pipeline: 4,
        threads: 2,
        ..spec(server.local_addr())
    };
    let r = run(&spec);
    assert!(r.outcome.ok, "{:?}", r.outcome.reasons);
    assert_eq!(r.bytes, r.messages * 4096);
    assert_eq!(r.client.threads, 2);
    assert_eq!(r.fairness.per_conn.len(), 20);
}

#[test]
fn open_loop_holds_its_rate_and_reports_both_latencies() {
    let _alone = schedule_alone();
    let server = server(Style::Reactor);
    let spec = RunSpec {
        conns: 10,
        mode: Mode::Open { rate: 2000.0 },
        duration: Duration::from_millis(1000),
        ..spec(server.local_addr())
    };
    let r = run(&spec);
    assert!(r.outcome.ok, "{:?}", r.outcome.reasons);
    // A fixed schedule: ~2000 messages in the second, give or take the
    // edges of the window (and a noisy machine).
    assert!(
        (1000..=2200).contains(&r.messages),
        "messages {}",
        r.messages
    );
    let raw = r
        .latency_raw_us
        .as_ref()
        .expect("open loop reports raw latency");
    // The corrected latency also holds the messages still unanswered at
    // the window's end (at most the few in flight here).
    assert_eq!(raw.count + r.unfinished, r.latency_us.count);
    assert!(r.unfinished <= 20, "unfinished {}", r.unfinished);
    assert!(
        r.latency_us.max >= raw.max,
        "corrected latency is never below raw"
    );
    assert!(r.latency_kind.contains("intended"));
}

#[test]
fn idle_connections_are_held_and_not_measured() {
    let server = server(Style::Reactor);
    let spec = RunSpec {
        conns: 5,
        idle: 300,
        ..spec(server.local_addr())
    };
    let r = run(&spec);
    assert!(r.outcome.ok, "{:?}", r.outcome.reasons);
    assert_eq!(r.connect.established, 305);
    assert_eq!(
        r.fairness.per_conn.len(),
        5,
        "only active connections count for fairness"
    );
    assert!(server.summary().peak_conns >= 305);
}

#[test]
fn source_addresses_are_used_round_robin() {
    let server = server(Style::Reactor);
    let spec = RunSpec {
        conns: 8,
        source_ips: (1..=4)
            .map(|i| format!("127.0.0.{i}").parse().unwrap())
            .collect(),
        ..spec(server.local_addr())
    };
    let r = run(&spec);
    assert!(r.outcome.ok, "{:?}", r.outcome.reasons);
    assert_eq!(r.connect.established, 8);
}

#[test]
fn connect_rate_paces_the_connect_phase() {
    let server = server(Style::Reactor);
    let spec = RunSpec {
        conns: 20,
        connect_rate: Some(100.0),
        ..spec(server.local_addr())
    };
    let r = run(&spec);
    assert!(r.outcome.ok, "{:?}", r.outcome.reasons);
    // 20 connections at 100/s: the last starts 190 ms in.
    assert!(
        r.connect.phase_s >= 0.19,
        "connect phase {} s",
        r.connect.phase_s
    );
}

/// A run against an in-process server, sampling this process (the
/// server's pid is ours).
fn run_sampling_this_process(style: Style) -> RunResult {
    let server = server(style);
    let opts = RunOptions {
        server: Some(loadgen::probe::Watch::process(std::process::id())),
        ..RunOptions::default()
    };
    run_with(&spec(server.local_addr()), opts)
}

#[test]
fn server_sampler_reports_this_process() {
    let r = run_sampling_this_process(Style::Threads);
    let sv = r.server.as_ref().expect("server figures");
    assert!(
        sv.samples >= 3,
        "sampled at 10 Hz over 0.5 s: {}",
        sv.samples
    );
    assert!(sv.peak_rss_bytes >= sv.baseline_rss_bytes && sv.baseline_rss_bytes > 0);
    assert!(
        sv.peak_threads >= 20,
        "a thread per connection shows: {}",
        sv.peak_threads
    );
    // This test process's fd table may be small enough to count exactly, or not.
    match sv.peak_fds {
        Some(n) => assert!(n >= 40, "client and server sockets show: {n}"),
        None => assert!(sv.peak_fd_table > 1024),
    }
    assert!(sv.peak_fd_table >= 40);
    assert!(sv.cpu_percent > 0.0);
    assert!(sv.alive_at_end);
    assert!(r.environment.cores >= 1 && !r.environment.kernel.is_empty());
    assert!(!r.environment.loadgen_cpus.is_empty());
}

#[test]
fn context_switches_are_summed_over_threads_or_not_reported() {
    let r = run_sampling_this_process(Style::Threads);
    let sv = r.server.as_ref().expect("server figures");
    // A thread per connection wakes on every message: the voluntary
    // switches of all threads together run into the thousands per second.
    // (The main thread alone, which /proc/PID/status reports, would not.)
    if sv.peak_threads <= 256 {
        let vol = sv.voluntary_ctxt_per_s.expect("measured below 256 threads");
        assert!(vol > 1000.0, "voluntary switches/s {vol}");
    } else {
        assert!(
            sv.voluntary_ctxt_per_s.is_none(),
            "not measured past 256 threads"
        );
    }
}
