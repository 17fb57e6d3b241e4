//! The comparison's progress lines on stderr, one per run.

use std::sync::Mutex;

use crate::results::RunResult;

/// A line per run on stderr, and a bar when stderr is a terminal.
pub struct Progress {
    bar: Option<indicatif::ProgressBar>,
    done: Mutex<usize>,
    total: usize,
}

impl Progress {
    /// `total` runs, `estimate_s` the plan's seconds ([`super::plan`]).
    pub fn new(total: usize, estimate_s: f64) -> Progress {
        use std::io::IsTerminal;
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new(total as u64);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "[{bar:30}] {pos}/{len} runs, {elapsed} elapsed of about {msg} planned",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            bar.set_message(format!("{:.0} min", estimate_s / 60.0));
            bar
        });
        Progress {
            bar,
            done: Mutex::new(0),
            total,
        }
    }

    /// `n` runs an earlier session measured (a resumed comparison):
    /// counted, not printed again.
    pub fn skip(&self, n: usize) {
        let mut done = self.done.lock().unwrap_or_else(|p| p.into_inner());
        *done += n;
        if let Some(bar) = &self.bar {
            bar.inc(n as u64);
        }
    }

    pub fn run_done(&self, r: &RunResult) {
        let n = {
            let mut done = self.done.lock().unwrap_or_else(|p| p.into_inner());
            *done += 1;
            *done
        };
        let line = format!(
            "[{n}/{}] {:<40} {:>9.0} msg/s  p99 {:>8}  errors {}{}",
            self.total,
            r.label.as_deref().unwrap_or("run"),
            r.throughput_msgs_per_s,
            crate::results::fmt_us(r.latency_us.p99),
            r.errors.describe(),
            if r.client.client_bound {
                "  CLIENT-BOUND"
            } else {
                ""
            }
        );
        match &self.bar {
            Some(bar) => {
                bar.println(line);
                bar.inc(1);
            }
            None => note!("{line}"),
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
