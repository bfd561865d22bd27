//! Directory listings and extended attributes, read under the [`Root`].
//!
//! The owners module needs two reads the scanner did not: the names in a
//! unit directory (`/etc/systemd/system`, its `*.d/` drop-ins) and the
//! extended attributes systemd puts on its cgroup directories
//! (`trusted.invocation_id`, `user.delegate`, ...). Both go through the same
//! containment check as every other read, so a symlink cannot lead them out
//! of a captured root.

use std::fs;
use std::io;

use super::{HostError, Root};
use crate::model::path as cgpath;

impl Root {
    /// Names of the entries of a directory, sorted; `None` when it does not exist.
    ///
    /// Entries whose names are not UTF-8 are escaped the way cgroup names are.
    pub fn list_dir(&self, abs: &str) -> Result<Option<Vec<String>>, HostError> {
        let p = match self.contained(abs) {
            Ok(p) => p,
            Err(HostError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let rd = match fs::read_dir(&p) {
            Ok(rd) => rd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(HostError::Io { path: p, source }),
        };
        let mut names: Vec<String> = rd
            .filter_map(|e| e.ok())
            .map(|e| cgpath::from_bytes(e.file_name().as_encoded_bytes()))
            .collect();
        names.sort();
        Ok(Some(names))
    }

    /// Extended attributes of a file or directory whose names start with one
    /// of `prefixes`, with their values (lossy UTF-8, trimmed). Attributes
    /// that cannot be read (no permission for `trusted.*`, a filesystem
    /// without xattrs) are left out: they are evidence, never required.
    pub fn xattrs(&self, abs: &str, prefixes: &[&str]) -> Result<Vec<(String, String)>, HostError> {
        let p = self.contained(abs)?;
        let names = match xattr::list(&p) {
            Ok(n) => n,
            Err(_) => return Ok(Vec::new()),
        };
        let mut out = Vec::new();
        for name in names {
            let name = name.to_string_lossy().into_owned();
            if !prefixes.iter().any(|pre| name.starts_with(pre)) {
                continue;
            }
            if let Ok(Some(v)) = xattr::get(&p, &name) {
                out.push((name, cgpath::from_bytes(&v).trim().to_string()));
            }
        }
        out.sort();
        Ok(out)
    }
}
