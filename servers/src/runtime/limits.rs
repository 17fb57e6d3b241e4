//! Process limits: the open-files limit decides how many connections a
//! server or client can hold, so it is raised at start-up and reported.

use nix::sys::resource::{Resource, getrlimit, setrlimit};

/// The open-files limit before and after [`raise_nofile_limit`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NofileLimit {
    pub before: u64,
    pub soft: u64,
    pub hard: u64,
}

impl NofileLimit {
    /// True when the soft limit was raised.
    pub fn raised(&self) -> bool {
        self.soft > self.before
    }
}

/// Raises the RLIMIT_NOFILE soft limit to the hard limit.
pub fn raise_nofile_limit() -> nix::Result<NofileLimit> {
    let (before, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    if before < hard {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard)?;
    }
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    Ok(NofileLimit { before, soft, hard })
}
