//! The `loadgen` command line, in the library so tests parse it in-process:
//! the flags in [`args`], the commands here (`soak`'s in its own file, what
//! they share in `common`), each calling the engine, the comparison or the
//! soak, and the report.

pub mod args;
mod common;
pub mod diff;
mod journal;
mod reach;
mod scope;
mod soak;
pub mod values;

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;

use crate::engine::{self, Control, RunOptions};
use crate::report;
use crate::results::RunResult;
use crate::results::merge::{Part, merge_parts};
use crate::results::spec::RunSpec;

pub use args::{Cli, Command, CompareArgs, Format, MergeArgs, RunArgs, SoakArgs};
pub use common::{EXIT_FAILED, EXIT_INTERRUPTED, utc_stamp};
use common::{client_cpus, machine_lock, say, servers_limit, start_guard, stop_flag};

/// Runs the binary; returns the process exit code.
pub fn main_with(args: Vec<std::ffi::OsString>) -> anyhow::Result<i32> {
    let cli = Cli::parse_from(args);
    match cli.command {
        Command::Run(args) => {
            let spec = args.spec().unwrap_or_else(|e| e.exit());
            match &args.scenario {
                Some(scenario) => scenario_command(&args, *scenario),
                None => run_command(&args, spec),
            }
        }
        Command::Compare(args) => compare_command(&args),
        Command::Soak(args) => soak::soak_command(&args),
        Command::Report { results, out } => {
            let (parsed, next_to) = journal::load_results(&results)?;
            let dir = out.unwrap_or(next_to);
            crate::report::write(&parsed, &dir)?;
            let from = match &parsed.interrupted {
                Some(i) => format!(
                    "  (from the journal of a comparison that did not finish: {} of {} units)",
                    i.recorded_units, i.planned_units
                ),
                None => String::new(),
            };
            say(format_args!(
                "report: {}{from}",
                dir.join("report.md").display()
            ))?;
            Ok(0)
        }
        Command::Diff(args) => diff::command(&args),
        Command::Merge(args) => merge_command(&args),
        Command::Serve { args } => {
            let mut argv = vec![std::ffi::OsString::from("servers")];
            argv.extend(args);
            servers::cli::run(argv)?;
            Ok(0)
        }
        Command::Guard => {
            crate::compare::guard::run(std::io::stdin().lock());
            Ok(0)
        }
    }
}

fn run_command(args: &RunArgs, spec: RunSpec) -> anyhow::Result<i32> {
    let limit = servers_limit();
    let needed = spec.total_conns() as u64 + 64;
    if needed > limit {
        note!(
            "loadgen: {} connections need about {needed} file descriptors but the open-files limit is {limit}; \
             connections past it will fail (counted as fd_limit). Raise the hard limit (ulimit -Hn) to go further.",
            spec.total_conns()
        );
    }
    if let Some(path) = &args.out {
        // Before the run: a bad --out fails now, not after the run has
        // spent its duration and its results are lost.
        out_file(path)?;
    }
    let control = Arc::new(Control::default());
    signal_hook::flag::register(signal_hook::consts::SIGINT, Arc::clone(&control.stop))
        .context("installing the Ctrl-C handler")?;
    signal_hook::flag::register(signal_hook::consts::SIGTERM, Arc::clone(&control.stop))
        .context("installing the SIGTERM handler")?;
    let mut opts = RunOptions {
        server: args.server_pid.map(crate::probe::Watch::process),
        label: args.label.clone(),
        on_tick: None,
        foreign_cpus: None,
        gate: None,
    };
    if std::io::stderr().is_terminal() {
        opts.on_tick = Some(progress_bar(&spec));
    }
    let result = engine::run(&spec, control, opts).map_err(|e| anyhow::anyhow!("{e}"))?;
    if result.client.client_bound {
        note!(
            "loadgen: warning: a loadgen thread was busy {:.0}% of the run: these numbers are the client's limit, \
             not the server's (add --threads, or pin loadgen to other CPUs)",
            result.client.busy_max * 100.0
        );
    }
    emit(&result, args.format, args.out.as_ref())?;
    Ok(exit_code(&result))
}

pub fn exit_code(result: &RunResult) -> i32 {
    if result.outcome.interrupted {
        EXIT_INTERRUPTED
    } else if result.outcome.ok {
        0
    } else {
        EXIT_FAILED
    }
}

fn profile(name: &str) -> crate::compare::profile::Profile {
    // The value parser only lets known names through.
    crate::compare::profile::Profile::named(name).unwrap_or_else(|| {
        crate::compare::profile::Profile::named("quick").expect("the quick profile exists")
    })
}

fn scenario_command(
    args: &RunArgs,
    scenario: crate::compare::model::Scenario,
) -> anyhow::Result<i32> {
    servers_limit();
    let stop = stop_flag()?;
    let mut profile = profile(&args.profile);
    args.reach.apply(&mut profile);
    let target = crate::compare::env::Target {
        style: args.label.clone().unwrap_or_else(|| "server".into()),
        addr: args.addr,
        server_pid: args.server_pid,
        container: None,
        cgroup: None,
        counters: None,
        idle_cpu: 0.0,
        foreign_cpus: None,
    };
    if let Some(flags) = profile.own_server(scenario).filter(|f| !f.is_empty()) {
        note!(
            "loadgen: the {} scenario expects the server to run with {}",
            scenario.name(),
            flags.join(" ")
        );
    }
    // A closed stdout (`| head`) stops the runs, as Ctrl-C would.
    let mut on_run = |r: &RunResult| {
        if say(format_args!("{}", report::text(r).trim_end())).is_err() {
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    };
    let mut env = crate::compare::env::Env::new(&profile, &target, Arc::clone(&stop), &mut on_run);
    // Alone, `open` has no maximum from `scale`: it probes one.
    let runs = crate::compare::scenarios::run(scenario, &mut env, &[]);
    // A capacity search's runs are its steps, failing by design past the
    // capacity: what they found is a line per search.
    let searches = crate::compare::scenarios::capacity::searches(&runs, profile.capacity_slo);
    for c in &searches {
        say(format_args!("{}", report::capacity::line(c)))?;
    }
    if scenario == crate::compare::model::Scenario::Reach {
        say(format_args!(
            "{}",
            reach::reach_line(&runs, profile.reach_p99)
        ))?;
    }
    if let Some(path) = &args.out {
        let json = serde_json::to_string_pretty(&runs).context("serialising results")?;
        std::fs::write(path, json + "\n")
            .with_context(|| format!("writing {} (--out)", path.display()))?;
    }
    Ok(if stop.load(std::sync::atomic::Ordering::Relaxed) {
        EXIT_INTERRUPTED
    } else if !runs.is_empty()
        && runs
            .iter()
            .all(|r| r.outcome.ok || crate::compare::scenarios::capacity::is_step(r))
        && searches.iter().all(|c| c.capacity_msgs_per_s.is_some())
    {
        0
    } else {
        EXIT_FAILED
    })
}

fn compare_command(args: &CompareArgs) -> anyhow::Result<i32> {
    // Before any load: a baseline that cannot be read fails now.
    let baseline = match &args.baseline {
        Some(path) => match diff::load("compare", "--baseline", path) {
            Ok(b) => Some((b, path)),
            Err(code) => return Ok(code),
        },
        None => None,
    };
    let externals = args.externals().unwrap_or_else(|e| e.exit());
    servers_limit();
    let stop = stop_flag()?;
    let targeted = !args.targets.is_empty();
    // Running servers have the CPUs their containers were given.
    let server_cpus = if targeted {
        Vec::new()
    } else {
        args.servers.server_cpus.0.clone()
    };
    let client_cpus = client_cpus(&server_cpus, args.servers.client_cpus.as_ref())?;
    let out = match (&args.resume, &args.out) {
        (Some(dir), _) => dir.clone(),
        (None, Some(p)) => expand_host(p),
        (None, None) => PathBuf::from("results").join(utc_stamp(std::time::SystemTime::now())),
    };
    if let (Some(n), Some(dir)) = (args.replicas, &args.replica_dir) {
        if !targeted {
            anyhow::bail!("--replicas: only with --target (the servers every replica drives)");
        }
        let sync = crate::compare::replicas::ReplicaSync::new(
            dir,
            n as usize,
            // Replicas in containers differ by host name, processes on
            // one host by pid.
            &format!("{}-{}", host_name(), std::process::id()),
            crate::compare::replicas::WAIT_LIMIT,
        );
        if !sync.install() {
            anyhow::bail!("--replicas: this process already runs a comparison in step with others");
        }
    }
    let mut profile = profile(&args.profile);
    if let Some(slo) = args.slo {
        if !profile.runs(crate::compare::model::Scenario::Capacity) {
            note!(
                "loadgen compare: --slo: the {} profile runs no capacity scenario",
                profile.name
            );
        }
        profile.capacity_slo = slo;
    }
    if args.replicas.is_some() && profile.runs(crate::compare::model::Scenario::Capacity) {
        // Each replica's search would choose its next rate from its own
        // steps, so the replicas' runs would not line up to be merged.
        note!(
            "loadgen compare: --replicas: the capacity scenario is left out (each replica's \
             search would choose its own rates; merged runs must be the same runs)"
        );
        profile
            .scenarios
            .retain(|&s| s != crate::compare::model::Scenario::Capacity);
    }
    let mut styles: Vec<String> = if targeted {
        args.targets.iter().map(|t| t.style.clone()).collect()
    } else {
        match &args.styles {
            Some(list) => list.0.clone(),
            None => profile.default_styles(),
        }
    };
    styles.extend(externals.iter().map(|e| e.row()));
    let profile = args.scoped(profile, &styles).unwrap_or_else(|e| e.exit());
    if args.docker_socket.is_some() && !targeted {
        anyhow::bail!("--docker-socket: only with --target (the containers to drive)");
    }
    if targeted && args.server_cpu_quota.is_some_and(|q| q.0.is_some()) {
        anyhow::bail!(
            "--server-cpu-quota: not with --target (a running server's CPU is its container's: set `cpus:` there)"
        );
    }
    let server_cpu_quota = match args.server_cpu_quota {
        Some(q) => q.0,
        None if targeted => None,
        None => profile.server_cpu_quota,
    };
    // Servers at --target addresses are not ours to quota or pair: one
    // round unless asked (their figures do not rank the styles anyway).
    let repeat = args
        .repeat
        .unwrap_or(if targeted { 1 } else { profile.repeat });
    let opts = crate::compare::CompareOptions {
        styles,
        targets: args.targets.clone(),
        docker: args
            .docker_socket
            .as_deref()
            .map(crate::probe::docker::Docker::new),
        network: args.network.clone(),
        profile,
        server_bin: args.servers.server_bin.clone(),
        server_cpus,
        client_cpus,
        server_cpu_quota,
        quota_required: args.server_cpu_quota.is_some_and(|q| q.0.is_some()),
        repeat,
        guard: None,
        externals,
    };
    if args.plan {
        // Nothing started, nothing written: the plan and its estimate.
        let cgroups = !targeted && crate::probe::cgroup::Layout::detect().is_ok();
        say(format_args!(
            "{}",
            crate::compare::plan::plan(&opts, cgroups).text(&opts)
        ))?;
        return Ok(0);
    }
    // One comparison at a time (held until this function returns).
    let replica_dir = args
        .replica_dir
        .as_deref()
        .filter(|_| args.replicas.is_some());
    let _lock = match machine_lock("compare", args.servers.allow_concurrent, replica_dir)? {
        Ok(l) => l,
        Err(code) => return Ok(code),
    };
    // Before any load: a bad --out fails now, not after the whole run; the
    // journal's header is written before the first server starts.
    if args.resume.is_none() {
        std::fs::create_dir_all(&out)
            .with_context(|| format!("creating {} (--out)", out.display()))?;
    }
    let header =
        crate::compare::journal::Header::new(&opts, &crate::probe::host::fingerprint(None));
    let opened = match &args.resume {
        Some(_) => journal::FileJournal::resume(&out, &header)?,
        None => journal::FileJournal::create(&out, &header)?,
    };
    let mut journal = match opened {
        Ok(j) => j,
        Err(why) => {
            note!(
                "loadgen compare: {}{why}",
                match &args.resume {
                    Some(dir) => format!("--resume {}: ", dir.display()),
                    None => String::new(),
                }
            );
            return Ok(2);
        }
    };
    if let Some(dir) = &args.resume {
        note!(
            "loadgen compare: --resume {}: {} of its {} units are in the journal; running the rest",
            dir.display(),
            journal.recorded_units(),
            header.planned_units
        );
    }
    let opts = crate::compare::CompareOptions {
        guard: if targeted { None } else { start_guard() },
        ..opts
    };
    let results = crate::compare::run_journaled(&opts, Arc::clone(&stop), &mut journal)?;
    crate::report::write(&results, &out)?;
    let regressed = match &baseline {
        Some((b, path)) => {
            diff::against_baseline(b, path, &results, &out, args.fail_on_regression)?
        }
        None => 0,
    };
    // Capacity steps past the capacity fail by design (the report judges them).
    let failed = results
        .runs
        .iter()
        .filter(|r| !r.outcome.ok && !crate::compare::scenarios::capacity::is_step(r))
        .count();
    let unclean = results
        .servers
        .iter()
        .filter(|s| !s.stopped_cleanly)
        .count();
    if crate::report::perf::applies(&results) {
        // Reported, never asserted: the exit code does not depend on it.
        say(format_args!("{}", crate::report::perf::markdown(&results)))?;
        say(format_args!("perf: {}", out.join("perf.md").display()))?;
    }
    say(format_args!(
        "report: {}  ({} runs, {failed} failed, {unclean} server(s) not stopped cleanly, {:.0} s)",
        out.join("report.md").display(),
        results.runs.len(),
        results.elapsed_s
    ))?;
    let failures = comparison_failures(&results);
    for f in &failures {
        note!("loadgen compare: FAILED: {f}");
    }
    Ok(if stop.load(std::sync::atomic::Ordering::Relaxed) {
        EXIT_INTERRUPTED
    } else if crate::STDERR_LOST.load(std::sync::atomic::Ordering::Relaxed) || !failures.is_empty()
    {
        // Cut short (what it had to say could not be said), or a style
        // that could not be measured: not a comparison to trust whole.
        EXIT_FAILED
    } else {
        regressed
    })
}

/// Why a comparison as a whole did not succeed: a server that did not
/// start or died during its runs, or no run that did what was asked. A
/// single failed run is in the report, and is not one of these.
fn comparison_failures(results: &crate::compare::model::CompareResults) -> Vec<String> {
    let mut out = Vec::new();
    for s in &results.servers {
        let died = s
            .problem
            .as_deref()
            .is_some_and(|p| p.starts_with("had already exited"));
        if !s.started || died {
            out.push(format!(
                "{} ({}): {}",
                s.style,
                s.phase,
                s.problem.as_deref().unwrap_or("did not start")
            ));
        }
    }
    if !results.runs.iter().any(|r| r.outcome.ok) {
        out.push(format!("none of its {} runs succeeded", results.runs.len()));
    }
    out
}

fn merge_command(args: &MergeArgs) -> anyhow::Result<i32> {
    if args.comparisons {
        return merge_comparisons(args);
    }
    let mut parts = Vec::new();
    let mut files = Vec::new();
    for path in &args.files {
        // A directory stands for every .json file in it (the parts written
        // by several loadgen instances), in name order.
        if path.is_dir() {
            let mut inside: Vec<PathBuf> = std::fs::read_dir(path)
                .with_context(|| format!("reading {}", path.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "json"))
                .collect();
            inside.sort();
            if inside.is_empty() {
                anyhow::bail!("{} holds no .json result", path.display());
            }
            files.extend(inside);
        } else {
            files.push(path.clone());
        }
    }
    for path in &files {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let result: RunResult = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a loadgen JSON result", path.display()))?;
        parts.push(Part {
            name: path.display().to_string(),
            result,
        });
    }
    let merged = merge_parts(&parts, args.force).context("cannot merge")?;
    emit(&merged, args.format, args.out.as_ref())?;
    Ok(if merged.outcome.ok { 0 } else { EXIT_FAILED })
}

/// `loadgen merge --comparisons`: replicas' results.json merged run by
/// run, written with its report into --out.
fn merge_comparisons(args: &MergeArgs) -> anyhow::Result<i32> {
    let mut replicas = Vec::new();
    for path in &args.files {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let results = serde_json::from_str(&text).with_context(|| {
            format!("{} is not a `loadgen compare` results.json", path.display())
        })?;
        replicas.push(crate::compare::replicas::Replica {
            name: path.display().to_string(),
            results,
        });
    }
    let merged = crate::compare::replicas::merge(&replicas, args.force).context("cannot merge")?;
    let dir = args.out.clone().unwrap_or_default();
    crate::report::write(&merged, &dir)?;
    let failed = merged.runs.iter().filter(|r| !r.outcome.ok).count();
    say(format_args!(
        "report: {}  ({} runs of {} replicas merged, {failed} failed)",
        dir.join("report.md").display(),
        merged.runs.len(),
        replicas.len()
    ))?;
    let failures = comparison_failures(&merged);
    for f in &failures {
        note!("loadgen merge: FAILED: {f}");
    }
    Ok(if failures.is_empty() { 0 } else { EXIT_FAILED })
}

/// This machine's (or container's) host name.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| std::process::id().to_string())
}

/// `{host}` in an --out path becomes this machine's (or container's) host
/// name, so replicas of one loadgen service write separate files.
fn expand_host(path: &std::path::Path) -> PathBuf {
    let text = path.to_string_lossy();
    if !text.contains("{host}") {
        return path.to_path_buf();
    }
    PathBuf::from(text.replace("{host}", &host_name()))
}

/// `--out`'s path ({host} expanded), its folder made and the file
/// created, so that it is known to be writable.
fn out_file(path: &std::path::Path) -> anyhow::Result<PathBuf> {
    let path = expand_host(path);
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating {} (--out)", dir.display()))?;
    }
    std::fs::File::create(&path).with_context(|| format!("creating {} (--out)", path.display()))?;
    Ok(path)
}

fn emit(result: &RunResult, format: Format, out: Option<&PathBuf>) -> anyhow::Result<()> {
    let body = match format {
        Format::Text => report::text(result),
        Format::Json => report::json(result) + "\n",
        Format::Csv => format!("{}\n{}\n", report::csv_header(), report::csv_row(result)),
    };
    match out {
        Some(path) => {
            let path = out_file(path)?;
            std::fs::write(&path, body)
                .with_context(|| format!("writing {} (--out)", path.display()))?;
            if format != Format::Text {
                say(format_args!("{}", report::text(result).trim_end()))?;
            }
        }
        None => {
            let mut stdout = std::io::stdout().lock();
            stdout.write_all(body.as_bytes())?;
            stdout.flush()?;
        }
    }
    Ok(())
}

fn progress_bar(spec: &RunSpec) -> engine::TickFn {
    let total = spec.total_conns() as u64;
    let bar = indicatif::ProgressBar::new(total);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} {msg} [{bar:30}] {pos}/{len}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar.set_message("connecting");
    let mut phase = 0;
    Box::new(
        move |control: &Control, spec: &RunSpec| match control.start.get() {
            None => bar.set_position(
                control
                    .established
                    .load(std::sync::atomic::Ordering::Relaxed),
            ),
            Some(start) => {
                let elapsed = start.elapsed();
                let total_ms = (spec.warmup + spec.duration).as_millis() as u64;
                if phase == 0 {
                    phase = 1;
                    bar.set_length(total_ms.max(1));
                }
                let msgs = control.completed.load(std::sync::atomic::Ordering::Relaxed);
                bar.set_message(if elapsed < spec.warmup {
                    "warming up".to_string()
                } else {
                    format!("measuring, {msgs} msgs")
                });
                bar.set_position((elapsed.as_millis() as u64).min(total_ms));
                if elapsed >= spec.warmup + spec.duration {
                    bar.finish_and_clear();
                }
            }
        },
    )
}
