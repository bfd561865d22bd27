//! The semantic oracle: for every task, the settings it sees along its path
//! in each v1 hierarchy are exactly the settings it sees along its path in the
//! v2 plan, except where a finding says why not.
//!
//! Written against the snapshot and the plan's public data only (not the
//! planner's internals): v1 side from `audit::evaluate_cgroup` on the
//! thread's cgroup and its ancestors, v2 side from the plan node that holds
//! the thread (threaded node) or its process, and that node's ancestors.

use std::collections::BTreeSet;

use cgmig::model::{Snapshot, Version};
use cgmig::plan::{Plan, PlanNode};
use cgmig::rules::RuleSet;

/// (hierarchy id, v1 path, v2 file, value)
type Seen = BTreeSet<(u32, String, String, String)>;

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
    let mut problems = Vec::new();
    // Origins a finding or conflict explains (the setting may be missing or changed).
    let explained: BTreeSet<String> = plan
        .conflicts
        .iter()
        .map(|c| c.rejected.path.clone())
        .chain(
            plan.findings
                .iter()
                .filter(|f| f.rule.starts_with("plan."))
                .map(|f| f.why.clone()),
        )
        .collect();
    let is_explained = |path: &str| {
        explained.iter().any(|e| {
            e == path
                || e.contains(&format!("{path} "))
                || e.contains(&format!("{path})"))
                || e.contains(&format!("{path},"))
                || e.contains(&format!("{path}="))
                || e.ends_with(path)
        })
    };
    let hierarchies: Vec<_> = snap
        .hierarchies()
        .into_iter()
        .filter(|(_, h)| h.version == Version::V1)
        .collect();
    // Where each process and thread ended up.
    let proc_node = |pid: u32| {
        plan.nodes
            .iter()
            .find(|n| n.processes.contains(&pid))
            .map(|n| n.path.clone())
    };
    let thread_node = |tid: u32| {
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
            let v2: Seen = v2_chain(plan, &node)
                .into_iter()
                .filter(|n| n.path != "/")
                .flat_map(|n| n.settings.iter())
                .filter(|s| s.rule != "v2.existing")
                .map(|s| {
                    (
                        s.origin.hierarchy,
                        s.origin.path.clone(),
                        s.file.clone(),
                        s.value.clone(),
                    )
                })
                .collect();
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
            for missing in v1.difference(&v2) {
                if !is_explained(&missing.1) {
                    problems.push(format!(
                        "thread {} of {} ({}) sees {}={} from {}:{} in v1 but not in the plan (at {node})",
                        t.tid, p.pid, p.comm, missing.2, missing.3, missing.0, missing.1
                    ));
                }
            }
            for extra in v2.difference(&v1) {
                problems.push(format!(
                    "thread {} of {} ({}) sees {}={} from {}:{} in the plan (at {node}) but not in v1",
                    t.tid, p.pid, p.comm, extra.2, extra.3, extra.0, extra.1
                ));
            }
        }
    }
    // Weights: siblings in v2 that carry a weight from the same hierarchy
    // must be the v1 siblings, or a finding says the share changes.
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
