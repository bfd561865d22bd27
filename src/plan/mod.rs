//! The planner: one valid v2 tree from divergent v1 hierarchies.
//!
//! 1. [`unify`] merges the hierarchies' significant cgroups as laminar sets
//!    (trying each hierarchy as the spine and keeping the order that loses the
//!    fewest settings);
//! 2. [`plan`] names the nodes, attaches converted settings with their
//!    origins, builds threaded subtrees for processes whose threads are split
//!    in threaded controllers, and records delegated owners;
//! 3. [`finish`] derives everything else from the nodes: controllers enabled
//!    top-down, leaf children for internal processes, and the ordered actions.
//!    Stages and subtree selections re-run [`finish`] on a filtered copy, so
//!    each is itself a valid plan.
//!
//! [`validate`] checks any plan against the kernel's v2 rules, independently
//! of this code.

pub mod keys;
mod model;
mod render;
pub mod unify;
mod validate;

use std::collections::{BTreeMap, BTreeSet, HashMap};

pub use model::*;
pub use render::{PlanFormat, render};
pub use validate::{Violation, validate};

use crate::audit::{Finding, Subject};
use crate::model::{Snapshot, Version};
use crate::rules::{RuleSet, Severity, Strategy};
use unify::{Merged, Prepared};

fn planner_finding(
    rule: &str,
    severity: Severity,
    title: &str,
    subject: Subject,
    why: String,
    remediation: &str,
) -> Finding {
    Finding {
        rule: rule.to_string(),
        severity,
        title: title.to_string(),
        subject,
        file: None,
        value: None,
        detail: None,
        why,
        remediation: remediation.to_string(),
        kernel: None,
        source: Some("cgmig planner".into()),
    }
}

fn node_subject(path: &str) -> Subject {
    Subject::Cgroup {
        hierarchy: 0,
        label: "v2".into(),
        path: path.to_string(),
    }
}

/// Names the kernel reserves: `cgroup.*` and `<controller>.*` files.
fn collides_with_interface_file(name: &str) -> bool {
    match name.split_once('.') {
        Some((prefix, _)) => {
            prefix == "cgroup"
                || crate::model::Controller::KNOWN
                    .iter()
                    .any(|c| c.as_str() == prefix)
                || matches!(prefix, "io" | "irq")
        }
        None => false,
    }
}

/// The v1 controllers a setting's origin hierarchy carries (from its label).
fn origin_controllers(o: &Origin) -> Vec<String> {
    if o.label == "unified" {
        return Vec::new();
    }
    o.label
        .split(',')
        .filter(|p| !p.starts_with("name="))
        .map(str::to_string)
        .collect()
}

/// Plan the migration of a snapshot.
pub fn plan(snap: &Snapshot, rules: &RuleSet) -> Plan {
    let prep = Prepared::new(snap, rules);
    let policy = rules.policy();
    let any_v1 = prep.hierarchies.iter().any(|(_, h)| h.version == Version::V1);
    let mut base: Vec<(usize, u32)> = prep
        .hierarchies
        .iter()
        .filter(|(_, h)| !any_v1 || h.version == Version::V1 || h.version == Version::V2)
        .map(|(_, h)| (policy.rank(h), h.id))
        .collect();
    base.sort();
    let base: Vec<u32> = base.into_iter().map(|(_, id)| id).collect();
    let label = |id: u32| prep.hierarchy(id).label();

    let mut candidates = vec![base.clone()];
    if policy.search_spine {
        for &h in base.iter().skip(1) {
            if prep.hierarchy(h).controllers.is_empty() {
                continue;
            }
            let mut o = vec![h];
            o.extend(base.iter().copied().filter(|x| *x != h));
            candidates.push(o);
        }
    }
    let mut tried = Vec::new();
    let mut best: Option<Merged> = None;
    for order in candidates {
        let m = unify::merge(&prep, rules, &order);
        tried.push((order.first().map(|h| label(*h)).unwrap_or_default(), m.cost()));
        if best.as_ref().is_none_or(|b| m.cost() < b.cost()) {
            best = Some(m);
        }
    }
    let merged = best.unwrap_or_else(|| unify::merge(&prep, rules, &base));
    let spine = Spine {
        order: merged.order.iter().map(|h| label(*h)).collect(),
        settings_affected: merged.cost(),
        tried,
    };

    let mut findings = crate::audit::audit(snap, rules).findings;
    let (nodes, conflicts) = build_nodes(&prep, &merged, policy, &mut findings);

    let stages = stages(&prep, &nodes);
    let host = PlanHost {
        hostname: snap.host.hostname.clone(),
        kernel: snap.host.kernel.clone(),
        mode: snap.host.mode,
        machine_id: None,
        boot_id: None,
    };
    let mut p = Plan {
        schema: PLAN_SCHEMA.to_string(),
        host,
        stage: None,
        controllers: Vec::new(),
        nodes,
        actions: Vec::new(),
        findings,
        conflicts,
        spine,
        stages,
        process_keys: Vec::new(),
    };
    finish(&mut p, None, &policy.leaf_name);
    keys::annotate(&mut p, snap);
    p
}

/// Turn the merged tree into plan nodes (without derived parts).
fn build_nodes(
    prep: &Prepared,
    m: &Merged,
    policy: &crate::rules::PlanPolicy,
    findings: &mut Vec<Finding>,
) -> (Vec<PlanNode>, Vec<Conflict>) {
    let snap = prep.snap;
    let origin_of = |hid: u32, cg: petgraph::graph::NodeIndex| Origin {
        hierarchy: hid,
        label: prep.hierarchy(hid).label(),
        path: snap.cgroup(cg).path.clone(),
    };

    // Paths, parents first. A node keeps its origin's v1 path below its
    // parent's origin in the same hierarchy (so `machine.slice/vm.scope`
    // stays two levels even when machine.slice itself carried nothing), unless
    // the intermediate name is taken by a real sibling. Names are unique among
    // siblings and never look like interface files.
    let rel_name = |k: usize, parent: usize| -> Vec<String> {
        let Some(&(hid, cg)) = m.nodes[k].origins.first() else {
            return vec![m.nodes[k].name.clone()];
        };
        let path = &snap.cgroup(cg).path;
        let parent_origin = m.nodes[parent]
            .origins
            .iter()
            .find(|(h, _)| *h == hid)
            .map(|(_, c)| &snap.cgroup(*c).path);
        let rel = match parent_origin {
            Some(pp) if pp == "/" => path.trim_start_matches('/').to_string(),
            Some(pp) => match path.strip_prefix(&format!("{pp}/")) {
                Some(r) => r.to_string(),
                None => m.nodes[k].name.clone(),
            },
            // Directly under the root with no ancestor of its own hierarchy
            // (a container's cgroup seen through a bind mount): full path.
            None if parent == 0 => path.trim_start_matches('/').to_string(),
            None => m.nodes[k].name.clone(),
        };
        rel.split('/')
            .filter(|x| !x.is_empty())
            .map(str::to_string)
            .collect()
    };
    let mut paths = vec![String::new(); m.nodes.len()];
    paths[0] = "/".into();
    let mut stack = vec![0usize];
    while let Some(n) = stack.pop() {
        let mut kids = m.nodes[n].children.clone();
        kids.sort_by(|a, b| m.nodes[*a].name.cmp(&m.nodes[*b].name));
        let rels: Vec<Vec<String>> = kids.iter().map(|k| rel_name(*k, n)).collect();
        // Names real (single-component) siblings claim.
        let claimed: BTreeSet<&str> = rels
            .iter()
            .filter(|r| r.len() == 1)
            .map(|r| r[0].as_str())
            .collect();
        let mut used: BTreeSet<String> = BTreeSet::new();
        for (k, rel) in kids.into_iter().zip(rels.iter()) {
            let mut parts: Vec<String> = if rel.len() > 1 && !claimed.contains(rel[0].as_str()) {
                rel.clone()
            } else {
                vec![rel.last().cloned().unwrap_or_else(|| "unnamed".into())]
            };
            for part in parts.iter_mut() {
                if collides_with_interface_file(part) {
                    let new = format!("_{part}");
                    findings.push(planner_finding(
                        "plan.renamed",
                        Severity::Info,
                        "cgroup renamed: its name collides with v2 interface files",
                        node_subject(&crate::model::path::join(&paths[n], &new)),
                        format!("{part} looks like an interface file in v2; the node is named {new}"),
                        "Update tools that refer to the old name.",
                    ));
                    *part = new;
                }
            }
            // A node nested under one of the same name (a hierarchy that moved
            // some processes of /system.slice and not others) says which
            // hierarchy it comes from.
            let parent_name = paths[n].rsplit('/').next().unwrap_or("");
            if parts.len() == 1
                && parts[0] == parent_name
                && let Some(&(hid, _)) = m.nodes[k].origins.first()
            {
                let label = prep.hierarchy(hid).label().replace(',', "+").replace('=', "-");
                parts[0] = format!("{}@{label}", parts[0]);
            }
            let name = parts.join("/");
            let mut candidate = name.clone();
            let mut i = 2;
            while !used.insert(candidate.clone()) {
                candidate = format!("{name}-{i}");
                i += 1;
            }
            paths[k] = crate::model::path::join(&paths[n], &candidate);
            stack.push(k);
        }
    }

    let procs = unify::processes_at(prep, m);
    let mut nodes: Vec<PlanNode> = Vec::with_capacity(m.nodes.len());
    for (i, t) in m.nodes.iter().enumerate() {
        let mut settings = Vec::new();
        let mut owner: Option<Owner> = None;
        let mut origins = Vec::new();
        for &(hid, cg) in &t.origins {
            let o = origin_of(hid, cg);
            let cgd = snap.cgroup(cg);
            if let Some(uid) = cgd.owner.delegate_uid() {
                let gid = [cgd.owner.dir, cgd.owner.procs, cgd.owner.tasks]
                    .into_iter()
                    .flatten()
                    .find(|f| f.uid == uid)
                    .map_or(uid, |f| f.gid);
                match owner {
                    Some(prev) if prev.uid != uid => findings.push(planner_finding(
                        "plan.owner-conflict",
                        Severity::Warning,
                        "merged cgroups have different owners",
                        node_subject(&paths[i]),
                        format!(
                            "{} merges cgroups owned by uid {} and uid {uid}; uid {} is kept",
                            paths[i], prev.uid, prev.uid
                        ),
                        "Decide which user manages this subtree and chown the others' cgroups accordingly.",
                    )),
                    None => owner = Some(Owner { uid, gid }),
                    _ => {}
                }
            }
            if i != 0 {
                settings.extend(settings_of(prep, hid, cg, false));
            }
            origins.push(o);
        }
        for &(hid, cg) in &t.split_from {
            settings.extend(settings_of(prep, hid, cg, true));
        }
        if i == 0 && !settings.is_empty() {
            settings.clear();
        }
        let mut processes: Vec<u32> = procs[i].iter().map(|(_, p)| *p).collect();
        processes.sort_unstable();
        nodes.push(PlanNode {
            path: paths[i].clone(),
            node_type: NodeType::Domain,
            subtree_control: Vec::new(),
            settings,
            processes,
            threads: Vec::new(),
            owner,
            origins,
            note: None,
        });
    }

    // Threaded subtrees. Each v1 cgroup between a split process's threads
    // and their common ancestor is a candidate threaded node holding a set of
    // threads. Candidates of different hierarchies at the same relative path
    // merge only when they hold exactly the same threads (libvirt's cpu and
    // cpuset vcpuN); otherwise each keeps its own node. A thread lives in the
    // deepest candidate of its highest-priority hierarchy, so it only ever
    // sees settings of v1 cgroups it was in.
    let mut domain_paths: BTreeSet<String> = BTreeSet::new();
    for p in &paths {
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
            }
            let mut node = PlanNode::new(path.clone(), NodeType::Threaded, None);
            for k in &keys {
                let c = &cands[k];
                node.origins.push(origin_of(c.hier, c.cg));
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
    // Intermediate v1 path components that carried nothing become empty nodes.
    let existing: BTreeSet<String> = nodes.iter().map(|n| n.path.clone()).collect();
    let mut missing: BTreeSet<String> = BTreeSet::new();
    for n in &nodes {
        let mut cur = n.parent_path();
        while let Some(pp) = cur {
            if existing.contains(pp) {
                break;
            }
            missing.insert(pp.to_string());
            cur = crate::model::path::parent(pp);
        }
    }
    for path in missing {
        nodes.push(PlanNode::new(
            path,
            NodeType::Domain,
            Some("intermediate v1 path"),
        ));
    }
    nodes.sort_by(|a, b| a.path.cmp(&b.path));

    // Conflicts.
    let mut conflicts = Vec::new();
    for c in &m.crossings {
        let rejected = origin_of(c.hierarchy, c.cgroup);
        let crosses: Vec<Origin> = c
            .partial
            .iter()
            .filter_map(|p| m.nodes[*p].origins.first().map(|(h, cg)| origin_of(*h, *cg)))
            .collect();
        let resolution = match c.strategy {
            Strategy::Split => format!(
                "split: its settings are copied onto {} pieces ({})",
                c.pieces.len(),
                c.pieces
                    .iter()
                    .map(|p| paths[*p].clone())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Strategy::Drop => "dropped: its settings are not carried over".to_string(),
            Strategy::Fail => "failed: the plan is blocked".to_string(),
        };
        let severity = match c.strategy {
            Strategy::Split => Severity::Warning,
            Strategy::Drop => Severity::Error,
            Strategy::Fail => Severity::Blocker,
        };
        let cross_text: Vec<String> = crosses
            .iter()
            .map(|o| format!("{}:{}", o.label, o.path))
            .collect();
        findings.push(planner_finding(
            "plan.conflict",
            severity,
            "cgroups of two hierarchies cross; v2 can keep only one shape",
            Subject::Cgroup {
                hierarchy: rejected.hierarchy,
                label: rejected.label.clone(),
                path: rejected.path.clone(),
            },
            format!(
                "{}:{} crosses {}: processes {:?} are in both, {:?} only in the first, {:?} only in the second. {resolution}; each piece now has its own limit or weight instead of sharing one",
                rejected.label,
                rejected.path,
                cross_text.join(", "),
                c.shared,
                c.only_rejected,
                c.only_crossed
            ),
            "Align the two hierarchies in v1 (move the processes so one cgroup contains the other), or accept the resolution.",
        ));
        conflicts.push(Conflict {
            rejected,
            crosses,
            shared_tasks: c.shared.clone(),
            only_rejected: c.only_rejected.clone(),
            only_crossed: c.only_crossed.clone(),
            resolution,
            settings_affected: c.settings,
        });
    }

    // Indexes so that the checks below stay linear on big hosts.
    let node_at: HashMap<&str, usize> = nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (n.path.as_str(), i))
        .collect();
    let mut children_of: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, n) in nodes.iter().enumerate() {
        if let Some(pp) = n.parent_path() {
            children_of.entry(pp).or_default().push(i);
        }
    }

    // Delegation that v2's common-ancestor rule breaks: suggest one parent.
    let mut roots_by_uid: BTreeMap<u32, Vec<String>> = BTreeMap::new();
    for n in &nodes {
        if let Some(o) = n.owner {
            let parent_owned = n
                .parent_path()
                .and_then(|pp| node_at.get(pp).map(|&i| &nodes[i]))
                .is_some_and(|p| p.owner.map(|x| x.uid) == Some(o.uid));
            if !parent_owned {
                roots_by_uid.entry(o.uid).or_default().push(n.path.clone());
            }
        }
    }
    for (uid, roots) in roots_by_uid.into_iter().filter(|(_, r)| r.len() > 1) {
        findings.push(planner_finding(
            "plan.delegation-restructure",
            Severity::Warning,
            "one user's delegated subtrees need a common delegated parent in v2",
            Subject::Host,
            format!(
                "uid {uid} owns {} separate subtrees ({}); in v2 it can only move processes between them if it owns their common ancestor",
                roots.len(),
                roots.join(", ")
            ),
            &format!("Create /user-{uid}.delegate owned by uid {uid} and move {} under it.", roots.join(", ")),
        ));
    }

    // Weights are relative to siblings: report every weight whose weighted
    // siblings in v2 are not its weighted siblings in v1 (it moved under
    // another parent, or its parent gained or lost weighted children).
    let by_path: HashMap<(u32, &str), petgraph::graph::NodeIndex> = snap
        .cgroups()
        .map(|(i, c)| ((c.hierarchy, c.path.as_str()), i))
        .collect();
    let weighted: BTreeSet<(u32, &str, &str)> = nodes
        .iter()
        .flat_map(|n| &n.settings)
        .filter(|s| s.file.ends_with(".weight"))
        .map(|s| (s.origin.hierarchy, s.origin.path.as_str(), s.file.as_str()))
        .collect();
    // Weighted children per (v2 parent, hierarchy, file) and per (v1 parent,
    // file), computed once.
    let mut v2_weighted: HashMap<(&str, u32, &str), BTreeSet<&str>> = HashMap::new();
    for n in &nodes {
        let Some(pp) = n.parent_path() else { continue };
        for s in n.settings.iter().filter(|s| s.file.ends_with(".weight")) {
            v2_weighted
                .entry((pp, s.origin.hierarchy, s.file.as_str()))
                .or_default()
                .insert(s.origin.path.as_str());
        }
    }
    let mut v1_weighted: HashMap<(petgraph::graph::NodeIndex, &str), BTreeSet<&str>> = HashMap::new();
    for &(h, path, file) in &weighted {
        if let Some(par) = by_path.get(&(h, path)).and_then(|c| snap.parent(*c)) {
            v1_weighted.entry((par, file)).or_default().insert(path);
        }
    }
    let mut foreign_of: HashMap<(&str, u32), Vec<&str>> = HashMap::new();
    let mut weight_findings = Vec::new();
    for n in &nodes {
        for s in n
            .settings
            .iter()
            .filter(|s| s.file.ends_with(".weight") && !s.split_copy)
        {
            let Some(pp) = n.parent_path() else { continue };
            let own: BTreeSet<&str> = n
                .settings
                .iter()
                .filter(|x| x.file == s.file && x.origin.hierarchy == s.origin.hierarchy)
                .map(|x| x.origin.path.as_str())
                .collect();
            let v2_sibs: BTreeSet<&str> = v2_weighted
                .get(&(pp, s.origin.hierarchy, s.file.as_str()))
                .map(|set| set.difference(&own).copied().collect())
                .unwrap_or_default();
            let v1_sibs: BTreeSet<&str> = by_path
                .get(&(s.origin.hierarchy, s.origin.path.as_str()))
                .and_then(|c| snap.parent(*c))
                .and_then(|par| v1_weighted.get(&(par, s.file.as_str())))
                .map(|set| set.iter().copied().filter(|p| *p != s.origin.path).collect())
                .unwrap_or_default();
            let foreign: Vec<&str> = foreign_of
                .entry((pp, s.origin.hierarchy))
                .or_insert_with(|| {
                    children_of
                        .get(pp)
                        .into_iter()
                        .flatten()
                        .map(|&i| &nodes[i])
                        .filter(|x| !x.origins.iter().any(|o| o.hierarchy == s.origin.hierarchy))
                        .map(|x| x.path.as_str())
                        .collect()
                })
                .iter()
                .copied()
                .filter(|p| *p != n.path)
                .collect();
            if v2_sibs == v1_sibs && foreign.is_empty() {
                continue;
            }
            let lost: Vec<&str> = v1_sibs.difference(&v2_sibs).copied().collect();
            let gained: Vec<&str> = v2_sibs.difference(&v1_sibs).copied().collect();
            weight_findings.push(planner_finding(
                "plan.weight-share",
                Severity::Warning,
                "a weight competes with different siblings in v2",
                node_subject(&n.path),
                format!(
                    "{}={} (from {}:{}) at {}: v1 siblings no longer beside it {lost:?}, new weighted siblings {gained:?}, siblings from other hierarchies at the default weight {foreign:?}; its share of the parent changes",
                    s.file, s.value, s.origin.label, s.origin.path, n.path
                ),
                "Set weights on the new siblings (or restructure in v1) to keep the v1 ratio.",
            ));
        }
    }
    findings.extend(weight_findings);
    (nodes, conflicts)
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

/// Settings of one cgroup as plan settings.
fn settings_of(prep: &Prepared, hid: u32, cg: petgraph::graph::NodeIndex, split_copy: bool) -> Vec<Setting> {
    let h = prep.hierarchy(hid);
    let origin = Origin {
        hierarchy: hid,
        label: h.label(),
        path: prep.snap.cgroup(cg).path.clone(),
    };
    if h.version == Version::V2 {
        // Already v2: carry non-default values as they are.
        return prep
            .snap
            .cgroup(cg)
            .settings
            .iter()
            .filter(|(k, v)| {
                // cpu.weight.nice is another view of cpu.weight: write one.
                let derived = k.as_str() == "cpu.weight.nice"
                    && prep.snap.cgroup(cg).settings.contains_key("cpu.weight");
                !matches!(k.as_str(), "cgroup.subtree_control" | "cgroup.type")
                    && !derived
                    && !crate::model::files::is_v2_default(k, v)
            })
            .map(|(k, v)| Setting {
                file: k.clone(),
                value: v.clone(),
                origin: origin.clone(),
                rule: "v2.existing".into(),
                function: "copy".into(),
                formula: None,
                inputs: vec![(k.clone(), v.clone())],
                split_copy,
            })
            .collect();
    }
    prep.outcomes
        .get(&cg)
        .map(|o| {
            o.conversions
                .iter()
                .map(|c| Setting {
                    file: c.target.clone(),
                    value: c.value.clone(),
                    origin: origin.clone(),
                    rule: c.rule.clone(),
                    function: c.function.clone(),
                    formula: c.formula.clone(),
                    inputs: c.inputs.clone(),
                    split_copy,
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Staged rollout: one boot per v1 hierarchy, least affected first; named
/// hierarchies go with the final switch.
fn stages(prep: &Prepared, nodes: &[PlanNode]) -> Vec<Stage> {
    let mut groups: Vec<(usize, String, Vec<String>)> = Vec::new();
    for (_, h) in &prep.hierarchies {
        if h.version != Version::V1 || h.controllers.is_empty() {
            continue;
        }
        let label = h.label();
        let n = nodes
            .iter()
            .flat_map(|n| &n.settings)
            .filter(|s| s.origin.hierarchy == h.id)
            .count();
        groups.push((n, label, h.controllers.iter().map(|c| c.to_string()).collect()));
    }
    groups.sort();
    let mut out = Vec::new();
    let mut cum: Vec<String> = Vec::new();
    let total = groups.len();
    for (i, (_, _, ctl)) in groups.into_iter().enumerate() {
        cum.extend(ctl.iter().cloned());
        let last = i + 1 == total;
        let cmdline = if last {
            "cgroup_no_v1=all systemd.unified_cgroup_hierarchy=1".to_string()
        } else {
            format!(
                "cgroup_no_v1={} systemd.unified_cgroup_hierarchy=0 systemd.legacy_systemd_cgroup_controller=0",
                cum.join(",")
            )
        };
        out.push(Stage {
            number: i + 1,
            adds: ctl,
            controllers: cum.clone(),
            cmdline,
        });
    }
    out
}

/// The v2 name of a v1 controller.
fn v2_controller(v1: &str) -> Option<&'static str> {
    v1.parse::<crate::model::Controller>()
        .ok()
        .and_then(|c| c.v2_name())
}

/// Derive subtree_control, leaves and actions from the nodes.
///
/// `allowed`: v1 controllers whose settings this (stage) plan may apply;
/// `None` = all. Settings from hierarchies not fully allowed are removed.
pub fn finish(p: &mut Plan, allowed: Option<&BTreeSet<String>>, leaf_name: &str) {
    let mut findings = Vec::new();
    // Undo derived leaves (stage/subtree re-derivation starts from the full plan).
    let leaf_note = "leaf for internal processes";
    let leaves: Vec<(String, Vec<u32>)> = p
        .nodes
        .iter()
        .filter(|n| n.note.as_deref() == Some(leaf_note))
        .map(|n| (n.path.clone(), n.processes.clone()))
        .collect();
    for (path, procs) in leaves {
        if let Some(parent) = crate::model::path::parent(&path)
            && let Some(pn) = p.nodes.iter_mut().find(|n| n.path == parent)
        {
            pn.processes.extend(procs);
            pn.processes.sort_unstable();
        }
        p.nodes.retain(|n| n.path != path);
    }
    p.findings.retain(|f| f.rule != "plan.leaf");
    if let Some(allowed) = allowed {
        for n in &mut p.nodes {
            n.settings.retain(|s| {
                let need = origin_controllers(&s.origin);
                need.iter().all(|c| allowed.contains(c))
            });
        }
    }
    let index: HashMap<String, usize> = p
        .nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (n.path.clone(), i))
        .collect();
    let mut sc: Vec<BTreeSet<String>> = vec![BTreeSet::new(); p.nodes.len()];
    for n in &p.nodes {
        if n.path == "/" {
            continue;
        }
        for c in n.settings.iter().filter_map(|s| s.controller()) {
            let mut cur = n.parent_path();
            while let Some(pp) = cur {
                if let Some(&i) = index.get(pp) {
                    sc[i].insert(c.to_string());
                }
                cur = crate::model::path::parent(pp);
            }
        }
    }
    for (n, s) in p.nodes.iter_mut().zip(sc) {
        // Stable kernel order for readability.
        let order = ["cpuset", "cpu", "io", "memory", "hugetlb", "pids", "rdma", "misc"];
        let mut v: Vec<String> = s.into_iter().collect();
        v.sort_by_key(|c| order.iter().position(|o| o == c).unwrap_or(order.len()));
        n.subtree_control = v;
    }
    // No internal processes: a non-root domain node with processes that
    // enables a domain controller hands its processes to a leaf child.
    let mut new_leaves = Vec::new();
    for n in &mut p.nodes {
        let domain_ctl = n.subtree_control.iter().any(|c| !is_threaded_controller(c));
        if n.path != "/" && n.node_type == NodeType::Domain && domain_ctl && !n.processes.is_empty() {
            let mut name = leaf_name.to_string();
            let mut i = 2;
            while index.contains_key(&crate::model::path::join(&n.path, &name)) {
                name = format!("{leaf_name}-{i}");
                i += 1;
            }
            let path = crate::model::path::join(&n.path, &name);
            findings.push(planner_finding(
                "plan.leaf",
                Severity::Info,
                "processes of an inner cgroup move into a leaf child",
                node_subject(&n.path),
                format!(
                    "{} holds processes {:?} and enables {} for its children; v2 forbids that, so the processes move to {path} (they now compete with their siblings as one cgroup with default weights)",
                    n.path,
                    n.processes,
                    n.subtree_control.join(" ")
                ),
                "Tools that place tasks in the inner cgroup must target the leaf.",
            ));
            let mut leaf = PlanNode::new(path, NodeType::Domain, Some(leaf_note));
            leaf.processes = std::mem::take(&mut n.processes);
            leaf.owner = n.owner;
            new_leaves.push(leaf);
        }
    }
    p.nodes.extend(new_leaves);
    p.nodes.sort_by(|a, b| a.path.cmp(&b.path));
    p.findings.extend(findings);

    let mut used: BTreeSet<String> = BTreeSet::new();
    for n in &p.nodes {
        used.extend(
            n.settings
                .iter()
                .filter_map(|s| s.controller().map(str::to_string)),
        );
    }
    p.controllers = match allowed {
        Some(a) => {
            let mut v: Vec<String> = a
                .iter()
                .filter_map(|c| v2_controller(c))
                .map(str::to_string)
                .collect();
            v.sort();
            v.dedup();
            v
        }
        None => used.into_iter().collect(),
    };
    p.actions = actions(p);
}

fn actions(p: &Plan) -> Vec<Action> {
    let mut a = Vec::new();
    for n in p.nodes.iter().filter(|n| n.path != "/") {
        a.push(Action::Create { path: n.path.clone() });
    }
    for n in p.nodes.iter().filter(|n| n.node_type == NodeType::Threaded) {
        a.push(Action::SetType {
            path: n.path.clone(),
            value: "threaded".into(),
        });
    }
    for n in &p.nodes {
        for &pid in &n.processes {
            a.push(Action::MoveProcess {
                pid,
                path: n.path.clone(),
            });
        }
    }
    // Threads: their process lives at the threaded domain above them.
    for n in p.nodes.iter().filter(|n| n.node_type == NodeType::Threaded) {
        for t in &n.threads {
            a.push(Action::MoveThread {
                tid: t.tid,
                pid: t.pid,
                path: n.path.clone(),
            });
        }
    }
    for n in p.nodes.iter().filter(|n| !n.subtree_control.is_empty()) {
        a.push(Action::EnableControllers {
            path: n.path.clone(),
            controllers: n.subtree_control.clone(),
        });
    }
    for n in &p.nodes {
        let mut s: Vec<&Setting> = n.settings.iter().collect();
        // cpu.max.burst after cpu.max (the kernel may refuse a burst above no quota).
        s.sort_by_key(|s| (s.file == "cpu.max.burst", s.file.clone()));
        for s in s {
            for line in s.value.lines() {
                a.push(Action::Write {
                    path: n.path.clone(),
                    file: s.file.clone(),
                    value: line.to_string(),
                });
            }
        }
    }
    for n in &p.nodes {
        if let Some(o) = n.owner {
            a.push(Action::Chown {
                path: n.path.clone(),
                uid: o.uid,
                gid: o.gid,
                files: vec![
                    "cgroup.procs".into(),
                    "cgroup.threads".into(),
                    "cgroup.subtree_control".into(),
                ],
            });
        }
    }
    a
}

impl Plan {
    /// The plan for one stage: the same tree, with only the settings of the
    /// controllers moved to v2 by then. Itself a valid plan.
    pub fn for_stage(&self, number: usize, leaf_name: &str) -> Option<Plan> {
        let stage = self.stages.iter().find(|s| s.number == number)?;
        let allowed: BTreeSet<String> = stage.controllers.iter().cloned().collect();
        let mut p = self.clone();
        p.stage = Some(number);
        finish(&mut p, Some(&allowed), leaf_name);
        Some(p)
    }

    /// The part of the plan at and below `path` (ancestors are kept so the
    /// controllers can be enabled down to it, without their settings or
    /// processes). Itself a valid plan.
    pub fn only(&self, path: &str, leaf_name: &str) -> Option<Plan> {
        self.node(path)?;
        let mut p = self.clone();
        let below = |q: &str| q == path || q.starts_with(&format!("{}/", path.trim_end_matches('/')));
        p.nodes.retain(|n| below(&n.path) || below_rev(path, &n.path));
        for n in &mut p.nodes {
            if !below(&n.path) {
                n.settings.clear();
                n.processes.clear();
                n.threads.clear();
                n.owner = None;
            }
        }
        // Threads follow their process: drop those whose process left.
        let placed: BTreeSet<u32> = p.nodes.iter().flat_map(|n| n.processes.iter().copied()).collect();
        for n in &mut p.nodes {
            n.threads.retain(|t| placed.contains(&t.pid));
        }
        finish(&mut p, None, leaf_name);
        Some(p)
    }
}

/// Whether `anc` is an ancestor of `path`.
fn below_rev(path: &str, anc: &str) -> bool {
    anc == "/" || path.starts_with(&format!("{}/", anc.trim_end_matches('/')))
}
