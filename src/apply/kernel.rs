//! The kernel [`Target`]: a cgroup2 mount, driven through its files.
//!
//! Paths are relative to the mount (`/` is the mount's root cgroup); the
//! executor maps plan paths under `--target DIR` onto them. Every call is one
//! system call on one file, so its errno is the kernel's verdict, which is what
//! the journal records and what the simulator is compared against.

use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;

use super::error::ApplyError;
use super::step::UidGid;
use super::target::{Target, TargetError};
use super::tasks::Host;
use crate::model::{Pid, Tid};

/// `CGROUP2_SUPER_MAGIC` from `<linux/magic.h>`.
pub const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;

/// A cgroup2 mount on this host.
#[derive(Debug, Clone)]
pub struct KernelTarget {
    mount: PathBuf,
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

impl KernelTarget {
    /// A target over the cgroup2 mount at `mount` (checked by [`locate`]).
    pub fn new(mount: PathBuf) -> KernelTarget {
        KernelTarget { mount }
    }

    /// The mount point.
    pub fn mount(&self) -> &Path {
        &self.mount
    }

    /// The directory of a cgroup path.
    pub fn dir(&self, path: &str) -> PathBuf {
        let rel = path.trim_start_matches('/');
        if rel.is_empty() {
            self.mount.clone()
        } else {
            // Plan paths are escaped (model::path); the kernel wants the raw bytes.
            self.mount.join(crate::model::path::to_os(rel))
        }
    }

    fn file(&self, path: &str, file: &str) -> PathBuf {
        self.dir(path).join(file)
    }
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
    let prefix = format!("/{}", rel.to_string_lossy())
        .trim_end_matches('/')
        .to_string();
    let prefix = if prefix.is_empty() {
        "/".to_string()
    } else {
        prefix
    };
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
        std::fs::create_dir(self.dir(path)).map_err(|e| TargetError::new(path, None, errno_of(&e)))
    }

    fn rmdir(&mut self, path: &str) -> Result<(), TargetError> {
        std::fs::remove_dir(self.dir(path)).map_err(|e| TargetError::new(path, None, errno_of(&e)))
    }

    fn exists(&self, path: &str) -> bool {
        self.dir(path).is_dir()
    }

    fn children(&self, path: &str) -> Result<Vec<String>, TargetError> {
        let rd = std::fs::read_dir(self.dir(path)).map_err(|e| TargetError::new(path, None, errno_of(&e)))?;
        let mut v: Vec<String> = rd
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .map(|e| crate::model::path::from_bytes(e.file_name().as_encoded_bytes()))
            .collect();
        v.sort();
        Ok(v)
    }

    fn read(&self, path: &str, file: &str) -> Result<String, TargetError> {
        std::fs::read_to_string(self.file(path, file))
            .map_err(|e| TargetError::new(path, Some(file), errno_of(&e)))
    }

    fn write(&mut self, path: &str, file: &str, value: &str) -> Result<(), TargetError> {
        let err = |e: std::io::Error| TargetError::new(path, Some(file), errno_of(&e));
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .open(self.file(path, file))
            .map_err(err)?;
        // One write(2): the kernel parses each write on its own.
        f.write_all(value.as_bytes()).map_err(err)
    }

    fn chown(&mut self, path: &str, file: Option<&str>, uid: u32, gid: u32) -> Result<(), TargetError> {
        let p = match file {
            Some(f) => self.file(path, f),
            None => self.dir(path),
        };
        nix::unistd::chown(&p, Some(uid.into()), Some(gid.into()))
            .map_err(|e| TargetError::new(path, file, e))
    }
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
        let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        s.lines()
            .find_map(|l| l.strip_prefix("PPid:"))
            .and_then(|v| v.trim().parse().ok())
    }

    fn owner(&self, path: &str, file: Option<&str>) -> Option<UidGid> {
        let p = match file {
            Some(f) => self.file(path, f),
            None => self.dir(path),
        };
        std::fs::metadata(p).ok().map(|m| UidGid::new(m.uid(), m.gid()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apply::Target;
    use std::os::unix::ffi::OsStrExt;

    /// Plan paths are escaped (`\xNN`, `\\`); the directories made, written,
    /// listed and removed are the raw names. A plain directory stands in
    /// for the mount: these calls are the same on any filesystem.
    #[test]
    fn escaped_plan_names_become_the_raw_bytes() {
        let tmp = tempfile::tempdir().unwrap();
        let mut k = KernelTarget::new(tmp.path().to_path_buf());
        // A control byte, a non-UTF-8 byte, a literal `\x01` (its backslash
        // escaped) and a plain backslash.
        let names = [r"/ctl\x01x", r"/bad\xffutf8", r"/lit\\x01", r"/back\slash"];
        for n in names {
            k.mkdir(n).unwrap();
            // Cgroup files exist already; here the test makes the file.
            std::fs::write(k.dir(n).join("f"), "").unwrap();
            k.write(n, "f", "1").unwrap();
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
            b"1"
        );
        let mut listed = k.children("/").unwrap();
        listed.sort();
        let mut expect: Vec<String> = names.iter().map(|n| n[1..].to_string()).collect();
        expect.sort();
        assert_eq!(listed, expect, "listing gives the escaped names back");
        let mut walked = crate::apply::handover::walk(tmp.path());
        walked.sort();
        let mut expect: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        expect.sort();
        assert_eq!(walked, expect, "the handover's walk too");
        for n in names {
            std::fs::remove_file(k.dir(n).join("f")).unwrap();
            k.rmdir(n).unwrap();
        }
        assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
    }
}
