//! Stable process keys and host identity recorded in a plan.
//!
//! Why: PIDs change across the reboot of a staged rollout, and a PID can be
//! reused by another program even without one. `apply` therefore matches live
//! processes on a key that survives a reboot: uid, `comm` and the exact
//! `cmdline`, with the v1 cgroups the process was in as a tie-breaker. The key
//! is computed here, from the snapshot the plan was made from; the matching
//! is `apply::keys` (see `docs/apply.md`).

use super::model::{Plan, ProcessKey};
use super::unify::{IdMap, IdSet};
use crate::model::{HierarchyId, Pid, Snapshot, Tid, Version};

/// Record a key for every process (and individually placed thread) the plan places.
pub fn annotate(plan: &mut Plan, snap: &Snapshot) {
    let placed: IdSet<Pid> = plan
        .nodes
        .iter()
        .flat_map(|n| n.processes.iter().copied())
        .collect();
    let threads: IdSet<Tid> = plan
        .nodes
        .iter()
        .flat_map(|n| n.threads.iter().map(|t| t.tid))
        .collect();
    // Labels of the v1 hierarchies, made once: `Snapshot::hierarchy` scans
    // the whole graph, once per membership it made planning quadratic.
    let v1_labels: IdMap<HierarchyId, String> = snap
        .hierarchies()
        .into_iter()
        .filter(|(_, h)| h.version == Version::V1)
        .map(|(_, h)| (h.id, h.label()))
        .collect();
    let mut keys = Vec::with_capacity(placed.len());
    for (pi, p) in snap.processes() {
        if !placed.contains(&p.pid) {
            continue;
        }
        let ts = snap.threads(pi);
        let mut v1: Vec<(&str, &str)> = Vec::new();
        // Process membership = its leader's (or first thread's) cgroups.
        let lead = ts
            .iter()
            .find(|(_, t)| t.tid == p.pid.main_thread())
            .or(ts.first());
        if let Some((ti, _)) = lead {
            for cg in snap.memberships(*ti) {
                let c = snap.cgroup(cg);
                if let Some(label) = v1_labels.get(&c.hierarchy) {
                    v1.push((label.as_str(), c.path.as_str()));
                }
            }
        }
        // Sorted and unique, as a set would make them; owned only once.
        v1.sort_unstable();
        v1.dedup();
        keys.push(ProcessKey {
            pid: p.pid,
            uid: p.uid,
            comm: p.comm.clone(),
            cmdline: p.cmdline.clone(),
            v1: v1
                .into_iter()
                .map(|(l, c)| (l.to_string(), c.to_string()))
                .collect(),
            threads: ts
                .iter()
                .filter(|(_, t)| threads.contains(&t.tid))
                .map(|(_, t)| (t.tid, t.comm.clone()))
                .collect(),
        });
    }
    plan.process_keys = keys;
}

/// Read the identity of the host this process runs on (`/etc/machine-id`,
/// boot id). Only meaningful when the plan was made from a live scan.
pub fn record_live_identity(plan: &mut Plan) {
    let read = |p: &str| {
        std::fs::read_to_string(p)
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    };
    plan.host.machine_id = read("/etc/machine-id");
    plan.host.boot_id = read("/proc/sys/kernel/random/boot_id");
}
