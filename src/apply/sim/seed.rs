//! Seeding a [`Simulator`] from a scanned host ([`Simulator::from_snapshot`]).

use std::collections::BTreeSet;

use super::Simulator;
use crate::model::{Controller, Snapshot, Version};

/// See [`Simulator::from_snapshot`].
pub(super) fn from_snapshot(snap: &Snapshot) -> Simulator {
    let v2 = snap
        .hierarchies()
        .into_iter()
        .find(|(_, h)| h.version == Version::V2);
    let offered: Vec<String> = v2
        .map(|(_, h)| h.controllers.iter().map(|c| c.as_str().to_string()).collect())
        .unwrap_or_default();
    let refs: Vec<&str> = offered.iter().map(String::as_str).collect();
    let mut sim = Simulator::new(&refs);
    if let Some(v) = snap.host.kernel.as_deref().and_then(kernel_version) {
        sim.kernel = v;
    }
    if let Some(cpus) = v1_cpuset_root(snap, "cpuset.cpus") {
        sim.cpus = cpus;
    }
    if let Some(mems) = v1_cpuset_root(snap, "cpuset.mems") {
        sim.mems = mems;
    }
    let v2_id = v2.map(|(_, h)| h.id);
    for (_, cg) in snap.cgroups().filter(|(_, c)| Some(c.hierarchy) == v2_id) {
        sim.ensure_path(&cg.path);
        let mut threaded = false;
        let entry = sim.cgroups.entry(cg.path.clone()).or_default();
        for (file, value) in &cg.settings {
            match file.as_str() {
                "cgroup.subtree_control" => {
                    entry.subtree_control = value.split_whitespace().map(str::to_string).collect();
                }
                "cgroup.type" => threaded = value.trim() == "threaded",
                _ => {
                    entry.values.insert(file.clone(), value.clone());
                }
            }
        }
        if threaded {
            sim.set_threaded(&cg.path);
        }
    }
    sim.restore_top_down();
    for (pi, p) in snap.processes() {
        for (ti, t) in snap.threads(pi) {
            let place = snap
                .memberships(ti)
                .map(|c| snap.cgroup(c))
                .find(|c| Some(c.hierarchy) == v2_id)
                .map_or_else(|| "/".to_string(), |c| c.path.clone());
            sim.place(t.tid, p.pid, &place);
        }
        if !sim.tasks.contains_key(&p.pid.main_thread()) {
            // A leader the scan saw no thread node for still exists: with
            // its threads, or at the root.
            let place = sim
                .threads_of
                .get(&p.pid)
                .and_then(|t| t.iter().next())
                .and_then(|tid| sim.tasks.get(tid))
                .map_or("/".to_string(), |t| t.cgroup.clone());
            sim.place(p.pid.main_thread(), p.pid, &place);
        }
    }
    sim
}

impl Simulator {
    /// The kernel keeps `subtree_control` within `cgroup.controllers`
    /// (`cgroup_propagate_control`): a controller enabled in a cgroup is
    /// enabled in every ancestor. A snapshot that lacks an ancestor's value
    /// (a fixture, an unreadable file) gets it back here, within what the
    /// root offers.
    fn restore_top_down(&mut self) {
        let enabled: Vec<(String, Vec<String>)> = self
            .cgroups
            .iter()
            .map(|(p, c)| (p.clone(), c.subtree_control.iter().cloned().collect()))
            .collect();
        for (path, ctrls) in enabled {
            let mut up = crate::model::path::parent(&path);
            while let Some(a) = up {
                if let Some(c) = self.cgroups.get_mut(a) {
                    c.subtree_control.extend(ctrls.iter().cloned());
                }
                up = crate::model::path::parent(a);
            }
        }
        let offered = self.offered.clone();
        for c in self.cgroups.values_mut() {
            c.subtree_control.retain(|x| offered.contains(x));
        }
    }

    /// Create `path` and any missing ancestors, bypassing the rules (seeding only).
    fn ensure_path(&mut self, path: &str) {
        if self.cgroups.contains_key(path) {
            return;
        }
        if let Some(parent) = crate::model::path::parent(path) {
            self.ensure_path(parent);
        }
        self.create(path);
    }
}

/// `6.18.44-fc-v857` -> (6, 18).
fn kernel_version(release: &str) -> Option<(u32, u32)> {
    let mut it = release.split(|c: char| !c.is_ascii_digit());
    Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
}

/// The v1 cpuset root's `cpuset.cpus`/`.mems`: the host's CPUs and nodes.
fn v1_cpuset_root(snap: &Snapshot, file: &str) -> Option<BTreeSet<u32>> {
    let (_, h) = snap
        .hierarchies()
        .into_iter()
        .find(|(_, h)| h.version == Version::V1 && h.has(&Controller::Cpuset))?;
    let root = snap.find_cgroup(h.id, "/")?;
    let text = snap.cgroup(root).settings.get(file)?;
    let all: BTreeSet<u32> = (0..4096).collect();
    super::values::parse_list(text.trim(), &all, nix::errno::Errno::EINVAL)
        .ok()
        .filter(|s| !s.is_empty())
}
