//! The perf profile's targets: [`TARGETS`], the one place they live (what
//! each style must do against the reference, and its memory per idle
//! connection), and the [`Verdict`] a cell gets. The rows name style
//! variants (`tasks:current_thread`): they are data of this table, read by
//! [`super::cells`] to pick the runs that count.

const KIB: u64 = 1024;

/// What a style must do at one connection count.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Goal {
    /// The style is the reference (its ratio is 1 by definition).
    Reference,
    /// Throughput at least this ratio to epoll's.
    AtLeast(f64),
    /// Report the ratio; no target.
    Report,
    /// Report the ratio, and pass when every connection was held and served.
    HoldsEveryConnection,
}

/// One style's targets.
#[derive(Clone, Debug, PartialEq)]
pub struct Target {
    /// The row name.
    pub style: &'static str,
    /// The runs (style variants) that count for it; the best is judged and
    /// all are shown.
    pub variants: &'static [&'static str],
    /// Throughput against epoll at each of
    /// [`CONNS`](crate::compare::profile::perf::CONNS).
    pub ratio: [Goal; 3],
    /// Server memory per idle connection above the listening baseline, at
    /// [`IDLE`](crate::compare::profile::perf::IDLE) idle connections (bytes); None: reported, no target. It
    /// covers everything the server's cgroup is charged (user pages and
    /// the kernel's sockets, buffers, epoll items, stacks: ~1.5 KiB of an
    /// idle TCP connection here) where the server ran in one with kernel
    /// memory accounted, else user-space RSS alone.
    pub memory_per_conn_max: Option<u64>,
}

/// The targets: the one place they are written down.
pub const TARGETS: &[Target] = &[
    Target {
        style: "epoll",
        variants: &["epoll"],
        ratio: [Goal::Reference; 3],
        memory_per_conn_max: Some(2 * KIB),
    },
    Target {
        style: "reactor",
        variants: &["reactor"],
        ratio: [Goal::AtLeast(0.95), Goal::AtLeast(0.95), Goal::AtLeast(0.9)],
        memory_per_conn_max: Some(2 * KIB),
    },
    Target {
        style: "tasks",
        variants: &["tasks:current_thread", "tasks:multi_thread", "tasks"],
        ratio: [Goal::AtLeast(0.9), Goal::AtLeast(0.9), Goal::AtLeast(0.85)],
        memory_per_conn_max: Some(4 * KIB),
    },
    Target {
        style: "coroutines",
        variants: &["coroutines"],
        ratio: [Goal::AtLeast(0.8), Goal::AtLeast(0.8), Goal::AtLeast(0.7)],
        // Its stack (the default, which the perf profile runs) plus 1 KiB.
        memory_per_conn_max: Some(servers::config::DEFAULT_COROUTINE_STACK as u64 + KIB),
    },
    Target {
        style: "uring",
        variants: &["uring"],
        ratio: [Goal::AtLeast(1.1), Goal::AtLeast(1.1), Goal::AtLeast(1.0)],
        memory_per_conn_max: Some(4 * KIB),
    },
    Target {
        style: "threads",
        variants: &["threads"],
        ratio: [Goal::Report, Goal::Report, Goal::HoldsEveryConnection],
        memory_per_conn_max: None,
    },
];

/// benches/client_efficiency.rs: loadgen's one thread must drive at least
/// this many times the round trips/s of a thread-per-connection client, at
/// these connection counts (against epoll, 64 B, closed loop).
pub const CLIENT_EFFICIENCY_MIN_RATIO: f64 = 1.2;
pub const CLIENT_EFFICIENCY_CONNS: &[usize] = &[50, 1000];

/// A cell's verdict.
#[derive(Clone, Debug, PartialEq)]
pub enum Verdict {
    Pass,
    Miss,
    /// Over the repeats the ratio's range straddles the target: some
    /// rounds met it, some did not.
    Inconclusive,
    /// Measured and shown; no target to meet.
    Reported,
    /// Nothing to judge, and why.
    NoData(String),
}

impl Verdict {
    /// The verdict as a table says it.
    pub fn word(&self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Miss => "**miss**",
            Verdict::Inconclusive => "inconclusive",
            Verdict::Reported => "reported",
            Verdict::NoData(_) => "no data",
        }
    }
}
