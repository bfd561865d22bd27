//! Conflicts step: crossing cgroups as plan conflicts and findings, with
//! the strategy that resolved each.

use super::findings;
use super::model::*;
use super::nodes::origin_of;
use super::unify::{Crossing, Merged, PerNode, Prepared};
use crate::rules::Strategy;
use crate::rules::{Finding, Subject};

/// The merge's crossings as plan conflicts (and `plan.conflict` findings).
pub fn conflicts(
    prep: &Prepared,
    m: &Merged,
    paths: &PerNode<String>,
    findings: &mut Vec<Finding>,
) -> Vec<Conflict> {
    let mut conflicts = Vec::with_capacity(m.crossings.len());
    for c in &m.crossings {
        let rejected = origin_of(prep, c.hierarchy, c.cgroup);
        let crosses: Vec<Origin> = c
            .partial
            .iter()
            .filter_map(|p| m[*p].origins.first().map(|(h, cg)| origin_of(prep, *h, *cg)))
            .collect();
        let resolution = resolution(c, paths);
        findings.push(conflict_finding(c, &rejected, &crosses, &resolution));
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
    conflicts
}

/// How the policy's strategy resolved a crossing, in words.
fn resolution(c: &Crossing, paths: &PerNode<String>) -> String {
    match c.strategy {
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
    }
}

/// The `plan.conflict` finding of a crossing (its severity by strategy).
fn conflict_finding(c: &Crossing, rejected: &Origin, crosses: &[Origin], resolution: &str) -> Finding {
    let kind = match c.strategy {
        Strategy::Split => findings::CONFLICT_SPLIT,
        Strategy::Drop => findings::CONFLICT_DROP,
        Strategy::Fail => findings::CONFLICT_FAIL,
    };
    let cross_text: Vec<String> = crosses
        .iter()
        .map(|o| format!("{}:{}", o.label, o.path))
        .collect();
    kind.finding(
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
    )
}
