//! The audit's owners section: who writes each cgroup, and what that means
//! for the audit's findings and verdict.

use super::{Report, Verdict};
use crate::model::Snapshot;
use crate::owners;
use crate::rules::Severity;

/// Add the owner of every cgroup (with its evidence) to the audit, and
/// relabel the device-policy findings that concern systemd's own units
/// (journald, logind, ...): systemd rebuilds them as BPF on v2. The counts,
/// groups and verdict are recomputed.
pub fn adjust_report(report: &mut Report, snap: &Snapshot) {
    let map = owners::detect(snap);
    owners::findings::relabel_device_findings(&mut report.findings, &map);
    report.owners = map;
    for v in report.by_severity.values_mut() {
        *v = 0;
    }
    for f in &report.findings {
        *report.by_severity.entry(f.severity).or_default() += 1;
    }
    report.groups = super::group(&report.findings);
    if report.verdict != Verdict::Blocked
        && !report.findings.iter().any(|f| f.severity >= Severity::Warning)
        && report.conversions.is_empty()
    {
        report.verdict = Verdict::Ready;
    }
}
