//! The one containment primitive: every file cgmig reads under a root is
//! opened here.
//!
//! `--root DIR` promises that nothing outside DIR is read, and on a live host
//! `/proc/PID/*` belongs to whoever owns the process: a symlink or a FIFO
//! planted there must not redirect or block a root-run scan. So every path is
//! resolved relative to a directory fd of the root, never by plain `open`:
//!
//! * [`Resolver::Openat2`]: `openat2(2)` with `RESOLVE_IN_ROOT` (the root is
//!   `/` for every symlink and `..`) and `RESOLVE_NO_MAGICLINKS` (no
//!   `/proc/PID/fd/N`-style jump to a file elsewhere), Linux 5.6 and later;
//! * [`Resolver::Walk`]: where `openat2` is missing (`ENOSYS`) or forbidden
//!   (`EPERM` under a seccomp filter), a component-wise walk with
//!   `O_NOFOLLOW` that emulates `RESOLVE_IN_ROOT` itself: a symlink is read
//!   with `readlinkat` and its target resolved from the root again.
//!
//! Every file is opened `O_NONBLOCK|O_NOCTTY`, checked to be a regular file
//! with `fstat` on the open descriptor (so a FIFO, socket or device is a
//! diagnostic, never a hang), and read up to a byte limit.

use std::ffi::OsStr;
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{Mode, SFlag};

/// Bytes read at most from a kernel table or proc file (mountinfo of a host
/// with tens of thousands of mounts is a few MiB).
pub const MAX_TABLE_BYTES: usize = 16 << 20;
/// Bytes read at most from one cgroup interface file.
pub const MAX_SETTING_BYTES: usize = 1 << 20;
/// Bytes read at most from a user-supplied document (snapshot, rules, plan).
pub const MAX_DOCUMENT_BYTES: usize = 256 << 20;

/// Symlinks followed at most while resolving one path (as the kernel's `MAXSYMLINKS`).
const MAX_SYMLINKS: usize = 40;

/// How paths under a root are resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolver {
    /// `openat2` with `RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS`.
    Openat2,
    /// Component-wise `openat(O_NOFOLLOW)` walk that emulates `RESOLVE_IN_ROOT`.
    Walk,
}

impl Resolver {
    /// The best resolver this kernel offers (probes `openat2` once on `dir`).
    pub fn detect(dir: BorrowedFd<'_>) -> Resolver {
        let how = OpenHow::new()
            .flags(OFlag::O_PATH | OFlag::O_CLOEXEC | OFlag::O_DIRECTORY)
            .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
        match nix::fcntl::openat2(dir.as_raw_fd(), ".", how) {
            Ok(fd) => {
                // SAFETY: openat2 returned a fresh descriptor we own.
                drop(unsafe { OwnedFd::from_raw_fd(fd) });
                Resolver::Openat2
            }
            Err(_) => Resolver::Walk,
        }
    }
}

/// Why a contained read failed; the caller adds the path.
#[derive(Debug)]
pub enum ReadError {
    /// The OS refused (ENOENT, EACCES, ELOOP, ...).
    Io(io::Error),
    /// Not a regular file (FIFO, socket, device, directory).
    NotRegular(&'static str),
    /// More than the limit.
    TooLarge(usize),
}

impl From<io::Error> for ReadError {
    fn from(e: io::Error) -> Self {
        ReadError::Io(e)
    }
}

impl From<Errno> for ReadError {
    fn from(e: Errno) -> Self {
        ReadError::Io(io::Error::from(e))
    }
}

/// Flags every read-only open uses: no controlling tty, no blocking on a
/// FIFO, no fd leaking into children.
fn read_flags() -> OFlag {
    OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_NOCTTY | OFlag::O_CLOEXEC
}

/// Open `path` (host-absolute or relative, raw bytes) under the directory
/// `root`, never leaving it. `flags` are the open flags (`O_DIRECTORY` for a
/// directory); `O_CLOEXEC` is always added.
pub fn open_beneath(
    root: BorrowedFd<'_>,
    resolver: Resolver,
    path: &Path,
    flags: OFlag,
) -> io::Result<OwnedFd> {
    let rel = relative(path);
    let flags = flags | OFlag::O_CLOEXEC;
    match resolver {
        Resolver::Openat2 => {
            let how = OpenHow::new()
                .flags(flags)
                .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
            let fd = nix::fcntl::openat2(root.as_raw_fd(), rel.as_os_str(), how)?;
            // SAFETY: openat2 returned a fresh descriptor we own.
            Ok(unsafe { OwnedFd::from_raw_fd(fd) })
        }
        Resolver::Walk => walk(root, &rel, flags),
    }
}

/// `path` without its leading `/` (`.` for the root itself).
fn relative(path: &Path) -> PathBuf {
    let b = path.as_os_str().as_bytes();
    let start = b.iter().position(|&c| c != b'/').unwrap_or(b.len());
    if start == b.len() {
        PathBuf::from(".")
    } else {
        PathBuf::from(OsStr::from_bytes(&b[start..]))
    }
}

/// Open one name in a directory without following a symlink.
fn openat_nofollow(dir: BorrowedFd<'_>, name: &OsStr, flags: OFlag) -> Result<OwnedFd, Errno> {
    let fd = nix::fcntl::openat(
        Some(dir.as_raw_fd()),
        name,
        flags | OFlag::O_NOFOLLOW,
        Mode::empty(),
    )?;
    // SAFETY: openat returned a fresh descriptor we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The `RESOLVE_IN_ROOT` emulation: resolve component by component from
/// `root`, keeping the chain of opened directories so `..` never climbs
/// above the root, and restarting absolute symlink targets at the root.
fn walk(root: BorrowedFd<'_>, rel: &Path, flags: OFlag) -> io::Result<OwnedFd> {
    let dir_flags = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
    let mut chain: Vec<OwnedFd> = Vec::new();
    let mut pending: Vec<Vec<u8>> = components(rel.as_os_str().as_bytes()).into_iter().rev().collect();
    let mut links = 0;
    fn here<'a>(chain: &'a [OwnedFd], root: BorrowedFd<'a>) -> BorrowedFd<'a> {
        chain.last().map_or(root, |f| f.as_fd())
    }
    if pending.is_empty() {
        let fd = openat_nofollow(root, OsStr::new("."), flags)?;
        return Ok(fd);
    }
    while let Some(name) = pending.pop() {
        if name == b".." {
            chain.pop();
            if pending.is_empty() {
                return Ok(openat_nofollow(here(&chain, root), OsStr::new("."), flags)?);
            }
            continue;
        }
        let last = pending.is_empty();
        let os = OsStr::from_bytes(&name);
        let attempt = if last {
            openat_nofollow(here(&chain, root), os, flags)
        } else {
            openat_nofollow(here(&chain, root), os, dir_flags)
        };
        match attempt {
            Ok(fd) if last => return Ok(fd),
            Ok(fd) => chain.push(fd),
            // ELOOP (final O_NOFOLLOW) or ENOTDIR (intermediate): maybe a symlink.
            Err(e @ (Errno::ELOOP | Errno::ENOTDIR)) => {
                let Ok(target) = nix::fcntl::readlinkat(Some(here(&chain, root).as_raw_fd()), os) else {
                    return Err(e.into());
                };
                links += 1;
                if links > MAX_SYMLINKS {
                    return Err(Errno::ELOOP.into());
                }
                let t = target.as_bytes();
                if t.starts_with(b"/") {
                    chain.clear();
                }
                pending.extend(components(t).into_iter().rev());
                if pending.is_empty() {
                    return Ok(openat_nofollow(here(&chain, root), OsStr::new("."), flags)?);
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(Errno::ENOENT.into())
}

/// Path components, without empty ones and `.`.
fn components(b: &[u8]) -> Vec<Vec<u8>> {
    b.split(|&c| c == b'/')
        .filter(|c| !c.is_empty() && *c != b".")
        .map(<[u8]>::to_vec)
        .collect()
}

/// What kind of file a mode is, for messages.
pub fn kind_name(mode: u32) -> &'static str {
    match SFlag::from_bits_truncate(mode & SFlag::S_IFMT.bits()) {
        SFlag::S_IFREG => "regular file",
        SFlag::S_IFDIR => "directory",
        SFlag::S_IFIFO => "FIFO",
        SFlag::S_IFSOCK => "socket",
        SFlag::S_IFCHR => "character device",
        SFlag::S_IFBLK => "block device",
        SFlag::S_IFLNK => "symlink",
        _ => "special file",
    }
}

/// Classify an open error: `ENXIO` is what opening a socket (or a device
/// without a driver) gives, which is a wrong file type, not an I/O fault.
pub fn open_error(e: io::Error) -> ReadError {
    if e.raw_os_error() == Some(nix::libc::ENXIO) {
        ReadError::NotRegular("socket or device")
    } else {
        ReadError::Io(e)
    }
}

/// Read an open descriptor: regular files only, at most `limit` bytes.
pub fn read_fd(fd: OwnedFd, limit: usize) -> Result<Vec<u8>, ReadError> {
    let st = nix::sys::stat::fstat(fd.as_raw_fd())?;
    if st.st_mode & SFlag::S_IFMT.bits() != SFlag::S_IFREG.bits() {
        return Err(ReadError::NotRegular(kind_name(st.st_mode)));
    }
    let mut f = std::fs::File::from(fd);
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    // A plain read loop: procfs and kernfs report size 0 or 4096, so sizing
    // the buffer from st_size is pointless, and the limit is checked as we go.
    loop {
        match f.read(&mut chunk) {
            Ok(0) => return Ok(buf),
            Ok(n) => {
                if buf.len() + n > limit {
                    return Err(ReadError::TooLarge(limit));
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
}

/// Turn an `O_PATH` descriptor into a readable one, but only for a regular
/// file: its type is checked with `fstat` on the `O_PATH` descriptor first,
/// so a device node is never opened (opening one can have effects: a
/// watchdog arms, a tape rewinds) and a FIFO never blocks. The file is then
/// reopened through `/proc/self/fd/N`, which names this very inode: nothing
/// can be swapped in between the check and the open.
pub fn reopen_regular(fd: OwnedFd) -> Result<OwnedFd, ReadError> {
    let st = nix::sys::stat::fstat(fd.as_raw_fd())?;
    if st.st_mode & SFlag::S_IFMT.bits() != SFlag::S_IFREG.bits() {
        return Err(ReadError::NotRegular(kind_name(st.st_mode)));
    }
    let proc_path = format!("/proc/self/fd/{}", fd.as_raw_fd());
    let new = nix::fcntl::open(proc_path.as_str(), read_flags(), Mode::empty())?;
    // SAFETY: open returned a fresh descriptor we own.
    Ok(unsafe { OwnedFd::from_raw_fd(new) })
}

/// The flags of the first, type-checking open of [`reopen_regular`].
pub fn path_flags() -> OFlag {
    OFlag::O_PATH | OFlag::O_CLOEXEC
}

/// Read a user-named file (snapshot, rules, plan) by its own path: the same
/// checks as a contained read (regular file, non-blocking open, bounded).
/// The path itself is the user's choice, so symlinks in it are followed.
pub fn read_user_file(path: &Path, limit: usize) -> Result<Vec<u8>, ReadError> {
    let fd = nix::fcntl::open(path, read_flags(), Mode::empty()).map_err(|e| open_error(e.into()))?;
    // SAFETY: open returned a fresh descriptor we own.
    read_fd(unsafe { OwnedFd::from_raw_fd(fd) }, limit)
}

/// The read-only open flags, for callers of [`open_beneath`].
pub fn file_flags() -> OFlag {
    read_flags()
}

/// The flags to open a directory for listing.
pub fn dir_flags() -> OFlag {
    OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC
}

/// Open `name` (one component) in an open directory, never following a symlink.
pub fn open_child(dir: BorrowedFd<'_>, name: &OsStr, flags: OFlag) -> io::Result<OwnedFd> {
    if name.as_bytes().contains(&b'/') || name == ".." {
        return Err(Errno::EINVAL.into());
    }
    Ok(openat_nofollow(dir, name, flags | OFlag::O_CLOEXEC)?)
}

/// Normal components only (`..` and `.` dropped), for messages.
pub fn display_join(base: &Path, abs: &Path) -> PathBuf {
    let mut p = base.to_path_buf();
    for c in abs.components() {
        if let Component::Normal(n) = c {
            p.push(n);
        }
    }
    p
}
