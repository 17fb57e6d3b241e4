//! Side-by-side pairs: where the profile asks for it (perf), a style's run
//! at a scale point is measured *at the same time* as a run of a fresh
//! reference (epoll) server, each server in its own cgroup on the server
//! CPUs, each driven by its own engine thread on the client CPUs, the two
//! measured windows starting together ([`Rendezvous`]). The style's ratio
//! to epoll is then read against that partner run
//! ([`crate::report::view::View::scale_spread`]), not against epoll's own
//! run a few seconds earlier.
//!
//! Why: on this project's shared 2-vCPU VM a server's cost per message
//! moves ±15% from one 3-second window to the next, and the client's with
//! it: the machine is faster or slower for everyone at once. Two runs
//! measured over the same seconds see the same machine. Measured here, an
//! epoll/epoll pair at 50 connections, 6 rounds each, interleaved: one
//! after the other the ratio ranged 0.96-1.22 (stdev 0.095); side by side
//! 0.998-1.012 (stdev 0.006).
//!
//! The reference's own cells (its row, its rate) still come from its run
//! alone; a partner run is tagged [`crate::results::Tags::partner_of`] and
//! is only ever a denominator.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use super::cgroups::quota_for;
use super::options::CompareOptions;
use super::scenarios::Step;
use super::{Round, ServerRecord};
use crate::results::RunResult;

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
const MEET_LIMIT: Duration = Duration::from_secs(60);

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
struct Leaving<'a>(&'a Rendezvous);

impl Drop for Leaving<'_> {
    fn drop(&mut self) {
        self.0.leave();
    }
}

/// Whether `style`'s `step` runs beside a reference server: the profile
/// asks for pairs, the step is a scale point, the style is ours to start
/// (not `--target`) and not the reference, the reference is in the
/// comparison, both servers get cgroups (`cgroups`) with a CPU quota
/// (unquoted, two servers would share the CPU thread by thread, and a
/// many-threaded style would take more of it than epoll), and both runs'
/// sockets fit in this one process's open-file limit (10,000 connections
/// twice do not fit in 20,000: those points run one at a time, as without
/// pairs).
pub fn pairs(opts: &CompareOptions, cgroups: bool, style: &str, step: Step) -> bool {
    let reference = crate::report::view::reference();
    let Step::Scale { conns, .. } = step else {
        return false;
    };
    opts.profile.side_by_side
        && style != reference
        && opts.targets.is_empty()
        && opts.styles.iter().any(|s| s == reference)
        && cgroups
        && quota_for(opts, style).is_some()
        && quota_for(opts, reference).is_some()
        && 2 * conns + FD_SLACK <= fd_limit()
}

/// Open files a run needs beside its connections (the server's pipes,
/// /proc reads, the results).
const FD_SLACK: usize = 256;

fn fd_limit() -> usize {
    nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .map(|(soft, _)| usize::try_from(soft).unwrap_or(usize::MAX))
        .unwrap_or(1024)
}

/// How many partner runs a round adds: one per paired unit.
pub fn extra_runs(opts: &CompareOptions, cgroups: bool, units: &[(String, Option<Step>)]) -> usize {
    units
        .iter()
        .filter(|(st, step)| step.is_some_and(|s| pairs(opts, cgroups, st, s)))
        .count()
}

/// `style`'s `step` on a fresh server, measured over the same seconds as
/// a fresh reference server's; both servers' records and runs are kept,
/// the reference's runs tagged as `style`'s partner. Where the reference
/// server did not start, the style still runs, alone.
pub(super) fn compare_pair(
    round: &Round,
    style: &str,
    step: Step,
    runs: &mut Vec<RunResult>,
    servers: &mut Vec<ServerRecord>,
) {
    let reference = crate::report::view::reference();
    let phase = step.name();
    let rv = Arc::new(Rendezvous::new());
    let (mut own_runs, mut own_servers) = (Vec::new(), Vec::new());
    let mut paired = false;
    let mut partner = |ref_env: &mut super::env::Env| {
        paired = true;
        ref_env.rendezvous = Some(Arc::clone(&rv));
        ref_env.partner_of = Some(style.to_string());
        let mut partner_runs = Vec::new();
        let mut own = |env: &mut super::env::Env| {
            env.rendezvous = Some(Arc::clone(&rv));
            std::thread::scope(|s| {
                let other = s.spawn(|| {
                    let _leaving = Leaving(&rv);
                    step.run(ref_env)
                });
                let got = {
                    let _leaving = Leaving(&rv);
                    step.run(env)
                };
                partner_runs = other.join().unwrap_or_else(|_| {
                    note!("loadgen: {style}: the side-by-side reference run panicked");
                    Vec::new()
                });
                got
            })
        };
        round.on_server(
            style,
            &phase,
            None,
            &mut own,
            &mut own_runs,
            &mut own_servers,
        );
        partner_runs
    };
    let partner_phase = format!("{phase} beside {style}");
    let before = runs.len();
    round.on_server(reference, &partner_phase, None, &mut partner, runs, servers);
    if !paired {
        note!("loadgen: {style}: {phase}: no {reference} server to run beside; running it alone");
        return super::compare_step(round, style, step, runs, servers);
    }
    if round.opts.client_cpus.len() == 1 {
        shared_client(&mut runs[before..], &mut own_runs);
    }
    runs.append(&mut own_runs);
    servers.append(&mut own_servers);
}

/// The two engines of a pair shared one client CPU: each thread's own
/// busy share says little, their sum says whether loadgen was the limit.
/// Both runs are marked client-bound when it passed the engine's mark.
/// `partners` are the reference's runs of this pair, `own` the style's.
fn shared_client(partners: &mut [RunResult], own: &mut [RunResult]) {
    let (Some(partner), Some(mine)) = (
        partners
            .iter_mut()
            .rev()
            .find(|r| r.tags.as_ref().is_some_and(|t| t.is_partner())),
        own.last_mut(),
    ) else {
        return;
    };
    let busy = partner.client.busy_max + mine.client.busy_max;
    if busy > crate::engine::CLIENT_BOUND {
        partner.client.client_bound = true;
        mine.client.client_bound = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
