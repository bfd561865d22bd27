//! Audit: every v1 feature in use, what converts, what is lost, what blocks.
//!
//! The audit is a pure function of a snapshot and the rules. File rules are
//! applied to the settings of every v1 cgroup (only non-default values count);
//! host facts ([`facts`]) are computed from the graph and matched to the fact
//! rules that describe them. The result is a [`Report`] with a readiness
//! verdict, a summary, grouped findings and every conversion with its formula.

mod facts;
pub mod kernel;
pub mod readiness;
mod render;

use crate::model::HierarchyId;
use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use crate::model::{Diagnostic, Snapshot, Version};
use crate::owners::OwnerMap;
use crate::rules::{Conversion, Fact, LoadedRule, RuleSet, Scope, Severity, convert_setting, parse_kernel};

pub use crate::rules::{FailOn, Finding, FindingKind, Subject, Text, Verdict};
pub use facts::has_domain_controller;
pub use render::{AuditFormat, render, render_with};

/// Schema id of the machine-readable audit report.
pub const AUDIT_SCHEMA: &str = "cgmig.audit/v1";

/// A converted setting of one cgroup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Converted {
    /// Hierarchy id.
    pub hierarchy: HierarchyId,
    /// Cgroup path.
    pub path: String,
    /// The conversion.
    #[serde(flatten)]
    pub conversion: Conversion,
}

/// Identical findings folded into one line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    /// Rule id.
    pub rule: String,
    /// Severity.
    pub severity: Severity,
    /// Rule title.
    pub title: String,
    /// How many findings.
    pub count: usize,
    /// The first few subjects (with values, for file rules).
    pub examples: Vec<String>,
    /// The first finding's explanation.
    pub why: String,
    /// The remediation.
    pub remediation: String,
    /// How many of them a waiver accepts (they stay counted above).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub waived: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// One line per waiver that accepted findings: `RULE[@GLOB]: N findings,
/// waived by WHO: WHY`, for every renderer (a waived finding is never
/// silent).
pub fn waived_lines(findings: &[Finding]) -> Vec<String> {
    let mut by: BTreeMap<(String, &str, &str), usize> = BTreeMap::new();
    for w in findings.iter().filter_map(|f| f.waived.as_deref()) {
        *by.entry((w.pattern(), w.who.as_str(), w.why.as_str()))
            .or_default() += 1;
    }
    by.into_iter()
        .map(|((pattern, who, why), n)| {
            let s = if n == 1 { "" } else { "s" };
            format!("{pattern}: {n} finding{s}, waived by {who}: {why}")
        })
        .collect()
}

/// Rule id of the finding for each part of the host that could not be read.
pub const UNREADABLE_RULE: &str = UNREADABLE.id;

/// The finding for each part of the host that could not be read (its one
/// table entry, for `explain` and `rules list`).
pub const UNREADABLE: FindingKind = FindingKind {
    id: "scan.unreadable",
    severity: Severity::Error,
    title: "part of the host could not be read",
    remediation: "run as root on the host, or fix the file named, then audit again",
    source: "cgmig scan",
};

/// One error finding per unreadable part of the host, so that a verdict on
/// partial data can never pass `--fail-on error`.
fn unreadable_findings(snap: &Snapshot) -> Vec<Finding> {
    snap.diagnostics
        .iter()
        .filter(|d| d.is_unreadable())
        .map(|d| Finding {
            rule: UNREADABLE.id.into(),
            severity: UNREADABLE.severity,
            title: UNREADABLE.title.into(),
            subject: Subject::Host,
            file: None,
            value: None,
            detail: Some(format!("{}: {}", d.path, d.unreadable_detail())),
            why: "the audit only knows what it could read: settings, cgroups or processes may be missing"
                .into(),
            remediation: UNREADABLE.remediation.into(),
            kernel: None,
            source: None,
            waived: None,
        })
        .collect()
}

/// Host facts copied into the report header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportHost {
    /// Hostname.
    pub hostname: Option<String>,
    /// `/etc/machine-id` (with the hostname, the host's identity in a fleet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub machine_id: Option<String>,
    /// Kernel release.
    pub kernel: Option<String>,
    /// Mode.
    pub mode: crate::model::Mode,
    /// Number of v1 hierarchies.
    pub v1_hierarchies: usize,
    /// Number of cgroups scanned.
    pub cgroups: usize,
    /// Number of processes.
    pub processes: usize,
    /// Distribution and systemd version, from the snapshot.
    #[serde(default, skip_serializing_if = "crate::model::OsInfo::is_empty")]
    pub os: crate::model::OsInfo,
}

/// The audit report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Always [`AUDIT_SCHEMA`].
    pub schema: String,
    /// Host header.
    pub host: ReportHost,
    /// Verdict.
    pub verdict: Verdict,
    /// Finding counts by severity (every severity present, zero included).
    pub by_severity: BTreeMap<Severity, usize>,
    /// Findings folded by rule, worst first.
    pub groups: Vec<Group>,
    /// Conversion counts by rule.
    pub conversions_by_rule: BTreeMap<String, usize>,
    /// Every finding.
    pub findings: Vec<Finding>,
    /// Every conversion.
    pub conversions: Vec<Converted>,
    /// Scan diagnostics (unreadable files), carried through.
    pub diagnostics: Vec<Diagnostic>,
    /// Workload and configuration readiness (its findings are in `findings` too).
    #[serde(default)]
    pub readiness: readiness::Section,
    /// Who writes each cgroup (by path), with the evidence (the
    /// assessment's owner detection), left out when empty.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub owners: BTreeMap<String, crate::owners::Owner>,
}

impl Report {
    /// Whether a finding at or above the threshold exists that is not waived.
    pub fn fails(&self, on: FailOn) -> bool {
        on.fails(&self.findings)
    }
}

/// Fill `{file}`, `{value}`, `{path}`, `{detail}`, `{device_allow}`.
///
/// The placeholders are replaced one after the other (a value that contains
/// a later placeholder is filled too, as it always was); a placeholder the
/// text does not contain costs no copy, which matters for the tens of
/// thousands of findings of a big host.
pub(crate) fn fill(template: &str, vars: &[(&str, &str)]) -> String {
    let mut s = template.trim().to_string();
    let mut pattern = String::new();
    for (k, v) in vars {
        pattern.clear();
        pattern.push('{');
        pattern.push_str(k);
        pattern.push('}');
        if s.contains(pattern.as_str()) {
            s = s.replace(pattern.as_str(), v);
        }
    }
    s
}

fn finding_from(
    rule: &LoadedRule,
    subject: Subject,
    file: Option<&str>,
    value: Option<&str>,
    detail: Option<&str>,
    vars: &[(&str, &str)],
) -> Option<Finding> {
    let spec = rule.rule.finding.as_ref()?;
    let text = rule.text();
    Some(Finding {
        rule: text.id.clone(),
        severity: spec.severity,
        title: text.title.clone(),
        subject,
        file: file.map(str::to_string),
        value: value.map(str::to_string),
        detail: detail.map(str::to_string),
        why: fill(&spec.why, vars),
        remediation: match &text.remediation {
            Some(r) => r.clone(),
            None => fill(&spec.remediation, vars).into(),
        },
        kernel: rule.rule.kernel.clone(),
        source: text.source.clone(),
        waived: None,
    })
}

/// Extra placeholders a file's value provides (`devices.list` → DeviceAllow= lines).
fn value_vars(file: &str, value: &str) -> Vec<(&'static str, String)> {
    let mut v = Vec::new();
    if file == "devices.list"
        && let Ok(list) = crate::model::value::parse_device_list(value)
    {
        v.push(("detail", list.len().to_string()));
        let lines: Vec<String> = list.iter().map(|r| r.systemd_device_allow()).collect();
        v.push(("device_allow", lines.join("; ")));
    }
    v
}

/// The outcome of applying file rules to one cgroup.
#[derive(Debug, Default, Clone)]
pub struct CgroupOutcome {
    /// Conversions, deduplicated by (target, value).
    pub conversions: Vec<Conversion>,
    /// Findings.
    pub findings: Vec<Finding>,
}

impl CgroupOutcome {
    /// Whether the rules found nothing to convert and nothing to report.
    pub fn is_empty(&self) -> bool {
        self.conversions.is_empty() && self.findings.is_empty()
    }
}

/// The file rules that match one file name in one hierarchy, with their
/// captures (for `{1}` in targets), in load order: found once per
/// (hierarchy, file name) instead of matching every rule, regexes included,
/// against every setting of every cgroup.
#[derive(Debug)]
struct Matched<'r> {
    rules: Vec<(&'r LoadedRule, Vec<String>)>,
    /// The first of them that defines a default (the file's default).
    default: Option<&'r LoadedRule>,
}

/// [`Matched`] per hierarchy id and file name, filled as files are met.
struct RuleIndex<'r> {
    rules: &'r RuleSet,
    by_file: HashMap<(HierarchyId, String), Matched<'r>>,
}

impl<'r> RuleIndex<'r> {
    fn new(rules: &'r RuleSet) -> Self {
        RuleIndex {
            rules,
            by_file: HashMap::new(),
        }
    }

    fn matched(&mut self, hier: &crate::model::Hierarchy, file: &str) -> &Matched<'r> {
        // Two lookups on a miss (a few dozen distinct files per host) keep
        // the hit free of a key allocation.
        let key = (hier.id, file.to_string());
        if !self.by_file.contains_key(&key) {
            let rules: Vec<(&'r LoadedRule, Vec<String>)> = self
                .rules
                .rules()
                .iter()
                .filter_map(|r| r.file_match(file, &hier.controllers).map(|caps| (r, caps)))
                .collect();
            let default = rules
                .iter()
                .find(|(r, _)| r.rule.default.is_some())
                .map(|(r, _)| *r);
            self.by_file.insert(key.clone(), Matched { rules, default });
        }
        &self.by_file[&key]
    }
}

/// Apply the file rules to one v1 cgroup's settings.
///
/// Shared by the audit and the planner so both see the same conversions.
pub fn evaluate_cgroup(
    snap: &Snapshot,
    cg: petgraph::graph::NodeIndex,
    hier: &crate::model::Hierarchy,
    rules: &RuleSet,
) -> CgroupOutcome {
    let label = std::cell::OnceCell::new();
    let owners = std::cell::OnceCell::new();
    evaluate_with(snap, cg, hier, (&label, &owners), &mut RuleIndex::new(rules))
}

/// Whether a rule applies to a cgroup's value at all: scope, value
/// predicate and hierarchy name, and a value that is not the default (by
/// the rule's own default, or the file's: a predicate-only rule inherits it).
fn applies(
    rule: &LoadedRule,
    c: &crate::model::Cgroup,
    hier: &crate::model::Hierarchy,
    value: &str,
    parent_value: Option<&str>,
    file_default: bool,
) -> bool {
    let in_scope = match rule.scope() {
        Scope::Nonroot => !c.is_root(),
        Scope::Root => c.is_root(),
        Scope::Any => true,
    };
    if !in_scope || !rule.value_matches(value) || !rule.name_matches(hier.name.as_deref()) {
        return false;
    }
    let is_default = if rule.rule.default.is_some() {
        rule.is_default(value, parent_value)
    } else {
        file_default
    };
    !is_default
}

/// What an evaluation makes once, and only when a finding needs it: the
/// hierarchy's label, and who owns each cgroup (for a rule whose finding is
/// the owner's on a managed cgroup, `rebuilt_by_owner`).
type Lazy<'a> = (&'a std::cell::OnceCell<String>, &'a std::cell::OnceCell<OwnerMap>);

/// [`evaluate_cgroup`] with the rules looked up through `index`, the
/// hierarchy's label made once per hierarchy and the owners once per
/// snapshot, each only for a finding.
fn evaluate_with(
    snap: &Snapshot,
    cg: petgraph::graph::NodeIndex,
    hier: &crate::model::Hierarchy,
    (label, owners): Lazy<'_>,
    index: &mut RuleIndex<'_>,
) -> CgroupOutcome {
    let c = snap.cgroup(cg);
    let mut out = CgroupOutcome::default();
    if c.settings.is_empty() {
        return out;
    }
    let parent = snap.parent(cg).map(|p| snap.cgroup(p));
    for (file, value) in &c.settings {
        let pv = parent.and_then(|p| p.settings.get(file)).map(String::as_str);
        let matched = index.matched(hier, file);
        let file_default = matched.default.is_some_and(|r| r.is_default(value, pv));
        for (rule, caps) in &matched.rules {
            if !applies(rule, c, hier, value, pv, file_default) {
                continue;
            }
            let subject = || Subject::Cgroup {
                hierarchy: c.hierarchy,
                label: label.get_or_init(|| hier.label()).clone(),
                path: c.path.clone(),
            };
            if rule.rule.convert.is_some() {
                let converted = convert_setting(rule, file, caps, &c.settings)
                    .and_then(|conv| within_host(snap, cg, conv));
                match converted {
                    Ok(Some(conv)) => {
                        // Deduplicated by (target, value): a cgroup has a handful.
                        let known = out
                            .conversions
                            .iter()
                            .any(|k| k.target == conv.target && k.value == conv.value);
                        if !known {
                            out.conversions.push(conv);
                        }
                    }
                    Ok(None) => {}
                    Err(e) => out.findings.push(unconvertible(rule, subject(), file, value, &e)),
                }
            }
            if rule.rule.finding.is_some() {
                let extra = value_vars(file, value);
                let mut vars: Vec<(&str, &str)> = vec![
                    ("file", file),
                    ("value", value.as_str()),
                    ("path", c.path.as_str()),
                ];
                vars.extend(extra.iter().map(|(k, v)| (*k, v.as_str())));
                let made = finding_from(rule, subject(), Some(file), Some(value), None, &vars);
                let owned = rule.rule.rebuilt_by_owner.and_then(|what| {
                    let o = owners.get_or_init(|| crate::owners::detect(snap)).get(&c.path)?;
                    crate::owners::findings::rebuilt_by(what, o.manager)
                });
                out.findings.extend(match owned {
                    Some(kind) => made.map(|f| owners_finding(kind, f)),
                    None => made,
                });
            }
        }
    }
    out
}

/// The owner's finding in place of a rule's, on a cgroup whose manager
/// rebuilds what the rule is about (its file, value and source kept; the
/// rule's explanation quoted).
fn owners_finding(kind: &FindingKind, rule: Finding) -> Finding {
    Finding {
        rule: kind.id.into(),
        severity: kind.severity,
        title: kind.title.into(),
        why: format!("{} (was: {})", kind.title, rule.why),
        remediation: kind.remediation.into(),
        ..rule
    }
}

/// The error finding for a value a rule's conversion refuses.
fn unconvertible(
    rule: &LoadedRule,
    subject: Subject,
    file: &str,
    value: &str,
    e: &crate::rules::convert::ConvError,
) -> Finding {
    Finding {
        rule: rule.text().id.clone(),
        severity: Severity::Error,
        title: format!("{} cannot be converted", rule.rule.title).into(),
        subject,
        file: Some(file.to_string()),
        value: Some(value.to_string()),
        detail: None,
        why: format!("{file}={value}: {e}"),
        remediation: "Fix the v1 value, or set the v2 file by hand after the switch.".into(),
        kernel: rule.rule.kernel.clone(),
        source: rule.text().source.clone(),
        waived: None,
    }
}

/// A converted CPU or memory-node list must name only what the host has: the
/// hierarchy root's list (all online CPUs / nodes). v2 refuses anything else
/// (EINVAL), so such a value is an error, never a plan value.
fn within_host(
    snap: &Snapshot,
    cg: petgraph::graph::NodeIndex,
    conv: Option<Conversion>,
) -> Result<Option<Conversion>, crate::rules::convert::ConvError> {
    let Some(conv) = conv else { return Ok(None) };
    if !matches!(conv.target.as_str(), "cpuset.cpus" | "cpuset.mems") {
        return Ok(Some(conv));
    }
    let mut root = cg;
    while let Some(p) = snap.parent(root) {
        root = p;
    }
    let host = snap
        .cgroup(root)
        .settings
        .get(&conv.target)
        .and_then(|v| v.parse::<crate::model::value::IdList>().ok())
        .filter(|l| !l.0.is_empty());
    let (Some(host), Ok(want)) = (host, conv.value.parse::<crate::model::value::IdList>()) else {
        return Ok(Some(conv));
    };
    let inside = |id: u32| host.0.iter().any(|(a, b)| (*a..=*b).contains(&id));
    // Bounded: any id past the host's last one is already outside.
    let last = host
        .0
        .iter()
        .map(|(_, b)| *b)
        .max()
        .unwrap_or(0)
        .saturating_add(1);
    match want
        .0
        .iter()
        .flat_map(|(a, b)| *a..=(*b).min(last))
        .find(|id| !inside(*id))
    {
        Some(id) => Err(crate::rules::convert::ConvError::Invalid(format!(
            "{} {} names {id}, which the host does not have (it has {host})",
            conv.target, conv.value
        ))),
        None => Ok(Some(conv)),
    }
}

/// The file rules applied to every v1 cgroup of a snapshot, once.
///
/// Shared by the audit report and the planner: the rules are evaluated once
/// per snapshot, and both see the same conversions and findings.
#[derive(Debug, Default, Clone)]
pub struct Evaluation {
    /// Per v1 cgroup (graph node): its conversions and findings.
    pub outcomes: Outcomes,
}

/// The outcomes of the v1 cgroups that have a conversion or a finding, in
/// the report's order (per v1 hierarchy by id, then graph order), with an
/// index by graph node. A cgroup the rules say nothing about has no entry:
/// [`Outcomes::get`] answers `None`, as for a cgroup never evaluated.
#[derive(Debug, Default, Clone)]
pub struct Outcomes {
    list: Vec<(petgraph::graph::NodeIndex, CgroupOutcome)>,
    /// Per graph node index: its position in `list`, or `u32::MAX`.
    slot: Vec<u32>,
}

impl Outcomes {
    /// The outcome of a cgroup, if the rules found anything in it.
    pub fn get(&self, cg: &petgraph::graph::NodeIndex) -> Option<&CgroupOutcome> {
        let i = *self.slot.get(cg.index())?;
        self.list.get(i as usize).map(|(_, o)| o)
    }

    /// Every outcome with its cgroup, in the report's order.
    pub fn iter(&self) -> impl Iterator<Item = (petgraph::graph::NodeIndex, &CgroupOutcome)> {
        self.list.iter().map(|(c, o)| (*c, o))
    }

    /// How many cgroups have an outcome.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// Whether no cgroup has an outcome.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    fn push(&mut self, cg: petgraph::graph::NodeIndex, outcome: CgroupOutcome) {
        if self.slot.len() <= cg.index() {
            self.slot.resize(cg.index() + 1, u32::MAX);
        }
        self.slot[cg.index()] = u32::try_from(self.list.len()).expect("fewer than 4G cgroups");
        self.list.push((cg, outcome));
    }
}

/// Evaluate the file rules on every v1 cgroup.
///
/// One walk of the graph sorts the cgroups by hierarchy; the rules matching
/// each file name are found once per hierarchy ([`RuleIndex`]).
pub fn evaluate(snap: &Snapshot, rules: &RuleSet) -> Evaluation {
    let v1: Vec<&crate::model::Hierarchy> = snap
        .hierarchies()
        .into_iter()
        .filter(|(_, h)| h.version == Version::V1)
        .map(|(_, h)| h)
        .collect();
    let mut per: Vec<Vec<petgraph::graph::NodeIndex>> = vec![Vec::new(); v1.len()];
    for (ci, c) in snap.cgroups() {
        if let Some(i) = v1.iter().position(|h| h.id == c.hierarchy) {
            per[i].push(ci);
        }
    }
    let mut outcomes = Outcomes {
        list: Vec::new(),
        slot: vec![u32::MAX; snap.graph.node_count()],
    };
    let mut index = RuleIndex::new(rules);
    let owners = std::cell::OnceCell::new();
    for (h, cgroups) in v1.iter().zip(per) {
        let label = std::cell::OnceCell::new();
        for ci in cgroups {
            let o = evaluate_with(snap, ci, h, (&label, &owners), &mut index);
            if !o.is_empty() {
                outcomes.push(ci, o);
            }
        }
    }
    Evaluation { outcomes }
}

/// The report's findings from an evaluation already made, sorted worst
/// first, without the rest of the report: the planner needs only these, and
/// building them borrows the conversions instead of cloning them.
pub fn findings(snap: &Snapshot, rules: &RuleSet, eval: &Evaluation) -> Vec<Finding> {
    findings_and_readiness(snap, rules, eval).0
}

/// Per v1 cgroup with an outcome, in the report's order: the cgroup and
/// its outcome.
fn evaluated<'a>(
    snap: &'a Snapshot,
    eval: &'a Evaluation,
) -> impl Iterator<Item = (&'a crate::model::Cgroup, &'a CgroupOutcome)> + 'a {
    eval.outcomes.iter().map(|(ci, o)| (snap.cgroup(ci), o))
}

/// Every finding the rules, the host facts, the kernel check, readiness and
/// the scan's unreadable parts make, each at its final severity, sorted
/// worst first; and the readiness section. The planner's and the owners
/// pass's findings join these in the plan (`assess` builds the report from
/// all of them).
pub fn findings_and_readiness(
    snap: &Snapshot,
    rules: &RuleSet,
    eval: &Evaluation,
) -> (Vec<Finding>, readiness::Section) {
    let mut findings: Vec<Finding> = evaluated(snap, eval)
        .flat_map(|(_, o)| o.findings.iter().cloned())
        .collect();
    let mut observed = facts::compute(snap);
    let usage = kernel::usage(evaluated(snap, eval).map(|(_, o)| o.conversions.as_slice()));
    // The layout needs thread mode where a process's threads sit in
    // different cgroups of a threaded controller (the plan builds a threaded
    // subtree for each).
    let split_threads = observed
        .iter()
        .filter(|o| o.fact == Fact::SplitThreadsThreaded)
        .count();
    observed.extend(facts::kernel_facts(snap, &usage, split_threads));
    for fact in observed {
        for rule in rules.fact_rules(fact.fact) {
            if fact.fact == Fact::BootParam {
                let (Some(param), Some(p)) = (&rule.rule.matcher.param, &fact.param) else {
                    continue;
                };
                if param != p || !rule.value_matches(fact.value.as_deref().unwrap_or("")) {
                    continue;
                }
            }
            let vars = [
                ("detail", fact.detail.as_str()),
                ("value", fact.value.as_deref().unwrap_or("")),
            ];
            let detail = Some(fact.detail.as_str());
            if let Some(f) = finding_from(
                rule,
                fact.subject.clone(),
                None,
                fact.value.as_deref(),
                detail,
                &vars,
            ) {
                findings.push(f);
            }
        }
    }
    // Kernel support for what the conversions and findings need.
    let conversions = evaluated(snap, eval).flat_map(|(_, o)| o.conversions.iter());
    findings.extend(facts::kernel_too_old(snap, rules, conversions));
    let readiness = readiness::section(snap);
    findings.extend(readiness::audit_findings(&readiness));
    findings.extend(unreadable_findings(snap));
    sort_findings(&mut findings);
    (findings, readiness)
}

/// Sort findings worst first, then by rule and subject (the report's order).
pub fn sort_findings(findings: &mut [Finding]) {
    findings.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then_with(|| a.rule.cmp(&b.rule))
            .then_with(|| a.subject.cmp(&b.subject))
    });
}

/// Whether any setting converts (a verdict input: something changes).
pub fn converts(eval: &Evaluation) -> bool {
    eval.outcomes.iter().any(|(_, o)| !o.conversions.is_empty())
}

/// Whether part of the host could not be read (a verdict input).
pub fn incomplete(snap: &Snapshot) -> bool {
    snap.diagnostics.iter().any(Diagnostic::is_unreadable)
}

/// Every conversion of the evaluation with its cgroup, in the report's
/// order. Taken before the evaluation is freed (the assessment frees it
/// before the plan is finished).
pub fn conversions(snap: &Snapshot, eval: &Evaluation) -> Vec<Converted> {
    evaluated(snap, eval)
        .flat_map(|(c, o)| {
            o.conversions.iter().map(|conv| Converted {
                hierarchy: c.hierarchy,
                path: c.path.clone(),
                conversion: conv.clone(),
            })
        })
        .collect()
}

/// The audit report of a host's assessment: its conversions
/// ([`conversions`]) and every finding, already made and waived where a waiver
/// accepts one (`assess` gathers them); the verdict is [`Verdict::judge`]'s.
pub fn report(
    snap: &Snapshot,
    conversions: Vec<Converted>,
    mut findings: Vec<Finding>,
    readiness: readiness::Section,
) -> Report {
    let hierarchies = snap.hierarchies();
    sort_findings(&mut findings);
    let mut by_severity: BTreeMap<Severity, usize> = Severity::ALL.iter().map(|s| (*s, 0)).collect();
    for f in &findings {
        *by_severity.entry(f.severity).or_default() += 1;
    }
    let groups = group(&findings);
    let mut conversions_by_rule = BTreeMap::new();
    for c in &conversions {
        *conversions_by_rule.entry(c.conversion.rule.clone()).or_default() += 1;
    }
    let verdict = Verdict::judge(&findings, !conversions.is_empty(), incomplete(snap));
    Report {
        schema: AUDIT_SCHEMA.to_string(),
        host: ReportHost {
            hostname: snap.host.hostname.clone(),
            machine_id: snap.host.machine_id.clone(),
            kernel: snap.host.kernel.clone(),
            mode: snap.host.mode,
            v1_hierarchies: hierarchies
                .iter()
                .filter(|(_, h)| h.version == Version::V1)
                .count(),
            cgroups: snap.cgroups().count(),
            processes: snap.processes().len(),
            os: snap.host.os.clone(),
        },
        verdict,
        by_severity,
        groups,
        conversions_by_rule,
        findings,
        conversions,
        diagnostics: snap.diagnostics.clone(),
        readiness,
        owners: BTreeMap::new(),
    }
}

/// Fold findings by rule; keep the worst-first order.
pub(crate) fn group(findings: &[Finding]) -> Vec<Group> {
    const EXAMPLES: usize = 3;
    let mut out: Vec<Group> = Vec::new();
    let mut index: BTreeMap<&str, usize> = BTreeMap::new();
    for f in findings {
        let example = match (&f.subject, &f.value, &f.detail) {
            (Subject::Host, _, Some(d)) => d.clone(),
            (_, Some(v), _) if !v.contains('\n') && v.len() <= 40 => format!("{} = {v}", f.subject),
            _ => f.subject.to_string(),
        };
        match index.get(f.rule.as_str()) {
            Some(&i) => {
                let g = &mut out[i];
                g.count += 1;
                g.waived += usize::from(f.waived.is_some());
                if g.examples.len() < EXAMPLES {
                    g.examples.push(example);
                }
            }
            None => {
                index.insert(&f.rule, out.len());
                out.push(Group {
                    rule: f.rule.to_string(),
                    severity: f.severity,
                    title: f.title.to_string(),
                    count: 1,
                    examples: vec![example],
                    why: f.why.clone(),
                    remediation: f.remediation.to_string(),
                    waived: usize::from(f.waived.is_some()),
                });
            }
        }
    }
    out
}

/// Whether the host's kernel is at least `want` (`None`: unknown kernel → assume yes).
pub(crate) fn kernel_at_least(snap: &Snapshot, want: &str) -> bool {
    match (
        snap.host.kernel.as_deref().and_then(parse_kernel),
        parse_kernel(want),
    ) {
        (Some(have), Some(want)) => have >= want,
        _ => true,
    }
}
