//! `cgmig tree`: every hierarchy as an indented tree.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use petgraph::graph::NodeIndex;

use crate::model::{Hierarchy, Snapshot, Version};
use crate::rules::RuleSet;

/// Render all hierarchies: controllers, mounts, and per cgroup its task
/// counts, non-default settings, a `split` marker where a process's threads
/// are spread over cgroups of the hierarchy, and the owner when not root.
pub fn render_tree(snap: &Snapshot, rules: &RuleSet) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "host {} — kernel {} — mode {:?}",
        snap.host.hostname.as_deref().unwrap_or("?"),
        snap.host.kernel.as_deref().unwrap_or("?"),
        snap.host.mode
    );
    let split_at = split_cgroups(snap);
    for (hi, h) in snap.hierarchies() {
        let _ = writeln!(out, "\n{}", hierarchy_heading(h));
        let Some(root) = snap.root_cgroup(hi) else {
            continue;
        };
        let label = |cg: NodeIndex, is_top: bool| cgroup_line(snap, rules, h, &split_at, cg, is_top);
        out.push_str(&super::draw_tree(root, |cg| snap.children(cg), label));
    }
    if !snap.diagnostics.is_empty() {
        let _ = writeln!(out, "\n{} diagnostics:", snap.diagnostics.len());
        for d in &snap.diagnostics {
            let _ = writeln!(out, "  {}: {}", d.path, d.message);
        }
    }
    out
}

/// The cgroups holding a thread whose process is split in that hierarchy,
/// with those processes' pids: computed once for the whole snapshot, so each
/// line only looks its cgroup up.
fn split_cgroups(snap: &Snapshot) -> BTreeMap<NodeIndex, BTreeSet<crate::model::Pid>> {
    let mut split_at: BTreeMap<NodeIndex, BTreeSet<crate::model::Pid>> = BTreeMap::new();
    for (pi, hs) in snap.split_processes() {
        let pid = match &snap.graph[pi] {
            crate::model::Node::Process(p) => p.pid,
            _ => continue,
        };
        for (ti, _) in snap.threads(pi) {
            for cg in snap.memberships(ti) {
                if hs.contains(&snap.cgroup(cg).hierarchy) {
                    split_at.entry(cg).or_default().insert(pid);
                }
            }
        }
    }
    split_at
}

/// A hierarchy's heading: version, id, controllers (or name), and where it
/// is mounted (the scanned mount, its root when not `/`, how many mounts).
fn hierarchy_heading(h: &Hierarchy) -> String {
    let ver = if h.version == Version::V2 { "v2" } else { "v1" };
    let where_ = match h.scanned_mount {
        Some(i) => {
            let m = &h.mounts[i];
            if m.root == "/" {
                format!("at {}", m.mount_point)
            } else {
                format!("at {} (root {})", m.mount_point, m.root)
            }
        }
        None => "mounted nowhere".to_string(),
    };
    let extra = if h.mounts.len() > 1 {
        format!(", {} mounts", h.mounts.len())
    } else {
        String::new()
    };
    let ctl = if h.version == Version::V2 {
        let c: Vec<_> = h.controllers.iter().map(|c| c.as_str()).collect();
        format!("unified [{}]", c.join(" "))
    } else {
        h.label()
    };
    format!("{ver} hierarchy {}: {ctl} {where_}{extra}", h.id)
}

/// One cgroup's line: its path (top) or name, task counts, non-default
/// settings, delegated owner and split-thread marker.
fn cgroup_line(
    snap: &Snapshot,
    rules: &RuleSet,
    h: &Hierarchy,
    split_at: &BTreeMap<NodeIndex, BTreeSet<crate::model::Pid>>,
    cg: NodeIndex,
    is_top: bool,
) -> String {
    let c = snap.cgroup(cg);
    let (procs, threads) = snap.task_counts(cg);
    let mut line = if is_top {
        c.path.clone()
    } else {
        c.name().to_string()
    };
    if threads > 0 {
        let _ = write!(line, "  ({procs} procs, {threads} threads)");
    }
    let settings = non_default_settings(snap, rules, h, cg);
    if !settings.is_empty() {
        let _ = write!(line, "  {}", settings.join(" "));
    }
    if let Some(uid) = c.owner.delegate_uid() {
        let _ = write!(line, "  [owner uid {uid}]");
    }
    if let Some(pids) = split_at.get(&cg) {
        let p: Vec<_> = pids.iter().map(|p| p.to_string()).collect();
        let _ = write!(line, "  [split threads: pid {}]", p.join(","));
    }
    line
}

/// The settings worth showing (`key=value`, newlines as `; `): on v1 those
/// the rules do not call default given the parent's value (a root shows
/// only its `release_agent`), on v2 those off the kernel's default.
fn non_default_settings(snap: &Snapshot, rules: &RuleSet, h: &Hierarchy, cg: NodeIndex) -> Vec<String> {
    let c = snap.cgroup(cg);
    let parent = snap.parent(cg).map(|p| snap.cgroup(p));
    let mut settings = Vec::new();
    if h.version == Version::V1 {
        for (k, v) in &c.settings {
            let pv = parent.and_then(|p| p.settings.get(k)).map(String::as_str);
            if c.is_root() && k != "release_agent" {
                continue;
            }
            if !rules.is_default(k, &h.controllers, v, pv) {
                settings.push(format!(
                    "{k}={}",
                    super::units::with_units(k, &v.replace('\n', "; "))
                ));
            }
        }
    } else {
        for (k, v) in &c.settings {
            if !crate::model::files::is_v2_default(k, v) {
                settings.push(format!(
                    "{k}={}",
                    super::units::with_units(k, &v.replace('\n', "; "))
                ));
            }
        }
    }
    settings
}
