//! The kernel [`Target`]: a cgroup2 mount, driven through its files.
//!
//! Paths are relative to the mount (`/` is the mount's root cgroup); the
//! executor maps plan paths under `--target DIR` onto them. Every call is one
//! system call on one file, so its errno is the kernel's verdict, which is what
//! the journal records and what the simulator is compared against.
//!
//! Every path is resolved beneath a descriptor of the mount
//! ([`super::beneath`]), which is checked with `fstatfs` to be cgroup2 when
//! it is opened: a plan or journal that names `..`, a symlink, another
//! filesystem or a file outside the catalogue reaches nothing outside it.

use std::cell::RefCell;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::OFlag;

use super::beneath::{Beneath, Resolver};
use super::error::ApplyError;
use super::step::UidGid;
use super::target::{Target, TargetError};
use super::tasks::Host;
use crate::model::{Pid, Tid};

pub use super::beneath::CGROUP2_SUPER_MAGIC;

/// A cgroup2 mount on this host, open and checked.
#[derive(Debug)]
pub struct KernelTarget {
    fs: Beneath,
    /// The cgroup whose files were used last, and its directory: an apply
    /// writes, reads back and moves into one cgroup after the other, so each
    /// file is one name from there instead of the whole path again.
    last_dir: RefCell<Option<(String, OwnedFd)>>,
}

/// Where a `--target` directory sits: its cgroup2 mount and its cgroup path there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    /// The cgroup2 mount point.
    pub mount: PathBuf,
    /// The target's cgroup path on that mount (`/` for the mount itself).
    pub prefix: String,
}

fn errno_of(e: &std::io::Error) -> Errno {
    e.raw_os_error().map_or(Errno::EIO, Errno::from_raw)
}

/// The raw names of a cgroup path, or `EINVAL` naming it.
fn names(path: &str) -> Result<Vec<Vec<u8>>, TargetError> {
    crate::model::path::cgroup_names(path).map_err(|_| TargetError::new(path, None, Errno::EINVAL))
}

/// One file name: a single component.
fn file_name(path: &str, file: &str) -> Result<Vec<u8>, TargetError> {
    super::beneath::check_name(file.as_bytes()).map_err(|e| TargetError::new(path, Some(file), e))?;
    Ok(file.as_bytes().to_vec())
}

impl KernelTarget {
    /// Open the cgroup2 mount at `mount`: refused when the filesystem there
    /// is not cgroup2 (`fstatfs` on the descriptor) or is mounted read-only.
    pub fn open(mount: &Path) -> Result<KernelTarget, ApplyError> {
        KernelTarget::open_with(mount, None)
    }

    /// [`KernelTarget::open`] with a chosen resolver (tests run both).
    pub fn open_with(mount: &Path, resolver: Option<Resolver>) -> Result<KernelTarget, ApplyError> {
        let fs = Beneath::open(mount, CGROUP2_SUPER_MAGIC, resolver).map_err(ApplyError::from)?;
        let vfs = nix::sys::statvfs::fstatvfs(fs_fd(&fs)).map_err(|e| ApplyError::io(mount, e.into()))?;
        if vfs.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY) {
            return Err(ApplyError::ReadOnly {
                path: mount.to_path_buf(),
            });
        }
        Ok(KernelTarget {
            fs,
            last_dir: RefCell::new(None),
        })
    }

    /// A target over any directory, with no filesystem check: the unit tests
    /// of the path handling, on a plain directory.
    #[cfg(test)]
    pub fn unchecked(dir: &Path, resolver: Option<Resolver>) -> KernelTarget {
        let fd = nix::fcntl::open(
            dir,
            OFlag::O_PATH | OFlag::O_DIRECTORY,
            nix::sys::stat::Mode::empty(),
        )
        .unwrap();
        // SAFETY: open returned a fresh descriptor we own.
        let fd = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
        KernelTarget {
            fs: Beneath::from_fd(fd, dir, resolver).unwrap(),
            last_dir: RefCell::new(None),
        }
    }

    /// The mount point.
    pub fn mount(&self) -> &Path {
        self.fs.path()
    }

    /// The resolver in use.
    pub fn resolver(&self) -> Resolver {
        self.fs.resolver()
    }

    /// Open one file of a cgroup, from the cached directory when it is that
    /// cgroup's.
    fn open_file(&self, path: &str, file: &str, flags: OFlag) -> Result<OwnedFd, TargetError> {
        let name = file_name(path, file)?;
        let err = |e| TargetError::new(path, Some(file), e);
        let mut cache = self.last_dir.borrow_mut();
        if cache.as_ref().is_none_or(|(p, _)| p != path) {
            let dir = self
                .fs
                .open_at(&names(path)?, OFlag::O_PATH | OFlag::O_DIRECTORY)
                .map_err(|e| TargetError::new(path, None, e))?;
            *cache = Some((path.to_string(), dir));
        }
        let (_, dir) = cache.as_ref().ok_or_else(|| err(Errno::ENOENT))?;
        self.fs.open_from(dir.as_fd(), &[name], flags).map_err(err)
    }

    /// Forget the cached directory: a mkdir or rmdir may have replaced it.
    fn forget(&self) {
        *self.last_dir.borrow_mut() = None;
    }
}

fn fs_fd(fs: &Beneath) -> std::os::fd::BorrowedFd<'_> {
    fs.root_fd()
}

/// Read an open interface file (bounded like every contained read).
fn read_all(fd: OwnedFd) -> Result<String, Errno> {
    let mut f = std::fs::File::from(fd);
    let mut buf = Vec::new();
    Read::by_ref(&mut f)
        .take(crate::host::contain::MAX_SETTING_BYTES as u64)
        .read_to_end(&mut buf)
        .map_err(|e| errno_of(&e))?;
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// Check that `dir` (or, when it does not exist yet, its nearest existing
/// ancestor) is on a writable cgroup2 filesystem, and find the mount.
pub fn locate(dir: &Path) -> Result<Located, ApplyError> {
    let mut probe = dir.to_path_buf();
    while !probe.exists() {
        match probe.parent() {
            Some(p) => probe = p.to_path_buf(),
            None => {
                return Err(ApplyError::io(
                    dir,
                    std::io::Error::from(std::io::ErrorKind::NotFound),
                ));
            }
        }
    }
    let st = nix::sys::statfs::statfs(&probe).map_err(|e| ApplyError::io(&probe, e.into()))?;
    let magic = st.filesystem_type().0 as i64;
    if magic != CGROUP2_SUPER_MAGIC {
        return Err(ApplyError::NotCgroup2 { path: probe, magic });
    }
    let vfs = nix::sys::statvfs::statvfs(&probe).map_err(|e| ApplyError::io(&probe, e.into()))?;
    if vfs.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY) {
        return Err(ApplyError::ReadOnly { path: probe });
    }
    let probe = probe.canonicalize().map_err(|e| ApplyError::io(&probe, e))?;
    let rest = dir
        .strip_prefix(dir.ancestors().find(|a| a.exists()).unwrap_or(dir))
        .unwrap_or(Path::new(""));
    let full = probe.join(rest);
    let mounts = cgroup2_mounts().map_err(|e| ApplyError::io("/proc/self/mountinfo", e))?;
    let mount = mounts
        .into_iter()
        .filter(|m| full.starts_with(m))
        .max_by_key(|m| m.as_os_str().len())
        .ok_or_else(|| ApplyError::Refused(format!("{}: no cgroup2 mount contains it", full.display())))?;
    let rel = full.strip_prefix(&mount).unwrap_or(Path::new(""));
    // Each name as the model writes it (escaped), so the prefix joins plan
    // paths the way they are stored; `..` or `.` left in it is refused.
    let mut prefix = String::new();
    for c in rel {
        prefix.push('/');
        prefix.push_str(&crate::model::path::from_bytes(c.as_encoded_bytes()));
    }
    if prefix.is_empty() {
        prefix.push('/');
    }
    if let Err(e) = crate::model::path::cgroup_names(&prefix) {
        return Err(ApplyError::Refused(format!(
            "--target {}: its path below the cgroup2 mount {} ({prefix:?}) {e}",
            dir.display(),
            mount.display()
        )));
    }
    Ok(Located { mount, prefix })
}

/// Every cgroup2 mount point in this mount namespace.
pub fn cgroup2_mounts() -> std::io::Result<Vec<PathBuf>> {
    let text = std::fs::read_to_string("/proc/self/mountinfo")?;
    Ok(text
        .lines()
        .filter_map(|l| {
            let (left, right) = l.split_once(" - ")?;
            (right.split_whitespace().next() == Some("cgroup2")).then(|| {
                PathBuf::from(crate::model::path::unescape_octal(
                    left.split_whitespace().nth(4).unwrap_or("/"),
                ))
            })
        })
        .collect())
}

/// The host's cgroup2 mount: `/sys/fs/cgroup` (unified) or `/sys/fs/cgroup/unified` (hybrid).
pub fn default_mount() -> Result<PathBuf, ApplyError> {
    let mounts = cgroup2_mounts().map_err(|e| ApplyError::io("/proc/self/mountinfo", e))?;
    for want in ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"] {
        if let Some(m) = mounts.iter().find(|m| m.as_os_str() == want) {
            return Ok(m.clone());
        }
    }
    mounts.into_iter().next().ok_or_else(|| {
        ApplyError::Refused("no cgroup2 filesystem is mounted on this host; use --target".into())
    })
}

impl Target for KernelTarget {
    fn mkdir(&mut self, path: &str) -> Result<(), TargetError> {
        self.forget();
        self.fs
            .mkdir(&names(path)?)
            .map_err(|e| TargetError::new(path, None, e))
    }

    fn rmdir(&mut self, path: &str) -> Result<(), TargetError> {
        self.forget();
        self.fs
            .rmdir(&names(path)?)
            .map_err(|e| TargetError::new(path, None, e))
    }

    fn exists(&self, path: &str) -> bool {
        names(path).is_ok_and(|n| self.fs.open_at(&n, OFlag::O_PATH | OFlag::O_DIRECTORY).is_ok())
    }

    fn children(&self, path: &str) -> Result<Vec<String>, TargetError> {
        let raw = self
            .fs
            .subdirs(&names(path)?)
            .map_err(|e| TargetError::new(path, None, e))?;
        let mut v: Vec<String> = raw.iter().map(|n| crate::model::path::from_bytes(n)).collect();
        v.sort();
        Ok(v)
    }

    fn read(&self, path: &str, file: &str) -> Result<String, TargetError> {
        let fd = self.open_file(path, file, OFlag::O_RDONLY | OFlag::O_NONBLOCK)?;
        read_all(fd).map_err(|e| TargetError::new(path, Some(file), e))
    }

    fn write(&mut self, path: &str, file: &str, value: &str) -> Result<(), TargetError> {
        let fd = self.open_file(path, file, OFlag::O_WRONLY)?;
        let mut f = std::fs::File::from(fd);
        // One write(2): the kernel parses each write on its own.
        f.write_all(value.as_bytes())
            .map_err(|e| TargetError::new(path, Some(file), errno_of(&e)))
    }

    fn write_read(&mut self, path: &str, file: &str, value: &str) -> Result<String, TargetError> {
        // One open for the write and its read-back (the kernel formats the
        // file again for a read at offset 0 after a write).
        let fd = match self.open_file(path, file, OFlag::O_RDWR) {
            Ok(fd) => fd,
            Err(e) if e.errno == Errno::EACCES => {
                self.write(path, file, value)?;
                return self.read(path, file);
            }
            Err(e) => return Err(e),
        };
        let err = |e: std::io::Error| TargetError::new(path, Some(file), errno_of(&e));
        let f = std::fs::File::from(fd);
        (&f).write_all(value.as_bytes()).map_err(err)?;
        let mut buf = vec![0u8; 4096];
        let mut got = Vec::new();
        loop {
            let n = std::os::unix::fs::FileExt::read_at(&f, &mut buf, got.len() as u64).map_err(err)?;
            if n == 0 || got.len() + n > crate::host::contain::MAX_SETTING_BYTES {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        Ok(String::from_utf8_lossy(&got).into_owned())
    }

    fn chown(&mut self, path: &str, file: Option<&str>, uid: u32, gid: u32) -> Result<(), TargetError> {
        let mut n = names(path)?;
        if let Some(f) = file {
            n.push(file_name(path, f)?);
        }
        self.fs
            .chown(&n, uid, gid)
            .map_err(|e| TargetError::new(path, file, e))
    }
}

/// A process's parent, from `/proc/PID/status` (`None` when it is gone).
fn proc_parent(pid: Pid) -> Option<Pid> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix("PPid:"))
        .and_then(|v| v.trim().parse().ok())
}

/// PID 1 and the chain of processes that runs this cgmig, read from
/// `/proc`: what no plan key may take by identity
/// ([`crate::apply::resolve::Protected`]).
pub fn protected() -> crate::apply::resolve::Protected {
    crate::apply::resolve::Protected::chain(crate::apply::exec::own_pid(), proc_parent)
}

impl Host for KernelTarget {
    fn cgroup_of_task(&self, pid: Pid, tid: Tid) -> Result<String, Errno> {
        let raw = std::fs::read(format!("/proc/{pid}/task/{tid}/cgroup")).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Errno::ESRCH
            } else {
                errno_of(&e)
            }
        })?;
        // Raw bytes, escaped like the plan's paths (a name may not be UTF-8).
        raw.split(|&b| b == b'\n')
            .find_map(|l| l.strip_prefix(b"0::"))
            .map(crate::model::path::from_bytes)
            .ok_or(Errno::ENOENT)
    }

    fn parent_pid(&self, pid: Pid) -> Option<Pid> {
        proc_parent(pid)
    }

    fn child_pids(&self, pid: Pid) -> Option<Vec<Pid>> {
        let mut kids = Vec::new();
        for t in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
            let t = t.ok()?;
            // No such file: a kernel without CONFIG_PROC_CHILDREN.
            let text = std::fs::read_to_string(t.path().join("children")).ok()?;
            kids.extend(text.split_whitespace().filter_map(|k| k.parse::<Pid>().ok()));
        }
        Some(kids)
    }

    fn owner(&self, path: &str, file: Option<&str>) -> Option<UidGid> {
        let mut n = names(path).ok()?;
        if let Some(f) = file {
            n.push(file_name(path, f).ok()?);
        }
        let st = self.fs.stat(&n).ok()?;
        Some(UidGid::new(st.st_uid, st.st_gid))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apply::Target;
    use std::os::unix::ffi::OsStrExt;

    fn dir_of(root: &Path, n: &str) -> PathBuf {
        root.join(crate::model::path::to_os(n.trim_start_matches('/')))
    }

    /// Plan paths are escaped (`\xNN`, `\\`); the directories made, written,
    /// listed and removed are the raw names, with either resolver. A plain
    /// directory stands in for the mount: these calls are the same on any
    /// filesystem.
    #[test]
    fn escaped_plan_names_become_the_raw_bytes() {
        for r in [Resolver::Openat2, Resolver::Walk] {
            let tmp = tempfile::tempdir().unwrap();
            let mut k = KernelTarget::unchecked(tmp.path(), Some(r));
            // A control byte, a non-UTF-8 byte, a literal `\x01` (its backslash
            // escaped) and a plain backslash.
            let names = [r"/ctl\x01x", r"/bad\xffutf8", r"/lit\\x01", r"/back\slash"];
            for n in names {
                k.mkdir(n).unwrap();
                // Cgroup files exist already; here the test makes the file.
                std::fs::write(dir_of(tmp.path(), n).join("f"), "").unwrap();
                k.write(n, "f", "1").unwrap();
                assert_eq!(k.write_read(n, "f", "2").unwrap(), "2");
            }
            let mut raw: Vec<Vec<u8>> = std::fs::read_dir(tmp.path())
                .unwrap()
                .map(|e| e.unwrap().file_name().as_bytes().to_vec())
                .collect();
            raw.sort();
            let want: Vec<&[u8]> = vec![b"back\\slash", b"bad\xffutf8", b"ctl\x01x", b"lit\\x01"];
            assert_eq!(raw, want);
            assert_eq!(
                std::fs::read(
                    tmp.path()
                        .join(std::ffi::OsStr::from_bytes(b"ctl\x01x"))
                        .join("f")
                )
                .unwrap(),
                b"2"
            );
            let listed = k.children("/").unwrap();
            let mut expect: Vec<String> = names.iter().map(|n| n[1..].to_string()).collect();
            expect.sort();
            assert_eq!(listed, expect, "listing gives the escaped names back");
            let mut walked = crate::apply::handover::walk(tmp.path());
            walked.sort();
            let mut expect: Vec<String> = names.iter().map(|n| n.to_string()).collect();
            expect.sort();
            assert_eq!(walked, expect, "the handover's walk too");
            for n in names {
                std::fs::remove_file(dir_of(tmp.path(), n).join("f")).unwrap();
                k.rmdir(n).unwrap();
            }
            assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
        }
    }

    /// What a plan or journal could name to get out: every call refuses it,
    /// and nothing outside is touched, with either resolver.
    #[test]
    fn paths_and_files_that_climb_are_refused() {
        for r in [Resolver::Openat2, Resolver::Walk] {
            let tmp = tempfile::tempdir().unwrap();
            let outside = tempfile::tempdir().unwrap();
            std::fs::write(outside.path().join("x"), "keep").unwrap();
            std::os::unix::fs::symlink(outside.path(), tmp.path().join("link")).unwrap();
            std::fs::create_dir(tmp.path().join("a")).unwrap();
            let mut k = KernelTarget::unchecked(tmp.path(), Some(r));
            let bad_paths = ["a", "/a/..", "/a/../..", "/link", "/link/x", "//a"];
            for p in bad_paths {
                assert!(k.write(p, "x", "evil").is_err(), "{r:?} {p}");
                assert!(k.mkdir(&format!("{p}/n")).is_err(), "{r:?} {p}");
                assert!(k.chown(p, None, 0, 0).is_err(), "{r:?} {p}");
            }
            for f in ["../x", "/x", "..", "a/b", ""] {
                assert_eq!(
                    k.write("/a", f, "evil").unwrap_err().errno,
                    Errno::EINVAL,
                    "{r:?} {f}"
                );
            }
            assert_eq!(
                k.write("/a", "new", "evil").unwrap_err().errno,
                Errno::ENOENT,
                "never created"
            );
            assert_eq!(std::fs::read_to_string(outside.path().join("x")).unwrap(), "keep");
            assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 1);
        }
    }
}
