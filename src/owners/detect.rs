//! Who writes each cgroup: a pure function of the snapshot and its evidence.
//!
//! Owners are decided by evidence, strongest first ([`Strength`]):
//! 1. what PID 1 is (its `comm` and `/proc/1/exe`): only a host whose PID 1
//!    is systemd has systemd units, however its directories are named;
//! 2. the managers' own marks: systemd's unit files and cgroup xattrs, a
//!    runtime's state on disk (`/var/lib/docker/containers/<id>`,
//!    `/var/lib/lxc/<name>`, kubelet's `config.yaml`), its running daemon
//!    or installed package;
//! 3. the processes that populate a tree;
//! 4. only then the path's shape (docs/research/real-layouts.md §1–§12):
//!    systemd's `.slice`/`.service`/`.scope` names, kubelet's `kubepods`,
//!    the runtimes' `docker-<id>.scope`, `/docker/<id>`, `crio-`,
//!    `cri-containerd-`, `libpod-`, machined's `machine-…`, LXC's
//!    `lxc.payload.…`.
//!
//! A directory name alone never makes an owner: a path shaped like a
//! runtime's on a host where that runtime left no mark (no daemon, no
//! state, no package) is a custom manager's, and unit-named directories on
//! a host whose PID 1 is not systemd are too. Every owner carries its
//! evidence ([`Clue`]s) and the weakest evidence that decided it
//! ([`Owner::decided_by`]).

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

    /// The owner of a container engine's cgroups.
    pub fn of_engine(e: crate::model::evidence::Engine) -> Manager {
        use crate::model::evidence::Engine;
        match e {
            Engine::Docker => Manager::Docker,
            Engine::Podman => Manager::Podman,
            Engine::Containerd => Manager::Containerd,
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

/// How strong a piece of evidence is, weakest first (the derived order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Strength {
    /// The path's shape alone (`x.service`, `/docker/<id>`).
    PathShape,
    /// The processes that populate the cgroup or its subtree.
    Processes,
    /// The manager's own marks: unit files, systemd's cgroup xattrs, a
    /// runtime's state on disk, its running daemon or installed package.
    ManagerMark,
    /// What PID 1 is (its `comm` and executable).
    Pid1,
}

impl Strength {
    /// The name plans and audits print (`manager-mark`).
    pub fn as_str(self) -> &'static str {
        match self {
            Strength::PathShape => "path-shape",
            Strength::Processes => "processes",
            Strength::ManagerMark => "manager-mark",
            Strength::Pid1 => "pid1",
        }
    }
}

impl std::fmt::Display for Strength {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One piece of evidence for an owner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "ClueRepr")]
pub struct Clue {
    /// How strong it is.
    pub strength: Strength,
    /// What was seen (`unit files: /etc/systemd/system/a.service`).
    pub text: String,
}

impl Clue {
    /// A clue of `strength` saying `text`.
    pub fn new(strength: Strength, text: impl Into<String>) -> Clue {
        Clue {
            strength,
            text: text.into(),
        }
    }
}

/// A clue as plans and snapshots of earlier versions wrote it (a bare
/// string, read as the weakest evidence) or as they are written now.
#[derive(Deserialize)]
#[serde(untagged)]
enum ClueRepr {
    Typed { strength: Strength, text: String },
    Text(String),
}

impl From<ClueRepr> for Clue {
    fn from(r: ClueRepr) -> Clue {
        match r {
            ClueRepr::Typed { strength, text } => Clue { strength, text },
            ClueRepr::Text(text) => Clue::new(Strength::PathShape, text),
        }
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
    /// Why we think so, strongest first.
    pub evidence: Vec<Clue>,
    /// The weakest evidence the decision rests on: the host-wide mark (PID
    /// 1, the runtime's presence) or the cgroup's own, whichever is weaker.
    #[serde(default = "weakest")]
    pub decided_by: Strength,
    /// The engine's own record names this cgroup (or one below it) as a
    /// container's `cgroupsPath`: the runtime makes it there itself although
    /// no naming rule says so (containerd's `/default/<id>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recorded: Option<String>,
}

fn weakest() -> Strength {
    Strength::PathShape
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
pub fn is_systemd_host(snap: &Snapshot) -> bool {
    is_systemd_host_with(snap, &snap.owner_evidence)
}

/// [`is_systemd_host`] with the evidence read so far (the scanner asks
/// before it reads the units: only a systemd host has them).
///
/// PID 1 decides when the snapshot has it: its `comm` (systemd names itself
/// `systemd` whatever path started it) or its executable. A `name=systemd`
/// hierarchy, a `system.slice` or an `/init.scope` directory prove nothing
/// on their own: anything can make them (a busybox init, OpenRC's
/// compatibility mounts, a container image that wants to run systemd, an
/// admin's `mkdir`). Without PID 1 (a capture of a container's subtree)
/// only systemd's own marks count: the `xattr` option it mounts the
/// `name=systemd` hierarchy with (mount-setup.c), or the invocation ids it
/// sets on its units' cgroups.
pub fn is_systemd_host_with(snap: &Snapshot, ev: &crate::model::evidence::Evidence) -> bool {
    pid1_verdict(snap, ev).0
}

/// Whether PID 1 is systemd, and the clue that says so (or says what it is).
fn pid1_verdict(snap: &Snapshot, ev: &crate::model::evidence::Evidence) -> (bool, Clue) {
    let exe = ev.pid1_exe.as_deref();
    let pid1 = snap.graph.node_weights().find_map(|node| match node {
        Node::Process(p) if p.pid == crate::model::Pid::new(1) => Some(p),
        _ => None,
    });
    // A capture from inside a container sees only its own subtree (every
    // mount's root is below `/`): its PID 1 is the container's init, not
    // the host's manager.
    let whole_tree = snap.hierarchies().iter().any(|(_, h)| {
        h.scanned_mount
            .and_then(|i| h.mounts.get(i))
            .is_some_and(|m| m.root == "/")
    });
    if let Some(p) = pid1.filter(|_| whole_tree) {
        let by_exe = exe.is_some_and(|e| e.rsplit('/').next() == Some("systemd"));
        let by_comm = p.comm == "systemd";
        let by_cmdline = p
            .cmdline
            .first()
            .is_some_and(|c| c.rsplit('/').next() == Some("systemd"));
        let exe_text = exe.map_or_else(String::new, |e| format!(", exe {e}"));
        let what = format!(
            "PID 1 is {} (comm {}{exe_text})",
            p.cmdline.first().map_or(p.comm.as_str(), String::as_str),
            p.comm
        );
        return (by_exe || by_comm || by_cmdline, Clue::new(Strength::Pid1, what));
    }
    let xattr_mount = snap.hierarchies().iter().any(|(_, h)| {
        h.name.as_deref() == Some("systemd")
            && h.mounts.iter().any(|m| m.options.iter().any(|o| o == "xattr"))
    });
    let invocation = ev
        .xattrs
        .values()
        .any(|x| x.contains_key("trusted.invocation_id"));
    if xattr_mount || invocation {
        let why = if xattr_mount {
            "the name=systemd hierarchy is mounted with systemd's xattr option (PID 1 does not show the host's manager)"
        } else {
            "cgroups carry systemd's trusted.invocation_id (PID 1 does not show the host's manager)"
        };
        return (true, Clue::new(Strength::ManagerMark, why));
    }
    let why = if pid1.is_some() {
        "only a container's subtree is visible (its PID 1 is the container's) and no mark of systemd"
    } else {
        "PID 1 not in the snapshot and no mark of systemd"
    };
    (false, Clue::new(Strength::PathShape, why))
}

/// What the host shows of its managers, gathered once per detection.
#[derive(Debug)]
pub(crate) struct HostMarks<'s> {
    /// PID 1 is systemd.
    systemd: bool,
    /// What PID 1 is, as evidence.
    pid1: Clue,
    /// Each runtime's host-wide marks (daemon, state directory, package).
    runtimes: BTreeMap<Manager, Vec<String>>,
    /// The runtimes' state entries on disk, by manager name.
    state: &'s BTreeMap<String, Vec<String>>,
}

/// A running daemon that shows its runtime is in charge (`comm`).
const DAEMONS: &[(&str, Manager)] = &[
    ("dockerd", Manager::Docker),
    ("containerd", Manager::Containerd),
    ("kubelet", Manager::Kubelet),
    ("crio", Manager::Crio),
    ("conmon", Manager::Podman),
    ("podman", Manager::Podman),
    ("libvirtd", Manager::Libvirt),
    ("virtqemud", Manager::Libvirt),
    ("lxc-start", Manager::Lxc),
    ("lxc-monitord", Manager::Lxc),
];

/// An installed package (the readiness inventory's component name).
const PACKAGES: &[(&str, Manager)] = &[
    ("docker", Manager::Docker),
    ("containerd", Manager::Containerd),
    ("kubelet", Manager::Kubelet),
    ("crio", Manager::Crio),
    ("podman", Manager::Podman),
    ("lxc", Manager::Lxc),
];

impl<'s> HostMarks<'s> {
    /// Read the marks of a snapshot (one pass over its processes).
    pub(crate) fn of(snap: &'s Snapshot) -> Self {
        let ev = &snap.owner_evidence;
        let (systemd, pid1) = pid1_verdict(snap, ev);
        let mut runtimes: BTreeMap<Manager, Vec<String>> = BTreeMap::new();
        let mut seen: BTreeMap<(Manager, &str), usize> = BTreeMap::new();
        for node in snap.graph.node_weights() {
            if let Node::Process(p) = node
                && let Some((comm, m)) = DAEMONS.iter().find(|(c, _)| *c == p.comm)
            {
                *seen.entry((*m, comm)).or_default() += 1;
            }
        }
        for ((m, comm), n) in seen {
            let s = if n == 1 { String::new() } else { format!(" ×{n}") };
            runtimes.entry(m).or_default().push(format!("{comm} running{s}"));
        }
        for (name, entries) in &ev.runtime_state {
            if let Some(m) = manager_named(name)
                && let Some(dir) = entries.first()
            {
                runtimes.entry(m).or_default().push(format!("its state {dir}"));
            }
        }
        // A capture from inside a container: the cgroup mounts show only the
        // container's own cgroup, the view its runtime set up.
        for (_, h) in snap.hierarchies() {
            let Some(m) = h.scanned_mount.and_then(|i| h.mounts.get(i)) else {
                continue;
            };
            if m.root == "/" {
                continue;
            }
            let runtime = m
                .root
                .split('/')
                .filter(|c| !c.is_empty())
                .enumerate()
                .find_map(|(i, c)| component_manager(c, i, None));
            if let Some((rt, _)) = runtime {
                let text = format!(
                    "the cgroup mounts show only {}, the view {rt} gives its containers",
                    m.root
                );
                let v = runtimes.entry(rt).or_default();
                if !v.contains(&text) {
                    v.push(text);
                }
            }
        }
        for c in &snap.readiness.components {
            if c.place == crate::model::readiness::Place::Host
                && let Some((_, m)) = PACKAGES.iter().find(|(n, _)| *n == c.name)
            {
                runtimes
                    .entry(*m)
                    .or_default()
                    .push(format!("{} {} installed ({})", c.name, c.version, c.evidence));
            }
        }
        HostMarks {
            systemd,
            pid1,
            runtimes,
            state: &ev.runtime_state,
        }
    }

    /// Whether PID 1 is systemd.
    pub(crate) fn systemd_host(&self) -> bool {
        self.systemd
    }

    /// The runtime's state entry that names this path component, if any
    /// (`/var/lib/docker/containers/<id>` for `docker-<id>.scope`).
    fn state_naming(&self, m: Manager, comp: &str) -> Option<&'s str> {
        let entries = self.state.get(m.as_str())?;
        let c = comp.trim_end_matches(".scope").trim_end_matches(".slice");
        entries.iter().map(String::as_str).find(|e| {
            let n = e.rsplit('/').next().unwrap_or(e);
            n.len() >= 2
                && (c == n
                    || [format!("-{n}"), format!(".{n}"), format!(":{n}"), format!("/{n}")]
                        .iter()
                        .any(|suffix| c.ends_with(suffix.as_str())))
        })
    }
}

/// The manager a runtime-state key names.
fn manager_named(name: &str) -> Option<Manager> {
    [
        Manager::Docker,
        Manager::Containerd,
        Manager::Kubelet,
        Manager::Crio,
        Manager::Podman,
        Manager::Libvirt,
        Manager::Lxc,
    ]
    .into_iter()
    .find(|m| m.as_str() == name)
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
    /// The runtime its name suggests, when no mark confirmed it.
    runtime_name: Option<Manager>,
    /// The container cgroup an engine's record names at or below it.
    recorded: Option<String>,
}

impl Class {
    fn new(manager: Manager, unit: Option<&str>, detail: Option<String>) -> Self {
        Class {
            manager,
            unit: unit.map(str::to_string),
            detail,
            runtime_name: None,
            recorded: None,
        }
    }
}

/// Classify one path top-down; `None` for `/`. A component shaped like a
/// runtime's counts only for the runtimes `present` accepts (those that
/// left a mark on the host); the others are remembered as the name's
/// suggestion and the component is read as any other.
fn classify(path: &str, systemd_host: bool, present: impl Fn(Manager) -> bool) -> Option<Class> {
    // The innermost systemd unit so far, and the user manager it runs under.
    let mut unit: Option<&str> = None;
    let mut user_mgr: Option<&str> = None;
    let mut prev: Option<&str> = None;
    let mut suggested: Option<Manager> = None;
    let class = |c: Class, suggested: Option<Manager>| {
        Some(Class {
            runtime_name: suggested,
            ..c
        })
    };
    for (i, comp) in path.split('/').filter(|s| !s.is_empty()).enumerate() {
        let named = component_manager(comp, i, prev);
        if let Some((m, _)) = named
            && !present(m)
        {
            suggested = suggested.or(Some(m));
        }
        if let Some((m, how)) = named.filter(|(m, _)| present(*m)) {
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
        let c = match unit {
            Some(u) if comp == ".control" => Class::new(
                Manager::Systemd,
                Some(u),
                Some("systemd's control group of a delegated unit".into()),
            ),
            Some(u) => Class::new(Manager::Custom, Some(u), Some(format!("inside {u}"))),
            None if systemd_host => Class::new(Manager::Custom, None, Some("beside systemd's tree".into())),
            None => Class::new(Manager::Custom, None, None),
        };
        // A custom tree's name may still suggest a runtime below this point.
        let below = path
            .split('/')
            .filter(|s| !s.is_empty())
            .enumerate()
            .skip(i + 1)
            .find_map(|(j, c)| component_manager(c, j, None).map(|(m, _)| m));
        return class(c, suggested.or(below));
    }
    // No component at all: the root.
    prev?;
    class(
        Class::new(
            Manager::Systemd,
            unit,
            user_mgr.map(|u| format!("user manager in {u}")),
        ),
        suggested,
    )
}

/// Whether `owner` itself builds the cgroup at `path` on v2: its own naming
/// puts that cgroup there (a unit's or slice's cgroup, a runtime's tree).
/// A plan node merged from an owner's cgroup at another path (the
/// `name=systemd` cgroup `/app.slice` placed under a custom `/app/…`) is
/// not built by anyone but cgmig, so its create must stay in the plan.
pub fn builds_at(path: &str, owner: &Owner, systemd_host: bool) -> bool {
    if owner.manager.is_runtime()
        && let Some(r) = &owner.recorded
        && on_recorded_path(path, r)
    {
        return true;
    }
    match classify(path, systemd_host, |m| m == owner.manager) {
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
    detect_in(snap, &PathIndex::collect(snap), &HostMarks::of(snap))
}

/// [`detect`] over the snapshot's cgroups grouped by path, with the host's
/// marks read once (the annotate pass has both).
/// Steps: classify each path by its name, confirm each runtime's by its
/// marks (a name alone is custom), name the processes (only when a custom
/// tree will list them), then gather each path's evidence.
pub(crate) fn detect_in(snap: &Snapshot, paths: &PathIndex<'_>, marks: &HostMarks<'_>) -> OwnerMap {
    let records = recorded_cgroupfs_paths(snap, marks);
    let classes: Vec<Option<Class>> = (0..paths.len())
        .map(|i| {
            let path = paths.path(i);
            let c = classify(path, marks.systemd, |m| marks.runtimes.contains_key(&m))?;
            Some(recorded_owner(path, c, &records))
        })
        .collect();
    let any_custom = classes.iter().flatten().any(|c| c.manager == Manager::Custom);
    let procs = any_custom.then(|| ProcessNames::collect(snap, paths));
    let mut out = OwnerMap::new();
    for (i, class) in classes.into_iter().enumerate() {
        let Some(class) = class else { continue };
        let (evidence, decided_by) = evidence_of(snap, paths, i, &class, marks, procs.as_ref());
        out.insert(
            paths.path(i).to_string(),
            Owner {
                manager: class.manager,
                unit: class.unit,
                detail: class.detail,
                evidence,
                decided_by,
                recorded: class.recorded,
            },
        );
    }
    out
}

/// The cgroupfs-form `cgroupsPath` each running engine's records give its
/// containers (containerd's `ctr run` puts `/default/c768` in its task
/// spec): a path no naming rule recognises, but the engine's own record of
/// it, which is a manager mark.
fn recorded_cgroupfs_paths(snap: &Snapshot, marks: &HostMarks<'_>) -> Vec<(String, Manager, String)> {
    snap.owner_evidence
        .containers
        .iter()
        .filter_map(|c| {
            let p = c.cgroups_path.as_deref().filter(|p| p.starts_with('/'))?;
            let m = Manager::of_engine(c.engine);
            marks
                .runtimes
                .contains_key(&m)
                .then(|| (p.trim_end_matches('/').to_string(), m, c.source.clone()))
        })
        .collect()
}

/// Whether `path` is a recorded container cgroup or a directory above it.
fn on_recorded_path(path: &str, recorded: &str) -> bool {
    recorded == path || recorded.strip_prefix(path).is_some_and(|r| r.starts_with('/'))
}

/// A custom cgroup outside every unit that is an engine's recorded
/// container cgroup, or a directory above one that its runtime makes on
/// the way (runc and crun `mkdir -p` the whole path), belongs to that
/// engine; everything else keeps its class.
fn recorded_owner(path: &str, c: Class, records: &[(String, Manager, String)]) -> Class {
    if c.manager != Manager::Custom || c.unit.is_some() {
        return c;
    }
    let hit = records.iter().find(|(p, _, _)| on_recorded_path(path, p));
    match hit {
        Some((p, m, _)) => Class {
            recorded: Some(p.clone()),
            ..Class::new(*m, None, Some("cgroupsPath of its task spec".to_string()))
        },
        None => c,
    }
}

/// The owner of a path no scanned cgroup has (a node the plan adds, such as
/// the `/docker` parent of a container's view `/docker/<id>`), from its
/// shape and the host's marks; `None` for `/`.
pub(crate) fn owner_of_new_path(path: &str, marks: &HostMarks<'_>) -> Option<Owner> {
    let c = classify(path, marks.systemd, |m| marks.runtimes.contains_key(&m))?;
    let mut evidence = vec![Clue::new(
        Strength::PathShape,
        format!("{path}: a path the plan adds (no v1 cgroup there)"),
    )];
    let host: Vec<Clue> = match c.manager {
        Manager::Systemd => vec![marks.pid1.clone()],
        m => marks
            .runtimes
            .get(&m)
            .into_iter()
            .flatten()
            .map(|t| Clue::new(Strength::ManagerMark, t.clone()))
            .collect(),
    };
    evidence.splice(0..0, host);
    Some(Owner {
        manager: c.manager,
        unit: c.unit,
        detail: c.detail,
        evidence,
        decided_by: Strength::PathShape,
        recorded: None,
    })
}

/// Why path `i` has its owner, strongest first, and the weakest evidence
/// the decision rests on: the host-wide link (PID 1 for systemd, the
/// runtime's presence) and the path's own best clue.
fn evidence_of(
    snap: &Snapshot,
    paths: &PathIndex<'_>,
    i: usize,
    class: &Class,
    marks: &HostMarks<'_>,
    procs: Option<&ProcessNames>,
) -> (Vec<Clue>, Strength) {
    let path = paths.path(i);
    let ev = &snap.owner_evidence;
    let mut host: Vec<Clue> = Vec::new();
    let mut own: Vec<Clue> = vec![Clue::new(
        Strength::PathShape,
        format!("path {path} in {}", paths.labels_joined(i)),
    )];
    match class.manager {
        Manager::Systemd => {
            host.push(marks.pid1.clone());
            if let Some(u) = &class.unit {
                own.push(match ev.units.get(u) {
                    Some(cfg) => Clue::new(
                        Strength::ManagerMark,
                        format!("unit files: {}", cfg.files.join(", ")),
                    ),
                    None => Clue::new(
                        Strength::PathShape,
                        format!("{u}: no unit file (transient or built-in)"),
                    ),
                });
            }
        }
        m if m.is_runtime() => {
            for text in marks.runtimes.get(&m).into_iter().flatten() {
                host.push(Clue::new(Strength::ManagerMark, text.clone()));
            }
            if let Some(c) = ev.containers.iter().find(|c| {
                Manager::of_engine(c.engine) == m
                    && c.cgroups_path.as_deref().is_some_and(|p| {
                        p.trim_end_matches('/') == path
                            || p.strip_prefix(path).is_some_and(|r| r.starts_with('/'))
                    })
            }) {
                own.push(Clue::new(
                    Strength::ManagerMark,
                    format!(
                        "cgroupsPath {} of container {} in {}",
                        c.cgroups_path.as_deref().unwrap_or_default(),
                        c.id,
                        c.source
                    ),
                ));
            }
            if let Some(entry) = path
                .split('/')
                .filter(|c| !c.is_empty())
                .find_map(|c| marks.state_naming(m, c))
            {
                own.push(Clue::new(
                    Strength::ManagerMark,
                    format!("its container in {m}'s state: {entry}"),
                ));
            }
        }
        _ => {}
    }
    if let Some(r) = class.runtime_name {
        own.push(Clue::new(
            Strength::PathShape,
            format!("named like {r}'s, but {r} left no mark on the host (no daemon, state or package)"),
        ));
    }
    if let Some(x) = ev.xattrs.get(path) {
        let names: Vec<&str> = x.keys().map(String::as_str).collect();
        own.push(Clue::new(
            Strength::ManagerMark,
            format!("xattrs: {}", names.join(", ")),
        ));
    }
    if class.manager == Manager::Custom
        && let Some(procs) = procs
    {
        let populating = procs.in_subtree(paths, i);
        own.push(if populating.is_empty() {
            Clue::new(Strength::PathShape, "no processes in it or below")
        } else {
            Clue::new(
                Strength::Processes,
                format!("populated by {}", populating.join(", ")),
            )
        });
    }
    // The path's own best clue, and the host's best for this manager.
    let own_best = own
        .iter()
        .map(|c| c.strength)
        .max()
        .unwrap_or(Strength::PathShape);
    let decided_by = match host.iter().map(|c| c.strength).max() {
        Some(h) => h.min(own_best),
        None => own_best,
    };
    host.extend(own);
    host.sort_by_key(|c| std::cmp::Reverse(c.strength));
    (host, decided_by)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(path: &str) -> (Manager, Option<String>, Option<String>) {
        let c = classify(path, true, |_| true).unwrap();
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
        assert_eq!(classify("/batch", false, |_| true).unwrap().detail, None);
        assert_eq!(classify("/", true, |_| true), None);
    }

    /// containerd's `ctr run` puts a container at the `cgroupsPath` of its
    /// task spec (`/default/c768`): no naming rule knows that path, the
    /// record does; the runtime makes it and the directory above it.
    #[test]
    fn an_engines_record_owns_its_cgroupfs_path() {
        let records = vec![(
            "/default/c768".to_string(),
            Manager::Containerd,
            "/run/containerd/io.containerd.runtime.v2.task/default/c768/config.json".to_string(),
        )];
        let custom = |p: &str| classify(p, true, |_| true).unwrap();
        for p in ["/default", "/default/c768"] {
            let c = recorded_owner(p, custom(p), &records);
            assert_eq!(c.manager, Manager::Containerd, "{p}");
            assert_eq!(c.recorded.as_deref(), Some("/default/c768"));
            let o = Owner {
                manager: c.manager,
                unit: c.unit,
                detail: c.detail,
                evidence: Vec::new(),
                decided_by: Strength::ManagerMark,
                recorded: c.recorded,
            };
            assert!(builds_at(p, &o, true), "{p}");
            assert!(!builds_at("/elsewhere", &o, true));
        }
        // A sibling, a deeper path and a custom cgroup inside a unit keep theirs.
        for p in [
            "/defaults",
            "/default/c768/x",
            "/system.slice/app.service/default",
        ] {
            assert_eq!(recorded_owner(p, custom(p), &records), custom(p), "{p}");
        }
    }

    #[test]
    fn owners_build_only_at_their_own_paths() {
        let systemd = |u: &str| Owner {
            manager: Manager::Systemd,
            unit: Some(u.into()),
            detail: None,
            evidence: Vec::new(),
            decided_by: Strength::PathShape,
            recorded: None,
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
