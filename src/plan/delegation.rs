//! Delegation step: one user's subtrees that v2's common-ancestor rule
//! would separate get a suggested delegated parent.

use std::collections::{BTreeMap, HashMap};

use super::findings;
use super::model::*;
use crate::rules::{Finding, Subject};

/// `plan.delegation-restructure` findings.
pub fn delegation(nodes: &[PlanNode]) -> Vec<Finding> {
    let mut findings = Vec::new();
    // Indexes so that the checks below stay linear on big hosts.
    let node_at: HashMap<&str, usize> = nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (n.path.as_str(), i))
        .collect();
    // Delegation that v2's common-ancestor rule breaks: suggest one parent.
    let mut roots_by_uid: BTreeMap<u32, Vec<String>> = BTreeMap::new();
    for n in nodes {
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
        findings.push(findings::DELEGATION_RESTRUCTURE.finding_with(
            Subject::Host,
            format!(
                "uid {uid} owns {} separate subtrees ({}); in v2 it can only move processes between them if it owns their common ancestor",
                roots.len(),
                roots.join(", ")
            ),
            format!("Create /user-{uid}.delegate owned by uid {uid} and move {} under it.", roots.join(", ")),
        ));
    }

    findings
}
