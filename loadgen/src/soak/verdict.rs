//! How a style is judged: the trends of its samples after the warm-up
//! ([`trends`]), and the checks ([`judge`], [`server_check`]): no error in
//! any load, memory not growing past its bound, fds and threads flat within
//! theirs, the server alive to the end and stopped cleanly. Why the bounds
//! are what they are is in [`crate::soak`]'s docs.

use crate::compare::model::ServerRecord;
use crate::engine::CLIENT_REASON;
use crate::results::RunResult;
use crate::soak::fit::series;
use crate::soak::model::{Bounds, Check, Plan, Sample, Series};

/// The series of `samples` after the warm-up, each fitted: memory, fds,
/// threads, and the cgroup's memory where it was read. A series with
/// fewer than three samples there is left out (and its check fails).
pub fn trends(samples: &[Sample], plan: &Plan) -> Vec<Series> {
    let fitted: Vec<&Sample> = samples.iter().filter(|s| s.t_s >= plan.warmup_s).collect();
    let first = samples.first();
    let figure = |name: &str, unit: &str, get: &dyn Fn(&Sample) -> Option<u64>| {
        let points: Vec<(f64, f64)> = fitted
            .iter()
            .filter_map(|s| get(s).map(|v| (s.t_s, v as f64)))
            .collect();
        let baseline = first.and_then(get).unwrap_or(0) as f64;
        series(name, unit, baseline, &points)
    };
    [
        figure("memory", "bytes", &|s| Some(s.memory_bytes)),
        figure("fds", "count", &|s| s.fds),
        figure("threads", "count", &|s| Some(s.threads)),
        figure("cgroup_memory", "bytes", &|s| s.cgroup_memory_bytes),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// The checks of the loads and the trends (the server's is
/// [`server_check`]): `runs` are the open, churn and idle loads.
pub fn judge(series: &[Series], runs: &[RunResult], bounds: &Bounds) -> Vec<Check> {
    let find = |name: &str| series.iter().find(|s| s.name == name);
    vec![
        errors_check(runs),
        growth_check("memory", find("memory"), bounds, false),
        growth_check("fds", find("fds"), bounds, true),
        growth_check("threads", find("threads"), bounds, true),
    ]
}

/// The loads that must have run, by their tag's point.
pub const LOADS: [&str; 3] = ["open", "churn", "idle"];

/// Why a load failed: the server's part (errors, connections unserved, an
/// open loop below its rate, the server gone) and the client's own (it
/// could not keep its schedule, on a busy machine), which is reported but
/// does not fail the server.
pub fn reasons(r: &RunResult) -> (Vec<&str>, Vec<&str>) {
    r.outcome
        .reasons
        .iter()
        .map(String::as_str)
        .partition(|why| !why.starts_with(CLIENT_REASON))
}

/// No error in any load, and every load did what was asked (the engine's
/// own verdict: every connection served, the open loops at their rate,
/// the server alive throughout), but for the client's own failings.
fn errors_check(runs: &[RunResult]) -> Check {
    let (mut problems, mut client) = (Vec::new(), Vec::new());
    for load in LOADS {
        let found = runs
            .iter()
            .find(|r| r.tags.as_ref().is_some_and(|t| t.point == load));
        let Some(r) = found else {
            problems.push(format!("{load}: did not run"));
            continue;
        };
        let (server, own) = reasons(r);
        if !server.is_empty() {
            problems.push(format!("{load}: {}", server.join("; ")));
        }
        if !own.is_empty() {
            client.push(format!("{load}: {}", own.join("; ")));
        }
    }
    // The client's own (no local port or fd) are reported with its other
    // failings, not held against the server.
    let errors: u64 = runs
        .iter()
        .map(|r| r.errors.total() - r.errors.client_own())
        .sum();
    let passed = problems.is_empty() && errors == 0;
    let mut detail = if passed {
        format!(
            "no error in the {} loads, each did what was asked",
            runs.len()
        )
    } else {
        format!("{errors} error(s); {}", problems.join(" | "))
    };
    if !client.is_empty() {
        detail += &format!(
            " (not judged, the client's own: {}; its latency figures overstate the server's)",
            client.join(" | ")
        );
    }
    Check {
        name: "errors".into(),
        passed,
        value: Some(errors as f64),
        bound: Some(0.0),
        detail,
    }
}

/// Memory may not grow by more than its bound (shrinking is no leak);
/// counts (`both_ways`) may not move either way by more than theirs.
fn growth_check(name: &str, s: Option<&Series>, b: &Bounds, both_ways: bool) -> Check {
    let Some(s) = s else {
        return Check {
            name: name.into(),
            passed: false,
            detail: "fewer than 3 samples after the warm-up: no trend to judge".into(),
            ..Check::default()
        };
    };
    let (bound, how) = if both_ways {
        (
            b.count_min.max(b.count_share * s.mean),
            format!(
                "max({}, {:.0}% of its mean {:.1})",
                b.count_min,
                b.count_share * 100.0,
                s.mean
            ),
        )
    } else {
        (
            b.memory_min_bytes.max(b.memory_share * s.mean),
            format!(
                "max({}, {:.0}% of its mean {})",
                mib(b.memory_min_bytes),
                b.memory_share * 100.0,
                mib(s.mean)
            ),
        )
    };
    let judged = if both_ways { s.growth.abs() } else { s.growth };
    let passed = judged <= bound;
    let figure = |v: f64| {
        if both_ways {
            format!("{v:+.1}")
        } else {
            format!("{:+.2} MiB", v / MIB)
        }
    };
    Check {
        name: name.into(),
        passed,
        value: Some(s.growth),
        bound: Some(bound),
        detail: format!(
            "{} over {:.0} s after the warm-up ({}/h ± {}), {} bound {} = {how}",
            figure(s.growth),
            s.window_s,
            figure(s.slope_per_h),
            figure(s.slope_stderr_per_h).trim_start_matches('+'),
            if passed { "within its" } else { "past its" },
            figure(bound).trim_start_matches('+'),
        ),
    }
}

/// The server started, lived to the end of the loads, and stopped on
/// SIGTERM with exit 0 and its summary line.
pub fn server_check(record: &ServerRecord) -> Check {
    let problem = if !record.started {
        Some(
            record
                .problem
                .clone()
                .unwrap_or_else(|| "did not start".into()),
        )
    } else if !record.stopped_cleanly {
        Some(
            record
                .problem
                .clone()
                .unwrap_or_else(|| "did not stop cleanly".into()),
        )
    } else {
        None
    };
    Check {
        name: "server".into(),
        passed: problem.is_none(),
        detail: problem.unwrap_or_else(|| "alive to the end, stopped cleanly on SIGTERM".into()),
        ..Check::default()
    }
}

const MIB: f64 = 1024.0 * 1024.0;

/// "4.72 MiB".
pub fn mib(bytes: f64) -> String {
    format!("{:.2} MiB", bytes / MIB)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::{Outcome, Tags};
    use std::time::Duration;

    fn plan() -> Plan {
        Plan::new(Duration::from_secs(60), Duration::from_secs(10))
    }

    /// A minute of samples: memory and fds as `f(t)`, threads 2.
    fn samples(memory: impl Fn(f64) -> f64, fds: impl Fn(f64) -> f64) -> Vec<Sample> {
        (0..=60)
            .map(|i| {
                let t = i as f64;
                Sample {
                    t_s: t,
                    memory_bytes: memory(t) as u64,
                    fds: Some(fds(t).round() as u64),
                    threads: 2,
                    processes: 1,
                    cgroup_memory_bytes: None,
                }
            })
            .collect()
    }

    /// The three loads, each ok and without errors (a run of the
    /// committed comparison fixture, retagged).
    fn ok_runs() -> Vec<RunResult> {
        let fixture: crate::compare::model::CompareResults =
            serde_json::from_str(include_str!("../../tests/fixtures/compare-smoke.json"))
                .expect("fixture parses");
        LOADS
            .iter()
            .map(|load| {
                let mut r = fixture.runs[0].clone();
                r.tags = Some(Tags {
                    style: "reactor".into(),
                    scenario: "soak".into(),
                    point: load.to_string(),
                    repeat: 0,
                    partner_of: String::new(),
                });
                r.errors = Default::default();
                r.outcome = Outcome {
                    ok: true,
                    ..Outcome::default()
                };
                r
            })
            .collect()
    }

    fn check<'a>(checks: &'a [Check], name: &str) -> &'a Check {
        checks.iter().find(|c| c.name == name).unwrap()
    }

    #[test]
    fn flat_series_pass_and_the_warm_up_is_left_out() {
        // Memory climbs during the warm-up, then holds: not a leak.
        let s = samples(
            |t| 4e6 + 1e5 * t.min(10.0),
            |t| 360.0 + (t as i64 % 2) as f64,
        );
        let series = trends(&s, &plan());
        let checks = judge(&series, &ok_runs(), &plan().bounds);
        for c in &checks {
            assert!(c.passed, "{c:?}");
        }
        let memory = series.iter().find(|s| s.name == "memory").unwrap();
        assert_eq!(
            (memory.samples, memory.baseline, memory.start),
            (51, 4e6, 5e6)
        );
        assert!(series.iter().all(|s| s.name != "cgroup_memory"));
    }

    #[test]
    fn growing_memory_or_fds_fail_with_their_bound() {
        // One 4 KiB buffer per churned connection at 100/s: 400 KB/s.
        let s = samples(|t| 4e6 + 409_600.0 * t, |_| 360.0);
        let checks = judge(&trends(&s, &plan()), &ok_runs(), &plan().bounds);
        let memory = check(&checks, "memory");
        assert!(!memory.passed, "{memory:?}");
        assert_eq!(memory.bound, Some(MIB));
        assert!(memory.detail.contains("past its bound"), "{memory:?}");
        assert!(check(&checks, "fds").passed);
        // One fd every 10 s: 5 over the 50 s fitted, bound max(2, 3.6).
        let s = samples(|_| 4e6, |t| 360.0 + (t / 10.0).floor());
        let checks = judge(&trends(&s, &plan()), &ok_runs(), &plan().bounds);
        let fds = check(&checks, "fds");
        assert!(!fds.passed, "{fds:?}");
        assert!((fds.bound.unwrap() - 3.65).abs() < 0.1, "{fds:?}");
        assert!(check(&checks, "memory").passed);
    }

    #[test]
    fn noisy_but_flat_passes_and_shrinking_memory_is_no_leak() {
        let mut seed: u64 = 3;
        let mut noise = move || {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            (seed >> 40) as f64 / (1u64 << 24) as f64 - 0.5
        };
        let jitter: Vec<f64> = (0..=60).map(|_| noise()).collect();
        // ±256 KiB of memory noise and ±1 fd, about flat levels.
        let s = samples(
            |t| 8e6 + 524_288.0 * jitter[t as usize],
            |t| 360.0 + 2.0 * jitter[60 - t as usize],
        );
        let checks = judge(&trends(&s, &plan()), &ok_runs(), &plan().bounds);
        assert!(check(&checks, "memory").passed, "{checks:?}");
        assert!(check(&checks, "fds").passed, "{checks:?}");
        // Memory handed back: shrinking by 3 MiB is no leak.
        let s = samples(|t| 8e6 - 60_000.0 * t, |_| 360.0);
        let checks = judge(&trends(&s, &plan()), &ok_runs(), &plan().bounds);
        assert!(check(&checks, "memory").passed, "{checks:?}");
    }

    #[test]
    fn an_error_a_failed_load_or_a_missing_one_fails() {
        let s = samples(|_| 4e6, |_| 360.0);
        let series = trends(&s, &plan());
        let mut runs = ok_runs();
        runs[1].errors.eof = 2;
        let c = judge(&series, &runs, &plan().bounds);
        assert!(!check(&c, "errors").passed);
        let mut runs = ok_runs();
        runs[0].outcome.ok = false;
        runs[0].outcome.reasons = vec!["open loop achieved 10 of 2000 msg/s".into()];
        let c = judge(&series, &runs, &plan().bounds);
        assert!(
            check(&c, "errors")
                .detail
                .contains("open: open loop achieved")
        );
        let c = judge(&series, &ok_runs()[..2], &plan().bounds);
        assert!(check(&c, "errors").detail.contains("idle: did not run"));
        // A client that fell behind its schedule is its own failing, said
        // but not held against the server.
        let mut runs = ok_runs();
        runs[0].outcome.ok = false;
        runs[0].outcome.reasons = vec![format!("{CLIENT_REASON}fell behind its schedule")];
        let errors = judge(&series, &runs, &plan().bounds).remove(0);
        assert!(errors.passed, "{errors:?}");
        assert!(errors.detail.contains("not judged"), "{errors:?}");
        // So is a connect that found no local port (a busy machine's
        // TIME_WAIT sockets): counted, said, not the server's.
        let mut runs = ok_runs();
        runs[1].errors.addr_unavailable = 1;
        runs[1].outcome.ok = false;
        runs[1].outcome.reasons = vec![format!("{CLIENT_REASON}ran out of local ports")];
        let errors = judge(&series, &runs, &plan().bounds).remove(0);
        assert!(errors.passed, "{errors:?}");
        assert!(
            errors.detail.contains("churn: the client ran out"),
            "{errors:?}"
        );
        // And without samples after the warm-up there is no trend to pass.
        let c = judge(&trends(&s[..5], &plan()), &ok_runs(), &plan().bounds);
        assert!(!check(&c, "memory").passed && !check(&c, "fds").passed);
    }

    #[test]
    fn a_server_that_died_or_hung_fails() {
        let fine = ServerRecord {
            started: true,
            stopped_cleanly: true,
            ..ServerRecord::default()
        };
        assert!(server_check(&fine).passed);
        let died = ServerRecord {
            stopped_cleanly: false,
            problem: Some("had already exited (signal 9) before the end".into()),
            ..fine.clone()
        };
        assert!(!server_check(&died).passed);
        assert!(server_check(&died).detail.contains("already exited"));
        assert!(!server_check(&ServerRecord::default()).passed);
    }
}
