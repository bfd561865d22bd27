//! Who writes each cgroup: a pure function of the snapshot and its evidence.
//!
//! A cgroup's owner is decided from its path, top-down, the way the managers
//! name what they create (docs/research/real-layouts.md §1–§12): systemd units
//! and slices, kubelet's `kubepods` trees (cgroupfs and systemd drivers), the
//! container runtimes' `docker-<id>.scope`/`/docker/<id>`/`crio-`/
//! `cri-containerd-`/`libpod-`, libvirt and machined's `machine-…` scopes and
//! `/machine/…`, LXC's `/lxc/…` and `lxc.payload.…`. Anything else is a custom
//! manager's, identified by the processes that populate it. The unit files on
//! disk and systemd's cgroup xattrs are recorded as further evidence.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::units::is_unit_name;
use petgraph::graph::NodeIndex;

use crate::model::{Node, Snapshot};

/// A cgroup manager.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Manager {
    /// systemd (the system manager, or a user manager under `user@UID.service`).
    Systemd,
    /// The kubelet (cgroupfs or systemd driver).
    Kubelet,
    /// Docker (dockerd + containerd + runc).
    Docker,
    /// containerd on its own (CRI plugin, nerdctl).
    Containerd,
    /// CRI-O.
    Crio,
    /// Podman.
    Podman,
    /// libvirt, through systemd-machined or its own cgroupfs tree.
    Libvirt,
    /// LXC / LXD / Incus.
    Lxc,
    /// Anything else: a cluster manager, a script, an admin.
    Custom,
}

impl Manager {
    /// Display name.
    pub fn as_str(self) -> &'static str {
        match self {
            Manager::Systemd => "systemd",
            Manager::Kubelet => "kubelet",
            Manager::Docker => "docker",
            Manager::Containerd => "containerd",
            Manager::Crio => "cri-o",
            Manager::Podman => "podman",
            Manager::Libvirt => "libvirt",
            Manager::Lxc => "lxc",
            Manager::Custom => "custom",
        }
    }

    /// Runtimes rebuild their trees themselves after the switch.
    pub fn is_runtime(self) -> bool {
        !matches!(self, Manager::Systemd | Manager::Custom)
    }
}

impl std::fmt::Display for Manager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The owner of one cgroup, with the evidence for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owner {
    /// Who writes it.
    pub manager: Manager,
    /// The systemd unit: the cgroup's own (systemd), or the unit it lies in (others).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// How: `systemd driver`, `cgroupfs driver`, `inside app.service`, `user manager`, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Why we think so.
    pub evidence: Vec<String>,
}

impl Owner {
    /// A one-line label: `systemd (cron.service)`, `custom (inside app.service)`.
    pub fn label(&self) -> String {
        match (&self.unit, &self.detail) {
            (_, Some(d)) => format!("{} ({d})", self.manager),
            (Some(u), None) => format!("{} ({u})", self.manager),
            (None, None) => self.manager.to_string(),
        }
    }

    /// systemd's own cgroup (a unit or slice), not something inside one.
    pub fn is_systemd_unit(&self) -> bool {
        self.manager == Manager::Systemd
    }
}

/// Owners by cgroup path (the same path in every hierarchy is the same cgroup).
pub type OwnerMap = BTreeMap<String, Owner>;

/// Whether systemd is the host's init (so unit-named cgroups are its units).
///
/// A `name=systemd` hierarchy alone is no proof: anything can mount one
/// (a busybox guest, OpenRC's compatibility mounts, a container image that
/// wants to run systemd). systemd leaves real marks, any one of which counts:
/// PID 1 is systemd; it moved itself to `/init.scope`; its `system.slice` or
/// `user.slice` exist at the top of a tree; or the `name=systemd` hierarchy
/// carries the `xattr` option systemd mounts it with (mount-setup.c), the
/// only mark left when a container sees just its own subtree.
pub fn is_systemd_host(snap: &Snapshot) -> bool {
    let named_xattr = snap.hierarchies().iter().any(|(_, h)| {
        h.name.as_deref() == Some("systemd")
            && h.mounts.iter().any(|m| m.options.iter().any(|o| o == "xattr"))
    });
    let pid1 = snap.processes().iter().any(|(_, p)| {
        p.pid == crate::model::Pid::new(1)
            && (p.comm == "systemd" || p.cmdline.first().is_some_and(|c| c.ends_with("systemd")))
    });
    let own_cgroups = snap
        .cgroups()
        .any(|(_, c)| matches!(c.path.as_str(), "/init.scope" | "/system.slice" | "/user.slice"));
    named_xattr || pid1 || own_cgroups
}

/// A runtime or manager recognised by one path component.
fn component_manager(comp: &str, index: usize, prev: Option<&str>) -> Option<(Manager, &'static str)> {
    let scope = comp.ends_with(".scope");
    if comp == "kubepods" && index == 0
        || comp == "kubepods.slice"
        || comp.starts_with("kubepods-") && comp.ends_with(".slice")
    {
        let driver = if comp == "kubepods" {
            "cgroupfs driver"
        } else {
            "systemd driver"
        };
        return Some((Manager::Kubelet, driver));
    }
    if comp.starts_with("docker-") && scope {
        return Some((Manager::Docker, "systemd driver"));
    }
    if comp == "docker" && index == 0 {
        return Some((Manager::Docker, "cgroupfs driver"));
    }
    if comp.starts_with("cri-containerd-") && scope || comp.contains(":cri-containerd:") {
        return Some((Manager::Containerd, "systemd driver"));
    }
    if comp.starts_with("crio-") {
        return Some((
            Manager::Crio,
            if scope {
                "systemd driver"
            } else {
                "cgroupfs driver"
            },
        ));
    }
    if comp.starts_with("libpod-") || comp == "libpod_parent" {
        return Some((
            Manager::Podman,
            if scope {
                "systemd driver"
            } else {
                "cgroupfs driver"
            },
        ));
    }
    if comp.starts_with("machine-") && (scope || comp.ends_with(".slice")) && prev == Some("machine.slice") {
        return Some((Manager::Libvirt, "machined scope"));
    }
    if comp == "machine" && index == 0 {
        return Some((Manager::Libvirt, "cgroupfs partition"));
    }
    if comp == "lxc" && index == 0 || comp.starts_with("lxc.payload") || comp.starts_with("lxc.monitor") {
        return Some((Manager::Lxc, "lxc cgroup"));
    }
    None
}

/// Manager, unit and detail of one path (without evidence); `None` for `/`.
type Class = (Manager, Option<String>, Option<String>);

/// Classify one path (without evidence), top-down.
fn classify(path: &str, systemd_host: bool) -> Option<Class> {
    let comps: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    if comps.is_empty() {
        return None;
    }
    // The innermost systemd unit so far, and the user manager it runs under.
    let mut unit: Option<&str> = None;
    let mut user_mgr: Option<&str> = None;
    for (i, comp) in comps.iter().enumerate() {
        let prev = i.checked_sub(1).map(|j| comps[j]);
        if let Some((m, how)) = component_manager(comp, i, prev) {
            let inside = unit.filter(|u| !u.ends_with(".slice"));
            let detail = match inside {
                Some(u) => format!("{how}, inside {u}"),
                None => how.to_string(),
            };
            let own_unit = (systemd_host && is_unit_name(comp)).then_some(*comp).or(unit);
            return Some((m, own_unit.map(str::to_string), Some(detail)));
        }
        let unit_like = systemd_host && is_unit_name(comp);
        let may_nest = match unit {
            None => true,
            Some(u) => u.ends_with(".slice") || user_mgr.is_some() || is_user_manager(u),
        };
        if unit_like && may_nest {
            if let Some(u) = unit
                && is_user_manager(u)
            {
                user_mgr = Some(u);
            }
            unit = Some(comp);
            continue;
        }
        return Some(match unit {
            Some(u) if *comp == ".control" => (
                Manager::Systemd,
                Some(u.to_string()),
                Some("systemd's control group of a delegated unit".into()),
            ),
            Some(u) => (Manager::Custom, Some(u.to_string()), Some(format!("inside {u}"))),
            None if systemd_host => (Manager::Custom, None, Some("beside systemd's tree".into())),
            None => (Manager::Custom, None, None),
        });
    }
    Some((
        Manager::Systemd,
        unit.map(str::to_string),
        user_mgr.map(|u| format!("user manager in {u}")),
    ))
}

/// Whether `owner` itself builds the cgroup at `path` on v2: its own naming
/// puts that cgroup there (a unit's or slice's cgroup, a runtime's tree).
/// A plan node merged from an owner's cgroup at another path (the
/// `name=systemd` cgroup `/app.slice` placed under a custom `/app/…`) is
/// not built by anyone but cgmig, so its create must stay in the plan.
pub fn builds_at(path: &str, owner: &Owner, systemd_host: bool) -> bool {
    match classify(path, systemd_host) {
        Some((m, unit, _)) if m == owner.manager => match m {
            Manager::Custom => false,
            Manager::Systemd => unit == owner.unit,
            _ => true,
        },
        _ => false,
    }
}

fn is_user_manager(unit: &str) -> bool {
    unit.starts_with("user@") && unit.ends_with(".service")
}

/// Decide the owner of every cgroup path in the snapshot.
pub fn detect(snap: &Snapshot) -> OwnerMap {
    let systemd_host = is_systemd_host(snap);
    let ev = &snap.owner_evidence;
    // Labels of the hierarchies each path appears in, and the processes in each.
    // (The process names are only made when a custom tree needs them: the
    // planner runs this on hosts of 100k cgroups and 200k threads.)
    let mut seen: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut with_tasks: Vec<(&str, NodeIndex)> = Vec::new();
    for (hi, h) in snap.hierarchies() {
        let Some(root) = snap.root_cgroup(hi) else {
            continue;
        };
        let label = h.label();
        let mut stack = vec![root];
        while let Some(ci) = stack.pop() {
            let c = snap.cgroup(ci);
            // One path String per path, not per hierarchy.
            if let Some(labels) = seen.get_mut(&c.path) {
                labels.insert(label.clone());
            } else {
                seen.insert(c.path.clone(), BTreeSet::from([label.clone()]));
            }
            if snap.members(ci).next().is_some() {
                with_tasks.push((c.path.as_str(), ci));
            }
            stack.extend(snap.children(ci));
        }
    }
    let classified: Vec<(&String, &BTreeSet<String>, Class)> = seen
        .iter()
        .filter_map(|(path, labels)| Some((path, labels, classify(path, systemd_host)?)))
        .collect();
    let any_custom = classified.iter().any(|(_, _, (m, _, _))| *m == Manager::Custom);
    let mut procs: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (path, ci) in with_tasks.into_iter().filter(|_| any_custom) {
        let names = procs.entry(path.to_string()).or_default();
        for t in snap.members(ci) {
            if let Some(p) = snap.process_of(t)
                && let Node::Process(p) = &snap.graph[p]
            {
                names.insert(format!("{} ({})", p.comm, p.pid));
            }
        }
    }
    let mut out = OwnerMap::new();
    for (path, labels, (manager, unit, detail)) in classified {
        let mut evidence = vec![format!(
            "path {path} in {}",
            labels.iter().cloned().collect::<Vec<_>>().join(", ")
        )];
        if manager == Manager::Systemd
            && let Some(u) = &unit
        {
            match ev.units.get(u) {
                Some(cfg) => evidence.push(format!("unit files: {}", cfg.files.join(", "))),
                None => evidence.push(format!("{u}: no unit file (transient or built-in)")),
            }
        }
        if let Some(x) = ev.xattrs.get(path) {
            let names: Vec<&str> = x.keys().map(String::as_str).collect();
            evidence.push(format!("xattrs: {}", names.join(", ")));
        }
        if manager == Manager::Custom {
            let populating = subtree_processes(&procs, path);
            if populating.is_empty() {
                evidence.push("no processes in it or below".into());
            } else {
                evidence.push(format!("populated by {}", populating.join(", ")));
            }
        }
        out.insert(
            path.clone(),
            Owner {
                manager,
                unit,
                detail,
                evidence,
            },
        );
    }
    out
}

/// Processes in a path or below it (up to 5, then a count).
pub fn subtree_processes(procs: &BTreeMap<String, BTreeSet<String>>, path: &str) -> Vec<String> {
    let prefix = format!("{}/", path.trim_end_matches('/'));
    let mut all: BTreeSet<&String> = procs.get(path).into_iter().flatten().collect();
    // Descendants sort right after `path/` (siblings like `path-x` sort before it).
    for (p, set) in procs.range(prefix.clone()..) {
        if !p.starts_with(&prefix) {
            break;
        }
        all.extend(set);
    }
    let mut v: Vec<String> = all.iter().take(5).map(|s| (*s).clone()).collect();
    if all.len() > 5 {
        v.push(format!("and {} more", all.len() - 5));
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(path: &str) -> (Manager, Option<String>, Option<String>) {
        classify(path, true).unwrap()
    }

    #[test]
    fn systemd_units_and_slices() {
        assert_eq!(m("/system.slice/cron.service").0, Manager::Systemd);
        assert_eq!(m("/system.slice/cron.service").1.as_deref(), Some("cron.service"));
        assert_eq!(m("/system.slice").1.as_deref(), Some("system.slice"));
        assert_eq!(
            m("/user.slice/user-1000.slice/user@1000.service/app.slice/x.service").0,
            Manager::Systemd
        );
        assert!(
            m("/user.slice/user-1000.slice/user@1000.service/app.slice/x.service")
                .2
                .unwrap()
                .contains("user manager")
        );
    }

    #[test]
    fn custom_inside_and_beside_units() {
        let (mg, unit, d) = m("/system.slice/borg.service/borg/task1");
        assert_eq!((mg, unit.as_deref()), (Manager::Custom, Some("borg.service")));
        assert_eq!(d.as_deref(), Some("inside borg.service"));
        let (mg, unit, d) = m("/batch/job7");
        assert_eq!((mg, unit), (Manager::Custom, None));
        assert_eq!(d.as_deref(), Some("beside systemd's tree"));
        assert_eq!(classify("/batch", false).unwrap().2, None);
    }

    #[test]
    fn subtree_processes_skip_siblings_that_sort_between() {
        let mut procs: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (p, c) in [("/a", "x (1)"), ("/a-b", "sib (2)"), ("/a/c", "kid (3)")] {
            procs.entry(p.into()).or_default().insert(c.into());
        }
        assert_eq!(subtree_processes(&procs, "/a"), ["kid (3)", "x (1)"]);
    }

    #[test]
    fn owners_build_only_at_their_own_paths() {
        let systemd = |u: &str| Owner {
            manager: Manager::Systemd,
            unit: Some(u.into()),
            detail: None,
            evidence: Vec::new(),
        };
        assert!(builds_at(
            "/system.slice/cron.service",
            &systemd("cron.service"),
            true
        ));
        assert!(builds_at("/app.slice", &systemd("app.slice"), true));
        // The planner merged name=systemd:/app.slice under a custom tree.
        assert!(!builds_at("/app/app@pids/app.slice", &systemd("app.slice"), true));
        assert!(
            !builds_at("/app.slice", &systemd("app.slice"), false),
            "no systemd running"
        );
        let docker = Owner {
            manager: Manager::Docker,
            ..systemd("x")
        };
        assert!(builds_at("/docker/0123", &docker, false));
        assert!(!builds_at("/batch/0123", &docker, false));
        let custom = Owner {
            manager: Manager::Custom,
            ..systemd("x")
        };
        assert!(!builds_at("/batch", &custom, true));
    }

    #[test]
    fn runtimes() {
        assert_eq!(m("/kubepods/burstable/pod1/abc").0, Manager::Kubelet);
        assert_eq!(
            m("/kubepods/burstable/pod1/abc").2.as_deref(),
            Some("cgroupfs driver")
        );
        assert_eq!(
            m("/kubepods.slice/kubepods-burstable.slice").2.as_deref(),
            Some("systemd driver")
        );
        assert_eq!(m("/system.slice/docker-0123.scope").0, Manager::Docker);
        assert_eq!(m("/docker/0123").0, Manager::Docker);
        assert_eq!(m("/docker").0, Manager::Docker, "dockerd's cgroupfs parent");
        assert_eq!(m("/system.slice/crio-0123.scope").0, Manager::Crio);
        assert_eq!(
            m("/machine.slice/machine-qemu\\x2d1\\x2dvm.scope/vcpu0").0,
            Manager::Libvirt
        );
        assert_eq!(m("/machine.slice").0, Manager::Systemd);
        assert_eq!(m("/machine/vm1.libvirt-qemu").0, Manager::Libvirt);
        assert_eq!(m("/lxc.payload.c1").0, Manager::Lxc);
        assert_eq!(m("/lxc/c1").0, Manager::Lxc);
    }
}
