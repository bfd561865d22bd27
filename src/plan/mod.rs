//! The planner: one valid v2 tree from divergent v1 hierarchies.
//!
//! 1. `prepare` computes the elements (processes, phantoms), their places
//!    and each cgroup's element set once; [`unify`] merges the hierarchies'
//!    significant cgroups as laminar sets (trying each hierarchy as the spine
//!    and keeping the order that loses the fewest settings);
//! 2. [`plan`] runs one module per step, each a function from typed values
//!    to typed values, data flowing one way: `naming` (v2 paths, identity
//!    first), `nodes` (placement, settings, owners), `threads` (threaded
//!    subtrees), `conflicts`, `delegation`, `weights`, `kernel` (what the
//!    host's kernel offers);
//! 3. [`finish`] derives everything else from the nodes: controllers enabled
//!    top-down, leaf children for internal processes, and the ordered actions.
//!    Stages and subtree selections re-run [`finish`] on a filtered copy, so
//!    each is itself a valid plan.
//!
//! [`validate`] checks any plan against the kernel's v2 rules, independently
//! of this code. docs/plan.md lists every step as the code names it.

mod conflicts;
mod delegation;
pub mod document;
pub mod findings;
mod io_weight;
mod kernel;
pub mod keys;
mod lookup;
mod model;
mod naming;
mod nodes;
mod owners;
mod prebuilt;
mod prepare;
mod render;
mod runtimes;
mod settings;
pub mod stages;
mod threads;
pub mod unify;
mod validate;
mod weights;

use crate::model::{HierarchyId, Pid};
use std::collections::BTreeSet;

pub use model::*;
use model::{is_within, origin_controllers};
pub use owners::{foreign_actions, writable_by_cgmig};
pub use prebuilt::prebuilt;
pub use render::{PlanFormat, RenderError, owners_section, render, render_to, render_with};
pub use stages::{StageError, StagePolicy};
pub use validate::{Violation, validate};

use crate::model::{Snapshot, Version};
use crate::rules::Finding;
use crate::rules::RuleSet;
use unify::{Merged, Prepared};

/// Plan the migration of a snapshot, staged by risk ([`StagePolicy::Auto`]).
pub fn plan(snap: &Snapshot, rules: &RuleSet) -> Plan {
    let Ok(p) = plan_evaluated(snap, rules, |loads| {
        Ok::<_, std::convert::Infallible>(stages::by_risk(loads))
    });
    p
}

/// [`plan`] with the boots chosen by `policy` (`--stages`); an error when a
/// hand-written spec does not fit the host (a controller not on v1,
/// co-mounted controllers split).
pub fn plan_with(snap: &Snapshot, rules: &RuleSet, policy: &StagePolicy) -> Result<Plan, StageError> {
    plan_evaluated(snap, rules, |loads| stages::stages(loads, policy))
}

/// Evaluate the rules, draft the plan, then free the evaluation before the
/// plan is finished. The evaluation (every conversion and finding per
/// cgroup) is the largest value besides the plan and only the draft reads
/// it: kept alive through [`finish`], it coexists with the actions and
/// raises the planning peak (by 20 MiB at 101k cgroups, docs/performance.md).
fn plan_evaluated<E>(
    snap: &Snapshot,
    rules: &RuleSet,
    stage: impl FnOnce(&[stages::Load]) -> Result<Vec<Stage>, E>,
) -> Result<Plan, E> {
    let eval = crate::audit::evaluate(snap, rules);
    let findings = crate::audit::findings(snap, rules, &eval);
    let d = draft(snap, rules, &eval, findings, stage).map(Draft)?;
    drop(eval);
    Ok(complete(d, snap, rules))
}

/// The plan before the owners pass (and without stable process keys): the
/// planner's tree and actions as if cgmig wrote every cgroup. The owners
/// pass must never turn such a plan, when valid, into an invalid one; the
/// property tests compare the two.
pub fn plan_without_owners(snap: &Snapshot, rules: &RuleSet) -> Plan {
    let eval = crate::audit::evaluate(snap, rules);
    let findings = crate::audit::findings(snap, rules, &eval);
    let Ok(mut p) = draft(snap, rules, &eval, findings, |loads| {
        Ok::<_, std::convert::Infallible>(stages::by_risk(loads))
    });
    drop(eval);
    finish(&mut p, None, &rules.policy().leaf_name);
    p
}

/// A plan drafted from the rules' evaluation: the merged tree's nodes,
/// findings, conflicts, spine and stages, before its derived parts. Only
/// [`complete`] turns it into a [`Plan`]. Between the two the caller frees
/// the evaluation, the largest value besides the plan and read by the draft
/// alone: kept alive through [`finish`] it raised the planning peak by
/// 20 MiB at 101k cgroups (docs/performance.md).
#[derive(Debug)]
pub struct Draft(Plan);

/// Draft from an audit already made: the rules' evaluation and the audit's
/// findings from it (they open the plan's). Nothing is evaluated twice.
/// Staged by risk: the automatic policy cannot fail.
pub fn draft_by_risk(
    snap: &Snapshot,
    rules: &RuleSet,
    eval: &crate::audit::Evaluation,
    findings: Vec<Finding>,
) -> Draft {
    let Ok(p) = draft(snap, rules, eval, findings, |loads| {
        Ok::<_, std::convert::Infallible>(stages::by_risk(loads))
    });
    Draft(p)
}

/// [`draft_by_risk`] with the boots chosen by `policy` (`--stages`): the
/// assessment's plan when the user shapes the stages.
pub fn draft_staged(
    snap: &Snapshot,
    rules: &RuleSet,
    eval: &crate::audit::Evaluation,
    findings: Vec<Finding>,
    policy: &StagePolicy,
) -> Result<Draft, StageError> {
    draft(snap, rules, eval, findings, |loads| stages::stages(loads, policy)).map(Draft)
}

/// Finish a draft: the derived parts (subtree_control, leaves, actions),
/// the owners of its nodes, the stable keys of its processes, its verdict.
pub fn complete(d: Draft, snap: &Snapshot, rules: &RuleSet) -> Plan {
    let mut p = d.0;
    finish(&mut p, None, &rules.policy().leaf_name);
    annotate(&mut p, snap);
    p.judge();
    p
}

/// What the finished plan learns from the host besides the tree: who owns
/// each node (systemd, runtimes: their cgroups get no actions) and the
/// stable key of each placed process (PIDs change across a reboot).
fn annotate(p: &mut Plan, snap: &Snapshot) {
    owners::annotate(p, snap);
    keys::annotate(p, snap);
}

/// The plan before its derived parts ([`finish`]): the merged tree's nodes,
/// findings, conflicts, spine and stages. Steps: prepare the sets, search
/// the spine, build the nodes, stage them, gate them by the host's kernel.
fn draft<E>(
    snap: &Snapshot,
    rules: &RuleSet,
    eval: &crate::audit::Evaluation,
    findings: Vec<Finding>,
    stage: impl FnOnce(&[stages::Load]) -> Result<Vec<Stage>, E>,
) -> Result<Plan, E> {
    let mut prep = Prepared::new(snap, rules, eval);
    let (merged, spine) = spine_search(&prep, rules);
    // The element sets are the largest part of the preparation and only
    // the merge reads them: their memory serves the nodes instead.
    prep.release_sets();
    let mut findings = findings;
    let (mut nodes, conflicts) = build_nodes(&prep, &merged, rules.policy(), &mut findings);
    drop(merged);
    let mut stages = stage(&stages::loads(&spine.order, &nodes))?;
    findings.extend(kernel::gate(
        &mut nodes,
        &mut stages,
        &crate::audit::kernel::Support::of(snap),
        &prep.rule_kernel,
    ));
    Ok(Plan {
        schema: PLAN_SCHEMA.to_string(),
        host: plan_host(snap),
        verdict: None,
        converts: crate::audit::converts(eval),
        incomplete: crate::audit::incomplete(snap),
        stage: None,
        controllers: Vec::new(),
        nodes,
        actions: Vec::new(),
        findings,
        conflicts,
        spine,
        stages,
        owners: Default::default(),
        process_keys: Vec::new(),
    })
}

/// The host as a plan records it: its identity as the scan found it (a live
/// plan adds the boot id, `keys::record_live_identity`).
fn plan_host(snap: &Snapshot) -> PlanHost {
    PlanHost {
        hostname: snap.host.hostname.clone(),
        kernel: snap.host.kernel.clone(),
        mode: snap.host.mode,
        machine_id: snap.host.machine_id.clone(),
        boot_id: None,
    }
}

/// The merge orders to try: the policy's order of the hierarchies first,
/// then (with `search_spine`) each controller hierarchy moved to the front.
/// On a v1 or hybrid host only the v1 and v2 hierarchies take part.
fn merge_orders(prep: &Prepared, policy: &crate::rules::PlanPolicy) -> Vec<Vec<HierarchyId>> {
    let any_v1 = prep.hierarchies.iter().any(|(_, h)| h.version == Version::V1);
    let mut ranked: Vec<(usize, HierarchyId)> = prep
        .hierarchies
        .iter()
        .filter(|(_, h)| !any_v1 || h.version == Version::V1 || h.version == Version::V2)
        .map(|(_, h)| (policy.rank(h), h.id))
        .collect();
    ranked.sort();
    let base: Vec<HierarchyId> = ranked.into_iter().map(|(_, id)| id).collect();
    let mut orders = vec![base.clone()];
    if policy.search_spine {
        for &h in base.iter().skip(1) {
            if prep.hierarchy(h).controllers.is_empty() {
                continue;
            }
            orders.push(
                std::iter::once(h)
                    .chain(base.iter().copied().filter(|x| *x != h))
                    .collect(),
            );
        }
    }
    orders
}

/// Merge in each order and keep the one that affects the fewest settings
/// (ties: the earlier order); stop at the first order that affects none.
/// Then fold same-path nodes that carry nothing.
fn spine_search<'a>(prep: &Prepared<'a>, rules: &RuleSet) -> (Merged<'a>, Spine) {
    let label = |id: HierarchyId| prep.label(id);
    let mut tried = Vec::new();
    let mut best: Option<Merged> = None;
    for order in merge_orders(prep, rules.policy()) {
        let m = unify::merge(prep, rules, &order);
        let cost = m.cost();
        tried.push((order.first().map(|h| label(*h)).unwrap_or_default(), cost));
        if best.as_ref().is_none_or(|b| cost < b.cost()) {
            best = Some(m);
        }
        // No order can lose fewer than no settings: stop searching.
        if cost == 0 {
            break;
        }
    }
    let merged = best
        .expect("at least the policy's order is tried")
        .fold_same_path(prep);
    let spine = Spine {
        order: merged.order.iter().map(|h| label(*h)).collect(),
        settings_affected: merged.cost(),
        tried,
    };
    (merged, spine)
}

/// Turn the merged tree into plan nodes (without derived parts): naming,
/// placement and settings, threaded subtrees, intermediates, conflicts,
/// delegation and weights, in that order; data flows one way.
fn build_nodes(
    prep: &Prepared,
    m: &Merged,
    policy: &crate::rules::PlanPolicy,
    findings: &mut Vec<Finding>,
) -> (Vec<PlanNode>, Vec<Conflict>) {
    let paths = naming::name_nodes(prep, m, findings);
    let mut nodes = nodes::domain_nodes(prep, m, &paths, findings);
    threads::threaded_subtrees(prep, m, policy, &paths, &mut nodes, findings);
    nodes::add_intermediates(&mut nodes);
    let conflicts = conflicts::conflicts(prep, m, &paths, findings);
    findings.extend(delegation::delegation(&nodes));
    findings.extend(io_weight::by_scheduler(
        &prep.snap.host.shows.block_devices,
        &mut nodes,
    ));
    findings.extend(weights::weight_shares(prep, &nodes));
    (nodes, conflicts)
}

/// The v2 name of a v1 controller.
fn v2_controller(v1: &str) -> Option<&'static str> {
    v1.parse::<crate::model::Controller>()
        .ok()
        .and_then(|c| c.v2_name())
}

/// Derive subtree_control, leaves and actions from the nodes.
///
/// `allowed`: v1 controllers whose settings this (stage) plan may apply;
/// `None` = all. Settings from hierarchies not fully allowed are removed.
/// Steps, in order: undo derived leaves, keep the allowed settings, enable
/// controllers top-down, hand internal processes to leaves, list the
/// controllers, order the actions.
pub fn finish(p: &mut Plan, allowed: Option<&BTreeSet<String>>, leaf_name: &str) {
    undo_leaves(p);
    if let Some(allowed) = allowed {
        keep_allowed_settings(&mut p.nodes, allowed);
    }
    subtree_control(&mut p.nodes);
    let findings = add_leaves(&mut p.nodes, leaf_name);
    p.findings.extend(findings);
    p.controllers = controllers(&p.nodes, allowed);
    p.actions = actions(p);
    // No actions in systemd's or runtimes' cgroups (the owners pass, `owners.rs`).
    owners::strip_actions(p);
}

/// Undo derived leaves: stage and subtree re-derivation starts from the
/// full plan, whose leaves hold processes of their parents.
fn undo_leaves(p: &mut Plan) {
    let is_leaf = |n: &PlanNode| n.note == Some(NodeNote::Leaf);
    if p.nodes.iter().any(is_leaf) {
        let index = path_index(&p.nodes);
        // (parent index, leaf index) of every leaf whose parent is a node.
        let moves: Vec<(usize, usize)> = p
            .nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| is_leaf(n))
            .filter_map(|(i, n)| Some((*index.get(n.parent_path()?)?, i)))
            .collect();
        for (parent, leaf) in moves {
            let procs = std::mem::take(&mut p.nodes[leaf].processes);
            let pn = &mut p.nodes[parent];
            pn.processes.extend(procs);
            pn.processes.sort_unstable();
        }
        p.nodes.retain(|n| !is_leaf(n));
    }
    p.findings.retain(|f| f.rule != findings::LEAF.id);
}

/// Each node's index by path.
fn path_index(nodes: &[PlanNode]) -> unify::IdMap<&str, usize> {
    nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (n.path.as_str(), i))
        .collect()
}

/// Each node's nearest ancestor that is a node (by path), and an order
/// with children before their parents.
fn node_parents(nodes: &[PlanNode]) -> (Vec<Option<usize>>, Vec<usize>) {
    let index = path_index(nodes);
    let parents = nodes
        .iter()
        .map(|n| {
            let mut cur = n.parent_path();
            while let Some(pp) = cur {
                if let Some(&i) = index.get(pp) {
                    return Some(i);
                }
                cur = crate::model::path::parent(pp);
            }
            None
        })
        .collect();
    let depth: Vec<usize> = nodes.iter().map(|n| n.path.matches('/').count()).collect();
    let mut bottom_up: Vec<usize> = (0..nodes.len()).collect();
    bottom_up.sort_by_key(|&i| std::cmp::Reverse(depth[i]));
    (parents, bottom_up)
}

/// Keep only settings whose origin hierarchy's controllers are all allowed.
fn keep_allowed_settings(nodes: &mut [PlanNode], allowed: &BTreeSet<String>) {
    for n in nodes {
        n.settings.retain(|s| {
            let need = origin_controllers(&s.origin);
            need.iter().all(|c| allowed.contains(c))
        });
    }
}

/// Enable each controller in every ancestor of a node that uses it, and
/// only there (in the kernel's order, for readability).
///
/// Controllers are bits (their v2 rank: a setting's controller is always a
/// v2 one), gathered bottom-up: each node's own bits go to its nearest
/// ancestor node, which passes them on with its own.
fn subtree_control(nodes: &mut [PlanNode]) {
    let (parents, bottom_up) = node_parents(nodes);
    let own: Vec<u64> = nodes.iter().map(own_controller_bits).collect();
    let mut below = vec![0u64; nodes.len()];
    for i in bottom_up {
        if let Some(p) = parents[i] {
            below[p] |= below[i] | own[i];
        }
    }
    let names: Vec<&str> = crate::model::Controller::v2_names().collect();
    for (n, bits) in nodes.iter_mut().zip(below) {
        n.subtree_control = (0..names.len().min(64))
            .filter(|r| bits & (1u64 << r) != 0)
            .map(|r| names[r].to_string())
            .collect();
    }
}

/// The controllers a node's settings use, as bits by v2 rank (none for
/// the root: it has no parent to enable them).
fn own_controller_bits(n: &PlanNode) -> u64 {
    if n.path == "/" {
        return 0;
    }
    n.settings
        .iter()
        .filter_map(|s| s.controller())
        .filter_map(crate::model::Controller::v2_rank)
        .filter(|r| *r < 64)
        .fold(0, |bits, r| bits | (1u64 << r))
}

/// No internal processes: a non-root domain node with processes hands them
/// to a leaf child when it enables a domain controller, or any controller
/// while it has domain children (it would become a thread root: EBUSY while
/// they are populated, and invalid children otherwise). Returns the
/// `plan.leaf` findings; the nodes end sorted by path.
fn add_leaves(nodes: &mut Vec<PlanNode>, leaf_name: &str) -> Vec<Finding> {
    let busy = with_domain_child(nodes);
    let need: Vec<usize> = (0..nodes.len())
        .filter(|&i| needs_leaf(&nodes[i], busy[i]))
        .collect();
    let leaf_paths: Vec<String> = {
        let taken: unify::IdSet<&str> = nodes.iter().map(|n| n.path.as_str()).collect();
        need.iter()
            .map(|&i| free_leaf_path(&taken, &nodes[i].path, leaf_name))
            .collect()
    };
    let mut findings = Vec::new();
    let mut new_leaves = Vec::new();
    for (i, path) in need.into_iter().zip(leaf_paths) {
        let n = &mut nodes[i];
        findings.push(findings::LEAF.at(
            &n.path,
            format!(
                "{} holds processes {:?} and enables {} for its children; v2 forbids that, so the processes move to {path} (they now compete with their siblings as one cgroup with default weights)",
                n.path,
                n.processes,
                n.subtree_control.join(" ")
            ),
        ));
        let mut leaf = PlanNode::new(path, NodeType::Domain, Some(NodeNote::Leaf));
        leaf.processes = std::mem::take(&mut n.processes);
        leaf.owner = n.owner;
        new_leaves.push(leaf);
    }
    nodes.extend(new_leaves);
    if !nodes.is_sorted_by(|a, b| a.path <= b.path) {
        nodes::sort_by_path(nodes);
    }
    findings
}

/// Whether a node hands its processes to a leaf child (see [`add_leaves`]).
fn needs_leaf(n: &PlanNode, has_domain_child: bool) -> bool {
    let domain_ctl = n.subtree_control.iter().any(|c| !is_threaded_controller(c));
    let busy_children = !n.subtree_control.is_empty() && has_domain_child;
    n.path != "/"
        && n.node_type == NodeType::Domain
        && (domain_ctl || busy_children)
        && !n.processes.is_empty()
}

/// `parent/leaf`, or `parent/leaf-N` when a node has that path.
fn free_leaf_path(taken: &unify::IdSet<&str>, parent: &str, leaf_name: &str) -> String {
    let mut path = crate::model::path::join(parent, leaf_name);
    let mut i = 2;
    while taken.contains(path.as_str()) {
        path = crate::model::path::join(parent, &format!("{leaf_name}-{i}"));
        i += 1;
    }
    path
}

/// The plan's v2 controllers: those a stage allows, or those its settings use.
fn controllers(nodes: &[PlanNode], allowed: Option<&BTreeSet<String>>) -> Vec<String> {
    match allowed {
        Some(a) => {
            let mut v: Vec<String> = a
                .iter()
                .filter_map(|c| v2_controller(c))
                .map(str::to_string)
                .collect();
            v.sort();
            v.dedup();
            v
        }
        None => {
            let used: BTreeSet<&str> = nodes
                .iter()
                .flat_map(|n| &n.settings)
                .filter_map(|s| s.controller())
                .collect();
            used.into_iter().map(str::to_string).collect()
        }
    }
}

/// Paths of nodes with a domain (or domain threaded) child. A cgroup with
/// processes that enables a controller becomes a thread root
/// (`cgroup_is_thread_root`): the kernel refuses it while a domain child is
/// populated (EBUSY), and otherwise turns its domain children invalid, so
/// they can neither enable controllers nor take processes (EOPNOTSUPP).
fn with_domain_child(nodes: &[PlanNode]) -> Vec<bool> {
    let index = path_index(nodes);
    let mut out = vec![false; nodes.len()];
    for n in nodes.iter().filter(|n| n.node_type != NodeType::Threaded) {
        if let Some(&i) = n.parent_path().and_then(|pp| index.get(pp)) {
            out[i] = true;
        }
    }
    out
}

/// The actions a plan's nodes give, exactly as [`finish`] orders and
/// filters them (other owners' cgroups left out): what a plan read from a
/// file must carry, action for action (`document::check`).
pub fn derived_actions(p: &Plan) -> Vec<Action> {
    owners::stripped(p, actions(p))
}

/// The ordered actions: the tree and its tasks first, then controllers,
/// values and ownership.
///
/// Presized: a hundred thousand actions grown by doubling copied the vector
/// several times and held two copies at once.
fn actions(p: &Plan) -> Vec<Action> {
    let nodes = &p.nodes;
    let threaded = nodes.iter().filter(|n| n.node_type == NodeType::Threaded);
    let tree = nodes.len()
        + nodes.iter().map(|n| n.processes.len()).sum::<usize>()
        + threaded.map(|n| 1 + n.threads.len()).sum::<usize>();
    let values = nodes
        .iter()
        .map(|n| 2 + n.settings.iter().map(|s| s.value.lines().count()).sum::<usize>())
        .sum::<usize>();
    let mut a = Vec::with_capacity(tree + values);
    tree_actions(nodes, &mut a);
    value_actions(nodes, &mut a);
    a
}

/// Create every node, set the threaded ones' type, move processes, then
/// threads (their process lives at the threaded domain above them).
fn tree_actions(nodes: &[PlanNode], a: &mut Vec<Action>) {
    let threaded = || nodes.iter().filter(|n| n.node_type == NodeType::Threaded);
    let creates = nodes
        .iter()
        .filter(|n| n.path != "/")
        .map(|n| Action::Create { path: n.path.clone() });
    let types = threaded().map(|n| Action::SetType {
        path: n.path.clone(),
        value: "threaded".into(),
    });
    let procs = nodes.iter().flat_map(|n| {
        n.processes.iter().map(|&pid| Action::MoveProcess {
            pid,
            path: n.path.clone(),
        })
    });
    let threads = threaded().flat_map(|n| {
        n.threads.iter().map(|t| Action::MoveThread {
            tid: t.tid,
            pid: t.pid,
            path: n.path.clone(),
        })
    });
    a.extend(creates.chain(types).chain(procs).chain(threads));
}

/// Enable controllers top-down (nodes are sorted by path), write every
/// value (one write per line of a keyed file; `cpu.max.burst` after
/// `cpu.max`, which the kernel may need first), then chown delegated nodes.
fn value_actions(nodes: &[PlanNode], a: &mut Vec<Action>) {
    a.extend(
        nodes
            .iter()
            .filter(|n| !n.subtree_control.is_empty())
            .map(|n| Action::EnableControllers {
                path: n.path.clone(),
                controllers: n.subtree_control.clone(),
            }),
    );
    for n in nodes {
        let mut s: Vec<&Setting> = n.settings.iter().collect();
        s.sort_by(|x, y| (x.file == "cpu.max.burst", &x.file).cmp(&(y.file == "cpu.max.burst", &y.file)));
        for s in s {
            a.extend(s.value.lines().map(|line| Action::Write {
                path: n.path.clone(),
                file: s.file.clone(),
                value: line.to_string(),
            }));
        }
    }
    a.extend(nodes.iter().filter_map(|n| {
        let o = n.owner?;
        Some(Action::Chown {
            path: n.path.clone(),
            uid: o.uid,
            gid: o.gid,
            files: vec![
                "cgroup.procs".into(),
                "cgroup.threads".into(),
                "cgroup.subtree_control".into(),
            ],
        })
    }));
}

impl Plan {
    /// The plan for one stage: the same tree, with only the settings of the
    /// controllers moved to v2 by then. Itself a valid plan.
    pub fn for_stage(&self, number: usize, leaf_name: &str) -> Option<Plan> {
        let stage = self.stages.iter().find(|s| s.number == number)?;
        let allowed: BTreeSet<String> = stage.controllers.iter().cloned().collect();
        let mut p = self.clone();
        p.stage = Some(number);
        finish(&mut p, Some(&allowed), leaf_name);
        Some(p)
    }

    /// The part of the plan at and below `path` (ancestors are kept so the
    /// controllers can be enabled down to it, without their settings or
    /// processes). Itself a valid plan. A whole plan's subtree is re-staged
    /// by risk over the hierarchies its settings come from (a subtree that
    /// uses only memory moves only memory); a stage's subtree keeps its
    /// stage. Use [`Plan::only_staged`] for another policy.
    pub fn only(&self, path: &str, leaf_name: &str) -> Option<Plan> {
        match self.only_staged(path, leaf_name, &StagePolicy::Auto) {
            Some(Ok(p)) => Some(p),
            Some(Err(_)) | None => None,
        }
    }

    /// [`Plan::only`] with the subtree's boots chosen by `policy`.
    pub fn only_staged(
        &self,
        path: &str,
        leaf_name: &str,
        policy: &StagePolicy,
    ) -> Option<Result<Plan, StageError>> {
        self.node(path)?;
        let mut p = self.clone();
        p.nodes = subtree_with_ancestors(std::mem::take(&mut p.nodes), path);
        drop_orphan_threads(&mut p.nodes);
        if p.stage.is_none() {
            let used = stages::used_by(stages::loads(&p.spine.order, &p.nodes), &p.nodes);
            match stages::stages(&used, policy) {
                Ok(s) => p.stages = keep_kernels(s, &self.stages),
                Err(e) => return Some(Err(e)),
            }
        }
        finish(&mut p, None, leaf_name);
        Some(Ok(p))
    }
}

/// A re-staged plan's stages with the kernel each needs: the newest of the
/// whole plan's stages that move any of its controllers (the kernel gate
/// ran on those).
fn keep_kernels(mut staged: Vec<Stage>, full: &[Stage]) -> Vec<Stage> {
    let parse = |k: &str| crate::rules::parse_kernel(k);
    for s in &mut staged {
        s.kernel = full
            .iter()
            .filter(|f| f.adds.iter().any(|c| s.adds.contains(c)))
            .filter_map(|f| f.kernel.as_deref())
            .max_by_key(|k| parse(k))
            .map(str::to_string);
    }
    staged
}

/// The nodes at and below `path`, and its ancestors emptied (no settings,
/// processes, threads or owner: they only enable controllers down to it).
fn subtree_with_ancestors(mut nodes: Vec<PlanNode>, path: &str) -> Vec<PlanNode> {
    nodes.retain(|n| is_within(&n.path, path) || is_within(path, &n.path));
    for n in nodes.iter_mut().filter(|n| !is_within(&n.path, path)) {
        n.settings.clear();
        n.processes.clear();
        n.threads.clear();
        n.owner = None;
    }
    nodes
}

/// Threads follow their process: drop those whose process is not placed.
fn drop_orphan_threads(nodes: &mut [PlanNode]) {
    let placed: BTreeSet<Pid> = nodes.iter().flat_map(|n| n.processes.iter().copied()).collect();
    for n in nodes {
        n.threads.retain(|t| placed.contains(&t.pid));
    }
}
