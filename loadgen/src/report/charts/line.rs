//! A line chart: one line per series (a style) over a numeric x axis
//! (connections), min–max whiskers where a point was repeated, hollow
//! markers where loadgen was the limit, the legend to the right. A failed
//! point is no value: its line breaks there and a ✗ in the style's colour
//! sits on the x axis at its place.

use std::collections::BTreeMap;
use std::path::Path;

use plotters::prelude::*;

use crate::report::charts::axis::Axis;
use crate::report::charts::canvas::{
    Cell, Chart, DISTURBED_NOTE, Entry, FAILED_NOTE, NOTE_ROW, Swatch, WHISKERS_NOTE, axes,
    builder, canvas, disturbed_mark, failed_mark, legend, legend_height, legend_width, marker,
    notes, plot_err, style_colour, whisker,
};

/// One line: its name (in the legend) and its points, by x.
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, Cell)>,
}

pub struct LineChart {
    pub title: String,
    pub x: Axis,
    pub y: Axis,
    /// Every style in the report's order, so each keeps its colour and
    /// marker (one with no points is left out of the plot and legend).
    pub series: Vec<Series>,
}

/// The note under a chart with hollow markers.
pub const HOLLOW_NOTE: &str =
    "hollow marker: client-bound (loadgen was the limit); filled: it was not";

impl LineChart {
    /// Each series that has something to show (a figure the axis can
    /// draw, or a ✗), with its index (its colour and marker).
    fn shown(&self) -> Vec<(usize, Vec<(f64, Cell)>)> {
        let log = self.y.log;
        let keep = |c: &Cell| c.figure().is_none_or(|v| v.drawable(log));
        (self.series.iter().enumerate())
            .map(|(i, s)| {
                let pts = s.points.iter().copied().filter(|(_, c)| keep(c));
                (i, pts.collect::<Vec<_>>())
            })
            .filter(|(_, pts)| !pts.is_empty())
            .collect()
    }

    /// Whether any point can be drawn as a value (no chart otherwise).
    pub fn has_values(&self) -> bool {
        let mut points = self.series.iter().flat_map(|s| s.points.iter());
        points.any(|(_, c)| c.figure().is_some_and(|v| v.drawable(self.y.log)))
    }

    /// Draws the chart to `dir/file` and gives the report's link to it.
    pub fn draw(&self, dir: &Path, file: &str) -> anyhow::Result<Chart> {
        let shown = self.shown();
        let entries: Vec<Entry> = shown
            .iter()
            .map(|(i, _)| Entry {
                name: self.series[*i].name.clone(),
                colour: style_colour(*i),
                swatch: Swatch::Line(*i),
            })
            .collect();
        let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
        let cells = || shown.iter().flat_map(|(_, p)| p.iter());
        let figures = || cells().filter_map(|(x, c)| Some((*x, c.figure()?)));
        let mut lines = Vec::new();
        if figures().any(|(_, v)| v.range.is_some()) {
            lines.push(WHISKERS_NOTE.to_string());
        }
        if figures().any(|(_, v)| v.client_bound) {
            lines.push(HOLLOW_NOTE.to_string());
        }
        if cells().any(|(_, c)| *c == Cell::Failed) {
            lines.push(FAILED_NOTE.to_string());
        }
        if figures().any(|(_, v)| v.disturbed) {
            lines.push(DISTURBED_NOTE.to_string());
        }
        let path = dir.join(file);
        let height = 440.max(legend_height(entries.len()) + 110) + NOTE_ROW * lines.len() as u32;
        let root = canvas(&path, height)?;
        // The x axis holds the failed points' places too; the y axis only
        // the figures drawn, so a failed run's figure cannot stretch it.
        let xs = self.x.scale(cells().map(|(x, _)| *x));
        let ys = self.y.scale(figures().flat_map(|(_, v)| v.extent()));
        let mut chart = builder(&root, &self.title, 78, legend_width(&names), lines.len())
            .build_cartesian_2d(xs, ys)
            .map_err(plot_err)?;
        axes(&mut chart, Some(&self.x.title()), Some(&self.y.title()))?;
        let n = shown.len() as i32;
        for (k, (i, pts)) in shown.iter().enumerate() {
            let colour = style_colour(*i);
            // The line breaks at a failed point: a segment per run of
            // figures between them.
            for segment in pts.split(|(_, c)| *c == Cell::Failed) {
                let line: Vec<(f64, f64)> = segment
                    .iter()
                    .filter_map(|(x, c)| Some((*x, c.figure()?.v)))
                    .collect();
                if line.len() > 1 {
                    chart
                        .draw_series(LineSeries::new(line, colour.stroke_width(2)))
                        .map_err(plot_err)?;
                }
            }
            let figures: Vec<_> = pts
                .iter()
                .filter_map(|(x, c)| Some((*x, c.figure()?)))
                .collect();
            for (x, v) in &figures {
                if let Some((lo, hi)) = v.range {
                    let dodge = 3 * (2 * k as i32 - (n - 1)) / 2;
                    whisker(&chart, ((*x, lo), (*x, hi)), colour, dodge)?;
                }
            }
            for (x, v) in figures {
                marker(chart.plotting_area(), (x, v.v), *i, colour, v.client_bound)?;
                if v.disturbed {
                    disturbed_mark(chart.plotting_area(), (x, v.v), colour)?;
                }
            }
        }
        // The ✗s on the x axis line itself (a little above it, on a log
        // axis, is its lowest tick: a ✗ there would read as a value), stacked
        // upwards where several styles failed at one x.
        let bottom = chart.y_range().start;
        let mut at_x: BTreeMap<i32, i32> = BTreeMap::new();
        for (i, pts) in &shown {
            for (x, c) in pts {
                if *c != Cell::Failed {
                    continue;
                }
                let (px, _) = chart.backend_coord(&(*x, bottom));
                let k = at_x.entry(px).or_default();
                let offset = (0, -15 * *k);
                failed_mark(
                    chart.plotting_area(),
                    (*x, bottom),
                    offset,
                    style_colour(*i),
                )?;
                *k += 1;
            }
        }
        legend(&root, &chart, &entries)?;
        notes(&root, &lines)?;
        root.present().map_err(plot_err)?;
        Ok(Chart::in_charts(file, &self.title))
    }
}
