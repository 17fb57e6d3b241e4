//! The comparison's scenarios, each a named function that drives one
//! running server and returns its runs, tagged. `loadgen compare` runs them
//! all for every style; `loadgen run --scenario NAME` runs one alone.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use crate::engine::{self, Control, RunOptions};
use crate::probe::Watch;
use crate::probe::sampler::Source;
use crate::results::spec::{Mode, RunSpec};
use crate::results::{RunResult, Tags};

/// How big a comparison is.
#[derive(Clone, Debug, PartialEq)]
pub struct Profile {
    pub name: &'static str,
    pub duration: Duration,
    pub warmup: Duration,
    /// `scale`: connection counts and payload sizes.
    pub scale_conns: Vec<usize>,
    pub scale_sizes: Vec<usize>,
    /// `idle`: connections held idle, and active ones at a light open-loop
    /// rate (messages/s per connection).
    pub idle: usize,
    pub idle_active: usize,
    pub idle_rate_per_conn: f64,
    /// `open`: fractions of the measured maximum.
    pub open_fractions: Vec<f64>,
    /// `churn`: connections cycling at once.
    pub churn_slots: usize,
    /// `fairness`: light connections and their rate (messages/s each), the
    /// heavy connection's message size, and the server's `--work-us`.
    pub fairness_light: usize,
    pub fairness_light_rate: f64,
    pub fairness_heavy_size: usize,
    pub fairness_work_us: u64,
    /// The scenarios `compare` runs for a style, in [`NAMES`] order.
    pub scenarios: Vec<&'static str>,
    /// CPUs of CFS bandwidth each server gets (`--server-cpu-quota`).
    pub server_cpu_quota: Option<f64>,
    /// Rounds of every style (`--repeat`).
    pub repeat: u32,
    /// Take the styles in turn at each point, a fresh server each
    /// ([`Profile::steps`]), instead of each style whole.
    pub by_point: bool,
}

impl Profile {
    pub fn named(name: &str) -> Option<Profile> {
        let quick = Profile {
            name: "quick",
            duration: Duration::from_millis(1500),
            warmup: Duration::from_millis(500),
            scale_conns: vec![1, 50, 1000, 5000],
            scale_sizes: vec![64, 4096],
            idle: 10_000,
            idle_active: 100,
            idle_rate_per_conn: 20.0,
            open_fractions: vec![0.5, 0.9],
            churn_slots: 20,
            fairness_light: 50,
            fairness_light_rate: 10.0,
            fairness_heavy_size: 16 * 1024,
            fairness_work_us: 500,
            scenarios: NAMES.to_vec(),
            server_cpu_quota: None,
            repeat: 1,
            by_point: false,
        };
        match name {
            "quick" => Some(quick),
            "smoke" => Some(Profile {
                name: "smoke",
                duration: Duration::from_millis(300),
                warmup: Duration::from_millis(100),
                scale_conns: vec![1, 20],
                scale_sizes: vec![64],
                idle: 200,
                idle_active: 10,
                open_fractions: vec![0.5],
                churn_slots: 4,
                fairness_light: 5,
                fairness_work_us: 200,
                ..quick
            }),
            "full" => Some(Profile {
                name: "full",
                duration: Duration::from_secs(5),
                warmup: Duration::from_secs(1),
                scale_conns: vec![1, 10, 100, 1000, 10_000],
                churn_slots: 50,
                ..quick
            }),
            "perf" => Some(Profile {
                name: "perf",
                duration: crate::report::perf::DURATION,
                warmup: crate::report::perf::WARMUP,
                scale_conns: crate::report::perf::CONNS.to_vec(),
                scale_sizes: vec![crate::report::perf::SIZE],
                idle: crate::report::perf::IDLE,
                idle_active: crate::report::perf::IDLE_ACTIVE,
                idle_rate_per_conn: crate::report::perf::IDLE_RATE_PER_CONN,
                scenarios: vec!["idle", "scale"],
                server_cpu_quota: Some(crate::report::perf::SERVER_CPU_QUOTA),
                repeat: crate::report::perf::REPEAT,
                by_point: true,
                ..quick
            }),
            _ => None,
        }
    }

    /// The profile names `--profile` accepts.
    pub const NAMES: &'static [&'static str] = &["smoke", "quick", "full", "perf"];

    /// What this profile runs for one style (or style variant): the perf
    /// profile gives `polling` variants a smaller idle-only plan.
    pub fn for_style(&self, style: &str) -> Profile {
        if self.name == "perf" {
            crate::report::perf::adjust_profile(self, style)
        } else {
            self.clone()
        }
    }

    /// The styles `compare` runs when `--styles` is not given.
    pub fn default_styles(&self) -> Vec<String> {
        if self.name == "perf" {
            crate::report::perf::STYLES
                .iter()
                .map(|s| s.to_string())
                .collect()
        } else {
            servers::Style::ALL
                .iter()
                .map(|st| st.name().to_string())
                .collect()
        }
    }

    pub fn runs(&self, scenario: &str) -> bool {
        self.scenarios.contains(&scenario)
    }

    /// Number of load runs one style gets (for the time estimate), the
    /// fairness scenario's heavy connection included.
    pub fn runs_per_style(&self) -> usize {
        let mut n = 0;
        if self.runs("scale") {
            n += self.scale_conns.len() * self.scale_sizes.len();
        }
        if self.runs("idle") {
            n += 1;
        }
        if self.runs("open") {
            n += self.open_fractions.len();
        }
        if self.runs("churn") {
            n += 1;
        }
        if self.runs("fairness") {
            n += 2;
        }
        n
    }

    /// A rough wall-clock estimate for one style, in seconds.
    pub fn seconds_per_style(&self) -> f64 {
        let per_run = (self.warmup + self.duration).as_secs_f64() + 0.3;
        let idle = if self.runs("idle") { self.idle } else { 0 };
        let scale: usize = if self.runs("scale") {
            self.scale_conns.iter().sum::<usize>() * self.scale_sizes.len()
        } else {
            0
        };
        let connects = (idle + scale) as f64 / 20_000.0;
        self.runs_per_style() as f64 * per_run + connects + 1.0
    }
}

/// The server a scenario drives.
#[derive(Clone, Debug)]
pub struct Target {
    pub style: String,
    pub addr: SocketAddr,
    /// Sampled from /proc when given...
    pub server_pid: Option<u32>,
    /// ...or, in a container, through the Docker API.
    pub container: Option<(crate::probe::docker::Docker, String)>,
    /// The server's own cgroup, when `compare` made one, and the share of a
    /// CPU the server used idle, just started.
    pub cgroup: Option<Arc<crate::probe::cgroup::ServerCgroup>>,
    pub idle_cpu: f64,
}

impl Target {
    /// How a run samples this server: its process (and cgroup), or its
    /// container.
    pub fn watch(&self) -> Option<Watch> {
        match (self.server_pid, &self.container) {
            (Some(pid), _) => Some(Watch {
                cgroup: self.cgroup.clone(),
                ..Watch::process(pid)
            }),
            (None, Some((docker, name))) => Some(Watch {
                source: Source::Container(docker.clone(), name.clone()),
                cgroup: None,
            }),
            (None, None) => None,
        }
    }
}

/// What every scenario gets.
pub struct Env<'a> {
    pub profile: &'a Profile,
    pub target: &'a Target,
    /// Set on Ctrl-C: runs end early.
    pub stop: Arc<std::sync::atomic::AtomicBool>,
    /// Told about every run as it ends.
    pub on_run: &'a mut dyn FnMut(&RunResult),
    /// The server's settling before the next run ([`Env::settle`]), when
    /// it has happened and that run has not taken it yet.
    settled: Option<(Duration, bool)>,
}

impl<'a> Env<'a> {
    pub fn new(
        profile: &'a Profile,
        target: &'a Target,
        stop: Arc<std::sync::atomic::AtomicBool>,
        on_run: &'a mut dyn FnMut(&RunResult),
    ) -> Env<'a> {
        Env {
            profile,
            target,
            stop,
            on_run,
            settled: None,
        }
    }

    /// Lets the server finish what the last run left it doing (for a
    /// server in a cgroup; bounded). The next run records the wait. A
    /// scenario that starts a load of its own beside the sampled run
    /// (fairness's heavy connection) settles before starting it, or the
    /// sampled run would wait for that load to end.
    pub fn settle(&mut self) {
        let Some(g) = &self.target.cgroup else {
            return;
        };
        let (waited, ok) = g.settle(self.target.idle_cpu, SETTLE_LIMIT);
        if !ok {
            eprintln!(
                "loadgen: {}: the server was still busy {:.1} s after the last run; measuring anyway",
                self.target.style,
                waited.as_secs_f64()
            );
        }
        self.settled = Some((waited, ok));
    }

    fn base_spec(&self) -> RunSpec {
        RunSpec {
            addr: self.target.addr,
            duration: self.profile.duration,
            warmup: self.profile.warmup,
            timeout: Duration::from_secs(5),
            ..RunSpec::default()
        }
    }

    fn run(
        &mut self,
        scenario: &str,
        point: String,
        spec: &RunSpec,
        sample: bool,
    ) -> Option<RunResult> {
        let control = Arc::new(Control {
            stop: Arc::clone(&self.stop),
            ..Control::default()
        });
        // Let the server finish what the last run left it doing first
        // (unless the scenario did so already).
        if sample && self.settled.is_none() {
            self.settle();
        }
        let settled = self.settled.take();
        let opts = RunOptions {
            server: if sample { self.target.watch() } else { None },
            label: Some(format!("{}/{scenario}/{point}", self.target.style)),
            on_tick: None,
        };
        match engine::run(spec, control, opts) {
            Ok(mut r) => {
                if let (Some((waited, ok)), Some(cg)) =
                    (settled, r.server.as_mut().and_then(|s| s.cgroup.as_mut()))
                {
                    cg.settle_s = Some(waited.as_secs_f64());
                    cg.settled = Some(ok);
                }
                r.tags = Some(Tags {
                    style: self.target.style.clone(),
                    scenario: scenario.into(),
                    point,
                    repeat: 0,
                });
                (self.on_run)(&r);
                Some(r)
            }
            Err(e) => {
                eprintln!("loadgen: {} {scenario} {point}: {e}", self.target.style);
                None
            }
        }
    }

    fn interrupted(&self) -> bool {
        self.stop.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// The longest a run waits for the server to settle after the last one.
const SETTLE_LIMIT: Duration = Duration::from_secs(30);

/// The names `--scenario` accepts, in the order compare runs them.
pub const NAMES: &[&str] = &["idle", "scale", "open", "churn", "fairness"];

/// `scale`: closed-loop throughput and latency against connection counts
/// and payload sizes.
pub fn scale(env: &mut Env) -> Vec<RunResult> {
    let mut out = Vec::new();
    for &size in &env.profile.scale_sizes.clone() {
        for &conns in &env.profile.scale_conns.clone() {
            if env.interrupted() {
                return out;
            }
            out.extend(scale_point(env, conns, size));
        }
    }
    out
}

/// One point of `scale`.
pub fn scale_point(env: &mut Env, conns: usize, size: usize) -> Option<RunResult> {
    let spec = RunSpec {
        conns,
        size,
        source_ips: source_ips(env.target.addr, conns),
        ..env.base_spec()
    };
    env.run("scale", format!("conns={conns} size={size}"), &spec, true)
}

/// One server's worth of a comparison that takes the styles in turn point
/// by point (the perf profile): the styles' figures at a point are then
/// measured seconds apart, not minutes, and the machine's drift over a
/// run (measured here: a style's cost per message moving 20% between
/// rounds a minute apart) hits them alike. Each step gets a fresh server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    Idle,
    Scale { conns: usize, size: usize },
}

impl Step {
    /// The server record's phase.
    pub fn name(&self) -> String {
        match self {
            Step::Idle => "idle".into(),
            Step::Scale { conns, size } => format!("scale conns={conns} size={size}"),
        }
    }

    pub fn run(&self, env: &mut Env) -> Vec<RunResult> {
        match *self {
            Step::Idle => idle(env),
            Step::Scale { conns, size } => scale_point(env, conns, size).into_iter().collect(),
        }
    }
}

impl Profile {
    /// The steps of a point-by-point comparison, in order, or None where
    /// the profile takes each style whole (it has scenarios that need a
    /// style's other results, like `open`, or one server throughout).
    pub fn steps(&self) -> Option<Vec<Step>> {
        if !self.by_point
            || self
                .scenarios
                .iter()
                .any(|s| !["idle", "scale"].contains(s))
        {
            return None;
        }
        let mut steps = Vec::new();
        if self.runs("idle") {
            steps.push(Step::Idle);
        }
        if self.runs("scale") {
            for &size in &self.scale_sizes {
                steps.extend(
                    self.scale_conns
                        .iter()
                        .map(|&conns| Step::Scale { conns, size }),
                );
            }
        }
        Some(steps)
    }
}

/// `idle`: many idle connections plus a few active ones at a light rate:
/// memory per connection, the active ones' latency, and what the server
/// spends on connections that do nothing.
pub fn idle(env: &mut Env) -> Vec<RunResult> {
    if env.interrupted() {
        return Vec::new();
    }
    let p = env.profile;
    let spec = RunSpec {
        conns: p.idle_active,
        idle: p.idle,
        mode: Mode::Open {
            rate: p.idle_active as f64 * p.idle_rate_per_conn,
        },
        source_ips: source_ips(env.target.addr, p.idle + p.idle_active),
        ..env.base_spec()
    };
    env.run(
        "idle",
        format!("idle={} active={}", p.idle, p.idle_active),
        &spec,
        true,
    )
    .into_iter()
    .collect()
}

/// `open`: constant rate at fractions of the style's maximum (`max`:
/// msg/s and the connection count that reached it, from `scale`; probed
/// here when not given). Corrected and raw latency side by side.
pub fn open(env: &mut Env, max: Option<(f64, usize)>) -> Vec<RunResult> {
    if env.interrupted() {
        return Vec::new();
    }
    let (max_rate, conns) = match max {
        Some(m) => m,
        None => {
            let probe = RunSpec {
                conns: 50,
                ..env.base_spec()
            };
            match env.run("open", "probe conns=50".into(), &probe, false) {
                Some(r) if r.messages > 0 => (r.throughput_msgs_per_s, 50),
                _ => return Vec::new(),
            }
        }
    };
    let conns = conns.clamp(1, 1000);
    let mut out = Vec::new();
    for &fraction in &env.profile.open_fractions.clone() {
        if env.interrupted() {
            break;
        }
        let rate = (max_rate * fraction).max(1.0);
        let spec = RunSpec {
            conns,
            // Room for the rate even where the maximum came with more
            // connections than the open run uses.
            pipeline: 4,
            mode: Mode::Open { rate },
            ..env.base_spec()
        };
        out.extend(env.run(
            "open",
            format!("{:.0}% of max = {rate:.0}/s", fraction * 100.0),
            &spec,
            true,
        ));
    }
    out
}

/// `churn`: connect, echo one message, close, as fast as possible.
pub fn churn(env: &mut Env) -> Vec<RunResult> {
    if env.interrupted() {
        return Vec::new();
    }
    let slots = env.profile.churn_slots;
    let spec = RunSpec {
        conns: slots,
        mode: Mode::Churn,
        // Closed connections sit in TIME_WAIT on our side: spread them over
        // source addresses so a long run does not run out of ports.
        source_ips: source_ips(env.target.addr, usize::MAX),
        ..env.base_spec()
    };
    env.run("churn", format!("slots={slots}"), &spec, true)
        .into_iter()
        .collect()
}

/// `fairness`: one connection sends large messages back to back while light
/// connections ping at a low rate; the server burns `--work-us` of CPU per
/// chunk it reads (it must have been started with it). The light
/// connections' latency shows whether the heavy one can starve them.
pub fn fairness(env: &mut Env) -> Vec<RunResult> {
    if env.interrupted() {
        return Vec::new();
    }
    let p = env.profile.clone();
    let heavy = RunSpec {
        conns: 1,
        size: p.fairness_heavy_size,
        pipeline: 4,
        // The heavy connection may be slow by design; it is not what is judged.
        timeout: Duration::from_secs(30),
        ..env.base_spec()
    };
    let light = RunSpec {
        conns: p.fairness_light,
        mode: Mode::Open {
            rate: p.fairness_light as f64 * p.fairness_light_rate,
        },
        timeout: Duration::from_secs(30),
        ..env.base_spec()
    };
    // Before the heavy connection starts: the light run's own settling
    // would wait for it to end.
    env.settle();
    let stop = Arc::clone(&env.stop);
    let heavy_run = std::thread::Builder::new()
        .name("fairness-heavy".into())
        .spawn(move || {
            let control = Arc::new(Control {
                stop,
                ..Control::default()
            });
            engine::run(&heavy, control, RunOptions::default())
        });
    let light_result = env.run(
        "fairness",
        format!("light x{}", p.fairness_light),
        &light,
        true,
    );
    let mut out: Vec<RunResult> = light_result.into_iter().collect();
    if let Ok(handle) = heavy_run
        && let Ok(Ok(mut r)) = handle.join()
    {
        r.label = Some(format!("{}/fairness/heavy", env.target.style));
        r.tags = Some(Tags {
            style: env.target.style.clone(),
            scenario: "fairness".into(),
            point: "heavy".into(),
            repeat: 0,
        });
        (env.on_run)(&r);
        out.push(r);
    }
    out
}

/// Source addresses for `needed` connections to a loopback IPv4 target:
/// 127.0.0.1-127.0.0.8 when one address's ~28K ephemeral ports could run
/// short (churn, 10,000 connections or more: a few such runs in a row leave
/// tens of thousands of ports in TIME_WAIT); none otherwise.
pub fn source_ips(target: SocketAddr, needed: usize) -> Vec<IpAddr> {
    match target.ip() {
        IpAddr::V4(ip) if ip.is_loopback() && needed >= 10_000 => (1..=8)
            .map(|i| IpAddr::V4(Ipv4Addr::new(127, 0, 0, i)))
            .collect(),
        _ => Vec::new(),
    }
}

/// The best closed-loop throughput among `runs` of `scale` with `size`, and
/// the connection count that reached it.
pub fn max_throughput(runs: &[RunResult], size: usize) -> Option<(f64, usize)> {
    runs.iter()
        .filter(|r| {
            r.tags.as_ref().is_some_and(|t| t.scenario == "scale")
                && r.spec.size == size
                && r.messages > 0
        })
        .map(|r| (r.throughput_msgs_per_s, r.spec.conns))
        .max_by(|a, b| a.0.total_cmp(&b.0))
}
