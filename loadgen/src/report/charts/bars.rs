//! A horizontal bar chart: a row per group (a style, named at the left,
//! so long names never collide), one bar per legend entry in each row
//! (connection counts, say) or a single bar in the style's colour, the
//! value written at the bar's end, min–max whiskers where it was repeated,
//! hollow bars where loadgen was the limit, and an optional reference line
//! (epoll = 1). A failed cell has no bar: a ✗ on the axis stands in its
//! place.

use std::path::Path;

use plotters::element::DashedPathElement;
use plotters::prelude::*;

use crate::report::charts::axis::{Axis, Scale};
use crate::report::charts::canvas::{
    Cell, Chart, DISTURBED_NOTE, Entry, FAILED_NOTE, NOTE_ROW, Plot, Swatch, WHISKERS_NOTE, axes,
    builder, canvas, disturbed_mark, failed_mark, legend, legend_height, legend_width, notes,
    plot_err, step_colour, style_colour, whisker,
};

/// One row: its name and a bar per legend entry (None: no figure).
pub struct Group {
    pub name: String,
    pub bars: Vec<Option<Cell>>,
}

/// The note under a chart whose hollow bars are runs where loadgen was
/// the limit.
pub const HOLLOW_NOTE: &str =
    "hollow bar: client-bound (loadgen was the limit); filled: it was not";

pub struct BarChart {
    pub title: String,
    /// The bars' axis (the horizontal one).
    pub value: Axis,
    /// Every style in the report's order, so each keeps its colour; a row
    /// without any figure says so.
    pub groups: Vec<Group>,
    /// What the bars of a row stand for, in order (shades of one colour);
    /// empty: one bar per row, in the style's colour, no legend.
    pub legend: Vec<String>,
    /// A dashed line at this value, named in the legend.
    pub reference: Option<(f64, String)>,
    /// What a hollow bar means, in the note under the chart where it has
    /// one ([`HOLLOW_NOTE`] for a figure of one run).
    pub hollow_note: &'static str,
}

const FONT: &str = "sans-serif";

impl BarChart {
    fn bars_per_row(&self) -> usize {
        self.legend.len().max(1)
    }

    fn entries(&self) -> Vec<Entry> {
        let n = self.legend.len();
        let mut v: Vec<Entry> = (self.legend.iter().enumerate())
            .map(|(j, name)| Entry {
                name: name.clone(),
                colour: step_colour(j, n),
                swatch: Swatch::Bar,
            })
            .collect();
        if let Some((_, name)) = &self.reference {
            v.push(Entry {
                name: name.clone(),
                colour: RGBColor(0, 0, 0),
                swatch: Swatch::Dashed,
            });
        }
        v
    }

    fn colour(&self, row: usize, bar: usize) -> RGBColor {
        if self.legend.is_empty() {
            style_colour(row)
        } else {
            step_colour(bar, self.legend.len())
        }
    }

    /// Row `g`'s bars that can be drawn (None where there is no figure,
    /// or one a log axis cannot show; a failed one is drawn as its ✗).
    fn bars<'a>(&'a self, g: &'a Group) -> impl Iterator<Item = Option<Cell>> + 'a {
        let log = self.value.log;
        (g.bars.iter()).map(move |b| b.filter(|c| c.figure().is_none_or(|v| v.drawable(log))))
    }

    /// Whether any row has a figure to draw (no chart otherwise).
    pub fn has_values(&self) -> bool {
        self.groups
            .iter()
            .any(|g| self.bars(g).any(|b| b.and_then(|c| c.figure()).is_some()))
    }

    /// What the chart's notes say: whiskers, hollow bars and ✗s, those it
    /// has.
    fn notes(&self) -> Vec<String> {
        let cells = || self.groups.iter().flat_map(|g| self.bars(g).flatten());
        let figures = || cells().filter_map(|c| c.figure());
        let mut lines = Vec::new();
        if figures().any(|v| v.range.is_some()) {
            lines.push(WHISKERS_NOTE.to_string());
        }
        if figures().any(|v| v.client_bound) {
            lines.push(self.hollow_note.to_string());
        }
        if cells().any(|c| c == Cell::Failed) {
            lines.push(FAILED_NOTE.to_string());
        }
        if figures().any(|v| v.disturbed) {
            lines.push(DISTURBED_NOTE.to_string());
        }
        lines
    }

    /// Draws the chart to `dir/file` and gives the report's link to it.
    pub fn draw(&self, dir: &Path, file: &str) -> anyhow::Result<Chart> {
        let entries = self.entries();
        let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
        let m = self.bars_per_row();
        let row_px = (8 + 14 * m as u32).max(24);
        let rows = self.groups.len() as u32 * row_px;
        let lines = self.notes();
        let height = (rows + 120)
            .max(legend_height(entries.len()) + 120)
            .max(240)
            + NOTE_ROW * lines.len() as u32;
        let path = dir.join(file);
        let root = canvas(&path, height)?;
        let label_px = self.groups.iter().map(|g| g.name.chars().count()).max();
        let label_px = 20 + 8 * label_px.unwrap_or(4) as u32;
        let values = || {
            let cells = self.groups.iter().flat_map(|g| self.bars(g).flatten());
            cells.filter_map(|c| c.figure())
        };
        let mut extent: Vec<f64> = values().flat_map(|v| v.extent()).collect();
        extent.extend(self.reference.iter().map(|(v, _)| *v));
        // Room right of the longest bar for its value.
        let top = extent.iter().copied().fold(0.0, f64::max);
        extent.push(if self.value.log {
            top * 3.0
        } else {
            top * 1.15
        });
        let xs = self.value.scale(extent);
        let ys = Scale::categories(self.groups.iter().map(|g| g.name.clone()).collect());
        let mut chart = builder(
            &root,
            &self.title,
            label_px,
            legend_width(&names),
            lines.len(),
        )
        .build_cartesian_2d(xs, ys)
        .map_err(plot_err)?;
        axes(&mut chart, Some(&self.value.title()), None)?;
        // Under the bars and their values.
        if let Some((at, _)) = &self.reference {
            let yr = chart.y_range();
            let style = BLACK.stroke_width(2);
            chart
                .draw_series(std::iter::once(DashedPathElement::new(
                    vec![(*at, yr.start), (*at, yr.end)],
                    6,
                    4,
                    style,
                )))
                .map_err(plot_err)?;
        }
        for (i, g) in self.groups.iter().enumerate() {
            self.row(&mut chart, i, g)?;
        }
        legend(&root, &chart, &entries)?;
        notes(&root, &lines)?;
        root.present().map_err(plot_err)?;
        Ok(Chart::in_charts(file, &self.title))
    }

    /// Row `i`: its bars top to bottom within the row's band, each with
    /// its whisker and its value.
    fn row(&self, chart: &mut Plot, i: usize, g: &Group) -> anyhow::Result<()> {
        let xs = chart.x_range();
        let base = if self.value.log { xs.start } else { 0.0 };
        let m = self.bars_per_row() as f64;
        // Row i's centre on the category axis (the first row on top).
        let (centre, band) = ((self.groups.len() - 1 - i) as f64, 0.8);
        let h = band / m;
        let text = (FONT, 14).into_font().color(&BLACK);
        if self.bars(g).all(|b| b.is_none()) {
            chart
                .draw_series(std::iter::once(
                    EmptyElement::at((base, centre))
                        + Text::new("no figure", (6, -7), text.clone()),
                ))
                .map_err(plot_err)?;
            return Ok(());
        }
        for (j, bar) in self.bars(g).enumerate() {
            let top = centre + band / 2.0 - j as f64 * h;
            let mid = top - h / 2.0;
            let colour = self.colour(i, j);
            let v = match bar {
                None => continue,
                Some(Cell::Failed) => {
                    // On the axis, where the bar would start.
                    failed_mark(chart.plotting_area(), (base, mid), (9, 0), colour)?;
                    chart
                        .draw_series(std::iter::once(
                            EmptyElement::at((base, mid))
                                + Text::new("failed", (20, -6), text.clone()),
                        ))
                        .map_err(plot_err)?;
                    continue;
                }
                Some(Cell::Figure(v)) => v,
            };
            let (y0, y1) = (top - 0.08 * h, top - 0.92 * h);
            let end = v.v.max(base);
            let fill = if v.client_bound { WHITE } else { colour };
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [(base, y0), (end, y1)],
                    fill.filled(),
                )))
                .map_err(plot_err)?;
            if v.client_bound {
                // An outline as a path, not an outlined rectangle (those
                // are the frame's and the legend's).
                let outline = vec![(base, y0), (end, y0), (end, y1), (base, y1), (base, y0)];
                chart
                    .draw_series(std::iter::once(PathElement::new(
                        outline,
                        colour.stroke_width(2),
                    )))
                    .map_err(plot_err)?;
            }
            if let Some((lo, hi)) = v.range {
                whisker(chart, ((lo.max(base), mid), (hi, mid)), BLACK, 0)?;
            }
            let right = v.range.map_or(end, |(_, hi)| hi.max(end));
            if v.disturbed {
                disturbed_mark(chart.plotting_area(), (right, y1), colour)?;
            }
            chart
                .draw_series(std::iter::once(
                    EmptyElement::at((right, mid))
                        + Text::new(self.value.label(v.v), (6, -6), text.clone()),
                ))
                .map_err(plot_err)?;
        }
        Ok(())
    }
}
