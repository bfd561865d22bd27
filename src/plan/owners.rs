//! The planner's owners pass: an owner on every node, and each part planned the
//! way its owner rebuilds it on v2.
//!
//! * systemd's units get no actions from cgmig; the plan carries what systemd
//!   will write (its formulas, its defaults, this version's handling of v1
//!   directives) and a drop-in where that differs from v1 behaviour;
//! * another manager's cgroups inside a unit need the unit to delegate: the
//!   plan names the unit, the controllers and the drop-in;
//! * a custom manager's top-level cgroups on a systemd host get a suggested
//!   unit to live under;
//! * runtime trees (kubelet, docker, containerd, CRI-O, podman, libvirt, LXC)
//!   get the settings that must change and the tree the runtime will build.
//!
//! Only cgroups no other manager rebuilds keep their actions
//! ([`strip_actions`], re-applied whenever the planner re-derives actions).

use std::collections::{BTreeMap, BTreeSet};

use super::lookup::Lookup;
use super::model::{
    Action, Delegation, InstallFile, OwnerRefusal, Plan, PlanNode, PlanOwners, ProcessPlace, Suggestion,
    UnitPrediction,
};
use crate::model::Snapshot;
use crate::owners::detect::{self, Manager, Owner, OwnerMap};
use crate::owners::findings::{self as fk, Kind};
use crate::owners::paths::PathIndex;
use crate::owners::systemd::{self, Dropped, SystemdContext, Written};
use crate::rules::Finding;

/// Whether cgmig may write into a path of this plan (create, configure,
/// move processes into it). Paths owned by systemd or a runtime are refused;
/// a delegated unit's own directory is accepted (its `cgroup.subtree_control`
/// and `cgroup.procs` belong to the delegatee, for whom cgmig acts).
pub fn writable_by_cgmig(plan: &Plan, path: &str) -> Result<(), OwnerRefusal> {
    let root_owner = Owner {
        manager: Manager::Systemd,
        unit: Some("-.slice".into()),
        detail: None,
        evidence: Vec::new(),
    };
    let o = match plan.owners.owner_of(path) {
        Some(o) => o,
        None if path == "/" && plan.owners.systemd.is_some() => &root_owner,
        None => return Ok(()),
    };
    let refuse = |why: String| {
        Err(OwnerRefusal {
            path: path.to_string(),
            owner: o.label(),
            why,
        })
    };
    if path == "/" && plan.owners.systemd.is_some() {
        return refuse("systemd manages the root of the tree on a systemd host".into());
    }
    // A plan node its owner does not build at this path (kept creates of
    // strip_actions): nobody but cgmig makes it.
    if plan.owners.nodes.contains_key(path) && !plan.owners.built_by_owner(path) {
        return Ok(());
    }
    match o.manager {
        Manager::Custom => Ok(()),
        Manager::Systemd => {
            let delegated = plan.owners.delegations.iter().any(|d| d.path == path);
            if delegated {
                Ok(())
            } else {
                refuse(
                    "systemd writes it from the unit's configuration; change the unit (drop-in) instead"
                        .into(),
                )
            }
        }
        m => refuse(format!(
            "{m} rebuilds it after the switch; change the runtime's settings instead"
        )),
    }
}

/// Remove the actions that would write into another owner's cgroups.
///
/// A kept action needs its cgroup's ancestors to exist when `apply` runs.
/// An ancestor whose owner builds it at that path (systemd's unit, a
/// runtime's tree) is there before cgmig acts; any other ancestor keeps its
/// create even when it carries an owner's label, else the kept child's mkdir
/// is ENOENT (issue 9: `/app/app@pids/app.slice`, merged from `name=systemd`
/// `/app.slice`, lost its create while `db` and `web` below it kept theirs).
pub fn strip_actions(p: &mut Plan) {
    if p.owners.nodes.is_empty() {
        return;
    }
    let keep = actions_to_keep(p);
    let mut k = keep.into_iter();
    p.actions.retain(|_| k.next().unwrap_or(false));
}

/// For each action of the plan, whether it stays: its cgroup is cgmig's
/// (or it enables a delegated unit's controllers), or it creates an
/// ancestor that a kept action needs and no owner builds.
fn actions_to_keep<'a>(p: &'a Plan) -> Vec<bool> {
    let owners = &p.owners;
    let look = Lookup::of_owners(&owners.nodes);
    let delegated: foldhash::HashSet<&str> = owners.delegations.iter().map(|d| d.path.as_str()).collect();
    // On a systemd host the root's controllers and processes are systemd's too.
    let systemd_root = owners.systemd.is_some();
    // A cgroup's actions are adjacent (create, files, moves): its owner is
    // looked up once per run.
    let mut last: Option<(&str, Option<Manager>)> = None;
    let keep = |a: &'a Action| {
        let path = a.path();
        if path == "/" {
            return !systemd_root;
        }
        let manager = match last {
            Some((p, m)) if p == path => m,
            _ => {
                let m = look.owner_or_ancestor(path).map(|o| o.manager);
                last = Some((path, m));
                m
            }
        };
        match manager {
            None | Some(Manager::Custom) => true,
            Some(Manager::Systemd) => {
                delegated.contains(path) && matches!(a, Action::EnableControllers { .. })
            }
            Some(_) => false,
        }
    };
    let kept: Vec<bool> = p.actions.iter().map(keep).collect();
    let needed = needed_ancestors(p, &kept, &look);
    p.actions
        .iter()
        .zip(kept)
        .map(|(a, k)| k || matches!(a, Action::Create { path } if needed.contains(path.as_str())))
        .collect()
}

/// Every proper ancestor (but `/`) of a kept action's cgroup that no owner
/// builds at its path: its create must stay.
fn needed_ancestors<'a>(p: &'a Plan, kept: &[bool], look: &Lookup<'_>) -> foldhash::HashSet<&'a str> {
    let mut needed: foldhash::HashSet<&str> = foldhash::HashSet::default();
    let mut last = None;
    for (a, _) in p.actions.iter().zip(kept).filter(|(_, k)| **k) {
        if last == Some(a.path()) {
            continue; // its ancestors are in already
        }
        last = Some(a.path());
        let mut cur = crate::model::path::parent(a.path());
        while let Some(pp) = cur.filter(|pp| *pp != "/") {
            if !needed.insert(pp) {
                break;
            }
            cur = crate::model::path::parent(pp);
        }
    }
    let systemd_host = p.owners.systemd.is_some();
    needed.retain(|pp| {
        !look
            .owner_or_ancestor(pp)
            .is_some_and(|o| detect::builds_at(pp, o, systemd_host))
    });
    needed
}

/// The owner of each plan node, parents first.
fn node_owners(p: &Plan, map: &OwnerMap) -> BTreeMap<String, Owner> {
    let by_path: foldhash::HashMap<&str, &Owner> = map.iter().map(|(k, o)| (k.as_str(), o)).collect();
    let mut out: Vec<(String, Owner)> = Vec::with_capacity(p.nodes.len());
    // Index in `out` of each path given an owner so far (parents come first).
    let mut at: foldhash::HashMap<&str, usize> = foldhash::HashMap::default();
    for n in p.nodes.iter().filter(|n| n.path != "/") {
        let parent = n.parent_path().and_then(|pp| at.get(pp)).map(|i| &out[*i].1);
        let Some(owner) = node_owner(n, &by_path, parent) else {
            continue;
        };
        at.insert(&n.path, out.len());
        out.push((n.path.clone(), owner));
    }
    // Sorted once and built in bulk (the last of equal paths wins, as inserts would).
    out.into_iter().collect()
}

/// One node's owner: its origins' (systemd's first) or its own path's;
/// for a node the planner derived (a leaf), from its parent: custom inside
/// a unit, or the parent's own.
fn node_owner(
    n: &PlanNode,
    by_path: &foldhash::HashMap<&str, &Owner>,
    parent: Option<&Owner>,
) -> Option<Owner> {
    let from_origin = n
        .origins
        .iter()
        .filter_map(|o| by_path.get(o.path.as_str()).copied())
        .min_by_key(|o| o.manager != Manager::Systemd)
        .or_else(|| by_path.get(n.path.as_str()).copied());
    let mut owner = match (from_origin, parent) {
        (Some(o), _) => o.clone(),
        (None, Some(po)) if po.manager == Manager::Systemd && !is_slice(po) => Owner {
            manager: Manager::Custom,
            unit: po.unit.clone(),
            detail: Some(format!("inside {}", po.unit.as_deref().unwrap_or("?"))),
            evidence: vec![format!(
                "{}: derived node below {}",
                n.note.map_or("node", super::model::NodeNote::text),
                po.label()
            )],
        },
        (None, Some(po)) => po.clone(),
        (None, None) => return None,
    };
    // A custom tree the planner placed inside a unit needs that unit.
    if owner.manager == Manager::Custom
        && let Some(po) = parent
        && let Some(u) = enclosing_unit(po)
        && owner.unit.as_deref() != Some(u)
    {
        owner.unit = Some(u.to_string());
        owner.detail = Some(format!("inside {u}"));
        owner.evidence.push(format!("placed below {u} by the plan"));
    }
    Some(owner)
}

fn is_slice(o: &Owner) -> bool {
    o.unit.as_deref().is_some_and(|u| u.ends_with(".slice"))
}

/// Whether a path's last component is `name` (`/system.slice/cron.service`
/// and `cron.service`), without building `/name`.
fn is_named(path: &str, name: &str) -> bool {
    path.strip_suffix(name).is_some_and(|rest| rest.ends_with('/'))
}

/// The service or scope an owner lies in (custom) or is (systemd).
fn enclosing_unit(o: &Owner) -> Option<&str> {
    o.unit.as_deref().filter(|u| !u.ends_with(".slice"))
}

/// Annotate a plan with owners, predictions and per-owner plans, and remove
/// the actions that belong to another owner.
///
/// Steps: group the snapshot's cgroups by path (once, for detection and
/// the units' v1 values), detect the owners, give each plan node its owner,
/// then the per-owner parts (systemd's units, delegations, suggestions,
/// runtimes, process places), and strip the other owners' actions.
pub fn annotate(p: &mut Plan, snap: &Snapshot) {
    let systemd_host = detect::is_systemd_host(snap);
    let paths = PathIndex::collect(snap);
    let map = detect::detect_in(snap, &paths, systemd_host);
    if map.is_empty() {
        return;
    }
    let nodes = node_owners(p, &map);
    let ctx = systemd::context(snap);
    let mut findings = Vec::new();
    let look = Lookup::new(p, &nodes);
    let units = if systemd_host {
        predict_units(p, snap, &look, &paths, &ctx, &mut findings)
    } else {
        Vec::new()
    };
    let delegations = delegations(p, snap, &look, &mut findings);
    let suggestions = if systemd_host {
        suggestions(p, &look, &map, &delegations, &mut findings)
    } else {
        Vec::new()
    };
    let runtimes = super::runtimes::plan_runtimes(&nodes, &look, systemd_host, &mut findings);
    let places = places(p, snap, &look);
    drop(look);
    p.findings.extend(findings);
    p.owners = PlanOwners {
        systemd: systemd_host.then_some(ctx),
        nodes,
        units,
        delegations,
        suggestions,
        runtimes,
        places,
    };
    strip_actions(p);
}

/// Default v1 values systemd leaves alone (a value other than these on a
/// unit's cgroup was written by someone).
fn is_v1_default(file: &str, value: &str) -> bool {
    match file {
        "cpu.shares" => value == "1024",
        "cpu.cfs_quota_us" => value == "-1",
        "cpu.cfs_period_us" => value == "100000",
        "memory.limit_in_bytes" => value.parse::<u64>().is_ok_and(|v| v >= 1 << 62),
        "blkio.weight" => value == "500" || value == "100",
        "pids.max" => value == "max",
        _ => true,
    }
}

/// The v1 values of the files systemd manages, at a node's origins (the
/// cgroups at each origin's path, in the origin's hierarchy).
fn observed_v1<'s>(n: &PlanNode, snap: &'s Snapshot, paths: &PathIndex<'_>) -> BTreeMap<&'s str, &'s str> {
    let mut out = BTreeMap::new();
    for o in &n.origins {
        let Some(ci) = paths.find(&o.path).and_then(|i| {
            paths
                .cgroups(i)
                .find(|ci| snap.cgroup(*ci).hierarchy == o.hierarchy)
        }) else {
            continue;
        };
        for (f, v) in &snap.cgroup(ci).settings {
            if matches!(
                f.as_str(),
                "cpu.shares"
                    | "cpu.cfs_quota_us"
                    | "cpu.cfs_period_us"
                    | "memory.limit_in_bytes"
                    | "blkio.weight"
                    | "pids.max"
            ) {
                out.insert(f.as_str(), v.as_str());
            }
        }
    }
    out
}

/// Drop-in file name of the v2 directives that keep a unit's v1 behaviour.
const DROPIN_V2: &str = "50-cgmig-v2.conf";
/// Drop-in file name of a delegation (apart from [`DROPIN_V2`], so both can be installed).
const DROPIN_DELEGATE: &str = "50-cgmig-delegate.conf";

fn unit_dropin(unit: &str, name: &str, lines: &[String], why: &str) -> Option<InstallFile> {
    if lines.is_empty() {
        return None;
    }
    let mut text = format!("# Written by cgmig: {why}.\n[{}]\n", systemd::section_of(unit));
    let mut seen = BTreeSet::new();
    for l in lines {
        if seen.insert(l.split('=').next().unwrap_or(l).to_string()) {
            text.push_str(l);
            text.push('\n');
        }
    }
    Some(InstallFile {
        path: format!("/etc/systemd/system/{unit}.d/{name}"),
        text,
    })
}

/// What systemd builds for each of its units in the plan, with the
/// drop-in that keeps each unit's v1 behaviour.
fn predict_units(
    p: &Plan,
    snap: &Snapshot,
    look: &Lookup<'_>,
    paths: &PathIndex<'_>,
    ctx: &SystemdContext,
    findings: &mut Vec<Finding>,
) -> Vec<UnitPrediction> {
    let empty = BTreeMap::new();
    let mut out = Vec::new();
    for n in &p.nodes {
        let Some(unit) = unit_at(n, look) else { continue };
        let d = snap
            .owner_evidence
            .units
            .get(unit)
            .map_or(&empty, |c| &c.directives);
        let at = UnitAt { n, unit, d };
        out.push(predict_unit(&at, snap, paths, ctx, findings));
    }
    out
}

/// The unit whose own cgroup a plan node is (a systemd unit or slice at
/// its own name, not something inside one).
fn unit_at<'a>(n: &PlanNode, look: &Lookup<'a>) -> Option<&'a str> {
    let o = look.owner(&n.path)?;
    let unit = o.unit.as_deref()?;
    (o.manager == Manager::Systemd && o.detail.is_none() && is_named(&n.path, unit)).then_some(unit)
}

/// A unit's plan node and its effective directives.
struct UnitAt<'a> {
    n: &'a PlanNode,
    unit: &'a str,
    d: &'a BTreeMap<String, String>,
}

/// Where a unit's v2 cgroup will differ from its v1 one, and the drop-in
/// lines that restore v1 behaviour.
#[derive(Default)]
struct Differences {
    /// In words, for the plan.
    said: Vec<String>,
    /// v2 directive lines for the drop-in.
    lines: Vec<String>,
}

/// One unit's prediction. Steps: the files systemd writes and the
/// directives it drops ([`systemd::predict_v2`]), then the differences
/// from v1 (dropped, still translated, set outside the unit), then the
/// drop-in.
fn predict_unit(
    at: &UnitAt<'_>,
    snap: &Snapshot,
    paths: &PathIndex<'_>,
    ctx: &SystemdContext,
    findings: &mut Vec<Finding>,
) -> UnitPrediction {
    let (files, dropped) = systemd::predict_v2(at.unit, at.d, ctx);
    let mut diff = Differences::default();
    dropped_directives(at, &dropped, &mut diff, findings);
    translated_directives(at, &files, ctx, &mut diff, findings);
    set_outside_unit(at, &files, snap, paths, ctx, &mut diff, findings);
    let dropin = unit_dropin(
        at.unit,
        DROPIN_V2,
        &diff.lines,
        "v2 directives that keep this unit's v1 behaviour",
    );
    UnitPrediction {
        unit: at.unit.to_string(),
        path: systemd_path(at.n),
        files,
        dropped,
        differences: diff.said,
        dropin,
    }
}

/// Directives this systemd ignores on v2: each an error finding, and its
/// replacement a drop-in line.
fn dropped_directives(
    at: &UnitAt<'_>,
    dropped: &[Dropped],
    diff: &mut Differences,
    findings: &mut Vec<Finding>,
) {
    for x in dropped {
        diff.said.push(format!("{}: {}", x.directive, x.why));
        diff.lines.extend(x.replacement.clone());
        findings.push(fk::DIRECTIVE_DROPPED.at(&at.n.path, format!("{}: {}", at.unit, x.why)));
    }
}

/// Deprecated directives this systemd still translates: what they become,
/// and their v2 form as a drop-in line (later versions ignore them).
fn translated_directives(
    at: &UnitAt<'_>,
    files: &[Written],
    ctx: &SystemdContext,
    diff: &mut Differences,
    findings: &mut Vec<Finding>,
) {
    for t in systemd::translated(at.d, ctx) {
        let repl = t.replacement.as_deref().unwrap_or("(none)");
        let into = files.iter().find(|w| w.from == t.directive).map_or_else(
            || "its v2 form".into(),
            |w| format!("{} {} ({})", w.file, w.value, w.formula),
        );
        let warns = if t.warns {
            ", with a deprecation warning in the journal"
        } else {
            ""
        };
        findings.push(fk::DIRECTIVE_DEPRECATED.at(
            &at.n.path,
            format!(
                "{}: {} is translated to {into}{warns}; the v2 form is {repl}",
                at.unit, t.directive
            ),
        ));
        diff.lines.extend(t.replacement);
    }
}

/// v1 values on the unit's cgroups that no directive explains: systemd
/// will not rebuild them, so the drop-in sets them.
fn set_outside_unit(
    at: &UnitAt<'_>,
    files: &[Written],
    snap: &Snapshot,
    paths: &PathIndex<'_>,
    ctx: &SystemdContext,
    diff: &mut Differences,
    findings: &mut Vec<Finding>,
) {
    let unit = at.unit;
    let expected = systemd::expected_v1_from(at.d, files);
    for (f, v) in observed_v1(at.n, snap, paths) {
        if is_v1_default(f, v) || expected.get(f).map(String::as_str) == Some(v) {
            continue;
        }
        if f == "pids.max" && ctx.tasks_base.is_none() && !at.d.contains_key("TasksMax") {
            continue; // systemd's default; its base is unknown here
        }
        let Some(dir) = systemd::directive_for_v1(f, v) else {
            continue;
        };
        let why = if snap.owner_evidence.units.contains_key(unit) {
            format!(
                "{f}={v} on {unit} is not from its unit configuration (systemd would write {}); on v2 systemd builds the cgroup from the unit and the value is lost",
                expected.get(f).map_or("nothing", String::as_str)
            )
        } else {
            format!(
                "{f}={v} on {unit}: no unit file was read for it (not captured, or a transient unit), so nothing shows systemd set it; systemd builds the cgroup from the unit on v2, and a value set by hand is lost"
            )
        };
        findings.push(fk::SET_OUTSIDE_UNIT.at(&at.n.path, format!("{why}; the drop-in sets {dir}")));
        diff.said.push(why);
        diff.lines.push(dir);
    }
}

fn delegations(p: &Plan, snap: &Snapshot, look: &Lookup<'_>, findings: &mut Vec<Finding>) -> Vec<Delegation> {
    // unit -> (unit path, manager nodes)
    let mut by_unit: BTreeMap<String, (Option<&PlanNode>, Vec<&PlanNode>)> = BTreeMap::new();
    for n in &p.nodes {
        let Some(o) = look.owner(&n.path) else { continue };
        match (o.manager, enclosing_unit(o)) {
            (Manager::Systemd, Some(u)) if o.detail.is_none() && is_named(&n.path, u) => {
                by_unit.entry(u.to_string()).or_default().0 = Some(n);
            }
            (Manager::Custom, Some(u)) => by_unit.entry(u.to_string()).or_default().1.push(n),
            _ => {}
        }
    }
    let mut out = Vec::new();
    for (unit, (unit_node, inner)) in by_unit {
        let (Some(un), false) = (unit_node, inner.is_empty()) else {
            continue;
        };
        let path = un.path.clone();
        let mut controllers: BTreeSet<String> = BTreeSet::new();
        for n in &inner {
            controllers.extend(
                n.settings
                    .iter()
                    .filter_map(|s| s.controller().map(str::to_string)),
            );
            controllers.extend(n.subtree_control.iter().cloned());
        }
        controllers.extend(un.subtree_control.iter().cloned());
        let delegates = snap
            .owner_evidence
            .units
            .get(&unit)
            .is_some_and(|c| c.delegates());
        let controllers: Vec<String> = controllers.into_iter().collect();
        let subtree: Vec<String> = inner.iter().map(|n| n.path.clone()).collect();
        let line = if controllers.is_empty() {
            "Delegate=yes".to_string()
        } else {
            format!("Delegate={}", controllers.join(" "))
        };
        let dropin = (!delegates)
            .then(|| {
                unit_dropin(
                    &unit,
                    DROPIN_DELEGATE,
                    std::slice::from_ref(&line),
                    "delegate this unit's subtree to the manager running in it",
                )
            })
            .flatten();
        let why = format!(
            "{} cgroups of another manager ({}) lie inside {unit}; on v2 they need {line}",
            subtree.len(),
            subtree.iter().take(3).cloned().collect::<Vec<_>>().join(", ")
        );
        let kind: Kind = if delegates {
            fk::DELEGATED
        } else {
            fk::DELEGATE_NEEDED
        };
        findings.push(kind.at(&path, why));
        out.push(Delegation {
            unit,
            path,
            delegates,
            controllers,
            subtree,
            dropin,
        });
    }
    out
}

/// Controllers a subtree of the plan uses (settings and enabled controllers).
fn subtree_controllers(p: &Plan, top: &str) -> Vec<String> {
    let prefix = format!("{}/", top.trim_end_matches('/'));
    let mut out: BTreeSet<String> = BTreeSet::new();
    for m in p
        .nodes
        .iter()
        .filter(|m| m.path == top || m.path.starts_with(&prefix))
    {
        out.extend(
            m.settings
                .iter()
                .filter_map(|s| s.controller().map(str::to_string)),
        );
        out.extend(m.subtree_control.iter().cloned());
    }
    out.into_iter().collect()
}

/// Plan paths at or below `top`.
fn subtree_paths(p: &Plan, top: &str) -> Vec<String> {
    let prefix = format!("{}/", top.trim_end_matches('/'));
    p.nodes
        .iter()
        .filter(|m| m.path == top || m.path.starts_with(&prefix))
        .map(|m| m.path.clone())
        .collect()
}

/// The v1 top-level path a node comes from when the detection put it beside
/// systemd's tree (`/borg-batch`), even if the plan placed it in a unit.
fn top_level_origin<'a>(n: &'a PlanNode, map: &OwnerMap) -> Option<&'a str> {
    n.origins.iter().map(|o| o.path.as_str()).find(|o| {
        crate::model::path::parent(o) == Some("/")
            && map
                .get(*o)
                .is_some_and(|ow| ow.manager == Manager::Custom && ow.unit.is_none())
    })
}

/// Top-level custom trees on a systemd host, and the unit each gets: a new
/// delegating service when nothing shows who runs the manager, or the unit
/// the plan placed the tree in (its processes run there) when it did.
fn suggestions(
    p: &Plan,
    look: &Lookup<'_>,
    map: &OwnerMap,
    delegations: &[Delegation],
    findings: &mut Vec<Finding>,
) -> Vec<Suggestion> {
    let mut out = Vec::new();
    for n in &p.nodes {
        let Some(tree) = CustomTree::at(p, n, look, map) else {
            continue;
        };
        let s = match tree.moved {
            Some(ref moved) => existing_unit_suggestion(p, &tree, moved, delegations, findings),
            None => Some(new_unit_suggestion(p, &tree, findings)),
        };
        out.extend(s);
    }
    out
}

/// The top of a custom manager's tree that needs a unit: at the top level
/// (beside systemd's tree), or moved into a unit by the plan from there.
struct CustomTree<'a> {
    /// The plan node at its top.
    node: &'a PlanNode,
    /// The processes that populate it (from the owner's evidence).
    processes: Vec<String>,
    /// The controllers its subtree uses.
    controllers: Vec<String>,
    /// Where the plan placed it, when it did.
    moved: Option<Moved>,
}

/// A top-level v1 tree the plan placed inside a unit (its processes run there).
struct Moved {
    /// The unit the tree now lies in.
    unit: String,
    /// The tree's v1 top-level path.
    v1: String,
}

impl<'a> CustomTree<'a> {
    /// The custom tree whose top is `n`, if `n` is such a top.
    fn at(p: &Plan, n: &'a PlanNode, look: &Lookup<'_>, map: &OwnerMap) -> Option<Self> {
        let o = look.owner(&n.path)?;
        if o.manager != Manager::Custom {
            return None;
        }
        let top = n.parent_path() == Some("/") && o.unit.is_none();
        let moved = moved_into_unit(n, o, look, map);
        if !top && moved.is_none() {
            return None;
        }
        let processes = o
            .evidence
            .iter()
            .filter_map(|e| e.strip_prefix("populated by "))
            .flat_map(|s| s.split(", ").map(str::to_string))
            .collect();
        Some(CustomTree {
            node: n,
            processes,
            controllers: subtree_controllers(p, &n.path),
            moved,
        })
    }

    /// Who populates it, in words.
    fn who(&self) -> String {
        if self.processes.is_empty() {
            "no process".to_string()
        } else {
            self.processes.join(", ")
        }
    }
}

/// Placed inside a unit by the plan, from a top-level v1 tree; only the top
/// of such a tree (its parent is the unit itself).
fn moved_into_unit(n: &PlanNode, o: &Owner, look: &Lookup<'_>, map: &OwnerMap) -> Option<Moved> {
    let (u, v1) = (enclosing_unit(o)?, top_level_origin(n, map)?);
    let po = look.owner(n.parent_path()?)?;
    (po.manager == Manager::Systemd && po.unit.as_deref() == Some(u)).then(|| Moved {
        unit: u.to_string(),
        v1: v1.to_string(),
    })
}

/// The `Delegate=` value for a controller list (`yes` when empty).
fn delegate_value(controllers: &[String]) -> String {
    if controllers.is_empty() {
        "yes".to_string()
    } else {
        controllers.join(" ")
    }
}

/// A tree the plan placed in an existing unit: the unit's delegating
/// drop-in (the delegation's, when it has one: it covers the whole subtree).
fn existing_unit_suggestion(
    p: &Plan,
    tree: &CustomTree<'_>,
    moved: &Moved,
    delegations: &[Delegation],
    findings: &mut Vec<Finding>,
) -> Option<Suggestion> {
    let Moved { unit, v1 } = moved;
    let placed_at = tree.node.path.clone();
    let d = delegations.iter().find(|d| d.unit == *unit);
    let controllers = d.map_or_else(|| tree.controllers.clone(), |d| d.controllers.clone());
    let delegate = delegate_value(&controllers);
    let file = d.and_then(|d| d.dropin.clone()).or_else(|| {
        unit_dropin(
            unit,
            DROPIN_DELEGATE,
            &[format!("Delegate={delegate}")],
            "delegate this unit's subtree to the manager running in it",
        )
    })?;
    findings.push(fk::CUSTOM_TOP_LEVEL.at(
        &placed_at,
        format!(
            "{v1} is a custom manager's tree at the top level, populated by {} whose processes run in {unit}; on v2 it belongs in {unit}'s delegated subtree at {placed_at}: delegate Delegate={delegate} and make the manager create its tree there",
            tree.who()
        ),
    ));
    Some(Suggestion {
        path: v1.clone(),
        unit: unit.clone(),
        existing_unit: true,
        predicted: subtree_paths(p, &placed_at),
        placed_at,
        controllers,
        processes: tree.processes.clone(),
        file,
        scope_command: None,
    })
}

/// A top-level tree nothing places: a new delegating service
/// (`<tree>-manager.service`) under `system.slice`, or the same as a scope.
fn new_unit_suggestion(p: &Plan, tree: &CustomTree<'_>, findings: &mut Vec<Finding>) -> Suggestion {
    let path = &tree.node.path;
    let name = path.trim_start_matches('/').replace(['.', '@', ' ', '/'], "-");
    let unit = format!("{name}-manager.service");
    let placed_at = format!("/system.slice/{unit}{path}");
    let delegate = delegate_value(&tree.controllers);
    findings.push(fk::CUSTOM_TOP_LEVEL.at(
        path,
        format!(
            "{path} is a custom manager's tree at the top level (populated by {}); on v2 it belongs under a delegating unit such as {unit} (Delegate={delegate}), at {placed_at}",
            tree.who()
        ),
    ));
    let predicted = subtree_paths(p, path)
        .into_iter()
        .map(|x| format!("/system.slice/{unit}{x}"))
        .collect();
    Suggestion {
        path: path.clone(),
        scope_command: Some(format!(
            "systemd-run --scope --unit={name}-manager.scope --slice=system.slice -p Delegate={delegate} -- /path/to/the/manager"
        )),
        unit: unit.clone(),
        existing_unit: false,
        placed_at,
        controllers: tree.controllers.clone(),
        processes: tree.processes.clone(),
        file: InstallFile {
            path: format!("/etc/systemd/system/{unit}"),
            text: manager_unit_text(path, &delegate),
        },
        predicted,
    }
}

/// The suggested service for a custom manager of the tree at `path`.
fn manager_unit_text(path: &str, delegate: &str) -> String {
    format!(
        "# Suggested by cgmig: run the manager of {path} here so systemd delegates its tree on v2.\n\
         # On v2 no process may stay in a cgroup whose children have controllers: the\n\
         # manager keeps itself in a leaf of its subtree and builds {path} beside it.\n\
         [Unit]\nDescription=Manager of the {path} cgroups\n\n[Service]\nExecStart=/path/to/the/manager\nDelegate={delegate}\n\n[Install]\nWantedBy=multi-user.target\n"
    )
}

/// The v2 path systemd uses for a node: its `name=systemd` or unified origin
/// (systemd rebuilds its tree at the same paths), else the plan's path.
pub fn systemd_path(n: &PlanNode) -> String {
    n.origins
        .iter()
        .find(|o| o.label == "name=systemd" || o.label == "unified")
        .map_or_else(|| n.path.clone(), |o| o.path.clone())
}

/// Where each non-kernel process belongs, by command line: the unit's
/// path for systemd's units, else the plan node's.
fn places(p: &Plan, snap: &Snapshot, look: &Lookup<'_>) -> Vec<ProcessPlace> {
    // In pid order (`Snapshot::processes`): found by binary search.
    let procs = snap.processes();
    let mut out = Vec::new();
    for n in p.nodes.iter().filter(|n| n.path != "/") {
        let Some(o) = look.owner_or_ancestor(&n.path) else {
            continue;
        };
        let path = if o.manager == Manager::Systemd {
            systemd_path(n)
        } else {
            n.path.clone()
        };
        for pid in &n.processes {
            let Ok(i) = procs.binary_search_by_key(pid, |(_, pr)| pr.pid) else {
                continue;
            };
            let pr = procs[i].1;
            if pr.is_kernel_thread() {
                continue;
            }
            out.push(ProcessPlace {
                comm: pr.comm.clone(),
                cmdline: pr.cmdline.join(" "),
                path: path.clone(),
                owner: o.manager,
            });
        }
    }
    out.sort_by(|a, b| (&a.path, &a.cmdline).cmp(&(&b.path, &b.cmdline)));
    out.dedup();
    out
}

#[cfg(test)]
mod strip_tests {
    use super::*;
    use crate::plan::NodeType;

    fn owner(manager: Manager, unit: Option<&str>) -> Owner {
        Owner {
            manager,
            unit: unit.map(str::to_string),
            detail: None,
            evidence: Vec::new(),
        }
    }

    /// A systemd host's plan: `/x/app.slice` carries systemd's label (merged
    /// from `name=systemd:/app.slice`) but systemd builds `/app.slice`, not
    /// this path; `/y.slice` is systemd's own. Children below both are
    /// custom.
    fn plan() -> Plan {
        let mut p: Plan = serde_json::from_str(
            r#"{"schema":"cgmig.plan/v1","host":{"hostname":null,"kernel":null,"mode":"hybrid"},
               "controllers":[],"nodes":[],"findings":[],"conflicts":[],
               "spine":{"order":[],"settings_affected":0,"tried":[]},"stages":[],"actions":[]}"#,
        )
        .unwrap();
        let paths = [
            "/",
            "/x",
            "/x/app.slice",
            "/x/app.slice/db",
            "/y.slice",
            "/y.slice/z",
        ];
        p.nodes = paths
            .iter()
            .map(|s| PlanNode::new(s.to_string(), NodeType::Domain, None))
            .collect();
        p.actions = paths[1..]
            .iter()
            .map(|s| Action::Create { path: s.to_string() })
            .collect();
        p.owners.systemd = Some(SystemdContext::default());
        let nodes = &mut p.owners.nodes;
        nodes.insert("/x".into(), owner(Manager::Custom, None));
        nodes.insert("/x/app.slice".into(), owner(Manager::Systemd, Some("app.slice")));
        nodes.insert("/x/app.slice/db".into(), owner(Manager::Custom, None));
        nodes.insert("/y.slice".into(), owner(Manager::Systemd, Some("y.slice")));
        nodes.insert("/y.slice/z".into(), owner(Manager::Custom, Some("y.slice")));
        p
    }

    /// issue 9 (VM live): the create of an owned node that its owner does
    /// not build at that path stays when a kept child needs it; the create of
    /// a cgroup systemd builds itself goes.
    #[test]
    fn a_create_stays_when_a_kept_child_needs_it_and_no_owner_builds_it() {
        let mut p = plan();
        strip_actions(&mut p);
        let paths: Vec<&str> = p.actions.iter().map(|a| a.path()).collect();
        assert_eq!(paths, ["/x", "/x/app.slice", "/x/app.slice/db", "/y.slice/z"]);
        assert!(
            crate::plan::validate(&p).is_empty(),
            "{:?}",
            crate::plan::validate(&p)
        );
        assert!(writable_by_cgmig(&p, "/x/app.slice").is_ok());
        assert!(writable_by_cgmig(&p, "/y.slice").is_err());
    }

    /// The validator sees a stripped parent that nobody builds: the plan
    /// the old strip made (no create of `/x/app.slice`) is refused.
    #[test]
    fn the_validator_refuses_a_child_whose_parent_nobody_builds() {
        let mut p = plan();
        p.actions
            .retain(|a| !matches!(a.path(), "/x/app.slice" | "/y.slice"));
        let v = crate::plan::validate(&p);
        let said = |m: &str| v.iter().any(|x| x.message.contains(m));
        assert!(said("/x/app.slice/db created before its parent"), "{v:?}");
        assert!(
            !said("/y.slice/z created before its parent"),
            "systemd builds /y.slice: {v:?}"
        );
    }
}
