//! Reading a host: the only code in cgmig that touches the system.
//!
//! Everything is read relative to a [`Root`]: `/` for the live host, or a
//! directory holding a captured or generated tree (`--root DIR`). Reads are
//! read-only, go through one containment primitive ([`Root::open_contained`],
//! [`Root::read_bounded`]; see [`contain`]) so nothing outside the root is
//! ever opened, and classify failures:
//!
//! * a process, thread or cgroup that vanished between listing and reading
//!   (`ENOENT`, `ESRCH`, `ENODEV`) is a benign race, reported as [`Gone`];
//! * anything else is a [`HostError`] naming the path (and line, for parse
//!   errors), which the scanner turns into a diagnostic and carries on.
//!
//! Parsing of kernel text formats is delegated to procfs-core (mountinfo,
//! `/proc/cgroups`, `/proc/PID/cgroup`); this module only adds the root
//! prefix, the byte-level escaping of names that are not UTF-8, and the
//! decoding of mountinfo's octal escapes, which procfs-core leaves in place.

pub mod contain;
pub mod door;
pub mod systemd;

use std::ffi::{OsStr, OsString};
use std::fs;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use nix::fcntl::{AtFlags, OFlag};

use procfs_core::FromBufRead;
use thiserror::Error;

use crate::model::path as cgpath;
use crate::model::{Diagnostic, FileOwner, HierarchyId, Ownership, Pid, Tid};
pub use contain::{MAX_DOCUMENT_BYTES, MAX_SETTING_BYTES, MAX_TABLE_BYTES, ReadError, Resolver};

mod listing;

/// An error reading the host, always with the path concerned.
#[derive(Debug, Error)]
pub enum HostError {
    /// A file or directory could not be read.
    ///
    /// The OS error is part of the message and not a `source()`, so an
    /// error chain says it once.
    #[error("cannot read {path}: {err}")]
    Io {
        /// Path on the host (root-prefixed).
        path: PathBuf,
        /// The OS error.
        err: io::Error,
    },
    /// A file's contents are not in the expected format.
    #[error("{path}:{line}: {message}")]
    Parse {
        /// Path on the host (root-prefixed).
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What was wrong.
        message: String,
    },
    /// A FIFO, socket, device or directory where a regular file belongs.
    #[error("cannot read {path}: it is a {kind}, not a regular file")]
    NotRegular {
        /// Path on the host (root-prefixed).
        path: PathBuf,
        /// What it is instead.
        kind: &'static str,
    },
    /// A file larger than cgmig reads.
    #[error("cannot read {path}: larger than {limit} bytes")]
    TooLarge {
        /// Path on the host (root-prefixed).
        path: PathBuf,
        /// The limit.
        limit: usize,
    },
}

impl HostError {
    /// The path concerned.
    pub fn path(&self) -> &Path {
        match self {
            HostError::Io { path, .. }
            | HostError::Parse { path, .. }
            | HostError::NotRegular { path, .. }
            | HostError::TooLarge { path, .. } => path,
        }
    }

    /// The cause without the path, for a diagnostic that names the path
    /// itself (`file:line` for a parse error): one cause, said once.
    pub fn diagnostic(&self) -> (String, String) {
        // Names in the path are escaped like every other name.
        const UNREADABLE: &str = Diagnostic::UNREADABLE;
        let p = cgpath::from_bytes(self.path().as_os_str().as_bytes());
        match self {
            HostError::Io { err: source, .. } => (p, format!("{UNREADABLE}{source}")),
            HostError::Parse { line, message, .. } => {
                (format!("{p}:{line}"), format!("{UNREADABLE}{message}"))
            }
            HostError::NotRegular { kind, .. } => (p, format!("{UNREADABLE}a {kind}, not a regular file")),
            HostError::TooLarge { limit, .. } => (p, format!("{UNREADABLE}larger than {limit} bytes")),
        }
    }

    fn from_read(path: PathBuf, e: ReadError) -> HostError {
        match e {
            ReadError::Io(source) => HostError::Io { path, err: source },
            ReadError::NotRegular(kind) => HostError::NotRegular { path, kind },
            ReadError::TooLarge(limit) => HostError::TooLarge { path, limit },
        }
    }
}

/// The thing being read disappeared mid-scan (a benign race on a live host).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gone;

/// Result of reading something that may legitimately vanish.
pub type MaybeGone<T> = Result<Result<T, Gone>, HostError>;

fn is_gone(e: &io::Error) -> bool {
    use nix::libc::{ENODEV, ENOENT, ESRCH};
    matches!(e.raw_os_error(), Some(c) if c == ENOENT || c == ESRCH || c == ENODEV)
}

/// A filesystem root that every host path is read under.
#[derive(Debug, Clone)]
pub struct Root {
    base: PathBuf,
    canonical: PathBuf,
    /// `O_PATH` descriptor of the root every path is resolved beneath.
    fd: Option<Arc<OwnedFd>>,
    resolver: Resolver,
    /// Why `/` could not be opened, reported on the first read.
    open_error: Option<Arc<io::Error>>,
}

/// One line of mountinfo that describes a cgroup filesystem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupMount {
    /// 1-based line in mountinfo (for messages).
    pub line: usize,
    /// `true` for cgroup2, `false` for a v1 cgroup mount.
    pub v2: bool,
    /// Superblock device number (`0:29`).
    pub majmin: String,
    /// Root of the mount within the hierarchy (decoded).
    pub root: String,
    /// Mount point (decoded).
    pub mount_point: String,
    /// Mount source.
    pub source: Option<String>,
    /// Super options in kernel order (`rw`, `cpu`, `name=systemd`, ...).
    pub super_options: Vec<(String, Option<String>)>,
}

/// One line of `/proc/cgroups`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcCgroupsEntry {
    /// Controller name.
    pub name: String,
    /// v1 hierarchy id (0 when not bound to v1).
    pub hierarchy: HierarchyId,
    /// Number of cgroups.
    pub num_cgroups: u32,
    /// Enabled flag.
    pub enabled: bool,
}

/// One line of `/proc/PID/task/TID/cgroup`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    /// Hierarchy id (0 for v2).
    pub hierarchy: HierarchyId,
    /// Controllers as the kernel lists them (`cpu,cpuacct`, `name=systemd`, empty for v2).
    pub controllers: Vec<String>,
    /// Path in that hierarchy.
    pub path: String,
}

/// A thread as read from `/proc/PID/task/TID`.
#[derive(Debug, Clone)]
pub struct RawThread {
    /// Thread id.
    pub tid: Tid,
    /// Thread name.
    pub comm: String,
    /// Memberships, one per hierarchy.
    pub cgroups: Vec<Membership>,
}

/// A process as read from `/proc/PID`.
#[derive(Debug, Clone)]
pub struct RawProcess {
    /// PID.
    pub pid: Pid,
    /// `comm`.
    pub comm: String,
    /// `cmdline` split on NUL.
    pub cmdline: Vec<String>,
    /// Real uid and gid from `status`.
    pub uid: u32,
    /// Real gid.
    pub gid: u32,
    /// Threads, in tid order.
    pub threads: Vec<RawThread>,
    /// Targets of open file descriptors (`/proc/PID/fd/*` links), for
    /// spotting v1 notification listeners; unreadable fds are skipped.
    pub open_files: Vec<String>,
}

/// One cgroup directory as read from cgroupfs.
#[derive(Debug, Clone)]
pub struct RawCgroup {
    /// Path relative to the mount (`/` for the mount's own directory).
    pub rel_path: String,
    /// Ownership of the directory and membership files.
    pub owner: Ownership,
    /// Setting files and their trimmed contents.
    pub settings: Vec<(String, String)>,
}

/// What a walk could not read without failing.
#[derive(Debug, Default)]
pub struct WalkStats {
    /// Cgroups that vanished mid-walk.
    pub gone: u64,
    /// Entries that could not be read.
    pub errors: Vec<HostError>,
}

/// Which files of a cgroup directory are settings (v1 or v2 rules).
pub type SettingFilter = fn(name: &str, is_root: bool) -> bool;

impl Root {
    /// The live host (`/`), read through the same containment primitive.
    pub fn live() -> Root {
        Root::open(PathBuf::from("/"), PathBuf::from("/"), None).unwrap_or_else(|e| {
            // `/` itself cannot be opened only in a broken environment; the
            // error surfaces on the first read instead of here.
            Root {
                base: PathBuf::from("/"),
                canonical: PathBuf::from("/"),
                fd: None,
                resolver: Resolver::Walk,
                open_error: Some(Arc::new(e)),
            }
        })
    }

    /// A captured or generated tree that stands for `/`.
    pub fn new(dir: impl Into<PathBuf>) -> Result<Root, HostError> {
        let base = dir.into();
        let canonical = fs::canonicalize(&base).map_err(|source| HostError::Io {
            path: base.clone(),
            err: source,
        })?;
        Root::open(base.clone(), canonical, None).map_err(|source| HostError::Io {
            path: base,
            err: source,
        })
    }

    /// Like [`Root::new`] but with a chosen resolver (tests prove both).
    pub fn with_resolver(dir: impl Into<PathBuf>, resolver: Resolver) -> Result<Root, HostError> {
        let base = dir.into();
        let canonical = fs::canonicalize(&base).map_err(|source| HostError::Io {
            path: base.clone(),
            err: source,
        })?;
        Root::open(base.clone(), canonical, Some(resolver)).map_err(|source| HostError::Io {
            path: base,
            err: source,
        })
    }

    fn open(base: PathBuf, canonical: PathBuf, resolver: Option<Resolver>) -> io::Result<Root> {
        let raw = nix::fcntl::open(
            &canonical,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )?;
        // SAFETY: open returned a fresh descriptor we own.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let resolver = resolver.unwrap_or_else(|| Resolver::detect(fd.as_fd()));
        Ok(Root {
            base,
            canonical,
            fd: Some(Arc::new(fd)),
            resolver,
            open_error: None,
        })
    }

    /// Whether this is the live host's `/`.
    pub fn is_live(&self) -> bool {
        self.canonical == Path::new("/")
    }

    /// The resolver in use (`openat2`, or the component walk on old kernels).
    pub fn resolver(&self) -> Resolver {
        self.resolver
    }

    /// The root-prefixed path of an absolute host path (for messages).
    pub fn path(&self, abs: &str) -> PathBuf {
        self.base.join(abs.trim_start_matches('/'))
    }

    fn display(&self, abs: &Path) -> PathBuf {
        contain::display_join(&self.base, abs)
    }

    /// Open a host path under the root: the containment primitive every read
    /// goes through. Symlinks and `..` resolve as if the root were `/`
    /// (`RESOLVE_IN_ROOT`), magic links (`/proc/PID/fd/N`, `/proc/PID/root`)
    /// are refused, and nothing outside the root is ever opened. `abs` is raw
    /// bytes (see [`cgpath::to_os`] for an escaped model path).
    pub fn open_contained(&self, abs: &Path, flags: OFlag) -> Result<OwnedFd, HostError> {
        let fd = self.root_fd().map_err(|source| HostError::Io {
            path: self.display(abs),
            err: source,
        })?;
        contain::open_beneath(fd, self.resolver, abs, flags).map_err(|source| HostError::Io {
            path: self.display(abs),
            err: source,
        })
    }

    fn root_fd(&self) -> io::Result<BorrowedFd<'_>> {
        match (&self.fd, &self.open_error) {
            (Some(fd), _) => Ok(fd.as_fd()),
            (None, Some(e)) => Err(io::Error::new(e.kind(), e.to_string())),
            (None, None) => Err(io::Error::from(io::ErrorKind::NotFound)),
        }
    }

    /// Read a regular file under the root, at most `limit` bytes: opened
    /// through [`Root::open_contained`] non-blocking, type-checked with
    /// `fstat`, so a FIFO, socket or device is an error, never a hang.
    ///
    /// Under a captured root (not the live `/`, whose `/proc` and `/sys` are
    /// kernel file systems where nobody can plant a node) the file is first
    /// opened `O_PATH` and type-checked, so a planted device node is never
    /// opened at all ([`contain::reopen_regular`]).
    pub fn read_bounded(&self, abs: &Path, limit: usize) -> Result<Vec<u8>, HostError> {
        let first = if self.is_live() {
            contain::file_flags()
        } else {
            contain::path_flags()
        };
        let fd = match self.open_contained(abs, first) {
            Ok(fd) if self.is_live() => fd,
            Ok(fd) => contain::reopen_regular(fd).map_err(|e| HostError::from_read(self.display(abs), e))?,
            Err(HostError::Io { path, err: source }) => {
                return Err(HostError::from_read(path, contain::open_error(source)));
            }
            Err(e) => return Err(e),
        };
        contain::read_fd(fd, limit).map_err(|e| HostError::from_read(self.display(abs), e))
    }

    fn read_bytes(&self, abs: &str) -> Result<Vec<u8>, HostError> {
        self.read_bounded(Path::new(abs), MAX_TABLE_BYTES)
    }

    /// Names in a directory under the root (contained), with their types.
    fn list_dir(&self, abs: &str) -> Result<Vec<(OsString, Option<nix::dir::Type>)>, HostError> {
        let fd = self.open_contained(Path::new(abs), contain::dir_flags())?;
        list_fd(fd.as_fd()).map_err(|source| HostError::Io {
            path: self.display(Path::new(abs)),
            err: source,
        })
    }

    /// Read a small text file (`/proc/cmdline`, ...), trimmed; `None` if absent.
    pub fn read_text(&self, abs: &str) -> Result<Option<String>, HostError> {
        match self.read_bytes(abs) {
            Ok(b) => Ok(Some(cgpath::from_bytes(b.trim_ascii()))),
            Err(HostError::Io { err: source, .. }) if source.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Read a text file whole (unit files, drop-ins, os-release, dpkg's
    /// status): as [`Root::read_text`], but newlines and tabs stay, so the
    /// caller can split lines; other control characters are escaped.
    /// `None` if absent.
    pub fn read_text_lines(&self, abs: &str) -> Result<Option<String>, HostError> {
        match self.read_bytes(abs) {
            Ok(b) => Ok(Some(cgpath::value_from_bytes(&b))),
            Err(HostError::Io { err: source, .. }) if source.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The cgroup filesystems in `/proc/self/mountinfo`.
    ///
    /// Each line goes through procfs-core's `MountInfo::from_line`; a line it
    /// rejects is an error naming the file and line.
    pub fn cgroup_mounts(&self) -> Result<Vec<CgroupMount>, HostError> {
        let path = self.path("/proc/self/mountinfo");
        let text = cgpath::value_from_bytes(&self.read_bytes("/proc/self/mountinfo")?);
        parse_cgroup_mounts(&text).map_err(|(line, message)| HostError::Parse { path, line, message })
    }

    /// `/proc/cgroups`, parsed by procfs-core. `None` if the file is absent.
    pub fn proc_cgroups(&self) -> Result<Option<Vec<ProcCgroupsEntry>>, HostError> {
        let path = self.path("/proc/cgroups");
        let text = match self.read_bytes("/proc/cgroups") {
            Ok(b) => cgpath::value_from_bytes(&b),
            Err(HostError::Io { err: source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        parse_proc_cgroups(&text)
            .map(Some)
            .map_err(|(line, message)| HostError::Parse { path, line, message })
    }

    /// PIDs under `/proc`, ascending.
    pub fn pids(&self) -> Result<Vec<Pid>, HostError> {
        let mut pids: Vec<Pid> = self
            .list_dir("/proc")?
            .into_iter()
            .filter_map(|(n, _)| n.to_str().and_then(|s| s.parse().ok()))
            .collect();
        pids.sort_unstable();
        Ok(pids)
    }

    /// Open the directory `name` in `dir` (one component, `O_NOFOLLOW`), for
    /// reading the files in it by name. `None` when that fails for any
    /// reason (a symlink, which a capture may hold and which resolves inside
    /// the root; gone; not a directory): the caller then reads by whole path
    /// through [`Root::read_bounded`], which gives the same results and
    /// errors as before this shortcut.
    fn open_dir_in(dir: Option<BorrowedFd<'_>>, name: &str) -> Option<OwnedFd> {
        contain::open_child(dir?, OsStr::new(name), contain::dir_flags()).ok()
    }

    /// Read `name` in the open directory `dir` (`abs`, its whole host path,
    /// names it in messages). `known` is its directory-entry type from the
    /// listing that found it, if the caller listed the directory.
    ///
    /// On the live host (kernel `/proc`) the file is opened directly. Under a
    /// captured root only a file known to be regular is opened, with one
    /// `openat(O_NOFOLLOW|O_NONBLOCK|O_NOCTTY)` from the directory: its type
    /// comes from `known` (`d_type`, no system call) or one `fstatat`, and
    /// `read_fd` confirms it on the open descriptor. Anything else (a
    /// symlink, FIFO, socket, device, an unknown type, a failed `fstatat`)
    /// goes through [`Root::read_bounded`], which type-checks an `O_PATH`
    /// descriptor first and never opens a device. docs/security.md gives the
    /// reasoning about the window between the type check and the open.
    fn read_in(
        &self,
        dir: Option<BorrowedFd<'_>>,
        name: &str,
        abs: &str,
        known: Option<nix::dir::Type>,
        limit: usize,
    ) -> Result<Vec<u8>, HostError> {
        let Some(dir) = dir else {
            return self.read_bounded(Path::new(abs), limit);
        };
        let os = OsStr::new(name);
        if !self.is_live() {
            let ty = known.or_else(|| {
                nix::sys::stat::fstatat(Some(dir.as_raw_fd()), os, AtFlags::AT_SYMLINK_NOFOLLOW)
                    .ok()
                    .map(|st| file_type(st.st_mode))
            });
            if ty != Some(nix::dir::Type::File) {
                return self.read_bounded(Path::new(abs), limit);
            }
        }
        let fd = match contain::open_child(dir, os, contain::file_flags()) {
            Ok(fd) => fd,
            // Swapped for a symlink since the check: the whole-path read resolves it inside the root.
            Err(e) if !self.is_live() && e.raw_os_error() == Some(nix::libc::ELOOP) => {
                return self.read_bounded(Path::new(abs), limit);
            }
            Err(e) => {
                return Err(HostError::from_read(
                    self.display(Path::new(abs)),
                    contain::open_error(e),
                ));
            }
        };
        contain::read_fd(fd, limit).map_err(|e| HostError::from_read(self.display(Path::new(abs)), e))
    }

    /// [`Root::read_in`] for a file that may vanish (a process or thread exiting).
    fn read_maybe_in(
        &self,
        dir: Option<BorrowedFd<'_>>,
        name: &str,
        abs: &str,
        known: Option<nix::dir::Type>,
    ) -> MaybeGone<Vec<u8>> {
        match self.read_in(dir, name, abs, known, MAX_TABLE_BYTES) {
            Ok(b) => Ok(Ok(b)),
            Err(HostError::Io { err: source, .. }) if is_gone(&source) => Ok(Err(Gone)),
            Err(e) => Err(e),
        }
    }

    fn read_comm_in(
        &self,
        dir: Option<BorrowedFd<'_>>,
        abs: &str,
        known: Option<nix::dir::Type>,
    ) -> MaybeGone<String> {
        Ok(self
            .read_maybe_in(dir, "comm", abs, known)?
            .map(|b| cgpath::from_bytes(b.strip_suffix(b"\n").unwrap_or(&b))))
    }

    /// Read one process and all its threads.
    ///
    /// `/proc/PID` is opened once (contained) and its files are read by name
    /// from that descriptor, `task/TID` likewise: one short lookup per file
    /// instead of a whole-path resolution. Under a captured root
    /// `/proc/PID` is listed too, so the types of `comm`, `cmdline`,
    /// `status`, `fds` and `task` are known without a system call each.
    pub fn process(&self, pid: Pid) -> MaybeGone<RawProcess> {
        let dir = format!("/proc/{pid}");
        let pid_fd = self.open_contained(Path::new(&dir), contain::dir_flags()).ok();
        let pid_dir = pid_fd.as_ref().map(AsFd::as_fd);
        // Types of the entries of a captured /proc/PID (None: not listed).
        let listed: Option<Vec<(OsString, Option<nix::dir::Type>)>> = match &pid_fd {
            Some(fd) if !self.is_live() => list_fd(fd.as_fd()).ok(),
            _ => None,
        };
        let known = |name: &str| -> Option<nix::dir::Type> {
            listed
                .as_ref()?
                .iter()
                .find(|(n, _)| n.as_bytes() == name.as_bytes())
                .and_then(|(_, t)| *t)
        };
        let Ok(comm) = self.read_comm_in(pid_dir, &format!("{dir}/comm"), known("comm"))? else {
            return Ok(Err(Gone));
        };
        let cmdline =
            match self.read_maybe_in(pid_dir, "cmdline", &format!("{dir}/cmdline"), known("cmdline"))? {
                Ok(b) => b
                    .split(|&c| c == 0)
                    .filter(|s| !s.is_empty())
                    .map(cgpath::from_bytes)
                    .collect(),
                Err(Gone) => return Ok(Err(Gone)),
            };
        let status_abs = format!("{dir}/status");
        let (uid, gid) = match self.read_maybe_in(pid_dir, "status", &status_abs, known("status"))? {
            Ok(b) => parse_status_ids(&cgpath::value_from_bytes(&b)).map_err(|(line, message)| {
                HostError::Parse {
                    path: self.path(&status_abs),
                    line,
                    message,
                }
            })?,
            Err(Gone) => return Ok(Err(Gone)),
        };
        let task_dir = format!("{dir}/task");
        let task_fd = Self::open_dir_in(pid_dir, "task");
        let listing = match &task_fd {
            Some(fd) => list_fd(fd.as_fd()).map_err(|source| HostError::Io {
                path: self.display(Path::new(&task_dir)),
                err: source,
            }),
            None => self.list_dir(&task_dir),
        };
        let entries = match listing {
            Ok(e) => e,
            Err(HostError::Io { err: source, .. }) if is_gone(&source) => return Ok(Err(Gone)),
            Err(e) => return Err(e),
        };
        let mut tids: Vec<Tid> = entries
            .into_iter()
            .filter_map(|(n, _)| n.to_str().and_then(|s| s.parse().ok()))
            .collect();
        tids.sort_unstable();
        let mut threads = Vec::with_capacity(tids.len());
        for tid in tids {
            let tid_fd = Self::open_dir_in(task_fd.as_ref().map(AsFd::as_fd), &tid.to_string());
            let tid_dir = tid_fd.as_ref().map(AsFd::as_fd);
            let cg_abs = format!("{task_dir}/{tid}/cgroup");
            let cgroups = match self.read_maybe_in(tid_dir, "cgroup", &cg_abs, None)? {
                Ok(b) => parse_pid_cgroup(&cgpath::value_from_bytes(&b)).map_err(|(line, message)| {
                    HostError::Parse {
                        path: self.path(&cg_abs),
                        line,
                        message,
                    }
                })?,
                Err(Gone) => continue, // thread exited: the process lives on
            };
            // The main thread's name is the process's: don't read it twice.
            let comm = if tid == pid.main_thread() {
                comm.clone()
            } else {
                match self.read_comm_in(tid_dir, &format!("{task_dir}/{tid}/comm"), None)? {
                    Ok(c) => c,
                    Err(Gone) => continue,
                }
            };
            threads.push(RawThread { tid, comm, cgroups });
        }
        if threads.is_empty() {
            return Ok(Err(Gone));
        }
        let mut open_files = match &listed {
            // A captured /proc/PID without `fds`: none recorded (no lookup).
            Some(l) if !l.iter().any(|(n, _)| n.as_bytes() == b"fds") => Vec::new(),
            _ => self.open_files(&dir, pid_dir, known("fds")),
        };
        open_files.sort();
        open_files.dedup();
        Ok(Ok(RawProcess {
            pid,
            comm,
            cmdline,
            uid,
            gid,
            threads,
            open_files,
        }))
    }

    /// Targets of a process's open fds: the `fd/*` links of a live `/proc`
    /// (read with `readlinkat` on the contained `fd` directory, never opened:
    /// they are magic links), or a `fds` file (one target a line) in
    /// captures. Unreadable fds are skipped: another user's process, or gone.
    fn open_files(
        &self,
        dir: &str,
        pid_dir: Option<BorrowedFd<'_>>,
        known: Option<nix::dir::Type>,
    ) -> Vec<String> {
        if self.is_live() {
            let Ok(dirfd) = self.open_contained(Path::new(&format!("{dir}/fd")), contain::dir_flags()) else {
                return Vec::new();
            };
            let Ok(names) = list_fd(dirfd.as_fd()) else {
                return Vec::new();
            };
            names
                .into_iter()
                .filter_map(|(n, _)| nix::fcntl::readlinkat(Some(dirfd.as_raw_fd()), n.as_os_str()).ok())
                .map(|t| cgpath::from_bytes(t.as_bytes()))
                .collect()
        } else {
            match self.read_in(pid_dir, "fds", &format!("{dir}/fds"), known, MAX_TABLE_BYTES) {
                Ok(b) => b
                    .split(|&c| c == b'\n')
                    .filter(|l| !l.is_empty())
                    .map(cgpath::from_bytes)
                    .collect(),
                Err(_) => Vec::new(),
            }
        }
    }

    /// Read the root `cgroup.controllers` of a cgroup2 mount.
    pub fn v2_controllers(&self, mount_point: &str) -> Result<Option<Vec<String>>, HostError> {
        let abs = cgpath::to_os(&format!(
            "{}/cgroup.controllers",
            mount_point.trim_end_matches('/')
        ));
        match self.read_bounded(Path::new(&abs), MAX_SETTING_BYTES) {
            Ok(b) => Ok(Some(
                cgpath::value_from_bytes(&b)
                    .split_whitespace()
                    .map(str::to_string)
                    .collect(),
            )),
            Err(HostError::Io { err: source, .. }) if source.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Walk a mounted hierarchy, calling `visit` for each cgroup directory,
    /// parents before children, siblings in name order.
    ///
    /// Directories that are themselves mount points (`nested_mounts`, host
    /// paths) are not entered: they are other mounts, recorded as such. The
    /// mount point is opened through [`Root::open_contained`]; below it every
    /// directory and file is opened one component at a time with
    /// `O_NOFOLLOW` from its parent's descriptor, so a symlink is never
    /// followed. A cgroup that disappears mid-walk counts in
    /// [`WalkStats::gone`]; every other unreadable entry becomes an error in
    /// [`WalkStats::errors`] and the walk continues.
    pub fn walk_cgroups(
        &self,
        mount_point: &str,
        nested_mounts: &std::collections::BTreeSet<String>,
        is_setting: SettingFilter,
        v2: bool,
        mut visit: impl FnMut(RawCgroup),
    ) -> Result<WalkStats, HostError> {
        let mut stats = WalkStats::default();
        let mp = mount_point.trim_end_matches('/');
        let top = self.open_contained(Path::new(&cgpath::to_os(mount_point)), contain::dir_flags())?;
        // Pending directories: (open parent fd + raw name, or the top), rel path.
        let mut stack: Vec<(Option<ChildOf>, String)> = vec![(None, "/".to_string())];
        let mut top = Some(top);
        while let Some((at, rel)) = stack.pop() {
            let dir_abs = self.display(Path::new(&cgpath::to_os(&format!("{mp}{rel}"))));
            let dir = match (at, top.take()) {
                (None, Some(t)) => t,
                (Some((parent, name)), _) => {
                    match contain::open_child(parent.as_fd(), &name, contain::dir_flags()) {
                        Ok(fd) => fd,
                        Err(e) if is_gone(&e) => {
                            stats.gone += 1;
                            continue;
                        }
                        Err(source) => {
                            stats.errors.push(HostError::Io {
                                path: dir_abs,
                                err: source,
                            });
                            continue;
                        }
                    }
                }
                (None, None) => continue,
            };
            let dir = Arc::new(dir);
            match self.read_cgroup_dir(
                &dir,
                &dir_abs,
                &rel,
                mp,
                nested_mounts,
                is_setting,
                v2,
                &mut stats,
            ) {
                Some((cgroup, mut children)) => {
                    visit(cgroup);
                    children.sort_by(|a, b| b.1.cmp(&a.1));
                    stack.extend(
                        children
                            .into_iter()
                            .map(|(name, child)| (Some((dir.clone(), name)), child)),
                    );
                }
                None => continue,
            }
        }
        Ok(stats)
    }

    /// One cgroup directory: its ownership, settings and child directories.
    #[allow(
        clippy::too_many_arguments,
        reason = "the walk's state (directory fd, paths, filter, stats) is passed down, not kept in a struct per level"
    )]
    fn read_cgroup_dir(
        &self,
        dir: &Arc<OwnedFd>,
        dir_abs: &Path,
        rel: &str,
        mp: &str,
        nested_mounts: &std::collections::BTreeSet<String>,
        is_setting: SettingFilter,
        v2: bool,
        stats: &mut WalkStats,
    ) -> Option<(RawCgroup, Vec<(OsString, String)>)> {
        let is_root = rel == "/";
        let entries = match list_fd(dir.as_fd()) {
            Ok(e) => e,
            Err(e) if is_gone(&e) => {
                stats.gone += 1;
                return None;
            }
            Err(source) => {
                stats.errors.push(HostError::Io {
                    path: dir_abs.to_path_buf(),
                    err: source,
                });
                return None;
            }
        };
        let mut children = Vec::new();
        let mut files = Vec::new();
        for (name, ty) in entries {
            let name_s = cgpath::from_bytes(name.as_bytes());
            let ty = ty.or_else(|| {
                nix::sys::stat::fstatat(
                    Some(dir.as_raw_fd()),
                    name.as_os_str(),
                    AtFlags::AT_SYMLINK_NOFOLLOW,
                )
                .ok()
                .map(|st| file_type(st.st_mode))
            });
            match ty {
                Some(nix::dir::Type::Directory) => {
                    let child = cgpath::join(rel, &name_s);
                    if !nested_mounts.contains(&format!("{mp}{child}")) {
                        children.push((name, child));
                    }
                }
                Some(nix::dir::Type::File) if is_setting(&name_s, is_root) => files.push((name, name_s)),
                // A setting's name on a FIFO, socket, device or symlink:
                // never opened, but said, so the snapshot is not silently short.
                Some(other) if is_setting(&name_s, is_root) => stats.errors.push(HostError::NotRegular {
                    path: dir_abs.join(&name),
                    kind: type_name(other),
                }),
                _ => {}
            }
        }
        let owner_of = |name: &str| -> Option<FileOwner> {
            let st = if name.is_empty() {
                nix::sys::stat::fstat(dir.as_raw_fd()).ok()?
            } else {
                nix::sys::stat::fstatat(Some(dir.as_raw_fd()), name, AtFlags::AT_SYMLINK_NOFOLLOW).ok()?
            };
            Some(FileOwner {
                uid: st.st_uid,
                gid: st.st_gid,
                mode: st.st_mode & 0o7777,
            })
        };
        let owner = Ownership {
            dir: owner_of(""),
            procs: owner_of("cgroup.procs"),
            tasks: owner_of(if v2 { "cgroup.threads" } else { "tasks" }),
        };
        files.sort_by(|a, b| a.1.cmp(&b.1));
        let mut settings = Vec::with_capacity(files.len());
        for (name, name_s) in files {
            let read = contain::open_child(dir.as_fd(), &name, contain::file_flags())
                .map_err(contain::open_error)
                .and_then(|fd| contain::read_fd(fd, MAX_SETTING_BYTES));
            match read {
                Ok(b) => settings.push((name_s, cgpath::value_from_bytes(b.trim_ascii()))),
                Err(ReadError::Io(e)) if is_gone(&e) => {}
                Err(e) => stats.errors.push(HostError::from_read(dir_abs.join(&name), e)),
            }
        }
        Some((
            RawCgroup {
                rel_path: rel.to_string(),
                owner,
                settings,
            },
            children,
        ))
    }
}

/// A directory to open later: its parent's descriptor and its raw name.
type ChildOf = (Arc<OwnedFd>, OsString);

/// The file type bits of a mode as a directory-entry type.
fn file_type(mode: u32) -> nix::dir::Type {
    use nix::sys::stat::SFlag;
    match SFlag::from_bits_truncate(mode & SFlag::S_IFMT.bits()) {
        SFlag::S_IFDIR => nix::dir::Type::Directory,
        SFlag::S_IFREG => nix::dir::Type::File,
        SFlag::S_IFLNK => nix::dir::Type::Symlink,
        SFlag::S_IFIFO => nix::dir::Type::Fifo,
        SFlag::S_IFSOCK => nix::dir::Type::Socket,
        SFlag::S_IFCHR => nix::dir::Type::CharacterDevice,
        _ => nix::dir::Type::BlockDevice,
    }
}

/// A directory-entry type for messages.
fn type_name(t: nix::dir::Type) -> &'static str {
    use nix::dir::Type;
    match t {
        Type::Fifo => "FIFO",
        Type::CharacterDevice => "character device",
        Type::Directory => "directory",
        Type::BlockDevice => "block device",
        Type::File => "regular file",
        Type::Symlink => "symlink",
        Type::Socket => "socket",
    }
}

/// Entries of an open directory (without `.` and `..`), with their `d_type`
/// (`None` where the file system does not say).
///
/// `getdents64` straight into a buffer (rustix's `RawDir`): a listing costs
/// its `getdents64` calls and nothing else. `fdopendir` (nix's `Dir`) needed a
/// duplicate descriptor, an `fstat`, `fcntl`s and a `rewinddir` per
/// directory, and a scan lists every cgroup, `/proc/PID` and
/// `/proc/PID/task`. The descriptor's offset moves to the end.
fn list_fd(fd: BorrowedFd<'_>) -> io::Result<Vec<(OsString, Option<nix::dir::Type>)>> {
    use nix::dir::Type;
    use rustix::fs::FileType;
    let mut buf: Vec<u8> = Vec::with_capacity(32 << 10);
    let mut dir = rustix::fs::RawDir::new(fd, buf.spare_capacity_mut());
    let mut out = Vec::new();
    while let Some(e) = dir.next() {
        let e = e.map_err(io::Error::from)?;
        let name = e.file_name().to_bytes();
        if name == b"." || name == b".." {
            continue;
        }
        let ty = match e.file_type() {
            FileType::RegularFile => Some(Type::File),
            FileType::Directory => Some(Type::Directory),
            FileType::Symlink => Some(Type::Symlink),
            FileType::Fifo => Some(Type::Fifo),
            FileType::Socket => Some(Type::Socket),
            FileType::CharacterDevice => Some(Type::CharacterDevice),
            FileType::BlockDevice => Some(Type::BlockDevice),
            FileType::Unknown => None,
        };
        out.push((OsStr::from_bytes(name).to_os_string(), ty));
    }
    Ok(out)
}

/// A procfs-core error as one cause on one line: its "internal error"
/// wording ("bug at ... please report this procfs bug") is about the
/// crate's expectations, and here the input file is what is wrong.
fn proc_msg(e: procfs_core::ProcError) -> String {
    let msg = match e {
        // Its message nests procfs-internal unwrap chains and source paths:
        // none of it helps with a malformed line.
        procfs_core::ProcError::InternalError(_) => {
            "a field is missing or not in the expected form".to_string()
        }
        other => other.to_string(),
    };
    msg.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

/// Parse mountinfo text into its cgroup mounts. Errors are `(line, message)`.
pub fn parse_cgroup_mounts(text: &str) -> Result<Vec<CgroupMount>, (usize, String)> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let mi = procfs_core::process::MountInfo::from_line(line)
            .map_err(|e| (i + 1, format!("malformed mountinfo line: {}", proc_msg(e))))?;
        let v2 = match mi.fs_type.as_str() {
            "cgroup" => false,
            "cgroup2" => true,
            _ => continue,
        };
        // procfs-core keeps super options in a HashMap; recover the kernel
        // order from the line itself so labels are stable.
        let raw_super = line.rsplit(' ').next().unwrap_or("");
        let super_options = raw_super
            .split(',')
            .filter(|o| !o.is_empty() && mi.super_options.contains_key(o.split('=').next().unwrap_or(o)))
            .map(|o| match o.split_once('=') {
                Some((k, v)) => (k.to_string(), Some(v.to_string())),
                None => (o.to_string(), None),
            })
            .collect();
        out.push(CgroupMount {
            line: i + 1,
            v2,
            majmin: mi.majmin,
            root: cgpath::unescape_octal(&mi.root),
            mount_point: cgpath::unescape_octal(&mi.mount_point.to_string_lossy()),
            source: mi.mount_source.map(|s| cgpath::unescape_octal(&s)),
            super_options,
        });
    }
    Ok(out)
}

/// Parse `/proc/cgroups` text (procfs-core). Errors are `(line, message)`.
pub fn parse_proc_cgroups(text: &str) -> Result<Vec<ProcCgroupsEntry>, (usize, String)> {
    // Parse line by line so an error can name its line.
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let parsed = procfs_core::CGroupControllers::from_buf_read(line.as_bytes())
            .map_err(|e| (i + 1, format!("malformed /proc/cgroups line: {}", proc_msg(e))))?;
        out.extend(parsed.0.into_iter().map(|c| ProcCgroupsEntry {
            name: c.name,
            hierarchy: HierarchyId::new(c.hierarchy),
            num_cgroups: c.num_cgroups,
            enabled: c.enabled,
        }));
    }
    Ok(out)
}

/// Parse `/proc/PID/cgroup` text (procfs-core; splits on the first two `:`
/// only, so paths with colons survive). Errors are `(line, message)`.
pub fn parse_pid_cgroup(text: &str) -> Result<Vec<Membership>, (usize, String)> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        if line.matches(':').count() < 2 {
            return Err((
                i + 1,
                format!("malformed cgroup line {line:?}: expected ID:CONTROLLERS:PATH"),
            ));
        }
        let parsed = procfs_core::ProcessCGroups::from_buf_read(line.as_bytes())
            .map_err(|e| (i + 1, format!("malformed cgroup line {line:?}: {}", proc_msg(e))))?;
        for c in parsed.0 {
            if !c.pathname.starts_with('/') {
                return Err((i + 1, format!("cgroup path {:?} is not absolute", c.pathname)));
            }
            out.push(Membership {
                hierarchy: HierarchyId::new(c.hierarchy),
                controllers: c.controllers,
                path: c.pathname,
            });
        }
    }
    Ok(out)
}

/// The real uid and gid from `/proc/PID/status`. Errors are `(line, message)`.
pub fn parse_status_ids(text: &str) -> Result<(u32, u32), (usize, String)> {
    let field = |key: &str| -> Result<u32, (usize, String)> {
        let (i, line) = text
            .lines()
            .enumerate()
            .find(|(_, l)| l.starts_with(key))
            .ok_or((0, format!("no {key} line")))?;
        line[key.len()..]
            .split_whitespace()
            .next()
            .and_then(|v| v.parse().ok())
            .ok_or((i + 1, format!("malformed {key} line {line:?}")))
    };
    Ok((field("Uid:")?, field("Gid:")?))
}

#[cfg(test)]
pub(crate) mod tests;
