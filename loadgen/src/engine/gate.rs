//! Holding the warm-up back until the server has taken every connection
//! (`reach`): a connect completes in the kernel, which queues it in the
//! server's listen queue until the server accepts it, so a server that
//! forks a process per connection may still be accepting thousands of
//! them when loadgen's last connect returns. Measured then, its active
//! connections wait behind the queue and the step would read as a latency
//! wall that is only a server catching up.
//!
//! The caller says how many connections are still waiting for the server;
//! the run's `Control::start` (the warm-up) is set once
//! none is, or once the count has not fallen for [`Gate::stall`] (the
//! server stopped accepting: a wall, and the step's evidence says so), or
//! after [`Gate::limit`] in all.

use std::time::{Duration, Instant};

use super::control::Control;

/// A count of connections read from the kernel (still waiting for the
/// server to accept them; held by the server's side); None: it cannot be
/// told (the run is then not held back).
pub type CountFn = Box<dyn FnMut() -> Option<u64>>;

/// How the warm-up is held back, and what the wait came to.
pub struct Gate {
    waiting: CountFn,
    /// Read once the wait is over: the connections the server's side holds
    /// (accepted or queued).
    held: CountFn,
    /// The count did not fall for this long: the server stopped accepting.
    pub stall: Duration,
    /// At most this long in all.
    pub limit: Duration,
    /// When the last connect completed, and the lowest count since then
    /// and when it was first seen.
    began: Option<Instant>,
    lowest: Option<(u64, Instant)>,
    /// Set once the warm-up may start: how long it was held, how many
    /// connections were still waiting, and how many the server's side held.
    pub outcome: Option<Outcome>,
}

/// What a gate's wait came to.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Outcome {
    pub waited: Duration,
    pub left: u64,
    pub server_held: Option<u64>,
}

impl Gate {
    pub fn new(waiting: CountFn, held: CountFn, stall: Duration, limit: Duration) -> Gate {
        Gate {
            waiting,
            held,
            stall,
            limit,
            began: None,
            lowest: None,
            outcome: None,
        }
    }

    /// Called every tick of the run: once every connection is open, starts
    /// the warm-up when the server has accepted them all (or stalled, or
    /// the limit passed).
    pub(crate) fn check(&mut self, control: &Control) {
        if self.outcome.is_some() {
            return;
        }
        let Some(&connected) = control.connected.get() else {
            return;
        };
        let now = Instant::now();
        let began = *self.began.get_or_insert(now);
        let left = (self.waiting)();
        let lowest = match (left, self.lowest) {
            (Some(n), Some((low, _))) if n >= low => self.lowest,
            (Some(n), _) => Some((n, now)),
            (None, _) => None,
        };
        self.lowest = lowest;
        let done = match (left, lowest) {
            (None, _) | (Some(0), _) => true,
            (Some(_), Some((_, since))) => now - since >= self.stall || now - began >= self.limit,
            (Some(_), None) => true,
        };
        if done {
            self.outcome = Some(Outcome {
                waited: now - connected,
                left: left.unwrap_or(0),
                server_held: (self.held)(),
            });
            let _ = control.start.set(now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use std::rc::Rc;

    fn gate(counts: Rc<Cell<Option<u64>>>, stall_ms: u64) -> Gate {
        Gate::new(
            Box::new(move || counts.get()),
            Box::new(|| Some(7)),
            Duration::from_millis(stall_ms),
            Duration::from_secs(60),
        )
    }

    #[test]
    fn the_warm_up_waits_for_the_queue_to_empty() {
        let control = Control::default();
        let counts = Rc::new(Cell::new(Some(500)));
        let mut g = gate(Rc::clone(&counts), 10_000);
        g.check(&control);
        assert!(control.start.get().is_none(), "not before every connect");
        let _ = control.connected.set(Instant::now());
        g.check(&control);
        assert!(control.start.get().is_none(), "500 still queued");
        counts.set(Some(0));
        g.check(&control);
        assert!(control.start.get().is_some());
        assert_eq!(g.outcome.map(|o| o.left), Some(0));
        assert_eq!(g.outcome.and_then(|o| o.server_held), Some(7));
    }

    #[test]
    fn a_queue_that_stops_falling_ends_the_wait_with_what_is_left() {
        let control = Control::default();
        let _ = control.connected.set(Instant::now());
        let counts = Rc::new(Cell::new(Some(70)));
        let mut g = gate(Rc::clone(&counts), 30);
        g.check(&control);
        counts.set(Some(40));
        g.check(&control);
        assert!(control.start.get().is_none(), "still falling");
        // Not falling for longer than the stall (bounded: at most 100 checks).
        for _ in 0..100 {
            std::thread::sleep(Duration::from_millis(5));
            g.check(&control);
            if control.start.get().is_some() {
                break;
            }
        }
        assert_eq!(g.outcome.map(|o| o.left), Some(40));
    }

    #[test]
    fn a_count_that_cannot_be_read_holds_nothing_back() {
        let control = Control::default();
        let _ = control.connected.set(Instant::now());
        let mut g = gate(Rc::new(Cell::new(None)), 10_000);
        g.check(&control);
        assert!(control.start.get().is_some());
    }
}
