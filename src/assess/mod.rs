//! One assessment per host: every finding (rules, host facts, kernel,
//! readiness, the planner's passes, the owners pass), each at the severity
//! decided where it is made, waived where a waiver accepts it, and one
//! verdict ([`Verdict::judge`]) over them, computed once.
//!
//! The audit report and the plan are two views of the same assessment: both
//! carry the same findings and the same verdict, so `audit`, `plan`,
//! `fleet` (over snapshots, audits or plans), `apply` and `verify` agree on
//! every host. A document read back (an audit report, a plan) is judged
//! again with [`Verdict::judge`] from what it carries, after the reader's
//! own waivers ([`judge_report`], [`judge_plan`]).

pub mod catalog;

use crate::audit::{self, Report};
use crate::model::Snapshot;
use crate::plan::{self, Plan};
use crate::rules::{RuleSet, Verdict, Waivers};

/// A host's assessment: its audit report and its plan, built from one
/// evaluation of the rules and one list of findings.
#[derive(Debug, Clone)]
pub struct Assessment {
    /// The audit report (every finding, sorted worst first; conversions).
    pub report: Report,
    /// The plan (the same findings, in the planner's order; the tree and actions).
    pub plan: Plan,
}

impl Assessment {
    /// The host's verdict (the report's and the plan's are the same).
    pub fn verdict(&self) -> Verdict {
        self.report.verdict
    }
}

/// Assess a snapshot: evaluate the rules once, make every finding, plan
/// (staged by risk), apply the waivers, judge.
pub fn assess(snap: &Snapshot, rules: &RuleSet, waivers: &Waivers) -> Assessment {
    let built = build(snap, rules, waivers, |eval, findings| {
        Ok::<_, std::convert::Infallible>(plan::plan_from(snap, rules, eval, findings))
    });
    match built {
        Ok(a) => a,
        Err(never) => match never {},
    }
}

/// [`assess`] with the plan's boots chosen by `policy` (`cgmig plan
/// --stages`); an error when a hand-written spec does not fit the host.
pub fn assess_staged(
    snap: &Snapshot,
    rules: &RuleSet,
    waivers: &Waivers,
    policy: &plan::StagePolicy,
) -> Result<Assessment, plan::StageError> {
    build(snap, rules, waivers, |eval, findings| {
        plan::plan_from_staged(snap, rules, eval, findings, policy)
    })
}

/// The one sequence both entries share: evaluate, find, plan (by `make`),
/// waive, judge, report.
fn build<E>(
    snap: &Snapshot,
    rules: &RuleSet,
    waivers: &Waivers,
    make: impl FnOnce(&audit::Evaluation, Vec<crate::rules::Finding>) -> Result<Plan, E>,
) -> Result<Assessment, E> {
    let eval = audit::evaluate(snap, rules);
    let (findings, readiness) = audit::findings_and_readiness(snap, rules, &eval);
    let mut plan = make(&eval, findings)?;
    waivers.apply(&mut plan.findings);
    plan.judge();
    let mut report = audit::report(snap, &eval, plan.findings.clone(), readiness);
    report.owners = crate::owners::detect(snap);
    debug_assert_eq!(Some(report.verdict), plan.verdict);
    Ok(Assessment { report, plan })
}

/// The audit report of a host's assessment, without waivers (tests,
/// benchmarks, the fuzzers).
pub fn audit(snap: &Snapshot, rules: &RuleSet) -> Report {
    assess(snap, rules, &Waivers::none()).report
}

/// An audit report read back, judged again with the reader's waivers: the
/// same function over the same findings, so a report says what its host's
/// snapshot would.
pub fn judge_report(report: &mut Report, waivers: &Waivers) {
    waivers.apply(&mut report.findings);
    let incomplete = report
        .diagnostics
        .iter()
        .any(crate::model::Diagnostic::is_unreadable);
    report.verdict = Verdict::judge(&report.findings, !report.conversions.is_empty(), incomplete);
}

/// A plan read back, judged again with the reader's waivers. A plan older
/// than the `converts` field says so by having no verdict: then a node's
/// converted setting stands for "converts".
pub fn judge_plan(plan: &mut Plan, waivers: &Waivers) {
    if plan.verdict.is_none() {
        plan.converts = plan.converts || plan.nodes.iter().any(|n| !n.settings.is_empty());
    }
    waivers.apply(&mut plan.findings);
    plan.judge();
}
