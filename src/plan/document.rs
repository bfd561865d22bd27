//! What a plan read from a file must hold before any command acts on it,
//! beyond the kernel's v2 rules ([`super::validate`]).
//!
//! A plan travels between machines and is applied as root, so it is
//! untrusted data: a hand-edited (or forged) plan must not be able to name a
//! file outside the catalogue, a path that climbs or lands beside the
//! target, a task id the kernel reads as "the writer itself", or an action
//! the nodes do not call for. [`check`] finds each such problem and names the
//! field, path and value; `apply`, `verify` and `fleet` refuse a plan that
//! has any (exit 2), before anything is scanned or written.
//!
//! The actions are *derived*, not trusted: [`super::derived_actions`]
//! recomputes them from the nodes as the planner does, and any difference
//! (an extra move, a write no node carries, a different order) is a
//! violation naming the action.

use std::collections::BTreeMap;

use super::model::{Action, Plan};
use super::validate::Violation;
use crate::model::files::{V2_DELEGATION_FILES, is_v2_setting_target};
use crate::model::path::cgroup_names;

/// How many differences between the given and the derived actions are
/// listed one by one before the rest is counted.
const LIST_AT_MOST: usize = 10;

/// Everything wrong with a plan read from a file: the v2 rules
/// ([`super::validate`]) and [`check`]. Every command that reads a plan
/// (`apply`, `verify`, `fleet`) refuses one with any.
pub fn check_loaded(p: &Plan) -> Vec<Violation> {
    let mut v = super::validate(p);
    v.extend(check(p));
    v
}

/// Every problem of a loaded plan that [`super::validate`] does not look
/// for; empty means the plan may be acted on.
pub fn check(p: &Plan) -> Vec<Violation> {
    let mut out = Vec::new();
    {
        let mut bad = |at: String, message: String| out.push(Violation { at, message });
        nodes(p, &mut bad);
        keys_and_stages(p, &mut bad);
    }
    for (i, a) in p.actions.iter().enumerate() {
        if let Some(why) = action_problem(a) {
            out.push(Violation {
                at: format!("actions[{i}]"),
                message: format!("{}: {why}", describe(a)),
            });
        }
    }
    // The derivation compares sane nodes and actions; what is malformed is
    // named above for what it is, not as "does not follow".
    if out.is_empty() {
        out.extend(derivation(p));
    }
    out
}

/// Node paths, setting files and values, tasks and owners.
fn nodes(p: &Plan, bad: &mut impl FnMut(String, String)) {
    for (i, n) in p.nodes.iter().enumerate() {
        let at = format!("nodes[{i}]");
        if let Err(e) = cgroup_names(&n.path) {
            bad(format!("{at}.path"), format!("{:?}: {e}", n.path));
        }
        for (j, s) in n.settings.iter().enumerate() {
            let at = format!("{at}.settings[{j}]");
            if !is_v2_setting_target(&s.file) {
                bad(
                    format!("{at}.file"),
                    format!("{:?} at {} is not a v2 setting file cgmig writes", s.file, n.path),
                );
            }
            if s.value.contains('\0') {
                bad(
                    format!("{at}.value"),
                    format!("{}/{} has a NUL byte", n.path, s.file),
                );
            }
        }
        for (j, pid) in n.processes.iter().enumerate() {
            if pid.get() == 0 {
                bad(
                    format!("{at}.processes[{j}]"),
                    format!(
                        "pid 0 at {} (written to cgroup.procs it moves the writer itself)",
                        n.path
                    ),
                );
            }
        }
        for (j, t) in n.threads.iter().enumerate() {
            if t.tid.get() == 0 || t.pid.get() == 0 {
                bad(
                    format!("{at}.threads[{j}]"),
                    format!(
                        "tid {} of pid {} at {}: task ids are positive",
                        t.tid, t.pid, n.path
                    ),
                );
            }
        }
        if let Some(o) = n.owner
            && (o.uid == u32::MAX || o.gid == u32::MAX)
        {
            bad(
                format!("{at}.owner"),
                format!(
                    "{}:{} at {} (-1 means \"unchanged\" to chown)",
                    o.uid, o.gid, n.path
                ),
            );
        }
    }
}

/// Process keys name real processes; stages name known controllers.
fn keys_and_stages(p: &Plan, bad: &mut impl FnMut(String, String)) {
    for (i, k) in p.process_keys.iter().enumerate() {
        if k.pid.get() == 0 {
            bad(format!("process_keys[{i}].pid"), "pid 0 is not a process".into());
        }
    }
    for (i, s) in p.stages.iter().enumerate() {
        for c in s.controllers.iter().chain(&s.adds) {
            if !known_v1_controller(c) {
                bad(
                    format!("stages[{i}]"),
                    format!("stage {} names {c:?}, not a cgroup controller", s.number),
                );
            }
        }
    }
    for c in &p.controllers {
        if crate::model::Controller::v2_named(c).is_none() {
            bad("controllers".into(), format!("{c:?} is not a v2 controller"));
        }
    }
}

fn known_v1_controller(c: &str) -> bool {
    c.parse::<crate::model::Controller>()
        .is_ok_and(|c| !matches!(c, crate::model::Controller::Other(_)))
}

/// What is wrong with one action on its own (a path, a file, a task id),
/// so a forged action is named for what it is before the derivation
/// check says it does not follow from the nodes.
fn action_problem(a: &Action) -> Option<String> {
    if let Err(e) = cgroup_names(a.path()) {
        return Some(format!("path {:?}: {e}", a.path()));
    }
    match a {
        Action::Write { file, value, .. } => {
            if file == "cgroup.kill" {
                return Some("cgroup.kill is never written: cgmig does not kill".into());
            }
            if matches!(file.as_str(), "cgroup.procs" | "cgroup.threads") {
                return Some(format!(
                    "{file} is written only by a planned move, never as a setting"
                ));
            }
            if !is_v2_setting_target(file) {
                return Some(format!("{file:?} is not a v2 setting file cgmig writes"));
            }
            (value.contains('\0') || value.contains('\n')).then(|| "the value is not one line".into())
        }
        Action::SetType { value, .. } => {
            (value != "threaded").then(|| format!("cgroup.type {value:?}: only threaded is written"))
        }
        Action::MoveProcess { pid, .. } => (pid.get() == 0).then(|| "pid 0 moves the writer itself".into()),
        Action::MoveThread { tid, pid, .. } => {
            (tid.get() == 0 || pid.get() == 0).then(|| "task ids are positive".into())
        }
        Action::Chown { uid, gid, files, .. } => {
            if *uid == u32::MAX || *gid == u32::MAX {
                return Some("-1 means \"unchanged\" to chown".into());
            }
            files
                .iter()
                .find(|f| !V2_DELEGATION_FILES.contains(&f.as_str()))
                .map(|f| format!("{f:?} is not a delegation file"))
        }
        Action::EnableControllers { controllers, .. } => controllers
            .iter()
            .find(|c| crate::model::Controller::v2_named(c).is_none())
            .map(|c| format!("{c:?} is not a v2 controller")),
        Action::Create { .. } => None,
    }
}

/// The plan's actions against those its nodes give: each extra, missing or
/// misplaced action is named (the first [`LIST_AT_MOST`], then a count).
fn derivation(p: &Plan) -> Vec<Violation> {
    let want = super::derived_actions(p);
    if want == p.actions {
        return Vec::new();
    }
    let mut out = Vec::new();
    // Counted by their full text: an action is its fields.
    let key = |a: &Action| format!("{a:?}");
    let mut wanted: BTreeMap<String, (usize, &Action)> = BTreeMap::new();
    for a in &want {
        wanted.entry(key(a)).or_insert((0, a)).0 += 1;
    }
    let mut extra = 0;
    for (i, a) in p.actions.iter().enumerate() {
        match wanted.get_mut(&key(a)).map(|(n, _)| n) {
            Some(n) if *n > 0 => *n -= 1,
            _ => {
                extra += 1;
                if out.len() < LIST_AT_MOST {
                    out.push(Violation {
                        at: format!("actions[{i}]"),
                        message: format!("{} does not follow from the plan's nodes", describe(a)),
                    });
                }
            }
        }
    }
    // What is left over, in the order the nodes give it.
    let mut missing: Vec<&Action> = Vec::new();
    for a in &want {
        if let Some((n, _)) = wanted.get_mut(&key(a))
            && *n > 0
        {
            *n -= 1;
            missing.push(a);
        }
    }
    for a in missing.iter().take(LIST_AT_MOST.saturating_sub(out.len())) {
        out.push(Violation {
            at: "actions".into(),
            message: format!("the nodes give {}, which the actions lack", describe(a)),
        });
    }
    if extra == 0 && missing.is_empty() {
        let i = p.actions.iter().zip(&want).position(|(a, b)| a != b).unwrap_or(0);
        out.push(Violation {
            at: format!("actions[{i}]"),
            message: format!(
                "out of order: the nodes give {} here, the plan has {}",
                describe(&want[i]),
                describe(&p.actions[i])
            ),
        });
    }
    let listed = out.len();
    let total = extra + missing.len();
    if total > listed {
        out.push(Violation {
            at: "actions".into(),
            message: format!(
                "and {} more actions that differ from what the nodes give",
                total - listed
            ),
        });
    }
    out
}

/// An action in one line, as a refusal names it.
fn describe(a: &Action) -> String {
    match a {
        Action::Create { path } => format!("create {path:?}"),
        Action::SetType { path, value } => format!("set-type {path:?} {value:?}"),
        Action::MoveProcess { pid, path } => format!("move-process {pid} to {path:?}"),
        Action::MoveThread { tid, pid, path } => format!("move-thread {tid} (pid {pid}) to {path:?}"),
        Action::EnableControllers { path, controllers } => {
            format!("enable-controllers {controllers:?} at {path:?}")
        }
        Action::Write { path, file, value } => format!("write {file:?} = {value:?} at {path:?}"),
        Action::Chown {
            path,
            uid,
            gid,
            files,
            ..
        } => format!("chown {uid}:{gid} {path:?} {files:?}"),
    }
}
