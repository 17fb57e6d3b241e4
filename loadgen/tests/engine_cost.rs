//! What the engine itself costs: the system calls and CPU it reports per
//! message, against a real in-process server. Counts only, no timing: every
//! run is short and bounded, every socket on 127.0.0.1:0.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::Duration;

use loadgen::{Mode, RunResult, RunSpec};
use servers::Style;

mod common;
use common::{compare_fixture, in_process, run};

fn spec(addr: std::net::SocketAddr, conns: usize) -> RunSpec {
    RunSpec {
        addr,
        conns,
        duration: Duration::from_millis(300),
        warmup: Duration::from_millis(50),
        timeout: Duration::from_secs(2),
        ..RunSpec::default()
    }
}

fn epoll_server() -> servers::ServerHandle {
    in_process(Style::Epoll)
}

/// One connection, closed loop: a message costs one write, one read and one
/// epoll_wait. Reading on to EAGAIN after a short read (the socket is
/// edge-triggered: more data raises a new event) would make it four.
#[test]
fn closed_loop_costs_about_three_system_calls_per_message() {
    let server = epoll_server();
    let r = run(&spec(server.local_addr(), 1));
    assert!(r.outcome.ok, "{:?}", r.outcome.reasons);
    assert!(r.messages > 100, "messages: {}", r.messages);
    let calls = r.client.syscalls_per_msg.expect("syscalls counted");
    assert!(
        (2.0..=3.2).contains(&calls),
        "{calls} system calls per message (read to EAGAIN makes it 4)"
    );
    let total = r.client.syscalls.expect("syscall total");
    assert!((calls - total as f64 / r.messages as f64).abs() < 1e-9);
    let cpu = r.client.cpu_us_per_msg.expect("CPU per message measured");
    assert!(cpu > 0.0 && cpu.is_finite(), "{cpu}");
    let cpu_s = r.client.cpu_s_window.expect("CPU total");
    assert!((cpu - cpu_s * 1e6 / r.messages as f64).abs() < 1e-6);
}

/// Many connections and pipelining: still no read to EAGAIN per message,
/// and every message checked and counted.
#[test]
fn pipelined_and_large_messages_stay_exact() {
    let server = epoll_server();
    for (size, pipeline) in [(64, 4), (100_000, 2)] {
        let mut s = spec(server.local_addr(), 10);
        s.size = size;
        s.pipeline = pipeline;
        s.threads = 2;
        let r = run(&s);
        assert!(r.outcome.ok, "{size} B: {:?}", r.outcome.reasons);
        assert_eq!(r.errors.total(), 0, "{}", r.errors.describe());
        assert!(r.messages > 0);
        assert_eq!(r.fairness.per_conn.iter().sum::<u64>(), r.messages);
        assert!(r.client.syscalls_per_msg.is_some());
    }
}

/// A server that echoes one message and closes, the reply and the close
/// likely in one wake-up: the engine stops reading after a short read, but
/// must still see the end of the stream.
#[test]
fn a_close_right_after_the_reply_is_seen_as_eof() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let conns = 5;
    let server = std::thread::spawn(move || {
        for stream in listener.incoming().take(conns) {
            let mut s = stream.unwrap();
            s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
            let mut buf = [0u8; 64];
            if s.read_exact(&mut buf).is_ok() {
                let _ = s.write_all(&buf);
            }
            // Dropped: the FIN follows the reply at once.
        }
    });
    let mut s = spec(addr, conns);
    s.mode = Mode::Closed;
    let r = run(&s);
    server.join().unwrap();
    assert_eq!(r.errors.eof, conns as u64, "{}", r.errors.describe());
    assert_eq!(r.errors.total(), conns as u64, "{}", r.errors.describe());
}

/// Results written before these figures existed still load, without them;
/// merged runs weight CPU and system calls per message by messages.
#[test]
fn old_results_load_and_merges_weight_cost_by_messages() {
    let doc = serde_json::to_value(compare_fixture()).unwrap();
    let old: RunResult = serde_json::from_value(doc["runs"][1].clone()).unwrap();
    assert_eq!(old.client.cpu_us_per_msg, None);
    assert_eq!(old.client.syscalls, None);

    let (mut a, mut b) = (old.clone(), old.clone());
    a.messages = 1_000;
    a.client.cpu_s_window = Some(0.002);
    a.client.syscalls = Some(3_000);
    b.messages = 3_000;
    b.client.cpu_s_window = Some(0.003);
    b.client.syscalls = Some(6_000);
    let m = RunResult::merge(&[a.clone(), b]).unwrap();
    assert_eq!(m.client.cpu_s_window, Some(0.005));
    assert_eq!(m.client.syscalls, Some(9_000));
    let cpu = m.client.cpu_us_per_msg.unwrap();
    assert!((cpu - 1.25).abs() < 1e-9, "{cpu}: 5 ms over 4,000 messages");
    assert_eq!(m.client.syscalls_per_msg, Some(2.25));
    // A run that did not measure them makes the merge's figures unknown.
    let m = RunResult::merge(&[a, old]).unwrap();
    assert_eq!(m.client.cpu_us_per_msg, None);
    assert_eq!(m.client.syscalls_per_msg, None);
}
