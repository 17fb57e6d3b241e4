//! SVG charts of a comparison (plotters), one file per figure.

use std::path::Path;

use anyhow::Context;
use plotters::coord::ranged1d::{Ranged, ValueFormatter};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use crate::compare::model::CompareResults;
use crate::report::cost::cpu_us_per_msg;
use crate::report::view::View;
use crate::results::RunResult;

/// A chart written to disk: its path relative to the report, and a title.
#[derive(Clone, Debug, PartialEq)]
pub struct Chart {
    pub file: String,
    pub title: String,
}

type Series = (String, Vec<(f64, f64)>);

/// A figure read off one scale run.
type ScaleValue<'a> = &'a dyn Fn(&RunResult) -> Option<f64>;

/// A figure read off the results for one style.
type StyleValue<'a> = Box<dyn Fn(&str) -> Option<f64> + 'a>;

/// One bar chart: a value per style.
struct BarSpec<'a> {
    file: &'static str,
    title: &'static str,
    y: &'static str,
    value: StyleValue<'a>,
    log: bool,
}

fn bar<'a>(
    file: &'static str,
    title: &'static str,
    y: &'static str,
    value: StyleValue<'a>,
    log: bool,
) -> BarSpec<'a> {
    BarSpec {
        file,
        title,
        y,
        value,
        log,
    }
}

/// One line per style over the `scale` runs of `size`: connections against
/// `value` (points where it is None are left out).
fn scale_series(
    view: &View,
    size: usize,
    value: impl Fn(&RunResult) -> Option<f64>,
) -> Vec<Series> {
    view.styles()
        .into_iter()
        .map(|style| {
            let pts = view
                .scale_points(&style, size)
                .into_iter()
                .filter_map(|r| value(r).map(|v| (r.spec.conns as f64, v)))
                .collect();
            (style, pts)
        })
        .collect()
}

/// Server CPU milliseconds per 10k messages at the largest connection
/// count of the smallest size (from the cgroup where there is one, else
/// from the /proc samples).
fn cpu_ms_per_10k(view: &View, style: &str) -> Option<f64> {
    let size = *view.scale_sizes().first()?;
    let r = view
        .scale_points(style, size)
        .into_iter()
        .rev()
        .find(|r| r.messages > 0)?;
    // The cgroup's exact figure where the server ran in one.
    if let Some(us) = cpu_us_per_msg(r) {
        return Some(us * 10.0);
    }
    let sv = r.server.as_ref()?;
    Some(sv.cpu_percent / 100.0 * r.measured_s * 1000.0 / r.messages as f64 * 10_000.0)
}

/// Draws every chart the results allow into `dir`.
pub fn draw_all(results: &CompareResults, dir: &Path) -> anyhow::Result<Vec<Chart>> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let view = View::new(results);
    let mut charts = Vec::new();
    for size in view.scale_sizes() {
        let lines: [(String, String, &str, ScaleValue, bool); 2] = [
            (
                format!("throughput_{size}B.svg"),
                format!("Closed-loop throughput, {size} B messages"),
                "messages/s",
                &|r| Some(r.throughput_msgs_per_s),
                false,
            ),
            (
                format!("p99_{size}B.svg"),
                format!("Closed-loop p99 latency, {size} B messages (log scale)"),
                "p99 (ms)",
                &|r| (r.messages > 0).then(|| r.latency_us.p99 as f64 / 1000.0),
                true,
            ),
        ];
        for (file, title, y, value, log) in lines {
            let series = scale_series(&view, size, value);
            line_chart(&dir.join(&file), &title, "connections", y, &series, log)?;
            charts.push(Chart {
                file: format!("charts/{file}"),
                title,
            });
        }
    }
    let bars = vec![
        bar(
            "rss_per_conn.svg",
            "Server memory per idle connection",
            "KiB per connection",
            Box::new(|s| {
                view.idle_run(s)
                    .and_then(|r| r.server.as_ref())
                    .map(|sv| sv.rss_per_conn_bytes / 1024.0)
            }),
            false,
        ),
        bar(
            "idle_cpu.svg",
            "Server CPU while most connections are idle",
            "CPU % of one core",
            Box::new(|s| {
                view.idle_run(s)
                    .and_then(|r| r.server.as_ref())
                    .map(|sv| sv.cpu_percent)
            }),
            false,
        ),
        bar(
            "cpu_per_10k.svg",
            "Server CPU time per 10k messages (closed loop, most connections, smallest size)",
            "CPU ms per 10k messages",
            Box::new(|s| cpu_ms_per_10k(&view, s)),
            false,
        ),
        bar(
            "fairness.svg",
            "Light clients' p99 beside one CPU-heavy client (log; no reply at all: drawn at the stall)",
            "light p99 (ms)",
            // A style that answered nothing has no p99; the stall (the whole
            // window) is a lower bound of it.
            Box::new(|s| {
                view.fairness_light(s).map(|r| {
                    if r.messages > 0 {
                        r.latency_us.p99 as f64 / 1000.0
                    } else {
                        r.fairness.longest_stall_ms
                    }
                })
            }),
            true,
        ),
        bar(
            "churn.svg",
            "Connection churn: connect, echo once, close",
            "connections/s",
            Box::new(|s| view.churn_run(s).map(|r| r.connect.rate_per_s)),
            false,
        ),
    ];
    for BarSpec {
        file,
        title,
        y,
        value,
        log,
    } in &bars
    {
        let items: Vec<(String, f64)> = view
            .styles()
            .iter()
            .filter_map(|s| value(s).map(|v| (s.clone(), v)))
            .collect();
        if items.is_empty() {
            continue;
        }
        bar_chart(&dir.join(file), title, y, &items, *log)?;
        charts.push(Chart {
            file: format!("charts/{file}"),
            title: title.to_string(),
        });
    }
    for (file, title, items) in crate::report::capacity::charts(results) {
        bar_chart(&dir.join(&file), &title, "messages/s", &items, false)?;
        charts.push(Chart {
            file: format!("charts/{file}"),
            title,
        });
    }
    Ok(charts)
}

/// A log axis from the decade below `min` to the decade above `max`, at
/// least one decade wide (plotters needs a sane range to place its ticks).
fn log_range(min: f64, max: f64) -> (f64, f64) {
    // f64::MAX stands for "no positive value" in the callers' folds.
    let min = if min > 0.0 && min < f64::MAX / 2.0 {
        min
    } else {
        1e-3
    };
    let max = if max.is_finite() && max > min {
        max
    } else {
        min * 10.0
    };
    let lo = 10f64.powf(min.log10().floor());
    let hi = 10f64.powf(max.log10().ceil()).max(lo * 10.0);
    (lo, hi)
}

fn plot_err<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow::anyhow!("plotting: {e:?}")
}

fn line_chart(
    path: &Path,
    title: &str,
    x: &str,
    y: &str,
    series: &[Series],
    log_y: bool,
) -> anyhow::Result<()> {
    let root = SVGBackend::new(path, (760, 440)).into_drawing_area();
    root.fill(&WHITE).map_err(plot_err)?;
    let xs = series.iter().flat_map(|(_, p)| p.iter().map(|(x, _)| *x));
    let ys = series.iter().flat_map(|(_, p)| p.iter().map(|(_, y)| *y));
    let x_max = xs.fold(1.0f64, f64::max) * 1.5;
    let y_vals: Vec<f64> = ys.collect();
    let y_max = y_vals.iter().copied().fold(0.0f64, f64::max).max(1e-3) * 1.2;
    let y_min = y_vals
        .iter()
        .copied()
        .filter(|v| *v > 0.0)
        .fold(f64::MAX, f64::min);
    let mut builder = ChartBuilder::on(&root);
    builder
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(70);
    let x_range = (0.8f64..x_max).log_scale();
    if log_y {
        let (lo, hi) = log_range(y_min, y_max);
        let mut chart = builder
            .build_cartesian_2d(x_range, (lo..hi).log_scale())
            .map_err(plot_err)?;
        draw_lines(&mut chart, x, y, series, SeriesLabelPosition::UpperLeft)?;
    } else {
        let mut chart = builder
            .build_cartesian_2d(x_range, 0f64..y_max)
            .map_err(plot_err)?;
        draw_lines(&mut chart, x, y, series, SeriesLabelPosition::UpperRight)?;
    }
    root.present().map_err(plot_err)?;
    Ok(())
}

/// Axes, one line per series and a legend, on either kind of y axis.
fn draw_lines<'a, X, Y>(
    chart: &mut ChartContext<'a, SVGBackend<'a>, Cartesian2d<X, Y>>,
    x: &str,
    y: &str,
    series: &[Series],
    legend: SeriesLabelPosition,
) -> anyhow::Result<()>
where
    X: Ranged<ValueType = f64> + ValueFormatter<f64>,
    Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    chart
        .configure_mesh()
        .x_desc(x)
        .y_desc(y)
        .draw()
        .map_err(plot_err)?;
    for (i, (name, pts)) in series.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        chart
            .draw_series(LineSeries::new(pts.clone(), color.stroke_width(2)).point_size(3))
            .map_err(plot_err)?
            .label(name.as_str())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(legend)
        .draw()
        .map_err(plot_err)?;
    Ok(())
}

/// Axes and one bar per item from `base`, on either kind of y axis.
fn draw_bars<Y>(
    chart: &mut ChartContext<'_, SVGBackend<'_>, Cartesian2d<RangedCoordf64, Y>>,
    y: &str,
    items: &[(String, f64)],
    base: f64,
    label: &dyn Fn(&f64) -> String,
) -> anyhow::Result<()>
where
    Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(items.len())
        .x_label_formatter(label)
        .y_desc(y)
        .draw()
        .map_err(plot_err)?;
    chart
        .draw_series(items.iter().enumerate().map(|(i, (_, v))| {
            let c = Palette99::pick(i).filled();
            Rectangle::new([(i as f64 - 0.35, base), (i as f64 + 0.35, v.max(base))], c)
        }))
        .map_err(plot_err)?;
    Ok(())
}

fn bar_chart(
    path: &Path,
    title: &str,
    y: &str,
    items: &[(String, f64)],
    log_y: bool,
) -> anyhow::Result<()> {
    let root = SVGBackend::new(path, (760, 420)).into_drawing_area();
    root.fill(&WHITE).map_err(plot_err)?;
    let n = items.len();
    let y_max = items
        .iter()
        .map(|(_, v)| *v)
        .fold(0.0f64, f64::max)
        .max(1e-3)
        * 1.2;
    let names: Vec<String> = items.iter().map(|(s, _)| s.clone()).collect();
    let label = move |x: &f64| {
        let i = x.round();
        if (x - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < names.len() {
            names[i as usize].clone()
        } else {
            String::new()
        }
    };
    let mut builder = ChartBuilder::on(&root);
    builder
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(70);
    let x_range = -0.6f64..(n as f64 - 0.4);
    if log_y {
        let min = items
            .iter()
            .map(|(_, v)| *v)
            .filter(|v| *v > 0.0)
            .fold(f64::MAX, f64::min);
        let (lo, hi) = log_range(min, y_max);
        let mut chart = builder
            .build_cartesian_2d(x_range, (lo..hi).log_scale())
            .map_err(plot_err)?;
        draw_bars(&mut chart, y, items, lo, &label)?;
    } else {
        let mut chart = builder
            .build_cartesian_2d(x_range, 0f64..y_max)
            .map_err(plot_err)?;
        draw_bars(&mut chart, y, items, 0.0, &label)?;
    }
    root.present().map_err(plot_err)?;
    Ok(())
}
