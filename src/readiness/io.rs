//! The readiness scan's only access to the host: bounded, counted, contained.
//!
//! Every path is resolved under the scan's [`Root`] and, on a captured tree,
//! must stay inside it after symlinks are followed (the same rule as
//! `Root::read_text`). Only regular files are read (a FIFO would block, a
//! device could be endless), never more than [`Limits::max_file_bytes`] at a
//! time, and every read is counted so the audit can say what the scan cost.
//! Directory walks never follow symlinks.
//!
//! All byte reads funnel through [`read_range`], one small function, so it
//! can switch to the host module's hardened read primitive when that lands.

use std::fs;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::host::Root;
use crate::model::Diagnostic;

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
    super::runtimes::STORES.iter().find_map(|(_, dir, sub)| {
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
pub struct Reader<'a> {
    root: &'a Root,
    canonical: Option<PathBuf>,
    /// The bounds in force.
    pub limits: Limits,
    stats: Stats,
    diags: Vec<Diagnostic>,
    /// Canonical path of each image layer root seen (one resolution per layer).
    layer_roots: std::collections::HashMap<String, PathBuf>,
}

/// Read at most `len` bytes at `offset` of a regular file, without blocking
/// on FIFOs. Returns the bytes and whether the file had more.
fn read_range(path: &Path, offset: u64, len: u64) -> io::Result<(Vec<u8>, bool)> {
    let mut f = fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NONBLOCK | nix::libc::O_NOCTTY)
        .open(path)?;
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

impl<'a> Reader<'a> {
    /// A reader over `root`.
    pub fn new(root: &'a Root, limits: Limits) -> Reader<'a> {
        let canonical = if root.is_live() {
            None
        } else {
            fs::canonicalize(root.path("/")).ok()
        };
        Reader {
            root,
            canonical,
            limits,
            stats: Stats::default(),
            diags: Vec::new(),
            layer_roots: std::collections::HashMap::new(),
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

    /// The root-prefixed path, or `None` (with a diagnostic) when symlinks
    /// lead out of the root. Absent paths yield `None` silently.
    fn resolve(&mut self, abs: &str) -> Option<PathBuf> {
        let p = self.root.path(abs);
        let layer = layer_split(abs);
        let base = match (&self.canonical, &layer) {
            (Some(b), _) => b.clone(),
            (None, Some(_)) => PathBuf::from("/"),
            (None, None) => return Some(p),
        };
        // Most candidate paths do not exist: one stat says so, where
        // canonicalize would read every component's link first.
        if fs::symlink_metadata(&p).is_err_and(|e| e.kind() == io::ErrorKind::NotFound) {
            return None;
        }
        let c = match fs::canonicalize(&p) {
            Ok(c) => c,
            Err(e) if matches!(e.kind(), io::ErrorKind::NotFound | io::ErrorKind::NotADirectory) => {
                return None;
            }
            Err(e) => {
                self.note(&p, format!("cannot resolve: {e}"));
                return None;
            }
        };
        if !c.starts_with(&base) {
            self.note(&p, "resolves outside the scanned root: skipped");
            return None;
        }
        // Inside an image layer a symlink points into the image's own file
        // system, not the host's: skip the path rather than read a host file.
        if let Some((layer_root, rest)) = layer
            && rest.contains('/')
        {
            let lr = match self.layer_roots.get(&layer_root) {
                Some(lr) => lr.clone(),
                None => {
                    let lr = fs::canonicalize(self.root.path(&layer_root)).ok()?;
                    self.layer_roots.insert(layer_root, lr.clone());
                    lr
                }
            };
            if c != lr.join(rest.trim_start_matches('/')) {
                self.stats.skipped += 1;
                return None;
            }
        }
        Some(c)
    }

    /// Up to `len` bytes at `offset`; `None` if absent or unreadable (noted).
    pub fn read_at(&mut self, abs: &str, offset: u64, len: u64) -> Option<Vec<u8>> {
        let p = self.resolve(abs)?;
        let len = len.min(self.limits.max_file_bytes);
        match read_range(&p, offset, len) {
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

    /// A whole (text) file up to the per-file limit, lossily decoded.
    pub fn text(&mut self, abs: &str) -> Option<String> {
        let max = self.limits.max_file_bytes;
        self.read_at(abs, 0, max)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
    }

    /// The entries of a directory, sorted by name, without following symlinks;
    /// empty if absent. At most [`Limits::max_dir_entries`].
    pub fn list(&mut self, abs: &str) -> Vec<Entry> {
        let Some(p) = self.resolve(abs) else {
            return Vec::new();
        };
        let rd = match fs::read_dir(&p) {
            Ok(rd) => rd,
            Err(e) if matches!(e.kind(), io::ErrorKind::NotFound | io::ErrorKind::NotADirectory) => {
                return Vec::new();
            }
            Err(e) => {
                self.note(&p, format!("cannot list: {e}"));
                return Vec::new();
            }
        };
        self.stats.dirs_listed += 1;
        let mut out = Vec::new();
        for e in rd.flatten() {
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
            let Ok(ft) = e.file_type() else { continue };
            let kind = if ft.is_symlink() {
                Kind::Link
            } else if ft.is_dir() {
                Kind::Dir
            } else if ft.is_file() {
                Kind::File
            } else {
                Kind::Other
            };
            let (exec, size) = match (kind, e.metadata()) {
                (Kind::File, Ok(m)) => (m.permissions().mode() & 0o111 != 0, m.len()),
                _ => (false, 0),
            };
            out.push(Entry {
                name: e.file_name().to_string_lossy().into_owned(),
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
    /// Whether `abs` itself is a symlink (walks skip linked directories such
    /// as a merged-usr `/bin`, which would be scanned twice).
    pub fn is_symlink(&self, abs: &str) -> bool {
        fs::symlink_metadata(self.root.path(abs)).is_ok_and(|m| m.file_type().is_symlink())
    }
}

impl Reader<'_> {
    /// Whether `abs` exists (without following a final symlink).
    pub fn exists(&self, abs: &str) -> bool {
        fs::symlink_metadata(self.root.path(abs)).is_ok()
    }

    /// Record something skipped at a host path.
    pub fn note_abs(&mut self, abs: &str, message: impl Into<String>) {
        let p = self.root.path(abs);
        self.note(&p, message);
    }
}
