//! `loadgen compare`: every style through the same scenarios on this
//! machine, each server in its own process pinned to its own CPUs, and a
//! report of where each style wins and where it breaks.

pub mod env;
pub mod model;
pub mod profile;
pub mod scenarios;
pub mod variant;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, bail};
use nix::sched::{CpuSet, sched_setaffinity};
use nix::unistd::Pid;

use crate::compare::env::{Env, Target};
use crate::compare::model::Scenario;
use crate::compare::model::{CgroupSetup, CompareResults, ServerRecord};
use crate::compare::profile::{Profile, Step};
use crate::compare::variant::Variant;
use crate::results::fingerprint::Fingerprint;
use crate::results::{RunResult, SCHEMA_VERSION};

/// `loadgen compare`'s options.
#[derive(Clone, Debug)]
pub struct CompareOptions {
    pub styles: Vec<String>,
    pub profile: Profile,
    /// `None`: this executable's `serve` subcommand.
    pub server_bin: Option<PathBuf>,
    pub server_cpus: Vec<usize>,
    pub client_cpus: Vec<usize>,
    /// Servers already running (containers): drive these instead of
    /// spawning processes. Empty: spawn.
    pub targets: Vec<TargetSpec>,
    /// With targets: the Docker API, to start each target's container just
    /// before its scenarios, stop it after, and sample it.
    pub docker: Option<crate::probe::docker::Docker>,
    /// How the client reaches the servers, for the report (e.g. "bridge").
    pub network: Option<String>,
    /// CPUs of CFS bandwidth per server (through its cgroup); None: none.
    pub server_cpu_quota: Option<f64>,
    /// True when the quota was asked for explicitly (then a machine
    /// without writable cgroups is an error, not a note).
    pub quota_required: bool,
    /// Rounds of every style, interleaved.
    pub repeat: u32,
}

/// `--target STYLE=HOST:PORT[,fairness=HOST:PORT][,container=NAME][,fairness-container=NAME]`:
/// a running server of a style, and optionally the one started with
/// `--work-us` for fairness. With `--docker-socket` the containers default
/// to the HOST parts (container names are host names on a compose network).
#[derive(Clone, Debug, PartialEq)]
pub struct TargetSpec {
    pub style: String,
    pub addr: String,
    pub fairness_addr: Option<String>,
    pub container: Option<String>,
    pub fairness_container: Option<String>,
}

/// Parses one `--target` value.
pub fn parse_target(s: &str) -> Result<TargetSpec, String> {
    let (style, rest) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?}: want STYLE=HOST:PORT[,fairness=HOST:PORT]"))?;
    let style = servers::Style::from_name(style.trim())
        .ok_or_else(|| format!("{s:?}: unknown style {style:?}"))?
        .name()
        .to_string();
    let mut parts = rest.split(',');
    let addr = parts.next().unwrap_or_default().trim().to_string();
    if !addr.contains(':') {
        return Err(format!("{s:?}: {addr:?} is not HOST:PORT"));
    }
    let (mut fairness_addr, mut container, mut fairness_container) = (None, None, None);
    for part in parts {
        match part.trim().split_once('=') {
            Some(("fairness", a)) if a.contains(':') => fairness_addr = Some(a.to_string()),
            Some(("container", n)) if !n.is_empty() => container = Some(n.to_string()),
            Some(("fairness-container", n)) if !n.is_empty() => {
                fairness_container = Some(n.to_string())
            }
            _ => {
                return Err(format!(
                    "{s:?}: {part:?} is not fairness=HOST:PORT, container=NAME or fairness-container=NAME"
                ));
            }
        }
    }
    Ok(TargetSpec {
        style,
        addr,
        fairness_addr,
        container,
        fairness_container,
    })
}

/// Parses a CPU list such as `0`, `1-3` or `0,2`.
pub fn parse_cpus(s: &str) -> Result<Vec<usize>, String> {
    let mut cpus = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (usize, usize) = (
                    a.parse()
                        .map_err(|_| format!("{part:?} is not a CPU range"))?,
                    b.parse()
                        .map_err(|_| format!("{part:?} is not a CPU range"))?,
                );
                if b < a {
                    return Err(format!("{part:?} is not an ascending range"));
                }
                cpus.extend(a..=b);
            }
            None => cpus.push(
                part.parse()
                    .map_err(|_| format!("{part:?} is not a CPU number"))?,
            ),
        }
    }
    if cpus.is_empty() {
        return Err("no CPU given".into());
    }
    Ok(cpus)
}

fn cpuset(cpus: &[usize]) -> anyhow::Result<CpuSet> {
    let mut set = CpuSet::new();
    for &c in cpus {
        set.set(c)
            .with_context(|| format!("CPU {c} does not exist here"))?;
    }
    Ok(set)
}

/// Runs the comparison and returns its results; writes no file (the
/// caller hands them to [`crate::report::write`]).
pub fn run(opts: &CompareOptions, stop: Arc<AtomicBool>) -> anyhow::Result<CompareResults> {
    let started = Instant::now();
    // Before any load, so the load average says how busy the machine was
    // without us.
    let environment = Fingerprint::collect(None);
    let started_unix_s = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    // Loadgen's own threads (created from here on) inherit this CPU set.
    sched_setaffinity(Pid::from_raw(0), &cpuset(&opts.client_cpus)?)
        .context("pinning loadgen (--client-cpus)")?;
    let server_command = match (&opts.server_bin, opts.targets.is_empty()) {
        (_, false) => match opts.docker {
            Some(_) => "containers, started and stopped through the Docker API".to_string(),
            None => "already running at the given addresses".to_string(),
        },
        (Some(p), true) => p.display().to_string(),
        (None, true) => format!("{} serve", std::env::current_exe()?.display()),
    };
    let estimate = opts
        .styles
        .iter()
        .map(|st| opts.profile.for_style(st).seconds_per_style())
        .sum::<f64>()
        * 1.1
        * f64::from(opts.repeat.max(1));
    let servers_on = if opts.targets.is_empty() {
        format!("servers on CPUs {:?}", opts.server_cpus)
    } else {
        "servers at the given targets".to_string()
    };
    eprintln!(
        "loadgen compare: profile {}, styles {}, {servers_on}, loadgen on CPUs {:?}; expected about {:.0} s",
        opts.profile.name,
        opts.styles.join(","),
        opts.client_cpus,
        estimate
    );
    if let Some([one, _, _]) = crate::probe::host::load_average()
        && one > 1.0
    {
        eprintln!(
            "loadgen compare: warning: the machine is busy before we start (load average {one:.2}); \
             other processes will make the numbers noisy"
        );
    }
    let total_runs: usize = opts
        .styles
        .iter()
        .map(|st| opts.profile.for_style(st).runs_per_style())
        .sum();
    let repeat = opts.repeat.max(1);
    let (layout, cgroup) = if opts.targets.is_empty() {
        cgroup_setup(opts, crate::probe::cgroup::Layout::detect())?
    } else {
        // Someone else's servers; containers have cgroups of their own.
        (None, container_setup(opts))
    };
    let progress = Progress::new(total_runs * repeat as usize);
    let mut runs = Vec::new();
    let mut servers = Vec::new();
    // Round by round, every style in each: drift over the run (thermal,
    // other tenants) then hits every style alike.
    // Point by point where the profile allows it (perf): at each point
    // every style in turn, a fresh server each.
    let units = round_units(opts);
    'rounds: for round in 0..repeat {
        let (first_run, first_server) = (runs.len(), servers.len());
        for (style, step) in &units {
            if stop.load(std::sync::atomic::Ordering::Relaxed) {
                break 'rounds;
            }
            let (layout, progress) = (layout.as_ref(), &progress);
            match step {
                Some(step) => compare_step(
                    opts,
                    layout,
                    style,
                    *step,
                    &stop,
                    progress,
                    &mut runs,
                    &mut servers,
                ),
                None => compare_style(
                    opts,
                    layout,
                    style,
                    &stop,
                    progress,
                    &mut runs,
                    &mut servers,
                ),
            }
        }
        for r in &mut runs[first_run..] {
            if let Some(t) = r.tags.as_mut() {
                t.repeat = round;
            }
        }
        for s in &mut servers[first_server..] {
            s.repeat = round;
        }
    }
    progress.finish();
    let results = CompareResults {
        schema_version: SCHEMA_VERSION,
        profile: opts.profile.name.into(),
        started_unix_s,
        elapsed_s: started.elapsed().as_secs_f64(),
        environment,
        server_cpus: opts.server_cpus.clone(),
        client_cpus: opts.client_cpus.clone(),
        server_command,
        network: opts.network.clone().unwrap_or_else(|| "loopback".into()),
        styles: opts.styles.clone(),
        repeat,
        cgroup,
        servers,
        runs,
    };
    Ok(results)
}

/// Finds the cgroup layout and checks that a server's group can be made
/// (creating and removing one), after removing the groups a killed run left.
/// Where cgroups cannot be written the comparison goes on without them and
/// says so (on stderr now, in the report later), unless a quota was asked
/// for explicitly: then it stops, since the runs would not be what was asked.
pub fn cgroup_setup(
    opts: &CompareOptions,
    detected: Result<crate::probe::cgroup::Layout, crate::probe::cgroup::CgroupError>,
) -> anyhow::Result<(Option<crate::probe::cgroup::Layout>, Option<CgroupSetup>)> {
    use crate::probe::cgroup::{PERIOD_US, ServerCgroup, remove_leftovers};
    let mut setup = CgroupSetup {
        made_by: "loadgen".into(),
        cpu_quota: opts.server_cpu_quota,
        period_us: PERIOD_US,
        ..CgroupSetup::default()
    };
    let checked = detected.and_then(|layout| {
        let left = remove_leftovers(&layout);
        ServerCgroup::create(&layout, "probe", opts.server_cpu_quota)?;
        Ok((layout, left))
    });
    match checked {
        Ok((layout, left)) => {
            setup.used = true;
            setup.version = Some(layout.version().into());
            if !left.is_empty() {
                let note = format!(
                    "removed {} cgroup(s) left by an earlier run that was killed: {}",
                    left.len(),
                    left.join(", ")
                );
                eprintln!("loadgen compare: {note}");
                setup.note = Some(note);
            }
            Ok((Some(layout), Some(setup)))
        }
        Err(e) if opts.quota_required => Err(anyhow::anyhow!(
            "--server-cpu-quota needs a cgroup for each server, and none can be made here: {e} \
             (run as root on a machine with writable cgroups, or leave the quota out)"
        )),
        Err(e) => {
            let note = format!(
                "servers ran without cgroups of their own ({e}): no CPU quota{}, CPU from /proc \
                 samples, memory without the kernel's share",
                match opts.server_cpu_quota {
                    Some(q) => format!(" (the profile's {q} CPU was not applied)"),
                    None => String::new(),
                }
            );
            eprintln!("loadgen compare: warning: {note}");
            setup.cpu_quota = None;
            setup.note = Some(note);
            Ok((None, Some(setup)))
        }
    }
}

/// A target's container: the one named, else its address's host (container
/// names are host names on a compose network).
fn container_name(container: Option<&str>, addr: &str) -> String {
    container.map(String::from).unwrap_or_else(|| {
        addr.rsplit_once(':')
            .map(|(h, _)| h)
            .unwrap_or(addr)
            .to_string()
    })
}

/// Containers' CPU quota, read back from the first target's container (the
/// compose files give every server the same).
fn container_setup(opts: &CompareOptions) -> Option<CgroupSetup> {
    let docker = opts.docker.as_ref()?;
    let t = opts.targets.first()?;
    let name = container_name(t.container.as_deref(), &t.addr);
    let mut setup = CgroupSetup {
        made_by: "docker".into(),
        ..CgroupSetup::default()
    };
    match docker.cpu_quota(&name) {
        Ok(q) => {
            setup.cpu_quota = q.map(|(cpus, _)| cpus);
            setup.period_us = q.map(|(_, p)| p).unwrap_or(0);
        }
        Err(e) => {
            setup.note = Some(format!(
                "the containers' CPU quota could not be read: {e:#}"
            ))
        }
    }
    Some(setup)
}

/// What one round runs, in order: each style whole, or, where the profile
/// goes point by point, at each step every style whose plan has it.
fn round_units(opts: &CompareOptions) -> Vec<(String, Option<Step>)> {
    let plans: Option<Vec<(&String, Vec<Step>)>> = opts
        .styles
        .iter()
        .map(|st| opts.profile.for_style(st).steps().map(|p| (st, p)))
        .collect();
    let Some(plans) = plans else {
        return opts.styles.iter().map(|st| (st.clone(), None)).collect();
    };
    // Idle first, then the scale points in the profile's order; a step only
    // some styles take (perf's polling holds fewer idle connections, but
    // its idle is the same step) keeps that place.
    let order = opts.profile.steps().unwrap_or_default();
    let mut steps: Vec<Step> = Vec::new();
    for step in plans.iter().flat_map(|(_, p)| p.iter()) {
        if !steps.contains(step) {
            steps.push(*step);
        }
    }
    steps.sort_by_key(|s| order.iter().position(|o| o == s).unwrap_or(usize::MAX));
    steps
        .iter()
        .flat_map(|step| {
            plans
                .iter()
                .filter(|(_, p)| p.contains(step))
                .map(|(st, _)| ((*st).clone(), Some(*step)))
        })
        .collect()
}

/// One step of a point-by-point comparison for one style, on a fresh
/// server (or its target).
#[allow(clippy::too_many_arguments)]
fn compare_step(
    opts: &CompareOptions,
    layout: Option<&crate::probe::cgroup::Layout>,
    style: &str,
    step: Step,
    stop: &Arc<AtomicBool>,
    progress: &Progress,
    runs: &mut Vec<RunResult>,
    servers: &mut Vec<ServerRecord>,
) {
    let p = &opts.profile.for_style(style);
    let phase = step.name();
    let mut body = |target: &Target| {
        let mut on_run = |r: &RunResult| progress.run_done(r);
        let mut env = Env::new(p, target, Arc::clone(stop), &mut on_run);
        step.run(&mut env)
    };
    let (record, step_runs) = match opts.targets.iter().find(|t| t.style == style) {
        Some(t) => with_target(
            opts,
            style,
            &phase,
            Some(&t.addr),
            t.container.as_deref(),
            &mut body,
        ),
        None => with_server(opts, layout, style, &phase, &[], &mut body),
    };
    servers.push(record);
    runs.extend(step_runs);
}

fn compare_style(
    opts: &CompareOptions,
    layout: Option<&crate::probe::cgroup::Layout>,
    style: &str,
    stop: &Arc<AtomicBool>,
    progress: &Progress,
    runs: &mut Vec<RunResult>,
    servers: &mut Vec<ServerRecord>,
) {
    let p = &opts.profile.for_style(style);
    // Every scenario but fairness on one server, idle first: its baseline
    // RSS is then that of a fresh server.
    let target = opts.targets.iter().find(|t| t.style == style);
    let main = |body: &mut dyn FnMut(&Target) -> Vec<RunResult>| match target {
        Some(t) => with_target(
            opts,
            style,
            "main",
            Some(&t.addr),
            t.container.as_deref(),
            body,
        ),
        None => with_server(opts, layout, style, "main", &[], body),
    };
    let (record, main_runs) = main(&mut |target| {
        let mut on_run = |r: &RunResult| progress.run_done(r);
        let mut env = Env::new(p, target, Arc::clone(stop), &mut on_run);
        let mut out = Vec::new();
        for &sc in &p.scenarios {
            if !sc.own_server() {
                let runs = scenarios::run(sc, &mut env, &out);
                out.extend(runs);
            }
        }
        out
    });
    servers.push(record);
    runs.extend(main_runs);
    if stop.load(std::sync::atomic::Ordering::Relaxed) || !p.runs(Scenario::Fairness) {
        return;
    }
    let work = p.fairness_work_us.to_string();
    let mut fairness = |target: &Target| {
        let mut on_run = |r: &RunResult| progress.run_done(r);
        let mut env = Env::new(p, target, Arc::clone(stop), &mut on_run);
        scenarios::run(Scenario::Fairness, &mut env, &[])
    };
    let (record, fair_runs) = match target {
        Some(t) => with_target(
            opts,
            style,
            "fairness",
            t.fairness_addr.as_deref(),
            t.fairness_container.as_deref(),
            &mut fairness,
        ),
        None => with_server(
            opts,
            layout,
            style,
            "fairness",
            &["--work-us", &work],
            &mut fairness,
        ),
    };
    servers.push(record);
    runs.extend(fair_runs);
}

/// Starts a server for `style`, runs `body` against it, stops it and checks
/// how it stopped. A server that does not start yields no runs and a record
/// that says why.
fn with_server(
    opts: &CompareOptions,
    layout: Option<&crate::probe::cgroup::Layout>,
    style: &str,
    phase: &str,
    extra: &[&str],
    body: &mut dyn FnMut(&Target) -> Vec<RunResult>,
) -> (ServerRecord, Vec<RunResult>) {
    let mut record = ServerRecord {
        style: style.into(),
        phase: phase.into(),
        managed_by: "loadgen".into(),
        ..ServerRecord::default()
    };
    let variant = match Variant::parse(style) {
        Ok(v) => v,
        Err(e) => {
            record.problem = Some(format!("did not start: {e}"));
            return (record, Vec::new());
        }
    };
    let mut args = variant.server_args();
    args.extend(extra.iter().map(|a| a.to_string()));
    record.args = args[1..].to_vec();
    let quota = quota_for(opts, style);
    let group = match layout
        .map(|l| crate::probe::cgroup::ServerCgroup::create(l, &format!("{style}-{phase}"), quota))
        .transpose()
    {
        Ok(g) => g.map(Arc::new),
        Err(e) => {
            eprintln!("loadgen compare: {style}: {e:#}");
            record.problem = Some(format!("did not start: no cgroup: {e:#}"));
            return (record, Vec::new());
        }
    };
    record.cgroup = group.as_ref().map(|g| g.name().to_string());
    record.cpu_quota = group.as_ref().and_then(|g| g.quota());
    let server = match ServerProcess::spawn(opts, &args, group.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("loadgen compare: {style}: {e:#}");
            record.problem = Some(format!("did not start: {e:#}"));
            return (record, Vec::new());
        }
    };
    record.started = true;
    record.pid = Some(server.pid);
    // What the server uses doing nothing (polling spins even then): the
    // level it settles back to between runs.
    let idle_cpu = group
        .as_ref()
        .and_then(|g| g.busy(Duration::from_millis(200)))
        .unwrap_or(0.0);
    let target = Target {
        style: style.into(),
        addr: server.addr,
        server_pid: Some(server.pid),
        container: None,
        cgroup: group.clone(),
        idle_cpu,
    };
    let runs = body(&target);
    drop(target);
    let stopped = server.stop(stop_grace(quota.filter(|_| group.is_some())));
    // Whatever the server left running (a wrapper script's children, a
    // worker that ignored SIGTERM) dies with its cgroup.
    if let Some(g) = group {
        record.leftover_processes_killed = g.kill_all(Duration::from_secs(2));
    }
    record.exit_code = stopped.exit_code;
    record.summary = stopped.summary.clone();
    record.stopped_cleanly = stopped.exit_code == Some(0) && stopped.summary.is_some();
    record.problem = stopped.problem;
    if !record.stopped_cleanly && record.problem.is_none() {
        record.problem = Some(match stopped.exit_code {
            Some(code) => format!("exited {code} on SIGTERM without a clean summary"),
            None => "killed by a signal".into(),
        });
    }
    (record, runs)
}

/// Drives a server that is already there (or a container that the Docker
/// API starts now and stops after).
fn with_target(
    opts: &CompareOptions,
    style: &str,
    phase: &str,
    addr: Option<&str>,
    container: Option<&str>,
    body: &mut dyn FnMut(&Target) -> Vec<RunResult>,
) -> (ServerRecord, Vec<RunResult>) {
    let mut record = ServerRecord {
        style: style.into(),
        phase: phase.into(),
        managed_by: if opts.docker.is_some() {
            "docker"
        } else {
            "none"
        }
        .into(),
        ..ServerRecord::default()
    };
    let Some(addr) = addr else {
        record.problem = Some(format!("no {phase} address given in --target"));
        return (record, Vec::new());
    };
    let name = container_name(container, addr);
    let container = opts.docker.clone().map(|d| (d, name));
    let since = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    if let Some((docker, name)) = &container
        && let Err(e) = docker.start(name)
    {
        record.problem = Some(format!("did not start: {e:#}"));
        return (record, Vec::new());
    }
    let resolved = match wait_for_listener(addr, Duration::from_secs(20)) {
        Ok(a) => a,
        Err(e) => {
            record.problem = Some(format!("not reachable at {addr}: {e:#}"));
            if let Some((docker, name)) = &container {
                let _ = docker.stop(name, Duration::from_secs(5));
            }
            return (record, Vec::new());
        }
    };
    record.started = true;
    let target = Target {
        style: style.into(),
        addr: resolved,
        server_pid: None,
        container: container.clone(),
        cgroup: None,
        idle_cpu: 0.0,
    };
    let runs = body(&target);
    if let Some((docker, name)) = &container {
        match docker.stop(name, Duration::from_secs(5)) {
            Ok(code) => {
                record.exit_code = code.map(|c| c as i32);
                record.summary = docker.stderr_since(name, since).ok().and_then(|log| {
                    log.lines()
                        .rev()
                        .find(|l| l.starts_with("summary "))
                        .map(String::from)
                });
                record.stopped_cleanly = code == Some(0) && record.summary.is_some();
                if !record.stopped_cleanly {
                    record.problem = Some(format!(
                        "exit code {code:?} on stop, summary line: {}",
                        record.summary.is_some()
                    ));
                }
            }
            Err(e) => record.problem = Some(format!("stopping: {e:#}")),
        }
    }
    (record, runs)
}

/// Resolves `addr` and waits until it accepts a TCP connection (a container
/// just started needs a moment).
fn wait_for_listener(addr: &str, limit: Duration) -> anyhow::Result<std::net::SocketAddr> {
    use std::net::ToSocketAddrs;
    let deadline = Instant::now() + limit;
    loop {
        let attempt = addr
            .to_socket_addrs()
            .map_err(anyhow::Error::from)
            .and_then(|mut a| a.next().context("resolves to no address"))
            .and_then(|a| {
                std::net::TcpStream::connect_timeout(&a, Duration::from_secs(1))
                    .map(|_| a)
                    .map_err(anyhow::Error::from)
            });
        match attempt {
            Ok(a) => return Ok(a),
            Err(e) if Instant::now() >= deadline => return Err(e),
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// The quota of `style`'s server: the one given on the command line for
/// every style; else the profile's plan for the style (perf runs `polling`
/// without), unless `--server-cpu-quota none` turned it off.
fn quota_for(opts: &CompareOptions, style: &str) -> Option<f64> {
    if opts.quota_required {
        opts.server_cpu_quota
    } else {
        opts.server_cpu_quota
            .and(opts.profile.for_style(style).server_cpu_quota)
    }
}

/// How long a server gets to stop after SIGTERM: 5 s of a whole CPU, so
/// longer in a quota (10 s at 0.5: ending 10,000 threads takes CPU too).
pub fn stop_grace(quota: Option<f64>) -> Duration {
    let share = quota.unwrap_or(1.0).clamp(0.1, 1.0);
    Duration::from_secs_f64(5.0 / share)
}

struct ServerProcess {
    child: Child,
    pid: u32,
    addr: std::net::SocketAddr,
    stderr: Arc<Mutex<Vec<String>>>,
}

struct Stopped {
    exit_code: Option<i32>,
    summary: Option<String>,
    problem: Option<String>,
}

impl ServerProcess {
    /// Starts `servers` with `args` (the style first, then its flags),
    /// inside `group` from before its first instruction.
    fn spawn(
        opts: &CompareOptions,
        args: &[String],
        group: Option<&crate::probe::cgroup::ServerCgroup>,
    ) -> anyhow::Result<ServerProcess> {
        let mut cmd = match &opts.server_bin {
            Some(bin) => Command::new(bin),
            None => {
                let mut c = Command::new(std::env::current_exe().context("locating loadgen")?);
                c.arg("serve");
                c
            }
        };
        cmd.args(args).args(["--addr", "127.0.0.1:0"]);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let set = cpuset(&opts.server_cpus)?;
        // Open until the child has exec'd (spawn returns after that).
        let placement = group.map(|g| g.placement()).transpose()?;
        let fds = placement.as_ref().map(|p| p.raw()).unwrap_or_default();
        // SAFETY: between fork and exec only sched_setaffinity and write(2)
        // on descriptors open in the parent run, both async-signal-safe;
        // `fds` was allocated before the fork and is only read.
        unsafe {
            use std::os::unix::process::CommandExt;
            cmd.pre_exec(move || {
                crate::probe::cgroup::Placement::enter(&fds)?;
                sched_setaffinity(Pid::from_raw(0), &set).map_err(std::io::Error::from)
            });
        }
        let mut child = cmd.spawn().context("starting the server (--server-bin)")?;
        drop(placement);
        let pid = child.id();
        let stdout = child.stdout.take().context("server stdout")?;
        let stderr_pipe = child.stderr.take().context("server stderr")?;
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&stderr);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr_pipe).lines().map_while(Result::ok) {
                if let Ok(mut lines) = sink.lock() {
                    lines.push(line);
                }
            }
        });
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let mut server = ServerProcess {
            child,
            pid,
            addr: "127.0.0.1:0".parse().expect("address"),
            stderr,
        };
        let line = match rx.recv_timeout(Duration::from_secs(10)) {
            Ok(line) => line,
            Err(_) => {
                let _ = server.child.kill();
                let _ = server.child.wait();
                bail!(
                    "no listening line within 10 s; stderr: {}",
                    server.stderr_text()
                );
            }
        };
        let Some((addr, _, _)) = servers::parse_listening_line(&line) else {
            let _ = server.child.kill();
            let _ = server.child.wait();
            bail!(
                "unexpected first line {line:?}; stderr: {}",
                server.stderr_text()
            );
        };
        server.addr = addr;
        Ok(server)
    }

    fn stderr_text(&self) -> String {
        self.stderr
            .lock()
            .map(|l| l.join(" | "))
            .unwrap_or_default()
    }

    /// SIGTERM, then wait at most `grace` (SIGKILL after that).
    fn stop(mut self, grace: Duration) -> Stopped {
        let mut problem = None;
        if let Ok(Some(status)) = self.child.try_wait() {
            problem = Some(format!(
                "had already exited ({status}) before the end of its scenarios"
            ));
        } else {
            let _ = nix::sys::signal::kill(
                Pid::from_raw(self.pid as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
        let deadline = Instant::now() + grace;
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(status)) => break Some(status),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                _ => {
                    problem.get_or_insert_with(|| {
                        format!("did not stop within {grace:?} of SIGTERM; killed")
                    });
                    let _ = self.child.kill();
                    break self.child.wait().ok();
                }
            }
        };
        // The stderr reader ends with the process; give it a moment to
        // collect the last line.
        let deadline = Instant::now() + Duration::from_secs(1);
        let summary = loop {
            let found = self
                .stderr
                .lock()
                .ok()
                .and_then(|l| l.iter().find(|l| l.starts_with("summary ")).cloned());
            if found.is_some() || Instant::now() >= deadline {
                break found;
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        Stopped {
            exit_code: status.and_then(|s| s.code()),
            summary,
            problem,
        }
    }
}

/// A line per run on stderr, and a bar when stderr is a terminal.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    done: Mutex<usize>,
    total: usize,
}

impl Progress {
    fn new(total: usize) -> Progress {
        use std::io::IsTerminal;
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new(total as u64);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "[{bar:30}] {pos}/{len} runs, {elapsed} elapsed, ~{eta} left",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            bar
        });
        Progress {
            bar,
            done: Mutex::new(0),
            total,
        }
    }

    fn run_done(&self, r: &RunResult) {
        let n = {
            let mut done = self.done.lock().unwrap_or_else(|p| p.into_inner());
            *done += 1;
            *done
        };
        let line = format!(
            "[{n}/{}] {:<40} {:>9.0} msg/s  p99 {:>8}  errors {}{}",
            self.total,
            r.label.as_deref().unwrap_or("run"),
            r.throughput_msgs_per_s,
            crate::results::fmt_us(r.latency_us.p99),
            r.errors.describe(),
            if r.client.client_bound {
                "  CLIENT-BOUND"
            } else {
                ""
            }
        );
        match &self.bar {
            Some(bar) => {
                bar.println(line);
                bar.inc(1);
            }
            None => eprintln!("{line}"),
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_with_fairness_and_containers() {
        let t = parse_target("threads=c10k-threads:7000,fairness=c10k-threads-fair:7000").unwrap();
        assert_eq!(t.style, "threads");
        assert_eq!(t.addr, "c10k-threads:7000");
        assert_eq!(t.fairness_addr.as_deref(), Some("c10k-threads-fair:7000"));
        let t = parse_target(
            "tasks=127.0.0.1:7106,container=c10k-tasks,fairness-container=c10k-tasks-fair",
        )
        .unwrap();
        assert_eq!(t.container.as_deref(), Some("c10k-tasks"));
        assert_eq!(t.fairness_container.as_deref(), Some("c10k-tasks-fair"));
        for bad in [
            "threads",
            "fibers=h:1",
            "threads=nohost",
            "threads=h:1,color=blue",
            "threads=h:1,fairness=x",
        ] {
            assert!(parse_target(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_quota_gives_a_longer_grace() {
        assert_eq!(stop_grace(None), Duration::from_secs(5));
        assert_eq!(stop_grace(Some(2.0)), Duration::from_secs(5));
        assert_eq!(stop_grace(Some(0.5)), Duration::from_secs(10));
        assert_eq!(stop_grace(Some(0.01)), Duration::from_secs(50));
    }

    #[test]
    fn cpu_lists_parse() {
        assert_eq!(parse_cpus("0").unwrap(), vec![0]);
        assert_eq!(parse_cpus("1-3,5").unwrap(), vec![1, 2, 3, 5]);
        assert!(parse_cpus("3-1").is_err());
        assert!(parse_cpus("").is_err());
        assert!(parse_cpus("x").is_err());
    }
}
