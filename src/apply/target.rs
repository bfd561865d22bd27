//! The one interface through which `apply` changes a cgroup2 tree.
//!
//! Why a trait of file operations rather than of plan actions: the kernel's
//! interface *is* files (`mkdir`, `cgroup.procs`, `cgroup.type`,
//! `cgroup.subtree_control`, `memory.max`, …), and its verdict is an errno.
//! The simulator implements the same calls and answers with the errno the
//! kernel gives, so differential tests can run one sequence of calls on both
//! and compare results call by call.
//!
//! Paths are cgroup paths relative to the target's root, written absolute
//! (`/`, `/a`, `/a/b`), as in [`crate::plan::PlanNode::path`].

use nix::errno::Errno;

/// What a target call failed with: the kernel's errno and the path it names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {errno}")]
pub struct TargetError {
    /// The cgroup path, plus `/file` when a file was involved.
    pub path: String,
    /// The errno the kernel (or the simulator, as the kernel would) gave.
    pub errno: Errno,
}

impl TargetError {
    /// Build an error for `path` (and optionally one of its files).
    pub fn new(path: &str, file: Option<&str>, errno: Errno) -> TargetError {
        let path = match file {
            Some(f) => crate::model::path::join(path, f),
            None => path.to_string(),
        };
        TargetError { path, errno }
    }
}

/// A cgroup2 tree that actions are carried out on.
pub trait Target {
    /// `mkdir` a cgroup. `EEXIST` if it exists, `ENOENT` if the parent doesn't.
    fn mkdir(&mut self, path: &str) -> Result<(), TargetError>;
    /// `rmdir` a cgroup. `EBUSY` while it has tasks or children.
    fn rmdir(&mut self, path: &str) -> Result<(), TargetError>;
    /// Whether the cgroup exists.
    fn exists(&self, path: &str) -> bool;
    /// Names of the child cgroups, sorted.
    fn children(&self, path: &str) -> Result<Vec<String>, TargetError>;
    /// Read an interface file (`cgroup.type`, `memory.max`, …) as the kernel prints it.
    fn read(&self, path: &str, file: &str) -> Result<String, TargetError>;
    /// Write one value to an interface file, as `echo VALUE > FILE` does
    /// (one `write(2)`). Moving a process is a write of its PID to
    /// `cgroup.procs`, a thread a write of its TID to `cgroup.threads`.
    fn write(&mut self, path: &str, file: &str, value: &str) -> Result<(), TargetError>;
    /// Write a value, then read the file back (what the executor verifies
    /// against). The kernel target does both through one open file.
    fn write_read(&mut self, path: &str, file: &str, value: &str) -> Result<String, TargetError> {
        self.write(path, file, value)?;
        self.read(path, file)
    }
    /// Change the owner of the cgroup directory (`file = None`) or one of its files.
    fn chown(&mut self, path: &str, file: Option<&str>, uid: u32, gid: u32) -> Result<(), TargetError>;
}
