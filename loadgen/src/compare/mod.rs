//! `loadgen compare`: every style through the same scenarios on this
//! machine, each server in its own process pinned to its own CPUs, and a
//! report of where each style wins and where it breaks.

pub mod capacity;
pub mod cgroups;
pub mod env;
pub mod external;
pub mod guard;
pub mod journal;
pub mod lock;
pub mod model;
pub mod options;
pub mod pair;
pub mod plan;
pub mod process;
pub mod profile;
pub mod progress;
pub mod rendezvous;
pub mod replicas;
pub mod scenarios;
pub mod servers;
pub mod variant;
pub mod wall;

pub use cgroups::{cgroup_setup, stop_grace};
pub use external::parse_external;
pub use options::{CompareOptions, TargetSpec, parse_cpus, parse_target};

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Instant, SystemTime};

use anyhow::Context;
use nix::sched::sched_setaffinity;
use nix::unistd::Pid;

use crate::compare::cgroups::container_setup;
use crate::compare::env::{Env, Target};
use crate::compare::model::{CompareResults, Scenario, ServerRecord};
use crate::compare::options::cpuset;
use crate::compare::progress::Progress;
use crate::compare::scenarios::Step;
use crate::compare::servers::{with_server, with_target};
use crate::results::{RunResult, SCHEMA_VERSION};

/// Runs the comparison and returns its results; writes no file (the
/// caller hands them to [`crate::report::write`]).
pub fn run(opts: &CompareOptions, stop: Arc<AtomicBool>) -> anyhow::Result<CompareResults> {
    run_journaled(opts, stop, &mut journal::NoJournal)
}

/// [`run`], each unit (a style at a step of a round) handed to `journal`
/// as it ends, and the units it already holds (a resumed comparison) taken
/// from it instead of run again.
pub fn run_journaled(
    opts: &CompareOptions,
    stop: Arc<AtomicBool>,
    journal: &mut dyn journal::Recorder,
) -> anyhow::Result<CompareResults> {
    let Start {
        started,
        started_unix_s,
        environment,
    } = start(&opts.client_cpus)?;
    let server_command = match (&opts.server_bin, opts.targets.is_empty()) {
        (_, false) => match opts.docker {
            Some(_) => "containers, started and stopped through the Docker API".to_string(),
            None => "already running at the given addresses".to_string(),
        },
        (Some(p), true) => p.display().to_string(),
        (None, true) => format!("{} serve", std::env::current_exe()?.display()),
    };
    let repeat = opts.repeat.max(1);
    let cgroups_possible =
        opts.targets.is_empty() && crate::probe::cgroup::Layout::detect().is_ok();
    let estimate = plan::plan(opts, cgroups_possible).estimate_s;
    let servers_on = if opts.targets.is_empty() {
        format!("servers on CPUs {:?}", opts.server_cpus)
    } else {
        "servers at the given targets".to_string()
    };
    note!(
        "loadgen compare: profile {}, styles {}, {servers_on}, loadgen on CPUs {:?}; expected about {:.0} s",
        opts.profile.name,
        opts.styles.join(","),
        opts.client_cpus,
        estimate
    );
    if let Some([one, _, _]) = crate::probe::host::load_average()
        && one > 1.0
    {
        note!(
            "loadgen compare: warning: the machine is busy before we start (load average {one:.2}); \
             other processes will make the numbers noisy"
        );
    }
    let (layout, cgroup) = if opts.targets.is_empty() {
        cgroup_setup(opts, crate::probe::cgroup::Layout::detect())?
    } else {
        // Someone else's servers; containers have cgroups of their own.
        (None, container_setup(opts))
    };
    // The same plan as the estimate's, now that the cgroups are known.
    let planned = plan::plan(opts, layout.is_some());
    let progress = Progress::new(planned.runs, planned.estimate_s);
    let mut runs = Vec::new();
    let mut servers = Vec::new();
    // Round by round, every style in each: drift over the run (thermal,
    // other tenants) then hits every style alike.
    // Point by point where the profile allows it (perf): at each point
    // every style in turn, a fresh server each, and where it pairs, each
    // beside a fresh epoll server ([`pair`]).
    // A style whose server did not start (a broken --external command, a
    // cgroup that could not be made) is not started again at every later
    // point: its rows say why once.
    let mut did_not_start: Vec<String> = Vec::new();
    journal.session(journal::Session {
        started_unix_s,
        resumed: false,
        environment: environment.clone(),
        cgroup: cgroup.clone(),
        server_command: server_command.clone(),
    });
    'rounds: for round in 0..repeat {
        for (style, step) in &plan::round_units(opts, round) {
            if did_not_start.contains(style) {
                continue;
            }
            let key = journal::UnitKey::new(round, style, *step);
            let (first_run, first_server) = (runs.len(), servers.len());
            if let Some(done) = journal.recorded(&key) {
                // Measured by an earlier session: kept as it was.
                servers.extend(done.servers.iter().cloned());
                runs.extend(done.runs.iter().cloned());
                progress.skip(done.runs.len());
            } else {
                // Ctrl-C, SIGTERM, SIGHUP, or nobody left to read our stderr.
                if stop.load(std::sync::atomic::Ordering::Relaxed)
                    || crate::STDERR_LOST.load(std::sync::atomic::Ordering::Relaxed)
                {
                    break 'rounds;
                }
                let round = Round {
                    opts,
                    layout: layout.as_ref(),
                    stop: &stop,
                    progress: &progress,
                    number: round,
                };
                match step {
                    Some(Step::Rest) => compare_rest(&round, style, &mut runs, &mut servers),
                    Some(step) if pair::pairs(opts, round.layout.is_some(), style, *step) => {
                        compare_pair(&round, style, *step, &mut runs, &mut servers)
                    }
                    Some(step) => compare_step(&round, style, *step, &mut runs, &mut servers),
                    None => compare_style(&round, style, &mut runs, &mut servers),
                }
                for r in &mut runs[first_run..] {
                    if let Some(t) = r.tags.as_mut() {
                        t.repeat = round.number;
                    }
                }
                for s in &mut servers[first_server..] {
                    s.repeat = round.number;
                }
                // A unit cut short is not journaled: a resume runs it whole.
                if !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    journal.unit(journal::Unit {
                        key,
                        session_elapsed_s: started.elapsed().as_secs_f64(),
                        servers: servers[first_server..].to_vec(),
                        runs: runs[first_run..].to_vec(),
                    });
                }
            }
            if servers.iter().any(|s| &s.style == style && !s.started)
                && step.is_some()
                && !did_not_start.contains(style)
            {
                note!(
                    "loadgen: {style}: its server did not start: not started again in this comparison"
                );
                did_not_start.push(style.clone());
            }
        }
    }
    progress.finish();
    // A resumed comparison began with its first session and took the
    // seconds of all of them.
    let mut sessions = journal.sessions();
    if let Some(last) = sessions.last_mut() {
        last.elapsed_s = started.elapsed().as_secs_f64();
    }
    let (started_unix_s, elapsed_s) = match sessions.first() {
        Some(first) if sessions.len() > 1 => (
            first.started_unix_s,
            sessions.iter().map(|s| s.elapsed_s).sum(),
        ),
        _ => (started_unix_s, started.elapsed().as_secs_f64()),
    };
    if sessions.len() < 2 {
        sessions.clear();
    }
    let results = CompareResults {
        schema_version: SCHEMA_VERSION,
        profile: opts.profile.name.into(),
        started_unix_s,
        elapsed_s,
        environment,
        server_cpus: opts.server_cpus.clone(),
        client_cpus: opts.client_cpus.clone(),
        server_command,
        network: opts.network.clone().unwrap_or_else(|| "loopback".into()),
        styles: opts.styles.clone(),
        repeat,
        cgroup,
        servers,
        capacity: scenarios::capacity::searches(&runs, opts.profile.capacity_slo),
        runs,
        externals: opts.externals.clone(),
        load_after: crate::probe::host::load_average(),
        scope: Some(opts.profile.scope()),
        sessions,
        interrupted: None,
    };
    Ok(results)
}

/// When a command that starts servers (compare, soak) began, and the
/// machine as it was before any load.
pub struct Start {
    pub started: Instant,
    pub started_unix_s: u64,
    pub environment: crate::results::fingerprint::Fingerprint,
}

/// Begins such a command: the machine's fingerprint taken before any load
/// (so that its load average says how busy it was without us), and
/// loadgen pinned to `client_cpus` (its threads created from here on
/// inherit the CPU set).
pub fn start(client_cpus: &[usize]) -> anyhow::Result<Start> {
    let started = Instant::now();
    let environment = crate::probe::host::fingerprint(None);
    let started_unix_s = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    sched_setaffinity(Pid::from_raw(0), &cpuset(client_cpus)?)
        .context("pinning loadgen (--client-cpus)")?;
    Ok(Start {
        started,
        started_unix_s,
        environment,
    })
}

/// What every unit of a round shares.
#[derive(Clone, Copy)]
struct Round<'a> {
    opts: &'a CompareOptions,
    layout: Option<&'a crate::probe::cgroup::Layout>,
    stop: &'a Arc<AtomicBool>,
    progress: &'a Progress,
    /// Which round, from 0.
    number: u32,
}

impl Round<'_> {
    /// Runs `body` on a fresh server of `style` for `phase` (or on the
    /// style's `--target`), each scenario's server started with `flags`;
    /// `own` names the scenario whose own target to use (None: the main
    /// one). Records the server and keeps the runs.
    fn on_server(
        &self,
        style: &str,
        phase: &str,
        own: Option<(Scenario, &[String])>,
        body: &mut dyn FnMut(&mut Env) -> Vec<RunResult>,
        runs: &mut Vec<RunResult>,
        servers: &mut Vec<ServerRecord>,
    ) {
        let p = &self.opts.profile.for_style(style);
        let mut body = |target: &Target| {
            let mut on_run = |r: &RunResult| self.progress.run_done(r);
            let mut env = Env::new(p, target, Arc::clone(self.stop), &mut on_run);
            body(&mut env)
        };
        let target = self.opts.targets.iter().find(|t| t.style == style);
        let (record, got) = match (target, own) {
            (Some(t), None) => with_target(
                self.opts,
                style,
                phase,
                Some(&t.addr),
                t.container.as_deref(),
                &mut body,
            ),
            (Some(t), Some((sc, _))) => {
                let (addr, container) = t.own_server(sc);
                with_target(self.opts, style, phase, addr, container, &mut body)
            }
            (None, own) => {
                let flags: Vec<&str> = own
                    .map(|(_, f)| f.iter().map(String::as_str).collect())
                    .unwrap_or_default();
                let scenario = own.map(|(sc, _)| sc);
                with_server(
                    self.opts,
                    self.layout,
                    (style, scenario),
                    phase,
                    &flags,
                    &mut body,
                )
            }
        };
        servers.push(record);
        runs.extend(got);
    }
}

/// One step of a point-by-point comparison for one style, on a fresh
/// server (or its target).
fn compare_step(
    round: &Round,
    style: &str,
    step: Step,
    runs: &mut Vec<RunResult>,
    servers: &mut Vec<ServerRecord>,
) {
    let phase = step.name();
    round.on_server(style, &phase, None, &mut |env| step.run(env), runs, servers);
}

/// `style`'s `step` on a fresh server, measured over the same seconds as
/// a fresh reference server's; both servers' records and runs are kept,
/// the reference's runs tagged as `style`'s partner. Where the reference
/// server did not start, the style still runs, alone.
fn compare_pair(
    round: &Round,
    style: &str,
    step: Step,
    runs: &mut Vec<RunResult>,
    servers: &mut Vec<ServerRecord>,
) {
    let reference = model::reference();
    let phase = step.name();
    let rv = Arc::new(rendezvous::Rendezvous::new());
    let (mut own_runs, mut own_servers) = (Vec::new(), Vec::new());
    let mut paired = false;
    let mut partner = |ref_env: &mut Env| {
        paired = true;
        ref_env.rendezvous = Some(Arc::clone(&rv));
        ref_env.partner_of = Some(style.to_string());
        let mut partner_runs = Vec::new();
        let mut own = |env: &mut Env| {
            env.rendezvous = Some(Arc::clone(&rv));
            std::thread::scope(|s| {
                let other = s.spawn(|| {
                    let _leaving = rendezvous::Leaving(&rv);
                    step.run(ref_env)
                });
                let got = {
                    let _leaving = rendezvous::Leaving(&rv);
                    step.run(env)
                };
                partner_runs = other.join().unwrap_or_else(|_| {
                    note!("loadgen: {style}: the side-by-side reference run panicked");
                    Vec::new()
                });
                got
            })
        };
        round.on_server(
            style,
            &phase,
            None,
            &mut own,
            &mut own_runs,
            &mut own_servers,
        );
        partner_runs
    };
    let partner_phase = format!("{phase} beside {style}");
    let before = runs.len();
    round.on_server(reference, &partner_phase, None, &mut partner, runs, servers);
    if !paired {
        note!("loadgen: {style}: {phase}: no {reference} server to run beside; running it alone");
        return compare_step(round, style, step, runs, servers);
    }
    if round.opts.client_cpus.len() == 1 {
        pair::shared_client(&mut runs[before..], &mut own_runs);
    }
    runs.append(&mut own_runs);
    servers.append(&mut own_servers);
}

/// One style whole: every scenario of this round that needs no server of
/// its own on one server, idle first (its baseline RSS is then that of a
/// fresh server), then each of the others on a server of its own.
fn compare_style(
    round: &Round,
    style: &str,
    runs: &mut Vec<RunResult>,
    servers: &mut Vec<ServerRecord>,
) {
    let p = round.opts.profile.for_style(style);
    let these: Vec<Scenario> = p
        .scenarios
        .iter()
        .copied()
        .filter(|&sc| p.in_round(sc, round.number))
        .collect();
    compare_scenarios(round, style, &these, Vec::new(), runs, servers);
}

/// A point-by-point comparison's [`Step::Rest`]: the style's scenarios
/// other than idle and scale, whole, after its scale points (`open` and
/// `capacity` start from the style's server-bound scale maximum of this
/// round).
fn compare_rest(
    round: &Round,
    style: &str,
    runs: &mut Vec<RunResult>,
    servers: &mut Vec<ServerRecord>,
) {
    let p = round.opts.profile.for_style(style);
    let rest: Vec<Scenario> = p
        .scenarios
        .iter()
        .copied()
        .filter(|&sc| !matches!(sc, Scenario::Idle | Scenario::Scale))
        .filter(|&sc| p.in_round(sc, round.number))
        .collect();
    let earlier: Vec<RunResult> = runs
        .iter()
        .filter(|r| {
            r.tags.as_ref().is_some_and(|t| {
                t.style == style && !t.is_partner() && t.scenario == Scenario::Scale.name()
            })
        })
        .cloned()
        .collect();
    compare_scenarios(round, style, &rest, earlier, runs, servers);
}

/// `scenarios` of one style: those that need no server of their own on
/// one server, in order, then each of the others on a server of its own;
/// `earlier` are the style's runs the scenarios may start from (not kept
/// again).
fn compare_scenarios(
    round: &Round,
    style: &str,
    scenarios: &[Scenario],
    earlier: Vec<RunResult>,
    runs: &mut Vec<RunResult>,
    servers: &mut Vec<ServerRecord>,
) {
    let p = &round.opts.profile.for_style(style);
    let shared: Vec<Scenario> = scenarios
        .iter()
        .copied()
        .filter(|&sc| p.own_server(sc).is_none())
        .collect();
    if !shared.is_empty() {
        let mut main = |env: &mut Env| {
            let mut seen = earlier.clone();
            let mut out = Vec::new();
            for &sc in &shared {
                let got = scenarios::run(sc, env, &seen);
                seen.extend(got.iter().cloned());
                out.extend(got);
            }
            out
        };
        round.on_server(style, "main", None, &mut main, runs, servers);
    }
    for &sc in scenarios {
        let Some(flags) = p.own_server(sc) else {
            continue;
        };
        if round.stop.load(std::sync::atomic::Ordering::Relaxed) {
            return;
        }
        let mut own = |env: &mut Env| scenarios::run(sc, env, &[]);
        round.on_server(
            style,
            sc.name(),
            Some((sc, &flags)),
            &mut own,
            runs,
            servers,
        );
    }
}
