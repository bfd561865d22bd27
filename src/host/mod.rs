//! Reading a host: the only code in cgmig that touches the system.
//!
//! Everything is read relative to a [`Root`]: `/` for the live host, or a
//! directory holding a captured or generated tree (`--root DIR`). Reads are
//! read-only, never follow a symlink out of the root, and classify failures:
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

use std::fs;
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use procfs_core::FromBufRead;
use thiserror::Error;

use crate::model::path as cgpath;
use crate::model::{FileOwner, Ownership};

mod listing;

/// An error reading the host, always with the path concerned.
#[derive(Debug, Error)]
pub enum HostError {
    /// A file or directory could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// Path on the host (root-prefixed).
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
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
    /// A path would leave the root through a symlink.
    #[error("{path}: resolves outside the scanned root {root}")]
    Escapes {
        /// The offending path.
        path: PathBuf,
        /// The root it escapes.
        root: PathBuf,
    },
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
    pub hierarchy: u32,
    /// Number of cgroups.
    pub num_cgroups: u32,
    /// Enabled flag.
    pub enabled: bool,
}

/// One line of `/proc/PID/task/TID/cgroup`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    /// Hierarchy id (0 for v2).
    pub hierarchy: u32,
    /// Controllers as the kernel lists them (`cpu,cpuacct`, `name=systemd`, empty for v2).
    pub controllers: Vec<String>,
    /// Path in that hierarchy.
    pub path: String,
}

/// A thread as read from `/proc/PID/task/TID`.
#[derive(Debug, Clone)]
pub struct RawThread {
    /// Thread id.
    pub tid: u32,
    /// Thread name.
    pub comm: String,
    /// Memberships, one per hierarchy.
    pub cgroups: Vec<Membership>,
}

/// A process as read from `/proc/PID`.
#[derive(Debug, Clone)]
pub struct RawProcess {
    /// PID.
    pub pid: u32,
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
    /// The live host.
    pub fn live() -> Root {
        Root {
            base: PathBuf::from("/"),
            canonical: PathBuf::from("/"),
        }
    }

    /// A captured or generated tree that stands for `/`.
    pub fn new(dir: impl Into<PathBuf>) -> Result<Root, HostError> {
        let base = dir.into();
        let canonical = fs::canonicalize(&base).map_err(|source| HostError::Io {
            path: base.clone(),
            source,
        })?;
        Ok(Root { base, canonical })
    }

    /// Whether this is the live host's `/`.
    pub fn is_live(&self) -> bool {
        self.canonical == Path::new("/")
    }

    /// The root-prefixed path of an absolute host path.
    pub fn path(&self, abs: &str) -> PathBuf {
        self.base.join(abs.trim_start_matches('/'))
    }

    /// Resolve a host path, refusing one whose symlinks lead out of the root.
    fn contained(&self, abs: &str) -> Result<PathBuf, HostError> {
        let p = self.path(abs);
        if self.is_live() {
            return Ok(p);
        }
        match fs::canonicalize(&p) {
            Ok(c) if c.starts_with(&self.canonical) => Ok(c),
            Ok(_) => Err(HostError::Escapes {
                path: p,
                root: self.base.clone(),
            }),
            Err(source) => Err(HostError::Io { path: p, source }),
        }
    }

    fn read_bytes(&self, abs: &str) -> Result<Vec<u8>, HostError> {
        let p = self.contained(abs)?;
        fs::read(&p).map_err(|source| HostError::Io { path: p, source })
    }

    fn read_maybe(&self, path: &Path) -> MaybeGone<Vec<u8>> {
        match read_small(path) {
            Ok(b) => Ok(Ok(b)),
            Err(e) if is_gone(&e) => Ok(Err(Gone)),
            Err(source) => Err(HostError::Io {
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    /// Read a small text file (`/proc/cmdline`, ...), trimmed; `None` if absent.
    pub fn read_text(&self, abs: &str) -> Result<Option<String>, HostError> {
        match self.read_bytes(abs) {
            Ok(b) => Ok(Some(cgpath::from_bytes(&b).trim().to_string())),
            Err(HostError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The cgroup filesystems in `/proc/self/mountinfo`.
    ///
    /// Each line goes through procfs-core's `MountInfo::from_line`; a line it
    /// rejects is an error naming the file and line.
    pub fn cgroup_mounts(&self) -> Result<Vec<CgroupMount>, HostError> {
        let path = self.path("/proc/self/mountinfo");
        let text = cgpath::from_bytes(&self.read_bytes("/proc/self/mountinfo")?);
        parse_cgroup_mounts(&text).map_err(|(line, message)| HostError::Parse { path, line, message })
    }

    /// `/proc/cgroups`, parsed by procfs-core. `None` if the file is absent.
    pub fn proc_cgroups(&self) -> Result<Option<Vec<ProcCgroupsEntry>>, HostError> {
        let path = self.path("/proc/cgroups");
        let Some(text) = self.read_text("/proc/cgroups")? else {
            return Ok(None);
        };
        parse_proc_cgroups(&text)
            .map(Some)
            .map_err(|(line, message)| HostError::Parse { path, line, message })
    }

    /// PIDs under `/proc`, ascending.
    pub fn pids(&self) -> Result<Vec<u32>, HostError> {
        let p = self.contained("/proc")?;
        let rd = fs::read_dir(&p).map_err(|source| HostError::Io {
            path: p.clone(),
            source,
        })?;
        let mut pids: Vec<u32> = rd
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse().ok()))
            .collect();
        pids.sort_unstable();
        Ok(pids)
    }

    /// Read one process and all its threads.
    pub fn process(&self, pid: u32) -> MaybeGone<RawProcess> {
        let dir = self.path(&format!("/proc/{pid}"));
        let comm = match self.read_maybe(&dir.join("comm"))? {
            Ok(b) => cgpath::from_bytes(&b).trim_end_matches('\n').to_string(),
            Err(Gone) => return Ok(Err(Gone)),
        };
        let cmdline = match self.read_maybe(&dir.join("cmdline"))? {
            Ok(b) => b
                .split(|&c| c == 0)
                .filter(|s| !s.is_empty())
                .map(cgpath::from_bytes)
                .collect(),
            Err(Gone) => return Ok(Err(Gone)),
        };
        let status_path = dir.join("status");
        let (uid, gid) = match self.read_maybe(&status_path)? {
            Ok(b) => {
                parse_status_ids(&cgpath::from_bytes(&b)).map_err(|(line, message)| HostError::Parse {
                    path: status_path.clone(),
                    line,
                    message,
                })?
            }
            Err(Gone) => return Ok(Err(Gone)),
        };
        let task_dir = dir.join("task");
        let rd = match fs::read_dir(&task_dir) {
            Ok(rd) => rd,
            Err(e) if is_gone(&e) => return Ok(Err(Gone)),
            Err(source) => {
                return Err(HostError::Io {
                    path: task_dir,
                    source,
                });
            }
        };
        let mut tids: Vec<u32> = rd
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse().ok()))
            .collect();
        tids.sort_unstable();
        let mut threads = Vec::with_capacity(tids.len());
        for tid in tids {
            let tdir = task_dir.join(tid.to_string());
            let cg_path = tdir.join("cgroup");
            let cgroups = match self.read_maybe(&cg_path)? {
                Ok(b) => {
                    parse_pid_cgroup(&cgpath::from_bytes(&b)).map_err(|(line, message)| HostError::Parse {
                        path: cg_path.clone(),
                        line,
                        message,
                    })?
                }
                Err(Gone) => continue, // thread exited: the process lives on
            };
            // The main thread's name is the process's: don't read it twice.
            let comm = if tid == pid {
                comm.clone()
            } else {
                match self.read_maybe(&tdir.join("comm"))? {
                    Ok(b) => cgpath::from_bytes(&b).trim_end_matches('\n').to_string(),
                    Err(Gone) => continue,
                }
            };
            threads.push(RawThread { tid, comm, cgroups });
        }
        if threads.is_empty() {
            return Ok(Err(Gone));
        }
        // fds: links for live /proc, or a `fds` file (one target a line) in captures.
        let mut open_files: Vec<String> = if self.is_live() {
            match fs::read_dir(dir.join("fd")) {
                Ok(rd) => rd
                    .filter_map(|e| e.ok())
                    .filter_map(|e| fs::read_link(e.path()).ok())
                    .map(|t| cgpath::from_bytes(t.as_os_str().as_encoded_bytes()))
                    .collect(),
                Err(_) => Vec::new(), // another user's process, or it exited
            }
        } else {
            match read_small(&dir.join("fds")) {
                Ok(b) => cgpath::from_bytes(&b).lines().map(str::to_string).collect(),
                Err(_) => Vec::new(),
            }
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

    /// Read the root `cgroup.controllers` of a cgroup2 mount.
    pub fn v2_controllers(&self, mount_point: &str) -> Result<Option<Vec<String>>, HostError> {
        Ok(self
            .read_text(&format!(
                "{}/cgroup.controllers",
                mount_point.trim_end_matches('/')
            ))?
            .map(|s| s.split_whitespace().map(str::to_string).collect()))
    }

    /// Walk a mounted hierarchy, calling `visit` for each cgroup directory,
    /// parents before children, siblings in name order.
    ///
    /// Directories that are themselves mount points (`nested_mounts`, host
    /// paths) are not entered: they are other mounts, recorded as such.
    /// Symlinks are never followed; a cgroup that disappears mid-walk counts
    /// in [`WalkStats::gone`]; every other unreadable entry becomes an error
    /// in [`WalkStats::errors`] and the walk continues.
    pub fn walk_cgroups(
        &self,
        mount_point: &str,
        nested_mounts: &std::collections::BTreeSet<String>,
        is_setting: SettingFilter,
        v2: bool,
        mut visit: impl FnMut(RawCgroup),
    ) -> Result<WalkStats, HostError> {
        let mut stats = WalkStats::default();
        let gone = &mut stats.gone;
        let errors = &mut stats.errors;
        let top = self.contained(mount_point)?;
        let mp = mount_point.trim_end_matches('/');
        let mut stack: Vec<(PathBuf, String)> = vec![(top, "/".to_string())];
        while let Some((dir, rel)) = stack.pop() {
            let is_root = rel == "/";
            let rd = match fs::read_dir(&dir) {
                Ok(rd) => rd,
                Err(e) if is_gone(&e) && !is_root => {
                    *gone += 1;
                    continue;
                }
                Err(source) => {
                    if is_root {
                        return Err(HostError::Io { path: dir, source });
                    }
                    errors.push(HostError::Io { path: dir, source });
                    continue;
                }
            };
            let mut children = Vec::new();
            let mut files = Vec::new();
            for entry in rd {
                let entry = match entry {
                    Ok(e) => e,
                    Err(source) => {
                        errors.push(HostError::Io {
                            path: dir.clone(),
                            source,
                        });
                        continue;
                    }
                };
                let Ok(ft) = entry.file_type() else { continue };
                let name = entry.file_name();
                let name_s = cgpath::from_bytes(name.as_encoded_bytes());
                if ft.is_dir() {
                    let child = cgpath::join(&rel, &name_s);
                    if !nested_mounts.contains(&format!("{mp}{child}")) {
                        children.push((entry.path(), child));
                    }
                } else if ft.is_file() && is_setting(&name_s, is_root) {
                    files.push((entry.path(), name_s));
                }
            }
            let owner_of = |p: &Path| -> Option<FileOwner> {
                fs::symlink_metadata(p).ok().map(|m| FileOwner {
                    uid: m.uid(),
                    gid: m.gid(),
                    mode: m.permissions().mode() & 0o7777,
                })
            };
            let owner = Ownership {
                dir: owner_of(&dir),
                procs: owner_of(&dir.join("cgroup.procs")),
                tasks: owner_of(&dir.join(if v2 { "cgroup.threads" } else { "tasks" })),
            };
            if owner.dir.is_none() && !is_root {
                *gone += 1;
                continue;
            }
            files.sort_by(|a, b| a.1.cmp(&b.1));
            let mut settings = Vec::with_capacity(files.len());
            for (p, name) in files {
                match read_small(&p) {
                    Ok(b) => settings.push((name, cgpath::from_bytes(&b).trim().to_string())),
                    Err(e) if is_gone(&e) => {}
                    Err(source) => errors.push(HostError::Io { path: p, source }),
                }
            }
            visit(RawCgroup {
                rel_path: rel,
                owner,
                settings,
            });
            children.sort_by(|a, b| b.1.cmp(&a.1));
            stack.extend(children);
        }
        Ok(stats)
    }
}

/// Read a small kernel file: open, read until EOF, close.
///
/// `fs::read` first stats the file to size its buffer; procfs and cgroupfs
/// report size 0 (or 4096) anyway, so that `statx` is pure cost, and the
/// scanner reads hundreds of thousands of these files.
fn read_small(path: &Path) -> io::Result<Vec<u8>> {
    use std::io::Read;
    // `read_to_end` would stat and seek to size its buffer; a plain loop
    // does open + reads + close only.
    let mut f = fs::File::open(path)?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match f.read(&mut chunk) {
            Ok(0) => return Ok(buf),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Parse mountinfo text into its cgroup mounts. Errors are `(line, message)`.
pub fn parse_cgroup_mounts(text: &str) -> Result<Vec<CgroupMount>, (usize, String)> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let mi = procfs_core::process::MountInfo::from_line(line)
            .map_err(|e| (i + 1, format!("malformed mountinfo line: {e}")))?;
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
            .map_err(|e| (i + 1, format!("malformed /proc/cgroups line: {e}")))?;
        out.extend(parsed.0.into_iter().map(|c| ProcCgroupsEntry {
            name: c.name,
            hierarchy: c.hierarchy,
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
            .map_err(|e| (i + 1, format!("malformed cgroup line {line:?}: {e}")))?;
        for c in parsed.0 {
            if !c.pathname.starts_with('/') {
                return Err((i + 1, format!("cgroup path {:?} is not absolute", c.pathname)));
            }
            out.push(Membership {
                hierarchy: c.hierarchy,
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
mod tests;
