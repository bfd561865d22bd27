//! The journal: one JSON line per record, written before and after every
//! step, so that after a kill the file says exactly which steps finished,
//! which one was under way, and what every step replaced.
//!
//! Format (`cgmig.journal/v2`): a header line (with the boot it was written
//! in), then per step an `intent` (the step and what was there before) and
//! a `done` or `failed`; rollback appends `undone`/`undo-failed` to the same
//! file, so an interrupted rollback can be run again.
//!
//! **Why no sync per step.** The cgroup tree lives in kernel memory: a
//! reboot or a crash of the kernel resets it, together with everything in
//! `/run`. The journal's job is to survive the *process* (a kill, the OOM
//! killer), and a `write(2)` that returned is in the page cache, which
//! survives the process. So each record is one `write(2)` before the step
//! acts, and the file is synced once at the end. What must survive a reboot
//! (that a stage of a staged rollout is done) is kept apart and synced
//! ([`super::rollout`]). Journals default to `/run/cgmig/` (root only,
//! 0700), and a journal from another boot is void ([`Journal::check_boot`]).
//!
//! **Why the journal is checked like a plan.** `--resume` runs a journal's
//! steps and `rollback` undoes them as root, so a journal is refused when
//! its file or directory could have been written by someone else (the
//! ownership and permission rules of sshd's `StrictModes`,
//! [`check_strict_modes`]), and every step and `before` in it is checked
//! against the run's scope ([`super::scope`]) when it is read.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::{Mode, SFlag};
use serde::{Deserialize, Serialize};

use super::error::ApplyError;
use super::scope::Scope;
use super::step::{Before, Step, StepFailure, StepResult};

/// Schema id of the header line.
pub const JOURNAL_SCHEMA: &str = "cgmig.journal/v2";
/// The schema before journals recorded their boot.
const OLD_SCHEMA: &str = "cgmig.journal/v1";

/// Where journals and the lock live by default: volatile like the tree.
pub const RUN_DIR: &str = "/run/cgmig";

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

impl RunOptions {
    /// The scope every step of such a run must stay in.
    pub fn scope(&self) -> Scope<'_> {
        Scope {
            prefix: &self.prefix,
            live: self.live,
        }
    }
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
        /// `/proc/sys/kernel/random/boot_id` when the apply started: the
        /// tree it describes exists only in this boot.
        boot_id: String,
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

/// The header of a journal read back.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Header {
    /// [`plan_hash`] of the plan applied.
    pub plan_hash: String,
    /// The plan file, as given.
    pub plan: String,
    /// The boot the journal was written in.
    pub boot_id: String,
    /// How the apply was run.
    pub options: RunOptions,
}

/// A journal read back: header, and per step its intent and outcome.
#[derive(Debug, Clone, Default)]
pub struct Journal {
    /// The file.
    pub path: PathBuf,
    /// Plan hash, plan path, boot, options.
    pub header: Header,
    /// The steps from the header.
    pub steps: Vec<Step>,
    /// Step → (step, before) from its first intent.
    pub intents: BTreeMap<usize, (Step, Before)>,
    /// Step → `Ok(note)` done or `Err(reason)` failed (the last outcome wins).
    pub outcomes: BTreeMap<usize, StepResult>,
    /// Step → whether rollback undid it (or failed to).
    pub undone: BTreeMap<usize, StepResult>,
}

fn bad(path: &Path, line: usize, message: String) -> ApplyError {
    ApplyError::Journal {
        path: path.into(),
        line,
        message,
    }
}

impl Journal {
    /// Read a journal from its file: refused unless only root (or the user
    /// running cgmig) could have written it ([`check_strict_modes`]), then
    /// [`Journal::parse`]d.
    pub fn read(path: &Path) -> Result<Journal, ApplyError> {
        let fd = open_journal(path, OFlag::O_RDONLY)?;
        check_strict_modes(path, &fd)?;
        let bytes = crate::host::contain::read_fd(fd, crate::host::MAX_DOCUMENT_BYTES).map_err(|e| {
            use crate::host::contain::ReadError;
            let e = match e {
                ReadError::Io(e) => e,
                ReadError::NotRegular(kind) => {
                    std::io::Error::other(format!("it is a {kind}, not a regular file"))
                }
                ReadError::TooLarge(n) => std::io::Error::other(format!("larger than {n} bytes")),
            };
            ApplyError::io(path, e)
        })?;
        let text = String::from_utf8(bytes)
            .map_err(|e| ApplyError::io(path, std::io::Error::new(std::io::ErrorKind::InvalidData, e)))?;
        Journal::parse(&text, path)
    }

    /// Parse and check a journal's text. A torn last line (a kill during
    /// the write) is ignored: its step had not started or is re-checked on
    /// resume. Every step and `before` is checked against the run's scope.
    pub fn parse(text: &str, path: &Path) -> Result<Journal, ApplyError> {
        let mut j = Journal {
            path: path.into(),
            ..Journal::default()
        };
        let lines: Vec<&str> = text.lines().collect();
        let torn_tail = !text.ends_with('\n');
        let mut header = false;
        for (i, line) in lines.iter().enumerate() {
            let rec: Record = match serde_json::from_str(line) {
                Ok(r) => r,
                Err(_) if torn_tail && i + 1 == lines.len() && header => break,
                Err(e) if i == 0 => return Err(bad(path, 1, not_a_journal(line, Some(&e)))),
                Err(e) => return Err(bad(path, i + 1, e.to_string())),
            };
            j.add(rec, i + 1, &mut header)?;
        }
        if !header {
            return Err(bad(
                path,
                1,
                format!("not a cgmig journal (no {JOURNAL_SCHEMA} header)"),
            ));
        }
        Ok(j)
    }

    fn add(&mut self, rec: Record, line: usize, header: &mut bool) -> Result<(), ApplyError> {
        let path = self.path.clone();
        let fail = |m: String| bad(&path, line, m);
        if !*header && !matches!(rec, Record::Header { .. }) {
            return Err(fail(format!("not a cgmig journal (no {JOURNAL_SCHEMA} header)")));
        }
        match rec {
            Record::Header {
                schema,
                plan_hash,
                plan,
                boot_id,
                options,
                steps,
            } => {
                if schema == OLD_SCHEMA && line == 1 {
                    return Err(fail(not_a_journal(
                        &format!("{{\"schema\":\"{OLD_SCHEMA}\"}}"),
                        None,
                    )));
                }
                if schema != JOURNAL_SCHEMA || line != 1 {
                    return Err(fail(format!(
                        "unexpected header (schema {schema:?}; this cgmig reads {JOURNAL_SCHEMA})"
                    )));
                }
                check_options(&options).map_err(|m| fail(format!("header options: {m}")))?;
                let scope = options.scope();
                for (seq, s) in steps.iter().enumerate() {
                    scope
                        .check(s)
                        .map_err(|m| fail(format!("step {seq} ({}): {m}", s.label())))?;
                }
                self.header = Header {
                    plan_hash,
                    plan,
                    boot_id,
                    options,
                };
                self.steps = steps;
                *header = true;
            }
            Record::Intent { seq, step, before } => {
                let Some(planned) = self.steps.get(seq) else {
                    return Err(fail(format!(
                        "intent for step {seq}: the header has {} steps",
                        self.steps.len()
                    )));
                };
                if *planned != step {
                    return Err(fail(format!(
                        "intent for step {seq} ({}) differs from the header's step {seq} ({})",
                        step.label(),
                        planned.label()
                    )));
                }
                self.header
                    .options
                    .scope()
                    .check_before(&step, &before)
                    .map_err(|m| fail(format!("step {seq} ({}): {m}", step.label())))?;
                self.intents.entry(seq).or_insert((step, before));
            }
            Record::Done { seq, note } => {
                self.known(seq, line)?;
                self.outcomes.insert(seq, Ok(note));
            }
            Record::Failed { seq, error } => {
                self.known(seq, line)?;
                self.outcomes.insert(seq, Err(StepFailure(error)));
            }
            Record::Undone { seq, note } => {
                self.known(seq, line)?;
                self.undone.insert(seq, Ok(note));
            }
            Record::UndoFailed { seq, error } => {
                self.known(seq, line)?;
                self.undone.insert(seq, Err(StepFailure(error)));
            }
        }
        Ok(())
    }

    /// An outcome names a step the header has.
    fn known(&self, seq: usize, line: usize) -> Result<(), ApplyError> {
        if seq < self.steps.len() {
            Ok(())
        } else {
            Err(bad(
                &self.path,
                line,
                format!(
                    "a record for step {seq}: the header has {} steps",
                    self.steps.len()
                ),
            ))
        }
    }

    /// The first step without an outcome: where a resume starts.
    pub fn first_unfinished(&self, total: usize) -> usize {
        (0..total)
            .find(|s| !self.outcomes.contains_key(s))
            .unwrap_or(total)
    }

    /// Refuse a journal written in another boot: the cgroup tree and the
    /// processes it describes went with that boot, so there is nothing of
    /// it to resume or roll back (and its PIDs may name other processes).
    pub fn check_boot(&self) -> Result<(), ApplyError> {
        let now = this_boot()?;
        if self.header.boot_id == now {
            return Ok(());
        }
        Err(ApplyError::OtherBoot {
            path: self.path.clone(),
            journal: self.header.boot_id.clone(),
            now,
        })
    }
}

/// Why the first line is not a journal header, in words: an older
/// journal's schema is named, anything else gets the parser's message.
fn not_a_journal(line: &str, e: Option<&serde_json::Error>) -> String {
    let schema = serde_json::from_str::<serde_json::Value>(line)
        .ok()
        .and_then(|v| v.get("schema").and_then(|s| s.as_str().map(str::to_string)));
    match schema.as_deref() {
        Some(OLD_SCHEMA) => format!(
            "written by an older cgmig ({OLD_SCHEMA}): it records no boot, so cgmig cannot tell whether the tree it describes still exists (this cgmig reads {JOURNAL_SCHEMA}; undo it with the cgmig that wrote it, or move it away)"
        ),
        Some(other) => format!("unexpected header (schema {other:?}; this cgmig reads {JOURNAL_SCHEMA})"),
        None => match e {
            Some(e) => format!("not a cgmig journal: {e}"),
            None => "not a cgmig journal".into(),
        },
    }
}

/// The header's options: a normalized mount point, prefix and `--only`.
fn check_options(o: &RunOptions) -> Result<(), String> {
    if o.mount != "/" {
        super::beneath::mount_point("mount", &o.mount)?;
    }
    crate::model::path::cgroup_names(&o.prefix).map_err(|e| format!("prefix {:?}: {e}", o.prefix))?;
    if let Some(only) = &o.only {
        crate::model::path::cgroup_names(only).map_err(|e| format!("only {only:?}: {e}"))?;
    }
    Ok(())
}

/// This boot's id.
pub fn this_boot() -> Result<String, ApplyError> {
    const BOOT_ID: &str = "/proc/sys/kernel/random/boot_id";
    std::fs::read_to_string(BOOT_ID)
        .map(|s| s.trim().to_string())
        .map_err(|e| ApplyError::io(BOOT_ID, e))
}

/// Open a journal without following a symlink (a journal is cgmig's own
/// file; a link in its place was put there by someone else).
fn open_journal(path: &Path, flags: OFlag) -> Result<OwnedFd, ApplyError> {
    let fd = nix::fcntl::open(
        path,
        flags | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| match e {
        Errno::ELOOP => ApplyError::Untrusted {
            path: path.into(),
            why: "it is a symbolic link (a journal is cgmig's own file)".into(),
        },
        e => ApplyError::io(path, e.into()),
    })?;
    // SAFETY: open returned a fresh descriptor we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Whether an owner is one cgmig trusts: root, or the user running it.
fn trusted_owner(uid: u32) -> bool {
    uid == 0 || uid == nix::unistd::geteuid().as_raw()
}

/// sshd's `StrictModes` for a journal: the file and its directory must be
/// owned by root (or the user running cgmig) and not writable by group or
/// others; every directory above must be owned the same way and be either
/// not writable by group or others or sticky (`/tmp` is fine: nobody else
/// can replace what is in it).
pub fn check_strict_modes(path: &Path, fd: &OwnedFd) -> Result<(), ApplyError> {
    let untrusted = |p: &Path, why: String| ApplyError::Untrusted { path: p.into(), why };
    let st = nix::sys::stat::fstat(fd.as_raw_fd()).map_err(|e| ApplyError::io(path, e.into()))?;
    if st.st_mode & SFlag::S_IFMT.bits() != SFlag::S_IFREG.bits() {
        return Err(untrusted(
            path,
            format!(
                "it is a {}, not a regular file",
                crate::host::contain::kind_name(st.st_mode)
            ),
        ));
    }
    owned_safely(st.st_uid, st.st_mode, false).map_err(|w| untrusted(path, w))?;
    let dir = journal_dir(path)?;
    check_dir_chain(&dir)
}

/// The directory a journal is in, made absolute (not resolved further: its
/// components are checked one by one).
fn journal_dir(path: &Path) -> Result<PathBuf, ApplyError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::canonicalize(&dir).map_err(|e| ApplyError::io(&dir, e))
}

/// The directory a journal is (or is to be) in, and every directory above it.
pub fn check_dir_chain(dir: &Path) -> Result<(), ApplyError> {
    for (i, d) in dir.ancestors().enumerate() {
        let st = nix::sys::stat::lstat(d).map_err(|e| ApplyError::io(d, e.into()))?;
        owned_safely(st.st_uid, st.st_mode, i > 0).map_err(|why| ApplyError::Untrusted {
            path: d.into(),
            why: if i == 0 {
                why
            } else {
                format!("{why}, and it is above {}", dir.display())
            },
        })?;
    }
    Ok(())
}

/// One file or directory's owner and mode against `StrictModes`; the
/// reason does not repeat the path (the caller names it).
fn owned_safely(uid: u32, mode: u32, sticky_ok: bool) -> Result<(), String> {
    if !trusted_owner(uid) {
        return Err(format!("it is owned by uid {uid}, not by root"));
    }
    let sticky = mode & 0o1000 != 0;
    if mode & 0o022 != 0 && !(sticky_ok && sticky) {
        return Err(format!(
            "it is writable by {} (mode {:04o})",
            if mode & 0o002 != 0 { "others" } else { "its group" },
            mode & 0o7777
        ));
    }
    Ok(())
}

/// Appends records: each intent is in the file (one `write(2)`) before the
/// step it announces acts; an outcome may wait in [`Writer::append_later`]
/// and go out with the next intent.
#[derive(Debug)]
pub struct Writer {
    file: File,
    path: PathBuf,
    /// Outcomes not written yet: losing them to a kill only means their
    /// (idempotent) steps run again on resume.
    pending: Vec<u8>,
}

impl Writer {
    /// Create a new journal with its header (refuses to overwrite one), in
    /// a directory that passes [`check_dir_chain`], readable by root only.
    pub fn create(path: &Path, header: &Record) -> Result<Writer, ApplyError> {
        check_dir_chain(&journal_dir(path)?)?;
        let fd = nix::fcntl::open(
            path,
            OFlag::O_WRONLY | OFlag::O_APPEND | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o600),
        )
        .map_err(|e| match e {
            Errno::EEXIST => ApplyError::Refused(format!(
                "{}: a journal already exists: continue it with --resume, undo it with `cgmig rollback`, or move it away",
                path.display()
            )),
            e => ApplyError::io(path, e.into()),
        })?;
        // SAFETY: open returned a fresh descriptor we own.
        let file = File::from(unsafe { OwnedFd::from_raw_fd(fd) });
        let mut w = Writer {
            file,
            path: path.into(),
            pending: Vec::new(),
        };
        w.append(header)?;
        Ok(w)
    }

    /// Open an existing journal to append to it (checked as [`Journal::read`]
    /// checks it). A torn last line is cut off first, so the next record
    /// starts on its own line.
    pub fn open(path: &Path) -> Result<Writer, ApplyError> {
        let fd = open_journal(path, OFlag::O_RDWR | OFlag::O_APPEND)?;
        check_strict_modes(path, &fd)?;
        let file = File::from(fd);
        let text = std::fs::read(path).map_err(|e| ApplyError::io(path, e))?;
        if !text.is_empty() && !text.ends_with(b"\n") {
            let keep = text.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
            file.set_len(keep as u64).map_err(|e| ApplyError::io(path, e))?;
        }
        Ok(Writer {
            file,
            path: path.into(),
            pending: Vec::new(),
        })
    }

    /// Append one record, with any outcomes waiting before it: one
    /// `write(2)`, in the page cache when it returns (which is what survives
    /// a kill of this process).
    pub fn append(&mut self, rec: &Record) -> Result<(), ApplyError> {
        self.append_later(rec)?;
        self.flush()
    }

    /// Append an outcome that may wait for the next record's write (a done
    /// step and the next intent are one `write(2)`, not two).
    pub fn append_later(&mut self, rec: &Record) -> Result<(), ApplyError> {
        serde_json::to_writer(&mut self.pending, rec).map_err(|e| ApplyError::Refused(e.to_string()))?;
        self.pending.push(b'\n');
        Ok(())
    }

    /// Write what waits.
    pub fn flush(&mut self) -> Result<(), ApplyError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let r = self.file.write_all(&self.pending);
        self.pending.clear();
        r.map_err(|e| ApplyError::io(&self.path, e))
    }

    /// Write what waits and `fdatasync`: once, when the run ends (the
    /// journal then outlives a power cut too, for whoever reads it after
    /// the reboot).
    pub fn sync(&mut self) -> Result<(), ApplyError> {
        self.flush()?;
        self.file.sync_data().map_err(|e| ApplyError::io(&self.path, e))
    }
}

impl Drop for Writer {
    /// An early return (an error between steps) still writes the outcomes
    /// it has.
    fn drop(&mut self) {
        let _ = self.flush();
    }
}

/// A stable hash of a plan's content (FNV-1a 64 of its canonical JSON).
pub fn plan_hash(plan: &crate::plan::Plan) -> String {
    let text = serde_json::to_string(plan).unwrap_or_default();
    fnv(text.as_bytes())
}

fn fnv(bytes: &[u8]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// `/run/cgmig`, or `$CGMIG_RUN_DIR` (a test hook: a private directory
/// instead of the host's).
pub fn run_dir() -> PathBuf {
    std::env::var_os("CGMIG_RUN_DIR").map_or_else(|| PathBuf::from(RUN_DIR), PathBuf::from)
}

/// Make sure the run directory exists, root only (0700 when cgmig makes
/// it), and passes [`check_dir_chain`].
pub fn ensure_run_dir() -> Result<PathBuf, ApplyError> {
    let dir = run_dir();
    match nix::unistd::mkdir(&dir, Mode::from_bits_truncate(0o700)) {
        Ok(()) | Err(Errno::EEXIST) => {}
        Err(e) => return Err(ApplyError::io(&dir, e.into())),
    }
    let st = nix::sys::stat::lstat(&dir).map_err(|e| ApplyError::io(&dir, e.into()))?;
    if st.st_mode & SFlag::S_IFMT.bits() != SFlag::S_IFDIR.bits() {
        return Err(ApplyError::Untrusted {
            path: dir,
            why: "it is not a directory".into(),
        });
    }
    check_dir_chain(&dir)?;
    Ok(dir)
}

/// The journal path when `--journal` is not given:
/// `/run/cgmig/plan-HASH[-stageN][-only-HASH].journal`, one per plan and
/// selection, so `--resume` finds it again without being told.
pub fn default_path(dir: &Path, plan_hash: &str, stage: Option<usize>, only: Option<&str>) -> PathBuf {
    let mut name = format!("plan-{plan_hash}");
    if let Some(n) = stage {
        name.push_str(&format!("-stage{n}"));
    }
    if let Some(o) = only {
        name.push_str(&format!("-only-{}", &fnv(o.as_bytes())[..8]));
    }
    name.push_str(".journal");
    dir.join(name)
}

/// The host-wide lock: held for the whole apply or rollback.
#[derive(Debug)]
pub struct Lock {
    _flock: nix::fcntl::Flock<File>,
}

impl Lock {
    /// Take the lock at `$CGMIG_LOCK` (a test hook) or `/run/cgmig/lock`,
    /// or say who holds it. The file is opened with `O_NOFOLLOW` (a link
    /// planted there is refused, its target never truncated) and must be a
    /// regular file.
    pub fn take() -> Result<Lock, ApplyError> {
        let path = match std::env::var_os("CGMIG_LOCK") {
            Some(p) => PathBuf::from(p),
            None => ensure_run_dir()?.join("lock"),
        };
        let fd = nix::fcntl::open(
            &path,
            OFlag::O_RDWR | OFlag::O_CREAT | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o600),
        )
        .map_err(|e| match e {
            Errno::ELOOP => ApplyError::Untrusted {
                path: path.clone(),
                why: "the lock is a symbolic link".into(),
            },
            e => ApplyError::io(&path, e.into()),
        })?;
        // SAFETY: open returned a fresh descriptor we own.
        let mut file = File::from(unsafe { OwnedFd::from_raw_fd(fd) });
        let st = nix::sys::stat::fstat(file.as_raw_fd()).map_err(|e| ApplyError::io(&path, e.into()))?;
        if st.st_mode & SFlag::S_IFMT.bits() != SFlag::S_IFREG.bits() {
            return Err(ApplyError::Untrusted {
                path,
                why: format!("the lock is a {}", crate::host::contain::kind_name(st.st_mode)),
            });
        }
        match nix::fcntl::Flock::lock(
            file.try_clone().map_err(|e| ApplyError::io(&path, e))?,
            nix::fcntl::FlockArg::LockExclusiveNonblock,
        ) {
            Ok(mut fl) => {
                let _ = fl.set_len(0);
                let _ = writeln!(&mut *fl, "{}", std::process::id());
                Ok(Lock { _flock: fl })
            }
            Err((_, Errno::EWOULDBLOCK)) => {
                let mut s = String::new();
                let _ = std::io::Read::read_to_string(&mut std::io::Read::take(&mut file, 64), &mut s);
                let holder = s.trim();
                Err(ApplyError::Locked {
                    path,
                    holder: if holder.is_empty() || !holder.bytes().all(|b| b.is_ascii_digit()) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Action;
    use std::os::unix::fs::PermissionsExt;

    fn header() -> Record {
        Record::Header {
            schema: JOURNAL_SCHEMA.into(),
            plan_hash: "abc".into(),
            plan: "p.json".into(),
            boot_id: "b".into(),
            options: RunOptions {
                mount: "/sys/fs/cgroup".into(),
                prefix: "/".into(),
                ..RunOptions::default()
            },
            steps: vec![
                Step::Action(Action::Create { path: "/a".into() }),
                Step::Action(Action::Create { path: "/b".into() }),
                Step::Action(Action::Create { path: "/c".into() }),
            ],
        }
    }

    fn create(step: Step) -> Record {
        Record::Intent {
            seq: match &step {
                Step::Action(Action::Create { path }) if path == "/b" => 1,
                _ => 0,
            },
            step,
            before: Before::default(),
        }
    }

    #[test]
    fn records_round_trip_and_resume_point() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("j");
        let mut w = Writer::create(&p, &header()).unwrap();
        w.append(&create(Step::Action(Action::Create { path: "/a".into() })))
            .unwrap();
        w.append(&Record::Done { seq: 0, note: None }).unwrap();
        w.append(&create(Step::Action(Action::Create { path: "/b".into() })))
            .unwrap();
        let j = Journal::read(&p).unwrap();
        assert_eq!(j.header.plan_hash, "abc");
        assert_eq!(j.first_unfinished(3), 1);
        assert!(j.intents.contains_key(&1));
        assert!(
            Writer::create(&p, &header()).is_err(),
            "an existing journal is never overwritten"
        );
        let mode = std::fs::metadata(&p).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "readable by its owner only");
    }

    #[test]
    fn torn_last_line_is_ignored_but_a_bad_middle_line_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("j");
        let mut w = Writer::create(&p, &header()).unwrap();
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
    fn not_a_journal_and_old_journals_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("j");
        std::fs::write(&p, "{\"kind\":\"done\",\"seq\":0}\n").unwrap();
        let e = Journal::read(&p).unwrap_err().to_string();
        assert!(e.contains("not a cgmig journal"), "{e}");
        std::fs::write(
            &p,
            "{\"kind\":\"header\",\"schema\":\"cgmig.journal/v1\",\"plan_hash\":\"0\",\"plan\":\"p\",\"options\":{\"stage\":null,\"only\":null,\"live\":false,\"mount\":\"/m\",\"prefix\":\"/\"},\"steps\":[]}\n",
        )
        .unwrap();
        let e = Journal::read(&p).unwrap_err().to_string();
        assert!(e.contains("older cgmig") && e.contains("no boot"), "{e}");
    }

    /// A step outside the run's scope, an intent that is not the header's
    /// step, an outcome for a step that does not exist: each refused,
    /// naming the line and the step.
    #[test]
    fn forged_steps_are_refused_when_read() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("j");
        let mut h = header();
        if let Record::Header { options, steps, .. } = &mut h {
            options.prefix = "/t".into();
            steps[0] = Step::Action(Action::Create { path: "/t/a".into() });
            steps[1] = Step::Action(Action::Write {
                path: "/t/a".into(),
                file: "../../../etc/x".into(),
                value: "1".into(),
            });
        }
        Writer::create(&p, &h).unwrap();
        let e = Journal::read(&p).unwrap_err().to_string();
        assert!(
            e.contains("line 1") && e.contains("step 1") && e.contains("not a v2 setting file"),
            "{e}"
        );

        let p = dir.path().join("k");
        let mut w = Writer::create(&p, &header()).unwrap();
        w.append(&Record::Intent {
            seq: 0,
            step: Step::Action(Action::Create {
                path: "/elsewhere".into(),
            }),
            before: Before::default(),
        })
        .unwrap();
        let e = Journal::read(&p).unwrap_err().to_string();
        assert!(
            e.contains("line 2") && e.contains("differs from the header"),
            "{e}"
        );

        let p = dir.path().join("l");
        let mut w = Writer::create(&p, &header()).unwrap();
        w.append(&Record::Done { seq: 99, note: None }).unwrap();
        let e = Journal::read(&p).unwrap_err().to_string();
        assert!(e.contains("step 99"), "{e}");
    }

    /// `StrictModes`: a journal others could write, in a directory others
    /// could write, or a link, is refused; /tmp above is fine.
    #[test]
    fn journals_others_could_write_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("j");
        Writer::create(&p, &header()).unwrap();
        assert!(
            Journal::read(&p).is_ok(),
            "a private dir under sticky /tmp is fine"
        );
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o666)).unwrap();
        let e = Journal::read(&p).unwrap_err().to_string();
        assert!(e.contains("writable by others"), "{e}");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        let e = Journal::read(&p).unwrap_err().to_string();
        assert!(e.contains("writable by others"), "{e}");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&p, &link).unwrap();
        let e = Journal::read(&link).unwrap_err().to_string();
        assert!(e.contains("symbolic link"), "{e}");
        assert!(Writer::open(&link).is_err());
    }

    #[test]
    fn lock_is_exclusive_and_never_follows_a_link() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("lock");
        // SAFETY: tests in this module are the only users of CGMIG_LOCK in the lib tests.
        unsafe { std::env::set_var("CGMIG_LOCK", &p) };
        let first = Lock::take().unwrap();
        let e = Lock::take().unwrap_err().to_string();
        assert!(e.contains("another cgmig apply or rollback is running"), "{e}");
        drop(first);
        assert!(Lock::take().is_ok());
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "keep").unwrap();
        std::fs::remove_file(&p).unwrap();
        std::os::unix::fs::symlink(&victim, &p).unwrap();
        let e = Lock::take().unwrap_err().to_string();
        assert!(e.contains("symbolic link"), "{e}");
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep");
    }

    #[test]
    fn default_paths_differ_per_selection() {
        let d = Path::new("/run/cgmig");
        let a = default_path(d, "abc", None, None);
        assert_eq!(a, Path::new("/run/cgmig/plan-abc.journal"));
        assert_ne!(default_path(d, "abc", Some(1), None), a);
        assert_ne!(
            default_path(d, "abc", None, Some("/x")),
            default_path(d, "abc", None, Some("/y"))
        );
    }
}
