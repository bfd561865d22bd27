//! The apply layer's errors: everything that stops an apply, rollback or
//! resume before or between actions. A failed *action* is not an error here:
//! it is recorded in the journal and listed in the result (exit 1).

use std::path::PathBuf;

/// Why apply or rollback could not run (exit 2).
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// An I/O error on a named file.
    ///
    /// The OS error is part of the message and not a `source()`, so an
    /// error chain says it once.
    #[error("{}: {err}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What the kernel said.
        err: std::io::Error,
    },
    /// The target is not a cgroup2 filesystem.
    #[error("{}: not a cgroup2 filesystem (statfs magic {magic:#x}); --target must be a cgroup2 mount or a directory in one", path.display())]
    NotCgroup2 {
        /// The target.
        path: PathBuf,
        /// The filesystem magic found.
        magic: i64,
    },
    /// The target is mounted read-only.
    #[error("{}: the cgroup2 filesystem is mounted read-only", path.display())]
    ReadOnly {
        /// The target.
        path: PathBuf,
    },
    /// A journal line could not be read.
    #[error("{}: line {line}: {message}", path.display())]
    Journal {
        /// The journal.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// The journal was written for another plan.
    #[error("{}: this journal belongs to another plan (it was written for {plan}); resume it with that plan, roll it back, or move it away", path.display())]
    OtherPlan {
        /// The journal.
        path: PathBuf,
        /// The plan file its header names.
        plan: String,
    },
    /// A journal (or the lock, or their directory) that someone other than
    /// root could have written or replaced: its content could be anyone's.
    #[error("{}: refused: {why}", path.display())]
    Untrusted {
        /// The file or directory.
        path: PathBuf,
        /// What makes it untrusted.
        why: String,
    },
    /// The journal was written in another boot.
    #[error("{}: written in another boot ({journal}; this boot is {now}): the cgroup tree and the processes it describes went with that boot, so there is nothing of it to resume or roll back; apply the plan again, or move the journal away", path.display())]
    OtherBoot {
        /// The journal.
        path: PathBuf,
        /// Its boot id.
        journal: String,
        /// This boot's id.
        now: String,
    },
    /// Another apply or rollback holds the lock.
    #[error("{}: another cgmig apply or rollback is running (the lock is held{holder})", path.display())]
    Locked {
        /// The lock file.
        path: PathBuf,
        /// `" by pid N"` when known.
        holder: String,
    },
    /// The plan was made for another host or kernel, or the host changed.
    #[error("the plan does not fit this host:\n  {}", reasons.join("\n  "))]
    WrongHost {
        /// Every mismatch.
        reasons: Vec<String>,
    },
    /// The plan breaks v2 rules.
    #[error("{}: the plan does not validate:\n  {}", path.display(), reasons.join("\n  "))]
    Invalid {
        /// The plan file.
        path: PathBuf,
        /// Every violation.
        reasons: Vec<String>,
    },
    /// The live handover preflight refused.
    #[error("live handover refused before touching anything:\n  {}\n{hint}", reasons.join("\n  "))]
    Preflight {
        /// Every reason.
        reasons: Vec<String>,
        /// What to do instead.
        hint: String,
    },
    /// A mount could not be opened, or is not the filesystem it must be.
    #[error(transparent)]
    Mount(#[from] super::beneath::MountError),
    /// Anything else that stops the run, with its reason.
    #[error("{0}")]
    Refused(String),
}

impl ApplyError {
    /// Wrap an I/O error with its path.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> ApplyError {
        ApplyError::Io {
            path: path.into(),
            err: source,
        }
    }
}
