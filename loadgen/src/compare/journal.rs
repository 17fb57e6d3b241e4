//! The comparison's journal, in records: what identifies a comparison (its
//! [`Header`]), each session that ran part of it ([`Session`]) and each unit
//! it finished ([`Unit`], the servers and runs of one style at one step of
//! one round), one JSON object a line; how a journal's text is read back
//! ([`parse`], a cut-off last line ignored), what differs between two
//! comparisons' headers ([`Header::differences`]) and the results rebuilt
//! from the records ([`Parsed::results`]).
//!
//! Types and text only: [`crate::compare::run`] hands each finished unit to
//! a [`Recorder`], and the command line's recorder appends it to
//! `journal.jsonl` in the output folder (flushed and synced), so that a
//! comparison killed at minute 9 keeps its first 9 minutes.

use serde::{Deserialize, Serialize};

use crate::compare::capacity::Slo;
use crate::compare::model::{
    CgroupSetup, CompareResults, ExternalServer, Interrupted, Scope, ServerRecord, SessionSummary,
};
use crate::compare::options::CompareOptions;
use crate::compare::plan;
use crate::compare::scenarios::Step;
use crate::results::fingerprint::Fingerprint;
use crate::results::{RunResult, SCHEMA_VERSION};

/// The journal's file name in the output folder.
pub const FILE: &str = "journal.jsonl";

/// The format of the records; a journal in another is not resumed.
pub const VERSION: u32 = 1;

/// One line of the journal.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Record {
    Header(Header),
    Session(Session),
    Unit(Unit),
}

impl Record {
    /// The record as one line, its newline included.
    pub fn line(&self) -> anyhow::Result<String> {
        use anyhow::Context;
        Ok(serde_json::to_string(self).context("serialising a journal record")? + "\n")
    }
}

/// What identifies a comparison: everything that changes what it measures.
/// A journal is resumed only by a comparison whose header is the same.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Header {
    pub journal_version: u32,
    pub profile: String,
    pub styles: Vec<String>,
    /// The scenarios and windows (measured, warm-up, capacity step).
    pub scope: Scope,
    /// CPUs of CFS bandwidth per server (None: none).
    pub quota: Option<f64>,
    pub repeat: u32,
    pub slo: Slo,
    pub server_cpus: Vec<usize>,
    pub client_cpus: Vec<usize>,
    /// `--server-bin`, None: loadgen's own `serve`.
    pub server_bin: Option<String>,
    /// `--target`s, STYLE=ADDR each.
    pub targets: Vec<String>,
    pub externals: Vec<ExternalServer>,
    pub network: Option<String>,
    pub machine: Machine,
    /// loadgen's version and the git revision it was built from.
    pub loadgen: String,
    /// The units the comparison plans ([`plan::round_units`] over its
    /// rounds).
    pub planned_units: usize,
}

/// The machine a comparison ran on, as far as it decides the figures (not
/// its load, which changes from minute to minute).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Machine {
    pub cpu_model: String,
    pub cores: usize,
    pub kernel: String,
}

impl Machine {
    pub fn of(f: &Fingerprint) -> Machine {
        Machine {
            cpu_model: f.cpu_model.clone(),
            cores: f.cores,
            kernel: f.kernel.clone(),
        }
    }
}

impl Header {
    /// The header of the comparison `opts` describes, on `machine`, by the
    /// loadgen of `f` (its version and revision).
    pub fn new(opts: &CompareOptions, f: &Fingerprint) -> Header {
        let p = &opts.profile;
        let repeat = opts.repeat.max(1);
        Header {
            journal_version: VERSION,
            profile: p.name.to_string(),
            styles: opts.styles.clone(),
            scope: p.scope(),
            quota: opts.server_cpu_quota,
            repeat,
            slo: p.capacity_slo,
            server_cpus: opts.server_cpus.clone(),
            client_cpus: opts.client_cpus.clone(),
            server_bin: opts.server_bin.as_ref().map(|b| b.display().to_string()),
            targets: opts
                .targets
                .iter()
                .map(|t| format!("{}={}", t.style, t.addr))
                .collect(),
            externals: opts.externals.clone(),
            network: opts.network.clone(),
            machine: Machine::of(f),
            loadgen: format!("{} (git {})", f.loadgen_version, f.git_revision),
            planned_units: (0..repeat).map(|r| plan::round_units(opts, r).len()).sum(),
        }
    }

    /// What differs in `new` from this (the journal's) header, each named
    /// by the flag (or what) that sets it; empty when they are the same.
    pub fn differences(&self, new: &Header) -> Vec<String> {
        let mut out = Vec::new();
        let mut differ = |what: &str, old: String, new: String| {
            if old != new {
                out.push(format!(
                    "{what}: the journal's comparison has {old}, this one {new}"
                ));
            }
        };
        let list = |v: &[String]| match v.len() {
            0 => "none".to_string(),
            _ => v.join(","),
        };
        let cpus = |v: &[usize]| format!("{v:?}");
        let secs = |s: f64| format!("{s} s");
        let (a, b) = (self, new);
        differ(
            "the journal's format",
            a.journal_version.to_string(),
            b.journal_version.to_string(),
        );
        differ("--profile", a.profile.clone(), b.profile.clone());
        differ("--styles", list(&a.styles), list(&b.styles));
        differ(
            "--scenarios",
            list(&a.scope.scenarios),
            list(&b.scope.scenarios),
        );
        differ(
            "--duration",
            secs(a.scope.duration_s),
            secs(b.scope.duration_s),
        );
        differ("--warmup", secs(a.scope.warmup_s), secs(b.scope.warmup_s));
        differ(
            "the capacity step (--duration)",
            secs(a.scope.capacity_step_s),
            secs(b.scope.capacity_step_s),
        );
        differ(
            "the capacity warm-up (--warmup)",
            secs(a.scope.capacity_warmup_s),
            secs(b.scope.capacity_warmup_s),
        );
        let quota = |q: Option<f64>| q.map_or("none".to_string(), |q| format!("{q} CPU"));
        differ("--server-cpu-quota", quota(a.quota), quota(b.quota));
        differ("--repeat", a.repeat.to_string(), b.repeat.to_string());
        differ("--slo", a.slo.to_string(), b.slo.to_string());
        differ("--server-cpus", cpus(&a.server_cpus), cpus(&b.server_cpus));
        differ("--client-cpus", cpus(&a.client_cpus), cpus(&b.client_cpus));
        let bin = |b: &Option<String>| b.clone().unwrap_or_else(|| "loadgen serve".into());
        differ("--server-bin", bin(&a.server_bin), bin(&b.server_bin));
        differ("--target", list(&a.targets), list(&b.targets));
        let ext = |e: &[ExternalServer]| {
            list(
                &e.iter()
                    .map(|e| format!("{}={}", e.name, e.command))
                    .collect::<Vec<_>>(),
            )
        };
        differ("--external", ext(&a.externals), ext(&b.externals));
        let net = |n: &Option<String>| n.clone().unwrap_or_else(|| "none".into());
        differ("--network", net(&a.network), net(&b.network));
        differ(
            "the machine's CPU",
            a.machine.cpu_model.clone(),
            b.machine.cpu_model.clone(),
        );
        differ(
            "the machine's cores",
            a.machine.cores.to_string(),
            b.machine.cores.to_string(),
        );
        differ(
            "the machine's kernel",
            a.machine.kernel.clone(),
            b.machine.kernel.clone(),
        );
        differ("loadgen's version", a.loadgen.clone(), b.loadgen.clone());
        // Anything else that changes the plan (a profile's table changed
        // between versions is caught above by the version).
        differ(
            "the plan's units",
            a.planned_units.to_string(),
            b.planned_units.to_string(),
        );
        out
    }
}

/// One run of `loadgen compare` over the journal: the first, then each
/// `--resume`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Session {
    pub started_unix_s: u64,
    /// Whether it resumed a journal.
    pub resumed: bool,
    /// The machine as this session found it (its load average too).
    pub environment: Fingerprint,
    pub cgroup: Option<CgroupSetup>,
    pub server_command: String,
}

/// What names a unit within a comparison: its round, style and step.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct UnitKey {
    pub round: u32,
    pub style: String,
    /// [`step_name`]'s.
    pub step: String,
}

impl UnitKey {
    pub fn new(round: u32, style: &str, step: Option<Step>) -> UnitKey {
        UnitKey {
            round,
            style: style.to_string(),
            step: step_name(step),
        }
    }
}

/// A step in a unit's key: the server's phase ("idle", "scale conns=20
/// size=64"), "rest" for the scenarios after the points, "whole" where a
/// style runs whole (no points).
pub fn step_name(step: Option<Step>) -> String {
    match step {
        Some(Step::Rest) => "rest".into(),
        Some(step) => step.name(),
        None => "whole".into(),
    }
}

/// A finished unit: its servers and runs, their round set.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Unit {
    pub key: UnitKey,
    /// Seconds from its session's start to its end.
    pub session_elapsed_s: f64,
    pub servers: Vec<ServerRecord>,
    pub runs: Vec<RunResult>,
}

/// Where [`crate::compare::run`] finds the units done before (a resumed
/// journal) and leaves each session and each unit it finishes.
pub trait Recorder {
    /// The unit as an earlier session recorded it, if one did.
    fn recorded(&self, key: &UnitKey) -> Option<&Unit>;
    /// This session begins (its machine and cgroups now known).
    fn session(&mut self, session: Session);
    /// A unit ended, not cut short.
    fn unit(&mut self, unit: Unit);
    /// Every session so far, this one last ([`Parsed::summaries`]);
    /// empty without a journal.
    fn sessions(&self) -> Vec<SessionSummary>;
}

/// No journal: the units run and are kept in memory only.
pub struct NoJournal;

impl Recorder for NoJournal {
    fn recorded(&self, _: &UnitKey) -> Option<&Unit> {
        None
    }
    fn session(&mut self, _: Session) {}
    fn unit(&mut self, _: Unit) {}
    fn sessions(&self) -> Vec<SessionSummary> {
        Vec::new()
    }
}

/// A journal read back.
#[derive(Clone, Debug, PartialEq)]
pub struct Parsed {
    pub header: Header,
    /// Each session, with the units recorded after it (in order).
    pub sessions: Vec<(Session, Vec<Unit>)>,
    /// Bytes of the text its complete records take (a resume appends
    /// from there, the cut-off rest dropped).
    pub complete_len: usize,
    /// What was wrong with the last line, where it was cut off (ignored).
    pub torn: Option<String>,
}

/// Why a journal's text cannot be read.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum JournalError {
    #[error("it is empty (the comparison died before it began)")]
    Empty,
    #[error("its first record is not a comparison's header: {0}")]
    NoHeader(String),
    #[error("line {line} is not a journal record: {why}")]
    BadLine { line: usize, why: String },
    #[error("line {line} is a second header")]
    SecondHeader { line: usize },
    #[error("line {line} records a unit before any session")]
    NoSession { line: usize },
}

/// Reads a journal's text. Only the last line may be cut off (a record
/// half-written when the comparison died): it is left out and said in
/// [`Parsed::torn`]; a bad line before it is an error.
pub fn parse(text: &str) -> Result<Parsed, JournalError> {
    let mut complete_len = 0;
    let mut header = None;
    let mut sessions: Vec<(Session, Vec<Unit>)> = Vec::new();
    let mut torn = None;
    let mut rest = text;
    let mut line_no = 0;
    while !rest.is_empty() {
        line_no += 1;
        let (line, ended) = match rest.find('\n') {
            Some(i) => (&rest[..i], true),
            None => (rest, false),
        };
        let len = line.len() + usize::from(ended);
        rest = &rest[len..];
        let last = rest.is_empty();
        let record = match (ended, serde_json::from_str::<Record>(line)) {
            (true, Ok(r)) => r,
            (false, _) => {
                torn = Some(format!(
                    "line {line_no} ends without a newline ({} bytes)",
                    line.len()
                ));
                break;
            }
            (true, Err(e)) if last => {
                torn = Some(format!("line {line_no} is not a whole record ({e})"));
                break;
            }
            (true, Err(e)) => {
                return Err(JournalError::BadLine {
                    line: line_no,
                    why: e.to_string(),
                });
            }
        };
        match (record, &header) {
            (Record::Header(h), None) => header = Some(h),
            (_, None) => {
                return Err(JournalError::NoHeader(format!(
                    "line 1 is {}",
                    line.chars().take(40).collect::<String>()
                )));
            }
            (Record::Header(_), Some(_)) => {
                return Err(JournalError::SecondHeader { line: line_no });
            }
            (Record::Session(s), Some(_)) => sessions.push((s, Vec::new())),
            (Record::Unit(u), Some(_)) => match sessions.last_mut() {
                Some((_, units)) => units.push(u),
                None => return Err(JournalError::NoSession { line: line_no }),
            },
        }
        complete_len += len;
    }
    let Some(header) = header else {
        return Err(match torn {
            Some(t) => JournalError::NoHeader(t),
            None => JournalError::Empty,
        });
    };
    Ok(Parsed {
        header,
        sessions,
        complete_len,
        torn,
    })
}

impl Parsed {
    /// Every recorded unit, in the order they were recorded.
    pub fn units(&self) -> impl Iterator<Item = &Unit> {
        self.sessions.iter().flat_map(|(_, u)| u.iter())
    }

    /// What each session ran: its start and how many units.
    pub fn summaries(&self) -> Vec<SessionSummary> {
        Parsed::summaries_of(&self.sessions)
    }

    /// [`Self::summaries`] of sessions and their units.
    pub fn summaries_of(sessions: &[(Session, Vec<Unit>)]) -> Vec<SessionSummary> {
        sessions
            .iter()
            .map(|(s, units)| SessionSummary {
                started_unix_s: s.started_unix_s,
                resumed: s.resumed,
                units: units.len(),
                elapsed_s: units.last().map_or(0.0, |u| u.session_elapsed_s),
            })
            .collect()
    }

    /// The comparison as far as the journal goes, for the report of a
    /// comparison that was killed: the units in the order they were
    /// recorded, marked interrupted with how many of the planned units it
    /// holds.
    pub fn results(&self) -> CompareResults {
        let h = &self.header;
        let first = self.sessions.first().map(|(s, _)| s);
        let last = self.sessions.last().map(|(s, _)| s);
        let mut runs = Vec::new();
        let mut servers = Vec::new();
        for u in self.units() {
            servers.extend(u.servers.iter().cloned());
            runs.extend(u.runs.iter().cloned());
        }
        let recorded = self.units().count();
        CompareResults {
            schema_version: SCHEMA_VERSION,
            profile: h.profile.clone(),
            started_unix_s: first.map_or(0, |s| s.started_unix_s),
            elapsed_s: self.summaries().iter().map(|s| s.elapsed_s).sum(),
            environment: first.map(|s| s.environment.clone()).unwrap_or_default(),
            server_cpus: h.server_cpus.clone(),
            client_cpus: h.client_cpus.clone(),
            server_command: last.map(|s| s.server_command.clone()).unwrap_or_default(),
            network: h.network.clone().unwrap_or_else(|| "loopback".into()),
            styles: h.styles.clone(),
            repeat: h.repeat,
            cgroup: first.and_then(|s| s.cgroup.clone()),
            servers,
            capacity: crate::compare::scenarios::capacity::searches(&runs, h.slo),
            runs,
            externals: h.externals.clone(),
            load_after: None,
            scope: Some(h.scope.clone()),
            sessions: if self.sessions.len() > 1 {
                self.summaries()
            } else {
                Vec::new()
            },
            interrupted: (recorded < h.planned_units).then_some(Interrupted {
                planned_units: h.planned_units,
                recorded_units: recorded,
            }),
        }
    }
}

#[cfg(test)]
#[path = "journal_tests.rs"]
mod tests;
