//! The semantic oracle: for every task, the settings it sees along its path
//! in each v1 hierarchy are exactly the settings it sees along its path in the
//! v2 plan, except where a finding says why not.
//!
//! Written against the snapshot and the plan's public data only (not the
//! planner's internals): v1 side from `audit::evaluate_cgroup` on the
//! thread's cgroup and its ancestors, v2 side from the plan node that holds
//! the thread (threaded node) or its process, and that node's ancestors.

use std::collections::BTreeSet;

use cgmig::model::{Hierarchy, HierarchyId, Pid, Snapshot, Tid, Version};
use cgmig::plan::{Plan, PlanNode};
use cgmig::rules::RuleSet;
use petgraph::graph::NodeIndex;

/// (hierarchy id, v1 path, v2 file, value)
type Seen = BTreeSet<(HierarchyId, String, String, String)>;

fn v2_chain<'a>(plan: &'a Plan, path: &str) -> Vec<&'a PlanNode> {
    let mut out = Vec::new();
    let mut cur = Some(path.to_string());
    while let Some(p) = cur {
        if let Some(n) = plan.node(&p) {
            out.push(n);
        }
        cur = cgmig::model::path::parent(&p).map(str::to_string);
    }
    out
}

/// Check the oracle; returns a description of every unexplained difference.
pub fn check(snap: &Snapshot, plan: &Plan, rules: &RuleSet) -> Vec<String> {
    let explained = explained_origins(plan);
    let mut problems = tasks_see_the_same_settings(snap, plan, rules, &explained);
    problems.extend(weighted_siblings_match(snap, plan));
    problems.extend(structural(snap, plan, rules));
    problems
}

/// Origins a finding or conflict explains (the setting may be missing or
/// changed): a difference there is reported by the plan, not a bug.
fn explained_origins(plan: &Plan) -> BTreeSet<String> {
    plan.conflicts
        .iter()
        .map(|c| c.rejected.path.clone())
        .chain(
            plan.findings
                .iter()
                .filter(|f| f.rule.starts_with("plan."))
                .map(|f| f.why.clone()),
        )
        .collect()
}

/// Whether a finding or conflict names this v1 path.
fn is_explained(explained: &BTreeSet<String>, path: &str) -> bool {
    explained.iter().any(|e| {
        e == path
            || e.contains(&format!("{path} "))
            || e.contains(&format!("{path})"))
            || e.contains(&format!("{path},"))
            || e.contains(&format!("{path}="))
            || e.ends_with(path)
    })
}

/// For every thread of every process: the settings it sees in v1 (each
/// hierarchy, along its cgroup's ancestors) and in the plan (along its
/// node's ancestors) are the same, but for what a finding explains.
fn tasks_see_the_same_settings(
    snap: &Snapshot,
    plan: &Plan,
    rules: &RuleSet,
    explained: &BTreeSet<String>,
) -> Vec<String> {
    let mut problems = Vec::new();
    let hierarchies: Vec<_> = snap
        .hierarchies()
        .into_iter()
        .filter(|(_, h)| h.version == Version::V1)
        .collect();
    // Where each process and thread ended up.
    let proc_node = |pid: Pid| {
        plan.nodes
            .iter()
            .find(|n| n.processes.contains(&pid))
            .map(|n| n.path.clone())
    };
    let thread_node = |tid: Tid| {
        plan.nodes
            .iter()
            .find(|n| n.threads.iter().any(|t| t.tid == tid))
            .map(|n| n.path.clone())
    };
    for (pi, p) in snap.processes() {
        let Some(pnode) = proc_node(p.pid) else {
            problems.push(format!("process {} is not placed", p.pid));
            continue;
        };
        for (ti, t) in snap.threads(pi) {
            let node = thread_node(t.tid).unwrap_or_else(|| pnode.clone());
            let v2 = seen_in_plan(plan, &node);
            let v1 = seen_in_v1(snap, ti, &hierarchies, rules);
            problems.extend(differences(plan, explained, &v1, &v2, &node, p, t));
        }
    }
    problems
}

/// What a task placed at plan node `node` sees: the settings of the node and
/// its ancestors but the root, by v1 origin (existing v2 values left out).
/// Where an owner writes the file (systemd, a runtime), the node holds the
/// owner's value and cgmig's conversion stays as provenance: the oracle
/// checks cgmig's conversion; the owner's is checked against real owners
/// (the VM scenarios, docs/conversions-measured.md).
fn seen_in_plan(plan: &Plan, node: &str) -> Seen {
    v2_chain(plan, node)
        .into_iter()
        .filter(|n| n.path != "/")
        .flat_map(|n| n.settings.iter())
        .filter(|s| s.rule != "v2.existing")
        .map(|s| {
            (
                s.origin.hierarchy,
                s.origin.path.clone(),
                s.file.clone(),
                s.converted
                    .as_ref()
                    .map_or_else(|| s.value.clone(), |c| c.value.clone()),
            )
        })
        .collect()
}

/// What thread `ti` sees in v1: in each of the v1 `hierarchies`, what the rules convert
/// on its cgroup and every ancestor but the root.
fn seen_in_v1(
    snap: &Snapshot,
    ti: NodeIndex,
    hierarchies: &[(NodeIndex, &Hierarchy)],
    rules: &RuleSet,
) -> Seen {
    let mut v1: Seen = BTreeSet::new();
    for cg in snap.memberships(ti) {
        let c = snap.cgroup(cg);
        let Some((_, h)) = hierarchies.iter().find(|(_, h)| h.id == c.hierarchy) else {
            continue;
        };
        let mut cur = Some(cg);
        while let Some(x) = cur {
            let xc = snap.cgroup(x);
            if !xc.is_root() {
                for conv in cgmig::audit::evaluate_cgroup(snap, x, h, rules).conversions {
                    v1.insert((h.id, xc.path.clone(), conv.target, conv.value));
                }
            }
            cur = snap.parent(x);
        }
    }
    v1
}

/// Each setting one side has and the other lacks, as a problem (a missing
/// one is fine when a finding explains it or the kernel lacks the file).
fn differences(
    plan: &Plan,
    explained: &BTreeSet<String>,
    v1: &Seen,
    v2: &Seen,
    node: &str,
    p: &cgmig::model::Process,
    t: &cgmig::model::Thread,
) -> Vec<String> {
    let mut problems = Vec::new();
    for missing in v1.difference(v2) {
        // Left out because the host's kernel lacks the file.
        let kernel = plan
            .findings
            .iter()
            .any(|f| f.rule == "plan.kernel-too-old" && f.why.contains(&format!("{} (", missing.2)));
        // Left out because the host's disks honour the other weight file
        // (plan::io_weight: BFQ reads io.bfq.weight, iocost io.weight).
        let has = |rule: &str| plan.findings.iter().any(|f| f.rule == rule);
        let scheduler = match missing.2.as_str() {
            "io.weight" => has("plan.io-weight-bfq") && !has("plan.io-weight-iocost"),
            "io.bfq.weight" => {
                (has("plan.io-weight-iocost") || has("plan.io-scheduler-unknown"))
                    && !has("plan.io-weight-bfq")
            }
            _ => false,
        };
        if !is_explained(explained, &missing.1) && !kernel && !scheduler {
            problems.push(format!(
                "thread {} of {} ({}) sees {}={} from {}:{} in v1 but not in the plan (at {node})",
                t.tid, p.pid, p.comm, missing.2, missing.3, missing.0, missing.1
            ));
        }
    }
    for extra in v2.difference(v1) {
        problems.push(format!(
            "thread {} of {} ({}) sees {}={} from {}:{} in the plan (at {node}) but not in v1",
            t.tid, p.pid, p.comm, extra.2, extra.3, extra.0, extra.1
        ));
    }
    problems
}

/// Weights: siblings in v2 that carry a weight from the same hierarchy must
/// be the v1 siblings, or a finding says the share changes.
fn weighted_siblings_match(snap: &Snapshot, plan: &Plan) -> Vec<String> {
    let mut problems = Vec::new();
    for n in &plan.nodes {
        for s in n
            .settings
            .iter()
            .filter(|s| s.file.ends_with(".weight") && !s.split_copy)
        {
            let Some(pp) = n.parent_path() else { continue };
            let v2_sibs: BTreeSet<String> = plan
                .nodes
                .iter()
                .filter(|x| x.parent_path() == Some(pp) && x.path != n.path)
                .flat_map(|x| x.settings.iter())
                .filter(|x| x.file == s.file && x.origin.hierarchy == s.origin.hierarchy)
                .map(|x| x.origin.path.clone())
                .collect();
            let v1_sibs: BTreeSet<String> = snap
                .find_cgroup(s.origin.hierarchy, &s.origin.path)
                .and_then(|c| snap.parent(c))
                .map(|parent| snap.children(parent))
                .unwrap_or_default()
                .into_iter()
                .map(|c| snap.cgroup(c).path.clone())
                .filter(|p| p != &s.origin.path)
                .filter(|p| {
                    v2_sibs.contains(p)
                        || plan.nodes.iter().flat_map(|x| &x.settings).any(|x| {
                            &x.origin.path == p
                                && x.file == s.file
                                && x.origin.hierarchy == s.origin.hierarchy
                        })
                })
                .collect();
            let flagged = plan.findings.iter().any(|f| {
                (f.rule == "plan.weight-share" || f.rule == "plan.conflict") && f.why.contains(&s.origin.path)
            });
            if v2_sibs != v1_sibs && !flagged {
                problems.push(format!(
                    "{} {}={} (from {}): v2 weighted siblings {v2_sibs:?} differ from v1 {v1_sibs:?} and no finding says so",
                    n.path, s.file, s.value, s.origin.path
                ));
            }
        }
    }
    problems
}

/// The checks that hold for every stage plan too (a stage carries only the
/// settings of controllers moved by then, so the settings each task sees
/// are checked on the whole plan only): identity of paths, one (own) value
/// per file, sibling order of weights, own freezer state.
pub fn structural(snap: &Snapshot, plan: &Plan, rules: &RuleSet) -> Vec<String> {
    let mut problems = identity(snap, plan);
    problems.extend(own_values(snap, plan, rules));
    problems.extend(weight_order(snap, plan, rules));
    problems.extend(own_freezer_state(snap, plan));
    problems
}

/// Identity of paths: a node whose origins all have one path P, below its
/// parent's v2 path, is at exactly P (managers look cgroups up by path),
/// unless a `plan.renamed` finding says why not.
fn identity(snap: &Snapshot, plan: &Plan) -> Vec<String> {
    let mut out = Vec::new();
    for n in plan
        .nodes
        .iter()
        .filter(|n| n.path != "/" && !n.origins.is_empty())
    {
        let p = &n.origins[0].path;
        if n.origins.iter().any(|o| &o.path != p) || snap.hierarchies().is_empty() {
            continue;
        }
        let Some(pp) = n.parent_path() else { continue };
        let below = pp == "/" || p.starts_with(&format!("{pp}/"));
        let renamed = plan
            .findings
            .iter()
            .any(|f| f.rule == "plan.renamed" && f.why.contains(&n.path));
        if below && &n.path != p && !renamed {
            out.push(format!(
                "{} comes from {p} in every hierarchy but is not at that path",
                n.path
            ));
        }
    }
    out
}

/// One value per file, and the right one: a node's value for a file comes
/// from its own origins when one of them sets that file (a split copy of an
/// ancestor's value never overrides it).
fn own_values(snap: &Snapshot, plan: &Plan, rules: &RuleSet) -> Vec<String> {
    let mut out = Vec::new();
    for n in plan.nodes.iter().filter(|n| n.path != "/") {
        let mut files: BTreeSet<(&str, &str)> = BTreeSet::new();
        for s in &n.settings {
            let keys: Vec<&str> = s
                .value
                .lines()
                .map(|l| l.split_whitespace().next().unwrap_or(""))
                .collect();
            for k in keys {
                let k = if s.value.lines().count() > 1 || s.file.starts_with("io.") {
                    k
                } else {
                    ""
                };
                if !files.insert((s.file.as_str(), k)) {
                    out.push(format!("{} has two values for {} {k}", n.path, s.file));
                }
            }
        }
        for s in n.settings.iter().filter(|s| s.split_copy) {
            let own_sets_it = n.origins.iter().any(|o| {
                let Some(c) = snap.find_cgroup(o.hierarchy, &o.path) else {
                    return false;
                };
                let Some((_, h)) = snap.hierarchies().into_iter().find(|(_, h)| h.id == o.hierarchy) else {
                    return false;
                };
                h.version == Version::V1
                    && cgmig::audit::evaluate_cgroup(snap, c, h, rules)
                        .conversions
                        .iter()
                        .any(|c| c.target == s.file && !is_keyed(&s.file))
            });
            if own_sets_it {
                out.push(format!(
                    "{} {}={} is a split copy from {} although the node's own origin sets {}",
                    n.path, s.file, s.value, s.origin.path, s.file
                ));
            }
        }
    }
    out
}

fn is_keyed(file: &str) -> bool {
    matches!(
        file,
        "io.max" | "io.weight" | "io.bfq.weight" | "io.latency" | "rdma.max" | "misc.max"
    )
}

/// The number a weight file holds (`default N` or `N`); v2's default is 100.
fn weight_value(v: &str) -> Option<u64> {
    v.lines()
        .find_map(|l| {
            l.strip_prefix("default ")
                .or(Some(l).filter(|l| !l.contains(':')))
        })
        .and_then(|x| x.trim().parse().ok())
}

/// Sibling order of every weight: two v1 siblings that stay v2 siblings keep
/// the order of their weights (a cgroup weighted below its default siblings
/// is not weighted above them in v2). Defaults count: 1024 shares, 500 blkio
/// weight, 100 in v2.
fn weight_order(snap: &Snapshot, plan: &Plan, rules: &RuleSet) -> Vec<String> {
    let mut out = Vec::new();
    let kinds = [
        ("cpu.shares", "cpu.weight", 1024u64),
        ("blkio.weight", "io.weight", 500),
    ];
    // v2 node holding each v1 cgroup (by origin).
    let mut node_of: std::collections::HashMap<(HierarchyId, &str), &PlanNode> =
        std::collections::HashMap::new();
    for n in &plan.nodes {
        for o in &n.origins {
            node_of.entry((o.hierarchy, o.path.as_str())).or_insert(n);
        }
    }
    let _ = rules;
    for (_, h) in snap
        .hierarchies()
        .into_iter()
        .filter(|(_, h)| h.version == Version::V1)
    {
        for (v1_file, v2_file, v1_default) in kinds {
            let mut by_parent: std::collections::BTreeMap<String, Vec<(u64, u64, String)>> =
                Default::default();
            for (ci, c) in snap
                .cgroups()
                .filter(|(_, c)| c.hierarchy == h.id && !c.is_root())
            {
                let Some(v1) = c.settings.get(v1_file).and_then(|v| v.trim().parse::<u64>().ok()) else {
                    continue;
                };
                let Some(node) = node_of.get(&(h.id, c.path.as_str())) else {
                    continue;
                };
                let v2 = node
                    .settings
                    .iter()
                    .find(|s| s.file == v2_file && s.origin.path == c.path)
                    .and_then(|s| weight_value(&s.value))
                    .unwrap_or(100);
                let v1 = if v1 == 0 { v1_default } else { v1 };
                let parent = snap
                    .parent(ci)
                    .map(|p| snap.cgroup(p).path.clone())
                    .unwrap_or_default();
                let v2_parent = node.parent_path().unwrap_or("").to_string();
                by_parent
                    .entry(format!("{parent}\0{v2_parent}"))
                    .or_default()
                    .push((v1, v2, c.path.clone()));
            }
            for sibs in by_parent.values() {
                for a in sibs {
                    for b in sibs {
                        if a.0 < b.0 && a.1 > b.1 {
                            out.push(format!(
                                "{v1_file}: {} ({}) is below its sibling {} ({}) in v1 but above it in v2 ({} > {})",
                                a.2, a.0, b.2, b.0, a.1, b.1
                            ));
                        }
                    }
                }
            }
        }
    }
    out
}

/// Own vs inherited freezer state: a node is frozen in the plan only when a
/// v1 cgroup merged into it froze itself (`freezer.self_freezing` 1, or no
/// such file and FROZEN).
fn own_freezer_state(snap: &Snapshot, plan: &Plan) -> Vec<String> {
    let mut out = Vec::new();
    for n in &plan.nodes {
        for s in n
            .settings
            .iter()
            .filter(|s| s.file == "cgroup.freeze" && s.value == "1")
        {
            let Some(c) = snap.find_cgroup(s.origin.hierarchy, &s.origin.path) else {
                continue;
            };
            if snap
                .cgroup(c)
                .settings
                .get("freezer.self_freezing")
                .map(|v| v.trim())
                == Some("0")
            {
                out.push(format!(
                    "{} is frozen from {}, which only inherits FROZEN from its parent",
                    n.path, s.origin.path
                ));
            }
        }
    }
    out
}
