//! `loadgen soak`: the flags into a plan, the soak run, its report written
//! and printed, and the exit code: 0 when every style passed, 1 when one
//! failed (each reason on stderr), 2 for bad flags, 130 when interrupted
//! (what was measured is written first).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use anyhow::Context;

use crate::cli::args::SoakArgs;
use crate::cli::common::{EXIT_FAILED, EXIT_INTERRUPTED, client_cpus, say, servers_limit};
use crate::cli::common::{start_guard, stop_flag, utc_stamp};
use crate::report::soak::failed_checks;

pub(super) fn soak_command(args: &SoakArgs) -> anyhow::Result<i32> {
    let plan = args.plan().unwrap_or_else(|e| e.exit());
    servers_limit();
    let stop = stop_flag()?;
    let server_cpus = args.servers.server_cpus.0.clone();
    let client_cpus = client_cpus(&server_cpus, args.servers.client_cpus.as_ref())?;
    let out = match &args.out {
        Some(p) => p.clone(),
        None => PathBuf::from("results")
            .join(format!("soak-{}", utc_stamp(std::time::SystemTime::now()))),
    };
    // One comparison or soak at a time (held until this function returns).
    let _lock = match super::common::machine_lock("soak", args.servers.allow_concurrent, None)? {
        Ok(l) => l,
        Err(code) => return Ok(code),
    };
    // Before any load: a bad --out fails now, not after the whole soak.
    std::fs::create_dir_all(&out).with_context(|| format!("creating {} (--out)", out.display()))?;
    let opts = crate::soak::SoakOptions {
        styles: args.styles.0.clone(),
        plan,
        server_bin: args.servers.server_bin.clone(),
        server_cpus,
        client_cpus,
        guard: start_guard(),
    };
    let results = crate::soak::run(&opts, Arc::clone(&stop))?;
    crate::report::soak::write(&results, &out)?;
    say(format_args!(
        "{}",
        crate::report::soak::markdown(&results).trim_end()
    ))?;
    say(format_args!("soak: {}", out.join("soak.md").display()))?;
    let mut failures = Vec::new();
    for st in &results.styles {
        for c in failed_checks(st) {
            failures.push(format!("{}: {}: {}", st.style, c.name, c.detail));
        }
    }
    for f in &failures {
        note!("loadgen soak: FAILED: {f}");
    }
    Ok(if stop.load(Ordering::Relaxed) {
        EXIT_INTERRUPTED
    } else if crate::STDERR_LOST.load(Ordering::Relaxed) || !results.passed {
        EXIT_FAILED
    } else {
        0
    })
}
