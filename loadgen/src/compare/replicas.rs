//! Several loadgen processes running one comparison at once against the
//! same servers (replicas of a Docker Swarm service, say), as one client:
//! [`ReplicaSync`] holds each run back until every replica has reached it,
//! so their runs overlap in time, and [`merge`] adds their results up run
//! by run (`loadgen merge --comparisons`) into the `results.json` that a
//! single `compare` would have written.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::compare::model::CompareResults;
use crate::results::RunResult;
use crate::results::merge::{Part, merge_parts};
use crate::results::spec::Mode;

/// A barrier between replicas through a folder they share: before its
/// n-th run each replica writes a file named after itself in `DIR/n/` and
/// waits for `count` files there. Files, because replicas on several
/// machines share nothing else but the volume their results go to (and
/// polling, because inotify does not see another machine's writes to a
/// network volume).
#[derive(Debug)]
pub struct ReplicaSync {
    dir: PathBuf,
    count: usize,
    me: String,
    limit: Duration,
    next: AtomicUsize,
    /// Set when a wait ran out: a replica is missing (it failed), so the
    /// others go on without waiting again.
    given_up: AtomicBool,
}

/// The longest a replica waits for the others at one run: their start
/// (containers on several nodes) and a run's connect phase may differ by
/// seconds, not by this.
pub const WAIT_LIMIT: Duration = Duration::from_secs(60);

/// How often a waiting replica looks at the folder again.
const POLL: Duration = Duration::from_millis(2);

/// The barrier of this process (`compare --replicas`): one process runs
/// one comparison, and every run of it, whatever scenario starts it, waits
/// here ([`before_run`]).
static SYNC: OnceLock<ReplicaSync> = OnceLock::new();

impl ReplicaSync {
    /// `me` must differ between the replicas.
    pub fn new(dir: &Path, count: usize, me: &str, limit: Duration) -> ReplicaSync {
        ReplicaSync {
            dir: dir.to_path_buf(),
            count,
            me: me.to_string(),
            limit,
            next: AtomicUsize::new(0),
            given_up: AtomicBool::new(false),
        }
    }

    /// Makes this the process's barrier; false if one was set already.
    pub fn install(self) -> bool {
        SYNC.set(self).is_ok()
    }

    /// Waits until every replica has reached this run (or the wait runs
    /// out: then says so, and never waits again). Returns how many were
    /// there.
    pub fn wait(&self, label: &str) -> usize {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let dir = self.dir.join(format!("{n:05}"));
        let arrived = std::fs::create_dir_all(&dir)
            .and_then(|()| std::fs::write(dir.join(&self.me), label.as_bytes()));
        if let Err(e) = arrived {
            self.give_up(format_args!("cannot write to {}: {e}", dir.display()));
            return 1;
        }
        if self.given_up.load(Ordering::Relaxed) {
            return 1;
        }
        let start = Instant::now();
        loop {
            let here = std::fs::read_dir(&dir).map(|d| d.count()).unwrap_or(0);
            if here >= self.count {
                return here;
            }
            if start.elapsed() >= self.limit {
                self.give_up(format_args!(
                    "{here} of {} replicas reached run {n} ({label}) within {:.0} s",
                    self.count,
                    self.limit.as_secs_f64()
                ));
                return here;
            }
            std::thread::sleep(POLL);
        }
    }

    fn give_up(&self, why: std::fmt::Arguments) {
        if !self.given_up.swap(true, Ordering::Relaxed) {
            note!(
                "loadgen compare: warning: replicas out of step ({why}); going on alone: \
                 the merge of these runs would add up figures measured at different times"
            );
        }
    }
}

/// Called before every run of a comparison: waits for the other replicas
/// when this process is one of several (`compare --replicas`).
pub fn before_run(label: &str) {
    if let Some(sync) = SYNC.get() {
        sync.wait(label);
    }
}

/// One replica's comparison and the name (a file) messages give it.
pub struct Replica {
    pub name: String,
    pub results: CompareResults,
}

/// The comparisons of several replicas as one: replicas of the same
/// styles (in their order of first appearance) have their runs merged run
/// by run ([`merge_parts`]: histograms added, throughputs summed), each run
/// with the same tags in every replica; different styles are then put one
/// after the other, as `compare` lists them. Refuses results that do not
/// line up (another profile, a run missing in one replica) and, unless
/// `force`, runs that do not add up.
pub fn merge(replicas: &[Replica], force: bool) -> anyhow::Result<CompareResults> {
    let Some(first) = replicas.first() else {
        anyhow::bail!("no comparison to merge");
    };
    let mut groups: Vec<Vec<&Replica>> = Vec::new();
    for r in replicas {
        let same = |g: &Vec<&Replica>| g[0].results.styles == r.results.styles;
        match groups.iter_mut().find(|g| same(g)) {
            Some(g) => g.push(r),
            None => groups.push(vec![r]),
        }
        for (what, a, b) in [
            ("profile", &first.results.profile, &r.results.profile),
            ("network", &first.results.network, &r.results.network),
        ] {
            if a != b {
                anyhow::bail!("{what} differs: {a} in {}, {b} in {}", first.name, r.name);
            }
        }
    }
    let mut out = first.results.clone();
    (out.styles, out.servers, out.runs) = (Vec::new(), Vec::new(), Vec::new());
    for group in &groups {
        let lead = &group[0].results;
        out.styles.extend(lead.styles.iter().cloned());
        out.servers.extend(lead.servers.iter().cloned());
        out.runs.extend(merge_group(group, force)?);
        for r in group {
            out.started_unix_s = out.started_unix_s.min(r.results.started_unix_s);
        }
    }
    // The replicas ran at once; the styles one after the other.
    out.elapsed_s = groups
        .iter()
        .map(|g| g.iter().map(|r| r.results.elapsed_s).fold(0.0, f64::max))
        .sum();
    Ok(out)
}

/// The runs of replicas of the same styles, merged run by run.
fn merge_group(group: &[&Replica], force: bool) -> anyhow::Result<Vec<RunResult>> {
    let lead = group[0];
    for r in &group[1..] {
        if r.results.runs.len() != lead.results.runs.len() {
            anyhow::bail!(
                "{} holds {} runs and {} holds {}: the replicas did not run the same comparison",
                lead.name,
                lead.results.runs.len(),
                r.name,
                r.results.runs.len()
            );
        }
    }
    let mut merged = Vec::new();
    for (i, run) in lead.results.runs.iter().enumerate() {
        let mut parts = Vec::new();
        for r in group {
            let other = &r.results.runs[i];
            if place(other) != place(run) {
                anyhow::bail!(
                    "run {} is {} in {} but {} in {}",
                    i + 1,
                    run.label.as_deref().unwrap_or("?"),
                    lead.name,
                    other.label.as_deref().unwrap_or("?"),
                    r.name
                );
            }
            parts.push(Part {
                name: format!("{} (run {})", r.name, i + 1),
                result: other.clone(),
            });
        }
        let mut m = merge_parts(&parts, force)?;
        // Tags and label stay the run's (the report finds it by them), but
        // for a figure in the point that each replica measured for itself.
        (m.tags, m.label) = (run.tags.clone(), run.label.clone());
        if let (Some(t), Mode::Open { rate }) = (m.tags.as_mut(), &m.spec.mode)
            && group.iter().any(|r| r.results.runs[i].tags != run.tags)
        {
            t.point = format!("{} = {rate:.0}/s", place(run).3);
            m.label = Some(format!("{}/{}/{}", t.style, t.scenario, t.point));
        }
        merged.push(m);
    }
    Ok(merged)
}

/// Where a run stands in a comparison, for lining replicas' runs up: its
/// tags, with a point's figure left out. `open` names its points by the
/// rate ("50% of max = 36430/s"), a fraction of the maximum each replica
/// measured itself; the replicas' rates add up like their throughputs.
fn place(run: &RunResult) -> (&str, &str, u32, &str) {
    match &run.tags {
        Some(t) => (
            t.style.as_str(),
            t.scenario.as_str(),
            t.repeat,
            t.point.split(" = ").next().unwrap_or_default(),
        ),
        None => ("", "", 0, ""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_barrier_lets_runs_through_together_and_gives_up_once() {
        let dir = std::env::temp_dir().join(format!("c10k-sync-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let limit = Duration::from_secs(10);
        let (a, b) = (
            ReplicaSync::new(&dir, 2, "a", limit),
            ReplicaSync::new(&dir, 2, "b", limit),
        );
        std::thread::scope(|s| {
            let t = s.spawn(|| (a.wait("x/scale/1"), a.wait("x/scale/2")));
            assert_eq!(b.wait("x/scale/1"), 2);
            assert_eq!(b.wait("x/scale/2"), 2);
            assert_eq!(t.join().unwrap(), (2, 2));
        });
        // A replica that never comes: one bounded wait, then none.
        let alone = ReplicaSync::new(&dir, 2, "a", Duration::from_millis(50));
        alone.next.store(2, Ordering::Relaxed);
        assert_eq!(alone.wait("x/churn"), 1);
        assert!(alone.given_up.load(Ordering::Relaxed));
        assert_eq!(alone.wait("x/fairness"), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
