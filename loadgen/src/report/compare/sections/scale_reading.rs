//! The scale section's reading and the cost tables' reading: what the
//! rounds separate, point by point, through [`crate::report::compare::rank`]
//! (a style above or below epoll only where its paired ratio's whole range
//! is; two other styles only where their ranges do not meet), and which
//! cells were left out of every ranking and why.

use std::collections::BTreeMap;

use servers::Style;

use crate::report::compare::rank::{
    Left, Told, against_one, between, chain, quota_in_force, range, scale_left,
};
use crate::report::md::thousands;
use crate::report::view::{Spread, View, reference};
use crate::results::RunResult;

/// What a reading ranks a scale point by.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Figure {
    /// msg/s: higher is faster.
    Rate,
    /// Server CPU per message: lower is leaner; both sides server-bound.
    Cost,
}

impl Figure {
    fn value(self, r: &RunResult) -> Option<f64> {
        match self {
            Figure::Rate => Some(r.throughput_msgs_per_s),
            Figure::Cost => crate::report::cost::cpu_us_per_msg(r),
        }
    }

    /// "did 0.41 (0.39–0.43) of epoll's rate", "cost 2.50 (2.4–2.6) times
    /// epoll's CPU per message".
    fn against(self, ratio: &Spread) -> String {
        let (of, what) = match self {
            Figure::Rate => ("did", "rate"),
            Figure::Cost => ("cost", "CPU per message"),
        };
        let how = if ratio.median < 1.0 { "of" } else { "times" };
        format!("{of} {} {how} {}'s {what}", ratio.text(2), reference())
    }
}

/// The cells of one connection count that may rank, each with its ratio
/// to epoll (or its own figure, without epoll), and those left out.
struct Point {
    ranked: Vec<(String, Spread)>,
    left: Vec<(String, Left)>,
}

fn point(v: &View, conns: usize, size: usize, figure: Figure, to_ref: bool) -> Point {
    let mut p = Point {
        ranked: Vec::new(),
        left: Vec::new(),
    };
    for st in v.styles() {
        if to_ref && st == reference() {
            continue;
        }
        let Some(r) = v.scale_point(&st, conns, size) else {
            continue;
        };
        let Some(sp) = v.scale_spread(&st, conns, size, to_ref, |r| figure.value(r)) else {
            continue;
        };
        match scale_left(v, r, figure == Figure::Cost) {
            Some(why) => p.left.push((st, why)),
            None => p.ranked.push((st, sp)),
        }
    }
    p
}

/// The reading's sentences on one figure over the connection counts of
/// `size` (no "**Reading.**"): what separates at each point, then what was
/// left out and why.
pub fn ranking(v: &View, size: usize, conns: &[usize], figure: Figure) -> String {
    if !quota_in_force(v.results()) {
        return format!(
            "{} does not rank the styles in this run: the servers had no CPU quota (see the top). ",
            match figure {
                Figure::Rate => "Throughput",
                Figure::Cost => "Cost per message",
            }
        );
    }
    let to_ref = v.has_reference(size);
    let mut out = String::new();
    // Left out, by why and style: the connection counts.
    let mut left: BTreeMap<Left, BTreeMap<String, Vec<usize>>> = BTreeMap::new();
    for &c in conns {
        let p = point(v, c, size, figure, to_ref);
        for (st, why) in p.left {
            left.entry(why).or_default().entry(st).or_default().push(c);
        }
        let mut parts = Vec::new();
        if to_ref {
            for (st, sp) in &p.ranked {
                match against_one(sp) {
                    Told::Separated { .. } => parts.push(format!("{st} {}", figure.against(sp))),
                    Told::NotToldApart { lo, hi } => parts.push(format!(
                        "{st} and {} were not told apart ({})",
                        reference(),
                        range(lo, hi, 2)
                    )),
                }
            }
        }
        if !parts.is_empty() {
            out += &format!("At {} connections {}. ", thousands(c), parts.join("; "));
        }
        // Among the styles but epoll, by their ratios (their own figures
        // without epoll); lower cost is leaner, so say so.
        let above = match figure {
            Figure::Rate => "faster than",
            Figure::Cost => "costlier per message than",
        };
        if let Some(text) = chain(p.ranked, 2, above) {
            out += &format!(
                "{} {} connections: {text}. ",
                if to_ref {
                    "Between the others at"
                } else {
                    "At"
                },
                thousands(c)
            );
        }
    }
    if !left.is_empty() {
        let groups: Vec<String> = left
            .iter()
            .map(|(why, styles)| {
                let who: Vec<String> = styles
                    .iter()
                    .map(|(st, cs)| {
                        let cs: Vec<String> = cs.iter().map(|c| thousands(*c)).collect();
                        format!("{st} at {} connections", and_list(&cs))
                    })
                    .collect();
                format!("{}, {}", and_list(&who), why.why())
            })
            .collect();
        out += &format!("Not ranked: {}. ", groups.join("; "));
    }
    out
}

/// One thread per connection against one event loop, at the most
/// connections: ranked as any two styles are.
pub fn threads_against_reactor(v: &View, most: usize, size: usize) -> Option<String> {
    let (threads, reactor) = (Style::Threads.name(), Style::Reactor.name());
    let to_ref = v.has_reference(size);
    let p = point(v, most, size, Figure::Rate, to_ref);
    let get = |name: &str| p.ranked.iter().find(|(st, _)| st == name).map(|x| x.1);
    let (t, r) = (get(threads)?, get(reactor)?);
    let at = thousands(most);
    Some(match between(&t, &r) {
        Told::Separated {
            first_higher: false,
        } => format!(
            "At {at} connections {threads} did {:.2} of {reactor}'s rate (ranges apart): one thread per \
             connection cost throughput here. ",
            t.median / r.median
        ),
        Told::Separated { first_higher: true } => format!(
            "At {at} connections {threads} did {:.2} times {reactor}'s rate (ranges apart): the kernel \
             scheduling that many threads still kept up with one event loop here. ",
            t.median / r.median
        ),
        Told::NotToldApart { lo, hi } => format!(
            "At {at} connections {threads} and {reactor} were not told apart ({}). ",
            range(lo, hi, 2)
        ),
    })
}

/// "a, b and c".
pub fn and_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}
