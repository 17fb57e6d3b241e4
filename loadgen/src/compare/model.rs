//! The comparison's data: what `compare` measured and how
//! (`results.json`), read by [`crate::report`]. Types only.

use serde::{Deserialize, Serialize};

use crate::compare::capacity::CapacitySearch;
use crate::results::RunResult;
use crate::results::fingerprint::Fingerprint;

/// How a style's server process fared.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ServerRecord {
    pub style: String,
    /// "main" (every scenario but fairness), "fairness" (started with
    /// --work-us), or in a point-by-point comparison the step ("idle",
    /// "scale conns=50 size=64").
    pub phase: String,
    pub started: bool,
    pub pid: Option<u32>,
    /// Exited 0 on SIGTERM and printed its summary line.
    pub stopped_cleanly: bool,
    /// Who started and stopped it: "loadgen" (a process), "docker" (a
    /// container, through the Docker API) or "none" (already running).
    #[serde(default)]
    pub managed_by: String,
    pub exit_code: Option<i32>,
    /// The server's flags beyond the style and address (a style variant's,
    /// fairness's --work-us).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    pub summary: Option<String>,
    /// What went wrong, in words.
    pub problem: Option<String>,
    /// The cgroup it ran in (removed after it stopped), and its CPU quota.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroup: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_quota: Option<f64>,
    /// Processes still in that cgroup after the server stopped, killed
    /// before the cgroup was removed (a wrapper's children, say).
    #[serde(default, skip_serializing_if = "crate::results::is_default")]
    pub leftover_processes_killed: usize,
    /// Which of the `--repeat` rounds (0-based).
    #[serde(default, skip_serializing_if = "crate::results::is_default")]
    pub repeat: u32,
    /// The signal that ended it, by name ("SIGTERM"), where one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_signal: Option<String>,
    /// An external server's command as run (`sh -c`, its port filled in).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// Its stderr lines that say it ran out of something (an accept
    /// failed with EMFILE, a thread or process it could not start): what
    /// `reach` names a server's wall from.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failures: Vec<String>,
}

impl ServerRecord {
    /// The start of `problem` for a server that died during its runs.
    pub const DIED: &'static str = "had already exited";

    /// Whether the server died before compare stopped it.
    pub fn died(&self) -> bool {
        self.problem
            .as_deref()
            .is_some_and(|p| p.starts_with(Self::DIED))
    }
}

/// How the servers' cgroups were set up for a comparison.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CgroupSetup {
    /// Each server ran in a cgroup of its own that loadgen made.
    pub used: bool,
    /// Who made the servers' cgroups: "loadgen", or "docker" (containers:
    /// the quota is read back from the container).
    #[serde(default)]
    pub made_by: String,
    /// "v1" or "v2" when used.
    pub version: Option<String>,
    /// CPUs of CFS bandwidth each server had (None: no quota).
    pub cpu_quota: Option<f64>,
    /// The CFS period of that quota, µs.
    pub period_us: u64,
    /// Whether each server's group was charged its sockets (v1: switched
    /// on by loadgen; v2: always); None when not known (containers, no
    /// cgroups, results from before it was set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub socket_accounting: Option<bool>,
    /// Why cgroups were not used, or leftovers removed, in words.
    pub note: Option<String>,
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
    /// What ran the servers (a `servers` binary, `loadgen serve`, or
    /// "already running" for targets).
    pub server_command: String,
    /// How loadgen reached the servers: "loopback", or the container
    /// network mode given to it (bridge, host).
    #[serde(default)]
    pub network: String,
    pub styles: Vec<String>,
    /// Rounds of every style (`--repeat`), interleaved: all styles, then
    /// all again.
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub repeat: u32,
    /// The servers' cgroups (absent in results from before them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroup: Option<CgroupSetup>,
    pub servers: Vec<ServerRecord>,
    pub runs: Vec<RunResult>,
    /// The servers given with `--external`, each a row of its own (its
    /// [`ExternalServer::row`] name in `styles` and the runs' tags).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub externals: Vec<ExternalServer>,
    /// What each `capacity` search found, its steps judged against the
    /// objective (the steps' runs are in `runs`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub capacity: Vec<CapacitySearch>,
    /// The machine's load average (1, 5, 15 minutes) when the last run
    /// ended, beside the one before the first
    /// ([`Fingerprint::load_average`]): the run's own servers and loadgen
    /// count in it, other tenants too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_after: Option<[f64; 3]>,
    /// The scenarios and windows this comparison ran with (the profile's,
    /// or `--scenarios`, `--duration` and `--warmup`'s); None in results
    /// written before they were recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<Scope>,
    /// The sessions that ran the comparison where it was resumed
    /// (`compare --resume`): the first, then each resume, with its start
    /// and how many units it ran; empty for a comparison run in one go.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sessions: Vec<SessionSummary>,
    /// Set where these results were rebuilt from the journal of a
    /// comparison that did not finish (`loadgen report DIR`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interrupted: Option<Interrupted>,
}

/// One session of a resumed comparison ([`crate::compare::journal`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SessionSummary {
    pub started_unix_s: u64,
    /// False for the first session, true for each `--resume`.
    pub resumed: bool,
    /// Units (a style at a step of a round) it ran and recorded.
    pub units: usize,
    /// Seconds it ran (to its last recorded unit, where it was killed).
    #[serde(default)]
    pub elapsed_s: f64,
}

/// How much of a comparison that did not finish its journal holds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Interrupted {
    pub planned_units: usize,
    pub recorded_units: usize,
}

/// What a comparison ran: its scenarios and measured windows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Scope {
    pub scenarios: Vec<String>,
    pub duration_s: f64,
    pub warmup_s: f64,
    pub capacity_step_s: f64,
    pub capacity_warmup_s: f64,
    /// `reach`'s `--reach-max` and the active p99 a step must stay within,
    /// ms, where it ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reach_max: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reach_p99_ms: Option<f64>,
}

/// A server that is not one of this project's styles, given as a command
/// (`--external NAME='COMMAND ... {port}'`): compare starts, samples and
/// stops it like a style's server ([`crate::compare::external`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExternalServer {
    /// As given, e.g. "socat".
    pub name: String,
    /// As given, `{port}` unfilled.
    pub command: String,
}

impl ExternalServer {
    /// Its row in results and in every table of the report: the name
    /// marked, "socat (external)", so it is never read as a style.
    pub fn row(&self) -> String {
        format!("{} (external)", self.name)
    }
}

impl CompareResults {
    /// The external server whose row `style` is, if it is one.
    pub fn external(&self, style: &str) -> Option<&ExternalServer> {
        self.externals.iter().find(|e| e.row() == style)
    }
}

fn one() -> u32 {
    1
}

fn is_one(v: &u32) -> bool {
    *v == 1
}

/// The comparison's scenarios, in the order `compare` runs them; the one
/// list of them. `--scenario` takes their names, and each has a module in
/// `compare::scenarios`, a section in `report::compare` and, where it needs
/// a server of its own, that server's flags in `compare::profile`: the
/// compiler checks all three through exhaustive matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, clap::ValueEnum)]
pub enum Scenario {
    Idle,
    Scale,
    Open,
    Capacity,
    Churn,
    Fairness,
    /// Idle connections in growing steps until a wall: run on request only
    /// ([`Scenario::on_request`]).
    Reach,
}

impl Scenario {
    /// Every scenario, in order (derived from the enum by clap).
    pub fn all() -> &'static [Scenario] {
        <Scenario as clap::ValueEnum>::value_variants()
    }

    /// The name in `--scenario`, in results' tags and in the report.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Idle => "idle",
            Scenario::Scale => "scale",
            Scenario::Open => "open",
            Scenario::Capacity => "capacity",
            Scenario::Churn => "churn",
            Scenario::Fairness => "fairness",
            Scenario::Reach => "reach",
        }
    }

    /// Whether the scenario runs only when named (`compare --scenarios`,
    /// `run --scenario`), never as part of a profile: `reach` opens tens of
    /// thousands of connections per style and would take the default
    /// comparison past its time budget.
    pub fn on_request(self) -> bool {
        match self {
            Scenario::Reach => true,
            Scenario::Idle
            | Scenario::Scale
            | Scenario::Open
            | Scenario::Capacity
            | Scenario::Churn
            | Scenario::Fairness => false,
        }
    }

    /// Whether the scenario's own server runs on every CPU compare uses
    /// (the servers' and loadgen's) rather than on the servers' alone, so
    /// that each style takes the defaults it would take alone on this
    /// machine: `reach` asks how far a style goes here, and prefork's
    /// workers (one per CPU it may run on, each with an open-files limit of
    /// its own) and tasks' threads follow the CPUs they are given. It
    /// measures no throughput, so sharing loadgen's CPUs costs it nothing.
    pub fn on_every_cpu(self) -> bool {
        match self {
            Scenario::Reach => true,
            Scenario::Idle
            | Scenario::Scale
            | Scenario::Open
            | Scenario::Capacity
            | Scenario::Churn
            | Scenario::Fairness => false,
        }
    }

    /// The scenarios a profile runs unless told otherwise.
    pub fn profile_default() -> Vec<Scenario> {
        Scenario::all()
            .iter()
            .copied()
            .filter(|s| !s.on_request())
            .collect()
    }

    pub fn from_name(name: &str) -> Option<Scenario> {
        Scenario::all().iter().copied().find(|s| s.name() == name)
    }
}

/// The style every other one's throughput is a ratio to: the raw-epoll
/// server, the in-project stand-in for the machine's limit.
pub fn reference() -> &'static str {
    servers::Style::Epoll.name()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_scenario_has_one_name_that_clap_agrees_with() {
        for &s in Scenario::all() {
            assert_eq!(Scenario::from_name(s.name()), Some(s));
            let clap = <Scenario as clap::ValueEnum>::from_str(s.name(), false);
            assert_eq!(clap, Ok(s), "{}", s.name());
        }
        assert_eq!(Scenario::all().len(), 7);
        assert!(!Scenario::profile_default().contains(&Scenario::Reach));
    }
}
