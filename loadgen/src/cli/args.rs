//! `loadgen`'s flags (clap) and the parsers of their values; what each
//! command does is in [`crate::cli`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};

use crate::results::spec::{Mode, RunSpec};

use crate::cli::values::*;
pub use crate::cli::values::{CpuList, Quota, SourceIps, StyleList};

#[derive(Debug, Parser)]
#[command(
    name = "loadgen",
    version,
    about = "An honest load generator for TCP echo servers"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Drive one server and report what it did.
    Run(RunArgs),
    /// Run every server style through the same scenarios and write a report
    /// (results.json, results.csv, report.md, charts/).
    ///
    /// One at a time (see --allow-concurrent). A run whose window had other
    /// work (not its servers' cgroups or loadgen's) on over 35% of the
    /// servers' and loadgen's CPUs' time (/proc/stat) is disturbed: ⚠ in
    /// the report, never ranked (docs/comparison.md).
    Compare(CompareArgs),
    /// Rebuild report.md, results.csv and charts/ from a comparison's
    /// results.json (written next to it unless --out is given), or from
    /// the journal of a comparison that was killed.
    Report {
        /// A results.json written by `loadgen compare`, or its folder (a
        /// folder with only journal.jsonl: the units it recorded).
        results: PathBuf,
        /// Output directory (default: the one holding results.json).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Run each style's server under a long mixed load (open loop, churn,
    /// idle connections at once), sample its memory, fds and threads every
    /// second, and judge their trends (soak.json, soak.md).
    ///
    /// One at a time, as compare (see --allow-concurrent).
    Soak(SoakArgs),
    /// Hold a comparison against an earlier one: every cell both share, the
    /// change in %, and whether it is beyond noise (markdown on stdout).
    Diff(DiffArgs),
    /// Combine result files of simultaneous runs (several loadgen processes
    /// or hosts against one server) into one: histograms added, throughputs
    /// and errors summed.
    Merge(MergeArgs),
    /// Run an echo server: `loadgen serve <STYLE> [servers flags]` is the
    /// `servers` binary, built into loadgen so `compare` needs nothing else.
    #[command(hide = true)]
    Serve {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<std::ffi::OsString>,
    },
    /// The process `compare` starts to stop its servers should compare die
    /// first (see compare/guard.rs); reads what to stop on stdin.
    #[command(hide = true)]
    Guard,
}

#[derive(Debug, clap::Args)]
pub struct CompareArgs {
    /// Styles to compare: `all` or a comma list (see `servers list`); a
    /// style may name a variant, STYLE:VARIANT, e.g. tasks:current_thread
    /// (`--workers 0`) or polling:sleep100 (`--poll-sleep-us 100`).
    /// Default: all, or for the perf profile the styles it has targets for.
    #[arg(long, value_parser = parse_styles)]
    pub styles: Option<StyleList>,
    /// smoke (seconds, for tests), quick (the main job: server-bound, each
    /// server in a quarter of a CPU, its scale points in 2 rounds side by
    /// side with a fresh epoll server; about 15 minutes on 2 cores for
    /// every style, 824 s measured), full (bigger hardware), perf (every
    /// style against epoll and the targets in
    /// loadgen/src/report/perf/targets.rs, about 11 minutes on 2 cores;
    /// writes perf.md). `--plan` prints what a profile runs and its
    /// estimate, the same figure `compare` prints as it starts and its
    /// progress bar counts against.
    #[arg(long, default_value = "quick", value_parser = crate::compare::profile::Profile::NAMES.to_vec())]
    pub profile: String,
    /// Output directory (default: `results/<UTC timestamp>`). Each unit
    /// (a style at a point of a round) is journaled there as it ends
    /// (journal.jsonl), so a comparison that is killed keeps what it
    /// measured: `loadgen report DIR` reports it, `--resume DIR` finishes it.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Finish the comparison whose journal is in DIR (its --out, killed or
    /// interrupted): run only the units it lacks, append them, and write
    /// the results and report there. The other flags must be the same as
    /// the first run's (refused with exit 2, naming what differs).
    #[arg(long, value_name = "DIR", conflicts_with = "out")]
    pub resume: Option<PathBuf>,
    #[command(flatten)]
    pub servers: ServerArgs,
    /// Drive a server that is already running instead of spawning one:
    /// STYLE=HOST:PORT[,fairness=HOST:PORT] (the fairness server runs with
    /// --work-us). Repeat per style; --styles and --server-cpus then do not apply.
    #[arg(long = "target", value_parser = crate::compare::parse_target)]
    pub targets: Vec<crate::compare::TargetSpec>,
    /// With --target, in containers: the Docker API socket. Each target's
    /// HOST is its container, started before its scenarios and stopped
    /// after (one style at a time), and sampled through the API.
    #[arg(long)]
    pub docker_socket: Option<PathBuf>,
    /// How loadgen reaches the servers, for the report (e.g. bridge, host).
    #[arg(long)]
    pub network: Option<String>,
    /// CPUs each server gets, through CFS bandwidth in a cgroup of its own
    /// (10 ms period), e.g. 0.5; `none` for no quota. Makes the runs
    /// server-bound when loadgen has more CPU than that. Default: the
    /// profile's, 0.25 (fairness's servers and perf's polling run without);
    /// given here, it applies to every server.
    #[arg(long, value_parser = parse_quota)]
    pub server_cpu_quota: Option<Quota>,
    /// Rounds: measure every cell this many times, round by round over the
    /// styles, and report the median with its min-max (default: the
    /// profile's; perf: 3 of everything; smoke, quick, full: 2 of the scale
    /// points, the other scenarios once; with --target: 1).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub repeat: Option<u32>,
    /// This is one of N loadgen processes running the same comparison at
    /// once against the same --target servers (e.g. a Swarm service's
    /// replicas): before each run, wait (at most 60 s) until all N reach
    /// it, so their runs overlap and `loadgen merge --comparisons` adds up
    /// figures measured at the same time. Needs --replica-dir.
    #[arg(long, requires = "replica_dir", value_parser = clap::value_parser!(u32).range(2..=10_000))]
    pub replicas: Option<u32>,
    /// With --replicas: a folder every replica can write to (one shared
    /// volume), where each run's waiting is done through files.
    #[arg(long, requires = "replicas")]
    pub replica_dir: Option<PathBuf>,
    /// Any other TCP echo server as a row of its own, NAME='COMMAND ...
    /// {port}', e.g. socat='socat TCP-LISTEN:{port},reuseaddr,fork PIPE':
    /// run through `sh -c` with {port} a free loopback port, pinned and
    /// sampled like the styles, ready once the port accepts a connection,
    /// stopped with SIGTERM (SIGKILL 2 s later). Fairness runs it as it is
    /// (--work-us is our servers' flag). Repeatable.
    #[arg(long = "external", value_name = "NAME=COMMAND", value_parser = crate::compare::parse_external)]
    pub externals: Vec<crate::compare::model::ExternalServer>,
    /// An earlier comparison's results.json (or its folder): the report
    /// gets a "Change against baseline" section, and diff.md is written
    /// beside it (see `loadgen diff`).
    #[arg(long)]
    pub baseline: Option<PathBuf>,
    /// With --baseline: exit with status 3 when a cell got worse beyond
    /// noise by more than PCT % (listed on stderr). A failed comparison
    /// still exits 1, an interrupted one 130.
    #[arg(long, value_name = "PCT", requires = "baseline", value_parser = parse_pct)]
    pub fail_on_regression: Option<f64>,
    /// The capacity scenario's latency objective, PERCENTILE=DURATION: the
    /// highest rate at which p50, p90, p99, p99.9 or max of the corrected
    /// latency stays within DURATION, e.g. p99=1ms, p99.9=5ms
    /// (default: p99=1ms).
    #[arg(long, value_parser = crate::compare::capacity::Slo::parse)]
    pub slo: Option<crate::compare::capacity::Slo>,
    /// Run only these scenarios (`run --scenario`'s names), e.g. `idle`;
    /// default: the profile's (reach runs only when named here).
    #[arg(long, value_enum, value_delimiter = ',')]
    pub scenarios: Option<Vec<crate::compare::model::Scenario>>,
    #[command(flatten)]
    pub reach: crate::cli::reach::ReachArgs,
    /// Each run's measured window, e.g. 3s or 500ms, instead of the
    /// profile's (capacity steps included); results.json records it.
    #[arg(long, value_parser = parse_window)]
    pub duration: Option<Duration>,
    /// The warm-up before each measured window (0s for none), instead of
    /// the profile's (capacity steps included).
    #[arg(long, value_parser = parse_duration)]
    pub warmup: Option<Duration>,
    /// Print what the comparison would run (styles, scenarios, points,
    /// rounds, pairs, quota) and how long it should take, then exit 0
    /// without starting anything.
    #[arg(long)]
    pub plan: bool,
}

impl CompareArgs {
    /// The `--external` servers, each named once and not beside `--target`.
    pub fn externals(&self) -> Result<Vec<crate::compare::model::ExternalServer>, clap::Error> {
        let conflict =
            |msg: String| clap::Error::raw(clap::error::ErrorKind::ArgumentConflict, msg + "\n");
        if !self.externals.is_empty() && !self.targets.is_empty() {
            return Err(conflict(
                "--external: not with --target (an external server is started here, beside the styles' own)"
                    .into(),
            ));
        }
        for (i, e) in self.externals.iter().enumerate() {
            if self.externals[..i].iter().any(|o| o.name == e.name) {
                return Err(conflict(format!(
                    "--external: the name {:?} is given twice (each external server is a row of its own)",
                    e.name
                )));
            }
        }
        Ok(self.externals.clone())
    }
}

#[derive(Debug, clap::Args)]
pub struct SoakArgs {
    /// Styles to soak, one after the other: `all` or a comma list; a style
    /// may name a variant, STYLE:VARIANT (as for compare).
    #[arg(long, default_value = "reactor,tasks,threads,uring", value_parser = parse_styles)]
    pub styles: StyleList,
    /// How long each style is soaked, e.g. 10m, 30s.
    #[arg(long, default_value = "10m", value_parser = parse_duration)]
    pub duration: Duration,
    /// The first part of each soak, not fitted (default: a fifth of
    /// --duration, at least 5s).
    #[arg(long, value_parser = parse_duration)]
    pub warmup: Option<Duration>,
    /// Open loop: messages per second in total.
    #[arg(long, default_value_t = crate::soak::model::Plan::OPEN_RATE, value_parser = parse_rate)]
    pub rate: f64,
    /// Open loop: connections.
    #[arg(long, default_value_t = crate::soak::model::Plan::OPEN_CONNS as u64, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub conns: u64,
    /// Churn: connect-echo-close cycles per second.
    #[arg(long, default_value_t = crate::soak::model::Plan::CHURN_RATE, value_parser = parse_rate)]
    pub churn_rate: f64,
    /// Idle connections held open.
    #[arg(long, default_value_t = crate::soak::model::Plan::IDLE as u64, value_parser = clap::value_parser!(u64).range(0..=100_000))]
    pub idle: u64,
    /// Output directory (default: `results/soak-<UTC timestamp>`).
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub servers: ServerArgs,
}

/// How the commands that start servers (compare, soak) start them.
#[derive(Debug, clap::Args)]
pub struct ServerArgs {
    /// A `servers` binary to run the styles with (default: this loadgen's
    /// built-in `serve`, the same code).
    #[arg(long)]
    pub server_bin: Option<PathBuf>,
    /// CPUs for the servers, e.g. 0 or 0-1.
    #[arg(long, default_value = "0", value_parser = parse_cpu_list)]
    pub server_cpus: CpuList,
    /// CPUs for loadgen (default: every CPU not given to the servers).
    #[arg(long, value_parser = parse_cpu_list)]
    pub client_cpus: Option<CpuList>,
    /// Run even while another compare or soak runs here; without it, a
    /// second is refused at once (exit 2) naming the first's pid and
    /// command. The lock: /run/c10k-echo.lock (else in the temp dir), or
    /// the file C10K_LOCK names.
    #[arg(long)]
    pub allow_concurrent: bool,
}

impl SoakArgs {
    /// The plan the flags ask for; a soak too short to fit a trend after
    /// its warm-up is refused, naming the flags.
    pub fn plan(&self) -> Result<crate::soak::model::Plan, clap::Error> {
        use crate::soak::model::Plan;
        let bad = |m: String| clap::Error::raw(clap::error::ErrorKind::ValueValidation, m + "\n");
        if self.duration.is_zero() {
            return Err(bad("--duration must be more than 0".into()));
        }
        let warmup = self
            .warmup
            .unwrap_or_else(|| Plan::default_warmup(self.duration));
        let fitted = self.duration.saturating_sub(warmup).as_secs_f64();
        if fitted < Plan::MIN_FIT_S {
            let which = if self.warmup.is_some() {
                "--duration or --warmup"
            } else {
                "--duration"
            };
            return Err(bad(format!(
                "{which}: --duration {} leaves {fitted:.0} s after the {} warm-up (--warmup); \
                 a trend needs at least {} s of samples",
                humantime::format_duration(self.duration),
                humantime::format_duration(warmup),
                Plan::MIN_FIT_S
            )));
        }
        Ok(Plan {
            open_conns: self.conns as usize,
            open_rate: self.rate,
            churn_rate: self.churn_rate,
            churn_slots: Plan::churn_slots_for(self.churn_rate),
            idle: self.idle as usize,
            ..Plan::new(self.duration, warmup)
        })
    }
}

/// `loadgen diff OLD NEW`.
#[derive(Debug, clap::Args)]
pub struct DiffArgs {
    /// The baseline: a `loadgen compare` results.json, or its folder.
    pub old: PathBuf,
    /// The run to hold against it, likewise.
    pub new: PathBuf,
    /// Also write the markdown to this file.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Exit with status 3 when a cell got worse beyond noise by more than
    /// PCT % (listed on stderr); bad input exits 2.
    #[arg(long, value_name = "PCT", value_parser = parse_pct)]
    pub fail_on_regression: Option<f64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
    Csv,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ModeArg {
    Closed,
    Open,
    Churn,
}

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Server address, HOST:PORT.
    #[arg(long, value_parser = parse_addr)]
    pub addr: SocketAddr,
    /// Active connections (they send messages).
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub conns: u64,
    /// Measured time, e.g. 10s, 500ms, 1m.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Time after every connection is open and before measuring.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub warmup: Duration,
    /// Payload bytes per message.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=16 * 1024 * 1024))]
    pub size: u64,
    /// Most messages in flight per connection (both modes).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub pipeline: u64,
    /// closed: next message when the reply is back; open: fixed schedule at
    /// --rate; churn: connect, echo one message, close, repeat.
    #[arg(long, value_enum, default_value_t = ModeArg::Closed)]
    pub mode: ModeArg,
    /// Messages per second in total (open mode).
    #[arg(long, value_parser = parse_rate)]
    pub rate: Option<f64>,
    /// Extra connections opened first and held idle.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=10_000_000))]
    pub idle: u64,
    /// Open at most this many connections per second: a ramp, and in
    /// churn mode the churn rate.
    #[arg(long, value_parser = parse_rate)]
    pub connect_rate: Option<f64>,
    /// Source addresses, round-robin: 127.0.0.1-127.0.0.8 or a comma list.
    #[arg(long, value_parser = parse_source_ips)]
    pub source_ips: Option<SourceIps>,
    /// loadgen worker threads.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=256))]
    pub threads: u64,
    /// Per-message and per-connect timeout.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Sample this server process (and its child processes, if it forks)
    /// from /proc: memory, CPU, context switches.
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// A name for this run in reports.
    #[arg(long)]
    pub label: Option<String>,
    /// Run one of compare's scenarios against --addr instead of a single
    /// load (the load flags are then the scenario's own).
    #[arg(long, value_enum)]
    pub scenario: Option<crate::compare::model::Scenario>,
    /// Scenario size for --scenario: smoke, quick, full or perf.
    #[arg(long, default_value = "quick", value_parser = crate::compare::profile::Profile::NAMES.to_vec())]
    pub profile: String,
    #[command(flatten)]
    pub reach: crate::cli::reach::ReachArgs,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Write the result (in --format) to this file instead of stdout;
    /// `{host}` in it becomes the host name (one file per replica).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct MergeArgs {
    /// Result files written with --format json, or directories of them.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Merge runs that do not add up (another message size, mode kind,
    /// pipeline, duration or warm-up; one run twice); the result lists
    /// why in `merged_despite`.
    #[arg(long)]
    pub force: bool,
    /// The files are `loadgen compare` results.json files of replicas
    /// (`compare --replicas`): merge them run by run, and write
    /// results.json, report.md and the rest into --out (a folder).
    #[arg(long, requires = "out")]
    pub comparisons: bool,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    #[arg(long)]
    pub out: Option<PathBuf>,
}

impl RunArgs {
    pub fn spec(&self) -> Result<RunSpec, clap::Error> {
        let mode = match (self.mode, self.rate) {
            (ModeArg::Closed, None) => Mode::Closed,
            (ModeArg::Open, Some(rate)) => Mode::Open { rate },
            (ModeArg::Open, None) => {
                return Err(clap::Error::raw(
                    clap::error::ErrorKind::MissingRequiredArgument,
                    "--mode open needs --rate (messages per second in total)\n",
                ));
            }
            (ModeArg::Churn, None) => Mode::Churn,
            (ModeArg::Closed | ModeArg::Churn, Some(_)) => {
                return Err(clap::Error::raw(
                    clap::error::ErrorKind::ArgumentConflict,
                    "--rate applies to --mode open only\n",
                ));
            }
        };
        if self.duration.is_zero() {
            return Err(clap::Error::raw(
                clap::error::ErrorKind::ValueValidation,
                "--duration must be more than 0\n",
            ));
        }
        if self.timeout.is_zero() {
            return Err(clap::Error::raw(
                clap::error::ErrorKind::ValueValidation,
                "--timeout must be more than 0 (every message would time out)\n",
            ));
        }
        Ok(RunSpec {
            addr: self.addr,
            conns: self.conns as usize,
            idle: self.idle as usize,
            duration: self.duration,
            warmup: self.warmup,
            size: self.size as usize,
            pipeline: self.pipeline as usize,
            mode,
            connect_rate: self.connect_rate,
            source_ips: self.source_ips.clone().map(|s| s.0).unwrap_or_default(),
            threads: self.threads as usize,
            timeout: self.timeout,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compare_takes_variants_and_the_perf_profile() {
        let cli = Cli::try_parse_from([
            "loadgen",
            "compare",
            "--profile",
            "perf",
            "--styles",
            "epoll,tasks:current_thread,polling:sleep100,epoll",
        ])
        .unwrap();
        let Command::Compare(args) = cli.command else {
            panic!("compare parses as compare")
        };
        assert_eq!(args.profile, "perf");
        assert_eq!(
            args.styles.unwrap().0,
            ["epoll", "tasks:current_thread", "polling:sleep100"]
        );
        let Command::Compare(args) = Cli::try_parse_from(["loadgen", "compare"]).unwrap().command
        else {
            panic!("compare parses as compare")
        };
        assert_eq!(args.styles, None, "the profile picks the default styles");
        for bad in ["tasks:turbo", "fibers", "reactor:sleep10"] {
            assert!(
                Cli::try_parse_from(["loadgen", "compare", "--styles", bad]).is_err(),
                "{bad}"
            );
        }
    }
}
