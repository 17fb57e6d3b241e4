//! What every chart shares, drawn with plotters: what a chart shows at one
//! place ([`Cell`]: a [`Value`], a median with its range over the rounds
//! and whether loadgen was its limit, or a failed run, which is never drawn
//! as a value), the [`Chart`] a report links, the colours, the frame around
//! the plot, markers (filled, or hollow where client-bound), min–max
//! whiskers, the ✗ of a failed cell, the legend box to the right of the
//! plot, never on it, and the notes under a chart that say what its marks
//! mean.

use std::path::Path;

use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::report::charts::axis::Scale;
use crate::report::view::Spread;

/// A chart written to disk: its path relative to the report, and a title.
#[derive(Clone, Debug, PartialEq)]
pub struct Chart {
    pub file: String,
    pub title: String,
}

impl Chart {
    /// The chart `file` in the report's charts/ folder.
    pub fn in_charts(file: &str, title: &str) -> Chart {
        Chart {
            file: format!("charts/{file}"),
            title: title.to_string(),
        }
    }
}

/// A figure as drawn: the value, the min–max of its repeats where it was
/// measured more than once and they differ (drawn as a whisker), whether
/// loadgen was the limit (drawn hollow: the figure is the client's, not
/// the server's), and whether other work ran on its CPUs in a round (a ⚠
/// beside it, as in the tables, which leave it out of their rankings).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Value {
    pub v: f64,
    pub range: Option<(f64, f64)>,
    pub client_bound: bool,
    pub disturbed: bool,
}

impl Value {
    /// `v` with the range of `spread` (none when measured once).
    pub fn with_spread(v: f64, spread: Option<Spread>) -> Value {
        Value {
            v,
            range: spread
                .filter(|s| s.n > 1 && s.min < s.max)
                .map(|s| (s.min, s.max)),
            client_bound: false,
            disturbed: false,
        }
    }

    /// The same figure, marked disturbed (⚠) where `yes`.
    pub fn disturbed(self, yes: bool) -> Value {
        Value {
            disturbed: yes,
            ..self
        }
    }

    /// The same figure, marked client-bound where `yes`.
    pub fn client_bound(self, yes: bool) -> Value {
        Value {
            client_bound: yes,
            ..self
        }
    }

    /// Whether it can be drawn: finite, and above zero on a log axis.
    pub fn drawable(&self, log: bool) -> bool {
        self.v.is_finite() && (!log || self.v > 0.0)
    }

    /// The values an axis must hold to show this one and its whisker.
    pub fn extent(&self) -> [f64; 3] {
        let (lo, hi) = self.range.unwrap_or((self.v, self.v));
        [self.v, lo, hi]
    }
}

impl From<f64> for Value {
    fn from(v: f64) -> Value {
        Value::with_spread(v, None)
    }
}

impl From<Spread> for Value {
    fn from(s: Spread) -> Value {
        Value::with_spread(s.median, Some(s))
    }
}

/// What a chart has at one place (a point of a line, a bar): a figure, or
/// a run that failed ([`crate::report::view::failed`], ✗ in the tables),
/// whose figure is not drawn at all: a ✗ at the axis stands where it would
/// be, and a note under the chart says why ([`FAILED_NOTE`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Cell {
    Figure(Value),
    Failed,
}

impl Cell {
    /// The figure, where there is one.
    pub fn figure(&self) -> Option<Value> {
        match self {
            Cell::Figure(v) => Some(*v),
            Cell::Failed => None,
        }
    }
}

impl From<Value> for Cell {
    fn from(v: Value) -> Cell {
        Cell::Figure(v)
    }
}

/// The notes under a chart: what its ✗, hollow marks and whiskers mean.
pub const FAILED_NOTE: &str = "✗ failed: not drawn (errors or unserved connections)";
pub const WHISKERS_NOTE: &str = "whiskers: min–max over the rounds that did not fail";
pub const DISTURBED_NOTE: &str =
    "⚠ other work ran on its CPUs in a round: drawn, left out of the report's rankings";

/// Distinct colours for the styles (the same style, the same colour in
/// every chart of a report): Tableau's ten, then two dark ones.
const STYLE_COLOURS: [u32; 12] = [
    0x1f77b4, 0xff7f0e, 0x2ca02c, 0xd62728, 0x9467bd, 0x8c564b, 0xe377c2, 0x7f7f7f, 0xbcbd22,
    0x17becf, 0x000000, 0x393b79,
];

/// Light to dark: the entries of a legend that are steps of one thing
/// (connection counts), in order.
const STEP_COLOURS: [u32; 6] = [0x9ecae1, 0x6baed6, 0x4292c6, 0x2171b5, 0x08519c, 0x08306b];

fn rgb(hex: u32) -> RGBColor {
    RGBColor((hex >> 16) as u8, (hex >> 8) as u8, hex as u8)
}

pub fn style_colour(i: usize) -> RGBColor {
    rgb(STYLE_COLOURS[i % STYLE_COLOURS.len()])
}

/// The colour of step `i` of `n`, spread over the light-to-dark scale.
pub fn step_colour(i: usize, n: usize) -> RGBColor {
    let last = STEP_COLOURS.len() - 1;
    let at = if n <= 1 { last } else { i * last / (n - 1) };
    rgb(STEP_COLOURS[at.min(last)])
}

/// How a legend entry is drawn: a line with a marker, a filled box, or a
/// dashed line (a reference).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Swatch {
    Line(usize),
    Bar,
    Dashed,
}

pub struct Entry {
    pub name: String,
    pub colour: RGBColor,
    pub swatch: Swatch,
}

pub const WIDTH: u32 = 860;
const FONT: &str = "sans-serif";
const LEGEND_ROW: i32 = 22;
pub const GRID: RGBAColor = RGBAColor(0, 0, 0, 0.12);

pub fn plot_err<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow::anyhow!("plotting: {e:?}")
}

/// Pixels the legend of `names` takes to the right of the plot (the box
/// and the gap before it); 0 without a legend.
pub fn legend_width(names: &[&str]) -> u32 {
    let chars = names.iter().map(|n| n.chars().count()).max();
    chars.map_or(0, |c| 24 + 52 + 9 * c as u32)
}

/// Height a legend of `rows` entries needs below the title.
pub fn legend_height(rows: usize) -> u32 {
    rows as u32 * LEGEND_ROW as u32 + 16
}

/// The chart's caption, axis titles and label sizes, and room for labels
/// and for `notes` lines under it ([`notes`]).
pub fn builder<'a, 'b>(
    root: &'a DrawingArea<SVGBackend<'b>, Shift>,
    title: &str,
    y_labels: u32,
    legend: u32,
    notes: usize,
) -> ChartBuilder<'a, 'b, SVGBackend<'b>> {
    // A long title is set smaller rather than run off the canvas.
    let size = (1500.0 / title.chars().count().max(1) as f64).clamp(12.0, 20.0);
    let mut b = ChartBuilder::on(root);
    b.caption(title, (FONT, size))
        .margin(14)
        .margin_right(14 + legend)
        .margin_bottom(14 + NOTE_ROW * notes as u32)
        .x_label_area_size(44)
        .y_label_area_size(y_labels);
    b
}

pub type Plot<'a, 'b> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<Scale, Scale>>;

/// The grid, tick labels and axis titles (`x`, `y`: None for a category
/// axis, which has no title), then a frame around the plotted area.
pub fn axes(chart: &mut Plot, x: Option<&str>, y: Option<&str>) -> anyhow::Result<()> {
    let mut mesh = chart.configure_mesh();
    mesh.bold_line_style(GRID)
        .axis_style(BLACK)
        .label_style((FONT, 15))
        .axis_desc_style((FONT, 16));
    if let Some(x) = x {
        mesh.x_desc(x);
    }
    if let Some(y) = y {
        mesh.y_desc(y);
    } else {
        // Category rows have no grid line through them.
        mesh.disable_y_mesh();
    }
    mesh.draw().map_err(plot_err)?;
    let (xr, yr) = (chart.x_range(), chart.y_range());
    chart
        .draw_series(std::iter::once(Rectangle::new(
            [(xr.start, yr.start), (xr.end, yr.end)],
            BLACK.stroke_width(1),
        )))
        .map_err(plot_err)?;
    Ok(())
}

/// A marker of shape `kind` (circle, square, triangle in turn) at `at`,
/// so lines differ in shape as well as colour: filled, or `hollow` (white
/// inside, an outline in the colour) for a client-bound figure. Outlines
/// are circles and polylines, never outlined rectangles, which are the
/// frame's and the legend's.
pub fn marker<CT: CoordTranslate>(
    area: &DrawingArea<SVGBackend, CT>,
    at: CT::From,
    kind: usize,
    colour: RGBColor,
    hollow: bool,
) -> anyhow::Result<()>
where
    CT::From: Clone,
{
    let fill = if hollow { WHITE } else { colour }.filled();
    match kind % 3 {
        0 => area.draw(&Circle::new(at.clone(), 4, fill)),
        1 => area.draw(&(EmptyElement::at(at.clone()) + Rectangle::new([(-4, -4), (4, 4)], fill))),
        _ => area.draw(&TriangleMarker::new(at.clone(), 5, fill)),
    }
    .map_err(plot_err)?;
    if !hollow {
        return Ok(());
    }
    let line = colour.stroke_width(2);
    let outline: Vec<(i32, i32)> = match kind % 3 {
        0 => return area.draw(&Circle::new(at, 4, line)).map_err(plot_err),
        1 => vec![(-4, -4), (4, -4), (4, 4), (-4, 4), (-4, -4)],
        // TriangleMarker's: its centre at `at`, 5 px to each corner.
        _ => vec![(0, -5), (5, 3), (-4, 3), (0, -5)],
    };
    area.draw(&(EmptyElement::at(at) + PathElement::new(outline, line)))
        .map_err(plot_err)
}

/// The ✗ of a failed cell, centred `offset` pixels from `at` (on the axis
/// where the figure would have been), in the colour of what failed, on a
/// white patch so that an axis line under it breaks there.
pub fn failed_mark<CT: CoordTranslate>(
    area: &DrawingArea<SVGBackend, CT>,
    at: CT::From,
    offset: (i32, i32),
    colour: RGBColor,
) -> anyhow::Result<()> {
    let style = (FONT, 18)
        .into_font()
        .style(FontStyle::Bold)
        .color(&colour)
        .pos(Pos::new(HPos::Center, VPos::Center));
    let (x, y) = offset;
    let patch = Rectangle::new([(x - 6, y - 7), (x + 6, y + 7)], WHITE.filled());
    area.draw(&(EmptyElement::at(at) + patch + Text::new("✗", offset, style)))
        .map_err(plot_err)
}

/// The ⚠ of a disturbed figure, up and right of `at` (its marker or its
/// bar's end), in the colour of what was disturbed.
pub fn disturbed_mark<CT: CoordTranslate>(
    area: &DrawingArea<SVGBackend, CT>,
    at: CT::From,
    colour: RGBColor,
) -> anyhow::Result<()> {
    let style = (FONT, 13)
        .into_font()
        .color(&colour)
        .pos(Pos::new(HPos::Left, VPos::Bottom));
    area.draw(&(EmptyElement::at(at) + Text::new("⚠", (5, -4), style)))
        .map_err(plot_err)
}

/// A min–max whisker from `a` to `b` (one x: vertical, one y:
/// horizontal) with a short cap across each end, `dodge` pixels aside so
/// the whiskers of lines meeting at one point stand apart. Whiskers are
/// the only lines drawn at 80% opacity.
pub fn whisker(
    chart: &Plot,
    (a, b): ((f64, f64), (f64, f64)),
    colour: RGBColor,
    dodge: i32,
) -> anyhow::Result<()> {
    let style = colour.mix(0.8).stroke_width(2);
    let (pa, pb) = (chart.backend_coord(&a), chart.backend_coord(&b));
    let vertical = a.0 == b.0;
    // Pixel offsets from `a`: the dodge, then the other end.
    let (dx, dy) = if vertical { (dodge, 0) } else { (0, dodge) };
    let end = (pb.0 - pa.0 + dx, pb.1 - pa.1 + dy);
    let cap = |(x, y): (i32, i32)| {
        if vertical {
            vec![(x - 4, y), (x + 4, y)]
        } else {
            vec![(x, y - 4), (x, y + 4)]
        }
    };
    for path in [vec![(dx, dy), end], cap((dx, dy)), cap(end)] {
        chart
            .plotting_area()
            .draw(&(EmptyElement::at(a) + PathElement::new(path, style)))
            .map_err(plot_err)?;
    }
    Ok(())
}

/// The legend in a box to the right of the plotted area, its top level
/// with the plot's.
pub fn legend(
    root: &DrawingArea<SVGBackend, Shift>,
    chart: &Plot,
    entries: &[Entry],
) -> anyhow::Result<()> {
    if entries.is_empty() {
        return Ok(());
    }
    let (xs, ys) = chart.plotting_area().get_pixel_range();
    let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
    let (x0, y0) = (xs.end + 24, ys.start);
    let (x1, y1) = (
        x0 + legend_width(&names) as i32 - 24,
        y0 + legend_height(entries.len()) as i32,
    );
    root.draw(&Rectangle::new([(x0, y0), (x1, y1)], WHITE.filled()))
        .map_err(plot_err)?;
    root.draw(&Rectangle::new(
        [(x0, y0), (x1, y1)],
        RGBColor(150, 150, 150),
    ))
    .map_err(plot_err)?;
    for (i, e) in entries.iter().enumerate() {
        let y = y0 + 18 + i as i32 * LEGEND_ROW;
        let (a, b) = ((x0 + 10, y), (x0 + 34, y));
        let line = e.colour.stroke_width(2);
        match e.swatch {
            Swatch::Line(kind) => {
                root.draw(&PathElement::new(vec![a, b], line))
                    .map_err(plot_err)?;
                marker(root, (x0 + 22, y), kind, e.colour, false)?;
            }
            Swatch::Bar => root
                .draw(&Rectangle::new(
                    [(x0 + 12, y - 6), (x0 + 32, y + 6)],
                    e.colour.filled(),
                ))
                .map_err(plot_err)?,
            Swatch::Dashed => root
                .draw(&DashedPathElement::new(vec![a, b], 5, 3, line))
                .map_err(plot_err)?,
        }
        root.draw(&Text::new(
            e.name.clone(),
            (x0 + 42, y - 8),
            (FONT, 15).into_font().color(&BLACK),
        ))
        .map_err(plot_err)?;
    }
    Ok(())
}

/// Pixels a note line takes under a chart.
pub const NOTE_ROW: u32 = 18;

/// The lines under a chart that say what its marks mean (whiskers, hollow
/// marks, ✗), the last at the bottom, each starting left of the plot's
/// axis so none is taken for an axis title. The chart leaves
/// `NOTE_ROW` pixels per line free at its bottom for them.
pub fn notes(root: &DrawingArea<SVGBackend, Shift>, lines: &[String]) -> anyhow::Result<()> {
    let (_, h) = root.dim_in_pixel();
    let style = (FONT, 14).into_font().color(&RGBColor(90, 90, 90));
    let n = lines.len() as i32;
    for (i, line) in lines.iter().enumerate() {
        let y = h as i32 - 20 - (n - 1 - i as i32) * NOTE_ROW as i32;
        root.draw(&Text::new(line.clone(), (8, y), style.clone()))
            .map_err(plot_err)?;
    }
    Ok(())
}

/// A white canvas of `height` for the SVG at `path`.
pub fn canvas(path: &Path, height: u32) -> anyhow::Result<DrawingArea<SVGBackend<'_>, Shift>> {
    let root = SVGBackend::new(path, (WIDTH, height)).into_drawing_area();
    root.fill(&WHITE).map_err(plot_err)?;
    Ok(root)
}
