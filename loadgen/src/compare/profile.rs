//! The comparison's profiles (how big a comparison is, which styles and
//! scenarios it runs, and how), one table each, including `perf` with the
//! constants its targets are judged at ([`perf`]). `--profile` takes their
//! names.

use std::time::Duration;

use crate::compare::capacity::Slo;
use crate::compare::model::Scenario;

/// CPUs each server gets in the default profile (`quick`, and `smoke` and
/// `full` built on it): the perf profile's quarter of a CPU. Two servers
/// side by side then take half the server CPU and each loadgen engine
/// thread stays near a quarter busy, so the server is the limit (measured
/// in the perf profile: loadgen at most 51% busy for a pair); a smaller
/// quota would make every cell server-bound and say nothing of the style.
pub const DEFAULT_SERVER_CPU_QUOTA: f64 = 0.25;

/// How a profile's plan changes for some styles.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum PerStyle {
    /// Every style runs the profile as it is.
    Same,
    /// `polling` and its variants hold `idle` idle connections and run
    /// nothing else, without the CPU quota: the CPU they burn is what they
    /// show, and a quota would only cap it (perf).
    PollingIdleOnly { idle: usize },
}

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
    /// `capacity`: the connection counts searched, the objective (`--slo`
    /// sets it), each step's measured time and warm-up, the most steps one
    /// search takes, and its first rate where no `scale` maximum says
    /// better.
    pub capacity_conns: Vec<usize>,
    pub capacity_slo: Slo,
    pub capacity_step: Duration,
    pub capacity_warmup: Duration,
    pub capacity_max_steps: usize,
    pub capacity_start: f64,
    /// `churn`: connections cycling at once.
    pub churn_slots: usize,
    /// `fairness`: light connections and their rate (messages/s each), the
    /// heavy connection's message size, and the server's `--work-us`.
    pub fairness_light: usize,
    pub fairness_light_rate: f64,
    pub fairness_heavy_size: usize,
    pub fairness_work_us: u64,
    /// `reach`: the most idle connections a style is taken to
    /// (`--reach-max`), the active connections beside them and their rate
    /// (messages/s each), and the active p99 past which a step fails.
    pub reach_max: usize,
    pub reach_active: usize,
    pub reach_rate_per_conn: f64,
    pub reach_p99: Duration,
    /// The least warm-up of a reach step: a server still accepting the
    /// step's connections (a process forked for each) is not its wall.
    pub reach_warmup: Duration,
    /// The scenarios `compare` runs for a style, in [`Scenario::all`] order.
    pub scenarios: Vec<Scenario>,
    /// CPUs of CFS bandwidth each server gets (`--server-cpu-quota`).
    pub server_cpu_quota: Option<f64>,
    /// Scenarios whose servers run without the profile's quota: fairness
    /// (its heavy connection alone needs more than a quarter of a CPU, so
    /// under the quota CFS throttling would stall every style's light
    /// connections alike, and the scenario asks who is preempted, not who
    /// is throttled).
    pub quota_free: Vec<Scenario>,
    /// Rounds of every style (`--repeat`).
    pub repeat: u32,
    /// Rounds after the first take only the scale points (the figures
    /// that rank the styles); the other scenarios run once.
    pub repeat_scale_only: bool,
    /// Take the styles in turn at each point, a fresh server each
    /// ([`Profile::steps`]), instead of each style whole.
    pub by_point: bool,
    /// At each scale point, run every style beside a fresh epoll server,
    /// both measured over the same seconds ([`crate::compare::pair`]);
    /// only where `by_point`.
    pub side_by_side: bool,
    /// The styles `compare` runs without `--styles` (None: every style).
    pub styles: Option<&'static [&'static str]>,
    /// How the plan changes for some styles.
    pub per_style: PerStyle,
    /// The report holds the perf tables (every style against epoll,
    /// judged against the targets) and perf.md beside it.
    pub perf_tables: bool,
}

impl Profile {
    pub fn named(name: &str) -> Option<Profile> {
        let quick = Profile {
            name: "quick",
            // 1 s windows: side by side, a pair sees the same machine, so a
            // short window costs little of the ratios' spread (reactor,
            // uring, tasks within ±5% at 50 and 1,000 connections over two
            // rounds, measured), and the 176 scale runs of two rounds of
            // eleven styles keep the main job near 15 minutes on 2 cores
            // (1.5 s windows took 18 min on a busy machine).
            duration: Duration::from_millis(1000),
            warmup: Duration::from_millis(400),
            scale_conns: vec![1, 50, 1000, 5000],
            scale_sizes: vec![64, 4096],
            idle: 10_000,
            idle_active: 100,
            idle_rate_per_conn: 20.0,
            open_fractions: vec![0.5, 0.9],
            capacity_conns: vec![50, 1000],
            capacity_slo: Slo::default(),
            // 0.75 s steps: 7,500 samples at 10k/s give a p99; the 22
            // searches of eleven styles took 192 s with 1 s steps.
            capacity_step: Duration::from_millis(750),
            capacity_warmup: Duration::from_millis(250),
            capacity_max_steps: 10,
            capacity_start: 1000.0,
            churn_slots: 20,
            fairness_light: 50,
            fairness_light_rate: 10.0,
            fairness_heavy_size: 16 * 1024,
            fairness_work_us: 500,
            // 20,000: one loadgen process's open-files limit here, reached
            // in about a minute a style; `--reach-max` goes further.
            reach_max: 20_000,
            reach_active: 10,
            reach_rate_per_conn: 20.0,
            // Light traffic on an unthrottled server: a p99 past 100 ms is
            // a server that no longer serves, not a slow one.
            reach_p99: Duration::from_millis(100),
            // Measured: at 2,000 connections prefork and process still
            // accepted 0.4 s after the connects (p99 275 and 401 ms).
            reach_warmup: Duration::from_secs(2),
            // `reach` only when asked for (`--scenarios reach`).
            scenarios: Scenario::profile_default(),
            server_cpu_quota: Some(DEFAULT_SERVER_CPU_QUOTA),
            // Reach: a throttled server stalls, and the stall would read
            // as the latency wall.
            quota_free: vec![Scenario::Fairness, Scenario::Reach],
            repeat: 2,
            repeat_scale_only: true,
            by_point: true,
            side_by_side: true,
            styles: None,
            per_style: PerStyle::Same,
            perf_tables: false,
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
                capacity_conns: vec![20],
                capacity_step: Duration::from_millis(300),
                capacity_warmup: Duration::from_millis(100),
                capacity_max_steps: 4,
                churn_slots: 4,
                fairness_light: 5,
                fairness_work_us: 200,
                reach_max: 2000,
                ..quick
            }),
            "full" => Some(Profile {
                name: "full",
                duration: Duration::from_secs(5),
                warmup: Duration::from_secs(1),
                scale_conns: vec![1, 10, 100, 1000, 10_000],
                capacity_step: Duration::from_secs(5),
                capacity_warmup: Duration::from_secs(1),
                churn_slots: 50,
                ..quick
            }),
            "perf" => Some(Profile {
                name: "perf",
                duration: perf::DURATION,
                warmup: perf::WARMUP,
                scale_conns: perf::CONNS.to_vec(),
                scale_sizes: vec![perf::SIZE],
                idle: perf::IDLE,
                idle_active: perf::IDLE_ACTIVE,
                idle_rate_per_conn: perf::IDLE_RATE_PER_CONN,
                scenarios: vec![Scenario::Idle, Scenario::Scale],
                server_cpu_quota: Some(perf::SERVER_CPU_QUOTA),
                repeat: perf::REPEAT,
                repeat_scale_only: false,
                styles: Some(perf::STYLES),
                per_style: PerStyle::PollingIdleOnly {
                    idle: perf::POLLING_IDLE,
                },
                perf_tables: true,
                ..quick
            }),
            _ => None,
        }
    }

    /// Its scenarios and windows as run, for results and the journal.
    pub fn scope(&self) -> crate::compare::model::Scope {
        crate::compare::model::Scope {
            scenarios: self
                .scenarios
                .iter()
                .map(|s| s.name().to_string())
                .collect(),
            duration_s: self.duration.as_secs_f64(),
            warmup_s: self.warmup.as_secs_f64(),
            capacity_step_s: self.capacity_step.as_secs_f64(),
            capacity_warmup_s: self.capacity_warmup.as_secs_f64(),
            reach_max: self.runs(Scenario::Reach).then_some(self.reach_max),
            reach_p99_ms: self
                .runs(Scenario::Reach)
                .then_some(self.reach_p99.as_secs_f64() * 1e3),
        }
    }

    /// The profile names `--profile` accepts.
    pub const NAMES: &'static [&'static str] = &["smoke", "quick", "full", "perf"];

    /// What this profile runs for one style (or style variant): the perf
    /// profile gives `polling` variants a smaller idle-only plan.
    pub fn for_style(&self, style: &str) -> Profile {
        let polling = style == "polling" || style.starts_with("polling:");
        match self.per_style {
            PerStyle::PollingIdleOnly { idle } if polling => Profile {
                idle,
                // Idle only, where the comparison runs it at all
                // (`--scenarios` may have left it out).
                scenarios: self
                    .scenarios
                    .iter()
                    .copied()
                    .filter(|&s| s == Scenario::Idle)
                    .collect(),
                server_cpu_quota: None,
                ..self.clone()
            },
            PerStyle::PollingIdleOnly { .. } | PerStyle::Same => self.clone(),
        }
    }

    /// The flags of the server a scenario runs on, where it needs one of
    /// its own (fairness: a server that burns `--work-us` of CPU per chunk
    /// it reads); None: the style's main server, shared by the others.
    pub fn own_server(&self, scenario: Scenario) -> Option<Vec<String>> {
        match scenario {
            Scenario::Fairness => Some(vec!["--work-us".into(), self.fairness_work_us.to_string()]),
            // A fresh server of its own, without the quota.
            Scenario::Reach => Some(Vec::new()),
            Scenario::Idle
            | Scenario::Scale
            | Scenario::Open
            | Scenario::Capacity
            | Scenario::Churn => None,
        }
    }

    /// The styles `compare` runs when `--styles` is not given.
    pub fn default_styles(&self) -> Vec<String> {
        match self.styles {
            Some(list) => list.iter().map(|s| s.to_string()).collect(),
            None => servers::Style::ALL
                .iter()
                .map(|st| st.name().to_string())
                .collect(),
        }
    }

    pub fn runs(&self, scenario: Scenario) -> bool {
        self.scenarios.contains(&scenario)
    }

    /// Whether `scenario`'s servers get the profile's CPU quota.
    pub fn quota_in(&self, scenario: Scenario) -> bool {
        !self.quota_free.contains(&scenario)
    }

    /// Whether round `round` (from 0) runs `scenario`.
    pub fn in_round(&self, scenario: Scenario, round: u32) -> bool {
        round == 0 || !self.repeat_scale_only || scenario == Scenario::Scale
    }

    /// Number of load runs one style gets in `rounds` rounds, the fairness
    /// scenario's heavy connection included (for the progress count).
    pub fn runs_in(&self, rounds: u32) -> usize {
        (0..rounds.max(1))
            .map(|round| {
                self.scenarios
                    .iter()
                    .filter(|&&s| self.in_round(s, round))
                    .map(|&s| self.runs_of(s))
                    .sum::<usize>()
            })
            .sum()
    }

    /// Number of load runs one style gets in one round.
    pub fn runs_per_style(&self) -> usize {
        self.scenarios.iter().map(|&s| self.runs_of(s)).sum()
    }

    fn runs_of(&self, scenario: Scenario) -> usize {
        match scenario {
            Scenario::Scale => self.scale_conns.len() * self.scale_sizes.len(),
            Scenario::Idle | Scenario::Churn => 1,
            Scenario::Open => self.open_fractions.len(),
            // At most: a search may end sooner.
            Scenario::Capacity => self.capacity_conns.len() * self.capacity_max_steps,
            Scenario::Fairness => 2,
            // At most: a style stops at its first failing step.
            Scenario::Reach => reach_steps(self.reach_max).len(),
        }
    }

    /// A rough wall-clock estimate for one style over `rounds` rounds, in
    /// seconds: each load run's warm-up and window, capacity steps at
    /// their own length (a search may end sooner), connecting, and where
    /// the profile goes point by point a fresh server per step.
    pub fn seconds_per_style(&self, rounds: u32) -> f64 {
        (0..rounds.max(1))
            .map(|round| self.seconds_in_round(round))
            .sum()
    }

    fn seconds_in_round(&self, round: u32) -> f64 {
        let per_run = (self.warmup + self.duration).as_secs_f64();
        let runs = |sc: Scenario| self.runs(sc) && self.in_round(sc, round);
        let mut s = 0.0;
        let mut servers = 0;
        for &sc in self.scenarios.iter().filter(|&&sc| runs(sc)) {
            s += match sc {
                Scenario::Capacity => {
                    let per_step =
                        (self.capacity_warmup + self.capacity_step).as_secs_f64() + STEP_S;
                    let steps = self.capacity_max_steps.min(CAPACITY_STEPS);
                    (self.capacity_conns.len() * steps) as f64 * per_step
                }
                Scenario::Reach => {
                    let steps = reach_steps(self.reach_max);
                    let conns: usize = steps.iter().map(|n| n + self.reach_active).sum();
                    let warmup = self.warmup.max(self.reach_warmup);
                    let per_step = (warmup + self.duration).as_secs_f64();
                    steps.len() as f64 * per_step + conns as f64 * IDLE_CONNECT_S
                }
                _ => self.runs_of(sc) as f64 * per_run,
            };
            servers += match sc {
                Scenario::Scale if self.by_point => self.scale_conns.len() * self.scale_sizes.len(),
                Scenario::Idle if self.by_point => 1,
                _ => 0,
            };
        }
        let idle = if runs(Scenario::Idle) {
            (self.idle + self.idle_active) as f64 * IDLE_CONNECT_S
        } else {
            0.0
        };
        let connects = if runs(Scenario::Scale) {
            self.scale_conns.iter().sum::<usize>() * self.scale_sizes.len()
        } else {
            0
        };
        s + idle + connects as f64 * CONNECT_S + (servers + 1) as f64 * SERVER_START_STOP_S
    }
}

/// A server's start, settling and stop, in seconds (for the estimate):
/// fitted to a quick run's timeline (a paired scale point at 1 and 50
/// connections took 2.15 s, 1.4 s of it the window; two servers).
pub const SERVER_START_STOP_S: f64 = 0.375;

/// A capacity step beyond its warm-up and window: the rate's connections
/// and the verdict (the same timeline: 1.41 s a step of 1 s).
const STEP_S: f64 = 0.4;

/// Steps a capacity search takes, for the estimate (the searches of a
/// quick run on a quiet machine took 4 to 8, 6 the most common; 4 where
/// no step passed).
const CAPACITY_STEPS: usize = 6;

/// An idle connection's set-up, hold and close, in seconds (the same
/// timeline: the idle scenario took 11.1 s a style for 10,100 connections;
/// a style that forks or spawns a thread per connection is the slow part).
const IDLE_CONNECT_S: f64 = 0.0009;

/// Setting up and closing one connection to a server under the quota, in
/// seconds (for the estimate): fitted to the same timeline (a paired scale
/// point took 3.2 s longer at 5,000 connections than at 1,000, 8,000 more
/// sockets; 10,000 idle connections about 8 s).
pub const CONNECT_S: f64 = 0.0004;

/// `reach`'s steps: the idle connection counts up to `max`: 1, 2 and 5 times
/// the powers of ten from 1,000, and `max` itself last where it falls
/// between them (a `max` under 1,000 is the one step).
pub fn reach_steps(max: usize) -> Vec<usize> {
    let mut out = Vec::new();
    let mut decade = 1000usize;
    'ladder: loop {
        for m in [1, 2, 5] {
            let n = decade.saturating_mul(m);
            if n > max {
                break 'ladder;
            }
            out.push(n);
        }
        decade = decade.saturating_mul(10);
    }
    if out.last() != Some(&max) && max > 0 {
        out.push(max);
    }
    out
}

/// The `perf` profile's plan: every style against `epoll` at a few points,
/// server-bound (a CPU quota), repeated; `report::perf` judges it.
pub mod perf {
    use std::time::Duration;

    /// Connection counts of the throughput targets (the columns of the perf targets' `ratio`).
    pub const CONNS: [usize; 3] = [50, 1000, 10_000];
    /// Message size, bytes.
    pub const SIZE: usize = 64;
    /// Measured time per point, and the warm-up before it.
    pub const DURATION: Duration = Duration::from_secs(3);
    pub const WARMUP: Duration = Duration::from_secs(1);
    /// The memory scenario: idle connections held, and a few active ones at a
    /// light open-loop rate (messages/s each).
    pub const IDLE: usize = 10_000;
    pub const IDLE_ACTIVE: usize = 10;
    pub const IDLE_RATE_PER_CONN: f64 = 50.0;
    /// CPUs each server gets (CFS bandwidth in its own cgroup): low enough
    /// that one loadgen CPU drives the leanest styles server-bound at 50 and
    /// 1,000 connections on a 2-core machine (measured: see docs/perf.md).
    pub const SERVER_CPU_QUOTA: f64 = 0.25;
    /// Rounds of every style: each ratio is a median with its min-max.
    pub const REPEAT: u32 = 3;
    /// Idle connections the `polling` variants hold (they burn CPU in
    /// proportion to them).
    pub const POLLING_IDLE: usize = 1000;

    /// What the perf profile runs, in order (style variants: see
    /// [`crate::compare::variant`]).
    pub const STYLES: &[&str] = &[
        "epoll",
        "reactor",
        "tasks:current_thread",
        "tasks:multi_thread",
        "coroutines",
        "uring",
        "threads",
        "polling:sleep0",
        "polling:sleep100",
        "polling:sleep1000",
    ];
}

#[cfg(test)]
mod tests {
    use super::perf::*;
    use super::*;

    #[test]
    fn the_perf_profile_plans_each_style() {
        let p = Profile::named("perf").unwrap();
        assert_eq!(p.default_styles(), STYLES);
        assert_eq!(p.scale_conns, CONNS);
        assert_eq!(p.scale_sizes, [SIZE]);
        assert_eq!(p.duration, DURATION);
        let epoll = p.for_style("epoll");
        assert_eq!(epoll.scenarios, [Scenario::Idle, Scenario::Scale]);
        assert_eq!(epoll.idle, IDLE);
        assert_eq!(epoll.runs_per_style(), 1 + CONNS.len());
        let polling = p.for_style("polling:sleep100");
        assert_eq!(polling.scenarios, [Scenario::Idle]);
        assert_eq!(polling.idle, POLLING_IDLE);
        assert_eq!(polling.runs_per_style(), 1);
        // Other profiles run every scenario for every style.
        let quick = Profile::named("quick").unwrap();
        assert_eq!(quick.for_style("polling:sleep100"), quick);
        assert_eq!(quick.runs_per_style(), 4 * 2 + 1 + 2 + 2 * 10 + 1 + 2);
    }

    #[test]
    fn the_default_profile_repeats_only_the_scale_points_and_quotas_all_but_fairness() {
        let quick = Profile::named("quick").unwrap();
        assert_eq!(quick.server_cpu_quota, Some(DEFAULT_SERVER_CPU_QUOTA));
        assert_eq!(quick.repeat, 2);
        // The second round adds the scale points alone (4 counts, 2 sizes).
        assert_eq!(quick.runs_in(2), quick.runs_per_style() + 4 * 2);
        assert_eq!(quick.runs_in(1), quick.runs_per_style());
        assert!(quick.in_round(Scenario::Scale, 1));
        assert!(!quick.in_round(Scenario::Open, 1));
        assert!(!quick.quota_in(Scenario::Fairness));
        assert!(quick.quota_in(Scenario::Capacity));
        // perf repeats everything it has.
        let perf = Profile::named("perf").unwrap();
        assert!(perf.in_round(Scenario::Idle, 2));
        assert_eq!(
            crate::compare::scenarios::steps(&quick).unwrap().last(),
            Some(&crate::compare::scenarios::Step::Rest)
        );
        assert!(quick.seconds_per_style(2) > quick.seconds_per_style(1));
    }
}
