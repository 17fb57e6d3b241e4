//! The absolute noise floors: a figure near zero needs a change past its
//! unit's floor as well as its kind's factor for a verdict.

use loadgen::RunResult;
use loadgen::report::diff::{Diff, Verdict, text};

use super::{SCALE20, cell, fixture, msgs, p99, set};

/// A figure near zero moves by large factors for nothing (a clock tick of
/// CPU, a page of memory over the connections, a wake-up of latency): a
/// change must also pass its kind's absolute floor, in the figure's own
/// unit (the longest stall is in ms, the other latencies in µs).
#[test]
fn near_zero_figures_need_a_change_past_the_absolute_floor_too() {
    type Put = fn(&mut RunResult, f64);
    type Case<'a> = (
        &'a str,
        (&'a str, &'a str, &'a str),
        Put,
        [f64; 2],
        [f64; 2],
    );
    const IDLE: (&str, &str, &str) = ("reactor", "idle", "idle=");
    const LIGHT: (&str, &str, &str) = ("epoll", "fairness", "light");
    let cpu_percent: Put = |r, v| r.server.as_mut().unwrap().cpu_percent = v;
    let cpu_per_msg: Put = |r, v| {
        let cg = r.server.as_mut().and_then(|s| s.cgroup.as_mut());
        cg.expect("the fixture ran in cgroups").cpu_us_per_msg = Some(v);
    };
    let rss: Put = |r, v| r.server.as_mut().unwrap().rss_per_conn_bytes = v;
    let stall: Put = |r, v| r.fairness.longest_stall_ms = v;
    let jain: Put = |r, v| r.fairness.jain_index = v;
    // (figure, point, setter, a value, a value next to nothing apart from
    // it, a value beyond noise of it): each a factor of 2.2 or more away.
    let cases: [(Case, [f64; 2]); 7] = [
        (
            ("server CPU", IDLE, cpu_percent, [3.0, 3.0], [0.5, 0.5]),
            [30.0, 30.0],
        ),
        (
            (
                "server CPU/msg",
                SCALE20,
                cpu_per_msg,
                [0.3, 0.3],
                [0.9, 0.9],
            ),
            [5.0, 5.0],
        ),
        (
            ("p99", SCALE20, p99, [20.0, 20.0], [45.0, 45.0]),
            [500.0, 500.0],
        ),
        (
            ("memory/conn", IDLE, rss, [61.0, 61.0], [20.0, 20.0]),
            [4096.0, 4096.0],
        ),
        (
            (
                "light longest stall",
                LIGHT,
                stall,
                [0.02, 0.02],
                [0.045, 0.045],
            ),
            [2.0, 2.0],
        ),
        (
            (
                "light Jain index",
                LIGHT,
                jain,
                [0.01, 0.01],
                [0.025, 0.025],
            ),
            [0.9, 0.9],
        ),
        (
            ("msg/s", SCALE20, msgs, [2.0, 2.0], [8.0, 8.0]),
            [2000.0, 2000.0],
        ),
    ];
    for ((figure, at, put, old, near), far) in cases {
        let judged = |old: &[f64], new: &[f64]| {
            let (mut a, mut b) = (fixture(), fixture());
            set(&mut a, at, old, put);
            set(&mut b, at, new, put);
            let d = Diff::new(&a, &b, "a", "b");
            cell(&d, at.0, at.1, at.2, figure).verdict
        };
        assert_eq!(
            judged(&old, &near),
            Verdict::WithinNoise,
            "{figure}: {old:?} -> {near:?}"
        );
        assert_eq!(
            judged(&near, &old),
            Verdict::WithinNoise,
            "{figure}: {near:?} -> {old:?}"
        );
        let moved = judged(&old, &far);
        assert!(
            matches!(moved, Verdict::Improved | Verdict::Regressed),
            "{figure}: {old:?} -> {far:?}: {moved:?}"
        );
    }
    // From 0, a move within the floor is noise too, not "from 0".
    let (mut a, mut b) = (fixture(), fixture());
    set(&mut a, IDLE, &[0.0, 0.0], cpu_percent);
    set(&mut b, IDLE, &[3.3, 3.3], cpu_percent);
    let d = Diff::new(&a, &b, "a", "b");
    assert_eq!(
        cell(&d, IDLE.0, IDLE.1, IDLE.2, "server CPU").verdict,
        Verdict::WithinNoise
    );
    // The text states the absolute floors beside the relative ones.
    let md = text::markdown(&d);
    for floor in [
        "10/s",
        "50 µs",
        "1.0 µs a message",
        "5 points of a core",
        "0.5 KiB a connection",
        "0.02 of Jain's index",
    ] {
        assert!(md.contains(floor), "{floor}: {md}");
    }
}
