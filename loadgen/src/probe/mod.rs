//! Watching the server from outside while a load runs: its processes
//! through /proc ([`sampler`]), a container through the Docker Engine API
//! ([`docker`]), and the cgroup that `compare` puts each server in
//! ([`cgroup`], read at the measured window's edges by [`cgroup_watch`]).
//! Produces the data types of [`crate::results`]; knows nothing of the load.

pub mod cgroup;
pub mod cgroup_watch;
pub mod cpu;
pub mod docker;
pub mod host;
pub mod sampler;

use std::sync::Arc;

use cgroup::ServerCgroup;
use sampler::Source;

/// The server a run watches, and how: what [`crate::engine`] is handed so
/// that it can sample a server without knowing where it runs.
#[derive(Clone, Debug)]
pub struct Watch {
    pub source: Source,
    /// The server's own cgroup (with a process source): exact CPU per
    /// message and memory with the kernel's share.
    pub cgroup: Option<Arc<ServerCgroup>>,
}

impl Watch {
    /// A process on this machine, through /proc.
    pub fn process(pid: u32) -> Watch {
        Watch {
            source: Source::Process(pid),
            cgroup: None,
        }
    }

    /// The process's pid, when the server is one.
    pub fn pid(&self) -> Option<u32> {
        match self.source {
            Source::Process(pid) => Some(pid),
            Source::Container(..) => None,
        }
    }
}
