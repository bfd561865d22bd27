//! Weights step: a weight is relative to its siblings, so every weight whose
//! weighted siblings in v2 are not those of v1 gets a `plan.weight-share`
//! finding.
//!
//! Steps: [`Groups::new`] indexes the weighted settings once (per v2 parent
//! and per v1 parent), then each weight is compared with its group:
//! [`Groups::unchanged`] answers for a whole group at once when it can, and
//! [`Groups::siblings`] lists the differences for the finding.

use crate::model::HierarchyId;
use std::collections::{BTreeMap, BTreeSet};

use petgraph::graph::NodeIndex;

use super::findings;
use super::model::*;
use super::unify::{IdMap as HashMap, Prepared};
use crate::rules::Finding;

/// `plan.weight-share` findings.
pub fn weight_shares(prep: &Prepared, nodes: &[PlanNode]) -> Vec<Finding> {
    let mut groups = Groups::new(prep, nodes);
    let mut out = Vec::new();
    for n in nodes {
        let Some(pp) = n.parent_path() else { continue };
        for s in n.settings.iter().filter(|s| is_weight(s) && !s.split_copy) {
            let foreign = groups.foreign(nodes, pp, s.origin.hierarchy, &n.path);
            if foreign.is_empty() && groups.unchanged(pp, s) {
                continue;
            }
            let change = groups.siblings(pp, &n.path, s);
            if foreign.is_empty() && change.lost.is_empty() && change.gained.is_empty() {
                continue;
            }
            out.push(weight_share(n, s, &change, &foreign));
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
    prep: &'a Prepared<'a>,
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
    /// How a v2 group and a v1 group differ (see [`GroupDiff`]).
    diff: HashMap<(V2Key<'a>, Option<V1Key<'a>>), GroupDiff<'a>>,
}

/// How a v2 group and a v1 group differ, made once per pair of groups: a
/// member's siblings are its group without itself, so its lost and gained
/// siblings are these differences corrected for the member alone (building
/// both sibling sets per member was quadratic in the group's size).
struct GroupDiff<'a> {
    /// Origins of the v1 group not in the v2 group (sorted).
    v1_only: Vec<&'a str>,
    /// Origins of the v2 group not in the v1 group (sorted).
    v2_only: Vec<&'a str>,
    /// The v1 group.
    v1: BTreeSet<&'a str>,
    /// Per node path: the origins of the v2 group that sit at it alone.
    sole_at: BTreeMap<&'a str, Vec<&'a str>>,
}

/// A weight's siblings that change: v1 siblings no longer beside it, and
/// new weighted siblings (origin paths, sorted).
struct SiblingChange<'a> {
    lost: Vec<&'a str>,
    gained: Vec<&'a str>,
}

impl<'a> GroupDiff<'a> {
    fn new(v2: Option<&BTreeSet<(&'a str, &'a str)>>, v1: Option<&BTreeSet<&'a str>>) -> GroupDiff<'a> {
        let v1: BTreeSet<&str> = v1.cloned().unwrap_or_default();
        let mut nodes_of: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for &(o, n) in v2.into_iter().flatten() {
            nodes_of.entry(o).or_default().push(n);
        }
        let mut sole_at: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (o, ns) in &nodes_of {
            if ns.iter().all(|n| *n == ns[0]) {
                sole_at.entry(ns[0]).or_default().push(o);
            }
        }
        GroupDiff {
            v1_only: v1.iter().copied().filter(|o| !nodes_of.contains_key(o)).collect(),
            v2_only: nodes_of.keys().copied().filter(|o| !v1.contains(o)).collect(),
            v1,
            sole_at,
        }
    }

    /// The change for the member at `node` with origin `origin`: its v2
    /// siblings are the group without the origins that sit at `node` alone
    /// (`gone`), its v1 siblings the v1 group without `origin`.
    fn change(&self, node: &str, origin: &'a str) -> SiblingChange<'a> {
        let gone: &[&str] = self.sole_at.get(node).map_or(&[], Vec::as_slice);
        let mut lost: Vec<&str> = self.v1_only.iter().copied().filter(|o| *o != origin).collect();
        lost.extend(
            gone.iter()
                .copied()
                .filter(|o| *o != origin && self.v1.contains(o)),
        );
        let mut gained: Vec<&str> = self
            .v2_only
            .iter()
            .copied()
            .filter(|o| !gone.contains(o))
            .collect();
        // The member's own origin is a v2 sibling when it also sits at
        // another node (a v1 cgroup split over two nodes).
        let own_elsewhere = !gone.contains(&origin) && self.in_v2(origin);
        if own_elsewhere && self.v1.contains(origin) {
            gained.push(origin);
        }
        for v in [&mut lost, &mut gained] {
            v.sort_unstable();
            v.dedup();
        }
        SiblingChange { lost, gained }
    }

    fn in_v2(&self, origin: &str) -> bool {
        !self.v1.contains(origin) && self.v2_only.contains(&origin)
            || self.v1.contains(origin) && !self.v1_only.contains(&origin)
    }
}

impl<'a> Groups<'a> {
    fn new(prep: &'a Prepared<'a>, nodes: &'a [PlanNode]) -> Groups<'a> {
        let snap = prep.snap;
        let mut children_of: HashMap<&str, Vec<usize>> = HashMap::default();
        let mut v2: HashMap<V2Key, BTreeSet<(&str, &str)>> = HashMap::default();
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
        let mut v1: HashMap<V1Key, BTreeSet<&str>> = HashMap::default();
        for &(h, path, file) in &weighted {
            if let Some(par) = by_path.get(&(h, path)).and_then(|c| prep.parent(*c)) {
                v1.entry((par, file)).or_default().insert(path);
            }
        }
        let (foreign, same, diff) = (HashMap::default(), HashMap::default(), HashMap::default());
        Groups {
            diff,
            prep,
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
        Some((self.prep.parent(*c)?, s.file.as_str()))
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

    /// How a weight's weighted siblings (origin paths) change from v1 to v2.
    fn siblings(&mut self, pp: &'a str, node: &str, s: &'a Setting) -> SiblingChange<'a> {
        let k2 = (pp, s.origin.hierarchy, s.file.as_str());
        let k1 = self.v1_key(s);
        let (v1, v2) = (&self.v1, &self.v2);
        self.diff
            .entry((k2, k1))
            .or_insert_with(|| GroupDiff::new(v2.get(&k2), k1.and_then(|k| v1.get(&k))))
            .change(node, s.origin.path.as_str())
    }
}

/// The finding for one weight whose siblings change.
fn weight_share(n: &PlanNode, s: &Setting, change: &SiblingChange, foreign: &[&str]) -> Finding {
    let SiblingChange { lost, gained } = change;
    findings::WEIGHT_SHARE.at(
        &n.path,
        format!(
            "{}={} (from {}:{}) at {}: v1 siblings no longer beside it {lost:?}, new weighted siblings {gained:?}, siblings from other hierarchies at the default weight {foreign:?}; its share of the parent changes",
            s.file, s.value, s.origin.label, s.origin.path, n.path
        ),
    )
}
