//! Placement step: one domain plan node per merged node, with its
//! processes, its converted settings (one value per file) and its owner;
//! then the empty intermediate nodes a kept v1 path needs.

use std::collections::BTreeSet;

use super::findings;
use super::model::*;
use super::settings::{self, settings_of};
use super::unify::{self, Merged, MergedId, PerNode, Prepared};
use crate::rules::Finding;

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
    paths: &PerNode<String>,
    findings: &mut Vec<Finding>,
) -> Vec<PlanNode> {
    let procs = unify::processes_at(prep, m);
    let mut nodes: Vec<PlanNode> = Vec::with_capacity(m.nodes.len());
    for (i, t) in m.nodes.iter().enumerate() {
        let i = MergedId::new(i);
        let origins = t.origins.iter().map(|&(h, cg)| origin_of(prep, h, cg)).collect();
        let mut processes: Vec<crate::model::Pid> = procs[i].iter().map(|(_, p)| *p).collect();
        processes.sort_unstable();
        nodes.push(PlanNode {
            path: paths[i].clone(),
            node_type: NodeType::Domain,
            subtree_control: Vec::new(),
            // The root carries no settings: v2 has no interface files there.
            settings: if i == MergedId::ROOT {
                Vec::new()
            } else {
                node_settings(prep, t)
            },
            processes,
            threads: Vec::new(),
            owner: node_owner(prep, t, &paths[i], findings),
            origins,
            note: None,
        });
    }
    nodes
}

/// A merged node's settings: its cgroups' own, then copies from the
/// crossing cgroups split onto it, one value per file.
fn node_settings(prep: &Prepared, t: &unify::MergedNode) -> Vec<Setting> {
    let mut settings = Vec::new();
    for &(hid, cg) in &t.origins {
        settings.extend(settings_of(prep, hid, cg, false));
    }
    for &(hid, cg) in &t.split_from {
        settings.extend(settings_of(prep, hid, cg, true));
    }
    settings::one_value_per_file(settings)
}

/// The owner of a merged node: the first delegated owner among its
/// cgroups (a `plan.owner-conflict` finding when another uid owns one).
fn node_owner(
    prep: &Prepared,
    t: &unify::MergedNode,
    path: &str,
    findings: &mut Vec<Finding>,
) -> Option<Owner> {
    let mut owner: Option<Owner> = None;
    for &(_, cg) in &t.origins {
        let cgd = prep.snap.cgroup(cg);
        let Some(uid) = cgd.owner.delegate_uid() else {
            continue;
        };
        let gid = [cgd.owner.dir, cgd.owner.procs, cgd.owner.tasks]
            .into_iter()
            .flatten()
            .find(|f| f.uid == uid)
            .map_or(uid, |f| f.gid);
        match owner {
            Some(prev) if prev.uid != uid => findings.push(findings::OWNER_CONFLICT.at(
                path,
                format!(
                    "{path} merges cgroups owned by uid {} and uid {uid}; uid {} is kept",
                    prev.uid, prev.uid
                ),
            )),
            None => owner = Some(Owner { uid, gid }),
            _ => {}
        }
    }
    owner
}

/// Intermediate v1 path components that carried nothing become empty
/// nodes; the result is sorted by path (parents first).
pub fn add_intermediates(nodes: &mut Vec<PlanNode>) {
    let mut missing: BTreeSet<String> = BTreeSet::new();
    {
        let existing: unify::IdSet<&str> = nodes.iter().map(|n| n.path.as_str()).collect();
        for n in nodes.iter() {
            let mut cur = n.parent_path();
            while let Some(pp) = cur {
                if existing.contains(pp) || missing.contains(pp) {
                    break;
                }
                missing.insert(pp.to_string());
                cur = crate::model::path::parent(pp);
            }
        }
    }
    for path in missing {
        nodes.push(PlanNode::new(
            path,
            NodeType::Domain,
            Some(NodeNote::Intermediate),
        ));
    }
    sort_by_path(nodes);
}

/// Sort nodes by path (parents first). Indices are sorted and the nodes
/// moved once: sorting the nodes themselves moved each large node many
/// times. Paths are unique, so an unstable sort is exact.
pub fn sort_by_path(nodes: &mut Vec<PlanNode>) {
    let mut order: Vec<usize> = (0..nodes.len()).collect();
    order.sort_unstable_by(|a, b| nodes[*a].path.cmp(&nodes[*b].path));
    let mut slots: Vec<Option<PlanNode>> = std::mem::take(nodes).into_iter().map(Some).collect();
    nodes.extend(order.into_iter().filter_map(|i| slots[i].take()));
}
