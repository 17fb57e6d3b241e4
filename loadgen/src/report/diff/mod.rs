//! A comparison held against an earlier one (`loadgen diff OLD NEW`,
//! `compare --baseline OLD`): every cell both runs share (row, scenario,
//! point, figure; [`cells`]) side by side with the change in %, and a
//! verdict read against the spread, not eyeballed: "faster"/"slower" (or
//! "better"/"worse" where lower is better: latency, CPU, memory) only when
//! the two runs' ranges over their repeats do not overlap *and* the change
//! passes the noise floor of the figure's kind; otherwise "within noise".
//! Cells, rows and scenarios on one side only are listed, runs that failed
//! are marked and not read as numbers. Which figures each scenario is read
//! on is in [`figures`]; the markdown in [`text`].
//!
//! The noise floor ([`noise_floor_pct`]) is what the same code moved
//! between two back-to-back runs on the machine this project is measured
//! on (2 cores, shared; see the README, "Did my change make it faster?").
//!
//! Reads the comparison's model ([`crate::compare::model`]) and the
//! report's helpers; runs nothing.

pub mod cells;
pub mod figures;
pub mod text;

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::compare::model::CompareResults;
use crate::results::SCHEMA_VERSION;
pub use cells::{Cell, Missing, Side, Verdict};
pub use figures::Kind;

/// How far a figure of each kind moved between two runs of the same code
/// here, in %: a change within it is "within noise" even when the ranges
/// do not overlap (as they never do for runs measured once).
pub fn noise_floor_pct(kind: Kind) -> f64 {
    match kind {
        Kind::Throughput => 30.0,
        Kind::Latency => 50.0,
        Kind::Cpu => 30.0,
        Kind::Memory => 30.0,
        Kind::Fairness => 10.0,
    }
}

/// A comparison against a baseline: its cells and what one side lacks.
pub struct Diff {
    /// What the two runs are called in the text (their paths).
    pub old_name: String,
    pub new_name: String,
    pub cells: Vec<Cell>,
    pub missing: Missing,
    /// How the two runs were made differently (profile, machine...), in
    /// words: figures from different set-ups are not the same cells.
    pub differences: Vec<String>,
}

/// Cells by verdict.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub improved: usize,
    pub regressed: usize,
    pub within_noise: usize,
    pub failed: usize,
    pub one_side: usize,
    pub no_base: usize,
}

impl Diff {
    pub fn new(old: &CompareResults, new: &CompareResults, old_name: &str, new_name: &str) -> Diff {
        let (cells, missing) = cells::match_runs(old, new);
        Diff {
            old_name: old_name.into(),
            new_name: new_name.into(),
            cells,
            missing,
            differences: differences(old, new),
        }
    }

    pub fn counts(&self) -> Counts {
        let mut c = Counts::default();
        for cell in &self.cells {
            match cell.verdict {
                Verdict::Improved => c.improved += 1,
                Verdict::Regressed => c.regressed += 1,
                Verdict::WithinNoise => c.within_noise += 1,
                Verdict::Failed(_) => c.failed += 1,
                Verdict::OnlyIn(_) => c.one_side += 1,
                Verdict::NoBase => c.no_base += 1,
            }
        }
        c
    }

    /// Cells that got worse beyond noise by more than `pct` %.
    pub fn regressions(&self, pct: f64) -> Vec<&Cell> {
        self.cells
            .iter()
            .filter(|c| {
                c.verdict == Verdict::Regressed && c.change_pct.is_some_and(|x| x.abs() > pct)
            })
            .collect()
    }
}

/// How two comparisons were set up differently, in words.
fn differences(old: &CompareResults, new: &CompareResults) -> Vec<String> {
    let mut out = Vec::new();
    let mut differs = |what: &str, a: String, b: String| {
        if a != b {
            out.push(format!("{what}: {a} in the baseline, {b} in the new run"));
        }
    };
    let (eo, en) = (&old.environment, &new.environment);
    differs("profile", old.profile.clone(), new.profile.clone());
    differs("repeats", old.repeat.to_string(), new.repeat.to_string());
    differs(
        "CPU",
        format!("{} x {}", eo.cores, eo.cpu_model),
        format!("{} x {}", en.cores, en.cpu_model),
    );
    differs("kernel", eo.kernel.clone(), en.kernel.clone());
    differs("network", old.network.clone(), new.network.clone());
    differs(
        "server CPUs",
        format!("{:?}", old.server_cpus),
        format!("{:?}", new.server_cpus),
    );
    differs(
        "client CPUs",
        format!("{:?}", old.client_cpus),
        format!("{:?}", new.client_cpus),
    );
    let quota = |r: &CompareResults| match r.cgroup.as_ref().filter(|c| c.used) {
        Some(c) => c
            .cpu_quota
            .map(|q| format!("{q} CPU"))
            .unwrap_or_else(|| "none".into()),
        None => "no cgroups".into(),
    };
    differs("server CPU quota", quota(old), quota(new));
    out
}

/// Why a baseline or a run to compare could not be read.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{path}: cannot read it: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not a `loadgen compare` results.json: {why}")]
    NotResults { path: PathBuf, why: String },
    #[error(
        "{path}: results.json schema version {found}, this loadgen reads version {expected} \
         (compare against a run of a loadgen with the same schema, or re-run the baseline)"
    )]
    Schema {
        path: PathBuf,
        found: u64,
        expected: u32,
    },
}

/// Reads a comparison's results.json, given as the file or the folder
/// holding it.
pub fn load(path: &Path) -> Result<CompareResults, LoadError> {
    let file = if path.is_dir() {
        path.join("results.json")
    } else {
        path.to_path_buf()
    };
    let text = std::fs::read_to_string(&file).map_err(|source| LoadError::Read {
        path: file.clone(),
        source,
    })?;
    let not = |why: String| LoadError::NotResults {
        path: file.clone(),
        why,
    };
    let doc: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| not(format!("not JSON ({e})")))?;
    if doc.get("runs").is_none() {
        return Err(not(if doc.get("throughput_msgs_per_s").is_some() {
            "it is one run's result (`loadgen run --format json`); diff takes what `loadgen compare` wrote".into()
        } else {
            "it has no `runs`".into()
        }));
    }
    match doc
        .get("schema_version")
        .and_then(serde_json::Value::as_u64)
    {
        Some(v) if v == u64::from(SCHEMA_VERSION) => {}
        Some(found) => {
            return Err(LoadError::Schema {
                path: file,
                found,
                expected: SCHEMA_VERSION,
            });
        }
        None => return Err(not("it has no `schema_version`".into())),
    }
    serde_json::from_value(doc).map_err(|e| not(e.to_string()))
}

/// Writes diff.md into `dir` and the change section at the end of the
/// report.md there (written first by [`crate::report::write`]).
pub fn write(diff: &Diff, dir: &Path) -> anyhow::Result<()> {
    std::fs::write(dir.join("diff.md"), text::markdown(diff)).context("writing diff.md")?;
    let report = dir.join("report.md");
    let mut md = std::fs::read_to_string(&report).context("reading report.md")?;
    if !md.ends_with('\n') {
        md.push('\n');
    }
    md.push('\n');
    md.push_str(&text::section(diff));
    std::fs::write(&report, md).context("writing report.md")
}
