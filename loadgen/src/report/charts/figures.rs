//! The charts of a comparison, read off the runs through [`View`]: per
//! message size the closed-loop throughput and p99 against connections and
//! the throughput as a ratio to epoll's; then a bar chart per figure of
//! the other scenarios. Each figure is the median run's, with the min–max
//! of its repeats as a whisker.

use std::path::Path;

use crate::report::charts::axis::Axis;
use crate::report::charts::bars::{BarChart, Group};
use crate::report::charts::canvas::{Chart, Value};
use crate::report::charts::line::{LineChart, Series};
use crate::report::cost::cpu_us_per_msg;
use crate::report::view::{View, reference};
use crate::results::RunResult;

/// A figure read off one run.
type Figure = fn(&RunResult) -> Option<f64>;

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

/// The light clients' p99 beside the heavy one; a style that answered
/// nothing has no p99, and the stall (the whole window) is a lower bound
/// of it.
fn fairness_ms(r: &RunResult) -> Option<f64> {
    Some(if r.messages > 0 {
        r.latency_us.p99 as f64 / 1000.0
    } else {
        r.fairness.longest_stall_ms
    })
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
                    let v = figure(r)?;
                    let spread = view.scale_spread(&style, r.spec.conns, size, false, figure);
                    Some((r.spec.conns as f64, Value::with_spread(v, spread)))
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
                .map(|c| view.vs_reference_spread(&style, *c, size).map(Value::from))
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
            let bar = pick(&style)
                .and_then(|r| Some(Value::with_spread(figure(r)?, view.spread(r, figure))));
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
    }
}

/// The bar charts of the scenarios other than scale, with their files.
fn scenario_bars<'a>(view: &View<'a>) -> Vec<(&'static str, BarChart)> {
    // The closed-loop run with the most connections of the smallest size.
    let busiest = |s: &str| {
        let size = *view.scale_sizes().first()?;
        let pts = view.scale_points(s, size);
        pts.into_iter().rev().find(|r| r.messages > 0)
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
                "Server CPU per 10k messages (closed loop, most conns, smallest size)",
                Axis::plain("server CPU per 10k messages", "ms"),
                busiest,
                cpu_ms_per_10k,
            ),
        ),
        (
            "fairness.svg",
            style_bars(
                view,
                "Light clients' p99 beside a CPU-heavy one (no reply: drawn at the stall)",
                Axis::latency_ms("light clients' p99"),
                |s| view.fairness_light(s),
                fairness_ms,
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
