//! Directory listings and extended attributes, read under the [`Root`].
//!
//! The owners module needs two reads the scanner did not: the names in a
//! unit directory (`/etc/systemd/system`, its `*.d/` drop-ins) and the
//! extended attributes systemd puts on its cgroup directories
//! (`trusted.invocation_id`, `user.delegate`, ...). Both open the directory
//! through [`Root::open_contained`], the one containment primitive, so a
//! symlink cannot lead them out of a captured root.

use std::fs::File;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use xattr::FileExt;

use super::{HostError, Root, contain};
use crate::model::path as cgpath;

impl Root {
    /// Names of the entries of a directory, sorted; `None` when it does not exist.
    ///
    /// Entries whose names are not UTF-8 are escaped the way cgroup names are.
    pub fn list_names(&self, abs: &str) -> Result<Option<Vec<String>>, HostError> {
        let entries = match self.list_dir(abs) {
            Ok(e) => e,
            Err(HostError::Io { err: source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        let mut names: Vec<String> = entries
            .iter()
            .map(|(name, _)| cgpath::from_bytes(name.as_bytes()))
            .collect();
        names.sort();
        Ok(Some(names))
    }

    /// The target of a symbolic link (`/proc/1/exe`), read with `readlinkat`
    /// on its directory opened through [`Root::open_contained`]; `None` when
    /// the link does not exist or cannot be read (a kernel thread's `exe`, a
    /// capture that did not keep it). The target is text, never followed.
    pub fn read_link(&self, abs: &str) -> Result<Option<String>, HostError> {
        let (Some(dir), Some(name)) = (cgpath::parent(abs), abs.rsplit('/').next()) else {
            return Ok(None);
        };
        let fd = match self.open_contained(Path::new(dir), contain::dir_flags()) {
            Ok(fd) => fd,
            Err(HostError::Io { err, .. }) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        match nix::fcntl::readlinkat(Some(std::os::fd::AsRawFd::as_raw_fd(&fd)), name) {
            Ok(t) => Ok(Some(cgpath::from_bytes(t.as_bytes()))),
            Err(_) => Ok(None),
        }
    }

    /// Extended attributes of a directory whose names start with one of
    /// `prefixes`, with their values (trimmed). Attributes that cannot be
    /// read (no permission for `trusted.*`, a filesystem without xattrs) are
    /// left out: they are evidence, never required.
    pub fn xattrs(&self, abs: &str, prefixes: &[&str]) -> Result<Vec<(String, String)>, HostError> {
        let dir = File::from(self.open_contained(Path::new(abs), contain::dir_flags())?);
        let Ok(names) = dir.list_xattr() else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for name in names {
            let name = name.to_string_lossy().into_owned();
            if !prefixes.iter().any(|pre| name.starts_with(pre)) {
                continue;
            }
            if let Ok(Some(v)) = dir.get_xattr(&name) {
                out.push((name, cgpath::from_bytes(&v).trim().to_string()));
            }
        }
        out.sort();
        Ok(out)
    }
}
