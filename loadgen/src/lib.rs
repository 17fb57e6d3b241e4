//! `loadgen`: an honest load generator for TCP echo servers.
//!
//! What "honest" means here, and where each part lives:
//! - every echoed byte is checked against the pattern that was sent
//!   ([`pattern`]);
//! - the clock starts only once every connection is open and warmed up, and
//!   open-loop latency is measured from the *intended* send time, so a stalled
//!   server shows as many slow messages, not one ([`driver`]);
//! - every connection's wait for its first reply is recorded, and the
//!   connections that never got one are counted, so a server that queues
//!   connections cannot hide them behind the ones it serves ([`driver`]);
//! - the client measures its own CPU and says when it, not the server, was
//!   the bottleneck; the server's memory, CPU and context switches are
//!   sampled from /proc, over its whole process tree when it forks, within a
//!   CPU budget ([`sampler`]); a server that `compare` starts runs in a
//!   cgroup of its own, which gives its exact CPU time per message and its
//!   memory with the kernel's share, and can cap its CPU ([`cgroup`]);
//! - results carry their environment ([`fingerprint`]) and full histograms,
//!   so runs from several loadgen processes merge exactly ([`results`]).

pub mod cgroup;
pub mod cgroup_stats;
pub mod charts;
pub mod cli;
pub mod compare;
pub mod compare_cost;
pub mod compare_report;
pub mod docker;
pub mod driver;
pub mod fingerprint;
pub mod pattern;
pub mod perf;
pub mod report;
pub mod results;
pub mod sampler;
pub mod scenario;
pub mod spec;
pub mod variant;

pub use results::RunResult;
pub use spec::{Mode, RunSpec};
