//! What the run and its workers share while the load runs: the [`Control`]
//! the caller watches (and stops the run with), and the measured [`Window`]
//! that follows from the moment every worker was connected.

use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::time::{Duration, Instant};

use crate::results::spec::RunSpec;

/// What the caller can watch and control during a run.
#[derive(Default)]
pub struct Control {
    /// Set to end the run early (Ctrl-C): results are partial.
    pub stop: Arc<AtomicBool>,
    pub established: AtomicU64,
    pub completed: AtomicU64,
    /// Set when the warm-up starts: when every worker is connected, or,
    /// with a [`crate::engine::gate::Gate`], once the server has accepted
    /// their connections.
    pub start: OnceLock<Instant>,
    /// Set when every worker is connected, under a gate (which then sets
    /// `start`).
    pub connected: OnceLock<Instant>,
    /// Whether a gate sets `start`.
    pub gated: AtomicBool,
}

impl Control {
    /// The measured window, once every worker is connected.
    pub(crate) fn window(&self, spec: &RunSpec) -> Option<Window> {
        self.start.get().map(|&start| Window::after(start, spec))
    }
}

/// The measured window: `--duration` long, from the end of the warm-up.
/// Only what completes inside it is recorded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    pub from: Instant,
    pub to: Instant,
}

impl Window {
    /// The window of a run whose workers were all connected at `start`.
    pub fn after(start: Instant, spec: &RunSpec) -> Window {
        let from = start + spec.warmup;
        Window {
            from,
            to: from + spec.duration,
        }
    }

    /// Whether `t` is inside the window (its end is not).
    pub fn contains(&self, t: Instant) -> bool {
        t >= self.from && t < self.to
    }

    /// Whether the window is over at `t`.
    pub fn is_over(&self, t: Instant) -> bool {
        t >= self.to
    }

    /// The window's length (zero if it ends before it starts: a run stopped
    /// during the warm-up).
    pub fn length(&self) -> Duration {
        self.to.saturating_duration_since(self.from)
    }

    /// The window as the sampler takes it.
    pub fn bounds(self) -> (Instant, Instant) {
        (self.from, self.to)
    }
}
