//! A run's foreign load: CPU time on its CPUs during its measured window
//! that belonged to none of the comparison's own processes (measured by
//! [`crate::probe::foreign`]), and whether that made the run disturbed.

use serde::{Deserialize, Serialize};

/// The run's CPUs' busy time over the window and whose it was.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ForeignLoad {
    /// The CPUs read (the servers' and loadgen's).
    pub cpus: Vec<usize>,
    /// Seconds between the two readings.
    pub window_s: f64,
    /// Busy time of those CPUs (/proc/stat: user, nice, system, irq,
    /// softirq, steal), CPU-seconds: tick-sampled.
    pub busy_cpu_s: f64,
    /// The comparison's server cgroups' CPU time (exact).
    pub servers_cpu_s: f64,
    /// loadgen's own CPU time, and any client process of its (exact).
    pub loadgen_cpu_s: f64,
    /// What remains: busy, less the servers and loadgen (never below 0).
    pub foreign_cpu_s: f64,
    /// `foreign_cpu_s` over the CPUs' time in the window (`window_s` ×
    /// CPUs): 0.5 is half of them.
    pub share: f64,
}
