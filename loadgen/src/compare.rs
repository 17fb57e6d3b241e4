//! `loadgen compare`: every style through the same scenarios on this
//! machine, each server in its own process pinned to its own CPUs, and a
//! report of where each style wins and where it breaks.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, bail};
use nix::sched::{CpuSet, sched_setaffinity};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

use crate::fingerprint::Fingerprint;
use crate::results::{RunResult, SCHEMA_VERSION};
use crate::scenario::{self, Env, Profile, Target};

/// How a style's server process fared.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ServerRecord {
    pub style: String,
    /// "main" (every scenario but fairness) or "fairness" (started with --work-us).
    pub phase: String,
    pub started: bool,
    pub pid: Option<u32>,
    /// Exited 0 on SIGTERM and printed its summary line.
    pub stopped_cleanly: bool,
    pub exit_code: Option<i32>,
    pub summary: Option<String>,
    /// What went wrong, in words.
    pub problem: Option<String>,
}

/// Everything one comparison measured: `results.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CompareResults {
    pub schema_version: u32,
    pub profile: String,
    pub started_unix_s: u64,
    pub elapsed_s: f64,
    pub environment: Fingerprint,
    pub server_cpus: Vec<usize>,
    pub client_cpus: Vec<usize>,
    /// What ran the servers (a `servers` binary, or `loadgen serve`).
    pub server_command: String,
    pub styles: Vec<String>,
    pub servers: Vec<ServerRecord>,
    pub runs: Vec<RunResult>,
}

/// `loadgen compare`'s options.
#[derive(Clone, Debug)]
pub struct CompareOptions {
    pub styles: Vec<String>,
    pub profile: Profile,
    pub out: PathBuf,
    /// `None`: this executable's `serve` subcommand.
    pub server_bin: Option<PathBuf>,
    pub server_cpus: Vec<usize>,
    pub client_cpus: Vec<usize>,
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

/// Runs the comparison; writes results.json, results.csv, report.md and the
/// charts into `opts.out`. Returns the results.
pub fn run(opts: &CompareOptions, stop: Arc<AtomicBool>) -> anyhow::Result<CompareResults> {
    std::fs::create_dir_all(&opts.out)
        .with_context(|| format!("creating {} (--out)", opts.out.display()))?;
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
    let server_command = match &opts.server_bin {
        Some(p) => p.display().to_string(),
        None => format!("{} serve", std::env::current_exe()?.display()),
    };
    let estimate = opts.profile.seconds_per_style() * opts.styles.len() as f64 * 1.1;
    eprintln!(
        "loadgen compare: profile {}, styles {}, servers on CPUs {:?}, loadgen on CPUs {:?}; expected about {:.0} s",
        opts.profile.name,
        opts.styles.join(","),
        opts.server_cpus,
        opts.client_cpus,
        estimate
    );
    if let Some([one, _, _]) = crate::fingerprint::load_average()
        && one > 1.0
    {
        eprintln!(
            "loadgen compare: warning: the machine is busy before we start (load average {one:.2}); \
             other processes will make the numbers noisy"
        );
    }
    let total_runs = opts.profile.runs_per_style() * opts.styles.len() + opts.styles.len();
    let progress = Progress::new(total_runs);
    let mut runs = Vec::new();
    let mut servers = Vec::new();
    for style in &opts.styles {
        if stop.load(std::sync::atomic::Ordering::Relaxed) {
            break;
        }
        compare_style(opts, style, &stop, &progress, &mut runs, &mut servers);
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
        styles: opts.styles.clone(),
        servers,
        runs,
    };
    write_outputs(&results, &opts.out)?;
    Ok(results)
}

/// Writes results.json, results.csv, report.md and charts/ for `results`.
pub fn write_outputs(results: &CompareResults, dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let json = serde_json::to_string_pretty(results).context("serialising results")?;
    std::fs::write(dir.join("results.json"), json + "\n").context("writing results.json")?;
    let mut csv = format!("style,scenario,point,{}\n", crate::report::csv_header());
    for r in &results.runs {
        let t = r.tags.clone().unwrap_or_else(|| crate::results::Tags {
            style: String::new(),
            scenario: String::new(),
            point: String::new(),
        });
        csv.push_str(&format!(
            "{},{},{},{}\n",
            t.style,
            t.scenario,
            t.point.replace(',', ";"),
            crate::report::csv_row(r)
        ));
    }
    std::fs::write(dir.join("results.csv"), csv).context("writing results.csv")?;
    let charts = crate::charts::draw_all(results, &dir.join("charts")).context("drawing charts")?;
    let report = crate::compare_report::markdown(results, &charts);
    std::fs::write(dir.join("report.md"), report).context("writing report.md")?;
    Ok(())
}

fn compare_style(
    opts: &CompareOptions,
    style: &str,
    stop: &Arc<AtomicBool>,
    progress: &Progress,
    runs: &mut Vec<RunResult>,
    servers: &mut Vec<ServerRecord>,
) {
    let p = &opts.profile;
    // Every scenario but fairness on one server, idle first: its baseline
    // RSS is then that of a fresh server.
    let (record, main_runs) = with_server(opts, style, "main", &[], |target| {
        let mut on_run = |r: &RunResult| progress.run_done(r);
        let mut env = Env {
            profile: p,
            target,
            stop: Arc::clone(stop),
            on_run: &mut on_run,
        };
        let mut out = scenario::idle(&mut env);
        out.extend(scenario::scale(&mut env));
        let max = scenario::max_throughput(&out, 64).or_else(|| {
            p.scale_sizes
                .first()
                .and_then(|&s| scenario::max_throughput(&out, s))
        });
        out.extend(scenario::open(&mut env, max));
        out.extend(scenario::churn(&mut env));
        out
    });
    servers.push(record);
    runs.extend(main_runs);
    if stop.load(std::sync::atomic::Ordering::Relaxed) {
        return;
    }
    let work = p.fairness_work_us.to_string();
    let (record, fair_runs) =
        with_server(opts, style, "fairness", &["--work-us", &work], |target| {
            let mut on_run = |r: &RunResult| progress.run_done(r);
            let mut env = Env {
                profile: p,
                target,
                stop: Arc::clone(stop),
                on_run: &mut on_run,
            };
            scenario::fairness(&mut env)
        });
    servers.push(record);
    runs.extend(fair_runs);
}

/// Starts a server for `style`, runs `body` against it, stops it and checks
/// how it stopped. A server that does not start yields no runs and a record
/// that says why.
fn with_server(
    opts: &CompareOptions,
    style: &str,
    phase: &str,
    extra: &[&str],
    body: impl FnOnce(&Target) -> Vec<RunResult>,
) -> (ServerRecord, Vec<RunResult>) {
    let mut record = ServerRecord {
        style: style.into(),
        phase: phase.into(),
        ..ServerRecord::default()
    };
    let server = match ServerProcess::spawn(opts, style, extra) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("loadgen compare: {style}: {e:#}");
            record.problem = Some(format!("did not start: {e:#}"));
            return (record, Vec::new());
        }
    };
    record.started = true;
    record.pid = Some(server.pid);
    let target = Target {
        style: style.into(),
        addr: server.addr,
        server_pid: Some(server.pid),
    };
    let runs = body(&target);
    let stopped = server.stop();
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
    fn spawn(opts: &CompareOptions, style: &str, extra: &[&str]) -> anyhow::Result<ServerProcess> {
        let mut cmd = match &opts.server_bin {
            Some(bin) => Command::new(bin),
            None => {
                let mut c = Command::new(std::env::current_exe().context("locating loadgen")?);
                c.arg("serve");
                c
            }
        };
        cmd.arg(style).args(["--addr", "127.0.0.1:0"]).args(extra);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let set = cpuset(&opts.server_cpus)?;
        // SAFETY: between fork and exec only sched_setaffinity runs, which
        // is async-signal-safe and allocates nothing.
        unsafe {
            use std::os::unix::process::CommandExt;
            cmd.pre_exec(move || {
                sched_setaffinity(Pid::from_raw(0), &set).map_err(std::io::Error::from)
            });
        }
        let mut child = cmd.spawn().context("starting the server (--server-bin)")?;
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

    /// SIGTERM, then wait at most 5 s (SIGKILL after that).
    fn stop(mut self) -> Stopped {
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
        let deadline = Instant::now() + Duration::from_secs(5);
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(status)) => break Some(status),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                _ => {
                    problem
                        .get_or_insert_with(|| "did not stop within 5 s of SIGTERM; killed".into());
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
            crate::report::fmt_us(r.latency_us.p99),
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
