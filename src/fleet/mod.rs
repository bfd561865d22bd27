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

use crate::audit::Verdict;
use crate::plan::Plan;
use crate::rules::{RuleSet, Severity};

pub use family::{Layout, audit_layout, normalize_name, plan_layout, snapshot_layout};
pub use ingest::{HostRecord, InputKind, Loaded, RuleHit, collect_inputs, read_host};
pub use render::{FleetFormat, render};

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
}

#[derive(Debug)]
struct RuleAgg {
    severity: Severity,
    title: String,
    hosts: Vec<u32>,
}

#[derive(Debug)]
struct FamilyAgg {
    id: String,
    input: InputKind,
    verdicts: VerdictCounts,
    members: Vec<u32>,
    source: PathBuf,
    plan: Option<PlanSummary>,
    layout: Vec<String>,
}

/// The streaming fold: per host it keeps a name and indices, never the input.
#[derive(Debug, Default)]
pub struct Aggregator {
    names: Vec<String>,
    seen: HashSet<String>,
    inputs: BTreeMap<InputKind, usize>,
    verdicts: VerdictCounts,
    dims: [BTreeMap<String, VerdictCounts>; 4],
    rules: BTreeMap<String, RuleAgg>,
    families: HashMap<u64, FamilyAgg>,
    unreadable: Vec<Unreadable>,
}

impl Aggregator {
    /// An empty fleet.
    pub fn new() -> Aggregator {
        Aggregator::default()
    }

    /// A unique display name: the hostname, or `hostname (file)` when two
    /// inputs carry the same hostname, or `hostname (full path)` when even
    /// the file names repeat (`a/web1.json`, `b/web1.json`).
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

    /// Fold one host in. Returns the family id when this host is the first
    /// of its family (the caller then supplies the representative plan).
    pub fn add(&mut self, rec: &HostRecord) -> Option<u64> {
        let idx = self.names.len() as u32;
        let name = self.unique_name(rec);
        self.names.push(name);
        *self.inputs.entry(rec.input).or_default() += 1;
        self.verdicts.add(rec.verdict);
        let unknown = || "unknown".to_string();
        let values = [
            rec.kernel.clone().unwrap_or_else(unknown),
            rec.distribution.clone().unwrap_or_else(unknown),
            rec.systemd.clone().unwrap_or_else(unknown),
            format!("{:?}", rec.mode).to_lowercase(),
        ];
        for (dim, value) in self.dims.iter_mut().zip(values) {
            dim.entry(value).or_default().add(rec.verdict);
        }
        for hit in &rec.rules {
            let r = self.rules.entry(hit.rule.clone()).or_insert_with(|| RuleAgg {
                severity: hit.severity,
                title: hit.title.clone(),
                hosts: Vec::new(),
            });
            r.severity = r.severity.max(hit.severity);
            r.hosts.push(idx);
        }
        let fp = rec.layout.fingerprint();
        let mut new = None;
        let fam = self.families.entry(fp).or_insert_with(|| {
            new = Some(fp);
            FamilyAgg {
                id: rec.layout.id(),
                input: rec.input,
                verdicts: VerdictCounts::default(),
                members: Vec::new(),
                source: rec.source.clone(),
                plan: None,
                layout: rec.layout.lines.iter().cloned().collect(),
            }
        });
        fam.verdicts.add(rec.verdict);
        fam.members.push(idx);
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

    fn names_of(&self, idx: &[u32]) -> Vec<String> {
        let mut v: Vec<String> = idx.iter().map(|&i| self.names[i as usize].clone()).collect();
        v.sort();
        v
    }

    /// The finished report; every list is sorted so output is deterministic.
    pub fn finish(self) -> FleetReport {
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
        let mut rules: Vec<RuleSummary> = self
            .rules
            .iter()
            .map(|(id, r)| RuleSummary {
                rule: id.clone(),
                severity: r.severity,
                title: r.title.clone(),
                hosts: r.hosts.len(),
                members: self.names_of(&r.hosts),
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
            .values()
            .map(|f| Family {
                id: f.id.clone(),
                input: f.input,
                hosts: f.members.len(),
                verdicts: f.verdicts,
                representative: Representative {
                    host: self.names[f.members[0] as usize].clone(),
                    source: f.source.clone(),
                },
                plan: f.plan.clone(),
                members: self.names_of(&f.members),
                layout: f.layout.clone(),
            })
            .collect();
        families.sort_by(|a, b| {
            b.hosts
                .cmp(&a.hosts)
                .then_with(|| a.representative.source.cmp(&b.representative.source))
        });
        let [kernel, distribution, systemd, mode] = &self.dims;
        FleetReport {
            schema: FLEET_SCHEMA.to_string(),
            hosts: self.names.len(),
            inputs: self.inputs.clone(),
            verdicts: self.verdicts,
            by_kernel: buckets(kernel),
            by_distribution: buckets(distribution),
            by_systemd: buckets(systemd),
            by_mode: buckets(mode),
            rules,
            blockers,
            families,
            unreadable: self.unreadable,
        }
    }
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
}

/// Read every input, one at a time, and build the report. A file that can't
/// be used is listed in `unreadable` (the caller decides the exit code); an
/// error writing a representative plan stops the run.
pub fn run(inputs: &[PathBuf], rules: &RuleSet, opts: &FleetOptions) -> Result<FleetReport, FleetError> {
    let mut agg = Aggregator::new();
    for path in inputs {
        let (rec, loaded) = match read_host(path, rules) {
            Ok(x) => x,
            Err(e) => {
                agg.unreadable(path, e.message());
                continue;
            }
        };
        let Some(fp) = agg.add(&rec) else {
            continue;
        };
        let Some(plan) = loaded.plan(rules) else {
            continue;
        };
        let mut summary = PlanSummary::of(&plan);
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

    #[test]
    fn repeated_hostnames_stay_distinct() {
        let mut agg = Aggregator::new();
        for src in ["a/web1.json", "b/web1.json", "c/other.json", "d/web1.json"] {
            agg.add(&rec("web1", src));
        }
        let r = agg.finish();
        assert_eq!(
            r.families[0].members,
            vec![
                "web1",
                "web1 (d/web1.json)",
                "web1 (other.json)",
                "web1 (web1.json)"
            ]
        );
    }
}
