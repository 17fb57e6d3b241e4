//! The servers a comparison drives: a process it starts (pinned, in its
//! own cgroup, stopped with SIGTERM then SIGKILL, its exit checked), or a
//! running one or a container at a `--target` address.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, bail};
use nix::sched::sched_setaffinity;
use nix::unistd::Pid;

use crate::compare::cgroups::{container_name, quota_for, stop_grace};
use crate::compare::env::Target;
use crate::compare::model::ServerRecord;
use crate::compare::options::{CompareOptions, cpuset};
use crate::compare::variant::Variant;
use crate::results::RunResult;

/// Starts a server for `style`, runs `body` against it, stops it and checks
/// how it stopped. A server that does not start yields no runs and a record
/// that says why.
pub fn with_server(
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
            note!("loadgen: {style}: {e:#}");
            record.problem = Some(format!("did not start: no cgroup: {e:#}"));
            return (record, Vec::new());
        }
    };
    let guard = opts.guard.as_deref();
    if let (Some(guard), Some(g)) = (guard, &group) {
        guard.watch_dirs(g.dirs());
    }
    record.cgroup = group.as_ref().map(|g| g.name().to_string());
    record.cpu_quota = group.as_ref().and_then(|g| g.quota());
    let server = match ServerProcess::spawn(opts, &args, group.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            note!("loadgen: {style}: {e:#}");
            record.problem = Some(format!("did not start: {e:#}"));
            return (record, Vec::new());
        }
    };
    if let Some(guard) = guard {
        // Its own process group, led by it (see `spawn`).
        guard.watch_group(server.pid);
    }
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
    let pid = server.pid;
    let stopped = server.stop(stop_grace(quota.filter(|_| group.is_some())));
    // Whatever the server left running (a wrapper script's children, a
    // worker that ignored SIGTERM) dies with its cgroup.
    if let Some(g) = group {
        record.leftover_processes_killed = g.kill_all(Duration::from_secs(2));
        let dirs = g.dirs().to_vec();
        drop(g);
        if let Some(guard) = guard {
            guard.forget_dirs(&dirs);
        }
    }
    if let Some(guard) = guard {
        guard.forget_group(pid);
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
        let parent = std::process::id() as libc::pid_t;
        // SAFETY: between fork and exec only write(2) on descriptors open in
        // the parent, sched_setaffinity, setpgid, prctl and getppid run, all
        // async-signal-safe; `fds` was allocated before the fork and is
        // only read.
        unsafe {
            use std::os::unix::process::CommandExt;
            cmd.pre_exec(move || {
                crate::probe::cgroup::Placement::enter(&fds)?;
                sched_setaffinity(Pid::from_raw(0), &set).map_err(std::io::Error::from)?;
                // A process group of its own, so that stopping it reaches a
                // wrapper script's children too, and a terminal's Ctrl-C
                // reaches compare alone (which then stops it).
                if libc::setpgid(0, 0) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // Dies with compare, however compare ends; if compare is
                // already gone, do not start at all.
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0
                    || libc::getppid() != parent
                {
                    return Err(std::io::Error::other("loadgen compare is gone"));
                }
                Ok(())
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
                "{} ({status}) before the end of its scenarios",
                ServerRecord::DIED
            ));
        } else {
            // The whole group: a wrapper that does not `exec` passes
            // nothing on.
            let _ = nix::sys::signal::killpg(
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
                    let _ = nix::sys::signal::killpg(
                        Pid::from_raw(self.pid as i32),
                        nix::sys::signal::Signal::SIGKILL,
                    );
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
