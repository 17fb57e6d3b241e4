//! A server process as `compare` runs it, a style's or an external
//! command's: started pinned to the servers' CPUs, in its cgroup from its
//! first instruction, leading a process group of its own that the guard
//! knows about, dying with compare; ready once it listens; stopped with
//! SIGTERM to its group, SIGKILL after a grace, and reaped only once the
//! rest of its group is gone (so the group's id cannot be reused while it
//! is signalled).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use nix::sched::sched_setaffinity;
use nix::unistd::Pid;

use crate::compare::external::{self, StderrTail};
use crate::compare::guard::Guard;
use crate::compare::model::{ExternalServer, ServerRecord};
use crate::compare::options::{CompareOptions, cpuset};
use crate::probe::counters::{ServerCounters, StartGate};

/// A server process compare started.
pub struct ServerProcess {
    child: Child,
    pub pid: u32,
    pub addr: std::net::SocketAddr,
    output: Output,
    /// Told about its process group from its start to its reaping.
    guard: Option<Arc<Guard>>,
    /// The kernel's counters on its whole tree, open before its first
    /// instruction (or why not).
    pub counters: Arc<ServerCounters>,
}

/// What a server's stderr is kept as.
enum Output {
    /// A style's, line by line: its summary line is among them.
    Lines(Arc<Mutex<Vec<String>>>),
    /// An external server's last lines, for a failure's reason.
    Tail(StderrTail),
}

/// How a server ended.
pub struct Stopped {
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub summary: Option<String>,
    pub problem: Option<String>,
    /// Processes of its group still running after it ended, killed.
    pub strays: usize,
    /// Its lines that say it ran out of something ([`failure_lines`]).
    pub failures: Vec<String>,
}

/// Starts `cmd` as a server: pinned to the servers' CPUs and inside `group`
/// from before its first instruction, leading a process group of its own
/// (told to the guard at once) and dying with compare; the kernel's
/// counters open on it (inherited by every thread and process it makes)
/// before it execs.
fn launch(
    opts: &CompareOptions,
    mut cmd: Command,
    group: Option<&crate::probe::cgroup::ServerCgroup>,
) -> anyhow::Result<(Child, Arc<ServerCounters>)> {
    let set = cpuset(&opts.server_cpus)?;
    // Open until the child has exec'd (spawn returns after that).
    let placement = group.map(|g| g.placement()).transpose()?;
    let fds = placement.as_ref().map(|p| p.raw()).unwrap_or_default();
    let parent = std::process::id() as libc::pid_t;
    // Counted on the server's cgroup where the kernel can (no copy per
    // thread), else on its tasks, opened while it waits before exec.
    // LOADGEN_COUNTERS (docs/method.md) measures what counting costs:
    // "off" counts nothing, "tasks" follows the tasks even where the
    // cgroup could be counted.
    let choice = std::env::var("LOADGEN_COUNTERS").unwrap_or_default();
    let on_group = match choice.as_str() {
        "off" => Some(ServerCounters::unmeasured(
            "not measured: switched off (LOADGEN_COUNTERS=off)",
        )),
        "tasks" => None,
        _ => group
            .and_then(|g| g.perf_dir().ok())
            .and_then(|dir| ServerCounters::open_on_cgroup(dir).ok()),
    };
    let gate = match on_group {
        Some(_) => None,
        None => Some(StartGate::new().context("starting the counters' opener")?),
    };
    let child_gate = gate.as_ref().map(StartGate::child);
    // SAFETY: between fork and exec only write(2) on descriptors open in
    // the parent, sched_setaffinity, setpgid, prctl, getppid and the
    // gate's close, getpid, write, poll and read run, all
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
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 || libc::getppid() != parent
            {
                return Err(std::io::Error::other("loadgen compare is gone"));
            }
            // Last: the counters open on this pid while it waits, and
            // count from here on, exec included.
            if let Some(g) = &child_gate {
                g.wait();
            }
            Ok(())
        });
    }
    let spawned = cmd.spawn();
    let counters = Arc::new(match (on_group, gate) {
        (Some(c), _) => c,
        (None, Some(g)) => g.finish(),
        (None, None) => ServerCounters::unmeasured("no counters were opened"),
    });
    let child = spawned?;
    drop(placement);
    if let Some(guard) = &opts.guard {
        // Before any wait for it to listen: what a wrapper starts in the
        // meantime has no death signal of its own.
        guard.watch_group(child.id());
    }
    Ok((child, counters))
}

impl ServerProcess {
    /// Starts `servers` with `args` (the style first, then its flags),
    /// and waits for its listening line.
    pub fn spawn(
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
        let (mut child, counters) =
            launch(opts, cmd, group).context("starting the server (--server-bin)")?;
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
            output: Output::Lines(stderr),
            guard: opts.guard.clone(),
            counters,
        };
        let line = match rx.recv_timeout(Duration::from_secs(10)) {
            Ok(line) => line,
            Err(_) => {
                let text = server.stderr_text();
                server.stop(Duration::from_secs(1));
                bail!("no listening line within 10 s; stderr: {text}");
            }
        };
        let Some((addr, _, _)) = servers::parse_listening_line(&line) else {
            let text = server.stderr_text();
            server.stop(Duration::from_secs(1));
            bail!("unexpected first line {line:?}; stderr: {text}");
        };
        server.addr = addr;
        Ok(server)
    }

    /// Starts an external server's command on a free loopback port and
    /// waits until the port accepts a connection; fills in the record's
    /// command (and, where it ended first, how).
    pub fn start_external(
        opts: &CompareOptions,
        ext: &ExternalServer,
        group: Option<&crate::probe::cgroup::ServerCgroup>,
        record: &mut ServerRecord,
    ) -> anyhow::Result<ServerProcess> {
        use external::{Ready, describe};
        for attempt in 1..=external::PORT_ATTEMPTS {
            let port = external::free_port().context("picking a free loopback port")?;
            let line = external::command_line(ext, port);
            record.command = Some(line.clone());
            let mut cmd = external::shell(&line);
            cmd.stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped());
            let (mut child, counters) =
                launch(opts, cmd, group).with_context(|| format!("starting `sh -c {line:?}`"))?;
            // Kept should it fail: the group that was stopped.
            record.pid = Some(child.id());
            let tail = StderrTail::collect(child.stderr.take());
            let server = ServerProcess {
                pid: child.id(),
                child,
                addr: (std::net::Ipv4Addr::LOCALHOST, port).into(),
                output: Output::Tail(tail.clone()),
                guard: opts.guard.clone(),
                counters,
            };
            let addr = server.addr;
            match external::wait_ready(addr, external::READY_LIMIT, || server.ended()) {
                Ready::Listening => return Ok(server),
                Ready::Exited(status) => {
                    use std::os::unix::process::ExitStatusExt;
                    record.leftover_processes_killed += server.stop(external::STOP_GRACE).strays;
                    // Anything it left outside its group, before the port is
                    // looked at.
                    if let Some(g) = group {
                        record.leftover_processes_killed += g.kill_all(Duration::from_secs(2));
                    }
                    tail.settle();
                    record.exit_code = status.code();
                    record.exit_signal = status.signal().map(external::signal_name);
                    if attempt < external::PORT_ATTEMPTS && external::port_taken(port) {
                        note!(
                            "loadgen compare: {}: another program took port {port} before it could listen; \
                             trying another port",
                            ext.row()
                        );
                        continue;
                    }
                    let hint = if status.success() {
                        " (a server that puts itself in the background must be told to stay in the foreground)"
                    } else {
                        ""
                    };
                    bail!(
                        "exited with {} before listening on {addr}{hint}; stderr: {}",
                        describe(status),
                        tail.text()
                    );
                }
                Ready::TimedOut => {
                    record.leftover_processes_killed += server.stop(external::STOP_GRACE).strays;
                    tail.settle();
                    bail!(
                        "never listened on {addr} within {} s; stderr: {}",
                        external::READY_LIMIT.as_secs(),
                        tail.text()
                    );
                }
            }
        }
        bail!(
            "other programs took each of the {} ports picked for it",
            external::PORT_ATTEMPTS
        )
    }

    fn stderr_text(&self) -> String {
        match &self.output {
            Output::Lines(lines) => lines.lock().map(|l| l.join(" | ")).unwrap_or_default(),
            Output::Tail(tail) => tail.text(),
        }
    }

    /// Whether the process has ended, without reaping it: until it is
    /// reaped its pid, and so its process group's id, is nobody else's.
    fn ended(&self) -> Option<ExitStatus> {
        use nix::sys::wait::{Id, WaitPidFlag, WaitStatus, waitid};
        use std::os::unix::process::ExitStatusExt;
        let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT;
        match waitid(Id::Pid(Pid::from_raw(self.pid as i32)), flags) {
            Ok(WaitStatus::Exited(_, code)) => Some(ExitStatus::from_raw(code << 8)),
            Ok(WaitStatus::Signaled(_, sig, core)) => Some(ExitStatus::from_raw(
                sig as i32 | if core { 0x80 } else { 0 },
            )),
            _ => None,
        }
    }

    /// SIGTERM to its process group, then wait at most `grace` (SIGKILL
    /// after that); then whatever else of its group still runs (a
    /// wrapper's children) gets what is left of the grace, and SIGKILL.
    pub fn stop(mut self, grace: Duration) -> Stopped {
        use nix::sys::signal::{Signal, killpg};
        let pgid = Pid::from_raw(self.pid as i32);
        let mut problem = None;
        if let Some(status) = self.ended() {
            problem = Some(format!(
                "{} ({status}) before the end of its scenarios",
                ServerRecord::DIED
            ));
        }
        // The whole group, even once its leader is gone: a wrapper that
        // does not `exec` passes nothing on, and what it started outlives it.
        let _ = killpg(pgid, Signal::SIGTERM);
        let deadline = Instant::now() + grace;
        while self.ended().is_none() {
            if Instant::now() >= deadline {
                problem.get_or_insert_with(|| {
                    format!("did not stop within {grace:?} of SIGTERM; killed")
                });
                let _ = killpg(pgid, Signal::SIGKILL);
                let _ = self.child.kill();
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let strays = end_group(pgid, deadline);
        let status = self.child.wait().ok();
        if let Some(guard) = &self.guard {
            guard.forget_group(self.pid);
        }
        let summary = match &self.output {
            Output::Lines(lines) => wait_for_summary(lines),
            Output::Tail(_) => None,
        };
        let failures = match &self.output {
            Output::Lines(lines) => lines.lock().map(|l| failure_lines(&l)).unwrap_or_default(),
            Output::Tail(_) => Vec::new(),
        };
        Stopped {
            exit_code: status.and_then(|s| s.code()),
            signal: status.and_then(|s| std::os::unix::process::ExitStatusExt::signal(&s)),
            summary,
            problem,
            strays,
            failures,
        }
    }
}

/// The lines of a style's stderr that say it ran out of something: a
/// failed accept (EMFILE, ENOMEM, ...), a thread or process it could not
/// start (EAGAIN); the evidence `reach` names a wall from. At most
/// [`FAILURE_LINES`], the first ones (each kind is logged once a burst).
pub fn failure_lines(lines: &[String]) -> Vec<String> {
    const MARKS: [&str; 3] = ["accept failed:", "cannot fork", "cannot start a connection"];
    lines
        .iter()
        .filter(|l| MARKS.iter().any(|m| l.contains(m)))
        .take(FAILURE_LINES)
        .cloned()
        .collect()
}

/// The most failure lines kept of one server.
const FAILURE_LINES: usize = 8;

/// Waits until process group `pgid` has no live process but its ended
/// leader, at most until `deadline`; kills what is left then. How many
/// it killed.
fn end_group(pgid: Pid, deadline: Instant) -> usize {
    loop {
        let left = group_members(pgid);
        if left == 0 {
            return 0;
        }
        if Instant::now() >= deadline {
            let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL);
            return left;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Live processes (zombies are not) in group `pgid` other than its leader.
fn group_members(pgid: Pid) -> usize {
    let Ok(all) = procfs::process::all_processes() else {
        return 0;
    };
    all.filter_map(|p| p.ok()?.stat().ok())
        .filter(|st| st.pgrp == pgid.as_raw() && st.pid != pgid.as_raw() && st.state != 'Z')
        .count()
}

/// The summary line of a style's stderr; the reader ends with the
/// process, so it gets a moment to collect the last line.
fn wait_for_summary(lines: &Mutex<Vec<String>>) -> Option<String> {
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        let found = lines
            .lock()
            .ok()
            .and_then(|l| l.iter().find(|l| l.starts_with("summary ")).cloned());
        if found.is_some() || Instant::now() >= deadline {
            return found;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
