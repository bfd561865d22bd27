//! Threads step: threaded subtrees for processes whose threads are split
//! in threaded controllers; blockers for splits v2 can't express.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::model::*;
use super::nodes::origin_of;
use super::settings::settings_of;
use super::unify::{self, Merged, Prepared};
use super::{node_subject, planner_finding};
use crate::audit::{Finding, Subject};
use crate::model::Snapshot;
use crate::rules::Severity;

/// Add threaded nodes below the homes of split processes (and make those
/// homes `domain threaded`).
pub fn threaded_subtrees(
    prep: &Prepared,
    m: &Merged,
    policy: &crate::rules::PlanPolicy,
    paths: &[String],
    nodes: &mut Vec<PlanNode>,
    findings: &mut Vec<Finding>,
) {
    let snap = prep.snap;
    // Threaded subtrees. Each v1 cgroup between a split process's threads
    // and their common ancestor is a candidate threaded node holding a set of
    // threads. Candidates of different hierarchies at the same relative path
    // merge only when they hold exactly the same threads (libvirt's cpu and
    // cpuset vcpuN); otherwise each keeps its own node. A thread lives in the
    // deepest candidate of its highest-priority hierarchy, so it only ever
    // sees settings of v1 cgroups it was in.
    let mut domain_paths: BTreeSet<String> = BTreeSet::new();
    for p in paths {
        let mut cur = Some(p.as_str());
        while let Some(c) = cur {
            if !domain_paths.insert(c.to_string()) {
                break;
            }
            cur = crate::model::path::parent(c);
        }
    }
    // (home node, hierarchy, v1 cgroup)
    type CandKey = (usize, u32, petgraph::graph::NodeIndex);
    struct Cand {
        home: usize,
        hier: u32,
        rel: String,
        cg: petgraph::graph::NodeIndex,
        tids: BTreeSet<u32>,
    }
    let mut cands: BTreeMap<CandKey, Cand> = BTreeMap::new();
    let mut splits: Vec<&unify::ThreadSplit> = prep.splits.iter().collect();
    splits.sort_by_key(|s| (s.pid, policy.rank(prep.hierarchy(s.hierarchy)), s.hierarchy));
    // Per thread: (rank, hierarchy, deepest candidate key or None = home).
    let mut choice: BTreeMap<u32, (usize, u32, Option<CandKey>, u32)> = BTreeMap::new();
    let mut overruled: Vec<(u32, CandKey, petgraph::graph::NodeIndex)> = Vec::new();
    let mut lca_of: HashMap<CandKey, petgraph::graph::NodeIndex> = HashMap::new();
    for split in splits {
        let home = m.elem_node[split.elem];
        let base_path = paths[home].clone();
        let h = prep.hierarchy(split.hierarchy);
        if h.controllers.is_empty() {
            // A named hierarchy carries no settings: its thread placement
            // needs no threaded subtree (the named-hierarchy finding covers it).
            continue;
        }
        if split.domain {
            let lost: Vec<String> = below_lca(snap, split).into_iter().collect();
            findings.push(planner_finding(
                "plan.thread-placement-lost",
                Severity::Error,
                "per-thread placement in a domain controller is dropped",
                Subject::Process { pid: split.pid, comm: comm_of(snap, split.pid) },
                format!(
                    "threads of process {} are kept together at {base_path}; their separate cgroups in {} ({}) and the settings on them do not carry over",
                    split.pid,
                    h.label(),
                    lost.join(", ")
                ),
                "Move all threads of the process into one cgroup in v1 first, or accept the loss.",
            ));
            continue;
        }
        // The root may hold threaded and domain children side by side; any
        // other threaded domain may not have domain children.
        if home != 0 && !m.nodes[home].children.is_empty() {
            let lost = below_lca(snap, split);
            findings.push(planner_finding(
                "plan.threaded-needs-leaf-domain",
                Severity::Error,
                "a process with split threads sits in a cgroup with domain children",
                node_subject(&base_path),
                format!(
                    "process {} splits its threads in {} ({}), but {base_path} also has child cgroups; v2 can't make it a threaded domain, so its threads stay together and those cgroups' settings don't apply to them",
                    split.pid,
                    h.label(),
                    lost.into_iter().collect::<Vec<_>>().join(", ")
                ),
                "Move the process into its own cgroup in v1 (or let it keep all threads together).",
            ));
            continue;
        }
        let rank = policy.rank(h);
        let lca_path = snap.cgroup(split.lca).path.clone();
        for &(tid, cg) in &split.threads {
            // Candidates along the chain lca -> cg.
            let mut deepest = None;
            let mut cur = Some(cg);
            while let Some(c) = cur {
                if c == split.lca {
                    break;
                }
                let cpath = snap.cgroup(c).path.clone();
                let rel = cpath
                    .strip_prefix(&lca_path)
                    .unwrap_or(&cpath)
                    .trim_start_matches('/')
                    .to_string();
                let e = cands.entry((home, split.hierarchy, c)).or_insert_with(|| Cand {
                    home,
                    hier: split.hierarchy,
                    rel,
                    cg: c,
                    tids: BTreeSet::new(),
                });
                e.tids.insert(tid);
                lca_of.insert((home, split.hierarchy, c), split.lca);
                deepest.get_or_insert((home, split.hierarchy, c));
                cur = snap.parent(c);
            }
            match choice.get(&tid) {
                Some((r, hh, _, _)) if (*r, *hh) < (rank, split.hierarchy) => {
                    if let Some(k) = deepest {
                        overruled.push((tid, k, split.lca));
                    }
                }
                _ => {
                    if let Some((_, _, Some(k), _)) = choice.get(&tid) {
                        overruled.push((tid, *k, lca_of[k]));
                    }
                    choice.insert(tid, (rank, split.hierarchy, deepest, split.pid));
                }
            }
        }
        if home != 0 {
            nodes[home].node_type = NodeType::DomainThreaded;
        }
    }
    // Merge candidates by (home, relative path, thread set); name collisions
    // between different thread sets get the hierarchy's label.
    let mut groups: BTreeMap<(usize, String, Vec<u32>), Vec<CandKey>> = BTreeMap::new();
    for (k, c) in &cands {
        groups
            .entry((c.home, c.rel.clone(), c.tids.iter().copied().collect()))
            .or_default()
            .push(*k);
    }
    let mut key_path: HashMap<CandKey, String> = HashMap::new();
    // A v1 thread cgroup that holds threads of processes with different homes
    // becomes one threaded node per home: its limit is no longer shared.
    let mut homes_of: BTreeMap<(u32, petgraph::graph::NodeIndex), BTreeSet<usize>> = BTreeMap::new();
    for (home, hier, cg) in cands.keys() {
        homes_of.entry((*hier, *cg)).or_default().insert(*home);
    }
    for ((hier, cg), homes) in homes_of.iter().filter(|(_, h)| h.len() > 1) {
        let c = snap.cgroup(*cg);
        findings.push(planner_finding(
            "plan.thread-cgroup-split",
            Severity::Warning,
            "a v1 thread cgroup holds threads of processes placed apart in v2",
            Subject::Cgroup { hierarchy: *hier, label: prep.hierarchy(*hier).label(), path: c.path.clone() },
            format!(
                "{}:{} holds threads of processes that land under {} different v2 cgroups; it becomes one threaded node under each, so its settings apply to each group separately",
                prep.hierarchy(*hier).label(),
                c.path,
                homes.len()
            ),
            "Keep threads that must share a limit in processes that share a cgroup.",
        ));
    }
    let mut extra: BTreeMap<String, PlanNode> = BTreeMap::new();
    // Parents before children: shorter relative paths first.
    let mut ordered: Vec<_> = groups.into_iter().collect();
    ordered.sort_by_key(|((home, rel, _), _)| (*home, rel.matches('/').count(), rel.clone()));
    for ((home, rel, _), group) in ordered {
        // Candidates merge only if their parents are one node too.
        let mut by_parent: BTreeMap<String, Vec<CandKey>> = BTreeMap::new();
        for k in group {
            let c = &cands[&k];
            let pp = snap
                .parent(c.cg)
                .and_then(|p| key_path.get(&(home, c.hier, p)).cloned())
                .unwrap_or_else(|| paths[home].clone());
            by_parent.entry(pp).or_default().push(k);
        }
        for (parent_path, keys) in by_parent {
            let first = &cands[&keys[0]];
            let name_part = rel.rsplit('/').next().unwrap_or(&rel).to_string();
            let mut path = crate::model::path::join(&parent_path, &name_part);
            if domain_paths.contains(&path) || extra.contains_key(&path) {
                let label = prep
                    .hierarchy(first.hier)
                    .label()
                    .replace(',', "+")
                    .replace('=', "-");
                let mut i = 1;
                loop {
                    let suffix = if i == 1 { String::new() } else { format!("-{i}") };
                    path = crate::model::path::join(&parent_path, &format!("{name_part}@{label}{suffix}"));
                    if !domain_paths.contains(&path) && !extra.contains_key(&path) {
                        break;
                    }
                    i += 1;
                }
                findings.push(planner_finding(
                    "plan.renamed",
                    Severity::Info,
                    "threaded cgroup renamed: a domain cgroup has its name",
                    node_subject(&path),
                    format!(
                        "the thread cgroup {}:{} would be {}, which is a domain cgroup in v2; the threaded node is {path}",
                        prep.hierarchy(first.hier).label(),
                        snap.cgroup(first.cg).path,
                        crate::model::path::join(&parent_path, &name_part)
                    ),
                    "Update tools that place threads by path.",
                ));
            }
            let mut node = PlanNode::new(path.clone(), NodeType::Threaded, None);
            for k in &keys {
                let c = &cands[k];
                node.origins.push(origin_of(prep, c.hier, c.cg));
                for st in settings_of(prep, c.hier, c.cg, false) {
                    match st.controller() {
                        Some(ctl) if is_threaded_controller(ctl) => node.settings.push(st),
                        _ => findings.push(planner_finding(
                            "plan.threaded-setting-lost",
                            Severity::Error,
                            "a domain setting on a thread cgroup has no place in a threaded subtree",
                            node_subject(&path),
                            format!(
                                "{}={} (from {}:{}) can't apply to threads",
                                st.file, st.value, st.origin.label, st.origin.path
                            ),
                            "Only cpu, cpuset, pids and perf_event act inside threaded subtrees.",
                        )),
                    }
                }
                key_path.insert(*k, path.clone());
            }
            extra.insert(path, node);
        }
    }
    // A thread placed by a higher-priority hierarchy loses the places another
    // hierarchy gave it, unless they ended up on its path anyway (merged).
    for (tid, key, lca) in overruled {
        let chosen = match choice.get(&tid) {
            Some((_, _, Some(k), _)) => key_path.get(k).cloned(),
            Some((_, _, None, _)) => Some(paths[key.0].clone()),
            None => None,
        };
        let lower = key_path.get(&key).cloned();
        if let (Some(c), Some(l)) = (&chosen, &lower)
            && (c == l || c.starts_with(&format!("{l}/")))
        {
            continue;
        }
        let (_, hid, cg) = key;
        let mut lost = Vec::new();
        let mut cur = Some(cg);
        while let Some(c) = cur {
            if c == lca {
                break;
            }
            lost.push(snap.cgroup(c).path.clone());
            cur = snap.parent(c);
        }
        findings.push(planner_finding(
            "plan.thread-conflict",
            Severity::Warning,
            "a thread is placed differently by two threaded hierarchies",
            node_subject(chosen.as_deref().unwrap_or("/")),
            format!(
                "thread {tid} follows a higher-priority hierarchy; its place in {} ({}) is ignored for it, with those cgroups' settings",
                prep.hierarchy(hid).label(),
                lost.join(", ")
            ),
            "Place the thread at the same relative path in every threaded hierarchy.",
        ));
    }
    for (tid, (_, _, deepest, pid)) in &choice {
        if let Some(k) = deepest
            && let Some(path) = key_path.get(k)
            && let Some(n) = extra.get_mut(path)
        {
            n.threads.push(ThreadPlace { tid: *tid, pid: *pid });
        }
    }
    for n in extra.values_mut() {
        n.threads.sort_unstable();
    }
    nodes.extend(extra.into_values());
}

/// The cgroups between a split process's threads and their common ancestor
/// (the thread cgroups and their ancestors below the LCA): their settings
/// applied to some threads only.
fn below_lca(snap: &Snapshot, split: &unify::ThreadSplit) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for &(_, cg) in &split.threads {
        let mut cur = Some(cg);
        while let Some(c) = cur {
            if c == split.lca {
                break;
            }
            out.insert(snap.cgroup(c).path.clone());
            cur = snap.parent(c);
        }
    }
    out
}

fn comm_of(snap: &Snapshot, pid: u32) -> String {
    snap.processes()
        .into_iter()
        .find(|(_, p)| p.pid == pid)
        .map(|(_, p)| p.comm.clone())
        .unwrap_or_default()
}
