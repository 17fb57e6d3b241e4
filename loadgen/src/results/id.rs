//! Which run a result is: an id made when the run ends, and for results
//! written before runs had one, an id made from their content.

use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::results::RunResult;

/// A new id, unique across processes and hosts: this process, the time in
/// nanoseconds, a count within the process, and 64 random bits (from the
/// keys std seeds its hash maps with, so no crate is needed for them).
/// Replicas in containers may share a pid and a clock tick; the random
/// part tells them apart.
pub fn new_run_id() -> String {
    static COUNT: AtomicU64 = AtomicU64::new(0);
    let n = COUNT.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let random = RandomState::new().hash_one(n);
    format!("{:x}-{nanos:x}-{n:x}-{random:016x}", std::process::id())
}

/// The ids of the runs `r` holds: those it was merged from, else its own,
/// else (written before runs had ids) one made from its content. Empty
/// only if it cannot be serialised.
pub fn run_ids(r: &RunResult) -> Vec<String> {
    if !r.merged_from.is_empty() {
        r.merged_from.clone()
    } else if !r.run_id.is_empty() {
        vec![r.run_id.clone()]
    } else {
        content_id(r).into_iter().collect()
    }
}

/// `content:` and the FNV-1a hash of the result's JSON: equal for two
/// copies of one file, stable across builds (std's hashers are not).
fn content_id(r: &RunResult) -> Option<String> {
    let bytes = serde_json::to_vec(r).ok()?;
    let hash = bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    Some(format!("content:{hash:016x}"))
}
