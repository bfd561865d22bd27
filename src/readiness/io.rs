//! The readiness scan's only access to the host: bounded, counted, contained.
//!
//! Every path is opened through the scan's [`Root::open_contained`], the
//! host module's one containment primitive (`openat2` `RESOLVE_IN_ROOT`, or
//! the `O_NOFOLLOW` walk on old kernels): symlinks resolve as if the root
//! were `/`, so nothing outside the scanned root is ever read. Inside an
//! image layer no symlink is followed at all (a link there points into the
//! image's own file system, not the host's). Only regular files are read (a
//! FIFO would block, a device could be endless), never more than
//! [`Limits::max_file_bytes`] at a time, and every read is counted so the
//! audit can say what the scan cost. Directory walks never follow symlinks.

use std::ffi::OsStr;
use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use nix::fcntl::OFlag;

use crate::host::{HostError, Root, contain};
use crate::model::Diagnostic;
use crate::model::path as cgpath;

use super::Stats;

/// Bounds on the work of one readiness scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most bytes read from one file in one read.
    pub max_file_bytes: u64,
    /// Most entries taken from one directory listing.
    pub max_dir_entries: usize,
    /// Most image layers or snapshots looked into, per store.
    pub max_layers: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_file_bytes: 8 << 20,
            max_dir_entries: 20_000,
            max_layers: 5_000,
        }
    }
}

/// Split a path inside an image layer into the layer's root and the rest
/// (`/var/lib/docker/overlay2/ID/diff`, `/opt/java/release`).
fn layer_split(abs: &str) -> Option<(String, &str)> {
    super::stores::STORES.iter().find_map(|(_, dir, sub)| {
        let rest = abs.strip_prefix(dir)?.strip_prefix('/')?;
        let (id, rest) = rest.split_once('/')?;
        let rest = rest.strip_prefix(sub)?;
        (rest.is_empty() || rest.starts_with('/')).then(|| (format!("{dir}/{id}/{sub}"), rest))
    })
}

/// Kind of a directory entry (symlinks are not followed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A directory.
    Dir,
    /// A regular file.
    File,
    /// A symlink (not followed in walks).
    Link,
    /// Anything else (FIFO, socket, device).
    Other,
}

/// One entry of a listing.
#[derive(Debug, Clone)]
pub struct Entry {
    /// File name.
    pub name: String,
    /// Kind.
    pub kind: Kind,
    /// An execute bit is set (regular files).
    pub exec: bool,
    /// Size in bytes (regular files).
    pub size: u64,
}

/// Reads files under a root within [`Limits`], counting what it does.
#[derive(Debug)]
pub struct Reader<'a> {
    root: &'a Root,
    /// The bounds in force.
    pub limits: Limits,
    stats: Stats,
    diags: Vec<Diagnostic>,
}

/// Read at most `len` bytes at `offset` of an open regular file (opened
/// non-blocking, so a FIFO never hangs). Returns the bytes and whether the
/// file had more.
fn read_range(fd: OwnedFd, offset: u64, len: u64) -> io::Result<(Vec<u8>, bool)> {
    let mut f = File::from(fd);
    let meta = f.metadata()?;
    if !meta.is_file() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "not a regular file"));
    }
    if offset > 0 {
        f.seek(SeekFrom::Start(offset))?;
    }
    let mut buf = Vec::with_capacity(len.min(meta.len().saturating_sub(offset)) as usize);
    f.take(len).read_to_end(&mut buf)?;
    Ok((buf, meta.len() > offset + len))
}

/// `lstat` of one name in an open directory (the name itself, never a link's target).
fn lstat_child(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<fs::Metadata> {
    File::from(contain::open_child(dir, name, OFlag::O_PATH)?).metadata()
}

/// The kernel's error behind a host error.
fn io_of(e: HostError) -> io::Error {
    match e {
        HostError::Io { err: source, .. } => source,
        other => io::Error::other(other.to_string()),
    }
}

impl<'a> Reader<'a> {
    /// A reader over `root`.
    pub fn new(root: &'a Root, limits: Limits) -> Reader<'a> {
        Reader {
            root,
            limits,
            stats: Stats::default(),
            diags: Vec::new(),
        }
    }

    /// Counters and diagnostics, when the scan is done.
    pub fn finish(self) -> (Stats, Vec<Diagnostic>) {
        (self.stats, self.diags)
    }

    /// Count a layer looked into.
    pub fn count_layer(&mut self) {
        self.stats.layers += 1;
    }

    /// Record something unreadable.
    pub fn note(&mut self, path: &Path, message: impl Into<String>) {
        self.stats.skipped += 1;
        self.diags.push(Diagnostic {
            path: path.display().to_string(),
            message: message.into(),
        });
    }

    /// Open `abs` under the root with `flags`: through
    /// [`Root::open_contained`], or inside an image layer component by
    /// component with no symlink followed. Absent paths are `Err` NotFound.
    fn open_raw(&self, abs: &str, flags: OFlag) -> io::Result<OwnedFd> {
        if let Some((layer_root, rest)) = layer_split(abs)
            && rest.contains('/')
        {
            let mut fd = self
                .root
                .open_contained(Path::new(&cgpath::to_os(&layer_root)), contain::dir_flags())
                .map_err(io_of)?;
            let parts: Vec<&str> = rest.split('/').filter(|c| !c.is_empty()).collect();
            for (i, part) in parts.iter().enumerate() {
                let last = i + 1 == parts.len();
                let f = if last { flags } else { contain::dir_flags() };
                let name = cgpath::to_os(part);
                fd = contain::open_child(fd.as_fd(), &name, f).map_err(|e| {
                    // O_DIRECTORY on a link says ENOTDIR: name the link as such.
                    match lstat_child(fd.as_fd(), &name) {
                        Ok(m) if m.file_type().is_symlink() => io::Error::from_raw_os_error(nix::libc::ELOOP),
                        _ => e,
                    }
                })?;
            }
            return Ok(fd);
        }
        self.root
            .open_contained(Path::new(&cgpath::to_os(abs)), flags)
            .map_err(io_of)
    }

    /// [`Self::open_raw`], `None` when absent; a path that cannot be opened
    /// (a symlink in an image layer, a magic link, no permission) is counted
    /// as skipped, with a diagnostic outside image layers.
    fn open(&mut self, abs: &str, flags: OFlag) -> Option<OwnedFd> {
        match self.open_raw(abs, flags) {
            Ok(fd) => Some(fd),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) if e.raw_os_error() == Some(nix::libc::ENOTDIR) => None,
            Err(e) if e.raw_os_error() == Some(nix::libc::ELOOP) && layer_split(abs).is_some() => {
                // A symlink inside an image layer: skip rather than read a host file.
                self.stats.skipped += 1;
                None
            }
            Err(e) => {
                let p = self.root.path(abs);
                self.note(&p, format!("cannot open: {e}"));
                None
            }
        }
    }

    /// Open a regular file for reading: first `O_PATH` (nothing of the file
    /// is opened), its type checked, then reopened (see
    /// [`contain::reopen_regular`]); a device, FIFO or socket is skipped
    /// with a diagnostic, never opened.
    fn open_regular(&mut self, abs: &str) -> Option<OwnedFd> {
        let fd = self.open(abs, contain::path_flags())?;
        match contain::reopen_regular(fd) {
            Ok(fd) => Some(fd),
            Err(contain::ReadError::NotRegular(kind)) => {
                self.note_abs(abs, format!("not a regular file ({kind}): not opened"));
                None
            }
            Err(contain::ReadError::Io(e)) => {
                self.note_abs(abs, format!("cannot open: {e}"));
                None
            }
            Err(contain::ReadError::TooLarge(_)) => None,
        }
    }

    /// Up to `len` bytes at `offset`; `None` if absent or unreadable (noted).
    pub fn read_at(&mut self, abs: &str, offset: u64, len: u64) -> Option<Vec<u8>> {
        let fd = self.open_regular(abs)?;
        let p = self.root.path(abs);
        let len = len.min(self.limits.max_file_bytes);
        match read_range(fd, offset, len) {
            Ok((b, more)) => {
                self.stats.files_read += 1;
                self.stats.bytes_read += b.len() as u64;
                if more && len >= self.limits.max_file_bytes {
                    self.stats.truncated += 1;
                }
                Some(b)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => {
                self.note(&p, format!("cannot read: {e}"));
                None
            }
        }
    }

    /// An open regular file for many bounded reads (a package database read
    /// page by page), counted as one file read; the caller reports the bytes
    /// it reads with [`Self::count_bytes`]. `None` if absent or unreadable.
    pub fn open_file(&mut self, abs: &str) -> Option<File> {
        let fd = self.open_regular(abs)?;
        let f = File::from(fd);
        match f.metadata() {
            Ok(m) if m.is_file() => {
                self.stats.files_read += 1;
                Some(f)
            }
            Ok(_) => {
                self.note_abs(abs, "not a regular file");
                None
            }
            Err(e) => {
                self.note_abs(abs, format!("cannot stat: {e}"));
                None
            }
        }
    }

    /// Add bytes read through a file from [`Self::open_file`].
    pub fn count_bytes(&mut self, n: u64) {
        self.stats.bytes_read += n;
    }

    /// A whole (text) file up to the per-file limit, lossily decoded.
    pub fn text(&mut self, abs: &str) -> Option<String> {
        let max = self.limits.max_file_bytes;
        self.read_at(abs, 0, max)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
    }

    /// The entries of a directory, sorted by name, without following symlinks;
    /// empty if absent. At most [`Limits::max_dir_entries`].
    pub fn list(&mut self, abs: &str) -> Vec<Entry> {
        let Some(fd) = self.open(abs, contain::dir_flags()) else {
            return Vec::new();
        };
        let p = self.root.path(abs);
        let names = match list_names(&fd) {
            Ok(n) => n,
            Err(e) => {
                self.note(&p, format!("cannot list: {e}"));
                return Vec::new();
            }
        };
        self.stats.dirs_listed += 1;
        let mut out = Vec::new();
        for name in names {
            if out.len() >= self.limits.max_dir_entries {
                self.note(
                    &p,
                    format!(
                        "more than {} entries: the rest skipped",
                        self.limits.max_dir_entries
                    ),
                );
                break;
            }
            let Ok(m) = lstat_child(fd.as_fd(), &name) else {
                continue;
            };
            let ft = m.file_type();
            let kind = if ft.is_symlink() {
                Kind::Link
            } else if ft.is_dir() {
                Kind::Dir
            } else if ft.is_file() {
                Kind::File
            } else {
                Kind::Other
            };
            let (exec, size) = match kind {
                Kind::File => (m.permissions().mode() & 0o111 != 0, m.len()),
                _ => (false, 0),
            };
            out.push(Entry {
                name: cgpath::from_bytes(name.as_bytes()),
                kind,
                exec,
                size,
            });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    /// Names of the subdirectories of `abs` (not symlinks).
    pub fn subdirs(&mut self, abs: &str) -> Vec<String> {
        self.list(abs)
            .into_iter()
            .filter(|e| e.kind == Kind::Dir)
            .map(|e| e.name)
            .collect()
    }

    /// Names of the regular files of `abs` whose name ends with `suffix`.
    pub fn files_ending(&mut self, abs: &str, suffix: &str) -> Vec<String> {
        self.list(abs)
            .into_iter()
            .filter(|e| e.kind == Kind::File && e.name.ends_with(suffix))
            .map(|e| e.name)
            .collect()
    }

    /// Absolute paths of the files of `dir` ending with `suffix`.
    pub fn paths_ending(&mut self, dir: &str, suffix: &str) -> Vec<String> {
        self.files_ending(dir, suffix)
            .into_iter()
            .map(|f| join(dir, &f))
            .collect()
    }

    /// A configuration file and its drop-in directory's `*suffix` files,
    /// in the order the programs read them (main file first).
    pub fn with_dropins(&mut self, main: &str, dir: &str, suffix: &str) -> Vec<String> {
        let mut files = vec![main.to_string()];
        files.extend(self.paths_ending(dir, suffix));
        files
    }
}

/// Join an absolute directory and a name.
pub fn join(dir: &str, name: &str) -> String {
    if dir.ends_with('/') {
        format!("{dir}{name}")
    } else {
        format!("{dir}/{name}")
    }
}

impl Reader<'_> {
    /// `lstat` of `abs` under the root: its directory opened contained, the
    /// last name not followed.
    fn lstat(&self, abs: &str) -> Option<fs::Metadata> {
        let (dir, name) = abs.trim_end_matches('/').rsplit_once('/')?;
        let dir = if dir.is_empty() { "/" } else { dir };
        let fd = self.open_raw(dir, contain::dir_flags()).ok()?;
        lstat_child(fd.as_fd(), &cgpath::to_os(name)).ok()
    }

    /// Whether `abs` itself is a symlink (walks skip linked directories such
    /// as a merged-usr `/bin`, which would be scanned twice).
    pub fn is_symlink(&self, abs: &str) -> bool {
        self.lstat(abs).is_some_and(|m| m.file_type().is_symlink())
    }

    /// Whether `abs` exists (without following a final symlink).
    pub fn exists(&self, abs: &str) -> bool {
        self.lstat(abs).is_some()
    }

    /// Whether `abs` is an overlayfs whiteout: a character device 0/0.
    pub fn is_char_whiteout(&self, abs: &str) -> bool {
        use std::os::unix::fs::{FileTypeExt, MetadataExt};
        self.lstat(abs)
            .is_some_and(|m| m.file_type().is_char_device() && m.rdev() == 0)
    }

    /// Whether the directory `abs` is an overlayfs opaque directory
    /// (`trusted.overlay.opaque=y`, or `user.overlay.opaque=y` rootless).
    pub fn is_opaque_dir(&self, abs: &str) -> bool {
        let Ok(fd) = self.open_raw(abs, contain::dir_flags()) else {
            return false;
        };
        let f = File::from(fd);
        ["trusted.overlay.opaque", "user.overlay.opaque"]
            .iter()
            .any(|k| xattr::FileExt::get_xattr(&f, k).ok().flatten().as_deref() == Some(b"y".as_slice()))
    }

    /// Record something skipped at a host path.
    pub fn note_abs(&mut self, abs: &str, message: impl Into<String>) {
        let p = self.root.path(abs);
        self.note(&p, message);
    }
}

/// The names in an open directory (without `.` and `..`), unsorted.
fn list_names(fd: &OwnedFd) -> io::Result<Vec<std::ffi::OsString>> {
    let dup = fd.try_clone()?;
    let mut d = nix::dir::Dir::from_fd(std::os::fd::IntoRawFd::into_raw_fd(dup))?;
    let mut out = Vec::new();
    for e in d.iter() {
        let e = e?;
        let name = e.file_name().to_bytes();
        if name != b"." && name != b".." {
            out.push(OsStr::from_bytes(name).to_os_string());
        }
    }
    Ok(out)
}
