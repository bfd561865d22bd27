//! Turn a host into a [`Snapshot`].
//!
//! Hierarchies are identified from kernel data, never from mount-point names:
//! mountinfo super options give each mount's controllers and `name=`, mounts
//! with the same superblock (`major:minor`) are one hierarchy, `/proc/cgroups`
//! gives the hierarchy id of every bound controller, and the `ID:CONTROLLERS`
//! prefix of every `/proc/PID/task/TID/cgroup` line names the hierarchies that
//! are alive, including named ones and ones mounted nowhere.
//!
//! Only a mount table that cannot be read stops a scan; anything else that
//! can't be read becomes a [`Diagnostic`] with its path.

mod block;
mod os;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use petgraph::graph::{DiGraph, NodeIndex};
use thiserror::Error;

use crate::host::{CgroupMount, HostError, Membership, ProcCgroupsEntry, RawProcess, Root};
use crate::model::{
    Cgroup, Controller, ControllerStatus, Diagnostic, Edge, Hierarchy, HierarchyId, HostInfo, KernelShows,
    Mode, Mount, Node, Process, SNAPSHOT_SCHEMA, Snapshot, Thread, Vanished, Version, files,
};

/// A scan that could not produce a snapshot at all.
#[derive(Debug, Error)]
pub enum ScanError {
    /// The mount table is missing or unparsable; nothing can be found without it.
    ///
    /// The host error is part of the message and not a `source()`, so an
    /// error chain says it once.
    #[error("cannot read the mount table: {0}")]
    MountTable(HostError),
}

/// The note every scan of a live host by a non-root user carries: other
/// users' `/proc/PID` files and delegated cgroups are unreadable, so the
/// snapshot is partial. `None` as root or for `--root DIR`.
pub fn non_root_note(root: &Root) -> Option<Diagnostic> {
    let uid = nix::unistd::geteuid();
    (root.is_live() && !uid.is_root()).then(|| Diagnostic {
        path: "/proc".into(),
        message: format!(
            "{}running as uid {uid}, not root: other users' processes and some cgroup files cannot be read",
            Diagnostic::UNREADABLE
        ),
    })
}

/// First id given to a v1 hierarchy whose id the kernel data did not reveal.
const SYNTHETIC_ID_BASE: u32 = 1_000_000;

/// Scan a host into a snapshot: host identity, the mount table and
/// `/proc/cgroups`, processes (whose cgroup lines reveal every live
/// hierarchy), hierarchies, the cgroup trees, then processes and threads as
/// members of those trees.
pub fn scan(root: &Root) -> Result<Snapshot, ScanError> {
    let mut diags: Vec<Diagnostic> = non_root_note(root).into_iter().collect();
    let mut vanished = Vanished::default();
    let kernel = read_text(root, "/proc/sys/kernel/osrelease", &mut diags);
    let cmdline = read_text(root, "/proc/cmdline", &mut diags);
    let hostname = read_text(root, "/proc/sys/kernel/hostname", &mut diags);

    let mounts = root.cgroup_mounts().map_err(ScanError::MountTable)?;
    let proc_cgroups = read_proc_cgroups(root, &mut diags);
    // Processes first: their cgroup lines reveal every live hierarchy.
    let procs = read_processes(root, &mut vanished, &mut diags);
    let seen = seen_hierarchies(&procs);

    let mut hierarchies = build_hierarchies(&mounts, &proc_cgroups, &seen, &mut diags);
    let v2_controllers = read_v2_controllers(root, &mut hierarchies, &mut diags);
    let thread_mode = v2_mount(&hierarchies).and_then(|mp| block::thread_mode(root, &mp, &mut diags));
    let mode = detect_mode(&mounts);
    let controllers = controller_statuses(&proc_cgroups, &v2_controllers);

    let mut graph: DiGraph<Node, Edge> = DiGraph::new();
    let by_path = add_cgroup_trees(root, &mut graph, hierarchies, &mounts, &mut vanished, &mut diags);
    add_processes(&mut graph, procs, &by_path, &mounts);

    // systemd's version, read once: the OS facts, the readiness inventory
    // and the owners' evidence all take it from here.
    let systemd = crate::host::systemd::version(root, &mut |e| note(&mut diags, e));
    let readiness = crate::readiness::scan(root, kernel.as_deref(), systemd.as_ref(), &mut diags);
    let block_devices = block::devices(root, &mut diags);
    let mut snap = Snapshot {
        readiness,
        schema: SNAPSHOT_SCHEMA.to_string(),
        host: HostInfo {
            kernel,
            cmdline,
            hostname,
            machine_id: os::machine_id(root),
            mode,
            controllers,
            os: os::read_os(root, systemd.as_ref()),
            shows: KernelShows {
                block_devices,
                thread_mode,
            },
        },
        graph,
        diagnostics: diags,
        vanished,
        owner_evidence: Default::default(),
    };
    let mut notes = Vec::new();
    snap.owner_evidence = crate::owners::evidence::read(root, &snap, &mut notes);
    snap.diagnostics.extend(notes);
    Ok(snap)
}

/// Record a read failure as a diagnostic with its path.
fn note(diags: &mut Vec<Diagnostic>, e: HostError) {
    let (path, message) = e.diagnostic();
    diags.push(Diagnostic { path, message });
}

/// A small text file of the host (`None`, noted, when unreadable).
fn read_text(root: &Root, abs: &str, diags: &mut Vec<Diagnostic>) -> Option<String> {
    match root.read_text(abs) {
        Ok(t) => t,
        Err(e) => {
            note(diags, e);
            None
        }
    }
}

/// `/proc/cgroups`; empty (with a note) when absent or unreadable.
fn read_proc_cgroups(root: &Root, diags: &mut Vec<Diagnostic>) -> Vec<ProcCgroupsEntry> {
    match root.proc_cgroups() {
        Ok(Some(p)) => p,
        Ok(None) => {
            diags.push(Diagnostic {
                path: root.path("/proc/cgroups").display().to_string(),
                message: "file is absent: controller hierarchy ids come from /proc/PID/cgroup only".into(),
            });
            Vec::new()
        }
        Err(e) => {
            note(diags, e);
            Vec::new()
        }
    }
}

/// Every readable process; those that exit while read are counted as vanished.
fn read_processes(root: &Root, vanished: &mut Vanished, diags: &mut Vec<Diagnostic>) -> Vec<RawProcess> {
    let mut procs: Vec<RawProcess> = Vec::new();
    match root.pids() {
        Ok(pids) => {
            for pid in pids {
                match root.process(pid) {
                    Ok(Ok(p)) => procs.push(p),
                    Ok(Err(_gone)) => vanished.tasks += 1,
                    Err(e) => note(diags, e),
                }
            }
        }
        Err(e) => note(diags, e),
    }
    procs
}

/// The v2 root's `cgroup.controllers`, also stored as the v2 hierarchy's
/// controllers (empty when there is no readable v2 mount).
fn read_v2_controllers(
    root: &Root,
    hierarchies: &mut [Hierarchy],
    diags: &mut Vec<Diagnostic>,
) -> Vec<String> {
    hierarchies
        .iter_mut()
        .find(|h| h.version == Version::V2)
        .and_then(|h| {
            let mp = h.scanned_mount.map(|i| h.mounts[i].mount_point.clone())?;
            match root.v2_controllers(&mp) {
                Ok(c) => {
                    let c = c.unwrap_or_default();
                    h.controllers = c
                        .iter()
                        .map(|s| s.parse().unwrap_or_else(|e| match e {}))
                        .collect();
                    Some(c)
                }
                Err(e) => {
                    note(diags, e);
                    None
                }
            }
        })
        .unwrap_or_default()
}

/// The mount point the scan reads the cgroup2 hierarchy at, if any.
fn v2_mount(hierarchies: &[Hierarchy]) -> Option<String> {
    let h = hierarchies.iter().find(|h| h.version == Version::V2)?;
    h.scanned_mount.map(|i| h.mounts[i].mount_point.clone())
}

/// One status per `/proc/cgroups` row, with whether v2 offers it.
fn controller_statuses(
    proc_cgroups: &[ProcCgroupsEntry],
    v2_controllers: &[String],
) -> Vec<ControllerStatus> {
    proc_cgroups
        .iter()
        .map(|e| ControllerStatus {
            controller: e.name.parse().unwrap_or_else(|e| match e {}),
            hierarchy: e.hierarchy,
            num_cgroups: e.num_cgroups,
            enabled: e.enabled,
            // v2 calls blkio `io`.
            in_v2: v2_controllers.iter().any(|c| {
                c == &e.name
                    || e.name
                        .parse::<Controller>()
                        .is_ok_and(|k| k.v2_name() == Some(c.as_str()))
            }),
        })
        .collect()
}

/// Cgroup nodes by hierarchy id and path.
type CgroupIndex = HashMap<HierarchyId, HashMap<String, NodeIndex>>;

/// Add every hierarchy and walk the cgroup tree of each mounted one.
fn add_cgroup_trees(
    root: &Root,
    graph: &mut DiGraph<Node, Edge>,
    hierarchies: Vec<Hierarchy>,
    mounts: &[CgroupMount],
    vanished: &mut Vanished,
    diags: &mut Vec<Diagnostic>,
) -> CgroupIndex {
    // Mount points of every mount, to avoid walking into a nested mount.
    let all_mount_points: BTreeSet<String> = mounts.iter().map(|m| m.mount_point.clone()).collect();
    let mut by_path: CgroupIndex = HashMap::new();
    for h in hierarchies {
        let id = h.id;
        let v2 = h.version == Version::V2;
        let scanned = h.scanned_mount.map(|i| h.mounts[i].clone());
        let hi = graph.add_node(Node::Hierarchy(h));
        let Some(mount) = scanned else { continue };
        let paths = by_path.entry(id).or_default();
        let filter: crate::host::SettingFilter = if v2 {
            |n, _| files::is_v2_setting(n)
        } else {
            files::is_v1_setting
        };
        let result = root.walk_cgroups(&mount.mount_point, &all_mount_points, filter, v2, |raw| {
            let path = hierarchy_path(&mount, &raw.rel_path);
            let parent = crate::model::path::parent(&path).and_then(|p| paths.get(p).copied());
            let ci = graph.add_node(Node::Cgroup(Cgroup {
                hierarchy: id,
                path: path.clone(),
                owner: raw.owner,
                settings: raw.settings.into_iter().collect(),
            }));
            match parent {
                Some(p) if raw.rel_path != "/" => graph.add_edge(p, ci, Edge::Child),
                _ => graph.add_edge(hi, ci, Edge::Child),
            };
            paths.insert(path, ci);
        });
        match result {
            Ok(stats) => {
                vanished.cgroups += stats.gone;
                for e in stats.errors {
                    note(diags, e);
                }
            }
            Err(e) => note(diags, e),
        }
    }
    by_path
}

/// A cgroup's path in its hierarchy from its path below the mount (a mount
/// may show only a subtree: its `root`).
fn hierarchy_path(mount: &Mount, rel_path: &str) -> String {
    if mount.root == "/" {
        rel_path.to_string()
    } else if rel_path == "/" {
        mount.root.clone()
    } else {
        format!("{}{}", mount.root.trim_end_matches('/'), rel_path)
    }
}

/// Add processes, their threads, and each thread's memberships (a
/// membership in a cgroup the walk did not see stays `unresolved`).
fn add_processes(
    graph: &mut DiGraph<Node, Edge>,
    procs: Vec<RawProcess>,
    by_path: &CgroupIndex,
    mounts: &[CgroupMount],
) {
    let cgroup_points: Vec<String> = mounts
        .iter()
        .map(|m| format!("{}/", m.mount_point.trim_end_matches('/')))
        .collect();
    for p in procs {
        let cgroup_files = p
            .open_files
            .into_iter()
            .filter(|f| cgroup_points.iter().any(|mp| f.starts_with(mp.as_str())))
            .collect();
        let pi = graph.add_node(Node::Process(Process {
            pid: p.pid,
            comm: p.comm,
            cmdline: p.cmdline,
            uid: p.uid,
            gid: p.gid,
            cgroup_files,
        }));
        for t in p.threads {
            let mut unresolved = Vec::new();
            let mut members = Vec::new();
            for m in &t.cgroups {
                match by_path.get(&m.hierarchy).and_then(|paths| paths.get(&m.path)) {
                    Some(&ci) => members.push(ci),
                    None => unresolved.push((m.hierarchy, m.path.clone())),
                }
            }
            let ti = graph.add_node(Node::Thread(Thread {
                tid: t.tid,
                comm: t.comm,
                unresolved,
            }));
            graph.add_edge(pi, ti, Edge::Thread);
            for ci in members {
                graph.add_edge(ti, ci, Edge::Member);
            }
        }
    }
}

/// Hierarchy ids seen in process cgroup files, with the kernel's controller list.
fn seen_hierarchies(procs: &[RawProcess]) -> BTreeMap<HierarchyId, Vec<String>> {
    let mut seen = BTreeMap::new();
    for p in procs {
        for t in &p.threads {
            for Membership {
                hierarchy,
                controllers,
                ..
            } in &t.cgroups
            {
                seen.entry(*hierarchy).or_insert_with(|| controllers.clone());
            }
        }
    }
    seen
}

/// Whether a super option names a controller (as opposed to `rw`, `xattr`, ...).
fn is_controller_option(key: &str, value: &Option<String>, proc_cgroups: &[ProcCgroupsEntry]) -> bool {
    value.is_none()
        && (proc_cgroups.iter().any(|e| e.name == key) || Controller::KNOWN.iter().any(|c| c.as_str() == key))
}

/// Group mounts into hierarchies and add the live ones mounted nowhere.
pub(crate) fn build_hierarchies(
    mounts: &[CgroupMount],
    proc_cgroups: &[ProcCgroupsEntry],
    seen: &BTreeMap<HierarchyId, Vec<String>>,
    diags: &mut Vec<Diagnostic>,
) -> Vec<Hierarchy> {
    let mut v1_groups: BTreeMap<&str, Vec<&CgroupMount>> = BTreeMap::new();
    let mut v2_mounts = Vec::new();
    for m in mounts {
        if m.v2 {
            v2_mounts.push(m);
        } else {
            v1_groups.entry(m.majmin.as_str()).or_default().push(m);
        }
    }
    // Keep mount-table order for groups so output is stable and familiar.
    let mut groups: Vec<Vec<&CgroupMount>> = v1_groups.into_values().collect();
    groups.sort_by_key(|g| g[0].line);
    let mut next_synthetic = SYNTHETIC_ID_BASE;
    let mut out: Vec<Hierarchy> = groups
        .iter()
        .map(|group| v1_hierarchy(group, proc_cgroups, seen, &mut next_synthetic, diags))
        .collect();
    // Two mounted hierarchies (two superblocks) that the kernel's tables give
    // one id: the tables disagree (a forged or hand-edited capture, or a
    // race with a remount). Both are kept, the second under an id of its
    // own, so none of their settings is dropped; and the host is said to be
    // read incompletely, so the verdict cannot pass as complete.
    for i in 1..out.len() {
        if let Some(first) = out[..i].iter().find(|h| h.id == out[i].id) {
            let id = HierarchyId::new(next_synthetic);
            next_synthetic += 1;
            let names = |h: &Hierarchy| {
                h.controllers
                    .iter()
                    .map(Controller::as_str)
                    .chain(h.name.as_deref())
                    .collect::<Vec<_>>()
                    .join(",")
            };
            diags.push(Diagnostic {
                path: "/proc/cgroups".into(),
                message: format!(
                    "{}hierarchy id {} is given to {} (mounted at {}) and to {} (mounted at {}), which are two \
                     hierarchies: the kernel's tables disagree; {} is scanned as hierarchy {id}, and its \
                     processes' memberships cannot be matched",
                    Diagnostic::UNREADABLE,
                    first.id,
                    names(first),
                    first.mounts.first().map_or("?", |m| m.mount_point.as_str()),
                    names(&out[i]),
                    out[i].mounts.first().map_or("?", |m| m.mount_point.as_str()),
                    names(&out[i]),
                ),
            });
            out[i].id = id;
        }
    }
    if !v2_mounts.is_empty() {
        out.push(v2_hierarchy(&v2_mounts, proc_cgroups));
    }
    let unmounted = unmounted_hierarchies(&out, proc_cgroups, seen, diags);
    out.extend(unmounted);
    out.sort_by_key(|h| h.id);
    out
}

/// A mount as the model keeps it: options without `name=`,
/// `release_agent=` and the controllers (the hierarchy has those).
fn to_mount(m: &CgroupMount, proc_cgroups: &[ProcCgroupsEntry]) -> Mount {
    Mount {
        mount_point: m.mount_point.clone(),
        root: m.root.clone(),
        source: m.source.clone(),
        options: m
            .super_options
            .iter()
            .filter(|(k, v)| k != "name" && k != "release_agent" && !is_controller_option(k, v, proc_cgroups))
            .map(|(k, v)| match v {
                Some(v) => format!("{k}={v}"),
                None => k.clone(),
            })
            .collect(),
        majmin: m.majmin.clone(),
    }
}

/// The value of a super option (`name=`, `release_agent=`).
fn super_option(m: &CgroupMount, key: &str) -> Option<String> {
    m.super_options
        .iter()
        .find(|(k, _)| k == key)
        .and_then(|(_, v)| v.clone())
}

/// One v1 hierarchy from the mounts of one superblock.
fn v1_hierarchy(
    group: &[&CgroupMount],
    proc_cgroups: &[ProcCgroupsEntry],
    seen: &BTreeMap<HierarchyId, Vec<String>>,
    next_synthetic: &mut u32,
    diags: &mut Vec<Diagnostic>,
) -> Hierarchy {
    let first = group[0];
    let controllers: Vec<Controller> = first
        .super_options
        .iter()
        .filter(|(k, v)| is_controller_option(k, v, proc_cgroups))
        .map(|(k, _)| k.parse().unwrap_or_else(|e| match e {}))
        .collect();
    let name = super_option(first, "name");
    let release_agent = super_option(first, "release_agent");
    let id = known_hierarchy_id(&controllers, name.as_deref(), proc_cgroups, seen).unwrap_or_else(|| {
        let id = HierarchyId::new(*next_synthetic);
        *next_synthetic += 1;
        diags.push(Diagnostic {
            path: format!("mountinfo line {}", first.line),
            message: format!(
                "hierarchy mounted at {} is not listed in /proc/cgroups or any /proc/PID/cgroup; \
                 gave it id {id}",
                first.mount_point
            ),
        });
        id
    });
    let mounts: Vec<Mount> = group.iter().map(|m| to_mount(m, proc_cgroups)).collect();
    let scanned_mount = pick_mount(&mounts);
    if let Some(i) = scanned_mount
        && mounts[i].root != "/"
    {
        diags.push(Diagnostic {
            path: mounts[i].mount_point.clone(),
            message: format!(
                "only part of hierarchy {id} is visible (mount root {}): cgroups outside it are not scanned",
                mounts[i].root
            ),
        });
    }
    Hierarchy {
        id,
        version: Version::V1,
        controllers,
        name,
        mounts,
        scanned_mount,
        release_agent,
    }
}

/// The kernel's id of a v1 hierarchy: from `/proc/cgroups` for a bound
/// controller, else from the processes' cgroup lines (by `name=` or by
/// controller).
fn known_hierarchy_id(
    controllers: &[Controller],
    name: Option<&str>,
    proc_cgroups: &[ProcCgroupsEntry],
    seen: &BTreeMap<HierarchyId, Vec<String>>,
) -> Option<HierarchyId> {
    controllers
        .iter()
        .find_map(|c| {
            proc_cgroups
                .iter()
                .find(|e| e.name == c.as_str() && e.hierarchy != HierarchyId::UNIFIED)
                .map(|e| e.hierarchy)
        })
        .or_else(|| {
            let tag = name.map(|n| format!("name={n}"));
            seen.iter()
                .find(|(_, cs)| match &tag {
                    Some(t) => cs.contains(t),
                    None => controllers.iter().any(|c| cs.iter().any(|s| s == c.as_str())),
                })
                .map(|(id, _)| *id)
        })
}

/// The one cgroup2 hierarchy (id 0), however many times it is mounted.
fn v2_hierarchy(v2_mounts: &[&CgroupMount], proc_cgroups: &[ProcCgroupsEntry]) -> Hierarchy {
    let mounts: Vec<Mount> = v2_mounts.iter().map(|m| to_mount(m, proc_cgroups)).collect();
    let scanned_mount = pick_mount(&mounts);
    Hierarchy {
        id: HierarchyId::UNIFIED,
        version: Version::V2,
        controllers: Vec::new(),
        name: None,
        mounts,
        scanned_mount,
        release_agent: None,
    }
}

/// Alive but mounted nowhere: bound controllers in /proc/cgroups, and
/// hierarchies (named ones too) that processes are still members of.
fn unmounted_hierarchies(
    mounted: &[Hierarchy],
    proc_cgroups: &[ProcCgroupsEntry],
    seen: &BTreeMap<HierarchyId, Vec<String>>,
    diags: &mut Vec<Diagnostic>,
) -> Vec<Hierarchy> {
    let is_mounted = |id: HierarchyId| mounted.iter().any(|h| h.id == id);
    let mut unmounted: BTreeMap<HierarchyId, (Vec<Controller>, Option<String>)> = BTreeMap::new();
    for e in proc_cgroups
        .iter()
        .filter(|e| e.hierarchy != HierarchyId::UNIFIED)
    {
        if !is_mounted(e.hierarchy) {
            unmounted
                .entry(e.hierarchy)
                .or_default()
                .0
                .push(e.name.parse().unwrap_or_else(|e| match e {}));
        }
    }
    for (id, cs) in seen.iter().filter(|(id, _)| **id != HierarchyId::UNIFIED) {
        if is_mounted(*id) {
            continue;
        }
        let entry = unmounted.entry(*id).or_default();
        for c in cs {
            if let Some(n) = c.strip_prefix("name=") {
                entry.1 = Some(n.to_string());
            } else {
                let c: Controller = c.parse().unwrap_or_else(|e| match e {});
                if !entry.0.contains(&c) {
                    entry.0.push(c);
                }
            }
        }
    }
    let mut out = Vec::new();
    for (id, (controllers, name)) in unmounted {
        let h = Hierarchy {
            id,
            version: Version::V1,
            controllers,
            name,
            mounts: Vec::new(),
            scanned_mount: None,
            release_agent: None,
        };
        diags.push(Diagnostic {
            path: "/proc/self/mountinfo".into(),
            message: format!(
                "hierarchy {id} ({}) is alive but mounted nowhere: its cgroups cannot be read",
                h.label()
            ),
        });
        out.push(h);
    }
    out
}

/// The mount to walk: the whole hierarchy (root `/`) if any mount shows it,
/// preferring the canonical place under `/sys/fs/cgroup`; else the widest view.
fn pick_mount(mounts: &[Mount]) -> Option<usize> {
    (0..mounts.len()).min_by_key(|&i| {
        let m = &mounts[i];
        let outside_ns = m.root.starts_with("/..");
        (
            outside_ns,
            m.root != "/",
            !m.mount_point.starts_with("/sys/fs/cgroup"),
            m.root.len(),
            m.mount_point.len(),
        )
    })
}

/// Legacy, hybrid or unified, from where cgroup filesystems are mounted.
pub(crate) fn detect_mode(mounts: &[CgroupMount]) -> Mode {
    let v2_at_top = mounts
        .iter()
        .any(|m| m.v2 && m.mount_point.trim_end_matches('/') == "/sys/fs/cgroup");
    let any_v1 = mounts.iter().any(|m| !m.v2);
    let any_v2 = mounts.iter().any(|m| m.v2);
    match (v2_at_top, any_v1, any_v2) {
        (true, _, _) => Mode::Unified,
        (false, true, true) => Mode::Hybrid,
        (false, true, false) => Mode::Legacy,
        (false, false, true) => Mode::Unified,
        (false, false, false) => Mode::None,
    }
}

#[cfg(test)]
mod tests;
