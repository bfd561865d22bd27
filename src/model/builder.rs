//! An in-memory [`Snapshot`] builder, so the audit and the planner can be
//! tested on a host written in a few lines of Rust, without a YAML spec
//! materialized on disk and scanned back (`fixture` + `scan`, which stay the
//! way to test the scanner itself).
//!
//! The builder lays the graph out the way the scanner does: hierarchy
//! nodes, each followed by its cgroups parent before child (the root `/`
//! implied), then each process followed by its threads, every thread with
//! one membership edge per hierarchy. Setting files that are not given are
//! absent (the scanner would read the kernel's default there); the planner
//! and the audit treat an absent file as the default.
//!
//! ```ignore
//! let snap = SnapshotBuilder::new()
//!     .v1(1, &["memory"])
//!     .v1(2, &["cpu", "cpuacct"])
//!     .setting(1, "/app", "memory.limit_in_bytes", "1073741824")
//!     .process(10, "web", "/app")
//!     .thread(10, 11, 2, "/app/slow")
//!     .build();
//! ```
//!
//! Misuse (a placement in a hierarchy that was not declared, a thread of an
//! unknown process) is a bug in the test and panics with what was wrong.

use std::collections::BTreeMap;

use petgraph::graph::{DiGraph, NodeIndex};

use super::{
    BlockDevice, Cgroup, Controller, ControllerStatus, Edge, FileOwner, Hierarchy, HostInfo, KernelShows,
    Mode, Mount, Node, Ownership, Process, SNAPSHOT_SCHEMA, Snapshot, Thread, Version,
};
use super::{HierarchyId, Pid, Tid};

/// One hierarchy being built: its controllers and cgroups by path.
#[derive(Debug, Clone)]
struct HierarchyDraft {
    id: HierarchyId,
    version: Version,
    controllers: Vec<Controller>,
    name: Option<String>,
    cgroups: BTreeMap<String, Cgroup>,
}

/// One process being built: placement per hierarchy and extra threads.
#[derive(Debug, Clone)]
struct ProcessDraft {
    pid: Pid,
    comm: String,
    uid: u32,
    /// Placement in every hierarchy not in `cgroups`.
    everywhere: String,
    /// Placement overrides: hierarchy id → path.
    cgroups: BTreeMap<HierarchyId, String>,
    /// Extra threads: tid → placement overrides (hierarchy id → path).
    threads: BTreeMap<Tid, BTreeMap<HierarchyId, String>>,
}

/// Builds a [`Snapshot`] in memory; see the module docs.
#[derive(Debug, Clone)]
pub struct SnapshotBuilder {
    kernel: String,
    hostname: String,
    hierarchies: Vec<HierarchyDraft>,
    processes: Vec<ProcessDraft>,
    shows: KernelShows,
}

impl Default for SnapshotBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl SnapshotBuilder {
    /// An empty host running kernel 6.1.0 (every v2 controller available).
    pub fn new() -> Self {
        SnapshotBuilder {
            kernel: "6.1.0".into(),
            hostname: "builder".into(),
            hierarchies: Vec::new(),
            processes: Vec::new(),
            shows: KernelShows::default(),
        }
    }

    /// The kernel release the host runs (the planner gates v2 features on it).
    pub fn kernel(mut self, release: &str) -> Self {
        self.kernel = release.into();
        self
    }

    /// A block device with its active scheduler (`/sys/block/NAME`).
    pub fn block_device(mut self, name: &str, dev: &str, scheduler: &str) -> Self {
        self.shows.block_devices.push(BlockDevice {
            name: name.into(),
            dev: Some(dev.into()),
            scheduler: Some(scheduler.into()),
        });
        self
    }

    /// Whether the cgroup2 root shows `cgroup.threads` (thread mode).
    pub fn thread_mode(mut self, shown: bool) -> Self {
        self.shows.thread_mode = Some(shown);
        self
    }

    /// A v1 hierarchy with these controllers; `name=X` in the list makes it
    /// a named hierarchy (`name=systemd`).
    pub fn v1(self, id: impl Into<HierarchyId>, controllers: &[&str]) -> Self {
        let id = id.into();
        assert!(
            id != HierarchyId::UNIFIED,
            "hierarchy id 0 is the v2 hierarchy: use v2()"
        );
        self.hierarchy(id, Version::V1, controllers)
    }

    /// The v2 hierarchy (id 0) with these controllers in its root's
    /// `cgroup.controllers`.
    pub fn v2(self, controllers: &[&str]) -> Self {
        self.hierarchy(HierarchyId::UNIFIED, Version::V2, controllers)
    }

    fn hierarchy(mut self, id: HierarchyId, version: Version, controllers: &[&str]) -> Self {
        assert!(
            self.hierarchies.iter().all(|h| h.id != id),
            "hierarchy {id} declared twice"
        );
        let (names, controllers): (Vec<&str>, Vec<&str>) =
            controllers.iter().partition(|c| c.starts_with("name="));
        let mut h = HierarchyDraft {
            id,
            version,
            controllers: controllers
                .iter()
                .map(|c| c.parse().unwrap_or_else(|e| match e {}))
                .collect(),
            name: names.first().map(|n| n.trim_start_matches("name=").to_string()),
            cgroups: BTreeMap::new(),
        };
        h.cgroups.insert("/".into(), empty_cgroup(id, "/"));
        self.hierarchies.push(h);
        self
    }

    /// A cgroup (and every missing ancestor) in a hierarchy.
    pub fn cgroup(mut self, hierarchy: impl Into<HierarchyId>, path: &str) -> Self {
        self.cgroup_mut(hierarchy.into(), path);
        self
    }

    /// A setting file's raw value in a cgroup (made if missing).
    pub fn setting(mut self, hierarchy: impl Into<HierarchyId>, path: &str, file: &str, value: &str) -> Self {
        self.cgroup_mut(hierarchy.into(), path)
            .settings
            .insert(file.into(), value.into());
        self
    }

    /// The cgroup's directory and membership files belong to `uid` (v1
    /// delegation by `chown`).
    pub fn owner(mut self, hierarchy: impl Into<HierarchyId>, path: &str, uid: u32) -> Self {
        let owned = Some(FileOwner {
            uid,
            gid: uid,
            mode: 0o755,
        });
        self.cgroup_mut(hierarchy.into(), path).owner = Ownership {
            dir: owned,
            procs: owned,
            tasks: owned,
        };
        self
    }

    /// A process (uid 0, its main thread tid = pid) in `path` of every
    /// hierarchy; [`place`](Self::place) overrides one hierarchy.
    pub fn process(mut self, pid: impl Into<Pid>, comm: &str, path: &str) -> Self {
        let pid = pid.into();
        assert!(
            self.processes.iter().all(|p| p.pid != pid),
            "process {pid} declared twice"
        );
        self.processes.push(ProcessDraft {
            pid,
            comm: comm.into(),
            uid: 0,
            everywhere: path.into(),
            cgroups: BTreeMap::new(),
            threads: BTreeMap::new(),
        });
        self
    }

    /// The process's real uid.
    pub fn uid(mut self, pid: impl Into<Pid>, uid: u32) -> Self {
        self.process_mut(pid.into()).uid = uid;
        self
    }

    /// Every thread of the process is in `path` of this hierarchy.
    pub fn place(mut self, pid: impl Into<Pid>, hierarchy: impl Into<HierarchyId>, path: &str) -> Self {
        self.process_mut(pid.into())
            .cgroups
            .insert(hierarchy.into(), path.into());
        self
    }

    /// Thread `tid` of the process is in `path` of this hierarchy (a v1
    /// `tasks` write); elsewhere it is where its process is. Calling it
    /// again for the same thread adds another override.
    pub fn thread(
        mut self,
        pid: impl Into<Pid>,
        tid: impl Into<Tid>,
        hierarchy: impl Into<HierarchyId>,
        path: &str,
    ) -> Self {
        let (pid, tid) = (pid.into(), tid.into());
        assert!(tid != pid.main_thread(), "the main thread is placed with place()");
        self.process_mut(pid)
            .threads
            .entry(tid)
            .or_default()
            .insert(hierarchy.into(), path.into());
        self
    }

    /// The snapshot: the graph in the scanner's order, host facts derived
    /// from the hierarchies (mode, `/proc/cgroups` lines).
    pub fn build(mut self) -> Snapshot {
        self.imply_placed_cgroups();
        self.hierarchies.sort_by_key(|h| h.id);
        let mode = self.mode();
        let mut graph: DiGraph<Node, Edge> = DiGraph::new();
        let mut index: BTreeMap<(HierarchyId, String), NodeIndex> = BTreeMap::new();
        for h in &self.hierarchies {
            add_hierarchy(&mut graph, &mut index, h, mode);
        }
        for p in &self.processes {
            self.add_process(&mut graph, &index, p);
        }
        Snapshot {
            schema: SNAPSHOT_SCHEMA.to_string(),
            host: HostInfo {
                kernel: Some(self.kernel.clone()),
                cmdline: Some(String::new()),
                hostname: Some(self.hostname.clone()),
                machine_id: None,
                mode,
                controllers: self.controller_lines(),
                os: Default::default(),
                shows: self.shows.clone(),
            },
            graph,
            diagnostics: Vec::new(),
            vanished: Default::default(),
            readiness: Default::default(),
            owner_evidence: Default::default(),
        }
    }

    /// Every cgroup a process or thread is placed in exists.
    fn imply_placed_cgroups(&mut self) {
        let ids: Vec<HierarchyId> = self.hierarchies.iter().map(|h| h.id).collect();
        let mut placed: Vec<(HierarchyId, String)> = Vec::new();
        for p in &self.processes {
            for &id in &ids {
                placed.push((id, placement(p, id, None).to_string()));
                for tid in p.threads.keys() {
                    placed.push((id, placement(p, id, Some(*tid)).to_string()));
                }
            }
        }
        for (id, path) in placed {
            self.cgroup_mut(id, &path);
        }
    }

    /// Legacy, hybrid or unified, from which versions were declared.
    fn mode(&self) -> Mode {
        let v1 = self.hierarchies.iter().any(|h| h.version == Version::V1);
        let v2 = self.hierarchies.iter().any(|h| h.version == Version::V2);
        match (v1, v2) {
            (true, true) => Mode::Hybrid,
            (true, false) => Mode::Legacy,
            (false, true) => Mode::Unified,
            (false, false) => Mode::None,
        }
    }

    /// `/proc/cgroups`: one line per controller of a v1 hierarchy, and the
    /// v2 root's controllers (hierarchy 0, `in_v2`).
    fn controller_lines(&self) -> Vec<ControllerStatus> {
        let mut lines: Vec<ControllerStatus> = Vec::new();
        for h in &self.hierarchies {
            for c in &h.controllers {
                let v1 = h.version == Version::V1;
                lines.push(ControllerStatus {
                    controller: c.clone(),
                    hierarchy: h.id,
                    num_cgroups: if v1 { h.cgroups.len() as u32 } else { 1 },
                    enabled: true,
                    in_v2: !v1,
                });
            }
        }
        lines
    }

    fn add_process(
        &self,
        graph: &mut DiGraph<Node, Edge>,
        index: &BTreeMap<(HierarchyId, String), NodeIndex>,
        p: &ProcessDraft,
    ) {
        let pi = graph.add_node(Node::Process(Process {
            pid: p.pid,
            comm: p.comm.clone(),
            cmdline: vec![p.comm.clone()],
            uid: p.uid,
            gid: p.uid,
            cgroup_files: Vec::new(),
        }));
        let tids = std::iter::once(p.pid.main_thread()).chain(p.threads.keys().copied());
        for tid in tids {
            let ti = graph.add_node(Node::Thread(Thread {
                tid,
                comm: p.comm.clone(),
                unresolved: Vec::new(),
            }));
            graph.add_edge(pi, ti, Edge::Thread);
            for h in &self.hierarchies {
                let path = placement(p, h.id, (tid != p.pid.main_thread()).then_some(tid));
                graph.add_edge(ti, index[&(h.id, path.to_string())], Edge::Member);
            }
        }
    }

    fn cgroup_mut(&mut self, hierarchy: HierarchyId, path: &str) -> &mut Cgroup {
        assert!(
            path.starts_with('/') && (path == "/" || !path.ends_with('/')),
            "cgroup path {path:?}: absolute, without a trailing slash"
        );
        let h = self
            .hierarchies
            .iter_mut()
            .find(|h| h.id == hierarchy)
            .unwrap_or_else(|| panic!("hierarchy {hierarchy} was not declared (v1() or v2())"));
        let mut at = String::new();
        for part in path.split('/').filter(|p| !p.is_empty()) {
            at.push('/');
            at.push_str(part);
            h.cgroups
                .entry(at.clone())
                .or_insert_with(|| empty_cgroup(hierarchy, &at));
        }
        h.cgroups.get_mut(path).expect("made above")
    }

    fn process_mut(&mut self, pid: Pid) -> &mut ProcessDraft {
        self.processes
            .iter_mut()
            .find(|p| p.pid == pid)
            .unwrap_or_else(|| panic!("process {pid} was not declared (process())"))
    }
}

/// Where a process (or one of its extra threads) is in a hierarchy.
fn placement(p: &ProcessDraft, hierarchy: HierarchyId, tid: Option<Tid>) -> &str {
    tid.and_then(|t| p.threads.get(&t))
        .and_then(|o| o.get(&hierarchy))
        .or_else(|| p.cgroups.get(&hierarchy))
        .unwrap_or(&p.everywhere)
}

fn empty_cgroup(hierarchy: HierarchyId, path: &str) -> Cgroup {
    Cgroup {
        hierarchy,
        path: path.into(),
        owner: Ownership::default(),
        settings: BTreeMap::new(),
    }
}

/// The hierarchy node, its one mount, and its cgroups parent before child
/// (a `BTreeMap` of paths lists `/a` before `/a/b`).
fn add_hierarchy(
    graph: &mut DiGraph<Node, Edge>,
    index: &mut BTreeMap<(HierarchyId, String), NodeIndex>,
    h: &HierarchyDraft,
    mode: Mode,
) {
    let mut node = Hierarchy {
        id: h.id,
        version: h.version,
        controllers: h.controllers.clone(),
        name: h.name.clone(),
        mounts: Vec::new(),
        scanned_mount: Some(0),
        release_agent: None,
    };
    let point = match (h.version, mode) {
        (Version::V2, Mode::Hybrid) => "/sys/fs/cgroup/unified".to_string(),
        (Version::V2, _) => "/sys/fs/cgroup".to_string(),
        (Version::V1, _) => format!("/sys/fs/cgroup/{}", node.label()),
    };
    node.mounts.push(Mount {
        mount_point: point,
        root: "/".into(),
        source: Some(
            if h.version == Version::V2 {
                "cgroup2"
            } else {
                "cgroup"
            }
            .into(),
        ),
        options: Vec::new(),
        majmin: format!("0:{}", 30 + h.id.get()),
    });
    let hi = graph.add_node(Node::Hierarchy(node));
    for (path, cg) in &h.cgroups {
        let ci = graph.add_node(Node::Cgroup(cg.clone()));
        let parent = super::path::parent(path).and_then(|p| index.get(&(h.id, p.to_string())).copied());
        graph.add_edge(parent.unwrap_or(hi), ci, Edge::Child);
        index.insert((h.id, path.clone()), ci);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lays_out_the_graph_the_way_the_scanner_does() {
        let snap = SnapshotBuilder::new()
            .v1(1, &["memory"])
            .v1(2, &["cpu", "cpuacct"])
            .v1(3, &["name=systemd"])
            .setting(1, "/a/b", "memory.limit_in_bytes", "4096")
            .process(10, "web", "/a")
            .place(10, 3, "/")
            .thread(10, 11, 2, "/a/slow")
            .build();
        assert_eq!(snap.host.mode, Mode::Legacy);
        let labels: Vec<String> = snap.hierarchies().iter().map(|(_, h)| h.label()).collect();
        assert_eq!(labels, ["memory", "cpu,cpuacct", "name=systemd"]);
        let b = snap.find_cgroup(1, "/a/b").expect("made with its parent");
        assert_eq!(snap.cgroup(b).settings["memory.limit_in_bytes"], "4096");
        let a = snap.parent(b).unwrap();
        assert_eq!(snap.cgroup(a).path, "/a");
        assert_eq!(snap.cgroup(snap.parent(a).unwrap()).path, "/");
        let split = snap.split_processes();
        assert_eq!(split.len(), 1, "thread 11 is split from 10 in cpu");
        assert_eq!(split[0].1, vec![HierarchyId::new(2)]);
        let slow = snap.find_cgroup(2, "/a/slow").expect("implied by the placement");
        assert_eq!(snap.task_counts(slow), (1, 1));
        assert_eq!(snap.task_counts(snap.find_cgroup(3, "/").unwrap()), (1, 2));
        // /proc/cgroups: one line per v1 controller, counting its cgroups.
        let mem = snap
            .host
            .controllers
            .iter()
            .find(|c| c.controller == Controller::Memory)
            .unwrap();
        assert_eq!(
            (mem.hierarchy, mem.num_cgroups, mem.in_v2),
            (HierarchyId::new(1), 3, false)
        );
    }

    #[test]
    fn v2_beside_v1_is_hybrid_and_mounted_at_unified() {
        let snap = SnapshotBuilder::new().v1(1, &["memory"]).v2(&["pids"]).build();
        assert_eq!(snap.host.mode, Mode::Hybrid);
        let (_, v2) = snap.hierarchy(0).unwrap();
        assert_eq!(v2.mounts[0].mount_point, "/sys/fs/cgroup/unified");
        assert!(
            snap.host
                .controllers
                .iter()
                .any(|c| c.controller == Controller::Pids && c.in_v2)
        );
    }

    #[test]
    #[should_panic(expected = "hierarchy 7 was not declared")]
    fn a_cgroup_in_an_undeclared_hierarchy_is_a_test_bug() {
        let _ = SnapshotBuilder::new().v1(1, &["memory"]).cgroup(7, "/x");
    }
}
