//! Weights step: a weight is relative to its siblings, so every weight whose
//! weighted siblings in v2 are not those of v1 gets a `plan.weight-share`
//! finding.

use std::collections::{BTreeSet, HashMap};

use super::model::*;
use super::{node_subject, planner_finding};
use crate::audit::Finding;
use crate::model::Snapshot;
use crate::rules::Severity;

/// `plan.weight-share` findings.
pub fn weight_shares(snap: &Snapshot, nodes: &[PlanNode]) -> Vec<Finding> {
    let mut children_of: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, n) in nodes.iter().enumerate() {
        if let Some(pp) = n.parent_path() {
            children_of.entry(pp).or_default().push(i);
        }
    }
    // Weights are relative to siblings: report every weight whose weighted
    // siblings in v2 are not its weighted siblings in v1 (it moved under
    // another parent, or its parent gained or lost weighted children).
    let weighted: BTreeSet<(u32, &str, &str)> = nodes
        .iter()
        .flat_map(|n| &n.settings)
        .filter(|s| s.file.ends_with(".weight"))
        .map(|s| (s.origin.hierarchy, s.origin.path.as_str(), s.file.as_str()))
        .collect();
    // Only weighted hierarchies' cgroups are looked up by path.
    let weighted_h: BTreeSet<u32> = weighted.iter().map(|(h, _, _)| *h).collect();
    let by_path: HashMap<(u32, &str), petgraph::graph::NodeIndex> = snap
        .cgroups()
        .filter(|(_, c)| weighted_h.contains(&c.hierarchy))
        .map(|(i, c)| ((c.hierarchy, c.path.as_str()), i))
        .collect();
    // Weighted children per (v2 parent, hierarchy, file) and per (v1 parent,
    // file), computed once.
    // (origin path, node path): a v1 cgroup split over two nodes (a domain
    // and a threaded one) competes with itself.
    type OriginAndNode<'a> = BTreeSet<(&'a str, &'a str)>;
    let mut v2_weighted: HashMap<(&str, u32, &str), OriginAndNode> = HashMap::new();
    for n in nodes.iter() {
        let Some(pp) = n.parent_path() else { continue };
        for s in n.settings.iter().filter(|s| s.file.ends_with(".weight")) {
            v2_weighted
                .entry((pp, s.origin.hierarchy, s.file.as_str()))
                .or_default()
                .insert((s.origin.path.as_str(), n.path.as_str()));
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
    for n in nodes.iter() {
        for s in n
            .settings
            .iter()
            .filter(|s| s.file.ends_with(".weight") && !s.split_copy)
        {
            let Some(pp) = n.parent_path() else { continue };
            let v2_sibs: BTreeSet<&str> = v2_weighted
                .get(&(pp, s.origin.hierarchy, s.file.as_str()))
                .map(|set| {
                    set.iter()
                        .filter(|(_, node)| *node != n.path)
                        .map(|(o, _)| *o)
                        .collect()
                })
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
    weight_findings
}
