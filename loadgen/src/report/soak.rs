//! A soak's report: `soak.json` (every sample, fit, check and load result)
//! and `soak.md`, a table per style of its trends and one of its loads,
//! which `loadgen soak` also prints. Reads [`crate::soak::model`]; runs
//! nothing.

use std::path::Path;

use anyhow::Context;

use crate::report::md::{fmt_rate, put, putln};
use crate::results::{RunResult, fmt_us};
use crate::soak::model::{Check, Series, SoakResults, StyleSoak};
use crate::soak::verdict::{mib, reasons};

/// Writes `soak.json` and `soak.md` into `dir`.
pub fn write(results: &SoakResults, dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let json = serde_json::to_string_pretty(results).context("serialising the soak")?;
    std::fs::write(dir.join("soak.json"), json + "\n").context("writing soak.json")?;
    std::fs::write(dir.join("soak.md"), markdown(results)).context("writing soak.md")?;
    Ok(())
}

/// The soak in markdown: what ran, then a section per style.
pub fn markdown(results: &SoakResults) -> String {
    let p = &results.plan;
    let env = &results.environment;
    let mut s = String::from("# Soak\n\n");
    putln!(
        s,
        "Each style for {:.0} s, its server sampled every {} s; trends fitted by least squares after \
         a {:.0} s warm-up. Loads at once: an open loop of {} connections at {} msg/s in total; \
         churn (connect, echo one {} B message, close) at {} connections/s; {} idle connections \
         beside one sending {} msg/s.",
        p.duration_s,
        p.sample_interval_s,
        p.warmup_s,
        p.open_conns,
        p.open_rate,
        p.size,
        p.churn_rate,
        p.idle,
        p.idle_heartbeat
    );
    putln!(
        s,
        "\nBounds over the fitted window: memory may grow by max({}, {:.0}% of its mean); fds and \
         threads may move either way by max({}, {:.0}% of their mean). Machine: {}, {} x {}; \
         servers on CPUs {:?}, loadgen on {:?}{}.",
        mib(p.bounds.memory_min_bytes),
        p.bounds.memory_share * 100.0,
        p.bounds.count_min,
        p.bounds.count_share * 100.0,
        env.kernel,
        env.cores,
        env.cpu_model,
        results.server_cpus,
        results.client_cpus,
        match results.cgroup.as_ref().filter(|c| c.used) {
            Some(_) => "; each server in a cgroup of its own",
            None => "",
        }
    );
    if results.interrupted {
        s.push_str("\n**Interrupted**: what was measured until then.\n");
    }
    for st in &results.styles {
        style_section(&mut s, st);
    }
    let failed: Vec<String> = results
        .styles
        .iter()
        .filter(|st| !st.passed)
        .map(|st| {
            let why: Vec<&str> = failed_checks(st).map(|c| c.name.as_str()).collect();
            format!("{} ({})", st.style, why.join(", "))
        })
        .collect();
    putln!(
        s,
        "\n**Verdict: {}**",
        if results.passed {
            "every style passed".to_string()
        } else if results.interrupted {
            "interrupted, not judged whole".to_string()
        } else if failed.is_empty() {
            "not every style ran".to_string()
        } else {
            format!("FAILED: {}", failed.join("; "))
        }
    );
    s
}

/// The checks a style failed.
pub fn failed_checks(st: &StyleSoak) -> impl Iterator<Item = &Check> {
    st.checks.iter().filter(|c| !c.passed)
}

fn style_section(s: &mut String, st: &StyleSoak) {
    putln!(
        s,
        "\n## {}: {}\n",
        st.style,
        if st.passed { "pass" } else { "FAIL" }
    );
    s.push_str(
        "| figure | baseline | start → end | min / mean / max | slope per hour | growth after warm-up | bound | verdict |\n\
         |---|---:|---:|---:|---:|---:|---:|---|\n",
    );
    for series in &st.series {
        let check = st.checks.iter().find(|c| c.name == series.name);
        trend_row(s, st, series, check);
    }
    for c in st.checks.iter().filter(|c| {
        matches!(c.name.as_str(), "memory" | "fds" | "threads")
            && !st.series.iter().any(|x| x.name == c.name)
    }) {
        putln!(s, "| {} | | | | | | | FAIL: {} |", c.name, c.detail);
    }
    s.push_str(
        "\n| load | what | throughput | p99 (corrected) | errors | outcome |\n\
         |---|---|---:|---:|---:|---|\n",
    );
    for r in &st.runs {
        load_row(s, r);
    }
    s.push('\n');
    for c in st
        .checks
        .iter()
        .filter(|c| matches!(c.name.as_str(), "errors" | "server"))
    {
        putln!(
            s,
            "- {}: {}{}",
            c.name,
            if c.passed { "" } else { "**FAIL**: " },
            c.detail
        );
    }
    for c in failed_checks(st).filter(|c| matches!(c.name.as_str(), "memory" | "fds" | "threads")) {
        putln!(s, "- {}: **FAIL**: {}", c.name, c.detail);
    }
}

fn trend_row(s: &mut String, st: &StyleSoak, x: &Series, check: Option<&Check>) {
    let bytes = x.unit == "bytes";
    let v = |f: f64| if bytes { mib(f) } else { format!("{f:.0}") };
    let signed = |f: f64| {
        if bytes {
            format!("{:+.2} MiB", f / (1024.0 * 1024.0))
        } else {
            format!("{f:+.1}")
        }
    };
    let name = match x.name.as_str() {
        "memory" => format!("memory ({})", st.memory_measure.to_uppercase()),
        "cgroup_memory" => "cgroup memory (with the kernel's)".into(),
        other => other.into(),
    };
    let mean = if bytes {
        mib(x.mean)
    } else {
        format!("{:.1}", x.mean)
    };
    put!(
        s,
        "| {name} | {} | {} → {} | {} / {mean} / {} | {}/h ± {} | {} |",
        v(x.baseline),
        v(x.start),
        v(x.end),
        v(x.min),
        v(x.max),
        signed(x.slope_per_h),
        signed(x.slope_stderr_per_h).trim_start_matches('+'),
        signed(x.growth),
    );
    match check {
        Some(c) => putln!(
            s,
            " {} | {} |",
            c.bound.map(v).unwrap_or_default(),
            if c.passed { "pass" } else { "**FAIL**" }
        ),
        None => putln!(s, " — | reported |"),
    }
}

fn load_row(s: &mut String, r: &RunResult) {
    let point = r.tags.as_ref().map_or("", |t| t.point.as_str());
    let spec = &r.spec;
    let asked = match spec.mode {
        crate::results::spec::Mode::Open { rate } => format!(" at {} msg/s", fmt_rate(rate)),
        _ => String::new(),
    };
    let (what, rate, p99) = match point {
        "churn" => (
            format!(
                "connect, echo, close at {} conn/s",
                spec.connect_rate.unwrap_or(0.0)
            ),
            format!("{} conn/s", fmt_rate(r.connect.rate_per_s)),
            format!(
                "{} (round trip), connect {}",
                fmt_us(r.latency_us.p99),
                fmt_us(r.connect.p99_us)
            ),
        ),
        "idle" => (
            format!("{} idle + {} sending{asked}", spec.idle, spec.conns),
            format!("{} msg/s", fmt_rate(r.throughput_msgs_per_s)),
            fmt_us(r.latency_us.p99),
        ),
        _ => (
            format!("{} conns{asked}", spec.conns),
            format!("{} msg/s", fmt_rate(r.throughput_msgs_per_s)),
            fmt_us(r.latency_us.p99),
        ),
    };
    let (server, client) = reasons(r);
    let outcome = match (server.is_empty(), client.is_empty()) {
        (true, true) => "ok".to_string(),
        (true, false) => format!("ok for the server; not judged: {}", client.join("; ")),
        (false, _) => format!("**FAIL**: {}", r.outcome.reasons.join("; ")),
    };
    putln!(
        s,
        "| {point} | {what} | {rate} | {p99} | {} | {outcome} |",
        r.errors.total(),
    );
}
