//! Built-in finding kinds: the findings that come from cgmig's own passes
//! (planner, owners) rather than from a rules file.
//!
//! A pass names a finding by a constant of its table (`plan::findings`,
//! `owners::findings`), so the id, severity, title and remediation of each
//! kind are written once, `explain` can describe every id a plan shows, and a
//! test can check that the ids are unique. Only the `why` (which cgroup,
//! which values) is built where the finding is made.

use super::{Finding, Severity, Subject};

/// One kind of built-in finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FindingKind {
    /// Rule id (`plan.*`, `owners.*`), what `explain` takes.
    pub id: &'static str,
    /// Severity.
    pub severity: Severity,
    /// Title.
    pub title: &'static str,
    /// What to do, in general; a finding may name the host's values instead
    /// ([`FindingKind::finding_with`]).
    pub remediation: &'static str,
    /// Which pass makes it (the finding's `source`).
    pub source: &'static str,
}

impl FindingKind {
    /// A finding of this kind about `subject`.
    pub fn finding(&self, subject: Subject, why: String) -> Finding {
        self.finding_with(subject, why, self.remediation.to_string())
    }

    /// A finding of this kind about a node of the v2 plan (`path`).
    pub fn at(&self, path: &str, why: String) -> Finding {
        self.finding(
            Subject::Cgroup {
                hierarchy: crate::model::HierarchyId::UNIFIED,
                label: "v2".into(),
                path: path.to_string(),
            },
            why,
        )
    }

    /// A finding whose remediation names the host's values (a uid, a
    /// kernel version) instead of the table's general text.
    pub fn finding_with(&self, subject: Subject, why: String, remediation: String) -> Finding {
        Finding {
            rule: self.id.into(),
            severity: self.severity,
            title: self.title.into(),
            subject,
            file: None,
            value: None,
            detail: None,
            why,
            remediation: remediation.into(),
            kernel: None,
            source: Some(self.source.into()),
            waived: None,
        }
    }
}

/// Check a table: ids unique per title, all under one namespace. Same id
/// with a different title or severity is allowed (e.g. `plan.renamed` for
/// three reasons), an exact duplicate is not.
#[cfg(test)]
pub(crate) fn check_table(table: &[FindingKind], prefix: &str) {
    for (i, k) in table.iter().enumerate() {
        assert!(k.id.starts_with(prefix), "{} is not under {prefix}", k.id);
        assert!(
            !k.title.is_empty() && !k.remediation.is_empty(),
            "{} lacks text",
            k.id
        );
        assert!(
            table[..i]
                .iter()
                .all(|o| (o.id, o.title, o.severity) != (k.id, k.title, k.severity)),
            "{} is listed twice",
            k.id
        );
    }
}
