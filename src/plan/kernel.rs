//! Kernel step: the host's kernel decides what v2 can do.
//!
//! A v2 controller or file the host's kernel does not offer is never enabled
//! or written: its settings leave the plan, and the stage that needs a newer
//! kernel says which (a `plan.kernel-too-old` blocker naming the stage, the
//! kernel and the files). Each stage records the kernel it needs for the
//! settings it carries, so an upgrade can be planned per boot.
//!
//! Minimum kernels: the rules' `kernel:` field per converted file, and the
//! first kernel with each controller on cgroup2 (cgroup-v2.rst, man 7
//! cgroups): cgroup2 itself 4.5, thread mode 4.14 (a stage with threaded
//! nodes names 4.14 as its kernel; whether the host has thread mode is the
//! audit's `host.kernel-no-thread-mode`, judged by what its cgroup2 mount
//! shows, so this step does not report it again). What the host's kernel
//! offers is [`crate::audit::kernel::Support`]'s answer, the audit's: a
//! vendor kernel that offers a controller before the upstream release did
//! (RHEL 8's cpuset) keeps that controller's settings.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::findings;
use super::model::{NodeType, PlanNode, Stage};
use super::model::{node_subject, origin_controllers};
use crate::audit::kernel::Support;
use crate::model::HierarchyId;
use crate::rules::Finding;
use crate::rules::parse_kernel;

/// A kernel version (major, minor).
pub type Kernel = (u32, u32);

/// cgroup2 with its first controllers (memory, io, pids).
pub const CGROUP2: Kernel = (4, 5);
/// Thread mode (`cgroup.type` threaded, `cgroup.threads`).
pub const THREADS: Kernel = crate::audit::kernel::THREADS;

/// The first kernel that offers a controller on cgroup2.
pub fn controller_kernel(c: &str) -> Kernel {
    crate::model::Controller::v2_named(c).map_or(CGROUP2, |c| c.v2_since())
}

fn show(k: Kernel) -> String {
    format!("{}.{}", k.0, k.1)
}

/// What settings need: their rule's kernel and their controller's. The
/// rules' kernels are parsed once (a plan has a setting per converted file,
/// a hundred thousand on a big host, and few rules).
struct Needs<'a> {
    rule: HashMap<&'a str, Kernel>,
}

impl<'a> Needs<'a> {
    fn new(rule_kernel: &'a HashMap<String, String>) -> Needs<'a> {
        let rule = rule_kernel
            .iter()
            .filter_map(|(r, k)| Some((r.as_str(), parse_kernel(k)?)))
            .collect();
        Needs { rule }
    }

    /// What one setting needs.
    fn of(&self, s: &super::Setting) -> Kernel {
        let rule = self.rule.get(s.rule.as_str()).copied().unwrap_or(CGROUP2);
        let ctl = s.controller().map_or(CGROUP2, controller_kernel);
        rule.max(ctl).max(CGROUP2)
    }

    /// Whether the host's kernel offers what one setting needs.
    fn met(&self, s: &super::Setting, support: &Support) -> bool {
        let ctl = s.controller().and_then(crate::model::Controller::v2_named);
        support.satisfies(ctl, self.of(s))
    }
}

/// Per setting (in node order): its origin hierarchy, the kernel it needs
/// and whether the host's kernel offers that.
fn setting_needs(nodes: &[PlanNode], needs: &Needs, support: &Support) -> Vec<(HierarchyId, Kernel, bool)> {
    nodes
        .iter()
        .flat_map(|n| &n.settings)
        .map(|s| (s.origin.hierarchy, needs.of(s), needs.met(s, support)))
        .collect()
}

/// The hierarchies (by id) whose controllers a stage has all moved.
fn moved_hierarchies(nodes: &[PlanNode], stage: &Stage) -> BTreeSet<HierarchyId> {
    let mut seen: BTreeMap<HierarchyId, bool> = BTreeMap::new();
    for s in nodes.iter().flat_map(|n| &n.settings) {
        seen.entry(s.origin.hierarchy).or_insert_with(|| {
            origin_controllers(&s.origin)
                .iter()
                .all(|c| stage.controllers.contains(c))
        });
    }
    seen.into_iter()
        .filter(|(_, moved)| *moved)
        .map(|(h, _)| h)
        .collect()
}

/// Set each stage's kernel, drop settings the host's kernel can't take, and
/// report per stage what needs a newer kernel.
pub fn gate(
    nodes: &mut [PlanNode],
    stages: &mut [Stage],
    support: &Support,
    rule_kernel: &HashMap<String, String>,
) -> Vec<Finding> {
    let host = support.release.as_ref().map(|r| r.version);
    let threaded = nodes.iter().any(|n| n.node_type != NodeType::Domain);
    // The stage's kernel names thread mode's first release when the plan
    // has threaded nodes; whether this host has thread mode is the audit's
    // `host.kernel-no-thread-mode` (judged by what the cgroup2 mount shows,
    // then the version: `Support::thread_mode`), one finding per fact, so
    // this step's finding speaks only of cgroup2 itself and of files.
    let base = if threaded { THREADS } else { CGROUP2 };
    // Per stage: the kernel it needs, and what needs more than the host has.
    let needs = Needs::new(rule_kernel);
    let per_setting = setting_needs(nodes, &needs, support);
    let mut findings = Vec::new();
    for st in stages.iter_mut() {
        let moved = moved_hierarchies(nodes, st);
        let mut need = base;
        let mut short: BTreeMap<String, Kernel> = BTreeMap::new();
        let settings = nodes.iter().flat_map(|n| &n.settings);
        for (s, &(hier, k, met)) in settings.zip(&per_setting) {
            if !moved.contains(&hier) {
                continue;
            }
            need = need.max(k);
            if !met && !short.contains_key(&s.file) {
                short.insert(s.file.clone(), k);
            }
        }
        st.kernel = Some(show(need));
        if let Some(h) = host.filter(|h| *h < CGROUP2 || !short.is_empty()) {
            findings.push(too_old(st.number, h, need, &short));
        }
    }
    if per_setting.iter().any(|(_, _, met)| !met) {
        for n in nodes.iter_mut() {
            n.settings.retain(|s| needs.met(s, support));
        }
    }
    findings
}

fn too_old(stage: usize, host: Kernel, need: Kernel, short: &BTreeMap<String, Kernel>) -> Finding {
    let files: Vec<String> = short.iter().map(|(f, k)| format!("{f} ({})", show(*k))).collect();
    let what = if host < CGROUP2 {
        format!("cgroup2 needs {}", show(CGROUP2))
    } else {
        String::new()
    };
    let parts: Vec<String> = [what, files.join(", ")]
        .into_iter()
        .filter(|x| !x.is_empty())
        .collect();
    findings::KERNEL_TOO_OLD.finding_with(
        node_subject("/"),
        format!(
            "stage {stage} needs kernel {} (this host runs {}): {}; settings the host's kernel lacks are left out of the plan, not written",
            show(need),
            show(host),
            parts.join("; ")
        ),
        format!("Boot kernel {} or newer before stage {stage}.", show(need)),
    )
}
