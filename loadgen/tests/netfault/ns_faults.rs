//! Faults the kernel makes inside a namespace, every style at once:
//! 1% random packet loss and a 2 s blackout (iptables in the namespace),
//! and a bandwidth cap (a tbf qdisc on its `lo`; this kernel has no netem).

use std::time::Duration;

use crate::common::wait_until;
use crate::inside::{self, Load};
use crate::netns::Netns;
use crate::{no_errors, no_mismatch, say, table};

/// Says why the test does not run, and lets it pass.
fn skip(test: &str, why: &str) {
    say(&format!("{test}: skipped: {why}"));
}

/// A namespace where `tool args` works, or `None` after saying why not.
fn namespace(test: &str, tool: &str, args: &[&str]) -> Option<Netns> {
    let made = Netns::new().and_then(|ns| ns.require(tool, args).map(|()| ns));
    made.map_err(|why| skip(test, &why)).ok()
}

const LOSS: [&str; 9] = [
    "OUTPUT",
    "-m",
    "statistic",
    "--mode",
    "random",
    "--probability",
    "0.01",
    "-j",
    "DROP",
];

/// 10 connections in open loop at 500 messages/s, 64 B each, with a
/// timeout well past any fault's stall.
fn open_load(warmup: Duration, duration: Duration) -> Load {
    Load {
        conns: 10,
        size: 64,
        rate: Some(500),
        warmup,
        duration,
        timeout: Duration::from_secs(15),
    }
}

/// Every server still echoes a fresh client, then stops on SIGTERM.
fn still_serving(ns: &mut Netns, served: &[inside::Served]) {
    for s in served {
        if let Err(e) = ns.echoes(s.addr, 4096) {
            panic!("{}: a fresh client after the fault: {e}", s.style);
        }
    }
    inside::stop_all(ns, served);
}

/// 1% of packets dropped at random: every lost segment waits for a
/// retransmission (a tail-loss probe or the RTO, ~200 ms at least here),
/// so the tail grows by orders of magnitude while every byte still comes
/// back right and nothing is an error.
#[test]
fn one_percent_loss_shows_in_the_tail_not_in_the_bytes() {
    let test = "one_percent_loss";
    let Some(mut ns) = namespace(test, "iptables", &["-S"]) else {
        return;
    };
    let served = inside::serve_all(&mut ns);
    let load = open_load(Duration::from_millis(300), Duration::from_secs(2));
    let before = inside::run_all(&ns, &served, &load);
    table(
        "no loss (open loop, 500 msg/s, 10 conns, every style at once)",
        &before,
    );
    no_mismatch(&before);

    let mut rule = vec!["-A"];
    rule.extend(LOSS);
    ns.exec("iptables", &rule).expect("adding the loss rule");
    let lossy = inside::run_all(
        &ns,
        &served,
        &Load {
            duration: Duration::from_secs(4),
            ..load
        },
    );
    let counters = ns.output("iptables", &["-L", "OUTPUT", "-v", "-x", "-n"]);
    rule[0] = "-D";
    ns.exec("iptables", &rule).expect("removing the loss rule");
    table("1% loss (the same load, 4 s)", &lossy);
    println!("{}", counters.as_deref().unwrap_or("no counters"));

    no_errors(&lossy);
    for (style, r) in &lossy {
        assert_eq!(r.connect.established, 10, "{style}");
        // ~40 of each style's segments are lost; each waits >= 200 ms.
        assert!(
            r.latency_us.max >= 150_000,
            "{style}: loss not in the tail: max {} us",
            r.latency_us.max
        );
    }
    still_serving(&mut ns, &served);
}

/// Every packet dropped for 2 s in the middle of an open-loop run: the
/// messages due meanwhile wait for the network to come back (and for
/// TCP's backed-off retransmission after that), which the corrected
/// latency and the longest stall show; nothing is lost or wrong.
#[test]
fn a_blackout_shows_in_corrected_latency_and_the_longest_stall() {
    let test = "blackout";
    let Some(mut ns) = namespace(test, "iptables", &["-S"]) else {
        return;
    };
    let served = inside::serve_all(&mut ns);
    let load = open_load(Duration::from_millis(500), Duration::from_secs(7));
    let runs = inside::start(&ns, &served, &load);
    let connected = wait_until(Duration::from_secs(20), || {
        served
            .iter()
            .all(|s| inside::established(s.pid, s.addr.port()) >= load.conns as usize)
    });
    assert!(connected, "not every run connected within 20 s");
    // The window opens a warm-up after the connections; the blackout
    // starts 1 s into it and ends 2 s later, leaving the window 4 s to see
    // the recovery.
    std::thread::sleep(load.warmup + Duration::from_secs(1));
    ns.exec("iptables", &["-I", "OUTPUT", "-j", "DROP"])
        .expect("starting the blackout");
    std::thread::sleep(Duration::from_secs(2));
    ns.exec("iptables", &["-D", "OUTPUT", "-j", "DROP"])
        .expect("ending the blackout");
    let results = runs.results();
    table(
        "2 s blackout (open loop, 500 msg/s, 10 conns, 7 s)",
        &results,
    );

    no_errors(&results);
    for (style, r) in &results {
        assert!(
            r.latency_us.p99 >= 1_000_000 && r.latency_us.max >= 1_500_000,
            "{style}: the blackout is not in corrected latency: p99 {} us, max {} us",
            r.latency_us.p99,
            r.latency_us.max
        );
        assert!(
            r.fairness.longest_stall_ms >= 1500.0,
            "{style}: longest stall {} ms",
            r.fairness.longest_stall_ms
        );
    }
    still_serving(&mut ns, &served);
}

/// A token bucket of 2 MB/s on the namespace's `lo`, every style's closed
/// loop of 4 KiB messages at once: together they get no more than the cap
/// (each message crosses `lo` twice), each still gets its bytes back right.
#[test]
fn a_bandwidth_cap_holds_every_style_to_it() {
    let test = "bandwidth_cap";
    let Some(mut ns) = namespace(test, "tc", &["qdisc", "show", "dev", "lo"]) else {
        return;
    };
    let served = inside::serve_all(&mut ns);
    let load = Load {
        conns: 2,
        size: 4096,
        rate: None,
        warmup: Duration::from_millis(300),
        duration: Duration::from_secs(3),
        timeout: Duration::from_secs(15),
    };
    let free = inside::run_all(&ns, &served, &load);
    table(
        "no cap (closed loop, 4 KiB, 2 conns, 3 s, every style at once)",
        &free,
    );
    println!("all styles together: {:.0} B/s on the wire", wire(&free));
    no_mismatch(&free);

    // 16 Mbit/s = 2,000,000 B/s; a bucket of 256 KiB (> lo's 64 KiB MTU).
    let (rate, burst) = (2_000_000.0, 256.0 * 1024.0);
    ns.exec(
        "tc",
        &[
            "qdisc", "add", "dev", "lo", "root", "tbf", "rate", "16mbit", "burst", "256kb",
            "latency", "100ms",
        ],
    )
    .expect("adding the tbf qdisc");
    let results = inside::run_all(&ns, &served, &load);
    let stats = ns.output("tc", &["-s", "qdisc", "show", "dev", "lo"]);
    ns.exec("tc", &["qdisc", "del", "dev", "lo", "root"])
        .expect("removing the tbf qdisc");
    table("tbf 16mbit on lo (the same load)", &results);
    println!("{}", stats.as_deref().unwrap_or("no qdisc stats"));

    no_errors(&results);
    let wire = wire(&results);
    let window = results
        .iter()
        .map(|(_, r)| r.measured_s)
        .fold(f64::MAX, f64::min);
    // Headers and window edges: 10% over the rate, plus one full bucket.
    let bound = rate * 1.1 + burst / window;
    println!(
        "all styles together: {:.0} B/s on the wire (cap {rate:.0} B/s)",
        wire
    );
    assert!(
        wire <= bound,
        "{wire:.0} B/s crossed lo, over the cap ({bound:.0} B/s with slack)"
    );
    still_serving(&mut ns, &served);
}

/// Bytes per second that crossed `lo` for all the runs together: each
/// echoed byte crosses it twice (headers left out).
fn wire(results: &[(servers::Style, loadgen::RunResult)]) -> f64 {
    results
        .iter()
        .map(|(_, r)| 2.0 * r.bytes as f64 / r.measured_s)
        .sum()
}
