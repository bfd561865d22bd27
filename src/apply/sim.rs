//! An in-memory model of the cgroup v2 kernel rules: the [`Simulator`].
//!
//! Why it exists: `apply --dry-run`, the crash tests and the planner's stage
//! replay need to know what the kernel *would* answer to each call without
//! touching a host. The simulator keeps the state the kernel's verdicts depend
//! on (the tree, each cgroup's `subtree_control` and type, where every task
//! is, the values written) and answers each [`Target`] call with the success
//! or the errno that `kernel/cgroup/cgroup.c` (and the controllers' write
//! handlers) give. Each rule cites the kernel function that enforces it; the
//! differential test `tests/integration/sim_kernel.rs` runs the same calls on
//! the real kernel and compares the errnos call by call.
//!
//! Reads return the file's text without its final newline (multi-line files
//! keep their inner newlines), values normalized as the kernel prints them.
//!
//! Split: this file holds the tree, types, controllers and task placement;
//! [`files`] decides which interface files exist; [`values`] parses, checks
//! and normalizes the values written to them.

mod files;
mod values;

use std::collections::{BTreeMap, BTreeSet};

use nix::errno::Errno;

use super::step::UidGid;
use super::target::{Target, TargetError};
use crate::model::path as cgpath;
use crate::model::{Controller, Pid, Tid};

/// Whether a v2 controller is implicit (`cgrp_dfl_implicit_ss_mask`):
/// enabled everywhere, never listed or writable in `subtree_control`.
fn is_implicit(c: &str) -> bool {
    Controller::v2_named(c).is_some_and(Controller::is_implicit_on_v2)
}

/// Whether a controller may be enabled in a threaded subtree
/// (`cgrp_dfl_threaded_ss_mask`).
fn is_threaded_ctrl(c: &str) -> bool {
    Controller::is_threaded_name(c)
}

/// One cgroup's own state; what depends on tasks is computed from [`Simulator::tasks`].
#[derive(Debug, Clone, Default)]
struct Cg {
    /// `cgroup.subtree_control`.
    subtree_control: BTreeSet<String>,
    /// `threaded` was written to `cgroup.type` (one way: `cgroup_type_write`).
    threaded: bool,
    /// Values written to interface files, normalized as the kernel prints them.
    values: BTreeMap<String, String>,
    /// `chown` results: `""` for the directory, else the file name.
    owners: BTreeMap<String, UidGid>,
    /// Paths of the child cgroups (an index: the tree is `Simulator::cgroups`).
    children: BTreeSet<String>,
    /// Tids of the tasks in this cgroup (an index of `Simulator::tasks`).
    members: BTreeSet<Tid>,
    /// `nr_threaded_children`, kept by [`Simulator::set_threaded`] and [`Simulator::destroy`].
    threaded_children: usize,
}

/// A task (thread) of a live process.
#[derive(Debug, Clone)]
struct Task {
    /// Its thread group (process) id.
    pid: Pid,
    /// The cgroup it is in.
    cgroup: String,
}

/// An in-memory cgroup2 hierarchy that answers like the kernel. See the module doc.
#[derive(Debug, Clone)]
pub struct Simulator {
    /// The root's `cgroup.controllers`: controllers bound to v2.
    offered: BTreeSet<String>,
    /// Every cgroup by path (`/` is the root).
    cgroups: BTreeMap<String, Cg>,
    /// Every live task by tid (a process's leader under `pid.main_thread()`).
    tasks: BTreeMap<Tid, Task>,
    /// The tids of each live process (an index of `tasks`).
    threads_of: BTreeMap<Pid, BTreeSet<Tid>>,
    /// Kernel version; decides which version-dependent files exist.
    kernel: (u32, u32),
    /// Whether a block device uses BFQ (then `io.bfq.weight` exists).
    bfq: bool,
    /// Huge page sizes (`2MB`, `1GB`) for the `hugetlb.<size>.*` files.
    hugepage_sizes: Vec<String>,
    /// Possible CPUs and memory nodes, for `cpuset.cpus`/`cpuset.mems`.
    cpus: BTreeSet<u32>,
    mems: BTreeSet<u32>,
    /// Known block devices (`MAJ:MIN`); `None` accepts any device key.
    devices: Option<BTreeSet<String>>,
}

impl Simulator {
    /// An empty cgroup2 root whose cgroup.controllers offers these (e.g. ["cpu","memory","pids","io","cpuset","hugetlb"]).
    pub fn new(controllers: &[&str]) -> Simulator {
        let mut cgroups = BTreeMap::new();
        cgroups.insert("/".to_string(), Cg::default());
        Simulator {
            offered: controllers.iter().map(|c| c.to_string()).collect(),
            cgroups,
            tasks: BTreeMap::new(),
            threads_of: BTreeMap::new(),
            kernel: (6, 18),
            bfq: false,
            hugepage_sizes: vec!["2MB".into(), "1GB".into()],
            cpus: (0..64).collect(),
            mems: (0..4).collect(),
            devices: None,
        }
    }

    /// Seeded from a scanned host: the v2 mount's controllers, its cgroups, their subtree_control/type,
    /// and every process/thread of the snapshot at its v2 place (root when the snapshot has no v2 place for it).
    pub fn from_snapshot(snap: &crate::model::Snapshot) -> Simulator {
        seed::from_snapshot(snap)
    }

    /// A process with these threads in cgroup `path`; its main thread
    /// (`pid.main_thread()`) is added whether `tids` lists it or not.
    pub fn add_process(&mut self, pid: Pid, tids: &[Tid], path: &str) -> Result<(), TargetError> {
        if !self.cgroups.contains_key(path) {
            return Err(TargetError::new(path, None, Errno::ENOENT));
        }
        let mut all: BTreeSet<Tid> = tids.iter().copied().collect();
        all.insert(pid.main_thread());
        for tid in all {
            self.place(tid, pid, path);
        }
        Ok(())
    }

    /// The process exits: its tasks leave their cgroups; later writes of its pid/tids give ESRCH.
    pub fn exit_process(&mut self, pid: Pid) {
        for tid in self.threads_of.get(&pid).cloned().unwrap_or_default() {
            self.unplace(tid);
        }
    }

    /// A new thread appears in a process (fork during a move); it starts in the process's cgroup.
    pub fn add_thread(&mut self, pid: Pid, tid: Tid) {
        if let Some(leader) = self.tasks.get(&pid.main_thread()).cloned() {
            self.place(tid, pid, &leader.cgroup);
        }
    }

    /// A controller released by its v1 hierarchy shows up in the root's cgroup.controllers (live handover).
    pub fn offer_controller(&mut self, controller: &str) {
        self.offered.insert(controller.to_string());
    }

    /// Hand a controller back to v1 (rollback). Err(EBUSY) while any subtree_control enables it.
    ///
    /// `rebind_subsystems`: a controller can leave the default hierarchy only
    /// when no cgroup there enables it (`cgroup_ss_mask` of the root's children).
    pub fn withdraw_controller(&mut self, controller: &str) -> Result<(), TargetError> {
        if let Some((p, _)) = self
            .cgroups
            .iter()
            .find(|(_, c)| c.subtree_control.contains(controller))
        {
            return Err(TargetError::new(p, Some("cgroup.subtree_control"), Errno::EBUSY));
        }
        self.offered.remove(controller);
        Ok(())
    }

    /// Which optional files exist: e.g. io.bfq.weight only when a device uses BFQ, cpu.idle/cpu.max.burst by kernel version.
    pub fn set_kernel(&mut self, version: (u32, u32)) {
        self.kernel = version;
    }

    /// Whether a block device uses the BFQ scheduler (`io.bfq.weight` exists only then).
    pub fn set_io_scheduler_bfq(&mut self, on: bool) {
        self.bfq = on;
    }

    /// The block devices (`MAJ:MIN`) that exist; a per-device `io.*` write
    /// naming another one gives ENODEV. By default any device key is accepted.
    pub fn set_block_devices(&mut self, devices: &[&str]) {
        self.devices = Some(devices.iter().map(|d| d.to_string()).collect());
    }

    /// The possible CPUs and memory nodes (`cpuset.cpus`/`cpuset.mems`
    /// lists, e.g. `"0-15"`, `"0-1"`). By default CPUs 0-63 and nodes 0-3.
    /// A malformed list leaves the current set.
    pub fn set_cpus(&mut self, cpus: &str, mems: &str) {
        let any: BTreeSet<u32> = (0..8192).collect();
        if let Ok(c) = values::parse_list(cpus, &any, Errno::EINVAL) {
            self.cpus = c;
        }
        if let Ok(m) = values::parse_list(mems, &any, Errno::EINVAL) {
            self.mems = m;
        }
    }

    /// The huge page sizes the kernel has (`hugetlb.<size>.*` files), e.g.
    /// `["2MB", "1GB"]` (the default).
    pub fn set_hugepage_sizes(&mut self, sizes: &[&str]) {
        self.hugepage_sizes = sizes.iter().map(|s| s.to_string()).collect();
    }

    /// Build what another owner (systemd, a runtime) creates before cgmig
    /// acts: each cgroup of `nodes` with its parents, and each node's
    /// controllers enabled along its path, as `crate::plan::validate` assumes
    /// (see `plan::prebuilt`). Plans leave these to their
    /// owner, so a replay or a dry run starts from them.
    pub fn prebuild<'a>(
        &mut self,
        nodes: impl IntoIterator<Item = (&'a str, &'a [String])>,
    ) -> Result<(), TargetError> {
        let mut nodes: Vec<(&str, &[String])> = nodes.into_iter().collect();
        nodes.sort_by_key(|(p, _)| (p.matches('/').count(), *p));
        for (path, controllers) in nodes {
            let mut at = String::from("/");
            for name in path.split('/').filter(|n| !n.is_empty()) {
                let child = crate::model::path::join(&at, name);
                if !Target::exists(self, &child) {
                    Target::mkdir(self, &child)?;
                }
                at = child;
            }
            for c in controllers {
                self.enable_along(path, c)?;
            }
        }
        Ok(())
    }

    /// Enable `controller` in `subtree_control` from the root down to `path`.
    fn enable_along(&mut self, path: &str, controller: &str) -> Result<(), TargetError> {
        let mut chain = vec![path.to_string()];
        let mut cur = path;
        while let Some(parent) = crate::model::path::parent(cur) {
            chain.push(parent.to_string());
            cur = parent;
        }
        for p in chain.iter().rev() {
            let on = Target::read(self, p, "cgroup.subtree_control")?;
            if !on.split_whitespace().any(|c| c == controller) {
                Target::write(self, p, "cgroup.subtree_control", &format!("+{controller}"))?;
            }
        }
        Ok(())
    }

    /// Where a task is (cgroup path), for tests and verification.
    /// A process's place is its main thread's: `cgroup_of(pid.main_thread())`.
    pub fn cgroup_of(&self, tid: Tid) -> Option<String> {
        self.tasks.get(&tid).map(|t| t.cgroup.clone())
    }

    // ---- derived state, named after the kernel predicates they mirror ----

    fn cg(&self, path: &str) -> Option<&Cg> {
        self.cgroups.get(path)
    }

    fn is_root(path: &str) -> bool {
        path == "/"
    }

    /// `cgroup_is_threaded`: `dom_cgrp != cgrp`.
    fn is_threaded(&self, path: &str) -> bool {
        self.cg(path).is_some_and(|c| c.threaded)
    }

    /// `cgrp->dom_cgrp`: the nearest ancestor-or-self that is not threaded.
    fn dom_cgrp<'a>(&self, mut path: &'a str) -> &'a str {
        while self.is_threaded(path) {
            path = cgpath::parent(path).unwrap_or("/");
        }
        path
    }

    /// Put task `tid` of process `pid` into cgroup `path`, keeping the indexes in step.
    fn place(&mut self, tid: Tid, pid: Pid, path: &str) {
        self.unplace(tid);
        self.tasks.insert(
            tid,
            Task {
                pid,
                cgroup: path.to_string(),
            },
        );
        self.threads_of.entry(pid).or_default().insert(tid);
        if let Some(c) = self.cgroups.get_mut(path) {
            c.members.insert(tid);
        }
    }

    /// The task is gone.
    fn unplace(&mut self, tid: Tid) {
        if let Some(t) = self.tasks.remove(&tid) {
            if let Some(c) = self.cgroups.get_mut(&t.cgroup) {
                c.members.remove(&tid);
            }
            if let Some(set) = self.threads_of.get_mut(&t.pid) {
                set.remove(&tid);
                if set.is_empty() {
                    self.threads_of.remove(&t.pid);
                }
            }
        }
    }

    /// Add a cgroup under its (existing) parent, keeping the children index.
    fn create(&mut self, path: &str) {
        self.cgroups.insert(path.to_string(), Cg::default());
        if let Some(parent) = cgpath::parent(path)
            && let Some(p) = self.cgroups.get_mut(parent)
        {
            p.children.insert(path.to_string());
        }
    }

    /// Remove an empty leaf cgroup.
    fn destroy(&mut self, path: &str) {
        let was_threaded = self.cgroups.remove(path).is_some_and(|c| c.threaded);
        if let Some(parent) = cgpath::parent(path)
            && let Some(p) = self.cgroups.get_mut(parent)
        {
            p.children.remove(path);
            if was_threaded {
                p.threaded_children -= 1;
            }
        }
    }

    /// Mark a cgroup threaded (`dom_cgrp` = parent's domain; the parent's
    /// `nr_threaded_children` goes up).
    fn set_threaded(&mut self, path: &str) {
        let Some(c) = self.cgroups.get_mut(path) else {
            return;
        };
        if c.threaded {
            return;
        }
        c.threaded = true;
        if let Some(p) = cgpath::parent(path).and_then(|p| self.cgroups.get_mut(p)) {
            p.threaded_children += 1;
        }
    }

    /// The cgroup and all below it: a key range, since every descendant's
    /// path starts with `path/` (and `'0'` is the byte after `'/'`).
    fn subtree(&self, path: &str) -> Box<dyn Iterator<Item = (&String, &Cg)> + '_> {
        if path == "/" {
            return Box::new(self.cgroups.iter());
        }
        let below = self.cgroups.range::<String, _>((
            std::ops::Bound::Included(format!("{path}/")),
            std::ops::Bound::Excluded(format!("{path}0")),
        ));
        Box::new(self.cgroups.get_key_value(path).into_iter().chain(below))
    }

    /// `cgroup_has_tasks`.
    fn has_tasks(&self, path: &str) -> bool {
        self.cg(path).is_some_and(|c| !c.members.is_empty())
    }

    /// `cgroup_is_populated`: tasks in the cgroup or below.
    fn is_populated(&self, path: &str) -> bool {
        self.subtree(path).any(|(_, c)| !c.members.is_empty())
    }

    /// Direct children's paths.
    fn child_paths(&self, path: &str) -> Vec<String> {
        self.cg(path)
            .map(|c| c.children.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Direct children, without copying.
    fn child_iter<'a>(&'a self, path: &str) -> impl Iterator<Item = &'a String> + 'a {
        self.cg(path).into_iter().flat_map(|c| c.children.iter())
    }

    /// `cgrp->nr_threaded_children`.
    fn nr_threaded_children(&self, path: &str) -> usize {
        self.cg(path).map_or(0, |c| c.threaded_children)
    }

    /// `cgrp->nr_populated_domain_children`.
    fn nr_populated_domain_children(&self, path: &str) -> usize {
        self.child_iter(path)
            .filter(|c| !self.is_threaded(c) && self.is_populated(c))
            .count()
    }

    fn has_domain_controllers(&self, path: &str) -> bool {
        self.cg(path)
            .is_some_and(|c| c.subtree_control.iter().any(|s| !is_threaded_ctrl(s)))
    }

    fn has_threaded_controllers(&self, path: &str) -> bool {
        self.cg(path)
            .is_some_and(|c| c.subtree_control.iter().any(|s| is_threaded_ctrl(s)))
    }

    /// `cgroup_is_mixable`: only the root.
    fn is_mixable(path: &str) -> bool {
        Self::is_root(path)
    }

    /// `cgroup_can_be_thread_root`.
    fn can_be_thread_root(&self, path: &str) -> bool {
        if Self::is_mixable(path) {
            return true;
        }
        if self.is_threaded(path) {
            return false;
        }
        self.nr_populated_domain_children(path) == 0 && !self.has_domain_controllers(path)
    }

    /// `cgroup_is_thread_root`.
    fn is_thread_root(&self, path: &str) -> bool {
        if self.is_threaded(path) {
            return false;
        }
        self.nr_threaded_children(path) > 0 || (self.has_tasks(path) && self.has_threaded_controllers(path))
    }

    /// `cgroup_is_valid_domain`.
    fn is_valid_domain(&self, path: &str) -> bool {
        if self.is_threaded(path) {
            return false;
        }
        let mut p = path;
        while let Some(parent) = cgpath::parent(p) {
            if !Self::is_mixable(parent) && self.is_thread_root(parent) {
                return false;
            }
            if self.is_threaded(parent) {
                return false;
            }
            p = parent;
        }
        true
    }

    /// `cgroup_control`: what `cgroup.controllers` shows, in subsystem order.
    fn control(&self, path: &str) -> Vec<String> {
        let set: BTreeSet<String> = match cgpath::parent(path) {
            None => self.offered.iter().filter(|c| !is_implicit(c)).cloned().collect(),
            Some(parent) => {
                let sc = self
                    .cg(parent)
                    .map(|c| c.subtree_control.clone())
                    .unwrap_or_default();
                if self.is_threaded(path) {
                    sc.into_iter().filter(|c| is_threaded_ctrl(c)).collect()
                } else {
                    sc
                }
            }
        };
        ordered(&set)
    }

    /// `cgroup.type` as `cgroup_type_show` prints it.
    fn type_name(&self, path: &str) -> &'static str {
        if self.is_threaded(path) {
            "threaded"
        } else if !self.is_valid_domain(path) {
            "domain invalid"
        } else if self.is_thread_root(path) {
            "domain threaded"
        } else {
            "domain"
        }
    }
}

mod seed;
mod tree;

/// A controller set in subsystem id order (unknown names last, sorted).
fn ordered(set: &BTreeSet<String>) -> Vec<String> {
    let mut v: Vec<String> = Controller::v2_names()
        .filter(|c| set.contains(*c))
        .map(str::to_string)
        .collect();
    v.extend(set.iter().filter(|c| Controller::v2_named(c).is_none()).cloned());
    v
}

impl Target for Simulator {
    fn mkdir(&mut self, path: &str) -> Result<(), TargetError> {
        self.do_mkdir(path)
    }
    fn rmdir(&mut self, path: &str) -> Result<(), TargetError> {
        self.do_rmdir(path)
    }
    fn exists(&self, path: &str) -> bool {
        self.cgroups.contains_key(path)
    }
    fn children(&self, path: &str) -> Result<Vec<String>, TargetError> {
        if !self.cgroups.contains_key(path) {
            return Err(TargetError::new(path, None, Errno::ENOENT));
        }
        let mut v: Vec<String> = self
            .child_paths(path)
            .iter()
            .map(|p| p.rsplit('/').next().unwrap_or(p).to_string())
            .collect();
        v.sort();
        Ok(v)
    }
    fn read(&self, path: &str, file: &str) -> Result<String, TargetError> {
        self.do_read(path, file)
    }
    fn write(&mut self, path: &str, file: &str, value: &str) -> Result<(), TargetError> {
        self.do_write(path, file, value)
    }
    fn chown(&mut self, path: &str, file: Option<&str>, uid: u32, gid: u32) -> Result<(), TargetError> {
        self.do_chown(path, file, uid, gid)
    }
}

#[cfg(test)]
mod tests;
