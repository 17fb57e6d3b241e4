//! The environment a result was measured in, recorded with every result so
//! that numbers can be compared (or not) knowingly. Read from the machine by
//! [`crate::probe::host`].

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Fingerprint {
    pub kernel: String,
    pub cpu_model: String,
    /// CPUs online on the machine.
    pub cores: usize,
    pub loadgen_version: String,
    pub git_revision: String,
    /// loadgen's open-files soft limit during the run.
    pub fd_limit: u64,
    pub somaxconn: Option<u64>,
    pub loadgen_cpus: Vec<usize>,
    pub server_cpus: Option<Vec<usize>>,
    pub hostname: String,
    /// 1, 5 and 15-minute load averages before the run started: a busy
    /// machine makes noisy numbers.
    #[serde(default)]
    pub load_average: Option<[f64; 3]>,
}
