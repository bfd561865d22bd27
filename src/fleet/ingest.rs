//! Reading fleet inputs: find the files, read one, and reduce it to a
//! [`HostRecord`] (the few facts the fleet report keeps per host).
//!
//! Each file is read, reduced and dropped before the next is opened, so
//! memory stays bounded by the largest single file plus the per-host record.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::FleetError;
use super::family::{Layout, audit_layout, plan_layout, snapshot_layout};
use crate::audit::{AUDIT_SCHEMA, Report, Verdict};
use crate::model::{Mode, SNAPSHOT_SCHEMA, Snapshot};
use crate::plan::{PLAN_SCHEMA, Plan};
use crate::rules::{RuleSet, Severity, Waivers};

/// What kind of document a host came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InputKind {
    /// A `cgmig scan` snapshot (audited and planned here).
    Snapshot,
    /// A `cgmig audit --format json` report.
    Audit,
    /// A `cgmig plan --format json` plan.
    Plan,
}

/// One rule that has findings on a host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleHit {
    /// Rule id.
    pub rule: String,
    /// Its severity.
    pub severity: Severity,
    /// Its title.
    pub title: String,
}

/// What the fleet report keeps of one host.
#[derive(Debug, Clone)]
pub struct HostRecord {
    /// Hostname, or the file stem when the document has none.
    pub name: String,
    /// The hostname the document carries (with `machine_id`, the host's identity).
    pub hostname: Option<String>,
    /// The machine id the document carries.
    pub machine_id: Option<String>,
    /// The file it came from.
    pub source: PathBuf,
    /// Snapshot, audit or plan.
    pub input: InputKind,
    /// Kernel release.
    pub kernel: Option<String>,
    /// `ID VERSION_ID`.
    pub distribution: Option<String>,
    /// systemd version.
    pub systemd: Option<String>,
    /// cgroup mode.
    pub mode: Mode,
    /// Readiness verdict ([`Verdict::judge`] over the document's findings,
    /// after the fleet's waivers).
    pub verdict: Verdict,
    /// Distinct rules with findings.
    pub rules: Vec<RuleHit>,
    /// Normalized layout.
    pub layout: Layout,
}

/// A document read from disk, with the plan it gives (kept only until the
/// caller has decided whether it represents a new family).
#[derive(Debug)]
pub enum Loaded {
    /// A snapshot: its assessment's plan.
    Snapshot(Box<Plan>),
    /// An audit report: no plan can be made from it.
    Audit,
    /// A plan.
    Plan(Box<Plan>),
}

impl Loaded {
    /// The plan that represents this host's family, when one can be had.
    pub fn plan(self) -> Option<Plan> {
        match self {
            Loaded::Snapshot(p) | Loaded::Plan(p) => Some(*p),
            Loaded::Audit => None,
        }
    }
}

/// Deepest directory level walked below an input directory. Report trees
/// are a few levels deep; a deeper one is a mistake or an attack (a
/// 2,000-level tree), and is listed as not walked instead of taking minutes.
pub const MAX_WALK_DEPTH: usize = 32;

/// What the input walk found: the files to read, and every entry that could
/// not be walked (with why), so the report lists it and the run exits 2.
#[derive(Debug, Default)]
pub struct Inputs {
    /// Files, sorted by path.
    pub files: Vec<PathBuf>,
    /// Paths that could not be listed or taken, with the reason.
    pub errors: Vec<(PathBuf, String)>,
}

/// Every input file: files as given, directories walked recursively for
/// `*.json`, `*.yaml`, `*.yml` (hidden files skipped), sorted by path so the
/// report does not depend on directory order.
///
/// Symbolic links are followed (report trees are often assembled from links),
/// but each directory and each file is taken once by its canonical path: a
/// link back to a parent must not loop, and a host linked from two places
/// must not count twice. A dangling link is kept so it is reported as
/// unreadable with its path instead of vanishing silently.
///
/// The walk is total: an input or entry that cannot be read, or a directory
/// deeper than [`MAX_WALK_DEPTH`], is one error in [`Inputs::errors`] and the
/// walk goes on; only "nothing at all was given" is an error of the run.
pub fn collect_inputs(args: &[PathBuf]) -> Result<Inputs, FleetError> {
    let mut walk = Walk::default();
    for a in args {
        match std::fs::metadata(a) {
            Ok(m) if m.is_dir() => walk.dir(a, 0),
            Ok(_) => walk.file(a),
            Err(e) => walk.errors.push((a.clone(), e.to_string())),
        }
    }
    let mut files = walk.files;
    files.sort();
    if files.is_empty() && walk.errors.is_empty() {
        return Err(FleetError::NoInputs);
    }
    Ok(Inputs {
        files,
        errors: walk.errors,
    })
}

/// The state of one input walk: what was found, and the canonical paths
/// already taken (the loop and duplicate guard).
#[derive(Default)]
struct Walk {
    files: Vec<PathBuf>,
    errors: Vec<(PathBuf, String)>,
    seen_dirs: HashSet<PathBuf>,
    seen_files: HashSet<PathBuf>,
}

impl Walk {
    fn file(&mut self, p: &Path) {
        // A path that cannot be canonicalized (dangling link) is its own key.
        let key = std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
        if self.seen_files.insert(key) {
            self.files.push(p.to_path_buf());
        }
    }

    fn dir(&mut self, dir: &Path, depth: usize) {
        if depth > MAX_WALK_DEPTH {
            self.errors.push((
                dir.to_path_buf(),
                format!("deeper than {MAX_WALK_DEPTH} directories below the input: not walked"),
            ));
            return;
        }
        let canon = match std::fs::canonicalize(dir) {
            Ok(c) => c,
            Err(e) => {
                self.errors.push((dir.to_path_buf(), e.to_string()));
                return;
            }
        };
        if !self.seen_dirs.insert(canon) {
            return;
        }
        let rd = match std::fs::read_dir(dir) {
            Ok(rd) => rd,
            Err(e) => {
                self.errors.push((dir.to_path_buf(), format!("cannot list: {e}")));
                return;
            }
        };
        let mut entries = Vec::new();
        for e in rd {
            match e {
                Ok(e) => entries.push(e),
                Err(e) => self.errors.push((dir.to_path_buf(), format!("cannot list: {e}"))),
            }
        }
        // Sorted so that of two links to one file the first path is kept.
        entries.sort_by_key(std::fs::DirEntry::file_name);
        for e in entries {
            let p = e.path();
            let name = e.file_name().to_string_lossy().to_string();
            if name.starts_with('.') {
                continue;
            }
            if p.is_dir() {
                self.dir(&p, depth + 1);
            } else if [".json", ".yaml", ".yml"].iter().any(|x| name.ends_with(x)) {
                self.file(&p);
            }
        }
    }
}

/// Largest input read (1 GiB). A snapshot of a 100,000-cgroup host is far
/// smaller; a bigger file is almost surely not a host report, and reading it
/// whole would break the bounded-memory promise of the fleet run.
pub const MAX_INPUT_BYTES: u64 = 1 << 30;

#[derive(Deserialize)]
struct Peek {
    schema: Option<String>,
}

/// Read one file and reduce it: a snapshot is assessed, an audit report or a
/// plan judged again ([`crate::assess`]), each with the fleet's waivers, so
/// the verdict is the one `audit` and `plan` give for the same host.
pub fn read_host(
    path: &Path,
    rules: &RuleSet,
    waivers: &Waivers,
) -> Result<(HostRecord, Loaded), FleetError> {
    let bad = |message: String| FleetError::Parse {
        path: path.to_path_buf(),
        message,
    };
    let io = |source| FleetError::Io {
        path: path.to_path_buf(),
        err: source,
    };
    // Issue 10: a regular file only (a FIFO must not block), bounded, and
    // nested no deeper than the loaders accept before any parser recurses.
    use crate::host::contain::{ReadError, read_user_file};
    let bytes = read_user_file(path, MAX_INPUT_BYTES as usize).map_err(|e| match e {
        ReadError::Io(e) => io(e),
        ReadError::NotRegular(kind) => bad(format!("it is a {kind}, not a regular file")),
        ReadError::TooLarge(n) => bad(format!("over the {n}-byte limit for one host report")),
    })?;
    let text = String::from_utf8(bytes)
        .map_err(|e| bad(format!("not UTF-8 text (byte {})", e.utf8_error().valid_up_to())))?;
    crate::model::validate::check_depth(&text).map_err(|e| bad(e.to_string()))?;
    let peek: Peek = crate::report::from_data(&text)
        .map_err(|e| bad(format!("not a cgmig snapshot, audit or plan document: {e}")))?;
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_default();
    match peek.schema.as_deref() {
        Some(SNAPSHOT_SCHEMA) => {
            // Validated like every other snapshot load: an inconsistent graph
            // (a cgroup cycle made the audit loop) is refused, not audited.
            let snap: Snapshot =
                crate::model::validate::parse_snapshot(&text).map_err(|e| bad(e.to_string()))?;
            let a = crate::assess::assess(&snap, rules, waivers);
            let mut rec = from_report(&a.report, path, &stem, InputKind::Snapshot);
            rec.layout = snapshot_layout(&snap, rules);
            Ok((rec, Loaded::Snapshot(Box::new(a.plan))))
        }
        Some(AUDIT_SCHEMA) => {
            let mut report: Report = crate::report::from_data(&text).map_err(|e| bad(e.to_string()))?;
            crate::assess::judge_report(&mut report, waivers);
            let rec = from_report(&report, path, &stem, InputKind::Audit);
            Ok((rec, Loaded::Audit))
        }
        Some(PLAN_SCHEMA) => {
            let mut plan: Plan = crate::report::from_data(&text).map_err(|e| bad(e.to_string()))?;
            // No command trusts a plan another wrote: an invalid one is not a
            // host. Checked as `apply` checks it (plan::document).
            let problems = crate::plan::document::check_loaded(&plan);
            if let Some(first) = problems.first() {
                return Err(bad(format!(
                    "invalid plan ({} problems; first at {}: {})",
                    problems.len(),
                    first.at,
                    first.message
                )));
            }
            crate::assess::judge_plan(&mut plan, waivers);
            Ok((from_plan(&plan, path, &stem), Loaded::Plan(Box::new(plan))))
        }
        Some(other) => Err(bad(format!(
            "schema {other:?} is not one fleet reads ({SNAPSHOT_SCHEMA}, {AUDIT_SCHEMA}, {PLAN_SCHEMA})"
        ))),
        None => Err(bad("no schema field: not a cgmig snapshot, audit or plan".into())),
    }
}

/// The distinct rules with findings that no waiver accepts, each at its worst severity.
fn distinct_rules<'a>(findings: impl Iterator<Item = &'a crate::rules::Finding>) -> Vec<RuleHit> {
    let mut v: Vec<RuleHit> = Vec::new();
    for f in findings.filter(|f| f.waived.is_none()) {
        match v.iter_mut().find(|h| h.rule == f.rule) {
            Some(h) => h.severity = h.severity.max(f.severity),
            None => v.push(RuleHit {
                rule: f.rule.to_string(),
                severity: f.severity,
                title: f.title.to_string(),
            }),
        }
    }
    v
}

fn from_report(r: &Report, path: &Path, stem: &str, input: InputKind) -> HostRecord {
    HostRecord {
        name: r.host.hostname.clone().unwrap_or_else(|| stem.to_string()),
        hostname: r.host.hostname.clone(),
        machine_id: r.host.machine_id.clone(),
        source: path.to_path_buf(),
        input,
        kernel: r.host.kernel.clone(),
        distribution: r.host.os.distribution.clone(),
        systemd: r.host.os.systemd.clone(),
        mode: r.host.mode,
        verdict: r.verdict,
        rules: distinct_rules(r.findings.iter()),
        layout: audit_layout(r),
    }
}

fn from_plan(p: &Plan, path: &Path, stem: &str) -> HostRecord {
    HostRecord {
        name: p.host.hostname.clone().unwrap_or_else(|| stem.to_string()),
        hostname: p.host.hostname.clone(),
        machine_id: p.host.machine_id.clone(),
        source: path.to_path_buf(),
        input: InputKind::Plan,
        kernel: p.host.kernel.clone(),
        distribution: None,
        systemd: None,
        mode: p.host.mode,
        verdict: p.verdict.unwrap_or(Verdict::Ready),
        rules: distinct_rules(p.findings.iter()),
        layout: plan_layout(p),
    }
}
