//! Owners: who writes each cgroup, and the plan each owner's part gets.
//!
//! On most v1 machines the cgroups are not the admin's: systemd writes its
//! units and slices, kubelet and the container runtimes write theirs, libvirt
//! and LXC theirs, and a custom manager whatever else. After the switch each
//! of them rebuilds its own tree on v2, with its own formulas; a migration
//! tool that writes into those trees fights them. This module
//!
//! 1. records evidence at scan time ([`evidence`]: unit files and drop-ins,
//!    systemd's version and defaults, its cgroup xattrs);
//! 2. decides the owner of every cgroup from the paths and that evidence
//!    ([`mod@detect`], pure);
//! 3. annotates a plan ([`annotate()`]): per-node owners, what systemd will
//!    write for each unit ([`systemd`]'s formulas) with the drop-ins that keep
//!    v1 behaviour, the units that must delegate, units suggested for custom
//!    top-level trees, runtime settings ([`runtimes`]), and no actions in
//!    other owners' cgroups ([`writable_by_cgmig`] is `apply`'s guard).

pub mod annotate;
pub mod detect;
pub mod directives;
pub mod evidence;
pub mod findings;
pub(crate) mod paths;
mod render;
pub mod runtimes;
pub mod systemd;
pub mod units;

pub use annotate::{
    Delegation, InstallFile, OwnerRefusal, PlanOwners, ProcessPlace, RuntimePlan, RuntimeValues, Suggestion,
    UnitPrediction, annotate, strip_actions, writable_by_cgmig,
};
pub use detect::{Manager, Owner, OwnerMap, detect, is_systemd_host};
pub use evidence::Evidence;
pub use render::{audit_section, plan_section};

/// Add the owner of every cgroup (with its evidence) to the audit, and
/// relabel the device-policy findings that concern systemd's own units
/// (journald, logind, ...): systemd rebuilds them as BPF on v2. The counts,
/// groups and verdict are recomputed.
pub fn adjust_report(report: &mut crate::audit::Report, snap: &crate::model::Snapshot) {
    use crate::audit::Verdict;
    use crate::rules::Severity;
    let map = detect(snap);
    annotate::relabel_device_findings(&mut report.findings, &map);
    report.owners = map;
    for v in report.by_severity.values_mut() {
        *v = 0;
    }
    for f in &report.findings {
        *report.by_severity.entry(f.severity).or_default() += 1;
    }
    report.groups = crate::audit::group(&report.findings);
    if report.verdict != Verdict::Blocked
        && !report.findings.iter().any(|f| f.severity >= Severity::Warning)
        && report.conversions.is_empty()
    {
        report.verdict = Verdict::Ready;
    }
}
