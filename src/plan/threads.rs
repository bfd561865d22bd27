//! Threads step: threaded subtrees for processes whose threads are split
//! in threaded controllers; blockers for splits v2 can't express.
//!
//! Each v1 cgroup between a split process's threads and their common
//! ancestor is a candidate threaded node holding a set of threads.
//! Candidates of different hierarchies at the same relative path merge only
//! when they hold exactly the same threads under the same parent (libvirt's
//! cpu and cpuset `vcpuN`); otherwise each keeps its own node. A thread
//! lives in the deepest candidate of its highest-priority hierarchy, so it
//! only ever sees settings of v1 cgroups it was in.
//!
//! The steps, each a function from typed values to typed values:
//! [`candidates`] (splits → candidate thread cgroups and each thread's
//! choice), [`shared_thread_cgroups`] (findings), [`threaded_nodes`]
//! (candidates → named threaded nodes), [`overruled_places`] (findings),
//! [`place_threads`] (threads into their nodes).

use crate::model::{HierarchyId, Pid, Tid};
use std::collections::{BTreeMap, BTreeSet, HashMap};

use petgraph::graph::NodeIndex;

use super::findings;
use super::model::node_subject;
use super::model::*;
use super::nodes::origin_of;
use super::settings::settings_of;
use super::unify::{self, Merged, MergedId, PerNode, Prepared};
use crate::rules::PlanPolicy;
use crate::rules::{Finding, Subject};

/// Add threaded nodes below the homes of split processes (and make those
/// homes `domain threaded`).
pub fn threaded_subtrees(
    prep: &Prepared,
    m: &Merged,
    policy: &PlanPolicy,
    paths: &PerNode<String>,
    nodes: &mut Vec<PlanNode>,
    findings: &mut Vec<Finding>,
) {
    let cands = candidates(prep, m, policy, paths, findings);
    for &home in &cands.threaded_domains {
        nodes[home.index()].node_type = NodeType::DomainThreaded;
    }
    findings.extend(shared_thread_cgroups(prep, &cands));
    let built = threaded_nodes(prep, &cands, paths, &domain_paths(paths), findings);
    findings.extend(overruled_places(prep, &cands, &built, paths));
    nodes.extend(place_threads(&cands, built));
}

/// A candidate's identity: the v1 cgroup of one hierarchy, below the home
/// (merged node) of the processes whose threads it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct CandKey {
    home: MergedId,
    hier: HierarchyId,
    cg: NodeIndex,
}

/// A v1 thread cgroup that may become a threaded node.
struct Cand {
    /// Its path relative to the split's common ancestor.
    rel: String,
    /// The common ancestor of the latest split that reached it.
    lca: NodeIndex,
    /// The threads at or below it.
    tids: BTreeSet<Tid>,
}

/// Where a thread goes: the hierarchy of highest priority that splits it
/// decides.
struct Choice {
    rank: usize,
    hier: HierarchyId,
    /// Its deepest candidate; `None` = it stays at its process's home.
    deepest: Option<CandKey>,
    pid: Pid,
}

/// A place a lower-priority hierarchy gave a thread, which it loses.
struct Overruled {
    tid: Tid,
    key: CandKey,
    lca: NodeIndex,
}

/// The candidates of every split process and each thread's choice.
#[derive(Default)]
struct Candidates {
    cands: BTreeMap<CandKey, Cand>,
    choice: BTreeMap<Tid, Choice>,
    overruled: Vec<Overruled>,
    /// Merged nodes that become `domain threaded`.
    threaded_domains: BTreeSet<MergedId>,
}

/// Every path of the domain tree, ancestors included: a threaded node must
/// not take one.
fn domain_paths(paths: &PerNode<String>) -> BTreeSet<String> {
    let mut out: BTreeSet<String> = BTreeSet::new();
    for p in &paths.0 {
        let mut cur = Some(p.as_str());
        while let Some(c) = cur {
            if !out.insert(c.to_string()) {
                break;
            }
            cur = crate::model::path::parent(c);
        }
    }
    out
}

/// Splits, in pid then priority order, turned into candidates; splits v2
/// can't express become findings instead.
fn candidates(
    prep: &Prepared,
    m: &Merged,
    policy: &PlanPolicy,
    paths: &PerNode<String>,
    findings: &mut Vec<Finding>,
) -> Candidates {
    let mut out = Candidates::default();
    let mut splits: Vec<&unify::ThreadSplit> = prep.splits.iter().collect();
    splits.sort_by_key(|s| (s.pid, policy.rank(prep.hierarchy(s.hierarchy)), s.hierarchy));
    for split in splits {
        let home = m.elem_node[split.elem];
        let h = prep.hierarchy(split.hierarchy);
        if h.controllers.is_empty() {
            // A named hierarchy carries no settings: its thread placement
            // needs no threaded subtree (the named-hierarchy finding covers it).
            continue;
        }
        if let Some(f) = inexpressible(prep, m, split, &paths[home]) {
            findings.push(f);
            continue;
        }
        out.add_split(prep, split, home, policy.rank(h));
        if home != MergedId::ROOT {
            out.threaded_domains.insert(home);
        }
    }
    out
}

/// The finding for a split v2 cannot express: threads split in a domain
/// controller, or a process whose cgroup has domain children (only the root
/// may hold threaded and domain children side by side).
fn inexpressible(
    prep: &Prepared,
    m: &Merged,
    split: &unify::ThreadSplit,
    home_path: &str,
) -> Option<Finding> {
    let label = prep.label(split.hierarchy);
    let lost = || below_lca(prep, split).into_iter().collect::<Vec<_>>().join(", ");
    if split.domain {
        return Some(findings::THREAD_PLACEMENT_LOST.finding(
            Subject::Process {
                pid: split.pid,
                comm: comm_of(prep, split),
            },
            format!(
                "threads of process {} are kept together at {home_path}; their separate cgroups in {label} ({}) and the settings on them do not carry over",
                split.pid,
                lost()
            ),
        ));
    }
    let home = m.elem_node[split.elem];
    if home == MergedId::ROOT || m[home].children.is_empty() {
        return None;
    }
    Some(findings::THREADED_NEEDS_LEAF_DOMAIN.at(
        home_path,
        format!(
            "process {} splits its threads in {label} ({}), but {home_path} also has child cgroups; v2 can't make it a threaded domain, so its threads stay together and those cgroups' settings don't apply to them",
            split.pid,
            lost()
        ),
    ))
}

impl Candidates {
    /// Add the cgroups of one split (chains from each thread's cgroup up to
    /// the common ancestor) and let each thread choose.
    fn add_split(&mut self, prep: &Prepared, split: &unify::ThreadSplit, home: MergedId, rank: usize) {
        let snap = prep.snap;
        let lca_path = snap.cgroup(split.lca).path.as_str();
        for &unify::ThreadAt { tid, cgroup: cg } in &split.threads {
            let mut deepest = None;
            let mut cur = Some(cg);
            while let Some(c) = cur.filter(|c| *c != split.lca) {
                let key = CandKey {
                    home,
                    hier: split.hierarchy,
                    cg: c,
                };
                let cand = self.cands.entry(key).or_insert_with(|| Cand {
                    rel: relative_to(&snap.cgroup(c).path, lca_path),
                    lca: split.lca,
                    tids: BTreeSet::new(),
                });
                cand.tids.insert(tid);
                cand.lca = split.lca;
                deepest.get_or_insert(key);
                cur = prep.parent(c);
            }
            let choice = Choice {
                rank,
                hier: split.hierarchy,
                deepest,
                pid: split.pid,
            };
            self.choose(tid, choice, split.lca);
        }
    }

    /// A thread's place: the first hierarchy by (rank, id) keeps it; the
    /// other's place is overruled.
    fn choose(&mut self, tid: Tid, new: Choice, lca: NodeIndex) {
        match self.choice.get(&tid) {
            Some(old) if (old.rank, old.hier) < (new.rank, new.hier) => {
                if let Some(key) = new.deepest {
                    self.overruled.push(Overruled { tid, key, lca });
                }
            }
            old => {
                if let Some(key) = old.and_then(|o| o.deepest) {
                    let lca = self.cands[&key].lca;
                    self.overruled.push(Overruled { tid, key, lca });
                }
                self.choice.insert(tid, new);
            }
        }
    }
}

/// `path` relative to `anc`, without a leading `/` (`vcpu0/emulator`).
fn relative_to(path: &str, anc: &str) -> String {
    path.strip_prefix(anc)
        .unwrap_or(path)
        .trim_start_matches('/')
        .to_string()
}

/// A v1 thread cgroup that holds threads of processes with different homes
/// becomes one threaded node per home: its limit is no longer shared.
fn shared_thread_cgroups(prep: &Prepared, cands: &Candidates) -> Vec<Finding> {
    let mut homes_of: BTreeMap<(HierarchyId, NodeIndex), BTreeSet<MergedId>> = BTreeMap::new();
    for k in cands.cands.keys() {
        homes_of.entry((k.hier, k.cg)).or_default().insert(k.home);
    }
    homes_of
        .into_iter()
        .filter(|(_, homes)| homes.len() > 1)
        .map(|((hier, cg), homes)| {
            let (label, path) = (prep.label(hier), prep.snap.cgroup(cg).path.clone());
            findings::THREAD_CGROUP_SPLIT.finding(
                Subject::Cgroup { hierarchy: hier, label: label.clone(), path: path.clone() },
                format!(
                    "{label}:{path} holds threads of processes that land under {} different v2 cgroups; it becomes one threaded node under each, so its settings apply to each group separately",
                    homes.len()
                ),
            )
        })
        .collect()
}

/// Candidates that may become one threaded node: same home, same path
/// relative to their split's common ancestor, same threads.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct GroupKey<'a> {
    /// The merged node of their processes.
    home: MergedId,
    /// Path relative to the common ancestor (`vcpu0/emulator`).
    rel: &'a str,
    /// The threads they hold, sorted.
    tids: Vec<Tid>,
}

/// The threaded nodes, by path, and the node each candidate went to.
struct ThreadedNodes {
    nodes: BTreeMap<String, PlanNode>,
    path_of: HashMap<CandKey, String>,
}

/// Candidates merged into threaded nodes: by (home, relative path, thread
/// set), parents before children, and only when their parents are one node
/// too. Name collisions with domain nodes or other threaded nodes get the
/// hierarchy's label.
fn threaded_nodes(
    prep: &Prepared,
    cands: &Candidates,
    paths: &PerNode<String>,
    domain: &BTreeSet<String>,
    findings: &mut Vec<Finding>,
) -> ThreadedNodes {
    let mut groups: BTreeMap<GroupKey, Vec<CandKey>> = BTreeMap::new();
    for (k, c) in &cands.cands {
        let key = GroupKey {
            home: k.home,
            rel: c.rel.as_str(),
            tids: c.tids.iter().copied().collect(),
        };
        groups.entry(key).or_default().push(*k);
    }
    let mut ordered: Vec<_> = groups.into_iter().collect();
    ordered.sort_by_key(|(g, _)| (g.home, g.rel.matches('/').count(), g.rel));
    let mut out = ThreadedNodes {
        nodes: BTreeMap::new(),
        path_of: HashMap::new(),
    };
    for (GroupKey { home, rel, .. }, group) in ordered {
        for (parent_path, keys) in by_parent(prep, &out.path_of, &paths[home], group) {
            let name = rel.rsplit('/').next().unwrap_or(rel);
            let first = keys[0];
            let path = threaded_path(prep, first, &parent_path, name, domain, &out.nodes, findings);
            let node = threaded_node(prep, &keys, &path, findings);
            for k in keys {
                out.path_of.insert(k, path.clone());
            }
            out.nodes.insert(path, node);
        }
    }
    out
}

/// Candidates of one group, by the path of their parent's threaded node
/// (the home's path for a top candidate).
fn by_parent(
    prep: &Prepared,
    path_of: &HashMap<CandKey, String>,
    home_path: &str,
    group: Vec<CandKey>,
) -> BTreeMap<String, Vec<CandKey>> {
    let mut out: BTreeMap<String, Vec<CandKey>> = BTreeMap::new();
    for k in group {
        let parent = prep
            .parent(k.cg)
            .and_then(|p| path_of.get(&CandKey { cg: p, ..k }).cloned())
            .unwrap_or_else(|| home_path.to_string());
        out.entry(parent).or_default().push(k);
    }
    out
}

/// The path of a threaded node: `parent/name`, or `name@label[-N]` with a
/// `plan.renamed` finding when a domain or threaded node has that path.
fn threaded_path(
    prep: &Prepared,
    first: CandKey,
    parent: &str,
    name: &str,
    domain: &BTreeSet<String>,
    taken: &BTreeMap<String, PlanNode>,
    findings: &mut Vec<Finding>,
) -> String {
    let wanted = crate::model::path::join(parent, name);
    let free = |p: &str| !domain.contains(p) && !taken.contains_key(p);
    if free(&wanted) {
        return wanted;
    }
    let label = prep.label(first.hier).replace(',', "+").replace('=', "-");
    let path = (1..)
        .map(|i| {
            let suffix = if i == 1 { String::new() } else { format!("-{i}") };
            crate::model::path::join(parent, &format!("{name}@{label}{suffix}"))
        })
        .find(|p| free(p))
        .expect("an unbounded suffix search ends");
    findings.push(findings::RENAMED_THREADED.at(
        &path,
        format!(
            "the thread cgroup {}:{} would be {wanted}, which is a domain cgroup in v2; the threaded node is {path}",
            prep.label(first.hier),
            prep.snap.cgroup(first.cg).path,
        ),
    ));
    path
}

/// A threaded node from its candidates: their origins and their threaded
/// settings; a domain setting on a thread cgroup is lost (a finding).
fn threaded_node(prep: &Prepared, keys: &[CandKey], path: &str, findings: &mut Vec<Finding>) -> PlanNode {
    let mut node = PlanNode::new(path.to_string(), NodeType::Threaded, None);
    for k in keys {
        node.origins.push(origin_of(prep, k.hier, k.cg));
        for st in settings_of(prep, k.hier, k.cg, false) {
            match st.controller() {
                Some(ctl) if is_threaded_controller(ctl) => node.settings.push(st),
                _ => findings.push(findings::THREADED_SETTING_LOST.at(
                    path,
                    format!(
                        "{}={} (from {}:{}) can't apply to threads",
                        st.file, st.value, st.origin.label, st.origin.path
                    ),
                )),
            }
        }
    }
    node
}

/// A thread placed by a higher-priority hierarchy loses the places another
/// hierarchy gave it, unless they ended up on its path anyway (merged).
fn overruled_places(
    prep: &Prepared,
    cands: &Candidates,
    built: &ThreadedNodes,
    paths: &PerNode<String>,
) -> Vec<Finding> {
    let snap = prep.snap;
    let mut out = Vec::new();
    for o in &cands.overruled {
        let chosen = cands.choice.get(&o.tid).and_then(|c| match c.deepest {
            Some(k) => built.path_of.get(&k).cloned(),
            None => Some(paths[o.key.home].clone()),
        });
        let lower = built.path_of.get(&o.key);
        if let (Some(c), Some(l)) = (&chosen, lower)
            && is_within(c, l)
        {
            continue;
        }
        let mut lost = Vec::new();
        let mut cur = Some(o.key.cg);
        while let Some(c) = cur.filter(|c| *c != o.lca) {
            lost.push(snap.cgroup(c).path.clone());
            cur = prep.parent(c);
        }
        out.push(findings::THREAD_CONFLICT.finding(
            node_subject(chosen.as_deref().unwrap_or("/")),
            format!(
                "thread {} follows a higher-priority hierarchy; its place in {} ({}) is ignored for it, with those cgroups' settings",
                o.tid,
                prep.label(o.key.hier),
                lost.join(", ")
            ),
        ));
    }
    out
}

/// Each thread into the node of its deepest chosen candidate; the nodes,
/// ordered by path, with their threads sorted.
fn place_threads(cands: &Candidates, built: ThreadedNodes) -> impl Iterator<Item = PlanNode> {
    let ThreadedNodes { mut nodes, path_of } = built;
    for (tid, c) in &cands.choice {
        if let Some(k) = c.deepest
            && let Some(path) = path_of.get(&k)
            && let Some(n) = nodes.get_mut(path)
        {
            n.threads.push(ThreadPlace {
                tid: *tid,
                pid: c.pid,
            });
        }
    }
    nodes.into_values().map(|mut n| {
        n.threads.sort_unstable();
        n
    })
}

/// The cgroups between a split process's threads and their common ancestor
/// (the thread cgroups and their ancestors below the LCA): their settings
/// applied to some threads only.
fn below_lca(prep: &Prepared, split: &unify::ThreadSplit) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for t in &split.threads {
        let mut cur = Some(t.cgroup);
        while let Some(c) = cur.filter(|c| *c != split.lca) {
            out.insert(prep.snap.cgroup(c).path.clone());
            cur = prep.parent(c);
        }
    }
    out
}

/// The `comm` of a split's process (its element names the graph node).
fn comm_of(prep: &Prepared, split: &unify::ThreadSplit) -> String {
    match &prep.elems[split.elem] {
        unify::Elem::Process(pi, _) => match &prep.snap.graph[*pi] {
            crate::model::Node::Process(p) => p.comm.clone(),
            _ => String::new(),
        },
        unify::Elem::Phantom(_) => String::new(),
    }
}
