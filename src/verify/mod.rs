//! Verify: compare a host after the switch (or after a stage) with the
//! plan's predictions, owner by owner.
//!
//! The post-boot gate of a staged rollout. For each owner it checks what the
//! plan said that owner would build:
//!
//! * systemd: every unit's cgroup exists at its path and holds the values
//!   systemd was predicted to write (compared by meaning: `default 50` and
//!   `50` are one io weight, `max` is `max`); units whose v1 directives have no
//!   effect any more are reported with the drop-in that restores them;
//!   delegating units carry systemd's delegation mark;
//! * cgmig (custom and unowned nodes): the node exists with the plan's values;
//! * runtimes (kubelet, containerd, docker, libvirt, ...): each predicted
//!   node the runtime rebuilt holds the values the plan predicted it writes
//!   (compared by meaning); a node not rebuilt yet is an announced
//!   difference (workloads come back when the runtime restarts them); values
//!   and nodes the plan made no prediction for are reported as *unpredicted*
//!   (info), not as mismatches;
//! * processes: found again by command line (PIDs change across a reboot),
//!   each must sit at (or below) its planned place;
//! * extra cgroups that no owner's plan accounts for.
//!
//! Each difference is *announced* when the plan carried a finding or a
//! prediction of it (then a warning), otherwise an error. Pure: a function
//! of the plan and a snapshot of the v2 host.

mod render;

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::audit::{FailOn, Subject};
use crate::model::{Snapshot, Version};
use crate::owners::Manager;
use crate::owners::systemd::{self, SystemdContext, Written};
use crate::plan::Plan;
use crate::plan::UnitPrediction;
use crate::rules::Severity;

pub use render::{VerifyFormat, render, render_with};

/// Schema id of the verify report.
pub const VERIFY_SCHEMA: &str = "cgmig.verify/v1";

/// What kind of difference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CheckKind {
    /// A predicted value is as predicted.
    Match,
    /// A predicted node is absent.
    Missing,
    /// A node no owner's plan accounts for.
    Extra,
    /// A value differs by meaning.
    Value,
    /// A process is not where the plan puts it.
    Process,
    /// A unit directive that has no effect on v2 (and no drop-in replaced it).
    Dropped,
    /// A unit that must delegate does not.
    Delegation,
    /// A value (or node) a runtime built that the plan made no prediction
    /// for: reported, never a mismatch.
    Unpredicted,
}

/// One comparison.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    /// What kind.
    pub kind: CheckKind,
    /// Severity: info for matches, warning when announced, error otherwise.
    pub severity: Severity,
    /// The owner (`systemd`, `custom`, `cgmig`, `kubelet`, ...).
    pub owner: String,
    /// The unit, when systemd's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// The v2 path.
    pub path: String,
    /// The file, for value checks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// What the plan predicted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected: Option<String>,
    /// What the host has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actual: Option<String>,
    /// Whether the plan announced this difference.
    pub announced: bool,
    /// Explanation.
    pub message: String,
}

impl Check {
    /// A difference from the plan (not a match, not an unpredicted value).
    pub fn is_difference(&self) -> bool {
        !matches!(self.kind, CheckKind::Match | CheckKind::Unpredicted)
    }
}

/// The verify report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyReport {
    /// Always [`VERIFY_SCHEMA`].
    pub schema: String,
    /// The host verified.
    pub hostname: Option<String>,
    /// Checks that matched.
    pub matched: usize,
    /// Differences the plan announced.
    pub announced: usize,
    /// Differences the plan did not announce.
    pub unexpected: usize,
    /// Values and nodes runtimes built that the plan did not predict (info).
    #[serde(default)]
    pub unpredicted: usize,
    /// Every check, differences first.
    pub checks: Vec<Check>,
    /// The verdict of the plan's assessment (with the reader's waivers), so
    /// verify says what audit and plan said about the host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan_verdict: Option<crate::rules::Verdict>,
}

impl VerifyReport {
    /// Whether a check at or above the threshold exists.
    pub fn fails(&self, on: FailOn) -> bool {
        let min = match on {
            FailOn::Never => return false,
            FailOn::Warning => Severity::Warning,
            FailOn::Error => Severity::Error,
            FailOn::Blocker => Severity::Blocker,
        };
        self.checks.iter().any(|c| c.severity >= min)
    }
}

/// A v2 value normalised to its meaning (the plan's runtime predictions
/// compare values the same way, so it lives with the typed values).
pub use crate::model::value::v2_meaning as normalise;

/// The live v2 tree: path → settings.
fn v2_tree(snap: &Snapshot) -> BTreeMap<String, BTreeMap<String, String>> {
    snap.cgroups()
        .filter(|(_, c)| {
            snap.hierarchy(c.hierarchy)
                .is_some_and(|(_, h)| h.version == Version::V2)
        })
        .map(|(_, c)| (c.path.clone(), c.settings.clone()))
        .collect()
}

struct Ctx<'a> {
    plan: &'a Plan,
    /// The verified host's systemd facts: `N%` task limits scale with its
    /// own threads-max and pid_max, which differ between boots and machines.
    live_ctx: SystemdContext,
    tree: BTreeMap<String, BTreeMap<String, String>>,
    checks: Vec<Check>,
}

impl Ctx<'_> {
    /// A predicted value as this host resolves it (percentages of its task base).
    /// A prediction of `max` stays `max`: it says systemd does not apply the
    /// percentage at all (init.scope before 252), whatever this host's base.
    fn resolve(&self, w: &Written) -> String {
        let pct = w
            .from
            .split_once('=')
            .map(|(_, v)| v)
            .filter(|v| v.ends_with('%'));
        match (w.file.as_str(), pct) {
            ("pids.max", Some(v)) if self.live_ctx.tasks_base.is_some() && w.value.trim() != "max" => {
                systemd::tasks_max(v, self.live_ctx.tasks_base).unwrap_or_else(|| w.value.clone())
            }
            _ => w.value.clone(),
        }
    }

    /// Whether the plan carried an owners finding about this path.
    fn announced(&self, path: &str) -> bool {
        self.plan.findings.iter().any(|f| {
            f.rule.starts_with("owners.")
                && f.rule != crate::owners::findings::RUNTIME_REBUILDS.id
                && matches!(&f.subject, Subject::Cgroup { path: p, .. } if p == path)
        })
    }

    #[allow(
        clippy::too_many_arguments,
        reason = "one check's every field, named at each call site"
    )]
    fn push(
        &mut self,
        kind: CheckKind,
        owner: &str,
        unit: Option<&str>,
        path: &str,
        file: Option<&str>,
        expected: Option<String>,
        actual: Option<String>,
        announced: bool,
        message: String,
    ) {
        let severity = match (kind, announced) {
            (CheckKind::Match | CheckKind::Unpredicted, _) => Severity::Info,
            (_, true) => Severity::Warning,
            (_, false) => Severity::Error,
        };
        self.checks.push(Check {
            kind,
            severity,
            owner: owner.to_string(),
            unit: unit.map(str::to_string),
            path: path.to_string(),
            file: file.map(str::to_string),
            expected,
            actual,
            announced,
            message,
        });
    }

    /// Whether the plan's node at `path` exists and neither it nor any node
    /// under it holds a process or thread: the cgroup of a unit that ran
    /// nothing (a socket, a mount, a oneshot that exited).
    fn empty_in_plan(&self, path: &str) -> bool {
        let under = format!("{path}/");
        let mut found = false;
        for n in &self.plan.nodes {
            if n.path == path || n.path.starts_with(&under) {
                found |= n.path == path;
                if !n.processes.is_empty() || !n.threads.is_empty() {
                    return false;
                }
            }
        }
        found
    }

    fn unit(&mut self, u: &UnitPrediction) {
        let announced = !u.differences.is_empty() || self.announced(&u.path);
        let Some(live) = self.tree.get(&u.path).cloned() else {
            // systemd keeps an empty unit cgroup on a v1/hybrid boot (systemd
            // 247 did, for every exited oneshot, socket and mount) but
            // removes it on the unified hierarchy once it is empty: a
            // cgroup that held nothing is expected to be gone, and said.
            let empty = self.empty_in_plan(&u.path);
            let message = if empty {
                format!(
                    "{} has no cgroup at {}: it held no process on v1, and systemd removes an empty unit's cgroup on v2",
                    u.unit, u.path
                )
            } else {
                format!(
                    "{} has no cgroup at {} (unit inactive, renamed or gone)",
                    u.unit, u.path
                )
            };
            self.push(
                CheckKind::Missing,
                "systemd",
                Some(&u.unit),
                &u.path,
                None,
                None,
                None,
                announced || empty,
                message,
            );
            return;
        };
        for w in &u.files {
            let expected = normalise(&w.file, &self.resolve(w));
            match live.get(&w.file) {
                Some(actual) if normalise(&w.file, actual) == expected => self.push(
                    CheckKind::Match,
                    "systemd",
                    Some(&u.unit),
                    &u.path,
                    Some(&w.file),
                    Some(expected),
                    Some(normalise(&w.file, actual)),
                    false,
                    format!("systemd wrote {} from {} ({})", w.file, w.from, w.formula),
                ),
                // init.scope is realized before systemd enables pids at the
                // root: Debian 11's systemd 247 left its pids.max at "max" on
                // a unified boot (the fleet scenario's guest), Debian 12's 252
                // wrote DefaultTasksMax. Less limited than predicted, said.
                Some(actual)
                    if u.path == "/init.scope"
                        && w.file == "pids.max"
                        && w.from.starts_with("DefaultTasksMax=")
                        && actual.trim() == "max" =>
                {
                    self.push(
                        CheckKind::Value,
                        "systemd",
                        Some(&u.unit),
                        &u.path,
                        Some(&w.file),
                        Some(expected),
                        Some("max".into()),
                        true,
                        format!(
                            "predicted from {} ({}); this systemd left init.scope unlimited (systemd 247 does)",
                            w.from, w.formula
                        ),
                    );
                }
                actual => self.push(
                    CheckKind::Value,
                    "systemd",
                    Some(&u.unit),
                    &u.path,
                    Some(&w.file),
                    Some(expected),
                    Some(actual.map_or_else(|| "(absent)".into(), |a| normalise(&w.file, a))),
                    u.differences.iter().any(|d| d.contains(&w.file)),
                    format!(
                        "predicted from {} ({}); systemd built something else",
                        w.from, w.formula
                    ),
                ),
            }
        }
        for d in &u.dropped {
            self.push(
                CheckKind::Dropped,
                "systemd",
                Some(&u.unit),
                &u.path,
                None,
                d.replacement.clone(),
                None,
                true,
                format!("{}: {}", d.directive, d.why),
            );
        }
    }

    /// Delegating units carry systemd's mark (`trusted.delegate`/`user.delegate`)
    /// on their cgroup; without readable xattrs on the host this is skipped.
    fn delegations(&mut self, live: &Snapshot) {
        if live.owner_evidence.xattrs.is_empty() {
            return;
        }
        for d in &self.plan.owners.delegations {
            let marked = live
                .owner_evidence
                .xattrs
                .get(&d.path)
                .is_some_and(|x| x.keys().any(|k| k.ends_with(".delegate")));
            let expected = Some(format!("Delegate={}", d.controllers.join(" ")));
            if marked {
                let msg = format!("{} delegates its subtree", d.unit);
                self.push(
                    CheckKind::Match,
                    "systemd",
                    Some(&d.unit),
                    &d.path,
                    None,
                    expected,
                    Some("delegated".into()),
                    false,
                    msg,
                );
                continue;
            }
            let msg = format!(
                "{} carries no delegation mark; its manager's tree ({}) needs Delegate={}",
                d.unit,
                d.subtree.join(", "),
                d.controllers.join(" ")
            );
            self.push(
                CheckKind::Delegation,
                "systemd",
                Some(&d.unit),
                &d.path,
                None,
                expected,
                None,
                !d.delegates,
                msg,
            );
        }
    }

    /// cgmig's own nodes (custom and unowned): they exist with the plan's values.
    fn cgmig_nodes(&mut self) {
        let plan = self.plan;
        for n in plan.nodes.iter().filter(|n| n.path != "/") {
            let owner = plan.owners.owner_of(&n.path);
            if owner.is_some_and(|o| o.manager != Manager::Custom) {
                continue;
            }
            let label = owner.map_or_else(|| "cgmig".into(), |o| o.label());
            let announced = self.announced(&n.path)
                || owner.and_then(|o| o.unit.as_deref()).is_some_and(|u| {
                    plan.owners
                        .delegations
                        .iter()
                        .any(|d| d.unit == u && !d.delegates)
                })
                || crate::model::path::parent(&n.path).is_some_and(|pp| self.announced_above(pp));
            // A top-level tree moved under its suggested unit is where the plan said it may be.
            let at = self
                .suggested_place(&n.path)
                .filter(|alt| self.tree.contains_key(alt));
            let Some(live) = self
                .tree
                .get(&n.path)
                .or_else(|| at.as_ref().and_then(|a| self.tree.get(a)))
                .cloned()
            else {
                self.push(
                    CheckKind::Missing,
                    &label,
                    None,
                    &n.path,
                    None,
                    None,
                    None,
                    announced,
                    "the plan's node is absent (not applied yet, or its manager did not rebuild it)".into(),
                );
                continue;
            };
            for s in &n.settings {
                let (expected, actual, kind) = compare(&s.file, &s.value, live.get(&s.file));
                self.push(
                    kind,
                    &label,
                    None,
                    &n.path,
                    Some(&s.file),
                    Some(expected),
                    Some(actual.unwrap_or_else(|| "(absent)".into())),
                    announced,
                    format!("from {}:{} by {}", s.origin.label, s.origin.path, s.function),
                );
            }
        }
    }

    /// Runtime trees: predicted nodes and values against the live tree.
    fn runtimes(&mut self, live: &Snapshot) {
        let plan = self.plan;
        let live_owners = crate::owners::detect(live);
        for r in &plan.owners.runtimes {
            let owner = r.manager.as_str();
            let values: BTreeMap<&str, &crate::plan::RuntimeValues> =
                r.values.iter().map(|v| (v.path.as_str(), v)).collect();
            for path in &r.predicted {
                let container = values.get(path.as_str()).and_then(|v| v.container.as_ref());
                let Some(live_node) = self.tree.get(path).cloned() else {
                    let why = match container {
                        Some(c) => format!(
                            "{owner} has not rebuilt container {} here (yet): {}",
                            c.name.as_deref().unwrap_or(&c.id),
                            c.recreated
                        ),
                        None => format!(
                            "{owner} ({}) has not rebuilt this node (yet): it does when it restarts the workload",
                            r.driver
                        ),
                    };
                    self.push(CheckKind::Missing, owner, None, path, None, None, None, true, why);
                    continue;
                };
                let who = container.map_or_else(
                    || owner.to_string(),
                    |c| {
                        format!(
                            "{owner} container {} ({})",
                            c.name.as_deref().unwrap_or(&c.id),
                            c.runtime
                        )
                    },
                );
                let predicted = values.get(path.as_str()).map_or(&[][..], |v| v.files.as_slice());
                for w in predicted {
                    let (expected, actual, kind) = compare(&w.file, &w.value, live_node.get(&w.file));
                    self.push(
                        kind,
                        owner,
                        None,
                        path,
                        Some(&w.file),
                        Some(expected),
                        Some(actual.unwrap_or_else(|| "(absent)".into())),
                        false,
                        format!("{who} writes {} from {} ({})", w.file, w.from, w.formula),
                    );
                }
                if let Some(v) = values.get(path.as_str()).filter(|v| v.container.is_some()) {
                    self.lost_values(owner, &who, &live_node, v);
                }
                self.unpredicted_values(owner, path, &live_node, predicted);
            }
            // Nodes of this runtime on the live host that no prediction names
            // (one manager may have several plans, one per driver: docker's
            // cgroupfs containers and a second daemon's systemd ones).
            let known: BTreeSet<&str> = plan
                .owners
                .runtimes
                .iter()
                .filter(|o| o.manager == r.manager)
                .flat_map(|o| o.predicted.iter().map(String::as_str))
                .collect();
            let extra: Vec<String> = live_owners
                .iter()
                .filter(|(p, o)| {
                    o.manager == r.manager && !known.contains(p.as_str()) && self.tree.contains_key(*p)
                })
                .map(|(p, _)| p.clone())
                .collect();
            for path in extra {
                self.push(
                    CheckKind::Unpredicted,
                    owner,
                    None,
                    &path,
                    None,
                    None,
                    None,
                    false,
                    format!("{owner} built a node the plan did not predict (workloads come and go)"),
                );
            }
        }
    }

    /// The v1 limits of a container that its runtime does not write on v2
    /// (the plan's conversion of its v1 files, no prediction covering the
    /// file): the plan announced each as lost; a value still there is a match.
    fn lost_values(
        &mut self,
        owner: &str,
        who: &str,
        live: &BTreeMap<String, String>,
        v: &crate::plan::RuntimeValues,
    ) {
        let Some(n) = self.plan.nodes.iter().find(|n| n.path == v.from) else {
            return;
        };
        let family = |f: &str| {
            if f == "io.bfq.weight" {
                "io.weight".to_string()
            } else {
                f.to_string()
            }
        };
        for s in &n.settings {
            if v.files.iter().any(|w| family(&w.file) == family(&s.file)) {
                continue;
            }
            let (expected, actual, kind) = compare(&s.file, &s.value, live.get(&s.file));
            self.push(
                kind,
                owner,
                None,
                &v.path,
                Some(&s.file),
                Some(expected),
                Some(actual.unwrap_or_else(|| "(absent)".into())),
                true,
                format!(
                    "{who}: {} from {}:{} is not in its engine's record; the plan announced it lost on v2",
                    s.file, s.origin.label, s.origin.path
                ),
            );
        }
    }

    /// Non-default resource values on a runtime node that no prediction covers.
    fn unpredicted_values(
        &mut self,
        owner: &str,
        path: &str,
        live: &BTreeMap<String, String>,
        predicted: &[Written],
    ) {
        for (file, value) in live {
            let Some(default) = kernel_default(file) else {
                continue;
            };
            let v = normalise(file, value);
            if v == normalise(file, default) || predicted.iter().any(|w| w.file == *file) {
                continue;
            }
            self.push(
                CheckKind::Unpredicted,
                owner,
                None,
                path,
                Some(file),
                None,
                Some(v),
                false,
                format!("{owner} set {file}; the plan had no prediction for it"),
            );
        }
    }

    /// Where a node of a top-level custom tree lives once its manager runs in
    /// the unit the plan suggested (`/daemons/x` → `/system.slice/daemons-manager.service/daemons/x`).
    fn suggested_place(&self, path: &str) -> Option<String> {
        self.plan
            .owners
            .suggestions
            .iter()
            .filter(|s| !s.existing_unit)
            .find_map(|s| {
                let rest = path.strip_prefix(&s.path)?;
                (rest.is_empty() || rest.starts_with('/')).then(|| format!("{}{rest}", s.placed_at))
            })
    }

    fn announced_above(&self, path: &str) -> bool {
        let mut cur = Some(path);
        while let Some(p) = cur {
            if self.announced(p) {
                return true;
            }
            cur = crate::model::path::parent(p);
        }
        false
    }

    fn processes(&mut self, live: &Snapshot) {
        // Live processes by command line, with their v2 path.
        let mut by_cmd: BTreeMap<String, Vec<(crate::model::Pid, String)>> = BTreeMap::new();
        for (pi, p) in live.processes() {
            let Some((ti, _)) = live
                .threads(pi)
                .into_iter()
                .find(|(_, t)| t.tid == p.pid.main_thread())
            else {
                continue;
            };
            let path = live
                .memberships(ti)
                .map(|c| live.cgroup(c))
                .find(|c| {
                    live.hierarchy(c.hierarchy)
                        .is_some_and(|(_, h)| h.version == Version::V2)
                })
                .map(|c| c.path.clone());
            if let Some(path) = path {
                by_cmd.entry(p.cmdline.join(" ")).or_default().push((p.pid, path));
            }
        }
        let places = self.plan.owners.places.clone();
        // Planned paths per command line: one live process satisfies any of them.
        let mut planned: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for pl in &places {
            planned
                .entry(pl.cmdline.as_str())
                .or_default()
                .push(pl.path.as_str());
        }
        let under = |live: &str, path: &str| {
            live == path || live.starts_with(&format!("{}/", path.trim_end_matches('/')))
        };
        for pl in &places {
            let Some(found) = by_cmd.get(&pl.cmdline) else {
                continue;
            };
            if found.iter().any(|(_, p)| under(p, &pl.path)) {
                continue;
            }
            // Blame a live process that is at none of this command's planned places.
            let Some((pid, at)) = found
                .iter()
                .find(|(_, p)| !planned[pl.cmdline.as_str()].iter().any(|pp| under(p, pp)))
            else {
                continue;
            };
            // A runtime's processes are placed by the runtime, whose rebuild the plan announced.
            let announced = pl.owner.is_runtime() || self.announced_above(&pl.path);
            self.push(
                CheckKind::Process,
                pl.owner.as_str(),
                None,
                &pl.path,
                None,
                Some(pl.path.clone()),
                Some(at.clone()),
                announced,
                format!(
                    "{} ({}) runs in {at} (pid {pid}), not in {}",
                    pl.comm, pl.cmdline, pl.path
                ),
            );
        }
    }

    /// Live cgroups no owner's plan accounts for (systemd's own new units and
    /// runtimes' containers are expected to come and go).
    fn extras(&mut self, live: &Snapshot) {
        let plan = self.plan;
        let mut known: BTreeSet<&str> = plan.nodes.iter().map(|n| n.path.as_str()).collect();
        known.extend(plan.owners.units.iter().map(|u| u.path.as_str()));
        known.extend(
            plan.owners
                .runtimes
                .iter()
                .flat_map(|r| r.predicted.iter().map(String::as_str)),
        );
        known.extend(
            plan.owners
                .suggestions
                .iter()
                .flat_map(|s| s.predicted.iter().map(String::as_str)),
        );
        let live_owners = crate::owners::detect(live);
        let paths: Vec<String> = self.tree.keys().filter(|p| *p != "/").cloned().collect();
        for path in paths {
            if known.contains(path.as_str()) {
                continue;
            }
            let Some(o) = live_owners.get(&path) else { continue };
            if o.manager != Manager::Custom {
                continue;
            }
            // Only the top of an unknown subtree.
            if crate::model::path::parent(&path).is_some_and(|pp| {
                !known.contains(pp)
                    && live_owners
                        .get(pp)
                        .is_some_and(|po| po.manager == Manager::Custom)
            }) {
                continue;
            }
            // The plan named this top-level tree and the unit it belongs in.
            let suggested = plan.owners.suggestions.iter().any(|s| {
                path.strip_prefix(&s.path)
                    .is_some_and(|r| r.is_empty() || r.starts_with('/'))
            });
            self.push(
                CheckKind::Extra,
                &o.label(),
                o.unit.as_deref(),
                &path,
                None,
                None,
                Some(
                    o.evidence
                        .iter()
                        .map(|c| c.text.as_str())
                        .collect::<Vec<_>>()
                        .join("; "),
                ),
                suggested,
                if suggested {
                    "a custom manager's top-level tree the plan asked to move under a delegating unit".into()
                } else {
                    "a cgroup no owner's plan accounts for".into()
                },
            );
        }
    }
}

/// The kernel's default of a v2 resource file (`None` for files that are
/// not resource limits, which are never reported as unpredicted).
fn kernel_default(file: &str) -> Option<&'static str> {
    Some(match file {
        "cpu.weight" => "100",
        "cpu.max" => "max 100000",
        "memory.max" | "memory.high" | "memory.swap.max" | "pids.max" => "max",
        "memory.low" | "memory.min" => "0",
        "io.weight" => "default 100",
        "io.max" | "cpuset.cpus" | "cpuset.mems" => "",
        _ => return None,
    })
}

/// Compare a snapshot of the host (v2) with a plan.
pub fn verify(plan: &Plan, live: &Snapshot) -> VerifyReport {
    let mut ctx = Ctx {
        plan,
        live_ctx: systemd::context(live),
        tree: v2_tree(live),
        checks: Vec::new(),
    };
    for u in &plan.owners.units {
        ctx.unit(u);
    }
    ctx.delegations(live);
    ctx.cgmig_nodes();
    ctx.runtimes(live);
    ctx.processes(live);
    ctx.extras(live);
    let mut checks = ctx.checks;
    checks.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then_with(|| a.path.cmp(&b.path))
            .then_with(|| a.file.cmp(&b.file))
    });
    let count = |f: &dyn Fn(&Check) -> bool| checks.iter().filter(|c| f(c)).count();
    VerifyReport {
        schema: VERIFY_SCHEMA.into(),
        hostname: live.host.hostname.clone(),
        matched: count(&|c| c.kind == CheckKind::Match),
        announced: count(&|c| c.is_difference() && c.announced),
        unexpected: count(&|c| c.is_difference() && !c.announced),
        unpredicted: count(&|c| c.kind == CheckKind::Unpredicted),
        checks,
        plan_verdict: plan.verdict,
    }
}

/// One value checked by meaning: the expected and actual texts as the
/// report shows them (normalised for `file`), and whether they match.
fn compare(file: &str, expected: &str, live: Option<&String>) -> (String, Option<String>, CheckKind) {
    let expected = normalise(file, expected);
    let actual = live.map(|a| normalise(file, a));
    let kind = if actual.as_deref() == Some(expected.as_str()) {
        CheckKind::Match
    } else {
        CheckKind::Value
    };
    (expected, actual, kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_compare_by_meaning() {
        assert_eq!(normalise("io.weight", "default 50\n8:0 200"), "50");
        assert_eq!(normalise("io.weight", "default 50"), normalise("io.weight", "50"));
        assert_eq!(normalise("cpu.max", "max"), "max 100000");
        assert_eq!(normalise("memory.max", "268435456\n"), "268435456");
    }
}
