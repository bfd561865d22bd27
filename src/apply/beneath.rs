//! The one primitive through which `apply`, `--resume` and `rollback` touch
//! a cgroup filesystem: every path is resolved *beneath* a descriptor of the
//! mount, by descriptor, never by joining strings.
//!
//! A plan or journal names paths; neither is trusted. So the mount is
//! opened once, checked with `fstatfs` to be the filesystem it must be
//! (cgroup2, or a v1 cgroup hierarchy for the live handover), and every
//! cgroup or file below it is opened relative to that descriptor:
//!
//! * [`Resolver::Openat2`]: `openat2(2)` with `RESOLVE_BENEATH` (no `..`
//!   above the mount, no absolute jump), `RESOLVE_NO_XDEV` (no crossing into
//!   another mount, even a bind mount of the same filesystem),
//!   `RESOLVE_NO_SYMLINKS` (implies `RESOLVE_NO_MAGICLINKS`), Linux 5.6+;
//! * [`Resolver::Walk`]: where `openat2` is missing (`ENOSYS`, older
//!   kernels such as 3.10) or forbidden (`EPERM` under a seccomp filter),
//!   one `openat(O_NOFOLLOW)` per name from the mount's descriptor, each
//!   checked with `fstat`: a symbolic link is `ELOOP`, a different device
//!   (another filesystem mounted inside) is `EXDEV`. It cannot see a bind
//!   mount of the *same* filesystem inside it; such a crossing stays on
//!   that cgroup filesystem, so nothing outside it is reached either way.
//!
//! Names come from [`crate::model::path::cgroup_names`] (no `.`, `..`,
//! empty name, `/` or NUL), and files are single names; no call here ever
//! creates a regular file (`O_CREAT` is never passed), so a write can only
//! reach a kernel interface file that exists.

use std::ffi::OsStr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{FileStat, Mode, SFlag};

pub use crate::host::contain::Resolver;

/// `CGROUP2_SUPER_MAGIC` from `<linux/magic.h>`.
pub const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;
/// `CGROUP_SUPER_MAGIC` (a v1 hierarchy) from `<linux/magic.h>`.
pub const CGROUP_SUPER_MAGIC: i64 = 0x0027_e0eb;

/// A directory every path is resolved beneath: a cgroup mount, checked.
#[derive(Debug)]
pub struct Beneath {
    root: OwnedFd,
    dev: u64,
    resolver: Resolver,
    path: PathBuf,
}

/// Flags of a directory descriptor used only to resolve names from.
fn path_dir() -> OFlag {
    OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC
}

/// Take ownership of a descriptor a syscall returned.
fn owned(fd: std::os::fd::RawFd) -> OwnedFd {
    // SAFETY: every caller passes a descriptor openat/openat2 just returned
    // successfully; nothing else owns it.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

impl Beneath {
    /// Open `path` (a mount point named by the operator, the mountinfo table
    /// or a journal) and check that the filesystem there has `magic`.
    /// `resolver`: `None` picks the best this kernel offers.
    pub fn open(path: &Path, magic: i64, resolver: Option<Resolver>) -> Result<Beneath, MountError> {
        let fd = nix::fcntl::open(path, path_dir(), Mode::empty()).map_err(|errno| MountError::Open {
            path: path.to_path_buf(),
            errno,
        })?;
        let root = owned(fd);
        let b = Beneath::from_fd(root, path, resolver)?;
        b.check(magic)?;
        Ok(b)
    }

    /// A `Beneath` over a descriptor already open, with no filesystem
    /// check (the caller checks, or needs none: tests on a plain directory).
    pub fn from_fd(root: OwnedFd, path: &Path, resolver: Option<Resolver>) -> Result<Beneath, MountError> {
        let st = nix::sys::stat::fstat(root.as_raw_fd()).map_err(|errno| MountError::Open {
            path: path.to_path_buf(),
            errno,
        })?;
        let resolver = resolver.unwrap_or_else(|| Resolver::detect(root.as_fd()));
        Ok(Beneath {
            root,
            dev: st.st_dev,
            resolver,
            path: path.to_path_buf(),
        })
    }

    /// Check, on the open descriptor, that the filesystem is the one wanted.
    /// Run when the mount is opened: a resume or a rollback opens it again
    /// after the pause, so what was unmounted or replaced meanwhile is seen.
    pub fn check(&self, magic: i64) -> Result<(), MountError> {
        let st = nix::sys::statfs::fstatfs(&self.root).map_err(|errno| MountError::Open {
            path: self.path.clone(),
            errno,
        })?;
        let found = st.filesystem_type().0 as i64;
        if found == magic {
            Ok(())
        } else {
            Err(MountError::WrongFs {
                path: self.path.clone(),
                found,
                wanted: magic,
            })
        }
    }

    /// The descriptor of the mount's root (for `fstatvfs` and the like).
    pub fn root_fd(&self) -> BorrowedFd<'_> {
        self.root.as_fd()
    }

    /// The mount point as it was named.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Which resolver is in use.
    pub fn resolver(&self) -> Resolver {
        self.resolver
    }

    /// Open `names` (raw names from the mount's root; none is the root)
    /// with `flags` (`O_CLOEXEC` is added, a link is never followed;
    /// `O_CREAT` is refused).
    pub fn open_at(&self, names: &[Vec<u8>], flags: OFlag) -> Result<OwnedFd, Errno> {
        self.open_from(self.root.as_fd(), names, flags)
    }

    /// [`Beneath::open_at`] from a directory opened beneath the mount
    /// earlier (a cgroup whose files are read and written one after the
    /// other): the same rules, from there.
    pub fn open_from(&self, dir: BorrowedFd<'_>, names: &[Vec<u8>], flags: OFlag) -> Result<OwnedFd, Errno> {
        if flags.contains(OFlag::O_CREAT) {
            return Err(Errno::EINVAL);
        }
        for n in names {
            check_name(n)?;
        }
        // No O_NOFOLLOW for openat2: with RESOLVE_NO_SYMLINKS a trailing
        // link is then ELOOP for every kind of open (O_PATH|O_NOFOLLOW
        // would return the link itself, and O_DIRECTORY say ENOTDIR).
        let flags = (flags | OFlag::O_CLOEXEC) - OFlag::O_NOFOLLOW;
        match self.resolver {
            Resolver::Openat2 => openat2_beneath(dir, names, flags),
            Resolver::Walk => self.walk(dir, names, flags),
        }
    }

    /// The fallback: one name at a time, each checked for a link and for
    /// the device, so the result is the one `openat2` gives.
    fn walk(&self, start: BorrowedFd<'_>, names: &[Vec<u8>], flags: OFlag) -> Result<OwnedFd, Errno> {
        let Some((last, dirs)) = names.split_last() else {
            return self.child(start, b".", flags);
        };
        let mut cur: Option<OwnedFd> = None;
        for n in dirs {
            let at = cur.as_ref().map_or(start, AsFd::as_fd);
            let next = self.child(at, n, path_dir())?;
            cur = Some(next);
        }
        let at = cur.as_ref().map_or(start, AsFd::as_fd);
        self.child(at, last, flags)
    }

    /// One name in an open directory, never following a link, on this device.
    fn child(&self, dir: BorrowedFd<'_>, name: &[u8], flags: OFlag) -> Result<OwnedFd, Errno> {
        let fd = match nix::fcntl::openat(
            Some(dir.as_raw_fd()),
            OsStr::from_bytes(name),
            flags | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        ) {
            Ok(fd) => owned(fd),
            // O_DIRECTORY on a link is ENOTDIR: say ELOOP, as openat2 does.
            Err(Errno::ENOTDIR) if is_link(dir, name) => return Err(Errno::ELOOP),
            Err(e) => return Err(e),
        };
        let st = nix::sys::stat::fstat(fd.as_raw_fd())?;
        refuse_link(&st)?;
        if st.st_dev != self.dev {
            return Err(Errno::EXDEV);
        }
        Ok(fd)
    }

    /// `mkdir` the last of `names` in its parent (mode 0755, as `mkdir(1)`).
    pub fn mkdir(&self, names: &[Vec<u8>]) -> Result<(), Errno> {
        let (name, parent) = names.split_last().ok_or(Errno::EEXIST)?;
        let dir = self.open_at(parent, path_dir())?;
        self.mkdir_in(dir.as_fd(), name)
    }

    /// `mkdir` one name in a directory opened beneath the mount.
    pub fn mkdir_in(&self, dir: BorrowedFd<'_>, name: &[u8]) -> Result<(), Errno> {
        check_name(name)?;
        nix::sys::stat::mkdirat(
            Some(dir.as_raw_fd()),
            OsStr::from_bytes(name),
            Mode::from_bits_truncate(0o755),
        )
    }

    /// `rmdir` the last of `names` in its parent.
    pub fn rmdir(&self, names: &[Vec<u8>]) -> Result<(), Errno> {
        let (name, parent) = names.split_last().ok_or(Errno::EBUSY)?;
        let dir = self.open_at(parent, path_dir())?;
        self.rmdir_in(dir.as_fd(), name)
    }

    /// `rmdir` one name in a directory opened beneath the mount.
    pub fn rmdir_in(&self, dir: BorrowedFd<'_>, name: &[u8]) -> Result<(), Errno> {
        check_name(name)?;
        nix::unistd::unlinkat(
            Some(dir.as_raw_fd()),
            OsStr::from_bytes(name),
            nix::unistd::UnlinkatFlags::RemoveDir,
        )
    }

    /// `stat` of `names` (a directory or a file), without following a link.
    pub fn stat(&self, names: &[Vec<u8>]) -> Result<FileStat, Errno> {
        let fd = self.open_at(names, OFlag::O_PATH)?;
        nix::sys::stat::fstat(fd.as_raw_fd())
    }

    /// Change the owner of a directory or regular file (never a link: the
    /// descriptor is the file itself).
    pub fn chown(&self, names: &[Vec<u8>], uid: u32, gid: u32) -> Result<(), Errno> {
        let fd = self.open_at(names, OFlag::O_PATH)?;
        let st = nix::sys::stat::fstat(fd.as_raw_fd())?;
        let kind = SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits());
        if kind != SFlag::S_IFDIR && kind != SFlag::S_IFREG {
            return Err(Errno::EINVAL);
        }
        nix::unistd::fchownat(
            Some(fd.as_raw_fd()),
            "",
            Some(uid.into()),
            Some(gid.into()),
            nix::fcntl::AtFlags::AT_EMPTY_PATH,
        )
    }

    /// The names of the directories in `names`, sorted (raw bytes).
    pub fn subdirs(&self, names: &[Vec<u8>]) -> Result<Vec<Vec<u8>>, Errno> {
        let fd = self.open_at(names, OFlag::O_RDONLY | OFlag::O_DIRECTORY)?;
        let mut dir = nix::dir::Dir::from_fd(std::os::fd::IntoRawFd::into_raw_fd(fd))?;
        let mut out = Vec::new();
        for e in dir.iter() {
            let e = e?;
            let name = e.file_name().to_bytes();
            if name == b"." || name == b".." {
                continue;
            }
            if e.file_type() == Some(nix::dir::Type::Directory) {
                out.push(name.to_vec());
            }
        }
        out.sort();
        Ok(out)
    }
}

/// An absolute, normalized filesystem path (a v1 mount point): no `.`,
/// `..` or empty name, not `/` itself.
pub fn mount_point(field: &str, p: &str) -> Result<(), String> {
    let normal = p.strip_prefix('/').is_some_and(|rest| {
        !rest.is_empty() && rest.split('/').all(|n| !n.is_empty() && n != "." && n != "..")
    }) && !p.contains('\0');
    if normal {
        Ok(())
    } else {
        Err(format!(
            "{field} {p:?} is not an absolute, normalized mount point"
        ))
    }
}

/// A name is one component: not empty, `.`, `..`, and without `/` or NUL.
pub fn check_name(name: &[u8]) -> Result<(), Errno> {
    if name.is_empty() || name == b"." || name == b".." || name.contains(&b'/') || name.contains(&0) {
        Err(Errno::EINVAL)
    } else {
        Ok(())
    }
}

/// `openat2` of `names` from `dir`: beneath it, on its mount, no link.
fn openat2_beneath(dir: BorrowedFd<'_>, names: &[Vec<u8>], flags: OFlag) -> Result<OwnedFd, Errno> {
    let rel = if names.is_empty() {
        b".".to_vec()
    } else {
        names.join(&b'/')
    };
    let how = OpenHow::new().flags(flags).resolve(
        ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_XDEV | ResolveFlag::RESOLVE_NO_SYMLINKS,
    );
    let fd = owned(nix::fcntl::openat2(
        dir.as_raw_fd(),
        OsStr::from_bytes(&rel),
        how,
    )?);
    // An O_PATH|O_NOFOLLOW open of a trailing symlink gives the link.
    if flags.contains(OFlag::O_PATH) {
        refuse_link(&nix::sys::stat::fstat(fd.as_raw_fd())?)?;
    }
    Ok(fd)
}

fn refuse_link(st: &FileStat) -> Result<(), Errno> {
    if st.st_mode & SFlag::S_IFMT.bits() == SFlag::S_IFLNK.bits() {
        Err(Errno::ELOOP)
    } else {
        Ok(())
    }
}

fn is_link(dir: BorrowedFd<'_>, name: &[u8]) -> bool {
    nix::sys::stat::fstatat(
        Some(dir.as_raw_fd()),
        OsStr::from_bytes(name),
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .is_ok_and(|st| st.st_mode & SFlag::S_IFMT.bits() == SFlag::S_IFLNK.bits())
}

/// Why a mount could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MountError {
    /// It could not be opened or examined.
    #[error("{}: {errno}", path.display())]
    Open {
        /// The mount point.
        path: PathBuf,
        /// What the kernel said.
        errno: Errno,
    },
    /// Another filesystem is there.
    #[error("{}: not a {} filesystem (statfs magic {found:#x})", path.display(), fs_name(*wanted))]
    WrongFs {
        /// The mount point.
        path: PathBuf,
        /// The magic found.
        found: i64,
        /// The magic wanted.
        wanted: i64,
    },
}

/// The name of the filesystem a magic stands for, for messages.
pub fn fs_name(magic: i64) -> &'static str {
    match magic {
        CGROUP2_SUPER_MAGIC => "cgroup2",
        CGROUP_SUPER_MAGIC => "cgroup (v1)",
        _ => "cgroup",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(p: &str) -> Vec<Vec<u8>> {
        crate::model::path::cgroup_names(p).unwrap()
    }

    /// A plain directory stands in for the mount (no filesystem check):
    /// links, `..` and other filesystems are refused by both resolvers
    /// with the same errno, and plain names work.
    #[test]
    fn both_resolvers_stay_beneath_and_agree() {
        let t = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), "keep").unwrap();
        std::fs::create_dir(t.path().join("a")).unwrap();
        std::fs::write(t.path().join("a/f"), "v").unwrap();
        std::os::unix::fs::symlink(outside.path(), t.path().join("link")).unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret"), t.path().join("a/flink")).unwrap();
        for r in [Resolver::Openat2, Resolver::Walk] {
            if r == Resolver::Openat2 {
                let fd = nix::fcntl::open(t.path(), path_dir(), Mode::empty()).unwrap();
                if Resolver::detect(owned(fd).as_fd()) != Resolver::Openat2 {
                    eprintln!("no openat2 here: the Openat2 case is the walk's");
                    continue;
                }
            }
            let fd = owned(nix::fcntl::open(t.path(), path_dir(), Mode::empty()).unwrap());
            let b = Beneath::from_fd(fd, t.path(), Some(r)).unwrap();
            assert!(b.open_at(&names("/a/f"), OFlag::O_RDONLY).is_ok(), "{r:?}");
            assert_eq!(
                b.open_at(&names("/link/secret"), OFlag::O_RDONLY).unwrap_err(),
                Errno::ELOOP,
                "{r:?}"
            );
            assert_eq!(
                b.open_at(&names("/a/flink"), OFlag::O_WRONLY).unwrap_err(),
                Errno::ELOOP,
                "{r:?}"
            );
            assert_eq!(
                b.open_at(&names("/a/flink"), OFlag::O_PATH).unwrap_err(),
                Errno::ELOOP,
                "{r:?}"
            );
            assert_eq!(
                b.chown(&names("/a/flink"), 0, 0).unwrap_err(),
                Errno::ELOOP,
                "{r:?}"
            );
            assert_eq!(b.mkdir(&names("/link/x")).unwrap_err(), Errno::ELOOP, "{r:?}");
            assert_eq!(
                b.open_at(&[b"..".to_vec()], OFlag::O_RDONLY).unwrap_err(),
                Errno::EINVAL
            );
            assert_eq!(
                b.open_at(&[b"a/../..".to_vec()], OFlag::O_RDONLY).unwrap_err(),
                Errno::EINVAL
            );
            assert_eq!(
                b.open_at(&names("/a/new"), OFlag::O_WRONLY | OFlag::O_CREAT)
                    .unwrap_err(),
                Errno::EINVAL
            );
            assert_eq!(
                b.open_at(&names("/a/new"), OFlag::O_WRONLY).unwrap_err(),
                Errno::ENOENT,
                "never created"
            );
            b.mkdir(&names("/a/d")).unwrap();
            assert_eq!(b.subdirs(&names("/a")).unwrap(), vec![b"d".to_vec()]);
            b.rmdir(&names("/a/d")).unwrap();
            assert!(b.stat(&names("/a")).is_ok());
        }
        assert_eq!(
            std::fs::read_to_string(outside.path().join("secret")).unwrap(),
            "keep"
        );
        assert!(!outside.path().join("x").exists());
    }

    /// Another filesystem inside the tree (here /proc below /) is EXDEV
    /// for both resolvers.
    #[test]
    fn another_filesystem_inside_is_not_entered() {
        let fd = owned(nix::fcntl::open("/", path_dir(), Mode::empty()).unwrap());
        let probe = Resolver::detect(fd.as_fd());
        for r in [probe, Resolver::Walk] {
            let fd = owned(nix::fcntl::open("/", path_dir(), Mode::empty()).unwrap());
            let b = Beneath::from_fd(fd, Path::new("/"), Some(r)).unwrap();
            assert_eq!(
                b.open_at(&names("/proc/self/status"), OFlag::O_RDONLY)
                    .unwrap_err(),
                Errno::EXDEV,
                "{r:?}"
            );
        }
    }

    #[test]
    fn the_filesystem_is_checked_on_the_descriptor() {
        let t = tempfile::tempdir().unwrap();
        let e = Beneath::open(t.path(), CGROUP2_SUPER_MAGIC, None).unwrap_err();
        assert!(e.to_string().contains("not a cgroup2 filesystem"), "{e}");
    }
}
