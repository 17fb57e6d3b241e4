//! The comparison's journal on disk: `journal.jsonl` in `compare`'s output
//! folder, its header written before the first server starts and a record
//! appended, flushed and synced as each unit ends ([`FileJournal`], the
//! [`Recorder`] `compare` writes through); `compare --resume DIR` reopens
//! it, and `loadgen report DIR` rebuilds a killed comparison's results from
//! it ([`load_results`]). The records are [`crate::compare::journal`]'s.

use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::compare::journal::{
    FILE, Header, Parsed, Record, Recorder, Session, Unit, UnitKey, parse,
};
use crate::compare::model::{CompareResults, SessionSummary};

/// The journal a comparison writes to.
pub struct FileJournal {
    path: PathBuf,
    /// None once a write failed (said once; the results are still written
    /// at the end).
    file: Option<File>,
    /// What earlier sessions recorded (a resume), and where each unit is.
    earlier: Vec<(Session, Vec<Unit>)>,
    index: HashMap<UnitKey, (usize, usize)>,
    resuming: bool,
    /// This session's start, and its units and their last's seconds.
    this: Option<SessionSummary>,
}

/// The journal's path in `dir`.
pub fn path(dir: &Path) -> PathBuf {
    dir.join(FILE)
}

/// Reads `dir`'s journal; a cut-off last record is left out, with a
/// warning on stderr. None where there is no journal.
pub fn read(dir: &Path) -> anyhow::Result<Option<Parsed>> {
    let path = path(dir);
    let text = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    // A record cut off mid-character is still only the last line's loss.
    let text = String::from_utf8_lossy(&text);
    let parsed = parse(&text).with_context(|| format!("{} cannot be read", path.display()))?;
    if let Some(torn) = &parsed.torn {
        note!(
            "loadgen: warning: {}: its last record was cut off when the comparison died ({torn}): ignored",
            path.display()
        );
    }
    Ok(Some(parsed))
}

impl FileJournal {
    /// A new journal in `dir` holding `header`, or why not (`dir` holds
    /// the journal of a comparison that did not finish, with units that
    /// would be lost: it is not overwritten).
    pub fn create(dir: &Path, header: &Header) -> anyhow::Result<Result<FileJournal, String>> {
        let path = path(dir);
        if path.exists() && !dir.join("results.json").exists() {
            let text =
                std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
            let held = match parse(&String::from_utf8_lossy(&text)) {
                Ok(p) => (p.units().count(), p.header.planned_units),
                Err(_) => (0, 0),
            };
            if held.0 > 0 {
                return Ok(Err(format!(
                    "--out {}: it holds the journal of a comparison that did not finish ({} of its {} \
                     units recorded); finish it with --resume {0} (and the same flags), or give another --out",
                    dir.display(),
                    held.0,
                    held.1
                )));
            }
        }
        let file =
            File::create(&path).with_context(|| format!("creating {} (--out)", path.display()))?;
        let mut journal = FileJournal {
            path,
            file: Some(file),
            earlier: Vec::new(),
            index: HashMap::new(),
            resuming: false,
            this: None,
        };
        journal.append(&Record::Header(header.clone()))?;
        // The file's name, not only its bytes, must survive a crash.
        File::open(dir)
            .and_then(|d| d.sync_all())
            .with_context(|| format!("syncing {}", dir.display()))?;
        Ok(Ok(journal))
    }

    /// `dir`'s journal reopened for a comparison whose header is `header`,
    /// its cut-off last record (if any) dropped; or why not: there is no
    /// journal, it cannot be read, or the comparison differs (each
    /// difference named).
    pub fn resume(dir: &Path, header: &Header) -> anyhow::Result<Result<FileJournal, String>> {
        let path = path(dir);
        let parsed = match read(dir) {
            Ok(Some(p)) => p,
            Ok(None) => {
                return Ok(Err(format!(
                    "{} holds no {FILE} (no comparison to resume)",
                    dir.display()
                )));
            }
            Err(e) => return Ok(Err(format!("{e:#}"))),
        };
        let differ = parsed.header.differences(header);
        if !differ.is_empty() {
            return Ok(Err(format!(
                "not the comparison its journal holds:\n  {}",
                differ.join("\n  ")
            )));
        }
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        // New records follow the last complete one, not the cut-off rest.
        file.set_len(parsed.complete_len as u64)
            .and_then(|()| file.sync_data())
            .with_context(|| format!("dropping the cut-off record of {}", path.display()))?;
        let mut file = file;
        std::io::Seek::seek(&mut file, std::io::SeekFrom::End(0))
            .with_context(|| format!("opening {}", path.display()))?;
        let mut index = HashMap::new();
        for (s, (_, units)) in parsed.sessions.iter().enumerate() {
            for (u, unit) in units.iter().enumerate() {
                index.insert(unit.key.clone(), (s, u));
            }
        }
        Ok(Ok(FileJournal {
            path,
            file: Some(file),
            earlier: parsed.sessions,
            index,
            resuming: true,
            this: None,
        }))
    }

    /// Units earlier sessions recorded (a resume's).
    pub fn recorded_units(&self) -> usize {
        self.index.len()
    }

    /// Writes one record and syncs it to the disk before returning.
    fn append(&mut self, record: &Record) -> anyhow::Result<()> {
        let line = record.line()?;
        let Some(file) = self.file.as_mut() else {
            return Ok(());
        };
        file.write_all(line.as_bytes())
            .and_then(|()| file.flush())
            .and_then(|()| file.sync_data())
            .with_context(|| format!("writing {}", self.path.display()))
    }

    /// [`Self::append`], a failure said once and journaling then stopped.
    fn append_or_warn(&mut self, record: &Record) {
        if let Err(e) = self.append(record) {
            note!(
                "loadgen compare: warning: {e:#}: the units from here on are not journaled \
                 (results.json is still written at the end)"
            );
            self.file = None;
        }
    }
}

impl Recorder for FileJournal {
    fn recorded(&self, key: &UnitKey) -> Option<&Unit> {
        let &(s, u) = self.index.get(key)?;
        self.earlier.get(s)?.1.get(u)
    }

    fn session(&mut self, mut session: Session) {
        session.resumed = self.resuming;
        self.this = Some(SessionSummary {
            started_unix_s: session.started_unix_s,
            resumed: session.resumed,
            units: 0,
            elapsed_s: 0.0,
        });
        self.append_or_warn(&Record::Session(session));
    }

    fn unit(&mut self, unit: Unit) {
        if let Some(this) = self.this.as_mut() {
            this.units += 1;
            this.elapsed_s = unit.session_elapsed_s;
        }
        self.append_or_warn(&Record::Unit(unit));
    }

    fn sessions(&self) -> Vec<SessionSummary> {
        let earlier = Parsed::summaries_of(&self.earlier);
        earlier.into_iter().chain(self.this.clone()).collect()
    }
}

/// The results `loadgen report PATH` reports, and the folder to write the
/// report in by default: PATH's results.json, or where PATH is a folder
/// with no results.json (a comparison that was killed) the results rebuilt
/// from its journal.
pub fn load_results(path: &Path) -> anyhow::Result<(CompareResults, PathBuf)> {
    let (file, dir) = if path.is_dir() {
        (path.join("results.json"), path.to_path_buf())
    } else {
        let dir = path.parent().map(PathBuf::from).unwrap_or_default();
        (path.to_path_buf(), dir)
    };
    let journal_given = path.file_name().is_some_and(|n| n == FILE);
    if journal_given || (path.is_dir() && !file.exists()) {
        return match read(&dir)? {
            Some(parsed) => Ok((parsed.results(), dir)),
            None => anyhow::bail!(
                "{} holds neither results.json nor {FILE} (not a `loadgen compare` output folder)",
                dir.display()
            ),
        };
    }
    let text =
        std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
    let parsed = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a `loadgen compare` results.json", file.display()))?;
    Ok((parsed, dir))
}
