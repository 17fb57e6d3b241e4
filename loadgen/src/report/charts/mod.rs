//! SVG charts of a comparison, one file per figure, drawn with plotters.
//!
//! The conventions every chart follows live in the shared parts, so a chart
//! added later gets them by using them: [`axis`] (every axis names its
//! unit, "throughput (msgs/s)"; connections on a log axis ticked 1, 10,
//! 100, 1k, 10k; rates SI-suffixed, 50k, 1.2M; no "1.0"), [`canvas`] (the
//! legend in a box right of the plot, never on it; min–max whiskers where
//! a figure was repeated; one colour per style across the report; a failed
//! run, ✗ in the tables, never drawn as a value but as a ✗ on the axis; a
//! client-bound figure hollow, a server's filled; a ⚠ beside a figure
//! with other work on its CPUs in a round, as in the tables; a note under
//! the chart for each of these it has), and two
//! kinds of chart: [`line::LineChart`] (a line per style over connections)
//! and [`bars::BarChart`] (a row per style, one bar or one per step, an
//! optional reference line). [`figures`] builds the comparison's charts
//! from the runs; a new one is a `LineChart` or `BarChart` drawn with
//! `.draw(dir, "name.svg")`, whose [`Chart`] the report links.

pub mod axis;
pub mod bars;
pub mod canvas;
pub mod figures;
pub mod line;
pub mod reach;

pub use axis::{Axis, Labels};
pub use bars::{BarChart, Group};
pub use canvas::{Cell, Chart, Value};
pub use line::{LineChart, Series};

use std::path::Path;

use anyhow::Context;

use crate::compare::capacity::Bound;
use crate::compare::model::CompareResults;
use crate::report::capacity;
use crate::report::view::View;

/// Draws every chart the results allow into `dir`.
pub fn draw_all(results: &CompareResults, dir: &Path) -> anyhow::Result<Vec<Chart>> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let view = View::new(results);
    let mut charts = figures::draw_all(&view, dir)?;
    if let Some(c) = reach::chart(&view) {
        charts.push(c.draw(dir, "reach_memory.svg")?);
    }
    // Capacity at the objective: a bar per style (every style listed, so
    // each keeps its colour), per connection count; hollow where loadgen
    // bounded the search (the bar is then a floor: "≥ … (client limit)").
    let cells = capacity::cells(results);
    for (file, title, items) in capacity::charts(results) {
        let client_bound = |style: &str| {
            cells.iter().any(|c| {
                c.style == style
                    && file == format!("capacity_{}c.svg", c.conns)
                    && c.median.bound == Bound::Client
            })
        };
        let groups = view
            .styles()
            .into_iter()
            .map(|style| {
                let bar = items
                    .iter()
                    .find(|(s, _)| *s == style)
                    .map(|&(_, v)| Value::from(v).client_bound(client_bound(&style)).into());
                Group {
                    name: style,
                    bars: vec![bar],
                }
            })
            .collect();
        let chart = BarChart {
            title,
            value: Axis::rate("capacity at the objective", "msgs/s"),
            groups,
            legend: Vec::new(),
            reference: None,
            hollow_note: bars::HOLLOW_NOTE,
        };
        if chart.has_values() {
            charts.push(chart.draw(dir, &file)?);
        }
    }
    Ok(charts)
}
