//! Everything a person reads: one run's text, JSON and CSV ([`run`]), and a
//! comparison's markdown ([`compare`], its cost tables in [`cost`], the perf
//! profile's tables and targets in [`perf`]) and SVG charts ([`charts`]),
//! a soak's `soak.json` and `soak.md` ([`soak`]),
//! all reading the runs through [`view`] and writing with [`md`]; [`html`]
//! makes report.md one self-contained page; a comparison held against an
//! earlier one ([`diff`]).
//! Reads [`crate::results`] and the comparison's model; runs nothing.
//!
//! Only [`write()`] here uses the children; they import from each other
//! (never from this module), so the imports run one way.

pub mod capacity;
pub mod charts;
pub mod compare;
pub mod cost;
pub mod diff;
pub mod html;
pub mod md;
pub mod perf;
pub mod run;
pub mod soak;
pub mod view;

pub use run::{
    csv_header, csv_row, first_reply_line, fmt_us, json, memory_label, sampling_note, text,
};

use std::path::Path;

use anyhow::Context;

use crate::compare::model::CompareResults;

/// Writes results.json, results.csv, report.md, report.html (the same,
/// one self-contained page) and charts/ for `results` (and perf.md for the
/// perf profile).
pub fn write(results: &CompareResults, dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let json = serde_json::to_string_pretty(results).context("serialising results")?;
    std::fs::write(dir.join("results.json"), json + "\n").context("writing results.json")?;
    let mut csv = format!("style,scenario,point,repeat,{}\n", run::csv_header());
    for r in &results.runs {
        let t = r.tags.clone().unwrap_or_else(|| crate::results::Tags {
            style: String::new(),
            scenario: String::new(),
            point: String::new(),
            repeat: 0,
            partner_of: String::new(),
        });
        csv.push_str(&format!(
            "{},{},{},{},{}\n",
            t.style,
            t.scenario,
            // A side-by-side partner run is told from the reference's own.
            if t.is_partner() {
                format!("{} beside {}", t.point, t.partner_of)
            } else {
                t.point.clone()
            }
            .replace(',', ";"),
            t.repeat,
            run::csv_row(r)
        ));
    }
    std::fs::write(dir.join("results.csv"), csv).context("writing results.csv")?;
    let charts = charts::draw_all(results, &dir.join("charts")).context("drawing charts")?;
    let report = compare::markdown(results, &charts);
    std::fs::write(dir.join("report.md"), &report).context("writing report.md")?;
    std::fs::write(dir.join("report.html"), html::page(&report, dir))
        .context("writing report.html")?;
    if perf::applies(results) {
        std::fs::write(dir.join("perf.md"), perf::markdown(results)).context("writing perf.md")?;
    }
    Ok(())
}
