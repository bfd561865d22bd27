//! The journal: one JSON line per record, each synced to disk before the
//! next step runs, so that after a crash the file says exactly which steps
//! finished, which one was under way, and what every step replaced.
//!
//! Format (`cgmig.journal/v1`): a header line, then per step an `intent`
//! (the step and what was there before) and a `done` or `failed`; rollback
//! appends `undone`/`undo-failed` to the same file, so an interrupted rollback
//! can be run again.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::error::ApplyError;
use super::step::{Before, Step, StepFailure, StepResult};

/// Schema id of the header line.
pub const JOURNAL_SCHEMA: &str = "cgmig.journal/v1";

/// How the apply was run: resume repeats it exactly.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunOptions {
    /// `--stage`.
    pub stage: Option<usize>,
    /// `--only`.
    pub only: Option<String>,
    /// `--live`.
    pub live: bool,
    /// The cgroup2 mount.
    pub mount: String,
    /// The target's path on the mount.
    pub prefix: String,
}

/// One journal line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Record {
    /// First line.
    Header {
        /// [`JOURNAL_SCHEMA`].
        schema: String,
        /// [`plan_hash`] of the plan applied.
        plan_hash: String,
        /// The plan file, as given.
        plan: String,
        /// How it was run.
        options: RunOptions,
        /// Every step, in order: resume and rollback run these, not a
        /// re-computation that a changed host could shift.
        steps: Vec<Step>,
    },
    /// About to run step `seq`; `before` is what it replaces.
    Intent {
        /// 0-based step number.
        seq: usize,
        /// The step.
        step: Step,
        /// What was there.
        before: Before,
    },
    /// Step `seq` finished and was verified.
    Done {
        /// Step.
        seq: usize,
        /// What happened when not the obvious (`already there`, `process exited`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        note: Option<String>,
    },
    /// Step `seq` could not be done.
    Failed {
        /// Step.
        seq: usize,
        /// Why.
        error: String,
    },
    /// Rollback undid step `seq`.
    Undone {
        /// Step.
        seq: usize,
        /// Detail.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        note: Option<String>,
    },
    /// Rollback could not undo step `seq`.
    UndoFailed {
        /// Step.
        seq: usize,
        /// Why.
        error: String,
    },
}

/// A journal's text: a regular file only (a FIFO given to `rollback` must
/// not block), bounded like every user-named document (issue 10, class 2).
fn read_text(path: &Path) -> Result<String, ApplyError> {
    use crate::host::contain::{ReadError, read_user_file};
    let bytes = read_user_file(path, crate::host::MAX_DOCUMENT_BYTES).map_err(|e| {
        let e = match e {
            ReadError::Io(e) => e,
            ReadError::NotRegular(kind) => {
                std::io::Error::other(format!("it is a {kind}, not a regular file"))
            }
            ReadError::TooLarge(n) => std::io::Error::other(format!("larger than {n} bytes")),
        };
        ApplyError::io(path, e)
    })?;
    String::from_utf8(bytes)
        .map_err(|e| ApplyError::io(path, std::io::Error::new(std::io::ErrorKind::InvalidData, e)))
}

/// A journal read back: header, and per step its intent and outcome.
#[derive(Debug, Clone, Default)]
pub struct Journal {
    /// Plan hash, plan path, options.
    pub header: Option<(String, String, RunOptions)>,
    /// The steps from the header.
    pub steps: Vec<Step>,
    /// Step → (step, before) from its first intent.
    pub intents: BTreeMap<usize, (Step, Before)>,
    /// Step → `Ok(note)` done or `Err(reason)` failed (the last outcome wins).
    pub outcomes: BTreeMap<usize, StepResult>,
    /// Step → whether rollback undid it (or failed to).
    pub undone: BTreeMap<usize, StepResult>,
}

impl Journal {
    /// Read a journal. A torn last line (a crash during the write) is
    /// ignored: its step had not started or is re-checked on resume.
    pub fn read(path: &Path) -> Result<Journal, ApplyError> {
        let text = read_text(path)?;
        let mut j = Journal::default();
        let lines: Vec<&str> = text.lines().collect();
        let torn_tail = !text.ends_with('\n');
        for (i, line) in lines.iter().enumerate() {
            let rec: Record = match serde_json::from_str(line) {
                Ok(r) => r,
                Err(_) if torn_tail && i + 1 == lines.len() => break,
                Err(e) => {
                    return Err(ApplyError::Journal {
                        path: path.into(),
                        line: i + 1,
                        message: e.to_string(),
                    });
                }
            };
            j.add(rec, path, i + 1)?;
        }
        if j.header.is_none() {
            return Err(ApplyError::Journal {
                path: path.into(),
                line: 1,
                message: format!("not a cgmig journal (no {JOURNAL_SCHEMA} header)"),
            });
        }
        Ok(j)
    }

    fn add(&mut self, rec: Record, path: &Path, line: usize) -> Result<(), ApplyError> {
        match rec {
            Record::Header {
                schema,
                plan_hash,
                plan,
                options,
                steps,
            } => {
                if schema != JOURNAL_SCHEMA || line != 1 {
                    return Err(ApplyError::Journal {
                        path: path.into(),
                        line,
                        message: format!(
                            "unexpected header (schema {schema:?}; this cgmig reads {JOURNAL_SCHEMA})"
                        ),
                    });
                }
                self.header = Some((plan_hash, plan, options));
                self.steps = steps;
            }
            Record::Intent { seq, step, before } => {
                self.intents.entry(seq).or_insert((step, before));
            }
            Record::Done { seq, note } => {
                self.outcomes.insert(seq, Ok(note));
            }
            Record::Failed { seq, error } => {
                self.outcomes.insert(seq, Err(StepFailure(error)));
            }
            Record::Undone { seq, note } => {
                self.undone.insert(seq, Ok(note));
            }
            Record::UndoFailed { seq, error } => {
                self.undone.insert(seq, Err(StepFailure(error)));
            }
        }
        Ok(())
    }

    /// The first step without an outcome: where a resume starts.
    pub fn first_unfinished(&self, total: usize) -> usize {
        (0..total)
            .find(|s| !self.outcomes.contains_key(s))
            .unwrap_or(total)
    }
}

/// Appends records, each synced before `append` returns.
#[derive(Debug)]
pub struct Writer {
    file: File,
    path: PathBuf,
}

impl Writer {
    /// Create a new journal with its header (refuses to overwrite one).
    pub fn create(path: &Path, header: Record) -> Result<Writer, ApplyError> {
        let file = OpenOptions::new()
            .append(true)
            .create_new(true)
            .open(path)
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::AlreadyExists => ApplyError::Refused(format!(
                    "{}: a journal already exists: continue it with --resume, undo it with `cgmig rollback`, or move it away",
                    path.display()
                )),
                _ => ApplyError::io(path, e),
            })?;
        let mut w = Writer {
            file,
            path: path.into(),
        };
        w.append(&header)?;
        // The new directory entry must survive a crash too.
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
            && let Ok(d) = File::open(dir)
        {
            let _ = d.sync_all();
        }
        Ok(w)
    }

    /// Open an existing journal to append to it.
    pub fn open(path: &Path) -> Result<Writer, ApplyError> {
        let file = OpenOptions::new()
            .append(true)
            .open(path)
            .map_err(|e| ApplyError::io(path, e))?;
        // A torn last line (crash during its write) is cut off, so the
        // next record starts on its own line and the file stays readable.
        let text = std::fs::read(path).map_err(|e| ApplyError::io(path, e))?;
        if !text.is_empty() && !text.ends_with(b"\n") {
            let keep = text.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
            file.set_len(keep as u64).map_err(|e| ApplyError::io(path, e))?;
        }
        Ok(Writer {
            file,
            path: path.into(),
        })
    }

    /// Append one record and `fsync` it.
    pub fn append(&mut self, rec: &Record) -> Result<(), ApplyError> {
        self.append_unsynced(rec)?;
        self.sync()
    }

    /// Append one record; the caller syncs before anything else changes
    /// (the executor syncs a step's `done` together with the next intent).
    pub fn append_unsynced(&mut self, rec: &Record) -> Result<(), ApplyError> {
        let mut line = serde_json::to_string(rec).map_err(|e| ApplyError::Refused(e.to_string()))?;
        line.push('\n');
        self.file
            .write_all(line.as_bytes())
            .map_err(|e| ApplyError::io(&self.path, e))
    }

    /// `fdatasync` what was appended.
    pub fn sync(&mut self) -> Result<(), ApplyError> {
        self.file.sync_data().map_err(|e| ApplyError::io(&self.path, e))
    }
}

/// A stable hash of a plan's content (FNV-1a 64 of its canonical JSON).
pub fn plan_hash(plan: &crate::plan::Plan) -> String {
    let text = serde_json::to_string(plan).unwrap_or_default();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// The journal path when `--journal` is not given: `PLAN.journal`.
pub fn default_path(plan: &Path) -> PathBuf {
    let mut s = plan.as_os_str().to_owned();
    s.push(".journal");
    PathBuf::from(s)
}

/// The host-wide lock: held for the whole apply or rollback.
#[derive(Debug)]
pub struct Lock {
    _flock: nix::fcntl::Flock<File>,
}

impl Lock {
    /// Take the lock at `$CGMIG_LOCK` or `/run/cgmig.lock`, or say who holds it.
    pub fn take() -> Result<Lock, ApplyError> {
        let path =
            std::env::var_os("CGMIG_LOCK").map_or_else(|| PathBuf::from("/run/cgmig.lock"), PathBuf::from);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| ApplyError::io(&path, e))?;
        match nix::fcntl::Flock::lock(
            file.try_clone().map_err(|e| ApplyError::io(&path, e))?,
            nix::fcntl::FlockArg::LockExclusiveNonblock,
        ) {
            Ok(mut fl) => {
                let _ = fl.set_len(0);
                let _ = writeln!(&mut *fl, "{}", std::process::id());
                let _ = fl.sync_data();
                Ok(Lock { _flock: fl })
            }
            Err((_, Errno::EWOULDBLOCK)) => {
                let mut s = String::new();
                let _ = std::io::Read::read_to_string(&mut file, &mut s);
                let holder = s.trim();
                Err(ApplyError::Locked {
                    path,
                    holder: if holder.is_empty() {
                        String::new()
                    } else {
                        format!(" by pid {holder}")
                    },
                })
            }
            Err((_, e)) => Err(ApplyError::io(&path, e.into())),
        }
    }
}

use nix::errno::Errno;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Action;

    fn header() -> Record {
        Record::Header {
            schema: JOURNAL_SCHEMA.into(),
            plan_hash: "abc".into(),
            plan: "p.json".into(),
            options: RunOptions::default(),
            steps: Vec::new(),
        }
    }

    #[test]
    fn records_round_trip_and_resume_point() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("j");
        let mut w = Writer::create(&p, header()).unwrap();
        let step = Step::Action(Action::Create { path: "/a".into() });
        w.append(&Record::Intent {
            seq: 0,
            step: step.clone(),
            before: Before::default(),
        })
        .unwrap();
        w.append(&Record::Done { seq: 0, note: None }).unwrap();
        w.append(&Record::Intent {
            seq: 1,
            step,
            before: Before::default(),
        })
        .unwrap();
        let j = Journal::read(&p).unwrap();
        assert_eq!(j.header.as_ref().unwrap().0, "abc");
        assert_eq!(j.first_unfinished(3), 1);
        assert!(j.intents.contains_key(&1));
        assert!(
            Writer::create(&p, header()).is_err(),
            "an existing journal is never overwritten"
        );
    }

    #[test]
    fn torn_last_line_is_ignored_but_a_bad_middle_line_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("j");
        let mut w = Writer::create(&p, header()).unwrap();
        w.append(&Record::Done { seq: 0, note: None }).unwrap();
        std::fs::write(&p, std::fs::read_to_string(&p).unwrap() + "{\"kind\":\"do").unwrap();
        let j = Journal::read(&p).unwrap();
        assert_eq!(j.first_unfinished(2), 1);
        let mut w = Writer::open(&p).unwrap();
        w.append(&Record::Done { seq: 1, note: None }).unwrap();
        assert_eq!(Journal::read(&p).unwrap().first_unfinished(3), 2);
        let text = std::fs::read_to_string(&p).unwrap();
        std::fs::write(&p, text.replacen("\"done\"", "\"dune\"", 1)).unwrap();
        assert!(matches!(
            Journal::read(&p),
            Err(ApplyError::Journal { line: 2, .. })
        ));
    }

    #[test]
    fn not_a_journal() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("j");
        std::fs::write(&p, "{\"kind\":\"done\",\"seq\":0}\n").unwrap();
        let e = Journal::read(&p).unwrap_err().to_string();
        assert!(e.contains("not a cgmig journal"), "{e}");
    }

    #[test]
    fn lock_is_exclusive() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("lock");
        // SAFETY: tests in this module are the only users of CGMIG_LOCK in the lib tests.
        unsafe { std::env::set_var("CGMIG_LOCK", &p) };
        let first = Lock::take().unwrap();
        let e = Lock::take().unwrap_err().to_string();
        assert!(e.contains("another cgmig apply or rollback is running"), "{e}");
        drop(first);
        assert!(Lock::take().is_ok());
    }
}
