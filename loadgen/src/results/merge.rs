//! Runs taken together: the sums ([`RunResult::merge`]) and what makes a
//! merge meaningless ([`merge_parts`]), which `loadgen merge` refuses
//! unless forced.

use std::collections::HashMap;

use crate::results::id::{new_run_id, run_ids};
use crate::results::spec::{Mode, RunSpec};
use crate::results::{ClientStats, Fairness, RunResult, SCHEMA_VERSION};

/// One result to merge and the name (a file) that messages give it.
pub struct Part {
    pub name: String,
    pub result: RunResult,
}

#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    /// The layout may differ: its figures cannot be read as ours, forced
    /// or not.
    #[error("{file}: schema_version {found} is not {SCHEMA_VERSION}")]
    Schema { file: String, found: u32 },
    #[error("these runs do not add up (--force merges them anyway): {}", .0.join("; "))]
    Refused(Vec<String>),
    #[error("{0}")]
    Figures(String),
}

/// Merges `parts` as [`RunResult::merge`] does, after checking that they
/// add up: each in the current schema, set up alike (see `differences`), and
/// no run in two of them. With `force` the merge is made anyway and says
/// in `merged_despite` what it would have been refused for.
pub fn merge_parts(parts: &[Part], force: bool) -> Result<RunResult, MergeError> {
    if let Some(p) = parts
        .iter()
        .find(|p| p.result.schema_version != SCHEMA_VERSION)
    {
        return Err(MergeError::Schema {
            file: p.name.clone(),
            found: p.result.schema_version,
        });
    }
    let mut refusals = differences(parts);
    refusals.extend(repeated_runs(parts));
    if !refusals.is_empty() && !force {
        return Err(MergeError::Refused(refusals));
    }
    let results: Vec<RunResult> = parts.iter().map(|p| p.result.clone()).collect();
    let mut merged = RunResult::merge(&results).map_err(MergeError::Figures)?;
    merged.merged_despite.extend(refusals);
    Ok(merged)
}

/// The set-up that runs of one merge share, each compared with the first
/// part's: a field that differs makes the sums meaningless. Message size
/// (bytes and MB/s would mix sizes under one label), the mode's kind
/// (closed, open and churn latencies measure different things; open rates
/// may differ, they add up), pipeline depth, and the requested duration
/// and warm-up: throughputs are summed as if every run measured over the
/// same window at once, which runs of different lengths or offsets did
/// not. (The measured window may differ a little, e.g. a run that ended
/// early: `measured_s` is then the longest.) Connections, idle connections
/// and threads are what replicas add; addresses may differ for one server.
fn differences(parts: &[Part]) -> Vec<String> {
    type Show = fn(&RunSpec) -> String;
    let fields: [(&str, Show); 5] = [
        ("message size", |s| format!("{} B", s.size)),
        ("mode", |s| s.mode.kind().to_string()),
        ("pipeline", |s| s.pipeline.to_string()),
        ("duration", |s| secs(s.duration)),
        ("warm-up", |s| secs(s.warmup)),
    ];
    let Some((first, rest)) = parts.split_first() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for p in rest {
        for (field, show) in &fields {
            let (a, b) = (show(&first.result.spec), show(&p.result.spec));
            if a != b {
                out.push(format!(
                    "{field} differs: {a} in {}, {b} in {}",
                    first.name, p.name
                ));
            }
        }
    }
    out
}

fn secs(d: std::time::Duration) -> String {
    format!("{} s", d.as_secs_f64())
}

/// Pairs of parts that hold the same run (by [`run_ids`]), each pair once.
fn repeated_runs(parts: &[Part]) -> Vec<String> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut pairs: Vec<(usize, usize, String)> = Vec::new();
    for (i, p) in parts.iter().enumerate() {
        for id in run_ids(&p.result) {
            match seen.get(&id) {
                Some(&j) if !pairs.iter().any(|(a, b, _)| (*a, *b) == (j, i)) => {
                    pairs.push((j, i, id));
                }
                Some(_) => {}
                None => {
                    seen.insert(id, i);
                }
            }
        }
    }
    pairs
        .into_iter()
        .map(|(a, b, id)| {
            format!(
                "the same run is in {} and {} (run {id})",
                parts[a].name, parts[b].name
            )
        })
        .collect()
}

impl RunResult {
    /// Combines runs that happened at the same time from several loadgen
    /// processes or hosts against one server: histograms are added,
    /// throughputs, counts and errors summed, per-connection counts joined.
    /// The histograms, errors, fairness and client figures are joined by
    /// the same code that joins the workers of one run (the engine's
    /// `combine`); what differs is the rest: each run measured its own
    /// window, so here throughputs and connect rates add up.
    pub fn merge(results: &[RunResult]) -> Result<RunResult, String> {
        let first = results.first().ok_or("nothing to merge")?;
        // Every part, the first too: its layout is the one copied below.
        if let Some((i, r)) = results
            .iter()
            .enumerate()
            .find(|(_, r)| r.schema_version != SCHEMA_VERSION)
        {
            return Err(format!(
                "run {} of {}: schema_version {} is not {SCHEMA_VERSION}",
                i + 1,
                results.len(),
                r.schema_version
            ));
        }
        let mut out = first.clone();
        out.run_id = new_run_id();
        out.merged_from = results.iter().flat_map(run_ids).collect();
        for r in &results[1..] {
            out.merged_despite.extend(r.merged_despite.iter().cloned());
            out.merged_runs += r.merged_runs;
            out.spec.conns += r.spec.conns;
            out.spec.idle += r.spec.idle;
            out.spec.threads += r.spec.threads;
            if let (Mode::Open { rate: a }, Mode::Open { rate: b }) =
                (&mut out.spec.mode, &r.spec.mode)
            {
                *a += b;
            }
            out.measured_s = out.measured_s.max(r.measured_s);
            out.started_unix_s = out.started_unix_s.min(r.started_unix_s);
            out.messages += r.messages;
            out.bytes += r.bytes;
            out.throughput_msgs_per_s += r.throughput_msgs_per_s;
            out.throughput_mb_per_s += r.throughput_mb_per_s;
            out.errors.add(&r.errors);
            out.histograms.add(&r.histograms)?;
            out.conns_unserved += r.conns_unserved;
            out.unfinished += r.unfinished;
            out.connect.attempted += r.connect.attempted;
            out.connect.established += r.connect.established;
            out.connect.rate_per_s += r.connect.rate_per_s;
            out.connect.phase_s = out.connect.phase_s.max(r.connect.phase_s);
            // One server's one listen queue, waited for by each part: the
            // longest wait, the most left.
            let c = &mut out.connect;
            c.accept_wait_s = match (c.accept_wait_s, r.connect.accept_wait_s) {
                (Some(a), Some(b)) => Some(a.max(b)),
                (a, b) => a.or(b),
            };
            c.unaccepted = c.unaccepted.max(r.connect.unaccepted);
            c.server_held = c.server_held.max(r.connect.server_held);
            if out.server.is_none() {
                out.server = r.server.clone();
            }
            out.outcome.ok &= r.outcome.ok;
            // Disturbed if any part was; the most disturbed part's load.
            out.disturbed |= r.disturbed;
            if r.foreign.as_ref().map(|f| f.share) > out.foreign.as_ref().map(|f| f.share) {
                out.foreign = r.foreign.clone();
            }
            out.outcome.interrupted |= r.outcome.interrupted;
            out.outcome
                .reasons
                .extend(r.outcome.reasons.iter().cloned());
        }
        out.fairness = Fairness::join(results.iter().map(|r| &r.fairness));
        out.client = ClientStats::join(results.iter().map(|r| &r.client));
        out.client.set_per_msg(out.messages);
        out.refresh_derived();
        Ok(out)
    }
}
