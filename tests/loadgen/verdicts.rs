//! Honest verdicts (issue 15, item 2): a run is not "ok" when what it
//! measured is not what was asked. A stall at the end of an open-loop
//! window shows in its latency; an open loop that does not reach its rate
//! fails and says by how much; connections that never got a reply fail the
//! run, however short it is.

use std::time::Duration;

use loadgen::{Mode, RunSpec};
use servers::{Config, Style};

use crate::broken::{self, Fault};
use crate::engine::in_process_with;
use crate::engine::{run, server, spec};

/// 5 connections at 1000 msg/s in all (200/s each), 100 ms of warm-up and
/// 1 s measured: the server answers each connection's first 170 messages
/// (about 0.75 s into the window) and then nothing. The last quarter of the
/// window's messages are due and never answered: they must show in the
/// corrected latency (as lower bounds, from their slots to the window's
/// end), be counted, and the run must not pass.
#[test]
fn a_stall_at_the_end_of_an_open_window_shows_in_latency() {
    // An open loop too: beside the other open-loop tests it made one of
    // them fall behind its schedule (CI, a 2-core machine).
    let _alone = crate::engine::schedule_alone();
    let server = broken::start(Fault::StallAfter(64 * 170));
    let r = run(&RunSpec {
        conns: 5,
        mode: Mode::Open { rate: 1000.0 },
        warmup: Duration::from_millis(100),
        duration: Duration::from_millis(1000),
        // Longer than the stall and the drain: no message times out.
        timeout: Duration::from_secs(5),
        ..spec(server.addr)
    });
    assert_eq!(r.errors.total(), 0, "{}", r.errors.describe());
    // About 5 x 50 messages were due in the stall's 250 ms.
    assert!(
        r.latency_us.count >= r.messages + 150,
        "the unanswered messages are in the corrected latency: {} recorded, {} completed",
        r.latency_us.count,
        r.messages
    );
    assert!(
        r.latency_us.p99 >= 100_000,
        "corrected p99 {} us",
        r.latency_us.p99
    );
    assert!(
        r.latency_us.max >= 200_000,
        "corrected max {} us",
        r.latency_us.max
    );
    assert_eq!(
        r.latency_us.count,
        r.messages + r.unfinished,
        "every unfinished message is recorded once"
    );
    assert!(r.unfinished >= 150, "unfinished {}", r.unfinished);
    let text = loadgen::report::text(&r);
    assert!(
        text.contains(&format!("unfinished   {} message(s)", r.unfinished)),
        "{text}"
    );
    assert!(!r.outcome.ok, "{:?}", r.outcome.reasons);
    assert!(
        r.outcome
            .reasons
            .iter()
            .any(|m| m.contains("of 1000 msg/s") && m.contains("had no reply by its end")),
        "{:?}",
        r.outcome.reasons
    );
}

/// An open loop asked for far more than the client can send: it achieves
/// a sliver of it, and the run must say so and fail.
#[test]
fn an_open_loop_far_below_its_rate_fails_and_says_why() {
    let _alone = crate::engine::schedule_alone();
    let server = server(Style::Reactor);
    let r = run(&RunSpec {
        conns: 2,
        mode: Mode::Open {
            rate: 100_000_000.0,
        },
        warmup: Duration::from_millis(100),
        duration: Duration::from_millis(400),
        ..spec(server.local_addr())
    });
    assert!(!r.outcome.ok, "{:?}", r.outcome.reasons);
    assert!(
        r.outcome
            .reasons
            .iter()
            .any(|m| m.contains("achieved") && m.contains("of 100000000 msg/s")),
        "{:?}",
        r.outcome.reasons
    );
}

/// A pool of 2 workers, each serving one connection until it closes, and
/// 5 connections in a short run: 3 wait the whole run. Their wait must
/// fail the run, short as it is (a longer one fails on their timeouts).
#[test]
fn a_pool_with_more_connections_than_workers_fails_a_short_run() {
    let server = in_process_with(
        Style::Pool,
        Config {
            workers: Some(2),
            ..Config::default()
        },
    );
    let r = run(&RunSpec {
        conns: 5,
        ..spec(server.local_addr())
    });
    assert_eq!(r.conns_unserved, 3);
    assert_eq!(r.errors.total(), 0, "{}", r.errors.describe());
    assert!(!r.outcome.ok, "{:?}", r.outcome.reasons);
    assert!(
        r.outcome
            .reasons
            .iter()
            .any(|m| m.contains("3 of 5 connections sent and never got a reply")),
        "{:?}",
        r.outcome.reasons
    );
}
