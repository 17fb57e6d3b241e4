//! What every scenario gets: the server it drives ([`Target`]) and the
//! environment that runs one load against it, settles the server between
//! runs and tags the results ([`Env`]).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use crate::compare::model::Scenario;
use crate::compare::profile::Profile;
use crate::engine::{self, Control, RunOptions};
use crate::probe::Watch;
use crate::probe::sampler::Source;
use crate::results::spec::RunSpec;
use crate::results::{RunResult, Tags};

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
    /// The kernel's counters on the server's tree, open since it started
    /// (servers `compare` starts).
    pub counters: Option<Arc<crate::probe::counters::ServerCounters>>,
    pub idle_cpu: f64,
    /// The CPUs whose foreign load each run measures over its window
    /// ([`crate::probe::foreign`]); None: not measured (not our server, or
    /// not in a group of ours).
    pub foreign_cpus: Option<Vec<usize>>,
}

impl Target {
    /// How a run samples this server: its process (and cgroup), or its
    /// container.
    pub fn watch(&self) -> Option<Watch> {
        match (self.server_pid, &self.container) {
            (Some(pid), _) => Some(Watch {
                cgroup: self.cgroup.clone(),
                counters: self.counters.clone(),
                ..Watch::process(pid)
            }),
            (None, Some((docker, name))) => Some(Watch {
                source: Source::Container(docker.clone(), name.clone()),
                cgroup: None,
                counters: None,
                kernel_breakdown: false,
                limits: false,
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
    pub on_run: &'a mut (dyn FnMut(&RunResult) + Send),
    /// Where this run is one of a side-by-side pair
    /// ([`crate::compare::pair`]): each run waits there for its partner's
    /// before it starts, so the two are measured over the same seconds.
    pub rendezvous: Option<Arc<crate::compare::rendezvous::Rendezvous>>,
    /// Set on the reference's side of a pair: the style whose partner its
    /// runs are ([`Tags::partner_of`]).
    pub partner_of: Option<String>,
    /// The server's settling before the next run ([`Env::settle`]), when
    /// it has happened and that run has not taken it yet.
    settled: Option<(Duration, bool)>,
}

impl<'a> Env<'a> {
    pub fn new(
        profile: &'a Profile,
        target: &'a Target,
        stop: Arc<std::sync::atomic::AtomicBool>,
        on_run: &'a mut (dyn FnMut(&RunResult) + Send),
    ) -> Env<'a> {
        Env {
            profile,
            target,
            stop,
            on_run,
            rendezvous: None,
            partner_of: None,
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
            note!(
                "loadgen: {}: the server was still busy {:.1} s after the last run; measuring anyway",
                self.target.style,
                waited.as_secs_f64()
            );
        }
        self.settled = Some((waited, ok));
    }

    pub fn base_spec(&self) -> RunSpec {
        RunSpec {
            addr: self.target.addr,
            duration: self.profile.duration,
            warmup: self.profile.warmup,
            timeout: Duration::from_secs(5),
            ..RunSpec::default()
        }
    }

    pub fn run(
        &mut self,
        scenario: Scenario,
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
        let mut label = format!("{}/{}/{point}", self.target.style, scenario.name());
        if let Some(style) = &self.partner_of {
            label.push_str(&format!(" beside {style}"));
        }
        // In step with the other replicas, if this is one (`--replicas`).
        crate::compare::replicas::before_run(&label);
        // And with the partner's run, if this is one of a pair. A reference
        // run that would not be measured beside its partner is nobody's
        // denominator: it is not run (the style's ratio then falls back to
        // epoll's own run of the round).
        if let Some(rv) = &self.rendezvous
            && !rv.meet(&label, &self.stop)
            && self.partner_of.is_some()
        {
            return None;
        }
        // Idle's point is what a connection costs the kernel: say what.
        let watch = self.target.watch().map(|w| Watch {
            kernel_breakdown: scenario == Scenario::Idle && w.pid().is_some(),
            // Reach names its walls from them.
            limits: scenario == Scenario::Reach && w.pid().is_some(),
            ..w
        });
        let opts = RunOptions {
            server: if sample { watch } else { None },
            label: Some(label),
            on_tick: None,
            // Every measured window, sampled or not (capacity's steps): two
            // reads of /proc/stat and the groups at its edges.
            foreign_cpus: self.target.foreign_cpus.clone(),
            // Reach's steps measure the server once it holds them all.
            gate: (scenario == Scenario::Reach)
                .then(|| crate::compare::scenarios::reach_gate::accept_gate(self.target.addr)),
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
                    scenario: scenario.name().into(),
                    point,
                    repeat: 0,
                    partner_of: self.partner_of.clone().unwrap_or_default(),
                });
                (self.on_run)(&r);
                Some(r)
            }
            Err(e) => {
                note!(
                    "loadgen: {} {} {point}: {e}",
                    self.target.style,
                    scenario.name()
                );
                None
            }
        }
    }

    pub fn interrupted(&self) -> bool {
        self.stop.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// The longest a run waits for the server to settle after the last one.
const SETTLE_LIMIT: Duration = Duration::from_secs(30);

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
