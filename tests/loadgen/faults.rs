//! What loadgen does when the server misbehaves: every fault is counted,
//! every run ends within bounded time, and the result says it failed.

use std::time::{Duration, Instant};

use loadgen::{Mode, RunSpec};

use crate::broken::{self, Fault};
use crate::engine::{run, spec};

#[test]
fn a_flipped_byte_is_a_mismatch() {
    let server = broken::start(Fault::FlipByte(100));
    let r = run(&spec(server.addr));
    assert!(r.errors.mismatch >= 1, "{}", r.errors.describe());
    assert!(!r.outcome.ok);
}

#[test]
fn a_dropped_byte_is_a_mismatch() {
    let server = broken::start(Fault::DropByte(100));
    let r = run(&spec(server.addr));
    assert!(r.errors.mismatch >= 1, "{}", r.errors.describe());
    assert!(!r.outcome.ok);
}

#[test]
fn a_stalled_server_times_out_and_the_run_ends() {
    let server = broken::start(Fault::StallAfter(64 * 10));
    let spec = RunSpec {
        duration: Duration::from_secs(30),
        timeout: Duration::from_millis(300),
        ..spec(server.addr)
    };
    let started = Instant::now();
    let r = run(&spec);
    assert_eq!(
        r.errors.timeout,
        20,
        "every connection timed out: {}",
        r.errors.describe()
    );
    assert!(!r.outcome.ok);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "ended long before its 30 s duration: {:?}",
        started.elapsed()
    );
}

#[test]
fn a_server_closing_early_is_counted_as_eof() {
    let server = broken::start(Fault::CloseAfter(64 * 5));
    let r = run(&spec(server.addr));
    assert_eq!(r.errors.eof, 20, "{}", r.errors.describe());
    assert!(!r.outcome.ok);
    assert!(
        r.outcome
            .reasons
            .iter()
            .any(|m| m.contains("closed before the end"))
    );
}

#[test]
fn nothing_listening_is_refused() {
    let addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let r = run(&spec(addr));
    assert_eq!(r.errors.refused, 20, "{}", r.errors.describe());
    assert_eq!(r.connect.established, 0);
    assert!(!r.outcome.ok);
    assert!(
        r.outcome
            .reasons
            .iter()
            .any(|m| m.contains("no connection could be established"))
    );
}

/// One 400 ms pause of the server: in open loop (one message in flight per
/// connection) the messages scheduled during the pause wait for it, so the
/// corrected latency shows the pause and the raw latency, measured from the
/// delayed actual send, does not.
#[test]
fn a_stall_shows_in_corrected_latency_not_in_raw() {
    let _alone = crate::engine::schedule_alone();
    let server = broken::start(Fault::PauseOnce {
        at: Duration::from_millis(600),
        len: Duration::from_millis(400),
    });
    let spec = RunSpec {
        conns: 5,
        mode: Mode::Open { rate: 1000.0 },
        warmup: Duration::from_millis(200),
        duration: Duration::from_millis(1500),
        ..spec(server.addr)
    };
    let r = run(&spec);
    assert!(r.outcome.ok, "{:?}", r.outcome.reasons);
    let raw = r.latency_raw_us.as_ref().unwrap();
    // About 400 of ~1500 messages were scheduled inside the pause.
    assert!(
        r.latency_us.p90 >= 100_000,
        "corrected p90 {} us",
        r.latency_us.p90
    );
    assert!(raw.p90 < 50_000, "raw p90 {} us", raw.p90);
    assert!(
        r.latency_us.max >= 300_000,
        "corrected max {} us",
        r.latency_us.max
    );
}

/// The closed loop, by contrast, records the same pause as a handful of slow
/// samples: its p90 stays low.
#[test]
fn closed_loop_hides_the_same_stall() {
    let server = broken::start(Fault::PauseOnce {
        at: Duration::from_millis(600),
        len: Duration::from_millis(400),
    });
    let spec = RunSpec {
        conns: 5,
        warmup: Duration::from_millis(200),
        duration: Duration::from_millis(1500),
        ..spec(server.addr)
    };
    let r = run(&spec);
    assert!(r.outcome.ok, "{:?}", r.outcome.reasons);
    assert!(
        r.latency_us.max >= 300_000,
        "the stall is in the max: {}",
        r.latency_us.max
    );
    assert!(
        r.latency_us.p90 < 50_000,
        "but not in p90: {}",
        r.latency_us.p90
    );
    assert!(r.fairness.longest_stall_ms >= 300.0);
}

#[test]
fn a_server_that_dies_mid_run_ends_it() {
    let server = crate::engine::server(servers::Style::Reactor);
    let spec = RunSpec {
        duration: Duration::from_secs(30),
        ..spec(server.local_addr())
    };
    let started = Instant::now();
    let killer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(500));
        drop(server);
    });
    let r = run(&spec);
    killer.join().unwrap();
    assert!(!r.outcome.ok);
    assert!(
        r.errors.eof + r.errors.reset >= 20,
        "{}",
        r.errors.describe()
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}

/// Each connection's first reply comes 300 ms late, the rest at once: the
/// wait shows in first-reply latency, and nobody is left unserved.
#[test]
fn a_delayed_first_reply_shows_in_first_reply_latency() {
    let server = broken::start(Fault::DelayFirst(Duration::from_millis(300)));
    let r = run(&RunSpec {
        conns: 5,
        ..spec(server.addr)
    });
    assert!(r.outcome.ok, "{:?}", r.outcome.reasons);
    assert_eq!(r.first_reply_us.count, 5, "every connection got a reply");
    assert_eq!(r.conns_unserved, 0);
    assert!(
        r.first_reply_us.p50 >= 300_000 && r.first_reply_us.max < 2_000_000,
        "first reply p50 {} us, max {} us",
        r.first_reply_us.p50,
        r.first_reply_us.max
    );
    assert!(
        r.latency_us.p50 < 50_000,
        "later round trips are quick: p50 {} us",
        r.latency_us.p50
    );
    let text = loadgen::report::text(&r);
    assert!(text.contains("first reply  p50 "), "{text}");
    assert!(!text.contains("got no reply"), "{text}");
}

/// Like a fixed pool of 4 busy workers: 4 connections are served, 6 wait
/// for the whole run. They are counted as unserved; as long as their
/// messages have not timed out that is not an error, but it fails the run.
#[test]
fn connections_never_answered_are_unserved_not_errors() {
    let server = broken::start(Fault::ServeFirst(4));
    let started = Instant::now();
    let r = run(&RunSpec {
        conns: 10,
        ..spec(server.addr)
    });
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(r.conns_unserved, 6, "{:?}", r.first_reply_us);
    assert_eq!(r.first_reply_us.count, 4);
    assert_eq!(r.served(), Some((4, 10)));
    assert_eq!(r.errors.total(), 0, "{}", r.errors.describe());
    assert!(!r.outcome.ok);
    assert!(
        r.outcome
            .reasons
            .iter()
            .any(|m| m.contains("6 of 10 connections sent and never got a reply")),
        "{:?}",
        r.outcome.reasons
    );
    let text = loadgen::report::text(&r);
    assert!(
        text.contains("6 of 10 connections got no reply (queued behind busy workers?)"),
        "{text}"
    );
    let csv = loadgen::report::csv_row(&r);
    let header = loadgen::report::csv_header();
    let column = header
        .split(',')
        .position(|c| c == "conns_unserved")
        .unwrap();
    assert_eq!(csv.split(',').nth(column), Some("6"), "{header}\n{csv}");
}

/// When the unanswered connections' messages do time out, those are
/// timeouts as ever, and the connections are still counted as unserved.
#[test]
fn unserved_connections_that_time_out_are_errors_too() {
    let server = broken::start(Fault::ServeFirst(2));
    let r = run(&RunSpec {
        conns: 5,
        duration: Duration::from_millis(800),
        timeout: Duration::from_millis(300),
        ..spec(server.addr)
    });
    assert_eq!(r.errors.timeout, 3, "{}", r.errors.describe());
    assert_eq!(r.conns_unserved, 3);
    assert_eq!(r.first_reply_us.count, 2);
    assert!(!r.outcome.ok);
}

/// A churn slot whose connection fails (here: a server that closes every
/// tenth connection at once) counts the failure and goes on churning. It
/// used to end the slot for the rest of the run, so one transient failure
/// (a refused connect, EADDRNOTAVAIL on a busy machine) ended a soak's
/// whole churn load as "every active connection was closed before the end
/// of the run".
#[test]
fn a_failed_churn_connection_does_not_end_its_slot() {
    use std::io::{Read, Write};
    use std::net::TcpListener;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.set_nonblocking(true).expect("non-blocking");
    let addr = listener.local_addr().expect("addr");
    let stop = Arc::new(AtomicBool::new(false));
    let server = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let Ok((mut conn, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(1));
                    continue;
                };
                n += 1;
                if n % 10 == 0 {
                    continue; // dropped: closed before a reply
                }
                let _ = conn.set_nonblocking(false);
                let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
                let mut buf = [0u8; 4096];
                // One connection at a time: a churn slot sends one message.
                while let Ok(k) = conn.read(&mut buf) {
                    if k == 0 || conn.write_all(&buf[..k]).is_err() {
                        break;
                    }
                }
            }
        })
    };
    let spec = RunSpec {
        mode: Mode::Churn,
        conns: 1,
        duration: Duration::from_secs(1),
        ..spec(addr)
    };
    let r = run(&spec);
    stop.store(true, Ordering::Relaxed);
    server.join().expect("server thread");
    assert!(
        !r.outcome
            .reasons
            .iter()
            .any(|why| why.contains("every active connection was closed")),
        "{:?}",
        r.outcome.reasons
    );
    assert!(
        r.errors.total() >= 2,
        "each dropped connection is counted: {}",
        r.errors.describe()
    );
    assert!(!r.outcome.ok, "and fails the run");
    assert!(
        r.connect.established >= 30,
        "the slot went on churning: {} connections",
        r.connect.established
    );
}
