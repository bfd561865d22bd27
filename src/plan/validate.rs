//! Check a plan against the cgroup v2 kernel rules.
//!
//! Independent of the planner: it reads only the serialized plan, so it
//! also checks plans edited by hand or produced by another version. Each rule
//! is from `Documentation/admin-guide/cgroup-v2.rst` (K2):
//!
//! * the root has no resource settings ("Conventions");
//! * every node's parent exists; paths are unique; names don't collide with
//!   interface files ("Avoid Name Collisions");
//! * a controller is enabled in `subtree_control` only if the parent enables it
//!   (the root may enable any), and a node's controller files exist only if its
//!   parent enables that controller ("Top-down Constraint");
//! * a non-root domain node with processes enables no domain controller ("No
//!   Internal Process Constraint");
//! * threaded nodes sit under a domain-threaded node or a threaded one, enable
//!   and carry only threaded controllers, hold threads and no whole processes
//!   ("Threads");
//! * every process is placed once and every thread at most once;
//! * a node carries at most one value per file (per key of a keyed file);
//! * actions create a node before touching it, move processes before a domain
//!   controller is enabled above them, and enable controllers top-down.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::model::{Action, NodeType, Plan};

/// One broken rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Violation {
    /// The node (or `actions[i]`) concerned.
    pub at: String,
    /// What is wrong.
    pub message: String,
}

/// The v2 controller owning a file, from the one controller table.
fn controller(file: &str) -> Option<&str> {
    Controller::of_v2_file(file)
}

/// Whether a v2 controller may be enabled inside a threaded subtree.
fn threaded(c: &str) -> bool {
    Controller::is_threaded_name(c)
}

use crate::model::Controller;
use crate::model::path::parent;

/// Check a plan; an empty list means it is valid.
pub fn validate(p: &Plan) -> Vec<Violation> {
    let mut v = Vec::new();
    let mut bad = |at: &str, m: String| {
        v.push(Violation {
            at: at.to_string(),
            message: m,
        })
    };
    let mut by_path: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, n) in p.nodes.iter().enumerate() {
        if by_path.insert(n.path.as_str(), i).is_some() {
            bad(&n.path, "duplicate path".into());
        }
    }
    match p.nodes.first() {
        Some(r) if r.path == "/" => {
            if r.settings
                .iter()
                .any(|s| controller(&s.file).is_some() || s.file == "cgroup.freeze")
            {
                bad("/", "the root cgroup has no resource settings".into());
            }
            if r.node_type == NodeType::Threaded {
                bad("/", "the root cannot be threaded".into());
            }
        }
        _ => bad("/", "the first node must be the root".into()),
    }
    let mut seen_pid: BTreeMap<u32, &str> = BTreeMap::new();
    let mut seen_tid: BTreeMap<u32, &str> = BTreeMap::new();
    for (i, n) in p.nodes.iter().enumerate() {
        let path = n.path.as_str();
        if path != "/" {
            let name = path.rsplit('/').next().unwrap_or("");
            if name.is_empty() || name == "." || name == ".." {
                bad(path, format!("invalid name {name:?}"));
            }
            if Controller::name_collides_with_interface_file(name) {
                bad(path, format!("name {name:?} collides with interface files"));
            }
        }
        let par = parent(path).and_then(|pp| by_path.get(pp).map(|&j| &p.nodes[j]));
        if path != "/" {
            match (parent(path), par) {
                (Some(pp), None) => bad(path, format!("parent {pp} is not in the plan")),
                (Some(_), Some(pn)) if by_path[pn.path.as_str()] > i => {
                    bad(path, "listed before its parent".into())
                }
                _ => {}
            }
        }
        // One value per file (per key of a keyed file): two writes to one
        // file leave only the later, silently.
        let mut written: BTreeSet<(&str, &str)> = BTreeSet::new();
        for st in &n.settings {
            let keyed = matches!(
                st.file.as_str(),
                "io.max" | "io.weight" | "io.bfq.weight" | "io.latency" | "rdma.max" | "misc.max"
            );
            let keys: Vec<&str> = if keyed {
                st.value
                    .lines()
                    .map(|l| l.split_whitespace().next().unwrap_or(""))
                    .collect()
            } else {
                vec![""]
            };
            for k in keys {
                if !written.insert((st.file.as_str(), k)) {
                    bad(
                        path,
                        format!(
                            "two values for {}{}",
                            st.file,
                            if k.is_empty() {
                                String::new()
                            } else {
                                format!(" key {k}")
                            }
                        ),
                    );
                }
            }
        }
        // Top-down: subtree_control and files need the parent's enablement.
        for c in &n.subtree_control {
            if Controller::v2_named(c).is_none() {
                bad(path, format!("unknown controller {c}"));
            }
            if let Some(pn) = par
                && !pn.subtree_control.contains(c)
            {
                bad(path, format!("enables {c} but its parent {} does not", pn.path));
            }
        }
        if path != "/" {
            for s in &n.settings {
                if let Some(c) = controller(&s.file)
                    && !par.is_some_and(|pn| pn.subtree_control.iter().any(|x| x == c))
                {
                    bad(
                        path,
                        format!("sets {} but the parent does not enable {c}", s.file),
                    );
                }
            }
        }
        let domain_enabled: Vec<&String> = n.subtree_control.iter().filter(|c| !threaded(c)).collect();
        match n.node_type {
            NodeType::Domain | NodeType::DomainThreaded => {
                if path != "/" && !n.processes.is_empty() && !domain_enabled.is_empty() {
                    bad(
                        path,
                        format!(
                            "has processes and enables domain controllers {domain_enabled:?} (no internal processes)"
                        ),
                    );
                }
                if !n.threads.is_empty() && n.node_type == NodeType::Domain {
                    bad(
                        path,
                        "threads placed alone in a domain cgroup (only threaded subtrees hold threads)"
                            .into(),
                    );
                }
            }
            NodeType::Threaded => {
                // The root can be the threaded domain of its threaded children.
                let root_parent = par.is_some_and(|x| x.path == "/");
                if !root_parent
                    && !matches!(
                        par.map(|x| x.node_type),
                        Some(NodeType::DomainThreaded | NodeType::Threaded)
                    )
                {
                    bad(
                        path,
                        "threaded node whose parent is not a threaded domain or threaded".into(),
                    );
                }
                if !n.processes.is_empty() {
                    bad(path, "whole processes in a threaded node".into());
                }
                if !domain_enabled.is_empty() {
                    bad(
                        path,
                        format!("threaded node enables domain controllers {domain_enabled:?}"),
                    );
                }
                for s in &n.settings {
                    if let Some(c) = controller(&s.file)
                        && !threaded(c)
                    {
                        bad(path, format!("threaded node sets domain file {}", s.file));
                    }
                }
            }
        }
        if n.node_type == NodeType::DomainThreaded {
            if !domain_enabled.is_empty() {
                bad(
                    path,
                    format!("threaded domain enables domain controllers {domain_enabled:?}"),
                );
            }
            let kids_domain = p.nodes[i + 1..]
                .iter()
                .take_while(|k| k.path.starts_with(path))
                .any(|k| parent(&k.path) == Some(path) && k.node_type != NodeType::Threaded);
            if kids_domain {
                bad(path, "threaded domain with a non-threaded child".into());
            }
        }
        for &pid in &n.processes {
            if let Some(prev) = seen_pid.insert(pid, path) {
                bad(path, format!("process {pid} is also placed at {prev}"));
            }
        }
        for t in &n.threads {
            if let Some(prev) = seen_tid.insert(t.tid, path) {
                bad(path, format!("thread {} is also placed at {prev}", t.tid));
            }
        }
    }
    // Threads belong under the threaded domain that holds their process.
    for n in &p.nodes {
        for t in &n.threads {
            let mut cur = parent(&n.path);
            let mut ok = false;
            while let Some(pp) = cur {
                match by_path.get(pp).map(|&j| &p.nodes[j]) {
                    Some(d) if d.node_type == NodeType::DomainThreaded || d.path == "/" => {
                        ok = d.processes.contains(&t.pid);
                        break;
                    }
                    Some(_) => cur = parent(pp),
                    None => break,
                }
            }
            if !ok {
                bad(
                    &n.path,
                    format!(
                        "thread {} is not under the threaded domain of process {}",
                        t.tid, t.pid
                    ),
                );
            }
        }
    }

    // Actions: order and consistency.
    let mut created: BTreeSet<&str> = BTreeSet::from(["/"]);
    let mut enabled: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    // Nodes systemd or a runtime builds exist before cgmig acts (owners::annotate).
    for (path, ctl) in p.owners.prebuilt(p) {
        created.insert(path);
        enabled
            .entry(path)
            .or_default()
            .extend(ctl.iter().map(String::as_str));
    }
    // Processes still to move out of each path (counted, for linear checks).
    let mut pending_moves: BTreeMap<&str, usize> = BTreeMap::new();
    for n in &p.nodes {
        if !n.processes.is_empty() {
            *pending_moves.entry(n.path.as_str()).or_default() += n.processes.len();
        }
    }
    for (i, a) in p.actions.iter().enumerate() {
        let at = format!("actions[{i}]");
        let path = a.path();
        if !matches!(a, Action::Create { .. }) && !created.contains(path) {
            bad(&at, format!("{path} used before it is created"));
        }
        match a {
            Action::Create { path } => {
                if let Some(pp) = parent(path)
                    && !created.contains(pp)
                {
                    bad(&at, format!("{path} created before its parent"));
                }
                if !by_path.contains_key(path.as_str()) {
                    bad(&at, format!("{path} is not a node of the plan"));
                }
                created.insert(path);
            }
            Action::MoveProcess { path, .. } => {
                if let Some(n) = pending_moves.get_mut(path.as_str()) {
                    *n = n.saturating_sub(1);
                }
            }
            Action::EnableControllers { path, controllers } => {
                let parent_has = parent(path).map(|pp| enabled.get(pp).cloned().unwrap_or_default());
                for c in controllers {
                    if let Some(ph) = &parent_has
                        && !ph.contains(c.as_str())
                    {
                        bad(&at, format!("enables {c} on {path} before its parent"));
                    }
                    if !threaded(c) && path != "/" {
                        let waiting = pending_moves.get(path.as_str()).is_some_and(|n| *n > 0);
                        if waiting {
                            bad(
                                &at,
                                format!("enables {c} on {path} while processes still have to move out of it"),
                            );
                        }
                    }
                }
                enabled
                    .entry(path)
                    .or_default()
                    .extend(controllers.iter().map(String::as_str));
            }
            Action::Write { path, file, .. } => {
                if let Some(c) = controller(file) {
                    let ok = parent(path).is_some_and(|pp| enabled.get(pp).is_some_and(|e| e.contains(c)));
                    if !ok {
                        bad(
                            &at,
                            format!("writes {file} on {path} before {c} is enabled in its parent"),
                        );
                    }
                }
            }
            Action::SetType { .. } | Action::MoveThread { .. } | Action::Chown { .. } => {}
        }
    }
    for n in p.nodes.iter().filter(|n| n.path != "/") {
        if !created.contains(n.path.as_str()) {
            bad(&n.path, "node has no create action".into());
        }
    }
    v
}
