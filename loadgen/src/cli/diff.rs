//! `loadgen diff OLD NEW` and `compare --baseline`: both read their
//! inputs here (bad input exits [`EXIT_BAD_INPUT`], naming the flag or
//! argument and the file) and judge regressions for
//! `--fail-on-regression` ([`EXIT_REGRESSION`]). The diff itself is
//! [`crate::report::diff`].

use std::io::Write;
use std::path::Path;

use anyhow::Context;

use crate::cli::args::DiffArgs;
use crate::compare::model::CompareResults;
use crate::report::diff::{self, Diff, text};

/// Exit status of a diff or baseline that could not be read (as for a
/// bad flag).
pub const EXIT_BAD_INPUT: i32 = 2;
/// Exit status when `--fail-on-regression PCT` found a cell worse beyond
/// noise by more than PCT %.
pub const EXIT_REGRESSION: i32 = 3;

/// Reads the results `what` names (a flag or an argument), or says why
/// not on stderr and gives the exit status.
pub fn load(command: &str, what: &str, path: &Path) -> Result<CompareResults, i32> {
    diff::load(path).map_err(|e| {
        note!("loadgen {command}: {what}: {e}");
        EXIT_BAD_INPUT
    })
}

/// `loadgen diff`: the markdown on stdout (and in --out), the regressions
/// on stderr.
pub fn command(args: &DiffArgs) -> anyhow::Result<i32> {
    let old = match load("diff", "OLD", &args.old) {
        Ok(r) => r,
        Err(code) => return Ok(code),
    };
    let new = match load("diff", "NEW", &args.new) {
        Ok(r) => r,
        Err(code) => return Ok(code),
    };
    let d = Diff::new(
        &old,
        &new,
        &args.old.display().to_string(),
        &args.new.display().to_string(),
    );
    let md = text::markdown(&d);
    if let Some(out) = &args.out {
        std::fs::write(out, &md).with_context(|| format!("writing {} (--out)", out.display()))?;
    }
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(md.as_bytes())
        .and_then(|()| stdout.flush())
        .context("writing to stdout")?;
    Ok(regressed("diff", &d, args.fail_on_regression))
}

/// `compare --baseline`: the section in report.md and diff.md in `dir`,
/// the summary on stderr; the exit status --fail-on-regression asks for
/// (0 when none).
pub fn against_baseline(
    baseline: &CompareResults,
    baseline_path: &Path,
    results: &CompareResults,
    dir: &Path,
    fail_on_regression: Option<f64>,
) -> anyhow::Result<i32> {
    let d = Diff::new(
        baseline,
        results,
        &baseline_path.display().to_string(),
        &dir.join("results.json").display().to_string(),
    );
    diff::write(&d, dir)?;
    note!(
        "loadgen compare: against the baseline: {} ({})",
        text::summary(&d),
        dir.join("diff.md").display()
    );
    Ok(regressed("compare", &d, fail_on_regression))
}

/// [`EXIT_REGRESSION`] when a cell got worse beyond noise by more than
/// `pct` % (each listed on stderr), else 0.
fn regressed(command: &str, d: &Diff, pct: Option<f64>) -> i32 {
    let Some(pct) = pct else { return 0 };
    let cells = d.regressions(pct);
    for c in &cells {
        note!(
            "loadgen {command}: regression over {pct}%: {}",
            text::line(c)
        );
    }
    if cells.is_empty() { 0 } else { EXIT_REGRESSION }
}
