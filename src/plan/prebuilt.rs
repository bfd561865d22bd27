//! What other owners build before cgmig acts: the cgroups systemd and the
//! runtimes create at their own paths, and the controllers each of them
//! enables in those cgroups' `cgroup.subtree_control`.
//!
//! The validator, the simulator's replays and `apply --dry-run` start from
//! this, and the owners pass keeps every action cgmig's own nodes need
//! beyond it (`owners::strip_actions`). It must not be more generous than
//! the owners are: a model where systemd enables at the root whatever the
//! plan's root lists hides a custom top-level tree's missing `+cpu` until
//! the kernel says ENOENT (issue 23).
//!
//! An owner enables, in a cgroup it builds, the controllers its own
//! children there need: the controllers of their settings (systemd's from
//! the unit's directives, a runtime's from the container), the controllers
//! a delegating unit hands to its delegatee (`Delegate=`, systemd enables
//! them up to the unit), and, for systemd, the accounting it turns on for
//! every unit by default (`DefaultMemoryAccounting=yes`,
//! `DefaultTasksAccounting=yes`: memory and pids; CPU accounting needs no
//! controller on v2 since kernel 4.15). Measured on the guests: the root of
//! a unified Debian 11 boot (systemd 247) enables `memory pids` and nothing
//! else until a unit asks (docs/owners.md, "What systemd enables").

use std::collections::BTreeSet;

use super::model::{Plan, controller_of};

/// systemd's default accounting: the controllers every unit's cgroup gets
/// from its parent (`DefaultMemoryAccounting=`, `DefaultTasksAccounting=`;
/// systemd's `unit.c` copies the manager defaults into each unit's context).
const SYSTEMD_ACCOUNTING: &[&str] = &["memory", "pids"];

/// Each cgroup another owner builds before cgmig acts, parents first, with
/// the controllers that owner enables in it (sorted). The root is systemd's
/// on a systemd host; elsewhere it is nobody's (cgmig enables what its
/// nodes need there, and a runtime enables what its own need).
pub fn prebuilt(p: &Plan) -> Vec<(&str, Vec<String>)> {
    let o = &p.owners;
    let systemd_root = o.systemd.is_some();
    if o.nodes.is_empty() && !systemd_root {
        return Vec::new();
    }
    let offered: BTreeSet<&str> = p.controllers.iter().map(String::as_str).collect();
    let index: foldhash::HashMap<&str, usize> = p
        .nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (n.path.as_str(), i))
        .collect();
    let built: Vec<bool> = p
        .nodes
        .iter()
        .map(|n| {
            if n.path == "/" {
                systemd_root
            } else {
                o.built_by_owner(&n.path)
            }
        })
        .collect();
    let mut enables: Vec<BTreeSet<&str>> = vec![BTreeSet::new(); p.nodes.len()];
    // Children before parents: each built node hands its needs up.
    for i in (0..p.nodes.len()).rev() {
        let n = &p.nodes[i];
        if !built[i] || n.path == "/" {
            continue;
        }
        let Some(pi) = n.parent_path().and_then(|pp| index.get(pp)).copied() else {
            continue;
        };
        let mut need: BTreeSet<&str> = enables[i].clone();
        need.extend(n.settings.iter().filter_map(|s| controller_of(&s.file)));
        if let Some(d) = o.delegations.iter().find(|d| d.path == n.path) {
            need.extend(d.controllers.iter().map(String::as_str));
        }
        if o.owner_of(&n.path).is_some_and(|ow| ow.is_systemd_unit()) {
            need.extend(SYSTEMD_ACCOUNTING.iter().copied());
        }
        if built[pi] {
            enables[pi].extend(need.into_iter().filter(|c| offered.contains(c)));
        }
    }
    p.nodes
        .iter()
        .zip(built)
        .zip(enables)
        .filter(|((_, b), _)| *b)
        .map(|((n, _), e)| (n.path.as_str(), e.into_iter().map(str::to_string).collect()))
        .collect()
}
