//! Result formats: a human table, JSON (the schema in [`crate::results`]),
//! and CSV with one row per run.

use crate::report::md::{put, putln};

use crate::results::RunResult;
use crate::results::server::ServerStats;
use crate::results::spec::Mode;

pub use crate::results::fmt_us;

/// loadgen's own cost per message, where it was measured.
fn client_cost(c: &crate::results::ClientStats) -> String {
    let cpu = c.cpu_us_per_msg.map_or("CPU/msg not measured".into(), |v| {
        format!("{v:.2} us CPU/msg")
    });
    let calls = c
        .syscalls_per_msg
        .map_or("syscalls/msg not measured".into(), |v| {
            format!("{v:.2} syscalls/msg")
        });
    format!("{cpu}, {calls}")
}

/// The human table printed on stdout.
pub fn text(r: &RunResult) -> String {
    let mut s = String::new();
    let mode = match r.spec.mode {
        Mode::Closed => format!("closed loop, pipeline {}", r.spec.pipeline),
        Mode::Open { rate } => format!("open loop at {rate:.0} msg/s"),
        Mode::Churn => "churn (connect, one message, close)".to_string(),
    };
    putln!(
        s,
        "{}loadgen -> {}: {} conns (+{} idle), {} B messages, {mode}, {:.1} s measured after {:.1} s warm-up, {} thread(s)",
        r.label
            .as_deref()
            .map(|l| format!("[{l}] "))
            .unwrap_or_default(),
        r.spec.addr,
        r.spec.conns,
        r.spec.idle,
        r.spec.size,
        r.measured_s,
        r.spec.warmup.as_secs_f64(),
        r.spec.threads,
    );
    putln!(
        s,
        "  throughput   {:.0} msg/s, {:.2} MB/s ({} messages)",
        r.throughput_msgs_per_s,
        r.throughput_mb_per_s,
        r.messages
    );
    let row = |name: &str, p: &crate::results::Percentiles| {
        format!(
            "  {name:<12} p50 {}  p90 {}  p99 {}  p99.9 {}  p99.99 {}  max {}\n",
            fmt_us(p.p50),
            fmt_us(p.p90),
            fmt_us(p.p99),
            fmt_us(p.p999),
            fmt_us(p.p9999),
            fmt_us(p.max)
        )
    };
    putln!(s, "  latency: {}", r.latency_kind);
    s.push_str(&row(
        if r.latency_raw_us.is_some() {
            "corrected"
        } else {
            "round trip"
        },
        &r.latency_us,
    ));
    if let Some(raw) = &r.latency_raw_us {
        s.push_str(&row("raw (sent)", raw));
    }
    if r.unfinished > 0 {
        // They are in the corrected row: say what its extra counts are.
        putln!(
            s,
            "  unfinished   {} message(s) due in the window had no reply by its end \
             (in corrected, their waits so far: lower bounds)",
            r.unfinished
        );
    }
    let c = &r.connect;
    putln!(
        s,
        "  connect      {}/{} established, p50 {}  p99 {}  max {}, {:.0} conn/s",
        c.established,
        c.attempted,
        fmt_us(c.p50_us),
        fmt_us(c.p99_us),
        fmt_us(c.max_us),
        c.rate_per_s
    );
    if let Some(line) = first_reply_line(r) {
        putln!(s, "  first reply  {line}");
    }
    let f = &r.fairness;
    putln!(
        s,
        "  fairness     Jain {:.3}, per connection min {} max {}, longest stall {:.1} ms",
        f.jain_index,
        f.min_per_conn,
        f.max_per_conn,
        f.longest_stall_ms
    );
    putln!(s, "  errors       {}", r.errors.describe());
    putln!(
        s,
        "  client       busiest thread {:.0}% busy, {}{}",
        r.client.busy_max * 100.0,
        client_cost(&r.client),
        if r.client.client_bound {
            " -- CLIENT-BOUND: these figures are loadgen's limit, not the server's"
        } else {
            ""
        }
    );
    if let Some(sv) = &r.server {
        let ctxt = match (sv.voluntary_ctxt_per_s, sv.involuntary_ctxt_per_s) {
            (Some(v), Some(i)) => format!("ctx switches {v:.0}/s voluntary {i:.0}/s involuntary"),
            _ if sv.memory_measure == "pss_tree" => {
                "ctx switches not measured (a process of the tree exited, and /proc keeps none of its switches; or over 256 threads)"
                    .to_string()
            }
            _ => format!("ctx switches not measured ({} threads)", sv.peak_threads),
        };
        let fds = match sv.peak_fds {
            Some(n) => format!("fds {n}"),
            None => format!("fd table {} slots", sv.peak_fd_table),
        };
        putln!(
            s,
            "  server {} ({}) {} peak {:.1} MiB (baseline {:.1} MiB, {:.1} KiB/conn), CPU {:.0}%, {ctxt}, threads {}, {fds}{}{}",
            sv.container
                .clone()
                .or(sv.pid.map(|p| format!("pid {p}")))
                .unwrap_or_default(),
            sv.source,
            memory_label(sv),
            sv.peak_rss_bytes as f64 / 1048576.0,
            sv.baseline_rss_bytes as f64 / 1048576.0,
            sv.rss_per_conn_bytes / 1024.0,
            sv.cpu_percent,
            sv.peak_threads,
            if sv.alive_at_end {
                ""
            } else {
                " -- EXITED during the run"
            },
            sampling_note(sv)
                .map(|n| format!("; {n}"))
                .unwrap_or_default()
        );
    }
    let e = &r.environment;
    putln!(
        s,
        "  environment  kernel {}, {} x {}, loadgen {} ({}), fd limit {}, somaxconn {}",
        e.kernel,
        e.cores,
        e.cpu_model,
        e.loadgen_version,
        e.git_revision,
        e.fd_limit,
        e.somaxconn
            .map(|v| v.to_string())
            .unwrap_or_else(|| "?".into())
    );
    if r.outcome.ok {
        putln!(s, "  outcome      ok");
    } else {
        putln!(s, "  outcome      FAILED: {}", r.outcome.reasons.join("; "));
    }
    if !r.merged_despite.is_empty() {
        putln!(s, "  merged despite: {}", r.merged_despite.join("; "));
    }
    s
}

/// What the server memory figures are, in a few words.
pub fn memory_label(sv: &ServerStats) -> String {
    match sv.memory_measure.as_str() {
        "pss_tree" => format!(
            "PSS summed over its process tree ({} processes at most)",
            sv.peak_processes.unwrap_or(0)
        ),
        "cgroup" => "memory (cgroup)".into(),
        _ => "RSS".into(),
    }
}

/// When sampling the server's process tree had to be spaced out to keep
/// within its CPU budget, says so.
pub fn sampling_note(sv: &ServerStats) -> Option<String> {
    if !sv.sample_interval_stretched {
        return None;
    }
    Some(format!(
        "process tree sampled every {:.0} ms at most, not every 100 ms, to keep sampling under {:.0}% of a CPU \
         (sampler used {:.1}%)",
        sv.sample_interval_ms.unwrap_or(0.0),
        crate::probe::sampler::TREE_BUDGET * 100.0,
        sv.sampler_cpu_percent.unwrap_or(0.0)
    ))
}

/// Time to first reply and the connections left without one, in words;
/// None for results that do not have these figures.
pub fn first_reply_line(r: &RunResult) -> Option<String> {
    let (served, total) = r.served()?;
    let p = &r.first_reply_us;
    let mut line = if served > 0 {
        format!(
            "p50 {}  p99 {}  max {}",
            fmt_us(p.p50),
            fmt_us(p.p99),
            fmt_us(p.max)
        )
    } else {
        "none".to_string()
    };
    if r.conns_unserved > 0 {
        put!(
            line,
            "; {} of {total} connections got no reply (queued behind busy workers?)",
            r.conns_unserved
        );
    }
    Some(line)
}

pub fn json(r: &RunResult) -> String {
    serde_json::to_string_pretty(r).expect("results serialize")
}

const CSV_COLUMNS: &[&str] = &[
    "label",
    "addr",
    "mode",
    "rate",
    "conns",
    "idle",
    "size",
    "pipeline",
    "threads",
    "measured_s",
    "messages",
    "msgs_per_s",
    "mb_per_s",
    "p50_us",
    "p90_us",
    "p99_us",
    "p999_us",
    "p9999_us",
    "max_us",
    "raw_p99_us",
    "connect_p50_us",
    "connect_p99_us",
    "connect_max_us",
    "connect_rate",
    "first_reply_p50_us",
    "first_reply_p99_us",
    "first_reply_max_us",
    "conns_unserved",
    "errors",
    "jain",
    "longest_stall_ms",
    "client_busy_max",
    "client_bound",
    "server_peak_rss",
    "server_rss_per_conn",
    "server_cpu_percent",
    "server_memory_measure",
    "server_processes",
    "ok",
];

pub fn csv_header() -> String {
    CSV_COLUMNS.join(",")
}

pub fn csv_row(r: &RunResult) -> String {
    let (mode, rate) = match r.spec.mode {
        Mode::Closed => ("closed", String::new()),
        Mode::Open { rate } => ("open", format!("{rate}")),
        Mode::Churn => ("churn", String::new()),
    };
    let sv = r.server.as_ref();
    // Empty where the results have no first-reply figures.
    let first = r
        .served()
        .filter(|(served, _)| *served > 0)
        .map(|_| &r.first_reply_us);
    let fields = [
        r.label.clone().unwrap_or_default().replace(',', ";"),
        r.spec.addr.to_string(),
        mode.to_string(),
        rate,
        r.spec.conns.to_string(),
        r.spec.idle.to_string(),
        r.spec.size.to_string(),
        r.spec.pipeline.to_string(),
        r.spec.threads.to_string(),
        format!("{:.3}", r.measured_s),
        r.messages.to_string(),
        format!("{:.1}", r.throughput_msgs_per_s),
        format!("{:.3}", r.throughput_mb_per_s),
        r.latency_us.p50.to_string(),
        r.latency_us.p90.to_string(),
        r.latency_us.p99.to_string(),
        r.latency_us.p999.to_string(),
        r.latency_us.p9999.to_string(),
        r.latency_us.max.to_string(),
        r.latency_raw_us
            .as_ref()
            .map(|p| p.p99.to_string())
            .unwrap_or_default(),
        r.connect.p50_us.to_string(),
        r.connect.p99_us.to_string(),
        r.connect.max_us.to_string(),
        format!("{:.1}", r.connect.rate_per_s),
        first.map(|p| p.p50.to_string()).unwrap_or_default(),
        first.map(|p| p.p99.to_string()).unwrap_or_default(),
        first.map(|p| p.max.to_string()).unwrap_or_default(),
        r.served()
            .map(|_| r.conns_unserved.to_string())
            .unwrap_or_default(),
        r.errors.total().to_string(),
        format!("{:.4}", r.fairness.jain_index),
        format!("{:.1}", r.fairness.longest_stall_ms),
        format!("{:.3}", r.client.busy_max),
        r.client.client_bound.to_string(),
        sv.map(|s| s.peak_rss_bytes.to_string()).unwrap_or_default(),
        sv.map(|s| format!("{:.0}", s.rss_per_conn_bytes))
            .unwrap_or_default(),
        sv.map(|s| format!("{:.1}", s.cpu_percent))
            .unwrap_or_default(),
        sv.map(|s| s.memory_measure.clone()).unwrap_or_default(),
        sv.and_then(|s| s.peak_processes)
            .map(|n| n.to_string())
            .unwrap_or_default(),
        r.outcome.ok.to_string(),
    ];
    fields.join(",")
}
