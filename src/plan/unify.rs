//! Laminar merge of v1 hierarchies into one tree.
//!
//! Every significant v1 cgroup `c` stands for the set `M(c)` of elements in its
//! subtree. The elements are processes, placed in each hierarchy at the lowest
//! common ancestor of their threads' cgroups (threads split in threaded
//! controllers are handled later as threaded subtrees), plus one *phantom*
//! element per empty leaf, keyed by its path relative to the hierarchy root,
//! so that empty slots survive and identical shapes merge by path.
//!
//! A family of sets is a tree iff it is laminar. Sets are added in priority
//! order (hierarchy, then depth). A set that crosses an accepted one is a
//! conflict, resolved by the policy's strategy. Each insertion costs
//! `O(distinct deepest nodes of its elements × depth)`, so the whole merge is
//! near-linear in the size of the hierarchies.

use crate::model::{HierarchyId, Pid, Tid};
use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasherDefault, Hasher};

use petgraph::graph::NodeIndex;

use crate::model::{Hierarchy, Snapshot};
use crate::rules::{RuleSet, Strategy};

/// A hasher for small integer keys (graph indices, tree node numbers): the
/// merge looks up hundreds of thousands of them, and SipHash's protection
/// against chosen keys buys nothing for indices the planner made itself.
/// (Fx-style: rotate, xor, multiply.)
#[derive(Default, Clone, Copy)]
pub struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
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

/// A hash map keyed by indices the planner made (see [`IdHasher`]).
pub type IdMap<K, V> = HashMap<K, V, BuildHasherDefault<IdHasher>>;

/// An element of the sets: a process or a phantom (empty leaf).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Elem {
    /// A process (graph node, pid).
    Process(NodeIndex, Pid),
    /// An empty leaf at this path (relative to the hierarchy root).
    Phantom(String),
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
    /// Each thread and its cgroup.
    pub threads: Vec<(Tid, NodeIndex)>,
}

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
    /// Per cgroup: the converted settings (and findings) from the rules,
    /// evaluated once for the audit and the plan.
    pub outcomes: &'a crate::audit::Outcomes,
    /// Thread splits.
    pub splits: Vec<ThreadSplit>,
    /// Scanned root cgroup per hierarchy id.
    pub roots: BTreeMap<HierarchyId, NodeIndex>,
    /// Depth of each cgroup below its scanned root.
    pub depth: IdMap<NodeIndex, usize>,
    /// Rule id -> the first kernel with its v2 file (the rules' `kernel:`).
    pub rule_kernel: HashMap<String, String>,
    /// Hierarchy id -> its label, made once (every origin carries one).
    labels: BTreeMap<HierarchyId, String>,
}

/// A cgroup's children, unsorted (`Snapshot::children` sorts them by path,
/// which the set computation does not need).
fn child_cgroups(snap: &Snapshot, c: NodeIndex) -> impl Iterator<Item = NodeIndex> + '_ {
    use petgraph::visit::EdgeRef;
    snap.graph
        .edges_directed(c, petgraph::Direction::Outgoing)
        .filter(|e| *e.weight() == crate::model::Edge::Child)
        .map(|e| e.target())
}

fn lca_cg(snap: &Snapshot, depth: &IdMap<NodeIndex, usize>, mut a: NodeIndex, mut b: NodeIndex) -> NodeIndex {
    while a != b {
        let (da, db) = (depth[&a], depth[&b]);
        if da >= db {
            match snap.parent(a) {
                Some(p) => a = p,
                None => return a,
            }
        } else {
            match snap.parent(b) {
                Some(p) => b = p,
                None => return b,
            }
        }
    }
    a
}

/// The scanned trees: each hierarchy's root and its cgroups top-down, with
/// their depth.
struct Layout {
    roots: BTreeMap<HierarchyId, NodeIndex>,
    depth: IdMap<NodeIndex, usize>,
    /// Per hierarchy id: its cgroups, breadth-first (children by path).
    top_down: BTreeMap<HierarchyId, Vec<NodeIndex>>,
}

impl Layout {
    fn walk(snap: &Snapshot, hierarchies: &[(NodeIndex, &Hierarchy)]) -> Layout {
        let mut out = Layout {
            roots: BTreeMap::new(),
            depth: IdMap::default(),
            top_down: BTreeMap::new(),
        };
        for (hi, h) in hierarchies {
            let Some(root) = snap.root_cgroup(*hi) else {
                continue;
            };
            out.roots.insert(h.id, root);
            let list = out.top_down.entry(h.id).or_default();
            let mut queue = std::collections::VecDeque::from([(root, 0usize)]);
            while let Some((c, d)) = queue.pop_front() {
                out.depth.insert(c, d);
                list.push(c);
                queue.extend(snap.children(c).into_iter().map(|k| (k, d + 1)));
            }
        }
        out
    }
}

/// Where the processes are: one element each, the cgroup it sits in per
/// hierarchy (the common ancestor of its threads' cgroups), and its splits.
struct Placement {
    elems: Vec<Elem>,
    /// Per cgroup: the elements placed directly in it.
    own: IdMap<NodeIndex, Vec<u32>>,
    splits: Vec<ThreadSplit>,
    /// Per graph node: whether it is a cgroup with a thread as a member
    /// (a flat table: it is set once per membership, a million times on a
    /// big host).
    has_threads: Vec<bool>,
}

impl Placement {
    fn of(snap: &Snapshot, hierarchies: &[(NodeIndex, &Hierarchy)], layout: &Layout) -> Placement {
        let mut out = Placement {
            elems: Vec::new(),
            own: IdMap::default(),
            splits: Vec::new(),
            has_threads: vec![false; snap.graph.node_count()],
        };
        let domain: BTreeMap<HierarchyId, bool> = hierarchies
            .iter()
            .map(|(_, h)| (h.id, crate::audit::has_domain_controller(h)))
            .collect();
        for (pi, p) in snap.processes() {
            let e = out.elems.len() as u32;
            out.elems.push(Elem::Process(pi, p.pid));
            let mut per_h: BTreeMap<HierarchyId, Vec<(Tid, NodeIndex)>> = BTreeMap::new();
            for (ti, t) in snap.threads(pi) {
                for cg in snap.memberships(ti) {
                    out.has_threads[cg.index()] = true;
                    per_h
                        .entry(snap.cgroup(cg).hierarchy)
                        .or_default()
                        .push((t.tid, cg));
                }
            }
            for (hid, root) in &layout.roots {
                let place = match per_h.remove(hid) {
                    None => *root,
                    Some(threads) => {
                        let l = threads
                            .iter()
                            .skip(1)
                            .fold(threads[0].1, |l, (_, cg)| lca_cg(snap, &layout.depth, l, *cg));
                        if threads.iter().any(|(_, cg)| *cg != l) {
                            let domain = domain.get(hid).copied().unwrap_or(false);
                            out.splits.push(ThreadSplit {
                                elem: e as usize,
                                pid: p.pid,
                                hierarchy: *hid,
                                domain,
                                lca: l,
                                threads,
                            });
                        }
                        l
                    }
                };
                out.own.entry(place).or_default().push(e);
            }
        }
        out
    }
}

/// Per cgroup, the sorted set of elements in its subtree, bottom-up; every
/// empty leaf adds a phantom element, shared by all hierarchies that have
/// its relative path.
fn element_sets(snap: &Snapshot, layout: &Layout, placed: &mut Placement) -> IdMap<NodeIndex, Vec<u32>> {
    let mut phantom_ids: HashMap<String, u32> = HashMap::new();
    let mut sets: IdMap<NodeIndex, Vec<u32>> = IdMap::default();
    let mut subtree_threads: IdMap<NodeIndex, bool> = IdMap::default();
    for (hid, list) in &layout.top_down {
        let root = layout.roots[hid];
        let root_path = snap.cgroup(root).path.as_str();
        for &c in list.iter().rev() {
            // Children in any order: the set is sorted below.
            let mut set: Vec<u32> = placed.own.get(&c).cloned().unwrap_or_default();
            let mut threads_below = placed.has_threads[c.index()];
            let mut leaf = true;
            for k in child_cgroups(snap, c) {
                leaf = false;
                set.extend_from_slice(&sets[&k]);
                threads_below |= subtree_threads[&k];
            }
            subtree_threads.insert(c, threads_below);
            if leaf && !threads_below && c != root {
                let rel = relative(&snap.cgroup(c).path, root_path);
                let next = placed.elems.len() as u32;
                let id = *phantom_ids.entry(rel.clone()).or_insert(next);
                if id == next {
                    placed.elems.push(Elem::Phantom(rel));
                }
                set.push(id);
            }
            set.sort_unstable();
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
    own: &IdMap<NodeIndex, Vec<u32>>,
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
                .outcomes
                .get(&c)
                .is_some_and(|o| !o.conversions.is_empty() || !o.findings.is_empty());
            if has_settings
                || (v2 && has_v2_setting(cg))
                || own.contains_key(&c)
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
fn has_v2_setting(cg: &crate::model::Cgroup) -> bool {
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
            depth: IdMap::default(),
            rule_kernel: rules
                .rules()
                .iter()
                .filter_map(|r| r.rule.kernel.clone().map(|k| (r.rule.id.clone(), k)))
                .collect(),
        };
        prep.significant = significant_cgroups(&prep, &layout, &placed.own, &rules.policy().keep);
        prep.depth = layout.depth;
        prep
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
        match self.labels.get(&id) {
            Some(l) => l.clone(),
            None => self.hierarchy(id).label(),
        }
    }

    /// Number of settings (conversions and lost settings) of a cgroup.
    pub fn settings_count(&self, c: NodeIndex) -> usize {
        self.outcomes
            .get(&c)
            .map(|o| o.conversions.len() + o.findings.iter().filter(|f| f.file.is_some()).count())
            .unwrap_or(0)
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

/// A node of the merged tree.
#[derive(Debug, Clone, Default)]
pub struct MergedNode {
    /// Parent node.
    pub parent: Option<usize>,
    /// Children, in insertion order.
    pub children: Vec<usize>,
    /// Elements in the subtree.
    pub size: usize,
    /// Depth (root 0).
    pub depth: usize,
    /// The v1 cgroups merged here (hierarchy id, cgroup).
    pub origins: Vec<(HierarchyId, NodeIndex)>,
    /// Name, from the first (highest-priority) origin.
    pub name: String,
    /// Cgroups whose settings were split onto this node (hierarchy id, cgroup).
    pub split_from: Vec<(HierarchyId, NodeIndex)>,
}

/// A crossing found during the merge.
#[derive(Debug, Clone)]
pub struct Crossing {
    /// The rejected cgroup.
    pub hierarchy: HierarchyId,
    /// Its graph node.
    pub cgroup: NodeIndex,
    /// Tree nodes it partially overlaps.
    pub partial: Vec<usize>,
    /// Elements shared with the partial nodes (up to 10 pids).
    pub shared: Vec<Pid>,
    /// Elements of the rejected set outside the partial nodes (up to 10 pids).
    pub only_rejected: Vec<Pid>,
    /// Elements of the partial nodes outside the rejected set (up to 10 pids).
    pub only_crossed: Vec<Pid>,
    /// Strategy applied.
    pub strategy: Strategy,
    /// Pieces its settings were copied onto (split).
    pub pieces: Vec<usize>,
    /// Settings affected.
    pub settings: usize,
}

/// The merged tree.
#[derive(Debug, Clone)]
pub struct Merged {
    /// Nodes; 0 is the root.
    pub nodes: Vec<MergedNode>,
    /// Deepest node of each element.
    pub elem_node: Vec<usize>,
    /// Conflicts.
    pub crossings: Vec<Crossing>,
    /// Hierarchy ids in the order used.
    pub order: Vec<HierarchyId>,
}

impl Merged {
    /// Settings affected by conflicts.
    pub fn cost(&self) -> usize {
        self.crossings.iter().map(|c| c.settings).sum()
    }

    fn lca(&self, mut a: usize, mut b: usize) -> usize {
        while a != b {
            if self.nodes[a].depth >= self.nodes[b].depth {
                a = self.nodes[a].parent.unwrap_or(0);
            } else {
                b = self.nodes[b].parent.unwrap_or(0);
            }
        }
        a
    }

    /// The child of `anc` on the way to `n` (`None` if `n == anc`).
    fn child_toward(&self, mut n: usize, anc: usize) -> Option<usize> {
        if n == anc {
            return None;
        }
        while let Some(p) = self.nodes[n].parent {
            if p == anc {
                return Some(n);
            }
            n = p;
        }
        None
    }

    fn add_node(&mut self, parent: usize, name: String) -> usize {
        let id = self.nodes.len();
        let depth = self.nodes[parent].depth + 1;
        self.nodes.push(MergedNode {
            parent: Some(parent),
            name,
            depth,
            ..Default::default()
        });
        self.nodes[parent].children.push(id);
        id
    }

    /// Move `child` under `new_parent`, fixing depths below it.
    fn adopt(&mut self, new_parent: usize, child: usize) {
        if let Some(old) = self.nodes[child].parent {
            self.nodes[old].children.retain(|&c| c != child);
        }
        self.nodes[child].parent = Some(new_parent);
        self.nodes[new_parent].children.push(child);
        let mut stack = vec![(child, self.nodes[new_parent].depth + 1)];
        while let Some((n, d)) = stack.pop() {
            self.nodes[n].depth = d;
            for &k in &self.nodes[n].children {
                stack.push((k, d + 1));
            }
        }
    }
}

/// Merge the hierarchies in `order` (hierarchy ids).
pub fn merge(prep: &Prepared, rules: &RuleSet, order: &[HierarchyId]) -> Merged {
    let n_elems = prep.elems.len();
    let mut m = Merged {
        nodes: vec![MergedNode {
            size: n_elems,
            name: "/".into(),
            ..Default::default()
        }],
        elem_node: vec![0; n_elems],
        crossings: Vec::new(),
        order: order.to_vec(),
    };
    for &hid in order {
        if let Some(root) = prep.roots.get(&hid)
            && prep.snap.cgroup(*root).path == "/"
        {
            m.nodes[0].origins.push((hid, *root));
        }
        let h = prep.hierarchy(hid);
        let strategy = rules.policy().strategy(&h.controllers);
        for &c in prep.significant.get(&hid).into_iter().flatten() {
            insert(&mut m, prep, hid, c, strategy);
        }
    }
    m
}

fn pid_of(prep: &Prepared, e: u32) -> Option<Pid> {
    match &prep.elems[e as usize] {
        Elem::Process(_, pid) => Some(*pid),
        Elem::Phantom(_) => None,
    }
}

fn insert(m: &mut Merged, prep: &Prepared, hid: HierarchyId, c: NodeIndex, strategy: Strategy) {
    let set = &prep.sets[&c];
    let at = Landing::of(m, set);
    let name = prep.snap.cgroup(c).name().to_string();
    if !at.partial.is_empty() {
        let crossing = crossing(m, prep, (hid, c), strategy, &at);
        m.crossings.push(crossing);
        return;
    }
    if set.len() == m.nodes[at.lca].size {
        equal_set(m, prep, hid, c, at.lca, name, at.direct);
        return;
    }
    // A strict subset of the node at the LCA: a new node there, adopting
    // the children it covers.
    let new = m.add_node(at.lca, name);
    m.nodes[new].size = set.len();
    m.nodes[new].origins.push((hid, c));
    for k in at.covered {
        m.adopt(new, k);
    }
    for e in at.direct {
        m.elem_node[e as usize] = new;
    }
}

/// Where a set lands in the tree so far: the LCA of its elements' deepest
/// nodes, the children of the LCA it covers whole or in part, and its
/// elements directly at the LCA.
struct Landing {
    lca: usize,
    /// Children of the LCA it covers entirely (sorted).
    covered: Vec<usize>,
    /// Children of the LCA it covers in part: a crossing (sorted).
    partial: Vec<usize>,
    direct: Vec<u32>,
}

impl Landing {
    fn of(m: &Merged, set: &[u32]) -> Landing {
        // Group elements by their deepest node: far fewer than elements.
        let mut by_node: IdMap<usize, usize> = IdMap::default();
        for &e in set {
            *by_node.entry(m.elem_node[e as usize]).or_default() += 1;
        }
        let first = *by_node.keys().next().expect("non-empty set");
        let lca = by_node.keys().fold(first, |a, b| m.lca(a, *b));
        // Count elements per child of the LCA (and directly in it).
        let mut per_child: IdMap<usize, usize> = IdMap::default();
        let mut direct_nodes = false;
        for (n, count) in &by_node {
            match m.child_toward(*n, lca) {
                Some(ch) => *per_child.entry(ch).or_default() += count,
                None => direct_nodes = true,
            }
        }
        let direct = if direct_nodes {
            set.iter()
                .copied()
                .filter(|e| m.elem_node[*e as usize] == lca)
                .collect()
        } else {
            Vec::new()
        };
        // Sorted: HashMap order must not leak into plans (they are reproducible).
        let (mut covered, mut partial): (Vec<usize>, Vec<usize>) = per_child
            .keys()
            .copied()
            .partition(|ch| per_child[ch] == m.nodes[*ch].size);
        covered.sort_unstable();
        partial.sort_unstable();
        Landing {
            lca,
            covered,
            partial,
            direct,
        }
    }
}

/// A set that crosses accepted nodes: the conflict (with up to 10 pids on
/// each side), and with `split` its settings copied onto the maximal pieces.
fn crossing(
    m: &mut Merged,
    prep: &Prepared,
    (hid, c): (HierarchyId, NodeIndex),
    strategy: Strategy,
    at: &Landing,
) -> Crossing {
    let set = &prep.sets[&c];
    let partial = &at.partial;
    let in_set: std::collections::HashSet<u32> = set.iter().copied().collect();
    let in_partial = |m: &Merged, n: usize| partial.iter().any(|p| is_below(m, n, *p));
    let pids = |it: &mut dyn Iterator<Item = u32>| -> Vec<Pid> {
        it.filter_map(|e| pid_of(prep, e)).take(10).collect()
    };
    let shared = pids(
        &mut set
            .iter()
            .copied()
            .filter(|e| in_partial(m, m.elem_node[*e as usize])),
    );
    let only_rejected = pids(
        &mut set
            .iter()
            .copied()
            .filter(|e| !in_partial(m, m.elem_node[*e as usize])),
    );
    let only_crossed = pids(
        &mut (0..m.elem_node.len() as u32)
            .filter(|e| !in_set.contains(e) && in_partial(m, m.elem_node[*e as usize])),
    );
    let mut pieces = Vec::new();
    if strategy == Strategy::Split {
        let name = prep.snap.cgroup(c).name().to_string();
        split_pieces(m, at.lca, &in_set, &name, &mut pieces);
        for &p in &pieces {
            m.nodes[p].split_from.push((hid, c));
        }
    }
    Crossing {
        hierarchy: hid,
        cgroup: c,
        partial: partial.clone(),
        shared,
        only_rejected,
        only_crossed,
        strategy,
        pieces,
        settings: prep.settings_count(c),
    }
}

/// Insert a cgroup whose set equals that of node `l` (and of every node in
/// the chain of equal-size ancestors of `l`).
///
/// The cgroup can only go below the chain nodes that already hold one of its
/// own hierarchy's cgroups (its ancestors there). Among the nodes below, it
/// merges into one with the same path or name; otherwise into the first one
/// that none of its own equal-set descendants will match by name; otherwise it
/// becomes a new node right above the first such reserved node (or below `l`).
fn equal_set(
    m: &mut Merged,
    prep: &Prepared,
    hid: HierarchyId,
    c: NodeIndex,
    l: usize,
    name: String,
    direct: Vec<u32>,
) {
    let candidates = equal_chain(m, l, hid);
    let down = equal_set_descendants(prep, c);
    let new = match place_among(m, prep, c, &candidates, &down) {
        Place::Into(t) => {
            m.nodes[t].origins.push((hid, c));
            return;
        }
        Place::Above(first) => {
            let parent = m.nodes[first].parent.unwrap_or(0);
            let new = m.add_node(parent, name);
            m.adopt(new, first);
            new
        }
        Place::Below => {
            let new = m.add_node(l, name);
            let kids: Vec<usize> = m.nodes[l]
                .children
                .iter()
                .copied()
                .filter(|k| *k != new)
                .collect();
            for k in kids {
                m.adopt(new, k);
            }
            for e in direct {
                m.elem_node[e as usize] = new;
            }
            new
        }
    };
    m.nodes[new].size = prep.sets[&c].len();
    m.nodes[new].origins.push((hid, c));
}

/// The chain of equal-size nodes ending at `l`, top-down, below the last one
/// that holds a cgroup of hierarchy `hid` (the root excluded).
fn equal_chain(m: &Merged, l: usize, hid: HierarchyId) -> Vec<usize> {
    let mut chain = vec![l];
    let mut cur = l;
    while let Some(p) = m.nodes[cur].parent {
        if p == 0 || m.nodes[p].size != m.nodes[l].size {
            break;
        }
        chain.push(p);
        cur = p;
    }
    chain.reverse(); // top-down
    let has_h = |n: usize| m.nodes[n].origins.iter().any(|(h, _)| *h == hid);
    let start = chain.iter().rposition(|n| has_h(*n)).map_or(0, |i| i + 1);
    chain[start..].iter().copied().filter(|n| *n != 0).collect()
}

/// (path, name) of the equal-set descendants of `c` in its own hierarchy
/// (a single-child chain).
fn equal_set_descendants(prep: &Prepared, c: NodeIndex) -> Vec<(String, String)> {
    let snap = prep.snap;
    let size = prep.sets[&c].len();
    let mut down = Vec::new();
    let mut d = c;
    while let Some(k) = snap
        .children(d)
        .into_iter()
        .find(|k| prep.sets.get(k).is_some_and(|s| s.len() == size))
    {
        let kc = snap.cgroup(k);
        down.push((kc.path.clone(), kc.name().to_string()));
        d = k;
    }
    down
}

/// Where an equal-set cgroup goes among the chain's candidates.
enum Place {
    /// Merge into this node.
    Into(usize),
    /// A new node right above this one.
    Above(usize),
    /// A new node below the chain's end.
    Below,
}

/// Walk the candidates top-down. Hierarchies mostly share one path
/// namespace, so a candidate whose path is an ancestor of c's stays above
/// it, and one whose path is below c's (or that c's own descendants will
/// claim by name) must stay below it.
fn place_among(
    m: &Merged,
    prep: &Prepared,
    c: NodeIndex,
    candidates: &[usize],
    down: &[(String, String)],
) -> Place {
    let snap = prep.snap;
    let cg = snap.cgroup(c);
    let matches =
        |names: &[(&str, &str)], path: &str, nm: &str| names.iter().any(|(p, n)| *p == path || *n == nm);
    let is_under = |path: &str, anc: &str| anc == "/" || path.starts_with(&format!("{anc}/"));
    let mut fallback: Option<usize> = None;
    for &f in candidates {
        let names: Vec<(&str, &str)> = m.nodes[f]
            .origins
            .iter()
            .map(|(_, o)| {
                let oc = snap.cgroup(*o);
                (oc.path.as_str(), oc.name())
            })
            .collect();
        if matches(&names, &cg.path, cg.name()) {
            return Place::Into(f);
        }
        if names.iter().any(|(p, _)| is_under(&cg.path, p)) {
            continue;
        }
        let reserved = down.iter().any(|(p, nm)| matches(&names, p, nm));
        if reserved || names.iter().any(|(p, _)| is_under(p, &cg.path)) {
            return fallback.map_or(Place::Above(f), Place::Into);
        }
        fallback.get_or_insert(f);
    }
    fallback.map_or(Place::Below, Place::Into)
}

fn is_below(m: &Merged, mut n: usize, anc: usize) -> bool {
    loop {
        if n == anc {
            return true;
        }
        match m.nodes[n].parent {
            Some(p) => n = p,
            None => return false,
        }
    }
}

/// The maximal pieces of the tree under `n` whose elements all lie in `set`;
/// elements of a node directly in `set` (but not all of its elements) get a
/// new child named after the split cgroup.
fn split_pieces(
    m: &mut Merged,
    n: usize,
    set: &std::collections::HashSet<u32>,
    name: &str,
    out: &mut Vec<usize>,
) {
    let mut direct_in: Vec<usize> = set
        .iter()
        .map(|e| *e as usize)
        .filter(|e| m.elem_node[*e] == n)
        .collect();
    direct_in.sort_unstable();
    let children = m.nodes[n].children.clone();
    for ch in children {
        let (inside, total) = count_in(m, ch, set);
        if inside == 0 {
            continue;
        }
        if inside == total {
            out.push(ch);
        } else {
            split_pieces(m, ch, set, name, out);
        }
    }
    if !direct_in.is_empty() {
        let piece = m.add_node(n, name.to_string());
        m.nodes[piece].size = direct_in.len();
        for e in direct_in {
            m.elem_node[e] = piece;
        }
        out.push(piece);
    }
}

fn count_in(m: &Merged, n: usize, set: &std::collections::HashSet<u32>) -> (usize, usize) {
    let mut inside = 0;
    for e in set {
        if is_below(m, m.elem_node[*e as usize], n) {
            inside += 1;
        }
    }
    (inside, m.nodes[n].size)
}

/// Elements' processes: for a node, the pids of process elements placed there.
pub fn processes_at(prep: &Prepared, m: &Merged) -> Vec<Vec<(NodeIndex, Pid)>> {
    let mut out = vec![Vec::new(); m.nodes.len()];
    for (e, &n) in m.elem_node.iter().enumerate() {
        if let Elem::Process(pi, pid) = &prep.elems[e] {
            out[n].push((*pi, *pid));
        }
    }
    out
}

impl Merged {
    /// Fold into its parent every node that shares a v1 path with it and
    /// carries nothing of its own (no setting, no delegated owner, no split
    /// copy).
    ///
    /// The laminar merge nests cgroups of the same path when their task sets
    /// differ (systemd's `/system.slice` holds sshd, memory's only docker).
    /// Nesting keeps every setting exact but moves the inner cgroup's
    /// children to a path no manager looks up
    /// (`/system.slice/system.slice@memory/...`). When the inner one carries
    /// nothing, folding it loses nothing: its tasks and children move up one
    /// level into the node of the same path.
    pub fn fold_same_path(self, prep: &Prepared) -> Merged {
        let order = self.top_down();
        let mut rep: Vec<usize> = (0..self.nodes.len()).collect();
        let mut paths: Vec<Vec<&str>> = self
            .nodes
            .iter()
            .map(|t| {
                t.origins
                    .iter()
                    .map(|(_, c)| prep.snap.cgroup(*c).path.as_str())
                    .collect()
            })
            .collect();
        let mut empty: Vec<bool> = self.nodes.iter().map(|t| carries_nothing(prep, t)).collect();
        let mut procs = self.processes_below(prep);
        // (parent, path) -> the first child there with that path.
        let mut sibling: HashMap<(usize, &str), usize> = HashMap::new();
        for &k in order.iter().skip(1) {
            let Some(parent) = self.nodes[k].parent else {
                continue;
            };
            let p = rep[parent];
            let into_parent = p != 0 && empty[k] && paths[k].iter().any(|x| paths[p].contains(x));
            // Two siblings of one path (a slot in one hierarchy, the unit with
            // its process in another) are one cgroup, when merging them puts
            // no setting on a process that did not have it.
            let into_sibling = paths[k]
                .iter()
                .find_map(|x| sibling.get(&(p, *x)).copied())
                .filter(|&s| (empty[k] && (procs[k] == 0 || empty[s])) || (empty[s] && procs[s] == 0));
            let target = if into_parent { Some(p) } else { into_sibling };
            match target {
                Some(t) => {
                    rep[k] = t;
                    empty[t] = empty[t] && empty[k];
                    procs[t] += procs[k];
                    let mine = std::mem::take(&mut paths[k]);
                    paths[t].extend(mine);
                }
                None => {
                    for x in &paths[k] {
                        sibling.entry((p, x)).or_insert(k);
                    }
                }
            }
        }
        let mut m = if rep.iter().enumerate().all(|(i, r)| i == *r) {
            self
        } else {
            self.compact(&rep, &order)
        };
        m.adopt_empty_slots(prep);
        m
    }

    /// Move every subtree without processes under the sibling whose path is
    /// a prefix of its own (`/a/x`, an empty slot of one hierarchy, beside
    /// `/a` of another): no process changes place or settings, and the slot
    /// keeps its path.
    fn adopt_empty_slots(&mut self, prep: &Prepared) {
        let procs = self.processes_below(prep);
        let one_path = |t: &MergedNode| -> Option<&str> {
            let (_, first) = t.origins.first()?;
            let p = prep.snap.cgroup(*first).path.as_str();
            t.origins
                .iter()
                .all(|(_, c)| prep.snap.cgroup(*c).path == p)
                .then_some(p)
        };
        let mut at: HashMap<(usize, &str), usize> = HashMap::new();
        for (i, t) in self.nodes.iter().enumerate() {
            if let (Some(p), Some(par)) = (one_path(t), t.parent) {
                at.entry((par, p)).or_insert(i);
            }
        }
        let mut moves = Vec::new();
        for (k, t) in self.nodes.iter().enumerate() {
            let (Some(path), Some(par)) = (one_path(t), t.parent) else {
                continue;
            };
            if procs[k] != 0 {
                continue;
            }
            let mut q = crate::model::path::parent(path);
            while let Some(anc) = q.filter(|a| *a != "/") {
                if let Some(&s) = at.get(&(par, anc)) {
                    moves.push((s, k));
                    break;
                }
                q = crate::model::path::parent(anc);
            }
        }
        for (s, k) in moves {
            self.adopt(s, k);
        }
    }

    /// Per node: process elements in its subtree.
    fn processes_below(&self, prep: &Prepared) -> Vec<usize> {
        let mut n = vec![0usize; self.nodes.len()];
        for (e, &at) in self.elem_node.iter().enumerate() {
            if matches!(prep.elems[e], Elem::Process(..)) {
                n[at] += 1;
            }
        }
        for &k in self.top_down().iter().rev() {
            if let Some(p) = self.nodes[k].parent {
                n[p] += n[k];
            }
        }
        n
    }

    /// Node ids, parents before children.
    fn top_down(&self) -> Vec<usize> {
        let mut out = Vec::with_capacity(self.nodes.len());
        let mut stack = vec![0usize];
        while let Some(n) = stack.pop() {
            out.push(n);
            stack.extend(self.nodes[n].children.iter().rev().copied());
        }
        out
    }

    /// Rebuild the tree with every node `k` replaced by `rep[k]`.
    fn compact(self, rep: &[usize], order: &[usize]) -> Merged {
        let mut new_id = vec![usize::MAX; self.nodes.len()];
        let mut nodes: Vec<MergedNode> = Vec::new();
        for &k in order {
            if rep[k] == k {
                new_id[k] = nodes.len();
                nodes.push(MergedNode {
                    children: Vec::new(),
                    ..self.nodes[k].clone()
                });
            }
        }
        let to = |k: usize| new_id[rep[k]];
        for &k in order {
            if rep[k] != k {
                let (origins, split) = (self.nodes[k].origins.clone(), self.nodes[k].split_from.clone());
                nodes[to(k)].origins.extend(origins);
                nodes[to(k)].split_from.extend(split);
                continue;
            }
            let id = to(k);
            nodes[id].parent = self.nodes[k].parent.map(to);
            if let Some(p) = nodes[id].parent {
                nodes[id].depth = nodes[p].depth + 1;
                nodes[p].children.push(id);
            }
        }
        let remap = |v: &[usize]| {
            let mut out: Vec<usize> = v.iter().map(|x| to(*x)).collect();
            out.dedup();
            out
        };
        let crossings = self
            .crossings
            .into_iter()
            .map(|c| Crossing {
                partial: remap(&c.partial),
                pieces: remap(&c.pieces),
                ..c
            })
            .collect();
        Merged {
            nodes,
            elem_node: self.elem_node.iter().map(|n| to(*n)).collect(),
            crossings,
            order: self.order,
        }
    }
}

/// Whether a merged node carries nothing a fold could lose.
fn carries_nothing(prep: &Prepared, t: &MergedNode) -> bool {
    t.split_from.is_empty()
        && t.origins.iter().all(|(hid, c)| {
            let cg = prep.snap.cgroup(*c);
            let v2 = prep.hierarchy(*hid).version == crate::model::Version::V2;
            prep.settings_count(*c) == 0
                && cg.owner.delegate_uid().is_none()
                && !(v2
                    && cg
                        .settings
                        .iter()
                        .any(|(k, v)| !crate::model::files::is_v2_default(k, v)))
        })
}
