//! The CPU time of the calling thread: what the engine's workers charge to
//! the client over the measured window, and what the sampler charges to
//! each of its walks of /proc (to stay within its budget).

use std::time::Duration;

/// CPU time of the calling thread (zero if the clock cannot be read).
pub fn thread_cpu() -> Duration {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_THREAD_CPUTIME_ID)
        .map(Duration::from)
        .unwrap_or_default()
}
