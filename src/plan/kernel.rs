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
//! cgroups): cgroup2 itself 4.5, thread mode 4.14.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::model::{NodeType, PlanNode, Stage};
use super::{findings, node_subject, origin_controllers};
use crate::audit::Finding;
use crate::rules::parse_kernel;

/// A kernel version (major, minor).
pub type Kernel = (u32, u32);

/// cgroup2 with its first controllers (memory, io, pids).
pub const CGROUP2: Kernel = (4, 5);
/// Thread mode (`cgroup.type` threaded, `cgroup.threads`).
pub const THREADS: Kernel = (4, 14);

/// The first kernel that offers a controller on cgroup2.
pub fn controller_kernel(c: &str) -> Kernel {
    crate::model::Controller::v2_named(c).map_or(CGROUP2, |c| c.v2_since())
}

fn show(k: Kernel) -> String {
    format!("{}.{}", k.0, k.1)
}

/// What one setting needs: its rule's kernel and its controller's.
fn setting_kernel(s: &super::Setting, rule_kernel: &HashMap<String, String>) -> Kernel {
    let rule = rule_kernel
        .get(&s.rule)
        .and_then(|k| parse_kernel(k))
        .unwrap_or(CGROUP2);
    let ctl = s.controller().map_or(CGROUP2, controller_kernel);
    rule.max(ctl).max(CGROUP2)
}

/// Set each stage's kernel, drop settings the host's kernel can't take, and
/// report per stage what needs a newer kernel.
pub fn gate(
    nodes: &mut [PlanNode],
    stages: &mut [Stage],
    host: Option<Kernel>,
    rule_kernel: &HashMap<String, String>,
) -> Vec<Finding> {
    let threaded = nodes.iter().any(|n| n.node_type != NodeType::Domain);
    let base = if threaded { THREADS } else { CGROUP2 };
    // Per stage: the kernel it needs, and what needs more than the host has.
    let mut findings = Vec::new();
    for st in stages.iter_mut() {
        let moved: BTreeSet<&str> = st.controllers.iter().map(String::as_str).collect();
        let mut need = base;
        let mut short: BTreeMap<String, Kernel> = BTreeMap::new();
        for s in nodes.iter().flat_map(|n| &n.settings) {
            if !origin_controllers(&s.origin)
                .iter()
                .all(|c| moved.contains(c.as_str()))
            {
                continue;
            }
            let k = setting_kernel(s, rule_kernel);
            need = need.max(k);
            if host.is_some_and(|h| h < k) {
                short.entry(s.file.clone()).or_insert(k);
            }
        }
        st.kernel = Some(show(need));
        if let Some(h) = host.filter(|h| *h < need) {
            findings.push(too_old(st.number, h, need, base, &short));
        }
    }
    if let Some(h) = host {
        for n in nodes.iter_mut() {
            n.settings.retain(|s| setting_kernel(s, rule_kernel) <= h);
        }
    }
    findings
}

fn too_old(
    stage: usize,
    host: Kernel,
    need: Kernel,
    base: Kernel,
    short: &BTreeMap<String, Kernel>,
) -> Finding {
    let files: Vec<String> = short.iter().map(|(f, k)| format!("{f} ({})", show(*k))).collect();
    let what = if host < base {
        format!(
            "cgroup2{} needs {}",
            if base == THREADS { " with thread mode" } else { "" },
            show(base)
        )
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
