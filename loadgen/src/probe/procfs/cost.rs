//! What each /proc reader of [`super`] costs on the sampling path, hand
//! parsing against the `procfs` crate, measured on a tree the size the
//! budget is about: this test process with 1000 threads and 100 child
//! processes. Each reader is timed in CPU time of the reading thread, the
//! two sides interleaved round by round so that the machine's noise falls
//! on both alike; the figure to trust is the median of per-round ratios.
//!
//! Run: `cargo test -p loadgen --release --lib procfs::cost -- --ignored
//! --nocapture` (ignored otherwise: it takes seconds and only prints).

use std::hint::black_box;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use procfs::process::Process;

use crate::probe::cpu::thread_cpu;

const THREADS: usize = 1000;
const CHILDREN: usize = 100;
const ROUNDS: usize = 15;

/// Children killed and reaped however the test ends.
struct Kids(Vec<Child>);

impl Drop for Kids {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

// The crate's side of each comparison: what a port would read.

fn stat_status_crate(pid: u32) -> Option<(u64, u64, u64, u64, f64, u64)> {
    let p = Process::new(pid as i32).ok()?;
    let stat = p.stat().ok()?;
    let status = p.status().ok()?;
    let ticks = procfs::ticks_per_second() as f64;
    Some((
        status.vmrss.unwrap_or(0) * 1024,
        status.threads,
        u64::from(status.fdsize),
        status.voluntary_ctxt_switches.unwrap_or(0),
        (stat.utime + stat.stime) as f64 / ticks + (stat.cutime + stat.cstime) as f64 / ticks,
        stat.ppid as u64,
    ))
}

fn schedstat_crate(pid: u32) -> Option<f64> {
    let p = Process::new(pid as i32).ok()?;
    Some(p.schedstat().ok()?.sum_exec_runtime as f64 / 1e9)
}

fn pss_crate(pid: u32) -> u64 {
    Process::new(pid as i32)
        .and_then(|p| p.smaps_rollup())
        .ok()
        .and_then(|r| {
            r.memory_map_rollup
                .0
                .first()
                .and_then(|m| m.extension.map.get("Pss").copied())
        })
        .unwrap_or(0)
}

fn children_crate(pid: u32) -> Vec<u32> {
    Process::new(pid as i32)
        .and_then(|p| p.task_from_tid(pid as i32))
        .and_then(|t| t.children())
        .unwrap_or_default()
}

/// As [`super::count_fds`] does.
fn fds_crate(pid: u32) -> Option<u64> {
    Process::new(pid as i32)
        .and_then(|p| p.fd_count())
        .ok()
        .map(|n| n as u64)
}

fn thread_ctxt_crate(pid: u32) -> Option<(u64, u64)> {
    let mut total = (0, 0);
    for task in Process::new(pid as i32).ok()?.tasks().ok()? {
        let Ok(status) = task.ok()?.status() else {
            continue;
        };
        total.0 += status.voluntary_ctxt_switches.unwrap_or(0);
        total.1 += status.nonvoluntary_ctxt_switches.unwrap_or(0);
    }
    Some(total)
}

/// A child as a tree walk reads it, through one `Process`: stat, status,
/// schedstat, smaps_rollup, fd count, children.
fn child_crate(pid: u32) -> Option<(u64, f64, u64, Vec<u32>)> {
    let p = Process::new(pid as i32).ok()?;
    let stat = p.stat().ok()?;
    let status = p.status().ok()?;
    let run = p.schedstat().ok()?.sum_exec_runtime as f64 / 1e9;
    let pss = p
        .smaps_rollup()
        .ok()
        .and_then(|r| {
            r.memory_map_rollup
                .0
                .first()
                .and_then(|m| m.extension.map.get("Pss").copied())
        })
        .unwrap_or(0);
    let fds = p.fd_count().ok()? as u64;
    let kids = p.task_from_tid(pid as i32).ok()?.children().ok()?;
    black_box((stat.utime, status.vmrss));
    Some((pss, run, fds, kids))
}

fn child_hand(pid: u32) -> Option<(u64, u64, Option<u64>, Vec<u32>)> {
    let f = super::read_proc(pid, true)?;
    Some((
        super::pss(pid),
        f.rss_bytes,
        super::count_fds(pid, f.fd_table),
        super::children(pid, f.threads),
    ))
}

/// One /proc file through `read_to_string`, as the hand parsers read
/// them before [`super::read`].
fn file_hand(pid: u32, name: &str) -> usize {
    std::fs::read_to_string(format!("/proc/{pid}/{name}")).map_or(0, |t| t.len())
}

fn file_once(pid: u32, name: &str) -> usize {
    super::read(format!("/proc/{pid}/{name}")).map_or(0, |t| t.len())
}

/// Open fds as counted by hand before `count_fds` took the crate's.
fn fds_listed(pid: u32) -> Option<u64> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count() as u64)
        .ok()
}

/// A reader whose result is kept from the optimiser, for the table.
fn timed<T>(f: impl Fn(u32) -> T + 'static) -> Box<dyn Fn(u32)> {
    Box::new(move |p| {
        black_box(f(p));
    })
}

/// CPU time of `f` over every pid in `pids`.
fn cpu_of(pids: &[u32], f: &dyn Fn(u32)) -> Duration {
    let t0 = thread_cpu();
    for &p in pids {
        f(p);
    }
    thread_cpu().saturating_sub(t0)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[test]
#[ignore = "a measurement: prints the cost of each reader, hand against procfs"]
fn hand_parsing_against_the_procfs_crate() {
    let (hold, held) = mpsc::channel::<()>();
    let held = std::sync::Arc::new(std::sync::Mutex::new(held));
    let threads: Vec<_> = (0..THREADS)
        .map(|_| {
            let held = std::sync::Arc::clone(&held);
            // Each waits until `hold` is dropped; bounded by the test.
            std::thread::spawn(move || {
                let _ = held
                    .lock()
                    .map(|r| r.recv_timeout(Duration::from_secs(120)));
            })
        })
        .collect();
    let kids = Kids(
        (0..CHILDREN)
            .map(|_| {
                Command::new("sleep")
                    .arg("120")
                    .stdin(Stdio::null())
                    .spawn()
                    .expect("spawn sleep")
            })
            .collect(),
    );
    let me = std::process::id();
    let children: Vec<u32> = kids.0.iter().map(Child::id).collect();
    let one = [me];
    type Reader<'a> = (&'a str, &'a [u32], Box<dyn Fn(u32)>, Box<dyn Fn(u32)>);
    let readers: [Reader; 11] = [
        (
            "root read_proc | its 2 reads alone",
            &one,
            timed(|p| super::read_proc(p, false)),
            timed(|p| (file_once(p, "status"), file_once(p, "stat"))),
        ),
        (
            "root stat: read_to_string | read",
            &one,
            timed(|p| file_hand(p, "stat")),
            timed(|p| file_once(p, "stat")),
        ),
        (
            "root status: read_to_string | read",
            &one,
            timed(|p| file_hand(p, "status")),
            timed(|p| file_once(p, "status")),
        ),
        (
            "whole child, as a tree walk reads it",
            &children,
            timed(child_hand),
            timed(child_crate),
        ),
        (
            "stat+status, child",
            &children,
            timed(|p| super::read_proc(p, false)),
            timed(stat_status_crate),
        ),
        (
            "stat+status, 1000-thread root",
            &one,
            timed(|p| super::read_proc(p, false)),
            timed(stat_status_crate),
        ),
        (
            "schedstat, child",
            &children,
            timed(super::schedstat_s),
            timed(schedstat_crate),
        ),
        (
            "smaps_rollup Pss, child",
            &children,
            timed(super::pss),
            timed(pss_crate),
        ),
        (
            "task children, child",
            &children,
            timed(|p| super::children(p, 1)),
            timed(children_crate),
        ),
        (
            "fd count, child",
            &children,
            timed(fds_listed),
            timed(fds_crate),
        ),
        (
            "ctxt over 1000 threads' status",
            &one,
            timed(super::thread_ctxt),
            timed(thread_ctxt_crate),
        ),
    ];
    let mut hand = vec![Vec::new(); readers.len()];
    let mut krate = vec![Vec::new(); readers.len()];
    for round in 0..ROUNDS {
        for (i, (_, pids, h, c)) in readers.iter().enumerate() {
            // Alternate which side goes first, against warm-cache bias.
            let (a, b) = if round % 2 == 0 {
                (cpu_of(pids, h), cpu_of(pids, c))
            } else {
                let b = cpu_of(pids, c);
                (cpu_of(pids, h), b)
            };
            let per = |d: Duration| d.as_secs_f64() * 1e6 / pids.len() as f64;
            hand[i].push(per(a));
            krate[i].push(per(b));
        }
    }
    println!(
        "median CPU us per read over {ROUNDS} interleaved rounds; ratio = median of procfs/hand per round"
    );
    for (i, (name, ..)) in readers.iter().enumerate() {
        let ratios: Vec<f64> = hand[i].iter().zip(&krate[i]).map(|(h, c)| c / h).collect();
        println!(
            "{name:34} hand {:8.1}  procfs {:8.1}  ratio {:.2}",
            median(hand[i].clone()),
            median(krate[i].clone()),
            median(ratios)
        );
    }
    drop(hold);
    for t in threads {
        let _ = t.join();
    }
    drop(kids);
}
