//! The axes of every chart: what an axis measures and in which unit
//! ([`Axis`]), where its ticks go and how they read ([`Scale`], a plotters
//! coordinate whose ticks and labels are ours: decades on a log axis, 1-2-5
//! steps on a linear one, "1k"/"1.2M" for counts and rates, categories for
//! the bars' styles). Knows nothing of the results.

use std::ops::Range;

use plotters::coord::ranged1d::ValueFormatter;
use plotters::coord::ranged1d::{KeyPointHint, KeyPointWeight, NoDefaultFormatting, Ranged};

/// How an axis's tick labels read.
#[derive(Clone, Debug, PartialEq)]
pub enum Labels {
    /// Counts and rates: "50", "1k", "12.5k", "1.2M".
    Si,
    /// Small figures in their unit (ms, %, ratios): "0.5", "1", "250".
    Plain,
}

impl Labels {
    pub fn format(&self, v: f64) -> String {
        match self {
            Labels::Si => si(v),
            Labels::Plain => plain(v),
        }
    }
}

/// What an axis measures: "throughput" in "msgs/s"; the title reads
/// "throughput (msgs/s)", with ", log scale" where it is one.
#[derive(Clone, Debug, PartialEq)]
pub struct Axis {
    pub quantity: String,
    pub unit: String,
    pub log: bool,
    pub labels: Labels,
}

impl Axis {
    pub fn new(quantity: &str, unit: &str, log: bool, labels: Labels) -> Axis {
        Axis {
            quantity: quantity.to_string(),
            unit: unit.to_string(),
            log,
            labels,
        }
    }

    /// Connections on a log axis: 1, 10, 100, 1k, 10k.
    pub fn conns() -> Axis {
        Axis::new("concurrent connections", "conns", true, Labels::Si)
    }

    /// A rate or count on a linear axis from 0, SI-labelled.
    pub fn rate(quantity: &str, unit: &str) -> Axis {
        Axis::new(quantity, unit, false, Labels::Si)
    }

    /// A latency in milliseconds on a log axis (latencies span decades).
    pub fn latency_ms(quantity: &str) -> Axis {
        Axis::new(quantity, "ms", true, Labels::Plain)
    }

    /// Any other figure on a linear axis from 0.
    pub fn plain(quantity: &str, unit: &str) -> Axis {
        Axis::new(quantity, unit, false, Labels::Plain)
    }

    pub fn title(&self) -> String {
        let log = if self.log { ", log scale" } else { "" };
        format!("{} ({}{log})", self.quantity, self.unit)
    }

    /// A value of this axis as its ticks read.
    pub fn label(&self, v: f64) -> String {
        self.labels.format(v)
    }

    /// The scale that holds `values` (non-finite ones ignored; on a log
    /// axis, non-positive ones too).
    pub fn scale(&self, values: impl IntoIterator<Item = f64>) -> Scale {
        let (min, max) = values
            .into_iter()
            .filter(|v| v.is_finite() && (!self.log || *v > 0.0))
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
                (lo.min(v), hi.max(v))
            });
        if self.log {
            Scale::log(min, max, self.labels.clone())
        } else {
            Scale::linear(max, self.labels.clone())
        }
    }
}

/// `v` with at most three significant digits and no trailing zeros:
/// 0.05, 1.25, 12.5, 150, 2.
fn trimmed(v: f64) -> String {
    let a = v.abs();
    let digits = if a >= 100.0 || a == 0.0 {
        0
    } else {
        (2 - a.log10().floor() as i32).clamp(0, 6) as usize
    };
    let s = format!("{v:.digits$}");
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    };
    if s == "-0" { "0".into() } else { s }
}

/// A count or rate with an SI suffix: 1, 10, 100, 1k, 10k, 50k, 1.2M.
pub fn si(v: f64) -> String {
    let a = v.abs();
    let (div, suffix) = if a >= 1e9 {
        (1e9, "G")
    } else if a >= 1e6 {
        (1e6, "M")
    } else if a >= 1e3 {
        (1e3, "k")
    } else {
        (1.0, "")
    };
    format!("{}{suffix}", trimmed(v / div))
}

/// A figure in its own unit: 0.25, 1, 40, 1000.
pub fn plain(v: f64) -> String {
    if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else {
        trimmed(v)
    }
}

/// The 1-2-2.5-5 step that divides `span` into about `n` parts.
fn nice_step(span: f64, n: f64) -> f64 {
    let raw = span / n;
    let decade = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0]
        .into_iter()
        .map(|m| m * decade)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * decade)
}

/// One axis's coordinate: its range, where its ticks are and how they read.
#[derive(Clone, Debug, PartialEq)]
pub struct Scale {
    lo: f64,
    hi: f64,
    log: bool,
    ticks: Vec<f64>,
    labels: Labels,
    /// Category names, top to bottom, where the axis holds categories.
    names: Vec<String>,
}

impl Scale {
    /// From 0 to the first tick at or above `max` (plus a little room),
    /// ticks every 1, 2, 2.5 or 5 times a power of ten.
    pub fn linear(max: f64, labels: Labels) -> Scale {
        let max = if max.is_finite() && max > 0.0 {
            max
        } else {
            1.0
        };
        let step = nice_step(max * 1.05, 5.0);
        let n = (max * 1.05 / step).ceil().max(1.0) as usize;
        Scale {
            lo: 0.0,
            hi: n as f64 * step,
            log: false,
            ticks: (0..=n).map(|i| i as f64 * step).collect(),
            labels,
            names: Vec::new(),
        }
    }

    /// From the decade at or below `min` to the one at or above `max` (at
    /// least one decade), ticks on each decade; a little room either side
    /// so markers on the end decades are whole.
    pub fn log(min: f64, max: f64, labels: Labels) -> Scale {
        let (min, max) = if min.is_finite() && min > 0.0 {
            (min, max.max(min))
        } else {
            (1.0, 10.0)
        };
        let lo = min.log10().floor() as i32;
        let hi = (max.log10().ceil() as i32).max(lo + 1);
        // Every decade up to 8 of them, beyond that every other one; within
        // two decades, 2 and 5 times each as well so the axis has enough.
        let every = if hi - lo > 8 { 2 } else { 1 };
        let steps: &[f64] = if hi - lo <= 2 {
            &[1.0, 2.0, 5.0]
        } else {
            &[1.0]
        };
        let ticks = (lo..=hi)
            .step_by(every)
            .flat_map(|e| steps.iter().map(move |m| m * 10f64.powi(e)))
            .filter(|t| *t <= 10f64.powi(hi))
            .collect();
        Scale {
            lo: 10f64.powi(lo) / 1.25,
            hi: 10f64.powi(hi) * 1.25,
            log: true,
            ticks,
            labels,
            names: Vec::new(),
        }
    }

    /// One slot per name, the first at the top: slot i is at value
    /// `len - 1 - i`, so a bar chart's first style is its top row.
    pub fn categories(names: Vec<String>) -> Scale {
        let n = names.len().max(1);
        Scale {
            lo: -0.5,
            hi: n as f64 - 0.5,
            log: false,
            ticks: (0..names.len()).map(|i| i as f64).collect(),
            labels: Labels::Plain,
            names,
        }
    }

    pub fn ticks(&self) -> &[f64] {
        &self.ticks
    }

    pub fn label(&self, v: f64) -> String {
        if !self.names.is_empty() {
            let i = v.round();
            let n = self.names.len() as f64;
            return if (v - i).abs() < 1e-6 && i >= 0.0 && i < n {
                self.names[(n - 1.0 - i) as usize].clone()
            } else {
                String::new()
            };
        }
        self.labels.format(v)
    }

    fn fraction(&self, v: f64) -> f64 {
        if self.log {
            let v = v.max(self.lo);
            (v.ln() - self.lo.ln()) / (self.hi.ln() - self.lo.ln())
        } else {
            (v - self.lo) / (self.hi - self.lo)
        }
    }
}

impl Ranged for Scale {
    type FormatOption = NoDefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        let f = self.fraction(*value);
        let px = limit.0 as f64 + f * (limit.1 - limit.0) as f64;
        // Far-off values stay drawable rather than overflowing.
        px.clamp(-1e6, 1e6).round() as i32
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        // Our ticks are the bold lines; no light lines between them.
        match hint.weight() {
            KeyPointWeight::Bold => self.ticks.clone(),
            KeyPointWeight::Any => Vec::new(),
        }
    }

    fn range(&self) -> Range<f64> {
        self.lo..self.hi
    }
}

impl ValueFormatter<f64> for Scale {
    fn format_ext(&self, value: &f64) -> String {
        self.label(*value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_read_as_people_write_them() {
        let got: Vec<String> = [1.0, 10.0, 100.0, 1e3, 1e4, 5e4, 1.2e6, 12_500.0, 0.0]
            .into_iter()
            .map(si)
            .collect();
        assert_eq!(
            got,
            ["1", "10", "100", "1k", "10k", "50k", "1.2M", "12.5k", "0"]
        );
        let got: Vec<String> = [0.05, 0.5, 1.0, 2.5, 1000.0, 0.30000000000000004]
            .into_iter()
            .map(plain)
            .collect();
        assert_eq!(got, ["0.05", "0.5", "1", "2.5", "1000", "0.3"]);
    }

    #[test]
    fn log_ticks_are_decades_and_linear_ones_nice_steps() {
        let conns = Axis::conns().scale([1.0, 50.0, 1000.0, 5000.0]);
        let labels: Vec<String> = conns.ticks().iter().map(|t| conns.label(*t)).collect();
        assert_eq!(labels, ["1", "10", "100", "1k", "10k"]);
        let rate = Axis::rate("throughput", "msgs/s").scale([12_000.0, 151_000.0]);
        let labels: Vec<String> = rate.ticks().iter().map(|t| rate.label(*t)).collect();
        assert_eq!(labels, ["0", "50k", "100k", "150k", "200k"]);
        let ratio = Axis::plain("ratio", "×").scale([0.4, 1.0, 2.3]);
        assert_eq!(ratio.ticks(), [0.0, 0.5, 1.0, 1.5, 2.0, 2.5]);
        // Nothing to show still gives a sane axis.
        let empty = Axis::latency_ms("p99").scale([]);
        assert_eq!(empty.ticks(), [1.0, 2.0, 5.0, 10.0]);
    }

    #[test]
    fn categories_run_top_to_bottom() {
        let s = Scale::categories(vec!["a".into(), "b".into(), "c".into()]);
        assert_eq!(s.label(2.0), "a");
        assert_eq!(s.label(0.0), "c");
        assert_eq!(s.label(0.5), "");
    }
}
