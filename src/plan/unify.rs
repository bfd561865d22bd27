//! Laminar merge of v1 hierarchies into one tree.
//!
//! The sets come from [`super::prepare`]: every significant v1 cgroup `c`
//! stands for the set `M(c)` of elements (processes and phantoms) in its
//! subtree.
//!
//! A family of sets is a tree iff it is laminar. Sets are added in priority
//! order (hierarchy, then depth). A set that crosses an accepted one is a
//! conflict, resolved by the policy's strategy. Each insertion costs
//! `O(distinct deepest nodes of its elements × depth)`, so the whole merge is
//! near-linear in the size of the hierarchies.

use petgraph::graph::NodeIndex;

pub use super::prepare::{Elem, IdMap, IdSet, Prepared, ThreadAt, ThreadSplit, relative};
use crate::model::{HierarchyId, Pid};
use crate::rules::{RuleSet, Strategy};

/// A node of the merged tree: its index in [`Merged::nodes`] (and in the
/// vectors the steps keep per merged node). A type of its own so that it is
/// never mixed up with an element, a graph node or a plan node, which were
/// all bare `usize`s.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct MergedId(usize);

impl MergedId {
    /// The root of the merged tree.
    pub const ROOT: MergedId = MergedId(0);

    /// The node at this index of [`Merged::nodes`].
    pub fn new(index: usize) -> MergedId {
        MergedId(index)
    }

    /// Its index in [`Merged::nodes`] and in vectors per merged node.
    pub fn index(self) -> usize {
        self.0
    }
}

impl<'a> std::ops::Index<MergedId> for Merged<'a> {
    type Output = MergedNode<'a>;
    fn index(&self, id: MergedId) -> &MergedNode<'a> {
        &self.nodes[id.0]
    }
}

impl<'a> std::ops::IndexMut<MergedId> for Merged<'a> {
    fn index_mut(&mut self, id: MergedId) -> &mut MergedNode<'a> {
        &mut self.nodes[id.0]
    }
}

/// A node of the merged tree.
#[derive(Debug, Clone, Default)]
pub struct MergedNode<'a> {
    /// Parent node.
    pub parent: Option<MergedId>,
    /// Children, in insertion order.
    pub children: Vec<MergedId>,
    /// Elements in the subtree.
    pub size: usize,
    /// Depth (root 0).
    pub depth: usize,
    /// The v1 cgroups merged here (hierarchy id, cgroup).
    pub origins: Vec<(HierarchyId, NodeIndex)>,
    /// Name, from the first (highest-priority) origin (borrowed from the
    /// snapshot: one allocation less per inserted cgroup).
    pub name: &'a str,
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
    pub partial: Vec<MergedId>,
    /// Elements shared with the partial nodes (up to 10 pids).
    pub shared: Vec<Pid>,
    /// Elements of the rejected set outside the partial nodes (up to 10 pids).
    pub only_rejected: Vec<Pid>,
    /// Elements of the partial nodes outside the rejected set (up to 10 pids).
    pub only_crossed: Vec<Pid>,
    /// Strategy applied.
    pub strategy: Strategy,
    /// Pieces its settings were copied onto (split).
    pub pieces: Vec<MergedId>,
    /// Settings affected.
    pub settings: usize,
}

/// The merged tree.
#[derive(Debug, Clone)]
pub struct Merged<'a> {
    /// Nodes; 0 is the root.
    pub nodes: Vec<MergedNode<'a>>,
    /// Deepest node of each element.
    pub elem_node: Vec<MergedId>,
    /// Conflicts.
    pub crossings: Vec<Crossing>,
    /// Hierarchy ids in the order used.
    pub order: Vec<HierarchyId>,
}

impl<'a> Merged<'a> {
    /// Settings affected by conflicts.
    pub fn cost(&self) -> usize {
        self.crossings.iter().map(|c| c.settings).sum()
    }

    fn lca(&self, mut a: MergedId, mut b: MergedId) -> MergedId {
        while a != b {
            if self[a].depth >= self[b].depth {
                a = self[a].parent.unwrap_or(MergedId::ROOT);
            } else {
                b = self[b].parent.unwrap_or(MergedId::ROOT);
            }
        }
        a
    }

    /// The child of `anc` on the way to `n` (`None` if `n == anc`).
    fn child_toward(&self, mut n: MergedId, anc: MergedId) -> Option<MergedId> {
        if n == anc {
            return None;
        }
        while let Some(p) = self[n].parent {
            if p == anc {
                return Some(n);
            }
            n = p;
        }
        None
    }

    fn add_node(&mut self, parent: MergedId, name: &'a str) -> MergedId {
        let id = MergedId(self.nodes.len());
        let depth = self[parent].depth + 1;
        self.nodes.push(MergedNode {
            parent: Some(parent),
            name,
            depth,
            ..Default::default()
        });
        self[parent].children.push(id);
        id
    }

    /// Move `child` under `new_parent`, fixing depths below it.
    fn adopt(&mut self, new_parent: MergedId, child: MergedId) {
        self.adopt_all(new_parent, &[child]);
    }

    /// Move `kids` under `new_parent` (in that order), fixing depths below
    /// them. One pass over each old parent's children, however many move:
    /// a node adopting a hundred siblings one by one was quadratic.
    fn adopt_all(&mut self, new_parent: MergedId, kids: &[MergedId]) {
        let mut old: Vec<MergedId> = kids.iter().filter_map(|&k| self[k].parent).collect();
        old.sort_unstable();
        old.dedup();
        if let [one] = kids {
            for o in old {
                self[o].children.retain(|c| c != one);
            }
        } else {
            let moving: IdSet<MergedId> = kids.iter().copied().collect();
            for o in old {
                self[o].children.retain(|c| !moving.contains(c));
            }
        }
        let depth = self[new_parent].depth + 1;
        let mut stack = Vec::with_capacity(kids.len());
        for &child in kids {
            self[child].parent = Some(new_parent);
            self[new_parent].children.push(child);
            stack.push((child, depth));
        }
        while let Some((n, d)) = stack.pop() {
            self[n].depth = d;
            for &k in &self[n].children {
                stack.push((k, d + 1));
            }
        }
    }
}

/// Merge the hierarchies in `order` (hierarchy ids).
pub fn merge<'a>(prep: &Prepared<'a>, rules: &RuleSet, order: &[HierarchyId]) -> Merged<'a> {
    let n_elems = prep.elems.len();
    let mut m = Merged {
        nodes: vec![MergedNode {
            size: n_elems,
            name: "/",
            ..Default::default()
        }],
        elem_node: vec![MergedId::ROOT; n_elems],
        crossings: Vec::new(),
        order: order.to_vec(),
    };
    for &hid in order {
        if let Some(root) = prep.roots.get(&hid)
            && prep.snap.cgroup(*root).path == "/"
        {
            m[MergedId::ROOT].origins.push((hid, *root));
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

fn insert<'a>(m: &mut Merged<'a>, prep: &Prepared<'a>, hid: HierarchyId, c: NodeIndex, strategy: Strategy) {
    let set = &prep.sets[&c];
    let at = Landing::of(m, set);
    let name = prep.snap.cgroup(c).name();
    if !at.partial.is_empty() {
        let crossing = crossing(m, prep, (hid, c), strategy, &at);
        m.crossings.push(crossing);
        return;
    }
    if set.len() == m[at.lca].size {
        equal_set(m, prep, hid, c, at.lca, name, at.direct);
        return;
    }
    // A strict subset of the node at the LCA: a new node there, adopting
    // the children it covers.
    let new = m.add_node(at.lca, name);
    m[new].size = set.len();
    m[new].origins.push((hid, c));
    m.adopt_all(new, &at.covered);
    for e in at.direct {
        m.elem_node[e as usize] = new;
    }
}

/// Where a set lands in the tree so far: the LCA of its elements' deepest
/// nodes, the children of the LCA it covers whole or in part, and its
/// elements directly at the LCA.
struct Landing {
    lca: MergedId,
    /// Children of the LCA it covers entirely (sorted).
    covered: Vec<MergedId>,
    /// Children of the LCA it covers in part: a crossing (sorted).
    partial: Vec<MergedId>,
    direct: Vec<u32>,
}

impl Landing {
    fn of(m: &Merged, set: &[u32]) -> Landing {
        // Group elements by their deepest node: far fewer than elements.
        let mut by_node: IdMap<MergedId, usize> = IdMap::default();
        for &e in set {
            *by_node.entry(m.elem_node[e as usize]).or_default() += 1;
        }
        let first = *by_node.keys().next().expect("non-empty set");
        let lca = by_node.keys().fold(first, |a, b| m.lca(a, *b));
        // Count elements per child of the LCA (and directly in it).
        let mut per_child: IdMap<MergedId, usize> = IdMap::default();
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
        let (mut covered, mut partial): (Vec<MergedId>, Vec<MergedId>) = per_child
            .keys()
            .copied()
            .partition(|ch| per_child[ch] == m[*ch].size);
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
fn crossing<'a>(
    m: &mut Merged<'a>,
    prep: &Prepared<'a>,
    (hid, c): (HierarchyId, NodeIndex),
    strategy: Strategy,
    at: &Landing,
) -> Crossing {
    let set = &prep.sets[&c];
    let partial = &at.partial;
    let in_set: IdSet<u32> = set.iter().copied().collect();
    let in_partial = |m: &Merged, n: MergedId| partial.iter().any(|p| is_below(m, n, *p));
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
        let name = prep.snap.cgroup(c).name();
        split_pieces(m, at.lca, &in_set, name, &mut pieces);
        for &p in &pieces {
            m[p].split_from.push((hid, c));
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
fn equal_set<'a>(
    m: &mut Merged<'a>,
    prep: &Prepared<'a>,
    hid: HierarchyId,
    c: NodeIndex,
    l: MergedId,
    name: &'a str,
    direct: Vec<u32>,
) {
    let candidates = equal_chain(m, l, hid);
    let down = equal_set_descendants(prep, c);
    let new = match place_among(m, prep, c, &candidates, &down) {
        Place::Into(t) => {
            m[t].origins.push((hid, c));
            return;
        }
        Place::Above(first) => {
            let parent = m[first].parent.unwrap_or(MergedId::ROOT);
            let new = m.add_node(parent, name);
            m.adopt(new, first);
            new
        }
        Place::Below => {
            let new = m.add_node(l, name);
            let kids: Vec<MergedId> = m[l].children.iter().copied().filter(|k| *k != new).collect();
            m.adopt_all(new, &kids);
            for e in direct {
                m.elem_node[e as usize] = new;
            }
            new
        }
    };
    m[new].size = prep.sets[&c].len();
    m[new].origins.push((hid, c));
}

/// The chain of equal-size nodes ending at `l`, top-down, below the last one
/// that holds a cgroup of hierarchy `hid` (the root excluded).
fn equal_chain(m: &Merged, l: MergedId, hid: HierarchyId) -> Vec<MergedId> {
    let mut chain = vec![l];
    let mut cur = l;
    while let Some(p) = m[cur].parent {
        if p == MergedId::ROOT || m[p].size != m[l].size {
            break;
        }
        chain.push(p);
        cur = p;
    }
    chain.reverse(); // top-down
    let has_h = |n: MergedId| m[n].origins.iter().any(|(h, _)| *h == hid);
    let start = chain.iter().rposition(|n| has_h(*n)).map_or(0, |i| i + 1);
    chain[start..]
        .iter()
        .copied()
        .filter(|n| *n != MergedId::ROOT)
        .collect()
}

/// (path, name) of the equal-set descendants of `c` in its own hierarchy
/// (a single-child chain).
/// (Siblings' sets are disjoint, so at most one child has the whole set:
/// the children need no sorting.)
fn equal_set_descendants<'a>(prep: &Prepared<'a>, c: NodeIndex) -> Vec<(&'a str, &'a str)> {
    let snap = prep.snap;
    let size = prep.sets[&c].len();
    let mut down = Vec::new();
    let mut d = c;
    while let Some(k) =
        super::prepare::child_cgroups(snap, d).find(|k| prep.sets.get(k).is_some_and(|s| s.len() == size))
    {
        let kc = snap.cgroup(k);
        down.push((kc.path.as_str(), kc.name()));
        d = k;
    }
    down
}

/// Where an equal-set cgroup goes among the chain's candidates.
enum Place {
    /// Merge into this node.
    Into(MergedId),
    /// A new node right above this one.
    Above(MergedId),
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
    candidates: &[MergedId],
    down: &[(&str, &str)],
) -> Place {
    let snap = prep.snap;
    let cg = snap.cgroup(c);
    let matches =
        |names: &[(&str, &str)], path: &str, nm: &str| names.iter().any(|(p, n)| *p == path || *n == nm);
    let is_under =
        |path: &str, anc: &str| anc == "/" || path.strip_prefix(anc).is_some_and(|r| r.starts_with('/'));
    let mut fallback: Option<MergedId> = None;
    let mut names: Vec<(&str, &str)> = Vec::new();
    for &f in candidates {
        names.clear();
        names.extend(m[f].origins.iter().map(|(_, o)| {
            let oc = snap.cgroup(*o);
            (oc.path.as_str(), oc.name())
        }));
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

fn is_below(m: &Merged, mut n: MergedId, anc: MergedId) -> bool {
    loop {
        if n == anc {
            return true;
        }
        match m[n].parent {
            Some(p) => n = p,
            None => return false,
        }
    }
}

/// The maximal pieces of the tree under `n` whose elements all lie in `set`;
/// elements of a node directly in `set` (but not all of its elements) get a
/// new child named after the split cgroup.
fn split_pieces<'a>(
    m: &mut Merged<'a>,
    n: MergedId,
    set: &IdSet<u32>,
    name: &'a str,
    out: &mut Vec<MergedId>,
) {
    let mut direct_in: Vec<usize> = set
        .iter()
        .map(|e| *e as usize)
        .filter(|e| m.elem_node[*e] == n)
        .collect();
    direct_in.sort_unstable();
    let children = m[n].children.clone();
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
        let piece = m.add_node(n, name);
        m[piece].size = direct_in.len();
        for e in direct_in {
            m.elem_node[e] = piece;
        }
        out.push(piece);
    }
}

fn count_in(m: &Merged, n: MergedId, set: &IdSet<u32>) -> (usize, usize) {
    let mut inside = 0;
    for e in set {
        if is_below(m, m.elem_node[*e as usize], n) {
            inside += 1;
        }
    }
    (inside, m[n].size)
}

/// Elements' processes: for a node, the pids of process elements placed there.
pub fn processes_at(prep: &Prepared, m: &Merged) -> PerNode<Vec<(NodeIndex, Pid)>> {
    let mut out = PerNode(vec![Vec::new(); m.nodes.len()]);
    for (e, &n) in m.elem_node.iter().enumerate() {
        if let Elem::Process(pi, pid) = &prep.elems[e] {
            out[n].push((*pi, *pid));
        }
    }
    out
}

/// Values per merged node, indexed by [`MergedId`] (the v2 path of each,
/// its processes).
#[derive(Debug, Clone, Default)]
pub struct PerNode<T>(pub Vec<T>);

impl<T> std::ops::Index<MergedId> for PerNode<T> {
    type Output = T;
    fn index(&self, id: MergedId) -> &T {
        &self.0[id.0]
    }
}

impl<T> std::ops::IndexMut<MergedId> for PerNode<T> {
    fn index_mut(&mut self, id: MergedId) -> &mut T {
        &mut self.0[id.0]
    }
}

impl<'a> Merged<'a> {
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
    pub fn fold_same_path(self, prep: &Prepared) -> Merged<'a> {
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
        let mut sibling: IdMap<(usize, &str), usize> = IdMap::default();
        for &k in order.iter().skip(1) {
            let Some(parent) = self.nodes[k].parent else {
                continue;
            };
            let p = rep[parent.0];
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
        let mut at: IdMap<(MergedId, &str), MergedId> = IdMap::default();
        for (i, t) in self.nodes.iter().enumerate() {
            if let (Some(p), Some(par)) = (one_path(t), t.parent) {
                at.entry((par, p)).or_insert(MergedId(i));
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
                    moves.push((s, MergedId(k)));
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
                n[at.0] += 1;
            }
        }
        for &k in self.top_down().iter().rev() {
            if let Some(p) = self.nodes[k].parent {
                n[p.0] += n[k];
            }
        }
        n
    }

    /// Node indices, parents before children.
    fn top_down(&self) -> Vec<usize> {
        let mut out = Vec::with_capacity(self.nodes.len());
        let mut stack = vec![MergedId::ROOT];
        while let Some(n) = stack.pop() {
            out.push(n.0);
            stack.extend(self[n].children.iter().rev().copied());
        }
        out
    }

    /// Rebuild the tree with every node `k` replaced by `rep[k]`.
    fn compact(self, rep: &[usize], order: &[usize]) -> Merged<'a> {
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
        let to = |k: MergedId| MergedId(new_id[rep[k.0]]);
        for &k in order {
            let old = &self.nodes[k];
            let id = to(MergedId(k));
            if rep[k] != k {
                let (origins, split) = (old.origins.clone(), old.split_from.clone());
                nodes[id.0].origins.extend(origins);
                nodes[id.0].split_from.extend(split);
                continue;
            }
            nodes[id.0].parent = old.parent.map(to);
            if let Some(p) = nodes[id.0].parent {
                nodes[id.0].depth = nodes[p.0].depth + 1;
                nodes[p.0].children.push(id);
            }
        }
        let remap = |v: &[MergedId]| {
            let mut out: Vec<MergedId> = v.iter().map(|x| to(*x)).collect();
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
