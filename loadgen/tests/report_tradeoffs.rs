//! report.md's opening, from hand-built results shaped like a quick run
//! under a CPU quota: the trade-off tables come first, a cell is marked
//! best or worst only where its range separates it from every other, the
//! claims get their verdicts by rule (confirmed where the figures
//! separate, not shown where they overlap, contradicted where they go the
//! other way), and a count the kernel refused reads "not measured" with
//! the reason, never 0. No server runs here.

use loadgen::RunResult;
use loadgen::compare::model::{CgroupSetup, CompareResults};
use loadgen::report::write as write_outputs;
use loadgen::results::Tags;
use loadgen::results::server::{CgroupStats, KernelCounts};

mod common;
use common::compare_fixture as fixture;

const QUOTA: f64 = 0.25;
const STYLES: [&str; 8] = [
    "threads",
    "polling",
    "reactor",
    "epoll",
    "tasks",
    "coroutines",
    "uring",
    "process",
];
const CONNS: [usize; 3] = [50, 1000, 5000];

/// Paired CPU-per-message ratios to epoll, two rounds, per connection
/// count: threads grows apart (1.1–1.2 at 50, 10–12 at 5,000), uring is
/// leaner at 1,000 and the rest overlap 1.
fn ratio(style: &str, conns: usize) -> [f64; 2] {
    match (style, conns) {
        ("threads", 50) => [1.1, 1.2],
        ("threads", 1000) => [2.5, 2.8],
        ("threads", _) => [10.0, 12.0],
        ("uring", 1000) => [0.80, 0.85],
        _ => [0.97, 1.03],
    }
}

/// System calls and context switches per message the kernel counted.
fn counts(style: &str) -> (f64, f64) {
    match style {
        "epoll" => (2.1, 0.05),
        "uring" => (0.3, 0.05),
        "threads" => (2.0, 1.2),
        _ => (2.2, 0.1),
    }
}

fn tags(style: &str, scenario: &str, point: &str, round: u32, partner_of: &str) -> Option<Tags> {
    Some(Tags {
        style: style.into(),
        scenario: scenario.into(),
        point: point.into(),
        repeat: round,
        partner_of: partner_of.into(),
    })
}

fn template(f: &CompareResults, scenario: &str, point: &str) -> RunResult {
    f.runs
        .iter()
        .find(|r| {
            r.tags
                .as_ref()
                .is_some_and(|t| t.scenario == scenario && t.point.starts_with(point))
        })
        .unwrap_or_else(|| panic!("the fixture has a {scenario} run"))
        .clone()
}

/// A scale run of `style` at `conns`, its server using its whole quota at
/// `us` µs of CPU per message.
fn scale(
    t: &RunResult,
    style: &str,
    partner_of: &str,
    conns: usize,
    round: u32,
    us: f64,
) -> RunResult {
    let mut r = t.clone();
    r.tags = tags(
        style,
        "scale",
        &format!("conns={conns} size=64"),
        round,
        partner_of,
    );
    r.label = Some(format!("{style}/scale/conns={conns} r{round}"));
    r.spec.conns = conns;
    r.spec.size = 64;
    r.measured_s = 1.0;
    r.throughput_msgs_per_s = QUOTA * 1e6 / us;
    r.messages = r.throughput_msgs_per_s as u64;
    r.client.client_bound = false;
    r.conns_unserved = 0;
    r.outcome.ok = true;
    let (calls, switches) = counts(style);
    let sv = r.server.as_mut().expect("sampled");
    sv.peak_threads = if style == "threads" {
        conns as u64 + 1
    } else {
        2
    };
    sv.kernel = Some(KernelCounts {
        syscalls: Some((calls * r.messages as f64) as u64),
        syscalls_per_msg: Some(calls),
        context_switches: Some((switches * r.messages as f64) as u64),
        context_switches_per_msg: Some(switches),
        ..Default::default()
    });
    sv.cgroup = Some(CgroupStats {
        version: "v1".into(),
        cpu_quota: Some(QUOTA),
        cpu_s: Some(QUOTA),
        cpu_us_per_msg: Some(us),
        ..Default::default()
    });
    r
}

/// Every style at every point in two rounds, each beside an epoll run of
/// its own; an idle, a churn and a fairness run per style.
fn results() -> CompareResults {
    results_with(&STYLES)
}

fn results_with(styles: &[&str]) -> CompareResults {
    let mut f = fixture();
    let (t_scale, t_idle, t_churn, t_light) = (
        template(&f, "scale", "conns=20"),
        template(&f, "idle", ""),
        template(&f, "churn", ""),
        template(&f, "fairness", "light"),
    );
    f.profile = "quick".into();
    f.styles = styles.iter().map(|s| s.to_string()).collect();
    f.repeat = 2;
    f.cgroup = Some(CgroupSetup {
        used: true,
        made_by: "loadgen".into(),
        version: Some("v1".into()),
        cpu_quota: Some(QUOTA),
        period_us: 10_000,
        note: None,
        socket_accounting: Some(true),
    });
    f.runs.clear();
    f.capacity.clear();
    f.servers.clear();
    for round in 0..2u32 {
        for &conns in &CONNS {
            f.runs.push(scale(&t_scale, "epoll", "", conns, round, 8.0));
            for st in styles.iter().filter(|s| **s != "epoll") {
                f.runs.push(scale(&t_scale, "epoll", st, conns, round, 8.0));
                let us = 8.0 * ratio(st, conns)[round as usize];
                f.runs.push(scale(&t_scale, st, "", conns, round, us));
            }
        }
    }
    for &st in styles {
        let (cpu, kib, rate, p99) = match st {
            "polling" => (25.0, 1.2, 5_800.0, 2_700),
            "reactor" => (5.0, 1.5, 6_000.0, 30_000),
            "epoll" => (5.0, 1.5, 6_000.0, 31_000),
            "uring" => (5.0, 1.5, 6_200.0, 1_700),
            "threads" => (5.0, 34.0, 3_000.0, 2_600),
            "tasks" => (4.0, 3.4, 5_000.0, 100_000),
            "coroutines" => (6.0, 9.7, 4_700.0, 988_000),
            _ => (21.0, 190.0, 777.0, 3_900),
        };
        let mut idle = t_idle.clone();
        idle.tags = tags(st, "idle", "idle=10000 active=100", 0, "");
        idle.spec.idle = 10_000;
        idle.spec.conns = 100;
        idle.outcome.ok = true;
        idle.conns_unserved = 0;
        let sv = idle.server.as_mut().expect("sampled");
        sv.cpu_percent = cpu;
        sv.cgroup = Some(CgroupStats {
            version: "v1".into(),
            cpu_quota: Some(QUOTA),
            memory_per_conn_bytes: Some(kib * 1024.0),
            kernel_per_conn_bytes: Some(1.4 * 1024.0),
            ..Default::default()
        });
        f.runs.push(idle);
        let mut churn = t_churn.clone();
        churn.tags = tags(st, "churn", "slots=4", 0, "");
        churn.connect.rate_per_s = rate;
        churn.client.client_bound = false;
        churn.outcome.ok = true;
        churn.conns_unserved = 0;
        f.runs.push(churn);
        let mut light = t_light.clone();
        light.tags = tags(st, "fairness", "light x5", 0, "");
        light.latency_us.p99 = p99;
        light.outcome.ok = true;
        light.conns_unserved = 0;
        f.runs.push(light);
    }
    f
}

fn report(results: &CompareResults, name: &str) -> String {
    let dir = common::scratch(&format!("tradeoffs-{name}"));
    write_outputs(results, &dir).expect("report written");
    let text = std::fs::read_to_string(dir.join("report.md")).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    text
}

/// The row of `style` in the first table under `heading`.
fn row<'a>(text: &'a str, heading: &str, style: &str) -> &'a str {
    let start = text
        .find(heading)
        .unwrap_or_else(|| panic!("no {heading:?}"));
    text[start..]
        .lines()
        .find(|l| l.starts_with(&format!("| {style} |")))
        .unwrap_or_else(|| panic!("no {style} row under {heading:?}"))
}

/// The verdict line of the claim starting with `claim`.
fn claim<'a>(text: &'a str, claim: &str) -> &'a str {
    text.lines()
        .find(|l| l.starts_with(&format!("- *{claim}")))
        .unwrap_or_else(|| panic!("no claim {claim:?}"))
}

#[test]
fn the_report_opens_with_the_trade_offs_then_the_claims() {
    let text = report(&results(), "order");
    let headings: Vec<&str> = text.lines().filter(|l| l.starts_with("## ")).collect();
    assert_eq!(
        headings[..2],
        ["## Trade-offs", "## The claims, measured"],
        "{headings:?}"
    );
    // Two set-up lines before it: the profile line and the machine's load.
    let before: Vec<&str> = text
        .split("## Trade-offs")
        .next()
        .unwrap()
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    assert!(before.len() <= 2, "{before:?}");
    assert!(
        before[0].starts_with("Profile **quick**: 8 styles"),
        "{before:?}"
    );
    for st in STYLES {
        row(&text, "**Cost as connections grow.**", st);
        row(&text, "**What a connection holds", st);
        assert!(
            text.contains(&format!("- **{st}**: ")),
            "no reading for {st}"
        );
    }
}

#[test]
fn cells_are_marked_best_or_worst_only_where_their_ranges_separate() {
    let text = report(&results(), "marks");
    let cost = "**Cost as connections grow.**";
    // At 1,000 connections uring (0.80–0.85) is below every other range and
    // threads (2.5–2.8) above: best and worst; the rest overlap 1.
    let cells = |style: &str| -> Vec<String> {
        row(&text, cost, style)
            .split('|')
            .map(|c| c.trim().to_string())
            .collect()
    };
    let col_1000 = 4; // "", style, mechanism, 50, 1,000
    assert!(
        cells("uring")[col_1000].ends_with("**best**"),
        "{:?}",
        cells("uring")
    );
    assert!(
        cells("threads")[col_1000].ends_with("**worst**"),
        "{:?}",
        cells("threads")
    );
    for st in ["reactor", "tasks", "epoll"] {
        let c = &cells(st)[col_1000];
        assert!(!c.contains("best") && !c.contains("worst"), "{st}: {c}");
    }
    // At 50 connections threads (1.1–1.2) separates from the rest as worst;
    // nothing is below the others.
    assert!(
        cells("threads")[3].ends_with("**worst**"),
        "{:?}",
        cells("threads")
    );
    assert!(
        !row(&text, cost, "uring")
            .split('|')
            .nth(3)
            .unwrap()
            .contains("best")
    );
    assert!(
        text.contains("- **uring**: wins: best CPU per message at 1,000 connections"),
        "{text}"
    );
}

#[test]
fn the_claims_are_confirmed_where_the_figures_separate() {
    let text = report(&results(), "confirmed");
    for c in [
        "Blocking I/O parks the thread",
        "select/poll/epoll are still synchronous",
        "Checking every socket in a loop",
        "In an event loop each handler",
        "A process costs more to create",
    ] {
        let line = claim(&text, c);
        assert!(line.contains("**confirmed**"), "{line}");
    }
    let blocking = claim(&text, "Blocking I/O");
    assert!(
        blocking.contains("11.00 (10.00–12.00)× at 5,000"),
        "{blocking}"
    );
    assert!(blocking.contains("5,001 threads there"), "{blocking}");
    assert!(
        blocking.contains("context switches per message 1.20 against epoll's 0.05"),
        "{blocking}"
    );
    let sync = claim(&text, "select/poll/epoll");
    assert!(sync.contains("epoll 2.10, uring 0.30"), "{sync}");
}

#[test]
fn overlapping_or_reversed_figures_leave_a_claim_not_shown_or_contradicted() {
    let mut f = results();
    for r in &mut f.runs {
        let Some(t) = r.tags.clone() else { continue };
        let sv = r.server.as_mut().unwrap();
        // threads' ratio at 5,000 now overlaps its ratio at 50.
        if t.style == "threads" && t.scenario == "scale" && t.point.starts_with("conns=5000") {
            let cg = sv.cgroup.as_mut().unwrap();
            cg.cpu_us_per_msg = Some(8.0 * if t.repeat == 0 { 1.12 } else { 1.25 });
        }
        // uring makes more calls per message than epoll.
        if t.style == "uring" && t.scenario == "scale" {
            sv.kernel.as_mut().unwrap().syscalls_per_msg = Some(2.5);
        }
        // polling spins no more than reactor.
        if t.style == "polling" && t.scenario == "idle" {
            sv.cpu_percent = 6.0;
        }
    }
    let text = report(&f, "overlap");
    let blocking = claim(&text, "Blocking I/O");
    assert!(blocking.contains("**not shown by this run**"), "{blocking}");
    assert!(blocking.contains("ranges overlap"), "{blocking}");
    assert!(claim(&text, "select/poll/epoll").contains("**contradicted**"));
    assert!(claim(&text, "Checking every socket").contains("**not shown by this run**"));
}

#[test]
fn a_count_the_kernel_refused_is_not_measured_with_its_reason_never_zero() {
    let mut f = results();
    for r in &mut f.runs {
        if let Some(sv) = r.server.as_mut() {
            sv.kernel = Some(KernelCounts {
                syscalls_unmeasured: Some("no tracefs at /sys/kernel/tracing".into()),
                context_switches_unmeasured: Some("perf_event_open: not permitted".into()),
                ..Default::default()
            });
        }
    }
    let text = report(&f, "unmeasured");
    let cell = row(&text, "**What a connection holds", "epoll");
    assert!(
        cell.contains("not measured (no tracefs at /sys/kernel/tracing)"),
        "{cell}"
    );
    assert!(!cell.contains("0.00"), "{cell}");
    let sync = claim(&text, "select/poll/epoll");
    assert!(sync.contains("**not shown by this run**"), "{sync}");
    assert!(sync.contains("not counted (no tracefs"), "{sync}");
    let blocking = claim(&text, "Blocking I/O");
    assert!(
        blocking.contains("context switches not counted (perf_event_open: not permitted)"),
        "{blocking}"
    );
}

#[test]
fn the_report_says_how_the_kernel_counted_and_whom_counting_on_the_tasks_costs() {
    use loadgen::results::server::CountedOn;
    let counted = |how: Option<CountedOn>| {
        let mut f = results();
        for r in &mut f.runs {
            if let Some(k) = r.server.as_mut().and_then(|sv| sv.kernel.as_mut()) {
                k.counted_on = how;
            }
        }
        let text = report(&f, &format!("counted-{how:?}"));
        let start = text
            .find("**What a connection holds")
            .expect("the second table");
        text[start..].lines().next().unwrap().to_string()
    };
    let on_cgroup = counted(Some(CountedOn::Cgroup));
    assert!(
        on_cgroup.contains("per CPU on each server's cgroup"),
        "{on_cgroup}"
    );
    assert!(!on_cgroup.contains("copy"), "{on_cgroup}");
    let on_tasks = counted(Some(CountedOn::Tasks));
    assert!(on_tasks.contains("gets a copy"), "{on_tasks}");
    // Results from before it was recorded: nothing claimed either way.
    let unknown = counted(None);
    assert!(
        !unknown.contains("cgroup") && !unknown.contains("copy"),
        "{unknown}"
    );
}

/// report.html at a laptop's width (1366 px) in headless Chromium, with
/// every style: no table of the opening scrolls sideways. Skips, saying
/// so, where Chromium is not installed (.ci/run installs it).
#[test]
fn the_trade_off_tables_fit_a_laptop_screen_at_eleven_styles() {
    let Some(chromium) = ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|b| {
            std::process::Command::new(b)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
    else {
        eprintln!("skipped: no chromium to lay report.html out with");
        return;
    };
    let names: Vec<&str> = servers::Style::ALL.iter().map(|s| s.name()).collect();
    assert_eq!(names.len(), 11);
    let dir = common::scratch("tradeoffs-width");
    write_outputs(&results_with(&names), &dir).expect("report written");
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    // The page has no script of its own: this copy gets one that writes,
    // for each table, whether it is wider than its box, into the DOM.
    let probe = "<script>addEventListener('load', () => { const out = [...document.querySelectorAll('table')]\
        .map((t, i) => i + ':' + t.scrollWidth + '/' + t.clientWidth).join(' '); \
        const p = document.createElement('pre'); p.id = 'widths'; p.textContent = out; \
        document.body.appendChild(p); });</script></body>";
    std::fs::write(dir.join("probe.html"), html.replace("</body>", probe)).unwrap();
    let child = std::process::Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--window-size=1366,900",
            "--dump-dom",
        ])
        .arg(dir.join("probe.html"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("starting chromium");
    let out = common::wait_within(
        child,
        std::time::Duration::from_secs(60),
        "chromium --dump-dom",
    );
    let dom = String::from_utf8_lossy(&out.stdout);
    let widths = dom
        .split("<pre id=\"widths\">")
        .nth(1)
        .and_then(|s| s.split("</pre>").next())
        .unwrap_or_else(|| panic!("no widths in the DOM: {}", &dom[..dom.len().min(500)]));
    // The first two tables are the trade-offs.
    let tables: Vec<(u32, u32)> = widths
        .split_whitespace()
        .take(2)
        .map(|t| {
            let (scroll, client) = t.split_once(':').unwrap().1.split_once('/').unwrap();
            (scroll.parse().unwrap(), client.parse().unwrap())
        })
        .collect();
    assert_eq!(tables.len(), 2, "{widths}");
    for (scroll, client) in tables {
        assert!(
            client > 0 && scroll <= client,
            "a trade-off table scrolls sideways: {widths}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
#[ignore = "writes the fixture's report to $TRADEOFFS_OUT for a look"]
fn write_for_a_look() {
    let dir = std::path::PathBuf::from(std::env::var("TRADEOFFS_OUT").unwrap());
    write_outputs(&results(), &dir).expect("report written");
}
