//! Watching the server from outside while a load runs: its processes
//! through /proc ([`procfs`], read on the [`sampler`]'s thread and summed
//! up by [`summary`]), a container through the Docker Engine API
//! ([`docker`]), and the cgroup that `compare` puts each server in
//! ([`cgroup`], its files through [`cgroup_fs`], read at the measured
//! window's edges by [`cgroup_watch`]), the kernel's counts of the
//! server's system calls and context switches ([`counters`]), and the
//! kernel's memory for the connections by slab cache ([`slab`], its
//! counters read by [`slab_read`]), and CPU time on the run's CPUs that is
//! none of the comparison's own ([`foreign`]), and, once at a run's end,
//! the server against the limits a connection can run into ([`limits`]). Produces the data types of
//! [`crate::results`]; knows nothing of the load.

pub mod cgroup;
pub mod cgroup_fs;
pub mod cgroup_perf;
pub mod cgroup_watch;
pub mod counters;
pub mod cpu;
pub mod docker;
pub mod foreign;
pub mod host;
pub mod limits;
pub mod procfs;
pub mod sampler;
pub mod slab;
pub mod slab_read;
pub mod source;
pub mod summary;

pub use source::Watch;
