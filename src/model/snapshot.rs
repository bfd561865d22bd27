//! The snapshot: one host's cgroup state as a graph.
//!
//! Nodes are hierarchies (every v1 hierarchy and the v2 one), cgroups,
//! processes and threads. Edges say which cgroup is a child of which, which
//! thread belongs to which process, and which cgroup each thread is a member
//! of in each hierarchy. Threads, not processes, carry membership because v1
//! places threads individually (`tasks`), and the planner must see a process
//! whose threads are split.

use std::collections::BTreeMap;

use petgraph::Direction;
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::EdgeRef;
use serde::{Deserialize, Serialize};

use super::{Controller, HierarchyId, Pid, Tid};

/// The schema identifier written in every snapshot; bumped on any breaking change.
pub const SNAPSHOT_SCHEMA: &str = "cgmig.snapshot/v1";

/// How the host's cgroup filesystems are arranged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Only v1 hierarchies are mounted.
    Legacy,
    /// v1 hierarchies plus a cgroup2 mount (systemd "hybrid", WSL2, ...).
    Hybrid,
    /// `/sys/fs/cgroup` is cgroup2 (v1 hierarchies may still linger).
    Unified,
    /// No cgroup filesystem is mounted at all.
    None,
}

/// The cgroup version of a hierarchy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Version {
    /// A v1 hierarchy.
    V1,
    /// The unified v2 hierarchy.
    V2,
}

/// One mount of a hierarchy (a hierarchy can be mounted many times).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mount {
    /// Where it is mounted (octal escapes decoded).
    pub mount_point: String,
    /// The cgroup shown at the mount point (`/` unless a bind mount or cgroupns).
    pub root: String,
    /// Mount source, free text (`cgroup`, `none`, `systemd`, ...).
    pub source: Option<String>,
    /// Super options other than controllers and `name=` (`xattr`, `nsdelegate`, ...).
    pub options: Vec<String>,
    /// Device number of the superblock; mounts of one hierarchy share it.
    pub majmin: String,
}

/// A hierarchy: one v1 hierarchy, or the v2 one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hierarchy {
    /// Hierarchy id as in `/proc/cgroups` and `/proc/PID/cgroup` (0 for v2).
    pub id: HierarchyId,
    /// v1 or v2.
    pub version: Version,
    /// Controllers bound to it (v1), or listed in the root `cgroup.controllers` (v2).
    pub controllers: Vec<Controller>,
    /// The `name=` of a named v1 hierarchy (`systemd`, `openrc`, ...).
    pub name: Option<String>,
    /// Every mount of it, in mountinfo order. Empty when alive but unmounted.
    pub mounts: Vec<Mount>,
    /// Index into `mounts` of the one that was walked, if any.
    pub scanned_mount: Option<usize>,
    /// The `release_agent` mount option, when set (v1).
    pub release_agent: Option<String>,
}

impl Hierarchy {
    /// A short label: `cpu,cpuacct`, `name=systemd`, or `unified`.
    pub fn label(&self) -> String {
        if self.version == Version::V2 {
            return "unified".to_string();
        }
        let mut parts: Vec<String> = self.controllers.iter().map(|c| c.to_string()).collect();
        if let Some(n) = &self.name {
            parts.push(format!("name={n}"));
        }
        if parts.is_empty() {
            "none".to_string()
        } else {
            parts.join(",")
        }
    }

    /// Whether this hierarchy has the given controller bound.
    pub fn has(&self, c: &Controller) -> bool {
        self.controllers.contains(c)
    }
}

/// Owner and permission bits of one file or directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileOwner {
    /// Owner uid.
    pub uid: u32,
    /// Owner gid.
    pub gid: u32,
    /// Permission bits (`st_mode & 0o7777`).
    pub mode: u32,
}

/// Ownership of a cgroup: the directory and the files that delegation chowns.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ownership {
    /// The cgroup directory.
    pub dir: Option<FileOwner>,
    /// `cgroup.procs`.
    pub procs: Option<FileOwner>,
    /// `tasks` (v1) or `cgroup.threads` (v2).
    pub tasks: Option<FileOwner>,
}

impl Ownership {
    /// The non-root uid that owns the directory or its membership files, if any.
    ///
    /// v1 delegation (libcgroup `perm`, LXC, manual `chown`) chowns the
    /// directory, the `tasks` file, or both; any of them makes the cgroup
    /// self-managed by that user.
    pub fn delegate_uid(&self) -> Option<u32> {
        [self.dir, self.procs, self.tasks]
            .into_iter()
            .flatten()
            .map(|o| o.uid)
            .find(|&u| u != 0)
    }
}

/// A cgroup in one hierarchy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cgroup {
    /// Id of the hierarchy it belongs to.
    pub hierarchy: HierarchyId,
    /// Path in the hierarchy, as `/proc/PID/cgroup` shows it (`/` for the root).
    pub path: String,
    /// Owners of the directory and membership files.
    pub owner: Ownership,
    /// Setting files and their raw (trimmed) contents.
    pub settings: BTreeMap<String, String>,
}

impl Cgroup {
    /// Whether this is the hierarchy's root cgroup.
    pub fn is_root(&self) -> bool {
        self.path == "/"
    }

    /// The last path component (`/` for the root).
    pub fn name(&self) -> &str {
        if self.is_root() {
            "/"
        } else {
            self.path.rsplit('/').next().unwrap_or(&self.path)
        }
    }
}

/// A process (thread group).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Process {
    /// PID (thread group id).
    pub pid: Pid,
    /// `comm`.
    pub comm: String,
    /// `cmdline` arguments; empty for kernel threads.
    pub cmdline: Vec<String>,
    /// Real uid.
    pub uid: u32,
    /// Real gid.
    pub gid: u32,
    /// Open files inside a cgroup filesystem (v1 notification listeners hold
    /// `cgroup.event_control`, `memory.oom_control`, ... open).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cgroup_files: Vec<String>,
}

impl Process {
    /// Kernel threads have no command line.
    pub fn is_kernel_thread(&self) -> bool {
        self.cmdline.is_empty()
    }
}

/// A thread; its memberships are edges to cgroups.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Thread {
    /// Thread id.
    pub tid: Tid,
    /// Thread `comm` (libvirt names vCPU threads `CPU 0/KVM`, ...).
    pub comm: String,
    /// Memberships whose cgroup is not in the scanned tree (unmounted
    /// hierarchy, or a path outside a bind mount's root): hierarchy id and path.
    pub unresolved: Vec<(HierarchyId, String)>,
}

/// A snapshot graph node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Node {
    /// A hierarchy; its root cgroup hangs off it.
    Hierarchy(Hierarchy),
    /// A cgroup.
    Cgroup(Cgroup),
    /// A process.
    Process(Process),
    /// A thread.
    Thread(Thread),
}

/// A snapshot graph edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Edge {
    /// Hierarchy → its root cgroup, or cgroup → child cgroup.
    Child,
    /// Process → one of its threads.
    Thread,
    /// Thread → the cgroup it is in (one per hierarchy).
    Member,
}

/// Status of one controller as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControllerStatus {
    /// The controller.
    pub controller: Controller,
    /// v1 hierarchy id from `/proc/cgroups` (0: not bound to v1).
    pub hierarchy: HierarchyId,
    /// Number of cgroups, as `/proc/cgroups` counts them.
    pub num_cgroups: u32,
    /// Whether it is enabled (`cgroup_disable=` turns it off).
    pub enabled: bool,
    /// Whether the v2 root lists it in `cgroup.controllers`.
    pub in_v2: bool,
}

/// Facts about the host as a whole.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostInfo {
    /// Kernel release (`/proc/sys/kernel/osrelease`).
    pub kernel: Option<String>,
    /// Boot command line (`/proc/cmdline`).
    pub cmdline: Option<String>,
    /// Hostname (`/proc/sys/kernel/hostname`).
    pub hostname: Option<String>,
    /// `/etc/machine-id`, when the host has one: with the hostname, the
    /// host's identity (a fleet counts a host's snapshot, audit and plan once).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub machine_id: Option<String>,
    /// Legacy, hybrid or unified.
    pub mode: Mode,
    /// Every controller from `/proc/cgroups`.
    pub controllers: Vec<ControllerStatus>,
    /// Distribution and systemd version (fleet reports group hosts by them).
    #[serde(default, skip_serializing_if = "OsInfo::is_empty")]
    pub os: OsInfo,
    /// What the kernel shows beyond cgroup files: the block devices' I/O
    /// schedulers and whether cgroup2 offers thread mode. Empty in snapshots
    /// older than these fields (then the plan and audit fall back to versions).
    #[serde(default, skip_serializing_if = "KernelShows::is_empty")]
    pub shows: KernelShows,
}

/// Kernel evidence the scan reads outside the cgroup trees, under the scanned
/// root (a captured `--root` answers as the live host would).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KernelShows {
    /// `/sys/block/*`: each block device's scheduler (the bracketed entry of
    /// `queue/scheduler`). Which one is active decides whether a v1 blkio
    /// weight lands in `io.bfq.weight` (BFQ) or `io.weight` (iocost).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub block_devices: Vec<BlockDevice>,
    /// Whether the cgroup2 mount's root has `cgroup.threads` (thread mode,
    /// Linux 4.14); `None` when no cgroup2 mount was readable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thread_mode: Option<bool>,
}

impl KernelShows {
    /// Nothing read (old snapshots, captures without /sys).
    pub fn is_empty(&self) -> bool {
        self.block_devices.is_empty() && self.thread_mode.is_none()
    }
}

/// One block device and its active I/O scheduler.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockDevice {
    /// Kernel name (`sda`, `nvme0n1`).
    pub name: String,
    /// `MAJ:MIN` from `/sys/block/NAME/dev`, when readable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dev: Option<String>,
    /// The active scheduler (`bfq`, `mq-deadline`, `none`); `None` when the
    /// device has no `queue/scheduler` file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduler: Option<String>,
}

/// The distribution and the systemd version of a host: not cgroup state, but
/// what decides which boot config and which systemd behaviour a rollout meets.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OsInfo {
    /// `ID VERSION_ID` from `/etc/os-release` (`centos 7`, `ubuntu 18.04`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distribution: Option<String>,
    /// systemd's version number (`219`, `252`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub systemd: Option<String>,
}

impl OsInfo {
    /// Nothing known (old snapshots, non-systemd hosts without os-release).
    pub fn is_empty(&self) -> bool {
        self.distribution.is_none() && self.systemd.is_none()
    }
}

/// Why a part of the host could not be read; never fatal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Diagnostic {
    /// The path (on the scanned root) concerned.
    pub path: String,
    /// What went wrong.
    pub message: String,
}

impl Diagnostic {
    /// How the message of every diagnostic for something that could not be
    /// read starts: the audit counts these to call a verdict incomplete.
    pub const UNREADABLE: &'static str = "unreadable: ";

    /// Whether this says something could not be read (so any verdict built
    /// on the snapshot is incomplete), as opposed to a note about the host's
    /// layout.
    pub fn is_unreadable(&self) -> bool {
        self.message.starts_with(Self::UNREADABLE)
    }

    /// The message without the [`Diagnostic::UNREADABLE`] prefix.
    pub fn unreadable_detail(&self) -> &str {
        self.message.trim_start_matches(Self::UNREADABLE)
    }
}

/// Counters of benign races seen while scanning a live host.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vanished {
    /// Processes or threads that exited between listing and reading.
    pub tasks: u64,
    /// Cgroups removed between listing and reading.
    pub cgroups: u64,
}

/// One host's cgroup state.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Snapshot {
    /// Always [`SNAPSHOT_SCHEMA`].
    pub schema: String,
    /// Host-level facts.
    pub host: HostInfo,
    /// Hierarchies, cgroups, processes, threads and their relations.
    pub graph: DiGraph<Node, Edge>,
    /// What could not be read, with paths.
    pub diagnostics: Vec<Diagnostic>,
    /// Benign races.
    pub vanished: Vanished,
    /// Workload and configuration readiness found from files (absent in
    /// snapshots from before it existed).
    #[serde(default)]
    pub readiness: super::readiness::Readiness,
    /// Who manages the cgroups: unit files, systemd version, xattrs (see `owners`).
    #[serde(default, skip_serializing_if = "super::evidence::Evidence::is_empty")]
    pub owner_evidence: super::evidence::Evidence,
}

impl PartialEq for Snapshot {
    fn eq(&self, other: &Self) -> bool {
        let edges = |g: &DiGraph<Node, Edge>| -> Vec<(usize, usize, Edge)> {
            g.edge_references()
                .map(|e| (e.source().index(), e.target().index(), *e.weight()))
                .collect()
        };
        self.schema == other.schema
            && self.host == other.host
            && self.diagnostics == other.diagnostics
            && self.vanished == other.vanished
            && self.readiness == other.readiness
            && self.owner_evidence == other.owner_evidence
            && self.graph.node_weights().eq(other.graph.node_weights())
            && edges(&self.graph) == edges(&other.graph)
    }
}

impl Snapshot {
    /// Every hierarchy node, in id order (v2 first, as id 0).
    pub fn hierarchies(&self) -> Vec<(NodeIndex, &Hierarchy)> {
        let mut v: Vec<_> = self
            .graph
            .node_indices()
            .filter_map(|i| match &self.graph[i] {
                Node::Hierarchy(h) => Some((i, h)),
                _ => None,
            })
            .collect();
        v.sort_by_key(|(_, h)| h.id);
        v
    }

    /// The hierarchy with this id.
    pub fn hierarchy(&self, id: impl Into<HierarchyId>) -> Option<(NodeIndex, &Hierarchy)> {
        let id = id.into();
        self.hierarchies().into_iter().find(|(_, h)| h.id == id)
    }

    /// The root cgroup of a hierarchy node, if it was scanned.
    pub fn root_cgroup(&self, hier: NodeIndex) -> Option<NodeIndex> {
        self.graph
            .edges_directed(hier, Direction::Outgoing)
            .find(|e| *e.weight() == Edge::Child)
            .map(|e| e.target())
    }

    /// Child cgroups of a cgroup, sorted by name.
    pub fn children(&self, cg: NodeIndex) -> Vec<NodeIndex> {
        let mut v: Vec<_> = self
            .graph
            .edges_directed(cg, Direction::Outgoing)
            .filter(|e| *e.weight() == Edge::Child)
            .map(|e| e.target())
            .collect();
        v.sort_by(|a, b| self.cgroup(*a).path.cmp(&self.cgroup(*b).path));
        v
    }

    /// The parent cgroup of a cgroup (`None` for a root).
    pub fn parent(&self, cg: NodeIndex) -> Option<NodeIndex> {
        self.graph
            .edges_directed(cg, Direction::Incoming)
            .find(|e| *e.weight() == Edge::Child)
            .map(|e| e.source())
            .filter(|p| matches!(self.graph[*p], Node::Cgroup(_)))
    }

    /// The cgroup at a node. Panics only on a programming error (wrong kind).
    pub fn cgroup(&self, i: NodeIndex) -> &Cgroup {
        match &self.graph[i] {
            Node::Cgroup(c) => c,
            other => unreachable!("node {i:?} is not a cgroup: {other:?}"),
        }
    }

    /// Every cgroup node.
    pub fn cgroups(&self) -> impl Iterator<Item = (NodeIndex, &Cgroup)> {
        self.graph.node_indices().filter_map(|i| match &self.graph[i] {
            Node::Cgroup(c) => Some((i, c)),
            _ => None,
        })
    }

    /// Every process node, in pid order.
    pub fn processes(&self) -> Vec<(NodeIndex, &Process)> {
        let mut v: Vec<_> = self
            .graph
            .node_indices()
            .filter_map(|i| match &self.graph[i] {
                Node::Process(p) => Some((i, p)),
                _ => None,
            })
            .collect();
        v.sort_by_key(|(_, p)| p.pid);
        v
    }

    /// Threads of a process, in tid order.
    pub fn threads(&self, proc_: NodeIndex) -> Vec<(NodeIndex, &Thread)> {
        let mut v: Vec<_> = self
            .graph
            .edges_directed(proc_, Direction::Outgoing)
            .filter(|e| *e.weight() == Edge::Thread)
            .filter_map(|e| match &self.graph[e.target()] {
                Node::Thread(t) => Some((e.target(), t)),
                _ => None,
            })
            .collect();
        v.sort_by_key(|(_, t)| t.tid);
        v
    }

    /// The process a thread belongs to.
    pub fn process_of(&self, thread: NodeIndex) -> Option<NodeIndex> {
        self.graph
            .edges_directed(thread, Direction::Incoming)
            .find(|e| *e.weight() == Edge::Thread)
            .map(|e| e.source())
    }

    /// The cgroups a thread is a member of.
    pub fn memberships(&self, thread: NodeIndex) -> impl Iterator<Item = NodeIndex> + '_ {
        self.graph
            .edges_directed(thread, Direction::Outgoing)
            .filter(|e| *e.weight() == Edge::Member)
            .map(|e| e.target())
    }

    /// Threads that are members of a cgroup (its `tasks`).
    pub fn members(&self, cg: NodeIndex) -> impl Iterator<Item = NodeIndex> + '_ {
        self.graph
            .edges_directed(cg, Direction::Incoming)
            .filter(|e| *e.weight() == Edge::Member)
            .map(|e| e.source())
    }

    /// Processes whose threads are in more than one cgroup of some hierarchy,
    /// with the ids of the hierarchies where they are split.
    pub fn split_processes(&self) -> Vec<(NodeIndex, Vec<HierarchyId>)> {
        let mut out = Vec::new();
        for (pi, _) in self.processes() {
            let mut per_h: BTreeMap<HierarchyId, std::collections::BTreeSet<NodeIndex>> = BTreeMap::new();
            for (ti, _) in self.threads(pi) {
                for cg in self.memberships(ti) {
                    per_h.entry(self.cgroup(cg).hierarchy).or_default().insert(cg);
                }
            }
            let split: Vec<HierarchyId> = per_h
                .into_iter()
                .filter(|(_, s)| s.len() > 1)
                .map(|(h, _)| h)
                .collect();
            if !split.is_empty() {
                out.push((pi, split));
            }
        }
        out
    }

    /// Count of (processes, threads) that are direct members of a cgroup.
    pub fn task_counts(&self, cg: NodeIndex) -> (usize, usize) {
        let mut procs = std::collections::BTreeSet::new();
        let mut threads = 0;
        for t in self.members(cg) {
            threads += 1;
            if let Some(p) = self.process_of(t) {
                procs.insert(p);
            }
        }
        (procs.len(), threads)
    }

    /// Find the cgroup with this path in a hierarchy.
    pub fn find_cgroup(&self, hierarchy: impl Into<HierarchyId>, path: &str) -> Option<NodeIndex> {
        let hierarchy = hierarchy.into();
        self.cgroups()
            .find(|(_, c)| c.hierarchy == hierarchy && c.path == path)
            .map(|(i, _)| i)
    }
}
