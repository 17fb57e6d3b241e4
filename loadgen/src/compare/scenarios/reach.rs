//! `reach`: idle connections in growing steps (1k, 2k, 5k, 10k, ... up to
//! `--reach-max`), a few active ones at a light open-loop rate beside them,
//! until the first step the style does not hold. Each step is one sampled
//! run (connections held, the server's memory per connection with the
//! kernel's share from its cgroup, its threads, processes and fds, the
//! active connections' p99, the time the step took to open); what stopped
//! the style is named from the failing step's evidence by
//! [`crate::compare::wall`]. Run on request only
//! ([`Scenario::on_request`]), on a server of its own without a CPU quota.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use crate::compare::env::Env;
use crate::compare::model::Scenario;
use crate::compare::scenarios::{reach_clients, reach_gate};
use crate::results::RunResult;
use crate::results::spec::{Mode, RunSpec};

pub use crate::compare::profile::reach_steps as steps;

/// The point of a step in results: "idle=N active=M".
pub fn point(idle: usize, active: usize) -> String {
    format!("idle={idle} active={active}")
}

/// The idle connection count of a reach run's point.
pub fn idle_of(r: &RunResult) -> Option<usize> {
    let t = r.tags.as_ref()?;
    if t.scenario != Scenario::Reach.name() {
        return None;
    }
    t.point
        .split_whitespace()
        .find_map(|w| w.strip_prefix("idle="))?
        .parse()
        .ok()
}

/// Whether a step held, or why not: every connection asked for
/// established and still open at the end, the run judged ok (but for the
/// client's own lag), and the active connections' p99 within `objective`.
pub fn held(r: &RunResult, objective: Duration) -> Result<(), String> {
    let asked = r.spec.total_conns() as u64;
    if r.connect.established < asked {
        return Err(format!(
            "{} of {asked} connections established",
            r.connect.established
        ));
    }
    if let Some(n) = r.connect.server_held.filter(|&n| n < asked) {
        return Err(format!(
            "the server's side held {n} of the {asked} connections loadgen established: its listen queue overflowed"
        ));
    }
    if let Some(n) = r.connect.unaccepted.filter(|&n| n > 0) {
        return Err(format!(
            "{n} connections left in the server's listen queue: it stopped accepting"
        ));
    }
    if r.outcome.interrupted {
        return Err("interrupted".into());
    }
    // The client's own lag (a loadgen thread taking its slots late on a
    // busy machine) is not the server's wall: the p99 below still judges.
    let server_side: Vec<&str> = (r.outcome.reasons.iter())
        .map(String::as_str)
        .filter(|x| !crate::engine::is_client_reason(x))
        .collect();
    if !r.outcome.ok && (!server_side.is_empty() || r.outcome.reasons.is_empty()) {
        return Err(server_side.join("; "));
    }
    let p99 = r.latency_us.p99;
    let limit = objective.as_micros() as u64;
    if p99 > limit {
        return Err(format!(
            "active p99 {} past the objective {}",
            crate::results::fmt_us(p99),
            crate::results::fmt_us(limit)
        ));
    }
    Ok(())
}

/// Every loopback source address loadgen spreads over (127.0.0.1-8): each
/// gives ~28,000 ephemeral ports to the one server port.
pub fn source_ips(target: std::net::SocketAddr) -> Vec<IpAddr> {
    match target.ip() {
        IpAddr::V4(ip) if ip.is_loopback() => (1..=8)
            .map(|i| IpAddr::V4(Ipv4Addr::new(127, 0, 0, i)))
            .collect(),
        _ => Vec::new(),
    }
}

/// `reach`: the steps in turn, on one server, until one fails (it is
/// kept: its evidence names the wall) or `--reach-max` is held.
pub fn run(env: &mut Env) -> Vec<RunResult> {
    let p = env.profile;
    let active = p.reach_active;
    let mut out = Vec::new();
    for idle in steps(p.reach_max) {
        if env.interrupted() {
            break;
        }
        let spec = RunSpec {
            conns: active,
            idle,
            mode: Mode::Open {
                rate: (active as f64 * p.reach_rate_per_conn).max(1.0),
            },
            source_ips: source_ips(env.target.addr),
            warmup: env.profile.warmup.max(p.reach_warmup),
            ..env.base_spec()
        };
        let Some(r) = run_step(env, point(idle, active), &spec) else {
            // The run could not start at all (its error is noted): no
            // evidence, no further step.
            break;
        };
        let failed = held(&r, p.reach_p99).is_err();
        out.push(r);
        if failed {
            break;
        }
    }
    out
}

/// One step: in this process where it can hold the step's connections,
/// else split over client processes ([`reach_clients`]) and merged.
fn run_step(env: &mut Env, point: String, spec: &RunSpec) -> Option<RunResult> {
    let split = reach_clients::split(spec, reach_clients::own_capacity());
    if split.holders.is_empty() {
        return env.run(Scenario::Reach, point, spec, true);
    }
    let want: usize = split.holders.iter().map(RunSpec::total_conns).sum();
    // Long enough to outlast this process's part (they are stopped at its
    // end: this only bounds them; a holder gone before the window closes
    // takes its connections with it): their connects at a slow 2,000/s and
    // this process's as long again, the wait for the server to accept them
    // all, its warm-up and window, and a minute.
    let connecting = Duration::from_millis(spec.total_conns() as u64 / 2);
    let hold = 2 * connecting
        + reach_gate::ACCEPT_LIMIT
        + spec.warmup
        + spec.duration
        + Duration::from_secs(60);
    let holders = match reach_clients::Holders::start(&split.holders, hold) {
        Ok(h) => h,
        Err(e) => {
            note!("loadgen: {} reach {point}: {e:#}", env.target.style);
            return None;
        }
    };
    // Bounded: holders that cannot connect them all (a wall) go on to the
    // step, whose evidence then says why.
    let got = reach_clients::wait_established(
        env.target.addr.port(),
        want,
        Duration::from_secs(10) + connecting,
        &env.stop,
    );
    if got < want {
        note!(
            "loadgen: {} reach {point}: the {} client processes established {got} of {want} connections; measuring anyway",
            env.target.style,
            holders.count()
        );
    }
    let own = env.run(Scenario::Reach, point, &split.own, true);
    let (parts, problems) = holders.finish(Duration::from_secs(10));
    own.map(|o| reach_clients::merge(o, parts, problems))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_steps_grow_one_two_five_up_to_the_maximum() {
        assert_eq!(steps(20_000), [1000, 2000, 5000, 10_000, 20_000]);
        assert_eq!(
            steps(60_000),
            [1000, 2000, 5000, 10_000, 20_000, 50_000, 60_000]
        );
        assert_eq!(steps(1000), [1000]);
        assert_eq!(steps(300), [300]);
        assert_eq!(steps(0), Vec::<usize>::new());
        assert_eq!(steps(1_000_000).len(), 10);
    }

    /// A run of the committed smoke comparison, judged as a reach step.
    fn a_run() -> RunResult {
        let results: crate::compare::model::CompareResults =
            serde_json::from_str(include_str!("../../../tests/fixtures/compare-smoke.json"))
                .expect("the fixture parses");
        (results.runs.into_iter())
            .find(|r| r.outcome.ok && r.connect.established == r.spec.total_conns() as u64)
            .expect("a run that held")
    }

    #[test]
    fn a_step_holds_despite_the_clients_lag_but_not_a_servers_failure_or_a_slow_p99() {
        let objective = Duration::from_secs(1);
        let mut r = a_run();
        r.latency_us.p99 = 1000;
        assert_eq!(held(&r, objective), Ok(()));
        r.outcome.ok = false;
        r.outcome.reasons = vec![format!(
            "{}fell behind its schedule",
            crate::engine::CLIENT_REASON
        )];
        assert_eq!(held(&r, objective), Ok(()));
        r.outcome.reasons.push("errors: reset=3".into());
        assert_eq!(held(&r, objective), Err("errors: reset=3".into()));
        let mut r = a_run();
        r.latency_us.p99 = 2_000_000;
        assert!(
            held(&r, objective)
                .unwrap_err()
                .contains("past the objective")
        );
        r.connect.established -= 1;
        assert!(
            held(&r, objective)
                .unwrap_err()
                .contains("connections established")
        );
    }
}
