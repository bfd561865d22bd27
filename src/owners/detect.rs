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

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::paths::{PathIndex, ProcessNames};
use super::units::is_unit_name;
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
    // One pass over the graph's nodes (this runs inside `plan` on hosts of
    // hundreds of thousands of nodes), stopping at the first mark.
    snap.graph.node_weights().any(|node| match node {
        Node::Hierarchy(h) => {
            h.name.as_deref() == Some("systemd")
                && h.mounts.iter().any(|m| m.options.iter().any(|o| o == "xattr"))
        }
        Node::Process(p) => {
            p.pid == crate::model::Pid::new(1)
                && (p.comm == "systemd" || p.cmdline.first().is_some_and(|c| c.ends_with("systemd")))
        }
        Node::Cgroup(c) => matches!(c.path.as_str(), "/init.scope" | "/system.slice" | "/user.slice"),
        _ => false,
    })
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

/// What a path's name alone says about its owner (no evidence yet).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Class {
    /// Who writes it.
    manager: Manager,
    /// The unit it is or lies in.
    unit: Option<String>,
    /// How (driver, `inside X`, ...).
    detail: Option<String>,
}

impl Class {
    fn new(manager: Manager, unit: Option<&str>, detail: Option<String>) -> Self {
        Class {
            manager,
            unit: unit.map(str::to_string),
            detail,
        }
    }
}

/// Classify one path (without evidence), top-down; `None` for `/`.
fn classify(path: &str, systemd_host: bool) -> Option<Class> {
    // The innermost systemd unit so far, and the user manager it runs under.
    let mut unit: Option<&str> = None;
    let mut user_mgr: Option<&str> = None;
    let mut prev: Option<&str> = None;
    for (i, comp) in path.split('/').filter(|s| !s.is_empty()).enumerate() {
        if let Some((m, how)) = component_manager(comp, i, prev) {
            let inside = unit.filter(|u| !u.ends_with(".slice"));
            let detail = match inside {
                Some(u) => format!("{how}, inside {u}"),
                None => how.to_string(),
            };
            let own_unit = (systemd_host && is_unit_name(comp)).then_some(comp).or(unit);
            return Some(Class::new(m, own_unit, Some(detail)));
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
            prev = Some(comp);
            continue;
        }
        return Some(match unit {
            Some(u) if comp == ".control" => Class::new(
                Manager::Systemd,
                Some(u),
                Some("systemd's control group of a delegated unit".into()),
            ),
            Some(u) => Class::new(Manager::Custom, Some(u), Some(format!("inside {u}"))),
            None if systemd_host => Class::new(Manager::Custom, None, Some("beside systemd's tree".into())),
            None => Class::new(Manager::Custom, None, None),
        });
    }
    // No component at all: the root.
    prev?;
    Some(Class::new(
        Manager::Systemd,
        unit,
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
        Some(c) if c.manager == owner.manager => match c.manager {
            Manager::Custom => false,
            Manager::Systemd => c.unit == owner.unit,
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
    detect_in(snap, &PathIndex::collect(snap), is_systemd_host(snap))
}

/// [`detect`] over the snapshot's cgroups grouped by path, on a host
/// already known to run systemd or not (the annotate pass has both).
/// Steps: classify each path by its name, name the processes (only when a
/// custom tree will list them), then gather each path's evidence.
pub(crate) fn detect_in(snap: &Snapshot, paths: &PathIndex<'_>, systemd_host: bool) -> OwnerMap {
    let classes: Vec<Option<Class>> = (0..paths.len())
        .map(|i| classify(paths.path(i), systemd_host))
        .collect();
    let any_custom = classes.iter().flatten().any(|c| c.manager == Manager::Custom);
    let procs = any_custom.then(|| ProcessNames::collect(snap, paths));
    let mut out = OwnerMap::new();
    for (i, class) in classes.into_iter().enumerate() {
        let Some(class) = class else { continue };
        let evidence = evidence_of(snap, paths, i, &class, procs.as_ref());
        out.insert(
            paths.path(i).to_string(),
            Owner {
                manager: class.manager,
                unit: class.unit,
                detail: class.detail,
                evidence,
            },
        );
    }
    out
}

/// Why path `i` has its owner: the hierarchies it is in, the unit's files
/// (systemd), systemd's xattrs on it, and the processes that populate a
/// custom tree.
fn evidence_of(
    snap: &Snapshot,
    paths: &PathIndex<'_>,
    i: usize,
    class: &Class,
    procs: Option<&ProcessNames>,
) -> Vec<String> {
    let path = paths.path(i);
    let ev = &snap.owner_evidence;
    let mut evidence = vec![format!("path {path} in {}", paths.labels_joined(i))];
    if class.manager == Manager::Systemd
        && let Some(u) = &class.unit
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
    if class.manager == Manager::Custom
        && let Some(procs) = procs
    {
        let populating = procs.in_subtree(paths, i);
        if populating.is_empty() {
            evidence.push("no processes in it or below".into());
        } else {
            evidence.push(format!("populated by {}", populating.join(", ")));
        }
    }
    evidence
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(path: &str) -> (Manager, Option<String>, Option<String>) {
        let c = classify(path, true).unwrap();
        (c.manager, c.unit, c.detail)
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
        assert_eq!(classify("/batch", false).unwrap().detail, None);
        assert_eq!(classify("/", true), None);
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
