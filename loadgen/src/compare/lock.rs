//! One comparison at a time: the machine-wide lock that `compare` (the
//! perf profile included) and `soak` take before they start anything.
//!
//! Two comparisons at once measure each other: each pins its servers and
//! itself to the same CPUs, and both report clean runs. So each takes an
//! exclusive `flock` on one file (`/run/c10k-echo.lock` where /run is
//! writable, else the temp dir's; `C10K_LOCK` names another) and writes its
//! pid and command line into it; a second one is refused at once (exit 2),
//! naming the holder, unless `--allow-concurrent`. The kernel releases the
//! lock when the holder's process ends however it ends (SIGKILL
//! included), so a stale file never blocks: only a live holder does. The
//! file is opened close-on-exec, so the servers a comparison starts do not
//! inherit (and keep) it.
//!
//! The replicas of one comparison (`--replicas N --replica-dir DIR`) run
//! at once by design: a replica finding the lock held by a replica of the
//! same DIR runs under that one's lock instead of being refused.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

/// The environment variable that names the lock file instead of the
/// default (tests give each comparison one of its own).
pub const ENV: &str = "C10K_LOCK";

/// The lock's file name, in /run or the temp dir.
const FILE_NAME: &str = "c10k-echo.lock";

/// The lock, held until dropped (or the process ends).
#[derive(Debug)]
pub struct MachineLock {
    /// None: running under a replica sibling's lock, or not locked at all
    /// (`--allow-concurrent`).
    _held: Option<Flock<File>>,
    pub path: PathBuf,
}

/// Why the lock was not taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another live comparison holds it.
    #[error(
        "another comparison is running on this machine (pid {pid}: {command}); it holds {path}. \
         Two at once measure each other: wait for it to end, or pass --allow-concurrent"
    )]
    Held {
        pid: String,
        command: String,
        path: String,
    },
    #[error("cannot use the lock file {path}: {why}")]
    Io { path: String, why: String },
}

/// What the holder wrote into the file.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Holder {
    pub pid: Option<u32>,
    pub command: String,
    pub replica_dir: Option<String>,
}

impl Holder {
    /// This process, in the file's format.
    fn me(replica_dir: Option<&Path>) -> Holder {
        let command: Vec<String> = std::env::args().collect();
        Holder {
            pid: Some(std::process::id()),
            command: command.join(" "),
            replica_dir: replica_dir.map(replica_key),
        }
    }

    fn text(&self) -> String {
        let mut s = format!(
            "pid={}\ncommand={}\n",
            self.pid.map(|p| p.to_string()).unwrap_or_default(),
            self.command.replace('\n', " ")
        );
        if let Some(d) = &self.replica_dir {
            s.push_str(&format!("replica_dir={d}\n"));
        }
        s
    }

    /// Reads the file's `key=value` lines; unknown keys are ignored.
    pub fn parse(text: &str) -> Holder {
        let mut h = Holder::default();
        for line in text.lines() {
            match line.split_once('=') {
                Some(("pid", v)) => h.pid = v.trim().parse().ok(),
                Some(("command", v)) => h.command = v.to_string(),
                Some(("replica_dir", v)) => h.replica_dir = Some(v.to_string()),
                _ => {}
            }
        }
        h
    }
}

/// A replica folder as the replicas of one comparison all name it.
fn replica_key(dir: &Path) -> String {
    // Not canonicalized: the folder may not exist yet for the first.
    std::path::absolute(dir)
        .unwrap_or_else(|_| dir.to_path_buf())
        .display()
        .to_string()
}

/// Where the lock is: `C10K_LOCK`, else /run's file where it can be
/// opened for writing, else the temp dir's.
pub fn default_path() -> PathBuf {
    if let Some(p) = std::env::var_os(ENV).filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    let run = Path::new("/run").join(FILE_NAME);
    if open(&run).is_ok() {
        return run;
    }
    std::env::temp_dir().join(FILE_NAME)
}

fn open(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        // Every user's comparisons meet at one file (the umask may narrow it).
        .mode(0o666)
        .open(path)
}

/// Takes the lock at [`default_path`]: see [`take_at`].
pub fn take(replica_dir: Option<&Path>) -> Result<MachineLock, LockError> {
    take_at(&default_path(), replica_dir)
}

/// Takes the lock at `path` at once, or says who holds it; never waits.
/// `replica_dir`: this process is a replica of the comparison run in step
/// through that folder, and shares the lock with the others.
pub fn take_at(path: &Path, replica_dir: Option<&Path>) -> Result<MachineLock, LockError> {
    let io = |e: &dyn std::fmt::Display| LockError::Io {
        path: path.display().to_string(),
        why: e.to_string(),
    };
    let file = open(path).map_err(|e| io(&e))?;
    match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(mut held) => {
            let me = Holder::me(replica_dir).text();
            held.set_len(0).map_err(|e| io(&e))?;
            held.rewind().map_err(|e| io(&e))?;
            held.write_all(me.as_bytes()).map_err(|e| io(&e))?;
            held.flush().map_err(|e| io(&e))?;
            Ok(MachineLock {
                _held: Some(held),
                path: path.to_path_buf(),
            })
        }
        Err((mut file, Errno::EWOULDBLOCK)) => {
            let mut text = String::new();
            // The holder writes its line just after it locks: one short
            // wait for it, so the refusal can name it.
            for _ in 0..20 {
                text.clear();
                file.rewind().map_err(|e| io(&e))?;
                file.read_to_string(&mut text).map_err(|e| io(&e))?;
                if text.contains("command=") {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            let holder = Holder::parse(&text);
            if let (Some(mine), Some(theirs)) = (replica_dir, &holder.replica_dir)
                && replica_key(mine) == *theirs
            {
                return Ok(MachineLock {
                    _held: None,
                    path: path.to_path_buf(),
                });
            }
            Err(LockError::Held {
                pid: holder
                    .pid
                    .map(|p| p.to_string())
                    .unwrap_or_else(|| "unknown".into()),
                command: if holder.command.is_empty() {
                    "unknown command".into()
                } else {
                    holder.command
                },
                path: path.display().to_string(),
            })
        }
        Err((_, e)) => Err(io(&e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!("c10k-lock-unit-{name}-{}", std::process::id()))
    }

    #[test]
    fn a_second_taker_is_refused_naming_the_first_until_it_lets_go() {
        let path = scratch("second");
        let first = take_at(&path, None).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let h = Holder::parse(&text);
        assert_eq!(h.pid, Some(std::process::id()));
        assert!(!h.command.is_empty());
        match take_at(&path, None) {
            Err(LockError::Held { pid, .. }) => assert_eq!(pid, std::process::id().to_string()),
            other => panic!("expected a refusal, got {other:?}"),
        }
        drop(first);
        let again = take_at(&path, None);
        assert!(again.is_ok(), "{again:?}");
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn replicas_of_one_folder_share_the_lock_others_do_not() {
        let path = scratch("replicas");
        let dir = std::env::temp_dir();
        let _first = take_at(&path, Some(&dir)).unwrap();
        assert!(take_at(&path, Some(&dir)).is_ok());
        assert!(take_at(&path, None).is_err());
        assert!(take_at(&path, Some(Path::new("/nonexistent-other"))).is_err());
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn the_holder_file_reads_back() {
        let h = Holder {
            pid: Some(42),
            command: "loadgen compare --profile smoke".into(),
            replica_dir: Some("/tmp/r".into()),
        };
        assert_eq!(Holder::parse(&h.text()), h);
        assert_eq!(Holder::parse("garbage"), Holder::default());
    }
}
