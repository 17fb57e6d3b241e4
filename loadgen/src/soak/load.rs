//! One style's soak against its server: the three loads at once (an open
//! loop, a paced churn, idle connections beside a heartbeat), each an
//! [`engine::run`] on a thread of its own, and the server sampled every
//! `sample_interval_s` on another until they end.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use crate::compare::env::{Target, source_ips};
use crate::engine::{self, Control, RunOptions};
use crate::probe::cgroup::ServerCgroup;
use crate::results::spec::{Mode, RunSpec};
use crate::results::{RunResult, Tags};
use crate::soak::model::{Plan, Sample};

/// What one style's soak measured.
#[derive(Debug, Default)]
pub struct Measured {
    pub samples: Vec<Sample>,
    /// "rss", or "pss" once the server had forked.
    pub memory_measure: String,
    /// The loads that ran (tagged with their point: open, churn, idle).
    pub runs: Vec<RunResult>,
}

/// The three loads' specs against `addr`: what each point of a soak runs.
pub fn specs(addr: std::net::SocketAddr, plan: &Plan) -> Vec<(&'static str, RunSpec)> {
    let warmup = Duration::from_secs_f64(plan.warmup_s);
    let base = RunSpec {
        addr,
        size: plan.size,
        // The loads' measured windows are the fitted window: their figures
        // describe the same part of the soak as the trends.
        warmup,
        duration: Duration::from_secs_f64(plan.duration_s).saturating_sub(warmup),
        timeout: Duration::from_secs(5),
        threads: 1,
        ..RunSpec::default()
    };
    vec![
        (
            "open",
            RunSpec {
                conns: plan.open_conns,
                // Room for the rate if a reply is late (as compare's open).
                pipeline: 4,
                mode: Mode::Open {
                    rate: plan.open_rate,
                },
                ..base.clone()
            },
        ),
        (
            "churn",
            RunSpec {
                conns: plan.churn_slots,
                mode: Mode::Churn,
                connect_rate: Some(plan.churn_rate),
                // Closed connections wait in TIME_WAIT on our side.
                source_ips: source_ips(addr, usize::MAX),
                ..base.clone()
            },
        ),
        (
            "idle",
            RunSpec {
                conns: 1,
                idle: plan.idle,
                mode: Mode::Open {
                    rate: plan.idle_heartbeat,
                },
                source_ips: source_ips(addr, plan.idle + 1),
                ..base
            },
        ),
    ]
}

/// Runs the soak's loads against `target` for the plan's duration (less
/// if `stop` is set), sampling the server throughout.
pub fn measure(target: &Target, plan: &Plan, stop: &Arc<AtomicBool>) -> Measured {
    let began = Instant::now();
    let interval = Duration::from_secs_f64(plan.sample_interval_s.max(0.01));
    let (done, ended) = mpsc::channel::<()>();
    let mut measured = Measured {
        memory_measure: "rss".into(),
        ..Measured::default()
    };
    std::thread::scope(|scope| {
        let sampler = target.server_pid.map(|pid| {
            let cgroup = target.cgroup.clone();
            let style = target.style.as_str();
            scope.spawn(move || {
                sample_loop(style, pid, cgroup.as_deref(), (began, interval), &ended)
            })
        });
        let loads: Vec<_> = specs(target.addr, plan)
            .into_iter()
            .map(|(point, spec)| {
                let control = Arc::new(Control {
                    stop: Arc::clone(stop),
                    ..Control::default()
                });
                // The open loop also samples the server the engine's way
                // (its CPU, and whether it lived to the end).
                let server = (point == "open").then(|| target.watch()).flatten();
                let label = Some(format!("{}/soak/{point}", target.style));
                scope.spawn(move || {
                    let opts = RunOptions {
                        server,
                        label,
                        on_tick: None,
                        // A soak judges the server's trend, not a window.
                        foreign_cpus: None,
                        gate: None,
                    };
                    (point, engine::run(&spec, control, opts))
                })
            })
            .collect();
        for load in loads {
            match load.join() {
                Ok((point, Ok(mut r))) => {
                    r.tags = Some(Tags {
                        style: target.style.clone(),
                        scenario: "soak".into(),
                        point: point.into(),
                        repeat: 0,
                        partner_of: String::new(),
                    });
                    measured.runs.push(r);
                }
                Ok((point, Err(e))) => note!("loadgen soak: {} {point}: {e}", target.style),
                Err(_) => note!("loadgen soak: {}: a load's thread panicked", target.style),
            }
        }
        drop(done);
        if let Some(Ok((samples, tree))) = sampler.map(|s| s.join()) {
            measured.samples = samples;
            if tree {
                measured.memory_measure = "pss".into();
            }
        }
    });
    measured
}

/// Samples `style`'s server `pid` (and its tree, once it has forked)
/// every `interval` from `began` until `ended` is dropped or the server is
/// gone; also says whether the server had forked.
fn sample_loop(
    style: &str,
    pid: u32,
    cgroup: Option<&ServerCgroup>,
    (began, interval): (Instant, Duration),
    ended: &mpsc::Receiver<()>,
) -> (Vec<Sample>, bool) {
    let mut samples: Vec<Sample> = Vec::new();
    let mut tree = false;
    let mut next = began;
    let mut last_note = began;
    while let Some(s) = crate::probe::procfs::sample_tree(pid, tree) {
        tree |= s.processes > 1;
        let pids = if s.pids.is_empty() { vec![pid] } else { s.pids };
        // Exactly, however big the table (the 10 Hz sampler stops counting
        // past 1,024 slots; once a second costs nothing).
        let fds = pids
            .iter()
            .map(|&p| crate::probe::procfs::open_fds(p))
            .sum::<Option<u64>>();
        let now = Instant::now();
        samples.push(Sample {
            t_s: now.duration_since(began).as_secs_f64(),
            memory_bytes: s.pss_bytes.unwrap_or(s.rss_bytes),
            fds,
            threads: s.threads,
            processes: s.processes,
            cgroup_memory_bytes: cgroup.and_then(|g| g.read()).and_then(|r| r.memory_bytes),
        });
        if now.duration_since(last_note) >= Duration::from_secs(60) {
            last_note = now;
            note!("{}", progress_line(style, &samples[samples.len() - 1]));
        }
        // After a stall (a big tree to read), on from now, not in a burst.
        next = (next + interval).max(Instant::now());
        match ended.recv_timeout(next.saturating_duration_since(Instant::now())) {
            Err(RecvTimeoutError::Timeout) => {}
            Ok(()) | Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    (samples, tree)
}

/// A minute's progress on stderr: where the server's figures are now.
fn progress_line(style: &str, s: &Sample) -> String {
    format!(
        "loadgen soak: {style} at {:.0} s: memory {}, fds {}, threads {}",
        s.t_s,
        crate::soak::verdict::mib(s.memory_bytes as f64),
        s.fds.map_or("-".into(), |f| f.to_string()),
        s.threads
    )
}
