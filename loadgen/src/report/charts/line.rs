//! A line chart: one line per series (a style) over a numeric x axis
//! (connections), min–max whiskers where a point was repeated, the legend
//! to the right.

use std::path::Path;

use plotters::prelude::*;

use crate::report::charts::axis::Axis;
use crate::report::charts::canvas::{
    Chart, Entry, Swatch, Value, axes, builder, canvas, legend, legend_height, legend_width,
    marker, plot_err, style_colour, whisker, whiskers_note,
};

/// One line: its name (in the legend) and its points.
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, Value)>,
}

pub struct LineChart {
    pub title: String,
    pub x: Axis,
    pub y: Axis,
    /// Every style in the report's order, so each keeps its colour and
    /// marker (one with no points is left out of the plot and legend).
    pub series: Vec<Series>,
}

impl LineChart {
    /// Whether any point can be drawn (no chart otherwise).
    pub fn has_values(&self) -> bool {
        let mut points = self.series.iter().flat_map(|s| s.points.iter());
        points.any(|(_, v)| v.drawable(self.y.log))
    }

    /// Draws the chart to `dir/file` and gives the report's link to it.
    pub fn draw(&self, dir: &Path, file: &str) -> anyhow::Result<Chart> {
        let shown: Vec<(usize, Vec<(f64, Value)>)> = self
            .series
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let pts = s
                    .points
                    .iter()
                    .copied()
                    .filter(|(_, v)| v.drawable(self.y.log));
                (i, pts.collect::<Vec<_>>())
            })
            .filter(|(_, pts)| !pts.is_empty())
            .collect();
        let entries: Vec<Entry> = shown
            .iter()
            .map(|(i, _)| Entry {
                name: self.series[*i].name.clone(),
                colour: style_colour(*i),
                swatch: Swatch::Line(*i),
            })
            .collect();
        let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
        let path = dir.join(file);
        let root = canvas(&path, 440.max(legend_height(entries.len()) + 110))?;
        let points = || shown.iter().flat_map(|(_, p)| p.iter());
        let xs = self.x.scale(points().map(|(x, _)| *x));
        let ys = self.y.scale(points().flat_map(|(_, v)| v.extent()));
        let mut chart = builder(&root, &self.title, 78, legend_width(&names))
            .build_cartesian_2d(xs, ys)
            .map_err(plot_err)?;
        axes(&mut chart, Some(&self.x.title()), Some(&self.y.title()))?;
        let n = shown.len() as i32;
        for (k, (i, pts)) in shown.iter().enumerate() {
            let colour = style_colour(*i);
            let line: Vec<(f64, f64)> = pts.iter().map(|(x, v)| (*x, v.v)).collect();
            chart
                .draw_series(LineSeries::new(line.clone(), colour.stroke_width(2)))
                .map_err(plot_err)?;
            for (x, v) in pts {
                if let Some((lo, hi)) = v.range {
                    let dodge = 3 * (2 * k as i32 - (n - 1)) / 2;
                    whisker(&chart, ((*x, lo), (*x, hi)), colour, dodge)?;
                }
            }
            for p in line {
                marker(chart.plotting_area(), p, *i, colour)?;
            }
        }
        legend(&root, &chart, &entries)?;
        if points().any(|(_, v)| v.range.is_some()) {
            whiskers_note(&root)?;
        }
        root.present().map_err(plot_err)?;
        Ok(Chart::in_charts(file, &self.title))
    }
}
