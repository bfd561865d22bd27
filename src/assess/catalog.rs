//! Every finding id cgmig can report, read from the one table each kind
//! lives in: the rules files (`RuleSet`), the planner's table
//! (`plan::findings::ALL`), the owners' (`owners::findings::ALL`), the
//! readiness table (`readiness::rule_table`) and the scan's unreadable
//! finding (`audit::UNREADABLE`). `cgmig explain ID`, `cgmig rules list` and
//! the waiver check read it, so no id a report shows is unknown to them.

use crate::rules::{RuleSet, Severity};

/// A built-in kind of finding (not from a rules file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Builtin {
    /// The id.
    pub id: &'static str,
    /// Its severity (one id may have several kinds, one per severity or reason).
    pub severity: Severity,
    /// Title.
    pub title: &'static str,
    /// What to do.
    pub remediation: String,
    /// Which table it is in, and the doc that explains it.
    pub origin: &'static str,
}

/// Every built-in kind, in table order: planner, owners, readiness, scan.
pub fn builtins() -> Vec<Builtin> {
    let kinds = |table: &'static [crate::rules::FindingKind], origin: &'static str| {
        table.iter().map(move |k| Builtin {
            id: k.id,
            severity: k.severity,
            title: k.title,
            remediation: k.remediation.to_string(),
            origin,
        })
    };
    let mut out: Vec<Builtin> = kinds(&crate::plan::findings::ALL, "the planner, docs/plan.md")
        .chain(kinds(
            crate::owners::findings::ALL,
            "owners of cgroups, docs/owners.md",
        ))
        .collect();
    out.extend(crate::readiness::rule_table().into_iter().map(|r| Builtin {
        id: r.id,
        severity: r.severity,
        title: r.title,
        remediation: format!("{}. {} (source: {})", r.needed, r.why, r.source),
        origin: "workload readiness, docs/readiness.md",
    }));
    out.extend(kinds(
        std::slice::from_ref(&crate::audit::UNREADABLE),
        "the scan, docs/snapshot.md",
    ));
    out
}

/// The built-in kinds with this id.
pub fn builtin(id: &str) -> Vec<Builtin> {
    builtins().into_iter().filter(|b| b.id == id).collect()
}

/// Whether any table knows this id (a rule in force or a built-in kind).
pub fn knows(id: &str, rules: &RuleSet) -> bool {
    rules.get(id).is_some() || builtins().iter().any(|b| b.id == id)
}
