//! Weights step: a weight is relative to its siblings, so every weight whose
//! weighted siblings in v2 are not those of v1 gets a `plan.weight-share`
//! finding.
//!
//! Steps: [`Groups::new`] indexes the weighted settings once (per v2 parent
//! and per v1 parent), then each weight is compared with its group:
//! [`Groups::unchanged`] answers for a whole group at once when it can, and
//! [`Groups::siblings`] lists the differences for the finding.

use crate::model::HierarchyId;
use std::collections::{BTreeSet, HashMap};

use petgraph::graph::NodeIndex;

use super::findings;
use super::model::*;
use crate::audit::Finding;
use crate::model::Snapshot;

/// `plan.weight-share` findings.
pub fn weight_shares(snap: &Snapshot, nodes: &[PlanNode]) -> Vec<Finding> {
    let mut groups = Groups::new(snap, nodes);
    let mut out = Vec::new();
    for n in nodes {
        let Some(pp) = n.parent_path() else { continue };
        for s in n.settings.iter().filter(|s| is_weight(s) && !s.split_copy) {
            let foreign = groups.foreign(nodes, pp, s.origin.hierarchy, &n.path);
            if foreign.is_empty() && groups.unchanged(pp, s) {
                continue;
            }
            let (v1_sibs, v2_sibs) = groups.siblings(pp, &n.path, s);
            if foreign.is_empty() && v2_sibs == v1_sibs {
                continue;
            }
            out.push(weight_share(n, s, &v1_sibs, &v2_sibs, &foreign));
        }
    }
    out
}

fn is_weight(s: &Setting) -> bool {
    s.file.ends_with(".weight")
}

/// (v2 parent, hierarchy, file): the weights that compete under one v2 parent.
type V2Key<'a> = (&'a str, HierarchyId, &'a str);
/// (v1 parent, file): the weights that competed under one v1 parent.
type V1Key<'a> = (NodeIndex, &'a str);

/// The weighted settings, grouped once.
struct Groups<'a> {
    snap: &'a Snapshot,
    /// Children of each v2 node, by path.
    children_of: HashMap<&'a str, Vec<usize>>,
    /// (hierarchy, path) -> v1 cgroup, for weighted hierarchies only.
    by_path: HashMap<(HierarchyId, &'a str), NodeIndex>,
    /// (origin path, node path) per v2 group: a v1 cgroup split over two
    /// nodes (a domain and a threaded one) competes with itself.
    v2: HashMap<V2Key<'a>, BTreeSet<(&'a str, &'a str)>>,
    /// Origin paths per v1 group.
    v1: HashMap<V1Key<'a>, BTreeSet<&'a str>>,
    /// Nodes without an origin in a hierarchy, per (v2 parent, hierarchy).
    foreign: HashMap<(&'a str, HierarchyId), Vec<&'a str>>,
    /// Whether a v2 group and a v1 group hold the same origins, each once.
    same: HashMap<(V2Key<'a>, V1Key<'a>), bool>,
}

impl<'a> Groups<'a> {
    fn new(snap: &'a Snapshot, nodes: &'a [PlanNode]) -> Groups<'a> {
        let mut children_of: HashMap<&str, Vec<usize>> = HashMap::new();
        let mut v2: HashMap<V2Key, BTreeSet<(&str, &str)>> = HashMap::new();
        for (i, n) in nodes.iter().enumerate() {
            let Some(pp) = n.parent_path() else { continue };
            children_of.entry(pp).or_default().push(i);
            for s in n.settings.iter().filter(|s| is_weight(s)) {
                v2.entry((pp, s.origin.hierarchy, s.file.as_str()))
                    .or_default()
                    .insert((s.origin.path.as_str(), n.path.as_str()));
            }
        }
        let weighted: BTreeSet<(HierarchyId, &str, &str)> = nodes
            .iter()
            .flat_map(|n| &n.settings)
            .filter(|s| is_weight(s))
            .map(|s| (s.origin.hierarchy, s.origin.path.as_str(), s.file.as_str()))
            .collect();
        // Only weighted hierarchies' cgroups are looked up by path.
        let weighted_h: BTreeSet<HierarchyId> = weighted.iter().map(|(h, _, _)| *h).collect();
        let by_path: HashMap<(HierarchyId, &str), NodeIndex> = snap
            .cgroups()
            .filter(|(_, c)| weighted_h.contains(&c.hierarchy))
            .map(|(i, c)| ((c.hierarchy, c.path.as_str()), i))
            .collect();
        let mut v1: HashMap<V1Key, BTreeSet<&str>> = HashMap::new();
        for &(h, path, file) in &weighted {
            if let Some(par) = by_path.get(&(h, path)).and_then(|c| snap.parent(*c)) {
                v1.entry((par, file)).or_default().insert(path);
            }
        }
        let (foreign, same) = (HashMap::new(), HashMap::new());
        Groups {
            snap,
            children_of,
            by_path,
            v2,
            v1,
            foreign,
            same,
        }
    }

    /// Siblings from other hierarchies (at the default weight) beside `node`.
    fn foreign(&mut self, nodes: &'a [PlanNode], pp: &'a str, hier: HierarchyId, node: &str) -> Vec<&'a str> {
        let children_of = &self.children_of;
        self.foreign
            .entry((pp, hier))
            .or_insert_with(|| {
                let kids = children_of.get(pp).into_iter().flatten().map(|&i| &nodes[i]);
                kids.filter(|x| !x.origins.iter().any(|o| o.hierarchy == hier))
                    .map(|x| x.path.as_str())
                    .collect()
            })
            .iter()
            .copied()
            .filter(|p| *p != node)
            .collect()
    }

    /// The v1 group of a weight: its v1 parent's weighted children.
    fn v1_key(&self, s: &'a Setting) -> Option<V1Key<'a>> {
        let c = self.by_path.get(&(s.origin.hierarchy, s.origin.path.as_str()))?;
        Some((self.snap.parent(*c)?, s.file.as_str()))
    }

    /// Whether the weight's v2 group holds exactly its v1 group's origins,
    /// each once: then every member's siblings are the same in both, and the
    /// group is compared once instead of once per member (big hosts have
    /// thousands of weighted siblings under one parent).
    fn unchanged(&mut self, pp: &'a str, s: &'a Setting) -> bool {
        let Some(k1) = self.v1_key(s) else { return false };
        let k2 = (pp, s.origin.hierarchy, s.file.as_str());
        let (v1, v2) = (&self.v1, &self.v2);
        *self.same.entry((k2, k1)).or_insert_with(|| {
            let (Some(v2), Some(v1)) = (v2.get(&k2), v1.get(&k1)) else {
                return false;
            };
            let origins: BTreeSet<&str> = v2.iter().map(|(o, _)| *o).collect();
            origins.len() == v2.len() && origins == *v1
        })
    }

    /// A weight's weighted siblings in v1 and in v2 (origin paths).
    fn siblings(&self, pp: &str, node: &str, s: &'a Setting) -> (BTreeSet<&'a str>, BTreeSet<&'a str>) {
        let v2: BTreeSet<&str> = self
            .v2
            .get(&(pp, s.origin.hierarchy, s.file.as_str()))
            .into_iter()
            .flatten()
            .filter(|(_, n)| *n != node)
            .map(|(o, _)| *o)
            .collect();
        let v1: BTreeSet<&str> = self
            .v1_key(s)
            .and_then(|k| self.v1.get(&k))
            .into_iter()
            .flatten()
            .copied()
            .filter(|p| *p != s.origin.path)
            .collect();
        (v1, v2)
    }
}

/// The finding for one weight whose siblings change.
fn weight_share(
    n: &PlanNode,
    s: &Setting,
    v1: &BTreeSet<&str>,
    v2: &BTreeSet<&str>,
    foreign: &[&str],
) -> Finding {
    let lost: Vec<&str> = v1.difference(v2).copied().collect();
    let gained: Vec<&str> = v2.difference(v1).copied().collect();
    findings::WEIGHT_SHARE.at(
        &n.path,
        format!(
            "{}={} (from {}:{}) at {}: v1 siblings no longer beside it {lost:?}, new weighted siblings {gained:?}, siblings from other hierarchies at the default weight {foreign:?}; its share of the parent changes",
            s.file, s.value, s.origin.label, s.origin.path, n.path
        ),
    )
}
