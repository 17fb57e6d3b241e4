//! The charts of a comparison, read off the runs through [`View`]: per
//! message size the closed-loop throughput and p99 against connections and
//! the throughput as a ratio to epoll's; then a bar chart per figure of
//! the other scenarios. Each figure is the median run's, with the min–max
//! of its rounds as a whisker (rounds that failed left out), hollow where
//! loadgen was its limit; where the median run failed (✗ in the tables:
//! [`failed`]) the chart draws a ✗ and no value.

use std::path::Path;

use crate::report::charts::axis::Axis;
use crate::report::charts::bars::{BarChart, Group, HOLLOW_NOTE};
use crate::report::charts::canvas::{Cell, Chart, Value};
use crate::report::charts::line::{LineChart, Series};
use crate::report::cost::cpu_us_per_msg;
use crate::report::view::{Spread, View, failed, reference};
use crate::results::RunResult;

/// A figure read off one run.
type Figure = fn(&RunResult) -> Option<f64>;

/// `figure` of a run that did not fail (a failed round is in no range).
fn sound(figure: Figure) -> impl Fn(&RunResult) -> Option<f64> {
    move |r| if failed(r) { None } else { figure(r) }
}

/// What a chart shows for `r`, the median run of its point: a ✗ where it
/// failed, else its figure with `spread` (over the rounds that did not
/// fail), hollow where loadgen was the limit; None where it has no such
/// figure.
fn cell(view: &View, r: &RunResult, figure: Figure, spread: Option<Spread>) -> Option<Cell> {
    if failed(r) {
        return Some(Cell::Failed);
    }
    // The tables' figure: the median over the rounds (with two rounds the
    // median run is the lower one, which would sit at the whisker's end).
    let x = spread.map(|s| s.median).or_else(|| figure(r))?;
    let v = Value::with_spread(x, spread);
    let disturbed = view.repeats(r).iter().any(|x| x.disturbed);
    Some(
        v.client_bound(r.client.client_bound)
            .disturbed(disturbed)
            .into(),
    )
}

fn throughput(r: &RunResult) -> Option<f64> {
    Some(r.throughput_msgs_per_s)
}

fn p99_ms(r: &RunResult) -> Option<f64> {
    (r.messages > 0).then(|| r.latency_us.p99 as f64 / 1000.0)
}

/// Server CPU milliseconds per 10k messages (from the cgroup where the
/// server ran in one, else from the /proc samples).
fn cpu_ms_per_10k(r: &RunResult) -> Option<f64> {
    if r.messages == 0 {
        return None;
    }
    if let Some(us) = cpu_us_per_msg(r) {
        return Some(us * 10.0);
    }
    let sv = r.server.as_ref()?;
    Some(sv.cpu_percent / 100.0 * r.measured_s * 1000.0 / r.messages as f64 * 10_000.0)
}

/// One line per style: connections against `figure` over the scale runs
/// of `size`.
fn scale_chart(view: &View, size: usize, title: String, y: Axis, figure: Figure) -> LineChart {
    let series = view
        .styles()
        .into_iter()
        .map(|style| {
            let points = view
                .scale_points(&style, size)
                .into_iter()
                .filter_map(|r| {
                    let conns = r.spec.conns;
                    let spread = view.scale_spread(&style, conns, size, false, sound(figure));
                    Some((conns as f64, cell(view, r, figure, spread)?))
                })
                .collect();
            Series {
                name: style,
                points,
            }
        })
        .collect();
    LineChart {
        title,
        x: Axis::conns(),
        y,
        series,
    }
}

/// `style`'s throughput over epoll's at a scale point: the paired ratios'
/// median and range over the rounds where neither run failed; a ✗ where
/// the style's median run or the epoll run it is divided by failed; hollow
/// where loadgen was the limit of either.
fn ratio_cell(view: &View, style: &str, conns: usize, size: usize) -> Option<Cell> {
    let r = view.scale_point(style, conns, size)?;
    let e = (view.partner(r)).or_else(|| view.scale_point(reference(), conns, size));
    if failed(r) || e.is_some_and(failed) {
        return Some(Cell::Failed);
    }
    let throughput = sound(|r| Some(r.throughput_msgs_per_s));
    let ratio = view.scale_spread(style, conns, size, true, throughput)?;
    let client_bound = r.client.client_bound || e.is_some_and(|e| e.client.client_bound);
    // A round of the style or of the epoll run it is divided by.
    let disturbed = (view.repeats(r).into_iter())
        .any(|x| x.disturbed || view.denominator(x).is_some_and(|d| d.disturbed));
    Some(
        Value::from(ratio)
            .client_bound(client_bound)
            .disturbed(disturbed)
            .into(),
    )
}

/// Each style's throughput over epoll's at every connection count (the
/// paired ratios' median and range); epoll itself is the line at 1.
fn ratio_chart(view: &View, size: usize) -> BarChart {
    let conns = view.scale_conns();
    let groups = view
        .styles()
        .into_iter()
        .filter(|s| s != reference())
        .map(|style| Group {
            bars: (conns.iter())
                .map(|c| ratio_cell(view, &style, *c, size))
                .collect(),
            name: style,
        })
        .collect();
    BarChart {
        title: format!(
            "Closed-loop throughput ÷ {}'s, {size} B messages",
            reference()
        ),
        value: Axis::plain(&format!("throughput ÷ {}'s", reference()), "×"),
        groups,
        legend: conns
            .iter()
            .map(|c| format!("{c} conn{}", if *c == 1 { "" } else { "s" }))
            .collect(),
        reference: Some((1.0, format!("{} = 1", reference()))),
        hollow_note: "hollow bar: client-bound (loadgen was the limit of this style's run or of epoll's); \
                      filled: of neither",
    }
}

/// A bar per style: `figure` of the run `pick` finds for it.
fn style_bars<'a>(
    view: &View<'a>,
    title: &str,
    value: Axis,
    pick: impl Fn(&str) -> Option<&'a RunResult>,
    figure: Figure,
) -> BarChart {
    let groups = view
        .styles()
        .into_iter()
        .map(|style| {
            let bar =
                pick(&style).and_then(|r| cell(view, r, figure, view.spread(r, sound(figure))));
            Group {
                name: style,
                bars: vec![bar],
            }
        })
        .collect();
    BarChart {
        title: title.to_string(),
        value,
        groups,
        legend: Vec::new(),
        reference: None,
        hollow_note: HOLLOW_NOTE,
    }
}

/// The bar charts of the scenarios other than scale, with their files.
fn scenario_bars<'a>(view: &View<'a>) -> Vec<(&'static str, BarChart)> {
    // Every style's closed-loop run at the most connections of the
    // smallest size (the same point for all: one that failed is a ✗, not
    // a figure from fewer connections).
    let size = view.scale_sizes().first().copied();
    let most = view.scale_conns().last().copied();
    let busiest = |s: &str| view.scale_point(s, most?, size?);
    let cpu_title = match (most, size) {
        (Some(c), Some(b)) => {
            format!("Server CPU per 10k messages (closed loop, {c} conns, {b} B)")
        }
        _ => "Server CPU per 10k messages (closed loop)".into(),
    };
    let idle = |s: &str| view.idle_run(s);
    vec![
        (
            "rss_per_conn.svg",
            style_bars(
                view,
                "Server memory per idle connection",
                Axis::plain("memory per connection", "KiB"),
                idle,
                |r| Some(r.server.as_ref()?.rss_per_conn_bytes / 1024.0),
            ),
        ),
        (
            "idle_cpu.svg",
            style_bars(
                view,
                "Server CPU while most connections are idle",
                Axis::plain("server CPU", "% of one core"),
                idle,
                |r| Some(r.server.as_ref()?.cpu_percent),
            ),
        ),
        (
            "cpu_per_10k.svg",
            style_bars(
                view,
                &cpu_title,
                Axis::plain("server CPU per 10k messages", "ms"),
                busiest,
                cpu_ms_per_10k,
            ),
        ),
        (
            "fairness.svg",
            style_bars(
                view,
                "Light clients' p99 beside a CPU-heavy one",
                Axis::latency_ms("light clients' p99"),
                |s| view.fairness_light(s),
                p99_ms,
            ),
        ),
        (
            "churn.svg",
            style_bars(
                view,
                "Connection churn: connect, echo once, close",
                Axis::rate("connections opened", "conns/s"),
                |s| view.churn_run(s),
                |r| Some(r.connect.rate_per_s),
            ),
        ),
    ]
}

/// Draws every chart the results allow into `dir`.
pub fn draw_all(view: &View, dir: &Path) -> anyhow::Result<Vec<Chart>> {
    let mut charts = Vec::new();
    for size in view.scale_sizes() {
        let lines = [
            (
                format!("throughput_{size}B.svg"),
                format!("Closed-loop throughput, {size} B messages"),
                Axis::rate("throughput", "msgs/s"),
                throughput as Figure,
            ),
            (
                format!("p99_{size}B.svg"),
                format!("Closed-loop p99 round trip, {size} B messages"),
                Axis::latency_ms("p99 round trip"),
                p99_ms,
            ),
        ];
        for (file, title, y, figure) in lines {
            let chart = scale_chart(view, size, title, y, figure);
            if chart.has_values() {
                charts.push(chart.draw(dir, &file)?);
            }
        }
        if view.has_reference(size) {
            let ratios = ratio_chart(view, size);
            if ratios.has_values() {
                charts.push(ratios.draw(dir, &format!("ratio_{size}B.svg"))?);
            }
        }
    }
    for (file, chart) in scenario_bars(view) {
        if chart.has_values() {
            charts.push(chart.draw(dir, file)?);
        }
    }
    Ok(charts)
}
