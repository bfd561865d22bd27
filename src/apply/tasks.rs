//! What the executor needs besides the [`Target`] file calls: where a task
//! is, whose child a process is, who owns a file.
//!
//! Why a second trait: the coordinator's [`Target`] is the differential
//! interface (file calls only). These queries are answered from `/proc` on
//! the kernel and from the model in the simulator; the executor uses them to
//! record what was there before a move and to verify it afterwards.

use nix::errno::Errno;

use super::step::UidGid;
use super::target::Target;
use crate::model::{Pid, Tid};

/// A cgroup2 tree with its tasks. Paths are relative to the cgroup2 mount.
pub trait Host: Target {
    /// The cgroup2 path of a thread (the main thread, `pid.main_thread()`: the process). `ESRCH` when it is gone.
    fn cgroup_of_task(&self, pid: Pid, tid: Tid) -> Result<String, Errno>;
    /// The parent process, when known (to find children forked during a move).
    fn parent_pid(&self, _pid: Pid) -> Option<Pid> {
        None
    }
    /// The process's children (every thread's), when the kernel lists them
    /// (`/proc/PID/task/TID/children`); `None` where it cannot say.
    fn child_pids(&self, _pid: Pid) -> Option<Vec<Pid>> {
        None
    }
    /// Owner of a cgroup directory or one of its files, when known.
    fn owner(&self, _path: &str, _file: Option<&str>) -> Option<UidGid> {
        None
    }
}

impl Host for super::Simulator {
    fn cgroup_of_task(&self, _pid: Pid, tid: Tid) -> Result<String, Errno> {
        self.cgroup_of(tid).ok_or(Errno::ESRCH)
    }
}
