//! What a run samples: a process on this machine, read from /proc by
//! [`crate::probe::procfs`], or a container, through the Docker Engine API
//! ([`crate::probe::docker`]). [`crate::probe::sampler`] reads it on its
//! thread; [`Watch`] names it for the engine.

use std::sync::Arc;
use std::time::Duration;

use crate::probe::cgroup::ServerCgroup;
use crate::probe::counters::ServerCounters;
use crate::probe::docker::Docker;
use crate::probe::procfs::{Sample, read_tree};

/// What to sample.
#[derive(Clone, Debug)]
pub enum Source {
    /// A process on this machine, through /proc.
    Process(u32),
    /// A container, through the Docker Engine API.
    Container(Docker, String),
}

impl Source {
    /// One sample; `tree`: read the whole process tree even if the server
    /// has no children now (once it has had some, every sample does);
    /// `cpu_only`: of a tree, only what CPU rates need.
    pub(crate) fn read(&self, tree: bool, cpu_only: bool) -> Option<Sample> {
        match self {
            Source::Process(pid) => read_tree(*pid, tree, cpu_only && tree),
            Source::Container(docker, name) => docker.sample(name).ok().map(|c| Sample {
                rss_bytes: c.memory_bytes,
                threads: c.pids,
                user_s: c.cpu_s,
                ..Sample::default()
            }),
        }
    }

    /// How often to sample: /proc is cheap; the Engine's stats call is not
    /// (about 0.7 s of dockerd's work here), so containers get 1 Hz.
    pub fn interval(&self) -> Duration {
        match self {
            Source::Process(_) => Duration::from_millis(100),
            Source::Container(..) => Duration::from_secs(1),
        }
    }
}

/// The server a run watches, and how: what [`crate::engine`] is handed so
/// that it can sample a server without knowing where it runs.
#[derive(Clone, Debug)]
pub struct Watch {
    pub source: Source,
    /// The server's own cgroup (with a process source): exact CPU per
    /// message and memory with the kernel's share.
    pub cgroup: Option<Arc<ServerCgroup>>,
    /// The kernel's counters on the server's tree (with a process source),
    /// open since the server started ([`crate::probe::counters`]); None:
    /// not counted (a process loadgen did not start).
    pub counters: Option<Arc<ServerCounters>>,
    /// Also break the kernel's memory for the connections down by slab
    /// cache ([`crate::probe::slab`]): a few hundred ms of reading at each
    /// end of the run, worth it where memory per connection is the point.
    pub kernel_breakdown: bool,
    /// Also read the server against the limits a connection can run into,
    /// once at the run's end ([`crate::probe::limits`]): `reach`'s steps.
    pub limits: bool,
}

impl Watch {
    /// A process on this machine, through /proc.
    pub fn process(pid: u32) -> Watch {
        Watch {
            source: Source::Process(pid),
            cgroup: None,
            counters: None,
            kernel_breakdown: false,
            limits: false,
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
