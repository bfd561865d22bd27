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

use super::NodeType;
use super::lookup::Lookup;
use super::model::{
    Action, Delegation, InstallFile, OwnerRefusal, Plan, PlanNode, PlanOwners, ProcessPlace, RuntimePlan,
    Suggestion, UnitPrediction, controller_of,
};
use crate::model::Snapshot;
use crate::owners::detect::{self, Clue, HostMarks, Manager, Owner, OwnerMap, Strength};
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
        decided_by: Strength::Pid1,
        recorded: None,
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

/// `apply`'s guard (issue 14): the actions of a plan that write into a
/// cgroup another owner rebuilds beyond what [`strip_actions`]' rule keeps.
/// The rule is re-derived from the plan itself, so a plan edited by hand to
/// carry such an action back (or a wider enable) is refused before
/// anything is touched.
pub fn foreign_actions(p: &Plan) -> Vec<OwnerRefusal> {
    let keep = actions_to_keep(p, &p.actions);
    p.actions
        .iter()
        .zip(keep)
        .filter_map(|(a, k)| {
            let extra: Vec<&str> = match (&k, a) {
                (Some(Keep::Whole), _) => return None,
                (Some(Keep::Only(only)), Action::EnableControllers { controllers, .. }) => controllers
                    .iter()
                    .map(String::as_str)
                    .filter(|c| !only.iter().any(|o| o == c))
                    .collect(),
                _ => Vec::new(),
            };
            if k.is_some() && extra.is_empty() {
                return None;
            }
            let refusal = writable_by_cgmig(p, a.path()).err().unwrap_or_else(|| OwnerRefusal {
                path: a.path().to_string(),
                owner: p.owners.owner_of(a.path()).map_or_else(|| "another owner".into(), Owner::label),
                why: "its owner builds it; cgmig writes there only what its own nodes need".into(),
            });
            Some(if extra.is_empty() {
                refusal
            } else {
                OwnerRefusal {
                    why: format!(
                        "enabling {} there is its owner's (it enables them itself, or no cgmig node needs them)",
                        extra.join(" ")
                    ),
                    ..refusal
                }
            })
        })
        .collect()
}

/// Remove the actions that would write into another owner's cgroups, and
/// keep every action cgmig's own nodes need, so that the owners pass never
/// turns a valid plan into an invalid one (issue 23).
///
/// The rule (docs/owners.md, "What cgmig still writes in an owner's
/// cgroups"):
/// * a cgroup no owner builds at its path is cgmig's and keeps all its
///   actions, even when it carries an owner's label (issue 9:
///   `/app/app@pids/app.slice`, merged from `name=systemd` `/app.slice`;
///   a threaded `a.service` the plan put under `/system.slice@pids`);
/// * every controller a kept action needs (a file it writes, a controller
///   it enables) is enabled in each ancestor: by that ancestor's owner when
///   the owner enables it ([`super::prebuilt`]), else by a kept
///   `+controller` of cgmig, reduced to the controllers no owner enables
///   (the root of a systemd host for a custom `/prod` tree beside
///   `system.slice`). Each such write into an owner's cgroup is an
///   `owners.kept-action` finding (made once, by [`annotate`]).
pub fn strip_actions(p: &mut Plan) {
    let actions = std::mem::take(&mut p.actions);
    p.actions = stripped(p, actions);
}

/// [`strip_actions`] for a list of actions of the plan's nodes, the plan's
/// own being ignored: `derived_actions` recomputes a loaded plan's actions
/// from its nodes and owners with the same rule, without a copy of the plan.
pub fn stripped(p: &Plan, actions: Vec<Action>) -> Vec<Action> {
    if p.owners.nodes.is_empty() && p.owners.systemd.is_none() {
        return actions;
    }
    let keep = actions_to_keep(p, &actions);
    let mut k = keep.into_iter();
    actions
        .into_iter()
        .filter_map(|a| k.next().flatten().map(|c| c.apply(a)))
        .collect()
}

/// What happens to one action: dropped (`None`), kept as it is, or kept
/// with only some of its controllers (an enable in an owner's cgroup).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Keep {
    Whole,
    Only(Vec<String>),
}

impl Keep {
    fn apply(self, a: Action) -> Action {
        match (self, a) {
            (Keep::Only(controllers), Action::EnableControllers { path, .. }) => {
                Action::EnableControllers { path, controllers }
            }
            (_, a) => a,
        }
    }
}

/// For each action of the plan, whether it stays and how (see
/// [`strip_actions`]). Steps: the actions in cgmig's own cgroups; the
/// creates of cgroups no owner builds; then the controllers those need in
/// their ancestors, enabled by the owner or kept from the plan's enables.
fn actions_to_keep<'a>(p: &'a Plan, actions: &'a [Action]) -> Vec<Option<Keep>> {
    let owners = &p.owners;
    let look = Lookup::of_owners(&owners.nodes);
    let pre: foldhash::HashMap<&str, Vec<String>> = super::prebuilt::prebuilt(p).into_iter().collect();
    let delegated: foldhash::HashSet<&str> = owners.delegations.iter().map(|d| d.path.as_str()).collect();
    let systemd_root = owners.systemd.is_some();
    // A cgroup's actions are adjacent (create, files, moves): its owner is
    // looked up once per run.
    let mut last: Option<(&str, Option<Manager>)> = None;
    let mut keep: Vec<Option<Keep>> = Vec::with_capacity(actions.len());
    for a in actions {
        let path = a.path();
        let own = if path == "/" {
            !systemd_root
        } else {
            let manager = match last {
                Some((lp, m)) if lp == path => m,
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
        // A cgroup no owner builds at its path is cgmig's, whatever its
        // label: all its actions stay (its create, its type, its moves).
        let nobody_builds = !pre.contains_key(path);
        keep.push((own || nobody_builds).then_some(Keep::Whole));
    }
    let needed = needed_enables(actions, &keep, &pre);
    let typed = kept_and_above(actions, &keep);
    for (a, k) in actions.iter().zip(keep.iter_mut()) {
        if k.is_some() {
            continue;
        }
        if let Action::SetType { path, .. } = a
            && typed.contains(path.as_str())
        {
            // A threaded node of cgmig's needs its threaded parents: the
            // type is structural, like a create.
            *k = Some(Keep::Whole);
        } else if let Action::EnableControllers { path, controllers } = a
            && let Some(need) = needed.get(path.as_str())
        {
            let only: Vec<String> = controllers
                .iter()
                .filter(|c| need.contains(c.as_str()))
                .cloned()
                .collect();
            if !only.is_empty() {
                *k = Some(Keep::Only(only));
            }
        }
    }
    keep
}

/// The paths of the kept actions and all their ancestors.
fn kept_and_above<'a>(actions: &'a [Action], keep: &[Option<Keep>]) -> foldhash::HashSet<&'a str> {
    let mut out: foldhash::HashSet<&str> = foldhash::HashSet::default();
    for (a, _) in actions.iter().zip(keep).filter(|(_, k)| k.is_some()) {
        let mut cur = Some(a.path());
        while let Some(x) = cur {
            if !out.insert(x) {
                break;
            }
            cur = crate::model::path::parent(x);
        }
    }
    out
}

/// The controllers each cgroup must have enabled for the kept actions to
/// work and that its owner does not enable: walked up from every kept write
/// and enable to the first ancestor whose owner enables the controller.
fn needed_enables<'a>(
    actions: &'a [Action],
    keep: &[Option<Keep>],
    pre: &foldhash::HashMap<&str, Vec<String>>,
) -> foldhash::HashMap<&'a str, BTreeSet<&'a str>> {
    let mut needed: foldhash::HashMap<&str, BTreeSet<&str>> = foldhash::HashMap::default();
    let owner_enables = |path: &str, c: &str| pre.get(path).is_some_and(|v| v.iter().any(|x| x == c));
    for (a, k) in actions.iter().zip(keep) {
        if k.is_none() {
            continue;
        }
        let wants: Vec<&str> = match a {
            Action::Write { file, .. } => controller_of(file).into_iter().collect(),
            Action::EnableControllers { controllers, .. } => controllers.iter().map(String::as_str).collect(),
            _ => Vec::new(),
        };
        for c in wants {
            let mut cur = crate::model::path::parent(a.path());
            while let Some(anc) = cur {
                if owner_enables(anc, c) || !needed.entry(anc).or_default().insert(c) {
                    break;
                }
                cur = crate::model::path::parent(anc);
            }
        }
    }
    needed
}

/// The enables cgmig keeps in cgroups another owner builds (the root of a
/// systemd host, a slice, a runtime's cgroup): one `owners.kept-action`
/// finding per cgroup, naming the owner, what cgmig enables and why, and
/// what the owner may do to it later (measured, docs/owners.md).
fn kept_action_findings(p: &Plan, version: Option<u32>) -> Vec<Finding> {
    let pre: foldhash::HashMap<&str, Vec<String>> = super::prebuilt::prebuilt(p).into_iter().collect();
    let mut out = Vec::new();
    // A threaded subtree rooted in, or running through, an owner's cgroup
    // (the root excepted: it may always hold one). libvirt is the owner
    // that builds one itself: on v2 it creates its vcpuN, emulator and
    // iothreadN cgroups with `cgroup.type` threaded (vircgroupv2.c,
    // VIR_CGROUP_THREAD), so its own thread split stands.
    let builds_threads = |path: &str| {
        p.owners
            .owner_of(path)
            .is_some_and(|o| o.manager == Manager::Libvirt)
    };
    for n in p.nodes.iter().filter(|n| {
        n.path != "/"
            && n.node_type != NodeType::Domain
            && pre.contains_key(n.path.as_str())
            && !builds_threads(&n.path)
    }) {
        out.push(fk::THREADED_IN_OWNER.at(
            &n.path,
            format!(
                "the plan makes {} {} for the threads it places below, but {} builds it as a domain and enables domain controllers (memory, pids) for its units: the kernel refuses a threaded subtree there",
                n.path,
                if n.node_type == NodeType::Threaded { "threaded" } else { "a threaded domain" },
                owner_label(p, &n.path)
            ),
        ));
    }
    for a in &p.actions {
        let Action::EnableControllers { path, controllers } = a else {
            continue;
        };
        let Some(by_owner) = pre.get(path.as_str()) else {
            continue;
        };
        let extra: Vec<&str> = controllers
            .iter()
            .map(String::as_str)
            .filter(|c| !by_owner.iter().any(|x| x == c))
            .collect();
        if extra.is_empty() || p.owners.delegations.iter().any(|d| d.path == *path) {
            continue;
        }
        let owner = owner_label(p, path);
        let users = users_below(p, path, &extra);
        let at_risk = at_risk_below(p, path, &extra);
        let later = later_change(path, &owner, version, &at_risk);
        out.push(fk::KEPT_ACTION.at(
            path,
            format!(
                "cgmig enables {} in {}, which {owner} builds: its own nodes need it ({}) and no unit or runtime asks for it; {later}",
                extra.join(" "),
                subtree_file(path),
                users.join(", ")
            ),
        ));
    }
    out
}

/// Who builds a cgroup, in words (`systemd (-.slice)` for a systemd host's root).
fn owner_label(p: &Plan, path: &str) -> String {
    if path == "/" {
        "systemd (-.slice)".to_string()
    } else {
        p.owners
            .owner_of(path)
            .map_or_else(|| "its owner".into(), Owner::label)
    }
}

/// The first few cgmig nodes below `path` that use one of `controllers`.
fn users_below(p: &Plan, path: &str, controllers: &[&str]) -> Vec<String> {
    let mut out: Vec<String> = p
        .nodes
        .iter()
        .filter(|n| n.path != path && super::model::is_within(&n.path, path))
        .filter(|n| {
            n.settings
                .iter()
                .any(|s| s.controller().is_some_and(|c| controllers.contains(&c)))
        })
        .map(|n| n.path.clone())
        .take(4)
        .collect();
    if out.is_empty() {
        out.push("the subtrees below".into());
    }
    out
}

/// The children of `path` that use one of `controllers` in their own files
/// without enabling it for children of their own: nothing keeps the
/// controller busy for them, so an owner's `-controller` succeeds and their
/// values vanish.
fn at_risk_below(p: &Plan, path: &str, controllers: &[&str]) -> Vec<String> {
    p.nodes
        .iter()
        .filter(|n| n.parent_path() == Some(path))
        .filter(|n| {
            n.settings.iter().any(|s| {
                s.controller()
                    .is_some_and(|c| controllers.contains(&c) && !n.subtree_control.iter().any(|x| x == c))
            })
        })
        .map(|n| n.path.clone())
        .collect()
}

/// What the owner of a cgroup may later do to an enable cgmig kept there.
fn later_change(path: &str, owner: &str, version: Option<u32>, at_risk: &[String]) -> String {
    if !owner.starts_with("systemd") {
        return format!("{owner} may rewrite the controllers of {path} when it rebuilds it");
    }
    let v = version.map_or_else(|| "systemd".to_string(), |v| format!("systemd {v}"));
    let risk = if at_risk.is_empty() {
        "every cgmig node that uses it below enables it for its own children, so the kernel refuses systemd's -controller (EBUSY) and it stays".to_string()
    } else {
        format!(
            "{} use it without enabling it below, so their values vanish then: put the tree under a delegating unit (owners.custom-top-level)",
            at_risk.join(", ")
        )
    };
    format!(
        "{v} writes -controller into {} for each controller no unit asks for whenever it re-realizes it (measured on systemd 247 and 252 after daemon-reload); {risk}",
        subtree_file(path)
    )
}

/// `cgroup.subtree_control` of a cgroup, as a path.
fn subtree_file(path: &str) -> String {
    format!("{}/cgroup.subtree_control", path.trim_end_matches('/'))
}

/// The owner of each plan node, parents first.
fn node_owners(p: &Plan, map: &OwnerMap, marks: &HostMarks<'_>) -> BTreeMap<String, Owner> {
    let by_path: foldhash::HashMap<&str, &Owner> = map.iter().map(|(k, o)| (k.as_str(), o)).collect();
    let mut out: Vec<(String, Owner)> = Vec::with_capacity(p.nodes.len());
    // Index in `out` of each path given an owner so far (parents come first).
    let mut at: foldhash::HashMap<&str, usize> = foldhash::HashMap::default();
    for n in p.nodes.iter().filter(|n| n.path != "/") {
        let parent = n.parent_path().and_then(|pp| at.get(pp)).map(|i| &out[*i].1);
        let Some(owner) = node_owner(n, &by_path, parent, marks.systemd_host()).or_else(|| {
            // A path the plan adds above the scanned cgroups (a container's
            // view: `/docker` above `/docker/<id>`): its shape and the marks.
            n.origins
                .is_empty()
                .then(|| detect::owner_of_new_path(&n.path, marks))
                .flatten()
                .filter(|o| o.manager != Manager::Custom)
        }) else {
            continue;
        };
        at.insert(&n.path, out.len());
        out.push((n.path.clone(), owner));
    }
    // Sorted once and built in bulk (the last of equal paths wins, as inserts would).
    out.into_iter().collect()
}

/// One node's owner: of its origins, the one whose owner builds this very
/// path, else the one at this path (a libcgroup group `/cgtest` merged
/// with the unit cgroup its only process was started from is the group's,
/// issue 23), else systemd's first; else its own path's. For a node the
/// planner derived (a leaf), from its parent: custom inside a unit, or the
/// parent's own.
fn node_owner(
    n: &PlanNode,
    by_path: &foldhash::HashMap<&str, &Owner>,
    parent: Option<&Owner>,
    systemd_host: bool,
) -> Option<Owner> {
    let owners = || {
        n.origins
            .iter()
            .filter_map(|o| by_path.get(o.path.as_str()).copied())
    };
    let from_origin = owners()
        .find(|o| detect::builds_at(&n.path, o, systemd_host))
        .or_else(|| {
            n.origins
                .iter()
                .find(|o| o.path == n.path)
                .and_then(|o| by_path.get(o.path.as_str()).copied())
        })
        .or_else(|| owners().min_by_key(|o| o.manager != Manager::Systemd))
        .or_else(|| by_path.get(n.path.as_str()).copied());
    let mut owner = match (from_origin, parent) {
        (Some(o), _) => o.clone(),
        (None, Some(po)) if po.manager == Manager::Systemd && !is_slice(po) => Owner {
            manager: Manager::Custom,
            unit: po.unit.clone(),
            detail: Some(format!("inside {}", po.unit.as_deref().unwrap_or("?"))),
            evidence: vec![Clue::new(
                Strength::PathShape,
                format!(
                    "{}: derived node below {}",
                    n.note.map_or("node", super::model::NodeNote::text),
                    po.label()
                ),
            )],
            decided_by: po.decided_by.min(Strength::PathShape),
            recorded: None,
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
        owner.evidence.push(Clue::new(
            Strength::PathShape,
            format!("placed below {u} by the plan"),
        ));
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
    let marks = HostMarks::of(snap);
    let systemd_host = marks.systemd_host();
    let paths = PathIndex::collect(snap);
    let map = detect::detect_in(snap, &paths, &marks);
    if map.is_empty() {
        return;
    }
    let nodes = node_owners(p, &map, &marks);
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
    let runtimes = super::runtimes::plan_runtimes(&nodes, &look, snap, systemd_host, &mut findings);
    let places = places(p, snap, &look, &runtimes);
    let unit_nodes: Vec<(String, String)> = p
        .nodes
        .iter()
        .filter_map(|n| unit_at(n, &look).map(|u| (n.path.clone(), u.to_string())))
        .collect();
    drop(look);
    owner_values(p, &unit_nodes, &units, &runtimes, ctx.version);
    p.findings.extend(findings);
    let version = ctx.version;
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
    let kept = kept_action_findings(p, version);
    p.findings.extend(kept);
}

/// The real answer first (issues 23, 24): where another owner writes a
/// node's file on v2, the node's setting holds what that owner writes (its
/// value, its formula, its input), with the owner named; cgmig's own
/// conversion of the v1 value stays beside it as provenance. Files the
/// owner writes that cgmig did not convert stay in the owner's prediction
/// (`owners.units[]`, `owners.runtimes[].values`).
fn owner_values(
    p: &mut Plan,
    unit_nodes: &[(String, String)],
    units: &[UnitPrediction],
    runtimes: &[RuntimePlan],
    version: Option<u32>,
) {
    let mut by_path: BTreeMap<&str, (String, &[Written])> = BTreeMap::new();
    let sd = version.map_or_else(|| "systemd".to_string(), |v| format!("systemd {v}"));
    for (path, unit) in unit_nodes {
        if let Some(u) = units.iter().find(|u| u.unit == *unit) {
            by_path.insert(path, (format!("{sd} ({unit})"), &u.files));
        }
    }
    for r in runtimes {
        for v in &r.values {
            by_path.insert(&v.from, (format!("{} ({})", r.manager, r.driver), &v.files));
        }
    }
    for n in &mut p.nodes {
        let Some((owner, files)) = by_path.get(n.path.as_str()) else {
            continue;
        };
        for s in n.settings.iter_mut().filter(|s| s.owner.is_none()) {
            let Some(w) = files.iter().find(|w| w.file == s.file) else {
                continue;
            };
            s.converted = Some(Box::new(super::model::Converted {
                value: std::mem::replace(&mut s.value, w.value.clone()),
                rule: std::mem::replace(&mut s.rule, "owner".into()),
                function: std::mem::replace(&mut s.function, owner_function(owner)),
                formula: s.formula.replace(w.formula.clone()),
                inputs: std::mem::replace(&mut s.inputs, owner_inputs(&w.from)),
            }));
            s.owner = Some(owner.clone());
        }
    }
}

/// The owner's name as the function that computes a value (`systemd`, `docker`).
fn owner_function(owner: &str) -> String {
    owner.split(' ').next().unwrap_or(owner).to_string()
}

/// An owner's input (`CPUShares=2048`, `cpu.shares=512 cpu.cfs_quota_us=50000`)
/// as (key, value) pairs.
fn owner_inputs(from: &str) -> Vec<(String, String)> {
    from.split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
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
            .filter_map(|e| e.text.strip_prefix("populated by "))
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
fn places(p: &Plan, snap: &Snapshot, look: &Lookup<'_>, runtimes: &[RuntimePlan]) -> Vec<ProcessPlace> {
    // In pid order (`Snapshot::processes`): found by binary search.
    let procs = snap.processes();
    let mut out = Vec::new();
    for n in p.nodes.iter().filter(|n| n.path != "/") {
        let Some(o) = look.owner_or_ancestor(&n.path) else {
            continue;
        };
        let path = match o.manager {
            Manager::Systemd => systemd_path(n),
            // A container's processes go where its engine rebuilds it.
            m if m.is_runtime() => super::runtimes::v2_place(runtimes, n).unwrap_or_else(|| n.path.clone()),
            _ => n.path.clone(),
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
            decided_by: Strength::PathShape,
            recorded: None,
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
