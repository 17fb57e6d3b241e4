//! report.md's "The claims, measured": the classic texts' claims about
//! threads, processes, polling, event loops and asynchronous I/O, each
//! answered with this run's figures and a verdict. The verdicts come from
//! the figures by the rules below (each with its threshold), never from
//! fixed text: a figure that could not be told apart leaves its claim "not
//! shown", with what would show it.

use servers::{Style, Switches};

use super::figures::{self, Figure};
use super::tradeoffs::{LATENCY_MARGIN, MEMORY_MARGIN};
use crate::report::compare::rank::{Told, between, told};
use crate::report::md::{fmt_rate, putln, thousands};
use crate::report::view::{Spread, View, reference};
use crate::results::fmt_us;

/// Threads' context switches per message must be this many times epoll's,
/// and at least [`SWITCHES_PER_MSG_MIN`], for the switching to be shown.
pub const SWITCHES_OVER_EPOLL: f64 = 2.0;
pub const SWITCHES_PER_MSG_MIN: f64 = 0.5;
/// A synchronous loop makes its own read and write per message: at least
/// this many system calls per message (the wait is shared by a batch).
pub const SYNC_CALLS_MIN: f64 = 1.5;
/// io_uring submits and reaps in batches: at most this share of epoll's
/// system calls per message for "the kernel did the I/O".
pub const ASYNC_CALLS_SHARE: f64 = 0.5;
/// Polling's idle CPU must be this many times reactor's and this many
/// points of a core above it (measured once) to be "wasted".
pub const POLLING_CPU_FACTOR: f64 = 2.0;
pub const POLLING_CPU_POINTS: f64 = 5.0;
/// Set-up rates measured once are told apart past this factor.
pub const SETUP_MARGIN: f64 = 1.5;

/// What a claim's figures say.
#[derive(Clone, Debug, PartialEq)]
pub enum Verdict {
    Confirmed,
    Contradicted,
    /// Not shown by this run, and what would show it.
    NotShown(String),
}

impl Verdict {
    fn words(&self) -> String {
        match self {
            Verdict::Confirmed => "**confirmed**".into(),
            Verdict::Contradicted => "**contradicted**".into(),
            Verdict::NotShown(what) => format!("**not shown by this run** ({what})"),
        }
    }
}

/// A claim, its figures in words, and the verdict.
pub struct Answer {
    pub claim: &'static str,
    pub figures: String,
    pub verdict: Verdict,
}

/// Every claim's answer from this run, in the order the texts make them.
pub fn answers(v: &View) -> Vec<Answer> {
    vec![
        blocking(v),
        synchronous(v),
        polling(v),
        event_loop(v),
        creation(v),
    ]
}

pub fn section(s: &mut String, v: &View) {
    if figures::size(v).is_none() && v.idle_run(Style::Polling.name()).is_none() {
        return;
    }
    putln!(s, "## The claims, measured\n");
    putln!(
        s,
        "Each claim the classic texts make about these models, answered by this run's figures. The verdicts \
         follow rules written in loadgen/src/report/compare/claims.rs, with their thresholds; a figure inside \
         its own noise leaves the claim not shown.\n"
    );
    for a in answers(v) {
        if a.figures.is_empty() {
            putln!(s, "- *{}* {}.", a.claim, a.verdict.words());
        } else {
            putln!(s, "- *{}* {}: {}.", a.claim, a.verdict.words(), a.figures);
        }
    }
    s.push('\n');
}

fn name(st: Style) -> &'static str {
    st.name()
}

/// The highest connection count at which `style`'s cost ratio may rank.
fn highest_ranked(v: &View, style: &str, size: usize) -> Option<(usize, Spread)> {
    figures::points(v)
        .into_iter()
        .rev()
        .find_map(|c| Some((c, figures::cost_ratio(v, style, c, size)?.ranked()?)))
}

fn blocking(v: &View) -> Answer {
    let claim = "Blocking I/O parks the thread, so it takes a thread per connection, and past some number of \
                 threads the CPU goes to switching between them.";
    let threads = name(Style::Threads);
    let answer = |figures: String, verdict| Answer {
        claim,
        figures,
        verdict,
    };
    let Some(size) = figures::size(v) else {
        return answer(String::new(), Verdict::NotShown("no scale scenario".into()));
    };
    let points = figures::points(v);
    let low = points.first().copied();
    let low_fig = low.and_then(|c| figures::cost_ratio(v, threads, c, size)?.ranked());
    let high = highest_ranked(v, threads, size).filter(|(c, _)| Some(*c) != low);
    let (Some(low), Some(low_fig), Some((high, high_fig))) = (low, low_fig, high) else {
        return answer(
            format!(
                "{threads}' cost per message did not rank at two connection counts in this run"
            ),
            Verdict::NotShown("the scale scenario with threads in more than one round".into()),
        );
    };
    let count = figures::threads_processes(v, threads, high, size).map(|t| t.0);
    let mut text = format!(
        "{threads}' CPU per message was {}× epoll's at {} connections and {}× at {}",
        low_fig.text(2),
        thousands(low),
        high_fig.text(2),
        thousands(high)
    );
    if let Some(t) = count {
        text += &format!(" ({} threads there)", thousands(t as usize));
    }
    let switches = (
        figures::switches(v, threads, high, size),
        figures::switches(v, reference(), high, size),
    );
    let switching = match &switches {
        (Ok(t), Ok(e)) => {
            text += &format!(
                "; context switches per message {:.2} against epoll's {:.2}",
                t.median, e.median
            );
            // Under a quota, throttling forces switches of its own.
            if let Some(th) = figures::throttles_per_msg(v, threads, high, size) {
                text += &format!(
                    " (the quota throttled it {:.3} times per message, each a forced switch per running thread)",
                    th.median
                );
            }
            Some(t.median >= SWITCHES_PER_MSG_MIN && t.median >= SWITCHES_OVER_EPOLL * e.median)
        }
        (Err(why), _) | (_, Err(why)) => {
            text += &format!("; context switches not counted ({why})");
            None
        }
    };
    let per_conn = count.is_some_and(|t| t as usize >= high);
    let verdict = match between(&high_fig, &low_fig) {
        Told::Separated { first_higher: true } if per_conn && switching != Some(false) => {
            Verdict::Confirmed
        }
        Told::Separated {
            first_higher: false,
        } => Verdict::Contradicted,
        _ if switching == Some(false) => Verdict::Contradicted,
        Told::Separated { .. } => Verdict::NotShown("threads fewer than connections".into()),
        Told::NotToldApart { .. } => Verdict::NotShown(
            "the two ratios' ranges overlap: more rounds, or more connections".into(),
        ),
    };
    answer(text, verdict)
}

fn synchronous(v: &View) -> Answer {
    let claim = "select/poll/epoll are still synchronous I/O (told which sockets are ready, the loop reads and \
                 writes each itself); with io_uring the kernel does the I/O and reports it done.";
    let answer = |figures: String, verdict| Answer {
        claim,
        figures,
        verdict,
    };
    let (e, u) = (reference(), name(Style::Uring));
    let Some(size) = figures::size(v) else {
        return answer(String::new(), Verdict::NotShown("no scale scenario".into()));
    };
    let points = figures::points(v);
    let Some(&at) = points.get(points.len().saturating_sub(2)) else {
        return answer(String::new(), Verdict::NotShown("no scale scenario".into()));
    };
    if v.scale_point(e, at, size).is_none() || v.scale_point(u, at, size).is_none() {
        return answer(
            String::new(),
            Verdict::NotShown("the scale scenario with epoll and uring".into()),
        );
    }
    match (
        figures::syscalls(v, e, at, size),
        figures::syscalls(v, u, at, size),
    ) {
        (Ok(ep), Ok(ur)) => {
            let mut text = format!(
                "system calls per message at {} connections: epoll {}, uring {}",
                thousands(at),
                ep.text(2),
                ur.text(2)
            );
            if let (Some(we), Some(wu)) = (
                figures::events_per_wakeup(v, e, at, size),
                figures::events_per_wakeup(v, u, at, size),
            ) {
                text += &format!(
                    "; epoll was told of {:.0} ready sockets per epoll_wait, uring of {:.0} completions per \
                     io_uring_enter",
                    we.median, wu.median
                );
            }
            let apart = matches!(between(&ep, &ur), Told::Separated { first_higher: true });
            let verdict = if ep.median >= SYNC_CALLS_MIN
                && ur.median <= ASYNC_CALLS_SHARE * ep.median
                && apart
            {
                Verdict::Confirmed
            } else if ur.median >= ep.median {
                Verdict::Contradicted
            } else {
                Verdict::NotShown(format!(
                    "epoll needs {SYNC_CALLS_MIN}+ calls per message and uring at most {ASYNC_CALLS_SHARE} \
                     of epoll's, ranges apart"
                ))
            };
            answer(text, verdict)
        }
        (Err(why), _) | (_, Err(why)) => answer(
            format!("system calls were not counted ({why})"),
            Verdict::NotShown("the kernel's system-call count: root and tracefs".into()),
        ),
    }
}

fn polling(v: &View) -> Answer {
    let claim = "Checking every socket in a loop (polling) wastes CPU compared with being told which are ready.";
    let (p, r) = (name(Style::Polling), name(Style::Reactor));
    let figures = |text: String, verdict| Answer {
        claim,
        figures: text,
        verdict,
    };
    let (Some(pc), Some(rc), Some(run)) = (
        figures::idle_cpu(v, p),
        figures::idle_cpu(v, r),
        v.idle_run(p),
    ) else {
        return figures(
            String::new(),
            Verdict::NotShown("the idle scenario with polling and reactor".into()),
        );
    };
    let text = format!(
        "with {} idle connections and {} active at a light rate, {p} used {pc:.0}% of a CPU and {r} {rc:.0}%",
        thousands(run.spec.idle),
        thousands(run.spec.conns)
    );
    // Under a quota polling cannot show more than its share: it is told
    // apart by a factor and a number of points, not by a margin past both.
    let verdict = if pc >= POLLING_CPU_FACTOR * rc && pc - rc >= POLLING_CPU_POINTS {
        Verdict::Confirmed
    } else if pc <= rc {
        Verdict::Contradicted
    } else {
        Verdict::NotShown(format!(
            "a gap over {POLLING_CPU_FACTOR}× and {POLLING_CPU_POINTS} points, measured once"
        ))
    };
    figures(text, verdict)
}

fn event_loop(v: &View) -> Answer {
    let claim = "In an event loop each handler must return quickly, or every other connection on the loop waits.";
    let threads = name(Style::Threads);
    let answer = |figures: String, verdict| Answer {
        claim,
        figures,
        verdict,
    };
    let Some(Some(t)) = figures::light_p99(v, threads) else {
        return answer(
            String::new(),
            Verdict::NotShown("the fairness scenario with threads, served".into()),
        );
    };
    let Some(t) = t.ranked() else {
        return answer(
            format!("{threads} failed beside the heavy connection"),
            Verdict::NotShown("threads served beside the heavy connection".into()),
        );
    };
    let (mut waited, mut not) = (Vec::new(), Vec::new());
    for st in v.styles() {
        let Some(style) = figures::style_of(v, &st) else {
            continue;
        };
        if style.switches() != Switches::LoopInTurn {
            continue;
        }
        match figures::light_p99(v, &st) {
            Some(None) => waited.push(format!("{st} no reply")),
            Some(Some(Figure { spread, left: None })) => {
                let words = format!(
                    "{st} {} ({:.1}×)",
                    fmt_us(spread.median as u64),
                    spread.median / t.median.max(1.0)
                );
                match told(&spread, &t, LATENCY_MARGIN) {
                    Told::Separated { first_higher: true } => waited.push(words),
                    _ => not.push(words),
                }
            }
            _ => {}
        }
    }
    let mut text = format!(
        "light connections' p99 beside a CPU-heavy one: {threads} (the kernel preempts) {}",
        fmt_us(t.median as u64)
    );
    if !waited.is_empty() {
        text += &format!(
            "; one-loop styles past {LATENCY_MARGIN:.0}× that: {}",
            waited.join(", ")
        );
    }
    if !not.is_empty() {
        text += &format!("; not past it: {}", not.join(", "));
    }
    let verdict = if waited.is_empty() && not.is_empty() {
        Verdict::NotShown("the fairness scenario with a one-loop style".into())
    } else if waited.len() >= not.len() && !waited.is_empty() {
        Verdict::Confirmed
    } else if waited.is_empty() {
        Verdict::Contradicted
    } else {
        Verdict::NotShown("most one-loop styles were not told apart from threads".into())
    };
    answer(text, verdict)
}

/// One "a costs more than b" comparison of the creation claim.
struct Pair {
    /// True: the claim holds; false: it is reversed; None: not told apart.
    holds: Option<bool>,
    words: String,
}

fn costlier(
    what: &str,
    a: &str,
    b: &str,
    fa: Option<Figure>,
    fb: Option<Figure>,
    margin: f64,
    higher_costs: bool,
) -> Option<Pair> {
    let (sa, sb) = (fa?.ranked()?, fb?.ranked()?);
    let holds = match told(&sa, &sb, margin) {
        Told::Separated { first_higher } => Some(first_higher == higher_costs),
        Told::NotToldApart { .. } => None,
    };
    let show = |s: &Spread| {
        if what == "memory" {
            format!("{:.2} KiB", s.median)
        } else {
            format!("{}/s", fmt_rate(s.median))
        }
    };
    Some(Pair {
        holds,
        words: format!("{a} {} against {b} {}", show(&sa), show(&sb)),
    })
}

const HOLD: &str = "to hold (memory per idle connection)";
const CREATE: &str = "to create (connections set up per second)";

fn creation(v: &View) -> Answer {
    let claim = "A process costs more to create and to hold than a thread, a thread more than a coroutine or a task.";
    let (p, t) = (name(Style::Process), name(Style::Threads));
    let light = [name(Style::Coroutines), name(Style::Tasks)];
    let mem = |st: &str| figures::idle_memory(v, st).map(|x| x.0);
    let rate = |st: &str| figures::setup_rate(v, st);
    let mut pairs: Vec<(&str, Pair)> = Vec::new();
    let mut order = vec![(p, t)];
    order.extend(light.iter().map(|l| (t, *l)));
    for (a, b) in &order {
        if let Some(x) = costlier("memory", a, b, mem(a), mem(b), MEMORY_MARGIN, true) {
            pairs.push((HOLD, x));
        }
        if let Some(x) = costlier("rate", a, b, rate(a), rate(b), SETUP_MARGIN, false) {
            pairs.push((CREATE, x));
        }
    }
    let agree = pairs.iter().filter(|(_, x)| x.holds == Some(true)).count();
    let against = pairs.iter().filter(|(_, x)| x.holds == Some(false)).count();
    let mut parts = Vec::new();
    for what in [HOLD, CREATE] {
        let said: Vec<String> = pairs
            .iter()
            .filter(|(w, _)| *w == what)
            .map(|(_, x)| {
                format!(
                    "{}{}",
                    x.words,
                    match x.holds {
                        Some(true) => "",
                        Some(false) => " (the other way)",
                        None => " (not told apart)",
                    }
                )
            })
            .collect();
        if !said.is_empty() {
            parts.push(format!("{what}: {}", said.join(", ")));
        }
    }
    let text = if pairs.is_empty() {
        "no two of process, threads, coroutines and tasks ranked by memory or set-up rate"
            .to_string()
    } else {
        parts.join("; ")
    };
    let verdict = if pairs.is_empty() {
        Verdict::NotShown("the idle and churn scenarios with these styles, served".into())
    } else if against > agree {
        Verdict::Contradicted
    } else if against == 0 && agree * 2 >= pairs.len() {
        Verdict::Confirmed
    } else {
        Verdict::NotShown(format!(
            "{agree} of {} comparisons held and {against} went the other way (memory told apart past \
             {MEMORY_MARGIN}×, set-up rate past {SETUP_MARGIN}×, measured once)",
            pairs.len()
        ))
    };
    Answer {
        claim,
        figures: text,
        verdict,
    }
}
