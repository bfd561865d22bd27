//! Placement step: one domain plan node per merged node, with its
//! processes, its converted settings (one value per file) and its owner;
//! then the empty intermediate nodes a kept v1 path needs.

use std::collections::BTreeSet;

use super::findings;
use super::model::*;
use super::settings::{self, settings_of};
use super::unify::{self, Merged, Prepared};
use crate::audit::Finding;

/// The plan origin of a v1 cgroup.
pub fn origin_of(prep: &Prepared, hid: crate::model::HierarchyId, cg: petgraph::graph::NodeIndex) -> Origin {
    Origin {
        hierarchy: hid,
        label: prep.label(hid),
        path: prep.snap.cgroup(cg).path.clone(),
    }
}

/// Domain plan nodes for the merged tree (index = merged node id).
pub fn domain_nodes(
    prep: &Prepared,
    m: &Merged,
    paths: &[String],
    findings: &mut Vec<Finding>,
) -> Vec<PlanNode> {
    let snap = prep.snap;
    let procs = unify::processes_at(prep, m);
    let mut nodes: Vec<PlanNode> = Vec::with_capacity(m.nodes.len());
    for (i, t) in m.nodes.iter().enumerate() {
        let mut settings = Vec::new();
        let mut owner: Option<Owner> = None;
        let mut origins = Vec::new();
        for &(hid, cg) in &t.origins {
            let o = origin_of(prep, hid, cg);
            let cgd = snap.cgroup(cg);
            if let Some(uid) = cgd.owner.delegate_uid() {
                let gid = [cgd.owner.dir, cgd.owner.procs, cgd.owner.tasks]
                    .into_iter()
                    .flatten()
                    .find(|f| f.uid == uid)
                    .map_or(uid, |f| f.gid);
                match owner {
                    Some(prev) if prev.uid != uid => findings.push(findings::OWNER_CONFLICT.at(
                        &paths[i],
                        format!(
                            "{} merges cgroups owned by uid {} and uid {uid}; uid {} is kept",
                            paths[i], prev.uid, prev.uid
                        ),
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
        let settings = settings::one_value_per_file(settings);
        let mut processes: Vec<crate::model::Pid> = procs[i].iter().map(|(_, p)| *p).collect();
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

    nodes
}

/// Intermediate v1 path components that carried nothing become empty
/// nodes; the result is sorted by path (parents first).
pub fn add_intermediates(nodes: &mut Vec<PlanNode>) {
    let existing: BTreeSet<String> = nodes.iter().map(|n| n.path.clone()).collect();
    let mut missing: BTreeSet<String> = BTreeSet::new();
    for n in nodes.iter() {
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
            Some(NodeNote::Intermediate),
        ));
    }
    nodes.sort_by(|a, b| a.path.cmp(&b.path));
}
