//! A comparison held against an earlier one (`loadgen diff OLD NEW`,
//! `compare --baseline OLD`): every cell both runs share (row, scenario,
//! point, figure; [`cells`]) side by side with the change in %, and a
//! verdict read against the spread, not eyeballed: "faster"/"slower" (or
//! "better"/"worse" where lower is better: latency, CPU, memory) only when
//! the two runs' ranges over their repeats do not overlap *and* the change
//! passes the noise floor of the figure's kind; otherwise "within noise".
//! Cells, rows and scenarios on one side only are listed, runs that failed
//! are marked and not read as numbers. Which figures each scenario is read
//! on, and their noise floors, are in [`figures`]; the whole in [`change`];
//! the markdown in [`text`].
//!
//! The noise floor ([`noise_floor_pct`]) is a factor either way (+60%
//! is a factor of 1.6, and so is −37.5%): what the same code moved between
//! back-to-back runs of `compare --profile quick --styles
//! epoll,reactor,threads` (1m40s each) on the machine this project is
//! measured on (2 cores, shared with other people's builds), taken as the
//! 90th percentile of the cells' factors:
//!
//! | kind | quietest pair (n) | all 15 pairs of 6 runs (n) | floor |
//! |---|---|---|---|
//! | throughput (msg/s, conn/s) | p90 1.62, median 1.20 (28) | p90 6.4, median 1.8 (427) | 1.6 (+60%) |
//! | latency (percentiles, stalls) | p90 2.02, median 1.21 (33) | p90 4.5, median 1.7 (495) | 2 (+100%) |
//! | server CPU (µs/msg, %) | p90 1.40, median 1.06 (25) | p90 1.33, median 1.11 (359) | 1.35 (+35%) |
//! | memory per connection | max 1.007 (6) | max 1.012 (44) | 1.05 (+5%) |
//! | fairness (Jain's index) | 1.001 (1) | max 1.001 (13) | 1.05 (+5%) |
//!
//! The quietest pair is the one with nothing but other people's builds
//! alongside. Throughput and latency move with whatever else the machine
//! runs (the other runs overlapped a build of this crate or a soak test:
//! factors of 3 and more); the CPU a server spends per message, counted by
//! the kernel in its cgroup, hardly does, so it is the figure to read a
//! change on here. `--repeat 3` on both sides narrows it further: rounds interleave
//! the styles, so a busy spell widens both runs' ranges, and ranges that
//! overlap are noise whatever the medians say.
//!
//! Reads the comparison's model ([`crate::compare::model`]) and the
//! report's helpers; runs nothing.

pub mod cells;
pub mod change;
pub mod figures;
pub mod text;

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::compare::model::CompareResults;
use crate::results::SCHEMA_VERSION;
pub use cells::{Cell, Missing, Side, Verdict};
pub use change::{Counts, Diff};
pub use figures::{Kind, noise_floor_pct};

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
