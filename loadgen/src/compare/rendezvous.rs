//! Where the two runs of a side-by-side pair ([`crate::compare::pair`])
//! meet before measuring, so that their windows start together: a
//! two-party rendezvous, bounded in time, that a side leaves when it ends
//! (however it ends) and that Ctrl-C releases.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

/// Two runs meet here before measuring, so their windows start together.
/// Bounded: a partner that never comes (its server did not start, it was
/// interrupted) is waited for at most [`MEET_LIMIT`], and one that has
/// ended ([`Rendezvous::leave`]) not at all.
#[derive(Default)]
pub struct Rendezvous {
    state: Mutex<MeetState>,
    met: Condvar,
}

#[derive(Default)]
struct MeetState {
    waiting: usize,
    generation: u64,
    left: bool,
}

/// The longest one run waits for its partner's.
pub const MEET_LIMIT: Duration = Duration::from_secs(60);

impl Rendezvous {
    pub fn new() -> Rendezvous {
        Rendezvous::default()
    }

    /// Waits until the partner's run arrives too; false (after saying so)
    /// where it did not (it ended first, it did not come within
    /// [`MEET_LIMIT`], or `stop` was set: Ctrl-C).
    pub fn meet(&self, label: &str, stop: &AtomicBool) -> bool {
        self.meet_within(label, MEET_LIMIT, stop)
    }

    fn meet_within(&self, label: &str, limit: Duration, stop: &AtomicBool) -> bool {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if st.left {
            note!("loadgen: {label}: its side-by-side partner had ended; it ran alone");
            return false;
        }
        st.waiting += 1;
        if st.waiting == 2 {
            st.waiting = 0;
            st.generation += 1;
            self.met.notify_all();
            return true;
        }
        let generation = st.generation;
        let deadline = Instant::now() + limit;
        loop {
            if st.generation != generation {
                return true;
            }
            let now = Instant::now();
            if st.left || now >= deadline || stop.load(Ordering::Relaxed) {
                st.waiting -= 1;
                note!(
                    "loadgen: {label}: its side-by-side partner {}; it ran alone",
                    if st.left {
                        "ended first"
                    } else if stop.load(Ordering::Relaxed) {
                        "was stopped"
                    } else {
                        "did not come"
                    }
                );
                return false;
            }
            // In slices, so that Ctrl-C is seen.
            st = self
                .met
                .wait_timeout(st, (deadline - now).min(Duration::from_millis(100)))
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    /// This side is done: its partner no longer waits for it.
    pub fn leave(&self) {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        st.left = true;
        self.met.notify_all();
    }
}

/// Leaves the rendezvous when dropped, so that a side that ends any way
/// (a panic included) releases its partner at once.
pub struct Leaving<'a>(pub &'a Rendezvous);

impl Drop for Leaving<'_> {
    fn drop(&mut self) {
        self.0.leave();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn two_runs_meet_and_go_together() {
        let rv = Arc::new(Rendezvous::new());
        let other = {
            let rv = Arc::clone(&rv);
            std::thread::spawn(move || {
                rv.meet_within("b", Duration::from_secs(10), &AtomicBool::new(false))
            })
        };
        assert!(rv.meet_within("a", Duration::from_secs(10), &AtomicBool::new(false)));
        assert!(other.join().unwrap());
    }

    #[test]
    fn a_partner_that_never_comes_is_waited_for_a_bounded_time() {
        let rv = Rendezvous::new();
        let t = Instant::now();
        assert!(!rv.meet_within("a", Duration::from_millis(50), &AtomicBool::new(false)));
        assert!(t.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn ctrl_c_releases_a_waiting_run() {
        let rv = Rendezvous::new();
        let stop = AtomicBool::new(true);
        let t = Instant::now();
        assert!(!rv.meet_within("a", Duration::from_secs(30), &stop));
        assert!(t.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn a_partner_that_ended_releases_the_waiting_run() {
        let rv = Arc::new(Rendezvous::new());
        let waiting = {
            let rv = Arc::clone(&rv);
            std::thread::spawn(move || {
                rv.meet_within("a", Duration::from_secs(30), &AtomicBool::new(false))
            })
        };
        // Leave once the other side waits (bounded: 10 s at most).
        let until = Instant::now() + Duration::from_secs(10);
        while rv.state.lock().unwrap().waiting == 0 && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(1));
        }
        rv.leave();
        assert!(!waiting.join().unwrap());
        assert!(!rv.meet_within("b", Duration::from_secs(30), &AtomicBool::new(false)));
    }
}
