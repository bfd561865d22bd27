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
    let judged = judged(
        snap,
        rules,
        waivers,
        |eval, findings| Ok::<_, std::convert::Infallible>(plan::draft_by_risk(snap, rules, eval, findings)),
        |eval| audit::conversions(snap, eval),
    );
    let (plan, conversions, readiness) = match judged {
        Ok(j) => j,
        Err(never) => match never {},
    };
    let mut report = audit::report(snap, conversions, plan.findings.clone(), readiness);
    report.owners = crate::owners::detect(snap);
    debug_assert_eq!(Some(report.verdict), plan.verdict);
    Assessment { report, plan }
}

/// The plan of a host's assessment with its boots chosen by `policy`
/// (`cgmig plan --stages`); an error when a hand-written spec does not fit
/// the host. The same findings and verdict as [`assess`]; the audit report
/// (a copy of every finding and conversion) is not built, since `cgmig plan`
/// does not print it.
pub fn plan(
    snap: &Snapshot,
    rules: &RuleSet,
    waivers: &Waivers,
    policy: &plan::StagePolicy,
) -> Result<Plan, plan::StageError> {
    let (plan, (), _) = judged(
        snap,
        rules,
        waivers,
        |eval, findings| plan::draft_staged(snap, rules, eval, findings, policy),
        |_| (),
    )?;
    Ok(plan)
}

/// The one sequence every entry shares: evaluate, find, draft the plan (by
/// `draft`), take what else the caller needs from the evaluation (by
/// `keep`), free the evaluation, finish the plan, waive, judge. The
/// evaluation is freed before the plan is finished because the two are the
/// largest values of an assessment (docs/performance.md, "Plan at 101k
/// cgroups").
fn judged<E, T>(
    snap: &Snapshot,
    rules: &RuleSet,
    waivers: &Waivers,
    draft: impl FnOnce(&audit::Evaluation, Vec<crate::rules::Finding>) -> Result<plan::Draft, E>,
    keep: impl FnOnce(&audit::Evaluation) -> T,
) -> Result<(Plan, T, audit::readiness::Section), E> {
    let eval = audit::evaluate(snap, rules);
    let (findings, readiness) = audit::findings_and_readiness(snap, rules, &eval);
    let d = draft(&eval, findings)?;
    let kept = keep(&eval);
    drop(eval);
    let mut plan = plan::complete(d, snap, rules);
    waivers.apply(&mut plan.findings);
    plan.judge();
    Ok((plan, kept, readiness))
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
