//! `reach`'s chart: memory per connection against connections held, a
//! line per style over a log axis of connections. The step a style did
//! not hold is a ✗ at the axis, not a value: its memory per connection
//! (connections that timed out, a server gone) describes no holding.

use crate::compare::scenarios::reach::held;
use crate::report::charts::axis::{Axis, Labels};
use crate::report::charts::canvas::{Cell, Value};
use crate::report::charts::line::{LineChart, Series};
use crate::report::compare::sections::reach::{ladders, objective, per_conn};
use crate::report::view::View;

/// Memory per connection against connections held, a line per style (log
/// x); None where no step has a figure.
pub fn chart(v: &View) -> Option<LineChart> {
    let ladders = ladders(v);
    let objective = objective(v);
    let series = v
        .styles()
        .into_iter()
        .map(|style| {
            let points = ladders
                .iter()
                .filter(|l| l.style == style)
                .flat_map(|l| l.steps.iter())
                .filter_map(|r| {
                    let x = r.spec.total_conns() as f64;
                    if held(r, objective).is_err() {
                        return Some((x, Cell::Failed));
                    }
                    let y = per_conn(r)? / 1024.0;
                    Some((x, Cell::from(Value::from(y))))
                })
                .collect();
            Series {
                name: style,
                points,
            }
        })
        .collect();
    let chart = LineChart {
        title: "reach: memory per connection against connections held".into(),
        x: Axis::conns(),
        y: Axis::new("memory per connection", "KiB", false, Labels::Plain),
        series,
    };
    chart.has_values().then_some(chart)
}
