//! Results serialise with their histograms and merge exactly.

use loadgen::RunResult;
use servers::Style;

use crate::engine::{run, server, spec};

#[test]
fn json_round_trip_keeps_everything() {
    let server = server(Style::Reactor);
    let r = run(&spec(server.local_addr()));
    let text = loadgen::report::json(&r);
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(value["schema_version"], 1);
    assert!(
        value["histograms"]["latency"]
            .as_str()
            .is_some_and(|s| !s.is_empty())
    );
    let back: RunResult = serde_json::from_str(&text).unwrap();
    assert_eq!(back, r);
}

#[test]
fn merge_adds_histograms_and_sums_counts() {
    let server = server(Style::Tasks);
    let a = run(&spec(server.local_addr()));
    let b = run(&spec(server.local_addr()));
    // Through JSON, as `loadgen merge` reads them.
    let a: RunResult = serde_json::from_str(&loadgen::report::json(&a)).unwrap();
    let b: RunResult = serde_json::from_str(&loadgen::report::json(&b)).unwrap();
    let m = RunResult::merge(&[a.clone(), b.clone()]).unwrap();
    let mut sum = a.histograms.latency.0.clone();
    sum.add(&b.histograms.latency.0).unwrap();
    assert_eq!(m.histograms.latency.0, sum, "histograms added exactly");
    assert_eq!(m.latency_us.count, a.messages + b.messages);
    assert_eq!(m.latency_us.p99, sum.value_at_quantile(0.99));
    assert_eq!(m.latency_us.max, a.latency_us.max.max(b.latency_us.max));
    assert_eq!(m.messages, a.messages + b.messages);
    assert!(
        (m.throughput_msgs_per_s - (a.throughput_msgs_per_s + b.throughput_msgs_per_s)).abs()
            < 1e-6
    );
    assert_eq!(m.errors.total(), a.errors.total() + b.errors.total());
    assert_eq!(m.spec.conns, 40);
    assert_eq!(m.fairness.per_conn.len(), 40);
    assert_eq!(m.merged_runs, 2);
    assert_eq!(m.histograms.connect.0.len(), 40);
    let mut first = a.histograms.first_reply.0.clone();
    first.add(&b.histograms.first_reply.0).unwrap();
    assert_eq!(
        m.histograms.first_reply.0, first,
        "first replies added exactly"
    );
    assert_eq!(m.first_reply_us.count, 40, "every connection got a reply");
    assert_eq!(
        m.first_reply_us.max,
        a.first_reply_us.max.max(b.first_reply_us.max)
    );
    assert_eq!(m.conns_unserved, a.conns_unserved + b.conns_unserved);
}

/// `client.busy_mean` is the mean over client threads: merged, every thread
/// counts once, whichever file it came from and however many were merged.
#[test]
fn merge_weights_busy_mean_by_client_threads() {
    let server = server(Style::Tasks);
    let base = run(&spec(server.local_addr()));
    let with = |threads: usize, busy: f64| {
        let mut r = base.clone();
        r.client.threads = threads;
        r.client.busy_mean = busy;
        r
    };
    let three = [with(1, 0.3), with(1, 0.3), with(1, 0.9)];
    let m = RunResult::merge(&three).unwrap();
    assert!(
        (m.client.busy_mean - 0.5).abs() < 1e-9,
        "three files of one thread: {}",
        m.client.busy_mean
    );
    let uneven = [with(4, 0.5), with(1, 1.0)];
    let m = RunResult::merge(&uneven).unwrap();
    assert!(
        (m.client.busy_mean - 0.6).abs() < 1e-9,
        "four threads at 0.5 and one at 1.0: {}",
        m.client.busy_mean
    );
    assert_eq!(m.client.threads, 5);
    // Merging a merge changes nothing.
    let m = RunResult::merge(&[RunResult::merge(&three[..2]).unwrap(), three[2].clone()]).unwrap();
    assert!(
        (m.client.busy_mean - 0.5).abs() < 1e-9,
        "{}",
        m.client.busy_mean
    );
}

/// Every run its own id; a merge gets one of its own and lists the runs in
/// it, those of merged parts included, so that a later merge can tell
/// whether it would hold one run twice.
#[test]
fn runs_have_ids_and_merges_list_their_runs() {
    let server = server(Style::Tasks);
    let runs: Vec<RunResult> = (0..3).map(|_| run(&spec(server.local_addr()))).collect();
    let ids: Vec<&str> = runs.iter().map(|r| r.run_id.as_str()).collect();
    assert!(ids.iter().all(|id| !id.is_empty()), "{ids:?}");
    assert!(
        ids[0] != ids[1] && ids[1] != ids[2] && ids[0] != ids[2],
        "{ids:?}"
    );
    let ab = RunResult::merge(&runs[..2]).unwrap();
    assert!(!ab.run_id.is_empty() && !ids.contains(&ab.run_id.as_str()));
    let abc = RunResult::merge(&[ab, runs[2].clone()]).unwrap();
    assert_eq!(abc.merged_from, ids);
    assert!(abc.merged_despite.is_empty());
}
