//! A comparison held against an earlier one (`loadgen diff OLD NEW`,
//! `compare --baseline OLD`): every cell both runs share (row, scenario,
//! point, figure; [`cells`]) side by side with the change in %, and a
//! verdict read against the spread, not eyeballed: "faster"/"slower" (or
//! "better"/"worse" where lower is better: latency, CPU, memory) only when
//! the two runs' ranges over their repeats do not overlap *and* the change
//! passes the noise floor of the figure's kind; otherwise "within noise".
//! Cells, rows and scenarios on one side only are listed, runs that failed
//! are marked and not read as numbers. Which figures each scenario is read
//! on, and their noise floors, are in [`figures`]; the capacity a search
//! found, where a side may be only a bound, in [`capacity`]; the whole in
//! [`change`]; the markdown in [`text`].
//!
//! The noise floor ([`noise_floor_pct`]) is a factor either way (+60%
//! is a factor of 1.6, and so is −37.5%): how far the same code moved
//! between runs of `compare --profile quick --styles epoll,reactor,threads`
//! (1m40s to 2m30s each; seven runs, 2026-11-30, on the 2-core VM this project is
//! measured on, shared with other people's builds throughout). Per kind,
//! the cells' factors between the two back-to-back runs with nothing else
//! of ours alongside (the quietest pair), and over all 21 pairs of the
//! seven runs:
//!
//! | kind | quietest pair: median, p90 (cells) | all 21 pairs: median, p90 (cells) | floor |
//! |---|---|---|---|
//! | throughput (msg/s, conn/s) | 1.20, 1.62 (28) | 1.86, 6.1 (602) | ×1.6 (+60%) |
//! | latency (percentiles, stalls) | 1.21, 2.02 (33) | 1.92, 6.1 (721) | ×2 (+100%) |
//! | server CPU (µs/msg, % of a core) | 1.06, 1.40 (25) | 1.13, 1.38 (511) | ×1.4 (+40%) |
//! | memory per connection | 1.000, max 1.007 (6) | 1.000, max 1.012 (70) | ×1.05 (+5%) |
//! | fairness (Jain's index) | 1.001 (1) | 1.000, max 1.001 (22) | ×1.05 (+5%) |
//!
//! Each floor is about the quietest pair's 90th percentile. A factor says
//! nothing near zero (CPU 3% → 0% is a factor of infinity and one clock
//! tick), so a change must also pass an absolute floor in the figure's
//! unit ([`figures::noise_floor_abs`]: 10/s, 50 µs, 1 µs a message or 5
//! points of a core, 0.5 KiB a connection, 0.02 of Jain's index), each
//! chosen from what the figures move between rounds of the same code.
//!
//! Throughput and latency move with whatever else the machine runs: runs that overlapped
//! a build of this crate or another person's soak test moved by factors of
//! 2 to 5 in the median, beyond any useful floor. The CPU a server spends
//! per message, counted by the kernel in its cgroup, hardly moved in any
//! pair, so it is the figure to read a change on here. With `--repeat 3`
//! on both sides the ranges do the rest: rounds interleave the styles, so
//! a busy spell widens both runs' ranges, and ranges that overlap are
//! noise whatever the medians say (two such runs: 119 of 129 cells within
//! noise).
//!
//! **Side by side** ([`paired`]): where both runs measured a style's scale
//! point beside a fresh epoll server (the pairs of [`crate::compare::pair`],
//! under a CPU quota), its msg/s and CPU per message are read as ratios to
//! that epoll run, round by round, and epoll's own row on its own figures.
//! Their floors ([`figures::paired_floor_pct`],
//! [`figures::reference_floor_pct`]) were measured as the ones above:
//! three back-to-back runs of `loadgen compare --profile perf --styles
//! epoll,reactor,threads,tasks` (338-352 s each, 2026-12-06, the same VM;
//! load average 340-780 throughout, most of it the threads style's 10,000
//! threads, with other sessions compiling on both cores), all three pairs
//! diffed (`benches/diff_noise.py`), over the cells at 50 and 1,000
//! connections:
//!
//! | cells | back-to-back: median, p90, max (cells) | six runs: median, p90, max (cells) | floor |
//! |---|---|---|---|
//! | msg/s ÷ epoll's beside it | 1.017, 1.092, 1.225 (18) | 1.018, 1.233, 1.848 (66) | ×1.10 |
//! | CPU/msg ÷ epoll's beside it | 1.006, 1.067, 1.163 (18) | 1.011, 1.208, 1.654 (66) | ×1.07 |
//! | epoll's own msg/s (quota'd) | 1.128, 1.210, 1.256 (6) | 1.127, 1.260, 1.480 (30) | ×1.30 |
//! | epoll's own CPU/msg (quota'd) | 1.027, 1.082, 1.106 (6) | 1.027, 1.098, 1.159 (30) | ×1.10 |
//!
//! "Six runs": the three above and three more made right after them with
//! `--server-bin` a script that added `--work-us` to tasks alone (the
//! planted slowdowns of docs/baseline.md), tasks' cells left out: 15 pairs, some 40
//! minutes apart. Every factor above ×1.06 of a paired ratio is threads' at
//! 1,000 connections (its ratio ranges 0.35-0.71 within a run, and one run
//! put it at 0.31-0.38): without threads the paired ratios' p90 is ×1.03
//! and their max ×1.06 over all 15 pairs. The paired floors are the
//! back-to-back p90, as the own floors are; threads at 1,000 connections
//! moves past them between runs of the same code, its ranges apart.
//!
//! Reads the comparison's model ([`crate::compare::model`]) and the
//! report's helpers; runs nothing.

pub mod capacity;
pub mod cells;
pub mod change;
pub mod figures;
pub mod key;
pub mod paired;
pub mod text;
pub mod unlike;

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::compare::model::CompareResults;
use crate::results::SCHEMA_VERSION;
pub use cells::{Cell, Missing, Side, Verdict};
pub use change::{Counts, Diff};
pub use figures::{
    Basis, Kind, noise_floor_abs, noise_floor_pct, paired_floor_pct, reference_floor_pct,
};
pub use paired::ReadOn;

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
    std::fs::write(&report, &md).context("writing report.md")?;
    // report.html is report.md as a page: it gets the section too.
    std::fs::write(dir.join("report.html"), crate::report::html::page(&md, dir))
        .context("writing report.html")
}
