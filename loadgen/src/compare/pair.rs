//! Side-by-side pairs: where the profile asks for it (perf), a style's run
//! at a scale point is measured *at the same time* as a run of a fresh
//! reference (epoll) server, each server in its own cgroup on the server
//! CPUs, each driven by its own engine thread on the client CPUs, the two
//! measured windows starting together ([`super::rendezvous`]). The style's ratio
//! to epoll is then read against that partner run
//! ([`crate::report::view::View::scale_spread`]), not against epoll's own
//! run a few seconds earlier.
//!
//! Why: on this project's shared 2-vCPU VM a server's cost per message
//! moves ±15% from one 3-second window to the next, and the client's with
//! it: the machine is faster or slower for everyone at once. Two runs
//! measured over the same seconds see the same machine. Measured here, an
//! epoll/epoll pair at 50 connections, 6 rounds each, interleaved: one
//! after the other the ratio ranged 0.96-1.22 (stdev 0.095); side by side
//! 0.998-1.012 (stdev 0.006).
//!
//! The reference's own cells (its row, its rate) still come from its run
//! alone; a partner run is tagged [`crate::results::Tags::partner_of`] and
//! is only ever a denominator.
//!
//! This module decides where pairs run and judges the shared client CPU;
//! `compare_pair` in [`super`] runs a pair (it needs the round's servers).

use super::cgroups::quota_for;
use super::model::reference;
use super::options::CompareOptions;
use super::scenarios::Step;
use crate::results::RunResult;

/// Whether `style`'s `step` runs beside a reference server: the profile
/// asks for pairs, the step is a scale point, the style is ours to start
/// (not `--target`) and not the reference, the reference is in the
/// comparison, both servers get cgroups (`cgroups`) with a CPU quota
/// (unquoted, two servers would share the CPU thread by thread, and a
/// many-threaded style would take more of it than epoll), and both runs'
/// sockets fit in this one process's open-file limit (10,000 connections
/// twice do not fit in 20,000: those points run one at a time, as without
/// pairs).
pub fn pairs(opts: &CompareOptions, cgroups: bool, style: &str, step: Step) -> bool {
    let reference = reference();
    let Step::Scale { conns, .. } = step else {
        return false;
    };
    opts.profile.side_by_side
        && style != reference
        && opts.targets.is_empty()
        && opts.styles.iter().any(|s| s == reference)
        && cgroups
        && quota_for(opts, style, None).is_some()
        && quota_for(opts, reference, None).is_some()
        && 2 * conns + FD_SLACK <= fd_limit()
}

/// Open files a run needs beside its connections (the server's pipes,
/// /proc reads, the results).
const FD_SLACK: usize = 256;

fn fd_limit() -> usize {
    nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .map(|(soft, _)| usize::try_from(soft).unwrap_or(usize::MAX))
        .unwrap_or(1024)
}

/// How many partner runs a round adds: one per paired unit.
pub fn extra_runs(opts: &CompareOptions, cgroups: bool, units: &[(String, Option<Step>)]) -> usize {
    units
        .iter()
        .filter(|(st, step)| step.is_some_and(|s| pairs(opts, cgroups, st, s)))
        .count()
}

/// The two engines of a pair shared one client CPU: each thread's own
/// busy share says little, their sum says whether loadgen was the limit.
/// Both runs are marked client-bound when it passed the engine's mark.
/// `partners` are the reference's runs of this pair, `own` the style's.
pub fn shared_client(partners: &mut [RunResult], own: &mut [RunResult]) {
    let (Some(partner), Some(mine)) = (
        partners
            .iter_mut()
            .rev()
            .find(|r| r.tags.as_ref().is_some_and(|t| t.is_partner())),
        own.last_mut(),
    ) else {
        return;
    };
    let busy = partner.client.busy_max + mine.client.busy_max;
    if busy > crate::engine::CLIENT_BOUND {
        partner.client.client_bound = true;
        mine.client.client_bound = true;
    }
}
