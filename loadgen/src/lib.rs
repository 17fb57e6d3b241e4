//! `loadgen`: an honest load generator for TCP echo servers.
//!
//! What "honest" means here, and where each part lives:
//! - every echoed byte is checked against the pattern that was sent
//!   ([`engine::pattern`]);
//! - the clock starts only once every connection is open and warmed up, and
//!   open-loop latency is measured from the *intended* send time, so a stalled
//!   server shows as many slow messages, not one ([`engine`]);
//! - every connection's wait for its first reply is recorded, and the
//!   connections that never got one are counted, so a server that queues
//!   connections cannot hide them behind the ones it serves ([`engine`]);
//! - the client measures its own CPU and says when it, not the server, was
//!   the bottleneck; the server's memory, CPU and context switches are
//!   sampled from /proc, over its whole process tree when it forks, within a
//!   CPU budget ([`probe::sampler`]); a server that `compare` starts runs in a
//!   cgroup of its own, which gives its exact CPU time per message and its
//!   memory with the kernel's share, and can cap its CPU ([`probe::cgroup`]);
//! - results carry their environment ([`results::fingerprint`]) and full histograms,
//!   so runs from several loadgen processes merge exactly ([`results`]).

//!
//! The modules, each depending only on those listed before it:
//! - [`results`]: the data of one run (spec, figures, histograms, the
//!   server's figures, the environment) and its JSON schema;
//! - [`probe`]: the server watched from outside (/proc, Docker, cgroups);
//! - [`engine`]: one load against one address, to a [`RunResult`];
//! - [`compare`]: every style through every scenario, to a comparison's
//!   results (it writes no files);
//! - [`soak`]: each style's server under a long mixed load, its memory,
//!   fds and threads sampled and their trends judged (it writes no files);
//! - [`report`]: what people read (text, JSON, CSV, markdown, charts);
//! - [`cli`]: the commands, calling the rest.

/// Set when a line could not be written to stderr (its reader is gone):
/// `compare` then ends as on Ctrl-C, with its report, and exits non-zero.
#[doc(hidden)]
pub static STDERR_LOST: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// `eprintln!` that never panics: with stderr closed (`2>&-`, a pipe whose
/// reader is gone) the line is lost and [`STDERR_LOST`] set, but not the
/// run, its servers or its report.
macro_rules! note {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if writeln!(std::io::stderr(), $($arg)*).is_err() {
            $crate::STDERR_LOST.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    }};
}

pub mod cli;
pub mod compare;
pub mod engine;
pub mod probe;
pub mod report;
pub mod results;
pub mod soak;

pub use results::RunResult;
pub use results::spec::{Mode, RunSpec};
