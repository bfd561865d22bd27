//! Preparation for the merge: elements, their placement, the element set of
//! every cgroup and which cgroups are significant, computed once per
//! snapshot ([`Prepared::new`]).
//!
//! Every significant v1 cgroup `c` stands for the set `M(c)` of elements in
//! its subtree. The elements are processes, placed in each hierarchy at the
//! lowest common ancestor of their threads' cgroups (threads split in
//! threaded controllers are handled later as threaded subtrees), plus one
//! *phantom* element per empty leaf, keyed by its path relative to the
//! hierarchy root, so that empty slots survive and identical shapes merge by
//! path.
//!
//! Why dense tables: the merge and the steps after it look cgroups up
//! hundreds of thousands of times on a big host. `Snapshot::parent` walks a
//! cgroup's incoming edges, which include one per member thread (200k for a
//! flat hierarchy's root), and the rules' evaluation is a SipHash map; so
//! parents, depths and evaluation outcomes are read once into vectors
//! indexed by graph node.

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasherDefault, Hasher};

use petgraph::graph::NodeIndex;

use crate::model::{Hierarchy, HierarchyId, Pid, Snapshot, Tid};
use crate::rules::RuleSet;

/// A fast hasher for keys the planner made or reads from its own tables
/// (graph indices, tree node numbers, paths of the plan): the merge looks up
/// hundreds of thousands of them, and SipHash's protection against chosen
/// keys buys nothing here. Fx-style: rotate, xor, multiply, eight bytes at a
/// time.
#[derive(Debug, Default, Clone, Copy)]
pub struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.write_u64(u64::from_le_bytes(c.try_into().expect("8 bytes")));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut buf = [0u8; 8];
            buf[..rest.len()].copy_from_slice(rest);
            self.write_u64(u64::from_le_bytes(buf));
        }
    }
    fn write_u8(&mut self, x: u8) {
        self.write_u64(u64::from(x));
    }
    fn write_u32(&mut self, x: u32) {
        self.write_u64(u64::from(x));
    }
    fn write_usize(&mut self, x: usize) {
        self.write_u64(x as u64);
    }
    fn write_u64(&mut self, x: u64) {
        self.0 = (self.0.rotate_left(5) ^ x).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

/// A hash map keyed by indices or paths the planner made (see [`IdHasher`]).
pub type IdMap<K, V> = HashMap<K, V, BuildHasherDefault<IdHasher>>;

/// A hash set of indices or paths the planner made (see [`IdHasher`]).
pub type IdSet<K> = std::collections::HashSet<K, BuildHasherDefault<IdHasher>>;

/// An element of the sets: a process or a phantom (empty leaf).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Elem {
    /// A process (graph node, pid).
    Process(NodeIndex, Pid),
    /// An empty leaf at this path (relative to the hierarchy root).
    Phantom(String),
}

/// A thread of a split process and the cgroup it sits in.
#[derive(Debug, Clone, Copy)]
pub struct ThreadAt {
    /// Thread id.
    pub tid: Tid,
    /// Its cgroup in the split's hierarchy.
    pub cgroup: NodeIndex,
}

/// Threads of one process spread over cgroups of one hierarchy.
#[derive(Debug, Clone)]
pub struct ThreadSplit {
    /// The process element index.
    pub elem: usize,
    /// Its pid.
    pub pid: Pid,
    /// Hierarchy id.
    pub hierarchy: HierarchyId,
    /// Whether the hierarchy has a domain controller (then v2 cannot express it).
    pub domain: bool,
    /// Common ancestor of its threads' cgroups (where the process is placed).
    pub lca: NodeIndex,
    /// Each thread and its cgroup, in tid order.
    pub threads: Vec<ThreadAt>,
}

/// No parent (a root), in the dense parent table.
const NO_PARENT: u32 = u32::MAX;

/// Everything the merge needs, computed once per snapshot.
pub struct Prepared<'a> {
    /// The snapshot.
    pub snap: &'a Snapshot,
    /// Hierarchies taking part (scanned ones), with their node index.
    pub hierarchies: Vec<(NodeIndex, &'a Hierarchy)>,
    /// Elements.
    pub elems: Vec<Elem>,
    /// Per cgroup: sorted element set of its subtree.
    pub sets: IdMap<NodeIndex, Vec<u32>>,
    /// Per hierarchy id: significant non-root cgroups, top-down.
    pub significant: BTreeMap<HierarchyId, Vec<NodeIndex>>,
    /// The converted settings (and findings) from the rules, evaluated once
    /// for the audit and the plan, indexed by graph node (no entry for a
    /// cgroup the rules say nothing about).
    outcomes: &'a crate::audit::Outcomes,
    /// Thread splits.
    pub splits: Vec<ThreadSplit>,
    /// Scanned root cgroup per hierarchy id.
    pub roots: BTreeMap<HierarchyId, NodeIndex>,
    /// Per graph node: its parent cgroup (`NO_PARENT` for roots and nodes
    /// that are not cgroups).
    parents: Vec<u32>,
    /// Rule id -> the first kernel with its v2 file (the rules' `kernel:`).
    pub rule_kernel: HashMap<String, String>,
    /// Hierarchy id -> its label, made once (every origin carries one).
    labels: Vec<(HierarchyId, String)>,
}

impl std::fmt::Debug for Prepared<'_> {
    /// Sizes only: the tables hold one entry per graph node.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prepared")
            .field("hierarchies", &self.hierarchies.len())
            .field("elems", &self.elems.len())
            .field("splits", &self.splits.len())
            .finish_non_exhaustive()
    }
}

/// A cgroup's children, unsorted (`Snapshot::children` sorts them by path,
/// which the set computation does not need).
pub fn child_cgroups(snap: &Snapshot, c: NodeIndex) -> impl Iterator<Item = NodeIndex> + '_ {
    use petgraph::visit::EdgeRef;
    snap.graph
        .edges_directed(c, petgraph::Direction::Outgoing)
        .filter(|e| *e.weight() == crate::model::Edge::Child)
        .map(|e| e.target())
}

/// A cgroup's children sorted by name (the same order as by path, since
/// they share the parent's path, with shorter strings to compare).
fn children_by_name(snap: &Snapshot, c: NodeIndex) -> Vec<NodeIndex> {
    let mut v: Vec<(&str, NodeIndex)> = child_cgroups(snap, c)
        .map(|k| (snap.cgroup(k).name(), k))
        .collect();
    v.sort_unstable_by(|a, b| a.0.cmp(b.0));
    v.into_iter().map(|(_, k)| k).collect()
}

/// The scanned trees: each hierarchy's root and its cgroups top-down, with
/// their depth and parent (dense, per graph node).
struct Layout {
    roots: BTreeMap<HierarchyId, NodeIndex>,
    depth: Vec<u32>,
    parents: Vec<u32>,
    /// Per hierarchy id: its cgroups, breadth-first (children by path).
    top_down: BTreeMap<HierarchyId, Vec<NodeIndex>>,
}

impl Layout {
    fn walk(snap: &Snapshot, hierarchies: &[(NodeIndex, &Hierarchy)]) -> Layout {
        let n = snap.graph.node_count();
        let mut out = Layout {
            roots: BTreeMap::new(),
            depth: vec![0; n],
            parents: vec![NO_PARENT; n],
            top_down: BTreeMap::new(),
        };
        for (hi, h) in hierarchies {
            let Some(root) = snap.root_cgroup(*hi) else {
                continue;
            };
            out.roots.insert(h.id, root);
            let list = out.top_down.entry(h.id).or_default();
            let mut queue = std::collections::VecDeque::from([root]);
            while let Some(c) = queue.pop_front() {
                list.push(c);
                for k in children_by_name(snap, c) {
                    out.depth[k.index()] = out.depth[c.index()] + 1;
                    out.parents[k.index()] = c.index() as u32;
                    queue.push_back(k);
                }
            }
        }
        out
    }

    fn parent(&self, c: NodeIndex) -> Option<NodeIndex> {
        parent_in(&self.parents, c)
    }

    /// The lowest common ancestor of two cgroups of one hierarchy.
    fn lca(&self, mut a: NodeIndex, mut b: NodeIndex) -> NodeIndex {
        while a != b {
            if self.depth[a.index()] >= self.depth[b.index()] {
                match self.parent(a) {
                    Some(p) => a = p,
                    None => return a,
                }
            } else {
                match self.parent(b) {
                    Some(p) => b = p,
                    None => return b,
                }
            }
        }
        a
    }
}

fn parent_in(parents: &[u32], c: NodeIndex) -> Option<NodeIndex> {
    match parents.get(c.index()) {
        Some(&p) if p != NO_PARENT => Some(NodeIndex::new(p as usize)),
        _ => None,
    }
}

/// The elements placed directly in each cgroup, as one flat list with
/// offsets per graph node (a map of small vectors costs an allocation per
/// cgroup).
struct OwnElems {
    start: Vec<u32>,
    elems: Vec<u32>,
}

impl OwnElems {
    /// From (cgroup, element) pairs; each cgroup's elements keep their order.
    fn new(node_count: usize, placed: &[(NodeIndex, u32)]) -> OwnElems {
        let mut start = vec![0u32; node_count + 1];
        for (c, _) in placed {
            start[c.index() + 1] += 1;
        }
        for i in 0..node_count {
            start[i + 1] += start[i];
        }
        let mut fill = start.clone();
        let mut elems = vec![0u32; placed.len()];
        for (c, e) in placed {
            elems[fill[c.index()] as usize] = *e;
            fill[c.index()] += 1;
        }
        OwnElems { start, elems }
    }

    fn of(&self, c: NodeIndex) -> &[u32] {
        let i = c.index();
        &self.elems[self.start[i] as usize..self.start[i + 1] as usize]
    }
}

/// Where the processes are: one element each, the cgroup it sits in per
/// hierarchy (the common ancestor of its threads' cgroups), and its splits.
struct Placement {
    elems: Vec<Elem>,
    /// Per cgroup: the elements placed directly in it.
    own: OwnElems,
    splits: Vec<ThreadSplit>,
    /// Per graph node: whether it is a cgroup with a thread as a member
    /// (a flat table: it is set once per membership, a million times on a
    /// big host).
    has_threads: Vec<bool>,
}

impl Placement {
    fn of(snap: &Snapshot, hierarchies: &[(NodeIndex, &Hierarchy)], layout: &Layout) -> Placement {
        let n = snap.graph.node_count();
        let mut elems = Vec::new();
        let mut splits = Vec::new();
        let mut has_threads = vec![false; n];
        let mut placed: Vec<(NodeIndex, u32)> = Vec::new();
        // The scanned hierarchies in id order, each with its threads' cgroups
        // of the current process (reused buffers).
        let slots: Vec<(HierarchyId, NodeIndex, bool)> = layout
            .roots
            .iter()
            .map(|(hid, root)| {
                let domain = hierarchies
                    .iter()
                    .find(|(_, h)| h.id == *hid)
                    .is_some_and(|(_, h)| crate::audit::has_domain_controller(h));
                (*hid, *root, domain)
            })
            .collect();
        let mut per_h: Vec<Vec<ThreadAt>> = vec![Vec::new(); slots.len()];
        let groups = libcgroup_groups(snap);
        let mut mine: Vec<(usize, NodeIndex)> = Vec::with_capacity(slots.len());
        for (pi, p) in snap.processes() {
            let e = elems.len() as u32;
            elems.push(Elem::Process(pi, p.pid));
            for (ti, t) in snap.threads(pi) {
                for cg in snap.memberships(ti) {
                    has_threads[cg.index()] = true;
                    let hid = snap.cgroup(cg).hierarchy;
                    if let Some(s) = slots.iter().position(|(h, _, _)| *h == hid) {
                        per_h[s].push(ThreadAt {
                            tid: t.tid,
                            cgroup: cg,
                        });
                    }
                }
            }
            mine.clear();
            for (s, &(hid, root, domain)) in slots.iter().enumerate() {
                let threads = &mut per_h[s];
                let Some(first) = threads.first() else {
                    mine.push((s, root));
                    continue;
                };
                let l = threads
                    .iter()
                    .skip(1)
                    .fold(first.cgroup, |l, t| layout.lca(l, t.cgroup));
                if threads.iter().any(|t| t.cgroup != l) {
                    splits.push(ThreadSplit {
                        elem: e as usize,
                        pid: p.pid,
                        hierarchy: hid,
                        domain,
                        lca: l,
                        threads: std::mem::take(threads),
                    });
                }
                threads.clear();
                mine.push((s, l));
            }
            // A process in a libcgroup group (`cgexec -g …:/cgtest` from a
            // unit): on v2 `cgexec` moves it into the group, the one tree,
            // so its other placements (the unit's cgroup in `name=systemd`,
            // `devices`, `blkio`) do not exist there and must not pull the
            // group into the unit's slice.
            if !groups.is_empty()
                && let Some(g) = mine.iter().find_map(|&(s, c)| {
                    let rel = relative(&snap.cgroup(c).path, &snap.cgroup(slots[s].1).path);
                    groups.iter().find(|g| in_group(&rel, g))
                })
            {
                for (s, c) in &mut mine {
                    let root = slots[*s].1;
                    if !in_group(&relative(&snap.cgroup(*c).path, &snap.cgroup(root).path), g) {
                        *c = root;
                    }
                }
            }
            placed.extend(mine.iter().map(|&(_, c)| (c, e)));
        }
        Placement {
            elems,
            own: OwnElems::new(n, &placed),
            splits,
            has_threads,
        }
    }
}

/// The groups of the host's libcgroup configuration (`group NAME {…}` of
/// `/etc/cgconfig.conf` and its `cgconfig.d`), as cgroup paths. An
/// unreadable file names no group here (the readiness audit reports it).
fn libcgroup_groups(snap: &Snapshot) -> Vec<String> {
    let mut out: Vec<String> = snap
        .readiness
        .files
        .iter()
        .filter(|f| f.kind == "cgconfig")
        .filter_map(|f| crate::readiness::config::cgconfig::parse(&f.text).ok())
        .flatten()
        .filter(|b| b.head.len() == 2 && b.head[0] == "group")
        .map(|b| format!("/{}", b.head[1].trim_matches('"').trim_matches('/')))
        .filter(|g| g != "/")
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Whether a cgroup path is a group's or below it.
fn in_group(path: &str, group: &str) -> bool {
    path == group || path.strip_prefix(group).is_some_and(|r| r.starts_with('/'))
}

/// Per cgroup, the sorted set of elements in its subtree, bottom-up; every
/// empty leaf adds a phantom element, shared by all hierarchies that have
/// its relative path.
fn element_sets(snap: &Snapshot, layout: &Layout, placed: &mut Placement) -> IdMap<NodeIndex, Vec<u32>> {
    let mut phantom_ids: HashMap<String, u32> = HashMap::new();
    let mut sets: IdMap<NodeIndex, Vec<u32>> = IdMap::default();
    sets.reserve(layout.top_down.values().map(Vec::len).sum());
    let mut subtree_threads = vec![false; snap.graph.node_count()];
    for (hid, list) in &layout.top_down {
        let root = layout.roots[hid];
        let root_path = snap.cgroup(root).path.as_str();
        for &c in list.iter().rev() {
            let own = placed.own.of(c);
            let kids: Vec<NodeIndex> = child_cgroups(snap, c).collect();
            let size = own.len() + kids.iter().map(|k| sets[k].len()).sum::<usize>();
            let mut set: Vec<u32> = Vec::with_capacity(size + 1);
            set.extend_from_slice(own);
            let mut threads_below = placed.has_threads[c.index()];
            for k in &kids {
                set.extend_from_slice(&sets[k]);
                threads_below |= subtree_threads[k.index()];
            }
            subtree_threads[c.index()] = threads_below;
            if kids.is_empty() && !threads_below && c != root {
                let rel = relative(&snap.cgroup(c).path, root_path);
                let next = placed.elems.len() as u32;
                let id = *phantom_ids.entry(rel.clone()).or_insert(next);
                if id == next {
                    placed.elems.push(Elem::Phantom(rel));
                }
                set.push(id);
            }
            // The parts are sorted runs (elements sit at one cgroup per
            // hierarchy, so they are disjoint too): the stable sort merges
            // runs in about linear time.
            set.sort();
            set.dedup();
            sets.insert(c, set);
        }
    }
    sets
}

/// Per hierarchy id, its significant cgroups top-down: those with a
/// non-default setting, processes of their own, a delegated owner, no
/// children, or named in the policy's `keep`. A scanned root that is not
/// the hierarchy's root (a container's bind mount) is an ordinary cgroup.
fn significant_cgroups(
    prep: &Prepared,
    layout: &Layout,
    own: &OwnElems,
    keep: &[String],
) -> BTreeMap<HierarchyId, Vec<NodeIndex>> {
    let snap = prep.snap;
    let mut out: BTreeMap<HierarchyId, Vec<NodeIndex>> = BTreeMap::new();
    for (hid, list) in &layout.top_down {
        let root = layout.roots[hid];
        let root_path = snap.cgroup(root).path.as_str();
        let v2 = prep.hierarchy(*hid).version == crate::model::Version::V2;
        let sig = out.entry(*hid).or_default();
        for &c in list {
            if (c == root && root_path == "/") || prep.sets[&c].is_empty() {
                continue;
            }
            let cg = snap.cgroup(c);
            let kept = || {
                let rel = relative(&cg.path, root_path);
                keep.iter().any(|k| *k == rel || *k == cg.path)
            };
            let has_settings = prep
                .outcome(c)
                .is_some_and(|o| !o.conversions.is_empty() || !o.findings.is_empty());
            if has_settings
                || (v2 && has_v2_setting(cg))
                || !own.of(c).is_empty()
                || cg.owner.delegate_uid().is_some()
                || child_cgroups(snap, c).next().is_none()
                || (!keep.is_empty() && kept())
            {
                sig.push(c);
            }
        }
    }
    out
}

/// Whether a cgroup of a v2 hierarchy carries a non-default value.
pub fn has_v2_setting(cg: &crate::model::Cgroup) -> bool {
    cg.settings
        .iter()
        .any(|(k, v)| !crate::model::files::is_v2_default(k, v))
}

impl<'a> Prepared<'a> {
    /// Compute elements, placements, sets and significance, in that order.
    pub fn new(snap: &'a Snapshot, rules: &RuleSet, eval: &'a crate::audit::Evaluation) -> Prepared<'a> {
        let hierarchies: Vec<(NodeIndex, &Hierarchy)> = snap
            .hierarchies()
            .into_iter()
            .filter(|(hi, _)| snap.root_cgroup(*hi).is_some())
            .collect();
        let layout = Layout::walk(snap, &hierarchies);
        let mut placed = Placement::of(snap, &hierarchies, &layout);
        let sets = element_sets(snap, &layout, &mut placed);
        let labels = hierarchies.iter().map(|(_, h)| (h.id, h.label())).collect();
        let mut prep = Prepared {
            snap,
            labels,
            hierarchies,
            elems: placed.elems,
            sets,
            significant: BTreeMap::new(),
            outcomes: &eval.outcomes,
            splits: placed.splits,
            roots: layout.roots.clone(),
            parents: Vec::new(),
            rule_kernel: rules
                .rules()
                .iter()
                .filter_map(|r| r.rule.kernel.clone().map(|k| (r.rule.id.clone(), k)))
                .collect(),
        };
        prep.significant = significant_cgroups(&prep, &layout, &placed.own, &rules.policy().keep);
        prep.parents = layout.parents;
        prep
    }

    /// Free the element sets (only the merge reads them).
    pub fn release_sets(&mut self) {
        self.sets = IdMap::default();
    }

    /// The hierarchy with this id.
    pub fn hierarchy(&self, id: HierarchyId) -> &Hierarchy {
        self.hierarchies
            .iter()
            .find(|(_, h)| h.id == id)
            .map(|(_, h)| *h)
            .expect("known hierarchy")
    }

    /// The label of the hierarchy with this id (`cpu,cpuacct`).
    pub fn label(&self, id: HierarchyId) -> String {
        self.label_str(id).to_string()
    }

    /// The label of the hierarchy with this id, borrowed.
    pub fn label_str(&self, id: HierarchyId) -> &str {
        self.labels
            .iter()
            .find(|(h, _)| *h == id)
            .map(|(_, l)| l.as_str())
            .expect("known hierarchy")
    }

    /// The parent of a scanned cgroup (`None` for a scanned root), from the
    /// table (see the module doc).
    pub fn parent(&self, c: NodeIndex) -> Option<NodeIndex> {
        parent_in(&self.parents, c)
    }

    /// The rules' outcome for a v1 cgroup.
    pub fn outcome(&self, c: NodeIndex) -> Option<&'a crate::audit::CgroupOutcome> {
        self.outcomes.get(&c)
    }

    /// Number of settings (conversions and lost settings) of a cgroup.
    pub fn settings_count(&self, c: NodeIndex) -> usize {
        self.outcome(c).map_or(0, |o| {
            o.conversions.len() + o.findings.iter().filter(|f| f.file.is_some()).count()
        })
    }
}

/// Path relative to a hierarchy's scanned root (`/` for the root itself).
pub fn relative(path: &str, root: &str) -> String {
    if root == "/" {
        return path.to_string();
    }
    match path.strip_prefix(root) {
        Some("") => "/".into(),
        Some(r) if r.starts_with('/') => r.to_string(),
        _ => path.to_string(),
    }
}
