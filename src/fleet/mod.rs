//! `cgmig fleet`: one report for many hosts.
//!
//! Inputs are per-host snapshots, audit reports or plans (any mix). They are
//! read one at a time ([`ingest`]), reduced to a [`HostRecord`], folded into
//! an [`Aggregator`] and dropped, so 10,000 hosts aggregate in the memory of
//! one file plus a few words per host (names and indices; see
//! `benches/fleet.rs`). The aggregator counts verdicts, hosts per rule, per
//! kernel, distribution, systemd version and mode, and groups hosts into
//! layout families ([`family`]): hosts with the same normalized layout share
//! one representative plan, computed once, when the family is first seen.

mod family;
mod html;
mod ingest;
mod render;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::plan::Plan;
use crate::rules::Verdict;
use crate::rules::{RuleSet, Severity};

pub use family::{Layout, audit_layout, normalize_name, plan_layout, snapshot_layout};
pub use ingest::{HostRecord, InputKind, Inputs, Loaded, MAX_WALK_DEPTH, RuleHit, collect_inputs, read_host};
pub use render::{FleetFormat, render, render_with};

/// Schema id of the fleet report.
pub const FLEET_SCHEMA: &str = "cgmig.fleet/v1";

/// Why a fleet input could not be used.
#[derive(Debug, Error)]
pub enum FleetError {
    /// A file or directory could not be read.
    ///
    /// The OS error is part of the message and not a `source()`, so an
    /// error chain says it once.
    #[error("{}: {err}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The error.
        err: std::io::Error,
    },
    /// A file is not a snapshot, audit or plan this cgmig reads.
    #[error("{}: {message}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong (with line and column when the parser gives them).
        message: String,
    },
    /// No input file was found.
    #[error("no input files (give snapshot, audit or plan files, or directories holding *.json/*.yaml)")]
    NoInputs,
}

impl FleetError {
    /// The error without the path (for lists that show the path already).
    pub fn message(&self) -> String {
        match self {
            FleetError::Io { err: source, .. } => source.to_string(),
            FleetError::Parse { message, .. } => message.clone(),
            FleetError::NoInputs => self.to_string(),
        }
    }
}

/// Hosts per verdict.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct VerdictCounts {
    /// `ready`.
    pub ready: usize,
    /// `ready-with-changes`.
    pub ready_with_changes: usize,
    /// `blocked`.
    pub blocked: usize,
    /// `incomplete`: part of the host could not be read (audits since issue 10).
    #[serde(default)]
    pub incomplete: usize,
}

impl VerdictCounts {
    fn add(&mut self, v: Verdict) {
        match v {
            Verdict::Ready => self.ready += 1,
            Verdict::ReadyWithChanges => self.ready_with_changes += 1,
            Verdict::Blocked => self.blocked += 1,
            Verdict::Incomplete => self.incomplete += 1,
        }
    }

    /// All hosts counted.
    pub fn total(&self) -> usize {
        self.ready + self.ready_with_changes + self.blocked + self.incomplete
    }
}

/// Hosts sharing one value of a dimension (a kernel, a distribution, ...).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bucket {
    /// The value (`unknown` when the input did not say).
    pub value: String,
    /// Hosts with it.
    pub hosts: usize,
    /// Their verdicts.
    pub verdicts: VerdictCounts,
}

/// One rule across the fleet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleSummary {
    /// Rule id.
    pub rule: String,
    /// Severity (the worst seen).
    pub severity: Severity,
    /// Title.
    pub title: String,
    /// Hosts with at least one finding of it.
    pub hosts: usize,
    /// Those hosts, sorted.
    pub members: Vec<String>,
}

/// What the representative plan of a family holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanSummary {
    /// v2 nodes.
    pub nodes: usize,
    /// Actions.
    pub actions: usize,
    /// Converted settings.
    pub settings: usize,
    /// Crossing cgroups.
    pub conflicts: usize,
    /// Boot stages.
    pub stages: usize,
    /// Where it was written (`--plans DIR`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<PathBuf>,
}

impl PlanSummary {
    /// Summarize a plan.
    pub fn of(p: &Plan) -> PlanSummary {
        PlanSummary {
            nodes: p.nodes.len(),
            actions: p.actions.len(),
            settings: p.nodes.iter().map(|n| n.settings.len()).sum(),
            conflicts: p.conflicts.len(),
            stages: p.stages.len(),
            file: None,
        }
    }
}

/// The host that stands for a family.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Representative {
    /// Host name.
    pub host: String,
    /// Its input file.
    pub source: PathBuf,
}

/// One layout family.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Family {
    /// Stable id (12 hex digits of the layout fingerprint).
    pub id: String,
    /// What its members were read from.
    pub input: InputKind,
    /// How many hosts.
    pub hosts: usize,
    /// Their verdicts.
    pub verdicts: VerdictCounts,
    /// The first member (by input path).
    pub representative: Representative,
    /// The representative's plan (none for audit inputs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<PlanSummary>,
    /// Every member, sorted.
    pub members: Vec<String>,
    /// The normalized layout, one fact per line.
    pub layout: Vec<String>,
}

/// An input that could not be used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unreadable {
    /// The file.
    pub path: PathBuf,
    /// Why.
    pub error: String,
}

/// The fleet report (`cgmig.fleet/v1`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FleetReport {
    /// Always [`FLEET_SCHEMA`].
    pub schema: String,
    /// Hosts aggregated.
    pub hosts: usize,
    /// Hosts per input kind.
    pub inputs: BTreeMap<InputKind, usize>,
    /// Hosts per verdict.
    pub verdicts: VerdictCounts,
    /// Per kernel release, most hosts first.
    pub by_kernel: Vec<Bucket>,
    /// Per distribution.
    pub by_distribution: Vec<Bucket>,
    /// Per systemd version.
    pub by_systemd: Vec<Bucket>,
    /// Per cgroup mode.
    pub by_mode: Vec<Bucket>,
    /// Every rule with findings, worst first, then most hosts.
    pub rules: Vec<RuleSummary>,
    /// Blocker rules ranked by hosts affected.
    pub blockers: Vec<RuleSummary>,
    /// Layout families, largest first.
    pub families: Vec<Family>,
    /// Inputs that could not be read.
    pub unreadable: Vec<Unreadable>,
    /// Hosts fed more than once (a snapshot, an audit and a plan of one host)
    /// whose inputs disagree: each counts once, at its worst verdict, and is
    /// listed here with every input's verdict.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conflicts: Vec<HostConflict>,
    /// Inputs with no identity at all (no hostname, no machine id): each
    /// counts as a host of its own.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub anonymous: Vec<PathBuf>,
}

/// A host whose inputs disagree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostConflict {
    /// The host.
    pub host: String,
    /// Each input: its kind, file and verdict.
    pub inputs: Vec<HostInput>,
    /// What differs (`verdict`, `rules`).
    pub differs: Vec<String>,
}

/// One input of a host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostInput {
    /// Snapshot, audit or plan.
    pub input: InputKind,
    /// The file.
    pub path: PathBuf,
    /// Its verdict.
    pub verdict: Verdict,
}

#[derive(Debug)]
struct FamilyAgg {
    id: String,
    input: InputKind,
    source: PathBuf,
    plan: Option<PlanSummary>,
    layout: Vec<String>,
}

/// One host, however many documents it came in: its identity, the facts of
/// its first input, its worst verdict and every input.
#[derive(Debug)]
struct HostEntry {
    name: String,
    hostname: Option<String>,
    machine_id: Option<String>,
    verdict: Verdict,
    /// kernel, distribution, systemd, mode.
    values: [String; 4],
    rules: Vec<RuleHit>,
    family: u64,
    inputs: Vec<HostInput>,
    differs: Vec<String>,
}

/// The fold: per host it keeps its identity, verdict, dimension values and
/// rule ids, never the input document. Hosts are counted by identity
/// (hostname plus machine id where known), not by file.
#[derive(Debug, Default)]
pub struct Aggregator {
    hosts: Vec<HostEntry>,
    seen: HashSet<String>,
    by_hostname: HashMap<String, Vec<usize>>,
    by_machine: HashMap<String, usize>,
    inputs: BTreeMap<InputKind, usize>,
    families: HashMap<u64, FamilyAgg>,
    unreadable: Vec<Unreadable>,
    anonymous: Vec<PathBuf>,
}

impl Aggregator {
    /// An empty fleet.
    pub fn new() -> Aggregator {
        Aggregator::default()
    }

    /// A unique display name: the hostname, or `hostname (file)` when two
    /// distinct hosts carry the same hostname (different machine ids), or
    /// `hostname (full path)` when even the file names repeat.
    fn unique_name(&mut self, rec: &HostRecord) -> String {
        let mut name = rec.name.clone();
        if self.seen.contains(&name) {
            let file = rec.source.file_name().unwrap_or(rec.source.as_os_str());
            name = format!("{} ({})", rec.name, file.to_string_lossy());
        }
        if self.seen.contains(&name) {
            name = format!("{} ({})", rec.name, rec.source.display());
        }
        self.seen.insert(name.clone());
        name
    }

    /// The host already seen that this record describes: the same machine
    /// id (hostnames agreeing or one unknown), else the same hostname with
    /// machine ids that do not differ.
    fn same_host(&self, rec: &HostRecord) -> Option<usize> {
        let compatible = |a: &Option<String>, b: &Option<String>| match (a, b) {
            (Some(x), Some(y)) => x == y,
            _ => true,
        };
        if let Some(id) = &rec.machine_id
            && let Some(&i) = self.by_machine.get(id)
            && compatible(&self.hosts[i].hostname, &rec.hostname)
        {
            return Some(i);
        }
        let name = rec.hostname.as_ref()?;
        self.by_hostname
            .get(name)?
            .iter()
            .copied()
            .find(|&i| compatible(&self.hosts[i].machine_id, &rec.machine_id))
    }

    /// Fold one input in. A host seen before (by identity) is not counted
    /// again: its input is recorded, and a disagreement with the earlier
    /// inputs is reported. Returns the family id when this host is the first
    /// of its family (the caller then supplies the representative plan).
    pub fn add(&mut self, rec: &HostRecord) -> Option<u64> {
        *self.inputs.entry(rec.input).or_default() += 1;
        let input = HostInput {
            input: rec.input,
            path: rec.source.clone(),
            verdict: rec.verdict,
        };
        if let Some(i) = self.same_host(rec) {
            let h = &mut self.hosts[i];
            if rec.verdict != h.verdict && !h.differs.iter().any(|d| d == "verdict") {
                h.differs.push("verdict".into());
            }
            if !same_rules(&rec.rules, &h.rules) && !h.differs.iter().any(|d| d == "rules") {
                h.differs.push("rules".into());
            }
            h.verdict = h.verdict.max(rec.verdict);
            for hit in &rec.rules {
                match h.rules.iter_mut().find(|r| r.rule == hit.rule) {
                    Some(r) => r.severity = r.severity.max(hit.severity),
                    None => h.rules.push(hit.clone()),
                }
            }
            if h.machine_id.is_none() && rec.machine_id.is_some() {
                h.machine_id.clone_from(&rec.machine_id);
                if let Some(m) = &rec.machine_id {
                    self.by_machine.insert(m.clone(), i);
                }
            }
            h.inputs.push(input);
            return None;
        }
        if rec.hostname.is_none() && rec.machine_id.is_none() {
            self.anonymous.push(rec.source.clone());
        }
        let idx = self.hosts.len();
        let name = self.unique_name(rec);
        if let Some(h) = &rec.hostname {
            self.by_hostname.entry(h.clone()).or_default().push(idx);
        }
        if let Some(m) = &rec.machine_id {
            self.by_machine.insert(m.clone(), idx);
        }
        let unknown = || "unknown".to_string();
        let fp = rec.layout.fingerprint();
        self.hosts.push(HostEntry {
            name,
            hostname: rec.hostname.clone(),
            machine_id: rec.machine_id.clone(),
            verdict: rec.verdict,
            values: [
                rec.kernel.clone().unwrap_or_else(unknown),
                rec.distribution.clone().unwrap_or_else(unknown),
                rec.systemd.clone().unwrap_or_else(unknown),
                format!("{:?}", rec.mode).to_lowercase(),
            ],
            rules: rec.rules.clone(),
            family: fp,
            inputs: vec![input],
            differs: Vec::new(),
        });
        let mut new = None;
        self.families.entry(fp).or_insert_with(|| {
            new = Some(fp);
            FamilyAgg {
                id: rec.layout.id(),
                input: rec.input,
                source: rec.source.clone(),
                plan: None,
                layout: rec.layout.lines.iter().cloned().collect(),
            }
        });
        new
    }

    /// Attach the representative plan's summary to a family.
    pub fn set_plan(&mut self, family: u64, plan: PlanSummary) {
        if let Some(f) = self.families.get_mut(&family) {
            f.plan = Some(plan);
        }
    }

    /// The id users see for a family fingerprint.
    pub fn family_id(&self, family: u64) -> Option<&str> {
        self.families.get(&family).map(|f| f.id.as_str())
    }

    /// Record an input that could not be used.
    pub fn unreadable(&mut self, path: &Path, error: String) {
        self.unreadable.push(Unreadable {
            path: path.to_path_buf(),
            error,
        });
    }

    fn names_of(&self, idx: &[usize]) -> Vec<String> {
        let mut v: Vec<String> = idx.iter().map(|&i| self.hosts[i].name.clone()).collect();
        v.sort();
        v
    }

    /// Per-host facts folded into counts: verdicts, per dimension, per
    /// rule, per family (each host once, however many inputs it had).
    fn tally(&self) -> Tally<'_> {
        let mut t = Tally::default();
        for (i, h) in self.hosts.iter().enumerate() {
            t.verdicts.add(h.verdict);
            for (dim, value) in t.dims.iter_mut().zip(&h.values) {
                dim.entry(value.clone()).or_default().add(h.verdict);
            }
            for hit in &h.rules {
                let r = t
                    .rules
                    .entry(hit.rule.as_str())
                    .or_insert_with(|| (hit.severity, hit.title.as_str(), Vec::new()));
                r.0 = r.0.max(hit.severity);
                r.2.push(i);
            }
            t.families.entry(h.family).or_default().push(i);
        }
        t
    }

    /// Hosts whose inputs disagree, by name.
    fn conflicts(&self) -> Vec<HostConflict> {
        let mut out: Vec<HostConflict> = self
            .hosts
            .iter()
            .filter(|h| !h.differs.is_empty())
            .map(|h| HostConflict {
                host: h.name.clone(),
                inputs: h.inputs.clone(),
                differs: h.differs.clone(),
            })
            .collect();
        out.sort_by(|a, b| a.host.cmp(&b.host));
        out
    }

    /// The finished report; every list is sorted so output is deterministic.
    pub fn finish(self) -> FleetReport {
        let Tally {
            verdicts,
            dims,
            rules: rule_hosts,
            families: family_hosts,
        } = self.tally();
        let buckets = |m: &BTreeMap<String, VerdictCounts>| {
            let mut v: Vec<Bucket> = m
                .iter()
                .map(|(value, c)| Bucket {
                    value: value.clone(),
                    hosts: c.total(),
                    verdicts: *c,
                })
                .collect();
            v.sort_by(|a, b| {
                b.hosts
                    .cmp(&a.hosts)
                    .then_with(|| natural_cmp(&a.value, &b.value))
            });
            v
        };
        let mut rules: Vec<RuleSummary> = rule_hosts
            .iter()
            .map(|(id, (severity, title, hosts))| RuleSummary {
                rule: (*id).to_string(),
                severity: *severity,
                title: (*title).to_string(),
                hosts: hosts.len(),
                members: self.names_of(hosts),
            })
            .collect();
        rules.sort_by(|a, b| {
            (b.severity, b.hosts)
                .cmp(&(a.severity, a.hosts))
                .then_with(|| a.rule.cmp(&b.rule))
        });
        let mut blockers: Vec<RuleSummary> = rules
            .iter()
            .filter(|r| r.severity == Severity::Blocker)
            .cloned()
            .collect();
        blockers.sort_by(|a, b| b.hosts.cmp(&a.hosts).then_with(|| a.rule.cmp(&b.rule)));
        let mut families: Vec<Family> = self
            .families
            .iter()
            .map(|(fp, f)| {
                let members = family_hosts.get(fp).map_or(&[][..], Vec::as_slice);
                let mut fv = VerdictCounts::default();
                for &i in members {
                    fv.add(self.hosts[i].verdict);
                }
                Family {
                    id: f.id.clone(),
                    input: f.input,
                    hosts: members.len(),
                    verdicts: fv,
                    representative: Representative {
                        host: members
                            .first()
                            .map(|&i| self.hosts[i].name.clone())
                            .unwrap_or_default(),
                        source: f.source.clone(),
                    },
                    plan: f.plan.clone(),
                    members: self.names_of(members),
                    layout: f.layout.clone(),
                }
            })
            .collect();
        families.sort_by(|a, b| {
            b.hosts
                .cmp(&a.hosts)
                .then_with(|| a.representative.source.cmp(&b.representative.source))
        });
        let [kernel, distribution, systemd, mode] = &dims;
        FleetReport {
            schema: FLEET_SCHEMA.to_string(),
            hosts: self.hosts.len(),
            inputs: self.inputs.clone(),
            verdicts,
            by_kernel: buckets(kernel),
            by_distribution: buckets(distribution),
            by_systemd: buckets(systemd),
            by_mode: buckets(mode),
            rules,
            blockers,
            families,
            unreadable: self.unreadable.clone(),
            conflicts: self.conflicts(),
            anonymous: self.anonymous.clone(),
        }
    }
}

/// The counts of a fleet, made once all inputs are in.
#[derive(Debug, Default)]
struct Tally<'a> {
    verdicts: VerdictCounts,
    /// kernel, distribution, systemd, mode: value → verdicts.
    dims: [BTreeMap<String, VerdictCounts>; 4],
    /// rule → (worst severity, title, hosts).
    rules: BTreeMap<&'a str, (Severity, &'a str, Vec<usize>)>,
    /// family fingerprint → hosts.
    families: HashMap<u64, Vec<usize>>,
}

/// Whether two inputs of one host name the same rules at the same severities.
fn same_rules(a: &[RuleHit], b: &[RuleHit]) -> bool {
    let key = |v: &[RuleHit]| {
        let mut k: Vec<(String, Severity)> = v.iter().map(|h| (h.rule.clone(), h.severity)).collect();
        k.sort();
        k
    };
    key(a) == key(b)
}

/// Order kernel and systemd versions as people read them: runs of digits
/// compare as numbers (`5.4.0` before `5.14.0`, `252` after `99`).
fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    fn parts(s: &str) -> Vec<(u8, u64, &str)> {
        let mut out = Vec::new();
        let mut rest = s;
        while let Some(c) = rest.chars().next() {
            let digit = c.is_ascii_digit();
            let end = rest
                .find(|ch: char| ch.is_ascii_digit() != digit)
                .unwrap_or(rest.len());
            let (tok, tail) = rest.split_at(end);
            // A number too long for u64 falls back to its text.
            let num = if digit { tok.parse().unwrap_or(u64::MAX) } else { 0 };
            out.push((u8::from(!digit), num, tok));
            rest = tail;
        }
        out
    }
    parts(a).cmp(&parts(b)).then_with(|| a.cmp(b))
}

/// Options of a fleet run.
#[derive(Debug, Default, Clone)]
pub struct FleetOptions {
    /// Write each family's representative plan to `DIR/family-ID.json`.
    pub plans_dir: Option<PathBuf>,
    /// Waivers: every input is judged with them.
    pub waivers: crate::rules::Waivers,
}

/// Read every input, one at a time, and build the report. A file that can't
/// be used is listed in `unreadable` (the caller decides the exit code); an
/// error writing a representative plan stops the run.
pub fn run(inputs: &Inputs, rules: &RuleSet, opts: &FleetOptions) -> Result<FleetReport, FleetError> {
    let mut agg = Aggregator::new();
    for (path, why) in &inputs.errors {
        agg.unreadable(path, why.clone());
    }
    for path in &inputs.files {
        let (rec, loaded) = match read_host(path, rules, &opts.waivers) {
            Ok(x) => x,
            Err(e) => {
                agg.unreadable(path, e.message());
                continue;
            }
        };
        let Some(fp) = agg.add(&rec) else {
            continue;
        };
        let Some(plan) = loaded.plan() else {
            continue;
        };
        let mut summary = PlanSummary::of(&plan);
        // Only a plan that validates is written for review and apply.
        let problems = crate::plan::validate(&plan);
        if let Some(first) = problems.first() {
            agg.unreadable(
                path,
                format!(
                    "its plan is invalid ({} problems; first at {}: {}): not written",
                    problems.len(),
                    first.at,
                    first.message
                ),
            );
            continue;
        }
        if let Some(dir) = &opts.plans_dir {
            let id = agg.family_id(fp).unwrap_or_default();
            let file = dir.join(format!("family-{id}.json"));
            let io = |source| FleetError::Io {
                path: file.clone(),
                err: source,
            };
            // An empty file where a reviewer expects the family's plan would
            // be worse than stopping: a serialization failure is an error.
            let text = crate::report::to_data(&plan, crate::report::DataFormat::Json)
                .map_err(|e| io(std::io::Error::other(e)))?;
            crate::report::write_output(Some(&file), &text).map_err(io)?;
            summary.file = Some(file);
        }
        agg.set_plan(fp, summary);
    }
    Ok(agg.finish())
}

/// How many member names a human format prints before "… N more".
const SHOWN: usize = 5;

/// `a, b, c … (+7 more)`: a cell of member names, in every renderer
/// (`render`, `html`).
fn some_of(names: &[String]) -> String {
    use std::fmt::Write as _;
    let mut s = names.iter().take(SHOWN).cloned().collect::<Vec<_>>().join(", ");
    if names.len() > SHOWN {
        let _ = write!(s, " … (+{} more)", names.len() - SHOWN);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Mode;

    fn rec(name: &str, source: &str) -> HostRecord {
        HostRecord {
            name: name.into(),
            hostname: Some(name.into()),
            machine_id: None,
            source: source.into(),
            input: InputKind::Audit,
            kernel: None,
            distribution: None,
            systemd: None,
            mode: Mode::Legacy,
            verdict: Verdict::Ready,
            rules: Vec::new(),
            layout: Layout {
                lines: ["mode legacy".to_string()].into(),
            },
        }
    }

    #[test]
    fn versions_sort_numerically() {
        let mut v = vec![
            "5.14.0-362.el9",
            "5.4.0-1045-aws",
            "unknown",
            "4.19.0-27",
            "5.4.226",
        ];
        v.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(
            v,
            vec![
                "4.19.0-27",
                "5.4.0-1045-aws",
                "5.4.226",
                "5.14.0-362.el9",
                "unknown"
            ]
        );
    }

    /// Two hosts with one hostname but different machine ids stay two
    /// (told apart by file, then by path); documents of one hostname and no
    /// conflicting machine id are one host.
    #[test]
    fn hosts_are_counted_by_identity() {
        let mut agg = Aggregator::new();
        let ids = ["a", "b", "c", "d"].map(|c| c.repeat(32));
        for (src, id) in ["a/web1.json", "b/web1.json", "c/other.json", "d/web1.json"]
            .iter()
            .zip(&ids)
        {
            let mut r = rec("web1", src);
            r.machine_id = Some(id.clone());
            agg.add(&r);
        }
        agg.add(&rec("db1", "e/db1.json"));
        agg.add(&rec("db1", "f/db1.plan.json"));
        let r = agg.finish();
        assert_eq!(r.hosts, 5);
        assert_eq!(
            r.families[0].members,
            vec![
                "db1",
                "web1",
                "web1 (d/web1.json)",
                "web1 (other.json)",
                "web1 (web1.json)"
            ]
        );
        assert!(r.conflicts.is_empty() && r.anonymous.is_empty());
    }
}
