//! The [`Simulator`]'s answers to the file operations: mkdir, rmdir, the
//! core `cgroup.*` files, task moves and the dispatch of controller files to
//! [`super::values`].

use nix::errno::Errno;

use super::files::{self, Access};
use super::{Simulator, is_threaded_ctrl, ordered, values};
use crate::apply::step::UidGid;
use crate::apply::target::TargetError;
use crate::model::path as cgpath;
use crate::model::{Controller, Pid, Tid};

/// `INT_MAX`, what `cgroup.max.depth`/`cgroup.max.descendants` hold for "max".
const INT_MAX: i64 = i32::MAX as i64;

impl Simulator {
    pub(super) fn do_mkdir(&mut self, path: &str) -> Result<(), TargetError> {
        let err = |e| Err(TargetError::new(path, None, e));
        let Some(parent) = cgpath::parent(path) else {
            return err(Errno::EEXIST); // "/" always exists
        };
        let name = path.rsplit('/').next().unwrap_or(path);
        if !self.cgroups.contains_key(parent) {
            return err(Errno::ENOENT);
        }
        // VFS: an existing directory or interface file of that name.
        if self.cgroups.contains_key(path)
            || name == "."
            || name == ".."
            || self.file_spec(parent, name).is_some()
        {
            return err(Errno::EEXIST);
        }
        if name.is_empty() {
            return err(Errno::ENOENT);
        }
        if name.len() > 255 {
            return err(Errno::ENAMETOOLONG);
        }
        // cgroup_mkdir: "do not accept '\n' to prevent making /proc/<pid>/cgroup unparsable".
        if name.contains('\n') {
            return err(Errno::EINVAL);
        }
        // cgroup_check_hierarchy_limits.
        if !self.within_hierarchy_limits(parent) {
            return err(Errno::EAGAIN);
        }
        self.create(path);
        Ok(())
    }

    /// `cgroup_check_hierarchy_limits`: walking up from the parent, no
    /// ancestor may already have `max.descendants` live descendants, and the
    /// new cgroup's level below each ancestor must stay within its `max.depth`.
    fn within_hierarchy_limits(&self, parent: &str) -> bool {
        let mut level = 0i64;
        let mut p = Some(parent);
        while let Some(cur) = p {
            if level >= self.limit(cur, "cgroup.max.depth") {
                return false;
            }
            let max = self.limit(cur, "cgroup.max.descendants");
            // Counting is O(subtree): only where a limit is set.
            if max < INT_MAX && (self.subtree(cur).count() as i64 - 1) >= max {
                return false;
            }
            level += 1;
            p = cgpath::parent(cur);
        }
        true
    }

    fn limit(&self, path: &str, file: &str) -> i64 {
        self.cg(path)
            .and_then(|c| c.values.get(file))
            .map_or(INT_MAX, |v| {
                if v == "max" {
                    INT_MAX
                } else {
                    v.parse().unwrap_or(INT_MAX)
                }
            })
    }

    pub(super) fn do_rmdir(&mut self, path: &str) -> Result<(), TargetError> {
        let err = |e| Err(TargetError::new(path, None, e));
        if path == "/" {
            return err(Errno::EBUSY); // the mount point itself
        }
        if !self.cgroups.contains_key(path) {
            // VFS: a file of that name is ENOTDIR, nothing at all ENOENT.
            let parent = cgpath::parent(path).unwrap_or("/");
            let name = path.rsplit('/').next().unwrap_or(path);
            if self.cgroups.contains_key(parent) && self.file_spec(parent, name).is_some() {
                return err(Errno::ENOTDIR);
            }
            return err(Errno::ENOENT);
        }
        // cgroup_destroy_locked: populated, then live children -> EBUSY.
        if self.is_populated(path) || !self.child_paths(path).is_empty() {
            return err(Errno::EBUSY);
        }
        self.destroy(path);
        Ok(())
    }

    pub(super) fn do_chown(
        &mut self,
        path: &str,
        file: Option<&str>,
        uid: u32,
        gid: u32,
    ) -> Result<(), TargetError> {
        if !self.cgroups.contains_key(path) {
            return Err(TargetError::new(path, file, Errno::ENOENT));
        }
        if let Some(f) = file
            && self.file_spec(path, f).is_none()
        {
            return Err(TargetError::new(path, file, Errno::ENOENT));
        }
        let key = file.unwrap_or("").to_string();
        if let Some(c) = self.cgroups.get_mut(path) {
            c.owners.insert(key, UidGid::new(uid, gid));
        }
        Ok(())
    }

    /// The owner `chown` gave a cgroup directory (`None`) or file, if any.
    pub fn owner_of(&self, path: &str, file: Option<&str>) -> Option<UidGid> {
        self.cg(path)?.owners.get(file.unwrap_or("")).copied()
    }

    /// Which interface file `name` is in cgroup `path`, if it exists there.
    pub(super) fn file_spec(&self, path: &str, name: &str) -> Option<files::Spec> {
        let ctx = files::Ctx {
            is_root: path == "/",
            controllers: self.control(path),
            kernel: self.kernel,
            bfq: self.bfq,
            hugepage_sizes: &self.hugepage_sizes,
        };
        files::lookup(&ctx, name)
    }

    /// Look the file up and check it has the operation (read or write) asked for.
    fn open(&self, path: &str, file: &str, access: Access) -> Result<files::Spec, TargetError> {
        let err = |e| Err(TargetError::new(path, Some(file), e));
        if !self.cgroups.contains_key(path) {
            return err(Errno::ENOENT);
        }
        if file.is_empty() || file.contains('/') {
            return err(Errno::ENOENT);
        }
        match self.file_spec(path, file) {
            None => err(Errno::ENOENT),
            // Root passes the mode check at open; kernfs_fop_read_iter /
            // kernfs_fop_write_iter then find no seq_show/write op: EINVAL.
            Some(spec) if !spec.access.allows(access) => err(Errno::EINVAL),
            Some(spec) => Ok(spec),
        }
    }

    pub(super) fn do_read(&self, path: &str, file: &str) -> Result<String, TargetError> {
        let spec = self.open(path, file, Access::Read)?;
        let err = |e| Err(TargetError::new(path, Some(file), e));
        Ok(match file {
            "cgroup.controllers" => self.control(path).join(" "),
            "cgroup.subtree_control" => ordered(
                &self
                    .cg(path)
                    .map(|c| c.subtree_control.clone())
                    .unwrap_or_default(),
            )
            .join(" "),
            "cgroup.type" => self.type_name(path).to_string(),
            "cgroup.procs" => {
                // cgroup_procs_start: reading it in a threaded cgroup is EOPNOTSUPP.
                if self.is_threaded(path) {
                    return err(Errno::EOPNOTSUPP);
                }
                lines(self.procs_of(path))
            }
            "cgroup.threads" => lines(
                self.cg(path)
                    .map(|c| c.members.iter().copied().collect())
                    .unwrap_or_default(),
            ),
            // CGRP_FROZEN: every task of an effectively frozen cgroup is
            // frozen, which holds at once for an empty one (the simulator has
            // no running tasks to wait for).
            "cgroup.events" => format!(
                "populated {}\nfrozen {}",
                u8::from(self.is_populated(path)),
                u8::from(self.is_frozen(path))
            ),
            "cgroup.stat" => self.stat(path),
            "cgroup.max.depth" | "cgroup.max.descendants" | "cgroup.freeze" => {
                self.value_or(path, file, if file == "cgroup.freeze" { "0" } else { "max" })
            }
            "cpuset.cpus.effective" => values::print_list(&self.effective(path, "cpuset.cpus")),
            "cpuset.mems.effective" => values::print_list(&self.effective(path, "cpuset.mems")),
            "pids.current" => self
                .subtree(path)
                .map(|(_, c)| c.members.len())
                .sum::<usize>()
                .to_string(),
            _ => match self.cg(path).and_then(|c| c.values.get(file)) {
                Some(v) => v.clone(),
                None => values::default_of(file, &spec),
            },
        })
    }

    /// `cpuset.{cpus,mems}.effective`: the cgroup's own list within its
    /// parent's effective set, or the parent's when empty or disjoint.
    fn effective(&self, path: &str, file: &str) -> std::collections::BTreeSet<u32> {
        let all = if file == "cpuset.cpus" {
            &self.cpus
        } else {
            &self.mems
        };
        let Some(parent) = cgpath::parent(path) else {
            return all.clone();
        };
        let up = self.effective(parent, file);
        let own = self
            .cg(path)
            .and_then(|c| c.values.get(file))
            .and_then(|v| values::parse_list(v, all, Errno::EINVAL).ok());
        match own {
            Some(own) if !own.is_disjoint(&up) => own.intersection(&up).copied().collect(),
            _ => up,
        }
    }

    /// `cgroup_stat_show`: live descendants, then (6.11+) per controller the
    /// csses in the subtree including itself. Dying cgroups linger in the
    /// kernel for a while after rmdir; the simulator has none.
    fn stat(&self, path: &str) -> String {
        let below: Vec<&String> = self.subtree(path).map(|(k, _)| k).collect();
        let mut out = vec![format!("nr_descendants {}", below.len() - 1)];
        let subsys: Vec<&str> = Controller::v2_names()
            .filter(|c| super::is_implicit(c) || self.offered.contains(*c))
            .collect();
        let modern = self.kernel >= (6, 11);
        if modern {
            for c in &subsys {
                let n = below
                    .iter()
                    .filter(|p| {
                        super::is_implicit(c) || p.as_str() == "/" || self.control(p).iter().any(|x| x == c)
                    })
                    .count();
                out.push(format!("nr_subsys_{c} {n}"));
            }
        }
        out.push("nr_dying_descendants 0".into());
        if modern {
            out.extend(subsys.iter().map(|c| format!("nr_dying_subsys_{c} 0")));
        }
        out.join("\n")
    }

    fn value_or(&self, path: &str, file: &str, default: &str) -> String {
        self.cg(path)
            .and_then(|c| c.values.get(file))
            .cloned()
            .unwrap_or_else(|| default.to_string())
    }

    /// Whether `cgroup.freeze` is 1 here or on an ancestor (`cgroup_freeze` propagates down).
    fn is_frozen(&self, path: &str) -> bool {
        let mut p = Some(path);
        while let Some(cur) = p {
            if self
                .cg(cur)
                .and_then(|c| c.values.get("cgroup.freeze"))
                .is_some_and(|v| v == "1")
            {
                return true;
            }
            p = cgpath::parent(cur);
        }
        false
    }

    /// `cgroup.procs` of a domain: the processes whose leader is in it or,
    /// for a thread root, anywhere in its threaded subtree (CSS_TASK_ITER_THREADED).
    fn procs_of(&self, path: &str) -> Vec<Pid> {
        let mut v: Vec<Pid> = self
            .subtree(path)
            .filter(|(p, _)| p.as_str() == path || (self.is_threaded(p) && self.dom_cgrp(p) == path))
            .flat_map(|(_, c)| c.members.iter())
            .filter_map(|tid| {
                self.tasks
                    .get(tid)
                    .map(|t| t.pid)
                    .filter(|pid| pid.main_thread() == *tid)
            })
            .collect();
        v.sort();
        v
    }

    pub(super) fn do_write(&mut self, path: &str, file: &str, value: &str) -> Result<(), TargetError> {
        self.open(path, file, Access::Write)?;
        // cgroup_file_write: a write of zero bytes does nothing.
        if value.is_empty() {
            return Ok(());
        }
        let res = match file {
            "cgroup.subtree_control" => self.write_subtree_control(path, value),
            "cgroup.type" => self.write_type(path, value),
            "cgroup.procs" => self.write_procs(path, value, true),
            "cgroup.threads" => self.write_procs(path, value, false),
            "cgroup.max.depth" | "cgroup.max.descendants" => {
                write_limit(value).map(|v| self.set(path, file, v))
            }
            "cgroup.freeze" => values::int_in(value, 0, 1).map(|v| self.set(path, file, v.to_string())),
            "cgroup.kill" => self.write_kill(path, value),
            "cgroup.pressure" => values::int_in(value, 0, 1).map(|v| self.set(path, file, v.to_string())),
            _ => {
                let updates = {
                    let read = |f: &str| self.do_read(path, f).ok();
                    let ctx = values::Ctx {
                        read: &read,
                        cpus: &self.cpus,
                        mems: &self.mems,
                        devices: self.devices.as_ref(),
                    };
                    values::write(file, value, &ctx)
                };
                updates.map(|u| {
                    for (f, v) in u {
                        self.set(path, &f, v);
                    }
                })
            }
        };
        res.map_err(|e| TargetError::new(path, Some(file), e))
    }

    fn set(&mut self, path: &str, file: &str, value: String) {
        if let Some(c) = self.cgroups.get_mut(path) {
            c.values.insert(file.to_string(), value);
        }
    }

    /// `cgroup_kill_write`: only `1`; EOPNOTSUPP in a threaded cgroup. Kills
    /// every process with a task in the subtree.
    fn write_kill(&mut self, path: &str, value: &str) -> Result<(), Errno> {
        let v = values::kstrtoint(value.trim())?;
        if v != 1 {
            return Err(Errno::ERANGE);
        }
        if self.is_threaded(path) {
            return Err(Errno::EOPNOTSUPP);
        }
        let pids: Vec<Pid> = self
            .subtree(path)
            .flat_map(|(_, c)| c.members.iter().copied())
            .filter_map(|tid| self.tasks.get(&tid).map(|t| t.pid))
            .collect();
        for pid in pids {
            self.exit_process(pid);
        }
        Ok(())
    }

    /// `cgroup_subtree_control_write` and `cgroup_vet_subtree_control_enable`.
    fn write_subtree_control(&mut self, path: &str, value: &str) -> Result<(), Errno> {
        let mut enable: Vec<String> = Vec::new();
        let mut disable: Vec<String> = Vec::new();
        for tok in value.trim().split(' ').filter(|t| !t.is_empty()) {
            let name = &tok[tok.char_indices().nth(1).map_or(tok.len(), |(i, _)| i)..];
            if !self.knows_controller(name) {
                return Err(Errno::EINVAL);
            }
            match tok.as_bytes()[0] {
                b'+' => {
                    disable.retain(|c| c != name);
                    if !enable.iter().any(|c| c == name) {
                        enable.push(name.to_string());
                    }
                }
                b'-' => {
                    enable.retain(|c| c != name);
                    if !disable.iter().any(|c| c == name) {
                        disable.push(name.to_string());
                    }
                }
                _ => return Err(Errno::EINVAL),
            }
        }
        let current = self
            .cg(path)
            .map(|c| c.subtree_control.clone())
            .unwrap_or_default();
        let control = self.control(path);
        // Checked in subsystem id order, as for_each_subsys does.
        let mut all: Vec<String> = enable.iter().chain(disable.iter()).cloned().collect();
        all.sort_by_key(|c| Controller::v2_rank(c).unwrap_or(usize::MAX));
        for c in &all {
            if enable.contains(c) {
                if current.contains(c) {
                    enable.retain(|e| e != c);
                } else if !control.contains(c) {
                    return Err(Errno::ENOENT);
                }
            } else if !current.contains(c) {
                disable.retain(|d| d != c);
            } else if self
                .child_paths(path)
                .iter()
                .any(|ch| self.cg(ch).is_some_and(|x| x.subtree_control.contains(c)))
            {
                return Err(Errno::EBUSY);
            }
        }
        if enable.is_empty() && disable.is_empty() {
            return Ok(());
        }
        self.vet_subtree_control_enable(path, &enable)?;
        self.populate_children(path, &enable)?;
        let children = self.child_paths(path);
        let c = self.cgroups.get_mut(path).ok_or(Errno::ENOENT)?;
        c.subtree_control.extend(enable.iter().cloned());
        for d in &disable {
            c.subtree_control.remove(d);
        }
        // A controller's css is destroyed in the children when disabled:
        // re-enabling starts from the defaults again.
        for ch in children {
            if let Some(x) = self.cgroups.get_mut(&ch) {
                x.values.retain(|f, _| {
                    !disable
                        .iter()
                        .any(|d| files::controller_of(f) == Some(d.as_str()))
                });
            }
        }
        Ok(())
    }

    /// Whether `+name`/`-name` names a controller this kernel has on v2
    /// (else the parser in `cgroup_subtree_control_write` gives EINVAL).
    fn knows_controller(&self, name: &str) -> bool {
        Controller::v2_named(name).is_some() || self.offered.contains(name)
    }

    /// `cgroup_vet_subtree_control_enable`.
    fn vet_subtree_control_enable(&self, path: &str, enable: &[String]) -> Result<(), Errno> {
        if enable.is_empty() {
            return Ok(());
        }
        if !self.is_valid_domain(self.dom_cgrp(path)) {
            return Err(Errno::EOPNOTSUPP);
        }
        if Self::is_mixable(path) {
            return Ok(());
        }
        if enable.iter().any(|c| !is_threaded_ctrl(c)) {
            // "can't enable domain controllers inside a thread subtree"
            if self.is_thread_root(path) || self.is_threaded(path) {
                return Err(Errno::EOPNOTSUPP);
            }
        } else if self.can_be_thread_root(path) || self.is_threaded(path) {
            return Ok(());
        }
        // "Controllers can't be enabled for a cgroup with tasks"
        if self.has_tasks(path) {
            return Err(Errno::EBUSY);
        }
        Ok(())
    }

    /// `css_populate_dir` in `cgroup_apply_control_enable`: a child that
    /// holds a directory named like one of the new files makes the write
    /// fail with EEXIST (kernfs), and nothing changes.
    fn populate_children(&self, path: &str, enable: &[String]) -> Result<(), Errno> {
        for ch in self.child_paths(path) {
            let threaded = self.is_threaded(&ch);
            for grand in self.child_paths(&ch) {
                let name = grand.rsplit('/').next().unwrap_or(&grand);
                if let Some(c) = files::controller_of(name)
                    && enable.iter().any(|e| e == c)
                    && (!threaded || is_threaded_ctrl(c))
                    && self.file_spec_with(&ch, name, c)
                {
                    return Err(Errno::EEXIST);
                }
            }
        }
        Ok(())
    }

    /// Whether `name` would exist in `path` once controller `c` is visible there.
    fn file_spec_with(&self, path: &str, name: &str, c: &str) -> bool {
        let mut controllers = self.control(path);
        controllers.push(c.to_string());
        let ctx = files::Ctx {
            is_root: path == "/",
            controllers,
            kernel: self.kernel,
            bfq: self.bfq,
            hugepage_sizes: &self.hugepage_sizes,
        };
        files::lookup(&ctx, name).is_some()
    }

    /// `cgroup_type_write` and `cgroup_enable_threaded`.
    fn write_type(&mut self, path: &str, value: &str) -> Result<(), Errno> {
        if value.trim() != "threaded" {
            return Err(Errno::EINVAL);
        }
        if self.is_threaded(path) {
            return Ok(());
        }
        if self.is_populated(path) || self.has_domain_controllers(path) {
            return Err(Errno::EOPNOTSUPP);
        }
        let parent = cgpath::parent(path).ok_or(Errno::ENOENT)?;
        let dom = self.dom_cgrp(parent).to_string();
        if !self.is_valid_domain(&dom) || !self.can_be_thread_root(&dom) {
            return Err(Errno::EOPNOTSUPP);
        }
        self.set_threaded(path);
        // cgroup_apply_control -> cgroup_propagate_control: in a threaded
        // cgroup only threaded controllers stay enabled below.
        Ok(())
    }

    /// `__cgroup_procs_write`: parse, find the task, vet the destination
    /// (`cgroup_attach_permissions` -> `cgroup_migrate_vet_dst`), then move.
    fn write_procs(&mut self, path: &str, value: &str, threadgroup: bool) -> Result<(), Errno> {
        let tid = written_task(value)?;
        let task = self.tasks.get(&tid).cloned().ok_or(Errno::ESRCH)?;
        // cgroup.procs moves the whole group: the leader's cgroup is the source.
        let leader = if threadgroup { task.pid.main_thread() } else { tid };
        let src = self
            .tasks
            .get(&leader)
            .map(|t| t.cgroup.clone())
            .unwrap_or(task.cgroup.clone());
        self.vet_dst(path)?;
        if !threadgroup && self.dom_cgrp(&src) != self.dom_cgrp(path) {
            return Err(Errno::EOPNOTSUPP);
        }
        if threadgroup {
            for tid in self.threads_of.get(&task.pid).cloned().unwrap_or_default() {
                self.place(tid, task.pid, path);
            }
        } else {
            self.place(tid, task.pid, path);
        }
        Ok(())
    }

    /// `cgroup_migrate_vet_dst`.
    fn vet_dst(&self, dst: &str) -> Result<(), Errno> {
        if !self.is_valid_domain(self.dom_cgrp(dst)) {
            return Err(Errno::EOPNOTSUPP);
        }
        if Self::is_mixable(dst) {
            return Ok(());
        }
        if self.can_be_thread_root(dst) || self.is_threaded(dst) {
            return Ok(());
        }
        if self.cg(dst).is_some_and(|c| !c.subtree_control.is_empty()) {
            return Err(Errno::EBUSY);
        }
        Ok(())
    }
}

/// `cgroup_max_depth_write`/`cgroup_max_descendants_write`: "max" or a
/// kstrtoint number (its errno passes through), negative -> ERANGE.
fn write_limit(value: &str) -> Result<String, Errno> {
    let v = value.trim();
    if v == "max" {
        return Ok("max".into());
    }
    let n = values::kstrtoint(v)?;
    if n < 0 {
        return Err(Errno::ERANGE);
    }
    Ok(if n as i64 == INT_MAX {
        "max".into()
    } else {
        n.to_string()
    })
}

/// The task a number written to `cgroup.procs` or `cgroup.threads` names:
/// the one place the simulator turns text into a [`Tid`].
///
/// `cgroup_procs_write_start`: `kstrtoint(strstrip(buf), 0)`, a negative
/// number is EINVAL, and the task is found by `find_task_by_vpid`, which
/// takes any thread's id; so even a number written to `cgroup.procs` is
/// looked up as a task, and the caller goes to its group leader.
fn written_task(value: &str) -> Result<Tid, Errno> {
    let n = values::kstrtoint(value.trim()).map_err(|_| Errno::EINVAL)?;
    match u32::try_from(n) {
        // "0" is the writer itself, which the simulator has no notion of.
        Ok(0) | Err(_) => Err(Errno::EINVAL),
        Ok(n) => Ok(Tid::new(n)),
    }
}

/// One number per line, as seq_file prints `cgroup.procs`/`cgroup.threads`.
fn lines<T: std::fmt::Display>(v: Vec<T>) -> String {
    v.iter().map(|n| n.to_string()).collect::<Vec<_>>().join("\n")
}
