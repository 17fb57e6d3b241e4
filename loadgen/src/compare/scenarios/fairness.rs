//! `fairness`: one connection sends CPU-heavy work while light ones ping:
//! can the heavy one starve them?

use std::sync::Arc;
use std::time::Duration;

use crate::compare::env::Env;
use crate::compare::model::Scenario;
use crate::engine::{self, Control, RunOptions};
use crate::results::spec::{Mode, RunSpec};
use crate::results::{RunResult, Tags};

/// `fairness`: one connection sends large messages back to back while light
/// connections ping at a low rate; the server burns `--work-us` of CPU per
/// chunk it reads (it must have been started with it). The light
/// connections' latency shows whether the heavy one can starve them.
pub fn run(env: &mut Env) -> Vec<RunResult> {
    if env.interrupted() {
        return Vec::new();
    }
    let p = env.profile.clone();
    let heavy = RunSpec {
        conns: 1,
        size: p.fairness_heavy_size,
        pipeline: 4,
        // The heavy connection may be slow by design; it is not what is judged.
        timeout: Duration::from_secs(30),
        ..env.base_spec()
    };
    let light = RunSpec {
        conns: p.fairness_light,
        mode: Mode::Open {
            rate: p.fairness_light as f64 * p.fairness_light_rate,
        },
        timeout: Duration::from_secs(30),
        ..env.base_spec()
    };
    // Before the heavy connection starts: the light run's own settling
    // would wait for it to end.
    env.settle();
    // The heavy connections of replicas (`--replicas`) start together too.
    crate::compare::replicas::before_run(&format!("{}/fairness/heavy", env.target.style));
    let stop = Arc::clone(&env.stop);
    let heavy_run = std::thread::Builder::new()
        .name("fairness-heavy".into())
        .spawn(move || {
            let control = Arc::new(Control {
                stop,
                ..Control::default()
            });
            engine::run(&heavy, control, RunOptions::default())
        });
    let light_result = env.run(
        Scenario::Fairness,
        format!("light x{}", p.fairness_light),
        &light,
        true,
    );
    let mut out: Vec<RunResult> = light_result.into_iter().collect();
    if let Ok(handle) = heavy_run
        && let Ok(Ok(mut r)) = handle.join()
    {
        r.label = Some(format!("{}/fairness/heavy", env.target.style));
        r.tags = Some(Tags {
            style: env.target.style.clone(),
            scenario: Scenario::Fairness.name().into(),
            point: "heavy".into(),
            repeat: 0,
            partner_of: String::new(),
        });
        (env.on_run)(&r);
        out.push(r);
    }
    out
}
