//! The servers a comparison drives: a process it starts (a style's, or an
//! external command's: pinned, in its own cgroup and process group, stopped
//! with SIGTERM then SIGKILL, its exit checked), or a running one or a
//! container at a `--target` address.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context;

use crate::compare::cgroups::{container_name, quota_for, stop_grace};
use crate::compare::env::Target;
use crate::compare::external;
use crate::compare::guard::Guard;
use crate::compare::model::{ExternalServer, Scenario, ServerRecord};
use crate::compare::options::CompareOptions;
use crate::compare::process::ServerProcess;
use crate::compare::variant::Variant;
use crate::results::RunResult;

/// What a row's server runs: a style's `servers` (the style, then its
/// flags), or an external command.
enum Launch<'a> {
    Style(Vec<String>),
    External(&'a ExternalServer),
}

/// Starts a server for `style` (a style, a variant or an external
/// server's row), runs `body` against it, stops it and checks how it
/// stopped. A server that does not start yields no runs and a record that
/// says why.
///
/// `who` is the style and, for a scenario's own server (fairness), that
/// scenario: its quota is the profile's for it ([`quota_for`]).
pub fn with_server(
    opts: &CompareOptions,
    layout: Option<&crate::probe::cgroup::Layout>,
    who: (&str, Option<Scenario>),
    phase: &str,
    extra: &[&str],
    body: &mut dyn FnMut(&Target) -> Vec<RunResult>,
) -> (ServerRecord, Vec<RunResult>) {
    let (style, scenario) = who;
    let widened;
    let opts = if scenario.is_some_and(Scenario::on_every_cpu) {
        widened = CompareOptions {
            server_cpus: compare_cpus(opts),
            ..opts.clone()
        };
        &widened
    } else {
        opts
    };
    let mut record = ServerRecord {
        style: style.into(),
        phase: phase.into(),
        managed_by: "loadgen".into(),
        ..ServerRecord::default()
    };
    let launch = match (opts.external(style), Variant::parse(style)) {
        // `extra` are our servers' flags (fairness's --work-us): an
        // external command runs as it is.
        (Some(ext), _) => Launch::External(ext),
        (None, Ok(variant)) => {
            let mut args = variant.server_args();
            args.extend(extra.iter().map(|a| a.to_string()));
            record.args = args[1..].to_vec();
            Launch::Style(args)
        }
        (None, Err(e)) => {
            record.problem = Some(format!("did not start: {e}"));
            return (record, Vec::new());
        }
    };
    let quota = quota_for(opts, style, scenario);
    let group = match layout
        .map(|l| crate::probe::cgroup::ServerCgroup::create(l, &format!("{style}-{phase}"), quota))
        .transpose()
    {
        Ok(g) => g.map(Arc::new),
        Err(e) => {
            note!("loadgen: {style}: {e:#}");
            record.problem = Some(format!("did not start: no cgroup: {e:#}"));
            return (record, Vec::new());
        }
    };
    if let Some(g) = &group {
        // Its CPU time is ours in every window it overlaps (a partner's).
        crate::probe::foreign::own_group(g);
    }
    let guard = opts.guard.as_deref();
    if let (Some(guard), Some(g)) = (guard, &group) {
        guard.watch_dirs(g.dirs());
    }
    record.cgroup = group.as_ref().map(|g| g.name().to_string());
    record.cpu_quota = group.as_ref().and_then(|g| g.quota());
    let started = match &launch {
        Launch::Style(args) => ServerProcess::spawn(opts, args, group.as_deref()),
        Launch::External(ext) => {
            ServerProcess::start_external(opts, ext, group.as_deref(), &mut record)
        }
    };
    let server = match started {
        Ok(s) => s,
        Err(e) => {
            note!("loadgen: {style}: {e:#}");
            record.problem = Some(format!("did not start: {e:#}"));
            record.leftover_processes_killed += release(group, guard);
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
        counters: Some(Arc::clone(&server.counters)),
        idle_cpu,
        // Only where the server's CPU time is known exactly (its group).
        foreign_cpus: group.as_ref().map(|_| compare_cpus(opts)),
    };
    let runs = body(&target);
    drop(target);
    let grace = match launch {
        Launch::Style(_) => stop_grace(quota.filter(|_| group.is_some())),
        Launch::External(_) => external::STOP_GRACE,
    };
    // Stopping is not measured: it gets the whole CPU (the grace stays
    // what the quota would need).
    if let Some(g) = group.as_ref().filter(|g| g.quota().is_some()) {
        let _ = g.lift_quota();
    }
    let stopped = server.stop(grace);
    // Whatever the server left running outside its process group (a
    // daemon that made a session of its own) dies with its cgroup.
    record.leftover_processes_killed = stopped.strays + release(group, guard);
    record.exit_code = stopped.exit_code;
    record.exit_signal = stopped.signal.map(external::signal_name);
    record.summary = stopped.summary.clone();
    record.failures = stopped.failures.clone();
    record.problem = stopped.problem;
    match launch {
        Launch::Style(_) => {
            record.stopped_cleanly = stopped.exit_code == Some(0) && stopped.summary.is_some();
            if !record.stopped_cleanly && record.problem.is_none() {
                record.problem = Some(match stopped.exit_code {
                    Some(code) => format!("exited {code} on SIGTERM without a clean summary"),
                    None => "killed by a signal".into(),
                });
            }
        }
        Launch::External(_) => {
            let judged = external::judge_stop(stopped.exit_code, stopped.signal);
            record.stopped_cleanly = record.problem.is_none() && judged.is_ok();
            if record.problem.is_none() {
                record.problem = judged.err();
            }
        }
    }
    (record, runs)
}

/// Kills what is left in a server's cgroup and removes it (the guard told);
/// how many processes it killed.
fn release(group: Option<Arc<crate::probe::cgroup::ServerCgroup>>, guard: Option<&Guard>) -> usize {
    let Some(g) = group else { return 0 };
    let killed = g.kill_all(Duration::from_secs(2));
    let dirs = g.dirs().to_vec();
    drop(g);
    if let Some(guard) = guard {
        guard.forget_dirs(&dirs);
    }
    killed
}

/// Drives a server that is already there (or a container that the Docker
/// API starts now and stops after).
pub fn with_target(
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
        counters: None,
        idle_cpu: 0.0,
        // Someone else's servers: their CPU time is not ours to count.
        foreign_cpus: None,
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

/// Every CPU compare uses, the servers' and loadgen's: where a reach server runs,
/// and whose foreign load a run measures.
fn compare_cpus(opts: &CompareOptions) -> Vec<usize> {
    let mut cpus: Vec<usize> = opts
        .server_cpus
        .iter()
        .chain(&opts.client_cpus)
        .copied()
        .collect();
    cpus.sort_unstable();
    cpus.dedup();
    cpus
}
