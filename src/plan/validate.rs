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

use crate::model::{Pid, Tid};
use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::model::{Action, NodeType, Plan, PlanNode};

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

/// Check a plan; an empty list means it is valid. The checks run in the
/// order of the module doc: the root, then each node (name and parent, one
/// value per file, top-down, its type's rules, placement), then threads
/// against their domains, then the actions.
pub fn validate(p: &Plan) -> Vec<Violation> {
    let mut ck = Checker::new(p);
    ck.root();
    let mut placed = Placed::default();
    for (i, n) in p.nodes.iter().enumerate() {
        let par = ck.parent_node(&n.path);
        ck.name_and_parent(i, n, par);
        ck.one_value_per_file(n);
        ck.top_down(n, par);
        ck.type_rules(n, par);
        ck.threaded_domain_children(i, n);
        ck.placed_once(n, &mut placed);
    }
    ck.threads_under_their_domain();
    ck.actions();
    ck.out
}

/// The plan being checked, its nodes by path, and what was found.
struct Checker<'p> {
    p: &'p Plan,
    by_path: BTreeMap<&'p str, usize>,
    out: Vec<Violation>,
}

/// Where each process and thread was first placed.
#[derive(Default)]
struct Placed<'p> {
    pids: BTreeMap<Pid, &'p str>,
    tids: BTreeMap<Tid, &'p str>,
}

impl<'p> Checker<'p> {
    /// Index the nodes by path; a path seen twice is a violation.
    fn new(p: &'p Plan) -> Self {
        let mut ck = Checker {
            p,
            by_path: BTreeMap::new(),
            out: Vec::new(),
        };
        for (i, n) in p.nodes.iter().enumerate() {
            if ck.by_path.insert(n.path.as_str(), i).is_some() {
                ck.bad(&n.path, "duplicate path".into());
            }
        }
        ck
    }

    fn bad(&mut self, at: &str, message: String) {
        self.out.push(Violation {
            at: at.to_string(),
            message,
        });
    }

    /// The node at `path`'s parent path, if the plan has it.
    fn parent_node(&self, path: &str) -> Option<&'p PlanNode> {
        let p = self.p;
        parent(path).and_then(|pp| self.by_path.get(pp).map(|&j| &p.nodes[j]))
    }

    /// The first node is the root; it carries no resource settings and is
    /// not threaded ("Conventions").
    fn root(&mut self) {
        match self.p.nodes.first() {
            Some(r) if r.path == "/" => {
                if r.settings
                    .iter()
                    .any(|s| controller(&s.file).is_some() || s.file == "cgroup.freeze")
                {
                    self.bad("/", "the root cgroup has no resource settings".into());
                }
                if r.node_type == NodeType::Threaded {
                    self.bad("/", "the root cannot be threaded".into());
                }
            }
            _ => self.bad("/", "the first node must be the root".into()),
        }
    }

    /// A valid name that is no interface file, under a parent listed before it.
    fn name_and_parent(&mut self, i: usize, n: &PlanNode, par: Option<&PlanNode>) {
        let path = n.path.as_str();
        if path == "/" {
            return;
        }
        let name = path.rsplit('/').next().unwrap_or("");
        if name.is_empty() || name == "." || name == ".." {
            self.bad(path, format!("invalid name {name:?}"));
        }
        if Controller::name_collides_with_interface_file(name) {
            self.bad(path, format!("name {name:?} collides with interface files"));
        }
        match (parent(path), par) {
            (Some(pp), None) => self.bad(path, format!("parent {pp} is not in the plan")),
            (Some(_), Some(pn)) if self.by_path[pn.path.as_str()] > i => {
                self.bad(path, "listed before its parent".into());
            }
            _ => {}
        }
    }

    /// One value per file (per key of a keyed file): two writes to one file
    /// leave only the later, silently.
    fn one_value_per_file(&mut self, n: &PlanNode) {
        let mut written: BTreeSet<(&str, &str)> = BTreeSet::new();
        for st in &n.settings {
            for k in setting_keys(&st.file, &st.value) {
                if !written.insert((st.file.as_str(), k)) {
                    let key = if k.is_empty() {
                        String::new()
                    } else {
                        format!(" key {k}")
                    };
                    self.bad(&n.path, format!("two values for {}{key}", st.file));
                }
            }
        }
    }

    /// Top-down: `subtree_control` and controller files need the parent's
    /// enablement.
    fn top_down(&mut self, n: &PlanNode, par: Option<&PlanNode>) {
        let path = n.path.as_str();
        for c in &n.subtree_control {
            if Controller::v2_named(c).is_none() {
                self.bad(path, format!("unknown controller {c}"));
            }
            if let Some(pn) = par
                && !pn.subtree_control.contains(c)
            {
                self.bad(path, format!("enables {c} but its parent {} does not", pn.path));
            }
        }
        if path == "/" {
            return;
        }
        for s in &n.settings {
            if let Some(c) = controller(&s.file)
                && !par.is_some_and(|pn| pn.subtree_control.iter().any(|x| x == c))
            {
                self.bad(
                    path,
                    format!("sets {} but the parent does not enable {c}", s.file),
                );
            }
        }
    }

    /// No internal processes for domains; what threaded nodes may hold,
    /// enable and sit under; what a threaded domain may enable.
    fn type_rules(&mut self, n: &PlanNode, par: Option<&PlanNode>) {
        let path = n.path.as_str();
        let domain_enabled: Vec<&String> = n.subtree_control.iter().filter(|c| !threaded(c)).collect();
        match n.node_type {
            NodeType::Domain | NodeType::DomainThreaded => {
                if path != "/" && !n.processes.is_empty() && !domain_enabled.is_empty() {
                    self.bad(
                        path,
                        format!(
                            "has processes and enables domain controllers {domain_enabled:?} (no internal processes)"
                        ),
                    );
                }
                if !n.threads.is_empty() && n.node_type == NodeType::Domain {
                    self.bad(
                        path,
                        "threads placed alone in a domain cgroup (only threaded subtrees hold threads)"
                            .into(),
                    );
                }
            }
            NodeType::Threaded => self.threaded_node(n, par, &domain_enabled),
        }
        if n.node_type == NodeType::DomainThreaded && !domain_enabled.is_empty() {
            self.bad(
                path,
                format!("threaded domain enables domain controllers {domain_enabled:?}"),
            );
        }
    }

    /// A threaded node sits under a threaded domain (or the root) or a
    /// threaded node, holds no whole process, and enables and sets only
    /// threaded controllers.
    fn threaded_node(&mut self, n: &PlanNode, par: Option<&PlanNode>, domain_enabled: &[&String]) {
        let path = n.path.as_str();
        // The root can be the threaded domain of its threaded children.
        let root_parent = par.is_some_and(|x| x.path == "/");
        if !root_parent
            && !matches!(
                par.map(|x| x.node_type),
                Some(NodeType::DomainThreaded | NodeType::Threaded)
            )
        {
            self.bad(
                path,
                "threaded node whose parent is not a threaded domain or threaded".into(),
            );
        }
        if !n.processes.is_empty() {
            self.bad(path, "whole processes in a threaded node".into());
        }
        if !domain_enabled.is_empty() {
            self.bad(
                path,
                format!("threaded node enables domain controllers {domain_enabled:?}"),
            );
        }
        for s in &n.settings {
            if let Some(c) = controller(&s.file)
                && !threaded(c)
            {
                self.bad(path, format!("threaded node sets domain file {}", s.file));
            }
        }
    }

    /// Every child of a threaded domain is threaded.
    fn threaded_domain_children(&mut self, i: usize, n: &PlanNode) {
        if n.node_type != NodeType::DomainThreaded {
            return;
        }
        let path = n.path.as_str();
        let kids_domain = self.p.nodes[i + 1..]
            .iter()
            .take_while(|k| k.path.starts_with(path))
            .any(|k| parent(&k.path) == Some(path) && k.node_type != NodeType::Threaded);
        if kids_domain {
            self.bad(path, "threaded domain with a non-threaded child".into());
        }
    }

    /// Every process is placed once and every thread at most once.
    fn placed_once(&mut self, n: &'p PlanNode, placed: &mut Placed<'p>) {
        let path = n.path.as_str();
        for &pid in &n.processes {
            if let Some(prev) = placed.pids.insert(pid, path) {
                self.bad(path, format!("process {pid} is also placed at {prev}"));
            }
        }
        for t in &n.threads {
            if let Some(prev) = placed.tids.insert(t.tid, path) {
                self.bad(path, format!("thread {} is also placed at {prev}", t.tid));
            }
        }
    }

    /// Threads belong under the threaded domain that holds their process.
    fn threads_under_their_domain(&mut self) {
        let p = self.p;
        for n in &p.nodes {
            for t in &n.threads {
                if !self.domain_holds(&n.path, t.pid) {
                    self.bad(
                        &n.path,
                        format!(
                            "thread {} is not under the threaded domain of process {}",
                            t.tid, t.pid
                        ),
                    );
                }
            }
        }
    }

    /// Whether the nearest threaded domain (or the root) above `path` holds
    /// process `pid`.
    fn domain_holds(&self, path: &str, pid: Pid) -> bool {
        let mut cur = parent(path);
        while let Some(pp) = cur {
            match self.by_path.get(pp).map(|&j| &self.p.nodes[j]) {
                Some(d) if d.node_type == NodeType::DomainThreaded || d.path == "/" => {
                    return d.processes.contains(&pid);
                }
                Some(_) => cur = parent(pp),
                None => return false,
            }
        }
        false
    }

    /// Actions: a node is created (after its parent) before it is used,
    /// processes move out before a domain controller is enabled, and
    /// controllers are enabled top-down before their files are written.
    fn actions(&mut self) {
        let p = self.p;
        let mut state = ActionState::before_actions(p);
        for (i, a) in p.actions.iter().enumerate() {
            let at = format!("actions[{i}]");
            let path = a.path();
            if !matches!(a, Action::Create { .. }) && !state.created.contains(path) {
                self.bad(&at, format!("{path} used before it is created"));
            }
            match a {
                Action::Create { path } => self.create(&at, path, &mut state),
                Action::MoveProcess { path, .. } => {
                    if let Some(n) = state.pending_moves.get_mut(path.as_str()) {
                        *n = n.saturating_sub(1);
                    }
                }
                Action::EnableControllers { path, controllers } => {
                    self.enable(&at, path, controllers, &mut state);
                }
                Action::Write { path, file, .. } => self.write(&at, path, file, &state),
                Action::SetType { .. } | Action::MoveThread { .. } | Action::Chown { .. } => {}
            }
        }
        for n in p.nodes.iter().filter(|n| n.path != "/") {
            if !state.created.contains(n.path.as_str()) {
                self.bad(&n.path, "node has no create action".into());
            }
        }
    }

    fn create(&mut self, at: &str, path: &'p str, state: &mut ActionState<'p>) {
        if let Some(pp) = parent(path)
            && !state.created.contains(pp)
        {
            self.bad(at, format!("{path} created before its parent"));
        }
        if !self.by_path.contains_key(path) {
            self.bad(at, format!("{path} is not a node of the plan"));
        }
        state.created.insert(path);
    }

    fn enable(&mut self, at: &str, path: &'p str, controllers: &'p [String], state: &mut ActionState<'p>) {
        let parent_has = parent(path).map(|pp| state.enabled.get(pp).cloned().unwrap_or_default());
        for c in controllers {
            if let Some(ph) = &parent_has
                && !ph.contains(c.as_str())
            {
                self.bad(at, format!("enables {c} on {path} before its parent"));
            }
            if !threaded(c) && path != "/" {
                let waiting = state.pending_moves.get(path).is_some_and(|n| *n > 0);
                if waiting {
                    self.bad(
                        at,
                        format!("enables {c} on {path} while processes still have to move out of it"),
                    );
                }
            }
        }
        state
            .enabled
            .entry(path)
            .or_default()
            .extend(controllers.iter().map(String::as_str));
    }

    fn write(&mut self, at: &str, path: &str, file: &str, state: &ActionState<'p>) {
        if let Some(c) = controller(file) {
            let ok = parent(path).is_some_and(|pp| state.enabled.get(pp).is_some_and(|e| e.contains(c)));
            if !ok {
                self.bad(
                    at,
                    format!("writes {file} on {path} before {c} is enabled in its parent"),
                );
            }
        }
    }
}

/// What the actions have done so far, replayed in order.
struct ActionState<'p> {
    created: BTreeSet<&'p str>,
    enabled: BTreeMap<&'p str, BTreeSet<&'p str>>,
    /// Processes still to move out of each path (counted, for linear checks).
    pending_moves: BTreeMap<&'p str, usize>,
}

impl<'p> ActionState<'p> {
    /// The root, and the nodes systemd or a runtime builds before cgmig
    /// acts (the owners pass, `plan::owners`), exist already.
    fn before_actions(p: &'p Plan) -> Self {
        let mut created: BTreeSet<&str> = BTreeSet::from(["/"]);
        let mut enabled: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
        for (path, ctl) in super::prebuilt::prebuilt(p) {
            created.insert(path);
            let on = enabled.entry(path).or_default();
            for c in ctl {
                // The plan's own spelling of the name, borrowed for 'p.
                if let Some(known) = p.controllers.iter().find(|k| **k == c) {
                    on.insert(known.as_str());
                }
            }
        }
        let mut pending_moves: BTreeMap<&str, usize> = BTreeMap::new();
        for n in &p.nodes {
            if !n.processes.is_empty() {
                *pending_moves.entry(n.path.as_str()).or_default() += n.processes.len();
            }
        }
        ActionState {
            created,
            enabled,
            pending_moves,
        }
    }
}

/// The keys a setting writes: one per line for keyed files (`io.max`
/// `8:0 rbps=..`), the empty key for the rest.
fn setting_keys<'a>(file: &str, value: &'a str) -> Vec<&'a str> {
    let keyed = matches!(
        file,
        "io.max" | "io.weight" | "io.bfq.weight" | "io.latency" | "rdma.max" | "misc.max"
    );
    if keyed {
        value
            .lines()
            .map(|l| l.split_whitespace().next().unwrap_or(""))
            .collect()
    } else {
        vec![""]
    }
}
