//! `loadgen`: an honest load generator for TCP echo servers.
//!
//! What "honest" means here, and where each part lives:
//! - every echoed byte is checked against the pattern that was sent
//!   ([`pattern`]);
//! - the clock starts only once every connection is open and warmed up, and
//!   open-loop latency is measured from the *intended* send time, so a stalled
//!   server shows as many slow messages, not one ([`driver`]);
//! - the client measures its own CPU and says when it, not the server, was
//!   the bottleneck; the server's RSS, CPU and context switches are sampled
//!   from /proc ([`sampler`]);
//! - results carry their environment ([`fingerprint`]) and full histograms,
//!   so runs from several loadgen processes merge exactly ([`results`]).

pub mod charts;
pub mod cli;
pub mod compare;
pub mod compare_report;
pub mod docker;
pub mod driver;
pub mod fingerprint;
pub mod pattern;
pub mod report;
pub mod results;
pub mod sampler;
pub mod scenario;
pub mod spec;

pub use results::RunResult;
pub use spec::{Mode, RunSpec};
