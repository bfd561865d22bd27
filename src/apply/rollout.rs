//! What must survive a reboot: which stage of a staged rollout is done.
//!
//! The journal describes a tree that a reboot resets, so it lives in `/run`
//! and is never synced per step. That a stage was applied in full is the
//! one fact a staged rollout needs after the next reboot (the next stage
//! builds on it), so it is kept apart, in `/var/lib/cgmig/stages.json`
//! (`$CGMIG_STATE_DIR` for tests), written to a new file, synced, renamed
//! over the old one and the directory synced: one small write per stage,
//! not per step.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::error::ApplyError;

/// The state directory's default.
pub const STATE_DIR: &str = "/var/lib/cgmig";
/// The file in it.
const FILE: &str = "stages.json";
/// Schema of the file.
const SCHEMA: &str = "cgmig.stages/v1";

/// One stage applied in full.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageDone {
    /// The plan's hash (`journal::plan_hash`).
    pub plan_hash: String,
    /// The plan file as given.
    pub plan: String,
    /// The stage number.
    pub stage: usize,
    /// The boot it was applied in.
    pub boot_id: String,
    /// When (seconds since the epoch).
    pub at: u64,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Stages {
    schema: String,
    done: Vec<StageDone>,
}

/// `/var/lib/cgmig`, or `$CGMIG_STATE_DIR`.
pub fn state_dir() -> PathBuf {
    std::env::var_os("CGMIG_STATE_DIR").map_or_else(|| PathBuf::from(STATE_DIR), PathBuf::from)
}

/// The stages recorded as done (an absent file: none).
pub fn read(dir: &Path) -> Result<Vec<StageDone>, ApplyError> {
    let path = dir.join(FILE);
    let bytes = match crate::host::contain::read_user_file(&path, 1 << 20) {
        Ok(b) => b,
        Err(crate::host::contain::ReadError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(Vec::new());
        }
        Err(e) => {
            return Err(ApplyError::Refused(format!(
                "{}: cannot read the record of applied stages ({e:?})",
                path.display()
            )));
        }
    };
    let s: Stages = serde_json::from_slice(&bytes).map_err(|e| {
        ApplyError::Refused(format!("{}: not a record of applied stages: {e}", path.display()))
    })?;
    if s.schema != SCHEMA {
        return Err(ApplyError::Refused(format!(
            "{}: schema {:?} (this cgmig reads {SCHEMA})",
            path.display(),
            s.schema
        )));
    }
    Ok(s.done)
}

/// Record a stage as done: the file replaced atomically and synced.
pub fn record(dir: &Path, done: StageDone) -> Result<PathBuf, ApplyError> {
    std::fs::create_dir_all(dir).map_err(|e| ApplyError::io(dir, e))?;
    super::journal::check_dir_chain(&std::fs::canonicalize(dir).map_err(|e| ApplyError::io(dir, e))?)?;
    let mut all = read(dir)?;
    all.retain(|d| !(d.plan_hash == done.plan_hash && d.stage == done.stage));
    all.push(done);
    let text = serde_json::to_string_pretty(&Stages {
        schema: SCHEMA.into(),
        done: all,
    })
    .map_err(|e| ApplyError::Refused(e.to_string()))?;
    let path = dir.join(FILE);
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(|e| ApplyError::io(dir, e))?;
    tmp.write_all(text.as_bytes())
        .and_then(|()| tmp.write_all(b"\n"))
        .and_then(|()| tmp.as_file().sync_all())
        .map_err(|e| ApplyError::io(tmp.path(), e))?;
    tmp.persist(&path).map_err(|e| ApplyError::io(&path, e.error))?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| ApplyError::io(dir, e))?;
    Ok(path)
}

/// Seconds since the epoch, for the record.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_are_recorded_once_each_and_read_back() {
        let d = tempfile::tempdir().unwrap();
        let mk = |stage| StageDone {
            plan_hash: "h".into(),
            plan: "p.json".into(),
            stage,
            boot_id: "b".into(),
            at: 1,
        };
        assert!(read(d.path()).unwrap().is_empty());
        record(d.path(), mk(1)).unwrap();
        record(d.path(), mk(2)).unwrap();
        record(d.path(), mk(1)).unwrap();
        let got = read(d.path()).unwrap();
        assert_eq!(got.iter().map(|s| s.stage).collect::<Vec<_>>(), [2, 1]);
        std::fs::write(d.path().join(FILE), "junk").unwrap();
        assert!(read(d.path()).is_err());
    }
}
