//! What every test crate of the workspace shares: a server in this
//! process, one run to its end, and the committed comparison fixture. The
//! cross-crate tests in the root `tests/` include this file by path.

// Each test binary uses its own part of these.
#![allow(dead_code)]

use std::sync::Arc;

use loadgen::compare::model::CompareResults;
use loadgen::engine::{Control, RunOptions};
use loadgen::{RunResult, RunSpec};
use servers::{Config, ServerHandle, Style};

/// A server of `style` in this process, on a free loopback port; dropping
/// the handle stops it.
pub fn in_process(style: Style) -> ServerHandle {
    let listener = servers::listener::bind("127.0.0.1:0".parse().unwrap(), &Default::default())
        .expect("binding 127.0.0.1:0");
    servers::start(style, Config::default(), listener).expect("starting the server")
}

/// The results of a real smoke comparison, kept in `fixtures/`: the schema
/// every `results.json` must still load as.
pub fn compare_fixture() -> CompareResults {
    serde_json::from_str(include_str!("../fixtures/compare-smoke.json"))
        .expect("the fixture parses as compare results")
}

/// The fixture with `reactor` renamed `epoll`, so it has a reference.
pub fn fixture_with_epoll() -> CompareResults {
    let mut f = compare_fixture();
    for st in f.styles.iter_mut().filter(|s| *s == "reactor") {
        *st = "epoll".into();
    }
    for r in &mut f.runs {
        if let Some(t) = r.tags.as_mut().filter(|t| t.style == "reactor") {
            t.style = "epoll".into();
        }
    }
    for s in f.servers.iter_mut().filter(|s| s.style == "reactor") {
        s.style = "epoll".into();
    }
    f
}

/// One run of `spec` in this process, to its end.
pub fn run(spec: &RunSpec) -> RunResult {
    run_with(spec, RunOptions::default())
}

/// As [`run`], with `opts` (sampling a server, say).
pub fn run_with(spec: &RunSpec, opts: RunOptions) -> RunResult {
    loadgen::engine::run(spec, Arc::new(Control::default()), opts).expect("run set-up")
}

/// As [`in_process`], with `config` (a pool of a few workers, say).
pub fn in_process_with(style: Style, config: Config) -> ServerHandle {
    let listener = servers::listener::bind("127.0.0.1:0".parse().unwrap(), &Default::default())
        .expect("binding 127.0.0.1:0");
    servers::start(style, config, listener).expect("starting the server")
}

/// The layout, if a group can be made here; else None, said once per test.
pub fn writable_cgroups(test: &str) -> Option<loadgen::probe::cgroup::Layout> {
    let layout = match loadgen::probe::cgroup::Layout::detect() {
        Ok(l) => l,
        Err(e) => {
            eprintln!("{test}: skipped: no cgroups here ({e})");
            return None;
        }
    };
    match loadgen::probe::cgroup::ServerCgroup::create(&layout, "writable-check", None) {
        Ok(_) => Some(layout),
        Err(e) => {
            eprintln!("{test}: skipped: cgroups are not writable here ({e})");
            None
        }
    }
}
